//! `run --shard I/N` + `merge` against the simulator: shards write raw
//! partitions only, the merge commits, and the warehouse equals that of one
//! unsharded run.

use std::collections::BTreeMap;

use crate::common::*;
use unionsnap::shard::{self, Shard};

const ACCOUNTS: [(&str, f64, bool); 4] = [
    ("brand_oa", 0.5, true),
    ("news_oa", 0.3, true),
    ("shop_oa", 0.2, true),
    ("legacy_oa", 0.15, false),
];

fn shard_arg(index: usize, count: usize) -> String {
    format!("{index}/{count}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_runs_and_a_merge_equal_an_unsharded_run() {
    let whole = Fixture::start(scenario(51, 6_000, &ACCOUNTS)).await;
    assert_exit(&whole.run_job(&whole.write_job(), &[]).await, 0);

    let sharded = Fixture::start(scenario(51, 6_000, &ACCOUNTS)).await;
    let job = sharded.write_job();
    let job = job.to_str().unwrap();
    // Shard 0 from the command line, shard 1 the way a Kubernetes Indexed Job
    // passes it: JOB_COMPLETION_INDEX and the completions count.
    let out = sharded
        .unionsnap(
            &["run", job, "--date", DATE, "--shard", &shard_arg(0, 2)],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    let out = sharded
        .unionsnap(
            &["run", job, "--date", DATE],
            &[(shard::INDEX_ENV, "1"), (shard::COUNT_ENV, "2")],
        )
        .await;
    assert_exit(&out, 0);
    // Besides the raw partitions (followers, tags, reconciliation of each
    // Official Account), only crawl state (a checkpoint marking each account
    // complete, so a re-run of the shard need not crawl again) and the
    // vacuum's journal (the date written).
    let landed: Vec<String> = files_under(&sharded.output_dir())
        .into_iter()
        .filter(|f| !is_bookkeeping(f))
        .collect();
    let raw = ["followers/", "tags/", "reconciliation/"];
    assert_eq!(
        landed.len(),
        raw.len() * ACCOUNTS.len(),
        "raw partitions only: {landed:?}"
    );
    for table in raw {
        let of_table = landed.iter().filter(|f| f.starts_with(table)).count();
        assert_eq!(of_table, ACCOUNTS.len(), "{table}: {landed:?}");
    }

    let out = sharded
        .unionsnap(&["merge", job, "--date", DATE], &[])
        .await;
    assert_exit(&out, 0);
    // The merge logs in a `run` span of its own, as a run does.
    the_run_id_of_every_line(&out);
    assert_same_tables(
        &read_local_tables(&whole.output_dir()),
        &read_local_tables(&sharded.output_dir()),
    );
    assert_matches_truth(&sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_exits_3_naming_the_accounts_whose_shard_has_not_landed() {
    let fixture = Fixture::start(scenario(52, 2_000, &ACCOUNTS)).await;
    let job = fixture.write_job();
    let job = job.to_str().unwrap();
    let out = fixture
        .unionsnap(&["run", job, "--date", DATE, "--shard", "0/2"], &[])
        .await;
    assert_exit(&out, 0);
    let out = fixture
        .unionsnap(&["merge", job, "--date", DATE], &[])
        .await;
    assert_exit(&out, 3);

    let ids: Vec<&str> = ACCOUNTS.iter().map(|a| a.0).collect();
    let missing = shard::accounts_of(Shard { index: 1, count: 2 }, &ids, &BTreeMap::new());
    assert!(!missing.is_empty());
    let message = stderr(&out);
    let named = message
        .split_once("no raw partition for ")
        .and_then(|(_, rest)| rest.split_once(" —"))
        .map(|(list, _)| list.to_string())
        .unwrap_or_else(|| panic!("no list of missing accounts in: {message}"));
    assert_eq!(named, missing.join(", "));
    let files = files_under(&fixture.output_dir());
    assert!(
        !files.iter().any(|f| f.starts_with("_manifests")),
        "{files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_are_balanced_by_the_sizes_of_the_previous_snapshot() {
    // One account as big as the three others together.
    let accounts = [
        ("a_oa", 0.2, true),
        ("b_oa", 0.2, true),
        ("c_oa", 0.2, true),
        ("d_oa", 0.7, true),
    ];
    let fixture = Fixture::start(scenario(53, 3_000, &accounts)).await;
    let job = fixture.write_job();
    let job = job.to_str().unwrap();
    // Without a previous snapshot: equal weights, so two accounts per shard.
    assert_exit(
        &fixture
            .unionsnap(&["run", job, "--date", "2026-11-20"], &[])
            .await,
        0,
    );
    // Now the 20th is complete and d_oa is known to be the biggest: it gets
    // a shard of its own.
    let out = fixture
        .unionsnap(&["run", job, "--date", DATE, "--shard", "0/2"], &[])
        .await;
    assert_exit(&out, 0);
    let written: Vec<String> = files_under(&fixture.output_dir())
        .into_iter()
        .filter(|f| f.contains(&format!("snapshot_date={DATE}")) && !is_bookkeeping(f))
        .collect();
    // d_oa's followers, tags and reconciliation partitions, nothing else.
    assert_eq!(written.len(), 3, "{written:?}");
    for table in ["followers", "reconciliation", "tags"] {
        let prefix = format!("{table}/snapshot_date={DATE}/account_id=d_oa/part-");
        assert!(
            written
                .iter()
                .any(|f| f.starts_with(&prefix) && f.ends_with("-0.parquet")),
            "{written:?}"
        );
    }
    // The run span carries the shard in every JSON log line of the run.
    assert!(
        stderr(&out).contains("\"shard\":\"0/2\""),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_does_not_exist_exits_2_writing_nothing() {
    let fixture = Fixture::start(scenario(54, 100, &ACCOUNTS)).await;
    let job = fixture.write_job();
    let out = fixture
        .unionsnap(&["run", job.to_str().unwrap(), "--shard", "2/2"], &[])
        .await;
    assert_exit(&out, 2);
    assert!(files_under(&fixture.output_dir()).is_empty());
    let out = fixture
        .unionsnap(&["run", job.to_str().unwrap()], &[(shard::INDEX_ENV, "0")])
        .await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains(shard::COUNT_ENV), "{}", stderr(&out));
}
