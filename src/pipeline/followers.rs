//! Writing an Official Account's `followers` partition while its crawl runs:
//! the rows fetched (the crawl's segments, as they are saved) plus, with
//! `refresh = "new"`, the rows carried over from the previous snapshot for
//! followers listed again. Streamed row group by row group; the identity
//! columns the dedupe needs are handed to the caller as they pass, nothing
//! is kept.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::extract::known::KnownFollowers;
use crate::extract::oa_counts::TagMembers;
use crate::extract::official_account::followers_frame;
use crate::transform::privacy::TablePrivacy;

use crate::load::commit::ManifestFile;
use crate::load::read::{self, LocalCopy};
use crate::load::stream::{BackgroundWriter, PartitionWriter};
use crate::load::{layout, store::Store, LoadError};

/// The identity columns of the followers table: what the dedupe needs.
pub const IDENTITY_COLUMNS: [&str; 3] = ["openid", "unionid", "subscribe_time"];

/// The identity columns of a slice of the previous partition: of the rows
/// carried over (listed again), or of those left behind (not listed again;
/// copied out of the slice, so they can be kept).
pub enum Carried {
    Listed(DataFrame),
    Left(DataFrame),
}

/// Rows carried over from the previous snapshot's partition of the account.
pub struct CarryOver<'a> {
    /// The previous partition, copied when the identity cache was read
    /// from it ([`for_each_openids`]).
    pub(crate) previous: &'a LocalCopy,
    /// Which of its rows were listed again.
    pub known: &'a KnownFollowers,
}

/// The followers schema as written, without the `drop`ped columns.
pub fn followers_schema(drop: &[String]) -> PolarsResult<Schema> {
    let empty = followers_frame(&[], 0)?;
    Ok(empty
        .schema()
        .iter()
        .filter(|(name, _)| !drop.iter().any(|d| d == name.as_str()))
        .map(|(name, dtype)| (name.clone(), dtype.clone()))
        .collect())
}

/// Brings `rows` to `schema`: dropped columns removed, columns missing from an
/// older file added as nulls, in schema order.
fn align(rows: DataFrame, schema: &Schema) -> PolarsResult<DataFrame> {
    let height = rows.height();
    let columns = schema
        .iter()
        .map(|(name, dtype)| match rows.column(name) {
            Ok(column) => column.cast(dtype),
            Err(_) => Ok(Column::full_null(name.clone(), height, dtype)),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

/// `rows` with their strings copied into buffers of their own. A few rows
/// filtered out of a slice share its buffers: kept, they would keep the
/// whole slice alive.
fn copied_out(rows: DataFrame) -> PolarsResult<DataFrame> {
    let columns = rows
        .columns()
        .iter()
        .map(|column| match column.dtype() {
            DataType::String => {
                let copied: StringChunked = column.str()?.iter().collect();
                Ok(copied.with_name(column.name().clone()).into_column())
            }
            _ => Ok(column.clone()),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(rows.height(), columns)
}

/// `followers/snapshot_date=D/account_id=A/part-<run_id>-0.parquet`, written while
/// the account's crawl runs: the fetched rows a crawl segment at a time, in
/// list order, as the crawl saves them; with `refresh = "new"`, the rows
/// carried over from the previous snapshot come in between, once the crawl
/// has listed every follower (the profiles of the last new followers may
/// still be in flight). Encoding and upload run in a task of their own
/// ([`BackgroundWriter`]); the file appears only at [`Self::finish`].
pub struct FollowersWriter {
    writer: BackgroundWriter,
    schema: Schema,
    privacy: TablePrivacy,
    /// Followers per tag id of the rows written (None when `tagid_list` is
    /// dropped).
    tag_members: Option<TagMembers>,
}

impl FollowersWriter {
    pub async fn create(
        store: &Store,
        date: NaiveDate,
        account_id: &str,
        run_id: &str,
        privacy: TablePrivacy,
    ) -> Result<Self, LoadError> {
        let schema = followers_schema(privacy.dropped()).map_err(encode_error)?;
        let path = layout::account_file(layout::FOLLOWERS, date, account_id, run_id);
        let writer = PartitionWriter::create(store, layout::FOLLOWERS, path, &schema).await?;
        let tag_members = schema.contains("tagid_list").then(TagMembers::default);
        Ok(FollowersWriter {
            writer: BackgroundWriter::spawn(writer),
            tag_members,
            schema,
            privacy,
        })
    }

    /// Adds fetched rows (one crawl segment, WeChat's ids); returns their
    /// [`IDENTITY_COLUMNS`] as written (pseudonyms, if so configured).
    pub async fn fetched(&mut self, rows: DataFrame) -> Result<DataFrame, LoadError> {
        let rows = self.privacy.apply(rows).map_err(encode_error)?;
        let rows = align(rows, &self.schema).map_err(encode_error)?;
        self.count_tags(&rows)?;
        let identities = rows.select(IDENTITY_COLUMNS).map_err(encode_error)?;
        self.writer.write(rows).await?;
        Ok(identities)
    }

    /// Adds the rows of the previous partition the crawl listed again (they
    /// already hold what was written: pseudonyms, if so configured), giving
    /// their [`IDENTITY_COLUMNS`] to `identities` a row group at a time, and
    /// those of the rows not listed again (the followers who left) as well.
    pub async fn carried_over<E: From<LoadError>>(
        &mut self,
        carry: CarryOver<'_>,
        mut identities: impl FnMut(Carried) -> Result<(), E>,
    ) -> Result<(), E> {
        let local = carry.previous;
        for (offset, len) in local.slices().map_err(encode_error)? {
            let all = local.read_slice(offset, len, None).map_err(encode_error)?;
            let listed = carry.known.listed_mask(offset, len);
            let gone = all.filter(&!&listed).map_err(encode_error)?;
            if gone.height() > 0 {
                let gone = align(gone, &self.schema).map_err(encode_error)?;
                let gone = gone.select(IDENTITY_COLUMNS).map_err(encode_error)?;
                identities(Carried::Left(copied_out(gone).map_err(encode_error)?))?;
            }
            let rows = all.filter(&listed).map_err(encode_error)?;
            // Not kept while the writer is awaited.
            drop(all);
            let rows = align(rows, &self.schema).map_err(encode_error)?;
            self.count_tags(&rows)?;
            identities(Carried::Listed(
                rows.select(IDENTITY_COLUMNS).map_err(encode_error)?,
            ))?;
            self.writer.write(rows).await?;
        }
        // Few rows follow (the profiles of new followers still in flight):
        // these are encoded now, while they are awaited, not at the end.
        self.writer.flush().await?;
        Ok(())
    }

    fn count_tags(&mut self, rows: &DataFrame) -> Result<(), LoadError> {
        match &mut self.tag_members {
            Some(members) => members.add(rows).map_err(encode_error),
            None => Ok(()),
        }
    }

    /// Followers per tag id of every row written so far (None when the
    /// job drops `tagid_list`).
    pub fn tag_members(&self) -> Option<&TagMembers> {
        self.tag_members.as_ref()
    }

    /// Completes the file.
    pub async fn finish(self) -> Result<ManifestFile, LoadError> {
        self.writer.finish().await
    }

    /// Abandons the file: nothing becomes visible.
    pub async fn abort(self) {
        self.writer.abort().await;
    }
}

fn encode_error(source: PolarsError) -> LoadError {
    LoadError::Encode {
        table: layout::FOLLOWERS.to_string(),
        source,
    }
}

/// Gives the [`IDENTITY_COLUMNS`] of a written followers partition (of an
/// account whose crawl an earlier run of the date already finished) to
/// `each`, a row group at a time; returns the rows and the file's size.
pub async fn for_each_identities<E: From<LoadError>>(
    store: &Store,
    path: &str,
    each: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<(u64, u64), E> {
    read::for_each_slice(store, path, Some(&IDENTITY_COLUMNS), each).await
}

/// The `openid` column of a previous partition (the identity cache), a
/// slice at a time, in order: the column is never whole in memory. The
/// copy is kept for the carry-over ([`CarryOver`]), so the partition is
/// fetched once.
pub(crate) fn for_each_openids(
    previous: &LocalCopy,
    mut each: impl FnMut(&StringChunked),
) -> Result<(), LoadError> {
    let decode = |source: PolarsError| LoadError::Decode {
        path: previous.source().to_string(),
        source,
    };
    previous.for_each_slice(Some(&["openid"]), |slice| {
        each(
            slice
                .column("openid")
                .map_err(decode)?
                .str()
                .map_err(decode)?,
        );
        Ok::<_, LoadError>(())
    })?;
    Ok(())
}
