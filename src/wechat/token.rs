//! One access token per account, shared by every concurrent task.
//!
//! Official Accounts with their own AppSecret get tokens from
//! `POST /cgi-bin/stable_token` with `force_refresh:false` (wechat-api.md
//! §1.2): repeat calls return the same token, so uncoordinated processes do
//! not knock each other's tokens out as `cgi-bin/token` does. WeCom uses
//! `gettoken` (§4.1), accounts managed through a third-party platform an
//! authorizer token (§3.3, see `open_platform`); the cache below is the same
//! for all three.
//!
//! - Single flight: the cache is a tokio mutex held across the fetch, so N
//!   tasks needing a token cause one request.
//! - Proactive refresh: a token is replaced once less than
//!   [`REFRESH_MARGIN`] of its `expires_in` remains (WeChat rotates stable
//!   tokens 5 minutes before expiry and keeps both valid meanwhile). If that
//!   early refresh fails, the old token is used until it really expires.
//! - Compare-and-refresh: when a data call is refused with a token errcode,
//!   the cached token is dropped only if it is still the one that failed
//!   (same generation); a task whose failure raced with another task's
//!   refresh just retries with the newer token. N concurrent failures cause
//!   one refresh (the SDK bug class of wechat-api.md §8).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::errcode::CallKind;
use super::error::ApiError;
use super::http::{AccountScope, Request, TokenLease, TokenSource, WeChatHttp};
use super::open_platform::AuthorizerGrant;
use super::wire::lenient_u64;
use crate::secret::{AccessToken, Secret};

/// Refresh a token once less than this much of its lifetime remains.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// WeChat's documented token lifetime, assumed when `expires_in` is missing
/// or 0.
pub const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(7200);
/// The longest lifetime believed (WeChat's tokens live 2 hours): a larger
/// `expires_in`, up to u64::MAX, is clamped to it.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub(crate) const STABLE_TOKEN_PATH: &str = "/cgi-bin/stable_token";
pub(crate) const GETTOKEN_PATH: &str = "/cgi-bin/gettoken";
pub(crate) const SUITE_TOKEN_PATH: &str = "/cgi-bin/service/get_suite_token";
pub(crate) const CORP_TOKEN_PATH: &str = "/cgi-bin/service/get_corp_token";

/// `{"suite_access_token":"...","expires_in":7200}`. No Debug: a token.
#[derive(Deserialize)]
struct SuiteTokenResponse {
    #[serde(default)]
    suite_access_token: String,
}

/// How an account gets its token.
pub(crate) enum TokenGrant {
    /// Official Account with its own AppSecret: `POST /cgi-bin/stable_token`.
    Stable { appid: String, secret: Secret },
    /// WeCom: `GET /cgi-bin/gettoken?corpid=..&corpsecret=..` on the WeCom host.
    WeCom { corpid: String, secret: Secret },
    /// A WeCom third-party app (第三方应用): the provider's suite token, then
    /// `service/get_corp_token` with the corp's permanent code.
    WeComSuite {
        corpid: String,
        suite: Box<super::wecom::SuiteCredentials>,
    },
    /// Official Account managed through a third-party platform: component
    /// token, then `api_authorizer_token`.
    Authorizer(Box<AuthorizerGrant>),
}

pub(crate) struct TokenCache {
    http: WeChatHttp,
    scope: Arc<AccountScope>,
    grant: TokenGrant,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    current: Option<CachedToken>,
    /// Bumped on every fetch: identifies which token a failure was about.
    generation: u64,
}

struct CachedToken {
    token: AccessToken,
    generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
}

/// `{"access_token":"...","expires_in":7200}`. No Debug: it holds the token.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) expires_in: u64,
}

impl TokenCache {
    pub fn new(http: WeChatHttp, scope: Arc<AccountScope>, grant: TokenGrant) -> Self {
        TokenCache {
            http,
            scope,
            grant,
            state: Mutex::new(CacheState::default()),
        }
    }

    async fn lease_now(&self) -> Result<TokenLease, ApiError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(cached) = &state.current {
            if now < cached.refresh_at {
                return Ok(cached.lease());
            }
        }
        match self.fetch().await {
            Ok((token, lifetime)) => {
                self.scope.stats.record_token_fetched();
                state.generation += 1;
                let fetched_at = Instant::now();
                let cached = CachedToken {
                    token,
                    generation: state.generation,
                    refresh_at: fetched_at + refresh_after(lifetime),
                    expires_at: fetched_at + lifetime,
                };
                let lease = cached.lease();
                state.current = Some(cached);
                Ok(lease)
            }
            Err(err) => match &state.current {
                // An early refresh failed but the old token still works.
                Some(cached) if Instant::now() < cached.expires_at => {
                    tracing::warn!(account = %self.scope.account_id, error = %err,
                        "token refresh failed; using the current token until it expires");
                    Ok(cached.lease())
                }
                _ => Err(err),
            },
        }
    }

    async fn invalidate_if_current(&self, failed: &TokenLease) {
        let mut state = self.state.lock().await;
        let still_current = state
            .current
            .as_ref()
            .is_some_and(|cached| cached.generation == failed.generation);
        if still_current {
            state.current = None;
        }
    }

    async fn fetch(&self) -> Result<(AccessToken, Duration), ApiError> {
        match &self.grant {
            TokenGrant::Stable { appid, secret } => {
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": appid,
                    "secret": secret.expose(),
                    "force_refresh": false,
                });
                let sensitive = [secret.expose()];
                let request = Request {
                    sensitive: &sensitive,
                    ..Request::post_json(STABLE_TOKEN_PATH, CallKind::TOKEN, &body)
                };
                let response: TokenResponse = self.http.call(&self.scope, &request, None).await?;
                self.checked(STABLE_TOKEN_PATH, response)
            }
            TokenGrant::WeCom { corpid, secret } => {
                // The secret travels in the query string here (WeCom's only
                // form): the URL never reaches an error or a log, and the
                // value is scrubbed from any errmsg.
                let sensitive = [secret.expose()];
                let mut request = Request {
                    sensitive: &sensitive,
                    ..Request::get(GETTOKEN_PATH, CallKind::WECOM_TOKEN)
                };
                request.query.push(("corpid", corpid.clone()));
                request
                    .query
                    .push(("corpsecret", secret.expose().to_string()));
                let response: TokenResponse = self.http.call(&self.scope, &request, None).await?;
                self.checked(GETTOKEN_PATH, response)
            }
            TokenGrant::WeComSuite { corpid, suite } => {
                let suite_token = self.suite_token(suite).await?;
                let body = json!({
                    "auth_corpid": corpid,
                    "permanent_code": suite.permanent_code.expose(),
                });
                let sensitive = [suite_token.expose(), suite.permanent_code.expose()];
                let mut request = Request {
                    sensitive: &sensitive,
                    ..Request::post_json(CORP_TOKEN_PATH, CallKind::WECOM_TOKEN, &body)
                };
                request
                    .query
                    .push(("suite_access_token", suite_token.expose().to_string()));
                let response: TokenResponse = self.http.call(&self.scope, &request, None).await?;
                self.checked(CORP_TOKEN_PATH, response)
            }
            TokenGrant::Authorizer(grant) => grant.fetch(&self.http, &self.scope).await,
        }
    }

    /// The provider's suite token (`service/get_suite_token`), fetched with
    /// each corp token (both live 2 hours). A suite ticket from a file is
    /// read again each time: WeCom pushes a new one every 10 minutes.
    async fn suite_token(
        &self,
        suite: &super::wecom::SuiteCredentials,
    ) -> Result<AccessToken, ApiError> {
        let ticket = suite.suite_ticket_origin.current(&suite.suite_ticket);
        let body = json!({
            "suite_id": suite.suite_id,
            "suite_secret": suite.suite_secret.expose(),
            "suite_ticket": ticket.expose(),
        });
        let sensitive = [suite.suite_secret.expose(), ticket.expose()];
        let request = Request {
            sensitive: &sensitive,
            ..Request::post_json(SUITE_TOKEN_PATH, CallKind::WECOM_TOKEN, &body)
        };
        let response: SuiteTokenResponse = self.http.call(&self.scope, &request, None).await?;
        if response.suite_access_token.is_empty() {
            return Err(ApiError::UnexpectedBody {
                account_id: self.scope.account_id.clone(),
                endpoint: SUITE_TOKEN_PATH,
                detail: "empty suite_access_token".to_string(),
                attempts: 1,
            });
        }
        Ok(AccessToken::new(response.suite_access_token))
    }

    fn checked(
        &self,
        endpoint: &'static str,
        response: TokenResponse,
    ) -> Result<(AccessToken, Duration), ApiError> {
        if response.access_token.is_empty() {
            return Err(ApiError::UnexpectedBody {
                account_id: self.scope.account_id.clone(),
                endpoint,
                detail: "empty access_token".to_string(),
                attempts: 1,
            });
        }
        Ok((
            AccessToken::new(response.access_token),
            lifetime(response.expires_in, self.http.config().min_token_lifetime),
        ))
    }
}

/// How long a token whose answer said `expires_in` is believed to live: the
/// untrusted number is never used in arithmetic as it came. Missing or 0
/// means WeChat's documented 7200 s; anything else is clamped to
/// `[floor, MAX_TOKEN_LIFETIME]`, so a token is kept at least `floor` (no
/// fetch per call) and an absurd value cannot overflow a deadline.
pub(crate) fn lifetime(expires_in: u64, floor: Duration) -> Duration {
    if expires_in == 0 {
        return DOCUMENTED_LIFETIME;
    }
    Duration::from_secs(expires_in.min(MAX_TOKEN_LIFETIME.as_secs()))
        .clamp(floor.min(MAX_TOKEN_LIFETIME), MAX_TOKEN_LIFETIME)
}

impl CachedToken {
    fn lease(&self) -> TokenLease {
        TokenLease {
            token: self.token.clone(),
            generation: self.generation,
        }
    }
}

impl TokenSource for TokenCache {
    fn lease(&self) -> BoxFuture<'_, Result<TokenLease, ApiError>> {
        Box::pin(self.lease_now())
    }

    fn invalidate<'a>(&'a self, failed: &'a TokenLease) -> BoxFuture<'a, ()> {
        Box::pin(self.invalidate_if_current(failed))
    }
}

/// How long a token of `lifetime` is used before an early refresh:
/// `lifetime − 5 min`; for short lifetimes (a simulator, a token handed out
/// just before rotation) half the lifetime, so a token is never refetched on
/// every call.
pub fn refresh_after(lifetime: Duration) -> Duration {
    if lifetime > REFRESH_MARGIN * 2 {
        lifetime - REFRESH_MARGIN
    } else {
        lifetime / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_7200s_token_is_refreshed_5_minutes_before_expiry() {
        assert_eq!(
            refresh_after(Duration::from_secs(7200)),
            Duration::from_secs(6900)
        );
    }

    #[test]
    fn a_short_lived_token_is_kept_for_half_its_lifetime() {
        assert_eq!(
            refresh_after(Duration::from_secs(400)),
            Duration::from_secs(200)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn untrusted_expires_in_is_clamped_and_never_overflows() {
        let floor = Duration::from_secs(60);
        assert_eq!(lifetime(u64::MAX, floor), MAX_TOKEN_LIFETIME);
        assert_eq!(lifetime(0, floor), DOCUMENTED_LIFETIME);
        assert_eq!(lifetime(1, floor), floor);
        assert_eq!(lifetime(7200, floor), Duration::from_secs(7200));
        // The deadline arithmetic the cache does cannot panic.
        let now = Instant::now();
        let _ = now + refresh_after(lifetime(u64::MAX, floor));
        let _ = now + lifetime(u64::MAX, floor);
        assert!(refresh_after(lifetime(1, floor)) >= Duration::from_secs(30));
    }
}
