//! The client for WeChat's server APIs: everything the extractors need to
//! talk to WeChat, and nothing about tables or files.
//!
//! - [`config`]: the `[api]` settings (hosts, rate, timeout, retry policy).
//! - [`errcode`]: every errcode classified once, in one table ([`Action`]).
//! - [`error`]: [`ApiError`], what a call returns when it fails for good.
//! - `http`: the single send path (rate limit, timeout, retry, backoff,
//!   decode, classify, redact, count) behind [`WeChatHttp`].
//! - `cursor`: the repeated-page guard of every paged listing.
//! - `token`: one shared, compare-and-refreshed access token per account.
//! - [`official_account`]: the Official Account endpoints.
//! - [`oa_counts`]: what WeChat itself counts about an Official Account's
//!   followers (tags, datacube statistics).
//! - [`open_platform`]: Official Accounts acting through a third-party
//!   platform (component and authorizer tokens).
//! - [`wecom`]: WeCom customer contacts and `idconvert`.
//! - [`wecom_groups`]: WeCom customer group chats and their members.
//! - [`stats`]: per-account call counters.
//!
//! Access tokens travel in URL query strings and secrets in request bodies;
//! neither can reach an error or a log: errors carry the endpoint path only.

pub mod body;
pub mod config;
mod cursor;
pub mod decode;
pub mod errcode;
pub mod error;
mod http;
pub mod oa_counts;
pub mod official_account;
pub mod open_platform;
pub mod stats;
mod token;
pub mod wecom;
pub mod wecom_groups;
mod wire;

#[cfg(test)]
mod tests;

pub use config::ApiConfig;
pub use errcode::{classify, Action, CallKind, Classification};
pub use error::{ApiError, Failure};
pub use http::{backoff_delay, is_loopback, WeChatHttp};
pub use oa_counts::{CumulateDay, SummaryRow, Tag};
pub use official_account::{FollowerPage, FollowerPager, OfficialAccountClient, Quota, UserInfo};
pub use open_platform::{ComponentCredentials, CredentialOrigins, Origin};
pub use stats::{CallStats, StatsSnapshot};
pub use token::REFRESH_MARGIN;
pub use wecom::{
    ContactPage, ContactRelation, Contacts, Conversion, SuiteCredentials, WeComClient,
    WecomCredentials,
};
pub use wecom_groups::{ChatMember, GroupChat, GroupChats, ListedChat};
