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
use tracing::Instrument;

use crate::job::Job;
use crate::load::lease::{lease_ttl, Lease};
use crate::load::{self, state, SnapshotWriter, Store};
use crate::pipeline::{self, Committed, RunContext, RunError, RunSummary};

use super::runner::{MetricsSinks, Runner};
use super::{Exit, RunEnd, RunOutcome};

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
    let tag = load::RunTag {
        date,
        run_id: run_id.to_string(),
    };
    let span = pipeline::run_span(&tag, None);
    async {
        let (store, uploads) = load::store::open_for_run(&job.output, tag.clone())?;
        let lease = Lease::acquire(&store, date, None, run_id, lease_ttl()).await?;
        pipeline::abort_stale_uploads(uploads.as_deref(), &store).await;
        let result = merge_leased(job, date, run_id, store, &lease).await;
        lease.release().await;
        result
    }
    .instrument(span)
    .await
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
    let early =
        pipeline::StartedEarly::start(&store, &job.output, date, run_id, previous.as_ref(), false);
    let mut writer = SnapshotWriter::begin(store.clone(), date, run_id);
    let mut landed = Vec::with_capacity(found.len());
    for (account, partition) in found {
        let groups = partition
            .also
            .iter()
            .find(|file| file.table == load::layout::GROUP_MEMBERS)
            .map(|file| file.path.as_str());
        let mut read = pipeline::read_back(
            &store,
            account,
            &partition.partition.path,
            groups,
            previous.is_some(),
        )
        .await?;
        read.unlicensed_staff_left_out = partition.unlicensed_staff_left_out;
        landed.push(read);
        for file in partition.files() {
            writer.add_file(file);
        }
    }
    let committed = pipeline::commit_snapshot(job, lease, writer, landed, early).await?;
    Ok(MergeOutcome::Committed(Box::new(committed)))
}

/// `unionsnap merge`: commit a date from the shards' raw partitions.
pub async fn merge_command(
    job: Job,
    date: Option<NaiveDate>,
    sinks: MetricsSinks,
) -> anyhow::Result<u8> {
    let date = date.unwrap_or_else(|| job.snapshot_date_today());
    let run_id = super::runner::new_run_id();
    tracing::info!(job = %job.name, snapshot_date = %date, run_id = %run_id, "merge starts");
    let started = std::time::Instant::now();
    let context = RunContext::new(&job)?;
    let outcome = match merge(&job, date, &run_id).await {
        Ok(outcome) => outcome,
        Err(RunError::LeaseHeld(held)) => {
            eprintln!("error: {held}");
            return Ok(Exit::LeaseHeld.code());
        }
        Err(RunError::Load(lost @ load::LoadError::LeaseLost { .. })) => {
            eprintln!("error: {lost}");
            return Ok(Exit::LeaseHeld.code());
        }
        Err(error) => return Err(error.into()),
    };
    let mut runner = Runner::new(job, context, sinks);
    match outcome {
        MergeOutcome::Missing(accounts) => {
            eprintln!(
                "snapshot {date} cannot be merged: no raw partition for {} — their shards have not landed or failed; re-run those shards, then merge again",
                accounts.join(", ")
            );
            let end = RunEnd::new(Exit::Partial, RunOutcome::Partial, None, started);
            runner.publish(&end).await;
            Ok(Exit::Partial.code())
        }
        MergeOutcome::Committed(committed) => {
            let Committed { manifest, audience } = *committed;
            let summary = RunSummary {
                // The raw files are the shards' (their runs counted them).
                files: (manifest.files.iter())
                    .filter(|f| DERIVED_TABLES.contains(&f.table.as_str()))
                    .cloned()
                    .collect(),
                accounts: (manifest.accounts.iter())
                    .map(|a| pipeline::AccountOutcome::Snapshotted {
                        account_id: a.account_id.clone(),
                        members: a.members,
                    })
                    .collect(),
                manifest: Some(manifest),
                audience: Some(audience),
                // The shards published theirs.
                reconciliation: Vec::new(),
                interrupted: false,
            };
            let end = RunEnd::new(Exit::Ok, RunOutcome::Complete, Some(summary), started);
            runner.publish(&end).await;
            tracing::info!(job = %runner.job.name, snapshot_date = %date, run_id = %run_id, "snapshot committed");
            Ok(Exit::Ok.code())
        }
    }
}

/// The tables `merge` writes itself (the raw ones were written by the shards).
const DERIVED_TABLES: [&str; 5] = [
    load::layout::IDENTITIES,
    load::layout::PEOPLE,
    load::layout::AUDIENCE,
    load::layout::OVERLAP,
    load::layout::CHANGES,
];
