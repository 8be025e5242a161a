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
//! A vacuum finds a table's [`candidates`] first and checks them against
//! `keep` after ([`delete`]), so that only the markers of the candidates'
//! dates need reading: none on most days, instead of one a date of history.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectMeta;

use super::{DeltaTableState, Table};
use crate::job::OutputLocation;
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

/// The objects of `table` no version a reader can be holding needs (see the
/// module doc): removed, or written and never committed, before `cutoff`.
/// The files of run `own_run` (the run this vacuum is part of, writing as it
/// goes) are spared whatever their age; markers and landed partitions are
/// [`delete`]'s to spare. `read` is the table's state if it was read already
/// (as a vacuum starts); else it is read here.
pub async fn candidates(
    store: &Store,
    table: &Table,
    cutoff: SystemTime,
    own_run: Option<&str>,
    read: Option<DeltaTableState>,
) -> Result<Vec<ObjectMeta>, LoadError> {
    let cutoff_ms = DateTime::<Utc>::from(cutoff).timestamp_millis();
    let name = table.name();
    let state = match read {
        Some(state) => Some(state),
        None => table.state(None).await?,
    };
    let mut active = HashSet::new();
    if let Some(state) = &state {
        active.extend((state.log_data().iter()).map(|f| format!("{name}/{}", f.path())));
    }
    let own = |path: &str| own_run.is_some_and(|run_id| layout::written_by(path, run_id));
    let prefix = Path::from(name);
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|source| LoadError::store(&prefix, source))?;
    let unnamed: Vec<_> = (objects.into_iter())
        .filter(|object| {
            let path = object.location.as_ref();
            let relative = path.strip_prefix(name).unwrap_or(path);
            !is_hidden(relative.trim_start_matches('/')) && !active.contains(path) && !own(path)
        })
        .collect();
    if unnamed.is_empty() {
        return Ok(unnamed);
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
    let mut doomed = Vec::new();
    for object in unnamed {
        let since_ms = match removed_at.get(object.location.as_ref()) {
            Some(deleted) => *deleted,
            None => object.last_modified.timestamp_millis(),
        };
        if since_ms < cutoff_ms {
            doomed.push(object);
        }
    }
    Ok(doomed)
}

/// Deletes the `candidates` of table `name` but those `keep` names (paths
/// relative to the output root), and in a local folder the staging files
/// written before `cutoff` but by run `own_run`; returns what went.
pub async fn delete(
    store: &Store,
    output: &OutputLocation,
    name: &str,
    candidates: Vec<ObjectMeta>,
    keep: &HashSet<String>,
    cutoff: SystemTime,
    own_run: Option<&str>,
) -> Result<Vacuumed, LoadError> {
    let own = |path: &str| own_run.is_some_and(|run_id| layout::written_by(path, run_id));
    let prefix = Path::from(name);
    let mut done = Vacuumed::default();
    let mut doomed = Vec::new();
    for object in candidates {
        if !keep.contains(object.location.as_ref()) {
            done.files += 1;
            done.bytes += object.size;
            doomed.push(object.location);
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
        let (files, bytes) = remove_staging(&root.join(name), cutoff, &own);
        done.files += files;
        done.bytes += bytes;
    }
    Ok(done)
}

/// Removes the `name#N` staging files under `dir` last modified before
/// `cutoff`, but those `own` names; returns how many and their bytes. Unreadable entries are left.
fn remove_staging(
    dir: &std::path::Path,
    cutoff: SystemTime,
    own: &dyn Fn(&str) -> bool,
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
                let (f, b) = remove_staging(&path, cutoff, own);
                files += f;
                bytes += b;
            }
        } else if name.contains('#')
            && !own(&name)
            && meta.modified().is_ok_and(|m| m < cutoff)
            && std::fs::remove_file(&path).is_ok()
        {
            files += 1;
            bytes += meta.len();
        }
    }
    (files, bytes)
}
