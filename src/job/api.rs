//! `[api]`, whole: the keys as written ([`RawApi`]), their ranges as named
//! constants, their checks, and how `validate` shows them. The runtime
//! values (with their defaults) are [`ApiConfig`], the WeChat client's.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::wechat::ApiConfig;

use super::context::{duration, in_range};
use super::error::{JobError, Problem, Source};

/// `concurrency`: requests in flight per account.
pub const CONCURRENCY: RangeInclusive<i64> = 1..=256;
/// `requests_per_second`: per account.
pub const REQUESTS_PER_SECOND: RangeInclusive<i64> = 1..=u32::MAX as i64;
/// `max_retries`: retries of one call.
pub const MAX_RETRIES: RangeInclusive<i64> = 0..=100;
/// `max_body`: the largest answer body read, in bytes (64 KiB to 1 GiB).
pub const MAX_BODY: RangeInclusive<u64> = 64 * 1024..=1024 * 1024 * 1024;

/// `[api]`. Integers are read as `i64` so that out-of-range values get our
/// message rather than a type error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub base_url: Option<Spanned<String>>,
    pub wecom_base_url: Option<Spanned<String>>,
    pub concurrency: Option<Spanned<i64>>,
    pub requests_per_second: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<String>>,
    pub max_retries: Option<Spanned<i64>>,
    pub backoff: Option<Spanned<String>>,
    pub rate_limit_wait: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub retry_timeout: Option<Spanned<String>>,
    pub max_body: Option<Spanned<RawSize>>,
    pub allow_insecure_http: Option<Spanned<bool>>,
}

/// A size in bytes: `8388608` or `"8MiB"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawSize {
    Bytes(i64),
    Text(String),
}

pub(super) fn api(raw: &RawApi, src: &Source<'_>) -> Result<ApiConfig, JobError> {
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
            *CONCURRENCY.start(),
            *CONCURRENCY.end(),
            "requests in flight per account",
        )
        .map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.requests_per_second {
        api.requests_per_second = in_range(
            *v.get_ref(),
            "requests_per_second",
            *REQUESTS_PER_SECOND.start(),
            *REQUESTS_PER_SECOND.end(),
            "requests per second per account",
        )
        .map_err(|p| src.at(v.span(), p))?;
    }
    if let Some(v) = &raw.max_retries {
        api.max_retries = in_range(
            *v.get_ref(),
            "max_retries",
            *MAX_RETRIES.start(),
            *MAX_RETRIES.end(),
            "retries of one call",
        )
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
    let (min, max) = (*MAX_BODY.start(), *MAX_BODY.end());
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
        Some(bytes) if (min..=max).contains(&bytes) => Ok(bytes),
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

/// The `api:` lines of `validate`'s summary.
pub fn summary(api: &ApiConfig) -> String {
    format!(
        "  api:       base_url {}, wecom_base_url {}{}\n             concurrency {}, {} requests/s, timeout {}, connect_timeout {}, max_retries {}, retry_timeout {}, backoff {}, rate_limit_wait {}, max_body {} bytes\n",
        api.base_url,
        api.wecom_base_url,
        if api.allow_insecure_http {
            " (allow_insecure_http: plain http to other hosts allowed)"
        } else {
            ""
        },
        api.concurrency,
        api.requests_per_second,
        humantime::format_duration(api.timeout),
        humantime::format_duration(api.connect_timeout),
        api.max_retries,
        humantime::format_duration(api.retry_timeout),
        humantime::format_duration(api.backoff),
        humantime::format_duration(api.rate_limit_wait),
        api.max_body,
    )
}
