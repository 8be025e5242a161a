//! What the HTML report draws, read from the warehouse into plain rows: the
//! chosen snapshot's accounts and overlap, the trend over every complete
//! snapshot up to it, and the exclusive intersections of its accounts.
//!
//! Only complete snapshots (with a manifest) are read, as everywhere in the
//! report; the charts are then drawn from these rows alone.

use chrono::NaiveDate;
use polars::prelude::*;

use super::{read_snapshot, ReportError, Snapshot};
use crate::load::{self, layout, Store};
use crate::transform::{self, ALL_ACCOUNTS};

/// One account's row of `audience`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub account_id: String,
    pub account_kind: String,
    pub members: i64,
    pub resolved: i64,
    pub unresolved: i64,
    pub exclusive_people: i64,
    /// Null on a first snapshot.
    pub joined: Option<i64>,
    pub left: Option<i64>,
}

/// The `*` row of one snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub date: NaiveDate,
    /// Gross memberships.
    pub members: i64,
    pub resolved_people: i64,
    pub unique_people: i64,
    pub duplicate_memberships: i64,
    pub joined: Option<i64>,
    pub left: Option<i64>,
}

/// People whose accounts are exactly `accounts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Intersection {
    pub accounts: Vec<String>,
    pub people: i64,
}

/// A WeCom corp's customer groups in the snapshot (`group_members`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFigures {
    pub account_id: String,
    /// Chats with at least one external member.
    pub chats: i64,
    /// Chats whose owner left the corp (status 1, 2 or 3).
    pub chats_owner_left: i64,
    /// Distinct external members of the corp's groups.
    pub members_in_groups: i64,
    /// Of those, the ones who are no staff member's contact.
    pub in_groups_only: i64,
}

/// Everything the HTML report shows.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub snapshot: Snapshot,
    /// Sorted by account id.
    pub accounts: Vec<AccountRow>,
    pub totals: Totals,
    /// `(account_a, account_b, shared_people)`.
    pub overlap: Vec<(String, String, i64)>,
    /// Every complete snapshot up to this one, oldest first.
    pub trend: Vec<Totals>,
    /// Largest first.
    pub intersections: Vec<Intersection>,
    /// One per WeCom corp that read its customer groups, by account id.
    pub groups: Vec<GroupFigures>,
}

fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<i64>>> {
    Ok(df.column(name)?.i64()?.iter().collect())
}

fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// The per-account rows and the `*` row of an `audience` table.
pub fn audience_rows(
    date: NaiveDate,
    audience: &DataFrame,
) -> Result<(Vec<AccountRow>, Totals), ReportError> {
    let ids = strings(audience, "account_id")?;
    let kinds = strings(audience, "account_kind")?;
    let [members, resolved, unresolved, exclusive, resolved_people, unique, duplicates, joined, left] =
        [
            "members",
            "resolved",
            "unresolved",
            "exclusive_people",
            "resolved_people",
            "unique_people",
            "duplicate_memberships",
            "joined",
            "left",
        ]
        .map(|name| ints(audience, name));
    let (members, resolved, unresolved, exclusive) = (members?, resolved?, unresolved?, exclusive?);
    let (resolved_people, unique, duplicates) = (resolved_people?, unique?, duplicates?);
    let (joined, left) = (joined?, left?);
    let mut accounts = Vec::new();
    let mut totals = None;
    for i in 0..audience.height() {
        if ids[i] == ALL_ACCOUNTS {
            totals = Some(Totals {
                date,
                members: members[i].unwrap_or(0),
                resolved_people: resolved_people[i].unwrap_or(0),
                unique_people: unique[i].unwrap_or(0),
                duplicate_memberships: duplicates[i].unwrap_or(0),
                joined: joined[i],
                left: left[i],
            });
        } else {
            accounts.push(AccountRow {
                account_id: ids[i].clone(),
                account_kind: kinds[i].clone(),
                members: members[i].unwrap_or(0),
                resolved: resolved[i].unwrap_or(0),
                unresolved: unresolved[i].unwrap_or(0),
                exclusive_people: exclusive[i].unwrap_or(0),
                joined: joined[i],
                left: left[i],
            });
        }
    }
    let totals = totals.ok_or_else(|| ReportError::MissingTable {
        date,
        table: "audience `*` row".to_string(),
    })?;
    Ok((accounts, totals))
}

/// The rows of an `upset` frame (see [`transform::upset`]), largest first.
pub fn intersections(upset: &DataFrame) -> PolarsResult<Vec<Intersection>> {
    let accounts = strings(upset, "accounts")?;
    let people = ints(upset, "people")?;
    let mut out: Vec<Intersection> = accounts
        .into_iter()
        .zip(people)
        .map(|(accounts, people)| Intersection {
            accounts: accounts
                .split(transform::ACCOUNT_SEPARATOR)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            people: people.unwrap_or(0),
        })
        .collect();
    out.sort_by(|a, b| b.people.cmp(&a.people).then(a.accounts.cmp(&b.accounts)));
    Ok(out)
}

/// Reads the report of `date` (default: the latest complete snapshot).
pub async fn read_report(
    store: &Store,
    date: Option<NaiveDate>,
) -> Result<ReportData, ReportError> {
    let snapshot = read_snapshot(store, date).await?;
    let date = snapshot.manifest.snapshot_date;
    let (accounts, totals) = audience_rows(date, &snapshot.audience)?;

    let mut trend = Vec::new();
    for earlier in load::complete_dates(store).await? {
        if earlier >= date {
            continue;
        }
        // A date can lose its manifest while a re-run of it starts: skip it.
        let Some(manifest) = load::read_manifest(store, earlier).await? else {
            continue;
        };
        let audience =
            load::read_file(store, load::table_file(&manifest, layout::AUDIENCE)?).await?;
        trend.push(audience_rows(earlier, &audience)?.1);
    }
    trend.push(totals);

    let people_path = load::table_file(&snapshot.manifest, layout::PEOPLE)?;
    let (people, _) = load::read_columns(store, people_path, &["accounts", "n_accounts"]).await?;
    let upset = transform::upset(people.lazy()).collect()?;

    let o = &snapshot.overlap;
    let (a, b, shared) = (
        strings(o, "account_a")?,
        strings(o, "account_b")?,
        ints(o, "shared_people")?,
    );
    let overlap = (0..o.height())
        .map(|i| (a[i].clone(), b[i].clone(), shared[i].unwrap_or(0)))
        .collect();
    let groups = group_figures(store, &snapshot.manifest).await?;
    Ok(ReportData {
        accounts,
        totals,
        overlap,
        trend,
        intersections: intersections(&upset)?,
        groups,
        snapshot,
    })
}

/// The group figures of every corp whose `group_members` the marker names.
async fn group_figures(
    store: &Store,
    manifest: &load::Manifest,
) -> Result<Vec<GroupFigures>, ReportError> {
    let mut out = Vec::new();
    for account in &manifest.accounts {
        let id = &account.account_id;
        let Some(file) = load::account_file(manifest, layout::GROUP_MEMBERS, id) else {
            continue;
        };
        let (members, _) = load::read_columns(
            store,
            &file.path,
            &["chat_id", "chat_status", "external_userid"],
        )
        .await?;
        let contacts = match load::account_file(manifest, layout::CONTACTS, id) {
            Some(file) => {
                load::read_columns(store, &file.path, &["external_userid"])
                    .await?
                    .0
            }
            None => DataFrame::empty(),
        };
        out.push(groups_of(id, members, contacts)?);
    }
    out.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    Ok(out)
}

/// One corp's [`GroupFigures`] from its `group_members` and `contacts`.
pub fn groups_of(
    account_id: &str,
    members: DataFrame,
    contacts: DataFrame,
) -> PolarsResult<GroupFigures> {
    let count = |frame: LazyFrame| -> PolarsResult<i64> { Ok(frame.collect()?.height() as i64) };
    let members = members.lazy();
    let chats = members
        .clone()
        .select([col("chat_id"), col("chat_status")])
        .unique(None, UniqueKeepStrategy::Any);
    let external = members
        .select([col("external_userid")])
        .unique(None, UniqueKeepStrategy::Any);
    let in_groups_only = match contacts.width() {
        0 => external.clone(),
        _ => external.clone().join(
            contacts.lazy().select([col("external_userid")]),
            [col("external_userid")],
            [col("external_userid")],
            JoinArgs::new(JoinType::Anti),
        ),
    };
    Ok(GroupFigures {
        account_id: account_id.to_string(),
        chats: count(chats.clone())?,
        chats_owner_left: count(chats.filter(col("chat_status").gt(lit(0))))?,
        members_in_groups: count(external)?,
        in_groups_only: count(in_groups_only)?,
    })
}
