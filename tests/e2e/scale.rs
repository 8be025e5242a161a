//! The economy of API calls and resumable crawls: the second day calls only
//! for new followers, a killed run resumes, a quota stop finishes next run.

use std::time::Duration;

use crate::common::*;
use unionsnap::simulator::{FaultKind, Faults, Scenario};

/// A scenario without followers who leave during the crawl, so every listed
/// OpenID is a member and the minimum number of calls is exact.
fn steady(seed: u64, people: u64, accounts: &[(&str, f64, bool)], churn: f64) -> Scenario {
    let mut scenario = without_crawl_leavers(scenario(seed, people, accounts));
    for account in &mut scenario.accounts {
        account.daily_churn = churn;
    }
    scenario
}

fn ok_calls(fixture: &Fixture, path: &str) -> u64 {
    fixture
        .server
        .stats()
        .ok_calls
        .get(path)
        .copied()
        .unwrap_or(0)
}

const USER_GET: &str = "/cgi-bin/user/get";
const BATCHGET: &str = "/cgi-bin/user/info/batchget";

/// The OpenIDs of an account's followers partition of `date`.
fn openids(
    output: &std::path::Path,
    date: &str,
    account: &str,
) -> std::collections::BTreeSet<String> {
    let path = committed_partition(output, "followers", date, account);
    let df = unionsnap::load::parquet::decode(std::fs::read(path).unwrap().into()).unwrap();
    df.column("openid")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect()
}

/// user/get pages a list of `n` needs: full pages, plus the short last one
/// (or the empty call that ends a list of an exact multiple of 10,000).
fn pages(n: u64) -> u64 {
    n / 10_000 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_day_calls_batchget_only_for_new_followers() {
    let fixture = Fixture::start(steady(
        81,
        30_000,
        &[("brand_oa", 0.6, true), ("legacy_oa", 0.2, false)],
        0.01,
    ))
    .await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job(&job, &[]).await, 0);

    fixture.server.set_day(1);
    let (list_before, info_before) = (ok_calls(&fixture, USER_GET), ok_calls(&fixture, BATCHGET));
    let next_day = "2026-11-22";
    let out = fixture
        .unionsnap(&["run", job.to_str().unwrap(), "--date", next_day], &[])
        .await;
    assert_exit(&out, 0);

    let (mut list_min, mut info_min) = (0, 0);
    for account in ["brand_oa", "legacy_oa"] {
        let before = openids(&fixture.output_dir(), DATE, account);
        let after = openids(&fixture.output_dir(), next_day, account);
        let new = after.difference(&before).count() as u64;
        assert!(new > 0, "the population moved");
        list_min += pages(after.len() as u64);
        info_min += new.div_ceil(100);
    }
    assert_eq!(ok_calls(&fixture, USER_GET) - list_before, list_min);
    assert_eq!(ok_calls(&fixture, BATCHGET) - info_before, info_min);

    // And the numbers are exact for the new day.
    let snapshot = {
        let location = unionsnap::job::OutputLocation::Local(fixture.output_dir());
        let store = unionsnap::load::open(&location).unwrap();
        unionsnap::report::read_snapshot(&store, Some(next_day.parse().unwrap()))
            .await
            .unwrap()
    };
    let truth = fixture.server.truth();
    assert_eq!(
        unionsnap::simulator::audience_rows(&snapshot.audience).unwrap(),
        truth.audience
    );
    assert_eq!(
        unionsnap::simulator::overlap_rows(&snapshot.overlap).unwrap(),
        truth.overlap
    );
}

/// The followers carried over from the identity cache are written as soon
/// as the whole list is read, while the profiles of the last new followers
/// are still in flight, not after the crawl: with 300 ms per call, the
/// carry-over is done before the last batchget answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_followers_are_carried_over_while_the_last_profiles_are_fetched() {
    let mut scenario = steady(86, 6_000, &[("brand_oa", 0.6, true)], 0.02);
    scenario.faults = Faults {
        latency: Duration::from_millis(300),
        ..Faults::none()
    };
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    fixture.server.set_day(1);
    let out = fixture
        .run_job_on(&job, NEXT_DATE, &[("RUST_LOG", "info")])
        .await;
    assert_exit(&out, 0);
    let messages: Vec<String> = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l["fields"]["message"].as_str().map(str::to_string))
        .collect();
    let at = |message: &str| {
        (messages.iter().position(|m| m == message))
            .unwrap_or_else(|| panic!("no {message:?} in {messages:#?}"))
    };
    assert!(
        at("followers carried over") < at("crawl finished"),
        "{messages:#?}"
    );
    assert_matches_truth_on(&fixture, NEXT_DATE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_and_repeats_at_most_a_page_and_a_segment() {
    let mut scenario = steady(
        82,
        60_000,
        &[("brand_oa", 0.5, true), ("news_oa", 0.4, true)],
        0.0,
    );
    scenario.faults = Faults {
        latency: Duration::from_millis(15),
        ..Faults::none()
    };
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    let checkpoint = fixture.output_dir().join(format!(
        "_state/snapshot_date={DATE}/account_id=brand_oa/checkpoint.json"
    ));

    let mut child = tokio::process::Command::new(BIN)
        .args(["run", job.to_str().unwrap(), "--date", DATE])
        .envs(fixture.scenario.secret_env())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Kill it once brand_oa has saved a page and some profiles.
    let mut killed = false;
    for _ in 0..2_000 {
        if let Ok(text) = std::fs::read_to_string(&checkpoint) {
            let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if state["profiled"].as_u64().unwrap_or(0) > 0
                && !state["complete"].as_bool().unwrap_or(true)
            {
                child.start_kill().unwrap();
                killed = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(killed, "the crawl was caught mid-way");
    let status = child.wait().await.unwrap();
    assert!(!status.success());
    assert!(!files_under(&fixture.output_dir())
        .iter()
        .any(|f| f.starts_with("_manifests")));

    let out = fixture.run_job(&job, &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
    assert!(
        !fixture.output_dir().join("_state").exists()
            || files_under(&fixture.output_dir().join("_state")).is_empty(),
        "the state of a committed date is removed"
    );

    let truth = fixture.scenario.truth();
    let members = |id: &str| {
        truth
            .audience
            .iter()
            .find(|r| r.account_id == id)
            .unwrap()
            .members as u64
    };
    let accounts = ["brand_oa", "news_oa"];
    let list_min: u64 = accounts.iter().map(|a| pages(members(a))).sum();
    let info_min: u64 = accounts.iter().map(|a| members(a).div_ceil(100)).sum();
    let (list, info) = (ok_calls(&fixture, USER_GET), ok_calls(&fixture, BATCHGET));
    eprintln!(
        "after a kill: user/get {list} (minimum {list_min}), batchget {info} (minimum {info_min})"
    );
    // At most one page per account listed twice; at most one segment
    // (a page's worth: 100 chunks) plus the split partial chunk fetched twice.
    assert!(
        list <= list_min + 2,
        "user/get {list} vs minimum {list_min}"
    );
    assert!(
        info <= info_min + 2 * 101,
        "batchget {info} vs minimum {info_min}"
    );
    assert!(list >= list_min && info >= info_min);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_stop_exits_3_and_the_next_run_finishes_without_listing_again() {
    let mut scenario = steady(
        83,
        40_000,
        &[("brand_oa", 0.9, true), ("small_oa", 0.1, true)],
        0.0,
    );
    // brand_oa has 36,000 followers: 4 pages; today's quota allows 2.
    scenario.quotas.insert(USER_GET.to_string(), 2);
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    let out = fixture.run_job(&job, &[]).await;
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("45009") || stderr(&out).contains("quota"),
        "{}",
        stderr(&out)
    );
    assert!(!files_under(&fixture.output_dir())
        .iter()
        .any(|f| f.starts_with("_manifests")));
    let listed_first = ok_calls(&fixture, USER_GET);

    // The next day's quota (the population does not move: no churn).
    fixture.server.set_day(1);
    let out = fixture.run_job(&job, &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
    let truth = fixture.scenario.truth();
    let members = |id: &str| {
        truth
            .audience
            .iter()
            .find(|r| r.account_id == id)
            .unwrap()
            .members as u64
    };
    assert_eq!(
        ok_calls(&fixture, USER_GET),
        pages(members("brand_oa")) + pages(members("small_oa")),
        "no page listed twice (first run: {listed_first})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_invalidation_under_concurrency_costs_one_refresh_each() {
    let mut scenario = steady(84, 20_000, &[("brand_oa", 0.8, true)], 0.0);
    scenario.faults = Faults {
        seed: 5,
        rate: 0.03,
        kinds: vec![FaultKind::TokenInvalid],
        latency: Duration::from_millis(10),
    };
    let fixture = Fixture::start(scenario).await;
    assert_exit(&fixture.run_job(&fixture.write_job(), &[]).await, 0);
    assert_matches_truth(&fixture).await;
    let stats = fixture.server.stats();
    let invalidations = stats.faults.get("token-invalid").copied().unwrap_or(0);
    assert!(invalidations >= 2, "{stats:?}");
    // 8 calls in flight share a token: each invalidation makes several of
    // them fail with 40001, yet costs exactly one new token.
    assert!(
        stats.errcodes.get(&40001).copied().unwrap_or(0) > invalidations,
        "{stats:?}"
    );
    assert_eq!(
        stats.tokens_issued["brand_oa"],
        1 + invalidations,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_full_catches_known_followers_who_leave_during_the_crawl() {
    // 2% of listed followers unfollow before batchget sees them, every day.
    let mut scenario = scenario(
        85,
        6_000,
        &[("brand_oa", 0.5, true), ("news_oa", 0.4, true)],
    );
    for account in &mut scenario.accounts {
        account.leave_during_crawl = 0.02;
    }
    let fixture = Fixture::start(scenario).await;
    let text = fixture
        .scenario
        .job_toml(
            &fixture.server.base_url(),
            &fixture.output_dir().display().to_string(),
        )
        .replace(
            "kind = \"official_account\"",
            "kind = \"official_account\"\nrefresh = \"full\"",
        );
    let job = fixture.write_job_text(&text);
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    fixture.server.set_day(1);
    let before = ok_calls(&fixture, BATCHGET);
    let next_day = "2026-11-22";
    let out = fixture
        .unionsnap(&["run", job.to_str().unwrap(), "--date", next_day], &[])
        .await;
    assert_exit(&out, 0);
    let location = unionsnap::job::OutputLocation::Local(fixture.output_dir());
    let store = unionsnap::load::open(&location).unwrap();
    let snapshot = unionsnap::report::read_snapshot(&store, Some(next_day.parse().unwrap()))
        .await
        .unwrap();
    let truth = fixture.server.truth();
    assert_eq!(
        unionsnap::simulator::audience_rows(&snapshot.audience).unwrap(),
        truth.audience
    );
    // Every listed follower's profile was fetched again.
    let listed: u64 = ["brand_oa", "news_oa"]
        .iter()
        .map(|a| openids(&fixture.output_dir(), next_day, a).len() as u64)
        .sum();
    assert!(ok_calls(&fixture, BATCHGET) - before >= listed.div_ceil(100));
}

/// The dedupe spills to TMPDIR; when it cannot, the run fails with exit 1
/// and an error that says where and why, and commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_spill_folder_is_a_clear_error_and_commits_nothing() {
    let fixture = Fixture::start(steady(84, 2_000, &[("brand_oa", 0.6, true)], 0.0)).await;
    // A file where a folder should be: nothing can be created under it.
    let not_a_folder = fixture.dir.path().join("not-a-folder");
    std::fs::write(&not_a_folder, "").unwrap();
    let out = fixture
        .run_job(
            &fixture.write_job(),
            &[("TMPDIR", not_a_folder.to_str().unwrap())],
        )
        .await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("local spill") && err.contains("TMPDIR"),
        "{err}"
    );
    assert!(!files_under(&fixture.output_dir())
        .iter()
        .any(|f| f.starts_with("_manifests")));
}
