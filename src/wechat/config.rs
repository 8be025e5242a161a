//! The `[api]` section of the job file in its runtime form: how the client
//! talks to WeChat (hosts, concurrency, rate, timeouts, the retry policy).

use std::time::Duration;

/// Official Account / Open Platform host.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";
/// WeCom host.
pub const DEFAULT_WECOM_BASE_URL: &str = "https://qyapi.weixin.qq.com";
/// Requests in flight per account.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Requests per second per account.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 50;
/// Per HTTP request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Retries of one call after transient failures (-1, 45011, 5xx, timeouts, broken bodies).
pub const DEFAULT_MAX_RETRIES: u32 = 8;
/// First backoff; doubles with jitter up to [`MAX_BACKOFF`].
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Wait after 45011 (per-minute limit): WeChat asks to retry "next minute".
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Cap of the exponential backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the client talks to WeChat. Built from the job file's `[api]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    pub base_url: String,
    pub wecom_base_url: String,
    pub concurrency: usize,
    pub requests_per_second: u32,
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff: Duration,
    pub rate_limit_wait: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            wecom_base_url: DEFAULT_WECOM_BASE_URL.to_string(),
            concurrency: DEFAULT_CONCURRENCY,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: DEFAULT_BACKOFF,
            rate_limit_wait: DEFAULT_RATE_LIMIT_WAIT,
        }
    }
}
