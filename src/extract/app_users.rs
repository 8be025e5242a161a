//! Mini Program, mobile app and website users (`kind = "mini_program" |
//! "mobile_app" | "website"`) → the `app_users` table (SPEC §4).
//!
//! No WeChat API lists these users (wechat-api.md §5): the OpenID/UnionID
//! pairs exist only in the business's own login records, captured at
//! `jscode2session` / OAuth time. So the members of such an account come
//! from an export at `source`: one file or a folder/prefix of files, local or
//! on any object store, as CSV with a header, NDJSON or Parquet (by
//! extension), with the columns `openid`, `unionid` (empty = none) and,
//! optionally, `first_seen`.
//!
//! The import is strict: a missing column, a malformed row, a file that is
//! not UTF-8, an unknown file type or two different UnionIDs for one OpenID
//! fail the account with the file, the line (the row for Parquet) and the
//! reason — a row is never dropped silently. An OpenID listed several times
//! (a login log) is one member: its UnionID is the one given, its
//! `first_seen` the earliest.

mod formats;
mod source;

use std::collections::HashMap;
use std::fmt;

use futures::StreamExt;

use polars::prelude::*;

use crate::job::OutputLocation;
use crate::load::layout;

use super::RawTable;

pub use formats::{parse_first_seen, Format};

/// Why an import failed: where (file, and line or row when known) and what
/// is wrong. Never quotes an OpenID or a UnionID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{account_id}: {location}: {reason}")]
pub struct ImportError {
    pub account_id: String,
    /// `FILE`, `FILE:LINE` (text formats) or `FILE: row N` (Parquet), or
    /// the source itself when no file was read.
    pub location: String,
    pub reason: String,
}

/// Where a row came from: the file and its line (text) or row (Parquet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLocation {
    pub file: String,
    pub position: Position,
}

/// A line of a text file or a row of a Parquet file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Line(usize),
    Row(usize),
}

impl fmt::Display for RowLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Line(line) => write!(f, "{}:{line}", self.file),
            Position::Row(row) => write!(f, "{}: row {row}", self.file),
        }
    }
}

/// One row of an export, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUser {
    pub openid: String,
    pub unionid: Option<String>,
    /// UTC microseconds.
    pub first_seen: Option<i64>,
}

/// Reads one export file's bytes as the import does: its rows, or where and
/// why it is refused (`"FILE:LINE: reason"`). The entry point of the import
/// readers' fuzz target.
pub fn read_export(
    format: Format,
    file: &str,
    bytes: bytes::Bytes,
) -> Result<Vec<AppUser>, String> {
    formats::parse(format, file, bytes)
        .map(|rows| rows.into_iter().map(|(user, _)| user).collect())
        .map_err(|formats::FormatError(at, why)| format!("{at}: {why}"))
}

/// Imports the users of one account from its export at `source`.
pub async fn snapshot(account_id: &str, source: &OutputLocation) -> Result<RawTable, ImportError> {
    let fail = |location: String, reason: String| ImportError {
        account_id: account_id.to_string(),
        location,
        reason,
    };
    let files = source::list(source)
        .await
        .map_err(|reason| fail(source.to_string(), reason))?;
    let mut users = Members::default();
    for file in &files.files {
        let format = Format::of(&file.name).ok_or_else(|| {
            fail(
                file.name.clone(),
                "unknown file type: an export file ends in .csv, .ndjson (or .jsonl) or .parquet"
                    .to_string(),
            )
        })?;
        let mut sink = |user: AppUser, location: RowLocation| {
            users
                .add(user, location)
                .map_err(|(at, why)| formats::FormatError(at, why))
        };
        read_file(&files, file, format, &mut sink)
            .await
            .map_err(|formats::FormatError(at, why)| fail(at, why))?;
    }
    tracing::info!(account_id, files = files.files.len(), users = users.index.len(), source = %source, "login export read");
    Ok(RawTable {
        table: layout::APP_USERS,
        member_col: "openid",
        joined_col: "first_seen",
        frame: app_users_frame(&users.into_sorted()),
        unlicensed_staff_left_out: 0,
        id_links: None,
        group_members: None,
    })
}

/// Streams one file's rows into `sink`: text as its bytes arrive, Parquet a
/// slice of rows at a time from a private local copy. Memory holds a block
/// or a slice, never the file.
async fn read_file(
    files: &source::SourceFiles,
    file: &source::SourceFile,
    format: Format,
    sink: &mut formats::Sink<'_>,
) -> Result<(), formats::FormatError> {
    let cannot_read = |err: String| formats::FormatError(file.name.clone(), err);
    if format == Format::Parquet {
        let copy = files.local_copy(file).await.map_err(cannot_read)?;
        copy.check()
            .map_err(|err| cannot_read(formats::not_parquet(err)))?;
        let rows = copy
            .rows()
            .map_err(|err| cannot_read(formats::not_parquet(err)))?;
        let mut offset = 0;
        // A file without rows is still read once, for its columns.
        loop {
            let len = formats::PARQUET_SLICE_ROWS.min(rows - offset);
            let frame = copy
                .read_slice(offset, len, None)
                .map_err(|err| cannot_read(formats::not_parquet(err)))?;
            formats::parquet_rows(&file.name, &frame, offset, sink)?;
            offset += len;
            if offset >= rows {
                return Ok(());
            }
        }
    }
    let mut reader = formats::TextReader::new(format, &file.name);
    let mut stream = files.stream(file).await.map_err(cannot_read)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| cannot_read(format!("cannot read the file: {err}")))?;
        reader.feed(&chunk, sink)?;
    }
    reader.finish(sink)
}

/// The users read so far, one per OpenID: memory grows with the distinct
/// users, not with the rows (a login log lists a user many times).
#[derive(Default)]
struct Members {
    index: HashMap<String, Member>,
    /// The files read, for the conflict message (a row keeps an index).
    files: Vec<String>,
}

struct Member {
    unionid: Option<String>,
    first_seen: Option<i64>,
    /// Where the UnionID was given: (file index, line or row).
    unionid_from: Option<(u32, Position)>,
}

impl Members {
    fn add(&mut self, user: AppUser, location: RowLocation) -> Result<(), (String, String)> {
        if self.files.last() != Some(&location.file) {
            self.files.push(location.file.clone());
        }
        let file = (self.files.len() - 1) as u32;
        let Some(known) = self.index.get_mut(&user.openid) else {
            let unionid_from = user.unionid.is_some().then_some((file, location.position));
            self.index.insert(
                user.openid,
                Member {
                    unionid: user.unionid,
                    first_seen: user.first_seen,
                    unionid_from,
                },
            );
            return Ok(());
        };
        match (&known.unionid, user.unionid) {
            (Some(a), Some(b)) if *a != b => {
                let first = known
                    .unionid_from
                    .map_or_else(String::new, |(file, position)| {
                        let at = RowLocation {
                            file: self.files[file as usize].clone(),
                            position,
                        };
                        format!(" and at {at}")
                    });
                return Err((
                    location.to_string(),
                    format!("this openid has another unionid here than{first}: an OpenID's UnionID never changes, so the export mixes up two users (or two Open Platform accounts)"),
                ));
            }
            (None, Some(b)) => {
                known.unionid = Some(b);
                known.unionid_from = Some((file, location.position));
            }
            _ => {}
        }
        known.first_seen = match (known.first_seen, user.first_seen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    fn into_sorted(self) -> Vec<AppUser> {
        let mut rows: Vec<AppUser> = self
            .index
            .into_iter()
            .map(|(openid, member)| AppUser {
                openid,
                unionid: member.unionid,
                first_seen: member.first_seen,
            })
            .collect();
        rows.sort_by(|a, b| a.openid.cmp(&b.openid));
        rows
    }
}

/// The `app_users` table (SPEC §4): openid, unionid?, first_seen?.
pub fn app_users_frame(users: &[AppUser]) -> DataFrame {
    let n = users.len();
    let first_seen: Int64Chunked = users.iter().map(|u| u.first_seen).collect();
    let columns = vec![
        Column::new(
            "openid".into(),
            users.iter().map(|u| u.openid.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "unionid".into(),
            users
                .iter()
                .map(|u| u.unionid.as_deref())
                .collect::<Vec<_>>(),
        ),
        first_seen
            .with_name("first_seen".into())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column(),
    ];
    DataFrame::new(n, columns).expect("columns of equal length")
}

#[cfg(test)]
mod tests;
