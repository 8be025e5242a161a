//! A small fake of the Official Account endpoints, served by axum on
//! 127.0.0.1:0, replaying the real wire formats of wechat-api.md (HTTP 200
//! with errcode bodies, the end-of-list quirk, legacy empty fields) plus a
//! per-endpoint script of faults to answer before behaving normally.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::secret::Secret;
use crate::wechat::{ApiConfig, OfficialAccountClient, WeChatHttp};

pub const SECRET: &str = "SECRET-SENSITIVE-0001";
pub const APPID: &str = "wx0123456789abcdef";
/// Every token the fake issues contains this marker.
pub const TOKEN_MARKER: &str = "TOKEN-SENSITIVE";

pub const STABLE_TOKEN: &str = "/cgi-bin/stable_token";
pub const USER_GET: &str = "/cgi-bin/user/get";
pub const BATCHGET: &str = "/cgi-bin/user/info/batchget";
pub const QUOTA: &str = "/cgi-bin/openapi/quota/get";

/// What the fake answers instead of its normal behaviour, once.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with `{"errcode":code,"errmsg":msg + " rid: ..."}`.
    ErrCode(i64, &'static str),
    /// This HTTP status with a short text body.
    Status(u16),
    /// 200 with an HTML error page.
    Html,
    /// 200 with a JSON body cut in the middle.
    Truncated,
    /// 200, then the connection breaks in the middle of the body.
    Drop,
    /// Wait, then answer normally (longer than the client's timeout = a timeout).
    Sleep(Duration),
    /// Invalidate the current token and answer 40001, like a token superseded
    /// by another process.
    RevokeToken,
    /// An errcode whose errmsg quotes the request's token and secret, to
    /// prove the client scrubs server text.
    EchoCredentials(i64),
    /// 200 with a JSON body of about this many bytes, sent with a
    /// Content-Length (`chunked: false`) or as a stream without one.
    Huge { bytes: usize, chunked: bool },
}

pub struct Fake {
    pub base_url: String,
    pub state: Arc<FakeState>,
}

#[derive(Default)]
pub struct FakeState {
    current_token: Mutex<Option<String>>,
    tokens_issued: AtomicU64,
    expires_in: AtomicU64,
    followers: Mutex<Vec<String>>,
    /// Ignore next_openid and serve page 1 forever.
    repeat_first_page: AtomicBool,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    hits: Mutex<HashMap<String, u64>>,
}

impl Fake {
    pub async fn start() -> Fake {
        let state = Arc::new(FakeState::default());
        state.expires_in.store(7200, Ordering::SeqCst);
        let router = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Fake {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    pub async fn with_followers(count: usize) -> Fake {
        let fake = Fake::start().await;
        *fake.state.followers.lock().unwrap() = follower_ids(count);
        fake
    }

    /// Answers these replies, in order, to the next calls of `path`.
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }

    pub fn repeat_first_page_forever(&self) {
        self.state.repeat_first_page.store(true, Ordering::SeqCst);
    }

    pub fn set_expires_in(&self, seconds: u64) {
        self.state.expires_in.store(seconds, Ordering::SeqCst);
    }

    /// Invalidates the current token, as a force refresh elsewhere would.
    pub fn revoke_token(&self) {
        *self.state.current_token.lock().unwrap() = None;
    }

    /// HTTP requests received for `path`.
    pub fn hits(&self, path: &str) -> u64 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn tokens_issued(&self) -> u64 {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    pub fn client(&self) -> OfficialAccountClient {
        self.client_with(test_config(&self.base_url))
    }

    pub fn client_with(&self, config: ApiConfig) -> OfficialAccountClient {
        let http = WeChatHttp::new(&config).unwrap();
        OfficialAccountClient::new(http, "brand_oa", APPID, Secret::new(SECRET))
    }
}

/// Fast retries, a generous rate, a short timeout.
pub fn test_config(base_url: &str) -> ApiConfig {
    ApiConfig {
        base_url: base_url.to_string(),
        wecom_base_url: base_url.to_string(),
        concurrency: 8,
        requests_per_second: 100_000,
        timeout: Duration::from_secs(2),
        max_retries: 3,
        backoff: Duration::from_millis(1),
        rate_limit_wait: Duration::from_millis(50),
        min_token_lifetime: Duration::from_secs(1),
        ..ApiConfig::default()
    }
}

/// 28-character OpenIDs like WeChat's, in list order.
pub fn follower_ids(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("oFollower{i:019}")).collect()
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let scripted = state
        .scripts
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    match scripted {
        Some(Reply::Sleep(delay)) => tokio::time::sleep(delay).await,
        Some(reply) => return scripted_reply(&state, reply, &query, &body),
        None => {}
    }
    if path == STABLE_TOKEN {
        return issue_token(&state, &body);
    }
    let token_ok = query.get("access_token").is_some_and(|token| {
        state.current_token.lock().unwrap().as_deref() == Some(token.as_str())
    });
    if !token_ok {
        return errcode(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    }
    let is_json = headers
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    match path.as_str() {
        USER_GET => user_get(&state, query.get("next_openid").map(String::as_str)).into_response(),
        BATCHGET if !is_json => errcode(47001, "data format error"),
        BATCHGET => batchget(&body),
        QUOTA => Json(json!({
            "errcode": 0, "errmsg": "ok",
            "quota": {"daily_limit": 500, "used": 12, "remain": 488},
            "rate_limit": {"call_count": 5000, "refresh_second": 60},
        }))
        .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn scripted_reply(
    state: &FakeState,
    reply: Reply,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Response {
    match reply {
        Reply::Json(value) => Json(value).into_response(),
        Reply::ErrCode(code, message) => errcode(code, message),
        Reply::Status(status) => {
            (StatusCode::from_u16(status).unwrap(), "upstream error").into_response()
        }
        Reply::Html => (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Reply::Truncated => (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"total":23001,"count":10000,"data":{"openid":["oPtYgjmUhBel31iEl2"#,
        )
            .into_response(),
        Reply::Drop => {
            // The pause lets the headers and first chunk go out before the break.
            use futures::StreamExt;
            let head = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(br#"{"total":23001,"#))
            });
            let break_off = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("connection dropped by the fake"))
            });
            Response::new(Body::from_stream(head.chain(break_off)))
        }
        Reply::Huge { bytes, chunked } => {
            const CHUNK: usize = 64 * 1024;
            let filler = |n: usize| Bytes::from(vec![b' '; n]);
            if !chunked {
                let mut body = vec![b' '; bytes];
                body[0] = b'{';
                body[bytes - 1] = b'}';
                return (StatusCode::OK, [("content-type", "application/json")], body)
                    .into_response();
            }
            let chunks = (0..bytes.div_ceil(CHUNK))
                .map(move |i| Ok::<_, std::io::Error>(filler(CHUNK.min(bytes - i * CHUNK))));
            Response::new(Body::from_stream(futures::stream::iter(chunks)))
        }
        Reply::RevokeToken => {
            *state.current_token.lock().unwrap() = None;
            errcode(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )
        }
        Reply::EchoCredentials(code) => {
            let token = query.get("access_token").cloned().unwrap_or_default();
            let secret = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("secret").and_then(Value::as_str).map(String::from))
                .unwrap_or_default();
            let message = format!("invalid credential {token} secret {secret}");
            Json(json!({"errcode": code, "errmsg": message})).into_response()
        }
        Reply::Sleep(_) => unreachable!("handled by the caller"),
    }
}

struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            StatusCode::OK,
            [("content-type", "application/json; encoding=utf-8")],
            self.0.to_string(),
        )
            .into_response()
    }
}

/// WeChat's error form: HTTP 200 and an errmsg with a request id suffix.
fn errcode(code: i64, message: &str) -> Response {
    Json(json!({"errcode": code, "errmsg": format!("{message} rid: 64b09fbb-56b7faa9-1054a9fe")}))
        .into_response()
}

fn issue_token(state: &FakeState, body: &Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return errcode(47001, "data format error");
    };
    if request["grant_type"] != "client_credential" {
        return errcode(40002, "invalid grant_type");
    }
    if request["appid"] != APPID {
        return errcode(40013, "invalid appid");
    }
    if request["secret"] != SECRET {
        return errcode(40125, "invalid appsecret");
    }
    let mut current = state.current_token.lock().unwrap();
    let token = current.get_or_insert_with(|| {
        let n = state.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        format!("{TOKEN_MARKER}-{n}")
    });
    Json(json!({
        "access_token": token.clone(),
        "expires_in": state.expires_in.load(Ordering::SeqCst),
    }))
    .into_response()
}

/// Pages of 10,000 with WeChat's end-of-list quirk: the last page still
/// carries a next_openid; the call after it has count 0, no data, "".
fn user_get(state: &FakeState, next_openid: Option<&str>) -> Json {
    let followers = state.followers.lock().unwrap();
    let start = match next_openid {
        _ if state.repeat_first_page.load(Ordering::SeqCst) => 0,
        Some(cursor) if !cursor.is_empty() => followers
            .iter()
            .position(|openid| openid == cursor)
            .map_or(followers.len(), |i| i + 1),
        _ => 0,
    };
    let page: Vec<&String> = followers.iter().skip(start).take(10_000).collect();
    match page.last() {
        None => Json(json!({"total": followers.len(), "count": 0, "next_openid": ""})),
        Some(last) => Json(json!({
            "total": followers.len(),
            "count": page.len(),
            "data": {"openid": page},
            "next_openid": last,
        })),
    }
}

/// Followers come back in the post-2021 legacy form (empty nickname etc.);
/// OpenIDs starting with "gone" have unfollowed: `{"subscribe":0,"openid":..}`.
fn batchget(body: &Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return errcode(47001, "data format error");
    };
    let list = request["user_list"].as_array().cloned().unwrap_or_default();
    if list.is_empty() || list.len() > 100 {
        return errcode(40032, "invalid openid list size");
    }
    let users: Vec<Value> = list
        .iter()
        .map(|entry| {
            let openid = entry["openid"].as_str().unwrap_or_default();
            if openid.starts_with("gone") {
                json!({"subscribe": 0, "openid": openid})
            } else {
                legacy_user(openid)
            }
        })
        .collect();
    Json(json!({ "user_info_list": users })).into_response()
}

pub fn legacy_user(openid: &str) -> Value {
    json!({
        "subscribe": 1, "openid": openid, "nickname": "", "sex": 0, "language": "zh_CN",
        "city": "", "province": "", "country": "", "headimgurl": "",
        "subscribe_time": 1700000000, "unionid": format!("u{openid}"), "remark": "",
        "groupid": 0, "tagid_list": [2, 128], "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 98765, "qr_scene_str": "",
    })
}

/// A bare TCP server for failures axum cannot produce: connection `i` gets
/// `script[i]` written back verbatim, or is hung up on without an answer
/// when that is None (and once the script is over).
pub async fn raw_server(script: Vec<Option<String>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut script = script.into_iter();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut request).await;
            if let Some(Some(response)) = script.next() {
                let _ = socket.write_all(response.as_bytes()).await;
            }
            let _ = socket.shutdown().await;
        }
    });
    format!("http://{addr}")
}

/// A complete HTTP/1.1 200 response with a JSON body, closing the connection.
pub fn raw_json(body: &Value) -> String {
    let body = body.to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}
