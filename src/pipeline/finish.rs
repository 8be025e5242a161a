//! The step `run` ends with and `merge` consists of: from the identities of
//! every account of the snapshot (spilled to local disk as each account
//! landed, or read back from a partition already written), write the derived
//! tables (identities, people, audience, overlap, changes) a bucket group at
//! a time; confirm the lease; commit every table (fenced Delta transactions)
//! and the snapshot marker last; drop the date's crawl state. What does not
//! depend on the accounts — the previous snapshot's identities, the vacuum —
//! starts with the run ([`StartedEarly`]) and goes on beside the crawl.

use chrono::NaiveDate;
use polars::prelude::*;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::extract::RawShape;
use crate::job::{Account, Job, OutputLocation};
use crate::load::lease::Lease;
use crate::load::stream::{BackgroundWriter, PartitionWriter, DERIVED_ROW_GROUP_ROWS};
use crate::load::{self, layout, state, vacuum, Manifest, ManifestAccount, SnapshotWriter, Store};
use crate::transform::{self, AccountRef};

use super::derive::{self, PartitionedDerive, SpilledIdentities};
use super::RunError;

/// One account's members in the `identities` shape, spilled to local disk
/// (just extracted, or read back from the store by `merge`).
#[derive(Debug)]
pub struct LandedAccount {
    pub account: AccountRef,
    pub identities: SpilledIdentities,
    /// Recorded in the marker: see `ManifestAccount::unlicensed_staff_left_out`.
    pub unlicensed_staff_left_out: u64,
    /// The account's `changes` rows as its crawl found them (an Official
    /// Account whose identity cache was the previous snapshot's partition);
    /// otherwise the derivation compares the two days' identities.
    pub crawled_changes: Option<DataFrame>,
}

impl LandedAccount {
    /// An account about to land; `with_changes` when the run has a previous
    /// snapshot to compare with.
    pub fn new(account: &Account, with_changes: bool) -> Result<Self, load::LoadError> {
        Ok(LandedAccount {
            account: AccountRef {
                account_id: account.id.clone(),
                account_kind: account.kind().as_str().to_string(),
            },
            identities: SpilledIdentities::new(with_changes)?,
            unlicensed_staff_left_out: 0,
            crawled_changes: None,
        })
    }

    /// Adds rows of the account's raw table of the given shape. Rows of one
    /// member must come in one call, but for followers (each OpenID once).
    pub fn push_raw(&mut self, shape: RawShape, raw: DataFrame) -> Result<(), RunError> {
        let identities = account_identities(&self.account, shape, raw)?;
        self.identities.push(identities)?;
        Ok(())
    }

    /// Adds a WeCom corp's rows: its `contacts` and, when it reads its
    /// customer groups, its `group_members`, as one frame: a customer who is
    /// also in groups is one member (the same external_userid), joined at
    /// the earliest of the contact's `added_at` and the groups' `join_time`.
    pub fn push_with_groups(
        &mut self,
        shape: RawShape,
        contacts: DataFrame,
        group_members: Option<DataFrame>,
    ) -> Result<(), RunError> {
        let Some(groups) = group_members else {
            return self.push_raw(shape, contacts);
        };
        let columns = |frame: DataFrame, joined: &str| {
            frame.lazy().select([
                col(shape.member_col),
                col("unionid"),
                col(joined)
                    .cast(DataType::Datetime(
                        TimeUnit::Microseconds,
                        Some(TimeZone::UTC),
                    ))
                    .alias(shape.joined_col),
            ])
        };
        let both = concat(
            [
                columns(contacts, shape.joined_col),
                columns(groups, GROUP_JOINED_COL),
            ],
            UnionArgs::default(),
        )?
        .collect()?;
        self.push_raw(shape, both)
    }

    /// No more rows come.
    pub fn finish(mut self) -> Result<Self, RunError> {
        self.identities.flush()?;
        Ok(self)
    }

    /// The account's members.
    pub fn members(&self) -> i64 {
        self.identities.rows() as i64
    }
}

/// When an external member joined a chat (`group_members`).
const GROUP_JOINED_COL: &str = "join_time";

/// `account`'s rows of `identities` from its raw table of the given shape.
pub fn account_identities(
    account: &AccountRef,
    shape: RawShape,
    raw: DataFrame,
) -> PolarsResult<DataFrame> {
    // Followers hold each OpenID once; other raw tables have a row per
    // (contact, staff member) or per login and are grouped by member.
    let members = if shape.table == layout::FOLLOWERS {
        transform::unique_member_identities
    } else {
        transform::member_identities
    };
    members(
        &account.account_id,
        &account.account_kind,
        raw.lazy(),
        shape.member_col,
        shape.joined_col,
    )
    .collect()
}

/// The parts of a commit that do not depend on the run's accounts, started
/// as the run starts so they go on while the crawl waits on WeChat: the
/// previous complete snapshot's identities, spilled for `changes` (when
/// they are few enough to stay in memory: a large snapshot's would compete
/// with the crawl for the cores and the memory, so they are read when the
/// commit needs them), the tables' Delta states (the commit then reads
/// only what was committed since), and the vacuum of the output. Dropping
/// it (a run that will not commit) stops them.
pub struct StartedEarly {
    /// The date of the previous complete snapshot, if any.
    previous_date: Option<NaiveDate>,
    /// Its accounts.
    previous_accounts: Vec<String>,
    previous: Previous,
    /// The tables' states, which the vacuum reads first and hands over.
    table_states: Option<oneshot::Receiver<load::commit::TableStates>>,
    vacuum: AbortOnDropHandle<Result<(), load::LoadError>>,
}

/// The previous snapshot's identities: none, being read, or to be read.
enum Previous {
    None,
    Reading(AbortOnDropHandle<Result<SpilledIdentities, RunError>>),
    Later(Box<Manifest>),
}

impl StartedEarly {
    /// Starts both for a commit of `date` by run `run_id`; `previous` is
    /// the previous complete snapshot the commit compares with. `carries`:
    /// every account may carry its followers over from it (Official
    /// Accounts with `refresh = "new"`), so today's `people` may be carried
    /// forward from its own, which are then read back (or derived again)
    /// now, beside the crawl.
    pub fn start(
        store: &Store,
        output: &OutputLocation,
        date: NaiveDate,
        run_id: &str,
        previous: Option<&Manifest>,
        carries: bool,
    ) -> Self {
        let small = |manifest: &Manifest| {
            (manifest.files.iter())
                .find(|f| f.table == layout::IDENTITIES)
                .is_some_and(|f| f.rows <= derive::kept_rows())
        };
        let identities = match previous {
            None => Previous::None,
            Some(manifest) if small(manifest) => {
                let (store, manifest) = (store.clone(), manifest.clone());
                let reading = async move {
                    let mut spilled = spill_identities_of(&store, &manifest).await?;
                    if carries {
                        let stored = stored_people(&store, &manifest).await;
                        tokio::task::block_in_place(|| spilled.keep_people(stored))?;
                    }
                    Ok(spilled)
                };
                Previous::Reading(AbortOnDropHandle::new(tokio::spawn(
                    reading.in_current_span(),
                )))
            }
            Some(manifest) => Previous::Later(Box::new(manifest.clone())),
        };
        // The cutoff is taken now, before the run writes anything (a task
        // starts when a worker gets to it).
        let cutoff = vacuum::cutoff(vacuum::retention());
        let running = vacuum::Running {
            date,
            run_id: run_id.to_string(),
        };
        // The tables' states are read once: the commit starts from them,
        // and the vacuum goes through them.
        let (states_tx, states_rx) = oneshot::channel();
        let (store, output) = (store.clone(), output.clone());
        let known = previous.map(|m| m.tables.clone()).unwrap_or_default();
        let vacuuming = async move {
            let states = load::commit::table_states(&store, &known, date).await;
            let _ = states_tx.send(states.clone());
            let sweep = vacuum::Sweep::Journaled;
            vacuum::vacuum_output(&store, &output, cutoff, Some(&running), &states, sweep)
                .await
                .map(drop)
        };
        let vacuum = AbortOnDropHandle::new(tokio::spawn(vacuuming.in_current_span()));
        StartedEarly {
            previous_date: previous.map(|m| m.snapshot_date),
            previous_accounts: (previous.iter())
                .flat_map(|m| m.accounts.iter().map(|a| a.account_id.clone()))
                .collect(),
            previous: identities,
            table_states: Some(states_rx),
            vacuum,
        }
    }

    async fn previous_identities(
        &mut self,
        store: &Store,
    ) -> Result<Option<SpilledIdentities>, RunError> {
        if let Some(previous_date) = self.previous_date {
            tracing::info!(%previous_date, "changes since the previous complete snapshot");
        }
        match std::mem::replace(&mut self.previous, Previous::None) {
            Previous::None => Ok(None),
            Previous::Reading(task) => task
                .await
                .map_err(|error| {
                    RunError::Task(format!(
                        "the read of the previous snapshot's identities stopped: {error}"
                    ))
                })?
                .map(Some),
            Previous::Later(manifest) => spill_identities_of(store, &manifest).await.map(Some),
        }
    }

    /// The tables' states read beside the crawl (none if that read stopped:
    /// the commit then reads them itself).
    async fn table_states(&mut self) -> load::commit::TableStates {
        match self.table_states.take() {
            Some(states) => states.await.unwrap_or_default(),
            None => load::commit::TableStates::default(),
        }
    }

    /// Waits for the vacuum; a failure is only logged.
    async fn vacuumed(self) {
        let result = match self.vacuum.await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "vacuum failed; the snapshot is committed, the next run vacuums again");
        }
    }
}

/// What [`commit_snapshot`] committed.
#[derive(Debug)]
pub struct Committed {
    pub manifest: load::Manifest,
    pub audience: DataFrame,
}

/// Reads back a raw partition already in the store (a shard landed it, or
/// a committed snapshot holds it), with the corp's `group_members` file if
/// it has one, as the account's rows of `identities`.
pub async fn read_back(
    store: &Store,
    account: &Account,
    path: &str,
    group_members: Option<&str>,
    with_changes: bool,
) -> Result<LandedAccount, RunError> {
    let shape = crate::extract::raw_shape(account);
    let mut landed = LandedAccount::new(account, with_changes)?;
    // Followers can be large: only the identity columns are read back, a
    // row group at a time.
    if shape.table == layout::FOLLOWERS {
        super::followers::for_each_identities(store, path, |rows| landed.push_raw(shape, rows))
            .await?;
    } else {
        let raw = load::read_file(store, path).await?;
        let groups = match group_members {
            Some(path) => Some(load::read_file(store, path).await?),
            None => None,
        };
        landed.push_with_groups(shape, raw, groups)?;
    }
    tracing::info!(account_id = %account.id, %path, "raw partition read back");
    landed.finish()
}

/// Derives and writes the date's tables from `landed` (in job order), then
/// commits under `lease`: every table, the marker last, crawl state deleted;
/// then waits for the vacuum `early` started. `changes` compares with the
/// previous complete snapshot `early` was started with. The tables are
/// derived a bucket group at a time ([`derive`]) and streamed to the store,
/// so memory does not grow with the number of members.
pub async fn commit_snapshot(
    job: &Job,
    lease: &Lease,
    writer: SnapshotWriter,
    landed: Vec<LandedAccount>,
    mut early: StartedEarly,
) -> Result<Committed, RunError> {
    let derived = derive_tables(&writer, landed, &mut early).await?;
    commit_derived(job, lease, writer, derived, early).await
}

/// The derived tables of a snapshot, streamed to the store but not yet
/// completed: nothing is visible until [`commit_derived`], and dropped (or
/// [`Self::abort`]ed) they are abandoned.
pub struct DerivedTables {
    accounts: Vec<ManifestAccount>,
    /// `identities`, `people` and `changes`, their rows all encoded.
    streamed: [BackgroundWriter; 3],
    audience: DataFrame,
    overlap: DataFrame,
}

impl DerivedTables {
    /// Abandons the streamed tables: nothing becomes visible.
    pub async fn abort(self) {
        for table in self.streamed {
            table.abort().await;
        }
    }
}

/// The first half of [`commit_snapshot`]: derives the tables from `landed`
/// and streams them to the store (every row encoded, no file completed), so
/// that a run can do it while its accounts' own files are being completed.
pub async fn derive_tables(
    writer: &SnapshotWriter,
    landed: Vec<LandedAccount>,
    early: &mut StartedEarly,
) -> Result<DerivedTables, RunError> {
    let store = writer.store().clone();
    let (date, run_id) = (writer.date(), writer.run_id());
    let accounts: Vec<AccountRef> = landed.iter().map(|l| l.account.clone()).collect();
    let manifest_accounts = landed
        .iter()
        .map(|l| ManifestAccount {
            account_id: l.account.account_id.clone(),
            account_kind: l.account.account_kind.clone(),
            members: l.members(),
            unlicensed_staff_left_out: l.unlicensed_staff_left_out,
        })
        .collect();
    let previous_identities = early.previous_identities(&store).await?;
    let mut derive = PartitionedDerive::new(
        &accounts,
        landed.iter().map(|l| &l.identities).collect(),
        previous_identities.as_ref(),
        derive::group_rows(),
    )?
    .with_crawled_changes(
        landed.iter().map(|l| l.crawled_changes.as_ref()).collect(),
        early.previous_accounts.clone(),
    );

    let empty_people = derive::empty_people()?;
    let table = |name| layout::date_file(name, date, run_id);
    let mut identities = date_table(
        &store,
        layout::IDENTITIES,
        table(layout::IDENTITIES),
        &derive::empty_identities()?,
    )
    .await?;
    let mut people =
        date_table(&store, layout::PEOPLE, table(layout::PEOPLE), &empty_people).await?;
    let mut changes = date_table(
        &store,
        layout::CHANGES,
        table(layout::CHANGES),
        &transform::no_changes(),
    )
    .await?;
    let streamed = async {
        let groups = derive.person_groups();
        tracing::info!(
            groups = groups.len(),
            people_carried_forward = derive.carries_people(&groups),
            "deriving people, audience and overlap"
        );
        // Each table is encoded and uploaded by a task of its own while
        // the next group is derived.
        for range in groups {
            let group = tokio::task::block_in_place(|| derive.group_identities(range.clone()))?;
            // Encoded while the group's people are derived.
            identities.write(group.clone()).await?;
            let group_people = tokio::task::block_in_place(|| derive.person_group(range, &group))?;
            people.write(group_people).await?;
        }
        // Each group's rows are written once the next is derived: the last
        // group's are held back.
        let mut last = None;
        for range in derive.changes_groups() {
            let rows = tokio::task::block_in_place(|| derive.changes_group(range))?;
            if let Some(before) = last.replace(rows) {
                changes.write(before).await?;
            }
        }
        // The changes the accounts' crawls found, sorted in with the last
        // group's.
        if let Some(rows) = tokio::task::block_in_place(|| derive.crawled_changes(last))? {
            changes.write(rows).await?;
        }
        // The last rows are encoded now, while the accounts' files may
        // still be completing.
        for table in [&mut identities, &mut people, &mut changes] {
            table.flush().await?;
        }
        let (audience, overlap) = derive.finish()?;
        Ok::<_, RunError>((audience, overlap))
    }
    .await;
    let streamed_tables = [identities, people, changes];
    match streamed {
        Ok((audience, overlap)) => Ok(DerivedTables {
            accounts: manifest_accounts,
            streamed: streamed_tables,
            audience,
            overlap,
        }),
        Err(error) => {
            for table in streamed_tables {
                table.abort().await;
            }
            Err(error)
        }
    }
}

/// The second half of [`commit_snapshot`]: completes the `derived` tables
/// and commits them with the files `writer` holds.
pub async fn commit_derived(
    job: &Job,
    lease: &Lease,
    mut writer: SnapshotWriter,
    derived: DerivedTables,
    mut early: StartedEarly,
) -> Result<Committed, RunError> {
    let DerivedTables {
        accounts,
        streamed: [identities, people, changes],
        mut audience,
        mut overlap,
    } = derived;
    let (identities, people, changes) =
        tokio::join!(identities.finish(), people.finish(), changes.finish());
    for file in [identities, people, changes] {
        writer.add_file(file?);
    }
    writer
        .write_date_table(layout::AUDIENCE, &mut audience)
        .await?;
    writer
        .write_date_table(layout::OVERLAP, &mut overlap)
        .await?;
    let (store, date) = (writer.store().clone(), writer.date());
    // A run paused or stalled past its lease, which a later run took over,
    // stops here; the commits themselves are fenced as well.
    lease.confirm(date).await?;
    writer.read_before(early.table_states().await);
    let manifest = writer.commit(&job.name, accounts, lease.fence()).await?;
    tracing::info!(snapshot_date = %date, tables = ?manifest.tables, "snapshot committed: Delta versions");
    // The date is complete: its crawl state has served its purpose.
    state::delete_date_state(&store, &job.output, date).await?;
    early.vacuumed().await;
    Ok(Committed { manifest, audience })
}

/// Starts the streamed upload of a date table of `empty`'s schema at `path`,
/// written by a task of its own.
async fn date_table(
    store: &Store,
    table: &str,
    path: object_store::path::Path,
    empty: &DataFrame,
) -> Result<BackgroundWriter, load::LoadError> {
    let writer = PartitionWriter::create(store, table, path, empty.schema())
        .await?
        .with_row_group_rows(DERIVED_ROW_GROUP_ROWS);
    Ok(BackgroundWriter::spawn(writer))
}

/// The `people` of a complete snapshot as its commit wrote them, in the
/// schema [`transform::people`] gives, when it wrote one file of them
/// (None when it cannot be read: they are then derived again).
async fn stored_people(store: &Store, manifest: &Manifest) -> Option<DataFrame> {
    let mut files = (manifest.files.iter()).filter(|f| f.table == layout::PEOPLE);
    let (Some(file), None) = (files.next(), files.next()) else {
        return None;
    };
    let read = async {
        let stored = load::read_file(store, &file.path).await?;
        let typed = typed_as(&derive::empty_people()?);
        Ok::<_, RunError>(stored.lazy().select(typed).collect()?)
    };
    match read.await {
        Ok(people) if people.height() as u64 == file.rows => Some(people),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(path = %file.path, %error, "cannot read the previous snapshot's people; deriving them again");
            None
        }
    }
}

/// The columns of `empty`, each cast to its type: a table read back typed
/// as today's (a column of nulls only can be read back untyped).
fn typed_as(empty: &DataFrame) -> Vec<Expr> {
    (empty.schema().iter())
        .map(|(name, dtype)| col(name.clone()).cast(dtype.clone()))
        .collect()
}

/// The `identities` of a complete snapshot, spilled a slice at a time.
async fn spill_identities_of(
    store: &Store,
    manifest: &Manifest,
) -> Result<SpilledIdentities, RunError> {
    let path = load::table_file(manifest, layout::IDENTITIES)?;
    let typed = typed_as(&derive::empty_identities()?);
    let mut spilled = SpilledIdentities::new(true)?;
    load::read::for_each_slice(store, path, None, |rows| -> Result<(), RunError> {
        // Typed as today's: a column of nulls only can be read back untyped.
        spilled.push(rows.lazy().select(typed.clone()).collect()?)?;
        Ok(())
    })
    .await?;
    spilled.flush()?;
    Ok(spilled)
}
