//! The commit protocol under SIGKILL: a run killed at random points, against
//! a local folder and against an S3-compatible server, never leaves a marker
//! naming a missing or unreadable file or a Delta version that holds other
//! files, never shows a half-written object, and a re-run gives the exact
//! truth; once vacuum has run, no data file is left that no version names.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use rand::{Rng, SeedableRng};

use crate::common::*;
use crate::moto::{s3_env, start_moto};
use unionsnap::load::delta::Table;
use unionsnap::load::{Manifest, Store};

/// Kills per store.
const KILLS: usize = 20;

/// An object as listed: its path, ETag and size. A rewritten object gets a
/// new ETag (S3's checksum; the local store's inode, mtime and size).
type Seen = (String, Option<String>, u64);

fn seen(object: &object_store::ObjectMeta) -> Seen {
    (
        object.location.to_string(),
        object.e_tag.clone(),
        object.size,
    )
}

/// What earlier checks of one store found sound, so that each round reads
/// what changed since, not the whole warehouse again (against moto, that
/// took 0.7 s in the first round and 15 s in the twentieth: most of the
/// test's time).
#[derive(Default)]
struct Checked {
    /// Objects read whole (and decoded, for Parquet files and log entries).
    objects: std::collections::HashSet<Seen>,
    /// Markers whose tables and files matched, with the files they name as
    /// they were when checked: checked again if any of those changed.
    manifests: std::collections::HashMap<Seen, Vec<Seen>>,
}

/// What a reader may see at any moment: every object decodes, every manifest
/// lists files that exist with the row counts it states. What `checked`
/// holds is not read again unless it changed; every listed object is still
/// looked at, and every file a marker names must still be listed as it was.
async fn assert_consistent(store: &Store, checked: &mut Checked, context: &str) {
    let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    let listed: std::collections::HashMap<String, Seen> = objects
        .iter()
        .map(|object| (object.location.to_string(), seen(object)))
        .collect();
    for object in &objects {
        let path = object.location.to_string();
        let key = seen(object);
        if checked.objects.contains(&key) {
            continue;
        }
        if let Some(named) = checked.manifests.get(&key) {
            for file in named {
                assert_eq!(
                    listed.get(&file.0),
                    Some(file),
                    "{context}: {path} names {}, which is gone or changed",
                    file.0
                );
            }
            continue;
        }
        let got = match store.get(&object.location).await {
            // A request the killed run had sent just before it died can
            // still reach the server after the listing (S3 goes on with
            // it): a run's own bookkeeping may go in between. What readers
            // read is checked below and never goes.
            Err(object_store::Error::NotFound { .. }) if path.split('/').any(|p| p == "_state") => {
                continue
            }
            got => got.unwrap(),
        };
        let bytes = got.bytes().await.unwrap();
        if path.contains("/_delta_log/") {
            if path.ends_with(".json") {
                for line in String::from_utf8_lossy(&bytes).lines() {
                    let action: Result<serde_json::Value, _> = serde_json::from_str(line);
                    assert!(action.is_ok(), "{context}: half-written log entry {path}");
                }
            }
        } else if path.ends_with(".parquet") {
            let decoded = unionsnap::load::parquet::decode(bytes);
            assert!(decoded.is_ok(), "{context}: half-written object {path}");
        } else if path.ends_with("manifest.json") {
            let manifest: Manifest = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{context}: unreadable manifest {path}: {e}"));
            // Each version the marker names holds exactly the marker's files
            // of the date: the visible snapshot is one consistent set.
            for (table, version) in &manifest.tables {
                let delta = Table::open(store, table);
                let state = delta
                    .state(Some(*version))
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{context}: {path} names a missing table {table}"));
                let mut in_version: Vec<String> = delta
                    .files_of(&state, manifest.snapshot_date)
                    .into_iter()
                    .map(|f| f.path)
                    .collect();
                in_version.sort();
                let mut named: Vec<String> = manifest
                    .files
                    .iter()
                    .filter(|f| &f.table == table)
                    .map(|f| f.path.clone())
                    .collect();
                named.sort();
                assert_eq!(
                    in_version, named,
                    "{context}: {table} v{version} against {path}"
                );
            }
            for file in &manifest.files {
                let df = unionsnap::load::read_file(store, &file.path)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{context}: manifest {path} names {}: {e}", file.path)
                    });
                assert_eq!(
                    df.height() as u64,
                    file.rows,
                    "{context}: rows of {}",
                    file.path
                );
            }
            // Remembered with its files as listed; one not listed yet (the
            // marker came after the listing) leaves it to be read again.
            let named: Option<Vec<Seen>> = manifest
                .files
                .iter()
                .map(|file| listed.get(&file.path).cloned())
                .collect();
            if let Some(named) = named {
                checked.manifests.insert(key, named);
            }
            continue;
        }
        checked.objects.insert(key);
    }
}

/// The object paths of the multipart uploads recorded under `_state/uploads/`.
async fn recorded_uploads(store: &Store) -> Vec<String> {
    let prefix = object_store::path::Path::from(unionsnap::load::uploads::UPLOADS);
    let records: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
    let mut paths = Vec::new();
    for record in records {
        let Ok(found) = store.get(&record.location).await else {
            continue;
        };
        let record: unionsnap::load::uploads::UploadRecord =
            serde_json::from_slice(&found.bytes().await.unwrap()).unwrap();
        paths.push(record.path);
    }
    paths
}

/// Runs the job for `date` and kills it after `delay` (if it is still running).
async fn run_and_kill(
    fixture: &Fixture,
    job: &std::path::Path,
    date: &str,
    env: &[(&str, &str)],
    delay: Duration,
) -> bool {
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", job.to_str().unwrap(), "--date", date])
        .envs(fixture.scenario.secret_env())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::select! {
        _ = child.wait() => false,
        _ = tokio::time::sleep(delay) => {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            true
        }
    }
}

async fn kill_loop(
    fixture: &Fixture,
    job: &std::path::Path,
    store: &Store,
    env: &[(&str, &str)],
    seed: u64,
    moto: Option<&crate::moto::Moto>,
) {
    // Uploads the next run aborted, and those left for the lifecycle rule
    // (counted once each: one stays incomplete through the later rounds).
    let mut aborted = 0;
    let mut unrecorded = std::collections::HashSet::new();
    // How long a whole run takes, to spread the kills over all of it.
    let start = Instant::now();
    let out = fixture.run_job_on(job, "2026-11-01", env).await;
    assert_exit(&out, 0);
    let full = start.elapsed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let truth = fixture.scenario.truth();
    let mut killed = 0;
    let mut checked = Checked::default();
    for i in 0..KILLS {
        // Odd rounds kill a re-run of a date that is already complete (the
        // files are being replaced); even rounds kill a date's first run.
        let date = format!("2026-11-{:02}", 2 + i / 2);
        let delay = full.mul_f64(rng.random_range(0.0..1.0));
        let context = format!("seed {seed} round {i} ({date}, kill after {delay:?})");
        killed += run_and_kill(fixture, job, &date, env, delay).await as usize;
        assert_consistent(store, &mut checked, &context).await;
        // The uploads the killed run left, and those it had recorded.
        let (left_by_kill, recorded) = match moto {
            Some(moto) => (
                moto.incomplete_uploads().await,
                recorded_uploads(store).await,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let out = fixture.run_job_on(job, &date, env).await;
        assert_exit(&out, 0);
        if let Some(moto) = moto {
            // The next run aborts every upload the killed one recorded. One
            // it had created but not yet recorded (a kill in the ~ms between
            // the two requests) is left to the bucket's lifecycle rule.
            let left = moto.incomplete_uploads().await;
            for key in &left {
                assert!(
                    left_by_kill.contains(key) && !recorded.iter().any(|r| key.ends_with(r.as_str())),
                    "{context}: a recorded or new upload is left after the next run: {key} ({left:?}, recorded {recorded:?})"
                );
            }
            aborted += left_by_kill.len() - left.len();
            unrecorded.extend(left);
            assert!(
                recorded_uploads(store).await.is_empty(),
                "{context}: records of uploads left after the next run"
            );
        }
        let snapshot = unionsnap::report::read_snapshot(store, Some(date.parse().unwrap()))
            .await
            .unwrap();
        assert_eq!(
            unionsnap::simulator::audience_rows(&snapshot.audience).unwrap(),
            truth.audience,
            "{context}"
        );
        assert_eq!(
            unionsnap::simulator::overlap_rows(&snapshot.overlap).unwrap(),
            truth.overlap,
            "{context}"
        );
    }
    assert!(
        killed >= KILLS * 3 / 4,
        "most rounds were killed mid-run ({killed} of {KILLS})"
    );
    if moto.is_some() {
        let unrecorded = unrecorded.len();
        eprintln!("kills left incomplete uploads: {aborted} aborted by the next run, {unrecorded} created but not yet recorded when killed");
        assert!(
            aborted > 0,
            "some kill left an upload that the next run aborted"
        );
        // A kill lands in the create-then-record window rarely; all of them
        // doing so would mean the records are not written.
        assert!(
            unrecorded <= aborted,
            "{unrecorded} unrecorded, {aborted} aborted"
        );
    }

    // Vacuum without retention: what the killed runs left goes; every data
    // file left is one the latest version of its table names.
    let out = fixture
        .unionsnap(&["vacuum", job.to_str().unwrap(), "--retention", "0s"], env)
        .await;
    assert_exit(&out, 0);
    assert_consistent(store, &mut checked, "after vacuum").await;
    let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    for table in unionsnap::load::layout::ALL_TABLES {
        let delta = Table::open(store, table);
        let Some(state) = delta.state(None).await.unwrap() else {
            continue;
        };
        let active: std::collections::HashSet<String> = state
            .log_data()
            .iter()
            .map(|f| format!("{table}/{}", f.path()))
            .collect();
        for object in &objects {
            let path = object.location.to_string();
            if path.starts_with(&format!("{table}/")) && !path.contains("/_delta_log/") {
                assert!(
                    active.contains(&path),
                    "after vacuum: {path} is in no version"
                );
            }
        }
    }
}

fn crash_scenario(seed: u64) -> unionsnap::simulator::Scenario {
    let scenario = scenario(
        seed,
        25_000,
        &[
            ("brand_oa", 0.5, true),
            ("news_oa", 0.3, true),
            ("legacy_oa", 0.1, false),
        ],
    );
    // Identical truth on every date: no churn, no crawl-time leavers.
    let mut scenario = without_crawl_leavers(scenario);
    for account in &mut scenario.accounts {
        account.daily_churn = 0.0;
    }
    scenario
}

/// Every run a full crawl (`refresh = "full"`), so that each run takes as
/// long as the first and the kills land in crawls, uploads and commits alike.
fn full_refresh_job(fixture: &Fixture, output: &str) -> std::path::PathBuf {
    let text = fixture
        .scenario
        .job_toml(&fixture.server.base_url(), output)
        .replace(
            "kind = \"official_account\"",
            "kind = \"official_account\"\nrefresh = \"full\"",
        );
    fixture.write_job_text(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_never_breaks_a_local_warehouse() {
    let fixture = Fixture::start(crash_scenario(91)).await;
    let job = full_refresh_job(&fixture, &fixture.output_dir().display().to_string());
    let location = unionsnap::job::OutputLocation::Local(fixture.output_dir());
    let store = unionsnap::load::open(&location).unwrap();
    kill_loop(&fixture, &job, &store, &[], 91, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_never_breaks_an_s3_warehouse() {
    let moto = start_moto().await;
    let fixture = Fixture::start(crash_scenario(92)).await;
    let job = full_refresh_job(&fixture, "s3://unionsnap-test/crash");
    let env = s3_env(&moto.endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    kill_loop(&fixture, &job, &moto.store("crash"), &env, 92, Some(&moto)).await;
}
