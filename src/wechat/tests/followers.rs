//! `user/get` paging: WeChat's end-of-list quirk and its failure modes.

use serde_json::json;

use super::fake::{follower_ids, Fake, Reply, USER_GET};
use crate::wechat::FollowerPage;

#[tokio::test]
async fn a_full_page_carries_its_last_openid_as_cursor() {
    let fake = Fake::with_followers(23_001).await;
    let page = fake.client().user_get_page(None).await.unwrap();
    assert_eq!(page.total, 23_001);
    assert_eq!(page.openids.len(), 10_000);
    assert_eq!(
        page.next_openid.as_deref(),
        Some(page.openids[9_999].as_str())
    );
}

#[tokio::test]
async fn a_short_page_is_the_last_one_even_though_wechat_sends_a_cursor() {
    let fake = Fake::with_followers(23_001).await;
    let client = fake.client();
    let first = client.user_get_page(None).await.unwrap();
    let second = client
        .user_get_page(first.next_openid.as_deref())
        .await
        .unwrap();
    let third = client
        .user_get_page(second.next_openid.as_deref())
        .await
        .unwrap();
    assert_eq!(third.openids.len(), 3_001);
    assert_eq!(third.next_openid, None);
}

#[tokio::test]
async fn the_pager_streams_pages_and_counts_its_calls() {
    let fake = Fake::with_followers(10_005).await;
    let mut pager = fake.client().followers();
    assert_eq!(
        pager.next_page().await.unwrap().unwrap().openids.len(),
        10_000
    );
    assert_eq!(pager.next_page().await.unwrap().unwrap().openids.len(), 5);
    assert_eq!(pager.next_page().await.unwrap(), None);
    assert_eq!(pager.pages(), 2);
    assert_eq!(fake.hits(USER_GET), 2);
}

#[tokio::test]
async fn the_call_after_the_last_page_has_no_data_and_ends_the_list() {
    let fake = Fake::with_followers(5).await;
    let client = fake.client();
    let last = follower_ids(5).pop().unwrap();
    let page = client.user_get_page(Some(&last)).await.unwrap();
    assert_eq!(
        page,
        FollowerPage {
            total: 5,
            openids: vec![],
            next_openid: None,
            empty_skipped: 0,
        }
    );
}

#[tokio::test]
async fn data_null_or_openid_missing_reads_as_an_empty_page() {
    let fake = Fake::start().await;
    fake.script(
        USER_GET,
        [
            Reply::Json(json!({"total": 3, "count": 0, "data": null, "next_openid": ""})),
            Reply::Json(json!({"total": 3, "count": 0, "data": {}, "next_openid": ""})),
            Reply::Json(json!({"total": 3, "count": 0, "data": {"openid": null}})),
        ],
    );
    let client = fake.client();
    for _ in 0..3 {
        let page = client.user_get_page(None).await.unwrap();
        assert!(page.openids.is_empty());
        assert_eq!(page.next_openid, None);
    }
}

#[tokio::test]
async fn an_account_without_followers_costs_one_call() {
    let fake = Fake::with_followers(0).await;
    let client = fake.client();
    assert!(client.list_followers().await.unwrap().is_empty());
    assert_eq!(fake.hits(USER_GET), 1);
}

#[tokio::test]
async fn a_short_last_page_ends_the_list_without_the_empty_call() {
    let fake = Fake::with_followers(23_001).await;
    let client = fake.client();
    let openids = client.list_followers().await.unwrap();
    assert_eq!(openids, follower_ids(23_001));
    assert_eq!(fake.hits(USER_GET), 3);
    assert_eq!(client.stats().count(USER_GET, "ok"), 3);
}

#[tokio::test]
async fn a_list_of_whole_pages_ends_on_the_count_0_page() {
    let fake = Fake::with_followers(20_000).await;
    let client = fake.client();
    assert_eq!(client.list_followers().await.unwrap().len(), 20_000);
    assert_eq!(fake.hits(USER_GET), 3);
}

#[tokio::test]
async fn a_server_repeating_a_page_forever_is_an_error_not_a_hang() {
    let fake = Fake::with_followers(30_000).await;
    fake.repeat_first_page_forever();
    let client = fake.client();
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), client.list_followers())
        .await
        .expect("list_followers must not loop forever")
        .unwrap_err();
    assert!(err.to_string().contains("repeated a next_openid"), "{err}");
    assert_eq!(fake.hits(USER_GET), 2);
}
