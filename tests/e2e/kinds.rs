//! Every kind of account end to end: own-credential and third-party Official
//! Accounts, WeCom contacts (direct and idconvert) and login-export imports
//! (CSV, NDJSON, Parquet; local and S3), against the simulator's truth.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::moto::{s3_env, start_moto};
use unionsnap::simulator::{
    self, ExportFormat, FaultKind, Faults, Scenario, SimAccount, SimApp, SimAppKind, SimCorp,
    SimPlatform,
};

/// Own-credential OAs (one unbound), one OA through a third-party platform,
/// a WeCom corp with 130 staff members, type-2 and shared contacts, and a
/// Mini Program whose users come from its login export.
fn every_kind(seed: u64) -> Scenario {
    let mut scenario = scenario(
        seed,
        3_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.2, false)],
    );
    let agency = SimAccount {
        leave_during_crawl: 0.003,
        ..SimAccount::new(seed, "agency_oa", 0.3)
    };
    scenario.platform = Some(SimPlatform::new(seed, vec![agency]));
    scenario.corps = vec![SimCorp {
        staff: 130,
        wecom_user_share: 0.15,
        shared_share: 0.25,
        ..SimCorp::new(seed, "crm", 0.4)
    }];
    scenario.apps = vec![SimApp::new(seed, "shop_mp", SimAppKind::MiniProgram, 0.35)];
    scenario
}

/// Writes every app's export where the scenario's job file looks for it
/// next to `output`.
async fn write_exports(scenario: &Scenario, output: &Path, format: ExportFormat) {
    let output = output.display().to_string();
    simulator::exports::write_local_exports(
        scenario,
        |id| PathBuf::from(Scenario::export_location(&output, id)),
        |_| format,
        3,
    )
    .await
    .unwrap();
}

fn partition(output: &Path, table: &str, account: &str) -> PathBuf {
    partition_of(output, table, DATE, account)
}

fn read_parquet(path: &Path) -> polars::prelude::DataFrame {
    unionsnap::load::parquet::decode(std::fs::read(path).unwrap().into()).unwrap()
}

fn manifest(output: &Path) -> PathBuf {
    output.join(format!("_manifests/snapshot_date={DATE}/manifest.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_equals_the_truth_for_several_seeds() {
    for seed in [41, 42, 43] {
        let fixture = Fixture::start(every_kind(seed)).await;
        write_exports(&fixture.scenario, &fixture.output_dir(), ExportFormat::Csv).await;
        let out = fixture.run_job(&fixture.write_job(), &[]).await;
        assert_exit(&out, 0);
        assert_matches_truth(&fixture).await;
        let truth = fixture.scenario.truth();
        let crm = truth.row("crm").unwrap();
        assert!(
            crm.resolved > 0 && crm.unresolved > 0,
            "seed {seed}: {crm:?}"
        );
        assert!(truth.shared("agency_oa", "crm").unwrap() > 0, "seed {seed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_have_a_row_per_staff_member_and_type_2_contacts_stay_unresolved() {
    let fixture = Fixture::start(every_kind(44)).await;
    write_exports(&fixture.scenario, &fixture.output_dir(), ExportFormat::Csv).await;
    assert_exit(&fixture.run_job(&fixture.write_job(), &[]).await, 0);
    let out = fixture.output_dir().display().to_string();
    let rows = duckdb(&format!(
        "SELECT count(*), count(DISTINCT external_userid), count(DISTINCT follow_userid),
                count(*) FILTER (contact_type = 2), count(unionid) FILTER (contact_type = 2),
                count(*) FILTER (external_userid LIKE 'wo%' AND contact_type <> 2)
         FROM read_parquet('{out}/contacts/*/*/*.parquet', hive_partitioning = true)"
    ));
    let n = |i: usize| rows[0][i].as_i64().unwrap();
    let members = fixture.scenario.truth().row("crm").unwrap().members;
    assert_eq!(n(1), members, "members are distinct external_userids");
    assert!(n(0) > n(1), "shared contacts give more rows than members");
    assert!(n(2) > 100, "staff members beyond the first 100: {}", n(2));
    assert!(n(3) > 0, "type-2 contacts are present");
    assert_eq!(n(4), 0, "type-2 contacts never have a UnionID");
    assert_eq!(n(5), 0, "wo… ids are type 2");
    let schema = duckdb(&format!(
        "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{out}/contacts/*/*/*.parquet', hive_partitioning = false))"
    ));
    let columns: Vec<String> = schema
        .iter()
        .map(|r| format!("{} {}", r[0].as_str().unwrap(), r[1].as_str().unwrap()))
        .collect();
    assert_eq!(
        columns,
        [
            "external_userid VARCHAR",
            "unionid VARCHAR",
            "contact_type INTEGER",
            "follow_userid VARCHAR",
            "added_at TIMESTAMP WITH TIME ZONE",
            "add_way INTEGER",
            "state VARCHAR",
            "tag_ids VARCHAR[]",
            "remark VARCHAR",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_reads_the_same_members_from_csv_ndjson_and_parquet() {
    let fixture = Fixture::start(every_kind(45)).await;
    let mut tables = Vec::new();
    for format in ExportFormat::ALL {
        let output = fixture
            .dir
            .path()
            .join(format.extension())
            .join("warehouse");
        write_exports(&fixture.scenario, &output, format).await;
        let job = fixture.write_job_with_output(&output.display().to_string());
        assert_exit(&fixture.run_job(&job, &[]).await, 0);
        let snapshot = read_snapshot(&output).await;
        assert_eq!(
            simulator::audience_rows(&snapshot.audience).unwrap(),
            fixture.scenario.truth().audience,
            "{format}"
        );
        tables.push(read_parquet(&partition(&output, "app_users", "shop_mp")));
    }
    assert!(tables[0].height() > 500);
    assert!(tables[0].equals_missing(&tables[1]), "CSV vs NDJSON");
    assert!(tables[0].equals_missing(&tables[2]), "CSV vs Parquet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_reads_an_s3_prefix_as_it_reads_a_folder() {
    let moto = start_moto().await;
    let fixture = Fixture::start(every_kind(46)).await;
    write_exports(&fixture.scenario, &fixture.output_dir(), ExportFormat::Csv).await;
    assert_exit(&fixture.run_job(&fixture.write_job(), &[]).await, 0);

    let raw = moto.store("");
    for format in [ExportFormat::Parquet, ExportFormat::Ndjson] {
        let prefix = format!("raw/{format}/shop_mp");
        simulator::write_app_export(&fixture.scenario, "shop_mp", &raw, &prefix, format, 4)
            .await
            .unwrap();
        let output = fixture.dir.path().join(format!("s3-{format}"));
        let text = fixture
            .scenario
            .job_toml(&fixture.server.base_url(), &output.display().to_string());
        let local_source = Scenario::export_location(&output.display().to_string(), "shop_mp");
        let text = text.replace(&local_source, &format!("s3://unionsnap-test/{prefix}/"));
        let job = fixture.write_job_text(&text);
        let env = s3_env(&moto.endpoint);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_exit(&fixture.run_job(&job, &env).await, 0);
        let from_s3 = read_parquet(&partition(&output, "app_users", "shop_mp"));
        let from_folder = read_parquet(&partition(&fixture.output_dir(), "app_users", "shop_mp"));
        assert!(from_s3.equals_missing(&from_folder), "{format}");
    }
}

/// A malformed export of the Mini Program: (file name, content, the
/// `file:line` or `file: row N` the message must name, a word of the reason).
fn malformed_cases() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let openid = "oAAAAA1111111111111111111111";
    let unionid = "oUUUUU1111111111111111111111";
    let mut latin1 = format!("openid,unionid\n{openid},{unionid}\n{openid},\n").into_bytes();
    latin1.extend_from_slice(b"o\xe9t\xe9,\n");
    let mut parquet = Vec::new();
    let mut frame = polars::prelude::df!(
        "openid" => [Some(openid), None],
        "unionid" => [Some(unionid), None],
    )
    .unwrap();
    polars::prelude::ParquetWriter::new(&mut parquet)
        .finish(&mut frame)
        .unwrap();
    vec![
        (
            "missing_column.csv",
            format!("openid,first_seen\n{openid},\n").into_bytes(),
            ":1",
            "missing column `unionid`",
        ),
        (
            "bad_row.csv",
            format!(
                "openid,unionid,first_seen\n{openid},{unionid},2026-01-01\n{openid},{unionid}\n"
            )
            .into_bytes(),
            ":3",
            "2 fields, but the header has 3",
        ),
        ("bad_encoding.csv", latin1, ":4", "bad encoding"),
        (
            "bad_time.ndjson",
            format!("{{\"openid\":\"{openid}\",\"unionid\":null,\"first_seen\":\"soon\"}}\n")
                .into_bytes(),
            ":1",
            "is not a timestamp",
        ),
        ("null_openid.parquet", parquet, ": row 2", "openid is empty"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_import_fails_its_account_alone_naming_file_and_line() {
    let mut scenario = scenario(47, 2_000, &[("brand_oa", 0.5, true)]);
    scenario.apps = vec![SimApp::new(47, "shop_mp", SimAppKind::MiniProgram, 0.3)];
    let fixture = Fixture::start(scenario).await;
    for (name, content, position, reason) in malformed_cases() {
        let case = fixture.dir.path().join(name.replace('.', "_"));
        std::fs::create_dir_all(&case).unwrap();
        let file = case.join(name);
        std::fs::write(&file, content).unwrap();
        let output = case.join("warehouse");
        let text = fixture
            .scenario
            .job_toml(&fixture.server.base_url(), &output.display().to_string())
            .replace(
                &Scenario::export_location(&output.display().to_string(), "shop_mp"),
                &file.display().to_string(),
            );
        let out = fixture.run_job(&fixture.write_job_text(&text), &[]).await;
        assert_exit(&out, 3);
        let message = stderr(&out);
        let expected = format!(
            "account shop_mp failed: shop_mp: {}{position}: ",
            file.display()
        );
        assert!(
            message.contains(&expected),
            "{name}: {expected:?} in\n{message}"
        );
        assert!(message.contains(reason), "{name}: {reason:?} in\n{message}");
        assert!(
            partition(&output, "followers", "brand_oa").exists(),
            "{name}"
        );
        assert!(
            !partition(&output, "app_users", "shop_mp").exists(),
            "{name}"
        );
        assert!(!manifest(&output).exists(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idconvert_linking_raises_resolved_by_exactly_the_linkable_contacts() {
    let mut scenario = every_kind(48);
    scenario.corps.push(SimCorp {
        idconvert: true,
        staff: 20,
        ..SimCorp::new(48, "partner_crm", 0.3)
    });
    scenario
        .apps
        .push(SimApp::new(48, "brand_web", SimAppKind::Website, 0.2));
    let fixture = Fixture::start(scenario).await;
    let resolved = |snapshot: &unionsnap::report::Snapshot| {
        simulator::audience_rows(&snapshot.audience)
            .unwrap()
            .into_iter()
            .find(|row| row.account_id == "partner_crm")
            .unwrap()
    };

    // Alone, the corp has no (openid, unionid) pairs to link with.
    let alone = fixture.dir.path().join("alone");
    let job = fixture.write_job_with_output(&alone.display().to_string());
    let out = fixture
        .unionsnap(
            &[
                "run",
                job.to_str().unwrap(),
                "--date",
                DATE,
                "--accounts",
                "partner_crm",
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    let before = resolved(&read_snapshot(&alone).await);
    assert_eq!(before.resolved, 0);
    assert!(before.members > 100);

    // With the Official Accounts and the Mini Program, linked contacts resolve.
    write_exports(
        &fixture.scenario,
        &fixture.output_dir(),
        ExportFormat::Ndjson,
    )
    .await;
    let calls_before = fixture
        .server
        .stats()
        .calls_to("/cgi-bin/idconvert/unionid_to_external_userid");
    assert_eq!(calls_before, 0);
    assert_exit(&fixture.run_job(&fixture.write_job(), &[]).await, 0);
    assert_matches_truth(&fixture).await;
    let after = resolved(&read_snapshot(&fixture.output_dir()).await);
    let linkable = fixture.scenario.linkable_contacts("partner_crm").unwrap();
    assert!(
        linkable > 0 && linkable < after.members,
        "{linkable} of {}",
        after.members
    );
    assert_eq!(after.members, before.members);
    assert_eq!(after.resolved - before.resolved, linkable);
    // One idconvert call per UnionID at most, none refused.
    let stats = fixture.server.stats();
    assert!(stats.ok_calls_to("/cgi-bin/idconvert/unionid_to_external_userid") > 0);
    assert!(stats.errcodes.is_empty(), "{:?}", stats.errcodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_refresh_token_fails_the_third_party_account_alone() {
    let fixture = Fixture::start(every_kind(49)).await;
    write_exports(&fixture.scenario, &fixture.output_dir(), ExportFormat::Csv).await;
    let out = fixture
        .run_job(
            &fixture.write_job(),
            &[(
                "UNIONSNAP_SIM_REFRESH_TOKEN_AGENCY_OA",
                "stale-refresh-token",
            )],
        )
        .await;
    assert_exit(&out, 3);
    let message = stderr(&out);
    assert!(
        message.contains("account agency_oa failed: agency_oa: /cgi-bin/component/api_authorizer_token: errcode 61023"),
        "{message}"
    );
    assert!(message.contains("auth.refresh_token"), "{message}");
    let output = fixture.output_dir();
    for (table, account) in [
        ("followers", "brand_oa"),
        ("contacts", "crm"),
        ("app_users", "shop_mp"),
    ] {
        assert!(partition(&output, table, account).exists(), "{account}");
    }
    assert!(!partition(&output, "followers", "agency_oa").exists());
    assert!(!manifest(&output).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_every_kind_leave_the_numbers_and_secrets_intact() {
    let mut scenario = every_kind(50);
    // Trace logs of every request are large: keep the population small.
    scenario.people = 1_200;
    scenario.corps.push(SimCorp {
        idconvert: true,
        staff: 10,
        ..SimCorp::new(50, "partner_crm", 0.2)
    });
    scenario.faults = Faults {
        seed: 5,
        rate: 0.1,
        kinds: FaultKind::all(),
        latency: std::time::Duration::ZERO,
    };
    let fixture = Fixture::start(scenario).await;
    write_exports(
        &fixture.scenario,
        &fixture.output_dir(),
        ExportFormat::Parquet,
    )
    .await;
    let out = fixture
        .run_job(&fixture.write_job(), &[("RUST_LOG", "trace")])
        .await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
    let stats = fixture.server.stats();
    assert!(
        stats.faults.values().sum::<u64>() > 20,
        "{:?}",
        stats.faults
    );

    let mut haystack = stdout(&out) + &stderr(&out);
    for path in files_under(&fixture.output_dir()) {
        let bytes = std::fs::read(fixture.output_dir().join(&path)).unwrap();
        haystack.push_str(&String::from_utf8_lossy(&bytes));
    }
    for (name, secret) in fixture.scenario.secret_env() {
        assert!(!haystack.contains(secret.as_str()), "{name} leaked");
    }
    let tokens = fixture.server.issued_tokens();
    assert!(
        tokens.len() >= 4,
        "OA, authorizer, component and corp tokens"
    );
    for token in &tokens {
        assert!(!haystack.contains(token.as_str()), "an access token leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idconvert_stops_at_its_quota_and_fails_the_corp_alone() {
    const IDCONVERT: &str = "/cgi-bin/idconvert/unionid_to_external_userid";
    let mut scenario = every_kind(51);
    scenario.corps.push(SimCorp {
        idconvert: true,
        staff: 10,
        ..SimCorp::new(51, "partner_crm", 0.3)
    });
    scenario.quotas.insert(IDCONVERT.to_string(), 40);
    let fixture = Fixture::start(scenario).await;
    write_exports(&fixture.scenario, &fixture.output_dir(), ExportFormat::Csv).await;
    let out = fixture.run_job(&fixture.write_job(), &[]).await;
    assert_exit(&out, 3);
    let message = stderr(&out);
    assert!(
        message.contains(&format!(
            "account partner_crm failed: partner_crm: {IDCONVERT}"
        )),
        "{message}"
    );
    assert!(message.contains("errcode 45009"), "{message}");
    assert_eq!(fixture.server.stats().ok_calls_to(IDCONVERT), 40);
    let output = fixture.output_dir();
    assert!(partition(&output, "contacts", "crm").exists());
    assert!(partition(&output, "followers", "agency_oa").exists());
    assert!(!partition(&output, "contacts", "partner_crm").exists());
    assert!(!manifest(&output).exists());
}

/// The committed `id_links` of `partner_crm` on `date`: (unionid,
/// external_userid, converted_on) rows.
fn id_links(output: &Path, date: &str) -> Vec<(Option<String>, Option<String>, Option<String>)> {
    use polars::prelude::*;
    let path = committed_partition(output, "id_links", date, "partner_crm");
    let frame = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    let strings = |name: &str| -> Vec<Option<String>> {
        let column = frame.column(name).unwrap().cast(&DataType::String).unwrap();
        column
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    };
    let (unionids, externals, converted) = (
        strings("unionid"),
        strings("external_userid"),
        strings("converted_on"),
    );
    (0..frame.height())
        .map(|i| {
            (
                unionids[i].clone(),
                externals[i].clone(),
                converted[i].clone(),
            )
        })
        .collect()
}

fn with_partner_crm(seed: u64, churn: f64) -> Scenario {
    // Followers who leave mid-crawl are not seen leaving by a day-2 run
    // that carries known followers over: here only churn moves people.
    let mut scenario = without_crawl_leavers(every_kind(seed));
    for account in &mut scenario.platform.as_mut().unwrap().accounts {
        account.leave_during_crawl = 0.0;
    }
    scenario.accounts[0].daily_churn = churn;
    scenario.corps.push(SimCorp {
        idconvert: true,
        staff: 20,
        daily_churn: churn,
        ..SimCorp::new(seed, "partner_crm", 0.3)
    });
    scenario
}

const IDCONVERT: &str = "/cgi-bin/idconvert/unionid_to_external_userid";
const PENDING: &str = "/cgi-bin/idconvert/batch/external_userid_to_pending_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idconvert_remembers_so_an_unchanged_day_converts_nothing() {
    let fixture = Fixture::start(with_partner_crm(53, 0.0)).await;
    write_exports(&fixture.scenario, &fixture.output_dir(), ExportFormat::Csv).await;
    let job = fixture.write_job();
    let output = fixture.output_dir();
    assert_exit(&fixture.run_job_on(&job, "2026-11-01", &[]).await, 0);
    assert_matches_truth_on(&fixture, "2026-11-01").await;
    // Day 1: every UnionID learned converted once, and remembered.
    let links = id_links(&output, "2026-11-01");
    let converted = fixture.server.stats().ok_calls_to(IDCONVERT);
    assert!(converted > 100, "{converted}");
    assert_eq!(
        links.iter().filter(|(u, _, _)| u.is_some()).count() as u64,
        converted
    );
    assert_eq!(fixture.server.stats().calls_to(PENDING), 0);

    // Day 2, the same people: no conversion, no lookup, the same numbers.
    fixture.server.set_day(1);
    assert_exit(&fixture.run_job_on(&job, "2026-11-02", &[]).await, 0);
    assert_matches_truth_on(&fixture, "2026-11-02").await;
    let stats = fixture.server.stats();
    assert_eq!(stats.calls_to(IDCONVERT), converted);
    assert_eq!(stats.calls_to(PENDING), 0);
    assert_eq!(id_links(&output, "2026-11-02"), links);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idconvert_converts_new_unionids_once_and_links_new_contacts_by_pending_id() {
    let fixture = Fixture::start(with_partner_crm(54, 0.02)).await;
    write_exports(&fixture.scenario, &fixture.output_dir(), ExportFormat::Csv).await;
    let job = fixture.write_job();
    let output = fixture.output_dir();
    let conversions = || fixture.server.stats().calls_to(IDCONVERT);
    assert_exit(&fixture.run_job_on(&job, "2026-11-01", &[]).await, 0);
    let day0 = id_links(&output, "2026-11-01");
    let before = conversions();

    // Three days on: followers and customers came and went.
    fixture.server.set_day(3);
    assert_exit(&fixture.run_job_on(&job, "2026-11-04", &[]).await, 0);
    assert_matches_truth_on(&fixture, "2026-11-04").await;
    let day3 = id_links(&output, "2026-11-04");
    let converted_today: Vec<&Option<String>> = day3
        .iter()
        .filter(|(_, _, on)| on.as_deref() == Some("2026-11-04"))
        .map(|(u, _, _)| u)
        .collect();
    // Each conversion was of a UnionID new since day 0, converted once.
    assert_eq!(conversions() - before, converted_today.len() as u64);
    assert!(!converted_today.is_empty());
    let known0: std::collections::HashMap<&Option<String>, &Option<String>> =
        day0.iter().map(|(u, e, _)| (u, e)).collect();
    assert!(converted_today.iter().all(|u| !known0.contains_key(u)));
    // People converted on day 0 who became customers since were linked
    // through their pending_id, not converted again.
    let became_customers = day3
        .iter()
        .filter(|(u, e, on)| {
            e.is_some()
                && on.as_deref() == Some("2026-11-01")
                && known0.get(u).is_some_and(|e0| e0.is_none())
        })
        .count();
    assert!(became_customers > 0);
    assert!(fixture.server.stats().ok_calls_to(PENDING) > 0);

    // Near the pending_ids' 90 days, those still waiting are converted again.
    let before = conversions();
    fixture.server.set_day(85);
    assert_exit(&fixture.run_job_on(&job, "2027-01-25", &[]).await, 0);
    assert_matches_truth_on(&fixture, "2027-01-25").await;
    let day85 = id_links(&output, "2027-01-25");
    let rechecked = day85
        .iter()
        .filter(|(u, _, on)| {
            on.as_deref() == Some("2027-01-25") && known0.get(u).is_some_and(|e0| e0.is_none())
        })
        .count();
    assert!(rechecked > 0);
    assert_eq!(
        conversions() - before,
        day85
            .iter()
            .filter(|(_, _, on)| on.as_deref() == Some("2027-01-25"))
            .count() as u64
    );
}
