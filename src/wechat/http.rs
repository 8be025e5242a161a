//! The one road every WeChat request takes: rate limit, send with a timeout,
//! read the body, check the errcode, classify, retry with backoff or refresh
//! the token, decode, count.
//!
//! Retried (within `max_retries`, exponential backoff from `backoff`,
//! doubling, equal jitter, capped at [`MAX_BACKOFF`]): timeouts, connection
//! failures, connections dropped before or during the response, HTTP 429 and
//! 5xx, bodies that are not JSON (truncated, HTML with status 200), and the
//! errcodes the table marks [`Action::Retry`]. 45011 waits `rate_limit_wait`
//! instead; a stale token is compare-and-refreshed. Both count as retries.
//! Everything else ends the call with an [`ApiError`].
//!
//! Redaction by construction: the request URL (which carries
//! `access_token=`) and the request itself are never formatted; errors are
//! built from the endpoint path; a `reqwest::Error` is stripped of its URL
//! and reduced to scrubbed text at once; text that comes back from the server
//! (errmsg) is scrubbed of the token and any secret of the request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::CONTENT_TYPE;
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::body::{parse_body, BodyError};
use super::config::{ApiConfig, MAX_BACKOFF};
use super::errcode::{Action, CallKind, Classification};
use super::error::scrub;
use super::error::{ApiError, Failure};
use super::stats::{CallStats, OUTCOME_OK};
use crate::secret::AccessToken;

/// The HTTP side shared by every account of a run: one connection pool and
/// the `[api]` configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WeChatHttp {
    inner: Arc<HttpInner>,
}

#[derive(Debug)]
struct HttpInner {
    client: reqwest::Client,
    config: ApiConfig,
    base_url: Url,
    wecom_base_url: Url,
}

impl WeChatHttp {
    /// Builds the reqwest client (rustls, per-request `timeout`, no
    /// redirects: WeChat never redirects an API call, and following one could
    /// carry the token to another host).
    pub fn new(config: &ApiConfig) -> Result<Self, ApiError> {
        let base_url = parse_base_url("base_url", &config.base_url, config.allow_insecure_http)?;
        let wecom_base_url = parse_base_url(
            "wecom_base_url",
            &config.wecom_base_url,
            config.allow_insecure_http,
        )?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("unionsnap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ApiError::Setup {
                detail: error_chain(&err.without_url()),
            })?;
        Ok(WeChatHttp {
            inner: Arc::new(HttpInner {
                client,
                config: config.clone(),
                base_url,
                wecom_base_url,
            }),
        })
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// Makes one logical call: retries until success, a non-retried failure
    /// or `max_retries` retries. `tokens` is None only for token requests.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        scope: &AccountScope,
        request: &Request<'_>,
        tokens: Option<&dyn TokenSource>,
    ) -> Result<T, ApiError> {
        let config = &self.inner.config;
        let started = tokio::time::Instant::now();
        let mut attempts: u32 = 0;
        loop {
            let lease = match tokens {
                Some(source) => Some(source.lease().await?),
                None => None,
            };
            scope.limiter.until_ready().await;
            attempts += 1;
            let token = lease.as_ref().map(|lease| &lease.token);
            let sensitive = sensitive(request, token);
            let failure = match self.exchange(request, token, &sensitive).await {
                Ok(body) => match parse_body::<T>(&body, &sensitive) {
                    Ok(value) => {
                        scope.stats.record(request.endpoint, OUTCOME_OK);
                        return Ok(value);
                    }
                    Err(BodyError::Failure(failure)) => failure,
                    Err(BodyError::Shape(detail)) => {
                        scope.stats.record(request.endpoint, "unexpected_body");
                        return Err(ApiError::UnexpectedBody {
                            account_id: scope.account_id.clone(),
                            endpoint: request.endpoint,
                            detail,
                            attempts,
                        });
                    }
                },
                Err(failure) => failure,
            };
            scope.stats.record(request.endpoint, &failure.outcome());
            let verdict = failure.classify(request.kind);
            let can_retry = match verdict.action {
                Action::RefreshToken => lease.is_some(),
                action => action.retries(),
            };
            if !can_retry {
                return Err(final_error(scope, request, failure, verdict, attempts));
            }
            let wait = match verdict.action {
                Action::RefreshToken => Duration::ZERO,
                Action::WaitRateLimit => config.rate_limit_wait,
                _ => backoff_delay(config.backoff, attempts - 1, rand::random()),
            };
            // `retry_timeout` bounds the whole call: no wait starts that
            // would end past it.
            let over_budget = started.elapsed().saturating_add(wait) > config.retry_timeout;
            if attempts > config.max_retries || over_budget {
                return Err(ApiError::RetriesExhausted {
                    account_id: scope.account_id.clone(),
                    endpoint: request.endpoint,
                    attempts,
                    last: failure,
                });
            }
            scope.stats.record_retry();
            match (verdict.action, tokens, &lease) {
                (Action::RefreshToken, Some(source), Some(lease)) => {
                    tracing::info!(account = %scope.account_id, endpoint = request.endpoint,
                        attempt = attempts, %failure, reason = verdict.reason, "stale access token; refreshing and retrying");
                    source.invalidate(lease).await;
                }
                (Action::WaitRateLimit, _, _) => {
                    tracing::warn!(account = %scope.account_id, endpoint = request.endpoint,
                        attempt = attempts, %failure, reason = verdict.reason, wait_ms = wait.as_millis() as u64,
                        "rate limited; waiting before retrying");
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    tracing::warn!(account = %scope.account_id, endpoint = request.endpoint,
                        attempt = attempts, %failure, reason = verdict.reason, delay_ms = wait.as_millis() as u64,
                        "call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One HTTP exchange: Ok holds the body of a 2xx answer, as it came.
    /// `sensitive` is scrubbed from transport errors.
    async fn exchange(
        &self,
        request: &Request<'_>,
        token: Option<&AccessToken>,
        sensitive: &[&str],
    ) -> Result<Bytes, Failure> {
        let url = self.url(request, token);
        let builder = match &request.body {
            None => self.inner.client.get(url),
            Some(body) => self
                .inner
                .client
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone()),
        };
        let response = builder
            .send()
            .await
            .map_err(|err| transport_failure(err, sensitive))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Http(status.as_u16()));
        }
        read_capped(response, self.inner.config.max_body, sensitive).await
    }

    /// The full URL. It carries the token: it is handed to reqwest and to
    /// nothing else.
    fn url(&self, request: &Request<'_>, token: Option<&AccessToken>) -> Url {
        let base = if request.kind.wecom {
            &self.inner.wecom_base_url
        } else {
            &self.inner.base_url
        };
        let mut url = base.clone();
        let path = format!("{}{}", base.path().trim_end_matches('/'), request.endpoint);
        url.set_path(&path);
        if !request.query.is_empty() || token.is_some() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &request.query {
                pairs.append_pair(key, value);
            }
            if let Some(token) = token {
                pairs.append_pair("access_token", token.expose());
            }
        }
        url
    }
}

/// The body of a 2xx answer, read chunk by chunk and abandoned as soon as it
/// passes `limit` bytes (a `Content-Length` above it is refused before
/// reading), so a hostile or broken server cannot make the job hold more.
async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
    sensitive: &[&str],
) -> Result<Bytes, Failure> {
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(Failure::TooLarge(limit));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transport_failure(err, sensitive))?
    {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Failure::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn parse_base_url(key: &str, value: &str, allow_insecure_http: bool) -> Result<Url, ApiError> {
    let url = Url::parse(value).map_err(|err| ApiError::Setup {
        detail: format!("[api] {key} = {value:?} is not a URL: {err}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ApiError::Setup {
            detail: format!("[api] {key} = {value:?} must be an http(s) URL"),
        });
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        if !allow_insecure_http {
            return Err(ApiError::Setup {
                detail: format!("[api] {key} = {value:?} is plain http to a host that is not this machine: the AppSecret and every access token would cross the network in clear text (and reach any HTTP_PROXY); use https, or set [api] allow_insecure_http = true"),
            });
        }
        tracing::warn!(key, host = url.host_str().unwrap_or(""),
            "plain http to a host other than this machine (allow_insecure_http = true): secrets and access tokens travel in clear text");
    }
    Ok(url)
}

/// `localhost` or a loopback address: plain http stays on this machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// What one account's calls share: its id (for errors and logs), its rate
/// limiter and its counters.
pub(crate) struct AccountScope {
    pub account_id: String,
    pub limiter: DefaultDirectRateLimiter,
    pub stats: Arc<CallStats>,
}

impl AccountScope {
    pub fn new(account_id: String, requests_per_second: u32) -> Self {
        // 0 would mean "never": job validation rejects it; be safe anyway.
        let rate =
            std::num::NonZeroU32::new(requests_per_second).unwrap_or(std::num::NonZeroU32::MIN);
        AccountScope {
            account_id,
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            stats: Arc::new(CallStats::default()),
        }
    }
}

/// One request, described without its token.
pub(crate) struct Request<'a> {
    /// The path, e.g. "/cgi-bin/user/get": the only part of the URL that
    /// errors and logs may show.
    pub endpoint: &'static str,
    pub kind: CallKind,
    /// Query parameters other than `access_token` (never secret).
    pub query: Vec<(&'static str, String)>,
    /// A JSON body makes the request a POST.
    pub body: Option<Bytes>,
    /// Raw values carried by the body that must never come back in an error
    /// (the secret of a token request).
    pub sensitive: &'a [&'a str],
}

impl Request<'_> {
    pub fn get(endpoint: &'static str, kind: CallKind) -> Self {
        Request {
            endpoint,
            kind,
            query: Vec::new(),
            body: None,
            sensitive: &[],
        }
    }

    pub fn post_json(endpoint: &'static str, kind: CallKind, body: &impl Serialize) -> Self {
        // Request bodies have string keys only: serializing them cannot fail
        // (an empty body would be refused by WeChat, not sent silently wrong).
        let body = serde_json::to_vec(body).unwrap_or_default();
        Request {
            body: Some(Bytes::from(body)),
            ..Request::get(endpoint, kind)
        }
    }
}

/// The access token a request was sent with; `generation` identifies the
/// fetch that produced it, for compare-and-refresh.
pub(crate) struct TokenLease {
    pub token: AccessToken,
    pub generation: u64,
}

/// Where the retry loop gets tokens from. Boxed futures: a token source
/// itself calls [`WeChatHttp::call`] (without a token source), and the boxes
/// break that cycle in the future types.
pub(crate) trait TokenSource: Send + Sync {
    /// A token believed valid, fetched if needed.
    fn lease(&self) -> BoxFuture<'_, Result<TokenLease, ApiError>>;
    /// WeChat rejected `failed`: drop it unless it was already replaced.
    fn invalidate<'a>(&'a self, failed: &'a TokenLease) -> BoxFuture<'a, ()>;
}

/// The delay before retry number `retry` (0-based): `base · 2^retry`, capped
/// at [`MAX_BACKOFF`], then "equal jitter": a uniform point in the upper half
/// of that, so concurrent tasks spread out. `jitter` is in [0, 1].
pub fn backoff_delay(base: Duration, retry: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(retry.min(31));
    let capped = base.saturating_mul(factor).min(MAX_BACKOFF);
    let half = capped / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

fn final_error(
    scope: &AccountScope,
    request: &Request<'_>,
    failure: Failure,
    verdict: Classification,
    attempts: u32,
) -> ApiError {
    let account_id = scope.account_id.clone();
    let endpoint = request.endpoint;
    match failure {
        Failure::ErrCode { errcode, errmsg } => ApiError::ErrCode {
            account_id,
            endpoint,
            errcode,
            errmsg,
            action: verdict.action,
            reason: verdict.reason,
            attempts,
        },
        Failure::Http(status) => ApiError::HttpStatus {
            account_id,
            endpoint,
            status,
            reason: verdict.reason,
            attempts,
        },
        Failure::TooLarge(limit) => ApiError::TooLarge {
            account_id,
            endpoint,
            limit,
            attempts,
        },
        // Transport failures are always retried; they end as RetriesExhausted.
        last => ApiError::RetriesExhausted {
            account_id,
            endpoint,
            attempts,
            last,
        },
    }
}

/// Reduces a reqwest error to scrubbed text at once: the URL is stripped
/// before anything is formatted.
fn transport_failure(err: reqwest::Error, sensitive: &[&str]) -> Failure {
    let err = err.without_url();
    let detail = scrub(&error_chain(&err), sensitive);
    if err.is_timeout() {
        Failure::Timeout
    } else if err.is_connect() {
        Failure::Connect(detail)
    } else if err.is_body() || err.is_decode() {
        Failure::Body(detail)
    } else {
        Failure::Transport(detail)
    }
}

/// "error sending request: client error (SendRequest): connection closed
/// before message completed": the chain of sources, which is where reqwest
/// keeps the useful part.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What must never reach an error or a log: the request's secrets and the
/// access token it was sent with.
fn sensitive<'a>(request: &'a Request<'_>, token: Option<&'a AccessToken>) -> Vec<&'a str> {
    let mut sensitive: Vec<&str> = request.sensitive.to_vec();
    if let Some(token) = token {
        sensitive.push(token.expose());
    }
    sensitive
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::body::check_envelope;

    const BASE: Duration = Duration::from_millis(500);

    #[test]
    fn backoff_doubles_from_the_configured_base() {
        let upper: Vec<u64> = (0..5)
            .map(|retry| backoff_delay(BASE, retry, 1.0).as_millis() as u64)
            .collect();
        assert_eq!(upper, vec![500, 1000, 2000, 4000, 8000]);
    }

    #[test]
    fn backoff_jitter_stays_in_the_upper_half() {
        for retry in 0..10 {
            let full = backoff_delay(BASE, retry, 1.0);
            let low = backoff_delay(BASE, retry, 0.0);
            let mid = backoff_delay(BASE, retry, 0.5);
            assert_eq!(low, full / 2);
            assert!(low <= mid && mid <= full);
        }
    }

    #[test]
    fn backoff_is_capped_even_after_many_retries() {
        for retry in [6, 7, 20, 31, 32, u32::MAX] {
            assert!(backoff_delay(BASE, retry, 1.0) <= MAX_BACKOFF);
        }
        assert_eq!(backoff_delay(BASE, 100, 1.0), MAX_BACKOFF);
    }

    #[test]
    fn scrub_removes_sensitive_values_and_bounds_length() {
        let text = format!("invalid token tok-123 {}", "x".repeat(1000));
        let clean = scrub(&text, &["tok-123", ""]);
        assert!(!clean.contains("tok-123"));
        assert!(clean.starts_with("invalid token [REDACTED]"));
        assert!(clean.chars().count() <= crate::wechat::error::MAX_DETAIL_CHARS + 1);
    }

    #[test]
    fn envelope_accepts_success_bodies_without_errcode_and_with_errcode_0() {
        assert!(check_envelope(br#"{"total":0,"count":0,"next_openid":""}"#, &[]).is_ok());
        assert!(check_envelope(br#"{"errcode":0,"errmsg":"ok","quota":{}}"#, &[]).is_ok());
    }

    #[test]
    fn envelope_reports_errcodes_given_as_numbers_or_strings() {
        let failure = check_envelope(br#"{"errcode":"45009","errmsg":"quota"}"#, &[]);
        assert_eq!(
            failure,
            Err(Failure::ErrCode {
                errcode: 45009,
                errmsg: "quota".into()
            })
        );
    }

    #[test]
    fn non_json_bodies_are_described_not_quoted() {
        let html = b"<html><body>502 Bad Gateway tok-1</body></html>";
        match check_envelope(html, &[]) {
            Err(Failure::Decode(detail)) => {
                assert!(detail.contains("HTML"));
                assert!(!detail.contains("tok-1"));
            }
            other => panic!("expected a decode failure, got {other:?}"),
        }
        match check_envelope(br#"{"total":23001,"count":10"#, &[]) {
            Err(Failure::Decode(detail)) => assert!(detail.contains("truncated")),
            other => panic!("expected a decode failure, got {other:?}"),
        }
    }
}
