//! What every check of the job file shares: the [`Context`] (where the file
//! is, how the environment is read) and the checks of numbers and durations.
//! `validate` (the top-level keys), `accounts` and `kinds` all build on it.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{Problem, Source};

/// Everything a check needs besides the value it checks.
pub(super) struct Context<'a> {
    pub src: Source<'a>,
    /// The job file's directory: relative paths in the file are relative to it.
    pub job_dir: PathBuf,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// `value` as a `T`, if `min <= value <= max`; else what to write instead.
pub(super) fn in_range<T: TryFrom<i64>>(
    value: i64,
    key: &str,
    min: i64,
    max: i64,
    meaning: &str,
) -> Result<T, Problem> {
    let problem = || {
        Problem::new(
            format!("`{key}` = {value} is out of range ({meaning}: {min} to {max})"),
            format!("write {key} = N with {min} <= N <= {max}"),
        )
    };
    if !(min..=max).contains(&value) {
        return Err(problem());
    }
    T::try_from(value).map_err(|_| problem())
}

/// A duration as written in the job file (`"20s"`, `"500ms"`, `"2m"`).
pub(super) fn duration(written: &str, key: &str) -> Result<Duration, Problem> {
    humantime::parse_duration(written.trim()).map_err(|err| {
        Problem::new(
            format!("`{key}` is not a duration: {written:?} ({err})"),
            format!(r#"write a duration with its unit, e.g. {key} = "20s", "500ms" or "2m""#),
        )
    })
}
