//! The commit protocol: how a snapshot date becomes visible, whole or not at all.
//!
//! 1. Every data file is written whole under a name unique to the run
//!    (`part-<run_id>-0.parquet`): a single PUT, or a multipart upload that
//!    only becomes visible when completed. Nothing is ever overwritten, and
//!    nothing a reader can see changes while a run writes.
//! 2. [`SnapshotWriter::commit`] commits each table of the date as one Delta
//!    transaction ([`super::delta`]): `remove` for the files the run replaces
//!    (the date's, or only its accounts' for a partial run), `add` for its
//!    own — conditional on the table state it read and fenced by the lease.
//! 3. Last, it writes the snapshot marker
//!    `_manifests/snapshot_date=D/manifest.json`, naming the Delta version of
//!    every table that holds the date and every file of the date at that
//!    version — with a conditional put on the marker it read (a later run's
//!    marker is never overwritten by an earlier one's).
//!
//! Until the marker is written, a reader keeps the previous complete
//! snapshot of the date: its marker names versions whose files are still
//! there (vacuum keeps them for the retention period and as long as a marker
//! names them). A failed run changes no marker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::{
    buffered::BufWriter, path::Path, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use super::delta::{Change, Fence, FileFacts, FileStats, ReadBefore, Replace, Table};
use super::store::{get_if_exists, get_versioned, Store};
use super::{layout, parquet, LoadError};

/// Version of the manifest format; bumped only by incompatible changes.
/// 2: the tables are Delta tables; `tables` names their versions.
pub const MANIFEST_FORMAT_VERSION: u32 = 2;
/// Uploads larger than this go as multipart uploads (completed atomically).
const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;

/// `manifest.json`, the snapshot marker: what makes a snapshot date complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub job: String,
    pub snapshot_date: NaiveDate,
    pub run_id: String,
    pub committed_at: DateTime<Utc>,
    /// The lease epoch the snapshot was committed under (0 before format 2).
    #[serde(default)]
    pub epoch: i64,
    pub accounts: Vec<ManifestAccount>,
    /// The Delta version of every table that holds the date: together, one
    /// consistent snapshot (empty before format 2).
    #[serde(default)]
    pub tables: BTreeMap<String, i64>,
    /// Every file of the date at those versions, relative to the output root.
    pub files: Vec<ManifestFile>,
}

/// One account of a complete snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestAccount {
    pub account_id: String,
    pub account_kind: String,
    pub members: i64,
    /// WeCom staff members whose contacts WeChat left out (no interop
    /// licence) and the job committed without (`allow_unlicensed`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unlicensed_staff_left_out: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub use super::delta::ManifestFile;

/// Writes the files of one snapshot date and commits them.
pub struct SnapshotWriter {
    store: Store,
    date: NaiveDate,
    run_id: String,
    files: Vec<ManifestFile>,
    /// A partial run replaces only these accounts' raw partitions.
    only_accounts: Option<Vec<String>>,
    /// The tables' states read earlier ([`table_states`]), by table.
    read_before: TableStates,
}

/// Tables read ahead of a commit, by table name.
pub type TableStates = HashMap<String, ReadBefore>;

/// Every table that exists, read for a commit of `date` beside the crawl
/// ([`Table::read_before`], [`SnapshotWriter::read_before`]): the commit
/// then starts from it without reading the log again. A table that cannot
/// be read now is left out: the commit reads it then. The tables of `known`
/// (those a previous snapshot's marker names) are read without asking first
/// whether they exist.
pub async fn table_states(
    store: &Store,
    known: &BTreeMap<String, i64>,
    date: NaiveDate,
) -> TableStates {
    let reads = layout::ALL_TABLES.into_iter().map(|table| async move {
        let delta = Table::open(store, table);
        let state = delta.read_before(date, known.contains_key(table)).await;
        (table.to_string(), state.ok().flatten())
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .filter_map(|(table, state)| Some((table, state?)))
        .collect()
}

impl SnapshotWriter {
    /// Starts writing `date` for `run_id`. Nothing a reader sees changes
    /// until [`Self::commit`].
    pub fn begin(store: Store, date: NaiveDate, run_id: &str) -> Self {
        SnapshotWriter {
            store,
            date,
            run_id: run_id.to_string(),
            files: Vec::new(),
            only_accounts: None,
            read_before: HashMap::new(),
        }
    }

    /// The tables' states read earlier: each table's transaction starts from
    /// its state and reads only what was committed since.
    pub fn read_before(&mut self, states: TableStates) {
        self.read_before = states;
    }

    /// The commit replaces only these accounts' raw partitions; the date's
    /// other raw partitions stay as committed.
    pub fn replace_only(&mut self, accounts: Vec<String>) {
        self.only_accounts = Some(accounts);
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The files written so far.
    pub fn files(&self) -> &[ManifestFile] {
        &self.files
    }

    /// Records a file written by a [`super::stream::PartitionWriter`], or
    /// one already in the store (a raw partition a sharded run landed, which
    /// `merge` commits as it landed).
    pub fn add_file(&mut self, file: ManifestFile) {
        self.files.retain(|f| f.path != file.path);
        self.files.push(file);
    }

    /// The store the snapshot is written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes `table/snapshot_date=D/part-<run_id>-0.parquet`.
    pub async fn write_date_table(
        &mut self,
        table: &str,
        df: &mut DataFrame,
    ) -> Result<(), LoadError> {
        let path = layout::date_file(table, self.date, &self.run_id);
        let file = write_file(&self.store, table, path, df).await?;
        self.add_file(file);
        Ok(())
    }

    /// Commits every table (one fenced Delta transaction each), then writes
    /// the marker naming their versions — last.
    pub async fn commit(
        mut self,
        job: &str,
        accounts: Vec<ManifestAccount>,
        fence: Fence,
    ) -> Result<Manifest, LoadError> {
        let marker_path = layout::manifest_file(self.date);
        // Read before the tables are committed: the marker is then replaced
        // only if no other run wrote one in between.
        let seen = read_marker(&self.store, &marker_path).await?;
        if let Some((held, _)) = &seen {
            if held.epoch > fence.epoch {
                return Err(LoadError::LeaseLost {
                    date: self.date,
                    detail: format!(
                        "run {} committed it under a later lease (epoch {}, ours {})",
                        held.run_id, held.epoch, fence.epoch
                    ),
                });
            }
        }
        // The tables' transactions are independent of one another (the
        // marker is what ties them together), so they run at once, each in
        // a task of its own: the log replays and checkpoints use every
        // core, and the store's round trips overlap.
        let mut read_before = std::mem::take(&mut self.read_before);
        let commits: Vec<_> = layout::ALL_TABLES
            .into_iter()
            .map(|table| {
                let mine: Vec<ManifestFile> = (self.files.iter())
                    .filter(|f| f.table == table)
                    .cloned()
                    .collect();
                let replace = match &self.only_accounts {
                    Some(accounts) if layout::RAW_TABLES.contains(&table) => {
                        Replace::Accounts(accounts.clone())
                    }
                    _ => Replace::Date,
                };
                let (store, date, run_id) = (self.store.clone(), self.date, self.run_id.clone());
                let read_before = read_before.remove(table);
                let task = tokio::spawn(
                    async move {
                        let delta_table = Table::open(&store, table);
                        let change = Change {
                            date,
                            replace,
                            files: &mine,
                            fence,
                            run_id: &run_id,
                        };
                        delta_table.commit_on(change, read_before).await
                    }
                    .in_current_span(),
                );
                (table, task)
            })
            .collect();
        // Every transaction ends (committed or not) before an error is
        // reported: none goes on behind the run's back.
        let (names, tasks): (Vec<_>, Vec<_>) = commits.into_iter().unzip();
        let results = futures::future::join_all(tasks).await;
        let mut tables = BTreeMap::new();
        let mut files = Vec::new();
        for (table, result) in names.into_iter().zip(results) {
            let committed = result.map_err(|error| LoadError::WriterTask {
                path: format!("{table}/_delta_log"),
                detail: error.to_string(),
            })??;
            if let Some((version, of_date)) = committed {
                if !of_date.is_empty() {
                    tables.insert(table.to_string(), version);
                    files.extend(of_date);
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            job: job.to_string(),
            snapshot_date: self.date,
            run_id: self.run_id.clone(),
            committed_at: Utc::now(),
            epoch: fence.epoch,
            accounts,
            tables,
            files,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(LoadError::ManifestJson)?;
        let mode = match seen {
            Some((_, version)) => PutMode::Update(version),
            None => PutMode::Create,
        };
        match self
            .store
            .put_opts(
                &marker_path,
                PutPayload::from(json.clone()),
                PutOptions::from(mode),
            )
            .await
        {
            Ok(_) => {}
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                return Err(LoadError::LeaseLost {
                    date: self.date,
                    detail: "another run wrote the snapshot marker while this one committed"
                        .to_string(),
                });
            }
            // No conditional update here (a local folder): the tables'
            // fenced commits have just passed, so the window is the time
            // between the last of them and this put.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store
                    .put(&marker_path, PutPayload::from(json))
                    .await
                    .map_err(|source| LoadError::store(&marker_path, source))?;
            }
            Err(source) => return Err(LoadError::store(&marker_path, source)),
        }
        Ok(manifest)
    }
}

/// The marker at `path` with the version a conditional put replaces.
async fn read_marker(
    store: &Store,
    path: &Path,
) -> Result<Option<(Manifest, UpdateVersion)>, LoadError> {
    let Some((bytes, version)) = get_versioned(store, path)
        .await
        .map_err(|source| LoadError::store(path, source))?
    else {
        return Ok(None);
    };
    let manifest = serde_json::from_slice(&bytes).map_err(|source| LoadError::BadManifest {
        path: path.to_string(),
        source,
    })?;
    Ok(Some((manifest, version)))
}

/// Writes one whole table file (a single PUT, or a multipart upload when
/// large) and says what it wrote, for the manifest.
pub async fn write_file(
    store: &Store,
    table: &str,
    path: Path,
    df: &mut DataFrame,
) -> Result<ManifestFile, LoadError> {
    let rows = df.height() as u64;
    let encode_error = |source| LoadError::Encode {
        table: table.to_string(),
        source,
    };
    let bytes = parquet::encode(df).map_err(encode_error)?;
    let stats = FileStats::of_file(df, &bytes).map_err(encode_error)?;
    let facts = FileFacts::new(table, df.schema(), &stats)?;
    let size = bytes.len() as u64;
    tokio::try_join!(
        put_whole(store, &path, bytes),
        super::vacuum::journal(store, &path)
    )?;
    Ok(ManifestFile {
        table: table.to_string(),
        path: path.to_string(),
        rows,
        bytes: size,
        facts: Some(Arc::new(facts)),
    })
}

/// Puts `bytes` so that the object appears whole or not at all.
async fn put_whole(store: &Store, path: &Path, bytes: Vec<u8>) -> Result<(), LoadError> {
    if bytes.len() <= MULTIPART_THRESHOLD {
        store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(|source| LoadError::store(path, source))?;
        return Ok(());
    }
    let mut writer = BufWriter::with_capacity(store.clone(), path.clone(), MULTIPART_THRESHOLD);
    let io = |source: std::io::Error| LoadError::Upload {
        path: path.to_string(),
        source,
    };
    if let Err(source) = writer.write_all(&bytes).await {
        let _ = writer.abort().await;
        return Err(io(source));
    }
    writer.shutdown().await.map_err(io)
}

/// Reads the manifest of `date`, if the date is complete.
pub async fn read_manifest(store: &Store, date: NaiveDate) -> Result<Option<Manifest>, LoadError> {
    let path = layout::manifest_file(date);
    let Some(bytes) = get_if_exists(store, &path)
        .await
        .map_err(|source| LoadError::store(&path, source))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| LoadError::BadManifest {
            path: path.to_string(),
            source,
        })
}

/// The dates that have a manifest, oldest first.
pub async fn complete_dates(store: &Store) -> Result<Vec<NaiveDate>, LoadError> {
    let objects = super::store::list_all(store, &Path::from(layout::MANIFESTS)).await?;
    let mut dates: Vec<NaiveDate> = objects
        .iter()
        .filter(|o| o.location.filename() == Some("manifest.json"))
        .filter_map(|o| layout::snapshot_date_of(&o.location))
        .collect();
    dates.sort();
    dates.dedup();
    Ok(dates)
}

/// Reads one table file listed in a manifest.
pub async fn read_file(store: &Store, path: &str) -> Result<DataFrame, LoadError> {
    Ok(read_file_with_bytes(store, path).await?.0)
}

/// Reads a Parquet file of the warehouse, and its bytes.
pub async fn read_file_with_bytes(
    store: &Store,
    path: &str,
) -> Result<(DataFrame, bytes::Bytes), LoadError> {
    let path = Path::from(path);
    let bytes = store
        .get(&path)
        .await
        .map_err(|source| LoadError::store(&path, source))?
        .bytes()
        .await
        .map_err(|source| LoadError::store(&path, source))?;
    let frame = parquet::decode(bytes.clone()).map_err(|source| LoadError::Decode {
        path: path.to_string(),
        source,
    })?;
    Ok((frame, bytes))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::ObjectStore;
    use polars::prelude::*;

    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    const FENCE: Fence = Fence { epoch: 10 };

    async fn write_account(
        store: &Store,
        day: u32,
        run_id: &str,
        account: &str,
        openids: &[&str],
    ) -> ManifestFile {
        let path = layout::account_file(layout::FOLLOWERS, date(day), account, run_id);
        let mut df = df!("openid" => openids).unwrap();
        write_file(store, layout::FOLLOWERS, path, &mut df)
            .await
            .unwrap()
    }

    async fn commit_accounts(
        store: &Store,
        day: u32,
        run_id: &str,
        accounts: &[(&str, &[&str])],
        only: Option<Vec<String>>,
        fence: Fence,
    ) -> Result<Manifest, LoadError> {
        let mut writer = SnapshotWriter::begin(store.clone(), date(day), run_id);
        if let Some(only) = only {
            writer.replace_only(only);
        }
        for (account, openids) in accounts {
            writer.add_file(write_account(store, day, run_id, account, openids).await);
        }
        writer.commit("acme", vec![], fence).await
    }

    /// Account a committed on `day` by run r`day`: one version of each table a day.
    async fn commit_day(store: &Store, day: u32) {
        commit_accounts(
            store,
            day,
            &format!("r{day}"),
            &[("a", &["o1"])],
            None,
            FENCE,
        )
        .await
        .unwrap();
    }

    /// Accounts a and b committed on the 21st by run r1.
    async fn commit_a_and_b(store: &Store) -> Manifest {
        let accounts: &[(&str, &[&str])] = &[("a", &["o1"]), ("b", &["o2"])];
        commit_accounts(store, 21, "r1", accounts, None, FENCE)
            .await
            .unwrap()
    }

    fn paths(manifest: &Manifest) -> Vec<&str> {
        manifest.files.iter().map(|f| f.path.as_str()).collect()
    }

    /// Both reads of a table's state, the one that asks first whether the
    /// table exists and the one that asks only when the engine finds no log.
    async fn both_states(table: &Table) -> [Result<Option<i64>, LoadError>; 2] {
        let version = |state: Option<deltalake_core::table::state::DeltaTableState>| {
            state.map(|s| s.version() as i64)
        };
        [
            table.state(None).await.map(version),
            table.state_of_known(None).await.map(version),
        ]
    }

    #[tokio::test]
    async fn a_table_without_a_log_has_no_state_and_a_broken_log_is_an_error() {
        let store: Store = Arc::new(InMemory::new());
        let table = Table::open(&store, layout::FOLLOWERS);
        for state in both_states(&table).await {
            assert_eq!(state.unwrap(), None);
        }
        assert!(table.state(Some(0)).await.unwrap().is_none());
        commit_day(&store, 21).await;
        for state in both_states(&table).await {
            assert_eq!(state.unwrap(), Some(1));
        }
        // The log's first entry lost, no checkpoint: the table exists but
        // cannot be read. That is an error, never a table to create again.
        let first = Path::from("followers/_delta_log/00000000000000000000.json");
        store.delete(&first).await.unwrap();
        for state in both_states(&table).await {
            assert!(matches!(state, Err(LoadError::Delta { .. })), "{state:?}");
        }
        let again = commit_accounts(&store, 22, "r22", &[("a", &["o1"])], None, FENCE).await;
        assert!(matches!(again, Err(LoadError::Delta { .. })), "{again:?}");
        // A log holding only what the engine builds no state from (here a
        // checksum file): a Delta log all the same, so an error too.
        let table = Table::open(&store, layout::PEOPLE);
        let crc = Path::from("people/_delta_log/00000000000000000000.crc");
        store.put(&crc, "{}".into()).await.unwrap();
        for state in both_states(&table).await {
            assert!(matches!(state, Err(LoadError::Delta { .. })), "{state:?}");
        }
    }

    #[tokio::test]
    async fn the_marker_names_the_table_versions_and_their_files() {
        let store: Store = Arc::new(InMemory::new());
        let manifest = commit_accounts(
            &store,
            21,
            "r1",
            &[("brand_oa", &["o1", "o2", "o3"])],
            None,
            FENCE,
        )
        .await
        .unwrap();
        assert_eq!(
            manifest.tables.get(layout::FOLLOWERS),
            Some(&1),
            "v0 creates, v1 adds"
        );
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].rows, 3);
        assert_eq!(
            manifest.files[0].path,
            "followers/snapshot_date=2026-11-21/account_id=brand_oa/part-r1-0.parquet"
        );
        assert_eq!(
            read_manifest(&store, date(21)).await.unwrap(),
            Some(manifest.clone())
        );
        let back = read_file(&store, &manifest.files[0].path).await.unwrap();
        assert_eq!(back.height(), 3);
        let table = Table::open(&store, layout::FOLLOWERS);
        let state = table.state(None).await.unwrap().unwrap();
        let add = state.log_data().iter().next().unwrap();
        let stats: serde_json::Value = serde_json::from_str(&add.stats().unwrap()).unwrap();
        assert_eq!(stats["numRecords"], 3);
        assert_eq!(stats["minValues"]["openid"], "o1");
        assert_eq!(
            add.partition_values_map()
                .get("account_id")
                .cloned()
                .flatten()
                .as_deref(),
            Some("brand_oa")
        );
    }

    #[tokio::test]
    async fn a_rerun_replaces_the_date_in_one_version_and_the_old_one_stays_readable() {
        let store: Store = Arc::new(InMemory::new());
        let first = commit_a_and_b(&store).await;
        let other_day = commit_accounts(&store, 22, "r2", &[("a", &["o1"])], None, FENCE)
            .await
            .unwrap();
        let rerun = commit_accounts(&store, 21, "r3", &[("a", &["o1", "o9"])], None, FENCE)
            .await
            .unwrap();
        assert_eq!(
            paths(&rerun),
            ["followers/snapshot_date=2026-11-21/account_id=a/part-r3-0.parquet"],
            "b's partition of the 21st is replaced too: a whole run replaces the date"
        );
        let table = Table::open(&store, layout::FOLLOWERS);
        let old = table
            .state(Some(first.tables[layout::FOLLOWERS]))
            .await
            .unwrap()
            .unwrap();
        let old_files = table.files_of(&old, date(21));
        assert_eq!(old_files.len(), 2, "the old version still names both files");
        for file in old_files {
            read_file(&store, &file.path)
                .await
                .expect("an old version's files stay");
        }
        let latest = table.state(None).await.unwrap().unwrap();
        assert_eq!(
            table.files_of(&latest, date(22)).len(),
            1,
            "the 22nd untouched: {other_day:?}"
        );
    }

    #[tokio::test]
    async fn a_partial_run_replaces_only_its_accounts() {
        let store: Store = Arc::new(InMemory::new());
        commit_a_and_b(&store).await;
        let partial = commit_accounts(
            &store,
            21,
            "r2",
            &[("a", &["o1", "o3"])],
            Some(vec!["a".to_string()]),
            FENCE,
        )
        .await
        .unwrap();
        assert_eq!(
            paths(&partial),
            [
                "followers/snapshot_date=2026-11-21/account_id=a/part-r2-0.parquet",
                "followers/snapshot_date=2026-11-21/account_id=b/part-r1-0.parquet",
            ]
        );
    }

    /// The marker lists the files of the date in the versions it names, as
    /// the tables' logs hold them (the commit works them out from the state
    /// it committed on, without reading the table again), for a first run,
    /// a partial run and a re-run alike.
    #[tokio::test]
    async fn the_marker_lists_what_the_committed_versions_hold() {
        let store: Store = Arc::new(InMemory::new());
        let first = commit_a_and_b(&store).await;
        let only_a = Some(vec!["a".to_string()]);
        let partial = commit_accounts(&store, 21, "r2", &[("a", &["o1", "o3"])], only_a, FENCE);
        let partial = partial.await.unwrap();
        let rerun = commit_accounts(&store, 21, "r3", &[("b", &["o2"])], None, FENCE);
        let rerun = rerun.await.unwrap();
        let table = Table::open(&store, layout::FOLLOWERS);
        for manifest in [first, partial, rerun] {
            let version = manifest.tables[layout::FOLLOWERS];
            let state = table.state(Some(version)).await.unwrap().unwrap();
            let held: Vec<_> = (table.files_of(&state, date(21)).into_iter())
                .map(|f| (f.path, f.rows, f.bytes))
                .collect();
            let listed: Vec<_> = (manifest.files.into_iter())
                .map(|f| (f.path, f.rows, f.bytes))
                .collect();
            assert_eq!(listed.len(), held.len(), "version {version}: {listed:?}");
            for file in &held {
                assert!(
                    listed.contains(file),
                    "version {version}: {file:?} not in {listed:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_checkpoint_every_ten_commits_and_the_table_opens_from_it() {
        let store: Store = Arc::new(InMemory::new());
        for day in 1..=12 {
            commit_day(&store, day).await;
        }
        // Every 10th commit (versions 9, 19, ...: delta-rs counts from one).
        let checkpoint = Path::from("followers/_delta_log/00000000000000000009.checkpoint.parquet");
        store
            .head(&checkpoint)
            .await
            .expect("a checkpoint at version 9");
        // Without the commits it summarizes, the table still opens whole.
        for version in 0..=9 {
            let entry = Path::from(format!("followers/_delta_log/{version:020}.json"));
            store.delete(&entry).await.unwrap();
        }
        let table = Table::open(&store, layout::FOLLOWERS);
        let state = table.state(None).await.unwrap().unwrap();
        assert_eq!(state.version(), 12);
        assert_eq!(state.log_data().num_files(), 12, "a file per date");
    }

    /// Log entries older than the retention (30 days) go once a checkpoint
    /// covers them, when the next checkpoint is written: a commit that
    /// writes none does not list the log for them.
    #[tokio::test]
    async fn expired_log_entries_go_when_a_checkpoint_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store: Store =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let log = dir.path().join("followers/_delta_log");
        let entry = |version: u32| log.join(format!("{version:020}.json"));
        // Versions 1 to 9 (a checkpoint at 9), then 0 to 8 made 40 days old.
        for day in 1..=9 {
            commit_day(&store, day).await;
        }
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400);
        for version in 0..=8 {
            let file = std::fs::File::options()
                .write(true)
                .open(entry(version))
                .unwrap();
            file.set_modified(old).unwrap();
        }
        for day in 10..=18 {
            commit_day(&store, day).await;
            assert!(
                entry(0).exists(),
                "removed at version {day}, which wrote no checkpoint"
            );
        }
        commit_day(&store, 19).await;
        assert!(log.join(format!("{:020}.checkpoint.parquet", 19)).exists());
        for version in 0..=8 {
            assert!(!entry(version).exists(), "expired entry {version} kept");
        }
        for version in 9..=19 {
            assert!(entry(version).exists(), "entry {version} is not expired");
        }
        let table = Table::open(&store, layout::FOLLOWERS);
        let state = table.state(None).await.unwrap().unwrap();
        assert_eq!(state.version(), 19);
        assert_eq!(state.log_data().num_files(), 19, "a file per date");
    }

    #[tokio::test]
    async fn a_run_fenced_off_by_a_later_epoch_commits_nothing() {
        let store: Store = Arc::new(InMemory::new());
        let later = commit_accounts(
            &store,
            21,
            "later",
            &[("a", &["o1"])],
            None,
            Fence { epoch: 20 },
        )
        .await
        .unwrap();
        let stale = commit_accounts(
            &store,
            21,
            "stale",
            &[("a", &["o2"])],
            None,
            Fence { epoch: 10 },
        )
        .await;
        assert!(
            matches!(stale, Err(LoadError::LeaseLost { .. })),
            "{stale:?}"
        );
        assert_eq!(
            read_manifest(&store, date(21)).await.unwrap(),
            Some(later.clone())
        );
        let table = Table::open(&store, layout::FOLLOWERS);
        assert_eq!(
            table.version().await.unwrap(),
            Some(later.tables[layout::FOLLOWERS]),
            "no version after the later run's"
        );
        // Another date is not fenced by this one's epochs.
        commit_accounts(
            &store,
            22,
            "other",
            &[("a", &["o1"])],
            None,
            Fence { epoch: 10 },
        )
        .await
        .unwrap();
    }

    /// `inner`, counting the reads of Delta log entries (`_delta_log/*.json`).
    #[derive(Debug)]
    struct CountingLogReads {
        inner: Store,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for CountingLogReads {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "CountingLogReads({})", self.inner)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for CountingLogReads {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            let path = location.as_ref();
            if path.contains("/_delta_log/") && path.ends_with(".json") {
                (self.reads).fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    /// A run's commit on the tables it read beside its crawl reads none of
    /// their log entries again when no other run committed since: neither
    /// to bring the state up to date nor to find the date's lease epoch.
    #[tokio::test]
    async fn a_commit_on_tables_read_earlier_reads_no_log_entry_again() {
        let counting = Arc::new(CountingLogReads {
            inner: Arc::new(InMemory::new()),
            reads: Default::default(),
        });
        let store: Store = counting.clone();
        let first = commit_a_and_b(&store).await;
        let read_early = table_states(&store, &first.tables, date(22)).await;
        assert!(read_early.contains_key(layout::FOLLOWERS));
        let mut writer = SnapshotWriter::begin(store.clone(), date(22), "r2");
        writer.read_before(read_early);
        writer.add_file(write_account(&store, 22, "r2", "a", &["o3"]).await);
        let before = counting.reads.load(std::sync::atomic::Ordering::SeqCst);
        let manifest = writer.commit("acme", vec![], FENCE).await.unwrap();
        let reads = counting.reads.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert_eq!(reads, 0, "log entries read by the commit");
        let state = Table::open(&store, layout::FOLLOWERS)
            .state(None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.version() as i64, manifest.tables[layout::FOLLOWERS]);
        assert_eq!(state.log_data().num_files(), 3, "21 (a, b) and 22");
    }

    /// A commit that starts from states read before other commits (as a
    /// run's, read beside its crawl) builds on those commits, and is still
    /// fenced off by a later holder's.
    #[tokio::test]
    async fn a_commit_from_states_read_earlier_sees_what_came_since() {
        let store: Store = Arc::new(InMemory::new());
        let first = commit_a_and_b(&store).await;
        // Read as a run reads them: the tables the marker names directly.
        let read_early = table_states(&store, &first.tables, date(23)).await;
        assert!(read_early.contains_key(layout::FOLLOWERS));
        // Another date commits in between.
        commit_accounts(&store, 22, "r2", &[("a", &["o3"])], None, FENCE)
            .await
            .unwrap();
        let mut writer = SnapshotWriter::begin(store.clone(), date(23), "r3");
        writer.read_before(read_early);
        writer.add_file(write_account(&store, 23, "r3", "a", &["o4"]).await);
        let manifest = writer.commit("acme", vec![], FENCE).await.unwrap();
        let table = Table::open(&store, layout::FOLLOWERS);
        let state = table.state(None).await.unwrap().unwrap();
        assert_eq!(state.version() as i64, manifest.tables[layout::FOLLOWERS]);
        assert_eq!(state.log_data().num_files(), 4, "21 (a, b), 22 and 23");

        // A later holder of 23's lease commits its tables after our states
        // were read, and is killed before its marker: the tables fence us.
        let read_early = table_states(&store, &BTreeMap::new(), date(23)).await;
        commit_accounts(
            &store,
            23,
            "later",
            &[("a", &["o5"])],
            None,
            Fence { epoch: 20 },
        )
        .await
        .unwrap();
        store
            .delete(&layout::manifest_file(date(23)))
            .await
            .unwrap();
        let mut writer = SnapshotWriter::begin(store.clone(), date(23), "stale");
        writer.read_before(read_early);
        writer.add_file(write_account(&store, 23, "stale", "a", &["o6"]).await);
        let stale = writer.commit("acme", vec![], FENCE).await;
        assert!(
            matches!(stale, Err(LoadError::LeaseLost { .. })),
            "{stale:?}"
        );
    }
}
