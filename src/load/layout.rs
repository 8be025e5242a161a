//! The warehouse layout (SPEC §4): table names and Hive partition paths.

use chrono::NaiveDate;
use object_store::path::Path;

/// Raw table of Official Account followers, partitioned by account.
pub const FOLLOWERS: &str = "followers";
/// Raw table of WeCom external contacts × staff members, partitioned by account.
pub const CONTACTS: &str = "contacts";
/// Raw table of imported Mini Program / app / website users, partitioned by account.
pub const APP_USERS: &str = "app_users";
/// What idconvert answered a WeCom corp linked through it (UnionID ↔
/// external_userid / pending_id), partitioned by account: the memory that
/// spares the next run the calls.
pub const ID_LINKS: &str = "id_links";
/// External members of a WeCom corp's customer group chats, one row per
/// (chat, member), partitioned by account.
pub const GROUP_MEMBERS: &str = "group_members";
/// One row per (account, member).
pub const IDENTITIES: &str = "identities";
/// One row per person.
pub const PEOPLE: &str = "people";
/// Members, resolved, exclusive per account and the deduplicated `*` row.
pub const AUDIENCE: &str = "audience";
/// People shared by each pair of accounts.
pub const OVERLAP: &str = "overlap";
/// Members who joined or left each account since the previous complete snapshot.
pub const CHANGES: &str = "changes";
/// An Official Account's tags (`tags/get`) with our members per tag,
/// partitioned by account.
pub const TAGS: &str = "tags";
/// An Official Account's follower count as WeChat reports it
/// (`datacube/getusercumulate`) beside ours, partitioned by account.
pub const RECONCILIATION: &str = "reconciliation";
/// The folder of the snapshot markers; a marker (`manifest.json`) marks a
/// snapshot complete and names the Delta version of each table.
pub const MANIFESTS: &str = "_manifests";
/// The vacuum's journal: an empty object for each date runs wrote data
/// files under since a vacuum last found its partitions clean
/// (`_vacuum/snapshot_date=D`), and `_vacuum/started` once a whole sweep
/// has gone before the journal (see `load::vacuum`).
pub const JOURNAL: &str = "_vacuum";

/// A date's entry in the vacuum's journal.
pub fn journal_entry(date: NaiveDate) -> Path {
    Path::from(date_folder(JOURNAL, date))
}

/// The journal's mark that a whole sweep has gone before it.
pub fn journal_started() -> Path {
    Path::from(format!("{JOURNAL}/started"))
}

/// The partition column of every table.
pub const SNAPSHOT_DATE: &str = "snapshot_date";
/// The second partition column of the raw tables.
pub const ACCOUNT_ID: &str = "account_id";
/// Every table of the warehouse, each a Delta table at `OUTPUT/<table>/`.
pub const ALL_TABLES: [&str; 12] = [
    FOLLOWERS,
    CONTACTS,
    APP_USERS,
    ID_LINKS,
    IDENTITIES,
    PEOPLE,
    AUDIENCE,
    OVERLAP,
    CHANGES,
    TAGS,
    RECONCILIATION,
    GROUP_MEMBERS,
];
/// The raw tables: partitioned by date and account.
pub const RAW_TABLES: [&str; 7] = [
    FOLLOWERS,
    CONTACTS,
    APP_USERS,
    ID_LINKS,
    TAGS,
    RECONCILIATION,
    GROUP_MEMBERS,
];
/// The tables derived from the raw ones: partitioned by date.
pub const DERIVED_TABLES: [&str; 5] = [IDENTITIES, PEOPLE, AUDIENCE, OVERLAP, CHANGES];

/// The partition columns of `table`, in folder order.
pub fn partition_columns(table: &str) -> &'static [&'static str] {
    if RAW_TABLES.contains(&table) {
        &[SNAPSHOT_DATE, ACCOUNT_ID]
    } else {
        &[SNAPSHOT_DATE]
    }
}

/// The name of the file a run writes in a partition: unique to the run, so
/// that no file is ever overwritten (SPEC §4).
pub fn part_file(run_id: &str) -> String {
    format!("part-{run_id}-0.parquet")
}

/// Whether the file at `path` (or its local staging file, `name#N`) is
/// one run `run_id` writes ([`part_file`]).
pub fn written_by(path: &str, run_id: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_prefix("part-")
        .and_then(|rest| rest.strip_prefix(run_id))
        .is_some_and(|rest| rest.starts_with('-'))
}

/// `parent/snapshot_date=D`: a date's partition of a table, or a date's
/// folder of the markers, the crawl state or the vacuum's journal.
pub fn date_folder(parent: &str, date: NaiveDate) -> String {
    format!("{parent}/{SNAPSHOT_DATE}={date}")
}

/// `table/snapshot_date=D/account_id=A/part-<run_id>-0.parquet`
pub fn account_file(table: &str, date: NaiveDate, account_id: &str, run_id: &str) -> Path {
    Path::from(format!(
        "{table}/snapshot_date={date}/account_id={account_id}/{}",
        part_file(run_id)
    ))
}

/// `table/snapshot_date=D/part-<run_id>-0.parquet`
pub fn date_file(table: &str, date: NaiveDate, run_id: &str) -> Path {
    Path::from(format!(
        "{table}/snapshot_date={date}/{}",
        part_file(run_id)
    ))
}

/// `_manifests/snapshot_date=D/manifest.json`
pub fn manifest_file(date: NaiveDate) -> Path {
    Path::from(format!("{}/manifest.json", date_folder(MANIFESTS, date)))
}

/// Parses the date out of a `.../snapshot_date=D/...` path.
pub fn snapshot_date_of(path: &Path) -> Option<NaiveDate> {
    date_among(path.parts())
}

/// The date of the first `snapshot_date=D` among a path's `parts`.
pub fn date_among<S: AsRef<str>>(parts: impl IntoIterator<Item = S>) -> Option<NaiveDate> {
    parts
        .into_iter()
        .find_map(|part| {
            part.as_ref()
                .strip_prefix("snapshot_date=")
                .map(str::to_owned)
        })
        .and_then(|d| d.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_files_are_known_by_their_name() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let run = "20261121T023000Z-9f3a1c2b";
        let file = account_file(FOLLOWERS, d, "brand_oa", run).to_string();
        assert!(written_by(&file, run));
        assert!(written_by(&format!("{file}#3"), run), "its staging file");
        assert!(written_by(date_file(PEOPLE, d, run).as_ref(), run));
        assert!(
            !written_by(&file, "20261121T023000Z-9f3a1c2"),
            "a prefix of the id"
        );
        assert!(!written_by(&file, "20261121T023000Z-9f3a1c2b0"));
        assert!(!written_by(
            "people/snapshot_date=2026-11-21/other.parquet",
            run
        ));
    }

    #[test]
    fn paths_are_hive_partitions() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(
            account_file(FOLLOWERS, d, "brand_oa", "20261121T023000Z-9f3a1c2b").as_ref(),
            "followers/snapshot_date=2026-11-21/account_id=brand_oa/part-20261121T023000Z-9f3a1c2b-0.parquet"
        );
        assert_eq!(
            manifest_file(d).as_ref(),
            "_manifests/snapshot_date=2026-11-21/manifest.json"
        );
        assert_eq!(snapshot_date_of(&manifest_file(d)), Some(d));
    }
}
