//! `unionsnap validate JOB.toml --online` against the simulator: a token per
//! account, UnionIDs or not, a probe object in the output; a table of what is
//! ready and what to fix.

use crate::common::*;

/// The table row of `subject`, e.g. "account brand_oa".
fn row<'a>(table: &'a str, subject: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{subject} ")))
        .unwrap_or_else(|| panic!("no row for {subject} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_job_exits_0_and_says_which_accounts_are_bound() {
    let fixture = Fixture::start(scenario(
        71,
        1_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.3, false)],
    ))
    .await;
    let out = fixture
        .unionsnap(
            &[
                "validate",
                fixture.write_job().to_str().unwrap(),
                "--online",
            ],
            &[],
        )
        .await;
    assert_exit(&out, 0);
    let table = stdout(&out);
    assert!(row(&table, "account brand_oa").contains("ready"), "{table}");
    assert!(
        row(&table, "account brand_oa").contains(": bound"),
        "{table}"
    );
    let legacy = row(&table, "account legacy_oa");
    assert!(
        legacy.contains("warn") && legacy.contains("not bound"),
        "{table}"
    );
    assert!(
        row(&table, "output").contains("wrote and deleted"),
        "{table}"
    );
    // The probe is gone again.
    assert!(files_under(&fixture.output_dir()).is_empty());
    // One token and one page per account, one batchget each: nothing more.
    let stats = fixture.server.stats();
    assert_eq!(stats.calls_to("/cgi-bin/user/get"), 2);
    assert_eq!(stats.calls_to("/cgi-bin/user/info/batchget"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_and_an_unwritable_output_exit_1_with_what_to_fix() {
    let fixture = Fixture::start(scenario(
        72,
        500,
        &[("brand_oa", 0.5, true), ("bad_oa", 0.3, true)],
    ))
    .await;
    // The output folder cannot be created: a file is in the way.
    let blocker = fixture.dir.path().join("blocker");
    std::fs::write(&blocker, "not a folder").unwrap();
    let output = blocker.join("warehouse");
    let job = fixture.write_job_with_output(&output.display().to_string());
    let out = fixture
        .unionsnap(
            &["validate", job.to_str().unwrap(), "--online"],
            &[("UNIONSNAP_SIM_SECRET_BAD_OA", "wrong-secret-7272")],
        )
        .await;
    assert_exit(&out, 1);
    let table = stdout(&out);
    assert!(row(&table, "account brand_oa").contains("ready"), "{table}");
    let bad = row(&table, "account bad_oa");
    assert!(
        bad.contains("FAIL") && bad.contains("token failed"),
        "{table}"
    );
    assert!(row(&table, "output").contains("FAIL"), "{table}");
    assert!(table.contains("not ready: 2 check(s) to fix"), "{table}");
    assert!(!table.contains("wrong-secret-7272"));
}
