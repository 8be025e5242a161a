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
