//! Official Accounts managed through a third-party platform (开放平台第三方平台,
//! wechat-api.md §3): the platform holds no AppSecret of the account, only
//! the account's `authorizer_refresh_token`, and acts for it with an
//! authorizer access token.
//!
//! Two token calls precede the data calls:
//! 1. `POST /cgi-bin/component/api_component_token` with the platform's
//!    AppID, AppSecret and the latest `component_verify_ticket` (pushed by
//!    WeChat every 10 minutes, valid 12 hours) → the component token;
//! 2. `POST /cgi-bin/component/api_authorizer_token?component_access_token=..`
//!    with the account's refresh token → the authorizer token, used by the
//!    same user APIs as an account's own token ([`OfficialAccountClient`]).
//!
//! A stale refresh token answers `61023`: the account stops, and the error
//! says to update `auth.refresh_token` or have the account re-authorize.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::errcode::CallKind;
use super::error::ApiError;
use super::http::{AccountScope, Request, WeChatHttp};
use super::official_account::OfficialAccountClient;
use super::token::{lifetime, refresh_after, TokenGrant};
use super::wire::{lenient_u64, nonempty_string};
use crate::secret::{AccessToken, Secret};

pub const COMPONENT_TOKEN_PATH: &str = "/cgi-bin/component/api_component_token";
pub const AUTHORIZER_TOKEN_PATH: &str = "/cgi-bin/component/api_authorizer_token";

/// What a third-party platform needs to act for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentCredentials {
    /// The platform's AppID.
    pub component_appid: String,
    /// The platform's AppSecret.
    pub component_secret: Secret,
    /// The latest `component_verify_ticket` WeChat pushed to the platform.
    pub verify_ticket: Secret,
    /// The account's `authorizer_refresh_token`.
    pub refresh_token: Secret,
    /// Where the ticket and the refresh token were read from: the ticket
    /// is read again from a file at every component-token fetch (WeChat
    /// pushes a new one every 10 minutes, each valid 12 hours: a `serve`
    /// process outlives one), and a refresh token WeChat rotates is written
    /// back to its file.
    pub origins: CredentialOrigins,
}

/// Where a credential the job names came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// Given as a value (tests).
    #[default]
    Value,
    /// An environment variable: read once.
    Env(String),
    /// A file: read again when needed, written back when rotated.
    File(std::path::PathBuf),
}

impl Origin {
    /// The credential now: a file's current content (WeChat keeps pushing
    /// new tickets), else `loaded`, the value read when the job loaded (also
    /// when the file has gone missing or empty since).
    pub(crate) fn current(&self, loaded: &Secret) -> Secret {
        match self {
            Origin::File(path) => match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() => Secret::new(text.trim()),
                _ => loaded.clone(),
            },
            _ => loaded.clone(),
        }
    }
}

/// The origins of the ticket and the refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialOrigins {
    pub verify_ticket: Origin,
    pub refresh_token: Origin,
}

impl OfficialAccountClient {
    /// A client for an Official Account that authorized a third-party
    /// platform: its token is an authorizer token, and every other call is
    /// the same as for an account with its own AppSecret.
    pub fn third_party(
        http: WeChatHttp,
        account_id: impl Into<String>,
        appid: impl Into<String>,
        credentials: ComponentCredentials,
    ) -> Self {
        let appid: String = appid.into();
        let grant = AuthorizerGrant {
            authorizer_appid: appid.clone(),
            refresh_token: Mutex::new(credentials.refresh_token.clone()),
            credentials,
            component_token: tokio::sync::Mutex::new(None),
        };
        OfficialAccountClient::with_grant(http, account_id.into(), appid, Box::new(grant))
    }
}

/// The token grant of an authorizer account. Holds the component token
/// between authorizer-token refreshes (it lives 2 h, as the authorizer token
/// does) and the newest refresh token WeChat handed back.
pub(crate) struct AuthorizerGrant {
    credentials: ComponentCredentials,
    authorizer_appid: String,
    /// `api_authorizer_token` answers carry the refresh token to use next
    /// time; WeChat usually returns the same one, but keep what it says.
    refresh_token: Mutex<Secret>,
    component_token: tokio::sync::Mutex<Option<ComponentToken>>,
}

struct ComponentToken {
    token: AccessToken,
    refresh_at: Instant,
}

/// `{"component_access_token":"...","expires_in":7200}`. No Debug: a token.
#[derive(Deserialize)]
pub(crate) struct ComponentTokenResponse {
    component_access_token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: u64,
}

/// `{"authorizer_access_token":"...","expires_in":7200,"authorizer_refresh_token":"..."}`.
#[derive(Deserialize)]
pub(crate) struct AuthorizerTokenResponse {
    authorizer_access_token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: u64,
    #[serde(default, deserialize_with = "nonempty_string")]
    authorizer_refresh_token: Option<String>,
}

impl AuthorizerGrant {
    /// A fresh authorizer token and its lifetime.
    async fn fetch_token(
        &self,
        http: &WeChatHttp,
        scope: &Arc<AccountScope>,
    ) -> Result<(AccessToken, Duration), ApiError> {
        let component_token = self.component_token(http, scope).await?;
        let refresh_token = self
            .refresh_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let body = json!({
            "component_appid": self.credentials.component_appid,
            "authorizer_appid": self.authorizer_appid,
            "authorizer_refresh_token": refresh_token.expose(),
        });
        let sensitive = [component_token.expose(), refresh_token.expose()];
        let mut request = Request {
            sensitive: &sensitive,
            ..Request::post_json(AUTHORIZER_TOKEN_PATH, CallKind::TOKEN, &body)
        };
        // SDKs send the component token as `component_access_token` (newer
        // docs also accept `access_token`); it is a token, so it is marked
        // sensitive like the query's `access_token`.
        request.query.push((
            "component_access_token",
            component_token.expose().to_string(),
        ));
        let response: AuthorizerTokenResponse = http.call(scope, &request, None).await?;
        if response.authorizer_access_token.is_empty() {
            return Err(empty_token(scope, AUTHORIZER_TOKEN_PATH));
        }
        if let Some(next) = response.authorizer_refresh_token {
            if next != refresh_token.expose() {
                self.keep_rotated(scope, &next);
            }
            *self
                .refresh_token
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Secret::new(next);
        }
        Ok((
            AccessToken::new(response.authorizer_access_token),
            lifetime(response.expires_in, http.config().min_token_lifetime),
        ))
    }

    /// WeChat handed back another refresh token: the configured one is now
    /// stale (61023 on the next run). Written back to its file (atomically,
    /// owner-only); from an environment variable, a warning says what to do.
    /// The value itself is never logged.
    fn keep_rotated(&self, scope: &AccountScope, next: &str) {
        let account = &scope.account_id;
        match &self.credentials.origins.refresh_token {
            Origin::File(path) => match write_private_atomically(path, next) {
                Ok(()) => tracing::info!(account = %account, file = %path.display(),
                    "WeChat rotated the authorizer refresh token; the new one is written back to its file"),
                Err(error) => tracing::error!(account = %account, file = %path.display(), %error,
                    "WeChat rotated the authorizer refresh token but it could not be written back: the next run will fail with 61023 unless the file is updated (api_get_authorizer_list returns the current token)"),
            },
            Origin::Env(name) => tracing::warn!(account = %account, variable = %name,
                "WeChat rotated the authorizer refresh token: the value in this environment variable is now stale and the next run will fail with 61023; set it from api_get_authorizer_list, or use auth.refresh_token = {{ file = ... }} so that unionsnap keeps it current"),
            Origin::Value => {}
        }
    }

    /// The component token, fetched when missing or near its end.
    async fn component_token(
        &self,
        http: &WeChatHttp,
        scope: &Arc<AccountScope>,
    ) -> Result<AccessToken, ApiError> {
        let mut cached = self.component_token.lock().await;
        if let Some(current) = cached.as_ref() {
            if Instant::now() < current.refresh_at {
                return Ok(current.token.clone());
            }
        }
        let credentials = &self.credentials;
        let verify_ticket = credentials
            .origins
            .verify_ticket
            .current(&credentials.verify_ticket);
        let body = json!({
            "component_appid": credentials.component_appid,
            "component_appsecret": credentials.component_secret.expose(),
            "component_verify_ticket": verify_ticket.expose(),
        });
        let sensitive = [
            credentials.component_secret.expose(),
            verify_ticket.expose(),
        ];
        let request = Request {
            sensitive: &sensitive,
            ..Request::post_json(COMPONENT_TOKEN_PATH, CallKind::TOKEN, &body)
        };
        let response: ComponentTokenResponse = http.call(scope, &request, None).await?;
        if response.component_access_token.is_empty() {
            return Err(empty_token(scope, COMPONENT_TOKEN_PATH));
        }
        let token = AccessToken::new(response.component_access_token);
        *cached = Some(ComponentToken {
            token: token.clone(),
            refresh_at: Instant::now()
                + refresh_after(lifetime(
                    response.expires_in,
                    http.config().min_token_lifetime,
                )),
        });
        Ok(token)
    }
}

/// Replaces `path` with `value` whole: a private temporary file beside it,
/// then a rename (a crash leaves the old token or the new one, never half).
fn write_private_atomically(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options.open(&temp).and_then(|mut file| {
        file.write_all(value.as_bytes())?;
        file.sync_all()
    });
    match result.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

fn empty_token(scope: &AccountScope, endpoint: &'static str) -> ApiError {
    ApiError::UnexpectedBody {
        account_id: scope.account_id.clone(),
        endpoint,
        detail: "empty token".to_string(),
        attempts: 1,
    }
}

impl TokenGrant for AuthorizerGrant {
    fn fetch<'a>(
        &'a self,
        http: &'a WeChatHttp,
        scope: &'a Arc<AccountScope>,
    ) -> futures::future::BoxFuture<'a, Result<(AccessToken, Duration), ApiError>> {
        Box::pin(self.fetch_token(http, scope))
    }
}
