//! The extract: one snapshotter per account kind, each turning WeChat API
//! pages (or a business's login export) into the account's raw table
//! (SPEC §4) as a polars DataFrame.
//!
//! - [`official_account`]: followers, with the account's own token or a
//!   third-party platform's authorizer token → `followers`;
//! - [`wecom`]: WeCom customer contacts → `contacts`, and the `idconvert`
//!   linking of contacts that come without UnionID;
//! - [`app_users`]: Mini Program / mobile app / website login exports →
//!   `app_users`.
//!
//! [`extract_all`] dispatches every account of a job to its snapshotter.
//! Extractors call the network through [`crate::wechat`] and never write
//! anything: the pipeline hands their tables to [`crate::load`].

pub mod app_users;
pub mod official_account;
pub mod wecom;

use std::collections::BTreeMap;

use polars::prelude::*;
use tracing::Instrument;

use crate::job::{Account, AccountKind, AccountSpec, Job, UnionidMode};
use crate::load::layout;
use crate::wechat::{
    ApiError, ComponentCredentials, ContactRelation, OfficialAccountClient, WeChatHttp, WeComClient,
};

pub use app_users::ImportError;

/// One account's raw table, as extracted.
#[derive(Debug, Clone)]
pub struct RawTable {
    /// The warehouse table it belongs to (`followers`, …).
    pub table: &'static str,
    /// The column holding the member id (`openid`, `external_userid`).
    pub member_col: &'static str,
    /// The column holding when the member joined.
    pub joined_col: &'static str,
    pub frame: DataFrame,
}

/// Why one account could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Import(#[from] ImportError),
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

/// Extracts every account of `job`, concurrently; the results are in the
/// job's account order.
///
/// WeCom accounts with `unionid_mode = "idconvert"` are linked last: their
/// contacts are read alongside everything else, but linking them needs the
/// (openid, unionid) pairs of every Official Account and Mini Program of the
/// run, so it waits until those are extracted.
pub async fn extract_all(job: &Job, http: &WeChatHttp) -> Vec<Result<RawTable, ExtractError>> {
    let concurrency = job.api.concurrency;
    let idconvert: Vec<&Account> = job.accounts.iter().filter(|a| needs_idconvert(a)).collect();
    let direct = futures::future::join_all(
        job.accounts
            .iter()
            .filter(|a| !needs_idconvert(a))
            .map(|account| in_span(account, extract_account(account, http, concurrency))),
    );
    let contacts = futures::future::join_all(
        idconvert
            .iter()
            .map(|account| in_span(account, read_contacts(account, http, concurrency))),
    );
    let (direct, contacts) = futures::join!(direct, contacts);

    let direct_accounts: Vec<&Account> = job
        .accounts
        .iter()
        .filter(|a| !needs_idconvert(a))
        .collect();
    let pairs = learned_pairs(direct_accounts.iter().copied().zip(&direct));
    let linked =
        futures::future::join_all(idconvert.iter().zip(contacts).map(|(account, contacts)| {
            let pairs = &pairs;
            in_span(account, async move {
                let (client, mut relations) = contacts?;
                let stats =
                    wecom::link_unionids(&client, &mut relations, pairs, concurrency).await?;
                tracing::info!(account_id = %account.id, unionids_known = pairs.len(),
                    contacts_to_link = stats.unlinked_contacts, linked = stats.linked,
                    idconvert_calls = stats.calls, refused_pairs = stats.refused_pairs,
                    "contacts linked through idconvert");
                finish(account, wecom::raw_table(relations), &client.stats())
            })
        }))
        .await;

    let mut direct = direct_accounts.iter().map(|a| a.id.as_str()).zip(direct);
    let mut linked = idconvert.iter().map(|a| a.id.as_str()).zip(linked);
    job.accounts
        .iter()
        .map(|account| {
            let next = if needs_idconvert(account) {
                linked.next()
            } else {
                direct.next()
            };
            match next {
                Some((id, result)) if id == account.id => result,
                // Both lists follow the job's order, so this cannot happen.
                _ => unreachable_order(account),
            }
        })
        .collect()
}

fn unreachable_order(account: &Account) -> Result<RawTable, ExtractError> {
    Err(ExtractError::Api(ApiError::InvalidRequest {
        account_id: account.id.clone(),
        endpoint: "extract",
        detail: "accounts were extracted out of order (a bug)".to_string(),
    }))
}

fn needs_idconvert(account: &Account) -> bool {
    matches!(
        account.spec,
        AccountSpec::Wecom {
            unionid_mode: UnionidMode::Idconvert,
            ..
        }
    )
}

async fn in_span<T>(account: &Account, work: impl std::future::Future<Output = T>) -> T {
    let span = tracing::info_span!("account", account_id = %account.id);
    work.instrument(span).await
}

/// Snapshots one account that needs nothing from the others.
async fn extract_account(
    account: &Account,
    http: &WeChatHttp,
    concurrency: usize,
) -> Result<RawTable, ExtractError> {
    match &account.spec {
        AccountSpec::OfficialAccount { appid, secret, .. } => {
            let client =
                OfficialAccountClient::new(http.clone(), &account.id, appid, secret.clone());
            let raw = official_account::snapshot(&client, concurrency).await?;
            finish(account, raw, &client.stats())
        }
        AccountSpec::ThirdPartyOfficialAccount { appid, auth, .. } => {
            let credentials = ComponentCredentials {
                component_appid: auth.component_appid.clone(),
                component_secret: auth.component_secret.clone(),
                verify_ticket: auth.verify_ticket.clone(),
                refresh_token: auth.refresh_token.clone(),
            };
            let client =
                OfficialAccountClient::third_party(http.clone(), &account.id, appid, credentials);
            let raw = official_account::snapshot(&client, concurrency).await?;
            finish(account, raw, &client.stats())
        }
        AccountSpec::Wecom { corpid, secret, .. } => {
            let client = WeComClient::new(http.clone(), &account.id, corpid, secret.clone());
            let raw = wecom::snapshot(&client, concurrency).await?;
            finish(account, raw, &client.stats())
        }
        AccountSpec::AppLogins { source, .. } => {
            let raw = app_users::snapshot(&account.id, source).await?;
            tracing::info!(account_id = %account.id, members = raw.frame.height(), "account snapshotted");
            Ok(raw)
        }
    }
}

/// The contacts of an idconvert account, before linking.
async fn read_contacts(
    account: &Account,
    http: &WeChatHttp,
    concurrency: usize,
) -> Result<(WeComClient, Vec<ContactRelation>), ExtractError> {
    let AccountSpec::Wecom { corpid, secret, .. } = &account.spec else {
        return Err(ExtractError::Api(ApiError::InvalidRequest {
            account_id: account.id.clone(),
            endpoint: "extract",
            detail: "contacts read for an account that is not a WeCom account (a bug)".to_string(),
        }));
    };
    let client = WeComClient::new(http.clone(), &account.id, corpid, secret.clone());
    let relations = client.contacts(concurrency).await?;
    Ok((client, relations))
}

fn finish(
    account: &Account,
    raw: RawTable,
    stats: &crate::wechat::StatsSnapshot,
) -> Result<RawTable, ExtractError> {
    tracing::info!(account_id = %account.id, rows = raw.frame.height(), calls = %stats, "account snapshotted");
    Ok(raw)
}

/// UnionID → one OpenID of the same account, from every Official Account
/// follower and Mini Program user extracted: what idconvert takes. App and
/// website OpenIDs are left out (idconvert accepts Official Account and Mini
/// Program ones only).
fn learned_pairs<'a, 'b>(
    results: impl Iterator<Item = (&'a Account, &'b Result<RawTable, ExtractError>)>,
) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    for (account, result) in results {
        let usable = matches!(
            account.kind(),
            AccountKind::OfficialAccount | AccountKind::MiniProgram
        );
        let Ok(raw) = result else { continue };
        if !usable || !(raw.table == layout::FOLLOWERS || raw.table == layout::APP_USERS) {
            continue;
        }
        let (Ok(openids), Ok(unionids)) = (raw.frame.column("openid"), raw.frame.column("unionid"))
        else {
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
