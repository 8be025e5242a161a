//! The keys of the account kinds beyond an Official Account with its own
//! AppSecret: WeCom (`corpid`, `secret`, `unionid_mode`), the app-login kinds
//! (`source`) and Official Accounts managed through a third-party platform
//! (`auth = { ... }`). As in `accounts`, first the shape (which keys are
//! there), then the values (formats checked, secrets read).

use std::ops::Range;

use toml::Spanned;

use super::context::Context;
use super::error::Problem;
use super::output;
use super::raw::{RawAccount, RawAuth, RawSecret};
use super::secrets::{self, SecretRef};
use super::{AccountKind, AccountSpec, ComponentAuth, OutputLocation, UnionidMode};
use crate::wechat::{CredentialOrigins, Origin, SuiteCredentials, WecomCredentials};

type Checked<T> = Result<T, (Range<usize>, Problem)>;

/// A third-party `auth` table whose four keys are present.
#[derive(Debug)]
pub(super) struct AuthShape {
    component_appid: Spanned<String>,
    component_secret: SecretRef,
    verify_ticket: SecretRef,
    refresh_token: SecretRef,
}

/// A WeCom account whose keys are present.
#[derive(Debug)]
pub(super) struct WecomShape {
    corpid: Spanned<String>,
    credentials: WecomCredentialShape,
    unionid_mode: UnionidMode,
    allow_unlicensed: bool,
    idconvert_budget: u64,
    groups: bool,
}

/// How a WeCom app authenticates: exactly one of these.
#[derive(Debug)]
enum WecomCredentialShape {
    /// `secret`: a self-built or 代开发 app's own secret (`gettoken`).
    Secret(SecretRef),
    /// `auth = { suite_id, suite_secret, suite_ticket, permanent_code }`: a
    /// third-party app.
    Suite {
        suite_id: String,
        suite_secret: SecretRef,
        suite_ticket: SecretRef,
        permanent_code: SecretRef,
    },
}

const SUITE_EXAMPLE: &str = r#"auth = { suite_id = "wwabcdef0123456789", suite_secret = { env = "SUITE_SECRET" }, suite_ticket = { file = "/var/run/wecom/suite_ticket" }, permanent_code = { env = "CRM_PERMANENT_CODE" } }"#;

/// An app-login account (mini_program, mobile_app, website).
#[derive(Debug)]
pub(super) struct AppShape {
    kind: AccountKind,
    source: OutputLocation,
}

const AUTH_EXAMPLE: &str = r#"auth = { component_appid = "wx0123456789abcdef", component_secret = { env = "COMPONENT_SECRET" }, verify_ticket = { file = "/var/run/wechat/verify_ticket" }, refresh_token = { env = "AGENCY_OA_REFRESH_TOKEN" } }"#;

/// `auth = { component_appid, component_secret, verify_ticket, refresh_token }`:
/// every key is needed to get an authorizer token.
pub(super) fn auth_shape(auth: Spanned<RawAuth>, cx: &Context<'_>) -> Checked<AuthShape> {
    let span = auth.span();
    let auth = auth.into_inner();
    let missing = |key: &str, what: &str| {
        (
            span.clone(),
            Problem::new(
                format!("`auth` has no `{key}` ({what})"),
                format!("an account managed through a third-party platform needs all four keys: {AUTH_EXAMPLE}"),
            ),
        )
    };
    if auth.suite_id.is_some()
        || auth.suite_secret.is_some()
        || auth.suite_ticket.is_some()
        || auth.permanent_code.is_some()
    {
        return Err((
            span,
            Problem::new(
                "suite_id, suite_secret, suite_ticket and permanent_code are for WeCom third-party apps, not Official Accounts",
                format!("an Official Account managed through a third-party platform takes {AUTH_EXAMPLE}"),
            ),
        ));
    }
    let Some(component_appid) = auth.component_appid else {
        return Err(missing(
            "component_appid",
            "the third-party platform's AppID",
        ));
    };
    let secret = |value: Option<Spanned<RawSecret>>, key: &str, what: &str| {
        auth_secret(value, key, || missing(key, what), cx)
    };
    Ok(AuthShape {
        component_appid,
        component_secret: secret(
            auth.component_secret,
            "component_secret",
            "the platform's AppSecret",
        )?,
        verify_ticket: secret(
            auth.verify_ticket,
            "verify_ticket",
            "the latest component_verify_ticket WeChat pushed to the platform",
        )?,
        refresh_token: secret(
            auth.refresh_token,
            "refresh_token",
            "the account's authorizer_refresh_token",
        )?,
    })
}

/// Checks the platform's AppID and reads the three secrets.
pub(super) fn component_auth(auth: AuthShape, cx: &Context<'_>) -> Checked<ComponentAuth> {
    let appid = auth.component_appid.get_ref();
    if !is_wx_id(appid, "wx") {
        return Err((
            auth.component_appid.span(),
            Problem::new(
                format!("malformed component_appid {appid:?}"),
                "the third-party platform's AppID is `wx` followed by 16 hex digits (0-9, a-f); copy it from the Open Platform console",
            ),
        ));
    }
    let read = |reference: &SecretRef, what: &str| {
        secrets::resolve(&reference.source, what, cx.env).map_err(|p| (reference.span.clone(), p))
    };
    Ok(ComponentAuth {
        origins: CredentialOrigins {
            verify_ticket: origin_of(&auth.verify_ticket),
            refresh_token: origin_of(&auth.refresh_token),
        },
        component_secret: read(&auth.component_secret, "`auth.component_secret`")?,
        verify_ticket: read(&auth.verify_ticket, "`auth.verify_ticket`")?,
        refresh_token: read(&auth.refresh_token, "`auth.refresh_token`")?,
        component_appid: auth.component_appid.into_inner(),
    })
}

/// A secret key of an `auth` table: present, and a reference (`{ env }` or
/// `{ file }`), never a literal.
fn auth_secret(
    value: Option<Spanned<RawSecret>>,
    key: &str,
    missing: impl FnOnce() -> (Range<usize>, Problem),
    cx: &Context<'_>,
) -> Checked<SecretRef> {
    let value = value.ok_or_else(missing)?;
    secrets::reference(
        value.get_ref(),
        &format!("auth.{key}"),
        value.span(),
        &cx.job_dir,
    )
    .map_err(|p| (value.span(), p))
}

/// Where a secret the job names is read from.
fn origin_of(reference: &SecretRef) -> Origin {
    match &reference.source {
        secrets::SecretSource::Env(name) => Origin::Env(name.clone()),
        secrets::SecretSource::File(path) => Origin::File(path.clone()),
    }
}

/// `auth = { suite_id, suite_secret, suite_ticket, permanent_code }` of a
/// WeCom third-party app: every key is needed to get its corp token.
fn suite_shape(auth: Spanned<RawAuth>, cx: &Context<'_>) -> Checked<WecomCredentialShape> {
    let span = auth.span();
    let auth = auth.into_inner();
    if auth.component_appid.is_some()
        || auth.component_secret.is_some()
        || auth.verify_ticket.is_some()
        || auth.refresh_token.is_some()
    {
        return Err((
            span,
            Problem::new(
                "a WeCom account's `auth` takes the provider's suite, not an Open Platform component",
                format!("write {SUITE_EXAMPLE}"),
            ),
        ));
    }
    let missing = |key: &str, what: &str| {
        (
            span.clone(),
            Problem::new(
                format!("`auth` has no `{key}` ({what})"),
                format!("write {SUITE_EXAMPLE}"),
            ),
        )
    };
    let secret = |value: Option<Spanned<RawSecret>>, key: &str, what: &str| {
        auth_secret(value, key, || missing(key, what), cx)
    };
    let suite_id = auth
        .suite_id
        .ok_or_else(|| missing("suite_id", "the third-party app's suite id"))?
        .into_inner();
    Ok(WecomCredentialShape::Suite {
        suite_id,
        suite_secret: secret(auth.suite_secret, "suite_secret", "the suite's secret")?,
        suite_ticket: secret(
            auth.suite_ticket,
            "suite_ticket",
            "the latest suite_ticket WeCom pushed to the provider",
        )?,
        permanent_code: secret(
            auth.permanent_code,
            "permanent_code",
            "the corp's permanent code",
        )?,
    })
}

/// `corpid`, `secret` (the customer-contact secret) and `unionid_mode`.
pub(super) fn wecom_shape(
    raw: RawAccount,
    secret: Option<SecretRef>,
    header: Range<usize>,
    cx: &Context<'_>,
) -> Checked<WecomShape> {
    let Some(corpid) = raw.corpid else {
        return Err((
            header,
            Problem::new(
                "no `corpid`",
                r#"add corpid = "ww0123456789abcdef" (WeCom admin console > My Company > Company ID)"#,
            ),
        ));
    };
    let credentials = match (secret, raw.auth) {
        (Some(secret), None) => WecomCredentialShape::Secret(secret),
        (None, Some(auth)) => suite_shape(auth, cx)?,
        (Some(_), Some(auth)) => {
            return Err((
                auth.span(),
                Problem::new(
                    "both `secret` and `auth` are given",
                    "keep `secret` for a self-built or 代开发 app (gettoken with its own secret), or `auth` for a third-party app (its provider's suite), not both",
                ),
            ))
        }
        (None, None) => {
            return Err((
                header,
                Problem::new(
                    "no `secret`",
                    format!(r#"add secret = {{ env = "WECOM_CONTACT_SECRET" }} (the customer-contact secret, or that of a self-built or 代开发 app allowed to call customer-contact APIs), or for a third-party app {SUITE_EXAMPLE}"#),
                ),
            ))
        }
    };
    let unionid_mode = match &raw.unionid_mode {
        None => UnionidMode::Direct,
        Some(mode) => match mode.get_ref().as_str() {
            "direct" => UnionidMode::Direct,
            "idconvert" => UnionidMode::Idconvert,
            other => {
                return Err((
                    mode.span(),
                    Problem::new(
                        format!("unknown unionid_mode {other:?}"),
                        r#"unionid_mode = "direct" (a self-built app: contacts carry their UnionID) or "idconvert" (a third-party/代开发 app: link contacts through idconvert/unionid_to_external_userid)"#,
                    ),
                ))
            }
        },
    };
    let idconvert_budget = match &raw.idconvert_budget {
        None => super::DEFAULT_IDCONVERT_BUDGET,
        Some(budget) if unionid_mode != UnionidMode::Idconvert => {
            return Err((
                budget.span(),
                Problem::new(
                    "`idconvert_budget` without unionid_mode = \"idconvert\"",
                    "the budget limits idconvert conversions: set unionid_mode = \"idconvert\" (a third-party/代开发 app) or remove idconvert_budget",
                ),
            ))
        }
        Some(budget) => super::context::in_range(
            *budget.get_ref(),
            "idconvert_budget",
            0,
            super::MAX_IDCONVERT_BUDGET,
            "idconvert conversions per run; WeChat allows 480,000 a day per corp",
        )
        .map_err(|p| (budget.span(), p))?,
    };
    Ok(WecomShape {
        corpid,
        credentials,
        unionid_mode,
        idconvert_budget,
        allow_unlicensed: raw
            .allow_unlicensed
            .as_ref()
            .is_some_and(|allow| *allow.get_ref()),
        groups: raw.groups.as_ref().is_none_or(|groups| *groups.get_ref()),
    })
}

/// Checks the corpid and reads the secret.
pub(super) fn wecom_account(shape: WecomShape, cx: &Context<'_>) -> Checked<AccountSpec> {
    let corpid = shape.corpid.get_ref();
    // New corps get `ww` ids; corps older than WeCom's rename kept `wx` ones.
    if !is_wx_id(corpid, "ww") && !is_wx_id(corpid, "wx") {
        return Err((
            shape.corpid.span(),
            Problem::new(
                format!("malformed corpid {corpid:?}"),
                r#"a WeCom corpid is `ww` (older corps: `wx`) followed by 16 hex digits, e.g. corpid = "ww0123456789abcdef"; copy it from the WeCom admin console, My Company > Company ID"#,
            ),
        ));
    }
    let read = |reference: &SecretRef, what: &str| {
        secrets::resolve(&reference.source, what, cx.env).map_err(|p| (reference.span.clone(), p))
    };
    let credentials = match &shape.credentials {
        WecomCredentialShape::Secret(secret) => WecomCredentials::Secret(read(secret, "`secret`")?),
        WecomCredentialShape::Suite {
            suite_id,
            suite_secret,
            suite_ticket,
            permanent_code,
        } => WecomCredentials::Suite(SuiteCredentials {
            suite_id: suite_id.clone(),
            suite_secret: read(suite_secret, "`auth.suite_secret`")?,
            suite_ticket: read(suite_ticket, "`auth.suite_ticket`")?,
            permanent_code: read(permanent_code, "`auth.permanent_code`")?,
            suite_ticket_origin: origin_of(suite_ticket),
        }),
    };
    Ok(AccountSpec::Wecom {
        corpid: shape.corpid.into_inner(),
        credentials,
        unionid_mode: shape.unionid_mode,
        allow_unlicensed: shape.allow_unlicensed,
        idconvert_budget: shape.idconvert_budget,
        groups: shape.groups,
    })
}

/// `source`: where the business's login export lives, in the URL forms of
/// `output`. Only its form is checked here: the files may be produced by an
/// earlier step of the same schedule, so they are looked for when the
/// account runs.
pub(super) fn app_shape(
    raw: RawAccount,
    kind: AccountKind,
    header: Range<usize>,
    cx: &Context<'_>,
) -> Checked<AppShape> {
    let Some(source) = raw.source else {
        return Err((
            header,
            Problem::new(
                "no `source`",
                format!(
                    r#"add source = "s3://bucket/{kind}_logins/" (a file or a prefix of CSV, NDJSON or Parquet files with the columns openid, unionid[, first_seen]; no WeChat API lists a {kind}'s users)"#
                ),
            ),
        ));
    };
    let as_source = |problem: Problem| Problem {
        message: problem.message.replace("`output`", "`source`"),
        help: problem
            .help
            .map(|help| help.replace("output =", "source =")),
    };
    let location =
        output::parse(source.get_ref(), &cx.job_dir).map_err(|p| (source.span(), as_source(p)))?;
    if matches!(&location, OutputLocation::Url(url) if url.scheme() == "memory") {
        return Err((
            source.span(),
            Problem::new(
                "`source` = memory:// holds nothing to import",
                "point source at the login export: a local file or folder, or an s3://, gs://, az:// or file:// URL",
            ),
        ));
    }
    Ok(AppShape {
        kind,
        source: location,
    })
}

pub(super) fn app_account(shape: AppShape) -> AccountSpec {
    AccountSpec::AppLogins {
        kind: shape.kind,
        source: shape.source,
    }
}

/// `prefix` followed by 16 lowercase hex digits (AppIDs, corpids).
fn is_wx_id(id: &str, prefix: &str) -> bool {
    id.len() == prefix.len() + 16
        && id.starts_with(prefix)
        && id[prefix.len()..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}
