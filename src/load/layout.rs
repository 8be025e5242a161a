//! The warehouse layout (SPEC §4): table names and Hive partition paths.

use chrono::NaiveDate;
use object_store::path::Path;

/// Raw table of Official Account followers, partitioned by account.
pub const FOLLOWERS: &str = "followers";
/// Raw table of WeCom external contacts × staff members, partitioned by account.
pub const CONTACTS: &str = "contacts";
/// Raw table of imported Mini Program / app / website users, partitioned by account.
pub const APP_USERS: &str = "app_users";
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
/// The folder of the manifests; a manifest marks a snapshot complete.
pub const MANIFESTS: &str = "_manifests";
/// The file name inside every partition: one file per partition.
pub const PART_FILE: &str = "part-0.parquet";
/// Every table of the warehouse: a commit removes the date's files in these
/// that the new snapshot did not write.
pub const ALL_TABLES: [&str; 8] = [
    FOLLOWERS, CONTACTS, APP_USERS, IDENTITIES, PEOPLE, AUDIENCE, OVERLAP, CHANGES,
];

/// `table/snapshot_date=D/`
pub fn date_prefix(table: &str, date: NaiveDate) -> Path {
    Path::from(format!("{table}/snapshot_date={date}"))
}

/// `table/snapshot_date=D/account_id=A/part-0.parquet`
pub fn account_file(table: &str, date: NaiveDate, account_id: &str) -> Path {
    Path::from(format!(
        "{table}/snapshot_date={date}/account_id={account_id}/{PART_FILE}"
    ))
}

/// `table/snapshot_date=D/part-0.parquet`
pub fn date_file(table: &str, date: NaiveDate) -> Path {
    Path::from(format!("{table}/snapshot_date={date}/{PART_FILE}"))
}

/// `_manifests/snapshot_date=D/manifest.json`
pub fn manifest_file(date: NaiveDate) -> Path {
    Path::from(format!("{MANIFESTS}/snapshot_date={date}/manifest.json"))
}

/// Parses the date out of a `.../snapshot_date=D/...` path.
pub fn snapshot_date_of(path: &Path) -> Option<NaiveDate> {
    path.parts()
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
    fn paths_are_hive_partitions() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(
            account_file(FOLLOWERS, d, "brand_oa").as_ref(),
            "followers/snapshot_date=2026-11-21/account_id=brand_oa/part-0.parquet"
        );
        assert_eq!(
            manifest_file(d).as_ref(),
            "_manifests/snapshot_date=2026-11-21/manifest.json"
        );
        assert_eq!(snapshot_date_of(&manifest_file(d)), Some(d));
    }
}
