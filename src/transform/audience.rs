//! `audience` and `overlap`: the numbers of SPEC §5.
//!
//! Both are computed from `people` (the dedupe, done once) and per-account
//! counts of `identities`, never by joining the two: over 10M memberships a
//! join on person_id costs more memory than the dedupe itself. Overlap pairs
//! come from the exclusive intersections of accounts (the UpSet sets, at
//! most 2^accounts of them), so only people in two or more accounts are
//! touched and the pair counts are summed over a tiny table. Each is one
//! pass over the rows, read in place; `transform::tests` checks them
//! against plain maps on random populations.

use std::collections::BTreeMap;

use polars::prelude::*;
use polars_arrow::array::Array;

use super::identities::{account_lists, text};
use super::AccountRef;

/// The name of the `audience` row that counts people across all accounts.
pub const ALL_ACCOUNTS: &str = "*";

/// `audience`: one row per account (also accounts with no members), and the
/// `*` row with the deduplicated totals. `joined`/`left` are left null here:
/// they need the previous snapshot.
///
/// `identities` holds each (account, member) once (see
/// [`super::identities`]), so members are counted as rows. One pass over
/// the rows of each (a few accounts make every group-by and join of the
/// same counts mostly overhead: 12 to 21 ms over 200k memberships, beside
/// the encoders).
pub fn audience(
    accounts: &[AccountRef],
    identities: &DataFrame,
    people: &DataFrame,
) -> PolarsResult<DataFrame> {
    let index = AccountIndex::new(accounts);
    let n = accounts.len();
    let (mut members, mut resolved, mut exclusive) = (vec![0i64; n], vec![0i64; n], vec![0i64; n]);
    let (account_ids, unionids) = (
        text(identities, "account_id")?,
        text(identities, "unionid")?,
    );
    let mut last: Option<(&str, Option<usize>)> = None;
    for (account, unionid) in account_ids.iter().zip(unionids.iter()) {
        let Some(account) = account else { continue };
        // An account's rows come together: most rows are the last one's.
        let at = match last {
            Some((id, at)) if id == account => at,
            _ => index.get(account),
        };
        last = Some((account, at));
        if let Some(at) = at {
            members[at] += 1;
            resolved[at] += i64::from(unionid.is_some());
        }
    }
    // People of exactly one account are that account's exclusive people;
    // unresolved members are always among them (a person of their own).
    for_each_person(people, |person| {
        if let [only] = person {
            if let Some(at) = index.get(only) {
                exclusive[at] += 1;
            }
        }
    })?;
    let unique_people = people.height() as i64;
    let resolved_people = people.column("resolved")?.bool()?.sum().unwrap_or(0) as i64;
    let (total_members, total_resolved) =
        (members.iter().sum::<i64>(), resolved.iter().sum::<i64>());

    // The `*` row, then the accounts by id, as a sort by `account_id` gives
    // them (`*` sorts before `[a-z0-9_-]`).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| accounts[a].account_id.cmp(&accounts[b].account_id));
    let per =
        |values: &[i64]| -> Vec<Option<i64>> { order.iter().map(|&i| Some(values[i])).collect() };
    let star_then = |star: Option<i64>, values: Vec<Option<i64>>| -> Vec<Option<i64>> {
        std::iter::once(star).chain(values).collect()
    };
    let nulls = || vec![None::<i64>; n + 1];
    let unresolved: Vec<i64> = members.iter().zip(&resolved).map(|(m, r)| m - r).collect();
    df!(
        "account_id" => std::iter::once(ALL_ACCOUNTS)
            .chain(order.iter().map(|&i| accounts[i].account_id.as_str()))
            .collect::<Vec<_>>(),
        "account_kind" => std::iter::once(None)
            .chain(order.iter().map(|&i| Some(accounts[i].account_kind.as_str())))
            .collect::<Vec<_>>(),
        "members" => star_then(Some(total_members), per(&members)),
        "resolved" => star_then(Some(total_resolved), per(&resolved)),
        "unresolved" => star_then(Some(total_members - total_resolved), per(&unresolved)),
        "exclusive_people" => star_then(None, per(&exclusive)),
        "resolved_people" => star_then(Some(resolved_people), vec![None; n]),
        // = resolved_people + unresolved members: each unresolved member is a person.
        "unique_people" => star_then(Some(unique_people), vec![None; n]),
        "duplicate_memberships" => star_then(Some(total_members - unique_people), vec![None; n]),
        "joined" => nulls(),
        "left" => nulls(),
    )
}

/// `overlap`: people shared by every pair of accounts (a < b), zeros included,
/// so the table is a complete matrix.
pub fn overlap(accounts: &[AccountRef], people: &DataFrame) -> PolarsResult<DataFrame> {
    let mut shared: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            shared.insert((a.to_string(), b.to_string()), 0);
        }
    }
    // Counted per intersection first (at most 2^accounts of them), then
    // added to each pair of it.
    let mut sets: PlHashMap<Vec<&str>, i64> = PlHashMap::new();
    for_each_person(people, |person| {
        if person.len() >= 2 {
            match sets.get_mut(person) {
                Some(count) => *count += 1,
                None => {
                    sets.insert(person.to_vec(), 1);
                }
            }
        }
    })?;
    for (set, size) in sets {
        // `accounts` is sorted, so each pair comes out as (a, b) with a < b.
        for (i, a) in set.iter().enumerate() {
            for b in &set[i + 1..] {
                *shared.entry((a.to_string(), b.to_string())).or_insert(0) += size;
            }
        }
    }
    let (mut first, mut second, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for ((a, b), n) in shared {
        first.push(a);
        second.push(b);
        counts.push(n);
    }
    df!("account_a" => first, "account_b" => second, "shared_people" => counts)
}

/// The position of each account id in the job's accounts.
struct AccountIndex<'a>(PlHashMap<&'a str, usize>);

impl<'a> AccountIndex<'a> {
    fn new(accounts: &'a [AccountRef]) -> Self {
        let mut index = PlHashMap::with_capacity(accounts.len());
        for (at, account) in accounts.iter().enumerate() {
            index.entry(account.account_id.as_str()).or_insert(at);
        }
        AccountIndex(index)
    }

    fn get(&self, id: &str) -> Option<usize> {
        self.0.get(id).copied()
    }
}

/// Calls `each` with the accounts of every person of `people` (their
/// `accounts` list, sorted and distinct as [`super::people`] makes it).
fn for_each_person<'a>(
    people: &'a DataFrame,
    mut each: impl FnMut(&[&'a str]),
) -> PolarsResult<()> {
    let mut person: Vec<&str> = Vec::new();
    for (array, values) in account_lists(people.column("accounts")?.list()?)? {
        let offsets = array.offsets().as_slice();
        for (row, range) in offsets.windows(2).enumerate() {
            if !array.is_valid(row) {
                continue;
            }
            person.clear();
            person.extend((range[0] as usize..range[1] as usize).filter_map(|at| values.get(at)));
            each(&person);
        }
    }
    Ok(())
}

/// The `audience` of a snapshot from the `audience`s of disjoint parts of
/// it — parts that split people (and so memberships) between them, as the
/// buckets of a spill by person do. Every count is a sum over the parts;
/// a count that is null in every part (`exclusive_people` of `*`, the
/// people counts of accounts) stays null.
pub fn sum_audience(parts: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let Some(first) = parts.first() else {
        return Err(PolarsError::NoData("no audience to sum".into()));
    };
    let order: Vec<Expr> = first
        .get_column_names()
        .into_iter()
        .map(|name| col(name.clone()))
        .collect();
    let sums: Vec<Expr> = first
        .get_column_names()
        .into_iter()
        .filter(|name| !matches!(name.as_str(), "account_id" | "account_kind"))
        .map(|name| {
            let name = name.as_str();
            when(col(name).count().eq(lit(0u32)))
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col(name).sum())
                .cast(DataType::Int64)
                .alias(name)
        })
        .chain([col("account_kind").first()])
        .collect();
    let parts: Vec<LazyFrame> = parts.into_iter().map(DataFrame::lazy).collect();
    concat(parts, UnionArgs::default())?
        .group_by([col("account_id")])
        .agg(sums)
        .select(order)
        .sort(["account_id"], SortMultipleOptions::default())
        .collect()
}

/// The `overlap` of a snapshot from the `overlap`s of parts that split
/// people between them: the pair counts summed.
pub fn sum_overlap(parts: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    if parts.is_empty() {
        return Err(PolarsError::NoData("no overlap to sum".into()));
    }
    let parts: Vec<LazyFrame> = parts.into_iter().map(DataFrame::lazy).collect();
    concat(parts, UnionArgs::default())?
        .group_by([col("account_a"), col("account_b")])
        .agg([col("shared_people").sum().cast(DataType::Int64)])
        .sort(["account_a", "account_b"], SortMultipleOptions::default())
        .collect()
}
