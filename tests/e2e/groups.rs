//! WeCom customer group chats end to end: their external members are
//! members of the corp (one member with the same person's contact), in
//! `group_members`, counted in `audience`/`overlap` as the simulator's truth
//! counts them; `groups = false` reads contacts only; and what a second day
//! costs in calls.

use crate::common::*;
use unionsnap::simulator::{Scenario, SimCorp};

const LIST: &str = "/cgi-bin/externalcontact/groupchat/list";
const GET: &str = "/cgi-bin/externalcontact/groupchat/get";

/// Two Official Accounts and a corp whose groups reach many people who are
/// no staff member's contact; `chats` customer groups (dismissed included).
fn with_groups(seed: u64, chats: u32, churn: f64) -> Scenario {
    let mut scenario = without_crawl_leavers(scenario(
        seed,
        3_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.2, false)],
    ));
    scenario.accounts[0].daily_churn = churn;
    scenario.corps = vec![SimCorp {
        staff: 40,
        wecom_user_share: 0.15,
        group_chats: chats,
        group_reach: 0.3,
        daily_churn: churn,
        ..SimCorp::new(seed, "crm", 0.2)
    }];
    scenario
}

fn without_groups(scenario: &Scenario) -> Scenario {
    let mut scenario = scenario.clone();
    for corp in &mut scenario.corps {
        corp.group_chats = 0;
    }
    scenario
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_count_like_contacts_and_a_second_day_costs_one_get_per_chat() {
    let fixture = Fixture::start(with_groups(61, 1_500, 0.02)).await;
    let job = fixture.write_job();
    let output = fixture.output_dir();
    assert_exit(&fixture.run_job_on(&job, "2026-11-01", &[]).await, 0);
    assert_matches_truth_on(&fixture, "2026-11-01").await;
    let truth = fixture.server.truth();
    let contacts_only = without_groups(&fixture.scenario).truth();
    let crm = truth.row("crm").unwrap();
    assert!(
        crm.members > contacts_only.row("crm").unwrap().members + 100,
        "groups add members: {crm:?}"
    );
    assert!(
        truth.shared("brand_oa", "crm").unwrap() > contacts_only.shared("brand_oa", "crm").unwrap()
    );

    let out = output.display().to_string();
    let rows = duckdb(&format!(
        "WITH g AS (SELECT * FROM read_parquet('{out}/group_members/snapshot_date=2026-11-01/*/*.parquet', hive_partitioning = true)),
              c AS (SELECT * FROM read_parquet('{out}/contacts/snapshot_date=2026-11-01/*/*.parquet', hive_partitioning = true))
         SELECT (SELECT count(*) FROM (SELECT external_userid FROM g UNION SELECT external_userid FROM c)),
                (SELECT count(DISTINCT external_userid) FROM g WHERE external_userid NOT IN (SELECT external_userid FROM c)),
                (SELECT count(*) FROM g WHERE external_userid LIKE 'sales_%'),
                (SELECT count(DISTINCT chat_id) FROM g),
                (SELECT count(*) FROM g WHERE external_userid LIKE 'wo%' AND unionid IS NOT NULL),
                (SELECT count(DISTINCT chat_status) FROM g),
                (SELECT count(*) FROM g WHERE member_version IS NULL)"
    ));
    let n = |i: usize| rows[0][i].as_i64().unwrap();
    assert_eq!(
        n(0),
        crm.members,
        "contacts ∪ group members = the corp's members"
    );
    assert!(n(1) > 100, "members in groups only: {}", n(1));
    assert_eq!(n(2), 0, "staff (type 1) are not audience");
    assert!(n(3) > 500, "chats with external members: {}", n(3));
    assert_eq!(n(4), 0, "WeCom users (wo…) never carry a UnionID");
    assert_eq!(n(5), 4, "every chat status is kept");
    assert_eq!(n(6), 0);

    // The HTML report shows the corp's group figures, as the tables have them.
    let html = fixture.dir.path().join("report.html");
    let html_arg = html.display().to_string();
    let report = fixture
        .unionsnap(
            &["report", &out, "--date", "2026-11-01", "--html", &html_arg],
            &[],
        )
        .await;
    assert_exit(&report, 0);
    let html = std::fs::read_to_string(&html).unwrap();
    let section = html.split("<h2>WeCom customer groups</h2>").nth(1).unwrap();
    let row = section.split("<td>crm</td>").nth(1).unwrap();
    let cells: Vec<i64> = row
        .split("</tr>")
        .next()
        .unwrap()
        .split("<td>")
        .filter_map(|c| c.trim_end_matches("</td>").replace(',', "").parse().ok())
        .collect();
    assert_eq!(cells[0], n(3), "chats");
    assert_eq!(cells[3], n(1), "in groups only");

    // Day 1's calls: 2 list pages (1,000 chats a page), one get per chat.
    let stats = fixture.server.stats();
    let (lists, gets) = (stats.calls_to(LIST), stats.calls_to(GET));
    assert_eq!(lists, 2);
    assert!(gets > 1_300 && gets < 1_500, "{gets}");

    // Day 2, people moved: the same cost again. groupchat/list says nothing
    // of a chat's members (no member_version, no update time), so no chat
    // can be skipped without its get.
    fixture.server.set_day(1);
    assert_exit(&fixture.run_job_on(&job, "2026-11-02", &[]).await, 0);
    assert_matches_truth_on(&fixture, "2026-11-02").await;
    let stats = fixture.server.stats();
    assert_eq!(stats.calls_to(LIST) - lists, 2);
    assert_eq!(
        stats.calls_to(GET) - gets,
        gets,
        "dismissed chats stay unlisted"
    );
    let changed = duckdb(&format!(
        "SELECT count(*) FROM (
           SELECT DISTINCT chat_id, member_version FROM read_parquet('{out}/group_members/snapshot_date=2026-11-02/*/*.parquet')
           EXCEPT
           SELECT DISTINCT chat_id, member_version FROM read_parquet('{out}/group_members/snapshot_date=2026-11-01/*/*.parquet'))"
    ));
    let changed = changed[0][0].as_i64().unwrap();
    assert!(
        changed > 0 && changed < n(3),
        "chats whose members changed: {changed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_false_reads_contacts_only() {
    let fixture = Fixture::start(with_groups(62, 200, 0.0)).await;
    let text = fixture.scenario.job_toml(
        &fixture.server.base_url(),
        &fixture.output_dir().display().to_string(),
    );
    let text = text.replace(
        "unionid_mode = \"direct\"\n",
        "unionid_mode = \"direct\"\ngroups = false\n",
    );
    let job = fixture.write_job_text(&text);
    let out = fixture
        .unionsnap(&["validate", job.to_str().unwrap()], &[])
        .await;
    assert!(
        stdout(&out).contains("contacts only (groups = false)"),
        "{}",
        stdout(&out)
    );
    assert_exit(&fixture.run_job(&job, &[]).await, 0);
    let snapshot = read_snapshot(&fixture.output_dir()).await;
    let truth = without_groups(&fixture.scenario).truth();
    assert_eq!(
        unionsnap::simulator::audience_rows(&snapshot.audience).unwrap(),
        truth.audience
    );
    assert_ne!(truth.audience, fixture.scenario.truth().audience);
    assert_eq!(fixture.server.stats().calls_to(LIST), 0);
    let group_files = files_under(&fixture.output_dir().join("group_members"));
    assert!(
        group_files.iter().all(|f| !f.ends_with(".parquet")),
        "{group_files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_merge_and_partial_runs_keep_the_group_members() {
    let fixture = Fixture::start(with_groups(63, 300, 0.0)).await;
    let job = fixture.write_job();
    let job = job.to_str().unwrap();
    // Shards land raw partitions (contacts and group_members for the corp);
    // the merge reads both back as the corp's members.
    for shard in ["0/2", "1/2"] {
        let out = fixture
            .unionsnap(&["run", job, "--date", DATE, "--shard", shard], &[])
            .await;
        assert_exit(&out, 0);
    }
    let out = fixture
        .unionsnap(&["merge", job, "--date", DATE], &[])
        .await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
    // A run of one Official Account keeps the corp as committed: its
    // identities are read back from contacts and group_members.
    let out = fixture
        .unionsnap(&["run", job, "--date", DATE, "--accounts", "brand_oa"], &[])
        .await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
    let truth = fixture.scenario.truth();
    assert_ne!(
        truth.row("crm").unwrap().members,
        without_groups(&fixture.scenario)
            .truth()
            .row("crm")
            .unwrap()
            .members
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_online_proves_the_group_permission_with_one_list_call() {
    let fixture = Fixture::start(with_groups(64, 50, 0.0)).await;
    let job = fixture.write_job();
    let out = fixture
        .unionsnap(&["validate", job.to_str().unwrap(), "--online"], &[])
        .await;
    assert_exit(&out, 0);
    let table = stdout(&out);
    let crm = table
        .lines()
        .find(|l| l.starts_with("account crm "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(crm.contains("customer groups readable"), "{table}");
    let stats = fixture.server.stats();
    assert_eq!(stats.calls_to(LIST), 1);
    assert_eq!(stats.calls_to(GET), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pseudonymized_group_members_meet_their_contacts_in_one_member() {
    let fixture = Fixture::start(with_groups(65, 200, 0.0)).await;
    let text = fixture.scenario.job_toml(
        &fixture.server.base_url(),
        &fixture.output_dir().display().to_string(),
    );
    let text = text.replacen(
        "\n[api]",
        "\n[privacy]\npseudonymize = true\nkey = { env = \"UNIONSNAP_TEST_HMAC_KEY\" }\ndrop = [\"chat_name\", \"invitor\"]\n\n[api]",
        1,
    );
    let job = fixture.write_job_text(&text);
    let key = ("UNIONSNAP_TEST_HMAC_KEY", "test-hmac-key-groups");
    assert_exit(&fixture.run_job(&job, &[key]).await, 0);
    // The same pseudonym for a person's contact and group rows: the corp's
    // members are still exactly the truth's.
    assert_matches_truth(&fixture).await;
    let out = fixture.output_dir().display().to_string();
    let rows = duckdb(&format!(
        "SELECT count(*) FILTER (length(external_userid) <> 64 OR external_userid LIKE 'w%'),
                count(*) FILTER (unionid IS NOT NULL AND length(unionid) <> 64),
                count(*)
         FROM read_parquet('{out}/group_members/*/*/*.parquet')"
    ));
    let n = |i: usize| rows[0][i].as_i64().unwrap();
    assert!(n(2) > 0);
    assert_eq!((n(0), n(1)), (0, 0), "no raw id in group_members");
    let columns = duckdb(&format!(
        "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('{out}/group_members/*/*/*.parquet'))"
    ));
    assert!(
        !columns
            .iter()
            .any(|c| c[0] == "chat_name" || c[0] == "invitor"),
        "{columns:?}"
    );
    assert!(columns.iter().any(|c| c[0] == "chat_owner"));
}
