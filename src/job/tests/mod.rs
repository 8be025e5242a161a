//! The job file's contract, one rule per test: the file as a whole, `[api]`,
//! `output` and the not-supported check here; accounts and secrets in their
//! own files.

mod accounts;
mod kinds;
mod secrets;

use std::path::Path;
use std::time::Duration;

use super::*;

const JOB_PATH: &str = "jobs/acme.toml";
const BRAND_SECRET: &str = "brand-secret-value-123";

fn env(name: &str) -> Option<String> {
    match name {
        "BRAND_OA_SECRET" => Some(BRAND_SECRET.to_string()),
        "OTHER_SECRET" => Some("other-secret-value-456".to_string()),
        "EMPTY_VAR" => Some(String::new()),
        _ => None,
    }
}

fn parse_ok(text: &str) -> Job {
    match parse(text, Path::new(JOB_PATH), &env) {
        Ok(job) => job,
        Err(err) => panic!("expected a valid job, got:\n{err}"),
    }
}

fn parse_err(text: &str) -> JobError {
    match parse(text, Path::new(JOB_PATH), &env) {
        Ok(job) => panic!("expected an error, got {job:?}"),
        Err(err) => err,
    }
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

fn assert_error(err: &JobError, line: Option<usize>, message_part: &str) {
    assert_eq!(err.line, line, "wrong line for: {err}");
    assert!(
        err.message.contains(message_part),
        "message {:?} should contain {message_part:?}",
        err.message
    );
}

const MINIMAL: &str = r#"name = "acme"
output = "s3://acme-dw/wechat"

[[accounts]]
id = "brand_oa"
kind = "official_account"
appid = "wx0123456789abcdef"
secret = { env = "BRAND_OA_SECRET" }
"#;

/// MINIMAL with `top` inserted after the name and `account` appended to its account.
fn minimal_with(top: &str, account: &str) -> String {
    MINIMAL.replacen("name = \"acme\"\n", &format!("name = \"acme\"\n{top}"), 1) + account
}

#[test]
fn a_minimal_file_gets_the_defaults() {
    let job = parse_ok(MINIMAL);
    assert_eq!(job.path, Path::new(JOB_PATH));
    assert_eq!(job.name, "acme");
    assert!(job.schedule.is_none());
    assert_eq!(job.timezone, chrono_tz::UTC);
    assert_eq!(
        job.output,
        OutputLocation::Url(url::Url::parse("s3://acme-dw/wechat").unwrap())
    );
    assert_eq!(job.api, ApiConfig::default());
    assert_eq!(
        job.privacy,
        Privacy {
            pseudonymize: false,
            key: None,
            drop: vec![]
        }
    );
    assert_eq!(job.accounts.len(), 1);
    let account = &job.accounts[0];
    assert_eq!(account.id, "brand_oa");
    assert_eq!(account.line, 4);
    assert_eq!(account.kind(), AccountKind::OfficialAccount);
    assert_eq!(
        account.spec,
        AccountSpec::OfficialAccount {
            appid: "wx0123456789abcdef".to_string(),
            secret: Secret::new(BRAND_SECRET),
            refresh: Refresh::New,
        }
    );
}

#[test]
fn every_api_key_is_read() {
    let text = minimal_with(
        "",
        r#"
[api]
base_url = "http://127.0.0.1:8080/"
wecom_base_url = "https://qyapi.example.com/prefix/"
concurrency = 16
requests_per_second = 5
timeout = "2s"
max_retries = 0
backoff = "10ms"
rate_limit_wait = "0s"
"#,
    );
    let job = parse_ok(&text);
    assert_eq!(
        job.api,
        ApiConfig {
            base_url: "http://127.0.0.1:8080".to_string(),
            wecom_base_url: "https://qyapi.example.com/prefix".to_string(),
            concurrency: 16,
            requests_per_second: 5,
            timeout: Duration::from_secs(2),
            max_retries: 0,
            backoff: Duration::from_millis(10),
            rate_limit_wait: Duration::ZERO,
            ..ApiConfig::default()
        }
    );
}

#[test]
fn schedule_timezone_refresh_and_drop_are_read() {
    let text = minimal_with(
        "schedule = \"0 30 2 * * *\"\ntimezone = \"Asia/Shanghai\"\n",
        "refresh = \"full\"\n\n[privacy]\npseudonymize = false\ndrop = [\"remark\", \"remark\", \"state\"]\n",
    );
    let job = parse_ok(&text);
    assert_eq!(
        job.schedule.as_ref().map(|s| s.source()),
        Some("0 30 2 * * *")
    );
    assert_eq!(job.timezone, chrono_tz::Asia::Shanghai);
    assert!(matches!(
        job.accounts[0].spec,
        AccountSpec::OfficialAccount {
            refresh: Refresh::Full,
            ..
        }
    ));
    assert_eq!(job.privacy.drop, vec!["remark", "state"]);
}

#[test]
fn a_toml_syntax_error_has_its_line() {
    let text = "name = \"acme\"\noutput = \"s3://b\n";
    let err = parse_err(text);
    assert_eq!(err.line, Some(2));
}

#[test]
fn an_unknown_top_level_key_is_named_with_the_expected_keys() {
    let text = minimal_with("outptu = \"x\"\n", "");
    let err = parse_err(&text);
    assert_error(&err, Some(2), "unknown field `outptu`");
    assert!(
        err.message.contains("`output`"),
        "lists expected keys: {err}"
    );
}

#[test]
fn an_unknown_api_key_is_named() {
    let text = minimal_with("", "\n[api]\nconcurrency = 4\nretries = 3\n");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "retries = 3")),
        "unknown field `retries`",
    );
    assert!(err.message.contains("`max_retries`"));
}

#[test]
fn a_bad_cron_expression_is_rejected_with_an_example() {
    let text = minimal_with("schedule = \"every night\"\n", "");
    let err = parse_err(&text);
    assert_error(&err, Some(2), "invalid cron expression \"every night\"");
    assert!(err.help.as_deref().unwrap_or("").contains("0 30 2 * * *"));
}

#[test]
fn a_five_field_crontab_is_told_to_add_seconds() {
    let text = minimal_with("schedule = \"30 2 * * *\"\n", "");
    let err = parse_err(&text);
    assert_error(&err, Some(2), "the first field is seconds");
    assert!(err
        .help
        .as_deref()
        .unwrap_or("")
        .contains("\"0 30 2 * * *\""));
}

#[test]
fn a_bad_timezone_is_rejected() {
    let text = minimal_with("timezone = \"Asia/Beijing\"\n", "");
    let err = parse_err(&text);
    assert_error(&err, Some(2), "unknown time zone \"Asia/Beijing\"");
}

#[test]
fn a_missing_name_or_a_bad_name_is_rejected() {
    let err = parse_err(&MINIMAL.replace("name = \"acme\"\n", ""));
    assert_error(&err, None, "no `name`");
    let err = parse_err(&MINIMAL.replace("name = \"acme\"", "name = \"acme corp\""));
    assert_error(&err, Some(1), "invalid job name");
}

#[test]
fn a_missing_output_is_rejected() {
    let err = parse_err(&MINIMAL.replace("output = \"s3://acme-dw/wechat\"\n", ""));
    assert_error(&err, None, "no `output`");
    assert_eq!(
        err.to_string().lines().next(),
        Some("jobs/acme.toml: the job has no `output`")
    );
}

#[test]
fn an_unknown_url_scheme_is_rejected() {
    let err = parse_err(&MINIMAL.replace("s3://acme-dw/wechat", "ftp://host/dir"));
    assert_error(&err, Some(2), "unknown scheme \"ftp://\"");
    assert!(err.help.as_deref().unwrap_or("").contains("s3://"));
}

#[test]
fn s3_without_a_bucket_is_rejected() {
    let err = parse_err(&MINIMAL.replace("s3://acme-dw/wechat", "s3:///wechat"));
    assert_error(&err, Some(2), "names no bucket");
}

#[test]
fn an_unparsable_output_url_is_rejected() {
    let err = parse_err(&MINIMAL.replace("s3://acme-dw/wechat", "gs://bad bucket/x"));
    assert_error(&err, Some(2), "not a valid URL");
}

#[test]
fn credentials_in_the_output_url_are_rejected_without_echoing_them() {
    let err = parse_err(&MINIMAL.replace("s3://acme-dw/wechat", "s3://AKIA:hunter2@acme-dw/x"));
    assert_error(&err, Some(2), "contains credentials");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn every_object_store_scheme_is_accepted() {
    for written in [
        "gs://bucket/prefix",
        "az://container/prefix",
        "azure://container",
        "abfss://container@account.dfs.core.windows.net/prefix",
        "s3://bucket",
    ] {
        let job = parse_ok(&MINIMAL.replace("s3://acme-dw/wechat", written));
        assert!(matches!(job.output, OutputLocation::Url(_)), "{written}");
        assert_eq!(job.output.to_string(), written);
    }
}

#[test]
fn file_urls_and_bare_paths_are_local() {
    let job = parse_ok(&MINIMAL.replace("s3://acme-dw/wechat", "file:///data/wechat"));
    assert_eq!(job.output, OutputLocation::Local("/data/wechat".into()));
    let job = parse_ok(&MINIMAL.replace("s3://acme-dw/wechat", "/data/wechat"));
    assert_eq!(job.output, OutputLocation::Local("/data/wechat".into()));
    let err = parse_err(&MINIMAL.replace("s3://acme-dw/wechat", "file://relative/dir"));
    assert_error(&err, Some(2), "not a local file URL");
}

#[test]
fn a_bad_duration_is_rejected() {
    let text = minimal_with("", "\n[api]\ntimeout = \"20 seconds please\"\n");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "timeout")),
        "`timeout` is not a duration",
    );
    let text = minimal_with("", "\n[api]\nbackoff = 500\n");
    let err = parse_err(&text);
    assert_error(&err, Some(line_of(&text, "backoff")), "invalid type");
}

#[test]
fn a_zero_timeout_is_rejected() {
    let text = minimal_with("", "\n[api]\ntimeout = \"0s\"\n");
    let err = parse_err(&text);
    assert_error(&err, Some(line_of(&text, "timeout")), "longer than zero");
}

#[test]
fn out_of_range_api_numbers_are_rejected() {
    for (line, key) in [
        ("concurrency = 0", "`concurrency` = 0 is out of range"),
        ("concurrency = 257", "`concurrency` = 257 is out of range"),
        ("requests_per_second = 0", "`requests_per_second` = 0"),
        ("max_retries = -1", "`max_retries` = -1"),
        ("max_retries = 101", "`max_retries` = 101"),
    ] {
        let text = minimal_with("", &format!("\n[api]\n{line}\n"));
        let err = parse_err(&text);
        assert_error(&err, Some(line_of(&text, line)), key);
    }
}

#[test]
fn api_urls_must_be_http() {
    let text = minimal_with("", "\n[api]\nbase_url = \"ftp://api.weixin.qq.com\"\n");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "base_url")),
        "must be an http:// or https:// URL",
    );
}

#[test]
fn the_summary_names_the_job_its_accounts_and_the_next_run() {
    let job = parse_ok(&minimal_with(
        "schedule = \"0 30 2 * * *\"\ntimezone = \"Asia/Shanghai\"\n",
        "",
    ));
    let summary = job.summary();
    for part in [
        "job acme",
        "s3://acme-dw/wechat",
        "Asia/Shanghai",
        "0 30 2 * * *",
        "next run ",
        "02:30:00 CST",
        "brand_oa",
        "official_account",
        "wx0123456789abcdef",
        "concurrency 8",
    ] {
        assert!(summary.contains(part), "{part:?} missing from:\n{summary}");
    }
}

#[test]
fn pseudonymize_reads_its_key() {
    let text = minimal_with(
        "",
        "\n[privacy]\npseudonymize = true\nkey = { env = \"UNIONSNAP_HMAC_KEY\" }\n",
    );
    let env = |name: &str| match name {
        "UNIONSNAP_HMAC_KEY" => Some("hmac-key-1".to_string()),
        _ => Some("secret".to_string()),
    };
    let job = parse(&text, std::path::Path::new("jobs/acme.toml"), &env).unwrap();
    assert!(job.privacy.pseudonymize);
    assert_eq!(
        job.privacy.key.as_ref().map(|k| k.expose().to_string()),
        Some("hmac-key-1".to_string())
    );
}

#[test]
fn an_unknown_drop_column_is_rejected() {
    let text = minimal_with("", "\n[privacy]\ndrop = [\"remarks\"]\n");
    let err = parse_err(&text);
    assert_error(&err, Some(line_of(&text, "drop")), "\"remarks\"");
}

/// SPEC §3, verbatim.
const SPEC_EXAMPLE: &str = r#"name = "acme"
schedule = "0 30 2 * * *"            # cron with seconds, for `serve`
timezone = "Asia/Shanghai"           # snapshot_date is the local date here
output = "s3://acme-dw/wechat"       # file://, s3://, gs://, az://; a bare path = local dir
# object-store credentials come from the usual env vars (AWS_*, GOOGLE_*, AZURE_*)

[api]                                # every key optional
base_url = "https://api.weixin.qq.com"
wecom_base_url = "https://qyapi.weixin.qq.com"
concurrency = 8                      # requests in flight per account
requests_per_second = 50             # per account
timeout = "20s"                      # per HTTP request
max_retries = 8                      # per call: -1, 45011, HTTP 5xx, timeouts, broken bodies
backoff = "500ms"                    # first wait; doubles with jitter, capped at 30s
rate_limit_wait = "60s"              # wait after 45011 (per-minute limit), as WeChat asks

[privacy]
pseudonymize = false                 # true: HMAC-SHA256 every openid/unionid/external_userid
key = { env = "UNIONSNAP_HMAC_KEY" } # with this key (joins and counts unchanged)
drop = []                            # free-text columns never to write, e.g. ["remark"]

[[accounts]]
id = "brand_oa"                      # stable; becomes the account_id partition value
kind = "official_account"
appid = "wx0123456789abcdef"
secret = { env = "BRAND_OA_SECRET" } # or { file = "/var/run/secrets/oa" }
refresh = "new"                      # "new": user/info only for OpenIDs not seen before; "full": for all

[[accounts]]
id = "agency_oa"                     # managed through a third-party platform
kind = "official_account"
appid = "wx..."
auth = { component_appid = "wx...", component_secret = { env = "C_SECRET" },
         verify_ticket = { env = "C_TICKET" }, refresh_token = { env = "AUTH_REFRESH" } }

[[accounts]]
id = "shop_mp"
kind = "mini_program"                # also "mobile_app", "website": no list API exists,
source = "s3://acme-raw/mp_logins/"  # so members come from the business's own export:
                                     # CSV, NDJSON or Parquet with openid, unionid[, first_seen];
                                     # a file or a prefix, in the same URL forms as output
[[accounts]]
id = "crm"
kind = "wecom"
corpid = "ww0123456789abcdef"
secret = { env = "WECOM_CONTACT_SECRET" }
unionid_mode = "direct"              # "idconvert": third-party/代开发 apps get no UnionID; link
                                     # contacts via idconvert/unionid_to_external_userid
"#;

#[test]
fn the_spec_example_needs_only_its_placeholder_appids_filled_in() {
    let err = parse_err(SPEC_EXAMPLE);
    assert_error(
        &err,
        Some(line_of(SPEC_EXAMPLE, "appid = \"wx...\"")),
        "account `agency_oa`: malformed appid \"wx...\"",
    );
    let filled = SPEC_EXAMPLE
        .replace("appid = \"wx...\"", "appid = \"wx00000000000000aa\"")
        .replace(
            "component_appid = \"wx...\"",
            "component_appid = \"wx00000000000000cc\"",
        );
    let env = |name: &str| match name {
        "BRAND_OA_SECRET" | "C_SECRET" | "C_TICKET" | "AUTH_REFRESH" | "WECOM_CONTACT_SECRET" => {
            Some(format!("{name}-value"))
        }
        _ => None,
    };
    let job = parse(&filled, Path::new(JOB_PATH), &env).unwrap_or_else(|err| panic!("{err}"));
    let kinds: Vec<(&str, AccountKind)> = job
        .accounts
        .iter()
        .map(|a| (a.id.as_str(), a.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("brand_oa", AccountKind::OfficialAccount),
            ("agency_oa", AccountKind::OfficialAccount),
            ("shop_mp", AccountKind::MiniProgram),
            ("crm", AccountKind::Wecom),
        ]
    );
    assert_eq!(job.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(job.api, ApiConfig::default());
}

#[test]
fn load_reports_an_unreadable_job_file_without_a_line() {
    let err = load(Path::new("/nonexistent/unionsnap/job.toml")).unwrap_err();
    assert_error(&err, None, "cannot read the job file");
}

#[test]
fn the_snapshot_date_is_today_in_the_job_timezone() {
    let job = parse_ok(&minimal_with("timezone = \"Pacific/Kiritimati\"\n", ""));
    let today = || {
        chrono::Utc::now()
            .with_timezone(&chrono_tz::Pacific::Kiritimati)
            .date_naive()
    };
    let before = today();
    let date = job.snapshot_date_today();
    // Local midnight may pass between the two readings.
    assert!(date == before || date == today(), "{date}");
}

#[test]
fn api_limits_are_read_and_checked() {
    let text = minimal_with(
        "",
        "\n[api]\nconnect_timeout = \"3s\"\nretry_timeout = \"90s\"\nmax_body = \"2MiB\"\n",
    );
    let api = parse_ok(&text).api;
    assert_eq!(api.connect_timeout, Duration::from_secs(3));
    assert_eq!(api.retry_timeout, Duration::from_secs(90));
    assert_eq!(api.max_body, 2 << 20);
    let text = minimal_with("", "\n[api]\nmax_body = 1048576\n");
    assert_eq!(parse_ok(&text).api.max_body, 1 << 20);
    for (line, message) in [
        ("max_body = \"8 parsecs\"", "`max_body` is not a size"),
        ("max_body = 10", "`max_body` is not a size"),
        ("max_body = \"99999999999999999999GiB\"", "`max_body`"),
        ("retry_timeout = \"0s\"", "longer than zero"),
        ("connect_timeout = \"0s\"", "longer than zero"),
    ] {
        let text = minimal_with("", &format!("\n[api]\n{line}\n"));
        assert_error(&parse_err(&text), Some(line_of(&text, line)), message);
    }
}

#[test]
fn plain_http_is_refused_for_hosts_other_than_this_machine() {
    let line = "base_url = \"http://api.weixin.qq.com\"";
    let text = minimal_with("", &format!("\n[api]\n{line}\n"));
    assert_error(
        &parse_err(&text),
        Some(line_of(&text, line)),
        "plain http:// to a host that is not this machine",
    );
    let text = minimal_with(
        "",
        &format!("\n[api]\n{line}\nallow_insecure_http = true\n"),
    );
    assert!(parse_ok(&text).api.allow_insecure_http);
    let text = minimal_with("", "\n[api]\nwecom_base_url = \"http://localhost:8080\"\n");
    parse_ok(&text);
}

#[test]
fn an_in_memory_output_is_refused() {
    let err = parse_err(&MINIMAL.replace("s3://acme-dw/wechat", "memory://"));
    assert_error(&err, Some(2), "memory:// keeps nothing");
}

#[test]
fn a_schedule_that_fires_every_second_is_warned_about() {
    let every_second = parse_ok(&minimal_with("schedule = \"* * * * * *\"\n", ""));
    assert_eq!(
        every_second.shortest_schedule_interval(),
        Some(Duration::from_secs(1))
    );
    let warning = every_second.schedule_warning().expect("a warning");
    assert!(warning.contains("every 1s"), "{warning}");
    assert!(every_second
        .summary()
        .contains("warning: the schedule fires"));
    let daily = parse_ok(&minimal_with("schedule = \"0 30 2 * * *\"\n", ""));
    assert_eq!(
        daily.shortest_schedule_interval(),
        Some(Duration::from_secs(86_400))
    );
    assert_eq!(daily.schedule_warning(), None);
    assert!(!daily.summary().contains("warning"));
}

/// `simulate --write-job` writes a job this parser takes, secrets out of it.
#[test]
fn the_simulators_job_file_is_a_valid_job_of_every_account_without_its_secrets() {
    let demo = crate::simulator::Scenario::demo();
    let text = demo.job_toml("http://127.0.0.1:8089", "/tmp/warehouse");
    let env = demo.secret_env();
    let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let job = crate::job::parse(&text, std::path::Path::new("/tmp/job.toml"), &lookup)
        .unwrap_or_else(|err| panic!("{err}\n{text}"));
    let ids: Vec<(String, &str)> = job
        .accounts
        .iter()
        .map(|a| (a.id.clone(), a.kind().as_str()))
        .collect();
    let mut expected = demo.account_ids();
    expected.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids, expected);
    assert_eq!(job.api.wecom_base_url, "http://127.0.0.1:8089");
    for (_, secret) in &env {
        assert!(!text.contains(secret.as_str()));
    }
    assert!(
        text.contains("source = \"/tmp/exports/shop_mp/\""),
        "{text}"
    );
}

#[test]
fn reconciliation_tolerance_is_read_checked_and_shown_by_validate() {
    assert_eq!(
        parse_ok(MINIMAL).reconciliation_tolerance,
        DEFAULT_TOLERANCE
    );
    let share = parse_ok(&format!(
        "{MINIMAL}\n[reconciliation]\ntolerance = \"0.5%\"\n"
    ));
    assert_eq!(share.reconciliation_tolerance, Tolerance::Percent(0.5));
    assert!(
        share
            .summary()
            .contains("warn beyond 0.5% of WeChat's count"),
        "{}",
        share.summary()
    );
    let followers = parse_ok(&format!("{MINIMAL}\n[reconciliation]\ntolerance = 50\n"));
    assert_eq!(followers.reconciliation_tolerance, Tolerance::Followers(50));
    let text = format!("{MINIMAL}\n[reconciliation]\ntolerance = \"half\"\n");
    let err = parse_err(&text);
    assert_error(&err, Some(line_of(&text, "tolerance =")), "`tolerance`");
    let text = format!("{MINIMAL}\n[reconciliation]\ntolerance = 1\nslack = 2\n");
    assert!(
        parse(&text, Path::new(JOB_PATH), &env).is_err(),
        "unknown keys are refused"
    );
}
