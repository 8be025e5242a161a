//! `[reconciliation]`, whole: how far our follower count of an Official
//! Account may stray from WeChat's own (`datacube/getusercumulate`) before a
//! run warns, as written ([`RawReconciliation`]), checked, and shown by
//! `validate`.
//!
//! WeChat counts a day's followers at its end; our snapshot of that day was
//! taken when the job ran that day, so the day's later follows and unfollows
//! make a small difference normal. `tolerance` is either
//! a number of followers (`tolerance = 50`) or a share of WeChat's count
//! (`tolerance = "0.5%"`).

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::error::{JobError, Problem, Source};

/// The tolerance when the job sets none: 1% of WeChat's count.
pub const DEFAULT_TOLERANCE: Tolerance = Tolerance::Percent(1.0);

/// `[reconciliation]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconciliation {
    pub tolerance: Option<Spanned<RawTolerance>>,
}

/// `50` or `"0.5%"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawTolerance {
    Followers(i64),
    Text(String),
}

/// How far our count may stray from WeChat's without a warning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// An absolute number of followers.
    Followers(u64),
    /// A share of WeChat's count, in percent (0 to 100).
    Percent(f64),
}

impl Default for Tolerance {
    fn default() -> Self {
        DEFAULT_TOLERANCE
    }
}

impl Tolerance {
    /// Whether `difference` (ours − WeChat's) is more than tolerated for
    /// WeChat's count `wechat`.
    pub fn exceeded_by(self, difference: i64, wechat: i64) -> bool {
        let difference = difference.unsigned_abs() as f64;
        match self {
            Tolerance::Followers(n) => difference > n as f64,
            Tolerance::Percent(p) => difference > wechat.max(0) as f64 * p / 100.0,
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Followers(n) => write!(f, "{n} followers"),
            Tolerance::Percent(p) => write!(f, "{p}% of WeChat's count"),
        }
    }
}

pub(super) fn reconciliation(
    raw: &RawReconciliation,
    src: &Source<'_>,
) -> Result<Tolerance, JobError> {
    let Some(written) = &raw.tolerance else {
        return Ok(DEFAULT_TOLERANCE);
    };
    tolerance(written.get_ref()).map_err(|p| src.at(written.span(), p))
}

fn tolerance(written: &RawTolerance) -> Result<Tolerance, Problem> {
    let help = r#"write a number of followers (tolerance = 50) or a share of WeChat's count (tolerance = "0.5%")"#;
    match written {
        RawTolerance::Followers(n) => u64::try_from(*n)
            .map(Tolerance::Followers)
            .map_err(|_| Problem::new(format!("`tolerance` is negative: {n}"), help)),
        RawTolerance::Text(text) => {
            let percent = text
                .trim()
                .strip_suffix('%')
                .and_then(|number| number.trim().parse::<f64>().ok())
                .filter(|p| p.is_finite() && (0.0..=100.0).contains(p));
            percent.map(Tolerance::Percent).ok_or_else(|| {
                Problem::new(
                    format!("`tolerance` is not a share between 0% and 100%: {text:?}"),
                    help,
                )
            })
        }
    }
}

/// The `reconciliation:` line of `validate`'s summary.
pub fn summary(tolerance: Tolerance) -> String {
    format!("  reconciliation: our members of a day against WeChat's cumulate_user; warn beyond {tolerance}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_followers_or_a_share() {
        assert_eq!(
            tolerance(&RawTolerance::Followers(50)).unwrap(),
            Tolerance::Followers(50)
        );
        assert_eq!(
            tolerance(&RawTolerance::Text(" 0.5 %".into())).unwrap(),
            Tolerance::Percent(0.5)
        );
        for bad in ["5", "-1%", "101%", "NaN%", "x%"] {
            assert!(tolerance(&RawTolerance::Text(bad.into())).is_err(), "{bad}");
        }
        assert!(tolerance(&RawTolerance::Followers(-1)).is_err());
    }

    #[test]
    fn exceeded_compares_the_size_of_the_difference() {
        assert!(!Tolerance::Followers(5).exceeded_by(-5, 1000));
        assert!(Tolerance::Followers(5).exceeded_by(-6, 1000));
        assert!(!Tolerance::Percent(1.0).exceeded_by(10, 1000));
        assert!(Tolerance::Percent(1.0).exceeded_by(11, 1000));
        assert!(Tolerance::Percent(0.0).exceeded_by(1, 1000));
        assert!(!Tolerance::Percent(0.0).exceeded_by(0, 1000));
    }
}
