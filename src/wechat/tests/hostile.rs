//! Hostile answers (issue: "no panic, bounded memory, no false success"): an
//! absurd or missing token lifetime, batchget rows that do not match the
//! OpenIDs asked for, bodies larger than any real answer, retries past their
//! time budget, and plain http to another machine.

use std::time::{Duration, Instant};

use serde_json::json;

use super::fake::{test_config, Fake, Reply, BATCHGET, STABLE_TOKEN, USER_GET};
use crate::secret::Secret;
use crate::wechat::{ApiConfig, ApiError, OfficialAccountClient, WeChatHttp};

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// A client of the fake's account with `config`.
fn client_with(config: ApiConfig) -> OfficialAccountClient {
    OfficialAccountClient::new(
        WeChatHttp::new(&config).unwrap(),
        "brand_oa",
        super::fake::APPID,
        Secret::new(super::fake::SECRET),
    )
}

fn row(openid: &str) -> serde_json::Value {
    json!({"subscribe": 1, "openid": openid, "unionid": format!("u{openid}")})
}

#[tokio::test]
async fn an_expires_in_of_u64_max_is_clamped_not_a_panic() {
    let fake = Fake::with_followers(3).await;
    fake.set_expires_in(u64::MAX);
    let client = fake.client();
    client.user_get_page(None).await.unwrap();
    client.user_get_page(None).await.unwrap();
    assert_eq!(fake.hits(STABLE_TOKEN), 1);
}

#[tokio::test]
async fn an_expires_in_of_zero_or_missing_does_not_fetch_a_token_per_call() {
    for expires_in in [0, 1] {
        let fake = Fake::with_followers(3).await;
        fake.set_expires_in(expires_in);
        let client = client_with(ApiConfig {
            min_token_lifetime: Duration::from_secs(60),
            ..test_config(&fake.base_url)
        });
        for _ in 0..20 {
            client.user_get_page(None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        assert_eq!(fake.hits(STABLE_TOKEN), 1, "expires_in = {expires_in}");
    }
}

#[tokio::test]
async fn batchget_rows_listed_twice_or_not_asked_for_are_dropped() {
    let fake = Fake::start().await;
    fake.script(
        BATCHGET,
        [Reply::Json(json!({"user_info_list": [
            row("oB"), row("oA"), row("oB"), row("oStranger"), row("oA"),
        ]}))],
    );
    let users = fake.client().batchget(&ids(&["oA", "oB"])).await.unwrap();
    let openids: Vec<&str> = users.iter().map(|user| user.openid.as_str()).collect();
    assert_eq!(
        openids,
        ["oA", "oB"],
        "one row per OpenID, in the order asked"
    );
    assert_eq!(fake.hits(BATCHGET), 1);
}

#[tokio::test]
async fn batchget_rows_missing_from_an_answer_are_asked_again_once() {
    let fake = Fake::start().await;
    fake.script(
        BATCHGET,
        [Reply::Json(json!({"user_info_list": [row("oA")]}))],
    );
    let users = fake
        .client()
        .batchget(&ids(&["oA", "oB", "oC"]))
        .await
        .unwrap();
    assert_eq!(users.len(), 3);
    assert_eq!(fake.hits(BATCHGET), 2, "the second call asks for oB and oC");
}

#[tokio::test]
async fn batchget_rows_missing_twice_fail_the_account_not_silently() {
    let fake = Fake::start().await;
    let partial = Reply::Json(json!({"user_info_list": [row("oA")]}));
    fake.script(BATCHGET, [partial.clone(), partial]);
    let err = fake
        .client()
        .batchget(&ids(&["oA", "oB", "oC"]))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::UnexpectedBody { .. }), "{err}");
    assert!(err.to_string().contains("2 of the 3 OpenIDs"), "{err}");
    assert!(!err.to_string().contains("oB"), "no id in messages: {err}");
}

#[tokio::test]
async fn empty_openids_in_user_get_are_skipped() {
    let fake = Fake::start().await;
    fake.script(
        USER_GET,
        [Reply::Json(json!({
            "total": 3, "count": 3,
            "data": {"openid": ["", "oA", "oB"]},
            "next_openid": "oB"
        }))],
    );
    let page = fake.client().user_get_page(None).await.unwrap();
    assert_eq!(page.openids, ["oA", "oB"]);
    assert_eq!(page.empty_skipped, 1);
}

#[tokio::test]
async fn a_body_larger_than_max_body_is_abandoned_while_read() {
    for chunked in [false, true] {
        let fake = Fake::with_followers(3).await;
        fake.script(
            USER_GET,
            [Reply::Huge {
                bytes: 64 << 20,
                chunked,
            }],
        );
        let client = client_with(ApiConfig {
            max_body: 1 << 20,
            ..test_config(&fake.base_url)
        });
        let err = client.user_get_page(None).await.unwrap_err();
        assert!(
            matches!(err, ApiError::TooLarge { limit, .. } if limit == 1 << 20),
            "chunked = {chunked}: {err}"
        );
        assert_eq!(fake.hits(USER_GET), 1, "not retried");
    }
}

#[tokio::test]
async fn retries_stop_at_retry_timeout_before_max_retries() {
    let fake = Fake::with_followers(3).await;
    fake.script(
        USER_GET,
        vec![Reply::ErrCode(45011, "api minute-quota reach limit"); 50],
    );
    let client = client_with(ApiConfig {
        max_retries: 40,
        rate_limit_wait: Duration::from_millis(100),
        retry_timeout: Duration::from_millis(350),
        ..test_config(&fake.base_url)
    });
    let started = Instant::now();
    let err = client.user_get_page(None).await.unwrap_err();
    assert!(matches!(err, ApiError::RetriesExhausted { .. }), "{err}");
    assert!(err.attempts() <= 4, "{} attempts", err.attempts());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn plain_http_to_another_machine_is_refused_unless_allowed() {
    let remote = |allow| ApiConfig {
        base_url: "http://api.weixin.qq.com".to_string(),
        allow_insecure_http: allow,
        ..ApiConfig::default()
    };
    let err = WeChatHttp::new(&remote(false)).unwrap_err();
    assert!(err.to_string().contains("allow_insecure_http"), "{err}");
    WeChatHttp::new(&remote(true)).unwrap();
    for local in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        WeChatHttp::new(&ApiConfig {
            base_url: local.to_string(),
            ..ApiConfig::default()
        })
        .unwrap();
    }
}

/// The real body (tests/fixtures/wechat, from a developer-community report).
fn fixture(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/wechat")
            .join(path),
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_40032_for_a_full_batch_splits_it_instead_of_stopping_the_run() {
    let fake = Fake::start().await;
    let refused = fixture("official_account/user_info_batchget__err_40032_hint_and_rid.json");
    fake.script(BATCHGET, [Reply::Json(refused)]);
    let openids: Vec<String> = (0..100).map(|i| format!("oUser{i:023}")).collect();
    let users = fake.client().batchget(&openids).await.unwrap();
    assert_eq!(users.len(), 100);
    let got: Vec<&str> = users.iter().map(|u| u.openid.as_str()).collect();
    assert_eq!(got, openids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(fake.hits(BATCHGET), 3, "the refused call, then two halves");
}

#[tokio::test]
async fn a_40032_that_persists_stops_the_account_not_the_run() {
    let fake = Fake::start().await;
    let refused = fixture("official_account/user_info_batchget__err_40032_hint_and_rid.json");
    fake.script(BATCHGET, vec![Reply::Json(refused); 10]);
    let err = fake
        .client()
        .batchget(&ids(&["oA", "oB"]))
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(40032));
    assert!(!err.is_fatal(), "{err}");
}
