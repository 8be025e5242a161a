//! One run of a job for one snapshot date: extract every account, transform,
//! load, commit — and the outcome that becomes the process exit code.
//!
//! Accounts are extracted concurrently and independently: an account that
//! fails (its quota is used up, its permission is missing) does not stop the
//! others. Their raw partitions are written, but the snapshot is only
//! committed (derived tables + manifest) when every account succeeded.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::extract::{self, ExtractError};
use crate::job::Job;
use crate::load::{self, layout, LoadError, ManifestAccount, SnapshotWriter};
use crate::transform::{self, AccountRef};
use crate::wechat::{ApiError, WeChatHttp};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub date: NaiveDate,
    pub run_id: String,
}

/// How one account fared.
#[derive(Debug, Clone)]
pub enum AccountOutcome {
    Snapshotted {
        account_id: String,
        members: i64,
    },
    Failed {
        account_id: String,
        error: String,
        quota: bool,
    },
}

/// The outcome of a run that got as far as the warehouse.
#[derive(Debug)]
pub struct RunSummary {
    pub date: NaiveDate,
    pub run_id: String,
    pub accounts: Vec<AccountOutcome>,
    /// Present when every account succeeded and the snapshot was committed.
    pub manifest: Option<load::Manifest>,
    pub audience: Option<DataFrame>,
}

impl RunSummary {
    /// True when the snapshot was committed.
    pub fn is_complete(&self) -> bool {
        self.manifest.is_some()
    }

    pub fn failed_accounts(&self) -> Vec<&str> {
        self.accounts
            .iter()
            .filter_map(|o| match o {
                AccountOutcome::Failed { account_id, .. } => Some(account_id.as_str()),
                AccountOutcome::Snapshotted { .. } => None,
            })
            .collect()
    }
}

/// A failure that stops the whole run (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("transform failed: {0}")]
    Transform(#[from] PolarsError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
}

/// Runs `job` for `opts.date`.
pub async fn run(job: &Job, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let store = load::open(&job.output)?;
    let mut writer = SnapshotWriter::begin(store, opts.date).await?;
    let http = WeChatHttp::new(&job.api)?;

    let extracted = extract::extract_all(job, &http).await;

    let mut outcomes = Vec::new();
    let mut identities = Vec::new();
    for (account, result) in job.accounts.iter().zip(extracted) {
        match result {
            Ok(mut raw) => {
                drop_private_columns(&mut raw.frame, &job.privacy.drop)?;
                writer
                    .write_account_table(raw.table, &account.id, &mut raw.frame)
                    .await?;
                let members = transform::member_identities(
                    &account.id,
                    account.kind().as_str(),
                    raw.frame.lazy(),
                    raw.member_col,
                    raw.joined_col,
                )
                .collect()?;
                outcomes.push(AccountOutcome::Snapshotted {
                    account_id: account.id.clone(),
                    members: members.height() as i64,
                });
                identities.push(members.lazy());
            }
            Err(error) if error.is_fatal() => return Err(error.into()),
            Err(error) => {
                tracing::error!(account_id = %account.id, %error, "account failed");
                outcomes.push(AccountOutcome::Failed {
                    account_id: account.id.clone(),
                    quota: error.is_quota(),
                    error: error.to_string(),
                });
            }
        }
    }

    let complete = outcomes
        .iter()
        .all(|o| matches!(o, AccountOutcome::Snapshotted { .. }));
    if !complete {
        return Ok(RunSummary {
            date: opts.date,
            run_id: opts.run_id.clone(),
            accounts: outcomes,
            manifest: None,
            audience: None,
        });
    }

    let accounts: Vec<AccountRef> = job
        .accounts
        .iter()
        .map(|a| AccountRef {
            account_id: a.id.clone(),
            account_kind: a.kind().as_str().to_string(),
        })
        .collect();
    let identities = transform::identities(identities)?.collect()?;
    let mut derived = transform::derive(&accounts, identities)?;
    writer
        .write_date_table(layout::IDENTITIES, &mut derived.identities)
        .await?;
    writer
        .write_date_table(layout::PEOPLE, &mut derived.people)
        .await?;
    writer
        .write_date_table(layout::AUDIENCE, &mut derived.audience)
        .await?;
    writer
        .write_date_table(layout::OVERLAP, &mut derived.overlap)
        .await?;

    let manifest_accounts = accounts
        .iter()
        .zip(&outcomes)
        .map(|(a, outcome)| ManifestAccount {
            account_id: a.account_id.clone(),
            account_kind: a.account_kind.clone(),
            members: match outcome {
                AccountOutcome::Snapshotted { members, .. } => members.to_owned(),
                AccountOutcome::Failed { .. } => 0,
            },
        })
        .collect();
    let manifest = writer
        .commit(
            &job.name,
            &opts.run_id,
            manifest_accounts,
            &layout::ALL_TABLES,
        )
        .await?;
    Ok(RunSummary {
        date: opts.date,
        run_id: opts.run_id.clone(),
        accounts: outcomes,
        manifest: Some(manifest),
        audience: Some(derived.audience),
    })
}

/// `privacy.drop`: free-text columns never to write.
fn drop_private_columns(frame: &mut DataFrame, drop: &[String]) -> PolarsResult<()> {
    for name in drop {
        if frame.get_column_index(name).is_some() {
            *frame = frame.drop(name)?;
        }
    }
    Ok(())
}
