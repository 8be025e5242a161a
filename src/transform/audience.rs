//! `audience` and `overlap`: the numbers of SPEC §5.
//!
//! Both are computed from `people` (the dedupe, done once) and per-account
//! counts of `identities`, never by joining the two: over 10M memberships a
//! join on person_id costs more memory than the dedupe itself. Overlap pairs
//! come from the exclusive intersections of accounts (the UpSet sets, at
//! most 2^accounts of them), so only people in two or more accounts are
//! touched and the pair counts are summed over a tiny table.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::AccountRef;

/// The name of the `audience` row that counts people across all accounts.
pub const ALL_ACCOUNTS: &str = "*";

/// Joins account ids of one intersection (ids are `[a-z0-9_-]+`).
const SEPARATOR: &str = ",";

fn accounts_frame(accounts: &[AccountRef]) -> PolarsResult<DataFrame> {
    let ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    let kinds: Vec<&str> = accounts.iter().map(|a| a.account_kind.as_str()).collect();
    df!("account_id" => ids, "account_kind" => kinds)
}

/// `audience`: one row per account (also accounts with no members), and the
/// `*` row with the deduplicated totals. `joined`/`left` are left null here:
/// they need the previous snapshot.
///
/// `identities` holds each (account, member) once (see
/// [`super::identities`]), so members are counted as rows.
pub fn audience(
    accounts: &[AccountRef],
    identities: LazyFrame,
    people: LazyFrame,
) -> PolarsResult<DataFrame> {
    let memberships = identities.group_by([col("account_id")]).agg([
        len().cast(DataType::Int64).alias("members"),
        col("unionid")
            .count()
            .cast(DataType::Int64)
            .alias("resolved"),
    ]);
    // People of exactly one account are that account's exclusive people;
    // unresolved members are always among them (a person of their own).
    let exclusive = people
        .clone()
        .filter(col("n_accounts").eq(lit(1i64)))
        .select([col("accounts")])
        .explode(
            cols(["accounts"]),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .group_by([col("accounts").alias("account_id")])
        .agg([len().cast(DataType::Int64).alias("exclusive_people")]);
    let per_account = accounts_frame(accounts)?
        .lazy()
        .left_join(memberships, col("account_id"), col("account_id"))
        .left_join(exclusive, col("account_id"), col("account_id"))
        .select([
            col("account_id"),
            col("account_kind"),
            col("members").fill_null(lit(0i64)),
            col("resolved").fill_null(lit(0i64)),
            (col("members") - col("resolved"))
                .fill_null(lit(0i64))
                .alias("unresolved"),
            col("exclusive_people").fill_null(lit(0i64)),
            lit(NULL).cast(DataType::Int64).alias("resolved_people"),
            lit(NULL).cast(DataType::Int64).alias("unique_people"),
            lit(NULL)
                .cast(DataType::Int64)
                .alias("duplicate_memberships"),
            lit(NULL).cast(DataType::Int64).alias("joined"),
            lit(NULL).cast(DataType::Int64).alias("left"),
        ])
        .collect()?;

    let counts = people
        .select([
            len().cast(DataType::Int64).alias("unique_people"),
            col("resolved")
                .sum()
                .cast(DataType::Int64)
                .alias("resolved_people"),
        ])
        .collect()?;
    let first =
        |name: &str| -> PolarsResult<i64> { Ok(counts.column(name)?.i64()?.get(0).unwrap_or(0)) };
    let (unique_people, resolved_people) = (first("unique_people")?, first("resolved_people")?);
    let total = |name: &str| -> PolarsResult<i64> {
        Ok(per_account.column(name)?.i64()?.sum().unwrap_or(0))
    };
    let (members, resolved, unresolved) =
        (total("members")?, total("resolved")?, total("unresolved")?);
    let none = None::<i64>;
    let star = df!(
        "account_id" => [ALL_ACCOUNTS],
        "account_kind" => [None::<&str>],
        "members" => [members],
        "resolved" => [resolved],
        "unresolved" => [unresolved],
        "exclusive_people" => [none],
        "resolved_people" => [Some(resolved_people)],
        // = resolved_people + unresolved members: each unresolved member is a person.
        "unique_people" => [Some(unique_people)],
        "duplicate_memberships" => [Some(members - unique_people)],
        "joined" => [none],
        "left" => [none],
    )?;
    star.vstack(&per_account)?
        .lazy()
        .sort(["account_id"], SortMultipleOptions::default())
        .collect()
}

/// `overlap`: people shared by every pair of accounts (a < b), zeros included,
/// so the table is a complete matrix.
pub fn overlap(accounts: &[AccountRef], people: LazyFrame) -> PolarsResult<DataFrame> {
    let intersections = people
        .filter(col("n_accounts").gt_eq(lit(2i64)))
        .select([col("accounts")
            .list()
            .join(lit(SEPARATOR), true)
            .alias("set")])
        .group_by([col("set")])
        .agg([len().cast(DataType::Int64).alias("people")])
        .collect()?;
    let mut shared: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            shared.insert((a.to_string(), b.to_string()), 0);
        }
    }
    let sets = intersections.column("set")?.str()?;
    let sizes = intersections.column("people")?.i64()?;
    for (set, size) in sets.iter().zip(sizes.iter()) {
        let (Some(set), Some(size)) = (set, size) else {
            continue;
        };
        // `accounts` is sorted, so each pair comes out as (a, b) with a < b.
        let members: Vec<&str> = set.split(SEPARATOR).collect();
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
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
