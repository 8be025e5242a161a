//! The exclusive intersections of accounts — the numbers behind an UpSet plot.
//!
//! Every person belongs to exactly one intersection: the exact set of
//! accounts they are a member of. So the sizes add up to `unique_people`,
//! the one-account intersections are the accounts' `exclusive_people`, and
//! unlike the pairwise `overlap` nobody is counted twice. `sql/upset.sql`
//! computes the same from `identities`.

use polars::prelude::*;

/// The separator of account ids in `upset.accounts` (account ids are
/// `[a-z0-9_-]+`, so it cannot occur inside one).
pub const ACCOUNT_SEPARATOR: &str = ",";

/// From `people`: one row per exclusive intersection with at least one
/// person — `accounts` (its account ids, sorted, comma-separated),
/// `n_accounts` and `people` — sorted by `accounts`.
pub fn upset(people: LazyFrame) -> LazyFrame {
    people
        .select([
            col("accounts")
                .list()
                .join(lit(ACCOUNT_SEPARATOR), true)
                .alias("accounts"),
            col("n_accounts"),
        ])
        .group_by([col("accounts")])
        .agg([
            col("n_accounts").first().cast(DataType::Int64),
            len().cast(DataType::Int64).alias("people"),
        ])
        .sort(["accounts"], SortMultipleOptions::default())
}
