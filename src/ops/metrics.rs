//! Prometheus metrics of a job's runs: `--metrics-file` (for node_exporter's
//! textfile collector or a sidecar) and `--pushgateway` (for CronJobs, whose
//! pods are gone before anyone scrapes them).
//!
//! The text is Prometheus exposition format 0.0.4, encoded by the `prometheus`
//! crate (the format the Pushgateway and the textfile collector parse).
//! Counters count since the process started: one run for `unionsnap run`, every
//! run for `unionsnap serve` (whose API clients, and so their counters, live as
//! long as the process). Gauges describe the last run. Every series carries
//! `unionsnap_job` (the job's name) and, for a sharded run, `shard` (its index).
//!
//! `unionsnap_last_success_timestamp_seconds` appears only once a run has
//! succeeded; pushes after a failed run use POST, which replaces only the
//! metrics pushed, so the Pushgateway keeps the time of the last success.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use prometheus::{Encoder, Gauge, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::extract::oa_counts::Reconciled;
use crate::pipeline::{AccountOutcome, INTERRUPTED};

use super::{RunEnd, RunOutcome};
use crate::shard::Shard;
use crate::transform::ALL_ACCOUNTS;
use crate::wechat::StatsSnapshot;

/// Prefix of every metric name.
pub const NAMESPACE: &str = "unionsnap";
/// The measures of the audience `*` row exported as `unionsnap_people{measure=...}`.
pub const PEOPLE_MEASURES: [&str; 6] = [
    "members",
    "resolved",
    "unresolved",
    "resolved_people",
    "unique_people",
    "duplicate_memberships",
];

/// A failure to encode or write the metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot encode the metrics: {0}")]
    Encode(#[from] prometheus::Error),
    #[error("cannot write the metrics file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot push the metrics to the Pushgateway: {0}")]
    Push(String),
    #[error("cannot read the audience table: {0}")]
    Audience(#[from] PolarsError),
}

/// The metrics of a job's runs so far.
#[derive(Debug, Clone)]
pub struct Metrics {
    job: String,
    shard: Option<Shard>,
    runs: BTreeMap<RunOutcome, u64>,
    rows_written: BTreeMap<String, u64>,
    bytes_written: BTreeMap<String, u64>,
    last_run: Option<LastRun>,
    last_success: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct LastRun {
    duration: Duration,
    finished_at: DateTime<Utc>,
    accounts: BTreeMap<&'static str, i64>,
    members: BTreeMap<String, i64>,
    people: BTreeMap<&'static str, i64>,
    reconciliation: BTreeMap<String, Reconciled>,
}

impl Metrics {
    pub fn new(job: &str, shard: Option<Shard>) -> Metrics {
        Metrics {
            job: job.to_string(),
            shard,
            runs: BTreeMap::new(),
            rows_written: BTreeMap::new(),
            bytes_written: BTreeMap::new(),
            last_run: None,
            last_success: None,
        }
    }

    /// True once a run has succeeded.
    pub fn has_succeeded(&self) -> bool {
        self.last_success.is_some()
    }

    /// Adds one finished run.
    pub fn record(&mut self, run: &RunEnd) -> Result<(), MetricsError> {
        *self.runs.entry(run.outcome).or_default() += 1;
        let summary = run.summary.as_ref();
        for file in summary.map_or(&[][..], |s| s.files.as_slice()) {
            *self.rows_written.entry(file.table.clone()).or_default() += file.rows;
            *self.bytes_written.entry(file.table.clone()).or_default() += file.bytes;
        }
        let mut accounts = BTreeMap::new();
        let mut members = BTreeMap::new();
        for outcome in summary.map_or(&[][..], |s| s.accounts.as_slice()) {
            let kind = match outcome {
                AccountOutcome::Snapshotted {
                    account_id,
                    members: n,
                } => {
                    members.insert(account_id.clone(), *n);
                    "snapshotted"
                }
                AccountOutcome::Failed { quota: true, .. } => "quota",
                AccountOutcome::Failed { error, .. } if error == INTERRUPTED => "interrupted",
                AccountOutcome::Failed { .. } => "failed",
            };
            *accounts.entry(kind).or_default() += 1;
        }
        let people = match summary.and_then(|s| s.audience.as_ref()) {
            Some(audience) => star_row(audience)?,
            None => BTreeMap::new(),
        };
        self.last_run = Some(LastRun {
            duration: run.duration,
            finished_at: run.finished_at,
            accounts,
            members,
            people,
            reconciliation: summary
                .map_or(&[][..], |s| s.reconciliation.as_slice())
                .iter()
                .cloned()
                .collect(),
        });
        if run.outcome.is_success() {
            self.last_success = Some(run.finished_at);
        }
        Ok(())
    }

    /// The Prometheus text, with the API counters of `api` (account id →
    /// that account's client counters).
    pub fn render(&self, api: &BTreeMap<String, StatsSnapshot>) -> Result<String, MetricsError> {
        let mut labels = HashMap::from([("unionsnap_job".to_string(), self.job.clone())]);
        if let Some(shard) = self.shard {
            labels.insert("shard".to_string(), shard.index.to_string());
        }
        let registry = Registry::new_custom(Some(NAMESPACE.to_string()), Some(labels))?;

        let calls = counter_vec(
            &registry,
            "api_calls_total",
            "HTTP exchanges with WeChat, by account, endpoint and outcome (ok, an errcode, http_502, timeout, ...).",
            &["account_id", "endpoint", "outcome"],
        )?;
        let retries = counter_vec(
            &registry,
            "api_retries_total",
            "API calls repeated after a transient failure, a 45011 or a stale token.",
            &["account_id"],
        )?;
        let tokens = counter_vec(
            &registry,
            "api_tokens_fetched_total",
            "Access tokens fetched (each costs token quota; warm tokens are reused).",
            &["account_id"],
        )?;
        for (account_id, stats) in api {
            for (endpoint, outcomes) in &stats.calls {
                for (outcome, count) in outcomes {
                    calls
                        .with_label_values(&[
                            account_id.as_str(),
                            endpoint.as_str(),
                            outcome.as_str(),
                        ])
                        .inc_by(*count);
                }
            }
            retries
                .with_label_values(&[account_id.as_str()])
                .inc_by(stats.retries);
            tokens
                .with_label_values(&[account_id.as_str()])
                .inc_by(stats.tokens_fetched);
        }

        let runs = counter_vec(
            &registry,
            "runs_total",
            "Runs by outcome: complete, landed (a shard), partial, interrupted, failed.",
            &["outcome"],
        )?;
        for (outcome, count) in &self.runs {
            runs.with_label_values(&[outcome.as_str()]).inc_by(*count);
        }
        let rows = counter_vec(
            &registry,
            "rows_written_total",
            "Rows written to the warehouse, by table.",
            &["table"],
        )?;
        for (table, count) in &self.rows_written {
            rows.with_label_values(&[table.as_str()]).inc_by(*count);
        }
        let bytes = counter_vec(
            &registry,
            "bytes_written_total",
            "Parquet bytes written to the warehouse, by table.",
            &["table"],
        )?;
        for (table, count) in &self.bytes_written {
            bytes.with_label_values(&[table.as_str()]).inc_by(*count);
        }

        if let Some(last) = &self.last_run {
            gauge(
                &registry,
                "last_run_duration_seconds",
                "Wall time of the last run.",
            )?
            .set(last.duration.as_secs_f64());
            gauge(
                &registry,
                "last_run_timestamp_seconds",
                "When the last run finished (Unix time).",
            )?
            .set(unix_seconds(last.finished_at));
            let accounts = gauge_vec(
                &registry,
                "last_run_accounts",
                "Accounts of the last run by outcome: snapshotted, failed, quota, interrupted.",
                &["outcome"],
            )?;
            for (outcome, count) in &last.accounts {
                accounts.with_label_values(&[*outcome]).set(*count);
            }
            let members = gauge_vec(
                &registry,
                "account_members",
                "Members of each account snapshotted by the last run.",
                &["account_id"],
            )?;
            for (account_id, count) in &last.members {
                members
                    .with_label_values(&[account_id.as_str()])
                    .set(*count);
            }
            let people = gauge_vec(
                &registry,
                "people",
                "The audience `*` row of the last committed snapshot: members, resolved, unresolved, resolved_people, unique_people, duplicate_memberships.",
                &["measure"],
            )?;
            for (measure, count) in &last.people {
                people.with_label_values(&[*measure]).set(*count);
            }
            render_reconciliation(&registry, &last.reconciliation)?;
        }
        if let Some(at) = self.last_success {
            gauge(
                &registry,
                "last_success_timestamp_seconds",
                "When the last successful run finished (Unix time); absent until one has.",
            )?
            .set(unix_seconds(at));
        }

        let mut buffer = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }

    /// The Pushgateway URL of this job's group:
    /// `BASE/metrics/job/unionsnap/unionsnap_job/NAME[/shard/I]`.
    pub fn push_url(&self, base: &url::Url) -> url::Url {
        let mut url = base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(["metrics", "job", NAMESPACE, "unionsnap_job", &self.job]);
            if let Some(shard) = self.shard {
                segments.extend(["shard", &shard.index.to_string()]);
            }
        }
        url
    }
}

/// `reconciliation_*`: per Official Account the last run crawled, our
/// members of the day before beside WeChat's `cumulate_user` of it.
fn render_reconciliation(
    registry: &Registry,
    reconciliation: &BTreeMap<String, Reconciled>,
) -> Result<(), MetricsError> {
    let difference = gauge_vec(
        registry,
        "reconciliation_difference",
        "Our members of the day before the snapshot minus WeChat's cumulate_user of that day, per Official Account (absent when either is unknown).",
        &["account_id"],
    )?;
    let exceeded = gauge_vec(
        registry,
        "reconciliation_out_of_tolerance",
        "1 when the reconciliation difference exceeds the job's [reconciliation] tolerance (a warning in the log), else 0.",
        &["account_id"],
    )?;
    let unavailable = gauge_vec(
        registry,
        "reconciliation_unavailable",
        "1 when WeChat's datacube figures could not be had (wechat_error in the reconciliation table, e.g. 48001 for an unverified account), else 0.",
        &["account_id"],
    )?;
    for (account_id, reconciled) in reconciliation {
        let labels = [account_id.as_str()];
        if let Some(n) = reconciled.difference {
            difference.with_label_values(&labels).set(n);
        }
        if let Some(within) = reconciled.within_tolerance {
            exceeded.with_label_values(&labels).set(i64::from(!within));
        }
        unavailable
            .with_label_values(&labels)
            .set(i64::from(reconciled.wechat_error.is_some()));
    }
    Ok(())
}

/// Writes `text` to `path` whole: a temporary file next to it, then a rename,
/// so a collector never reads half a file.
pub fn write_file(path: &Path, text: &str) -> Result<(), MetricsError> {
    let err = |source| MetricsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, text).map_err(err)?;
    std::fs::rename(&temp, path).map_err(err)
}

/// Pushes `text` to the Pushgateway group of `metrics`: PUT (replace the
/// group) after a success, POST (replace only these metrics, keeping the last
/// success time) otherwise.
pub async fn push(
    metrics: &Metrics,
    base: &url::Url,
    text: String,
    success: bool,
) -> Result<(), MetricsError> {
    let url = metrics.push_url(base);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| MetricsError::Push(err.without_url().to_string()))?;
    let request = if success {
        client.put(url)
    } else {
        client.post(url)
    };
    let response = request
        .header(
            reqwest::header::CONTENT_TYPE,
            TextEncoder::new().format_type(),
        )
        .body(text)
        .send()
        .await
        .map_err(|err| MetricsError::Push(err.without_url().to_string()))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(MetricsError::Push(format!(
            "HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        )));
    }
    Ok(())
}

/// The measures of the audience `*` row.
fn star_row(audience: &DataFrame) -> PolarsResult<BTreeMap<&'static str, i64>> {
    let star = audience
        .clone()
        .lazy()
        .filter(col("account_id").eq(lit(ALL_ACCOUNTS)))
        .collect()?;
    let mut row = BTreeMap::new();
    if star.height() == 0 {
        return Ok(row);
    }
    for measure in PEOPLE_MEASURES {
        let column = star.column(measure)?.cast(&DataType::Int64)?;
        if let Some(value) = column.i64()?.get(0) {
            row.insert(measure, value);
        }
    }
    Ok(row)
}

fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1e6
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let vec = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<Gauge, prometheus::Error> {
    let gauge = Gauge::with_opts(Opts::new(name, help))?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::load::ManifestFile;
    use crate::pipeline::RunSummary;

    fn report(outcome: RunOutcome, files: &[ManifestFile], accounts: &[AccountOutcome]) -> RunEnd {
        RunEnd {
            exit_code: 0,
            outcome,
            summary: Some(RunSummary {
                accounts: accounts.to_vec(),
                manifest: None,
                audience: None,
                files: files.to_vec(),
                reconciliation: Vec::new(),
                interrupted: false,
            }),
            error: None,
            duration: Duration::from_millis(1500),
            finished_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn the_last_success_timestamp_appears_only_after_a_success() {
        let mut metrics = Metrics::new("acme", None);
        metrics
            .record(&report(RunOutcome::Partial, &[], &[]))
            .unwrap();
        let text = metrics.render(&BTreeMap::new()).unwrap();
        assert!(!text.contains("unionsnap_last_success_timestamp_seconds"));
        assert!(text.contains("unionsnap_runs_total{outcome=\"partial\",unionsnap_job=\"acme\"} 1"));
        metrics
            .record(&report(RunOutcome::Complete, &[], &[]))
            .unwrap();
        let text = metrics.render(&BTreeMap::new()).unwrap();
        assert!(text.contains(
            "unionsnap_last_success_timestamp_seconds{unionsnap_job=\"acme\"} 1800000000"
        ));
    }

    #[test]
    fn rows_and_bytes_add_up_across_runs_by_table() {
        let files = [ManifestFile {
            table: "followers".into(),
            path: "followers/x".into(),
            rows: 10,
            bytes: 400,
            facts: None,
        }];
        let mut metrics = Metrics::new("acme", None);
        for _ in 0..2 {
            metrics
                .record(&report(RunOutcome::Complete, &files, &[]))
                .unwrap();
        }
        let text = metrics.render(&BTreeMap::new()).unwrap();
        assert!(text.contains(
            "unionsnap_rows_written_total{table=\"followers\",unionsnap_job=\"acme\"} 20"
        ));
        assert!(text.contains(
            "unionsnap_bytes_written_total{table=\"followers\",unionsnap_job=\"acme\"} 800"
        ));
    }

    #[test]
    fn the_push_url_names_the_job_and_the_shard() {
        let mut metrics = Metrics::new("acme", Some(Shard { index: 2, count: 4 }));
        let base = url::Url::parse("http://127.0.0.1:9091/").unwrap();
        assert_eq!(
            metrics.push_url(&base).as_str(),
            "http://127.0.0.1:9091/metrics/job/unionsnap/unionsnap_job/acme/shard/2"
        );
        metrics.shard = None;
        let base = url::Url::parse("http://gw:9091/prefix").unwrap();
        assert_eq!(
            metrics.push_url(&base).as_str(),
            "http://gw:9091/prefix/metrics/job/unionsnap/unionsnap_job/acme"
        );
    }
}
