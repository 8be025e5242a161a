//! The job file exactly as written: serde structs for the whole schema of
//! SPEC §3, every table with `deny_unknown_fields`, and `Spanned` values so
//! that later checks can name the line they are about.
//!
//! Nothing here judges values; `validate` does. Every key is optional at this
//! level so that a missing key gets a message with a fix, not serde's
//! "missing field".

use std::fmt;
use std::ops::Range;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::AccountKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJob {
    pub name: Option<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub output: Option<Spanned<String>>,
    #[serde(default)]
    pub api: super::api::RawApi,
    #[serde(default)]
    pub privacy: RawPrivacy,
    #[serde(default)]
    pub reconciliation: super::reconciliation::RawReconciliation,
    /// The span is that of the first `[[accounts]]` header (or of `accounts = []`).
    pub accounts: Option<Spanned<Vec<Spanned<RawAccount>>>>,
}

/// `[privacy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivacy {
    pub pseudonymize: Option<Spanned<bool>>,
    pub key: Option<Spanned<RawSecret>>,
    pub drop: Option<Vec<Spanned<String>>>,
}

/// One `[[accounts]]` table: the union of the keys of every kind. Which keys
/// a kind takes is [`keys_of`]'s business.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub id: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub appid: Option<Spanned<String>>,
    pub secret: Option<Spanned<RawSecret>>,
    pub refresh: Option<Spanned<String>>,
    pub auth: Option<Spanned<RawAuth>>,
    pub source: Option<Spanned<String>>,
    pub corpid: Option<Spanned<String>>,
    pub unionid_mode: Option<Spanned<String>>,
    pub allow_unlicensed: Option<Spanned<bool>>,
    pub idconvert_budget: Option<Spanned<i64>>,
    pub groups: Option<Spanned<bool>>,
}

impl RawAccount {
    /// The kind-specific keys present in this table (everything but `id` and
    /// `kind`), in schema order, with the span of their value.
    pub fn kind_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut keys = Vec::new();
        let mut push = |name: &'static str, span: Option<Range<usize>>| {
            if let Some(span) = span {
                keys.push((name, span));
            }
        };
        push("appid", self.appid.as_ref().map(Spanned::span));
        push("secret", self.secret.as_ref().map(Spanned::span));
        push("refresh", self.refresh.as_ref().map(Spanned::span));
        push("auth", self.auth.as_ref().map(Spanned::span));
        push("source", self.source.as_ref().map(Spanned::span));
        push("corpid", self.corpid.as_ref().map(Spanned::span));
        push(
            "unionid_mode",
            self.unionid_mode.as_ref().map(Spanned::span),
        );
        push(
            "allow_unlicensed",
            self.allow_unlicensed.as_ref().map(Spanned::span),
        );
        push(
            "idconvert_budget",
            self.idconvert_budget.as_ref().map(Spanned::span),
        );
        push("groups", self.groups.as_ref().map(Spanned::span));
        keys
    }
}

/// The keys (besides `id` and `kind`) that each kind of account takes.
pub(super) fn keys_of(kind: AccountKind) -> &'static [&'static str] {
    match kind {
        AccountKind::OfficialAccount => &["appid", "secret", "auth", "refresh"],
        AccountKind::Wecom => &[
            "corpid",
            "secret",
            "auth",
            "unionid_mode",
            "allow_unlicensed",
            "idconvert_budget",
            "groups",
        ],
        // No list API exists for these: members come from the business's own export.
        AccountKind::MiniProgram | AccountKind::MobileApp | AccountKind::Website => &["source"],
    }
}

/// `auth = { ... }`: an Official Account managed through a third-party
/// platform (component) instead of its own AppSecret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub component_appid: Option<Spanned<String>>,
    pub component_secret: Option<Spanned<RawSecret>>,
    pub verify_ticket: Option<Spanned<RawSecret>>,
    pub refresh_token: Option<Spanned<RawSecret>>,
    /// WeCom third-party apps (第三方应用).
    pub suite_id: Option<Spanned<String>>,
    pub suite_secret: Option<Spanned<RawSecret>>,
    pub suite_ticket: Option<Spanned<RawSecret>>,
    pub permanent_code: Option<Spanned<RawSecret>>,
}

/// Where a secret comes from, as written.
#[derive(Debug)]
pub(super) enum RawSecret {
    /// `secret = "..."`: rejected by validation. The value is deliberately not
    /// kept, so that no error, log or `Debug` can ever show it.
    Literal,
    /// `secret = { env = "..." }` or `{ file = "..." }` (exactly one, checked later).
    Ref(RawSecretRef),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecretRef {
    pub env: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = RawSecret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a table { env = "NAME" } or { file = "PATH" }"#)
            }

            fn visit_str<E: de::Error>(self, _literal: &str) -> Result<RawSecret, E> {
                Ok(RawSecret::Literal)
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawSecret, M::Error> {
                RawSecretRef::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawSecret::Ref)
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}
