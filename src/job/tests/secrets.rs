//! Secrets: only `{ env }` or `{ file }`, resolved, never printed.

use super::*;

#[test]
fn a_missing_secret_env_var_is_named() {
    let err = parse_err(&MINIMAL.replace("BRAND_OA_SECRET", "NOT_SET_ANYWHERE"));
    assert_error(&err, Some(8), "environment variable NOT_SET_ANYWHERE");
    assert!(err.message.contains("is not set"));
    let err = parse_err(&MINIMAL.replace("BRAND_OA_SECRET", "EMPTY_VAR"));
    assert_error(
        &err,
        Some(8),
        "account `brand_oa`: environment variable EMPTY_VAR (for `secret`) is empty",
    );
}

#[test]
fn an_unreadable_secret_file_is_named() {
    let text = MINIMAL.replace(
        "{ env = \"BRAND_OA_SECRET\" }",
        "{ file = \"/nonexistent/unionsnap/oa\" }",
    );
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(8),
        "cannot read secret file /nonexistent/unionsnap/oa",
    );
}

#[test]
fn an_empty_secret_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oa"), "\n").unwrap();
    let text = MINIMAL.replace("{ env = \"BRAND_OA_SECRET\" }", "{ file = \"oa\" }");
    let err = parse(&text, &dir.path().join("job.toml"), &env).unwrap_err();
    assert_error(&err, Some(8), "is empty");
}

#[test]
fn a_secret_naming_both_env_and_file_is_rejected() {
    let text = MINIMAL.replace(
        "{ env = \"BRAND_OA_SECRET\" }",
        "{ env = \"BRAND_OA_SECRET\", file = \"oa\" }",
    );
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(8),
        "names both an environment variable and a file",
    );
}

#[test]
fn a_literal_secret_is_rejected_without_echoing_it() {
    let text = MINIMAL.replace(
        "{ env = \"BRAND_OA_SECRET\" }",
        "\"literal-app-secret-789\"",
    );
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(8),
        r#"literal secrets are not allowed in the job file; use secret = { env = "..." } or { file = "..." }"#,
    );
    assert!(!format!("{err} {err:?}").contains("literal-app-secret-789"));
}

#[test]
fn a_literal_secret_inside_auth_is_rejected_too() {
    let text = MINIMAL.replace(
        "secret = { env = \"BRAND_OA_SECRET\" }",
        "auth = { component_appid = \"wx00000000000000aa\", component_secret = \"literal-component-1\" }",
    );
    let err = parse_err(&text);
    assert_error(&err, Some(8), "literal secrets are not allowed");
    assert!(!format!("{err} {err:?}").contains("literal-component-1"));
}

#[test]
fn relative_output_and_secret_file_resolve_against_the_job_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/oa"), "file-secret-value").unwrap();
    let text = MINIMAL
        .replace("s3://acme-dw/wechat", "warehouse/wechat")
        .replace("{ env = \"BRAND_OA_SECRET\" }", "{ file = \"secrets/oa\" }");
    let job = parse(&text, &dir.path().join("job.toml"), &env).unwrap();
    assert_eq!(
        job.output,
        OutputLocation::Local(dir.path().join("warehouse/wechat"))
    );
    let AccountSpec::OfficialAccount { secret, .. } = &job.accounts[0].spec else {
        panic!("an Official Account")
    };
    assert_eq!(secret.expose(), "file-secret-value");
}

#[test]
fn a_secret_file_loses_its_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oa"), "kube-secret\r\n").unwrap();
    let text = MINIMAL.replace("{ env = \"BRAND_OA_SECRET\" }", "{ file = \"oa\" }");
    let job = parse(&text, &dir.path().join("job.toml"), &env).unwrap();
    let AccountSpec::OfficialAccount { secret, .. } = &job.accounts[0].spec else {
        panic!("an Official Account")
    };
    assert_eq!(secret.expose(), "kube-secret");
}

#[test]
fn debug_and_summary_of_a_job_never_contain_a_secret() {
    let job = parse_ok(&minimal_with("schedule = \"0 30 2 * * *\"\n", ""));
    let printed = format!("{job:?}\n{}", job.summary());
    assert!(!printed.contains(BRAND_SECRET), "{printed}");
}

#[test]
fn a_privacy_key_is_not_read_when_unused() {
    let text = minimal_with("", "\n[privacy]\nkey = { env = \"UNIONSNAP_HMAC_KEY\" }\n");
    assert_eq!(parse_ok(&text).privacy.key, None);
}
