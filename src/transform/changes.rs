//! `changes` and the `joined`/`left` columns of `audience`: who joined or left
//! each account since the previous complete snapshot (SPEC §4, §5).
//!
//! Both are diffs of two `identities` tables — today's and the one of the
//! latest earlier date that has a manifest. The caller (the pipeline) finds
//! and reads that table; here it is just a second `LazyFrame`, or `None` on
//! the first snapshot, when every `joined`/`left` is null and `changes` is
//! empty. Members are compared by `(account_id, member_id)`; the `*` row of
//! `audience` compares people by `person_id`, so a person who moves from one
//! account to another has joined and left those accounts but is neither a
//! joiner nor a leaver of the audience as a whole.

use polars::prelude::*;

use super::{identities::person_id, ALL_ACCOUNTS};

/// `changes.change` of a member present now and absent before.
pub const JOINED: &str = "joined";
/// `changes.change` of a member present before and absent now.
pub const LEFT: &str = "left";

/// The columns of `changes`, typed alike on both sides (an identities table
/// read back from Parquet and one built in this run can differ: a column of
/// nulls only).
fn members(identities: LazyFrame) -> LazyFrame {
    identities.select([
        col("account_id").cast(DataType::String),
        col("member_id").cast(DataType::String),
        col("unionid").cast(DataType::String),
    ])
}

/// Rows of `from` whose `(account_id, member_id)` is not in `absent_from`.
fn missing_from(from: LazyFrame, absent_from: LazyFrame) -> LazyFrame {
    let key = [col("account_id"), col("member_id")];
    members(from).join(
        members(absent_from),
        key.clone(),
        key,
        JoinArgs::new(JoinType::Anti),
    )
}

/// `changes`: one row per member who joined an account (present in
/// `current`, absent from `previous`) or left it (the reverse), sorted by
/// account, member and change. A leaver's `unionid` is the one of `previous`.
pub fn changes(previous: LazyFrame, current: LazyFrame) -> PolarsResult<LazyFrame> {
    let joined = missing_from(current.clone(), previous.clone());
    let left = missing_from(previous, current);
    changes_of(joined, left)
}

/// The `changes` rows of members already known to have joined (`joined`:
/// today's identity rows absent from the previous snapshot) and left
/// (`left`: the previous snapshot's rows absent today), as [`changes`]
/// gives them: an Official Account's crawl knows both without comparing
/// the days.
pub fn changes_of(joined: LazyFrame, left: LazyFrame) -> PolarsResult<LazyFrame> {
    let marked =
        |rows: LazyFrame, change: &str| members(rows).with_column(lit(change).alias("change"));
    Ok(concat(
        [marked(joined, JOINED), marked(left, LEFT)],
        UnionArgs::default(),
    )?
    .select([
        col("account_id"),
        col("member_id"),
        col("unionid"),
        col("change").cast(DataType::String),
    ])
    .sort(
        ["account_id", "member_id", "change"],
        SortMultipleOptions::default(),
    ))
}

/// The `changes` table of a first snapshot: no rows, the table's schema.
pub fn no_changes() -> DataFrame {
    DataFrame::new(
        0,
        ["account_id", "member_id", "unionid", "change"]
            .into_iter()
            .map(|name| Column::new_empty(name.into(), &DataType::String))
            .collect(),
    )
    .expect("static schema")
}

/// The rows of `frame`.
fn rows(frame: LazyFrame) -> PolarsResult<i64> {
    let counted = frame
        .select([len().cast(DataType::Int64).alias("rows")])
        .collect()?;
    Ok(counted.column("rows")?.i64()?.get(0).unwrap_or(0))
}

/// People who joined the audience as a whole (in `people`, today's
/// [`super::people`], and in no account of the `previous` identities) and
/// who left it: the `*` row's `joined` and `left`. Sums over parts that
/// split people between them (buckets of a spill by person).
///
/// Both come from the people who stayed: one semi join, and the day
/// before's people counted, not found (half the time of two anti joins
/// over the day before's people made unique).
pub fn people_changes(previous: LazyFrame, people: LazyFrame) -> PolarsResult<(i64, i64)> {
    let before = previous.select([person_id()]).collect()?;
    let people_before = before.column("person_id")?.n_unique()? as i64;
    // Today's people are distinct already.
    let now = people.select([col("person_id")]);
    let stayed = now.clone().join(
        before.lazy(),
        [col("person_id")],
        [col("person_id")],
        JoinArgs::new(JoinType::Semi),
    );
    let stayed = rows(stayed)?;
    Ok((rows(now)? - stayed, people_before - stayed))
}

/// `joined` and `left` per account: the `changes` rows of each account.
/// Sums over parts of `changes`.
pub fn change_counts(changes: LazyFrame) -> LazyFrame {
    let counted = |change: &str| {
        col("change")
            .eq(lit(change))
            .sum()
            .cast(DataType::Int64)
            .alias(change)
    };
    changes
        .group_by([col("account_id")])
        .agg([counted(JOINED), counted(LEFT)])
}

/// Fills `joined`/`left` of `audience`: per account from `per_account`
/// ([`change_counts`], summed over parts; 0 when an account has no row),
/// on the `*` row the people counts of [`people_changes`].
pub fn fill_changes(
    audience: DataFrame,
    per_account: LazyFrame,
    (people_joined, people_left): (i64, i64),
) -> PolarsResult<DataFrame> {
    let per_account = per_account
        .group_by([col("account_id")])
        .agg([col(JOINED).sum(), col(LEFT).sum()]);
    let is_star = col("account_id").eq(lit(ALL_ACCOUNTS));
    let order: Vec<Expr> = audience
        .get_column_names()
        .into_iter()
        .map(|name| col(name.clone()))
        .collect();
    audience
        .lazy()
        .drop(cols([JOINED, LEFT]))
        .left_join(per_account, col("account_id"), col("account_id"))
        .with_columns([
            when(is_star.clone())
                .then(lit(people_joined))
                .otherwise(col(JOINED).fill_null(lit(0i64)))
                .alias(JOINED),
            when(is_star)
                .then(lit(people_left))
                .otherwise(col(LEFT).fill_null(lit(0i64)))
                .alias(LEFT),
        ])
        .select(order)
        .sort(["account_id"], SortMultipleOptions::default())
        .collect()
}

/// Fills `joined`/`left` of `audience`: per account, the `changes` rows of
/// that account (0 when none); on the `*` row, people who are in `people`
/// (today's [`super::people`]) and not in `previous`, and the reverse.
pub fn count_changes(
    audience: DataFrame,
    previous: LazyFrame,
    people: LazyFrame,
    changes: LazyFrame,
) -> PolarsResult<DataFrame> {
    fill_changes(
        audience,
        change_counts(changes),
        people_changes(previous, people)?,
    )
}
