//! What can go wrong in a WeChat call, in two layers: [`Failure`] is one
//! failed HTTP exchange (the retry loop decides what to do with it);
//! [`ApiError`] is what a call returns once the loop has given up.
//!
//! Neither ever holds a URL, a request or an unscrubbed `reqwest::Error`:
//! the access token travels in the query string and the secret in the token
//! request's body, so errors are built from the endpoint path and from text
//! that `http.rs` has already scrubbed of both values.

use std::fmt;

use super::errcode::{classify, Action, CallKind, Classification};

/// One failed HTTP exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No complete answer within the configured timeout.
    Timeout,
    /// The TCP/TLS connection could not be opened.
    Connect(String),
    /// The connection broke before a response arrived.
    Transport(String),
    /// The connection broke while the body was read.
    Body(String),
    /// An HTTP status other than 2xx (WeChat itself answers errors with 200).
    Http(u16),
    /// The body is not a JSON object: an HTML error page, truncated JSON, nothing.
    Decode(String),
    /// WeChat answered `{"errcode":N,"errmsg":"..."}` with N ≠ 0.
    ErrCode { errcode: i64, errmsg: String },
    /// The answer is longer than `[api] max_body` (bytes): reading stopped there.
    TooLarge(u64),
}

const HTTP_RETRY_REASON: &str =
    "HTTP 429/5xx from WeChat or a proxy in between; retried with backoff";
const HTTP_STOP_REASON: &str = "unexpected HTTP status (WeChat answers errors with HTTP 200): check base_url and any proxy in between";
const TRANSPORT_REASON: &str = "network or body failure; retried with backoff";
const TOO_LARGE_REASON: &str = "the answer is larger than any legitimate WeChat answer: check base_url and any proxy in between (or raise [api] max_body)";

impl Failure {
    /// The label this exchange is counted under in [`super::CallStats`].
    pub fn outcome(&self) -> String {
        match self {
            Failure::Timeout => "timeout".to_string(),
            Failure::Connect(_) => "connect".to_string(),
            Failure::Transport(_) => "transport".to_string(),
            Failure::Body(_) => "body".to_string(),
            Failure::Http(status) => format!("http_{status}"),
            Failure::Decode(_) => "decode".to_string(),
            Failure::ErrCode { errcode, .. } => errcode.to_string(),
            Failure::TooLarge(_) => "too_large".to_string(),
        }
    }

    /// What to do about it, and why.
    pub fn classify(&self, kind: CallKind) -> Classification {
        match self {
            Failure::ErrCode { errcode, .. } => classify(*errcode, kind),
            Failure::Http(status) if *status == 429 || *status >= 500 => Classification {
                action: Action::Retry,
                reason: HTTP_RETRY_REASON,
            },
            Failure::Http(_) => Classification {
                action: Action::StopAccount,
                reason: HTTP_STOP_REASON,
            },
            Failure::TooLarge(_) => Classification {
                action: Action::StopAccount,
                reason: TOO_LARGE_REASON,
            },
            Failure::Timeout
            | Failure::Connect(_)
            | Failure::Transport(_)
            | Failure::Body(_)
            | Failure::Decode(_) => Classification {
                action: Action::Retry,
                reason: TRANSPORT_REASON,
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timed out"),
            Failure::Connect(detail) => write!(f, "could not connect: {detail}"),
            Failure::Transport(detail) => write!(f, "connection failed: {detail}"),
            Failure::Body(detail) => write!(f, "connection broke while reading the body: {detail}"),
            Failure::Http(status) => write!(f, "HTTP {status}"),
            Failure::Decode(detail) => write!(f, "body is not JSON: {detail}"),
            Failure::ErrCode { errcode, errmsg } => write!(f, "errcode {errcode} ({errmsg})"),
            Failure::TooLarge(limit) => write!(f, "the answer is longer than {limit} bytes"),
        }
    }
}

/// Why a WeChat call failed for good. Every variant names the account and
/// the endpoint path; none holds a token, a secret or a URL.
#[derive(thiserror::Error, Debug)]
pub enum ApiError {
    /// WeChat answered an errcode that is not retried (or whose retries ran out
    /// on a token refresh that did not help: see [`ApiError::RetriesExhausted`]).
    #[error("{account_id}: {endpoint}: errcode {errcode} ({errmsg}): {reason}")]
    ErrCode {
        account_id: String,
        endpoint: &'static str,
        errcode: i64,
        errmsg: String,
        action: Action,
        reason: &'static str,
        attempts: u32,
    },
    /// An HTTP status that is neither success nor retried (4xx other than 429).
    #[error("{account_id}: {endpoint}: HTTP {status}: {reason}")]
    HttpStatus {
        account_id: String,
        endpoint: &'static str,
        status: u16,
        reason: &'static str,
        attempts: u32,
    },
    /// Transient failures (network, 5xx, broken bodies, -1, 45011, stale
    /// tokens) went on past `max_retries`.
    #[error("{account_id}: {endpoint}: gave up after {attempts} attempts; last failure: {last}")]
    RetriesExhausted {
        account_id: String,
        endpoint: &'static str,
        attempts: u32,
        last: Failure,
    },
    /// The body is JSON without an errcode but not in the documented shape.
    #[error(
        "{account_id}: {endpoint}: the response is JSON but not in the documented shape ({detail})"
    )]
    UnexpectedBody {
        account_id: String,
        endpoint: &'static str,
        detail: String,
        attempts: u32,
    },
    /// The server handed back a paging cursor (`next_openid`, WeCom's
    /// `next_cursor`) it had already given: paging would never end.
    #[error("{account_id}: {endpoint}: the server repeated a next_openid/next_cursor after {pages} pages; stopped paging instead of looping forever")]
    RepeatedPage {
        account_id: String,
        endpoint: &'static str,
        pages: usize,
    },
    /// The answer was longer than `[api] max_body`: reading stopped there.
    #[error("{account_id}: {endpoint}: the answer is longer than [api] max_body = {limit} bytes, larger than any legitimate WeChat answer; reading stopped there (check base_url and any proxy in between, or raise max_body)")]
    TooLarge {
        account_id: String,
        endpoint: &'static str,
        limit: u64,
        attempts: u32,
    },
    /// The client was asked for something WeChat would refuse (a bug in the caller).
    #[error("{account_id}: {endpoint}: invalid request: {detail}")]
    InvalidRequest {
        account_id: String,
        endpoint: &'static str,
        detail: String,
    },
    /// The `[api]` configuration cannot produce an HTTP client.
    #[error("cannot set up the WeChat HTTP client: {detail}")]
    Setup { detail: String },
}

impl ApiError {
    /// What the caller should do: [`Action::StopAccount`] (this account
    /// fails, the run goes on) or [`Action::Fatal`] (stop the run). Retried
    /// actions appear only on [`ApiError::ErrCode`] rows that cannot be
    /// retried in context; they are reported as StopAccount.
    pub fn action(&self) -> Action {
        match self {
            ApiError::ErrCode { action, .. } if !action.retries() => *action,
            ApiError::ErrCode { .. }
            | ApiError::HttpStatus { .. }
            | ApiError::RetriesExhausted { .. }
            | ApiError::UnexpectedBody { .. }
            | ApiError::TooLarge { .. }
            | ApiError::RepeatedPage { .. } => Action::StopAccount,
            ApiError::InvalidRequest { .. } | ApiError::Setup { .. } => Action::Fatal,
        }
    }

    /// The account's quota is used up: 45009 outside WeCom (the daily
    /// quota: re-run tomorrow), or WeCom's 45009 frequency limit still in
    /// force after every wait `max_retries` allowed (re-run later).
    pub fn is_quota(&self) -> bool {
        matches!(
            self,
            ApiError::ErrCode {
                errcode: 45009,
                action: Action::StopAccount,
                ..
            } | ApiError::RetriesExhausted {
                last: Failure::ErrCode { errcode: 45009, .. },
                ..
            }
        )
    }

    /// A bug on our side: the run should stop.
    pub fn is_fatal(&self) -> bool {
        self.action() == Action::Fatal
    }

    /// The WeChat errcode, also when it was the last failure before giving up.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            ApiError::ErrCode { errcode, .. } => Some(*errcode),
            ApiError::RetriesExhausted {
                last: Failure::ErrCode { errcode, .. },
                ..
            } => Some(*errcode),
            _ => None,
        }
    }

    /// The account the call was made for (None for setup errors).
    pub fn account_id(&self) -> Option<&str> {
        match self {
            ApiError::ErrCode { account_id, .. }
            | ApiError::HttpStatus { account_id, .. }
            | ApiError::RetriesExhausted { account_id, .. }
            | ApiError::UnexpectedBody { account_id, .. }
            | ApiError::TooLarge { account_id, .. }
            | ApiError::RepeatedPage { account_id, .. }
            | ApiError::InvalidRequest { account_id, .. } => Some(account_id),
            ApiError::Setup { .. } => None,
        }
    }

    /// The endpoint path ("/cgi-bin/user/get"; None for setup errors).
    pub fn endpoint(&self) -> Option<&'static str> {
        match self {
            ApiError::ErrCode { endpoint, .. }
            | ApiError::HttpStatus { endpoint, .. }
            | ApiError::RetriesExhausted { endpoint, .. }
            | ApiError::UnexpectedBody { endpoint, .. }
            | ApiError::TooLarge { endpoint, .. }
            | ApiError::RepeatedPage { endpoint, .. }
            | ApiError::InvalidRequest { endpoint, .. } => Some(endpoint),
            ApiError::Setup { .. } => None,
        }
    }

    /// HTTP exchanges made for the call (0 when none was made).
    pub fn attempts(&self) -> u32 {
        match self {
            ApiError::ErrCode { attempts, .. }
            | ApiError::HttpStatus { attempts, .. }
            | ApiError::RetriesExhausted { attempts, .. }
            | ApiError::UnexpectedBody { attempts, .. }
            | ApiError::TooLarge { attempts, .. } => *attempts,
            ApiError::RepeatedPage { .. }
            | ApiError::InvalidRequest { .. }
            | ApiError::Setup { .. } => 0,
        }
    }
}

/// The longest errmsg or transport detail kept in an error.
pub(crate) const MAX_DETAIL_CHARS: usize = 300;
/// What a secret or token is replaced by.
const REDACTED: &str = "[REDACTED]";

/// Replaces every sensitive value by `[REDACTED]` and bounds the length.
pub(crate) fn scrub(text: &str, sensitive: &[&str]) -> String {
    let mut clean = text.to_string();
    for value in sensitive.iter().filter(|value| !value.is_empty()) {
        clean = clean.replace(value, REDACTED);
    }
    match clean.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errcode_error(errcode: i64, errmsg: &str) -> ApiError {
        let verdict = classify(errcode, CallKind::DATA);
        ApiError::ErrCode {
            account_id: "brand_oa".into(),
            endpoint: "/cgi-bin/user/get",
            errcode,
            errmsg: errmsg.into(),
            action: verdict.action,
            reason: verdict.reason,
            attempts: 1,
        }
    }

    #[test]
    fn errcode_errors_read_account_endpoint_code_message_and_remedy() {
        let err = errcode_error(48001, "api unauthorized");
        assert!(err
            .to_string()
            .starts_with("brand_oa: /cgi-bin/user/get: errcode 48001 (api unauthorized): the account lacks the user-management permission"));
        assert_eq!(err.action(), Action::StopAccount);
    }

    #[test]
    fn only_45009_is_quota() {
        assert!(errcode_error(45009, "reach max api daily quota limit").is_quota());
        assert!(!errcode_error(48001, "api unauthorized").is_quota());
    }

    #[test]
    fn client_bugs_are_fatal() {
        assert!(errcode_error(47001, "data format error").is_fatal());
        assert!(!errcode_error(40032, "invalid openid list size").is_fatal());
        assert!(!errcode_error(40164, "invalid ip").is_fatal());
    }

    #[test]
    fn exhausted_retries_stop_the_account_and_keep_the_last_errcode() {
        let err = ApiError::RetriesExhausted {
            account_id: "brand_oa".into(),
            endpoint: "/cgi-bin/user/get",
            attempts: 9,
            last: Failure::ErrCode {
                errcode: -1,
                errmsg: "system error".into(),
            },
        };
        assert_eq!(err.action(), Action::StopAccount);
        assert_eq!(err.errcode(), Some(-1));
        assert_eq!(
            err.to_string(),
            "brand_oa: /cgi-bin/user/get: gave up after 9 attempts; last failure: errcode -1 (system error)"
        );
    }

    #[test]
    fn http_429_and_5xx_are_retried_other_4xx_stop_the_account() {
        assert_eq!(
            Failure::Http(429).classify(CallKind::DATA).action,
            Action::Retry
        );
        assert_eq!(
            Failure::Http(502).classify(CallKind::DATA).action,
            Action::Retry
        );
        assert_eq!(
            Failure::Http(404).classify(CallKind::DATA).action,
            Action::StopAccount
        );
    }
}
