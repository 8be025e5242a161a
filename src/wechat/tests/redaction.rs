//! Tokens travel in URL query strings and secrets in token request bodies:
//! force every kind of failure and check that neither reaches the error's
//! Display or Debug form, nor a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::fake::{
    raw_json, raw_server, test_config, Fake, Reply, BATCHGET, SECRET, STABLE_TOKEN, TOKEN_MARKER,
    USER_GET,
};
use crate::wechat::ApiError;

fn assert_redacted(err: &ApiError) {
    let printed = format!("{err}\n{err:?}");
    assert!(!printed.contains(TOKEN_MARKER), "token leaked: {printed}");
    assert!(!printed.contains(SECRET), "secret leaked: {printed}");
    assert!(!printed.contains("access_token="), "URL leaked: {printed}");
}

/// A fake that answers `reply` to every call of `path` (more than the retries).
async fn failing(path: &str, reply: Reply) -> Fake {
    let fake = Fake::with_followers(3).await;
    fake.script(path, vec![reply; 10]);
    fake
}

#[tokio::test]
async fn an_errmsg_quoting_the_token_is_scrubbed() {
    let fake = failing(USER_GET, Reply::EchoCredentials(48001)).await;
    let err = fake.client().user_get_page(None).await.unwrap_err();
    assert!(err.to_string().contains("[REDACTED]"), "{err}");
    assert_redacted(&err);
}

#[tokio::test]
async fn an_errmsg_quoting_the_secret_is_scrubbed() {
    let fake = failing(STABLE_TOKEN, Reply::EchoCredentials(40013)).await;
    let err = fake.client().verify_credentials().await.unwrap_err();
    assert!(err.to_string().contains("[REDACTED]"), "{err}");
    assert_redacted(&err);
}

#[tokio::test]
async fn a_retried_errmsg_quoting_the_token_is_scrubbed() {
    let fake = failing(USER_GET, Reply::EchoCredentials(-1)).await;
    let err = fake.client().user_get_page(None).await.unwrap_err();
    assert!(matches!(err, ApiError::RetriesExhausted { .. }), "{err:?}");
    assert_redacted(&err);
}

#[tokio::test]
async fn transport_failures_do_not_leak_the_url() {
    for reply in [
        Reply::Drop,
        Reply::Html,
        Reply::Truncated,
        Reply::Status(502),
        Reply::Status(404),
    ] {
        let fake = failing(USER_GET, reply).await;
        let err = fake.client().user_get_page(None).await.unwrap_err();
        assert_redacted(&err);
    }
}

#[tokio::test]
async fn a_timeout_does_not_leak_the_url() {
    let fake = failing(USER_GET, Reply::Sleep(Duration::from_secs(3))).await;
    let mut config = test_config(&fake.base_url);
    config.timeout = Duration::from_millis(100);
    config.max_retries = 1;
    let err = fake
        .client_with(config)
        .user_get_page(None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_redacted(&err);
}

#[tokio::test]
async fn a_hang_up_does_not_leak_the_url() {
    let token = raw_json(&json!({"access_token": format!("{TOKEN_MARKER}-9"), "expires_in": 7200}));
    let base_url = raw_server(vec![Some(token)]).await;
    let fake = Fake::start().await;
    let err = fake
        .client_with(test_config(&base_url))
        .user_get_page(None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection failed"), "{err}");
    assert_redacted(&err);
}

#[tokio::test]
async fn a_refused_connection_does_not_leak_the_secret() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let fake = Fake::start().await;
    let err = fake
        .client_with(test_config(&closed))
        .verify_credentials()
        .await
        .unwrap_err();
    assert_redacted(&err);
}

#[tokio::test]
async fn an_unexpected_body_does_not_quote_its_values() {
    let body = json!({"user_info_list": format!("{TOKEN_MARKER}-1")});
    let fake = failing(BATCHGET, Reply::Json(body)).await;
    let err = fake
        .client()
        .batchget(&["oA".to_string()])
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::UnexpectedBody { .. }), "{err:?}");
    assert_redacted(&err);
}

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn retry_logs_name_the_endpoint_and_never_the_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = Fake::with_followers(3).await;
    fake.script(
        USER_GET,
        [Reply::EchoCredentials(-1), Reply::RevokeToken, Reply::Drop],
    );
    fake.client().user_get_page(None).await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("/cgi-bin/user/get"), "{logs}");
    assert!(logs.contains("retrying"), "{logs}");
    assert!(!logs.contains(TOKEN_MARKER), "{logs}");
    assert!(!logs.contains(SECRET), "{logs}");
    assert!(!logs.contains("access_token="), "{logs}");
}
