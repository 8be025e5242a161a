//! The response decoders as pure functions: an HTTP status and body bytes in,
//! a typed value or a classified failure out. The client's `call` does the
//! same steps on every response (status, then the errcode envelope, then the
//! typed body); these entry points exist so that property tests and fuzz
//! targets can feed the decoding hostile input — arbitrary bytes, wrong
//! types, missing fields, huge arrays, invalid UTF-8, HTML with status 200 —
//! and check that every case ends in a value or a classified error, never a
//! panic.

use serde::de::DeserializeOwned;

use super::errcode::{Action, CallKind};
use super::error::Failure;
use super::http::{check_envelope, shape_error};
use super::official_account::{BatchgetResponse, QuotaResponse, UserGetResponse};
use super::token::TokenResponse;
use super::{FollowerPage, Quota, UserInfo};

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// A failure the client classifies and may retry (HTTP status, non-JSON
    /// body, an errcode).
    Failure(Failure),
    /// Valid JSON without errcode, but not of the expected shape.
    Shape(String),
}

impl BodyError {
    /// What the client does about it for a call of `kind`.
    pub fn action(&self, kind: CallKind) -> Action {
        match self {
            BodyError::Failure(failure) => failure.classify(kind).action,
            // The account stops: retrying cannot change what WeChat sends.
            BodyError::Shape(_) => Action::StopAccount,
        }
    }
}

/// Status, envelope, then the typed body.
pub fn decode_body<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, BodyError> {
    if !(200..300).contains(&status) {
        return Err(BodyError::Failure(Failure::Http(status)));
    }
    parse_body(body, &[])
}

/// The body of a 2xx answer: the errcode envelope (`sensitive` is scrubbed
/// from its errmsg), then the typed body — what the client does with every
/// answer.
///
/// One JSON pass instead of two where that provably gives the same result: a
/// JSON object whose bytes hold neither `"errcode"` nor a `\u` escape has no
/// errcode key at any depth (the key's letters can only be written plainly
/// or as `\u` escapes), so the envelope check cannot report one. That is
/// every data body (batchget, user/get); anything else, and any body the
/// typed decode refuses, takes the two passes and is classified as before.
/// (A property test holds the two ways equal for every response type.)
pub fn parse_body<T: DeserializeOwned>(body: &[u8], sensitive: &[&str]) -> Result<T, BodyError> {
    if cannot_carry_errcode(body) {
        if let Ok(value) = serde_json::from_slice(body) {
            return Ok(value);
        }
    }
    check_envelope(body, sensitive).map_err(BodyError::Failure)?;
    serde_json::from_slice(body).map_err(|err| BodyError::Shape(shape_error(&err)))
}

/// True when `body` is a JSON object (by its first byte) without the bytes
/// `"errcode"` or `\u`.
fn cannot_carry_errcode(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && memchr::memmem::find(body, b"\"errcode\"").is_none()
        && memchr::memmem::find(body, b"\\u").is_none()
}

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
