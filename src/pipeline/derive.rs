//! The derived tables of a snapshot, computed a bucket group at a time from
//! identities spilled to local disk ([`load::spill`]), so memory is bounded
//! by a group however many followers there are.
//!
//! Two passes, each over groups of buckets:
//! 1. by person: today's identity rows of the group (every account) and the
//!    previous snapshot's. A person's rows all fall in one group, so the
//!    group's `people` rows are final, and the group's `audience`,
//!    `overlap` and people joined/left are exact parts of the totals, which
//!    are sums over the groups ([`transform::sum_audience`] …).
//! 2. by membership (only with a previous snapshot): `changes` compares
//!    `(account_id, member_id)` on both days, so its rows are final per group.
//!
//! The transform functions are the ones [`transform::derive_since`] composes
//! in memory; a test checks both ways agree on every table.

use std::ops::Range;

use polars::prelude::*;

use crate::load::spill::{self, Spill, SpillKey};
use crate::load::LoadError;
use crate::transform::{self, AccountRef};

/// Rows (today's and the previous snapshot's) per bucket group:
/// `UNIONSNAP_GROUP_ROWS` or [`crate::job::DEFAULT_GROUP_ROWS`] (groups
/// smaller than a bucket are not possible: a bucket is 1/64 of the rows).
pub fn group_rows() -> u64 {
    crate::job::EnvSettings::current().group_rows
}

/// Identity rows the process keeps in memory instead of spilling them:
/// two groups' worth ([`group_rows`]). A snapshot this small is derived
/// without touching the disk; a larger one keeps its first accounts' rows.
pub fn kept_rows() -> u64 {
    group_rows().saturating_mul(2)
}

/// Identity rows spilled by person and, when `changes` will be computed, by
/// membership: one account's as it lands, or a previous snapshot's. Rows
/// still buffered at the end stay in memory while the process keeps fewer
/// than [`kept_rows`]; both spills then hold the same rows (one copy).
#[derive(Debug)]
pub struct SpilledIdentities {
    by_person: Spill,
    by_member: Option<Spill>,
    may_keep: bool,
    kept: Vec<spill::Reservation>,
    /// Their `people`, when kept ([`Self::keep_people`]).
    people: Option<DataFrame>,
}

impl SpilledIdentities {
    /// `with_changes`: also spill by membership (a previous snapshot exists).
    pub fn new(with_changes: bool) -> Result<Self, LoadError> {
        Ok(SpilledIdentities {
            by_person: Spill::new(SpillKey::Person)?,
            by_member: with_changes
                .then(|| Spill::new(SpillKey::Member))
                .transpose()?,
            may_keep: true,
            kept: Vec::new(),
            people: None,
        })
    }

    /// Never keeps rows in memory (tests of the groups on disk).
    #[cfg(test)]
    fn on_disk(mut self) -> Self {
        self.may_keep = false;
        self
    }

    /// Adds rows of the `identities` shape.
    pub fn push(&mut self, rows: DataFrame) -> Result<(), LoadError> {
        if let Some(by_member) = &mut self.by_member {
            by_member.push(rows.clone())?;
        }
        self.by_person.push(rows)
    }

    /// Keeps or writes what is buffered; no more rows come.
    pub fn flush(&mut self) -> Result<(), LoadError> {
        let buffered = self.by_person.pending_rows() as u64;
        let room = (self.may_keep && buffered > 0)
            .then(|| spill::reserve(buffered, kept_rows()))
            .flatten();
        match room {
            Some(reservation) => {
                self.kept.push(reservation);
                if let Some(by_member) = &mut self.by_member {
                    by_member.keep()?;
                }
                self.by_person.keep()
            }
            None => {
                if let Some(by_member) = &mut self.by_member {
                    by_member.flush()?;
                }
                self.by_person.flush()
            }
        }
    }

    pub fn rows(&self) -> u64 {
        self.by_person.rows()
    }

    /// Takes the `people` of these identities when every row is kept in
    /// memory (a previous snapshot small enough: the next derivation may
    /// then carry them forward, see [`PartitionedDerive::person_group`]):
    /// `stored`, the snapshot's own `people` as read back, when sorted by
    /// person as [`transform::people`] gives them; else derived here.
    pub fn keep_people(&mut self, stored: Option<DataFrame>) -> Result<(), DeriveError> {
        if self.by_person.on_disk() {
            return Ok(());
        }
        let people = match stored.filter(transform::sorted_by_person) {
            Some(people) => people,
            None => {
                let rows =
                    spill::read(&[&self.by_person], 0..spill::BUCKETS, &empty_identities()?)?;
                transform::people(rows.lazy()).collect()?
            }
        };
        self.people = Some(people);
        Ok(())
    }
}

/// The identities schema, for groups with no rows.
pub fn empty_identities() -> PolarsResult<DataFrame> {
    transform::identities(Vec::new())?.collect()
}

/// The `people` schema, for tables with no rows.
pub fn empty_people() -> PolarsResult<DataFrame> {
    transform::people(transform::identities(Vec::new())?).collect()
}

/// The derivation of one snapshot over spilled identities: call
/// [`Self::group_identities`], then [`Self::person_group`] over them, for
/// every range of [`Self::person_groups`], then
/// [`Self::changes_group`] for every range of [`Self::changes_groups`], then
/// [`Self::finish`].
pub struct PartitionedDerive<'a> {
    accounts: &'a [AccountRef],
    current: Vec<&'a SpilledIdentities>,
    previous: Option<&'a SpilledIdentities>,
    max_rows: u64,
    empty: DataFrame,
    audience: Vec<DataFrame>,
    overlap: Vec<DataFrame>,
    change_counts: Vec<LazyFrame>,
    people_changes: (i64, i64),
    /// Per account (as `current`): its `changes` rows as its crawl found
    /// them; the others are compared row by row with the previous snapshot.
    crawled: Vec<Option<&'a DataFrame>>,
    /// The previous snapshot's accounts (None: not known, compare all).
    previous_accounts: Option<Vec<String>>,
}

impl<'a> PartitionedDerive<'a> {
    /// `current`: today's identities, one spill per account in job order;
    /// `previous`: the previous complete snapshot's, spilled with changes.
    pub fn new(
        accounts: &'a [AccountRef],
        current: Vec<&'a SpilledIdentities>,
        previous: Option<&'a SpilledIdentities>,
        max_rows: u64,
    ) -> PolarsResult<Self> {
        Ok(PartitionedDerive {
            accounts,
            current,
            previous,
            max_rows,
            empty: empty_identities()?,
            audience: Vec::new(),
            overlap: Vec::new(),
            change_counts: Vec::new(),
            people_changes: (0, 0),
            crawled: Vec::new(),
            previous_accounts: None,
        })
    }

    /// Takes the `changes` rows the accounts' crawls found (`crawled`, as
    /// `current`) instead of comparing those accounts' rows with the
    /// previous snapshot's, whose accounts are `previous_accounts`.
    pub fn with_crawled_changes(
        mut self,
        crawled: Vec<Option<&'a DataFrame>>,
        previous_accounts: Vec<String>,
    ) -> Self {
        self.crawled = crawled;
        self.previous_accounts = Some(previous_accounts);
        self
    }

    /// Whether account `index` (of `current`) is compared row by row.
    fn compared(&self, index: usize) -> bool {
        self.crawled.get(index).is_none_or(|c| c.is_none())
    }

    /// The accounts whose crawls found their changes.
    fn crawled_ids(&self) -> Vec<&str> {
        (self.accounts.iter().enumerate())
            .filter(|(index, _)| !self.compared(*index))
            .map(|(_, account)| account.account_id.as_str())
            .collect()
    }

    /// Whether any account needs comparing: one of today's whose crawl did
    /// not find its changes, or one of the previous snapshot's not here.
    fn compares_any(&self) -> bool {
        let crawled = self.crawled_ids();
        (0..self.current.len()).any(|index| self.compared(index))
            || self
                .previous_accounts
                .as_ref()
                .is_none_or(|previous| previous.iter().any(|id| !crawled.contains(&id.as_str())))
    }

    /// The spills of one key: by person every account's, by membership
    /// those of the accounts compared row by row.
    fn spills(&self, key: SpillKey) -> (Vec<&'a Spill>, Option<&'a Spill>) {
        let of = |s: &'a SpilledIdentities| match key {
            SpillKey::Person => Some(&s.by_person),
            SpillKey::Member => s.by_member.as_ref(),
        };
        let current = (self.current.iter().enumerate())
            .filter(|(index, _)| key == SpillKey::Person || self.compared(*index))
            .filter_map(|(_, s)| of(s))
            .collect();
        (current, self.previous.and_then(of))
    }

    fn groups(&self, key: SpillKey) -> Vec<Range<usize>> {
        let (mut all, previous) = self.spills(key);
        all.extend(previous);
        spill::groups(&all, self.max_rows)
    }

    /// Today's rows of `buckets`, every account's spilled by `key`.
    fn read_current(&self, key: SpillKey, buckets: Range<usize>) -> Result<DataFrame, LoadError> {
        let (current, _) = self.spills(key);
        spill::read(&current, buckets, &self.empty)
    }

    /// The previous snapshot's rows of `buckets` (None on a first snapshot).
    fn read_previous(
        &self,
        key: SpillKey,
        buckets: Range<usize>,
    ) -> Result<Option<DataFrame>, LoadError> {
        let (_, previous) = self.spills(key);
        previous
            .map(|p| spill::read(&[p], buckets, &self.empty))
            .transpose()
    }

    /// The previous snapshot's `people`, when today's can be carried
    /// forward from them over `buckets`: the group is the whole snapshot,
    /// those `people` were kept (a previous snapshot kept in memory),
    /// and every account's `changes` came from its crawl, so that today's
    /// identities are the previous ones without the rows that left and with
    /// those that joined.
    fn carried_from(&self, buckets: &Range<usize>) -> Option<&'a DataFrame> {
        let whole = *buckets == (0..spill::BUCKETS);
        let crawled = !self.crawled.is_empty() && !self.compares_any();
        (whole && crawled)
            .then(|| self.previous.and_then(|p| p.people.as_ref()))
            .flatten()
    }

    /// Whether the person pass over `groups` carries `people` forward
    /// ([`Self::carried_from`]) instead of deriving them again.
    pub fn carries_people(&self, groups: &[Range<usize>]) -> bool {
        matches!(groups, [whole] if self.carried_from(whole).is_some())
    }

    /// Every `changes` row the crawls found (None when no crawl found any).
    fn all_crawled_changes(&self) -> PolarsResult<Option<LazyFrame>> {
        let crawled: Vec<LazyFrame> = (self.crawled.iter().flatten())
            .map(|c| (*c).clone().lazy())
            .collect();
        match crawled.is_empty() {
            true => Ok(None),
            false => concat(crawled, UnionArgs::default()).map(Some),
        }
    }

    /// The bucket ranges of the person pass.
    pub fn person_groups(&self) -> Vec<Range<usize>> {
        self.groups(SpillKey::Person)
    }

    /// The rows of `identities` of one group (of the person pass): every
    /// account's.
    pub fn group_identities(&self, buckets: Range<usize>) -> Result<DataFrame, DeriveError> {
        Ok(self.read_current(SpillKey::Person, buckets)?)
    }

    /// The rows of `people` of one group, from its `identities`
    /// ([`Self::group_identities`]); its parts of `audience`, `overlap` and
    /// the people joined/left are kept for [`Self::finish`].
    pub fn person_group(
        &mut self,
        buckets: Range<usize>,
        identities: &DataFrame,
    ) -> Result<DataFrame, DeriveError> {
        if let Some(previous_people) = self.carried_from(&buckets) {
            let changes: Vec<&DataFrame> = self.crawled.iter().flatten().copied().collect();
            let (people, (joined, left)) =
                transform::carried_people(previous_people, identities, &changes)?;
            self.people_changes.0 += joined;
            self.people_changes.1 += left;
            return self.person_tables(identities, people);
        }
        let previous = self.read_previous(SpillKey::Person, buckets)?;
        let people = transform::people(identities.clone().lazy()).collect()?;
        if let Some(previous) = previous {
            let (joined, left) = transform::people_changes(previous.lazy(), people.clone().lazy())?;
            self.people_changes.0 += joined;
            self.people_changes.1 += left;
        }
        self.person_tables(identities, people)
    }

    /// Keeps the group's parts of `audience` and `overlap`.
    fn person_tables(
        &mut self,
        identities: &DataFrame,
        people: DataFrame,
    ) -> Result<DataFrame, DeriveError> {
        self.audience
            .push(transform::audience(self.accounts, identities, &people)?);
        self.overlap
            .push(transform::overlap(self.accounts, &people)?);
        Ok(people)
    }

    /// The bucket ranges of the changes pass: none on a first snapshot, nor
    /// when the crawls found every account's changes.
    pub fn changes_groups(&self) -> Vec<Range<usize>> {
        match self.previous {
            Some(_) if self.compares_any() => self.groups(SpillKey::Member),
            _ => Vec::new(),
        }
    }

    /// The rows of `changes` of one group, of the accounts compared row by
    /// row.
    pub fn changes_group(&mut self, buckets: Range<usize>) -> Result<DataFrame, DeriveError> {
        let current = self.read_current(SpillKey::Member, buckets.clone())?;
        let previous = self.read_previous(SpillKey::Member, buckets)?;
        let mut previous = previous.unwrap_or_else(|| self.empty.clone()).lazy();
        for id in self.crawled_ids() {
            previous = previous.filter(col("account_id").neq(lit(id)));
        }
        let changes = transform::changes(previous, current.lazy())?.collect()?;
        self.count_changes(&changes)?;
        Ok(changes)
    }

    /// The `changes` rows the crawls found, once every group is done, with
    /// the rows of the last group (`last`, already counted) sorted in among
    /// them: a snapshot of one group keeps one sorted table.
    pub fn crawled_changes(
        &mut self,
        last: Option<DataFrame>,
    ) -> Result<Option<DataFrame>, DeriveError> {
        let Some(found) = self.all_crawled_changes()? else {
            return Ok(last);
        };
        let found = found.collect()?;
        self.count_changes(&found)?;
        let parts: Vec<LazyFrame> = last
            .into_iter()
            .chain([found])
            .map(DataFrame::lazy)
            .collect();
        let changes = concat(parts, UnionArgs::default())?
            .sort(
                ["account_id", "member_id", "change"],
                SortMultipleOptions::default(),
            )
            .collect()?;
        Ok(Some(changes))
    }

    fn count_changes(&mut self, changes: &DataFrame) -> Result<(), DeriveError> {
        self.change_counts.push(
            transform::change_counts(changes.clone().lazy())
                .collect()?
                .lazy(),
        );
        Ok(())
    }

    /// `audience` and `overlap`, summed over the groups.
    pub fn finish(self) -> Result<(DataFrame, DataFrame), DeriveError> {
        let audience = transform::sum_audience(self.audience)?;
        let overlap = transform::sum_overlap(self.overlap)?;
        let audience = match self.previous {
            Some(_) => {
                let counts = match self.change_counts.is_empty() {
                    true => transform::change_counts(transform::no_changes().lazy()),
                    false => concat(self.change_counts, UnionArgs::default())?,
                };
                transform::fill_changes(audience, counts, self.people_changes)?
            }
            None => audience,
        };
        Ok((audience, overlap))
    }
}

/// A failure of the partitioned derivation: reading a spill back, or polars.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::derive_since;

    fn accounts() -> Vec<AccountRef> {
        ["a", "b", "c", "d"]
            .iter()
            .map(|id| AccountRef {
                account_id: id.to_string(),
                account_kind: "official_account".to_string(),
            })
            .collect()
    }

    /// Identities of a pseudo-random population: people in several accounts,
    /// unresolved members, an empty account (`d`); `day` shifts who is in.
    fn identities(day: u64) -> DataFrame {
        let (mut account, mut member, mut unionid, mut joined) = (vec![], vec![], vec![], vec![]);
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ day;
        for person in 0..3_000u64 {
            for (i, acct) in ["a", "b", "c"].iter().enumerate() {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                if (state >> 33) % 3 == 0 {
                    continue;
                }
                account.push(acct.to_string());
                member.push(format!("{acct}-{person}"));
                // Account c is unbound on even days: nobody there resolves.
                let bound = !(i == 2 && day % 2 == 0) && person % 11 != 0;
                unionid.push(bound.then(|| format!("u{person}")));
                joined.push(Some(1_700_000_000_000_000i64 + (person * 7 + day) as i64));
            }
        }
        let n = account.len();
        let frame = df!(
            "account_id" => account,
            "account_kind" => vec!["official_account"; n],
            "member_id" => member,
            "unionid" => unionid,
            "joined_at" => joined,
        )
        .unwrap();
        frame
            .lazy()
            .with_column(col("joined_at").cast(transform::timestamp_type()))
            .collect()
            .unwrap()
    }

    /// Identities of `frame` for one SpilledIdentities per account; the
    /// accounts in `kept` may keep their rows in memory.
    fn spilled(frame: &DataFrame, with_changes: bool, kept: &[&str]) -> Vec<SpilledIdentities> {
        ["a", "b", "c", "d"]
            .iter()
            .map(|id| {
                let mut s = SpilledIdentities::new(with_changes).unwrap();
                if !kept.contains(id) {
                    s = s.on_disk();
                }
                let rows = frame
                    .clone()
                    .lazy()
                    .filter(col("account_id").eq(lit(*id)))
                    .collect()
                    .unwrap();
                // Several pushes, as a crawl lands its rows.
                let half = rows.height() / 2;
                s.push(rows.slice(0, half)).unwrap();
                s.push(rows.slice(half as i64, rows.height())).unwrap();
                s.flush().unwrap();
                s
            })
            .collect()
    }

    fn sorted(frame: DataFrame, by: &[&str]) -> DataFrame {
        frame
            .lazy()
            .sort(by.to_vec(), SortMultipleOptions::default())
            .collect()
            .unwrap()
    }

    fn run(
        current: &[SpilledIdentities],
        previous: Option<&SpilledIdentities>,
        max_rows: u64,
    ) -> (DataFrame, DataFrame, DataFrame, DataFrame, DataFrame, usize) {
        run_crawled(current, previous, max_rows, None)
    }

    type Derived = (DataFrame, DataFrame, DataFrame, DataFrame, DataFrame, usize);

    /// [`run`], with the changes of some accounts as their crawls found them
    /// and the previous snapshot's accounts.
    fn run_crawled(
        current: &[SpilledIdentities],
        previous: Option<&SpilledIdentities>,
        max_rows: u64,
        crawled: Option<(Vec<Option<&DataFrame>>, Vec<String>)>,
    ) -> Derived {
        let accounts = accounts();
        let mut derive =
            PartitionedDerive::new(&accounts, current.iter().collect(), previous, max_rows)
                .unwrap();
        if let Some((crawled, previous_accounts)) = crawled {
            derive = derive.with_crawled_changes(crawled, previous_accounts);
        }
        let (mut identities, mut people, mut changes) = (vec![], vec![], vec![]);
        let groups = derive.person_groups();
        for range in groups.clone() {
            let rows = derive.group_identities(range.clone()).unwrap();
            people.push(derive.person_group(range, &rows).unwrap().lazy());
            identities.push(rows.lazy());
        }
        for range in derive.changes_groups() {
            changes.push(derive.changes_group(range).unwrap().lazy());
        }
        changes.extend(derive.crawled_changes(None).unwrap().map(DataFrame::lazy));
        changes.push(transform::no_changes().lazy());
        let (audience, overlap) = derive.finish().unwrap();
        let all = |parts: Vec<LazyFrame>| {
            concat(parts, UnionArgs::default())
                .unwrap()
                .collect()
                .unwrap()
        };
        (
            sorted(all(identities), &["account_id", "member_id"]),
            sorted(all(people), &["person_id"]),
            audience,
            overlap,
            sorted(all(changes), &["account_id", "member_id", "change"]),
            groups.len(),
        )
    }

    #[test]
    fn a_partitioned_derivation_equals_the_one_in_memory() {
        let (day0, day1) = (identities(0), identities(1));
        let previous = spilled(&day0, true, &[]);
        let mut previous_all = SpilledIdentities::new(true).unwrap().on_disk();
        previous_all.push(day0.clone()).unwrap();
        previous_all.flush().unwrap();
        let current = spilled(&day1, true, &[]);
        let expected = derive_since(&accounts(), day1.clone(), Some(day0.clone())).unwrap();
        assert!(expected.changes.height() > 100, "the days differ");
        // Accounts a and c kept in memory, b and d on disk; then all kept.
        let mixed = spilled(&day1, true, &["a", "c"]);
        let all_kept = spilled(&day1, true, &["a", "b", "c", "d"]);
        let mut previous_kept = SpilledIdentities::new(true).unwrap();
        previous_kept.push(day0.clone()).unwrap();
        previous_kept.flush().unwrap();
        for (current, previous, groups_at_500) in [
            (&mixed, &previous_all, 10..40),
            (&all_kept, &previous_kept, 1..2),
        ] {
            let (identities, people, audience, overlap, changes, groups) =
                run(current, Some(previous), 500);
            assert!(groups_at_500.contains(&groups), "{groups} groups");
            assert_eq!(
                identities,
                sorted(day1.clone(), &["account_id", "member_id"])
            );
            assert_eq!(people, expected.people);
            assert_eq!(audience, expected.audience);
            assert_eq!(overlap, expected.overlap);
            assert_eq!(changes, expected.changes);
        }
        for max_rows in [500, 4_000, u64::MAX] {
            let (identities, people, audience, overlap, changes, groups) =
                run(&current, Some(&previous_all), max_rows);
            if max_rows == 500 {
                assert!(groups > 10, "{groups} groups");
            }
            assert_eq!(
                identities,
                sorted(day1.clone(), &["account_id", "member_id"])
            );
            assert_eq!(people, expected.people, "max_rows {max_rows}");
            assert_eq!(audience, expected.audience, "max_rows {max_rows}");
            assert_eq!(overlap, expected.overlap, "max_rows {max_rows}");
            assert_eq!(changes, expected.changes, "max_rows {max_rows}");
        }
        // A first snapshot: no changes pass, null joined/left.
        let first = derive_since(&accounts(), day0.clone(), None).unwrap();
        let (_, people, audience, overlap, changes, _) = run(&previous, None, 700);
        let kept = spilled(&day0, false, &["a", "b", "c", "d"]);
        let (_, kept_people, kept_audience, ..) = run(&kept, None, 700);
        assert_eq!((&kept_people, &kept_audience), (&people, &audience));
        assert_eq!(people, first.people);
        assert_eq!(audience, first.audience);
        assert_eq!(overlap, first.overlap);
        assert_eq!(changes.height(), 0);
    }

    /// The changes of an account as its crawl found them: who joined and who
    /// left, in the identities shape.
    fn crawled_changes(day0: &DataFrame, day1: &DataFrame, account: &str) -> DataFrame {
        let of = |frame: &DataFrame| {
            frame
                .clone()
                .lazy()
                .filter(col("account_id").eq(lit(account)))
        };
        let key = [col("account_id"), col("member_id")];
        let anti = |a: LazyFrame, b: LazyFrame| {
            a.join(b, key.clone(), key.clone(), JoinArgs::new(JoinType::Anti))
        };
        let joined = anti(of(day1), of(day0));
        let left = anti(of(day0), of(day1));
        transform::changes_of(joined, left)
            .unwrap()
            .collect()
            .unwrap()
    }

    /// Day 1 as crawls that carry their followers over give it: a member
    /// present on both days keeps the row of day 0 (its UnionID with it).
    fn carried_over(day0: &DataFrame, day1: &DataFrame) -> DataFrame {
        let key = || [col("account_id"), col("member_id")];
        let join = |l: &DataFrame, r: &DataFrame, how| {
            l.clone()
                .lazy()
                .join(r.clone().lazy(), key(), key(), JoinArgs::new(how))
        };
        let stayed = join(day0, day1, JoinType::Semi);
        let joined = join(day1, day0, JoinType::Anti);
        concat([stayed, joined], UnionArgs::default())
            .unwrap()
            .collect()
            .unwrap()
    }

    #[test]
    fn people_carried_forward_equal_the_people_derived_again() {
        let day0 = identities(0);
        let day1 = carried_over(&day0, &identities(1));
        let expected = derive_since(&accounts(), day1.clone(), Some(day0.clone())).unwrap();
        let found: Vec<DataFrame> = ["a", "b", "c", "d"]
            .iter()
            .map(|a| crawled_changes(&day0, &day1, a))
            .collect();
        let all = ["a", "b", "c", "d"];
        let ids = all.map(str::to_string).to_vec();
        let mut previous = SpilledIdentities::new(true).unwrap();
        previous.push(day0.clone()).unwrap();
        previous.flush().unwrap();
        // Stored people out of order are derived again.
        let derived = transform::people(day0.clone().lazy()).collect().unwrap();
        previous.keep_people(Some(derived.reverse())).unwrap();
        assert_eq!(previous.people.as_ref(), Some(&derived));
        // Carried forward when every account's changes were found and the
        // snapshot is one group; derived again otherwise (b compared).
        let b_compared = vec![Some(&found[0]), None, Some(&found[2]), Some(&found[3])];
        for (crawled, kept, carried) in [
            (found.iter().map(Some).collect::<Vec<_>>(), &all[..], true),
            (b_compared, &all[..], false),
            (found.iter().map(Some).collect(), &["a"][..], false),
        ] {
            let current = spilled(&day1, true, kept);
            let accounts = accounts();
            let derive =
                PartitionedDerive::new(&accounts, current.iter().collect(), Some(&previous), 500)
                    .unwrap()
                    .with_crawled_changes(crawled.clone(), ids.clone());
            let groups = derive.person_groups();
            let whole = derive.carried_from(&(0..spill::BUCKETS)).is_some();
            assert_eq!(whole && groups.len() == 1, carried, "{kept:?}");
            let (_, people, audience, overlap, changes, _) =
                run_crawled(&current, Some(&previous), 500, Some((crawled, ids.clone())));
            assert_eq!(changes, expected.changes, "{kept:?}");
            assert_eq!(audience, expected.audience, "{kept:?}");
            assert_eq!(
                (people, overlap),
                (expected.people.clone(), expected.overlap.clone())
            );
        }
    }

    #[test]
    fn changes_found_by_crawls_stand_for_the_comparison_of_their_accounts() {
        let (day0, day1) = (identities(0), identities(1));
        let mut previous = SpilledIdentities::new(true).unwrap().on_disk();
        previous.push(day0.clone()).unwrap();
        previous.flush().unwrap();
        let current = spilled(&day1, true, &["a"]);
        let expected = derive_since(&accounts(), day1.clone(), Some(day0.clone())).unwrap();
        let found: Vec<DataFrame> = ["a", "b", "c", "d"]
            .iter()
            .map(|a| crawled_changes(&day0, &day1, a))
            .collect();
        let ids = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>();
        type Case<'a> = (Vec<Option<&'a DataFrame>>, Vec<String>, bool);
        let cases: [Case; 4] = [
            // a and c found by their crawls, b and d compared.
            (
                vec![Some(&found[0]), None, Some(&found[2]), None],
                ids(&["a", "b", "c", "d"]),
                true,
            ),
            // Every account found: no comparison at all.
            (
                found.iter().map(Some).collect(),
                ids(&["a", "b", "c", "d"]),
                false,
            ),
            // Every account found, but the previous snapshot had another
            // account (its members all left): compared, and it has no rows.
            (
                found.iter().map(Some).collect(),
                ids(&["a", "b", "c", "d", "gone"]),
                true,
            ),
            // None found.
            (vec![None; 4], ids(&["a", "b", "c", "d"]), true),
        ];
        for (crawled, previous_accounts, compares) in cases {
            let label = format!(
                "{:?} {previous_accounts:?}",
                crawled.iter().map(Option::is_some).collect::<Vec<_>>()
            );
            let accounts = accounts();
            let derive =
                PartitionedDerive::new(&accounts, current.iter().collect(), Some(&previous), 500)
                    .unwrap()
                    .with_crawled_changes(crawled.clone(), previous_accounts.clone());
            assert_eq!(!derive.changes_groups().is_empty(), compares, "{label}");
            let (_, people, audience, overlap, changes, _) = run_crawled(
                &current,
                Some(&previous),
                500,
                Some((crawled, previous_accounts)),
            );
            assert_eq!(changes, expected.changes, "{label}");
            assert_eq!(audience, expected.audience, "{label}");
            assert_eq!(
                (people, overlap),
                (expected.people.clone(), expected.overlap.clone()),
                "{label}"
            );
        }
    }
}
