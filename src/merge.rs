//! `unionsnap merge JOB.toml --date D`: the second half of a sharded run.
//!
//! The pods of a Kubernetes Indexed Job each extract a share of the accounts
//! (`run --shard I/N`) and land raw partitions only: each written under a
//! name unique to its run, recorded in `_state/.../landed.json`, committed
//! nowhere. `merge` commits the date from them: the raw tables, the derived
//! tables built from them (the same [`pipeline::commit_snapshot`] an
//! unsharded run ends with, so the result is the same), the marker last.
//!
//! **The generation rule.** A landed partition records the date's snapshot
//! marker its run started from (`base`). `merge` takes a partition only if
//! that is still the date's marker: a partition landed before the date's
//! latest commit belongs to an earlier generation of runs and is never
//! committed. While an account has no partition of the current generation,
//! `merge` commits nothing and names those accounts (exit 3); what readers
//! see of the date does not change.

use chrono::NaiveDate;

use crate::job::Job;
use crate::load::lease::{lease_ttl, Lease};
use crate::load::{self, state, SnapshotWriter, Store};
use crate::pipeline::{self, Committed, RunError};

/// How a merge ended.
#[derive(Debug)]
pub enum MergeOutcome {
    /// Every account had landed: the date is committed.
    Committed(Box<Committed>),
    /// These accounts (job order) have no raw partition for the date yet;
    /// nothing was written.
    Missing(Vec<String>),
}

/// Commits `date` from the raw partitions of every account of `job`,
/// holding the date's lease (no run of the date may write meanwhile).
pub async fn merge(job: &Job, date: NaiveDate, run_id: &str) -> Result<MergeOutcome, RunError> {
    let (store, uploads) = load::store::open_for_run(
        &job.output,
        load::uploads::RunTag {
            run_id: run_id.to_string(),
            date,
        },
    )?;
    let lease = Lease::acquire(&store, date, None, run_id, lease_ttl()).await?;
    pipeline::abort_stale_uploads(uploads.as_deref()).await;
    let result = merge_leased(job, date, run_id, store, &lease).await;
    lease.release().await;
    result
}

async fn merge_leased(
    job: &Job,
    date: NaiveDate,
    run_id: &str,
    store: Store,
    lease: &Lease,
) -> Result<MergeOutcome, RunError> {
    let current = load::read_manifest(&store, date).await?;
    let base = current.as_ref().map(|m| m.run_id.clone());
    let mut all_landed = state::landed_of(&store, date).await?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for account in &job.accounts {
        match all_landed.remove(&account.id) {
            Some(landed) if landed.base == base => found.push((account, landed)),
            Some(landed) => {
                tracing::warn!(account_id = %account.id, run_id = %landed.run_id, "a partition landed before the date's latest commit: an earlier generation's, not merged");
                missing.push(account.id.clone());
            }
            None => missing.push(account.id.clone()),
        }
    }
    if !missing.is_empty() {
        return Ok(MergeOutcome::Missing(missing));
    }

    let previous = load::history::previous_manifest(&store, date).await?;
    let mut writer = SnapshotWriter::begin(store.clone(), date, run_id);
    let mut landed = Vec::with_capacity(found.len());
    for (account, partition) in found {
        let mut read = pipeline::read_back(
            &store,
            account,
            &partition.partition.path,
            previous.is_some(),
        )
        .await?;
        read.unlicensed_staff_left_out = partition.unlicensed_staff_left_out;
        landed.push(read);
        for file in partition.files() {
            writer.add_file(file);
        }
    }
    let committed =
        pipeline::commit_snapshot(job, lease, writer, landed, previous.as_ref()).await?;
    Ok(MergeOutcome::Committed(Box::new(committed)))
}
