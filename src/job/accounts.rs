//! The `[[accounts]]` tables: first their shape (id, kind, which keys each
//! kind takes, where its secret lives), then the runtime [`Account`]s with
//! their secrets read. The keys of
//! WeCom, app-login and third-party accounts are checked in `kinds`.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::context::Context;
use super::error::{JobError, Problem};
use super::kinds::{self, AppShape, AuthShape, WecomShape};
use super::raw::{keys_of, RawAccount, RawSecret};
use super::secrets::{self, SecretRef};
use super::{Account, AccountKind, AccountSpec, Refresh};

/// An account whose shape was checked; its values are built later.
#[derive(Debug)]
pub(super) struct AccountShape {
    pub id: String,
    /// Line of its `[[accounts]]` header.
    pub line: usize,
    pub spec: ShapeSpec,
}

/// What the shape check learned about the kind-specific keys.
#[derive(Debug)]
pub(super) enum ShapeSpec {
    OfficialAccount {
        appid: Spanned<String>,
        credentials: Credentials,
        refresh: Refresh,
    },
    Wecom(WecomShape),
    AppLogins(AppShape),
}

/// How an Official Account authenticates: exactly one of these.
#[derive(Debug)]
pub(super) enum Credentials {
    Secret(SecretRef),
    /// Through a third-party platform (`auth = { ... }`).
    Auth(AuthShape),
}

pub(super) fn account_shapes(
    raw: Option<Spanned<Vec<Spanned<RawAccount>>>>,
    cx: &Context<'_>,
) -> Result<Vec<AccountShape>, JobError> {
    let example = r#"add an account:
      [[accounts]]
      id = "brand_oa"
      kind = "official_account"
      appid = "wx0123456789abcdef"
      secret = { env = "BRAND_OA_SECRET" }"#;
    let accounts = match raw {
        None => {
            return Err(cx
                .src
                .whole_file(Problem::new("the job has no [[accounts]]", example)))
        }
        Some(list) if list.get_ref().is_empty() => {
            return Err(cx.src.at(
                list.span(),
                Problem::new("the job has no accounts", example),
            ))
        }
        Some(list) => list.into_inner(),
    };
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
    let mut shapes = Vec::with_capacity(accounts.len());
    for account in accounts {
        let header = account.span();
        let shape = account_shape(account.into_inner(), header, &mut first_line_of_id, cx)?;
        shapes.push(shape);
    }
    Ok(shapes)
}

fn account_shape(
    raw: RawAccount,
    header: Range<usize>,
    first_line_of_id: &mut HashMap<String, usize>,
    cx: &Context<'_>,
) -> Result<AccountShape, JobError> {
    let src = &cx.src;
    let id = account_id(&raw, &header, first_line_of_id, cx)?;
    let in_account = |problem| prefix_account(&id, problem);
    let (kind, _kind_span) =
        account_kind(&raw, &header).map_err(|(span, p)| src.at(span, in_account(p)))?;
    let allowed = keys_of(kind);
    for (key, span) in raw.kind_keys() {
        if !allowed.contains(&key) {
            return Err(src.at(
                span,
                in_account(Problem::new(
                    format!("`{key}` is not a key of kind {kind}"),
                    format!(
                        "remove it; {kind} accounts take: id, kind, {}",
                        allowed.join(", ")
                    ),
                )),
            ));
        }
    }
    // Literal secrets are refused wherever they are, supported or not.
    let secret = match &raw.secret {
        Some(secret) => Some(
            secrets::reference(secret.get_ref(), "secret", secret.span(), &cx.job_dir)
                .map_err(|p| src.at(secret.span(), in_account(p)))?,
        ),
        None => None,
    };
    if let Some(auth) = &raw.auth {
        let auth = auth.get_ref();
        let nested: [(&str, &Option<Spanned<RawSecret>>); 6] = [
            ("component_secret", &auth.component_secret),
            ("verify_ticket", &auth.verify_ticket),
            ("refresh_token", &auth.refresh_token),
            ("suite_secret", &auth.suite_secret),
            ("suite_ticket", &auth.suite_ticket),
            ("permanent_code", &auth.permanent_code),
        ];
        for (key, value) in nested {
            if let Some(value) = value {
                secrets::reference(value.get_ref(), key, value.span(), &cx.job_dir)
                    .map_err(|p| src.at(value.span(), in_account(p)))?;
            }
        }
    }
    let spec = match kind {
        AccountKind::OfficialAccount => official_account_shape(raw, secret, header.clone(), cx),
        AccountKind::Wecom => {
            kinds::wecom_shape(raw, secret, header.clone(), cx).map(ShapeSpec::Wecom)
        }
        AccountKind::MiniProgram | AccountKind::MobileApp | AccountKind::Website => {
            kinds::app_shape(raw, kind, header.clone(), cx).map(ShapeSpec::AppLogins)
        }
    }
    .map_err(|(span, p)| src.at(span, in_account(p)))?;
    Ok(AccountShape {
        id,
        line: src.line(header.start),
        spec,
    })
}

/// Longest account id: a partition value in every path of the warehouse.
pub const MAX_ACCOUNT_ID_CHARS: usize = 64;

/// The account's `id`: present, a valid partition value (at most
/// [`MAX_ACCOUNT_ID_CHARS`]), unique in the file.
fn account_id(
    raw: &RawAccount,
    header: &Range<usize>,
    first_line_of_id: &mut HashMap<String, usize>,
    cx: &Context<'_>,
) -> Result<String, JobError> {
    let src = &cx.src;
    let Some(id) = &raw.id else {
        return Err(src.at(
            header.clone(),
            Problem::new(
                "account has no `id`",
                r#"add id = "brand_oa" (lowercase letters, digits, `_` and `-`; it becomes the account_id partition value)"#,
            ),
        ));
    };
    let value = id.get_ref();
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(src.at(
            id.span(),
            Problem::new(
                format!("invalid account id {value:?}"),
                r#"an account id uses only lowercase letters, digits, `_` and `-` (it becomes the account_id=... partition value), e.g. id = "brand_oa""#,
            ),
        ));
    }
    // It becomes a folder name in every partition path and a label in the
    // metrics: long ids fail at the store mid-run (path limits).
    if value.chars().count() > MAX_ACCOUNT_ID_CHARS {
        return Err(src.at(
            id.span(),
            Problem::new(
                format!(
                    "account id is {} characters long; at most {MAX_ACCOUNT_ID_CHARS}",
                    value.chars().count()
                ),
                "use a short id such as \"brand_oa\": it becomes the account_id=... partition value in every path",
            ),
        ));
    }
    if let Some(first) = first_line_of_id.get(value) {
        return Err(src.at(
            id.span(),
            Problem::new(
                format!("duplicate account id {value:?} (first on line {first})"),
                "give every account a unique id",
            ),
        ));
    }
    first_line_of_id.insert(value.clone(), src.line(id.span().start));
    Ok(value.clone())
}

/// The account's `kind` and the span of its value.
fn account_kind(
    raw: &RawAccount,
    header: &Range<usize>,
) -> Result<(AccountKind, Range<usize>), (Range<usize>, Problem)> {
    let Some(written) = &raw.kind else {
        return Err((
            header.clone(),
            Problem::new(
                "no `kind`",
                format!(r#"add kind = "official_account" (one of: {})"#, kind_list()),
            ),
        ));
    };
    match AccountKind::ALL
        .into_iter()
        .find(|k| k.as_str() == written.get_ref())
    {
        Some(kind) => Ok((kind, written.span())),
        None => Err((
            written.span(),
            Problem::new(
                format!("unknown account kind {:?}", written.get_ref()),
                format!("kind is one of: {}", kind_list()),
            ),
        )),
    }
}

fn official_account_shape(
    raw: RawAccount,
    secret: Option<SecretRef>,
    header: Range<usize>,
    cx: &Context<'_>,
) -> Result<ShapeSpec, (Range<usize>, Problem)> {
    let Some(appid) = raw.appid else {
        return Err((
            header,
            Problem::new(
                "no `appid`",
                r#"add appid = "wx0123456789abcdef" (the Official Account's AppID: `wx` and 16 hex digits)"#,
            ),
        ));
    };
    let credentials = match (secret, raw.auth) {
        (Some(secret), None) => Credentials::Secret(secret),
        (None, Some(auth)) => Credentials::Auth(kinds::auth_shape(auth, cx)?),
        (Some(secret), Some(auth)) => {
            let secret_line = cx.src.line(secret.span.start);
            return Err((
                auth.span(),
                Problem::new(
                    format!("both `secret` (line {secret_line}) and `auth` are given"),
                    "keep `secret` for an account with its own AppSecret, or `auth` for one managed through a third-party platform, not both",
                ),
            ));
        }
        (None, None) => {
            return Err((
                header,
                Problem::new(
                    "no `secret`",
                    r#"add secret = { env = "BRAND_OA_SECRET" } or secret = { file = "PATH" } (the Official Account's AppSecret), or auth = { component_appid = "wx...", component_secret = { env = "..." }, verify_ticket = { env = "..." }, refresh_token = { env = "..." } } for an account managed through a third-party platform"#,
                ),
            ))
        }
    };
    let refresh = match &raw.refresh {
        None => Refresh::New,
        Some(refresh) => match refresh.get_ref().as_str() {
            "new" => Refresh::New,
            "full" => Refresh::Full,
            other => {
                return Err((
                    refresh.span(),
                    Problem::new(
                        format!("unknown refresh mode {other:?}"),
                        r#"refresh = "new" (profiles only for OpenIDs not seen before) or refresh = "full" (profiles for all)"#,
                    ),
                ))
            }
        },
    };
    Ok(ShapeSpec::OfficialAccount {
        appid,
        credentials,
        refresh,
    })
}

fn kind_list() -> String {
    AccountKind::ALL.map(AccountKind::as_str).join(", ")
}

/// Builds a runtime account: the checks that need values, and its secrets.
pub(super) fn account(shape: AccountShape, cx: &Context<'_>) -> Result<Account, JobError> {
    let src = &cx.src;
    let id = shape.id;
    let spec = match shape.spec {
        ShapeSpec::OfficialAccount {
            appid,
            credentials: Credentials::Secret(secret),
            refresh,
        } => {
            check_official_account_appid(appid.get_ref())
                .map_err(|p| src.at(appid.span(), prefix_account(&id, p)))?;
            let secret = secrets::resolve(&secret.source, "`secret`", cx.env)
                .map_err(|p| src.at(secret.span.clone(), prefix_account(&id, p)))?;
            AccountSpec::OfficialAccount {
                appid: appid.into_inner(),
                secret,
                refresh,
            }
        }
        ShapeSpec::OfficialAccount {
            appid,
            credentials: Credentials::Auth(auth),
            refresh,
        } => {
            check_official_account_appid(appid.get_ref())
                .map_err(|p| src.at(appid.span(), prefix_account(&id, p)))?;
            let auth = kinds::component_auth(auth, cx)
                .map_err(|(span, p)| src.at(span, prefix_account(&id, p)))?;
            AccountSpec::ThirdPartyOfficialAccount {
                appid: appid.into_inner(),
                auth,
                refresh,
            }
        }
        ShapeSpec::Wecom(shape) => kinds::wecom_account(shape, cx)
            .map_err(|(span, p)| src.at(span, prefix_account(&id, p)))?,
        ShapeSpec::AppLogins(shape) => kinds::app_account(shape),
    };
    Ok(Account {
        id,
        line: shape.line,
        spec,
    })
}

fn prefix_account(id: &str, problem: Problem) -> Problem {
    Problem {
        message: format!("account `{id}`: {}", problem.message),
        help: problem.help,
    }
}

/// Official Account AppIDs are `wx` followed by 16 lowercase hex digits.
pub(super) fn check_official_account_appid(appid: &str) -> Result<(), Problem> {
    let well_formed = appid.len() == 18
        && appid.starts_with("wx")
        && appid[2..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if well_formed {
        Ok(())
    } else {
        Err(Problem::new(
            format!("malformed appid {appid:?}"),
            "an Official Account AppID is `wx` followed by 16 hex digits (0-9, a-f), e.g. appid = \"wx0123456789abcdef\"; copy it from the Official Accounts Platform, Settings > Basic configuration",
        ))
    }
}
