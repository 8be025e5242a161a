//! The third-party platform's token endpoints (wechat-api.md §3.2–3.3): the
//! component token from the platform's AppID, AppSecret and verify ticket,
//! then an authorizer token per authorized Official Account from its
//! refresh token. Authorizer tokens open the same user APIs as an account's
//! own token.

use serde_json::{json, Value};

use super::handlers::{errcode, ApiRequest, Reply};
use super::kinds::SimPlatform;
use super::state::{lock, SimState};
use super::tokens::{Issued, TokenCheck};

fn issued_reply(
    state: &SimState,
    principal: usize,
    key: &str,
    issued: Issued,
    extra: Value,
) -> Reply {
    if issued.new {
        state.count_token_issued(principal);
    }
    let mut body = json!({ key: issued.access_token, "expires_in": issued.expires_in });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    Reply::ok(body.to_string(), principal)
}

/// The scenario's third-party platform, if `component_appid` is its
/// (`61011`, invalid component appid, otherwise).
fn platform_of<'a>(state: &'a SimState, component_appid: &str) -> Result<&'a SimPlatform, Reply> {
    state
        .scenario
        .platform
        .as_ref()
        .filter(|p| p.component_appid == component_appid)
        .ok_or_else(|| Reply::error(errcode::INVALID_COMPONENT))
}

/// `POST /cgi-bin/component/api_component_token` with
/// `{"component_appid","component_appsecret","component_verify_ticket"}`.
pub(crate) fn component_token(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let body = request.json_body()?;
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("");
    let platform = platform_of(state, field("component_appid"))?;
    if platform.component_secret != field("component_appsecret") {
        return Err(Reply::error(errcode::INVALID_APPSECRET));
    }
    if platform.verify_ticket != field("component_verify_ticket") {
        return Err(Reply::error(errcode::TICKET_INVALID));
    }
    let principal = state.component_principal();
    let issued = lock(&state.tokens).issue_stable(principal, false);
    Ok(issued_reply(
        state,
        principal,
        "component_access_token",
        issued,
        json!({}),
    ))
}

/// `POST /cgi-bin/component/api_authorizer_token?component_access_token=..`
/// with `{"component_appid","authorizer_appid","authorizer_refresh_token"}`.
/// A refresh token that is not the account's answers `61023`.
pub(crate) fn authorizer_token(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    // SDKs send `component_access_token`; newer docs write `access_token`.
    let token = request
        .param("component_access_token")
        .or_else(|| request.param("access_token"));
    match lock(&state.tokens).check(token) {
        TokenCheck::Valid(principal) if principal == state.component_principal() => {}
        TokenCheck::Valid(_) | TokenCheck::Invalid => {
            return Err(Reply::error(errcode::INVALID_CREDENTIAL))
        }
        TokenCheck::Missing => return Err(Reply::error(errcode::MISSING_ACCESS_TOKEN)),
        TokenCheck::Expired => return Err(Reply::error(errcode::ACCESS_TOKEN_EXPIRED)),
    }
    let body = request.json_body()?;
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("");
    let platform = platform_of(state, field("component_appid"))?;
    let index = platform
        .accounts
        .iter()
        .position(|a| a.appid == field("authorizer_appid"))
        .ok_or_else(|| Reply::error(errcode::ACCOUNT_NOT_AUTHORIZED))?;
    let refresh_token = &platform.accounts[index].secret;
    if *refresh_token != field("authorizer_refresh_token") {
        return Err(Reply::error(errcode::REFRESH_TOKEN_INVALID));
    }
    let principal = state.authorizer_principal(index);
    let issued = lock(&state.tokens).issue_stable(principal, false);
    Ok(issued_reply(
        state,
        principal,
        "authorizer_access_token",
        issued,
        json!({ "authorizer_refresh_token": refresh_token }),
    ))
}
