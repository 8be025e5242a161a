//! `[[accounts]]`: ids, kinds, the keys of each kind, `--accounts`.

use super::*;

#[test]
fn an_unknown_account_key_is_named() {
    let text = minimal_with("", "app_secret = { env = \"X\" }\n");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "app_secret")),
        "unknown field `app_secret`",
    );
}

#[test]
fn a_duplicate_account_id_names_both_lines() {
    let text = MINIMAL.to_string() + "\n[[accounts]]\nid = \"brand_oa\"\nkind = \"official_account\"\nappid = \"wx00000000000000ff\"\nsecret = { env = \"OTHER_SECRET\" }\n";
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(11),
        "duplicate account id \"brand_oa\" (first on line 5)",
    );
    assert_eq!(
        err.to_string(),
        "jobs/acme.toml:11:6: duplicate account id \"brand_oa\" (first on line 5)\n  help: give every account a unique id"
    );
}

#[test]
fn an_account_id_must_be_a_partition_value() {
    let text = MINIMAL.replace("id = \"brand_oa\"", "id = \"Brand OA\"");
    let err = parse_err(&text);
    assert_error(&err, Some(5), "invalid account id \"Brand OA\"");
    let long = "a".repeat(300);
    let err = parse_err(&MINIMAL.replace("id = \"brand_oa\"", &format!("id = \"{long}\"")));
    assert_error(
        &err,
        Some(5),
        "account id is 300 characters long; at most 64",
    );
    parse_ok(&MINIMAL.replace("id = \"brand_oa\"", &format!("id = \"{}\"", "a".repeat(64))));
}

#[test]
fn an_unknown_kind_lists_the_valid_ones() {
    let err = parse_err(&MINIMAL.replace("\"official_account\"", "\"channels\""));
    assert_error(&err, Some(6), "unknown account kind \"channels\"");
    let help = err.help.unwrap_or_default();
    for kind in AccountKind::ALL {
        assert!(help.contains(kind.as_str()), "{help}");
    }
}

#[test]
fn a_key_of_another_kind_is_rejected() {
    let text = minimal_with("", "corpid = \"ww0123456789abcdef\"\n");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "corpid")),
        "`corpid` is not a key of kind official_account",
    );
}

#[test]
fn a_malformed_appid_is_rejected() {
    for appid in ["wx0123", "wx0123456789ABCDEF", "gh0123456789abcdef"] {
        let err = parse_err(&MINIMAL.replace("wx0123456789abcdef", appid));
        assert_error(&err, Some(7), "malformed appid");
    }
}

#[test]
fn an_unknown_refresh_mode_is_rejected() {
    let text = minimal_with("", "refresh = \"all\"\n");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "refresh")),
        "unknown refresh mode \"all\"",
    );
}

#[test]
fn both_secret_and_auth_are_rejected() {
    let text = minimal_with(
        "",
        "auth = { component_appid = \"wx00000000000000aa\", component_secret = { env = \"C\" } }\n",
    );
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "auth =")),
        "both `secret` (line 8) and `auth`",
    );
}

#[test]
fn an_official_account_without_secret_is_rejected() {
    let err = parse_err(&MINIMAL.replace("secret = { env = \"BRAND_OA_SECRET\" }\n", ""));
    assert_error(&err, Some(4), "no `secret`");
}

#[test]
fn an_account_without_id_or_kind_is_rejected() {
    let err = parse_err(&MINIMAL.replace("id = \"brand_oa\"\n", ""));
    assert_error(&err, Some(4), "no `id`");
    let err = parse_err(&MINIMAL.replace("kind = \"official_account\"\n", ""));
    assert_error(&err, Some(4), "no `kind`");
}

#[test]
fn a_job_without_accounts_is_rejected() {
    let err = parse_err("name = \"acme\"\noutput = \"s3://b/p\"\n");
    assert_error(&err, None, "no [[accounts]]");
    let err = parse_err("name = \"acme\"\noutput = \"s3://b/p\"\naccounts = []\n");
    assert_error(&err, Some(3), "no accounts");
}

#[test]
fn filter_accounts_keeps_the_named_ones_and_rejects_unknown_ids() {
    let text = MINIMAL.to_string() + "\n[[accounts]]\nid = \"second_oa\"\nkind = \"official_account\"\nappid = \"wx00000000000000ff\"\nsecret = { env = \"OTHER_SECRET\" }\n";
    let mut job = parse_ok(&text);
    let err = job.filter_accounts(&["nope".to_string()]).unwrap_err();
    assert!(err.message.contains("nope"));
    assert!(err.help.unwrap_or_default().contains("brand_oa, second_oa"));
    job.filter_accounts(&["second_oa".to_string()]).unwrap();
    assert_eq!(job.accounts.len(), 1);
    assert_eq!(job.accounts[0].id, "second_oa");
}
