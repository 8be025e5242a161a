//! Every table of the warehouse is a Delta Lake table (SPEC §4): its root is
//! `OUTPUT/<table>/` with its `_delta_log/`. Polars writes the Parquet files,
//! each under a name unique to the run that wrote it; delta-rs commits them.
//!
//! A commit of one snapshot date to one table ([`Table::commit`]) is one
//! Delta transaction: `remove` actions for the date's files it replaces (the
//! whole date, or only some accounts' partitions) and `add` actions, with
//! statistics, for the new ones. It is written with a conditional put of the
//! next log entry; when another run committed first (another date, another
//! table state), the transaction is rebuilt on the new state and tried again.
//!
//! **Fencing.** Each transaction carries a Delta application transaction
//! (`txn`) for the date, `appId = unionsnap/snapshot_date=D`, whose version
//! is the epoch of the run's lease ([`super::lease`]). A run whose epoch is
//! lower than the one a table already holds for the date lost its lease to a
//! later run: it commits nothing ([`LoadError::LeaseLost`], exit 4). The check
//! is made on exactly the table state the conditional put builds on, so no
//! clock and no pause can slip a stale run's commit in after a newer one.
//! A run reads that state (and the date's epoch in it) beside its crawl
//! ([`Table::read_before`]) and commits on it as read: any commit since
//! holds the version its put would write, so the put fails and the next try
//! reads the table again.

pub mod schema;
mod sorted;
pub mod stats;
pub mod vacuum;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, LogicalFileView, StructType, Transaction};
use deltalake_core::logstore::{default_logstore, LogStoreRef, StorageConfig};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::table::state::DeltaTableState;
use deltalake_core::{DeltaTableError, TableProperty};
use object_store::prefix::PrefixStore;
use serde::{Deserialize, Serialize};

use super::{layout, LoadError, Store};

pub use stats::FileStats;

/// Commits of one table tried before giving up when other runs keep
/// committing first (each try rebuilds the transaction on the new state).
const COMMIT_TRIES: usize = 20;
/// A checkpoint every this many commits: years of daily history open fast.
const CHECKPOINT_INTERVAL: &str = "10";

/// One data file of a table, relative to the output root: what a snapshot
/// marker lists, and what a commit adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub table: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// What the Delta log needs of a file this process wrote (statistics,
    /// schema); not part of the marker.
    #[serde(skip)]
    pub facts: Option<Arc<FileFacts>>,
}

/// What the Delta log needs of a file beyond its path and size: its
/// statistics and the schema of its table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileFacts {
    /// The `stats` JSON of its `add` action.
    pub stats: String,
    /// The Delta schema of the table, as this file's columns make it.
    pub schema: StructType,
}

impl FileFacts {
    /// The facts of a file of `table` with `columns`, from its statistics.
    pub fn new(
        table: &str,
        columns: &polars::prelude::Schema,
        stats: &FileStats,
    ) -> Result<Self, LoadError> {
        let schema = schema::table_schema(table, columns).map_err(|error| LoadError::Delta {
            table: table.to_string(),
            detail: error.to_string(),
        })?;
        Ok(FileFacts {
            stats: stats.to_json(),
            schema,
        })
    }
}

/// A table's version after a commit, and the files of the commit's date in it.
pub type Committed = (i64, Vec<ManifestFile>);

/// The lease epoch a run commits under (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub epoch: i64,
}

/// The application id of a date's transactions.
pub fn app_id(date: NaiveDate) -> String {
    format!("unionsnap/snapshot_date={date}")
}

/// A table's state read ahead of a commit of `date`, with the lease epoch
/// that date's last commit to the table recorded (`None`: never committed).
#[derive(Clone)]
pub struct ReadBefore {
    pub state: DeltaTableState,
    date: NaiveDate,
    held: Option<i64>,
}

/// Which of the date's files a commit replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replace {
    /// Every file of the date.
    Date,
    /// The partitions of these accounts (a partial run's raw tables).
    Accounts(Vec<String>),
}

/// One table's change for one snapshot date.
pub struct Change<'a> {
    pub date: NaiveDate,
    pub replace: Replace,
    /// The new files, all of this table.
    pub files: &'a [ManifestFile],
    pub fence: Fence,
    pub run_id: &'a str,
}

/// A table of the warehouse as a Delta table.
pub struct Table {
    name: String,
    log: LogStoreRef,
}

/// The relative path of `file` inside its table, and its partition values.
fn in_table(table: &str, path: &str) -> (String, HashMap<String, Option<String>>) {
    let relative = path
        .strip_prefix(table)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(path)
        .to_string();
    let values = relative
        .split('/')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect();
    (relative, values)
}

impl Table {
    /// `OUTPUT/<name>/` of `store` (which is rooted at the output).
    pub fn open(store: &Store, name: &str) -> Table {
        let root: Store = Arc::new(sorted::SortedListing(store.clone()));
        let prefixed: Store = Arc::new(PrefixStore::new(root.clone(), name));
        // The URL only names the table for the log and the engine, which
        // map its path to `name/...` of the root store.
        let location = url::Url::parse(&format!("memory:///{name}/"))
            .unwrap_or_else(|_| url::Url::parse("memory:///").expect("a valid URL"));
        let log = default_logstore(prefixed, root, &location, &StorageConfig::default());
        Table {
            name: name.to_string(),
            log,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, source: impl std::fmt::Display) -> LoadError {
        LoadError::Delta {
            table: self.name.clone(),
            detail: source.to_string(),
        }
    }

    /// The table at `version` (the latest when `None`), or `None` when the
    /// table has no log yet.
    pub async fn state(&self, version: Option<i64>) -> Result<Option<DeltaTableState>, LoadError> {
        if !self.has_log().await? {
            return Ok(None);
        }
        (self.read_state(version).await)
            .map(Some)
            .map_err(|e| self.error(e))
    }

    /// [`Self::state`] of a table known to exist (a previous snapshot's
    /// marker names it): read without first asking whether it has a log,
    /// which is a listing of the whole log (every entry stat'ed on a local
    /// output; on S3 a LIST). That is asked only when the engine finds no
    /// log to read, so a log it cannot read stays an error.
    pub async fn state_of_known(
        &self,
        version: Option<i64>,
    ) -> Result<Option<DeltaTableState>, LoadError> {
        match self.read_state(version).await {
            Ok(state) => Ok(Some(state)),
            Err(DeltaTableError::NotATable(_)) if !self.has_log().await? => Ok(None),
            Err(error) => Err(self.error(error)),
        }
    }

    /// The table's state and what a commit of `date` checks on it, read
    /// ahead of the commit (beside the crawl). `known`: the table is named
    /// by a previous snapshot's marker ([`Self::state_of_known`]).
    pub async fn read_before(
        &self,
        date: NaiveDate,
        known: bool,
    ) -> Result<Option<ReadBefore>, LoadError> {
        let state = if known {
            self.state_of_known(None).await?
        } else {
            self.state(None).await?
        };
        match state {
            Some(state) => Ok(Some(self.with_held_epoch(state, date).await?)),
            None => Ok(None),
        }
    }

    /// `state` with the lease epoch of `date`'s last commit to the table
    /// (its Delta transaction of [`app_id`]): a replay of the log.
    async fn with_held_epoch(
        &self,
        state: DeltaTableState,
        date: NaiveDate,
    ) -> Result<ReadBefore, LoadError> {
        let held = state
            .transaction_version(self.log.as_ref(), app_id(date))
            .await
            .map_err(|e| self.error(e))?;
        Ok(ReadBefore { state, date, held })
    }

    async fn has_log(&self) -> Result<bool, LoadError> {
        (self.log.is_delta_table_location().await).map_err(|e| self.error(e))
    }

    async fn read_state(&self, version: Option<i64>) -> Result<DeltaTableState, DeltaTableError> {
        let version = match version {
            Some(v) => Some(
                u64::try_from(v)
                    .map_err(|_| DeltaTableError::Generic(format!("negative version {v}")))?,
            ),
            None => None,
        };
        DeltaTableState::try_new(self.log.as_ref(), version).await
    }

    /// The latest version, or `None` when the table has no log yet.
    pub async fn version(&self) -> Result<Option<i64>, LoadError> {
        Ok(self.state(None).await?.map(|s| s.version() as i64))
    }

    /// The files active at `state` (path relative to the output root, rows,
    /// bytes) whose partition `snapshot_date` is `date`.
    pub fn files_of(&self, state: &DeltaTableState, date: NaiveDate) -> Vec<ManifestFile> {
        let date = date.to_string();
        state
            .log_data()
            .iter()
            .filter(|f| {
                f.partition_values_map()
                    .get(layout::SNAPSHOT_DATE)
                    .and_then(|v| v.as_deref())
                    == Some(date.as_str())
            })
            .map(|f| self.manifest_file(&f))
            .collect()
    }

    fn manifest_file(&self, file: &LogicalFileView) -> ManifestFile {
        ManifestFile {
            table: self.name.clone(),
            path: format!("{}/{}", self.name, file.path()),
            rows: file.num_records().unwrap_or(0) as u64,
            bytes: file.size().max(0) as u64,
            facts: None,
        }
    }

    /// Creates the table with `schema` unless it exists.
    async fn create(&self, schema: &StructType) -> Result<(), LoadError> {
        let created = CreateBuilder::new()
            .with_log_store(self.log.clone())
            .with_table_name(self.name.clone())
            .with_columns(schema.fields().cloned())
            .with_partition_columns(layout::partition_columns(&self.name).iter().copied())
            .with_configuration_property(
                TableProperty::CheckpointInterval,
                Some(CHECKPOINT_INTERVAL),
            )
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(_) => Ok(()),
            // Another run created it at the same moment.
            Err(_) if self.state(None).await?.is_some() => Ok(()),
            Err(error) => Err(self.error(error)),
        }
    }

    /// Commits `change` as one transaction; returns the version it made (or
    /// the current version when there was nothing to change) and the files
    /// of the change's date in that version (`None`: the table does not
    /// exist and nothing was added).
    pub async fn commit(&self, change: Change<'_>) -> Result<Option<Committed>, LoadError> {
        self.commit_on(change, None).await
    }

    /// [`Self::commit`], its first try on `read_before` (the table read
    /// earlier, [`Self::read_before`]) as it was read: neither the log's
    /// listing that would bring it up to date nor the replay that finds the
    /// date's epoch is on the way to the commit. A commit made since takes
    /// the version this one would write, so this one fails to write it and
    /// the next try reads the table again.
    pub async fn commit_on(
        &self,
        change: Change<'_>,
        mut read_before: Option<ReadBefore>,
    ) -> Result<Option<Committed>, LoadError> {
        let wanted_schema = change
            .files
            .iter()
            .find_map(|f| f.facts.as_ref().map(|facts| facts.schema.clone()));
        for _ in 0..COMMIT_TRIES {
            let read = match read_before.take() {
                Some(read) if read.date == change.date => Some(read),
                Some(read) => Some(self.with_held_epoch(read.state, change.date).await?),
                None => self.read_before(change.date, false).await?,
            };
            let ReadBefore { state, held, .. } = match read {
                Some(read) => read,
                None => {
                    let Some(schema) = &wanted_schema else {
                        return Ok(None);
                    };
                    self.create(schema).await?;
                    continue;
                }
            };
            let app_id = app_id(change.date);
            if let Some(held) = held.filter(|held| *held > change.fence.epoch) {
                return Err(LoadError::LeaseLost {
                    date: change.date,
                    detail: format!(
                        "table {} was committed for this date by a later holder of the lease (epoch {held}, ours {})",
                        self.name, change.fence.epoch
                    ),
                });
            }
            let (mut actions, files) = self.actions(&state, &change)?;
            if actions.is_empty() {
                return Ok(Some((state.version() as i64, files)));
            }
            if let Some(schema) = wanted_schema
                .as_ref()
                .and_then(|wanted| schema::widened(&state.schema(), wanted))
            {
                use deltalake_core::kernel::MetadataExt;
                let metadata = state
                    .metadata()
                    .clone()
                    .with_schema(&schema)
                    .map_err(|e| self.error(e))?;
                actions.push(Action::Metadata(metadata));
            }
            // Expired log files can go only once a checkpoint covers them:
            // look for them when this commit writes one, as Delta's own
            // writer does, not after every commit (a listing of the log, one
            // more round trip per table and run on S3).
            let checkpoints = {
                use deltalake_core::table::config::TablePropertiesExt;
                let interval = state.table_config().checkpoint_interval().get();
                // delta-rs's rule: a checkpoint after version v when v + 1 is
                // a multiple of the interval (versions 9, 19, ... at 10).
                let committing = state.version() + 1;
                (committing + 1) % interval == 0
            };
            let properties = CommitProperties::default()
                .with_max_retries(0)
                .with_cleanup_expired_logs(Some(checkpoints))
                .with_application_transaction(Transaction::new_with_last_update(
                    &app_id,
                    change.fence.epoch,
                    Some(Utc::now().timestamp_millis()),
                ))
                .with_metadata([
                    ("unionsnap_run_id".to_string(), change.run_id.into()),
                    (
                        "unionsnap_snapshot_date".to_string(),
                        change.date.to_string().into(),
                    ),
                ]);
            let operation = DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: Some(
                    layout::partition_columns(&self.name)
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                ),
                predicate: Some(predicate(&change)),
            };
            let committed = async {
                CommitBuilder::from(properties)
                    .with_actions(actions)
                    .build(Some(&state), self.log.clone(), operation)
                    .into_prepared_commit_future()
                    .await?
                    .await
            }
            .await;
            match committed {
                Ok(written) => {
                    let version = written.version as i64;
                    // delta-rs's step after a commit first brings the
                    // table's state to the new version, which reads every
                    // file's statistics again (the longer the history, the
                    // longer: ~5 ms a table at a year of daily snapshots),
                    // then writes the checkpoint and drops expired log
                    // entries. Only a commit that writes a checkpoint needs
                    // it; the files of the date are known without it.
                    if checkpoints {
                        written.await.map_err(|e| self.error(e))?;
                    }
                    return Ok(Some((version, files)));
                }
                Err(
                    DeltaTableError::VersionAlreadyExists(_)
                    | DeltaTableError::Transaction {
                        source:
                            TransactionError::VersionAlreadyExists(_)
                            | TransactionError::MaxCommitAttempts(_),
                    },
                ) => {
                    tracing::info!(table = %self.name, "another run committed since the table was read; retrying on its new version");
                }
                Err(error) => return Err(self.error(error)),
            }
        }
        Err(self.error(format!(
            "{COMMIT_TRIES} tries to commit lost to other runs' commits"
        )))
    }

    /// The actions that commit `change` on `state` (the `remove`s of the
    /// files it replaces, then its `add`s), and the files of the
    /// change's date once they are committed (those the change keeps, then
    /// those it adds).
    fn actions(
        &self,
        state: &DeltaTableState,
        change: &Change<'_>,
    ) -> Result<(Vec<Action>, Vec<ManifestFile>), LoadError> {
        let date = change.date.to_string();
        let new_paths: Vec<String> = change
            .files
            .iter()
            .map(|f| in_table(&self.name, &f.path).0)
            .collect();
        let mut actions = Vec::new();
        let mut files = Vec::new();
        for file in state.log_data().iter() {
            let values = file.partition_values_map();
            let value = |key: &str| values.get(key).and_then(|v| v.as_deref());
            if value(layout::SNAPSHOT_DATE) != Some(date.as_str()) {
                continue;
            }
            let replaced = match &change.replace {
                Replace::Date => true,
                Replace::Accounts(accounts) => value(layout::ACCOUNT_ID)
                    .is_some_and(|account| accounts.iter().any(|a| a == account)),
            };
            let path = file.path().to_string();
            if replaced && !new_paths.contains(&path) {
                actions.push(Action::Remove(file.remove_action(true)));
            } else {
                files.push(self.manifest_file(&file));
            }
        }
        let active: Vec<String> = state
            .log_data()
            .iter()
            .map(|f| f.path().to_string())
            .collect();
        let now = Utc::now().timestamp_millis();
        for file in change.files {
            let (path, partition_values) = in_table(&self.name, &file.path);
            if active.contains(&path) {
                continue; // committed by an earlier try of this same change
            }
            files.push(ManifestFile {
                facts: None,
                ..file.clone()
            });
            actions.push(Action::Add(Add {
                path,
                partition_values,
                size: i64::try_from(file.bytes).map_err(|e| self.error(e))?,
                modification_time: now,
                data_change: true,
                stats: file.facts.as_ref().map(|f| f.stats.clone()),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
                clustering_provider: None,
            }));
        }
        Ok((actions, files))
    }
}

/// The predicate a commit's operation names (in the log's `commitInfo`).
fn predicate(change: &Change<'_>) -> String {
    let date = format!("{} = '{}'", layout::SNAPSHOT_DATE, change.date);
    match &change.replace {
        Replace::Date => date,
        Replace::Accounts(accounts) => format!(
            "{date} AND {} IN ({})",
            layout::ACCOUNT_ID,
            accounts
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
