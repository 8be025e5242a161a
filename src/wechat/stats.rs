//! Counters of what one account's client did on the wire: HTTP exchanges by
//! (endpoint, outcome), retries, tokens fetched.
//!
//! The pipeline logs them per account ("brand_oa: 3 × user/get, 150 ×
//! user/info/batchget, 7 retries"), the benchmark compares them with the
//! minimum number of calls, and they become Prometheus metrics. Outcomes are
//! "ok", an errcode ("45009"), "http_502", "timeout", "connect", "transport",
//! "body", "decode" or "unexpected_body"; never a URL.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Outcome recorded for a successful exchange.
pub const OUTCOME_OK: &str = "ok";

/// Live counters, shared by every clone of one account's client.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: Mutex<BTreeMap<(String, String), u64>>,
    retries: AtomicU64,
    tokens_fetched: AtomicU64,
}

impl CallStats {
    /// Counts one HTTP exchange with `endpoint` ("/cgi-bin/user/get").
    pub fn record(&self, endpoint: &str, outcome: &str) {
        // A poisoned lock only means another thread panicked mid-increment:
        // the map is still a valid map, keep counting.
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        *calls
            .entry((endpoint.to_string(), outcome.to_string()))
            .or_insert(0) += 1;
    }

    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_token_fetched(&self) {
        self.tokens_fetched.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_endpoint: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((endpoint, outcome), count) in calls.iter() {
            by_endpoint
                .entry(endpoint.clone())
                .or_default()
                .insert(outcome.clone(), *count);
        }
        StatsSnapshot {
            calls: by_endpoint,
            retries: self.retries.load(Ordering::Relaxed),
            tokens_fetched: self.tokens_fetched.load(Ordering::Relaxed),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// endpoint → outcome → HTTP exchanges.
    pub calls: BTreeMap<String, BTreeMap<String, u64>>,
    /// Attempts repeated after a transient failure, a 45011 or a stale token.
    pub retries: u64,
    /// Access tokens fetched (each one costs token quota).
    pub tokens_fetched: u64,
}

impl StatsSnapshot {
    /// HTTP exchanges with `endpoint`, whatever their outcome.
    pub fn calls_to(&self, endpoint: &str) -> u64 {
        self.calls
            .get(endpoint)
            .map(|outcomes| outcomes.values().sum())
            .unwrap_or(0)
    }

    /// HTTP exchanges with `endpoint` that ended in `outcome`.
    pub fn count(&self, endpoint: &str, outcome: &str) -> u64 {
        self.calls
            .get(endpoint)
            .and_then(|outcomes| outcomes.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// All HTTP exchanges.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().flat_map(|o| o.values()).sum()
    }

    /// Flat `name → value` pairs for metrics export:
    /// `calls{endpoint="/cgi-bin/user/get",outcome="ok"}`, `retries`,
    /// `tokens_fetched`.
    pub fn to_flat_map(&self) -> BTreeMap<String, u64> {
        let mut flat = BTreeMap::new();
        for (endpoint, outcomes) in &self.calls {
            for (outcome, count) in outcomes {
                flat.insert(
                    format!("calls{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}}"),
                    *count,
                );
            }
        }
        flat.insert("retries".to_string(), self.retries);
        flat.insert("tokens_fetched".to_string(), self.tokens_fetched);
        flat
    }
}

/// One line for a log: "3 × user/get, 150 × user/info/batchget (2 × http_502),
/// 1 × stable_token, 2 retries, 1 token".
impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (endpoint, outcomes) in &self.calls {
            let total: u64 = outcomes.values().sum();
            let short = endpoint.strip_prefix("/cgi-bin/").unwrap_or(endpoint);
            let failures: Vec<String> = outcomes
                .iter()
                .filter(|(outcome, _)| outcome.as_str() != OUTCOME_OK)
                .map(|(outcome, count)| format!("{count} × {outcome}"))
                .collect();
            if failures.is_empty() {
                parts.push(format!("{total} × {short}"));
            } else {
                parts.push(format!("{total} × {short} ({})", failures.join(", ")));
            }
        }
        parts.push(plural(self.retries, "retry", "retries"));
        parts.push(plural(self.tokens_fetched, "token", "tokens"));
        f.write_str(&parts.join(", "))
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_calls_by_endpoint_and_outcome() {
        let stats = CallStats::default();
        stats.record("/cgi-bin/user/get", OUTCOME_OK);
        stats.record("/cgi-bin/user/get", "http_502");
        stats.record("/cgi-bin/user/get", OUTCOME_OK);
        stats.record_retry();
        stats.record_token_fetched();
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.calls_to("/cgi-bin/user/get"), 3);
        assert_eq!(snapshot.count("/cgi-bin/user/get", "http_502"), 1);
        assert_eq!(snapshot.total_calls(), 3);
        assert_eq!(
            snapshot.to_string(),
            "3 × user/get (1 × http_502), 1 retry, 1 token"
        );
        assert_eq!(
            snapshot.to_flat_map()["calls{endpoint=\"/cgi-bin/user/get\",outcome=\"ok\"}"],
            2
        );
    }
}
