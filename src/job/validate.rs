//! From the job file as written ([`RawJob`]) to the runtime [`Job`]: the
//! order of the checks, the top-level keys, `[api]` and `[privacy]`
//! (accounts are `accounts`' business).
//!
//! Checks run from the general to the particular, and the first failure is
//! the error: the file's top-level keys and `[api]`/`[privacy]`, then the
//! shape of every account (id, kind, which keys it takes), and only then
//! what each account needs: its ids checked and its secrets read. Secrets
//! come last, so a typo elsewhere never costs a secret lookup.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use toml::Spanned;

use super::accounts::{account, account_shapes};
use super::context::Context;
use super::error::{JobError, Problem, Source};
use super::raw::{RawJob, RawPrivacy};
use super::secrets::{self, SecretRef};
use super::{output, Job, Privacy, DROPPABLE_COLUMNS};

pub(super) fn job(raw: RawJob, cx: &Context<'_>) -> Result<Job, JobError> {
    let src = &cx.src;
    let name = name(raw.name.as_ref(), src)?;
    let schedule = match &raw.schedule {
        Some(expr) => Some(schedule(expr.get_ref()).map_err(|p| src.at(expr.span(), p))?),
        None => None,
    };
    let timezone = match &raw.timezone {
        Some(tz) => timezone(tz.get_ref()).map_err(|p| src.at(tz.span(), p))?,
        None => chrono_tz::UTC,
    };
    let output = match &raw.output {
        Some(out) => output::parse(out.get_ref(), &cx.job_dir).map_err(|p| src.at(out.span(), p))?,
        None => {
            return Err(src.whole_file(Problem::new(
                "the job has no `output`",
                r#"add output = "s3://bucket/prefix" (or gs://, az://, file://, or a local directory) at the top"#,
            )))
        }
    };
    let api = super::api::api(&raw.api, src)?;
    let reconciliation_tolerance = super::reconciliation::reconciliation(&raw.reconciliation, src)?;
    let privacy_key = privacy_shape(&raw.privacy, cx)?;
    let shapes = account_shapes(raw.accounts, cx)?;
    let accounts = shapes
        .into_iter()
        .map(|shape| account(shape, cx))
        .collect::<Result<Vec<_>, _>>()?;
    let privacy = privacy(&raw.privacy, privacy_key, cx)?;
    Ok(Job {
        path: src.path.to_path_buf(),
        name,
        schedule,
        timezone,
        output,
        api,
        privacy,
        reconciliation_tolerance,
        accounts,
    })
}

fn name(raw: Option<&Spanned<String>>, src: &Source<'_>) -> Result<String, JobError> {
    let Some(name) = raw else {
        return Err(src.whole_file(Problem::new(
            "the job has no `name`",
            r#"add name = "acme" at the top (letters, digits, `_`, `.` and `-`)"#,
        )));
    };
    let value = name.get_ref();
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(src.at(
            name.span(),
            Problem::new(
                format!("invalid job name {value:?}"),
                r#"a job name uses only letters, digits, `_`, `.` and `-`, e.g. name = "acme""#,
            ),
        ));
    }
    Ok(value.clone())
}

fn schedule(expr: &str) -> Result<cron::Schedule, Problem> {
    let help = r#"six fields with seconds first (sec min hour day-of-month month day-of-week), e.g. schedule = "0 30 2 * * *" for 02:30:00 every day"#;
    let fields = expr.split_whitespace().count();
    if fields == 5 {
        // The classic crontab has no seconds field; the cron crate needs one.
        return Err(Problem::new(
            format!("invalid cron expression {expr:?}: 5 fields, but the first field is seconds"),
            format!(r#"add the seconds first: schedule = "0 {}""#, expr.trim()),
        ));
    }
    cron::Schedule::from_str(expr.trim()).map_err(|err| {
        // The crate's message repeats the expression with a caret under it;
        // keep only its first line when it says something else.
        let detail = err.to_string();
        let detail = detail.lines().next().unwrap_or("").trim();
        let message = if fields != 6 && fields != 7 {
            format!(
                "invalid cron expression {expr:?}: {fields} fields, expected 6 (or 7 with a year)"
            )
        } else if detail.is_empty() || detail == expr.trim() {
            format!("invalid cron expression {expr:?}")
        } else {
            format!("invalid cron expression {expr:?}: {detail}")
        };
        Problem::new(message, help)
    })
}

fn timezone(name: &str) -> Result<chrono_tz::Tz, Problem> {
    chrono_tz::Tz::from_str(name).map_err(|_| {
        Problem::new(
            format!("unknown time zone {name:?}"),
            r#"write an IANA time zone name, e.g. timezone = "Asia/Shanghai" or "UTC""#,
        )
    })
}

/// Checks `[privacy]` and returns the reference of its key, if any.
fn privacy_shape(raw: &RawPrivacy, cx: &Context<'_>) -> Result<Option<SecretRef>, JobError> {
    let key = match &raw.key {
        Some(key) => Some(
            secrets::reference(key.get_ref(), "key", key.span(), &cx.job_dir)
                .map_err(|p| cx.src.at(key.span(), p))?,
        ),
        None => None,
    };
    if let Some(pseudonymize) = &raw.pseudonymize {
        if *pseudonymize.get_ref() && key.is_none() {
            return Err(cx.src.at(
                pseudonymize.span(),
                Problem::new(
                    "privacy.pseudonymize = true needs a `key`",
                    r#"add key = { env = "UNIONSNAP_HMAC_KEY" } under [privacy]"#,
                ),
            ));
        }
    }
    for column in raw.drop.iter().flatten() {
        if !DROPPABLE_COLUMNS.contains(&column.get_ref().as_str()) {
            return Err(cx.src.at(
                column.span(),
                Problem::new(
                    format!(
                        "privacy.drop names {:?}, which is not a column that can be dropped",
                        column.get_ref()
                    ),
                    format!(
                        "columns that can be dropped: {}",
                        DROPPABLE_COLUMNS.join(", ")
                    ),
                ),
            ));
        }
    }
    Ok(key)
}

fn privacy(
    raw: &RawPrivacy,
    key: Option<SecretRef>,
    cx: &Context<'_>,
) -> Result<Privacy, JobError> {
    let pseudonymize = raw.pseudonymize.as_ref().is_some_and(|p| *p.get_ref());
    // The key is read only when it is used: a job that does not pseudonymize
    // must not fail because the key's variable is absent.
    let key = match key {
        Some(key) if pseudonymize => Some(
            secrets::resolve(&key.source, "privacy.key", cx.env)
                .map_err(|p| cx.src.at(key.span.clone(), p))?,
        ),
        _ => None,
    };
    let mut drop: Vec<String> = Vec::new();
    for column in raw.drop.iter().flatten() {
        if !drop.contains(column.get_ref()) {
            drop.push(column.get_ref().clone());
        }
    }
    Ok(Privacy {
        pseudonymize,
        key,
        drop,
    })
}

/// The directory against which relative paths in the job file resolve.
pub(super) fn job_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
