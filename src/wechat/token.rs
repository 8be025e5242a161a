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
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::ApiError;
use super::http::{AccountScope, TokenLease, TokenSource, WeChatHttp};
use super::wire::lenient_u64;
use crate::secret::AccessToken;

/// Refresh a token once less than this much of its lifetime remains.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// WeChat's documented token lifetime, assumed when `expires_in` is missing
/// or 0.
pub const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(7200);
/// The longest lifetime believed (WeChat's tokens live 2 hours): a larger
/// `expires_in`, up to u64::MAX, is clamped to it.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How an account gets its token. Each product's file implements its own
/// grants (`official_account`: own AppSecret; `wecom`: corp secret and
/// third-party suite; `open_platform`: authorizer token); the cache below is
/// the same for all of them.
pub(crate) trait TokenGrant: Send + Sync {
    /// A new token and how long it is believed to live ([`lifetime`]).
    fn fetch<'a>(
        &'a self,
        http: &'a WeChatHttp,
        scope: &'a Arc<AccountScope>,
    ) -> BoxFuture<'a, Result<(AccessToken, Duration), ApiError>>;
}

pub(crate) struct TokenCache {
    http: WeChatHttp,
    scope: Arc<AccountScope>,
    grant: Box<dyn TokenGrant>,
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
    pub fn new(http: WeChatHttp, scope: Arc<AccountScope>, grant: Box<dyn TokenGrant>) -> Self {
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
        match self.grant.fetch(&self.http, &self.scope).await {
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
}

/// The token of a token answer from `endpoint`, checked, with its lifetime.
pub(crate) fn checked(
    http: &WeChatHttp,
    scope: &AccountScope,
    endpoint: &'static str,
    response: TokenResponse,
) -> Result<(AccessToken, Duration), ApiError> {
    if response.access_token.is_empty() {
        return Err(ApiError::UnexpectedBody {
            account_id: scope.account_id.clone(),
            endpoint,
            detail: "empty access_token".to_string(),
            attempts: 1,
        });
    }
    Ok((
        AccessToken::new(response.access_token),
        lifetime(response.expires_in, http.config().min_token_lifetime),
    ))
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
