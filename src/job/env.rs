//! The environment knobs (`UNIONSNAP_LEASE_TTL`, `UNIONSNAP_VACUUM_RETENTION`,
//! `UNIONSNAP_STATE_RETENTION`, `UNIONSNAP_GROUP_ROWS`), checked like job keys: a value that does not
//! parse or is out of range stops the command with exit 2 and what to write
//! instead, before anything is read or written; `validate` lists them.
//!
//! They are read once per process ([`EnvSettings::current`]): `main` checks
//! them first ([`EnvSettings::check`]), and the load and derive stages read
//! the same values.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

/// The lease's TTL unless `UNIONSNAP_LEASE_TTL` says otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);
/// How long vacuum keeps replaced files unless `UNIONSNAP_VACUUM_RETENTION` says otherwise.
pub const DEFAULT_VACUUM_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long the crawl state of a date that never commits is kept (it holds
/// raw ids) unless `UNIONSNAP_STATE_RETENTION` says otherwise.
pub const DEFAULT_STATE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Rows per bucket group of the derive unless `UNIONSNAP_GROUP_ROWS` says
/// otherwise. Over the 10M memberships of `make bench`, groups of 250k rows
/// derived in 10.0 s where groups of 1M took 12.0 s (smaller hash tables stay
/// in cache), at the same peak RSS.
pub const DEFAULT_GROUP_ROWS: u64 = 250_000;

const LEASE_TTL: &str = "UNIONSNAP_LEASE_TTL";
const VACUUM_RETENTION: &str = "UNIONSNAP_VACUUM_RETENTION";
const GROUP_ROWS: &str = "UNIONSNAP_GROUP_ROWS";
const STATE_RETENTION: &str = "UNIONSNAP_STATE_RETENTION";

/// The knobs' values, each with whether it came from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSettings {
    pub lease_ttl: Duration,
    pub vacuum_retention: Duration,
    pub state_retention: Duration,
    pub group_rows: u64,
    /// The variables that were set (and valid).
    pub set: Vec<&'static str>,
}

impl Default for EnvSettings {
    fn default() -> Self {
        EnvSettings {
            lease_ttl: DEFAULT_LEASE_TTL,
            vacuum_retention: DEFAULT_VACUUM_RETENTION,
            state_retention: DEFAULT_STATE_RETENTION,
            group_rows: DEFAULT_GROUP_ROWS,
            set: Vec::new(),
        }
    }
}

/// A knob set to a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name} = {value:?}: {problem}\n  help: {help}")]
pub struct EnvError {
    pub name: &'static str,
    pub value: String,
    pub problem: String,
    pub help: String,
}

static CURRENT: OnceLock<EnvSettings> = OnceLock::new();

impl EnvSettings {
    /// Reads the knobs through `get` (the environment, or a map in tests).
    pub fn read(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut settings = EnvSettings::default();
        if let Some(value) = get(LEASE_TTL) {
            settings.lease_ttl = duration(
                LEASE_TTL,
                &value,
                Duration::from_secs(1),
                Duration::from_secs(7 * 24 * 3600),
                "how long a run's lease lives without renewal (renewed every third of it): e.g. 10m",
            )?;
            settings.set.push(LEASE_TTL);
        }
        if let Some(value) = get(VACUUM_RETENTION) {
            settings.vacuum_retention = duration(
                VACUUM_RETENTION,
                &value,
                Duration::ZERO,
                Duration::from_secs(10 * 365 * 24 * 3600),
                "how long vacuum keeps files replaced or orphaned: e.g. 24h (0s deletes them at once)",
            )?;
            settings.set.push(VACUUM_RETENTION);
        }
        if let Some(value) = get(STATE_RETENTION) {
            settings.state_retention = duration(
                STATE_RETENTION,
                &value,
                Duration::from_secs(3600),
                Duration::from_secs(365 * 24 * 3600),
                "how long the crawl state (raw ids) of a date that never commits is kept after its last write: e.g. 7d",
            )?;
            settings.set.push(STATE_RETENTION);
        }
        if let Some(value) = get(GROUP_ROWS) {
            settings.group_rows = match value.trim().parse::<u64>() {
                Ok(rows) if (1..=1_000_000_000).contains(&rows) => rows,
                _ => {
                    return Err(EnvError {
                        name: GROUP_ROWS,
                        value,
                        problem: "not a whole number between 1 and 1000000000".to_string(),
                        help: format!("rows per bucket group of the derive: e.g. {GROUP_ROWS}={DEFAULT_GROUP_ROWS}, or unset it"),
                    })
                }
            };
            settings.set.push(GROUP_ROWS);
        }
        Ok(settings)
    }

    /// Checks the process environment once and keeps the result for
    /// [`EnvSettings::current`]: `main` calls it before any command runs.
    pub fn check() -> Result<&'static EnvSettings, EnvError> {
        if let Some(settings) = CURRENT.get() {
            return Ok(settings);
        }
        let settings = EnvSettings::read(&|name| std::env::var(name).ok())?;
        Ok(CURRENT.get_or_init(|| settings))
    }

    /// The knobs of this process. Where [`EnvSettings::check`] was not
    /// called first (the library used on its own), an invalid value falls
    /// back to the default with a warning.
    pub fn current() -> &'static EnvSettings {
        CURRENT.get_or_init(|| {
            EnvSettings::read(&|name| std::env::var(name).ok()).unwrap_or_else(|error| {
                tracing::warn!(%error, "using the defaults of the environment knobs");
                EnvSettings::default()
            })
        })
    }
}

impl fmt::Display for EnvSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = |name| {
            if self.set.contains(&name) {
                "set"
            } else {
                "default"
            }
        };
        write!(
            f,
            "{LEASE_TTL} {} ({}), {VACUUM_RETENTION} {} ({}), {STATE_RETENTION} {} ({}), {GROUP_ROWS} {} ({})",
            humantime::format_duration(self.lease_ttl),
            origin(LEASE_TTL),
            humantime::format_duration(self.vacuum_retention),
            origin(VACUUM_RETENTION),
            humantime::format_duration(self.state_retention),
            origin(STATE_RETENTION),
            self.group_rows,
            origin(GROUP_ROWS),
        )
    }
}

fn duration(
    name: &'static str,
    value: &str,
    min: Duration,
    max: Duration,
    meaning: &str,
) -> Result<Duration, EnvError> {
    let error = |problem: String| EnvError {
        name,
        value: value.to_string(),
        problem,
        help: format!("{meaning}; or unset it"),
    };
    let parsed = humantime::parse_duration(value.trim())
        .map_err(|err| error(format!("not a duration ({err})")))?;
    if parsed < min || parsed > max {
        return Err(error(format!(
            "out of range ({} to {})",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<EnvSettings, EnvError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvSettings::read(&move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn unset_knobs_are_the_defaults() {
        assert_eq!(read(&[]).unwrap(), EnvSettings::default());
    }

    #[test]
    fn valid_knobs_are_read() {
        let settings = read(&[
            (LEASE_TTL, "2s"),
            (VACUUM_RETENTION, "0s"),
            (GROUP_ROWS, "300"),
        ])
        .unwrap();
        assert_eq!(settings.lease_ttl, Duration::from_secs(2));
        assert_eq!(settings.vacuum_retention, Duration::ZERO);
        assert_eq!(settings.group_rows, 300);
        assert_eq!(settings.set.len(), 3);
    }

    #[test]
    fn absurd_or_malformed_knobs_are_refused_with_help() {
        for (name, value, problem) in [
            (LEASE_TTL, "1000000years", "out of range"),
            (LEASE_TTL, "1ns", "out of range"),
            (LEASE_TTL, "ten minutes", "not a duration"),
            (VACUUM_RETENTION, "-1h", "not a duration"),
            (GROUP_ROWS, "0", "between 1 and"),
            (GROUP_ROWS, "lots", "between 1 and"),
        ] {
            let err = read(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(problem), "{err}");
            assert!(err.to_string().contains("help: "), "{err}");
        }
    }
}
