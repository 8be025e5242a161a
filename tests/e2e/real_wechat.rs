//! The real binary against answers real WeChat gave (`tests/fixtures/wechat`,
//! each body's source in that folder's README), served by the simulator in
//! place of its own answer: the snapshot still equals the truth.

use unionsnap::simulator::{Scenario, SimCorp};

use crate::common::*;

const BATCHGET: &str = "/cgi-bin/user/info/batchget";
const BATCH_GET_BY_USER: &str = "/cgi-bin/externalcontact/batch/get_by_user";
const IDCONVERT: &str = "/cgi-bin/idconvert/unionid_to_external_userid";

fn fixture(path: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wechat")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An Official Account and a corp of 130 staff members (two userid chunks).
fn with_corp(seed: u64, idconvert: bool) -> Scenario {
    let mut scenario = scenario(seed, 3_000, &[("brand_oa", 0.5, true)]);
    scenario.corps = vec![SimCorp {
        staff: 130,
        shared_share: 0.25,
        idconvert,
        ..SimCorp::new(seed, "crm", 0.4)
    }];
    scenario
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40032_for_a_full_batch_is_split_and_the_run_is_exact() {
    let fixture_ = Fixture::start(scenario(81, 3_000, &[("brand_oa", 0.5, true)])).await;
    let refused = fixture("official_account/user_info_batchget__err_40032_hint_and_rid.json");
    fixture_.server.replay(BATCHGET, refused, 100);
    let out = fixture_.run_job(&fixture_.write_job(), &[]).await;
    assert_exit(&out, 0);
    assert_eq!(fixture_.server.stats().errcode_count(40032), 1);
    assert_matches_truth(&fixture_).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40058_from_batch_get_by_user_shrinks_the_list_and_the_corp_is_exact() {
    let fixture_ = Fixture::start(with_corp(82, false)).await;
    let refused = fixture("wecom/common__err_40058_exceed_max_length.json");
    fixture_.server.replay(BATCH_GET_BY_USER, refused, 65);
    let out = fixture_.run_job(&fixture_.write_job(), &[]).await;
    assert_exit(&out, 0);
    let stats = fixture_.server.stats();
    assert_eq!(stats.errcode_count(40058), 1);
    // 100 refused, then 50 + 50, then the last 30: the smaller size is kept.
    assert!(stats.calls_to(BATCH_GET_BY_USER) >= 4, "{stats:?}");
    assert_matches_truth(&fixture_).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_without_follow_userid_give_the_same_tables_as_with_it() {
    let clean = Fixture::start(with_corp(83, false)).await;
    assert_exit(&clean.run_job(&clean.write_job(), &[]).await, 0);
    let quirky = Fixture::start(with_corp(83, false)).await;
    quirky.server.omit_follow_userid(true);
    let out = quirky.run_job(&quirky.write_job(), &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&quirky).await;
    // The same rows; their order within a file follows the order the
    // accounts finished in, which the extra calls change.
    let sorted = |tables: Tables| -> Tables {
        tables
            .into_iter()
            .map(|(path, frame)| {
                let frame = frame.map(|frame| {
                    let columns: Vec<String> = frame
                        .get_column_names()
                        .iter()
                        .map(|c| c.to_string())
                        .collect();
                    frame.sort(columns, Default::default()).unwrap()
                });
                (path, frame)
            })
            .collect()
    };
    assert_same_tables(
        &sorted(read_local_tables(&clean.output_dir())),
        &sorted(read_local_tables(&quirky.output_dir())),
    );
    // Each chunk answered without userids was asked again staff member by staff member.
    assert!(quirky.server.stats().calls_to(BATCH_GET_BY_USER) >= 130);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_845003_from_idconvert_leaves_one_person_unlinked_and_the_run_commits() {
    let fixture_ = Fixture::start(with_corp(84, true)).await;
    let refused = fixture("wecom/unionid_to_external_userid__err_845003.json");
    fixture_.server.replay(IDCONVERT, refused, 0);
    let out = fixture_.run_job(&fixture_.write_job(), &[]).await;
    assert_exit(&out, 0);
    assert_eq!(fixture_.server.stats().errcode_count(845003), 1);
    assert!(committed_partition(&fixture_.output_dir(), "contacts", DATE, "crm").exists());
}

/// One contact, and one staff member WeCom says has no interop licence.
fn unlicensed_page() -> serde_json::Value {
    serde_json::json!({
        "errcode": 0, "errmsg": "ok", "next_cursor": "",
        "external_contact_list": [{
            "external_contact": {"external_userid": "wmUNLICENSEDCASE", "type": 1},
            "follow_info": {"userid": "sales_0000", "createtime": 1_700_000_000}
        }],
        "fail_info": {"unlicensed_userid_list": ["sales_0001"]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlicensed_staff_make_the_corp_partial_unless_allowed_and_then_the_marker_says_so() {
    let fixture_ = Fixture::start(with_corp(85, false)).await;
    fixture_
        .server
        .replay(BATCH_GET_BY_USER, unlicensed_page(), 0);
    let out = fixture_.run_job(&fixture_.write_job(), &[]).await;
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("without an interop licence"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("sales_0001"), "no id in messages");

    fixture_
        .server
        .replay(BATCH_GET_BY_USER, unlicensed_page(), 0);
    let text = std::fs::read_to_string(fixture_.write_job()).unwrap();
    let allowed = text.replacen("corpid = ", "allow_unlicensed = true\ncorpid = ", 1);
    let out = fixture_
        .run_job(&fixture_.write_job_text(&allowed), &[])
        .await;
    assert_exit(&out, 0);
    let marker = fixture_
        .output_dir()
        .join(format!("_manifests/snapshot_date={DATE}/manifest.json"));
    let manifest: unionsnap::load::Manifest =
        serde_json::from_slice(&std::fs::read(marker).unwrap()).unwrap();
    let crm = manifest
        .accounts
        .iter()
        .find(|a| a.account_id == "crm")
        .unwrap();
    assert_eq!(crm.unlicensed_staff_left_out, 1);
    let oa = manifest
        .accounts
        .iter()
        .find(|a| a.account_id == "brand_oa")
        .unwrap();
    assert_eq!(oa.unlicensed_staff_left_out, 0);
}
