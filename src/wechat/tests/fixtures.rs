//! Every public response body kept in `tests/fixtures/wechat/` (SDK test
//! fixtures, WeChat's doc examples, developers' reports; each file's source
//! is in that folder's README and `index.json`) decoded as the client
//! decodes it: a success body of an endpoint the client calls decodes into
//! its type; every error body yields its errcode, and a known errcode a
//! reason of its own.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::wechat::decode::{decode_body, BodyError};
use crate::wechat::errcode::{classify, CallKind, UNKNOWN_ERRCODE};
use crate::wechat::error::Failure;
use crate::wechat::oa_counts::{DatacubeResponse, TagsResponse, WireCumulate, WireSummary};
use crate::wechat::official_account::{BatchgetResponse, QuotaResponse, UserGetResponse};
use crate::wechat::open_platform::{AuthorizerTokenResponse, ComponentTokenResponse};
use crate::wechat::token::TokenResponse;
use crate::wechat::wecom::{BatchResponse, Conversion, PendingIdResponse, TokenlessList};
use crate::wechat::wecom_groups::{
    GetResponse as GroupGetResponse, ListResponse as GroupListResponse,
};

fn decode_as<T: DeserializeOwned>(body: &[u8]) -> Result<(), BodyError> {
    decode_body::<T>(200, body).map(|_| ())
}

/// Decodes `body` with the type the client reads `endpoint` into (a JSON
/// value for endpoints the client does not call).
fn decode(endpoint: &str, body: &[u8]) -> Result<(), BodyError> {
    match endpoint {
        "/cgi-bin/user/get" => decode_as::<UserGetResponse>(body),
        "/cgi-bin/user/info/batchget" => decode_as::<BatchgetResponse>(body),
        "/cgi-bin/openapi/quota/get" => decode_as::<QuotaResponse>(body),
        "/cgi-bin/tags/get" => decode_as::<TagsResponse>(body),
        "/datacube/getusercumulate" => decode_as::<DatacubeResponse<WireCumulate>>(body),
        "/datacube/getusersummary" => decode_as::<DatacubeResponse<WireSummary>>(body),
        "/cgi-bin/token" | "/cgi-bin/stable_token" | "/cgi-bin/gettoken" => {
            decode_as::<TokenResponse>(body)
        }
        "/cgi-bin/component/api_component_token" => decode_as::<ComponentTokenResponse>(body),
        "/cgi-bin/component/api_authorizer_token" => decode_as::<AuthorizerTokenResponse>(body),
        "/cgi-bin/externalcontact/get_follow_user_list" => decode_as::<TokenlessList>(body),
        "/cgi-bin/externalcontact/batch/get_by_user" => decode_as::<BatchResponse>(body),
        "/cgi-bin/idconvert/unionid_to_external_userid" => decode_as::<Conversion>(body),
        "/cgi-bin/idconvert/batch/external_userid_to_pending_id" => {
            decode_as::<PendingIdResponse>(body)
        }
        "/cgi-bin/externalcontact/groupchat/list" => decode_as::<GroupListResponse>(body),
        "/cgi-bin/externalcontact/groupchat/get" => decode_as::<GroupGetResponse>(body),
        _ => decode_as::<Value>(body),
    }
}

#[test]
fn every_real_body_decodes_as_the_client_reads_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wechat");
    let index: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).unwrap()).unwrap();
    assert!(index.len() >= 80, "{} fixtures", index.len());
    let mut checked = 0;
    for entry in &index {
        let file = entry["file"].as_str().unwrap();
        let body = std::fs::read(root.join(file)).unwrap();
        let endpoint = entry["endpoint"].as_str().unwrap_or("");
        let expected = entry["errcode"].as_i64().unwrap_or(0);
        let wecom = entry["product"] == "wecom";
        let result = decode(endpoint, &body);
        if expected == 0 {
            assert!(result.is_ok(), "{file}: {result:?}");
        } else {
            let Err(BodyError::Failure(Failure::ErrCode { errcode, errmsg })) = result else {
                panic!("{file}: expected errcode {expected}, got {result:?}");
            };
            assert_eq!(errcode, expected, "{file}");
            assert!(!errmsg.is_empty() || expected == 1007, "{file}");
            let kind = if wecom {
                CallKind::WECOM_DATA
            } else {
                CallKind::DATA
            };
            let known = [
                -1, 40001, 40003, 40013, 40032, 40058, 40096, 40125, 40164, 42001, 45009, 45011,
                48001, 48002, 50001, 50002, 60111, 61005, 61006, 61023, 84061, 84074, 845003,
            ];
            if known.contains(&errcode) {
                assert_ne!(classify(errcode, kind).reason, UNKNOWN_ERRCODE, "{file}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, index.len());
}
