//! The endpoints, answering as WeChat does: HTTP 200 with
//! `{"errcode":N,"errmsg":"... rid: ..."}` for every error, success bodies
//! without `errcode`, and the real paging and batch rules
//! (wechat-api.md §0–1). The Official Account endpoints are here; the
//! third-party platform's token endpoints are in `handlers_platform`, the
//! WeCom ones in `handlers_wecom`.
//!
//! Handlers are synchronous functions from a request to a [`Reply`]; the
//! server wraps them with faults, latency, quota counting and statistics.

use std::borrow::Cow;

use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::counts;
use super::handlers_platform;
use super::handlers_wecom;
use super::population::Population;
use super::profile::UserInfo;
use super::state::{lock, SimState};
use super::tokens::{Issued, TokenCheck};

/// The endpoints the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Token,
    StableToken,
    UserGet,
    UserInfo,
    BatchGet,
    QuotaGet,
    ComponentToken,
    AuthorizerToken,
    WeComToken,
    FollowUserList,
    BatchGetByUser,
    IdConvert,
    PendingId,
    TagsGet,
    UserCumulate,
    UserSummary,
    GroupChatList,
    GroupChatGet,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 18] = [
        Endpoint::Token,
        Endpoint::StableToken,
        Endpoint::UserGet,
        Endpoint::UserInfo,
        Endpoint::BatchGet,
        Endpoint::QuotaGet,
        Endpoint::ComponentToken,
        Endpoint::AuthorizerToken,
        Endpoint::WeComToken,
        Endpoint::FollowUserList,
        Endpoint::BatchGetByUser,
        Endpoint::IdConvert,
        Endpoint::PendingId,
        Endpoint::TagsGet,
        Endpoint::UserCumulate,
        Endpoint::UserSummary,
        Endpoint::GroupChatList,
        Endpoint::GroupChatGet,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Token => "/cgi-bin/token",
            Endpoint::StableToken => "/cgi-bin/stable_token",
            Endpoint::UserGet => "/cgi-bin/user/get",
            Endpoint::UserInfo => "/cgi-bin/user/info",
            Endpoint::BatchGet => "/cgi-bin/user/info/batchget",
            Endpoint::QuotaGet => "/cgi-bin/openapi/quota/get",
            Endpoint::ComponentToken => "/cgi-bin/component/api_component_token",
            Endpoint::AuthorizerToken => "/cgi-bin/component/api_authorizer_token",
            Endpoint::WeComToken => "/cgi-bin/gettoken",
            Endpoint::FollowUserList => "/cgi-bin/externalcontact/get_follow_user_list",
            Endpoint::BatchGetByUser => "/cgi-bin/externalcontact/batch/get_by_user",
            Endpoint::IdConvert => "/cgi-bin/idconvert/unionid_to_external_userid",
            Endpoint::PendingId => "/cgi-bin/idconvert/batch/external_userid_to_pending_id",
            Endpoint::TagsGet => "/cgi-bin/tags/get",
            Endpoint::UserCumulate => "/datacube/getusercumulate",
            Endpoint::UserSummary => "/datacube/getusersummary",
            Endpoint::GroupChatList => "/cgi-bin/externalcontact/groupchat/list",
            Endpoint::GroupChatGet => "/cgi-bin/externalcontact/groupchat/get",
        }
    }

    /// Whether the endpoint takes a POST with a JSON body.
    pub(crate) fn is_post(self) -> bool {
        !matches!(
            self,
            Endpoint::Token
                | Endpoint::UserGet
                | Endpoint::UserInfo
                | Endpoint::WeComToken
                | Endpoint::FollowUserList
                | Endpoint::TagsGet
        )
    }

    pub(crate) fn issues_tokens(self) -> bool {
        matches!(
            self,
            Endpoint::Token
                | Endpoint::StableToken
                | Endpoint::ComponentToken
                | Endpoint::AuthorizerToken
                | Endpoint::WeComToken
        )
    }

    /// Served by the WeCom host: its bodies always carry `errcode`, its
    /// errmsg a hint instead of a rid.
    pub(crate) fn is_wecom(self) -> bool {
        matches!(
            self,
            Endpoint::WeComToken
                | Endpoint::FollowUserList
                | Endpoint::BatchGetByUser
                | Endpoint::IdConvert
                | Endpoint::PendingId
                | Endpoint::GroupChatList
                | Endpoint::GroupChatGet
        )
    }
}

/// The error codes the simulator answers with (wechat-api.md §2).
pub(crate) mod errcode {
    pub const BUSY: i64 = -1;
    pub const INVALID_CREDENTIAL: i64 = 40001;
    pub const INVALID_GRANT_TYPE: i64 = 40002;
    pub const INVALID_OPENID: i64 = 40003;
    pub const INVALID_APPID: i64 = 40013;
    pub const INVALID_OPENID_LIST_SIZE: i64 = 40032;
    pub const INVALID_APPSECRET: i64 = 40125;
    pub const MISSING_ACCESS_TOKEN: i64 = 41001;
    pub const MISSING_APPID: i64 = 41002;
    pub const MISSING_SECRET: i64 = 41004;
    pub const MISSING_OPENID: i64 = 41009;
    pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
    pub const DAILY_QUOTA: i64 = 45009;
    pub const MINUTE_QUOTA: i64 = 45011;
    pub const DATA_FORMAT: i64 = 47001;
    pub const API_UNAUTHORIZED: i64 = 48001;
    pub const DATE_FORMAT: i64 = 61500;
    pub const DATE_RANGE: i64 = 61501;
    pub const CGI_PATH_FORMAT: i64 = 76003;
    pub const CGI_PATH_NOT_FOUND: i64 = 76021;
    pub const INVALID_ACCESS_TOKEN: i64 = 40014;
    pub const INVALID_PARAMETER: i64 = 40058;
    pub const CHAT_NOT_FOUND: i64 = 40050;
    pub const API_FORBIDDEN: i64 = 48002;
    pub const ACCOUNT_NOT_AUTHORIZED: i64 = 61003;
    pub const TICKET_INVALID: i64 = 61006;
    pub const INVALID_COMPONENT: i64 = 61011;
    pub const REFRESH_TOKEN_INVALID: i64 = 61023;
}

fn errmsg(code: i64) -> &'static str {
    match code {
        errcode::BUSY => "system error",
        errcode::INVALID_CREDENTIAL => "invalid credential, access_token is invalid or not latest",
        errcode::INVALID_GRANT_TYPE => "invalid grant_type",
        errcode::INVALID_OPENID => "invalid openid",
        errcode::INVALID_APPID => "invalid appid",
        errcode::INVALID_OPENID_LIST_SIZE => "invalid openid list size",
        errcode::INVALID_APPSECRET => "invalid appsecret",
        errcode::MISSING_ACCESS_TOKEN => "access_token missing",
        errcode::MISSING_APPID => "appid missing",
        errcode::MISSING_SECRET => "appsecret missing",
        errcode::MISSING_OPENID => "missing openid",
        errcode::ACCESS_TOKEN_EXPIRED => "access_token expired",
        errcode::DAILY_QUOTA => "reach max api daily quota limit",
        errcode::MINUTE_QUOTA => "api minute-quota reach limit mustslower retry next minute",
        errcode::DATA_FORMAT => "data format error",
        errcode::API_UNAUTHORIZED => "api unauthorized",
        errcode::DATE_FORMAT => "date format error",
        errcode::DATE_RANGE => "date range error",
        errcode::CGI_PATH_FORMAT => "invalid cgi_path, it should start with /",
        errcode::CGI_PATH_NOT_FOUND => "cgi_path not found, please check",
        errcode::INVALID_ACCESS_TOKEN => "invalid access_token",
        errcode::INVALID_PARAMETER => "invalid parameter",
        errcode::API_FORBIDDEN => "api forbidden",
        errcode::ACCOUNT_NOT_AUTHORIZED => "access_token is not authorized by the component",
        errcode::TICKET_INVALID => "component ticket is invalid",
        errcode::INVALID_COMPONENT => "invalid component",
        errcode::REFRESH_TOKEN_INVALID => "refresh_token is invalid",
        _ => "unknown error",
    }
}

/// A request id in WeChat's shape (`5f8539c4-6220bb17-745f8a17`).
fn rid() -> String {
    let mut rng = rand::rng();
    format!(
        "{:08x}-{:08x}-{:08x}",
        rng.random::<u32>(),
        rng.random::<u32>(),
        rng.random::<u32>()
    )
}

/// A parsed request to one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    pub(crate) endpoint: Endpoint,
    query: Vec<(String, String)>,
    body: Bytes,
}

impl ApiRequest {
    pub(crate) fn new(endpoint: Endpoint, raw_query: Option<&str>, body: Bytes) -> ApiRequest {
        let query = url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        ApiRequest {
            endpoint,
            query,
            body,
        }
    }

    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as a JSON object; anything else is WeChat's `47001`.
    pub(crate) fn json_body(&self) -> Result<serde_json::Map<String, Value>, Reply> {
        match serde_json::from_slice(&self.body) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(Reply::error(errcode::DATA_FORMAT)),
        }
    }
}

/// A JSON answer, its errcode (0 for success) and the account it was for.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) body: String,
    pub(crate) errcode: i64,
    pub(crate) account: Option<usize>,
}

impl Reply {
    pub(crate) fn ok(body: String, account: usize) -> Reply {
        Reply {
            body,
            errcode: 0,
            account: Some(account),
        }
    }

    pub(crate) fn error(code: i64) -> Reply {
        let body = json!({"errcode": code, "errmsg": format!("{} rid: {}", errmsg(code), rid())});
        Reply {
            body: body.to_string(),
            errcode: code,
            account: None,
        }
    }

    /// A WeCom error: the errmsg carries a hint, the caller's IP and a
    /// pointer to the error-code page instead of a rid.
    pub(crate) fn wecom_error(code: i64) -> Reply {
        let errmsg = format!(
            "{}, hint: [{}], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}",
            errmsg(code),
            rid()
        );
        Reply {
            body: json!({"errcode": code, "errmsg": errmsg}).to_string(),
            errcode: code,
            account: None,
        }
    }

    /// The error `code` in the format of `endpoint`'s host.
    pub(crate) fn error_for(endpoint: Endpoint, code: i64) -> Reply {
        if endpoint.is_wecom() {
            Reply::wecom_error(code)
        } else {
            Reply::error(code)
        }
    }

    pub(crate) fn serialized(value: &impl Serialize, account: usize) -> Reply {
        match serde_json::to_string(value) {
            Ok(body) => Reply::ok(body, account),
            Err(_) => Reply::error(errcode::BUSY),
        }
    }
}

/// Answers one request (no faults, no latency: see the server).
pub(crate) fn handle(state: &SimState, request: &ApiRequest) -> Reply {
    let result = match request.endpoint {
        Endpoint::Token => classic_token(state, request),
        Endpoint::StableToken => stable_token(state, request),
        Endpoint::UserGet => user_get(state, request),
        Endpoint::UserInfo => user_info(state, request),
        Endpoint::BatchGet => batchget(state, request),
        Endpoint::QuotaGet => quota_get(state, request),
        Endpoint::ComponentToken => handlers_platform::component_token(state, request),
        Endpoint::AuthorizerToken => handlers_platform::authorizer_token(state, request),
        Endpoint::WeComToken => handlers_wecom::gettoken(state, request),
        Endpoint::FollowUserList => handlers_wecom::follow_user_list(state, request),
        Endpoint::BatchGetByUser => handlers_wecom::batch_get_by_user(state, request),
        Endpoint::IdConvert => handlers_wecom::unionid_to_external_userid(state, request),
        Endpoint::PendingId => handlers_wecom::external_userid_to_pending_id(state, request),
        Endpoint::TagsGet => counts::tags_get(state, request),
        Endpoint::UserCumulate => counts::user_cumulate(state, request),
        Endpoint::UserSummary => counts::user_summary(state, request),
        Endpoint::GroupChatList => handlers_wecom::groupchat_list(state, request),
        Endpoint::GroupChatGet => handlers_wecom::groupchat_get(state, request),
    };
    result.unwrap_or_else(|error| error)
}

/// The Official Account behind the request's `access_token`, if it is
/// valid, is an Official Account's (own or authorizer token) and the
/// endpoint's daily quota is not used up.
pub(crate) fn authorize(state: &SimState, request: &ApiRequest) -> Result<usize, Reply> {
    let check = lock(&state.tokens).check(request.param("access_token"));
    match check {
        TokenCheck::Valid(account) if account >= state.official_account_count() => {
            Err(Reply::error(errcode::INVALID_CREDENTIAL))
        }
        TokenCheck::Valid(account) => {
            if state.quota_exhausted(account, request.endpoint.path()) {
                Err(Reply::error(errcode::DAILY_QUOTA))
            } else {
                Ok(account)
            }
        }
        TokenCheck::Missing => Err(Reply::error(errcode::MISSING_ACCESS_TOKEN)),
        TokenCheck::Invalid => Err(Reply::error(errcode::INVALID_CREDENTIAL)),
        TokenCheck::Expired => Err(Reply::error(errcode::ACCESS_TOKEN_EXPIRED)),
    }
}

/// Checks the credentials of a token request; returns the account.
fn token_account(
    state: &SimState,
    request: &ApiRequest,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<usize, Reply> {
    if grant_type != Some("client_credential") {
        return Err(Reply::error(errcode::INVALID_GRANT_TYPE));
    }
    let appid = appid
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Reply::error(errcode::MISSING_APPID))?;
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Reply::error(errcode::MISSING_SECRET))?;
    let account = state
        .account_by_appid(appid)
        .ok_or_else(|| Reply::error(errcode::INVALID_APPID))?;
    if state.scenario.accounts[account].secret != secret {
        return Err(Reply::error(errcode::INVALID_APPSECRET));
    }
    if state.quota_exhausted(account, request.endpoint.path()) {
        return Err(Reply::error(errcode::DAILY_QUOTA));
    }
    Ok(account)
}

pub(crate) fn token_reply(state: &SimState, account: usize, issued: Issued) -> Reply {
    if issued.new {
        state.count_token_issued(account);
    }
    let body = json!({"access_token": issued.access_token, "expires_in": issued.expires_in});
    Reply::ok(body.to_string(), account)
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid=..&secret=..`
fn classic_token(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = token_account(
        state,
        request,
        request.param("grant_type"),
        request.param("appid"),
        request.param("secret"),
    )?;
    let issued = lock(&state.tokens).issue_classic(account);
    Ok(token_reply(state, account, issued))
}

/// `POST /cgi-bin/stable_token` with a JSON body (form bodies get `47001`).
fn stable_token(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let body = request.json_body()?;
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let account = token_account(
        state,
        request,
        field("grant_type"),
        field("appid"),
        field("secret"),
    )?;
    let force_refresh = body
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let issued = lock(&state.tokens).issue_stable(account, force_refresh);
    Ok(token_reply(state, account, issued))
}

/// `GET /cgi-bin/user/get?access_token=..&next_openid=..`
///
/// WeChat quirk: the page carrying the last OpenIDs still returns
/// `next_openid` = its last OpenID; only the call after it returns
/// `{"total":T,"count":0,"next_openid":""}`, with no `data` key at all (as
/// does an account with no followers). SDKs have looped or crashed on this.
fn user_get(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = authorize(state, request)?;
    let population = state.population();
    let followers = population
        .followers
        .get(account)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let start = match request.param("next_openid").filter(|o| !o.is_empty()) {
        None => 0,
        Some(openid) => {
            let person = state
                .world
                .person_of_openid(account, openid)
                .ok_or_else(|| Reply::error(errcode::INVALID_OPENID))?;
            // The list may have changed since that page (set_day): continue
            // after where that person is or would be.
            followers.partition_point(|&p| p <= person)
        }
    };
    let page = &followers[start.min(followers.len())..];
    let page = &page[..page.len().min(state.scenario.page_size)];
    let total = followers.len();
    if page.is_empty() {
        let body = format!(r#"{{"total":{total},"count":0,"next_openid":""}}"#);
        return Ok(Reply::ok(body, account));
    }
    let codec = &state.world.openids[account];
    let mut body = String::with_capacity(page.len() * 31 + 96);
    body.push_str(&format!(
        r#"{{"total":{total},"count":{},"data":{{"openid":["#,
        page.len()
    ));
    let mut last = String::new();
    for (i, &person) in page.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        last = codec.encode(person);
        body.push('"');
        body.push_str(&last);
        body.push('"');
    }
    body.push_str(&format!(r#"]}},"next_openid":"{last}"}}"#));
    Ok(Reply::ok(body, account))
}

/// The profile WeChat returns for one OpenID of `account`: the full object for
/// a follower, `{"subscribe":0,"openid":..}` for someone who left during the
/// crawl (or never followed).
fn profile(
    state: &SimState,
    population: &Population,
    account: usize,
    person: u32,
    openid: String,
) -> UserInfo {
    let following = population.is_listed(account, person)
        && !state.world.models[account].leaves_during_crawl(person, population.day);
    if following {
        UserInfo::follower(&state.world, account, person, openid)
    } else {
        UserInfo::unsubscribed(openid)
    }
}

/// `GET /cgi-bin/user/info?access_token=..&openid=..&lang=..`
fn user_info(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = authorize(state, request)?;
    let openid = request
        .param("openid")
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Reply::error(errcode::MISSING_OPENID))?;
    let person = state
        .world
        .person_of_openid(account, openid)
        .ok_or_else(|| Reply::error(errcode::INVALID_OPENID))?;
    let info = profile(
        state,
        &state.population(),
        account,
        person,
        openid.to_string(),
    );
    Ok(Reply::serialized(&info, account))
}

/// At most 100 OpenIDs per `batchget` call.
const BATCHGET_MAX: usize = 100;

#[derive(Serialize)]
struct BatchGetBody {
    user_info_list: Vec<UserInfo>,
}

/// `POST /cgi-bin/user/info/batchget?access_token=..` with
/// `{"user_list":[{"openid":..,"lang":..}, ...]}`: one bad OpenID fails the
/// whole call with `40003`; answers come back in request order.
fn batchget(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = authorize(state, request)?;
    let openids = batchget_openids(&request.body)?;
    if !(1..=BATCHGET_MAX).contains(&openids.len()) {
        return Err(Reply::error(errcode::INVALID_OPENID_LIST_SIZE));
    }
    let mut people = Vec::with_capacity(openids.len());
    for openid in openids {
        let person = state
            .world
            .person_of_openid(account, &openid)
            .ok_or_else(|| Reply::error(errcode::INVALID_OPENID))?;
        people.push((person, openid));
    }
    let population = state.population();
    let user_info_list = people
        .into_iter()
        .map(|(person, openid)| profile(state, &population, account, person, openid.into_owned()))
        .collect();
    Ok(Reply::serialized(&BatchGetBody { user_info_list }, account))
}

/// A well-formed batchget body, read in one typed pass (the simulator
/// shares the benchmark's cores with the job it serves).
#[derive(Deserialize)]
struct BatchGetRequest<'a> {
    #[serde(borrow)]
    user_list: Vec<BatchGetUser<'a>>,
}

#[derive(Deserialize)]
struct BatchGetUser<'a> {
    #[serde(borrow)]
    openid: Cow<'a, str>,
}

/// The OpenIDs of a batchget body. A body of another shape is read as a
/// `Value` to answer what WeChat answers: not an object → 47001, no
/// `user_list` array → 40032, an entry without a string `openid` → 40003.
fn batchget_openids(body: &[u8]) -> Result<Vec<Cow<'_, str>>, Reply> {
    if let Ok(typed) = serde_json::from_slice::<BatchGetRequest>(body) {
        return Ok(typed.user_list.into_iter().map(|u| u.openid).collect());
    }
    let body = match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => object,
        _ => return Err(Reply::error(errcode::DATA_FORMAT)),
    };
    let user_list = body
        .get("user_list")
        .and_then(Value::as_array)
        .filter(|list| (1..=BATCHGET_MAX).contains(&list.len()))
        .ok_or_else(|| Reply::error(errcode::INVALID_OPENID_LIST_SIZE))?;
    user_list
        .iter()
        .map(|entry| {
            entry
                .get("openid")
                .and_then(Value::as_str)
                .map(|openid| Cow::Owned(openid.to_string()))
                .ok_or_else(|| Reply::error(errcode::INVALID_OPENID))
        })
        .collect()
}

/// `POST /cgi-bin/openapi/quota/get?access_token=..` with `{"cgi_path":..}`.
fn quota_get(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = authorize(state, request)?;
    let body = request.json_body()?;
    let cgi_path = body
        .get("cgi_path")
        .and_then(Value::as_str)
        .ok_or_else(|| Reply::error(errcode::DATA_FORMAT))?;
    if !cgi_path.starts_with('/') {
        return Err(Reply::error(errcode::CGI_PATH_FORMAT));
    }
    if !Endpoint::ALL.iter().any(|e| e.path() == cgi_path) {
        return Err(Reply::error(errcode::CGI_PATH_NOT_FOUND));
    }
    let daily_limit = state.daily_limit(cgi_path);
    let used = state.quota_used(account, cgi_path);
    let body = json!({
        "errcode": 0,
        "errmsg": "ok",
        "quota": {"daily_limit": daily_limit, "used": used, "remain": daily_limit.saturating_sub(used)},
    });
    Ok(Reply::ok(body.to_string(), account))
}
