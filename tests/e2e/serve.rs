//! `unionsnap serve`: the real binary on a seconds-level schedule against the
//! simulator, stopped by a real SIGTERM sent with `kill`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr};

use crate::common::*;
use unionsnap::simulator::Faults;

/// Bounds every wait, so that a broken `serve` fails the test instead of
/// hanging it. Not a performance assertion: runs take well under a second.
const HANG_GUARD: Duration = Duration::from_secs(120);
/// SPEC: on SIGTERM, serve exits within 30 s.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// The scenario's job file with `schedule = "*/2 * * * * *"` (every 2 s).
fn every_two_seconds(fixture: &Fixture) -> std::path::PathBuf {
    let text = fixture.scenario.job_toml(
        &fixture.server.base_url(),
        &fixture.output_dir().display().to_string(),
    );
    let text = text.replacen(
        "name = \"sim\"\n",
        "name = \"sim\"\nschedule = \"*/2 * * * * *\"\n",
        1,
    );
    fixture.write_job_text(&text)
}

fn spawn_serve(fixture: &Fixture, job: &std::path::Path, extra: &[&str]) -> Child {
    spawn(fixture, "serve", job, extra)
}

fn spawn(fixture: &Fixture, command: &str, job: &std::path::Path, extra: &[&str]) -> Child {
    tokio::process::Command::new(BIN)
        .arg(command)
        .arg(job)
        .args(extra)
        .env_remove("RUST_LOG")
        .envs(fixture.scenario.secret_env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Reads JSON log lines until `count` of them carry `message`; returns all read.
async fn wait_for_message(
    lines: &mut tokio::io::Lines<BufReader<ChildStderr>>,
    message: &str,
    count: usize,
) -> Vec<String> {
    let needle = format!("\"message\":\"{message}\"");
    let mut seen = Vec::new();
    let read = async {
        let mut found = 0;
        while let Some(line) = lines.next_line().await.unwrap() {
            found += usize::from(line.contains(&needle));
            seen.push(line);
            if found == count {
                return;
            }
        }
        panic!(
            "serve ended before logging {message:?} {count} times:\n{}",
            seen.join("\n")
        );
    };
    tokio::time::timeout(HANG_GUARD, read)
        .await
        .unwrap_or_else(|_| panic!("no {message:?} ×{count} within the hang guard"));
    seen
}

fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    // The shell's `kill` builtin: present wherever `sh` is, unlike /bin/kill.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the exit after SIGTERM; returns the exit code and the rest of the log.
async fn exit_after_sigterm(
    mut child: Child,
    mut lines: tokio::io::Lines<BufReader<ChildStderr>>,
) -> (Option<i32>, String) {
    sigterm(&child);
    let rest = async {
        let mut rest = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            rest.push(line);
        }
        (child.wait().await.unwrap(), rest.join("\n"))
    };
    let (status, rest) = tokio::time::timeout(SHUTDOWN_DEADLINE, rest)
        .await
        .expect("serve must exit within 30 s of SIGTERM");
    (status.code(), rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_schedule_twice_and_exits_0_on_sigterm() {
    let fixture = Fixture::start(scenario(
        41,
        2_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.2, false)],
    ))
    .await;
    let job = every_two_seconds(&fixture);
    let metrics = fixture.dir.path().join("serve.prom");
    let mut child = spawn_serve(
        &fixture,
        &job,
        &["--metrics-file", metrics.to_str().unwrap()],
    );
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    wait_for_message(&mut lines, "snapshot committed", 2).await;
    let (code, rest) = exit_after_sigterm(child, lines).await;
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("serve stopped"), "{rest}");

    // Both runs committed a snapshot whose numbers equal the truth.
    let store = unionsnap::load::open(&unionsnap::job::OutputLocation::Local(fixture.output_dir()))
        .unwrap();
    let snapshot = unionsnap::report::read_snapshot(&store, None)
        .await
        .unwrap();
    let truth = fixture.scenario.truth();
    assert_eq!(
        unionsnap::simulator::audience_rows(&snapshot.audience).unwrap(),
        truth.audience
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("unionsnap_runs_total{outcome=\"complete\",unionsnap_job=\"sim\"} 2"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_tokens_warm_between_runs() {
    let fixture = Fixture::start(scenario(
        42,
        1_000,
        &[("brand_oa", 0.5, true), ("news_oa", 0.3, true)],
    ))
    .await;
    let job = every_two_seconds(&fixture);
    let mut child = spawn_serve(&fixture, &job, &[]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    wait_for_message(&mut lines, "snapshot committed", 2).await;
    let (code, rest) = exit_after_sigterm(child, lines).await;
    assert_eq!(code, Some(0), "{rest}");
    let stats = fixture.server.stats();
    // Two runs, two accounts: one token request per account, not per run.
    assert_eq!(stats.calls_to("/cgi-bin/stable_token"), 2, "{stats:?}");
    assert!(stats.ok_calls_to("/cgi-bin/user/get") >= 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_abandons_it_without_a_manifest_and_exits_0() {
    let mut slow = scenario(43, 1_000, &[("brand_oa", 0.5, true)]);
    // Every response takes 2 s: the run is surely still extracting when
    // SIGTERM arrives right after it logs that it started.
    slow.faults = Faults {
        latency: Duration::from_secs(2),
        ..Faults::none()
    };
    let fixture = Fixture::start(slow).await;
    let job = every_two_seconds(&fixture);
    let mut child = spawn_serve(&fixture, &job, &[]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    wait_for_message(&mut lines, "run starts", 1).await;
    let (code, rest) = exit_after_sigterm(child, lines).await;
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("interrupted by shutdown"), "{rest}");
    let files = files_under(&fixture.output_dir());
    assert!(
        !files.iter().any(|f| f.starts_with("_manifests")),
        "no manifest for an interrupted date: {files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_one_off_run_exits_3_without_a_manifest() {
    let mut slow = scenario(45, 1_000, &[("brand_oa", 0.5, true)]);
    slow.faults = Faults {
        latency: Duration::from_secs(2),
        ..Faults::none()
    };
    let fixture = Fixture::start(slow).await;
    let job = fixture.write_job();
    let mut child = spawn(&fixture, "run", &job, &["--date", DATE]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    wait_for_message(&mut lines, "run starts", 1).await;
    let (code, rest) = exit_after_sigterm(child, lines).await;
    assert_eq!(code, Some(3), "{rest}");
    assert!(rest.contains("interrupted by shutdown"), "{rest}");
    let files = files_under(&fixture.output_dir());
    assert!(
        !files.iter().any(|f| f.starts_with("_manifests")),
        "{files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_schedule_exits_2() {
    let fixture = Fixture::start(scenario(44, 100, &[("brand_oa", 0.5, true)])).await;
    let out = fixture
        .unionsnap(&["serve", fixture.write_job().to_str().unwrap()], &[])
        .await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("schedule"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_warns_about_a_schedule_that_fires_every_few_seconds() {
    let fixture = Fixture::start(scenario(45, 100, &[("brand_oa", 0.5, true)])).await;
    let job = every_two_seconds(&fixture);
    let out = fixture
        .unionsnap(&["validate", job.to_str().unwrap()], &[])
        .await;
    assert_exit(&out, 0);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("warning: the schedule fires as often as every 2s"),
        "{shown}"
    );
}
