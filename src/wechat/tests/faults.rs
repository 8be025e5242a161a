//! How each kind of failure ends: retried to success, or stopped with the
//! right action, after a bounded number of attempts.

use std::time::{Duration, Instant};

use super::fake::{test_config, Fake, Reply, USER_GET};
use crate::wechat::{Action, ApiError};

/// One reply to the first `user/get`, then normal service: the call succeeds
/// on the second attempt and the failure is counted under `outcome`.
async fn recovers_after(reply: Reply, outcome: &str) {
    let fake = Fake::with_followers(3).await;
    fake.script(USER_GET, [reply]);
    let client = fake.client();
    let page = client.user_get_page(None).await.unwrap();
    assert_eq!(page.openids.len(), 3);
    let stats = client.stats();
    assert_eq!(stats.count(USER_GET, outcome), 1, "{stats}");
    assert_eq!(stats.count(USER_GET, "ok"), 1, "{stats}");
    assert_eq!(stats.retries, 1, "{stats}");
}

#[tokio::test]
async fn http_502_is_retried() {
    recovers_after(Reply::Status(502), "http_502").await;
}

#[tokio::test]
async fn http_429_is_retried() {
    recovers_after(Reply::Status(429), "http_429").await;
}

#[tokio::test]
async fn truncated_json_is_retried() {
    recovers_after(Reply::Truncated, "decode").await;
}

#[tokio::test]
async fn an_html_page_with_status_200_is_retried() {
    recovers_after(Reply::Html, "decode").await;
}

#[tokio::test]
async fn a_connection_dropped_mid_body_is_retried() {
    recovers_after(Reply::Drop, "body").await;
}

#[tokio::test]
async fn system_busy_is_retried() {
    recovers_after(Reply::ErrCode(-1, "system error"), "-1").await;
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let fake = Fake::with_followers(3).await;
    fake.script(USER_GET, [Reply::Sleep(Duration::from_secs(3))]);
    let mut config = test_config(&fake.base_url);
    config.timeout = Duration::from_millis(200);
    let client = fake.client_with(config);
    assert_eq!(client.user_get_page(None).await.unwrap().openids.len(), 3);
    assert_eq!(client.stats().count(USER_GET, "timeout"), 1);
}

#[tokio::test]
async fn minute_limit_45011_waits_rate_limit_wait_then_retries() {
    let fake = Fake::with_followers(3).await;
    fake.script(
        USER_GET,
        [Reply::ErrCode(
            45011,
            "api minute-quota reach limit mustslower retry next minute",
        )],
    );
    let client = fake.client(); // rate_limit_wait = 50ms
    let started = Instant::now();
    assert_eq!(client.user_get_page(None).await.unwrap().openids.len(), 3);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(client.stats().retries, 1);
}

#[tokio::test]
async fn daily_quota_45009_stops_the_account_at_once() {
    let fake = Fake::with_followers(3).await;
    fake.script(
        USER_GET,
        [Reply::ErrCode(45009, "reach max api daily quota limit")],
    );
    let err = fake.client().user_get_page(None).await.unwrap_err();
    assert!(err.is_quota());
    assert_eq!(err.action(), Action::StopAccount);
    assert_eq!(err.attempts(), 1);
    assert_eq!(fake.hits(USER_GET), 1);
}

#[tokio::test]
async fn missing_permission_48001_stops_the_account_and_says_why() {
    let fake = Fake::with_followers(3).await;
    fake.script(USER_GET, [Reply::ErrCode(48001, "api unauthorized")]);
    let err = fake.client().user_get_page(None).await.unwrap_err();
    assert_eq!(err.action(), Action::StopAccount);
    assert!(!err.is_quota() && !err.is_fatal());
    let message = err.to_string();
    assert!(
        message.starts_with("brand_oa: /cgi-bin/user/get: errcode 48001 (api unauthorized rid: "),
        "{message}"
    );
    assert!(message.contains("user-management permission"), "{message}");
}

#[tokio::test]
async fn data_format_error_47001_is_fatal() {
    let fake = Fake::with_followers(3).await;
    fake.script(USER_GET, [Reply::ErrCode(47001, "data format error")]);
    let err = fake.client().user_get_page(None).await.unwrap_err();
    assert!(err.is_fatal());
    assert_eq!(fake.hits(USER_GET), 1);
}

#[tokio::test]
async fn http_404_stops_the_account_without_retrying() {
    let fake = Fake::with_followers(3).await;
    fake.script(USER_GET, [Reply::Status(404)]);
    let err = fake.client().user_get_page(None).await.unwrap_err();
    assert!(
        matches!(err, ApiError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(err.action(), Action::StopAccount);
    assert_eq!(fake.hits(USER_GET), 1);
}

#[tokio::test]
async fn persistent_502_gives_up_after_max_retries_and_says_so() {
    let fake = Fake::with_followers(3).await;
    fake.script(USER_GET, vec![Reply::Status(502); 10]);
    let client = fake.client(); // max_retries = 3
    let err = client.user_get_page(None).await.unwrap_err();
    assert_eq!(err.attempts(), 4);
    assert_eq!(fake.hits(USER_GET), 4);
    assert_eq!(err.action(), Action::StopAccount);
    assert_eq!(
        err.to_string(),
        "brand_oa: /cgi-bin/user/get: gave up after 4 attempts; last failure: HTTP 502"
    );
    assert_eq!(client.stats().retries, 3);
}

#[tokio::test]
async fn an_unreachable_host_gives_up_with_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let fake = Fake::start().await;
    let client = fake.client_with(test_config(&closed));
    let err = client.user_get_page(None).await.unwrap_err();
    assert!(err.to_string().contains("could not connect"), "{err}");
    assert_eq!(client.stats().count("/cgi-bin/stable_token", "connect"), 4);
}

#[tokio::test]
async fn a_connection_hung_up_before_the_answer_is_retried() {
    use super::fake::{raw_json, raw_server};
    use serde_json::json;
    let token = raw_json(&json!({"access_token": "TOKEN-SENSITIVE-9", "expires_in": 7200}));
    let page =
        raw_json(&json!({"total": 1, "count": 1, "data": {"openid": ["oA"]}, "next_openid": "oA"}));
    let base_url = raw_server(vec![Some(token), None, Some(page)]).await;
    let fake = Fake::start().await;
    let client = fake.client_with(test_config(&base_url));
    assert_eq!(
        client.user_get_page(None).await.unwrap().openids,
        vec!["oA"]
    );
    assert_eq!(client.stats().count(USER_GET, "transport"), 1);
}

#[tokio::test]
async fn calls_are_paced_by_the_per_account_rate_limit() {
    let fake = Fake::with_followers(3).await;
    let mut config = test_config(&fake.base_url);
    config.requests_per_second = 10; // a burst of 10, then one every 100 ms
    let client = fake.client_with(config);
    let started = Instant::now();
    for _ in 0..14 {
        client.user_get_page(None).await.unwrap(); // + 1 token call = 15 requests
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}
