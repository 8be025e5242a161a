//! WeCom (企业微信) customer contacts (wechat-api.md §4): the staff members
//! with customer contact, every (contact × staff member) relation through
//! `batch/get_by_user`, and `idconvert/unionid_to_external_userid` for apps
//! that receive no UnionID.
//!
//! WeCom differs from Official Accounts in ways the client must respect:
//! another host (`wecom_base_url`); `gettoken` with the corp id and secret in
//! the query string (repeat calls return the same token); every body carries
//! `"errcode":0`; `45009` is a frequency limit, not a daily quota (the
//! errcode table scopes it); `batch/get_by_user` takes at most 100 userids
//! and 100 rows per page, and its `next_cursor` spans the whole userid list.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;

use futures::{StreamExt, TryStreamExt};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::cursor::Cursors;
use super::errcode::CallKind;
use super::error::ApiError;
use super::http::{AccountScope, Request, TokenSource, WeChatHttp};
use super::stats::{CallStats, StatsSnapshot};
use super::token::{self, TokenCache, TokenGrant, TokenResponse};
use super::wire::{lenient_i32, lenient_opt_i64, nonempty_string, string_list};
use crate::secret::{AccessToken, Secret};

pub const FOLLOW_USER_LIST_PATH: &str = "/cgi-bin/externalcontact/get_follow_user_list";
pub const BATCH_GET_BY_USER_PATH: &str = "/cgi-bin/externalcontact/batch/get_by_user";
pub const UNIONID_TO_EXTERNAL_USERID_PATH: &str = "/cgi-bin/idconvert/unionid_to_external_userid";
pub const EXTERNAL_USERID_TO_PENDING_ID_PATH: &str =
    "/cgi-bin/idconvert/batch/external_userid_to_pending_id";
/// Most external_userids per `external_userid_to_pending_id` call.
pub const PENDING_IDS_MAX: usize = 100;

/// Most staff userids per `batch/get_by_user` call.
pub const BATCH_USERIDS_MAX: usize = 100;
/// Most rows per `batch/get_by_user` page (larger limits are clamped).
pub const BATCH_LIMIT_MAX: usize = 100;

/// How a WeCom app gets its corp token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WecomCredentials {
    /// A self-built or 代开发 app: `gettoken` with the app's own secret (the
    /// customer-contact secret, or the 代开发 app's secret).
    Secret(Secret),
    /// A third-party app (第三方应用): the provider's suite, then the corp's
    /// permanent code.
    Suite(SuiteCredentials),
}

/// A third-party app's provider credentials for one corp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteCredentials {
    pub suite_id: String,
    pub suite_secret: Secret,
    /// The latest `suite_ticket` WeCom pushed to the provider.
    pub suite_ticket: Secret,
    /// The corp's permanent code (from `get_permanent_code` at install).
    pub permanent_code: Secret,
    /// A ticket from a file is read again at every suite-token fetch.
    pub suite_ticket_origin: super::open_platform::Origin,
}

/// One WeCom corp's customer-contact client. Clones share the token, the
/// rate limiter and the counters.
#[derive(Clone)]
pub struct WeComClient {
    http: WeChatHttp,
    pub(super) scope: Arc<AccountScope>,
    tokens: Arc<TokenCache>,
    corpid: Arc<str>,
    /// Staff userids per `batch/get_by_user` call: 100 as documented,
    /// shrunk for the rest of the run when WeCom answers 40058 (it has
    /// answered "exceed max length 64").
    userids_per_call: Arc<AtomicUsize>,
}

impl fmt::Debug for WeComClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeComClient")
            .field("account_id", &self.scope.account_id)
            .field("corpid", &self.corpid)
            .finish_non_exhaustive()
    }
}

/// One relation between an external contact and a staff member who added
/// them: one element of `external_contact_list`. Names, avatars and genders
/// are never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRelation {
    /// `wm…` for WeChat users, `wo…` for WeCom users.
    pub external_userid: String,
    /// 1 WeChat user, 2 WeCom user.
    pub contact_type: i32,
    /// Only for type 1, and only when the corp bound a developer ID (and the
    /// app is self-built): third-party/代开发 apps never get it.
    pub unionid: Option<String>,
    /// The staff member's userid.
    pub follow_userid: String,
    /// Unix seconds when this staff member added the contact.
    pub createtime: Option<i64>,
    pub add_way: Option<i32>,
    /// The channel parameter of the 「联系我」 QR code or acquisition link.
    pub state: Option<String>,
    /// Corp tag ids (`et…`).
    pub tag_ids: Vec<String>,
    pub remark: Option<String>,
}

/// A corp's contacts, and the staff members whose contacts WeCom left out
/// (`fail_info.unlicensed_userid_list`: no interop licence).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contacts {
    pub relations: Vec<ContactRelation>,
    /// Staff userids, sorted, without duplicates (never logged: they are ids).
    pub unlicensed_staff: Vec<String>,
}

impl Contacts {
    /// Adds the contacts of another chunk of staff members.
    fn absorb(&mut self, other: Contacts) {
        self.relations.extend(other.relations);
        self.unlicensed_staff.extend(other.unlicensed_staff);
    }
}

/// Why a chunk of staff is asked for again, differently.
enum Retry {
    Api(ApiError),
    /// Relations without `follow_info.userid` for several staff members.
    Unattributed,
}

/// One page of `batch/get_by_user`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactPage {
    pub relations: Vec<ContactRelation>,
    /// None when the list of these userids is over.
    pub next_cursor: Option<String>,
    /// Staff members without an interop licence (service-provider apps):
    /// their contacts are missing from the answer.
    pub unlicensed_userids: Vec<String>,
    /// Relations whose `follow_info` had no `userid` (wechatpy's fixture
    /// and developers' reports show such answers) while several staff
    /// members were asked for: their `follow_userid` is empty.
    pub unattributed: usize,
}

#[derive(Deserialize)]
pub(crate) struct TokenlessList {
    #[serde(default, deserialize_with = "string_list")]
    follow_user: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct BatchResponse {
    #[serde(default)]
    external_contact_list: Option<Vec<BatchEntry>>,
    #[serde(default, deserialize_with = "nonempty_string")]
    next_cursor: Option<String>,
    #[serde(default)]
    fail_info: Option<FailInfo>,
}

#[derive(Deserialize)]
struct FailInfo {
    #[serde(default, deserialize_with = "string_list")]
    unlicensed_userid_list: Vec<String>,
}

#[derive(Deserialize)]
struct BatchEntry {
    external_contact: ExternalContact,
    follow_info: FollowInfo,
}

#[derive(Deserialize)]
struct ExternalContact {
    external_userid: String,
    #[serde(default, rename = "type", deserialize_with = "lenient_i32")]
    contact_type: i32,
    #[serde(default, deserialize_with = "nonempty_string")]
    unionid: Option<String>,
}

#[derive(Deserialize)]
struct FollowInfo {
    #[serde(default, deserialize_with = "nonempty_string")]
    userid: Option<String>,
    #[serde(default, deserialize_with = "nonempty_string")]
    remark: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    createtime: Option<i64>,
    #[serde(default, deserialize_with = "string_list")]
    tag_id: Vec<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    add_way: Option<i64>,
    #[serde(default, deserialize_with = "nonempty_string")]
    state: Option<String>,
}

/// What `idconvert/unionid_to_external_userid` says of one UnionID: the
/// corp's external_userid when the person is a customer, and a `pending_id`
/// (valid 90 days) that `external_userid_to_pending_id` gives back for the
/// person once they become one (wechat-api.md §4.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Conversion {
    #[serde(default, deserialize_with = "nonempty_string")]
    pub external_userid: Option<String>,
    #[serde(default, deserialize_with = "nonempty_string")]
    pub pending_id: Option<String>,
}

/// `idconvert/batch/external_userid_to_pending_id`: the pending_id of each
/// external_userid asked for whose UnionID was converted within 90 days.
#[derive(Deserialize)]
pub(crate) struct PendingIdResponse {
    #[serde(default)]
    result: Vec<PendingIdRow>,
}

#[derive(Deserialize)]
struct PendingIdRow {
    #[serde(default, deserialize_with = "nonempty_string")]
    external_userid: Option<String>,
    #[serde(default, deserialize_with = "nonempty_string")]
    pending_id: Option<String>,
}

impl WeComClient {
    /// A client for the corp `corpid` with its customer-contact secret.
    pub fn new(
        http: WeChatHttp,
        account_id: impl Into<String>,
        corpid: impl Into<String>,
        secret: Secret,
    ) -> Self {
        WeComClient::with_credentials(http, account_id, corpid, WecomCredentials::Secret(secret))
    }

    /// A client for the corp `corpid` with either kind of credentials.
    pub fn with_credentials(
        http: WeChatHttp,
        account_id: impl Into<String>,
        corpid: impl Into<String>,
        credentials: WecomCredentials,
    ) -> Self {
        let scope = Arc::new(AccountScope::new(
            account_id.into(),
            http.config().requests_per_second,
        ));
        let corpid: String = corpid.into();
        let grant: Box<dyn TokenGrant> = match credentials {
            WecomCredentials::Secret(secret) => Box::new(CorpSecretGrant {
                corpid: corpid.clone(),
                secret,
            }),
            WecomCredentials::Suite(suite) => Box::new(SuiteGrant {
                corpid: corpid.clone(),
                suite,
            }),
        };
        let tokens = Arc::new(TokenCache::new(http.clone(), scope.clone(), grant));
        WeComClient {
            http,
            scope,
            tokens,
            corpid: corpid.into(),
            userids_per_call: Arc::new(AtomicUsize::new(BATCH_USERIDS_MAX)),
        }
    }

    pub fn account_id(&self) -> &str {
        &self.scope.account_id
    }

    pub fn call_stats(&self) -> &Arc<CallStats> {
        &self.scope.stats
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.scope.stats.snapshot()
    }

    /// Fetches (or reuses) the access token: proves corpid and secret.
    pub async fn verify_credentials(&self) -> Result<(), ApiError> {
        self.tokens.lease().await.map(|_| ())
    }

    /// The staff members with customer contact enabled, within the app's
    /// visibility (`get_follow_user_list`).
    pub async fn follow_users(&self) -> Result<Vec<String>, ApiError> {
        let request = Request::get(FOLLOW_USER_LIST_PATH, CallKind::WECOM_DATA);
        let response: TokenlessList = self.call(&request).await?;
        let mut seen = HashSet::new();
        Ok(response
            .follow_user
            .into_iter()
            .filter(|userid| seen.insert(userid.clone()))
            .collect())
    }

    /// One page of the relations of up to [`BATCH_USERIDS_MAX`] staff
    /// members, starting at `cursor` (None: the first page).
    pub async fn batch_get_by_user(
        &self,
        userids: &[String],
        cursor: Option<&str>,
    ) -> Result<ContactPage, ApiError> {
        if userids.is_empty() || userids.len() > BATCH_USERIDS_MAX {
            return Err(ApiError::InvalidRequest {
                account_id: self.scope.account_id.clone(),
                endpoint: BATCH_GET_BY_USER_PATH,
                detail: format!(
                    "batch/get_by_user takes 1 to 100 userids, got {}",
                    userids.len()
                ),
            });
        }
        let body = json!({
            "userid_list": userids,
            "cursor": cursor.unwrap_or(""),
            "limit": BATCH_LIMIT_MAX,
        });
        let request = Request::post_json(BATCH_GET_BY_USER_PATH, CallKind::WECOM_DATA, &body);
        let response: BatchResponse = self.call(&request).await?;
        // Without `follow_info.userid`, a relation belongs to the one staff
        // member asked for; asked for several, it cannot be attributed here.
        let only = (userids.len() == 1).then(|| userids[0].clone());
        let mut unattributed = 0;
        let relations = response
            .external_contact_list
            .unwrap_or_default()
            .into_iter()
            .map(|entry| ContactRelation {
                external_userid: entry.external_contact.external_userid,
                contact_type: entry.external_contact.contact_type,
                unionid: entry.external_contact.unionid,
                follow_userid: match (entry.follow_info.userid, &only) {
                    (Some(userid), _) => userid,
                    (None, Some(only)) => only.clone(),
                    (None, None) => {
                        unattributed += 1;
                        String::new()
                    }
                },
                createtime: entry.follow_info.createtime,
                add_way: entry
                    .follow_info
                    .add_way
                    .and_then(|n| i32::try_from(n).ok()),
                state: entry.follow_info.state,
                tag_ids: entry.follow_info.tag_id,
                remark: entry.follow_info.remark,
            })
            .collect();
        Ok(ContactPage {
            relations,
            unattributed,
            next_cursor: response.next_cursor,
            unlicensed_userids: response
                .fail_info
                .map(|info| info.unlicensed_userid_list)
                .unwrap_or_default(),
        })
    }

    /// Every relation of every staff member: the staff list in chunks of
    /// 100 (`concurrency` chunks in flight), each chunk paged through its
    /// `next_cursor`. A contact added by several staff members appears once
    /// per staff member. A cursor handed back twice ends in
    /// [`ApiError::RepeatedPage`], never in an endless loop.
    pub async fn contacts(&self, concurrency: usize) -> Result<Contacts, ApiError> {
        let staff = self.follow_users().await?;
        let chunks: Vec<Contacts> = futures::stream::iter(staff.chunks(BATCH_USERIDS_MAX))
            .map(|chunk| self.contacts_of(chunk))
            .buffered(concurrency.max(1))
            // Boxed: `Send` is proven here, where the lifetimes are
            // concrete (rustc cannot see it through the closure from outside).
            .boxed()
            .try_collect()
            .await?;
        let mut contacts = Contacts::default();
        for chunk in chunks {
            contacts.absorb(chunk);
        }
        contacts.unlicensed_staff.sort();
        contacts.unlicensed_staff.dedup();
        Ok(contacts)
    }

    /// The relations of `userids`, adapting to what WeCom really answers:
    /// - more userids than WeCom takes now (40058): split, and the smaller
    ///   size is kept for the rest of the run;
    /// - relations without `follow_info.userid`: asked again one staff
    ///   member at a time, so each relation is attributed, never guessed;
    /// - a staff member gone since the list was read (60111): asked one at
    ///   a time, and the one WeCom no longer knows has no contacts;
    /// - 84061 ("not external contact"): no contacts.
    fn contacts_of<'a>(
        &'a self,
        userids: &'a [String],
    ) -> BoxFuture<'a, Result<Contacts, ApiError>> {
        Box::pin(async move {
            let size = self.userids_per_call.load(Ordering::Relaxed);
            if userids.len() > size {
                return self.contacts_split(userids, size).await;
            }
            match self.contacts_paged(userids).await {
                Ok(contacts) => Ok(contacts),
                Err(Retry::Unattributed) => {
                    tracing::warn!(account = %self.scope.account_id, staff = userids.len(),
                        "batch/get_by_user answered relations without follow_info.userid; asking one staff member at a time");
                    self.contacts_split(userids, 1).await
                }
                Err(Retry::Api(err)) if err.errcode() == Some(40058) && userids.len() > 1 => {
                    let smaller = (userids.len() / 2).max(1);
                    self.userids_per_call.fetch_min(smaller, Ordering::Relaxed);
                    tracing::warn!(account = %self.scope.account_id, from = userids.len(), to = smaller,
                        "batch/get_by_user refused the userid_list length (40058); asking for fewer staff members per call from now on");
                    self.contacts_split(userids, smaller).await
                }
                Err(Retry::Api(err)) if err.errcode() == Some(60111) && userids.len() > 1 => {
                    self.contacts_split(userids, 1).await
                }
                Err(Retry::Api(err)) if err.errcode() == Some(60111) => {
                    tracing::warn!(account = %self.scope.account_id,
                        "a staff member with customer contact is no longer known to WeCom (60111: left since the staff list was read); no contacts for them");
                    Ok(Contacts::default())
                }
                Err(Retry::Api(err)) if err.errcode() == Some(84061) => Ok(Contacts::default()),
                Err(Retry::Api(err)) => Err(err),
            }
        })
    }

    async fn contacts_split(&self, userids: &[String], size: usize) -> Result<Contacts, ApiError> {
        let mut contacts = Contacts::default();
        for chunk in userids.chunks(size.max(1)) {
            contacts.absorb(self.contacts_of(chunk).await?);
        }
        Ok(contacts)
    }

    /// Every page of `userids`, or why the chunk must be asked differently.
    async fn contacts_paged(&self, userids: &[String]) -> Result<Contacts, Retry> {
        let mut relations = Vec::new();
        let mut unlicensed = Vec::new();
        let mut cursor: Option<String> = None;
        let mut cursors = Cursors::default();
        loop {
            let page = self
                .batch_get_by_user(userids, cursor.as_deref())
                .await
                .map_err(Retry::Api)?;
            if page.unattributed > 0 {
                return Err(Retry::Unattributed);
            }
            let next = page.next_cursor.as_deref();
            (cursors.page(next, &self.scope.account_id, BATCH_GET_BY_USER_PATH))
                .map_err(Retry::Api)?;
            unlicensed.extend(page.unlicensed_userids);
            relations.extend(page.relations);
            match page.next_cursor {
                None => {
                    return Ok(Contacts {
                        relations,
                        unlicensed_staff: unlicensed,
                    })
                }
                Some(next) => cursor = Some(next),
            }
        }
    }

    /// The corp's `external_userid` of the person behind (`unionid`,
    /// `openid`), both from the same Official Account or Mini Program
    /// (`idconvert/unionid_to_external_userid`, subject_type 0: the account
    /// belongs to the corp), and the person's `pending_id` (the only id when
    /// the person is not a customer of the corp).
    pub async fn unionid_to_external_userid(
        &self,
        unionid: &str,
        openid: &str,
    ) -> Result<Conversion, ApiError> {
        let body = json!({ "unionid": unionid, "openid": openid, "subject_type": 0 });
        let request =
            Request::post_json(UNIONID_TO_EXTERNAL_USERID_PATH, CallKind::WECOM_DATA, &body);
        self.call(&request).await
    }

    /// (external_userid, pending_id) for those of `external_userids` (at
    /// most [`PENDING_IDS_MAX`]) whose UnionID this corp converted within
    /// the pending_id's 90 days (`idconvert/batch/external_userid_to_pending_id`).
    /// Rows for ids not asked for are dropped.
    pub async fn external_userid_to_pending_id(
        &self,
        external_userids: &[String],
    ) -> Result<Vec<(String, String)>, ApiError> {
        let body = json!({ "external_userid": external_userids });
        let request = Request::post_json(
            EXTERNAL_USERID_TO_PENDING_ID_PATH,
            CallKind::WECOM_DATA,
            &body,
        );
        let response: PendingIdResponse = self.call(&request).await?;
        let asked: std::collections::HashSet<&str> =
            external_userids.iter().map(String::as_str).collect();
        Ok(response
            .result
            .into_iter()
            .filter_map(|row| Some((row.external_userid?, row.pending_id?)))
            .filter(|(external_userid, _)| asked.contains(external_userid.as_str()))
            .collect())
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

pub(crate) const GETTOKEN_PATH: &str = "/cgi-bin/gettoken";
pub(crate) const SUITE_TOKEN_PATH: &str = "/cgi-bin/service/get_suite_token";
pub(crate) const CORP_TOKEN_PATH: &str = "/cgi-bin/service/get_corp_token";

/// A self-built or 代开发 app's own secret: `GET /cgi-bin/gettoken` on the
/// WeCom host.
struct CorpSecretGrant {
    corpid: String,
    secret: Secret,
}

impl TokenGrant for CorpSecretGrant {
    fn fetch<'a>(
        &'a self,
        http: &'a WeChatHttp,
        scope: &'a Arc<AccountScope>,
    ) -> BoxFuture<'a, Result<(AccessToken, Duration), ApiError>> {
        Box::pin(async move {
            // The secret travels in the query string here (WeCom's only
            // form): the URL never reaches an error or a log, and the value
            // is scrubbed from any errmsg.
            let sensitive = [self.secret.expose()];
            let mut request = Request {
                sensitive: &sensitive,
                ..Request::get(GETTOKEN_PATH, CallKind::WECOM_TOKEN)
            };
            request.query.push(("corpid", self.corpid.clone()));
            request
                .query
                .push(("corpsecret", self.secret.expose().to_string()));
            let response: TokenResponse = http.call(scope, &request, None).await?;
            token::checked(http, scope, GETTOKEN_PATH, response)
        })
    }
}

/// A third-party app (第三方应用): the provider's suite token, then
/// `service/get_corp_token` with the corp's permanent code.
struct SuiteGrant {
    corpid: String,
    suite: SuiteCredentials,
}

/// `{"suite_access_token":"...","expires_in":7200}`. No Debug: a token.
#[derive(Deserialize)]
struct SuiteTokenResponse {
    #[serde(default)]
    suite_access_token: String,
}

impl SuiteGrant {
    /// The provider's suite token (`service/get_suite_token`), fetched with
    /// each corp token (both live 2 hours). A suite ticket from a file is
    /// read again each time: WeCom pushes a new one every 10 minutes.
    async fn suite_token(
        &self,
        http: &WeChatHttp,
        scope: &AccountScope,
    ) -> Result<AccessToken, ApiError> {
        let suite = &self.suite;
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
        let response: SuiteTokenResponse = http.call(scope, &request, None).await?;
        if response.suite_access_token.is_empty() {
            return Err(ApiError::UnexpectedBody {
                account_id: scope.account_id.clone(),
                endpoint: SUITE_TOKEN_PATH,
                detail: "empty suite_access_token".to_string(),
                attempts: 1,
            });
        }
        Ok(AccessToken::new(response.suite_access_token))
    }
}

impl TokenGrant for SuiteGrant {
    fn fetch<'a>(
        &'a self,
        http: &'a WeChatHttp,
        scope: &'a Arc<AccountScope>,
    ) -> BoxFuture<'a, Result<(AccessToken, Duration), ApiError>> {
        Box::pin(async move {
            let suite_token = self.suite_token(http, scope).await?;
            let body = json!({
                "auth_corpid": self.corpid,
                "permanent_code": self.suite.permanent_code.expose(),
            });
            let sensitive = [suite_token.expose(), self.suite.permanent_code.expose()];
            let mut request = Request {
                sensitive: &sensitive,
                ..Request::post_json(CORP_TOKEN_PATH, CallKind::WECOM_TOKEN, &body)
            };
            request
                .query
                .push(("suite_access_token", suite_token.expose().to_string()));
            let response: TokenResponse = http.call(scope, &request, None).await?;
            token::checked(http, scope, CORP_TOKEN_PATH, response)
        })
    }
}
