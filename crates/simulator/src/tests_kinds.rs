//! The WeCom and third-party platform endpoints over real HTTP: wire
//! formats, paging and batch limits, token rules, and the truth of corps.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::contacts::ContactType;
use super::population::World;
use super::test_client::{errcode, sim, Sim};
use super::{Scenario, SimAccount, SimCorp, SimPlatform};

const SEED: u64 = 31;

fn scenario() -> Scenario {
    Scenario {
        corps: vec![SimCorp {
            staff: 120,
            ..SimCorp::new(SEED, "crm", 0.5)
        }],
        platform: Some(SimPlatform::new(
            SEED,
            vec![SimAccount::new(SEED, "agency_oa", 0.3)],
        )),
        ..Scenario::new(SEED, 2_000, vec![SimAccount::new(SEED, "brand_oa", 0.4)])
    }
}

async fn corp_token(sim: &Sim) -> String {
    let corp = &sim.scenario.corps[0];
    let answer = sim
        .get(
            "/cgi-bin/gettoken",
            &[("corpid", &corp.corpid), ("corpsecret", &corp.secret)],
        )
        .await;
    assert_eq!(answer["errcode"], 0, "{answer}");
    answer["access_token"].as_str().unwrap().to_string()
}

fn staff(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sales_{i:04}")).collect()
}

#[tokio::test]
async fn gettoken_repeats_its_token_and_answers_wecom_style_errors() {
    let sim = sim(scenario()).await;
    assert_eq!(corp_token(&sim).await, corp_token(&sim).await);
    let corp = &sim.scenario.corps[0];
    let answer = sim
        .get(
            "/cgi-bin/gettoken",
            &[("corpid", &corp.corpid), ("corpsecret", "wrong")],
        )
        .await;
    assert_eq!(errcode(&answer), 40001);
    let errmsg = answer["errmsg"].as_str().unwrap();
    assert!(
        errmsg.contains(", hint: [")
            && errmsg
                .contains("more info at https://open.work.weixin.qq.com/devtool/query?e=40001"),
        "{errmsg}"
    );
    let answer = sim
        .get(
            "/cgi-bin/gettoken",
            &[("corpid", "ww0000000000000000"), ("corpsecret", "x")],
        )
        .await;
    assert_eq!(errcode(&answer), 40013);
}

#[tokio::test]
async fn batch_get_by_user_clamps_the_limit_and_refuses_more_than_100_userids() {
    let sim = sim(scenario()).await;
    let token = corp_token(&sim).await;
    let page = sim
        .post(
            "/cgi-bin/externalcontact/batch/get_by_user",
            &token,
            json!({"userid_list": staff(100), "cursor": "", "limit": 1000}),
        )
        .await;
    assert_eq!(page["errcode"], 0, "{page}");
    assert_eq!(page["external_contact_list"].as_array().unwrap().len(), 100);
    assert_ne!(page["next_cursor"], "");
    let answer = sim
        .post(
            "/cgi-bin/externalcontact/batch/get_by_user",
            &token,
            json!({"userid_list": staff(101), "limit": 100}),
        )
        .await;
    assert_eq!(errcode(&answer), 40058);
    let answer = sim
        .post(
            "/cgi-bin/externalcontact/batch/get_by_user",
            &token,
            json!({"userid_list": ["nobody"]}),
        )
        .await;
    assert_eq!(errcode(&answer), 40003);
}

#[tokio::test]
async fn the_cursor_spans_the_whole_userid_list_and_ends_empty() {
    let sim = sim(scenario()).await;
    let token = corp_token(&sim).await;
    let userids = staff(3);
    let mut cursor = String::new();
    let mut rows: Vec<Value> = Vec::new();
    loop {
        let page = sim
            .post(
                "/cgi-bin/externalcontact/batch/get_by_user",
                &token,
                json!({"userid_list": userids, "cursor": cursor, "limit": 7}),
            )
            .await;
        let list = page["external_contact_list"].as_array().unwrap();
        assert!(list.len() <= 7);
        rows.extend(list.iter().cloned());
        cursor = page["next_cursor"].as_str().unwrap().to_string();
        if cursor.is_empty() {
            break;
        }
    }
    let seen: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["follow_info"]["userid"].as_str().unwrap())
        .collect();
    assert_eq!(seen, userids.iter().map(String::as_str).collect());
    // Exactly the customers the three staff members added.
    let world = World::new(&sim.scenario);
    let corp = &world.corps[0];
    let expected: usize = (0..world.people)
        .filter(|&p| corp.is_customer(p, 0))
        .map(|p| corp.staff_of(p).iter().filter(|&&s| s < 3).count())
        .sum();
    assert_eq!(rows.len(), expected);
    for row in &rows {
        let contact = &row["external_contact"];
        let wecom_user = contact["type"] == ContactType::WeCom as i64;
        assert_eq!(contact.get("unionid").is_none(), wecom_user, "{row}");
        assert!(row["follow_info"]["createtime"].is_i64());
    }
}

#[tokio::test]
async fn tokens_of_one_product_are_refused_by_the_other() {
    let sim = sim(scenario()).await;
    let oa_token = sim.token(0).await;
    let answer = sim
        .get(
            "/cgi-bin/externalcontact/get_follow_user_list",
            &[("access_token", &oa_token)],
        )
        .await;
    assert_eq!(errcode(&answer), 40014);
    let corp_token = corp_token(&sim).await;
    assert_eq!(errcode(&sim.user_get(&corp_token, "").await), 40001);
    let list = sim
        .get(
            "/cgi-bin/externalcontact/get_follow_user_list",
            &[("access_token", &corp_token)],
        )
        .await;
    assert_eq!(list["follow_user"].as_array().unwrap().len(), 120);
}

async fn component_token(sim: &Sim) -> String {
    let platform = sim.scenario.platform.as_ref().unwrap();
    let answer = sim
        .http
        .post(sim.url("/cgi-bin/component/api_component_token"))
        .json(&json!({
            "component_appid": platform.component_appid,
            "component_appsecret": platform.component_secret,
            "component_verify_ticket": platform.verify_ticket,
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    answer["component_access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn authorizer_token(sim: &Sim, refresh_token: &str) -> Value {
    let platform = sim.scenario.platform.as_ref().unwrap();
    let component = component_token(sim).await;
    sim.http
        .post(sim.url("/cgi-bin/component/api_authorizer_token"))
        .query(&[("component_access_token", component)])
        .json(&json!({
            "component_appid": platform.component_appid,
            "authorizer_appid": platform.accounts[0].appid,
            "authorizer_refresh_token": refresh_token,
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_authorizer_token_reads_the_managed_account_and_a_stale_refresh_token_is_61023() {
    let sim = sim(scenario()).await;
    let refresh_token = sim.scenario.platform.as_ref().unwrap().accounts[0]
        .secret
        .clone();
    let answer = authorizer_token(&sim, &refresh_token).await;
    assert_eq!(answer["authorizer_refresh_token"], refresh_token.as_str());
    let token = answer["authorizer_access_token"].as_str().unwrap();
    let page = sim.user_get(token, "").await;
    let members = sim.scenario.truth().row("agency_oa").unwrap().members;
    assert_eq!(page["total"].as_i64(), Some(members));

    let stale = authorizer_token(&sim, "stale").await;
    assert_eq!(errcode(&stale), 61023);
    // The platform-managed account has no AppSecret the token endpoints take.
    let appid = &sim.scenario.platform.as_ref().unwrap().accounts[0].appid;
    let own = sim
        .http
        .post(sim.url("/cgi-bin/stable_token"))
        .json(&json!({"grant_type": "client_credential", "appid": appid, "secret": refresh_token}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(errcode(&own), 40013);
}

#[test]
fn corp_members_are_distinct_customers_and_wecom_users_are_unresolved() {
    let scenario = Scenario {
        corps: vec![SimCorp {
            wecom_user_share: 0.25,
            ..SimCorp::new(SEED, "crm", 0.5)
        }],
        ..scenario()
    };
    let truth = scenario.truth();
    let row = truth.row("crm").unwrap();
    let world = World::new(&scenario);
    let corp = &world.corps[0];
    let customers: Vec<u32> = (0..world.people)
        .filter(|&p| corp.is_customer(p, 0))
        .collect();
    let wecom_users = customers
        .iter()
        .filter(|&&p| corp.contact_type(p) == ContactType::WeCom)
        .count() as i64;
    assert_eq!(row.members, customers.len() as i64);
    assert_eq!(row.unresolved, wecom_users);
    assert_eq!(row.account_kind.as_deref(), Some("wecom"));
}

#[test]
fn only_idconvert_corps_have_linkable_contacts() {
    let mut scenario = scenario();
    assert_eq!(scenario.linkable_contacts("crm"), Some(0));
    assert_eq!(scenario.linkable_contacts("nope"), None);
    scenario.corps[0].idconvert = true;
    let linkable = scenario.linkable_contacts("crm").unwrap();
    let row = scenario.truth();
    let row = row.row("crm").unwrap();
    assert!(linkable > 0 && linkable < row.members);
    assert_eq!(row.resolved, linkable);
}

#[tokio::test]
async fn pending_ids_come_back_for_converted_customers_for_90_days() {
    const IDCONVERT: &str = "/cgi-bin/idconvert/unionid_to_external_userid";
    const PENDING: &str = "/cgi-bin/idconvert/batch/external_userid_to_pending_id";
    let mut scenario = scenario();
    scenario.corps[0].idconvert = true;
    scenario.corps[0].staff = 20;
    let sim = sim(scenario).await;
    let oa = sim.token(0).await;
    let openids = sim.all_openids(&oa).await;
    let users = sim.batchget(&oa, &openids[..100]).await;
    let corp = corp_token(&sim).await;
    // Convert every follower of the batch: customers come with their
    // external_userid, everyone with a pending_id.
    let (mut customers, mut pending_only) = (Vec::new(), 0);
    for user in users["user_info_list"].as_array().unwrap() {
        let (Some(unionid), Some(openid)) = (user["unionid"].as_str(), user["openid"].as_str())
        else {
            continue;
        };
        let answer = sim
            .post(
                IDCONVERT,
                &corp,
                json!({"unionid": unionid, "openid": openid}),
            )
            .await;
        assert_eq!(errcode(&answer), 0, "{answer}");
        let pending_id = answer["pending_id"].as_str().unwrap().to_string();
        match answer["external_userid"].as_str() {
            Some(external_userid) => customers.push((external_userid.to_string(), pending_id)),
            None => pending_only += 1,
        }
    }
    assert!(
        customers.len() > 3 && pending_only > 3,
        "{customers:?} {pending_only}"
    );
    let (sim_ref, corp_ref) = (&sim, &corp);
    let lookup = |ids: Vec<&String>| {
        let body = json!({ "external_userid": ids });
        async move { sim_ref.post(PENDING, corp_ref, body).await }
    };
    let asked: Vec<&String> = customers.iter().map(|(e, _)| e).collect();
    let answer = lookup(asked.clone()).await;
    let found: BTreeSet<(String, String)> = answer["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["external_userid"].as_str().unwrap().to_string(),
                row["pending_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(found, customers.iter().cloned().collect());

    // A customer whose UnionID was never converted has no pending_id.
    let contacts = sim
        .post(
            "/cgi-bin/externalcontact/batch/get_by_user",
            &corp,
            json!({"userid_list": ["sales_0000", "sales_0001"], "limit": 100}),
        )
        .await;
    let converted: BTreeSet<&String> = asked.iter().copied().collect();
    let never: Vec<String> = contacts["external_contact_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["external_contact"]["external_userid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .filter(|e| e.starts_with("wm") && !converted.contains(e))
        .collect();
    assert!(!never.is_empty());
    assert_eq!(lookup(never.iter().collect()).await["result"], json!([]));

    // The pending_ids live 90 days.
    sim.server.set_day(89);
    assert_eq!(
        lookup(asked.clone()).await["result"]
            .as_array()
            .unwrap()
            .len(),
        customers.len()
    );
    sim.server.set_day(90);
    assert_eq!(lookup(asked.clone()).await["result"], json!([]));
    // Over 100 ids, or none, is refused.
    let many: Vec<&String> = std::iter::repeat_n(asked[0], 101).collect();
    assert_ne!(errcode(&lookup(many).await), 0);
    assert_ne!(errcode(&lookup(Vec::new()).await), 0);
}
