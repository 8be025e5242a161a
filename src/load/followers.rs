//! Writing an Official Account's `followers` partition from a finished crawl:
//! the rows fetched (the crawl's segments) plus, with `refresh = "new"`, the
//! rows carried over from the previous snapshot for followers listed again.
//! Streamed row group by row group; the identity columns the dedupe needs
//! are handed to the caller a row group at a time, nothing is kept.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::extract::known::KnownFollowers;
use crate::extract::official_account::followers_frame;
use crate::job::Privacy;
use crate::transform::privacy::Pseudonymizer;

use super::commit::ManifestFile;
use super::read::{self, read_columns, LocalCopy};
use super::state::StateStore;
use super::stream::{BackgroundWriter, PartitionWriter, STREAM_ROW_GROUP_ROWS};
use super::{layout, store::Store, LoadError};

/// The identity columns of the followers table: what the dedupe needs.
pub const IDENTITY_COLUMNS: [&str; 3] = ["openid", "unionid", "subscribe_time"];

/// Rows carried over from the previous snapshot's partition of the account.
pub struct CarryOver<'a> {
    /// The previous partition, relative to the output root.
    pub path: String,
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

/// Writes `followers/snapshot_date=D/account_id=A/part-0.parquet`, giving
/// the [`IDENTITY_COLUMNS`] of every row group written to `identities`.
#[allow(clippy::too_many_arguments)]
pub async fn write_followers<E: From<LoadError>>(
    store: &Store,
    date: NaiveDate,
    account_id: &str,
    state: &StateStore,
    segments: u32,
    carry: Option<CarryOver<'_>>,
    privacy: &Privacy,
    mut identities: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<ManifestFile, E> {
    let pseudonymizer = Pseudonymizer::for_job(privacy);
    let encode = |source: PolarsError| LoadError::Encode {
        table: layout::FOLLOWERS.to_string(),
        source,
    };
    let schema = followers_schema(&privacy.drop).map_err(encode)?;
    let path = layout::account_file(layout::FOLLOWERS, date, account_id);
    // Encoded and uploaded by a task of its own while the next rows are read.
    let mut writer = BackgroundWriter::spawn(
        PartitionWriter::create(store, layout::FOLLOWERS, path, &schema).await?,
    );
    let result = async {
        for segment in 0..segments {
            let rows = state
                .read_segment(segment)
                .await
                .map_err(LoadError::State)?;
            let mut rows = align(rows, &schema).map_err(encode)?;
            // Fetched rows carry WeChat's ids; carried-over rows already
            // hold what was written (pseudonyms, if so configured).
            if let Some(p) = &pseudonymizer {
                rows = p.frame(rows).map_err(encode)?;
            }
            identities(rows.select(IDENTITY_COLUMNS).map_err(encode)?)?;
            writer.write(rows).await?;
        }
        if let Some(carry) = carry {
            let local = LocalCopy::fetch(store, &carry.path).await?;
            let total = carry.known.len();
            let mut offset = 0;
            while offset < total {
                let len = STREAM_ROW_GROUP_ROWS.min(total - offset);
                let rows = local.read_slice(offset, len, None).map_err(encode)?;
                let rows = rows
                    .filter(&carry.known.listed_mask(offset, len))
                    .map_err(encode)?;
                let rows = align(rows, &schema).map_err(encode)?;
                identities(rows.select(IDENTITY_COLUMNS).map_err(encode)?)?;
                writer.write(rows).await?;
                offset += len;
            }
        }
        Ok::<_, E>(())
    }
    .await;
    if let Err(error) = result {
        writer.abort().await;
        return Err(error);
    }
    Ok(writer.finish().await?)
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

/// Reads the `openid` column of a previous partition (the identity cache).
pub async fn read_openids(store: &Store, path: &str) -> Result<StringChunked, LoadError> {
    let (frame, _) = read_columns(store, path, &["openid"]).await?;
    let decode = |source: PolarsError| LoadError::Decode {
        path: path.to_string(),
        source,
    };
    Ok(frame
        .column("openid")
        .map_err(decode)?
        .str()
        .map_err(decode)?
        .clone())
}
