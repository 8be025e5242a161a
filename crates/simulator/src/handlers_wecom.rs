//! The WeCom endpoints (wechat-api.md §4): `gettoken`,
//! `externalcontact/get_follow_user_list`, `externalcontact/batch/get_by_user`
//! (≤100 userids, ≤100 rows a page, one `next_cursor` spanning the whole
//! userid list, one row per customer × staff member) and
//! `idconvert/unionid_to_external_userid` and
//! `idconvert/batch/external_userid_to_pending_id`, and the customer group
//! chats: `externalcontact/groupchat/list` (cursor, `status_filter`,
//! `owner_filter`, 1..=1000 a page; dismissed chats left out) and
//! `externalcontact/groupchat/get` (40050 for a chat that is not, or no
//! longer, there). Every WeCom body carries
//! `"errcode":0,"errmsg":"ok"` on success.

use serde_json::{json, Value};

use super::contacts::{ContactType, CorpModel};
use super::handlers::{errcode, ApiRequest, Reply};
use super::ids::{derive_key, hash2};
use super::state::{lock, SimState};
use super::tokens::TokenCheck;

/// At most 100 userids per `batch/get_by_user` call, and 100 rows a page.
const USERIDS_MAX: usize = 100;
const LIMIT_MAX: u64 = 100;
/// WeCom's default page size when `limit` is absent.
const LIMIT_DEFAULT: u64 = 50;
/// At most 100 external_userids per `external_userid_to_pending_id` call.
const PENDING_IDS_MAX: usize = 100;
/// Simulated days a `pending_id` lives (doc 97357: 有效期90天).
pub(crate) const PENDING_DAYS: u32 = 90;

fn ok(mut body: Value, principal: usize) -> Reply {
    body["errcode"] = json!(0);
    body["errmsg"] = json!("ok");
    Reply::ok(body.to_string(), principal)
}

/// `GET /cgi-bin/gettoken?corpid=..&corpsecret=..`: like a stable token,
/// the same token while it is valid (wechat-api.md §4.1).
pub(crate) fn gettoken(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let corpid = request.param("corpid").unwrap_or("");
    let corp = state
        .scenario
        .corps
        .iter()
        .position(|c| c.corpid == corpid)
        .ok_or_else(|| Reply::wecom_error(errcode::INVALID_APPID))?;
    if state.scenario.corps[corp].secret != request.param("corpsecret").unwrap_or("") {
        return Err(Reply::wecom_error(errcode::INVALID_CREDENTIAL));
    }
    let principal = state.corp_principal(corp);
    if state.quota_exhausted(principal, request.endpoint.path()) {
        return Err(Reply::wecom_error(errcode::DAILY_QUOTA));
    }
    let issued = lock(&state.tokens).issue_stable(principal, false);
    if issued.new {
        state.count_token_issued(principal);
    }
    Ok(ok(
        json!({"access_token": issued.access_token, "expires_in": issued.expires_in}),
        principal,
    ))
}

/// The corp behind the request's token, if it is a corp's and the
/// endpoint's quota is not used up.
fn authorize(state: &SimState, request: &ApiRequest) -> Result<(usize, usize), Reply> {
    match lock(&state.tokens).check(request.param("access_token")) {
        TokenCheck::Valid(principal) => {
            let corp = state
                .corp_of(principal)
                .ok_or_else(|| Reply::wecom_error(errcode::INVALID_ACCESS_TOKEN))?;
            if state.quota_exhausted(principal, request.endpoint.path()) {
                return Err(Reply::wecom_error(errcode::DAILY_QUOTA));
            }
            Ok((corp, principal))
        }
        TokenCheck::Missing => Err(Reply::wecom_error(errcode::MISSING_ACCESS_TOKEN)),
        TokenCheck::Invalid => Err(Reply::wecom_error(errcode::INVALID_ACCESS_TOKEN)),
        TokenCheck::Expired => Err(Reply::wecom_error(errcode::ACCESS_TOKEN_EXPIRED)),
    }
}

/// `GET /cgi-bin/externalcontact/get_follow_user_list`.
pub(crate) fn follow_user_list(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let (corp, principal) = authorize(state, request)?;
    let staff: Vec<String> = (0..state.world.corps[corp].staff)
        .map(CorpModel::staff_userid)
        .collect();
    Ok(ok(json!({ "follow_user": staff }), principal))
}

/// A page position: the index in the request's userid list and the offset
/// in that staff member's customers, made opaque as real cursors are.
fn encode_cursor(key: u64, list_index: usize, offset: usize) -> String {
    let raw = ((list_index as u64) << 32) | offset as u64;
    format!("{:016X}{:04X}", raw ^ key, hash2(key, raw) & 0xFFFF)
}

fn decode_cursor(key: u64, cursor: &str) -> Option<(usize, usize)> {
    let (value, check) = (cursor.get(..16)?, cursor.get(16..)?);
    let raw = u64::from_str_radix(value, 16).ok()? ^ key;
    let valid = u64::from_str_radix(check, 16).ok()? == hash2(key, raw) & 0xFFFF;
    valid.then_some(((raw >> 32) as usize, (raw & 0xFFFF_FFFF) as usize))
}

/// `POST /cgi-bin/externalcontact/batch/get_by_user` with
/// `{"userid_list":[..],"cursor":"..","limit":N}`.
pub(crate) fn batch_get_by_user(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let (corp, principal) = authorize(state, request)?;
    let model = &state.world.corps[corp];
    let body = request
        .json_body()
        .map_err(|_| Reply::wecom_error(errcode::DATA_FORMAT))?;
    let invalid = || Reply::wecom_error(errcode::INVALID_PARAMETER);
    let userids = body
        .get("userid_list")
        .and_then(Value::as_array)
        .filter(|list| (1..=USERIDS_MAX).contains(&list.len()))
        .ok_or_else(invalid)?;
    let staff: Vec<u32> = userids
        .iter()
        .map(|userid| {
            userid
                .as_str()
                .and_then(|userid| model.staff_index(userid))
                .ok_or_else(|| Reply::wecom_error(errcode::INVALID_OPENID))
        })
        .collect::<Result<_, _>>()?;
    let limit = match body.get("limit").and_then(Value::as_u64) {
        None | Some(0) => LIMIT_DEFAULT,
        // Larger limits are clamped, not refused (wechat-api.md §4.5).
        Some(limit) => limit.min(LIMIT_MAX),
    } as usize;
    let key = derive_key(state.scenario.seed, &format!("cursor/{corp}"));
    let (mut index, mut offset) = match body.get("cursor").and_then(Value::as_str) {
        None | Some("") => (0, 0),
        Some(cursor) => decode_cursor(key, cursor).ok_or_else(invalid)?,
    };
    let population = state.population();
    let lists = &population.contacts[corp];
    let mut rows = Vec::with_capacity(limit);
    while rows.len() < limit && index < staff.len() {
        let customers = &lists[staff[index] as usize];
        let take = (limit - rows.len()).min(customers.len().saturating_sub(offset));
        for &person in &customers[offset.min(customers.len())..][..take] {
            rows.push(model.relation(&state.world, person, staff[index]));
        }
        offset += take;
        if offset >= customers.len() {
            index += 1;
            offset = 0;
        }
    }
    let next_cursor = if index < staff.len() {
        encode_cursor(key, index, offset)
    } else {
        String::new()
    };
    Ok(ok(
        json!({
            "external_contact_list": rows,
            "next_cursor": next_cursor,
            "fail_info": {"unlicensed_userid_list": []},
        }),
        principal,
    ))
}

/// The corp, principal and JSON body of a request to an idconvert endpoint:
/// only a third-party / 代开发 app (an idconvert corp) may call them.
fn idconvert_request(
    state: &SimState,
    request: &ApiRequest,
) -> Result<(usize, usize, serde_json::Map<String, Value>), Reply> {
    let (corp, principal) = authorize(state, request)?;
    if !state.world.corps[corp].idconvert {
        return Err(Reply::wecom_error(errcode::API_FORBIDDEN));
    }
    let body = request
        .json_body()
        .map_err(|_| Reply::wecom_error(errcode::DATA_FORMAT))?;
    Ok((corp, principal, body))
}

/// `POST /cgi-bin/idconvert/unionid_to_external_userid` with
/// `{"unionid","openid","subject_type"}`: the corp's external_userid of a
/// WeChat-user customer, else only a `pending_id`. Only a third-party /
/// 代开发 app (an idconvert corp) may call it; the OpenID must be one of a
/// bound Official Account or Mini Program and belong to the UnionID's person.
pub(crate) fn unionid_to_external_userid(
    state: &SimState,
    request: &ApiRequest,
) -> Result<Reply, Reply> {
    let (corp, principal, body) = idconvert_request(state, request)?;
    let model = &state.world.corps[corp];
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let (Some(unionid), Some(openid)) = (field("unionid"), field("openid")) else {
        return Err(Reply::wecom_error(errcode::INVALID_PARAMETER));
    };
    let person = state
        .world
        .person_of_convertible_openid(openid)
        .filter(|&p| state.world.person_of_unionid(unionid) == Some(p))
        .ok_or_else(|| Reply::wecom_error(errcode::INVALID_OPENID))?;
    let pending_id = pending_id(state, corp, person, true).unwrap_or_default();
    let customer =
        model.is_customer(person, state.day()) && model.contact_type(person) == ContactType::WeChat;
    let body = if customer {
        json!({"external_userid": model.external_userid(person), "pending_id": pending_id})
    } else {
        json!({ "pending_id": pending_id })
    };
    Ok(ok(body, principal))
}

/// The person's pending_id for `corp`: when `issue` (a conversion), a new
/// one issued today, for [`PENDING_DAYS`] (whether WeChat renews a
/// pending_id on a second conversion is not public: the simulator assumes
/// it does); else the one issued within the last [`PENDING_DAYS`], if any.
fn pending_id(state: &SimState, corp: usize, person: u32, issue: bool) -> Option<String> {
    let today = state.day();
    let mut issued = lock(&state.pending_issued);
    let day = if issue {
        issued.insert((corp, person), today);
        today
    } else {
        let day = *issued.get(&(corp, person))?;
        (today.saturating_sub(day) < PENDING_DAYS).then_some(day)?
    };
    let key = derive_key(state.scenario.seed, &format!("pending/{corp}/{day}"));
    Some(format!("p{:016x}", hash2(key, u64::from(person))))
}

/// `POST /cgi-bin/idconvert/batch/external_userid_to_pending_id` with
/// `{"external_userid":[..]}` (at most 100): the pending_id of each listed
/// customer whose UnionID the corp converted within the pending_id's life;
/// other ids are left out of `result`.
pub(crate) fn external_userid_to_pending_id(
    state: &SimState,
    request: &ApiRequest,
) -> Result<Reply, Reply> {
    let (corp, principal, body) = idconvert_request(state, request)?;
    let model = &state.world.corps[corp];
    let ids = body
        .get("external_userid")
        .and_then(Value::as_array)
        .filter(|list| (1..=PENDING_IDS_MAX).contains(&list.len()))
        .ok_or_else(|| Reply::wecom_error(errcode::INVALID_PARAMETER))?;
    let day = state.day();
    let result: Vec<Value> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|id| {
            let person = model.person_of_external_userid(id, state.world.people)?;
            if !model.is_customer(person, day) {
                return None;
            }
            let pending_id = pending_id(state, corp, person, false)?;
            Some(json!({"external_userid": id, "pending_id": pending_id}))
        })
        .collect();
    Ok(ok(json!({ "result": result }), principal))
}

/// Most chats per `groupchat/list` page (doc: limit 1..=1000).
const GROUPCHAT_LIMIT_MAX: u64 = 1000;

/// `POST /cgi-bin/externalcontact/groupchat/list` with `{"status_filter",
/// "owner_filter":{"userid_list":[..]},"cursor","limit"}`: the corp's chats
/// that are not dismissed, in chat order, `{"chat_id","status"}` each.
pub(crate) fn groupchat_list(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let (corp, principal) = authorize(state, request)?;
    let model = &state.world.corps[corp];
    let groups = &model.groups;
    let body = request
        .json_body()
        .map_err(|_| Reply::wecom_error(errcode::DATA_FORMAT))?;
    let invalid = || Reply::wecom_error(errcode::INVALID_PARAMETER);
    let limit = body
        .get("limit")
        .and_then(Value::as_u64)
        .filter(|limit| (1..=GROUPCHAT_LIMIT_MAX).contains(limit))
        .ok_or_else(invalid)? as usize;
    let status_filter = body
        .get("status_filter")
        .map_or(Some(0), Value::as_i64)
        .ok_or_else(invalid)?;
    let owners: Option<Vec<&str>> = body
        .get("owner_filter")
        .and_then(|f| f.get("userid_list"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect());
    let key = derive_key(state.scenario.seed, &format!("groupchat-cursor/{corp}"));
    let start = match body.get("cursor").and_then(Value::as_str) {
        None | Some("") => 0,
        Some(cursor) => decode_cursor(key, cursor).ok_or_else(invalid)?.1,
    };
    let listed = (0..groups.chats).filter(|&chat| {
        !groups.dismissed(chat)
            && (status_filter == 0 || groups.status(chat) == status_filter)
            && owners
                .as_ref()
                .is_none_or(|owners| owners.contains(&groups.owner_userid(chat).as_str()))
    });
    let mut page = Vec::with_capacity(limit);
    let mut next = None;
    for chat in listed.skip_while(|&chat| (chat as usize) < start) {
        if page.len() == limit {
            next = Some(encode_cursor(key, 0, chat as usize));
            break;
        }
        page.push(json!({"chat_id": groups.chat_id(chat), "status": groups.status(chat)}));
    }
    Ok(ok(
        json!({"group_chat_list": page, "next_cursor": next.unwrap_or_default()}),
        principal,
    ))
}

/// `POST /cgi-bin/externalcontact/groupchat/get` with `{"chat_id","need_name"}`.
pub(crate) fn groupchat_get(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let (corp, principal) = authorize(state, request)?;
    let model = &state.world.corps[corp];
    let body = request
        .json_body()
        .map_err(|_| Reply::wecom_error(errcode::DATA_FORMAT))?;
    let chat = body
        .get("chat_id")
        .and_then(Value::as_str)
        .and_then(|id| model.groups.chat_of_id(id))
        .filter(|&chat| !model.groups.dismissed(chat))
        .ok_or_else(|| Reply::wecom_error(errcode::CHAT_NOT_FOUND))?;
    let need_name = body.get("need_name").and_then(Value::as_i64) == Some(1);
    let population = state.population();
    let members = &population.groups[corp][chat as usize];
    let group_chat = model
        .groups
        .chat(model, &state.world, chat, members, need_name);
    Ok(ok(json!({ "group_chat": group_chat }), principal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let key = 0x1234_5678_9abc_def0;
        let cursor = encode_cursor(key, 3, 250);
        assert_eq!(decode_cursor(key, &cursor), Some((3, 250)));
        assert_eq!(decode_cursor(key ^ 1, &cursor), None);
        assert_eq!(decode_cursor(key, "garbage"), None);
        let mut forged = cursor.clone().into_bytes();
        forged[15] = if forged[15] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            decode_cursor(key, &String::from_utf8(forged).unwrap()),
            None
        );
    }
}
