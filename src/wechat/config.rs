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
/// Opening a TCP/TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// All the attempts of one call together, waits included: no retry starts
/// (and no wait begins) that would end past it.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Largest answer read. The largest legitimate one is a `user/get` page of
/// 10,000 OpenIDs (≈ 0.4 MB; WeCom's 100-contact `batch/get_by_user` pages
/// are smaller): 8 MiB is 20× that.
pub const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;
/// Tokens are kept at least this long whatever `expires_in` says (0, 1 s, a
/// hostile answer), so a token is never fetched per call; a token that WeChat
/// really retires sooner is refused with 40001/42001 and compare-and-refreshed.
pub const DEFAULT_MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

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
    pub connect_timeout: Duration,
    pub retry_timeout: Duration,
    pub max_body: u64,
    /// Plain `http://` to a host other than loopback (`[api]
    /// allow_insecure_http`): the token and the secret then cross the
    /// network in clear text.
    pub allow_insecure_http: bool,
    /// Not a job key: [`DEFAULT_MIN_TOKEN_LIFETIME`], shortened by the
    /// client's own tests.
    pub min_token_lifetime: Duration,
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
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            allow_insecure_http: false,
            min_token_lifetime: DEFAULT_MIN_TOKEN_LIFETIME,
        }
    }
}
