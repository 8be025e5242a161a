//! The keys of the account kinds beyond an Official Account with its own
//! AppSecret: WeCom (`corpid`, `secret`, `unionid_mode`), the app-login kinds
//! (`source`) and Official Accounts managed through a third-party platform
//! (`auth = { ... }`). As in `accounts`, first the shape (which keys are
//! there), then the values (formats checked, secrets read).

use std::ops::Range;

use toml::Spanned;

use super::error::Problem;
use super::output;
use super::raw::{RawAccount, RawAuth, RawSecret};
use super::secrets::{self, SecretRef};
use super::validate::Context;
use super::{AccountKind, AccountSpec, ComponentAuth, OutputLocation, UnionidMode};
use crate::wechat::{CredentialOrigins, Origin};

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
    secret: SecretRef,
    unionid_mode: UnionidMode,
    allow_unlicensed: bool,
}

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
    let Some(component_appid) = auth.component_appid else {
        return Err(missing(
            "component_appid",
            "the third-party platform's AppID",
        ));
    };
    let secret = |value: Option<Spanned<RawSecret>>, key: &str, what: &str| {
        let value = value.ok_or_else(|| missing(key, what))?;
        secrets::reference(
            value.get_ref(),
            &format!("auth.{key}"),
            value.span(),
            &cx.job_dir,
        )
        .map_err(|p| (value.span(), p))
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
    let origin = |reference: &SecretRef| match &reference.source {
        secrets::SecretSource::Env(name) => Origin::Env(name.clone()),
        secrets::SecretSource::File(path) => Origin::File(path.clone()),
    };
    Ok(ComponentAuth {
        origins: CredentialOrigins {
            verify_ticket: origin(&auth.verify_ticket),
            refresh_token: origin(&auth.refresh_token),
        },
        component_secret: read(&auth.component_secret, "`auth.component_secret`")?,
        verify_ticket: read(&auth.verify_ticket, "`auth.verify_ticket`")?,
        refresh_token: read(&auth.refresh_token, "`auth.refresh_token`")?,
        component_appid: auth.component_appid.into_inner(),
    })
}

/// `corpid`, `secret` (the customer-contact secret) and `unionid_mode`.
pub(super) fn wecom_shape(
    raw: RawAccount,
    secret: Option<SecretRef>,
    header: Range<usize>,
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
    let Some(secret) = secret else {
        return Err((
            header,
            Problem::new(
                "no `secret`",
                r#"add secret = { env = "WECOM_CONTACT_SECRET" } (the customer-contact secret, or that of an app allowed to call customer-contact APIs)"#,
            ),
        ));
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
    Ok(WecomShape {
        corpid,
        secret,
        unionid_mode,
        allow_unlicensed: raw
            .allow_unlicensed
            .as_ref()
            .is_some_and(|allow| *allow.get_ref()),
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
    let secret = secrets::resolve(&shape.secret.source, "`secret`", cx.env)
        .map_err(|p| (shape.secret.span.clone(), p))?;
    Ok(AccountSpec::Wecom {
        corpid: shape.corpid.into_inner(),
        secret,
        unionid_mode: shape.unionid_mode,
        allow_unlicensed: shape.allow_unlicensed,
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
