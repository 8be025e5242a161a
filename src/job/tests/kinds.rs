//! WeCom, app-login and third-party (`auth`) accounts: their keys and values.

use super::*;

const WECOM: &str = "\n[[accounts]]\nid = \"crm\"\nkind = \"wecom\"\ncorpid = \"ww0123456789abcdef\"\nsecret = { env = \"OTHER_SECRET\" }\n";

const AGENCY: &str = "\n[[accounts]]\nid = \"agency_oa\"\nkind = \"official_account\"\nappid = \"wx00000000000000aa\"\nauth = { component_appid = \"wx00000000000000cc\", component_secret = { env = \"OTHER_SECRET\" }, verify_ticket = { env = \"BRAND_OA_SECRET\" }, refresh_token = { env = \"OTHER_SECRET\" } }\n";

fn app(kind: &str, source: &str) -> String {
    format!("\n[[accounts]]\nid = \"shop_mp\"\nkind = \"{kind}\"\nsource = \"{source}\"\n")
}

#[test]
fn a_wecom_account_reads_corpid_secret_and_defaults_to_direct() {
    let job = parse_ok(&(MINIMAL.to_string() + WECOM));
    let account = &job.accounts[1];
    assert_eq!(account.kind(), AccountKind::Wecom);
    assert_eq!(
        account.spec,
        AccountSpec::Wecom {
            corpid: "ww0123456789abcdef".to_string(),
            credentials: crate::wechat::WecomCredentials::Secret(Secret::new(
                "other-secret-value-456"
            )),
            unionid_mode: UnionidMode::Direct,
            allow_unlicensed: false,
            idconvert_budget: crate::job::DEFAULT_IDCONVERT_BUDGET,
            groups: true,
        }
    );
    let job = parse_ok(&(MINIMAL.to_string() + WECOM + "allow_unlicensed = true\n"));
    assert!(matches!(
        job.accounts[1].spec,
        AccountSpec::Wecom {
            allow_unlicensed: true,
            ..
        }
    ));
}

#[test]
fn groups_is_on_by_default_and_can_be_turned_off() {
    let job = parse_ok(&(MINIMAL.to_string() + WECOM + "groups = false\n"));
    assert!(matches!(
        job.accounts[1].spec,
        AccountSpec::Wecom { groups: false, .. }
    ));
    assert!(
        job.summary().contains("contacts only (groups = false)"),
        "{}",
        job.summary()
    );
    let job = parse_ok(&(MINIMAL.to_string() + WECOM));
    assert!(job.summary().contains("contacts and customer groups"));
}

#[test]
fn unionid_mode_idconvert_is_read() {
    let job = parse_ok(&(MINIMAL.to_string() + WECOM + "unionid_mode = \"idconvert\"\n"));
    assert!(matches!(
        job.accounts[1].spec,
        AccountSpec::Wecom {
            unionid_mode: UnionidMode::Idconvert,
            ..
        }
    ));
}

#[test]
fn idconvert_budget_is_read_and_checked() {
    let idconvert = MINIMAL.to_string() + WECOM + "unionid_mode = \"idconvert\"\n";
    let job = parse_ok(&(idconvert.clone() + "idconvert_budget = 500\n"));
    assert!(matches!(
        job.accounts[1].spec,
        AccountSpec::Wecom {
            idconvert_budget: 500,
            ..
        }
    ));
    for (line, expected) in [
        (
            "idconvert_budget = -1\n",
            "`idconvert_budget` = -1 is out of range",
        ),
        (
            "idconvert_budget = 480001\n",
            "`idconvert_budget` = 480001 is out of range",
        ),
    ] {
        let text = idconvert.clone() + line;
        assert_error(
            &parse_err(&text),
            Some(line_of(&text, "idconvert_budget")),
            expected,
        );
    }
    let direct = MINIMAL.to_string() + WECOM + "idconvert_budget = 10\n";
    assert_error(
        &parse_err(&direct),
        Some(line_of(&direct, "idconvert_budget")),
        "`idconvert_budget` without unionid_mode = \"idconvert\"",
    );
}

#[test]
fn an_unknown_unionid_mode_is_rejected_with_both_modes_named() {
    let text = MINIMAL.to_string() + WECOM + "unionid_mode = \"3rd\"\n";
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "unionid_mode")),
        "account `crm`: unknown unionid_mode \"3rd\"",
    );
    let help = err.help.unwrap_or_default();
    assert!(
        help.contains("direct") && help.contains("idconvert"),
        "{help}"
    );
}

#[test]
fn a_malformed_corpid_is_rejected() {
    for corpid in ["ww0123", "wwXYZ3456789abcdef", "gh0123456789abcdef"] {
        let text = MINIMAL.to_string() + &WECOM.replace("ww0123456789abcdef", corpid);
        let err = parse_err(&text);
        assert_error(&err, Some(line_of(&text, "corpid")), "malformed corpid");
    }
    // Corps older than WeCom's rename kept `wx` ids.
    parse_ok(&(MINIMAL.to_string() + &WECOM.replace("ww0123456789abcdef", "wx0123456789abcdef")));
}

#[test]
fn a_wecom_account_needs_a_corpid_and_a_secret() {
    let text = MINIMAL.to_string() + &WECOM.replace("corpid = \"ww0123456789abcdef\"\n", "");
    assert_error(
        &parse_err(&text),
        Some(line_of(&text, "id = \"crm\"") - 1),
        "no `corpid`",
    );
    let text = MINIMAL.to_string() + &WECOM.replace("secret = { env = \"OTHER_SECRET\" }\n", "");
    assert_error(
        &parse_err(&text),
        Some(line_of(&text, "id = \"crm\"") - 1),
        "no `secret`",
    );
}

#[test]
fn a_missing_wecom_secret_variable_is_named() {
    let text = MINIMAL.to_string() + &WECOM.replace("OTHER_SECRET", "UNSET_SECRET");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "UNSET_SECRET")),
        "environment variable UNSET_SECRET",
    );
}

#[test]
fn a_key_of_an_official_account_is_rejected_on_wecom() {
    let text = MINIMAL.to_string() + WECOM + "appid = \"wx0123456789abcdef\"\n";
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(text.lines().count()),
        "`appid` is not a key of kind wecom",
    );
}

#[test]
fn app_sources_take_the_url_forms_of_output() {
    for kind in ["mini_program", "mobile_app", "website"] {
        let job = parse_ok(&(MINIMAL.to_string() + &app(kind, "s3://acme-raw/mp_logins/")));
        let AccountSpec::AppLogins { kind: read, source } = &job.accounts[1].spec else {
            panic!("an app account");
        };
        assert_eq!(read.as_str(), kind);
        assert_eq!(
            source,
            &OutputLocation::Url(url::Url::parse("s3://acme-raw/mp_logins/").unwrap())
        );
    }
}

#[test]
fn a_relative_app_source_resolves_against_the_job_dir() {
    let job = parse_ok(&(MINIMAL.to_string() + &app("mini_program", "exports/shop_mp.csv")));
    let AccountSpec::AppLogins { source, .. } = &job.accounts[1].spec else {
        panic!("an app account");
    };
    assert_eq!(
        source,
        &OutputLocation::Local(Path::new("jobs/exports/shop_mp.csv").to_path_buf())
    );
}

#[test]
fn a_bad_app_source_is_named_as_source() {
    let text = MINIMAL.to_string() + &app("mini_program", "ftp://host/logins");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "source")),
        "`source` has an unknown scheme \"ftp://\"",
    );
    let text = MINIMAL.to_string() + &app("website", "memory://");
    assert_error(
        &parse_err(&text),
        Some(line_of(&text, "source")),
        "memory://",
    );
    let text = MINIMAL.to_string() + "\n[[accounts]]\nid = \"shop_mp\"\nkind = \"mini_program\"\n";
    assert_error(
        &parse_err(&text),
        Some(line_of(&text, "id = \"shop_mp\"") - 1),
        "no `source`",
    );
}

#[test]
fn a_third_party_account_reads_its_component_credentials() {
    let job = parse_ok(&(MINIMAL.to_string() + AGENCY));
    let account = &job.accounts[1];
    assert_eq!(account.kind(), AccountKind::OfficialAccount);
    assert_eq!(
        account.spec,
        AccountSpec::ThirdPartyOfficialAccount {
            appid: "wx00000000000000aa".to_string(),
            auth: ComponentAuth {
                component_appid: "wx00000000000000cc".to_string(),
                component_secret: Secret::new("other-secret-value-456"),
                verify_ticket: Secret::new(BRAND_SECRET),
                refresh_token: Secret::new("other-secret-value-456"),
                origins: crate::wechat::CredentialOrigins {
                    verify_ticket: crate::wechat::Origin::Env("BRAND_OA_SECRET".to_string()),
                    refresh_token: crate::wechat::Origin::Env("OTHER_SECRET".to_string()),
                },
            },
            refresh: Refresh::New,
        }
    );
}

#[test]
fn every_auth_key_is_required_and_named_when_missing() {
    let keys = [
        ("component_appid", "\"wx00000000000000cc\""),
        ("component_secret", "{ env = \"OTHER_SECRET\" }"),
        ("verify_ticket", "{ env = \"OTHER_SECRET\" }"),
        ("refresh_token", "{ env = \"OTHER_SECRET\" }"),
    ];
    for (missing, _) in keys {
        let auth: Vec<String> = keys
            .iter()
            .filter(|(key, _)| *key != missing)
            .map(|(key, value)| format!("{key} = {value}"))
            .collect();
        let text = format!(
            "{MINIMAL}\n[[accounts]]\nid = \"agency_oa\"\nkind = \"official_account\"\nappid = \"wx00000000000000aa\"\nauth = {{ {} }}\n",
            auth.join(", ")
        );
        let err = parse_err(&text);
        assert_error(
            &err,
            Some(line_of(&text, "auth =")),
            &format!("`auth` has no `{missing}`"),
        );
    }
}

#[test]
fn a_malformed_component_appid_is_rejected() {
    let text = MINIMAL.to_string() + &AGENCY.replace("wx00000000000000cc", "wx12");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "auth =")),
        "malformed component_appid \"wx12\"",
    );
}

#[test]
fn a_missing_verify_ticket_variable_is_named() {
    let text = MINIMAL.to_string()
        + &AGENCY.replace("{ env = \"BRAND_OA_SECRET\" }", "{ env = \"NO_TICKET\" }");
    let err = parse_err(&text);
    assert_error(
        &err,
        Some(line_of(&text, "auth =")),
        "environment variable NO_TICKET (for `auth.verify_ticket`) is not set",
    );
}

#[test]
fn the_summary_describes_every_kind() {
    let text = MINIMAL.to_string()
        + AGENCY
        + WECOM
        + "unionid_mode = \"idconvert\"\n"
        + &app("website", "s3://acme-raw/web/");
    let summary = parse_ok(&text).summary();
    for part in [
        "through third-party platform wx00000000000000cc",
        "corpid ww0123456789abcdef, unionid_mode idconvert",
        "website",
        "login export s3://acme-raw/web/",
    ] {
        assert!(summary.contains(part), "{part:?} missing from:\n{summary}");
    }
    assert!(!summary.contains(BRAND_SECRET));
}

/// A WeCom third-party app: the provider's suite and the corp's permanent code.
const SUITE_CORP: &str = "\n[[accounts]]\nid = \"partner_crm\"\nkind = \"wecom\"\ncorpid = \"ww00000000000000ab\"\nauth = { suite_id = \"wwsuite0000000001\", suite_secret = { env = \"OTHER_SECRET\" }, suite_ticket = { env = \"BRAND_OA_SECRET\" }, permanent_code = { env = \"OTHER_SECRET\" } }\n";

#[test]
fn a_third_party_wecom_app_reads_its_suite_credentials() {
    let job = parse_ok(&(MINIMAL.to_string() + SUITE_CORP));
    let AccountSpec::Wecom {
        credentials: crate::wechat::WecomCredentials::Suite(suite),
        ..
    } = &job.accounts[1].spec
    else {
        panic!("{:?}", job.accounts[1].spec);
    };
    assert_eq!(suite.suite_id, "wwsuite0000000001");
    assert_eq!(suite.permanent_code, Secret::new("other-secret-value-456"));
    assert_eq!(
        suite.suite_ticket_origin,
        crate::wechat::Origin::Env("BRAND_OA_SECRET".to_string())
    );
}

#[test]
fn a_wecom_auth_is_checked_for_its_own_keys() {
    let missing = SUITE_CORP.replace(", permanent_code = { env = \"OTHER_SECRET\" }", "");
    let err = parse_err(&(MINIMAL.to_string() + &missing));
    assert!(err.to_string().contains("no `permanent_code`"), "{err}");
    let both = SUITE_CORP.replace("auth = ", "secret = { env = \"OTHER_SECRET\" }\nauth = ");
    let err = parse_err(&(MINIMAL.to_string() + &both));
    assert!(
        err.to_string().contains("both `secret` and `auth`"),
        "{err}"
    );
    let component = SUITE_CORP.replace(
        "suite_id = ",
        "component_appid = \"wx00000000000000cc\", suite_id = ",
    );
    let err = parse_err(&(MINIMAL.to_string() + &component));
    assert!(
        err.to_string().contains("takes the provider's suite"),
        "{err}"
    );
    let literal = SUITE_CORP.replace(
        "suite_secret = { env = \"OTHER_SECRET\" }",
        "suite_secret = \"plain-text-secret\"",
    );
    let err = parse_err(&(MINIMAL.to_string() + &literal));
    assert!(!err.to_string().contains("plain-text-secret"), "{err}");
}
