//! Fault injection: the ways real WeChat calls fail, drawn at random (from a
//! seed) so that clients can be proven to survive them.
//!
//! Every kind here has been seen in production: `-1` "system error" bursts,
//! `45011` per-minute limits, tokens knocked out by another process (`40001`)
//! or expiring early (`42001`), gateway 502 pages, connections reset in the
//! middle of a body, bodies cut short, and HTML error pages served with
//! HTTP 200 by proxies.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One kind of injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum FaultKind {
    /// `{"errcode":-1,"errmsg":"system error"}`.
    Busy,
    /// `45011`: the per-minute frequency limit.
    MinuteLimit,
    /// The presented token is invalidated (as when another process fetched a
    /// new classic token) and the call answers `40001`.
    TokenInvalid,
    /// The presented token is expired early and the call answers `42001`.
    TokenExpired,
    /// HTTP 502 with the gateway's HTML page.
    Http502,
    /// The connection dies in the middle of the body.
    Drop,
    /// HTTP 200 with only the first half of the real JSON body.
    Truncate,
    /// HTTP 200 with an HTML page instead of JSON.
    NonJson,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub fn all() -> Vec<FaultKind> {
        vec![
            FaultKind::Busy,
            FaultKind::MinuteLimit,
            FaultKind::TokenInvalid,
            FaultKind::TokenExpired,
            FaultKind::Http502,
            FaultKind::Drop,
            FaultKind::Truncate,
            FaultKind::NonJson,
        ]
    }

    /// The name used on the command line and in [`super::SimStats::faults`].
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Busy => "busy",
            FaultKind::MinuteLimit => "minute-limit",
            FaultKind::TokenInvalid => "token-invalid",
            FaultKind::TokenExpired => "token-expired",
            FaultKind::Http502 => "http-502",
            FaultKind::Drop => "drop",
            FaultKind::Truncate => "truncate",
            FaultKind::NonJson => "non-json",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault kind name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind {0:?}; expected one of: busy, minute-limit, token-invalid, token-expired, http-502, drop, truncate, non-json")]
pub struct UnknownFaultKind(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        FaultKind::all()
            .into_iter()
            .find(|kind| kind.name() == name.trim())
            .ok_or_else(|| UnknownFaultKind(name.to_string()))
    }
}

impl From<FaultKind> for String {
    fn from(kind: FaultKind) -> String {
        kind.name().to_string()
    }
}

impl TryFrom<String> for FaultKind {
    type Error = UnknownFaultKind;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// Parses a comma-separated list of kind names ("busy,drop").
pub fn parse_fault_kinds(list: &str) -> Result<Vec<FaultKind>, UnknownFaultKind> {
    list.split(',')
        .filter(|name| !name.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// What goes wrong, how often, and how slow every answer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Seeds the draw, so a failing run can be replayed.
    pub seed: u64,
    /// Probability that one request gets a fault, in [0, 1].
    pub rate: f64,
    /// The kinds to draw from, uniformly.
    pub kinds: Vec<FaultKind>,
    /// Added before every response.
    pub latency: Duration,
}

impl Faults {
    /// No faults, no latency.
    pub fn none() -> Faults {
        Faults {
            seed: 0,
            rate: 0.0,
            kinds: FaultKind::all(),
            latency: Duration::ZERO,
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::none()
    }
}

/// The seeded draw of faults, one per request.
#[derive(Debug)]
pub(crate) struct FaultDice {
    rng: StdRng,
    rate: f64,
    kinds: Vec<FaultKind>,
}

impl FaultDice {
    pub(crate) fn new(faults: &Faults) -> FaultDice {
        FaultDice {
            rng: StdRng::seed_from_u64(faults.seed),
            rate: faults.rate,
            kinds: faults.kinds.clone(),
        }
    }

    /// The fault for the next request, if any.
    pub(crate) fn roll(&mut self) -> Option<FaultKind> {
        if self.kinds.is_empty() || self.rate <= 0.0 {
            return None;
        }
        if self.rng.random::<f64>() >= self.rate {
            return None;
        }
        let pick = self.rng.random_range(0..self.kinds.len());
        Some(self.kinds[pick])
    }
}

/// The page a gateway serves when the upstream is down.
pub(crate) const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>stgw</center>\r\n</body>\r\n</html>\r\n";

/// An HTML page served with HTTP 200 (a proxy's or WAF's interstitial).
pub(crate) const NON_JSON_HTML: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>\u{7cfb}\u{7edf}\u{7e41}\u{5fd9}</title></head><body><p>The system is busy, please try again later.</p></body></html>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_kind_names_round_trip() {
        for kind in FaultKind::all() {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        }
        assert!("slow".parse::<FaultKind>().is_err());
        assert_eq!(
            parse_fault_kinds("busy, drop").unwrap(),
            vec![FaultKind::Busy, FaultKind::Drop]
        );
    }

    #[test]
    fn dice_follow_the_rate_and_replay_from_the_seed() {
        let faults = Faults {
            seed: 9,
            rate: 0.25,
            ..Faults::none()
        };
        let draws: Vec<_> = {
            let mut dice = FaultDice::new(&faults);
            (0..4000).map(|_| dice.roll()).collect()
        };
        let hits = draws.iter().filter(|d| d.is_some()).count();
        assert!((800..1200).contains(&hits), "{hits}");
        let mut again = FaultDice::new(&faults);
        assert!(draws.iter().all(|d| *d == again.roll()));
        assert_eq!(FaultDice::new(&Faults::none()).roll(), None);
    }
}
