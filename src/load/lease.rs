//! The lease: at most one run of a job writes a snapshot date at a time.
//!
//! A Kubernetes CronJob can start two pods for one schedule, and an operator
//! can start a manual run beside the scheduled one. Interleaved writes of one
//! date would mix files of two runs, so a run first takes a lease object,
//! `_leases/snapshot_date=D.json`, with a conditional put
//! (`PutMode::Create`: it fails if the object exists). The second run finds
//! it and exits 4 without writing anything.
//!
//! A lease expires (`UNIONSNAP_LEASE_TTL`, default 10 minutes) so that a holder
//! killed without releasing it does not block the date forever; the holder
//! renews it every third of that time while it runs. A lease taken on this
//! same machine by a process that no longer exists is over at once. An expired lease is taken
//! over with a conditional update on its e-tag (`PutMode::Update`), so two
//! runs cannot both take it; on stores without conditional updates (a local
//! folder) it is deleted and created anew, and creation stays exclusive.
//!
//! **Fencing.** Each holder gets an epoch greater than every earlier
//! holder's (the lease object is kept on release, marked released, so the
//! epochs of a date only grow). Renewal is conditional on the lease being
//! still this run's; a run that finds it taken over stops renewing and is
//! told so ([`Lease::confirm`]). Every Delta commit carries the epoch and is
//! refused once a later epoch committed the date ([`super::delta`]), so a
//! run paused past its TTL (SIGSTOP, a frozen VM) commits nothing and exits
//! 4, whatever its clock says.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::{path::Path, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::store::{delete_if_exists, get_if_exists, get_versioned, Store};
use super::LoadError;

/// How long a lease lasts without renewal.
pub use crate::job::DEFAULT_LEASE_TTL;

/// The lease object's content: who holds it, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub run_id: String,
    /// Greater than every earlier holder's epoch of this lease.
    #[serde(default)]
    pub epoch: i64,
    /// The holder finished and gave the lease back.
    #[serde(default)]
    pub released: bool,
    pub host: String,
    pub pid: u32,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Another run holds the lease of the date.
#[derive(Debug, Clone, thiserror::Error)]
#[error("another run ({}, on {} pid {}) holds the lease of snapshot {date} until {}; nothing was written. Wait for it to finish, or, if it died, for the lease to expire", holder.run_id, holder.host, holder.pid, holder.expires_at.format("%Y-%m-%d %H:%M:%S UTC"))]
pub struct LeaseHeld {
    pub date: NaiveDate,
    pub holder: LeaseRecord,
}

/// A held lease; renewed in the background until [`Lease::release`].
pub struct Lease {
    store: Store,
    path: Path,
    record: LeaseRecord,
    renewer: JoinHandle<()>,
    /// Cancelled when the renewer finds the lease taken over.
    lost: tokio_util::sync::CancellationToken,
}

/// The lease's TTL: `UNIONSNAP_LEASE_TTL` (a duration like "10m", checked
/// by [`crate::job::EnvSettings`]) or the default.
pub fn lease_ttl() -> Duration {
    crate::job::EnvSettings::current().lease_ttl
}

/// `_leases/snapshot_date=D.json`, or `…=D.shard-I-of-N.json` for a shard
/// (the shards of one date run at once by design; `merge` takes the date's).
fn lease_path(date: NaiveDate, scope: Option<&str>) -> Path {
    match scope {
        Some(scope) => Path::from(format!("_leases/snapshot_date={date}.{scope}.json")),
        None => Path::from(format!("_leases/snapshot_date={date}.json")),
    }
}

fn record(run_id: &str, ttl: Duration, after_epoch: i64) -> LeaseRecord {
    let now = Utc::now();
    LeaseRecord {
        run_id: run_id.to_string(),
        // Milliseconds since the epoch keep epochs growing even where the
        // lease object was deleted by hand; +1 where clocks disagree.
        epoch: now.timestamp_millis().max(after_epoch.saturating_add(1)),
        released: false,
        host: hostname(),
        pid: std::process::id(),
        acquired_at: now,
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10)),
    }
}

/// This machine's name (the pod name in Kubernetes).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

impl LeaseRecord {
    /// Whether the holder may still be running: the lease has not expired,
    /// and, when it was taken on this machine, its process still exists (a
    /// run killed here need not block the re-run for the whole TTL).
    fn is_live(&self) -> bool {
        if self.released || self.expires_at <= Utc::now() {
            return false;
        }
        if self.host == hostname() && self.pid != std::process::id() {
            let proc_root = std::path::Path::new("/proc");
            if proc_root.join("self").exists() && !proc_root.join(self.pid.to_string()).exists() {
                return false;
            }
        }
        true
    }
}

fn payload(record: &LeaseRecord) -> Result<PutPayload, LoadError> {
    serde_json::to_vec_pretty(record)
        .map(PutPayload::from)
        .map_err(LoadError::ManifestJson)
}

/// Why the lease could not be taken: held by another run, or a store error.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Held(#[from] LeaseHeld),
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl Lease {
    /// Takes the lease of `date` for `run_id`, or says who holds it.
    pub async fn acquire(
        store: &Store,
        date: NaiveDate,
        scope: Option<&str>,
        run_id: &str,
        ttl: Duration,
    ) -> Result<Lease, LeaseError> {
        let path = lease_path(date, scope);
        let mut mine = record(run_id, ttl, 0);
        let create = PutOptions::from(PutMode::Create);
        match store.put_opts(&path, payload(&mine)?, create.clone()).await {
            Ok(_) => return Ok(Lease::start(store, path, mine, ttl)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(source) => return Err(LoadError::store(&path, source).into()),
        }
        // Someone holds it, or held it and died.
        let current = match store.get(&path).await {
            Ok(current) => current,
            // Released in between: try once more to create it.
            Err(object_store::Error::NotFound { .. }) => {
                return match store.put_opts(&path, payload(&mine)?, create).await {
                    Ok(_) => Ok(Lease::start(store, path, mine, ttl)),
                    Err(source) => Err(LoadError::store(&path, source).into()),
                };
            }
            Err(source) => return Err(LoadError::store(&path, source).into()),
        };
        let version = UpdateVersion {
            e_tag: current.meta.e_tag.clone(),
            version: current.meta.version.clone(),
        };
        let bytes = current
            .bytes()
            .await
            .map_err(|source| LoadError::store(&path, source))?;
        // An unreadable lease (a torn write cannot happen: puts are atomic; a
        // foreign file can) is treated as expired.
        let holder: Option<LeaseRecord> = serde_json::from_slice(&bytes).ok();
        if let Some(holder) = holder.clone().filter(LeaseRecord::is_live) {
            return Err(LeaseHeld { date, holder }.into());
        }
        mine = record(run_id, ttl, holder.as_ref().map_or(0, |h| h.epoch));
        if !holder.as_ref().is_some_and(|h| h.released) {
            tracing::warn!(lease = %path, "taking over the lease of a run that died or hung");
        }
        let update = PutOptions::from(PutMode::Update(version));
        match store.put_opts(&path, payload(&mine)?, update).await {
            Ok(_) => Ok(Lease::start(store, path, mine, ttl)),
            Err(object_store::Error::Precondition { .. }) => {
                // Another run took it over first.
                let holder = read(store, &path).await?.unwrap_or(mine);
                Err(LeaseHeld { date, holder }.into())
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                // No conditional update here (a local folder): delete and
                // create; creation is still exclusive, so one run wins.
                delete_if_exists(store, &path)
                    .await
                    .map_err(|source| LoadError::store(&path, source))?;
                match store
                    .put_opts(&path, payload(&mine)?, PutOptions::from(PutMode::Create))
                    .await
                {
                    Ok(_) => Ok(Lease::start(store, path, mine, ttl)),
                    Err(object_store::Error::AlreadyExists { .. }) => {
                        let holder = read(store, &path).await?.unwrap_or(mine);
                        Err(LeaseHeld { date, holder }.into())
                    }
                    Err(source) => Err(LoadError::store(&path, source).into()),
                }
            }
            Err(source) => Err(LoadError::store(&path, source).into()),
        }
    }

    fn start(store: &Store, path: Path, record: LeaseRecord, ttl: Duration) -> Lease {
        let lost = tokio_util::sync::CancellationToken::new();
        let renewer = tokio::spawn(
            renew(
                store.clone(),
                path.clone(),
                record.clone(),
                ttl,
                lost.clone(),
            )
            .in_current_span(),
        );
        Lease {
            store: store.clone(),
            path,
            record,
            renewer,
            lost,
        }
    }

    /// The lease as written.
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// The fence every commit of this run carries.
    pub fn fence(&self) -> super::delta::Fence {
        super::delta::Fence {
            epoch: self.record.epoch,
        }
    }

    /// Confirms, right before committing, that the lease is still this
    /// run's (renewing it): a run paused or stalled past its TTL whose lease
    /// a later run took over gets [`LoadError::LeaseLost`].
    pub async fn confirm(&self, date: NaiveDate) -> Result<(), LoadError> {
        let lost = |detail: String| LoadError::LeaseLost { date, detail };
        if self.lost.is_cancelled() {
            return Err(lost(
                "the lease was taken over while this run was paused or stalled".to_string(),
            ));
        }
        match renew_once(&self.store, &self.path, &self.record, self.ttl()).await? {
            Renewal::Renewed => Ok(()),
            Renewal::TakenOver(holder) => {
                self.lost.cancel();
                Err(lost(format!(
                    "run {} (on {} pid {}) holds it now",
                    holder.run_id, holder.host, holder.pid
                )))
            }
        }
    }

    fn ttl(&self) -> Duration {
        (self.record.expires_at - self.record.acquired_at)
            .to_std()
            .unwrap_or(DEFAULT_LEASE_TTL)
    }

    /// Stops renewing and marks the lease released, if it is still ours (the
    /// object stays: the next holder's epoch follows this one's).
    pub async fn release(self) {
        self.renewer.abort();
        match read_versioned(&self.store, &self.path).await {
            Ok(Some((current, version))) if current.run_id == self.record.run_id => {
                let mut released = current;
                released.released = true;
                released.expires_at = Utc::now();
                let Ok(body) = payload(&released) else { return };
                if let Err(error) = put_if_unchanged(&self.store, &self.path, body, version).await {
                    tracing::warn!(%error, "could not release the lease; it expires by itself");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not read the lease to release it"),
        }
    }
}

/// How a renewal went.
enum Renewal {
    Renewed,
    TakenOver(LeaseRecord),
}

/// Puts `body` at `path` if the object is still at `version` (a plain put
/// where the store has no conditional update: a local folder).
async fn put_if_unchanged(
    store: &Store,
    path: &Path,
    body: PutPayload,
    version: UpdateVersion,
) -> Result<bool, object_store::Error> {
    match store
        .put_opts(
            path,
            body.clone(),
            PutOptions::from(PutMode::Update(version)),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::Precondition { .. }) => Ok(false),
        Err(object_store::Error::NotImplemented { .. }) => {
            store.put(path, body).await.map(|_| true)
        }
        Err(error) => Err(error),
    }
}

/// Renews `mine` if the lease object is still this run's.
async fn renew_once(
    store: &Store,
    path: &Path,
    mine: &LeaseRecord,
    ttl: Duration,
) -> Result<Renewal, LoadError> {
    for _ in 0..3 {
        let current = read_versioned(store, path).await?;
        let Some((current, version)) = current else {
            // Deleted by hand: ours is the latest epoch still; write it back.
            let mut renewed = mine.clone();
            renewed.expires_at = expiry(ttl);
            store
                .put_opts(path, payload(&renewed)?, PutOptions::from(PutMode::Create))
                .await
                .map_err(|source| LoadError::store(path, source))?;
            return Ok(Renewal::Renewed);
        };
        if current.run_id != mine.run_id || current.epoch != mine.epoch || current.released {
            return Ok(Renewal::TakenOver(current));
        }
        let mut renewed = current;
        renewed.expires_at = expiry(ttl);
        match put_if_unchanged(store, path, payload(&renewed)?, version).await {
            Ok(true) => return Ok(Renewal::Renewed),
            Ok(false) => continue, // changed in between: look again
            Err(source) => return Err(LoadError::store(path, source)),
        }
    }
    Err(LoadError::LeaseLost {
        date: mine.acquired_at.date_naive(),
        detail: "the lease object kept changing under its renewal".to_string(),
    })
}

fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10))
}

async fn read_versioned(
    store: &Store,
    path: &Path,
) -> Result<Option<(LeaseRecord, UpdateVersion)>, LoadError> {
    let found = get_versioned(store, path)
        .await
        .map_err(|source| LoadError::store(path, source))?;
    Ok(
        found
            .and_then(|(bytes, version)| serde_json::from_slice(&bytes).ok().map(|r| (r, version))),
    )
}

/// Whether `run_id` holds a live lease of `date` (any scope: the date's or
/// a shard's).
pub async fn run_holds_a_lease(
    store: &Store,
    date: NaiveDate,
    run_id: &str,
) -> Result<bool, LoadError> {
    let objects = super::store::list_all(store, &Path::from("_leases")).await?;
    let name = format!("snapshot_date={date}.");
    for object in objects {
        if !object
            .location
            .filename()
            .is_some_and(|f| f.starts_with(&name))
        {
            continue;
        }
        if let Some(record) = read(store, &object.location).await? {
            if record.run_id == run_id && record.is_live() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

async fn read(store: &Store, path: &Path) -> Result<Option<LeaseRecord>, LoadError> {
    let bytes = get_if_exists(store, path)
        .await
        .map_err(|source| LoadError::store(path, source))?;
    Ok(bytes.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Pushes the expiry forward every third of the TTL while the run lasts,
/// as long as the lease is still this run's; cancels `lost` when a later
/// run took it over.
async fn renew(
    store: Store,
    path: Path,
    record: LeaseRecord,
    ttl: Duration,
    lost: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match renew_once(&store, &path, &record, ttl).await {
            Ok(Renewal::Renewed) => {}
            Ok(Renewal::TakenOver(holder)) => {
                tracing::error!(holder = %holder.run_id, "the lease was taken over by a later run: this run will commit nothing");
                lost.cancel();
                return;
            }
            Err(error) => tracing::warn!(%error, "could not renew the lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    #[tokio::test]
    async fn a_second_run_finds_the_lease_held() {
        let store: Store = Arc::new(InMemory::new());
        let first = Lease::acquire(&store, date(), None, "run-1", DEFAULT_LEASE_TTL)
            .await
            .unwrap();
        let second = Lease::acquire(&store, date(), None, "run-2", DEFAULT_LEASE_TTL).await;
        match second {
            Err(LeaseError::Held(held)) => assert_eq!(held.holder.run_id, "run-1"),
            other => panic!("{:?}", other.map(|l| l.record().clone())),
        }
        first.release().await;
        let third = Lease::acquire(&store, date(), None, "run-3", DEFAULT_LEASE_TTL)
            .await
            .unwrap();
        assert_eq!(third.record().run_id, "run-3");
    }

    #[tokio::test]
    async fn the_lease_of_a_dead_process_on_this_machine_is_taken_over() {
        let store: Store = Arc::new(InMemory::new());
        let mut dead = record("killed-run", DEFAULT_LEASE_TTL, 0);
        dead.pid = u32::MAX - 1; // no such process
        store
            .put(&lease_path(date(), None), payload(&dead).unwrap())
            .await
            .unwrap();
        let lease = Lease::acquire(&store, date(), None, "run-2", DEFAULT_LEASE_TTL)
            .await
            .unwrap();
        assert_eq!(lease.record().run_id, "run-2");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over() {
        let store: Store = Arc::new(InMemory::new());
        let mut dead = record("dead-run", DEFAULT_LEASE_TTL, 0);
        dead.expires_at = Utc::now() - chrono::Duration::seconds(1);
        store
            .put(&lease_path(date(), None), payload(&dead).unwrap())
            .await
            .unwrap();
        let lease = Lease::acquire(&store, date(), None, "run-2", DEFAULT_LEASE_TTL)
            .await
            .unwrap();
        assert_eq!(lease.record().run_id, "run-2");
    }
}
