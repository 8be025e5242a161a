//! `user/info/batchget` and `openapi/quota/get`: tolerant parsing, limits.

use serde_json::json;

use super::fake::{Fake, Reply, BATCHGET, QUOTA};
use crate::wechat::{Quota, UserInfo};

fn openids(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[tokio::test]
async fn batchget_reads_followers_and_ignores_legacy_empty_fields() {
    let fake = Fake::start().await;
    let users = fake.client().batchget(&openids(&["oA"])).await.unwrap();
    assert_eq!(
        users,
        vec![UserInfo {
            subscribe: 1,
            openid: "oA".into(),
            unionid: Some("uoA".into()),
            subscribe_time: Some(1_700_000_000),
            language: Some("zh_CN".into()),
            remark: None,
            tagid_list: vec![2, 128],
            subscribe_scene: Some("ADD_SCENE_QR_CODE".into()),
            qr_scene: Some(98765),
            qr_scene_str: None,
        }]
    );
}

#[tokio::test]
async fn batchget_returns_unfollowed_rows_as_they_are() {
    let fake = Fake::start().await;
    let users = fake
        .client()
        .batchget(&openids(&["oA", "goneB"]))
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[1].subscribe, 0);
    assert_eq!(users[1].openid, "goneB");
    assert_eq!(users[1].unionid, None);
    assert!(users[1].tagid_list.is_empty());
}

#[tokio::test]
async fn batchget_tolerates_empty_unionids_and_numbers_as_strings() {
    let fake = Fake::start().await;
    fake.script(
        BATCHGET,
        [Reply::Json(json!({"user_info_list": [{
            "subscribe": "1", "openid": "oA", "unionid": "", "subscribe_time": "1700000000",
            "tagid_list": null, "qr_scene": "0"
        }]}))],
    );
    let users = fake.client().batchget(&openids(&["oA"])).await.unwrap();
    assert_eq!(users[0].subscribe, 1);
    assert_eq!(users[0].unionid, None);
    assert_eq!(users[0].subscribe_time, Some(1_700_000_000));
    assert_eq!(users[0].qr_scene, Some(0));
}

#[tokio::test]
async fn batchget_of_nothing_makes_no_call() {
    let fake = Fake::start().await;
    assert!(fake.client().batchget(&[]).await.unwrap().is_empty());
    assert_eq!(fake.hits(BATCHGET), 0);
}

#[tokio::test]
async fn batchget_sends_json_that_the_server_accepts_for_100_openids() {
    let fake = Fake::start().await;
    let hundred: Vec<String> = (0..100).map(|i| format!("o{i}")).collect();
    assert_eq!(fake.client().batchget(&hundred).await.unwrap().len(), 100);
}

#[tokio::test]
#[cfg_attr(debug_assertions, should_panic(expected = "at most 100"))]
async fn batchget_of_more_than_100_is_a_fatal_caller_bug() {
    let fake = Fake::start().await;
    let too_many: Vec<String> = (0..101).map(|i| format!("o{i}")).collect();
    let err = fake.client().batchget(&too_many).await.unwrap_err();
    assert!(err.is_fatal());
    assert_eq!(fake.hits(BATCHGET), 0);
}

#[tokio::test]
async fn quota_reads_limit_used_and_remain() {
    let fake = Fake::start().await;
    let quota = fake.client().quota("/cgi-bin/user/get").await.unwrap();
    assert_eq!(
        quota,
        Quota {
            daily_limit: 500,
            used: 12,
            remain: 488
        }
    );
    assert_eq!(fake.hits(QUOTA), 1);
}
