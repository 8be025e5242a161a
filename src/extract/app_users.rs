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
pub fn read_export(format: Format, file: &str, bytes: bytes::Bytes) -> Result<Vec<AppUser>, String> {
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
        let bytes = files
            .read(file)
            .await
            .map_err(|reason| fail(file.name.clone(), reason))?;
        let rows = formats::parse(format, &file.name, bytes).map_err(|e| fail(e.0, e.1))?;
        for (user, location) in rows {
            users
                .add(user, location)
                .map_err(|(location, reason)| fail(location, reason))?;
        }
    }
    tracing::info!(account_id, files = files.files.len(), users = users.rows.len(), source = %source, "login export read");
    Ok(RawTable {
        table: layout::APP_USERS,
        member_col: "openid",
        joined_col: "first_seen",
        frame: app_users_frame(&users.into_sorted()),
    })
}

/// The users read so far, one per OpenID.
#[derive(Default)]
struct Members {
    rows: Vec<AppUser>,
    /// OpenID → index in `rows` and where it was first seen.
    index: HashMap<String, (usize, RowLocation)>,
    /// Where each row got its UnionID, for the conflict message.
    unionid_from: HashMap<usize, RowLocation>,
}

impl Members {
    fn add(&mut self, user: AppUser, location: RowLocation) -> Result<(), (String, String)> {
        let Some((i, _)) = self.index.get(&user.openid) else {
            let i = self.rows.len();
            if user.unionid.is_some() {
                self.unionid_from.insert(i, location.clone());
            }
            self.index.insert(user.openid.clone(), (i, location));
            self.rows.push(user);
            return Ok(());
        };
        let i = *i;
        let known = &mut self.rows[i];
        match (&known.unionid, user.unionid) {
            (Some(a), Some(b)) if *a != b => {
                let first = self
                    .unionid_from
                    .get(&i)
                    .map_or_else(String::new, |l| format!(" and at {l}"));
                return Err((
                    location.to_string(),
                    format!("this openid has another unionid here than{first}: an OpenID's UnionID never changes, so the export mixes up two users (or two Open Platform accounts)"),
                ));
            }
            (None, Some(b)) => {
                known.unionid = Some(b);
                self.unionid_from.insert(i, location);
            }
            _ => {}
        }
        known.first_seen = match (known.first_seen, user.first_seen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    fn into_sorted(mut self) -> Vec<AppUser> {
        self.rows.sort_by(|a, b| a.openid.cmp(&b.openid));
        self.rows
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
