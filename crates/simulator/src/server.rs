//! The HTTP face of the simulator: an axum server on a local port serving the
//! Official Account, third-party platform and WeCom endpoints (one server
//! plays both hosts: their paths do not collide), with faults, latency and
//! statistics wrapped around every call, plus `/_sim/*` endpoints for tests
//! and benchmarks.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::faults::{FaultKind, Faults, BAD_GATEWAY_HTML, NON_JSON_HTML};
use super::handlers::{self, errcode, ApiRequest, Endpoint, Reply};
use super::scenario::Scenario;
use super::state::{lock, SimState, SimStats};
use super::truth::Truth;

/// WeChat's own (odd) content type for JSON answers.
const JSON_CONTENT_TYPE: &str = "application/json; encoding=utf-8";
const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// How long [`SimServer::shutdown`] lets open connections finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running simulator. Dropping it also stops the server (without waiting).
pub struct SimServer {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

/// Binds `addr` (use `127.0.0.1:0` in tests), builds the population and
/// serves the scenario until [`SimServer::shutdown`].
pub async fn start(scenario: Scenario, addr: SocketAddr) -> io::Result<SimServer> {
    scenario
        .validate()
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = tokio::task::spawn_blocking(move || SimState::new(scenario))
        .await
        .map_err(io::Error::other)?;
    let state = Arc::new(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(Arc::clone(&state));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped sender means the SimServer is gone: stop too.
                let _ = stopped.await;
            })
            .await
    });
    Ok(SimServer {
        addr,
        state,
        stop: Some(stop),
        task,
    })
}

impl SimServer {
    /// Serves `body` (a response real WeChat gave) for the next call to
    /// `path` whose request lists at least `min_list` ids, instead of the
    /// normal answer. Queued bodies are served in order.
    pub fn replay(&self, path: &str, body: serde_json::Value, min_list: usize) {
        lock(&self.state.replays)
            .entry(path.to_string())
            .or_default()
            .push_back(super::state::Replay { body, min_list });
    }

    /// `batch/get_by_user` leaves `follow_info.userid` out whenever it is
    /// asked for several staff members.
    pub fn omit_follow_userid(&self, on: bool) {
        self.state
            .omit_follow_userid
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes `account_id` answer `48001 api unauthorized` to `tags/get` and
    /// the datacube endpoints (an account that is not verified), or not.
    /// Returns false for an unknown account.
    pub fn set_unverified(&self, account_id: &str, unverified: bool) -> bool {
        let Some(account) = self.state.official_account_index(account_id) else {
            return false;
        };
        let mut set = lock(&self.state.unverified);
        if unverified {
            set.insert(account);
        } else {
            set.remove(&account);
        }
        true
    }

    /// Adds `offset` followers to every `cumulate_user` the datacube reports
    /// for `account_id` (WeChat's own count disagreeing with its list).
    /// Returns false for an unknown account.
    pub fn set_cumulate_offset(&self, account_id: &str, offset: i64) -> bool {
        let Some(account) = self.state.official_account_index(account_id) else {
            return false;
        };
        lock(&self.state.cumulate_offset).insert(account, offset);
        true
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the job file's `[api] base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What has been served so far.
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Every access token issued so far, for tests that check none leaked.
    pub fn issued_tokens(&self) -> Vec<String> {
        super::state::lock(&self.state.tokens).all_issued()
    }

    /// The simulated day currently served.
    pub fn day(&self) -> u32 {
        self.state.day()
    }

    /// Moves the population to `day` (follows and unfollows happen) and
    /// starts a new quota day. Blocks while the follower lists are rebuilt.
    pub fn set_day(&self, day: u32) {
        self.state.set_day(day);
    }

    /// Puts day 0 on `date` for the datacube endpoints (default 2026-11-21,
    /// [`super::date_of_day`]): a job that snapshots day `d` on `date + d`
    /// (the demo's dates end today) then gets WeChat's counts of its dates.
    pub fn set_first_date(&self, date: chrono::NaiveDate) {
        *lock(&self.state.first_date) = date;
    }

    /// Replaces the faults and latency from now on (e.g. after the tokens a
    /// test needs were fetched cleanly).
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(&faults);
    }

    /// The scenario as served now (its `day` is the current day).
    pub fn scenario(&self) -> Scenario {
        Scenario {
            day: self.state.day(),
            faults: self.state.faults(),
            ..self.state.scenario.clone()
        }
    }

    /// The ground truth of the current day.
    pub fn truth(&self) -> Truth {
        self.scenario().truth()
    }

    /// Stops accepting connections and waits (briefly) for open ones.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

fn router(state: Arc<SimState>) -> Router {
    let endpoint = |endpoint: Endpoint| {
        move |State(state): State<Arc<SimState>>, RawQuery(query): RawQuery, body: Bytes| {
            serve(state, endpoint, query, body)
        }
    };
    let mut router = Router::new();
    for e in Endpoint::ALL {
        router = if e.is_post() {
            router.route(e.path(), post(endpoint(e)))
        } else {
            router.route(e.path(), get(endpoint(e)))
        };
    }
    router
        .route("/_sim/stats", get(sim_stats))
        .route("/_sim/day", post(sim_set_day))
        .route("/_sim/truth", get(sim_truth))
        .with_state(state)
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (status, [(CONTENT_TYPE, JSON_CONTENT_TYPE)], body.into()).into_response()
}

/// One API call: count it, maybe inject a fault, answer, count quota and
/// errcodes, then wait the configured latency.
async fn serve(
    state: Arc<SimState>,
    endpoint: Endpoint,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let path = endpoint.path();
    state.record(|stats| *stats.calls.entry(path.to_string()).or_insert(0) += 1);
    let request = ApiRequest::new(endpoint, query.as_deref(), body);
    if let Some(body) = replayed(&state, path, &request) {
        state.record(|stats| *stats.faults.entry("replay".to_string()).or_insert(0) += 1);
        record_errcode(&state, body["errcode"].as_i64().unwrap_or(0));
        return json_response(StatusCode::OK, body.to_string());
    }
    let response = match state.roll_fault() {
        None => {
            // A call under a daily quota is checked and counted as one step:
            // concurrent calls must not both pass the last unit of quota.
            let _gate = (state.scenario.quotas.contains_key(path)).then(|| lock(&state.quota_gate));
            let mut reply = handlers::handle(&state, &request);
            if endpoint == Endpoint::BatchGetByUser
                && state
                    .omit_follow_userid
                    .load(std::sync::atomic::Ordering::Relaxed)
                && request_list_len(&request) > 1
            {
                reply.body = without_follow_userid(&reply.body);
            }
            if reply.errcode == 0 {
                if let Some(account) = reply.account {
                    state.count_quota(account, path);
                }
                state.record(|stats| *stats.ok_calls.entry(path.to_string()).or_insert(0) += 1);
            }
            record_errcode(&state, reply.errcode);
            json_response(StatusCode::OK, reply.body)
        }
        Some(kind) => {
            state.record(|stats| *stats.faults.entry(kind.name().to_string()).or_insert(0) += 1);
            faulted(&state, kind, &request)
        }
    };
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

/// The next recorded answer for `path`, if this request qualifies.
fn replayed(state: &SimState, path: &str, request: &ApiRequest) -> Option<serde_json::Value> {
    let mut replays = lock(&state.replays);
    let queue = replays.get_mut(path)?;
    let next = queue.front()?;
    if request_list_len(request) < next.min_list {
        return None;
    }
    queue.pop_front().map(|replay| replay.body)
}

/// How many ids a batch request lists (`user_list`, `userid_list`); 0 for others.
fn request_list_len(request: &ApiRequest) -> usize {
    let Ok(body) = request.json_body() else {
        return 0;
    };
    ["user_list", "userid_list"]
        .iter()
        .find_map(|key| body.get(*key).and_then(serde_json::Value::as_array))
        .map_or(0, Vec::len)
}

/// A `batch/get_by_user` body with `follow_info.userid` removed from every
/// relation, as wechatpy's fixture and developers' reports show.
fn without_follow_userid(body: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.to_string();
    };
    if let Some(list) = value["external_contact_list"].as_array_mut() {
        for entry in list {
            if let Some(follow) = entry["follow_info"].as_object_mut() {
                follow.remove("userid");
            }
        }
    }
    value.to_string()
}

fn record_errcode(state: &SimState, code: i64) {
    if code != 0 {
        state.record(|stats| *stats.errcodes.entry(code).or_insert(0) += 1);
    }
}

/// The answer to a request that drew a fault. Faulted requests never count
/// against quotas and never change the population.
fn faulted(state: &SimState, kind: FaultKind, request: &ApiRequest) -> Response {
    let error = |code: i64| {
        record_errcode(state, code);
        json_response(
            StatusCode::OK,
            Reply::error_for(request.endpoint, code).body,
        )
    };
    match kind {
        FaultKind::Busy => error(errcode::BUSY),
        FaultKind::MinuteLimit => error(errcode::MINUTE_QUOTA),
        // A token request carries no token to knock out, and a 40001 there
        // means "wrong AppSecret" (a permanent error): answer busy instead.
        FaultKind::TokenInvalid | FaultKind::TokenExpired if request.endpoint.issues_tokens() => {
            error(errcode::BUSY)
        }
        FaultKind::TokenInvalid => {
            if let Some(token) = request.param("access_token") {
                lock(&state.tokens).invalidate(token);
            }
            error(errcode::INVALID_CREDENTIAL)
        }
        FaultKind::TokenExpired => {
            if let Some(token) = request.param("access_token") {
                lock(&state.tokens).expire(token);
            }
            error(errcode::ACCESS_TOKEN_EXPIRED)
        }
        FaultKind::Http502 => (
            StatusCode::BAD_GATEWAY,
            [(CONTENT_TYPE, HTML_CONTENT_TYPE)],
            BAD_GATEWAY_HTML,
        )
            .into_response(),
        FaultKind::NonJson => (
            StatusCode::OK,
            [(CONTENT_TYPE, HTML_CONTENT_TYPE)],
            NON_JSON_HTML,
        )
            .into_response(),
        FaultKind::Truncate => {
            let body = Bytes::from(handlers::handle(state, request).body);
            json_response(StatusCode::OK, body.slice(..body.len() / 2))
        }
        FaultKind::Drop => {
            let body = Bytes::from(handlers::handle(state, request).body);
            let full_length = body.len().to_string();
            // Promise the whole body, send half, then fail the stream: hyper
            // aborts the connection mid-body, as a reset would.
            let chunks: Vec<Result<Bytes, io::Error>> = vec![
                Ok(body.slice(..body.len() / 2)),
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated dropped connection",
                )),
            ];
            (
                StatusCode::OK,
                [
                    (CONTENT_TYPE, JSON_CONTENT_TYPE.to_string()),
                    (CONTENT_LENGTH, full_length),
                ],
                Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
    }
}

async fn sim_stats(State(state): State<Arc<SimState>>) -> Json<SimStats> {
    Json(state.stats())
}

/// The ground truth of the day served now (for `make soak`, which runs
/// against a simulator process).
async fn sim_truth(
    State(state): State<Arc<SimState>>,
) -> Result<Json<Truth>, axum::http::StatusCode> {
    let scenario = Scenario {
        day: state.day(),
        faults: state.faults(),
        ..state.scenario.clone()
    };
    // Computing the truth loops over people × accounts: off the async workers.
    tokio::task::spawn_blocking(move || scenario.truth())
        .await
        .map(Json)
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)
}

#[derive(Deserialize)]
struct SetDay {
    day: u32,
}

/// `POST /_sim/day {"day":N}`: moves a `unionsnap simulate` server to
/// another day between two runs.
async fn sim_set_day(State(state): State<Arc<SimState>>, Json(set): Json<SetDay>) -> Response {
    let rebuilt = tokio::task::spawn_blocking(move || state.set_day(set.day)).await;
    match rebuilt {
        Ok(()) => json_response(StatusCode::OK, format!(r#"{{"day":{}}}"#, set.day)),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
