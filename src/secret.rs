//! Secrets (AppSecrets, corp secrets, HMAC keys) and access tokens.
//!
//! Both types hold their value privately and print as `[REDACTED]` through
//! `Debug` and `Display`, so a secret cannot reach a log line, an error
//! message or a panic by accident: code must call [`Secret::expose`] or
//! [`AccessToken::expose`] to get at the value, and only the HTTP layer does.

use std::fmt;

/// A credential read from the environment or a file. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for the one place that sends it to WeChat.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// An access token issued by WeChat. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(value: impl Into<String>) -> Self {
        AccessToken(value.into())
    }

    /// The raw value, for the query string of one request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_tokens_never_print_their_value() {
        let secret = Secret::new("s3cr3t-value");
        let token = AccessToken::new("tok-value");
        let printed = format!("{secret} {secret:?} {token} {token:?}");
        assert!(!printed.contains("s3cr3t-value"));
        assert!(!printed.contains("tok-value"));
        assert_eq!(secret.expose(), "s3cr3t-value");
    }
}

/// `url` for a log line or an error: a password in it (`user:password@`)
/// becomes `REDACTED`, and the query (which may carry a token) is dropped.
pub fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("REDACTED"));
    }
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod url_tests {
    use super::redact_url;

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        let url = url::Url::parse("http://ops:hunter2@push.example:9091/p?token=t#f").unwrap();
        let shown = redact_url(&url);
        assert_eq!(shown, "http://ops:REDACTED@push.example:9091/p");
        assert!(!shown.contains("hunter2") && !shown.contains("token"));
    }
}
