//! `privacy.pseudonymize`: ids are HMACs in every table, the numbers do not
//! change, and the identity cache still saves the calls of the next day.

use crate::common::*;

fn pseudonymized_job(fixture: &Fixture) -> std::path::PathBuf {
    let text = fixture.scenario.job_toml(
        &fixture.server.base_url(),
        &fixture.output_dir().display().to_string(),
    );
    let text = text.replacen(
        "\n[api]",
        "\n[privacy]\npseudonymize = true\nkey = { env = \"UNIONSNAP_TEST_HMAC_KEY\" }\ndrop = [\"remark\"]\n\n[api]",
        1,
    );
    fixture.write_job_text(&text)
}

const KEY: (&str, &str) = ("UNIONSNAP_TEST_HMAC_KEY", "test-hmac-key-7f3a");

fn is_pseudonym(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pseudonymized_ids_keep_every_number_and_leave_no_raw_id() {
    let mut scenario = scenario(
        97,
        5_000,
        &[
            ("brand_oa", 0.5, true),
            ("news_oa", 0.4, true),
            ("legacy_oa", 0.2, false),
        ],
    );
    for account in &mut scenario.accounts {
        account.leave_during_crawl = 0.0;
    }
    let fixture = Fixture::start(scenario).await;
    let job = pseudonymized_job(&fixture);
    assert_exit(&fixture.run_job(&job, &[KEY]).await, 0);
    assert_matches_truth(&fixture).await;

    let out = fixture.output_dir().display().to_string();
    let ids = duckdb(&format!(
        "SELECT openid, unionid FROM read_parquet('{out}/followers/*/*/*.parquet', hive_partitioning = true)
         UNION ALL SELECT member_id, unionid FROM read_parquet('{out}/identities/*/*.parquet')"
    ));
    assert!(!ids.is_empty());
    for row in &ids {
        for value in row.as_array().unwrap().iter().filter_map(|v| v.as_str()) {
            assert!(is_pseudonym(value), "a raw id was written: {value}");
        }
    }
    let columns = duckdb(&format!(
        "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('{out}/followers/*/*/*.parquet'))"
    ));
    assert!(
        !columns.iter().any(|c| c[0] == "remark"),
        "privacy.drop removed remark"
    );

    // The next day: the cache of pseudonyms still spares known followers' calls.
    fixture.server.set_day(1);
    let before = fixture.server.stats().ok_calls["/cgi-bin/user/info/batchget"];
    let out = fixture
        .unionsnap(
            &["run", job.to_str().unwrap(), "--date", "2026-11-22"],
            &[KEY],
        )
        .await;
    assert_exit(&out, 0);
    assert_matches_truth_on(&fixture, "2026-11-22").await;
    let calls = fixture.server.stats().ok_calls["/cgi-bin/user/info/batchget"] - before;
    assert!(
        calls <= 20,
        "only new followers fetched: {calls} batchget calls"
    );
}
