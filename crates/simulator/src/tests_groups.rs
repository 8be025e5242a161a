//! The customer group chat endpoints over real HTTP: `groupchat/list`'s
//! cursor, filters and limits, `groupchat/get`'s members (staff and
//! external, UnionIDs only where the corp reveals them), dismissed chats,
//! and the truth counting group members.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::population::World;
use super::test_client::{errcode, sim, Sim};
use super::{Scenario, SimAccount, SimCorp};

const SEED: u64 = 57;
const LIST: &str = "/cgi-bin/externalcontact/groupchat/list";
const GET: &str = "/cgi-bin/externalcontact/groupchat/get";

fn scenario(chats: u32) -> Scenario {
    Scenario {
        corps: vec![SimCorp {
            staff: 30,
            wecom_user_share: 0.2,
            group_chats: chats,
            group_reach: 0.4,
            ..SimCorp::new(SEED, "crm", 0.2)
        }],
        ..Scenario::new(SEED, 3_000, vec![SimAccount::new(SEED, "brand_oa", 0.4)])
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
    answer["access_token"].as_str().unwrap().to_string()
}

/// Every page of the list with `body` (cursor added), and the pages' count.
async fn list_all(sim: &Sim, token: &str, body: Value) -> (Vec<Value>, usize) {
    let mut chats = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let mut request = body.clone();
        request["cursor"] = json!(cursor);
        let page = sim.post(LIST, token, request).await;
        assert_eq!(page["errcode"], 0, "{page}");
        pages += 1;
        chats.extend(page["group_chat_list"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().unwrap().to_string();
        if cursor.is_empty() {
            return (chats, pages);
        }
    }
}

#[tokio::test]
async fn groupchat_list_pages_a_thousand_chats_at_a_time_without_dismissed_ones() {
    let sim = sim(scenario(2_300)).await;
    let token = corp_token(&sim).await;
    let (chats, pages) = list_all(&sim, &token, json!({"status_filter": 0, "limit": 1000})).await;
    let world = World::new(&sim.scenario);
    let groups = &world.corps[0].groups;
    let alive = (0..2_300).filter(|&c| !groups.dismissed(c)).count();
    assert!(alive < 2_300 && alive > 2_000, "{alive}");
    assert_eq!(chats.len(), alive);
    assert_eq!(pages, alive.div_ceil(1000));
    let ids: BTreeSet<&str> = chats
        .iter()
        .map(|c| c["chat_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), alive, "no chat listed twice");
    let statuses: BTreeSet<i64> = chats
        .iter()
        .map(|c| c["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, BTreeSet::from([0, 1, 2, 3]));

    // status_filter 1: the chats whose owner left, only them.
    let (left, _) = list_all(&sim, &token, json!({"status_filter": 1, "limit": 1000})).await;
    assert!(!left.is_empty() && left.iter().all(|c| c["status"] == 1));
    assert_eq!(
        left.len(),
        chats.iter().filter(|c| c["status"] == 1).count()
    );
    // owner_filter: the chats of one staff member.
    let owner = groups.owner_userid(0);
    let (owned, _) = list_all(
        &sim,
        &token,
        json!({"status_filter": 0, "owner_filter": {"userid_list": [owner]}, "limit": 100}),
    )
    .await;
    assert!(!owned.is_empty() && owned.len() < chats.len());

    for limit in [0, 1001] {
        let answer = sim.post(LIST, &token, json!({"limit": limit})).await;
        assert_eq!(errcode(&answer), 40058, "limit {limit}");
    }
    let answer = sim
        .post(LIST, &token, json!({"limit": 10, "cursor": "forged"}))
        .await;
    assert_eq!(errcode(&answer), 40058);
}

#[tokio::test]
async fn groupchat_get_lists_staff_and_external_members_and_the_truth_counts_them() {
    let sim = sim(scenario(60)).await;
    let token = corp_token(&sim).await;
    let (chats, _) = list_all(&sim, &token, json!({"status_filter": 0, "limit": 1000})).await;
    let world = World::new(&sim.scenario);
    let corp = &world.corps[0];
    let mut external: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut versions = BTreeSet::new();
    for chat in &chats {
        let answer = sim
            .post(
                GET,
                &token,
                json!({"chat_id": chat["chat_id"], "need_name": 0}),
            )
            .await;
        assert_eq!(answer["errcode"], 0, "{answer}");
        let group_chat = &answer["group_chat"];
        assert_eq!(group_chat["chat_id"], chat["chat_id"]);
        // An owner who left the corp (status 1, 2) is no staff member any more.
        let owner = group_chat["owner"].as_str().unwrap();
        let gone = matches!(chat["status"].as_i64(), Some(1 | 2));
        assert_eq!(owner.starts_with("gone_"), gone, "{owner}");
        assert_eq!(owner.starts_with("sales_"), !gone, "{owner}");
        versions.insert(group_chat["member_version"].as_str().unwrap().to_string());
        let members = group_chat["member_list"].as_array().unwrap();
        assert_eq!(members.iter().filter(|m| m["type"] == 1).count(), 2);
        for member in members.iter().filter(|m| m["type"] == 2) {
            assert!(member.get("name").is_none(), "need_name 0: {member}");
            let userid = member["userid"].as_str().unwrap().to_string();
            let unionid = member["unionid"].as_str().map(str::to_string);
            external.insert(userid, unionid);
        }
    }
    assert_eq!(versions.len(), chats.len(), "one member_version per chat");
    // Exactly the people in groups on day 0, with their corp external_userid.
    let expected: BTreeSet<String> = (0..world.people)
        .filter(|&p| corp.groups.in_groups(p, 0))
        .map(|p| corp.external_userid(p))
        .collect();
    assert_eq!(external.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let wecom_users = external.keys().filter(|id| id.starts_with("wo")).count();
    assert!(wecom_users > 0);
    for (id, unionid) in &external {
        assert_eq!(unionid.is_some(), id.starts_with("wm"), "{id}");
    }
    // Many group members are no staff member's contact: the truth counts them.
    let group_only = (0..world.people)
        .filter(|&p| corp.groups.in_groups(p, 0) && !corp.is_customer(p, 0))
        .count() as i64;
    assert!(group_only > 100, "{group_only}");
    let customers = (0..world.people)
        .filter(|&p| corp.is_customer(p, 0))
        .count() as i64;
    let truth = sim.scenario.truth();
    assert_eq!(truth.row("crm").unwrap().members, customers + group_only);

    // A dismissed chat (and a forged id) answer 40050; need_name 1 names.
    let dismissed = (0..60).find(|&c| corp.groups.dismissed(c)).unwrap();
    let answer = sim
        .post(
            GET,
            &token,
            json!({"chat_id": corp.groups.chat_id(dismissed)}),
        )
        .await;
    assert_eq!(errcode(&answer), 40050);
    let answer = sim
        .post(
            GET,
            &token,
            json!({"chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"}),
        )
        .await;
    assert_eq!(errcode(&answer), 40050);
    let answer = sim
        .post(
            GET,
            &token,
            json!({"chat_id": chats[0]["chat_id"], "need_name": 1}),
        )
        .await;
    assert!(answer["group_chat"]["member_list"][0]["name"].is_string());
}

#[tokio::test]
async fn a_corp_without_groups_lists_none() {
    let sim = sim(scenario(0)).await;
    let token = corp_token(&sim).await;
    let (chats, pages) = list_all(&sim, &token, json!({"status_filter": 0, "limit": 1000})).await;
    assert!(chats.is_empty());
    assert_eq!(pages, 1);
}
