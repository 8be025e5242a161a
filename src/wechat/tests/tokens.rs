//! The shared access token: one fetch for many calls, proactive refresh,
//! compare-and-refresh on token errcodes, wrong credentials.

use std::time::Duration;

use futures::future::join_all;

use super::fake::{Fake, Reply, BATCHGET, STABLE_TOKEN, USER_GET};
use crate::secret::Secret;
use crate::wechat::{Action, OfficialAccountClient, WeChatHttp};

fn one_openid(i: usize) -> Vec<String> {
    vec![format!("o{i}")]
}

#[tokio::test]
async fn many_calls_share_one_token() {
    let fake = Fake::with_followers(3).await;
    let client = fake.client();
    for _ in 0..5 {
        client.user_get_page(None).await.unwrap();
    }
    assert_eq!(fake.hits(STABLE_TOKEN), 1);
    assert_eq!(client.stats().tokens_fetched, 1);
}

#[tokio::test]
async fn concurrent_first_calls_fetch_one_token() {
    let fake = Fake::start().await;
    let client = fake.client();
    let calls = (0..16).map(|i| {
        let client = client.clone();
        async move { client.batchget(&one_openid(i)).await }
    });
    for result in join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(fake.hits(STABLE_TOKEN), 1);
}

#[tokio::test]
async fn refreshes_token_once_on_40001_then_retries() {
    let fake = Fake::with_followers(3).await;
    let client = fake.client();
    client.user_get_page(None).await.unwrap();
    fake.script(USER_GET, [Reply::RevokeToken]);
    client.user_get_page(None).await.unwrap();
    assert_eq!(fake.tokens_issued(), 2);
    let stats = client.stats();
    assert_eq!(stats.tokens_fetched, 2);
    assert_eq!(stats.count(USER_GET, "40001"), 1);
    assert_eq!(stats.retries, 1);
}

#[tokio::test]
async fn sixteen_concurrent_40001s_cause_exactly_one_refresh() {
    let fake = Fake::start().await;
    let client = fake.client();
    client.verify_credentials().await.unwrap();
    fake.revoke_token();
    let calls = (0..16).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.batchget(&one_openid(i)).await })
    });
    for result in join_all(calls).await {
        result.unwrap().unwrap();
    }
    assert_eq!(fake.tokens_issued(), 2);
    assert_eq!(fake.hits(STABLE_TOKEN), 2);
    assert_eq!(client.stats().count(BATCHGET, "ok"), 16);
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() {
    let fake = Fake::with_followers(3).await;
    fake.set_expires_in(2); // kept for half its lifetime: 1 s
    let client = fake.client();
    client.user_get_page(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.user_get_page(None).await.unwrap();
    assert_eq!(fake.hits(STABLE_TOKEN), 2);
    assert_eq!(
        fake.hits(USER_GET),
        2,
        "no call was refused for a stale token"
    );
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_using_the_valid_token() {
    let fake = Fake::with_followers(3).await;
    fake.set_expires_in(4); // refresh due after 2 s, valid for 4 s
    let client = fake.client();
    client.user_get_page(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    fake.script(
        STABLE_TOKEN,
        [Reply::ErrCode(
            40164,
            "invalid ip 1.2.3.4, not in whitelist",
        )],
    );
    client.user_get_page(None).await.unwrap();
    assert_eq!(fake.hits(STABLE_TOKEN), 2);
}

#[tokio::test]
async fn a_token_revoked_on_every_call_gives_up_after_max_retries() {
    let fake = Fake::with_followers(3).await;
    fake.script(USER_GET, vec![Reply::RevokeToken; 10]);
    let err = fake.client().user_get_page(None).await.unwrap_err();
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.errcode(), Some(40001));
    assert_eq!(err.action(), Action::StopAccount);
}

#[tokio::test]
async fn a_wrong_secret_stops_the_account_without_retrying() {
    let fake = Fake::with_followers(3).await;
    let http = WeChatHttp::new(&super::fake::test_config(&fake.base_url)).unwrap();
    let client =
        OfficialAccountClient::new(http, "brand_oa", super::fake::APPID, Secret::new("wrong"));
    let err = client.user_get_page(None).await.unwrap_err();
    assert_eq!(err.errcode(), Some(40125));
    assert_eq!(err.action(), Action::StopAccount);
    assert_eq!(fake.hits(STABLE_TOKEN), 1);
    assert_eq!(fake.hits(USER_GET), 0);
}

#[tokio::test]
async fn errcode_40001_on_the_token_endpoint_means_a_wrong_secret() {
    let fake = Fake::with_followers(3).await;
    fake.script(STABLE_TOKEN, [Reply::ErrCode(40001, "invalid credential")]);
    let err = fake.client().verify_credentials().await.unwrap_err();
    assert_eq!(err.action(), Action::StopAccount);
    assert!(err.to_string().contains("secret is wrong"), "{err}");
    assert_eq!(fake.hits(STABLE_TOKEN), 1);
}

#[tokio::test]
async fn ip_whitelist_40164_names_the_fix() {
    let fake = Fake::with_followers(3).await;
    fake.script(
        STABLE_TOKEN,
        [Reply::ErrCode(
            40164,
            "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist",
        )],
    );
    let err = fake.client().list_followers().await.unwrap_err();
    assert_eq!(err.action(), Action::StopAccount);
    assert_eq!(err.endpoint(), Some("/cgi-bin/stable_token"));
    assert!(
        err.to_string().contains("IP whitelist in the MP console"),
        "{err}"
    );
    assert_eq!(fake.hits(USER_GET), 0);
}

#[test]
fn the_client_can_be_shared_across_tasks() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<OfficialAccountClient>();
}
