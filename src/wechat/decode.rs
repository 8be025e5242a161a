//! The response decoders as pure functions: an HTTP status and body bytes in,
//! a typed value or a classified failure out. The client's `call` does the
//! same steps on every response (status, then the errcode envelope, then the
//! typed body); these entry points exist so that property tests and fuzz
//! targets can feed the decoding hostile input — arbitrary bytes, wrong
//! types, missing fields, huge arrays, invalid UTF-8, HTML with status 200 —
//! and check that every case ends in a value or a classified error, never a
//! panic.

pub use super::body::{decode_body, parse_body, BodyError};
use chrono::NaiveDate;

use super::oa_counts::{DatacubeResponse, TagsResponse, WireCumulate, WireSummary};
use super::official_account::{BatchgetResponse, QuotaResponse, UserGetResponse};
use super::token::TokenResponse;
use super::wecom_groups::{GetResponse, ListResponse};
use super::{CumulateDay, FollowerPage, GroupChat, ListedChat, Quota, SummaryRow, Tag, UserInfo};

/// A `cgi-bin/user/get` response.
pub fn user_get(status: u16, body: &[u8]) -> Result<FollowerPage, BodyError> {
    decode_body::<UserGetResponse>(status, body).map(UserGetResponse::into_page)
}

/// A `cgi-bin/user/info/batchget` response.
pub fn batchget(status: u16, body: &[u8]) -> Result<Vec<UserInfo>, BodyError> {
    decode_body::<BatchgetResponse>(status, body).map(|r| r.user_info_list)
}

/// A `cgi-bin/openapi/quota/get` response.
pub fn quota(status: u16, body: &[u8]) -> Result<Quota, BodyError> {
    decode_body::<QuotaResponse>(status, body).map(|r| r.quota)
}

/// A token response (`stable_token`, `token`): the token's length and lifetime
/// (the token itself is not handed out here).
pub fn token(status: u16, body: &[u8]) -> Result<(usize, u64), BodyError> {
    decode_body::<TokenResponse>(status, body).map(|r| (r.access_token.len(), r.expires_in))
}

/// A `cgi-bin/tags/get` response.
pub fn tags(status: u16, body: &[u8]) -> Result<Vec<Tag>, BodyError> {
    decode_body::<TagsResponse>(status, body)?
        .into_tags()
        .map_err(BodyError::Shape)
}

/// A `datacube/getusercumulate` response to a request for `begin..=end`.
pub fn user_cumulate(
    status: u16,
    body: &[u8],
    begin: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<CumulateDay>, BodyError> {
    decode_body::<DatacubeResponse<WireCumulate>>(status, body)?
        .into_days(begin, end)
        .map_err(BodyError::Shape)
}

/// A `datacube/getusersummary` response to a request for `begin..=end`.
pub fn user_summary(
    status: u16,
    body: &[u8],
    begin: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<SummaryRow>, BodyError> {
    decode_body::<DatacubeResponse<WireSummary>>(status, body)?
        .into_rows(begin, end)
        .map_err(BodyError::Shape)
}

/// The span of WeChat's datacube doc example (2014-12-02 to 2014-12-07), for
/// callers that feed the datacube decoders without asking a span of their own
/// (property tests, fuzz targets).
pub fn doc_example_span() -> (NaiveDate, NaiveDate) {
    let day = |d| NaiveDate::from_ymd_opt(2014, 12, d).unwrap_or_default();
    (day(2), day(7))
}

/// A WeCom `externalcontact/groupchat/list` response: the page's chats and
/// the next cursor.
pub fn groupchat_list(
    status: u16,
    body: &[u8],
) -> Result<(Vec<ListedChat>, Option<String>), BodyError> {
    decode_body::<ListResponse>(status, body).map(ListResponse::into_page)
}

/// A WeCom `externalcontact/groupchat/get` response for `chat_id`.
pub fn groupchat_get(status: u16, body: &[u8], chat_id: &str) -> Result<GroupChat, BodyError> {
    decode_body::<GetResponse>(status, body).map(|r| r.into_chat(chat_id))
}
