//! WeChat's own counts beside ours (#16 parts 2 and 3): the `tags` table
//! against the simulator's tags/get and member truth, the `reconciliation`
//! table against its datacube (zero difference on a clean run, the right
//! difference when WeChat's count is made to disagree), and an unverified
//! account (48001) whose followers still commit.

use polars::prelude::*;
use unionsnap::simulator::{date_of_day, TagRow};

use crate::common::*;

/// `account`'s committed partition of `table` on `date`, read back.
fn partition(fixture: &Fixture, table: &str, date: &str, account: &str) -> DataFrame {
    let path = committed_partition(&fixture.output_dir(), table, date, account);
    unionsnap::load::parquet::decode(std::fs::read(path).unwrap().into()).unwrap()
}

fn tag_rows(frame: &DataFrame, account: &str) -> Vec<TagRow> {
    let ids = frame.column("tag_id").unwrap().i64().unwrap();
    let names = frame.column("name").unwrap().str().unwrap();
    let wechat = frame.column("wechat_count").unwrap().i64().unwrap();
    let members = frame.column("members_with_tag").unwrap().i64().unwrap();
    (0..frame.height())
        .map(|i| TagRow {
            account_id: account.to_string(),
            tag_id: ids.get(i).unwrap(),
            name: names.get(i).unwrap().to_string(),
            wechat_count: wechat.get(i).unwrap(),
            members_with_tag: members.get(i).unwrap(),
        })
        .collect()
}

fn i64_at(frame: &DataFrame, column: &str) -> Option<i64> {
    frame.column(column).unwrap().i64().unwrap().get(0)
}

fn job_with_tolerance(fixture: &Fixture, tolerance: &str) -> std::path::PathBuf {
    let text = fixture.scenario.job_toml(
        &fixture.server.base_url(),
        &fixture.output_dir().display().to_string(),
    );
    fixture.write_job_text(&format!(
        "{text}\n[reconciliation]\ntolerance = {tolerance}\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_equal_the_simulators_and_reconciliation_shows_wechats_disagreement() {
    let scenario = without_crawl_leavers(scenario(
        161,
        3_000,
        &[("brand_oa", 0.5, true), ("news_oa", 0.3, true)],
    ));
    let fixture = Fixture::start(scenario).await;
    let job = job_with_tolerance(&fixture, "5");

    // Day 0: no snapshot of the day before, so nothing to compare yet.
    let out = fixture.run_job_on(&job, DATE, &[]).await;
    assert_exit(&out, 0);
    let served = fixture.server.scenario();
    for account in ["brand_oa", "news_oa"] {
        let tags = partition(&fixture, "tags", DATE, account);
        assert_eq!(tag_rows(&tags, account), served.tag_rows(account));
        assert!(
            tag_rows(&tags, account)
                .iter()
                .any(|t| t.members_with_tag > 0),
            "a test with no tagged member proves nothing"
        );
        let row = partition(&fixture, "reconciliation", DATE, account);
        let day_before = date_of_day(0).pred_opt().unwrap();
        assert_eq!(
            i64_at(&row, "wechat_cumulate_user"),
            served.cumulate_user(account, day_before)
        );
        assert_eq!(i64_at(&row, "members"), None);
        assert_eq!(i64_at(&row, "difference"), None);
    }
    // One call of each per account and run.
    let stats = fixture.server.stats();
    for path in [
        "/cgi-bin/tags/get",
        "/datacube/getusercumulate",
        "/datacube/getusersummary",
    ] {
        assert_eq!(stats.calls_to(path), 2, "{path}: {stats:?}");
    }

    // Day 1: WeChat's count of day 0 agrees for brand_oa and is 7 short
    // for news_oa (tolerance 5 followers: a warning and a metric).
    let truth_day0 = fixture.scenario.truth();
    fixture.server.set_day(1);
    assert!(fixture.server.set_cumulate_offset("news_oa", -7));
    let metrics = fixture.dir.path().join("run.prom");
    let out = fixture
        .unionsnap(
            &[
                "run",
                job.to_str().unwrap(),
                "--date",
                NEXT_DATE,
                "--metrics-file",
                metrics.to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    for (account, offset) in [("brand_oa", 0), ("news_oa", -7)] {
        let row = partition(&fixture, "reconciliation", NEXT_DATE, account);
        let ours = truth_day0.row(account).unwrap().members;
        let wechat = fixture
            .scenario
            .cumulate_user(account, date_of_day(0))
            .unwrap()
            + offset;
        assert_eq!(i64_at(&row, "members"), Some(ours), "{account}");
        assert_eq!(
            i64_at(&row, "wechat_cumulate_user"),
            Some(wechat),
            "{account}"
        );
        assert_eq!(i64_at(&row, "difference"), Some(ours - wechat), "{account}");
        assert_eq!(ours - wechat, -offset, "{account}: the clean count agrees");
        let within = row
            .column("within_tolerance")
            .unwrap()
            .bool()
            .unwrap()
            .get(0);
        assert_eq!(within, Some(offset == 0), "{account}");
        assert_eq!(
            row.column("ref_date")
                .unwrap()
                .cast(&DataType::String)
                .unwrap()
                .str()
                .unwrap()
                .get(0),
            Some(DATE)
        );
    }
    let err = stderr(&out);
    assert!(
        err.contains("differs from WeChat's by more than the tolerance") && err.contains("news_oa"),
        "{err}"
    );
    // The SQL view that explodes follower tags agrees with members_with_tag,
    // in both DuckDB DDLs.
    let probe = format!(
        "SELECT account_id, tag_id, tag_name, count(*) FROM follower_tags \
         WHERE snapshot_date = DATE '{NEXT_DATE}' GROUP BY ALL ORDER BY ALL"
    );
    let mut expected = Vec::new();
    for account in ["brand_oa", "news_oa"] {
        let tags = partition(&fixture, "tags", NEXT_DATE, account);
        for tag in tag_rows(&tags, account) {
            if tag.members_with_tag > 0 {
                expected.push(serde_json::json!([
                    account,
                    tag.tag_id,
                    tag.name,
                    tag.members_with_tag
                ]));
            }
        }
    }
    for ddl in ["duckdb.sql", "duckdb_parquet.sql"] {
        let sql = crate::sql_parity::run_sql(
            &fixture.output_dir(),
            ddl,
            &[("tags".into(), probe.clone())],
        );
        assert_eq!(sql["tags"].rows, expected, "{ddl}: follower_tags");
    }
    // The HTML report shows the figures, the disagreement marked.
    let page = fixture.dir.path().join("report.html");
    let output = fixture.output_dir().display().to_string();
    let out = fixture
        .unionsnap(&["report", &output, "--html", page.to_str().unwrap()], &[])
        .await;
    assert_exit(&out, 0);
    let html = std::fs::read_to_string(&page).unwrap();
    let section = &html[html
        .find("id=\"reconciliation\"")
        .expect("a reconciliation section")..];
    let news = fixture
        .scenario
        .cumulate_user("news_oa", date_of_day(0))
        .unwrap()
        - 7;
    let news_row = &section[section.find("<td>news_oa</td>").unwrap()..];
    let news_row = &news_row[..news_row.find("</tr>").unwrap()];
    assert!(
        news_row.contains("<td>+7</td>") && news_row.contains("<strong>no</strong>"),
        "{news_row}"
    );
    let thousands = |n: i64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    assert!(
        news_row.contains(&format!("<td>{}</td>", thousands(news))),
        "{news_row}"
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("unionsnap_reconciliation_difference{account_id=\"news_oa\",unionsnap_job=")
            && prom.contains(
                "unionsnap_reconciliation_out_of_tolerance{account_id=\"news_oa\",unionsnap_job=\""
            )
            && prom.lines().any(|l| l
                .starts_with("unionsnap_reconciliation_out_of_tolerance{account_id=\"news_oa\"")
                && l.ends_with(" 1"))
            && prom.lines().any(|l| l
                .starts_with("unionsnap_reconciliation_out_of_tolerance{account_id=\"brand_oa\"")
                && l.ends_with(" 0")),
        "{prom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_account_commits_its_followers_and_its_counts_note_48001() {
    let fixture = Fixture::start(scenario(
        162,
        2_000,
        &[("brand_oa", 0.5, true), ("plain_oa", 0.4, true)],
    ))
    .await;
    assert!(fixture.server.set_unverified("plain_oa", true));
    let out = fixture.run_job(&fixture.write_job(), &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
    let err = stderr(&out);
    assert!(err.contains("48001") && err.contains("plain_oa"), "{err}");

    // The tags WeChat would not list: ids from our members only, without
    // WeChat's name and count; the members per tag still right.
    let tags = partition(&fixture, "tags", DATE, "plain_oa");
    let truth: Vec<TagRow> = fixture
        .scenario
        .tag_rows("plain_oa")
        .into_iter()
        .filter(|t| t.members_with_tag > 0)
        .collect();
    let ids: Vec<i64> = tags
        .column("tag_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(ids, truth.iter().map(|t| t.tag_id).collect::<Vec<_>>());
    let members: Vec<i64> = tags
        .column("members_with_tag")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(
        members,
        truth.iter().map(|t| t.members_with_tag).collect::<Vec<_>>()
    );
    assert_eq!(tags.column("name").unwrap().null_count(), tags.height());
    assert_eq!(
        tags.column("wechat_count").unwrap().null_count(),
        tags.height()
    );

    let row = partition(&fixture, "reconciliation", DATE, "plain_oa");
    assert_eq!(i64_at(&row, "wechat_cumulate_user"), None);
    let error = row
        .column("wechat_error")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    assert!(error.contains("48001"), "{error}");
    // The verified account is unaffected.
    let row = partition(&fixture, "reconciliation", DATE, "brand_oa");
    assert!(i64_at(&row, "wechat_cumulate_user").is_some());
    assert_eq!(row.column("wechat_error").unwrap().null_count(), 1);
}

/// The keys of every object in `value`, recursively, as `path.key` strings.
fn shape(value: &serde_json::Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let here = format!("{path}.{key}");
                out.insert(here.clone());
                shape(inner, &here, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                shape(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn shape_of(value: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    shape(value, "", &mut out);
    out
}

fn fixture_body(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wechat/official_account")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_tags_and_datacube_in_wechats_shapes() {
    let fixture = Fixture::start(scenario(163, 1_000, &[("brand_oa", 0.5, true)])).await;
    fixture.server.set_day(3);
    let account = &fixture.scenario.accounts[0];
    let base = fixture.server.base_url();
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{base}/cgi-bin/stable_token"))
        .json(&serde_json::json!({"grant_type": "client_credential", "appid": account.appid, "secret": account.secret}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let get_tags = || async {
        http.get(format!("{base}/cgi-bin/tags/get?access_token={token}"))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let datacube = |endpoint: &'static str, begin: String, end: String| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            http.post(format!("{base}/datacube/{endpoint}?access_token={token}"))
                .json(&serde_json::json!({"begin_date": begin, "end_date": end}))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let day = |d: u32| date_of_day(d).to_string();

    let tags = get_tags().await;
    assert_eq!(
        shape_of(&tags),
        shape_of(&fixture_body("tags_get__doc_example.json"))
    );
    let cumulate = datacube("getusercumulate", day(0), day(2)).await;
    assert_eq!(
        shape_of(&cumulate),
        shape_of(&fixture_body(
            "datacube_getusercumulate__wechatpy_fixture.json"
        ))
    );
    assert_eq!(
        cumulate["list"].as_array().unwrap().len(),
        3,
        "one row per day"
    );
    let served = fixture.server.scenario();
    assert_eq!(
        cumulate["list"][2]["cumulate_user"].as_i64(),
        served.cumulate_user("brand_oa", date_of_day(2))
    );
    let summary = datacube("getusersummary", day(1), day(2)).await;
    assert_eq!(
        shape_of(&summary),
        shape_of(&fixture_body(
            "datacube_getusersummary__wechatpy_fixture.json"
        ))
    );
    // New minus cancelled of day 2 is the change of cumulate_user.
    let net: i64 = summary["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ref_date"] == day(2))
        .map(|r| r["new_user"].as_i64().unwrap() - r["cancel_user"].as_i64().unwrap())
        .sum();
    assert_eq!(
        net,
        cumulate["list"][2]["cumulate_user"].as_i64().unwrap()
            - cumulate["list"][1]["cumulate_user"].as_i64().unwrap()
    );
    // Today, a span of 8 days, a bad date; then an unverified account.
    assert_eq!(
        datacube("getusercumulate", day(3), day(3)).await["errcode"],
        61501
    );
    let eight = (date_of_day(0) - chrono::Duration::days(6)).to_string();
    assert_eq!(
        datacube("getusersummary", eight, day(1)).await["errcode"],
        61501
    );
    assert_eq!(
        datacube("getusercumulate", "2026/11/21".into(), day(1)).await["errcode"],
        61500
    );
    // Day 0 moved to another date (the demo's dates end today): the same
    // days' counts under their new dates.
    let first = date_of_day(0) + chrono::Duration::days(100);
    fixture.server.set_first_date(first);
    let moved = |d: i64| (first + chrono::Duration::days(d)).to_string();
    let again = datacube("getusercumulate", moved(0), moved(2)).await;
    assert_eq!(again["list"][2]["ref_date"], moved(2));
    assert_eq!(
        again["list"][2]["cumulate_user"],
        cumulate["list"][2]["cumulate_user"]
    );
    assert_eq!(
        datacube("getusercumulate", day(0), day(2)).await["list"][2]["cumulate_user"],
        cumulate["list"][0]["cumulate_user"],
        "dates before day 0 count as day 0"
    );
    fixture.server.set_unverified("brand_oa", true);
    assert_eq!(get_tags().await["errcode"], 48001);
    assert_eq!(
        datacube("getusercumulate", day(0), day(0)).await["errcode"],
        48001
    );
}
