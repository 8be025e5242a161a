//! The step `run` ends with and `merge` consists of: from the identities of
//! every account of the job, write the derived tables (identities, people,
//! audience, overlap, changes), delete the date's files the writer does not
//! list, write the manifest last, and drop the date's crawl state.

use polars::prelude::*;

use crate::extract::RawShape;
use crate::job::{Account, Job};
use crate::load::{self, layout, state, Manifest, ManifestAccount, SnapshotWriter};
use crate::transform::{self, AccountRef};

use super::RunError;

/// One account's members in the `identities` shape, from its raw table
/// (just extracted, or read back from the store by `merge`).
#[derive(Debug, Clone)]
pub struct LandedAccount {
    pub account: AccountRef,
    pub identities: DataFrame,
}

/// Builds `account`'s identities from its raw table of the given shape.
pub fn account_identities(
    account: &Account,
    shape: RawShape,
    raw: DataFrame,
) -> PolarsResult<LandedAccount> {
    let kind = account.kind().as_str();
    // Followers hold each OpenID once; other raw tables have a row per
    // (contact, staff member) or per login and are grouped by member.
    let members = if shape.table == layout::FOLLOWERS {
        transform::unique_member_identities
    } else {
        transform::member_identities
    };
    let identities = members(
        &account.id,
        kind,
        raw.lazy(),
        shape.member_col,
        shape.joined_col,
    )
    .collect()?;
    Ok(LandedAccount {
        account: AccountRef {
            account_id: account.id.clone(),
            account_kind: kind.to_string(),
        },
        identities,
    })
}

/// What [`commit_snapshot`] committed.
#[derive(Debug)]
pub struct Committed {
    pub manifest: load::Manifest,
    pub audience: DataFrame,
}

/// Derives and writes the date's tables from `landed` (in job order), then
/// commits: stale files out, manifest last, crawl state deleted. `previous`
/// is the previous complete snapshot, which `changes` compares against.
pub async fn commit_snapshot(
    job: &Job,
    run_id: &str,
    mut writer: SnapshotWriter,
    landed: Vec<LandedAccount>,
    previous: Option<&Manifest>,
) -> Result<Committed, RunError> {
    let store = writer.store().clone();
    let date = writer.date();
    let accounts: Vec<AccountRef> = landed.iter().map(|l| l.account.clone()).collect();
    let manifest_accounts = landed
        .iter()
        .map(|l| ManifestAccount {
            account_id: l.account.account_id.clone(),
            account_kind: l.account.account_kind.clone(),
            members: l.identities.height() as i64,
        })
        .collect();
    let parts = landed.into_iter().map(|l| l.identities.lazy()).collect();
    let identities = transform::identities(parts)?.collect()?;
    let previous_identities = match previous {
        Some(manifest) => {
            tracing::info!(previous_date = %manifest.snapshot_date, "changes since the previous complete snapshot");
            Some(load::history::identities_of(&store, manifest).await?)
        }
        None => None,
    };
    let mut derived = transform::derive_since(&accounts, identities, previous_identities)?;
    for (table, frame) in [
        (layout::IDENTITIES, &mut derived.identities),
        (layout::PEOPLE, &mut derived.people),
        (layout::AUDIENCE, &mut derived.audience),
        (layout::OVERLAP, &mut derived.overlap),
        (layout::CHANGES, &mut derived.changes),
    ] {
        writer.write_date_table(table, frame).await?;
    }
    let manifest = writer
        .commit(&job.name, run_id, manifest_accounts, &layout::ALL_TABLES)
        .await?;
    // The date is complete: its crawl state has served its purpose.
    state::delete_date_state(&store, date).await?;
    Ok(Committed {
        manifest,
        audience: derived.audience,
    })
}
