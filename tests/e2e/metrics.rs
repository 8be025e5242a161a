//! `--metrics-file` and `--pushgateway`: Prometheus text that parses, carries
//! the named metrics with the numbers the simulator and the warehouse agree
//! on, and reaches a (fake, 127.0.0.1) Pushgateway.

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{Method, Uri};

use crate::common::*;
use unionsnap::simulator::{FaultKind, Faults, ALL_ACCOUNTS};

/// WeChat answering `rate` of the calls with -1 (busy), drawn from `seed`.
fn busy(seed: u64, rate: f64) -> Faults {
    Faults {
        seed,
        rate,
        kinds: vec![FaultKind::Busy],
        latency: std::time::Duration::ZERO,
    }
}

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A small parser of the Prometheus text format (0.0.4): `# HELP`/`# TYPE`
/// lines, samples with quoted, escaped label values. Panics on anything else.
/// Returns the samples and the declared type of every family.
fn parse_prometheus(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("a sample name");
        let name = &line[..name_end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end;
            loop {
                let (start, c) = chars.next().expect("unterminated labels");
                if c == '}' {
                    end = start;
                    break;
                }
                if c == ',' {
                    continue;
                }
                let mut key = String::from(c);
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                }
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().expect("unterminated label value").1 {
                        '\\' => match chars.next().unwrap().1 {
                            'n' => value.push('\n'),
                            other => value.push(other),
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
            }
            rest = &body[end + 1..];
        }
        let value: f64 = rest.trim().parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(types.contains_key(name), "{name} has no TYPE line");
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (samples, types)
}

/// The sum of `name`'s samples whose labels include every pair of `matching`.
fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            matching
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_file_parses_and_carries_the_named_metrics() {
    let mut scenario = scenario(
        61,
        3_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.3, false)],
    );
    // Some -1 answers, so errcode outcomes and retries show up.
    scenario.faults = busy(3, 0.15);
    let fixture = Fixture::start(scenario).await;
    let metrics = fixture.dir.path().join("run.prom");
    let before = chrono::Utc::now().timestamp() as f64;
    let out = fixture
        .unionsnap(
            &[
                "run",
                fixture.write_job().to_str().unwrap(),
                "--date",
                DATE,
                "--metrics-file",
                metrics.to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    let after = chrono::Utc::now().timestamp() as f64 + 1.0;
    let (samples, types) = parse_prometheus(&std::fs::read_to_string(&metrics).unwrap());
    let sim = fixture.server.stats();
    let truth = fixture.scenario.truth();

    // Calls by endpoint and outcome: what the simulator served.
    assert_eq!(types["unionsnap_api_calls_total"], "counter");
    for endpoint in ["/cgi-bin/user/get", "/cgi-bin/user/info/batchget"] {
        assert_eq!(
            sum(
                &samples,
                "unionsnap_api_calls_total",
                &[("endpoint", endpoint)]
            ),
            sim.calls_to(endpoint) as f64,
            "{endpoint}"
        );
    }
    let busy = sum(&samples, "unionsnap_api_calls_total", &[("outcome", "-1")]);
    assert!(busy > 0.0);
    assert_eq!(busy, sim.errcode_count(-1) as f64);
    assert!(sum(&samples, "unionsnap_api_retries_total", &[]) >= busy);

    // Rows and bytes written: the followers of every account, the files on disk.
    let members: i64 = truth
        .audience
        .iter()
        .filter(|r| r.account_id != ALL_ACCOUNTS)
        .map(|r| r.members)
        .sum();
    assert_eq!(
        sum(
            &samples,
            "unionsnap_rows_written_total",
            &[("table", "followers")]
        ),
        members as f64
    );
    let bytes_on_disk: u64 = files_under(&fixture.output_dir())
        .iter()
        .filter(|f| {
            f.starts_with("followers/") && f.ends_with(".parquet") && !f.contains("/_delta_log/")
        })
        .map(|f| {
            std::fs::metadata(fixture.output_dir().join(f))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        sum(
            &samples,
            "unionsnap_bytes_written_total",
            &[("table", "followers")]
        ),
        bytes_on_disk as f64
    );

    // People counts from the audience `*` row.
    let star = truth.row(ALL_ACCOUNTS).unwrap();
    assert_eq!(
        sum(
            &samples,
            "unionsnap_people",
            &[("measure", "unique_people")]
        ),
        star.unique_people.unwrap() as f64
    );
    assert_eq!(
        sum(&samples, "unionsnap_people", &[("measure", "members")]),
        star.members as f64
    );

    // Duration and the time of this success.
    assert!(has(&samples, "unionsnap_last_run_duration_seconds"));
    let success = sum(&samples, "unionsnap_last_success_timestamp_seconds", &[]);
    assert!(before <= success && success <= after, "{success}");
    assert_eq!(
        sum(&samples, "unionsnap_runs_total", &[("outcome", "complete")]),
        1.0
    );
    assert!(samples
        .iter()
        .all(|s| s.labels.get("unionsnap_job").map(String::as_str) == Some("sim")));
}

/// What the fake Pushgateway received: (method, path, body).
type Pushes = Arc<Mutex<Vec<(Method, String, String)>>>;

async fn record_push(
    State(pushes): State<Pushes>,
    method: Method,
    uri: Uri,
    body: String,
) -> &'static str {
    pushes
        .lock()
        .unwrap()
        .push((method, uri.path().to_string(), body));
    ""
}

/// A fake Pushgateway on 127.0.0.1 recording every push.
async fn fake_pushgateway() -> (String, Pushes) {
    let pushes: Pushes = Arc::default();
    let app = axum::Router::new()
        .route("/metrics/job/{*grouping}", axum::routing::any(record_push))
        .with_state(pushes.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, pushes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_run_puts_the_metrics_file_to_the_pushgateway() {
    let fixture = Fixture::start(scenario(62, 1_000, &[("brand_oa", 0.5, true)])).await;
    let (url, pushes) = fake_pushgateway().await;
    let metrics = fixture.dir.path().join("run.prom");
    let out = fixture
        .unionsnap(
            &[
                "run",
                fixture.write_job().to_str().unwrap(),
                "--date",
                DATE,
                "--metrics-file",
                metrics.to_str().unwrap(),
                "--pushgateway",
                &url,
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    let pushes = pushes.lock().unwrap().clone();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let (method, path, body) = &pushes[0];
    assert_eq!(method, Method::PUT);
    assert_eq!(path, "/metrics/job/unionsnap/unionsnap_job/sim");
    assert_eq!(body, &std::fs::read_to_string(&metrics).unwrap());
    let (samples, _) = parse_prometheus(body);
    assert!(has(&samples, "unionsnap_last_success_timestamp_seconds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_run_posts_without_a_last_success_time() {
    let fixture = Fixture::start(scenario(
        63,
        1_000,
        &[("brand_oa", 0.5, true), ("bad_oa", 0.3, true)],
    ))
    .await;
    let (url, pushes) = fake_pushgateway().await;
    let out = fixture
        .unionsnap(
            &[
                "run",
                fixture.write_job().to_str().unwrap(),
                "--date",
                DATE,
                "--pushgateway",
                &url,
            ],
            &[("UNIONSNAP_SIM_SECRET_BAD_OA", "wrong-secret-6363")],
        )
        .await;
    assert_exit(&out, 3);
    let pushes = pushes.lock().unwrap().clone();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let (method, _, body) = &pushes[0];
    // POST replaces only the pushed metrics: the Pushgateway keeps the last
    // success time of an earlier run.
    assert_eq!(method, Method::POST);
    let (samples, _) = parse_prometheus(body);
    assert!(!has(&samples, "unionsnap_last_success_timestamp_seconds"));
    assert_eq!(
        sum(&samples, "unionsnap_runs_total", &[("outcome", "partial")]),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "unionsnap_last_run_accounts",
            &[("outcome", "failed")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_run_id_and_the_account_id_as_json() {
    let fixture = Fixture::start(scenario(64, 500, &[("brand_oa", 0.5, true)])).await;
    let out = fixture.run_job(&fixture.write_job(), &[]).await;
    assert_exit(&out, 0);
    let line = stderr(&out)
        .lines()
        .find(|l| l.contains("\"message\":\"account snapshotted\""))
        .expect("an account line")
        .to_string();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let spans = event["spans"].as_array().unwrap();
    assert!(spans.iter().any(|s| s["name"] == "run"
        && s["run_id"].as_str().is_some_and(|id| !id.is_empty())
        && s["shard"] == "-"));
    assert_eq!(event["span"]["account_id"], "brand_oa");
}

fn targets(out: &Output) -> BTreeMap<String, usize> {
    let mut targets = BTreeMap::new();
    for event in json_lines(out) {
        let target = event["target"].as_str().unwrap();
        let library = target.split("::").next().unwrap().to_string();
        *targets.entry(library).or_insert(0) += 1;
    }
    targets
}

/// At the default level a run's log is its own: the Delta libraries speak
/// from `warn` (at `info` they write a dozen lines for every table read or
/// committed). Every line carries the run id, those of the tasks a run
/// spawns too (batchgets, file writers, commits, the vacuum, the lease's
/// renewal), and so do the libraries' lines when `RUST_LOG` asks for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_run_carries_its_run_id_and_the_delta_libraries_speak_from_warn() {
    let mut scenario = scenario(65, 3000, &[("brand_oa", 0.5, true), ("shop_oa", 0.4, true)]);
    // Busy answers make the batchgets, each in a task of its own, log
    // their retries.
    scenario.faults = busy(65, 0.3);
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    // A scratch file a killed run left (no such process): the first run
    // removes it and says so.
    let tmp = fixture.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::write(tmp.join("unionsnap-4294967295-copy-00ff.parquet"), "ids").unwrap();
    let first = fixture
        .run_job_on(&job, DATE, &[("TMPDIR", tmp.to_str().unwrap())])
        .await;
    assert_exit(&first, 0);
    assert!(stderr(&first).contains("removed local scratch files"));
    fixture.server.set_day(1);
    // The next date reads the tables' states, commits to every table and
    // vacuums them.
    let next = fixture.run_job_on(&job, NEXT_DATE, &[]).await;
    assert_exit(&next, 0);
    for out in [&first, &next] {
        the_run_id_of_every_line(out);
        let targets = targets(out);
        assert_eq!(
            targets.keys().collect::<Vec<_>>(),
            ["unionsnap"],
            "{targets:?}"
        );
    }
    let retried = json_lines(&first)
        .into_iter()
        .find(|e| {
            e["fields"]["endpoint"]
                .as_str()
                .is_some_and(|e| e.contains("batchget"))
        })
        .expect("a batchget's retry");
    assert!(retried["span"]["account_id"].is_string(), "{retried}");
    // RUST_LOG replaces the default whole: a re-run at `info` has the
    // libraries' lines, inside the run's span.
    let verbose = fixture
        .run_job_on(&job, NEXT_DATE, &[("RUST_LOG", "info")])
        .await;
    assert_exit(&verbose, 0);
    the_run_id_of_every_line(&verbose);
    let targets = targets(&verbose);
    for library in ["buoyant_kernel", "deltalake_core"] {
        assert!(targets.get(library).is_some_and(|&n| n > 0), "{targets:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushgateway_password_is_sent_but_never_logged() {
    let fixture = Fixture::start(scenario(64, 500, &[("brand_oa", 0.5, true)])).await;
    let (url, pushes) = fake_pushgateway().await;
    let with_password = url.replace("http://", "http://ops:PUSH-PASSWORD-6464@");
    let out = fixture
        .unionsnap(
            &[
                "run",
                fixture.write_job().to_str().unwrap(),
                "--date",
                DATE,
                "--pushgateway",
                &with_password,
            ],
            &[("RUST_LOG", "debug")],
        )
        .await;
    assert_exit(&out, 0);
    assert_eq!(pushes.lock().unwrap().len(), 1);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(logs.contains("metrics pushed"), "{logs}");
    assert!(!logs.contains("PUSH-PASSWORD-6464"), "{logs}");
}
