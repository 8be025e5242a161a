//! Official Accounts end to end: exact numbers, DuckDB agreement, faults, re-runs.

use crate::common::*;
use unionsnap::simulator::{FaultKind, Faults};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_equal_the_truth_with_an_unbound_account() {
    let fixture = Fixture::start(scenario(
        11,
        4_000,
        &[
            ("brand_oa", 0.5, true),
            ("news_oa", 0.3, true),
            ("legacy_oa", 0.2, false),
        ],
    ))
    .await;
    let out = fixture.run_job(&fixture.write_job(), &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_equal_the_truth_when_an_account_pages_past_10000_followers() {
    let fixture = Fixture::start(scenario(
        12,
        30_000,
        &[("big_oa", 0.75, true), ("small_oa", 0.1, true)],
    ))
    .await;
    let out = fixture.run_job(&fixture.write_job(), &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
    // 22,500 followers (± the seed) need three user/get data pages plus the empty last call.
    let stats = fixture.server.stats();
    assert!(stats.ok_calls["/cgi-bin/user/get"] >= 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_equal_the_truth_with_an_account_without_followers() {
    let fixture = Fixture::start(scenario(
        13,
        3_000,
        &[
            ("a_oa", 0.4, true),
            ("b_oa", 0.4, true),
            ("c_oa", 0.4, true),
            ("empty_oa", 0.0, true),
        ],
    ))
    .await;
    let out = fixture.run_job(&fixture.write_job(), &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_the_hive_partitions_and_gets_the_same_counts() {
    let fixture = Fixture::start(scenario(
        21,
        5_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.3, false)],
    ))
    .await;
    assert_exit(&fixture.run_job(&fixture.write_job(), &[]).await, 0);
    let out = fixture.output_dir().display().to_string();
    let snapshot = read_snapshot(&fixture.output_dir()).await;
    let truth = fixture.scenario.truth();

    let followers = duckdb(&format!(
        "SELECT account_id, count(*), count(unionid), CAST(snapshot_date AS VARCHAR)
         FROM read_parquet('{out}/followers/*/*/*.parquet', hive_partitioning = true)
         GROUP BY ALL ORDER BY account_id"
    ));
    for row in &followers {
        let account = row[0].as_str().unwrap();
        let expected = truth
            .audience
            .iter()
            .find(|r| r.account_id == account)
            .unwrap();
        assert_eq!(row[1].as_i64().unwrap(), expected.members, "{account}");
        assert_eq!(row[2].as_i64().unwrap(), expected.resolved, "{account}");
        assert_eq!(row[3].as_str().unwrap(), DATE);
    }
    assert_eq!(followers.len(), 2);

    let people = duckdb(&format!(
        "SELECT count(DISTINCT unionid) FROM read_parquet('{out}/identities/*/*.parquet', hive_partitioning = true)"
    ));
    let star = truth.audience.iter().find(|r| r.account_id == "*").unwrap();
    assert_eq!(people[0][0].as_i64(), star.resolved_people);

    let audience = duckdb(&format!(
        "SELECT account_id, members, unique_people FROM read_parquet('{out}/audience/*/*.parquet', hive_partitioning = true)
         WHERE snapshot_date = DATE '{DATE}' ORDER BY account_id"
    ));
    assert_eq!(audience.len(), snapshot.audience.height());
    assert_eq!(audience[0][0].as_str(), Some("*"));
    assert_eq!(audience[0][2].as_i64(), star.unique_people);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_under_faults_equals_the_fault_free_run() {
    let accounts = [
        ("brand_oa", 0.6, true),
        ("news_oa", 0.3, true),
        ("legacy_oa", 0.2, false),
    ];
    // Enough calls (~450) that each of the eight fault kinds is drawn many times.
    let clean = Fixture::start(scenario(31, 40_000, &accounts)).await;
    assert_exit(&clean.run_job(&clean.write_job(), &[]).await, 0);

    let mut faulty = scenario(31, 40_000, &accounts);
    faulty.faults = Faults {
        seed: 7,
        rate: 0.2,
        kinds: FaultKind::all().to_vec(),
        latency: std::time::Duration::ZERO,
    };
    let faulty = Fixture::start(faulty).await;
    let out = faulty.run_job(&faulty.write_job(), &[]).await;
    assert_exit(&out, 0);
    let stats = faulty.server.stats();
    let injected: u64 = stats.faults.values().sum();
    let calls: u64 = stats.calls.values().sum();
    assert!(
        injected * 100 >= calls * 5,
        "at least 5% of calls faulted: {injected} of {calls}"
    );
    for kind in FaultKind::all() {
        assert!(
            stats.faults.contains_key(&kind.to_string()),
            "{kind} injected: {stats:?}"
        );
    }
    assert_matches_truth(&faulty).await;
    assert_same_tables(
        &read_local_tables(&clean.output_dir()),
        &read_local_tables(&faulty.output_dir()),
    );
}

/// The files the date's marker names, with their rows checked on disk.
fn marker_files(output: &std::path::Path) -> Vec<String> {
    let marker = output.join(format!("_manifests/snapshot_date={DATE}/manifest.json"));
    let manifest: unionsnap::load::Manifest =
        serde_json::from_slice(&std::fs::read(marker).unwrap()).unwrap();
    for file in &manifest.files {
        let df = unionsnap::load::parquet::decode(
            std::fs::read(output.join(&file.path)).unwrap().into(),
        )
        .unwrap();
        assert_eq!(df.height() as u64, file.rows, "{}", file.path);
    }
    manifest.files.iter().map(|f| f.path.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_rerun_replaces_its_accounts_and_keeps_the_others_exact() {
    let fixture = Fixture::start(scenario(
        41,
        2_000,
        &[
            ("a_oa", 0.5, true),
            ("b_oa", 0.5, true),
            ("c_oa", 0.3, true),
        ],
    ))
    .await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    let before = marker_files(&fixture.output_dir());

    let out = fixture
        .unionsnap(
            &[
                "run",
                job.to_str().unwrap(),
                "--date",
                DATE,
                "--accounts",
                "a_oa",
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    let after = marker_files(&fixture.output_dir());
    // b_oa's and c_oa's raw partitions are the very files committed before;
    // a_oa's and the derived tables are new.
    for account in ["b_oa", "c_oa"] {
        let of = |files: &[String]| {
            files
                .iter()
                .filter(|f| f.contains(&format!("account_id={account}/")))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(of(&before), of(&after), "{account} kept as committed");
        // followers, tags and reconciliation
        assert_eq!(of(&after).len(), 3);
    }
    let a = |files: &[String]| {
        files
            .iter()
            .find(|f| f.starts_with("followers/") && f.contains("account_id=a_oa/"))
            .cloned()
    };
    assert_ne!(a(&before), a(&after), "a_oa replaced");
    assert_eq!(after.len(), before.len());
    let snapshot = read_snapshot(&fixture.output_dir()).await;
    assert_eq!(
        snapshot.manifest.accounts.len(),
        3,
        "every account still in the snapshot"
    );
    assert_matches_truth(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rerun_replaces_the_date_and_drops_an_account_the_job_no_longer_has() {
    let fixture = Fixture::start(scenario(
        42,
        2_000,
        &[("a_oa", 0.5, true), ("b_oa", 0.5, true)],
    ))
    .await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    assert!(marker_files(&fixture.output_dir())
        .iter()
        .any(|f| f.contains("account_id=b_oa")));

    // The job loses b_oa: the whole re-run's snapshot has no partition of it.
    let text = std::fs::read_to_string(&job).unwrap();
    let mut kept = Vec::new();
    for block in text.split("\n[[accounts]]") {
        if !block.contains("id = \"b_oa\"") {
            kept.push(block);
        }
    }
    fixture.write_job_text(&kept.join("\n[[accounts]]"));
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    let after = marker_files(&fixture.output_dir());
    assert!(
        !after.iter().any(|f| f.contains("account_id=b_oa")),
        "{after:?}"
    );
    assert!(
        after.iter().any(|f| f.contains("account_id=a_oa")),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_a_wrong_secret_fails_alone_and_the_run_exits_3() {
    let fixture = Fixture::start(scenario(
        51,
        2_000,
        &[("good_oa", 0.5, true), ("bad_oa", 0.5, true)],
    ))
    .await;
    let job = fixture.write_job();
    let out = fixture
        .run_job(&job, &[("UNIONSNAP_SIM_SECRET_BAD_OA", "not-the-secret")])
        .await;
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("bad_oa"), "{}", stderr(&out));
    let files = files_under(&fixture.output_dir());
    assert!(files
        .iter()
        .any(|f| f.contains("followers/snapshot_date=2026-11-21/account_id=good_oa")));
    assert!(!files.iter().any(|f| f.contains("_manifests")), "{files:?}");
}
