//! The extract: one snapshotter per account kind, each turning WeChat API
//! pages (or a business's login export) into the account's rows.
//!
//! - [`official_account`]: followers, with the account's own token or a
//!   third-party platform's authorizer token: a streaming, checkpointed crawl
//!   ([`checkpoint`], [`known`]) whose rows the pipeline writes as they come;
//! - [`wecom`]: WeCom customer contacts → `contacts`, and the `idconvert`
//!   linking of contacts that come without UnionID;
//! - [`wecom_groups`]: WeCom customer group chats → `group_members`;
//! - [`app_users`]: Mini Program / mobile app / website login exports →
//!   `app_users`.
//!
//! Extractors call the network through [`crate::wechat`] and never write
//! anything: the pipeline hands their rows to [`crate::load`].

pub mod app_users;
pub mod checkpoint;
pub mod idconvert;
pub mod known;
pub mod oa_counts;
pub mod official_account;
pub mod openid_hash;
pub mod progress;
pub mod wecom;
pub mod wecom_groups;

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::job::{Account, AccountKind, AccountSpec, UnionidMode};
use crate::wechat::{
    ApiError, ComponentCredentials, OfficialAccountClient, WeChatHttp, WeComClient,
};

pub use app_users::ImportError;
pub use progress::{ExtractProgress, NoProgress};

/// Where an account kind's raw table lives and which columns feed the
/// `identities` table: what `merge` needs to read a raw partition back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawShape {
    /// The warehouse table (`followers`, …).
    pub table: &'static str,
    /// The column holding the member id.
    pub member_col: &'static str,
    /// The column holding when the member joined.
    pub joined_col: &'static str,
}

/// The raw table of `account`'s kind.
pub fn raw_shape(account: &Account) -> RawShape {
    use crate::load::layout;
    match account.kind() {
        AccountKind::OfficialAccount => RawShape {
            table: layout::FOLLOWERS,
            member_col: "openid",
            joined_col: "subscribe_time",
        },
        AccountKind::Wecom => RawShape {
            table: layout::CONTACTS,
            member_col: "external_userid",
            joined_col: "added_at",
        },
        AccountKind::MiniProgram | AccountKind::MobileApp | AccountKind::Website => RawShape {
            table: layout::APP_USERS,
            member_col: "openid",
            joined_col: "first_seen",
        },
    }
}

/// One account's raw table, as extracted (WeCom contacts, app users).
#[derive(Debug, Clone)]
pub struct RawTable {
    /// The warehouse table it belongs to (`contacts`, …).
    pub table: &'static str,
    /// The column holding the member id (`openid`, `external_userid`).
    pub member_col: &'static str,
    /// The column holding when the member joined.
    pub joined_col: &'static str,
    pub frame: DataFrame,
    /// Staff members whose contacts WeCom left out (no interop licence),
    /// committed without them because the account allows it; recorded in
    /// the snapshot's marker. 0 for every other account.
    pub unlicensed_staff_left_out: u64,
    /// The `id_links` of a corp linked through idconvert (see
    /// [`idconvert`]): the memory the next run starts from.
    pub id_links: Option<DataFrame>,
    /// The `group_members` of a WeCom corp that reads its customer groups
    /// (`groups = true`): their external members are members of the corp
    /// too (see [`wecom_groups`]).
    pub group_members: Option<DataFrame>,
}

/// Why one account could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Import(#[from] ImportError),
    /// WeChat answered, but left people out.
    #[error("{account_id}: WeCom left out the contacts of {unlicensed_staff} staff member(s) without an interop licence (fail_info.unlicensed_userid_list), so this corp's contacts are incomplete: buy or assign interop licences for them, or set allow_unlicensed = true on this account to commit without their contacts")]
    Incomplete {
        account_id: String,
        unlicensed_staff: usize,
    },
}

impl ExtractError {
    /// A bug on our side: the run stops.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ExtractError::Api(err) if err.is_fatal())
    }

    /// The account ran out of API quota (re-run later).
    pub fn is_quota(&self) -> bool {
        matches!(self, ExtractError::Api(err) if err.is_quota())
    }
}

/// The client of an Official Account (own AppSecret or third-party
/// authorizer token); None for other kinds.
pub fn official_account_client(
    account: &Account,
    http: &WeChatHttp,
) -> Option<OfficialAccountClient> {
    match &account.spec {
        AccountSpec::OfficialAccount { appid, secret, .. } => Some(OfficialAccountClient::new(
            http.clone(),
            &account.id,
            appid,
            secret.clone(),
        )),
        AccountSpec::ThirdPartyOfficialAccount { appid, auth, .. } => {
            let credentials = ComponentCredentials {
                component_appid: auth.component_appid.clone(),
                component_secret: auth.component_secret.clone(),
                verify_ticket: auth.verify_ticket.clone(),
                refresh_token: auth.refresh_token.clone(),
                origins: auth.origins.clone(),
            };
            Some(OfficialAccountClient::third_party(
                http.clone(),
                &account.id,
                appid,
                credentials,
            ))
        }
        _ => None,
    }
}

/// True for WeCom accounts whose contacts are linked through idconvert: they
/// need the (openid, unionid) pairs the run learned from the others first.
pub fn needs_idconvert(account: &Account) -> bool {
    matches!(
        account.spec,
        AccountSpec::Wecom {
            unionid_mode: UnionidMode::Idconvert,
            ..
        }
    )
}

/// Extracts a WeCom account (without idconvert) or an app-login import.
pub async fn extract_raw(
    account: &Account,
    http: &WeChatHttp,
    concurrency: usize,
) -> Result<RawTable, ExtractError> {
    match &account.spec {
        AccountSpec::Wecom {
            corpid,
            credentials,
            allow_unlicensed,
            ..
        } => {
            let client = WeComClient::with_credentials(
                http.clone(),
                &account.id,
                corpid,
                credentials.clone(),
            );
            let raw = wecom::snapshot(&client, concurrency, *allow_unlicensed).await;
            let raw = match raw {
                Ok(raw) => with_groups(account, &client, concurrency, raw).await,
                Err(error) => Err(error),
            };
            tracing::info!(account_id = %account.id, calls = %client.stats(), "WeChat calls");
            raw
        }
        AccountSpec::AppLogins { source, .. } => {
            Ok(app_users::snapshot(&account.id, source).await?)
        }
        AccountSpec::OfficialAccount { .. } | AccountSpec::ThirdPartyOfficialAccount { .. } => {
            Err(ExtractError::Api(ApiError::InvalidRequest {
                account_id: account.id.clone(),
                endpoint: "extract",
                detail: "Official Accounts are crawled by official_account::crawl (a bug)"
                    .to_string(),
            }))
        }
    }
}

/// Extracts a WeCom account with `unionid_mode = "idconvert"`: its contacts,
/// then their UnionIDs linked from `pairs` (UnionID → an OpenID of the same
/// Official Account or Mini Program) and `memory`, the corp's `id_links` of
/// the previous snapshot ([`idconvert`]). `memory` is `None` when ids are
/// pseudonymized: it would hold WeChat's own ids, so none is read or
/// written (and with no pairs, none is needed).
pub async fn extract_idconvert(
    account: &Account,
    http: &WeChatHttp,
    concurrency: usize,
    pairs: &BTreeMap<String, String>,
    memory: Option<idconvert::IdMemory>,
    today: chrono::NaiveDate,
) -> Result<RawTable, ExtractError> {
    let AccountSpec::Wecom {
        corpid,
        credentials,
        allow_unlicensed,
        idconvert_budget,
        ..
    } = &account.spec
    else {
        return Err(ExtractError::Api(ApiError::InvalidRequest {
            account_id: account.id.clone(),
            endpoint: "extract",
            detail: "idconvert for an account that is not a WeCom account (a bug)".to_string(),
        }));
    };
    let client =
        WeComClient::with_credentials(http.clone(), &account.id, corpid, credentials.clone());
    let contacts = client.contacts(concurrency).await?;
    let left_out = contacts.unlicensed_staff.len() as u64;
    let mut relations = wecom::complete(&account.id, contacts, *allow_unlicensed)?;
    let remember = memory.is_some();
    let link = idconvert::LinkInput {
        pairs,
        memory: memory.unwrap_or_default(),
        today,
        budget: *idconvert_budget,
        concurrency,
    };
    let (memory, stats) = idconvert::link_unionids(&client, &mut relations, link).await?;
    tracing::info!(account_id = %account.id, unionids_known = pairs.len(),
        contacts_to_link = stats.unlinked_contacts, linked = stats.linked,
        linked_from_memory = stats.linked_from_memory,
        conversions = stats.conversions, pending_id_lookups = stats.lookups,
        refused_pairs = stats.refused_pairs, remembered = memory.len(),
        calls = %client.stats(), "contacts linked through idconvert");
    if stats.unchecked > 0 {
        tracing::warn!(account_id = %account.id, unchecked = stats.unchecked,
            "idconvert_budget reached: these UnionIDs wait for the next runs (their contacts, if any, stay unlinked until then)");
    }
    let raw = RawTable {
        unlicensed_staff_left_out: left_out,
        id_links: (remember && !memory.is_empty()).then(|| memory.to_frame()),
        ..wecom::raw_table(relations)
    };
    with_groups(account, &client, concurrency, raw).await
}

/// `raw` with the corp's `group_members` when the account reads its
/// customer groups (`groups = true`, the default). Errors stop the account
/// like the contacts' do (48002 / 84074: the app lacks the permission).
async fn with_groups(
    account: &Account,
    client: &WeComClient,
    concurrency: usize,
    raw: RawTable,
) -> Result<RawTable, ExtractError> {
    if !matches!(account.spec, AccountSpec::Wecom { groups: true, .. }) {
        return Ok(raw);
    }
    let (members, stats) = wecom_groups::snapshot(client, concurrency).await?;
    tracing::info!(account_id = %account.id, chats = stats.chats, vanished = stats.vanished,
        list_calls = stats.list_calls, get_calls = stats.get_calls,
        group_member_rows = members.height(), "customer group chats read");
    Ok(RawTable {
        group_members: Some(members),
        ..raw
    })
}

/// UnionID → one OpenID of the same account, from the (openid, unionid)
/// columns of Official Account followers and Mini Program users: what
/// idconvert takes. App and website OpenIDs are left out (idconvert accepts
/// Official Account and Mini Program ones only).
pub fn learned_pairs<'a>(
    frames: impl Iterator<Item = (AccountKind, &'a DataFrame)>,
) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    for (kind, frame) in frames {
        if !matches!(
            kind,
            AccountKind::OfficialAccount | AccountKind::MiniProgram
        ) {
            continue;
        }
        let (Ok(openids), Ok(unionids)) = (frame.column("openid"), frame.column("unionid")) else {
            continue;
        };
        let (Ok(openids), Ok(unionids)) = (openids.str(), unionids.str()) else {
            continue;
        };
        for (openid, unionid) in openids.iter().zip(unionids.iter()) {
            if let (Some(openid), Some(unionid)) = (openid, unionid) {
                pairs
                    .entry(unionid.to_string())
                    .or_insert_with(|| openid.to_string());
            }
        }
    }
    pairs
}
