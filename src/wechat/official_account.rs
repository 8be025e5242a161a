//! The Official Account (公众号/服务号) endpoints a follower snapshot needs:
//! the follower OpenID list, user info in batches of 100, and the quota.
//!
//! Responses are parsed tolerantly (wechat-api.md §1.3–1.5): `data` missing
//! or null, legacy fields present-but-empty or absent, empty strings for
//! absent values. Names and avatars are never read, so never stored.

use std::fmt;
use std::sync::Arc;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cursor::Cursors;
use super::errcode::CallKind;
use super::error::ApiError;
use super::http::{AccountScope, Request, TokenSource, WeChatHttp};
use super::stats::{CallStats, StatsSnapshot};
use super::token::{self, TokenCache, TokenGrant, TokenResponse};
use super::wire::{
    lenient_i32, lenient_i32_list, lenient_opt_i64, lenient_u64, nonempty_string, string_list,
};
use crate::secret::{AccessToken, Secret};

pub const USER_GET_PATH: &str = "/cgi-bin/user/get";
pub const BATCHGET_PATH: &str = "/cgi-bin/user/info/batchget";
pub const QUOTA_PATH: &str = "/cgi-bin/openapi/quota/get";

/// Most OpenIDs `user/get` returns per page.
pub const USER_GET_PAGE_MAX: usize = 10_000;
/// Most OpenIDs per `user/info/batchget` call (more → 40032).
pub const BATCHGET_MAX: usize = 100;

/// One Official Account's API client. Clone it freely: clones share the
/// token, the rate limiter and the counters, and may be used concurrently.
#[derive(Clone)]
pub struct OfficialAccountClient {
    http: WeChatHttp,
    scope: Arc<AccountScope>,
    tokens: Arc<TokenCache>,
    appid: Arc<str>,
}

impl fmt::Debug for OfficialAccountClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfficialAccountClient")
            .field("account_id", &self.scope.account_id)
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

/// One page of `GET /cgi-bin/user/get`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FollowerPage {
    /// Follower count at the moment of this call (it moves while paging).
    pub total: u64,
    pub openids: Vec<String>,
    /// The cursor for the next page; None when WeChat signals the end
    /// (empty `next_openid`, or a page without OpenIDs).
    pub next_openid: Option<String>,
    /// Empty strings the page listed as OpenIDs (WeChat's own example of
    /// `user/get` shows one): skipped, not members.
    pub empty_skipped: usize,
}

/// The body of a `user/info/batchget` call (serialized straight, without
/// building a `serde_json::Value` per OpenID: 10,000 calls per million).
#[derive(Serialize)]
struct BatchgetRequest<'a> {
    user_list: Vec<BatchgetUser<'a>>,
}

#[derive(Serialize)]
struct BatchgetUser<'a> {
    openid: &'a str,
    lang: &'static str,
}

/// One user of `user/info/batchget`. `{"subscribe":0,"openid":..}` rows
/// (unfollowed since the list was read) come back as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// 1 following, 0 not (then nothing else is filled in).
    #[serde(default, deserialize_with = "lenient_i32")]
    pub subscribe: i32,
    pub openid: String,
    /// Present only if the account is bound to an Open Platform account.
    #[serde(default, deserialize_with = "nonempty_string")]
    pub unionid: Option<String>,
    /// Unix seconds of the LAST follow.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub subscribe_time: Option<i64>,
    #[serde(default, deserialize_with = "nonempty_string")]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "nonempty_string")]
    pub remark: Option<String>,
    #[serde(default, deserialize_with = "lenient_i32_list")]
    pub tagid_list: Vec<i32>,
    #[serde(default, deserialize_with = "nonempty_string")]
    pub subscribe_scene: Option<String>,
    /// Parametric QR scene id; WeChat sends 0 when there is none.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub qr_scene: Option<i64>,
    #[serde(default, deserialize_with = "nonempty_string")]
    pub qr_scene_str: Option<String>,
}

/// Today's quota of one API for this account (`openapi/quota/get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct Quota {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub daily_limit: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub used: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub remain: u64,
}

#[derive(Deserialize)]
pub(crate) struct UserGetResponse {
    #[serde(default, deserialize_with = "lenient_u64")]
    total: u64,
    // Quirk (§1.3): the end-of-list page and a zero-follower account carry
    // no `data` key at all; some servers send null.
    #[serde(default)]
    data: Option<OpenidList>,
    #[serde(default, deserialize_with = "nonempty_string")]
    next_openid: Option<String>,
}

impl UserGetResponse {
    /// The page, with the end-of-list rule applied (see `user_get_page`).
    pub(crate) fn into_page(self) -> FollowerPage {
        let mut openids = self.data.map(|data| data.openid).unwrap_or_default();
        // Whether the page was full is read before empty entries are
        // dropped: a full page with an empty entry is still followed.
        let full = openids.len() >= USER_GET_PAGE_MAX;
        let listed = openids.len();
        openids.retain(|openid| !openid.trim().is_empty());
        FollowerPage {
            total: self.total,
            next_openid: self.next_openid.filter(|_| full),
            empty_skipped: listed - openids.len(),
            openids,
        }
    }
}

#[derive(Deserialize)]
struct OpenidList {
    #[serde(default, deserialize_with = "string_list")]
    openid: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct BatchgetResponse {
    pub(crate) user_info_list: Vec<UserInfo>,
}

#[derive(Deserialize)]
pub(crate) struct QuotaResponse {
    pub(crate) quota: Quota,
}

impl OfficialAccountClient {
    /// A client for the account `account_id` (the job file's id, used in
    /// errors and logs) with its own AppSecret.
    pub fn new(
        http: WeChatHttp,
        account_id: impl Into<String>,
        appid: impl Into<String>,
        secret: Secret,
    ) -> Self {
        let appid: String = appid.into();
        let grant = StableGrant {
            appid: appid.clone(),
            secret,
        };
        OfficialAccountClient::with_grant(http, account_id.into(), appid, Box::new(grant))
    }

    /// A client whose token comes from `grant` (own AppSecret or, through
    /// `open_platform`, an authorizer token).
    pub(crate) fn with_grant(
        http: WeChatHttp,
        account_id: String,
        appid: String,
        grant: Box<dyn TokenGrant>,
    ) -> Self {
        let scope = Arc::new(AccountScope::new(
            account_id,
            http.config().requests_per_second,
        ));
        let tokens = Arc::new(TokenCache::new(http.clone(), scope.clone(), grant));
        OfficialAccountClient {
            http,
            scope,
            tokens,
            appid: appid.into(),
        }
    }

    pub fn account_id(&self) -> &str {
        &self.scope.account_id
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// The live counters of this account (shared by all clones).
    pub fn call_stats(&self) -> &Arc<CallStats> {
        &self.scope.stats
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.scope.stats.snapshot()
    }

    /// Fetches (or reuses) the access token: proves appid, secret and IP
    /// whitelist without reading any data (`validate --online`).
    pub async fn verify_credentials(&self) -> Result<(), ApiError> {
        self.tokens.lease().await.map(|_| ())
    }

    /// One page of followers, starting after `next_openid` (None: from the start).
    ///
    /// Quirk (wechat-api.md §1.3): the page carrying the last OpenIDs still
    /// returns `next_openid = <its last OpenID>`, and only the following call
    /// answers `count:0`, no `data`, `next_openid:""`. A page can only be
    /// followed by more when it is full, so `next_openid` is None when the
    /// page holds fewer than 10,000 OpenIDs or WeChat sent none: the caller
    /// saves the empty call except when the list length is an exact multiple
    /// of 10,000. `total` is not used to stop early: followers come and go
    /// while paging, and stopping at an old `total` could drop the tail.
    pub async fn user_get_page(&self, next_openid: Option<&str>) -> Result<FollowerPage, ApiError> {
        let mut request = Request::get(USER_GET_PATH, CallKind::DATA);
        if let Some(cursor) = next_openid.filter(|cursor| !cursor.is_empty()) {
            request.query.push(("next_openid", cursor.to_string()));
        }
        let response: UserGetResponse = self.call(&request).await?;
        let page = response.into_page();
        if page.empty_skipped > 0 {
            tracing::warn!(account = %self.scope.account_id, skipped = page.empty_skipped,
                "user/get listed empty OpenIDs; skipped them");
        }
        Ok(page)
    }

    /// Pages through the follower list one `user/get` call at a time, for
    /// callers that stream (see [`FollowerPager`]).
    pub fn followers(&self) -> FollowerPager {
        self.followers_from(None)
    }

    /// Like [`followers`](Self::followers), continuing after `cursor` (the
    /// `next_openid` of the last page a previous crawl saved).
    pub fn followers_from(&self, cursor: Option<String>) -> FollowerPager {
        FollowerPager {
            client: self.clone(),
            cursor,
            cursors: Cursors::default(),
            done: false,
        }
    }

    /// Every follower's OpenID, in WeChat's order, paging with
    /// [`FollowerPager`]. The list can shift while paging, so an OpenID may
    /// appear twice; deduplicate downstream.
    pub async fn list_followers(&self) -> Result<Vec<String>, ApiError> {
        let mut pager = self.followers();
        let mut openids = Vec::new();
        while let Some(page) = pager.next_page().await? {
            openids.extend(page.openids);
        }
        Ok(openids)
    }

    /// User info for up to [`BATCHGET_MAX`] OpenIDs, in one call
    /// (`POST /cgi-bin/user/info/batchget`, lang zh_CN). An empty slice makes
    /// no call. More than 100 is a caller bug: it panics in debug builds and
    /// returns a Fatal [`ApiError::InvalidRequest`] otherwise (WeChat would
    /// answer 40032).
    pub async fn batchget(&self, openids: &[String]) -> Result<Vec<UserInfo>, ApiError> {
        debug_assert!(
            openids.len() <= BATCHGET_MAX,
            "batchget takes at most 100 OpenIDs, got {}",
            openids.len()
        );
        if openids.len() > BATCHGET_MAX {
            return Err(ApiError::InvalidRequest {
                account_id: self.scope.account_id.clone(),
                endpoint: BATCHGET_PATH,
                detail: format!("batchget takes at most 100 OpenIDs, got {}", openids.len()),
            });
        }
        if openids.is_empty() {
            return Ok(Vec::new());
        }
        self.batchget_splitting(openids).await
    }

    /// One call; on 40032 ("invalid openid list size", which WeChat has
    /// answered for a list of exactly 100) the list is split in halves and
    /// each half asked for, down to single OpenIDs: a refusal that persists
    /// then fails the account, never the run.
    fn batchget_splitting<'a>(
        &'a self,
        openids: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<Vec<UserInfo>, ApiError>> {
        Box::pin(async move {
            match self.batchget_once(openids).await {
                Err(err) if err.errcode() == Some(40032) && openids.len() > 1 => {
                    tracing::warn!(account = %self.scope.account_id, size = openids.len(),
                        "user/info/batchget refused the list size (40032); asking for each half");
                    let (left, right) = openids.split_at(openids.len() / 2);
                    let mut users = self.batchget_splitting(left).await?;
                    users.extend(self.batchget_splitting(right).await?);
                    Ok(users)
                }
                other => other,
            }
        })
    }

    /// One `user/info/batchget` call, its rows as answered.
    async fn batchget_call(&self, openids: &[String]) -> Result<Vec<UserInfo>, ApiError> {
        let body = BatchgetRequest {
            user_list: openids
                .iter()
                .map(|openid| BatchgetUser {
                    openid,
                    lang: "zh_CN",
                })
                .collect(),
        };
        let request = Request::post_json(BATCHGET_PATH, CallKind::DATA, &body);
        let response: BatchgetResponse = self.call(&request).await?;
        Ok(response.user_info_list)
    }

    /// One call's rows matched to the OpenIDs asked for.
    async fn batchget_once(&self, openids: &[String]) -> Result<Vec<UserInfo>, ApiError> {
        let mut matched = MatchedRows::new(openids, self.batchget_call(openids).await?);
        if !matched.missing.is_empty() {
            // Asked again once, for the missing ones only.
            let missing: Vec<String> = matched
                .missing
                .iter()
                .map(|&i| openids[i].clone())
                .collect();
            matched.fill(openids, self.batchget_call(&missing).await?);
        }
        if matched.unasked + matched.repeated > 0 {
            tracing::warn!(account = %self.scope.account_id, unasked = matched.unasked,
                repeated = matched.repeated,
                "user/info/batchget answered rows for OpenIDs not asked for, or the same OpenID twice; kept one row per OpenID asked for");
        }
        if !matched.missing.is_empty() {
            return Err(ApiError::UnexpectedBody {
                account_id: self.scope.account_id.clone(),
                endpoint: BATCHGET_PATH,
                detail: format!(
                    "{} of the {} OpenIDs asked for are missing from the answer, also when asked again",
                    matched.missing.len(),
                    openids.len()
                ),
                attempts: 2,
            });
        }
        Ok(matched.rows.into_iter().flatten().collect())
    }

    /// Today's quota for `cgi_path` ("/cgi-bin/user/get": a path, no host).
    pub async fn quota(&self, cgi_path: &str) -> Result<Quota, ApiError> {
        let body = json!({ "cgi_path": cgi_path });
        let request = Request::post_json(QUOTA_PATH, CallKind::DATA, &body);
        let response: QuotaResponse = self.call(&request).await?;
        Ok(response.quota)
    }

    pub(super) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: &Request<'_>,
    ) -> Result<T, ApiError> {
        self.http
            .call(&self.scope, request, Some(self.tokens.as_ref()))
            .await
    }
}

/// A batchget answer matched against the OpenIDs asked for: one row per
/// OpenID, in the order asked; rows for OpenIDs not asked for and repeated
/// rows are dropped (and counted), never added to the snapshot.
struct MatchedRows {
    rows: Vec<Option<UserInfo>>,
    /// Indices (into the OpenIDs asked for) without a row.
    missing: Vec<usize>,
    unasked: usize,
    repeated: usize,
}

impl MatchedRows {
    fn new(openids: &[String], answer: Vec<UserInfo>) -> Self {
        let mut matched = MatchedRows {
            rows: vec![None; openids.len()],
            missing: Vec::new(),
            unasked: 0,
            repeated: 0,
        };
        matched.fill(openids, answer);
        matched
    }

    fn fill(&mut self, openids: &[String], answer: Vec<UserInfo>) {
        // An OpenID asked for twice is answered once (its first position).
        let mut index = std::collections::HashMap::with_capacity(openids.len());
        for (i, openid) in openids.iter().enumerate() {
            index.entry(openid.as_str()).or_insert(i);
        }
        for row in answer {
            match index.get(row.openid.as_str()) {
                None => self.unasked += 1,
                Some(&i) if self.rows[i].is_some() => self.repeated += 1,
                Some(&i) => self.rows[i] = Some(row),
            }
        }
        self.missing = (0..openids.len())
            .filter(|&i| self.rows[i].is_none() && index[openids[i].as_str()] == i)
            .collect();
    }
}

/// The follower list, page by page: follows `next_openid` until
/// [`OfficialAccountClient::user_get_page`] signals the end. A server that
/// hands back a next_openid it already gave (repeating a page) ends in
/// [`ApiError::RepeatedPage`], never in an endless loop.
#[derive(Debug)]
pub struct FollowerPager {
    client: OfficialAccountClient,
    cursor: Option<String>,
    cursors: Cursors,
    done: bool,
}

impl FollowerPager {
    /// The next page, or None once the list is over.
    pub async fn next_page(&mut self) -> Result<Option<FollowerPage>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let page = self.client.user_get_page(self.cursor.as_deref()).await?;
        let next = page.next_openid.as_deref();
        if let Err(repeated) = (self.cursors).page(next, self.client.account_id(), USER_GET_PATH) {
            self.done = true;
            return Err(repeated);
        }
        self.done = next.is_none();
        self.cursor = page.next_openid.clone();
        Ok(Some(page))
    }

    /// `user/get` calls made so far.
    pub fn pages(&self) -> usize {
        self.cursors.pages()
    }
}

pub(crate) const STABLE_TOKEN_PATH: &str = "/cgi-bin/stable_token";

/// An Official Account with its own AppSecret: `POST /cgi-bin/stable_token`
/// with `force_refresh:false` (the same token while it is valid).
struct StableGrant {
    appid: String,
    secret: Secret,
}

impl TokenGrant for StableGrant {
    fn fetch<'a>(
        &'a self,
        http: &'a WeChatHttp,
        scope: &'a Arc<AccountScope>,
    ) -> futures::future::BoxFuture<'a, Result<(AccessToken, Duration), ApiError>> {
        Box::pin(async move {
            let body = json!({
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret.expose(),
                "force_refresh": false,
            });
            let sensitive = [self.secret.expose()];
            let request = Request {
                sensitive: &sensitive,
                ..Request::post_json(STABLE_TOKEN_PATH, CallKind::TOKEN, &body)
            };
            let response: TokenResponse = http.call(scope, &request, None).await?;
            token::checked(http, scope, STABLE_TOKEN_PATH, response)
        })
    }
}
