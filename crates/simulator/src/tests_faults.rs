//! Injected faults, days and the ground truth, observed over real HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::test_client::{errcode, sim, Sim};
use super::{FaultKind, Faults, Scenario, SimAccount, Truth, ALL_ACCOUNTS};

fn scenario() -> Scenario {
    Scenario::new(21, 300, vec![SimAccount::new(21, "solo_oa", 0.5)])
}

/// A simulator with a clean token, then every request faulted with `kind`.
async fn always(kind: FaultKind) -> (Sim, String) {
    let sim = sim(scenario()).await;
    let token = sim.token(0).await;
    sim.server.set_faults(Faults {
        seed: 1,
        rate: 1.0,
        kinds: vec![kind],
        latency: Duration::ZERO,
    });
    (sim, token)
}

async fn user_get_response(sim: &Sim, token: &str) -> reqwest::Response {
    sim.http
        .get(sim.url("/cgi-bin/user/get"))
        .query(&[("access_token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn busy_fault_answers_minus_1() {
    let (sim, token) = always(FaultKind::Busy).await;
    let answer = sim.user_get(&token, "").await;
    assert_eq!(errcode(&answer), -1);
    assert!(answer["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("system error rid: "));
    assert_eq!(sim.server.stats().faults["busy"], 1);
}

#[tokio::test]
async fn minute_limit_fault_answers_45011() {
    let (sim, token) = always(FaultKind::MinuteLimit).await;
    assert_eq!(errcode(&sim.user_get(&token, "").await), 45011);
}

#[tokio::test]
async fn token_invalid_fault_knocks_the_token_out() {
    let (sim, token) = always(FaultKind::TokenInvalid).await;
    assert_eq!(errcode(&sim.user_get(&token, "").await), 40001);
    sim.server.set_faults(Faults::none());
    assert_eq!(errcode(&sim.user_get(&token, "").await), 40001);
    let renewed = sim.token(0).await;
    assert_ne!(renewed, token);
    assert_eq!(errcode(&sim.user_get(&renewed, "").await), 0);
}

#[tokio::test]
async fn token_expired_fault_expires_the_token() {
    let (sim, token) = always(FaultKind::TokenExpired).await;
    assert_eq!(errcode(&sim.user_get(&token, "").await), 42001);
    sim.server.set_faults(Faults::none());
    assert_eq!(errcode(&sim.user_get(&token, "").await), 42001);
    let renewed = sim.token(0).await;
    assert_eq!(errcode(&sim.user_get(&renewed, "").await), 0);
}

#[tokio::test]
async fn token_faults_on_token_endpoints_answer_busy() {
    let (sim, _) = always(FaultKind::TokenExpired).await;
    assert_eq!(errcode(&sim.stable_token_answer(0, false).await), -1);
}

#[tokio::test]
async fn http_502_fault_serves_an_html_gateway_page() {
    let (sim, token) = always(FaultKind::Http502).await;
    let response = user_get_response(&sim, &token).await;
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("502 Bad Gateway"));
}

#[tokio::test]
async fn drop_fault_breaks_the_body() {
    let (sim, token) = always(FaultKind::Drop).await;
    let result = match sim
        .http
        .get(sim.url("/cgi-bin/user/get"))
        .query(&[("access_token", &token)])
        .send()
        .await
    {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(result.is_err());
    assert_eq!(sim.server.stats().faults["drop"], 1);
}

#[tokio::test]
async fn truncate_fault_serves_the_first_half_of_the_real_body() {
    let (sim, token) = always(FaultKind::Truncate).await;
    let truncated = user_get_response(&sim, &token).await.text().await.unwrap();
    sim.server.set_faults(Faults::none());
    let full = user_get_response(&sim, &token).await.text().await.unwrap();
    assert_eq!(truncated, full[..full.len() / 2]);
    assert!(serde_json::from_str::<serde_json::Value>(&truncated).is_err());
}

#[tokio::test]
async fn non_json_fault_serves_html_with_200() {
    let (sim, token) = always(FaultKind::NonJson).await;
    let response = user_get_response(&sim, &token).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("<!DOCTYPE html>"));
}

#[tokio::test]
async fn faulted_requests_do_not_count_against_quota() {
    let (sim, token) = always(FaultKind::Truncate).await;
    for _ in 0..3 {
        user_get_response(&sim, &token).await.text().await.unwrap();
    }
    sim.server.set_faults(Faults::none());
    let quota = sim.quota(&token, "/cgi-bin/user/get").await;
    assert_eq!(quota["quota"]["used"], 0);
    let stats = sim.server.stats();
    assert_eq!(stats.calls_to("/cgi-bin/user/get"), 3);
    assert_eq!(stats.ok_calls_to("/cgi-bin/user/get"), 0);
}

#[tokio::test]
async fn latency_delays_every_response() {
    let mut scenario = scenario();
    scenario.faults.latency = Duration::from_millis(150);
    let sim = sim(scenario).await;
    let started = Instant::now();
    sim.token(0).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

/// Audience and overlap recomputed from nothing but what the API serves.
async fn crawl_truth(sim: &Sim) -> BTreeMap<String, (i64, BTreeSet<String>)> {
    let mut crawled = BTreeMap::new();
    for (index, account) in sim.scenario.accounts.iter().enumerate() {
        let members: Vec<_> = sim
            .all_profiles(index)
            .await
            .into_iter()
            .filter(|user| user["subscribe"] == 1)
            .collect();
        let unionids = members
            .iter()
            .filter_map(|user| user["unionid"].as_str().map(str::to_string))
            .collect();
        crawled.insert(account.id.clone(), (members.len() as i64, unionids));
    }
    crawled
}

fn assert_truth_matches(truth: &Truth, crawled: &BTreeMap<String, (i64, BTreeSet<String>)>) {
    let mut all_unionids = BTreeSet::new();
    let mut unresolved_total = 0;
    for (id, (members, unionids)) in crawled {
        let row = truth.row(id).unwrap();
        assert_eq!(row.members, *members, "{id}");
        assert_eq!(row.resolved, unionids.len() as i64, "{id}");
        let others: BTreeSet<&String> = crawled
            .iter()
            .filter(|(other, _)| *other != id)
            .flat_map(|(_, (_, u))| u)
            .collect();
        let exclusive = unionids.iter().filter(|u| !others.contains(u)).count() as i64;
        assert_eq!(
            row.exclusive_people,
            Some(exclusive + members - unionids.len() as i64)
        );
        for (other, (_, other_unionids)) in crawled {
            if id < other {
                let shared = unionids.intersection(other_unionids).count() as i64;
                assert_eq!(truth.shared(id, other), Some(shared), "{id} {other}");
            }
        }
        all_unionids.extend(unionids.iter().cloned());
        unresolved_total += members - unionids.len() as i64;
    }
    let star = truth.row(ALL_ACCOUNTS).unwrap();
    assert_eq!(star.resolved_people, Some(all_unionids.len() as i64));
    assert_eq!(
        star.unique_people,
        Some(all_unionids.len() as i64 + unresolved_total)
    );
}

fn small_world() -> Scenario {
    let mut accounts = vec![
        SimAccount::new(31, "brand_oa", 0.45),
        SimAccount::new(31, "news_oa", 0.3),
        SimAccount::new(31, "shop_oa", 0.2),
        SimAccount::new(31, "legacy_oa", 0.1),
    ];
    accounts[3].bound = false;
    for account in &mut accounts {
        account.leave_during_crawl = 0.02;
        account.daily_churn = 0.05;
    }
    Scenario::new(31, 3_000, accounts)
}

#[tokio::test]
async fn truth_matches_a_brute_force_crawl_over_http() {
    let scenario = small_world();
    let truth = scenario.truth();
    let sim = sim(scenario).await;
    assert_truth_matches(&truth, &crawl_truth(&sim).await);
}

#[tokio::test]
async fn set_day_moves_followers_and_the_truth_follows() {
    let sim = sim(small_world()).await;
    let token = sim.token(0).await;
    let day0: BTreeSet<_> = sim.all_openids(&token).await.into_iter().collect();
    sim.server.set_day(2);
    assert_eq!(sim.server.day(), 2);
    let day2: BTreeSet<_> = sim.all_openids(&token).await.into_iter().collect();
    assert!(day0.difference(&day2).count() > 0, "nobody left");
    assert!(day2.difference(&day0).count() > 0, "nobody joined");
    let truth = sim.server.truth();
    assert_eq!(truth.snapshot_day, 2);
    assert_truth_matches(&truth, &crawl_truth(&sim).await);
}

#[tokio::test]
async fn a_million_people_over_two_accounts_build_and_serve() {
    let scenario = Scenario::new(
        41,
        1_000_000,
        vec![
            SimAccount::new(41, "big_oa", 0.5),
            SimAccount::new(41, "mid_oa", 0.2),
        ],
    );
    let sim = sim(scenario).await;
    let token = sim.token(0).await;
    let page = sim.user_get(&token, "").await;
    let total = page["total"].as_u64().unwrap();
    assert!((490_000..510_000).contains(&total), "{total}");
    assert_eq!(page["count"], 10_000);
}

#[tokio::test]
async fn sim_day_endpoint_moves_the_population() {
    let sim = sim(small_world()).await;
    let answer: serde_json::Value = sim
        .http
        .post(sim.url("/_sim/day"))
        .json(&serde_json::json!({"day": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["day"], 3);
    assert_eq!(sim.server.day(), 3);
    assert_eq!(sim.server.scenario().day, 3);
}
