//! Vacuum: deletes the files of a table that no reader may still need.
//!
//! A file goes when it is in no version a reader can be holding:
//! - removed from the table (a re-run replaced it) longer ago than the
//!   retention period (by its `remove` action's deletion time), or
//! - never committed at all (a failed or killed run's file, a local
//!   writer's `name#N` staging file) and older than the retention period.
//!
//! Never deleted: the files of the latest version, the files any snapshot
//! marker names (a marker may name a version older than the latest after a
//! run was killed between its table commits and its marker), and the files
//! `keep` names (partitions landed by a run and not yet committed, which a
//! resumed run or `merge` will commit). delta-rs' own vacuum has no way to
//! spare those last two sets, hence this one, which uses delta-rs for the
//! log (active files and tombstones) and the store for the listing.
//!
//! A vacuum finds a table's [`unnamed`] files first and checks them against
//! `keep` after ([`delete`]), so that only the markers of the dates of
//! those it may delete need reading: none on most days, instead of one a
//! date of history. It may go through some dates' partitions only (the
//! dates runs wrote since a vacuum last found them clean:
//! [`crate::load::vacuum`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use object_store::path::Path;
use object_store::ObjectMeta;

use super::{DeltaTableState, Table};
use crate::job::OutputLocation;
use crate::load::store::list_all;
use crate::load::{layout, LoadError, Store};

/// What a vacuum of one table deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vacuumed {
    pub files: u64,
    pub bytes: u64,
}

/// Whether `relative` (inside a table) is hidden from Delta readers and so
/// not a data file: the log, or any folder or file starting with `_` or `.`.
fn is_hidden(relative: &str) -> bool {
    relative
        .split('/')
        .any(|part| part.starts_with('_') || part.starts_with('.'))
}

/// How far a vacuum goes: files removed or written before `cutoff`, but
/// those of run `own_run` (the run the vacuum is part of, writing as it
/// goes, whatever their age), under the partitions of `dates` (every date:
/// None).
#[derive(Debug, Clone, Copy)]
pub struct Reach<'a> {
    pub cutoff: SystemTime,
    pub own_run: Option<&'a str>,
    pub dates: Option<&'a BTreeSet<NaiveDate>>,
}

impl Reach<'_> {
    fn own(&self, path: &str) -> bool {
        self.own_run
            .is_some_and(|run_id| layout::written_by(path, run_id))
    }
}

/// A file of a table that no version names.
#[derive(Debug, Clone)]
pub struct Unnamed {
    pub object: ObjectMeta,
    /// Removed from the table, or written and never committed, before the
    /// cutoff: no reader may still need it (but a marker or a landed record
    /// may name it, see [`delete`]).
    pub expired: bool,
}

/// The objects of `table` within `reach` that no version names (see the
/// module doc). `read` is the table's state if it was read already (as a
/// vacuum starts); else it is read here.
pub async fn unnamed(
    store: &Store,
    table: &Table,
    read: Option<DeltaTableState>,
    reach: Reach<'_>,
) -> Result<Vec<Unnamed>, LoadError> {
    let cutoff_ms = DateTime::<Utc>::from(reach.cutoff).timestamp_millis();
    let name = table.name();
    let state = match read {
        Some(state) => Some(state),
        None => table.state(None).await?,
    };
    let mut active = HashSet::new();
    if let Some(state) = &state {
        active.extend((state.log_data().iter()).map(|f| format!("{name}/{}", f.path())));
    }
    let prefixes: Vec<Path> = match reach.dates {
        None => vec![Path::from(name)],
        Some(dates) => (dates.iter())
            .map(|date| Path::from(layout::date_folder(name, *date)))
            .collect(),
    };
    let mut objects = Vec::new();
    for prefix in prefixes {
        objects.extend(list_all(store, &prefix).await?);
    }
    let unnamed: Vec<_> = (objects.into_iter())
        .filter(|object| {
            let path = object.location.as_ref();
            let relative = path.strip_prefix(name).unwrap_or(path);
            !is_hidden(relative.trim_start_matches('/'))
                && !active.contains(path)
                && !reach.own(path)
        })
        .collect();
    if unnamed.is_empty() {
        return Ok(Vec::new());
    }
    // The removal times: the log's `remove` actions are replayed only when
    // some file is in no version (on most days, none is).
    let mut removed_at = HashMap::new();
    if let Some(state) = &state {
        let mut tombstones = state.all_tombstones(table.log.as_ref());
        while let Some(tombstone) = tombstones.next().await {
            let tombstone = tombstone.map_err(|e| table.error(e))?;
            removed_at.insert(
                format!("{name}/{}", tombstone.path()),
                tombstone.deletion_timestamp().unwrap_or(0),
            );
        }
    }
    Ok((unnamed.into_iter())
        .map(|object| {
            let since_ms = match removed_at.get(object.location.as_ref()) {
                Some(deleted) => *deleted,
                None => object.last_modified.timestamp_millis(),
            };
            Unnamed {
                object,
                expired: since_ms < cutoff_ms,
            }
        })
        .collect())
}

/// Deletes the expired `unnamed` files of table `name` but those `keep`
/// names (paths relative to the output root), and in a local folder the
/// staging files within `reach`. Returns what went, and the dates under
/// which a file no version names is left.
pub async fn delete(
    store: &Store,
    output: &OutputLocation,
    name: &str,
    unnamed: Vec<Unnamed>,
    keep: &HashSet<String>,
    reach: Reach<'_>,
) -> Result<(Vacuumed, BTreeSet<NaiveDate>), LoadError> {
    let prefix = Path::from(name);
    let mut done = Vacuumed::default();
    let mut left = BTreeSet::new();
    let mut doomed = Vec::new();
    for Unnamed { object, expired } in unnamed {
        if expired && !keep.contains(object.location.as_ref()) {
            done.files += 1;
            done.bytes += object.size;
            doomed.push(object.location);
        } else {
            left.extend(layout::snapshot_date_of(&object.location));
        }
    }
    let mut deleted =
        store.delete_stream(futures::stream::iter(doomed.into_iter().map(Ok)).boxed());
    while let Some(result) = deleted.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => return Err(LoadError::store(&prefix, source)),
        }
    }
    // A local folder also holds what no listing shows: the `name#N` staging
    // files of writes a killed process left half-done.
    if let OutputLocation::Local(root) = output {
        let folders: Vec<_> = match reach.dates {
            None => vec![root.join(name)],
            Some(dates) => (dates.iter())
                .map(|date| root.join(layout::date_folder(name, *date)))
                .collect(),
        };
        for folder in folders {
            let (files, bytes) = remove_staging(&folder, &reach, &mut left);
            done.files += files;
            done.bytes += bytes;
        }
    }
    Ok((done, left))
}

/// Removes the `name#N` staging files under `dir` last modified before the
/// cutoff, but the own run's; returns how many and their bytes, and adds
/// the dates of those left to `left`. Unreadable entries are left.
fn remove_staging(
    dir: &std::path::Path,
    reach: &Reach<'_>,
    left: &mut BTreeSet<NaiveDate>,
) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if meta.is_dir() {
            if !name.starts_with('_') {
                let (f, b) = remove_staging(&path, reach, left);
                files += f;
                bytes += b;
            }
        } else if name.contains('#') {
            if !reach.own(&name)
                && meta.modified().is_ok_and(|m| m < reach.cutoff)
                && std::fs::remove_file(&path).is_ok()
            {
                files += 1;
                bytes += meta.len();
            } else {
                let parts = path
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy());
                left.extend(layout::date_among(parts));
            }
        }
    }
    (files, bytes)
}
