//! Hostile responses: whatever bytes arrive, every decoder ends in a value or
//! a classified error — never a panic.

use proptest::prelude::*;
use serde_json::{json, Value};

use serde::de::DeserializeOwned;

use crate::wechat::body::{check_envelope, from_json, shape_error};
use crate::wechat::decode::{self, BodyError};
use crate::wechat::errcode::{Action, CallKind};
use crate::wechat::error::Failure;
use crate::wechat::official_account::{BatchgetResponse, QuotaResponse, UserGetResponse};
use crate::wechat::token::TokenResponse;

/// Runs every decoder on one response; returns the errors' actions.
fn decode_all(status: u16, body: &[u8]) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut note = |result: Result<(), BodyError>| {
        if let Err(error) = result {
            actions.push(error.action(CallKind::DATA));
        }
    };
    note(decode::user_get(status, body).map(|_| ()));
    note(decode::batchget(status, body).map(|_| ()));
    note(decode::quota(status, body).map(|_| ()));
    note(decode::token(status, body).map(|_| ()));
    note(decode::tags(status, body).map(|_| ()));
    let (begin, end) = decode::doc_example_span();
    note(decode::user_cumulate(status, body, begin, end).map(|_| ()));
    note(decode::user_summary(status, body, begin, end).map(|_| ()));
    note(decode::groupchat_list(status, body).map(|_| ()));
    note(decode::groupchat_get(status, body, "wrASKED").map(|_| ()));
    actions
}

/// JSON of any shape, with the keys WeChat's bodies use, so the decoders
/// meet their own fields with the wrong types.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("errcode".to_string()),
        Just("errmsg".to_string()),
        Just("total".to_string()),
        Just("count".to_string()),
        Just("data".to_string()),
        Just("openid".to_string()),
        Just("next_openid".to_string()),
        Just("user_info_list".to_string()),
        Just("subscribe".to_string()),
        Just("unionid".to_string()),
        Just("subscribe_time".to_string()),
        Just("tagid_list".to_string()),
        Just("qr_scene".to_string()),
        Just("quota".to_string()),
        Just("remain".to_string()),
        Just("access_token".to_string()),
        Just("expires_in".to_string()),
        Just("group_chat_list".to_string()),
        Just("next_cursor".to_string()),
        Just("group_chat".to_string()),
        Just("chat_id".to_string()),
        Just("member_list".to_string()),
        Just("userid".to_string()),
        Just("type".to_string()),
        Just("join_time".to_string()),
        Just("invitor".to_string()),
        Just("member_version".to_string()),
        "[a-z_]{1,8}".prop_map(|k: String| k),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|pairs| { Value::Object(pairs.into_iter().collect()) }),
        ]
    })
}

/// The envelope pass, then the typed pass: what [`decode::parse_body`] must
/// equal (it skips the first pass on bodies that cannot carry an errcode).
fn two_passes<T: DeserializeOwned>(body: &[u8]) -> Result<(), BodyError> {
    check_envelope(body, &[]).map_err(BodyError::Failure)?;
    serde_json::from_slice::<T>(body)
        .map(|_| ())
        .map_err(|err| BodyError::Shape(shape_error(&err)))
}

/// [`decode::parse_body`] and [`two_passes`] on one body, for every response
/// type (both succeed on the same bytes with the same deserializer, so
/// comparing outcomes is comparing values).
fn one_and_two_passes(body: &[u8]) -> Vec<(Result<(), BodyError>, Result<(), BodyError>)> {
    fn pair<T: DeserializeOwned>(body: &[u8]) -> (Result<(), BodyError>, Result<(), BodyError>) {
        (
            decode::parse_body::<T>(body, &[]).map(|_| ()),
            two_passes::<T>(body),
        )
    }
    vec![
        pair::<UserGetResponse>(body),
        pair::<BatchgetResponse>(body),
        pair::<QuotaResponse>(body),
        pair::<TokenResponse>(body),
    ]
}

/// [`from_json`] (the body's UTF-8 checked once, then read as text) and
/// serde_json reading the bytes (every string checked on its own) give the
/// same `value` of `T`, or the same error.
fn same_as_read_as_bytes<T: DeserializeOwned, V: PartialEq + std::fmt::Debug>(
    body: &[u8],
    value: fn(T) -> V,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        from_json::<T>(body).map(value).map_err(|e| e.to_string()),
        serde_json::from_slice::<T>(body)
            .map(value)
            .map_err(|e| e.to_string())
    );
    Ok(())
}

/// [`same_as_read_as_bytes`] for the data bodies.
fn data_bodies_same_as_read_as_bytes(body: &[u8]) -> Result<(), TestCaseError> {
    same_as_read_as_bytes(body, |r: BatchgetResponse| r.user_info_list)?;
    same_as_read_as_bytes(body, UserGetResponse::into_page)
}

/// A batchget answer whose strings are any text, and whose fields may
/// hold the wrong types.
fn any_batchget() -> impl Strategy<Value = Value> {
    let text = ".{0,30}";
    let user = (text, text, prop::option::of(text), any_json(), any::<i64>()).prop_map(
        |(openid, remark, unionid, odd, time)| {
            json!({"subscribe": 1, "openid": openid, "unionid": unionid, "remark": remark,
                   "subscribe_time": time, "tagid_list": [2, 5], "qr_scene_str": odd})
        },
    );
    prop::collection::vec(user, 0..20).prop_map(|users| json!({ "user_info_list": users }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn text_decoding_equals_reading_bytes(
        value in prop_oneof![any_batchget(), any_json()],
        junk in prop::collection::vec(any::<u8>(), 0..4),
        at in any::<prop::sample::Index>(),
    ) {
        let body = serde_json::to_vec(&value).unwrap();
        data_bodies_same_as_read_as_bytes(&body)?;
        // Bytes put anywhere, most of them not UTF-8: inside a string, or
        // where they break the JSON.
        let mut broken = body.clone();
        let at = at.index(body.len() + 1);
        broken.splice(at..at, junk);
        data_bodies_same_as_read_as_bytes(&broken)?;
    }

    #[test]
    fn one_pass_decoding_equals_two_passes(
        value in any_json(),
        errcode in prop::option::of(any::<i64>()),
        escaped in any::<bool>(),
        space in "[ \t\r\n]{0,3}",
    ) {
        let mut value = value;
        if let (Some(code), Value::Object(map)) = (errcode, &mut value) {
            map.insert("errcode".to_string(), json!(code));
        }
        let mut text = format!("{space}{}", serde_json::to_string(&value).unwrap());
        if escaped {
            // The key spelled with a \u escape: still the key "errcode".
            text = text.replace("\"errcode\"", "\"err\\u0063ode\"");
        }
        for (one, two) in one_and_two_passes(text.as_bytes()) {
            prop_assert_eq!(one, two);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(status, &body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        decode_all(200, &body);
    }

    #[test]
    fn a_non_2xx_status_is_an_http_failure(status in prop_oneof![100u16..200, 300u16..600], value in any_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        for result in [decode::user_get(status, &body).err(), decode::batchget(status, &body).err()] {
            prop_assert_eq!(result, Some(BodyError::Failure(Failure::Http(status))));
        }
    }

    #[test]
    fn any_nonzero_errcode_is_classified_from_the_table(errcode in any::<i64>().prop_filter("nonzero", |c| *c != 0), as_text in any::<bool>()) {
        let code = if as_text { json!(errcode.to_string()) } else { json!(errcode) };
        let body = serde_json::to_vec(&json!({"errcode": code, "errmsg": "x"})).unwrap();
        match decode::user_get(200, &body) {
            Err(BodyError::Failure(Failure::ErrCode { errcode: got, .. })) => prop_assert_eq!(got, errcode),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn truncated_json_is_a_retried_decode_failure(cut in 1usize..60) {
        let body = br#"{"total":2,"count":2,"data":{"openid":["oA","oB"]},"next_openid":"oB"}"#;
        let cut = cut.min(body.len() - 1);
        match decode::user_get(200, &body[..cut]) {
            Err(error @ BodyError::Failure(Failure::Decode(_))) => prop_assert_eq!(error.action(CallKind::DATA), Action::Retry),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

#[test]
fn an_errcode_key_spelled_with_an_escape_is_still_an_errcode() {
    // Every field of a user/get page is optional: read as a page, this body
    // would end the list silently.
    let body = br#"{"err\u0063ode":45009,"errmsg":"api freq out of limit"}"#;
    match decode::user_get(200, body) {
        Err(BodyError::Failure(Failure::ErrCode { errcode, .. })) => assert_eq!(errcode, 45009),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_html_page_with_status_200_is_retried() {
    let html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    let actions = decode_all(200, html);
    // Every decoder (user/get, batchget, quota, token, tags/get, both
    // datacube, groupchat list and get).
    assert_eq!(actions, [Action::Retry; 9]);
}

#[test]
fn invalid_utf8_in_strings_is_a_classified_error() {
    let mut body = br#"{"user_info_list":[{"subscribe":1,"openid":""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(br#""}]}"#);
    // Ignored by the envelope check, refused by the typed decode: the account
    // stops with a message that quotes no bytes of the body.
    match decode::batchget(200, &body) {
        Err(BodyError::Shape(message)) => assert!(message.contains("line 1"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_huge_array_of_junk_is_decoded_without_panic() {
    let junk: Vec<Value> = (0..100_000)
        .map(|i| match i % 4 {
            0 => json!({"subscribe": "1", "openid": i}),
            1 => json!(null),
            2 => json!([1, 2, 3]),
            _ => json!({"subscribe": 1, "openid": "oX", "tagid_list": "not a list"}),
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "user_info_list": junk })).unwrap();
    let result = decode::batchget(200, &body);
    assert!(matches!(result, Err(BodyError::Shape(_))), "{result:?}");
}

#[test]
fn a_body_that_is_not_an_object_takes_both_passes() {
    for body in [
        &br#"[45009,"quota"]"#[..],
        b"  [0]",
        b"null",
        b"\"errcode\"",
    ] {
        for (one, two) in one_and_two_passes(body) {
            assert_eq!(one, two, "{}", String::from_utf8_lossy(body));
        }
    }
}

#[test]
fn the_real_end_of_list_page_decodes_to_the_end() {
    let page = decode::user_get(200, br#"{"total":23001,"count":0,"next_openid":""}"#).unwrap();
    assert!(page.openids.is_empty());
    assert_eq!(page.next_openid, None);
}

#[test]
fn a_chat_of_100000_members_with_odd_fields_decodes_and_junk_elements_are_an_error() {
    let members: Vec<Value> = (0..100_000)
        .map(|i| match i % 4 {
            0 => json!({"userid": format!("wm{i}"), "type": 2, "join_time": "not a time"}),
            1 => json!({"userid": format!("wo{i}"), "type": "2", "invitor": null}),
            2 => json!({"type": 2}),
            _ => json!({"userid": format!("sales_{i}"), "type": 1, "join_scene": 1.5}),
        })
        .collect();
    let body =
        serde_json::to_vec(&json!({"errcode": 0, "group_chat": {"member_list": members}})).unwrap();
    let chat = decode::groupchat_get(200, &body, "wrASKED").unwrap();
    assert_eq!(chat.chat_id, "wrASKED");
    assert_eq!(chat.members.len(), 75_000);
    assert_eq!(chat.members_without_id, 25_000);
    assert_eq!(
        chat.members.iter().filter(|m| m.member_type == 2).count(),
        50_000
    );
    let body = br#"{"errcode":0,"group_chat":{"member_list":[null, {"userid":"wmA","type":2}]}}"#;
    let result = decode::groupchat_get(200, body, "wrASKED");
    assert!(matches!(result, Err(BodyError::Shape(_))), "{result:?}");
}
