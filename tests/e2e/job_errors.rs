//! Malformed job files: exit 2, a message naming the file, line and problem,
//! and nothing written.

use crate::common::*;

const VALID: &str = r#"name = "acme"
schedule = "0 30 2 * * *"
timezone = "Asia/Shanghai"
output = "OUTPUT"

[api]
base_url = "http://127.0.0.1:9"

[[accounts]]
id = "brand_oa"
kind = "official_account"
appid = "wx0123456789abcdef"
secret = { env = "UNIONSNAP_TEST_SECRET" }

[[accounts]]
id = "news_oa"
kind = "official_account"
appid = "wx0123456789abcde0"
secret = { env = "UNIONSNAP_TEST_SECRET" }
"#;

/// Runs `unionsnap run` on VALID with `from` replaced by `to`.
async fn run_broken(from: &str, to: &str) -> (String, bool) {
    assert!(VALID.contains(from), "{from}");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("warehouse");
    let text = VALID
        .replace("OUTPUT", &output.display().to_string())
        .replacen(from, to, 1);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, text).unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["run", job.to_str().unwrap()])
        .env("UNIONSNAP_TEST_SECRET", "secret-value-1234")
        .env_remove("UNIONSNAP_MISSING_SECRET")
        .output()
        .await
        .unwrap();
    assert_exit(&out, 2);
    (stderr(&out), output.exists())
}

#[track_caller]
fn assert_names(message: &str, wrote: bool, line: usize, words: &[&str]) {
    assert!(!wrote, "nothing may be written; {message}");
    assert!(
        message.contains(&format!("job.toml:{line}")),
        "line {line}: {message}"
    );
    for word in words {
        assert!(message.contains(word), "{word:?} in {message}");
    }
}

#[tokio::test]
async fn an_unknown_key_exits_2_naming_it() {
    let (msg, wrote) = run_broken("[api]\n", "[api]\nconcurency = 4\n").await;
    assert_names(&msg, wrote, 7, &["concurency"]);
}

#[tokio::test]
async fn a_duplicate_account_id_exits_2_naming_both_lines() {
    let (msg, wrote) = run_broken("id = \"news_oa\"", "id = \"brand_oa\"").await;
    assert_names(&msg, wrote, 16, &["duplicate", "brand_oa", "10"]);
}

#[tokio::test]
async fn a_bad_cron_expression_exits_2() {
    let (msg, wrote) = run_broken("0 30 2 * * *", "0 30 25 * * *").await;
    assert_names(&msg, wrote, 2, &["schedule"]);
}

#[tokio::test]
async fn a_missing_secret_exits_2_naming_the_variable() {
    let (msg, wrote) = run_broken(
        "secret = { env = \"UNIONSNAP_TEST_SECRET\" }",
        "secret = { env = \"UNIONSNAP_MISSING_SECRET\" }",
    )
    .await;
    assert_names(&msg, wrote, 13, &["UNIONSNAP_MISSING_SECRET"]);
}

#[tokio::test]
async fn a_literal_secret_exits_2_without_echoing_it() {
    let (msg, wrote) = run_broken(
        "secret = { env = \"UNIONSNAP_TEST_SECRET\" }",
        "secret = \"literal-secret-9876\"",
    )
    .await;
    assert_names(&msg, wrote, 13, &["literal"]);
    assert!(!msg.contains("literal-secret-9876"), "{msg}");
}

#[tokio::test]
async fn an_unknown_kind_exits_2_listing_the_kinds() {
    let (msg, wrote) =
        run_broken("kind = \"official_account\"", "kind = \"official_acount\"").await;
    assert_names(&msg, wrote, 11, &["official_acount", "official_account"]);
}

#[tokio::test]
async fn an_unknown_url_scheme_exits_2() {
    let (msg, wrote) = run_broken("output = \"", "output = \"ftp://host/x").await;
    assert_names(&msg, wrote, 4, &["ftp"]);
}

#[tokio::test]
async fn a_toml_syntax_error_exits_2_with_its_line() {
    let (msg, wrote) = run_broken("[api]\n", "[api\n").await;
    assert_names(&msg, wrote, 6, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_environment_knob_exits_2_before_anything_runs() {
    let fixture = Fixture::start(scenario(71, 100, &[("brand_oa", 0.5, true)])).await;
    let job = fixture.write_job();
    for (name, value) in [
        ("UNIONSNAP_LEASE_TTL", "1000000years"),
        ("UNIONSNAP_LEASE_TTL", "1ns"),
        ("UNIONSNAP_GROUP_ROWS", "0"),
        ("UNIONSNAP_VACUUM_RETENTION", "forever"),
    ] {
        let out = fixture
            .unionsnap(
                &["run", job.to_str().unwrap(), "--date", DATE],
                &[(name, value)],
            )
            .await;
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(name) && err.contains("help:"), "{err}");
        assert!(!fixture.output_dir().exists(), "nothing written");
    }
    let out = fixture
        .unionsnap(
            &["validate", job.to_str().unwrap()],
            &[("UNIONSNAP_LEASE_TTL", "2m")],
        )
        .await;
    assert_exit(&out, 0);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("UNIONSNAP_LEASE_TTL 2m (set)"), "{shown}");
}
