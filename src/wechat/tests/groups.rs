//! The customer group chat client: against the simulator (every listed chat
//! read once, staff and external members, the calls it costs) and against
//! hostile fakes on 127.0.0.1 (a list cursor that repeats, a permission
//! error, a chat dismissed between the list and its get).

use std::time::Duration;

use crate::secret::Secret;
use crate::simulator::{self, Scenario, SimAccount, SimCorp};
use crate::wechat::wecom_groups::{GROUPCHAT_GET_PATH, GROUPCHAT_LIST_PATH};
use crate::wechat::{Action, ApiConfig, ApiError, WeChatHttp, WeComClient};

const SEED: u64 = 91;

fn config(base_url: String) -> ApiConfig {
    ApiConfig {
        base_url: base_url.clone(),
        wecom_base_url: base_url,
        requests_per_second: 100_000,
        backoff: Duration::from_millis(1),
        rate_limit_wait: Duration::from_millis(1),
        ..ApiConfig::default()
    }
}

/// A WeCom host answering `list` to every groupchat/list and `get` to every
/// groupchat/get.
async fn fake(list: serde_json::Value, get: serde_json::Value) -> WeComClient {
    use axum::routing::{get as http_get, post};
    let router = axum::Router::new()
        .route(
            "/cgi-bin/gettoken",
            http_get(|| async {
                r#"{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":7200}"#
            }),
        )
        .route(
            GROUPCHAT_LIST_PATH,
            post(move || async move { list.to_string() }),
        )
        .route(
            GROUPCHAT_GET_PATH,
            post(move || async move { get.to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = WeChatHttp::new(&config(base_url)).unwrap();
    WeComClient::new(http, "crm", "ww0123456789abcdef", Secret::new("s"))
}

#[tokio::test]
async fn every_listed_chat_is_read_once_with_its_members() {
    let corp = SimCorp {
        group_chats: 2_100,
        group_reach: 0.3,
        ..SimCorp::new(SEED, "crm", 0.2)
    };
    let scenario = Scenario {
        corps: vec![corp],
        ..Scenario::new(SEED, 3_000, vec![SimAccount::new(SEED, "brand_oa", 0.5)])
    };
    let server = simulator::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = WeChatHttp::new(&config(server.base_url())).unwrap();
    let corp = &server.scenario().corps[0];
    let client = WeComClient::new(http, "crm", &corp.corpid, Secret::new(corp.secret.clone()));
    let chats = client.group_chats(4).await.unwrap();
    let listed = chats.chats.len() as u64;
    assert!(listed > 1_800 && listed < 2_100, "{listed}");
    assert_eq!(chats.vanished, 0);
    // One list call per 1,000 chats, one get per chat: nothing more.
    let pages = listed.div_ceil(1_000);
    assert_eq!(chats.list_calls as u64, pages);
    let stats = client.stats();
    assert_eq!(stats.calls_to(GROUPCHAT_LIST_PATH), pages);
    assert_eq!(stats.calls_to(GROUPCHAT_GET_PATH), listed);
    let staff = chats
        .chats
        .iter()
        .flat_map(|(_, c)| &c.members)
        .filter(|m| m.member_type == 1);
    assert!(staff.count() as u64 >= 2 * listed);
    let external = chats
        .chats
        .iter()
        .flat_map(|(_, c)| &c.members)
        .filter(|m| m.member_type == 2);
    assert!(external.clone().count() > 500);
    assert!(external
        .clone()
        .all(|m| m.userid.starts_with("wm") || m.userid.starts_with("wo")));
    assert!(external
        .filter(|m| m.userid.starts_with("wo"))
        .all(|m| m.unionid.is_none()));
    assert!(chats.chats.iter().all(|(_, c)| c.member_version.is_some()));
}

#[tokio::test]
async fn a_list_cursor_handed_back_twice_stops_the_account_instead_of_looping() {
    let client = fake(
        serde_json::json!({"errcode": 0, "errmsg": "ok", "next_cursor": "SAME",
            "group_chat_list": [{"chat_id": "wrA", "status": 0}]}),
        serde_json::json!({"errcode": 0, "errmsg": "ok", "group_chat": {"chat_id": "wrA"}}),
    )
    .await;
    let err = client.group_chats(1).await.unwrap_err();
    assert!(
        matches!(err, ApiError::RepeatedPage { pages: 2, .. }),
        "{err}"
    );
    assert_eq!(client.stats().calls_to(GROUPCHAT_GET_PATH), 0);
}

#[tokio::test]
async fn an_app_without_the_permission_fails_with_what_to_do() {
    let client = fake(
        serde_json::json!({"errcode": 48002, "errmsg": "api forbidden, hint: [1], from ip: 1.2.3.4, more info at https://open.work.weixin.qq.com/devtool/query?e=48002"}),
        serde_json::json!({}),
    )
    .await;
    let err = client.group_chats(1).await.unwrap_err();
    assert_eq!(err.errcode(), Some(48002));
    assert_eq!(err.action(), Action::StopAccount);
    assert!(
        err.to_string().contains("customer-contact permission"),
        "{err}"
    );
}

#[tokio::test]
async fn a_chat_dismissed_after_the_list_is_skipped_and_counted() {
    let client = fake(
        serde_json::json!({"errcode": 0, "errmsg": "ok", "next_cursor": "",
            "group_chat_list": [{"chat_id": "wrA", "status": 1}, {"chat_id": "wrB", "status": 0}, {"chat_id": "wrA", "status": 0}]}),
        serde_json::json!({"errcode": 40050, "errmsg": "chatid not found, hint: [2]"}),
    )
    .await;
    let chats = client.group_chats(2).await.unwrap();
    assert!(chats.chats.is_empty());
    assert_eq!(chats.vanished, 2, "each chat once, though listed twice");
}
