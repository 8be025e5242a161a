//! The simulator's endpoints over real HTTP: paging, batches, tokens, quotas.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::test_client::{errcode, sim};
use super::{Scenario, SimAccount};

fn one_account(people: u64, reach: f64) -> Scenario {
    Scenario::new(11, people, vec![SimAccount::new(11, "solo_oa", reach)])
}

#[tokio::test]
async fn paging_ends_with_a_count_zero_page_without_data() {
    let sim = sim(one_account(25_000, 0.5)).await;
    let token = sim.token(0).await;
    let pages = sim.all_pages(&token).await;
    let total = pages[0]["total"].as_u64().unwrap();
    assert!(total > 10_000, "{total}");
    assert_eq!(pages.len(), 3);

    assert_eq!(pages[0]["count"], 10_000);
    let first = pages[0]["data"]["openid"].as_array().unwrap();
    assert_eq!(pages[0]["next_openid"], first[9_999]);

    // The page carrying the last OpenIDs still points at its last one.
    let second = pages[1]["data"]["openid"].as_array().unwrap();
    assert_eq!(pages[1]["count"].as_u64().unwrap(), total - 10_000);
    assert_eq!(pages[1]["next_openid"], *second.last().unwrap());

    // Only the call after it ends the list: count 0, no data key at all.
    assert_eq!(
        pages[2],
        json!({"total": total, "count": 0, "next_openid": ""})
    );

    let openids = sim.all_openids(&token).await;
    let distinct: BTreeSet<_> = openids.iter().collect();
    assert_eq!(distinct.len() as u64, total);
    assert!(openids.iter().all(|o| o.len() == 28 && o.starts_with('o')));
}

#[tokio::test]
async fn account_without_followers_returns_count_zero_without_data() {
    let sim = sim(one_account(1_000, 0.0)).await;
    let token = sim.token(0).await;
    let page = sim.user_get(&token, "").await;
    assert_eq!(page, json!({"total": 0, "count": 0, "next_openid": ""}));
}

#[tokio::test]
async fn next_openid_must_be_an_openid_of_the_account() {
    let scenario = Scenario::new(
        11,
        1_000,
        vec![
            SimAccount::new(11, "a_oa", 0.5),
            SimAccount::new(11, "b_oa", 0.5),
        ],
    );
    let sim = sim(scenario).await;
    let (token_a, token_b) = (sim.token(0).await, sim.token(1).await);
    let openid_of_b = sim.all_openids(&token_b).await[0].clone();
    for bad in [
        openid_of_b.as_str(),
        "oPtYgjmUhBel31iEl2hpChYgCfrL",
        "garbage",
    ] {
        let answer = sim.user_get(&token_a, bad).await;
        assert_eq!(errcode(&answer), 40003, "{answer}");
        assert!(answer["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("invalid openid rid: "));
    }
}

#[tokio::test]
async fn batchget_rejects_empty_and_oversized_lists_with_40032() {
    let sim = sim(one_account(2_000, 0.5)).await;
    let token = sim.token(0).await;
    let openids = sim.all_openids(&token).await;
    assert_eq!(errcode(&sim.batchget(&token, &[]).await), 40032);
    assert_eq!(errcode(&sim.batchget(&token, &openids[..101]).await), 40032);
    assert_eq!(errcode(&sim.batchget(&token, &openids[..100]).await), 0);
}

#[tokio::test]
async fn batchget_fails_whole_call_on_one_foreign_openid() {
    let sim = sim(one_account(2_000, 0.5)).await;
    let token = sim.token(0).await;
    let mut openids = sim.all_openids(&token).await[..5].to_vec();
    openids.push("o6_bmjrPTlm6_2sgVt7hMZOPfL2M".to_string());
    let answer = sim.batchget(&token, &openids).await;
    assert_eq!(errcode(&answer), 40003);
    assert!(answer.get("user_info_list").is_none());
}

#[tokio::test]
async fn batchget_body_must_be_json() {
    let sim = sim(one_account(100, 0.5)).await;
    let token = sim.token(0).await;
    let response = sim
        .http
        .post(sim.url("/cgi-bin/user/info/batchget"))
        .query(&[("access_token", token.as_str())])
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user_list=oabc")
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(errcode(&answer), 47001);
}

#[tokio::test]
async fn batchget_bodies_of_another_shape_get_wechats_errcodes() {
    let sim = sim(one_account(100, 0.5)).await;
    let token = sim.token(0).await;
    let openid = sim.all_openids(&token).await[0].clone();
    for (body, expected) in [
        (json!([1, 2]), 47001),
        (json!({"user_list": "o1"}), 40032),
        (json!({"users": [{"openid": openid}]}), 40032),
        (json!({"user_list": [{"lang": "zh_CN"}]}), 40003),
        (json!({"user_list": [{"openid": 5}]}), 40003),
        (json!({"user_list": [{"openid": openid}, "o1"]}), 40003),
        (json!({"user_list": [{"openid": openid, "lang": 5}]}), 0),
    ] {
        let answer = sim
            .post("/cgi-bin/user/info/batchget", &token, body.clone())
            .await;
        assert_eq!(errcode(&answer), expected, "{body}");
    }
}

#[tokio::test]
async fn batchget_answers_in_request_order_with_full_profiles() {
    let sim = sim(one_account(2_000, 0.5)).await;
    let token = sim.token(0).await;
    let mut openids = sim.all_openids(&token).await[..50].to_vec();
    openids.reverse();
    let answer = sim.batchget(&token, &openids).await;
    let list = answer["user_info_list"].as_array().unwrap();
    let returned: Vec<_> = list.iter().map(|u| u["openid"].as_str().unwrap()).collect();
    assert_eq!(returned, openids);
    for user in list {
        assert_eq!(user["subscribe"], 1);
        assert!(user["subscribe_time"].as_i64().unwrap() > 1_600_000_000);
        assert!(user["subscribe_scene"]
            .as_str()
            .unwrap()
            .starts_with("ADD_SCENE_"));
        assert!(user["tagid_list"].is_array());
        assert_eq!(user["unionid"].as_str().unwrap().len(), 28);
    }
}

#[tokio::test]
async fn leavers_during_the_crawl_are_listed_but_answer_subscribe_0() {
    let mut scenario = one_account(5_000, 0.5);
    scenario.accounts[0].leave_during_crawl = 0.05;
    let truth = scenario.truth();
    let sim = sim(scenario).await;
    let profiles = sim.all_profiles(0).await;
    let left: Vec<_> = profiles.iter().filter(|p| p["subscribe"] == 0).collect();
    assert!(!left.is_empty());
    for user in &left {
        assert_eq!(user.as_object().unwrap().len(), 2, "{user}");
    }
    let members = (profiles.len() - left.len()) as i64;
    assert_eq!(truth.row("solo_oa").unwrap().members, members);
}

#[tokio::test]
async fn unbound_accounts_never_return_unionid() {
    let mut scenario = Scenario::new(
        12,
        2_000,
        vec![
            SimAccount::new(12, "bound_oa", 0.6),
            SimAccount::new(12, "unbound_oa", 0.6),
        ],
    );
    scenario.accounts[1].bound = false;
    let sim = sim(scenario).await;
    let bound = sim.all_profiles(0).await;
    let unbound = sim.all_profiles(1).await;
    assert!(bound.iter().all(|u| u["unionid"].is_string()));
    assert!(unbound.iter().all(|u| u.get("unionid").is_none()));
    assert!(unbound.iter().all(|u| u["subscribe"] == 1));
}

#[tokio::test]
async fn unionids_are_shared_across_bound_accounts_and_openids_are_not() {
    let scenario = Scenario::new(
        13,
        1_000,
        vec![
            SimAccount::new(13, "a_oa", 0.7),
            SimAccount::new(13, "b_oa", 0.7),
        ],
    );
    let sim = sim(scenario).await;
    let ids = |profiles: Vec<serde_json::Value>, key: &str| -> BTreeSet<String> {
        profiles
            .iter()
            .map(|u| u[key].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (sim.all_profiles(0).await, sim.all_profiles(1).await);
    assert!(
        ids(a.clone(), "unionid")
            .intersection(&ids(b.clone(), "unionid"))
            .count()
            > 300
    );
    assert_eq!(ids(a, "openid").intersection(&ids(b, "openid")).count(), 0);
}

#[tokio::test]
async fn user_info_returns_one_user_like_batchget() {
    let sim = sim(one_account(500, 0.5)).await;
    let token = sim.token(0).await;
    let openid = sim.all_openids(&token).await[3].clone();
    let single = sim
        .get(
            "/cgi-bin/user/info",
            &[
                ("access_token", token.as_str()),
                ("openid", openid.as_str()),
                ("lang", "zh_CN"),
            ],
        )
        .await;
    let batch = sim.batchget(&token, std::slice::from_ref(&openid)).await;
    assert_eq!(single, batch["user_info_list"][0]);
    let forged = sim
        .get(
            "/cgi-bin/user/info",
            &[
                ("access_token", token.as_str()),
                ("openid", "oForgedForgedForgedForgedFor"),
            ],
        )
        .await;
    assert_eq!(errcode(&forged), 40003);
}

#[tokio::test]
async fn classic_token_invalidates_the_previous_one() {
    let sim = sim(one_account(100, 0.5)).await;
    let account = &sim.scenario.accounts[0];
    let query = [
        ("grant_type", "client_credential"),
        ("appid", account.appid.as_str()),
        ("secret", account.secret.as_str()),
    ];
    let first = sim.get("/cgi-bin/token", &query).await;
    let second = sim.get("/cgi-bin/token", &query).await;
    assert_eq!(second["expires_in"], 7200);
    let old = sim
        .user_get(first["access_token"].as_str().unwrap(), "")
        .await;
    assert_eq!(errcode(&old), 40001);
    assert!(old["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("invalid credential, access_token is invalid or not latest rid: "));
    let new = sim
        .user_get(second["access_token"].as_str().unwrap(), "")
        .await;
    assert_eq!(errcode(&new), 0);
    assert_eq!(sim.server.stats().tokens_issued["solo_oa"], 2);
}

#[tokio::test]
async fn stable_token_repeats_until_force_refresh() {
    let sim = sim(one_account(100, 0.5)).await;
    let first = sim.stable_token_answer(0, false).await;
    let again = sim.stable_token_answer(0, false).await;
    assert_eq!(first["access_token"], again["access_token"]);
    assert!(first["access_token"]
        .as_str()
        .unwrap()
        .starts_with("SIMTOK"));
    let forced = sim.stable_token_answer(0, true).await;
    assert_ne!(forced["access_token"], first["access_token"]);
    let old = sim
        .user_get(first["access_token"].as_str().unwrap(), "")
        .await;
    assert_eq!(errcode(&old), 40001);
    // Repeats are not new tokens: only the first and the forced one count.
    assert_eq!(sim.server.stats().tokens_issued["solo_oa"], 2);
}

#[tokio::test]
async fn token_requests_check_appid_secret_and_body() {
    let sim = sim(one_account(100, 0.5)).await;
    let appid = sim.scenario.accounts[0].appid.clone();
    let post = |body: serde_json::Value| {
        let request = sim.http.post(sim.url("/cgi-bin/stable_token")).json(&body);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let wrong_secret =
        post(json!({"grant_type": "client_credential", "appid": appid, "secret": "0".repeat(32)}))
            .await;
    assert_eq!(errcode(&wrong_secret), 40125);
    assert!(wrong_secret["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("invalid appsecret"));
    let wrong_appid = post(
        json!({"grant_type": "client_credential", "appid": "wx0123456789abcdef", "secret": "x"}),
    )
    .await;
    assert_eq!(errcode(&wrong_appid), 40013);
    let form = sim
        .http
        .post(sim.url("/cgi-bin/stable_token"))
        .body("grant_type=client_credential")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(errcode(&form), 47001);
}

#[tokio::test]
async fn missing_and_expired_tokens_get_41001_and_42001() {
    let mut scenario = one_account(100, 0.5);
    scenario.token_ttl = Duration::from_millis(300);
    let sim = sim(scenario).await;
    let missing = sim.get("/cgi-bin/user/get", &[]).await;
    assert_eq!(errcode(&missing), 41001);
    let token = sim.token(0).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(errcode(&sim.user_get(&token, "").await), 42001);
    let renewed = sim.token(0).await;
    assert_ne!(renewed, token);
    assert_eq!(errcode(&sim.user_get(&renewed, "").await), 0);
}

#[tokio::test]
async fn daily_quota_runs_out_with_45009_and_quota_get_reports_it() {
    let mut scenario = one_account(100, 0.5);
    scenario.quotas.insert("/cgi-bin/user/get".to_string(), 2);
    let sim = sim(scenario).await;
    let token = sim.token(0).await;
    assert_eq!(errcode(&sim.user_get(&token, "").await), 0);
    assert_eq!(errcode(&sim.user_get(&token, "").await), 0);
    let over = sim.user_get(&token, "").await;
    assert_eq!(errcode(&over), 45009);
    assert!(over["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("reach max api daily quota limit rid: "));

    let quota = sim.quota(&token, "/cgi-bin/user/get").await;
    assert_eq!(
        quota,
        json!({"errcode": 0, "errmsg": "ok", "quota": {"daily_limit": 2, "used": 2, "remain": 0}})
    );
    let unlimited = sim.quota(&token, "/cgi-bin/user/info/batchget").await;
    assert_eq!(unlimited["quota"]["daily_limit"], 5_000_000);
    assert_eq!(errcode(&sim.quota(&token, "/cgi-bin/nope").await), 76021);
    assert_eq!(errcode(&sim.quota(&token, "cgi-bin/user/get").await), 76003);

    // A new day brings a new quota.
    sim.server.set_day(1);
    assert_eq!(errcode(&sim.user_get(&token, "").await), 0);
}

#[tokio::test]
async fn stats_count_calls_successes_and_errcodes() {
    let sim = sim(one_account(100, 0.5)).await;
    let token = sim.token(0).await;
    sim.user_get(&token, "").await;
    sim.user_get("bogus", "").await;
    let stats = sim.server.stats();
    assert_eq!(stats.calls_to("/cgi-bin/user/get"), 2);
    assert_eq!(stats.ok_calls_to("/cgi-bin/user/get"), 1);
    assert_eq!(stats.ok_calls_to("/cgi-bin/stable_token"), 1);
    assert_eq!(stats.errcode_count(40001), 1);
    let over_http: super::SimStats = sim
        .http
        .get(sim.url("/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, stats);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = sim(one_account(100, 0.5)).await;
    sim.token(0).await;
    let url = sim.url("/_sim/stats");
    let http = sim.http.clone();
    sim.server.shutdown().await;
    assert!(http.get(url).send().await.is_err());
}
