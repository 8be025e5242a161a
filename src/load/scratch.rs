//! Local scratch space: the spill's buckets and the local copies of stored
//! Parquet files hold OpenIDs and UnionIDs, so they are private to the
//! user running the job (folders 0700, files 0600 on Unix) and named so the
//! next run can find what a killed run left behind.
//!
//! Every name starts with `unionsnap-<pid>-` under the system temp folder
//! (`TMPDIR`). [`sweep_leftovers`] removes the entries whose process is gone
//! (on Linux, no `/proc/<pid>`; elsewhere, older than a day); a process
//! that is still running keeps its own.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const PREFIX: &str = "unionsnap-";
/// Where the process table cannot be read: leftovers older than this go.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A new name `unionsnap-<pid>-<what>-<random><suffix>` under the temp folder.
pub fn path(what: &str, suffix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{PREFIX}{}-{what}-{:016x}{suffix}",
        std::process::id(),
        rand::random::<u64>()
    ))
}

/// Creates `path` as a folder only its owner can open.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Creates (or truncates) `path` as a file only its owner can read.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Removes what killed runs left in the temp folder; returns how many
/// entries went. Errors are ignored: another user's entries, or a race with
/// their owner, are not this run's business.
pub fn sweep_leftovers() -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if pid == std::process::id() || !is_gone(pid, &entry.path()) {
            continue;
        }
        let path = entry.path();
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            "removed local scratch files that killed runs left behind"
        );
    }
    removed
}

/// The pid in `unionsnap-<pid>-…` (also the older `unionsnap-spill-<pid>-…`).
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let rest = rest.strip_prefix("spill-").unwrap_or(rest);
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

fn is_gone(pid: u32, path: &Path) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid.to_string()).exists();
    }
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age > STALE_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_are_read_from_both_name_forms() {
        assert_eq!(owner_pid("unionsnap-123-copy-00ff.parquet"), Some(123));
        assert_eq!(owner_pid("unionsnap-spill-77-00ff"), Some(77));
        assert_eq!(owner_pid("unionsnap-report.html"), None);
        assert_eq!(owner_pid("other-1-2"), None);
    }

    #[cfg(unix)]
    #[test]
    fn scratch_entries_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = path("test", "");
        create_private_dir(&dir).unwrap();
        let file = dir.join("0.parquet");
        create_private_file(&file).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn leftovers_of_dead_processes_are_swept_and_live_ones_kept() {
        // A pid above the kernel's pid_max (4194304 at most) is never alive.
        let dead = std::env::temp_dir().join(format!(
            "{PREFIX}4999999-spill-{:08x}",
            rand::random::<u32>()
        ));
        create_private_dir(&dead).unwrap();
        create_private_file(&dead.join("0.parquet")).unwrap();
        let dead_file = std::env::temp_dir().join(format!(
            "{PREFIX}4999998-copy-{:08x}.parquet",
            rand::random::<u32>()
        ));
        create_private_file(&dead_file).unwrap();
        let mine = path("live", "");
        create_private_dir(&mine).unwrap();
        assert!(sweep_leftovers() >= 2);
        assert!(!dead.exists() && !dead_file.exists());
        assert!(mine.exists(), "this process's own scratch stays");
        std::fs::remove_dir_all(&mine).unwrap();
    }
}
