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
use std::time::Duration;

use toml::Spanned;

use crate::wechat::ApiConfig;

use super::accounts::{account, account_shapes};
use super::context::{in_range, Context};
use super::error::{JobError, Problem, Source};
use super::raw::{RawApi, RawJob, RawPrivacy, RawSize};
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
    let api = api(&raw.api, src)?;
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

fn api(raw: &RawApi, src: &Source<'_>) -> Result<ApiConfig, JobError> {
    let mut api = ApiConfig::default();
    if let Some(v) = &raw.base_url {
        api.base_url = http_url(v.get_ref(), "base_url").map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.wecom_base_url {
        api.wecom_base_url =
            http_url(v.get_ref(), "wecom_base_url").map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.concurrency {
        api.concurrency = in_range(
            *v.get_ref(),
            "concurrency",
            1,
            256,
            "requests in flight per account",
        )
        .map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.requests_per_second {
        api.requests_per_second = in_range(
            *v.get_ref(),
            "requests_per_second",
            1,
            i64::from(u32::MAX),
            "requests per second per account",
        )
        .map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.max_retries {
        api.max_retries = in_range(*v.get_ref(), "max_retries", 0, 100, "retries of one call")
            .map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.timeout {
        api.timeout = duration(v.get_ref(), "timeout").map_err(|p| src.at(v.span(), p))?;
        if api.timeout.is_zero() {
            return Err(src.at(
                v.span(),
                Problem::new(
                    "`timeout` must be longer than zero",
                    r#"e.g. timeout = "20s""#,
                ),
            ));
        }
    }
    if let Some(v) = &raw.backoff {
        api.backoff = duration(v.get_ref(), "backoff").map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.rate_limit_wait {
        api.rate_limit_wait =
            duration(v.get_ref(), "rate_limit_wait").map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.connect_timeout {
        api.connect_timeout = positive_duration(v.get_ref(), "connect_timeout", "10s")
            .map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.retry_timeout {
        api.retry_timeout = positive_duration(v.get_ref(), "retry_timeout", "5m")
            .map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.max_body {
        api.max_body = byte_size(v.get_ref(), "max_body").map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.allow_insecure_http {
        api.allow_insecure_http = *v.get_ref();
    }
    // Plain http carries the AppSecret and every token in clear text: only
    // to this machine, unless the job says so.
    for (key, value, written) in [
        ("base_url", &api.base_url, &raw.base_url),
        ("wecom_base_url", &api.wecom_base_url, &raw.wecom_base_url),
    ] {
        let plain_remote = url::Url::parse(value)
            .is_ok_and(|url| url.scheme() == "http" && !crate::wechat::is_loopback(&url));
        if plain_remote && !api.allow_insecure_http {
            let problem = Problem::new(
                format!("`{key}` is plain http:// to a host that is not this machine: the AppSecret and every access token would cross the network in clear text (and reach any HTTP_PROXY)"),
                "use https://, or add allow_insecure_http = true under [api] if this network is trusted",
            );
            return Err(match written {
                Some(v) => src.at(v.span(), problem),
                None => src.whole_file(problem),
            });
        }
    }
    Ok(api)
}

fn positive_duration(written: &str, key: &str, example: &str) -> Result<Duration, Problem> {
    let value = duration(written, key)?;
    if value.is_zero() {
        return Err(Problem::new(
            format!("`{key}` must be longer than zero"),
            format!(r#"e.g. {key} = "{example}""#),
        ));
    }
    Ok(value)
}

/// `8388608`, `"512KiB"`, `"8MiB"`, `"1GiB"` (also kB/MB/GB, powers of 1000):
/// at least 64 KiB, at most 1 GiB.
fn byte_size(written: &RawSize, key: &str) -> Result<u64, Problem> {
    const MIN: u64 = 64 * 1024;
    const MAX: u64 = 1024 * 1024 * 1024;
    let help = || format!(r#"write a size, e.g. {key} = "8MiB" (between 64KiB and 1GiB)"#);
    let bytes = match written {
        RawSize::Bytes(n) => u64::try_from(*n).ok(),
        RawSize::Text(text) => {
            let text = text.trim();
            let split = text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let factor: Option<u64> = match unit.trim() {
                "" | "B" => Some(1),
                "KiB" => Some(1 << 10),
                "MiB" => Some(1 << 20),
                "GiB" => Some(1 << 30),
                "kB" | "KB" => Some(1_000),
                "MB" => Some(1_000_000),
                "GB" => Some(1_000_000_000),
                _ => None,
            };
            number
                .parse::<u64>()
                .ok()
                .zip(factor)
                .and_then(|(n, f)| n.checked_mul(f))
        }
    };
    match bytes {
        Some(bytes) if (MIN..=MAX).contains(&bytes) => Ok(bytes),
        _ => Err(Problem::new(
            format!("`{key}` is not a size between 64KiB and 1GiB: {written:?}"),
            help(),
        )),
    }
}

/// An http(s) base URL without credentials, without its trailing slash (the
/// client appends `/cgi-bin/...`).
fn http_url(written: &str, key: &str) -> Result<String, Problem> {
    let help = format!(r#"write an http(s) URL, e.g. {key} = "https://api.weixin.qq.com""#);
    let url = url::Url::parse(written)
        .map_err(|err| Problem::new(format!("`{key}` is not a valid URL: {err}"), help.clone()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Problem::new(
            format!("`{key}` must be an http:// or https:// URL"),
            help,
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Problem::new(
            format!("`{key}` contains credentials (user:password@)"),
            "remove them: URLs are printed in logs",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Problem::new(
            format!("`{key}` has a query or fragment"),
            help,
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn duration(written: &str, key: &str) -> Result<Duration, Problem> {
    humantime::parse_duration(written.trim()).map_err(|err| {
        Problem::new(
            format!("`{key}` is not a duration: {written:?} ({err})"),
            format!(r#"write a duration with its unit, e.g. {key} = "20s", "500ms" or "2m""#),
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
