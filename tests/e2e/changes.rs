//! `changes` and `joined`/`left` across simulated days: equal to the
//! simulator's truth, null on a first snapshot, and measured against the
//! previous *complete* snapshot.

use crate::common::*;
use unionsnap::load::layout;
use unionsnap::simulator::{change_counts, change_rows};

fn two_account_scenario(seed: u64) -> unionsnap::simulator::Scenario {
    without_crawl_leavers(scenario(
        seed,
        4_000,
        &[
            ("brand_oa", 0.5, true),
            ("news_oa", 0.3, true),
            ("legacy_oa", 0.2, false),
        ],
    ))
}

/// A field of the run's "deriving people, audience and overlap" log line.
fn derivation_field(out: &std::process::Output, field: &str) -> Option<serde_json::Value> {
    stderr(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "deriving people, audience and overlap")
        .map(|l| l["fields"][field].clone())
}

fn people_carried_forward(out: &std::process::Output) -> Option<bool> {
    derivation_field(out, "people_carried_forward").and_then(|c| c.as_bool())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_snapshot_has_null_joined_left_and_no_changes() {
    let fixture = Fixture::start(two_account_scenario(31)).await;
    assert_exit(&fixture.run_job(&fixture.write_job(), &[]).await, 0);
    let audience = read_table(&fixture.output_dir(), DATE, layout::AUDIENCE).await;
    assert_eq!(
        audience.column("joined").unwrap().null_count(),
        audience.height()
    );
    assert_eq!(
        audience.column("left").unwrap().null_count(),
        audience.height()
    );
    let changes = read_table(&fixture.output_dir(), DATE, layout::CHANGES).await;
    assert_eq!(changes.height(), 0);
    assert_eq!(
        changes
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>(),
        ["account_id", "member_id", "unionid", "change"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_of_the_next_day_equal_the_truth() {
    let fixture = Fixture::start(two_account_scenario(32)).await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job_on(&job, DATE, &[]).await, 0);
    fixture.server.set_day(1);
    let out = fixture
        .run_job_on(&job, NEXT_DATE, &[("RUST_LOG", "info")])
        .await;
    assert_exit(&out, 0);
    // Official Accounts only, each carrying its followers over: today's
    // people are the previous snapshot's with the day's changes applied.
    assert_eq!(people_carried_forward(&out), Some(true));
    assert_matches_truth_on(&fixture, NEXT_DATE).await;

    let truth = fixture.server.scenario().changes_since(0);
    assert!(
        truth.rows.len() > 50,
        "the day moved people: {}",
        truth.rows.len()
    );
    let changes = read_table(&fixture.output_dir(), NEXT_DATE, layout::CHANGES).await;
    assert_eq!(change_rows(&changes).unwrap(), truth.rows);
    let audience = read_table(&fixture.output_dir(), NEXT_DATE, layout::AUDIENCE).await;
    assert_eq!(change_counts(&audience).unwrap(), truth.counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_snapshot_is_not_the_previous_one() {
    let fixture = Fixture::start(two_account_scenario(33)).await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job_on(&job, "2026-11-21", &[]).await, 0);
    fixture.server.set_day(1);
    let wrong = [("UNIONSNAP_SIM_SECRET_NEWS_OA", "wrong-secret-0000")];
    assert_exit(&fixture.run_job_on(&job, "2026-11-22", &wrong).await, 3);
    fixture.server.set_day(2);
    assert_exit(&fixture.run_job_on(&job, "2026-11-23", &[]).await, 0);

    // The 22nd has no manifest, so the 23rd is compared with the 21st.
    let truth = fixture.server.scenario().changes_since(0);
    let audience = read_table(&fixture.output_dir(), "2026-11-23", layout::AUDIENCE).await;
    assert_eq!(change_counts(&audience).unwrap(), truth.counts);
    let changes = read_table(&fixture.output_dir(), "2026-11-23", layout::CHANGES).await;
    assert_eq!(change_rows(&changes).unwrap(), truth.rows);
}

/// The derived tables are computed a bucket group at a time (bounded
/// memory): with groups of a few hundred rows, so that the 4,000 people
/// take dozens of groups, every number and every change is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bucket_groups_give_the_exact_truth() {
    let fixture = Fixture::start(two_account_scenario(34)).await;
    let job = fixture.write_job();
    let small = [("UNIONSNAP_GROUP_ROWS", "300")];
    assert_exit(&fixture.run_job_on(&job, DATE, &small).await, 0);
    assert_matches_truth_on(&fixture, DATE).await;
    fixture.server.set_day(1);
    let out = fixture
        .run_job_on(&job, NEXT_DATE, &[small[0], ("RUST_LOG", "info")])
        .await;
    assert_exit(&out, 0);
    let groups = derivation_field(&out, "groups").and_then(|g| g.as_u64());
    assert!(groups > Some(10), "{groups:?} bucket groups");
    // Many groups: people derived again, group by group.
    assert_eq!(people_carried_forward(&out), Some(false));
    assert_matches_truth_on(&fixture, NEXT_DATE).await;
    let truth = fixture.server.scenario().changes_since(0);
    let changes = read_table(&fixture.output_dir(), NEXT_DATE, layout::CHANGES).await;
    assert_eq!(change_rows(&changes).unwrap(), truth.rows);
    let audience = read_table(&fixture.output_dir(), NEXT_DATE, layout::AUDIENCE).await;
    assert_eq!(change_counts(&audience).unwrap(), truth.counts);
    let people = read_table(&fixture.output_dir(), NEXT_DATE, layout::PEOPLE).await;
    let ids = people.column("person_id").unwrap();
    assert_eq!(ids.n_unique().unwrap(), people.height(), "each person once");
}
