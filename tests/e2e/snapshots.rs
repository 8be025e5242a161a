//! Committed snapshots that nothing can break: a failed or partial re-run, a
//! shard run, a stale merge, a run paused past its lease, an account's files
//! failing after the derivation has started and a re-run of the previous
//! date leave what readers see exact; every table is a Delta table that the
//! python `deltalake` package reads, at the latest version and at the
//! previous one.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use unionsnap::simulator::Faults;

const ACCOUNTS: [(&str, f64, bool); 3] = [
    ("brand_oa", 0.5, true),
    ("news_oa", 0.3, true),
    ("legacy_oa", 0.2, false),
];

fn marker_bytes(fixture: &Fixture, date: &str) -> Vec<u8> {
    std::fs::read(
        fixture
            .output_dir()
            .join(format!("_manifests/snapshot_date={date}/manifest.json")),
    )
    .unwrap_or_else(|e| panic!("{date} has no marker: {e}"))
}

fn marker(fixture: &Fixture, date: &str) -> unionsnap::load::Manifest {
    serde_json::from_slice(&marker_bytes(fixture, date)).unwrap()
}

/// Per table: (rows, a digest of every row) of `date`, read by python's
/// `deltalake` at `versions` (latest where a table is not named).
fn delta_digest(
    output: &std::path::Path,
    date: &str,
    versions: &BTreeMap<String, i64>,
) -> BTreeMap<String, (i64, String)> {
    let script = r#"
import json, sys, duckdb
from deltalake import DeltaTable
req = json.loads(sys.stdin.read())
out = {}
for table, version in req["tables"].items():
    dt = DeltaTable(req["root"] + "/" + table, version=version)
    arrow = dt.to_pyarrow_table()
    parts = dt.metadata().partition_columns
    row = duckdb.sql(
        "SELECT count(*), coalesce(bit_xor(hash(COLUMNS(* EXCLUDE (" + ", ".join(parts) + ")))), 0)::VARCHAR "
        "FROM arrow WHERE snapshot_date = DATE '" + req["date"] + "'").fetchall()[0]
    out[table] = [row[0], row[1]]
print(json.dumps(out), flush=True)
# Skip the interpreter's teardown: deltalake's and DuckDB's threads at exit
# can abort it ("terminate called without an active exception").
import os
os._exit(0)
"#;
    let tables: BTreeMap<&str, Option<i64>> = unionsnap::load::layout::ALL_TABLES
        .iter()
        .map(|t| (*t, versions.get(*t).copied()))
        .filter(|(t, _)| output.join(t).join("_delta_log").exists())
        .collect();
    let request = serde_json::json!({
        "root": output.display().to_string(),
        "date": date,
        "tables": tables,
    });
    let answer = python(script, &request.to_string());
    serde_json::from_value::<BTreeMap<String, (i64, String)>>(answer).unwrap()
}

/// Per table: (rows, digest) of the files `manifest` names, read by DuckDB.
fn marker_digest(
    output: &std::path::Path,
    manifest: &unionsnap::load::Manifest,
) -> BTreeMap<String, (i64, String)> {
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &manifest.files {
        by_table
            .entry(file.table.clone())
            .or_default()
            .push(format!("'{}'", output.join(&file.path).display()));
    }
    by_table
        .into_iter()
        .map(|(table, files)| {
            let rows = duckdb(&format!(
                "SELECT count(*), coalesce(bit_xor(hash(COLUMNS(*))), 0)::VARCHAR FROM read_parquet([{}], hive_partitioning = false)",
                files.join(", ")
            ));
            let row = rows[0].as_array().unwrap();
            (table, (row[0].as_i64().unwrap(), row[1].as_str().unwrap().to_string()))
        })
        .collect()
}

#[track_caller]
fn assert_delta_equals_marker(
    fixture: &Fixture,
    manifest: &unionsnap::load::Manifest,
    versions: &BTreeMap<String, i64>,
) {
    let date = manifest.snapshot_date.to_string();
    let from_delta = delta_digest(&fixture.output_dir(), &date, versions);
    let from_marker = marker_digest(&fixture.output_dir(), manifest);
    for (table, digest) in &from_marker {
        assert_eq!(from_delta.get(table), Some(digest), "{table} of {date}");
    }
    for (table, (rows, _)) in &from_delta {
        if !from_marker.contains_key(table) {
            assert_eq!(
                *rows, 0,
                "{table} holds rows of {date} the marker does not name"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_deltalake_reads_every_table_latest_and_previous_version() {
    let fixture = Fixture::start(without_crawl_leavers(scenario(61, 3_000, &ACCOUNTS))).await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    let first = marker(&fixture, DATE);
    assert_eq!(first.format_version, 2);
    assert_eq!(
        first.tables.len(),
        8,
        "followers, tags, reconciliation and the five derived tables: {:?}",
        first.tables
    );
    assert_delta_equals_marker(&fixture, &first, &BTreeMap::new());
    let output = fixture.output_dir().display().to_string();
    let report = |args: &[&str]| {
        let mut all = vec![
            "report",
            output.as_str(),
            "--date",
            DATE,
            "--format",
            "json",
        ];
        all.extend_from_slice(args);
        let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        let fixture = &fixture;
        async move {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            let out = fixture.unionsnap(&args, &[]).await;
            assert_exit(&out, 0);
            let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            (
                report["run_id"].clone(),
                report["audience"].clone(),
                report["overlap"].clone(),
            )
        }
    };
    let first_report = report(&[]).await;

    // A re-run of the date on the next simulated day: new data, new versions.
    fixture.server.set_day(1);
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    let second = marker(&fixture, DATE);
    assert!(second.tables.iter().all(|(t, v)| *v > first.tables[t]));
    assert_ne!(
        marker_digest(&fixture.output_dir(), &first),
        marker_digest(&fixture.output_dir(), &second)
    );
    assert_delta_equals_marker(&fixture, &second, &BTreeMap::new());
    // A reader holding the previous versions reads the previous snapshot.
    assert_delta_equals_marker(&fixture, &first, &first.tables);
    assert_matches_truth_on(&fixture, DATE).await;
    // So does `report --as-of`, by version and by time.
    let version = first.tables["audience"].to_string();
    assert_eq!(report(&["--as-of", &version]).await, first_report);
    let between = (first.committed_at + (second.committed_at - first.committed_at) / 2)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(report(&["--as-of", &between]).await, first_report);
    assert_ne!(report(&[]).await, first_report);

    // `history` lists the date with its versions.
    let out = fixture
        .unionsnap(
            &[
                "history",
                &fixture.output_dir().display().to_string(),
                "--format",
                "json",
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    let history: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(history[0]["run_id"], second.run_id.as_str());
    assert_eq!(history[0]["tables"]["audience"], second.tables["audience"]);

    // Vacuum with no retention: every file no version's reader still needs
    // goes; what the marker names stays.
    let out = fixture
        .unionsnap(&["vacuum", job.to_str().unwrap(), "--retention", "0s"], &[])
        .await;
    assert_exit(&out, 0);
    let named: Vec<String> = second.files.iter().map(|f| f.path.clone()).collect();
    let data: Vec<String> = files_under(&fixture.output_dir())
        .into_iter()
        .filter(|f| f.ends_with(".parquet") && !f.contains("/_delta_log/") && !f.starts_with('_'))
        .collect();
    let mut named_sorted = named.clone();
    named_sorted.sort();
    assert_eq!(
        data, named_sorted,
        "only the files of the latest versions are left"
    );
    assert_delta_equals_marker(&fixture, &second, &BTreeMap::new());
}

/// A run's own vacuum goes on beside its crawl, with its cutoff taken as it
/// starts: even with no retention it never deletes what the run writes, and
/// what a re-run replaced goes at the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_own_vacuum_at_zero_retention_spares_what_the_run_writes() {
    let fixture = Fixture::start(scenario(63, 2_000, &ACCOUNTS)).await;
    let job = fixture.write_job();
    let no_retention = [("UNIONSNAP_VACUUM_RETENTION", "0s")];
    let data = || -> Vec<String> {
        files_under(&fixture.output_dir())
            .into_iter()
            .filter(|f| f.ends_with(".parquet") && !f.starts_with('_'))
            .collect()
    };
    let named = |manifest: &unionsnap::load::Manifest| -> Vec<String> {
        manifest.files.iter().map(|f| f.path.clone()).collect()
    };
    let mut markers = Vec::new();
    for _ in 0..3 {
        assert_exit(&fixture.run_job(&job, &no_retention).await, 0);
        let manifest = marker(&fixture, DATE);
        assert_delta_equals_marker(&fixture, &manifest, &BTreeMap::new());
        markers.push(manifest);
    }
    let left = data();
    let (first, second, third) = (&markers[0], &markers[1], &markers[2]);
    assert!(first.run_id != second.run_id && second.run_id != third.run_id);
    // The second run replaced the first's files before the third started.
    for path in named(first) {
        assert!(!left.contains(&path), "{path} outlived a vacuum at 0s");
    }
    // The third replaced the second's while its own vacuum was under way.
    for path in named(second).into_iter().chain(named(third)) {
        assert!(left.contains(&path), "{path} is gone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rerun_and_a_shard_run_leave_the_committed_snapshot_as_it_was() {
    let fixture = Fixture::start(scenario(62, 2_000, &ACCOUNTS)).await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    let committed = marker_bytes(&fixture, DATE);

    // One wrong secret: the run fails (exit 3) and commits nothing.
    let out = fixture
        .run_job(&job, &[("UNIONSNAP_SIM_SECRET_NEWS_OA", "not-the-secret")])
        .await;
    assert_exit(&out, 3);
    assert_eq!(
        marker_bytes(&fixture, DATE),
        committed,
        "the marker is untouched"
    );
    assert_matches_truth(&fixture).await;
    assert_delta_equals_marker(&fixture, &marker(&fixture, DATE), &BTreeMap::new());

    // A shard run on the committed date lands partitions and commits nothing.
    let out = fixture
        .unionsnap(
            &[
                "run",
                job.to_str().unwrap(),
                "--date",
                DATE,
                "--shard",
                "0/2",
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    assert_eq!(marker_bytes(&fixture, DATE), committed);
    assert_matches_truth(&fixture).await;
    assert_delta_equals_marker(&fixture, &marker(&fixture, DATE), &BTreeMap::new());
}

/// The derivation starts once every account's identities have landed, while
/// an account's files are still being completed; when those then fail, the
/// run commits nothing and leaves nothing of the derived tables behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_failing_after_the_identities_landed_commit_nothing_and_leave_no_table() {
    let fixture = Fixture::start(scenario(63, 2_000, &ACCOUNTS)).await;
    let job = fixture.write_job();
    let output = fixture.output_dir();
    // A directory where news_oa's crawl state records its landed partition:
    // its identities land, then the record (after its followers partition
    // and its counts are written) cannot be.
    let record = output.join(format!(
        "_state/snapshot_date={DATE}/account_id=news_oa/landed.json"
    ));
    std::fs::create_dir_all(&record).unwrap();
    let out = fixture
        .run_job(&job, &[("RUST_LOG", "unionsnap=info")])
        .await;
    assert_exit(&out, 1);
    let log = stderr(&out);
    assert!(
        log.contains("deriving people, audience and overlap"),
        "the derivation started before the failure:\n{log}"
    );
    assert!(
        !output
            .join(format!("_manifests/snapshot_date={DATE}/manifest.json"))
            .exists(),
        "nothing is committed"
    );
    for table in unionsnap::load::layout::ALL_TABLES {
        if ["followers", "tags", "reconciliation"].contains(&table) {
            continue; // the accounts' own files, kept for the next run
        }
        let dir = output.join(table).join(format!("snapshot_date={DATE}"));
        assert_eq!(files_under(&dir), Vec::<String>::new(), "{table}");
    }
    // Without the obstacle, the next run resumes and commits the truth.
    std::fs::remove_dir_all(&record).unwrap();
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    assert_matches_truth(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_never_commits_a_partition_of_an_earlier_generation() {
    let fixture = Fixture::start(scenario(63, 2_000, &ACCOUNTS)).await;
    let job = fixture.write_job();
    let job = job.to_str().unwrap();
    let run = |args: &'static [&'static str], code: i32| {
        let fixture = &fixture;
        async move {
            let mut all = vec![args[0], job, "--date", DATE];
            all.extend_from_slice(&args[1..]);
            assert_exit(&fixture.unionsnap(&all, &[]).await, code);
        }
    };
    run(&["run", "--shard", "0/2"], 0).await;
    run(&["run", "--shard", "1/2"], 0).await;
    run(&["merge"], 0).await;
    let committed = marker_bytes(&fixture, DATE);
    assert_matches_truth(&fixture).await;

    // The next generation: shard 0 runs again, shard 1 has not yet. Shard 1's
    // earlier partitions were committed already: merge must not take them.
    run(&["run", "--shard", "0/2"], 0).await;
    run(&["merge"], 3).await;
    assert_eq!(
        marker_bytes(&fixture, DATE),
        committed,
        "nothing readers see changed"
    );

    // A generation whose every shard landed merges.
    run(&["run", "--shard", "1/2"], 0).await;
    run(&["merge"], 0).await;
    assert_ne!(marker_bytes(&fixture, DATE), committed);
    assert_matches_truth(&fixture).await;
}

/// Sends `signal` (STOP, CONT) to `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_paused_past_its_lease_exits_4_and_commits_nothing() {
    let mut scenario = scenario(64, 20_000, &ACCOUNTS[..2]);
    scenario.faults = Faults {
        latency: Duration::from_millis(20),
        ..Faults::none()
    };
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    let ttl = [("UNIONSNAP_LEASE_TTL", "2s")];
    let lease = fixture
        .output_dir()
        .join(format!("_leases/snapshot_date={DATE}.json"));

    let paused = tokio::process::Command::new(BIN)
        .args(["run", job.to_str().unwrap(), "--date", DATE])
        .envs(fixture.scenario.secret_env())
        .envs(ttl)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = paused.id().unwrap();
    for _ in 0..2_000 {
        if lease.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(lease.exists(), "the first run took the lease");
    signal(pid, "STOP");
    // Past the TTL: the lease is the paused run's still, but expired.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let other = fixture.run_job(&job, &ttl).await;
    assert_exit(&other, 0);
    let committed = marker_bytes(&fixture, DATE);
    let versions = marker(&fixture, DATE).tables;

    signal(pid, "CONT");
    let paused = paused.wait_with_output().await.unwrap();
    assert_exit(&paused, 4);
    assert!(
        stderr(&paused).contains("lost the lease"),
        "{}",
        stderr(&paused)
    );
    assert_eq!(
        marker_bytes(&fixture, DATE),
        committed,
        "the other run's snapshot stands"
    );
    for (table, version) in versions {
        let latest = unionsnap::load::delta::Table::open(
            &unionsnap::load::open(&unionsnap::job::OutputLocation::Local(fixture.output_dir()))
                .unwrap(),
            &table,
        )
        .version()
        .await
        .unwrap();
        assert_eq!(
            latest,
            Some(version),
            "no commit of {table} after the other run's"
        );
    }
    assert_matches_truth(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_the_previous_date_during_a_run_leaves_that_run_exact() {
    let mut scenario = without_crawl_leavers(scenario(65, 20_000, &ACCOUNTS[..2]));
    scenario.faults = Faults {
        latency: Duration::from_millis(10),
        ..Faults::none()
    };
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job_on(&job, DATE, &[]).await, 0);
    let day0 = marker(&fixture, DATE);

    fixture.server.set_day(1);
    let listed = |fixture: &Fixture| {
        fixture
            .server
            .stats()
            .ok_calls
            .get("/cgi-bin/user/get")
            .copied()
            .unwrap_or(0)
    };
    let listed_before = listed(&fixture);
    let next = tokio::process::Command::new(BIN)
        .args(["run", job.to_str().unwrap(), "--date", NEXT_DATE])
        .envs(fixture.scenario.secret_env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Once the next day's crawl has started, the previous date is re-run
    // (and commits new files for it) while the crawl reads its followers.
    for _ in 0..2_000 {
        if fixture
            .server
            .stats()
            .ok_calls
            .get("/cgi-bin/user/get")
            .copied()
            .unwrap_or(0)
            >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        listed(&fixture) > listed_before,
        "the next day's crawl had started"
    );
    assert_exit(&fixture.run_job_on(&job, DATE, &[]).await, 0);
    assert_ne!(marker(&fixture, DATE).run_id, day0.run_id);

    let next = next.wait_with_output().await.unwrap();
    assert_exit(&next, 0);
    assert_matches_truth_on(&fixture, NEXT_DATE).await;
    let followers = read_table(&fixture.output_dir(), NEXT_DATE, "identities").await;
    let members = followers.height();
    let distinct = followers
        .select(["account_id", "member_id"])
        .unwrap()
        .unique_stable(None, polars::prelude::UniqueKeepStrategy::First, None)
        .unwrap()
        .height();
    assert_eq!(members, distinct, "no member twice");
}

/// Rewrites a warehouse into the layout before Delta: no `_delta_log/`,
/// files named `part-0.parquet`, markers of format 1 without versions.
fn to_legacy_layout(output: &std::path::Path) {
    for table in unionsnap::load::layout::ALL_TABLES {
        let _ = std::fs::remove_dir_all(output.join(table).join("_delta_log"));
    }
    for marker_path in files_under(output)
        .into_iter()
        .filter(|f| f.ends_with("manifest.json"))
    {
        let marker_path = output.join(marker_path);
        let mut marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&marker_path).unwrap()).unwrap();
        for file in marker["files"].as_array_mut().unwrap() {
            let path = file["path"].as_str().unwrap().to_string();
            let legacy = format!("{}/part-0.parquet", &path[..path.rfind('/').unwrap()]);
            std::fs::rename(output.join(&path), output.join(&legacy)).unwrap();
            file["path"] = legacy.into();
        }
        let object = marker.as_object_mut().unwrap();
        object.remove("tables");
        object.remove("epoch");
        object.insert("format_version".into(), 1.into());
        std::fs::write(&marker_path, serde_json::to_vec_pretty(&marker).unwrap()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_adopts_a_warehouse_of_the_layout_before_delta() {
    let fixture = Fixture::start(without_crawl_leavers(scenario(66, 3_000, &ACCOUNTS))).await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job_on(&job, DATE, &[]).await, 0);
    to_legacy_layout(&fixture.output_dir());
    let legacy = marker(&fixture, DATE);
    assert_eq!(legacy.format_version, 1);
    assert!(legacy.tables.is_empty());

    let output = fixture.output_dir().display().to_string();
    let out = fixture.unionsnap(&["migrate", &output], &[]).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("1 date(s) adopted"),
        "{}",
        stdout(&out)
    );
    let adopted = marker(&fixture, DATE);
    assert_eq!(adopted.format_version, 2);
    assert_eq!(adopted.files, legacy.files, "the files stay where they are");
    // followers, tags, reconciliation and the five derived tables
    assert_eq!(adopted.tables.len(), 8);
    assert_delta_equals_marker(&fixture, &adopted, &BTreeMap::new());
    // Again: nothing left to adopt.
    let out = fixture.unionsnap(&["migrate", &output], &[]).await;
    assert!(
        stdout(&out).contains("0 date(s) adopted"),
        "{}",
        stdout(&out)
    );

    // The next day builds on the adopted snapshot (identity cache, changes).
    fixture.server.set_day(1);
    assert_exit(&fixture.run_job_on(&job, NEXT_DATE, &[]).await, 0);
    assert_matches_truth_on(&fixture, NEXT_DATE).await;
    assert_delta_equals_marker(&fixture, &marker(&fixture, NEXT_DATE), &BTreeMap::new());
}
