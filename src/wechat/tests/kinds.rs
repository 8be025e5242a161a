//! The WeCom and third-party platform clients against the built-in simulator
//! (real HTTP on 127.0.0.1): paging rules, one row per contact × staff
//! member, UnionIDs only where WeChat gives them, idconvert, and the token
//! chains with their failure messages.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::secret::Secret;
use crate::simulator::{self, Scenario, SimAccount, SimCorp, SimPlatform, SimServer};
use crate::wechat::open_platform::{AUTHORIZER_TOKEN_PATH, COMPONENT_TOKEN_PATH};
use crate::wechat::wecom::{BATCH_GET_BY_USER_PATH, UNIONID_TO_EXTERNAL_USERID_PATH};
use crate::wechat::{
    ApiConfig, ComponentCredentials, OfficialAccountClient, WeChatHttp, WeComClient,
};

const SEED: u64 = 77;

async fn serve(scenario: Scenario) -> (SimServer, WeChatHttp) {
    let server = simulator::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = ApiConfig {
        base_url: server.base_url(),
        wecom_base_url: server.base_url(),
        requests_per_second: 100_000,
        backoff: Duration::from_millis(1),
        rate_limit_wait: Duration::from_millis(1),
        ..ApiConfig::default()
    };
    (server, WeChatHttp::new(&config).unwrap())
}

fn corp_scenario(corp: SimCorp) -> Scenario {
    Scenario {
        corps: vec![corp],
        ..Scenario::new(SEED, 3_000, vec![SimAccount::new(SEED, "brand_oa", 0.5)])
    }
}

fn big_corp() -> SimCorp {
    SimCorp {
        staff: 130,
        shared_share: 0.3,
        wecom_user_share: 0.2,
        ..SimCorp::new(SEED, "crm", 0.6)
    }
}

fn wecom_client(http: &WeChatHttp, scenario: &Scenario) -> WeComClient {
    let corp = &scenario.corps[0];
    WeComClient::new(
        http.clone(),
        &corp.id,
        &corp.corpid,
        Secret::new(&corp.secret),
    )
}

#[tokio::test]
async fn contacts_page_through_every_staff_member_one_row_per_contact_and_staff() {
    let scenario = corp_scenario(big_corp());
    let (server, http) = serve(scenario.clone()).await;
    let client = wecom_client(&http, &scenario);
    let relations = client.contacts(4).await.unwrap().relations;

    let staff: BTreeSet<&str> = relations.iter().map(|r| r.follow_userid.as_str()).collect();
    assert!(
        staff.len() > 100,
        "130 staff members need two userid chunks: {}",
        staff.len()
    );
    let pairs: BTreeSet<(&str, &str)> = relations
        .iter()
        .map(|r| (r.external_userid.as_str(), r.follow_userid.as_str()))
        .collect();
    assert_eq!(pairs.len(), relations.len(), "no relation twice");
    let mut per_contact: BTreeMap<&str, usize> = BTreeMap::new();
    for relation in &relations {
        *per_contact.entry(&relation.external_userid).or_default() += 1;
    }
    let members = scenario.truth().row("crm").unwrap().members;
    assert_eq!(per_contact.len() as i64, members);
    assert!(
        per_contact.values().any(|&n| n >= 2),
        "some contacts are shared"
    );
    // Pages of at most 100 rows: at least ceil(rows / 100) calls.
    let calls = client.stats().calls_to(BATCH_GET_BY_USER_PATH) as usize;
    assert!(
        calls >= relations.len().div_ceil(100),
        "{calls} calls for {} rows",
        relations.len()
    );
    assert!(server.stats().errcodes.is_empty(), "{:?}", server.stats());
}

#[tokio::test]
async fn wecom_users_come_without_unionid_and_wechat_users_with_it() {
    let scenario = corp_scenario(big_corp());
    let (_server, http) = serve(scenario.clone()).await;
    let relations = wecom_client(&http, &scenario)
        .contacts(4)
        .await
        .unwrap()
        .relations;
    let (wecom_users, wechat_users): (Vec<_>, Vec<_>) =
        relations.iter().partition(|r| r.contact_type == 2);
    assert!(!wecom_users.is_empty() && !wechat_users.is_empty());
    assert!(wecom_users
        .iter()
        .all(|r| r.unionid.is_none() && r.external_userid.starts_with("wo")));
    assert!(wechat_users
        .iter()
        .all(|r| r.unionid.is_some() && r.external_userid.starts_with("wm")));
    assert!(relations.iter().all(|r| r.createtime.is_some()));
}

#[tokio::test]
async fn a_third_party_app_gets_no_unionid_and_idconvert_maps_customers_only() {
    let corp = SimCorp {
        idconvert: true,
        ..big_corp()
    };
    let scenario = corp_scenario(corp);
    let (_server, http) = serve(scenario.clone()).await;
    let client = wecom_client(&http, &scenario);
    let relations = client.contacts(4).await.unwrap().relations;
    assert!(relations.iter().all(|r| r.unionid.is_none()));
    let contacts: BTreeSet<&str> = relations
        .iter()
        .map(|r| r.external_userid.as_str())
        .collect();

    // Followers of the (bound) Official Account, with their UnionIDs.
    let oa = &scenario.accounts[0];
    let oa_client =
        OfficialAccountClient::new(http.clone(), &oa.id, &oa.appid, Secret::new(&oa.secret));
    let followers = oa_client.list_followers().await.unwrap();
    let mut customers = 0;
    for chunk in followers.chunks(100).take(3) {
        for user in oa_client.batchget(chunk).await.unwrap() {
            let unionid = user.unionid.expect("bound account");
            let linked = client
                .unionid_to_external_userid(&unionid, &user.openid)
                .await
                .unwrap();
            assert!(linked.pending_id.is_some());
            if let Some(external_userid) = linked.external_userid {
                assert!(contacts.contains(external_userid.as_str()));
                assert!(external_userid.starts_with("wm"));
                customers += 1;
            }
        }
    }
    assert!(customers > 50, "{customers}");
}

#[tokio::test]
async fn idconvert_is_refused_to_a_self_built_app() {
    let scenario = corp_scenario(big_corp());
    let (_server, http) = serve(scenario.clone()).await;
    let err = wecom_client(&http, &scenario)
        .unionid_to_external_userid(
            "oUUUUU1111111111111111111111",
            "oAAAAA1111111111111111111111",
        )
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(48002));
    assert_eq!(err.endpoint(), Some(UNIONID_TO_EXTERNAL_USERID_PATH));
}

#[tokio::test]
async fn a_wrong_corp_secret_stops_the_account_and_names_the_secret() {
    let scenario = corp_scenario(big_corp());
    let (_server, http) = serve(scenario.clone()).await;
    let corp = &scenario.corps[0];
    let client = WeComClient::new(http, "crm", &corp.corpid, Secret::new("not-the-secret"));
    let err = client.contacts(4).await.unwrap_err();
    assert_eq!(err.errcode(), Some(40001));
    assert!(!err.is_fatal());
    let message = err.to_string();
    assert!(
        message.starts_with("crm: /cgi-bin/gettoken: errcode 40001"),
        "{message}"
    );
    assert!(message.contains("secret"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
}

fn platform_scenario() -> Scenario {
    let managed = SimAccount::new(SEED, "agency_oa", 0.4);
    Scenario {
        platform: Some(SimPlatform::new(SEED, vec![managed])),
        ..Scenario::new(SEED, 3_000, vec![SimAccount::new(SEED, "brand_oa", 0.5)])
    }
}

fn credentials(scenario: &Scenario, refresh_token: &str) -> ComponentCredentials {
    let platform = scenario.platform.as_ref().unwrap();
    ComponentCredentials {
        component_appid: platform.component_appid.clone(),
        component_secret: Secret::new(&platform.component_secret),
        verify_ticket: Secret::new(&platform.verify_ticket),
        refresh_token: Secret::new(refresh_token),
        origins: Default::default(),
    }
}

#[tokio::test]
async fn an_authorizer_token_opens_the_follower_apis() {
    let scenario = platform_scenario();
    let (_server, http) = serve(scenario.clone()).await;
    let managed = &scenario.platform.as_ref().unwrap().accounts[0];
    let client = OfficialAccountClient::third_party(
        http,
        &managed.id,
        &managed.appid,
        credentials(&scenario, &managed.secret),
    );
    let followers = client.list_followers().await.unwrap();
    assert_eq!(
        followers.len() as i64,
        scenario.truth().row("agency_oa").unwrap().members
    );
    let users = client.batchget(&followers[..10]).await.unwrap();
    assert!(users.iter().all(|u| u.unionid.is_some()));
    let stats = client.stats();
    assert_eq!(stats.calls_to(COMPONENT_TOKEN_PATH), 1);
    assert_eq!(stats.calls_to(AUTHORIZER_TOKEN_PATH), 1);
    assert_eq!(stats.calls_to("/cgi-bin/stable_token"), 0);
}

#[tokio::test]
async fn a_stale_refresh_token_stops_the_account_and_says_what_to_do() {
    let scenario = platform_scenario();
    let (_server, http) = serve(scenario.clone()).await;
    let managed = &scenario.platform.as_ref().unwrap().accounts[0];
    let client = OfficialAccountClient::third_party(
        http,
        &managed.id,
        &managed.appid,
        credentials(&scenario, "stale-refresh-token"),
    );
    let err = client.list_followers().await.unwrap_err();
    assert_eq!(err.errcode(), Some(61023));
    assert!(!err.is_fatal());
    let message = err.to_string();
    assert!(
        message.starts_with("agency_oa: /cgi-bin/component/api_authorizer_token: errcode 61023"),
        "{message}"
    );
    assert!(message.contains("auth.refresh_token"), "{message}");
    assert!(
        message.contains("authorize the platform again"),
        "{message}"
    );
    assert!(!message.contains("stale-refresh-token"), "{message}");
}

#[tokio::test]
async fn a_wrong_verify_ticket_fails_at_the_component_token() {
    let scenario = platform_scenario();
    let (_server, http) = serve(scenario.clone()).await;
    let managed = &scenario.platform.as_ref().unwrap().accounts[0];
    let mut credentials = credentials(&scenario, &managed.secret);
    credentials.verify_ticket = Secret::new("ticket@@@old");
    let client = OfficialAccountClient::third_party(http, &managed.id, &managed.appid, credentials);
    let err = client.verify_credentials().await.unwrap_err();
    assert_eq!(err.errcode(), Some(61006));
    assert_eq!(err.endpoint(), Some(COMPONENT_TOKEN_PATH));
}

/// A WeCom host whose `batch/get_by_user` always answers `page`.
async fn fixed_wecom(page: serde_json::Value) -> WeChatHttp {
    use axum::routing::{get, post};
    let router = axum::Router::new()
        .route(
            "/cgi-bin/gettoken",
            get(|| async { r#"{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":7200}"# }),
        )
        .route(
            "/cgi-bin/externalcontact/get_follow_user_list",
            get(|| async {
                r#"{"errcode":0,"errmsg":"ok","follow_user":["sales_0000","sales_0001"]}"#
            }),
        )
        .route(
            BATCH_GET_BY_USER_PATH,
            post(move || async move { page.to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    WeChatHttp::new(&ApiConfig {
        wecom_base_url: base_url,
        ..ApiConfig::default()
    })
    .unwrap()
}

/// A WeCom host whose `batch/get_by_user` hands back the same cursor forever.
async fn looping_wecom() -> WeChatHttp {
    fixed_wecom(serde_json::json!({
        "errcode": 0, "errmsg": "ok", "next_cursor": "SAME",
        "external_contact_list": [{
            "external_contact": {"external_userid": "wmLOOP", "type": 1},
            "follow_info": {"userid": "sales_0000", "createtime": 1}
        }]
    }))
    .await
}

#[tokio::test]
async fn staff_without_an_interop_licence_are_reported_not_dropped_silently() {
    let http = fixed_wecom(serde_json::json!({
        "errcode": 0, "errmsg": "ok", "next_cursor": "",
        "external_contact_list": [{
            "external_contact": {"external_userid": "wmONE", "type": 1},
            "follow_info": {"userid": "sales_0000", "createtime": 1}
        }],
        "fail_info": {"unlicensed_userid_list": ["sales_0001"]}
    }))
    .await;
    let client = WeComClient::new(http, "crm", "ww0123456789abcdef", Secret::new("s"));
    let contacts = client.contacts(1).await.unwrap();
    assert_eq!(contacts.relations.len(), 1);
    assert_eq!(contacts.unlicensed_staff, ["sales_0001"]);
    let err = crate::extract::wecom::complete("crm", contacts.clone(), false).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("1 staff member(s) without an interop licence"),
        "{text}"
    );
    assert!(text.contains("allow_unlicensed = true"), "{text}");
    assert!(!text.contains("sales_0001"), "no id in messages: {text}");
    let relations = crate::extract::wecom::complete("crm", contacts, true).unwrap();
    assert_eq!(relations.len(), 1);
}

#[tokio::test]
async fn a_cursor_handed_back_twice_stops_the_account_instead_of_looping() {
    let http = looping_wecom().await;
    let client = WeComClient::new(http, "crm", "ww0123456789abcdef", Secret::new("s"));
    let err = client.contacts(1).await.unwrap_err();
    assert!(
        matches!(err, crate::wechat::ApiError::RepeatedPage { pages: 2, .. }),
        "{err}"
    );
    assert_eq!(client.stats().calls_to(BATCH_GET_BY_USER_PATH), 2);
}

/// A real WeCom body kept in tests/fixtures/wechat (sources in its README).
fn fixture(path: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wechat")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A WeCom host listing `staff`, whose `batch/get_by_user` answers
/// `answer(userid_list)`.
async fn scripted_wecom(
    staff: Vec<String>,
    answer: impl Fn(Vec<String>) -> serde_json::Value + Clone + Send + Sync + 'static,
) -> WeComClient {
    use axum::routing::{get, post};
    let follow = serde_json::json!({"errcode": 0, "errmsg": "ok", "follow_user": staff});
    let router = axum::Router::new()
        .route(
            "/cgi-bin/gettoken",
            get(|| async { r#"{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":7200}"# }),
        )
        .route(
            "/cgi-bin/externalcontact/get_follow_user_list",
            get(move || async move { follow.to_string() }),
        )
        .route(
            BATCH_GET_BY_USER_PATH,
            post(move |body: String| async move {
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                let list: Vec<String> = body["userid_list"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect();
                answer(list).to_string()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = WeChatHttp::new(&ApiConfig {
        wecom_base_url: base_url,
        backoff: Duration::from_millis(1),
        ..ApiConfig::default()
    })
    .unwrap();
    WeComClient::new(http, "crm", "ww0123456789abcdef", Secret::new("s"))
}

/// One relation per staff member asked for, with `follow_info.userid`.
fn one_each(list: &[String]) -> serde_json::Value {
    let rows: Vec<_> = list
        .iter()
        .map(|userid| {
            serde_json::json!({
                "external_contact": {"external_userid": format!("wm{userid}"), "type": 1},
                "follow_info": {"userid": userid, "createtime": 1}
            })
        })
        .collect();
    serde_json::json!({"errcode": 0, "errmsg": "ok", "external_contact_list": rows, "next_cursor": ""})
}

#[tokio::test]
async fn relations_without_follow_userid_are_asked_again_one_staff_member_at_a_time() {
    let staff = vec!["zhangsan".to_string(), "lisi".to_string()];
    let client = scripted_wecom(staff, |list| {
        let wechatpy = fixture("wecom/batch_get_by_user__wechatpy_no_follow_userid.json");
        match list.as_slice() {
            [only] if only == "zhangsan" => wechatpy,
            [_] => serde_json::json!({"errcode": 0, "errmsg": "ok", "external_contact_list": [], "next_cursor": ""}),
            _ => wechatpy,
        }
    })
    .await;
    let contacts = client.contacts(1).await.unwrap();
    let owners: Vec<&str> = contacts
        .relations
        .iter()
        .map(|r| r.follow_userid.as_str())
        .collect();
    assert_eq!(
        owners,
        ["zhangsan", "zhangsan"],
        "attributed by asking, never guessed"
    );
    assert_eq!(client.stats().calls_to(BATCH_GET_BY_USER_PATH), 3);
}

#[tokio::test]
async fn a_40058_shrinks_the_userid_list_for_the_rest_of_the_run() {
    let staff: Vec<String> = (0..130).map(|i| format!("sales_{i:04}")).collect();
    let client = scripted_wecom(staff, |list| {
        if list.len() > 64 {
            fixture("wecom/common__err_40058_exceed_max_length.json")
        } else {
            one_each(&list)
        }
    })
    .await;
    let contacts = client.contacts(1).await.unwrap();
    assert_eq!(contacts.relations.len(), 130);
    // 100 refused, then 50 + 50; the next chunk of 30 fits the smaller size.
    assert_eq!(client.stats().calls_to(BATCH_GET_BY_USER_PATH), 4);
}

#[tokio::test]
async fn a_staff_member_gone_since_the_list_60111_is_skipped_and_84061_is_no_contacts() {
    let staff = vec![
        "a".to_string(),
        "gone".to_string(),
        "quiet".to_string(),
        "b".to_string(),
    ];
    let client = scripted_wecom(staff, |list| {
        if list.iter().any(|u| u == "gone") {
            fixture("wecom/common__err_60111_userid_not_found_reconstructed.json")
        } else if list.iter().any(|u| u == "quiet") {
            fixture("wecom/get__err_84061_follow_user_empty.json")
        } else {
            one_each(&list)
        }
    })
    .await;
    let contacts = client.contacts(1).await.unwrap();
    let owners: Vec<&str> = contacts
        .relations
        .iter()
        .map(|r| r.follow_userid.as_str())
        .collect();
    assert_eq!(owners, ["a", "b"]);
}

/// A third-party platform on 127.0.0.1 that records the verify tickets and
/// refresh tokens it is sent and rotates the refresh token on every call.
async fn rotating_platform() -> (WeChatHttp, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::{get, post};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tickets, tokens) = (seen.clone(), seen.clone());
    let router = axum::Router::new()
        .route(
            COMPONENT_TOKEN_PATH,
            post(move |body: String| async move {
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                let ticket = body["component_verify_ticket"]
                    .as_str()
                    .unwrap()
                    .to_string();
                tickets.lock().unwrap().push(ticket);
                r#"{"component_access_token":"C","expires_in":7200}"#
            }),
        )
        .route(
            AUTHORIZER_TOKEN_PATH,
            post(move |body: String| async move {
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                let used = body["authorizer_refresh_token"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let next = format!("{used}+");
                tokens.lock().unwrap().push(used);
                serde_json::json!({"authorizer_access_token": "A", "expires_in": 7200,
                    "authorizer_refresh_token": next})
                .to_string()
            }),
        )
        .route(
            "/cgi-bin/user/get",
            get(|| async { r#"{"total":0,"count":0}"# }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = WeChatHttp::new(&ApiConfig {
        base_url,
        ..ApiConfig::default()
    })
    .unwrap();
    (http, seen)
}

#[tokio::test]
async fn a_rotated_refresh_token_is_written_back_and_the_ticket_file_is_read_again() {
    use crate::wechat::{CredentialOrigins, Origin};
    let dir = tempfile::tempdir().unwrap();
    let (ticket_file, token_file) = (dir.path().join("ticket"), dir.path().join("refresh"));
    std::fs::write(&ticket_file, "TICKET-1\n").unwrap();
    std::fs::write(&token_file, "REFRESH-1").unwrap();
    let (http, seen) = rotating_platform().await;
    let credentials = |ticket: &str, token: &str| ComponentCredentials {
        component_appid: "wx00000000000000cc".to_string(),
        component_secret: Secret::new("platform-secret"),
        verify_ticket: Secret::new(ticket),
        refresh_token: Secret::new(token),
        origins: CredentialOrigins {
            verify_ticket: Origin::File(ticket_file.clone()),
            refresh_token: Origin::File(token_file.clone()),
        },
    };
    let first = OfficialAccountClient::third_party(
        http.clone(),
        "agency_oa",
        "wx00000000000000aa",
        credentials("TICKET-1", "REFRESH-1"),
    );
    first.verify_credentials().await.unwrap();
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "REFRESH-1+");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // WeChat pushed a new ticket; the job still holds the one it loaded.
    std::fs::write(&ticket_file, "TICKET-2").unwrap();
    let next_run = OfficialAccountClient::third_party(
        http,
        "agency_oa",
        "wx00000000000000aa",
        credentials("TICKET-1", &std::fs::read_to_string(&token_file).unwrap()),
    );
    next_run.verify_credentials().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["TICKET-1", "REFRESH-1", "TICKET-2", "REFRESH-1+"]
    );
    assert!(
        dir.path().read_dir().unwrap().count() == 2,
        "no temporary file left"
    );
}

#[tokio::test]
async fn a_third_party_wecom_app_gets_its_corp_token_through_the_provider_suite() {
    use crate::wechat::{Origin, SuiteCredentials, WecomCredentials};
    use axum::extract::RawQuery;
    use axum::routing::{get, post};
    let dir = tempfile::tempdir().unwrap();
    let ticket_file = dir.path().join("suite_ticket");
    std::fs::write(&ticket_file, "SUITE-TICKET-2\n").unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (suite_seen, corp_seen, list_seen) = (seen.clone(), seen.clone(), seen.clone());
    let router = axum::Router::new()
        .route(
            "/cgi-bin/service/get_suite_token",
            post(move |body: String| async move {
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                suite_seen.lock().unwrap().push(format!(
                    "suite {} {} {}",
                    body["suite_id"], body["suite_secret"], body["suite_ticket"]
                ));
                // As real answers: no errcode on success.
                r#"{"suite_access_token":"SUITE-TOKEN","expires_in":7200}"#
            }),
        )
        .route(
            "/cgi-bin/service/get_corp_token",
            post(move |RawQuery(query): RawQuery, body: String| async move {
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                corp_seen.lock().unwrap().push(format!(
                    "corp {} {} {}",
                    query.unwrap_or_default(),
                    body["auth_corpid"],
                    body["permanent_code"]
                ));
                r#"{"access_token":"CORP-TOKEN","expires_in":7200}"#
            }),
        )
        .route(
            "/cgi-bin/externalcontact/get_follow_user_list",
            get(move |RawQuery(query): RawQuery| async move {
                list_seen.lock().unwrap().push(query.unwrap_or_default());
                r#"{"errcode":0,"errmsg":"ok","follow_user":["sales_0000"]}"#
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = WeChatHttp::new(&ApiConfig {
        wecom_base_url: base_url,
        ..ApiConfig::default()
    })
    .unwrap();
    let client = WeComClient::with_credentials(
        http,
        "partner_crm",
        "ww00000000000000ab",
        WecomCredentials::Suite(SuiteCredentials {
            suite_id: "wwsuite0000000001".to_string(),
            suite_secret: Secret::new("SUITE-SECRET"),
            suite_ticket: Secret::new("SUITE-TICKET-1"),
            permanent_code: Secret::new("PERMANENT-CODE"),
            suite_ticket_origin: Origin::File(ticket_file),
        }),
    );
    assert_eq!(client.follow_users().await.unwrap(), ["sales_0000"]);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            r#"suite "wwsuite0000000001" "SUITE-SECRET" "SUITE-TICKET-2""#.to_string(),
            r#"corp suite_access_token=SUITE-TOKEN "ww00000000000000ab" "PERMANENT-CODE""#
                .to_string(),
            "access_token=CORP-TOKEN".to_string(),
        ]
    );
}
