//! `audience` and `overlap`: the numbers of SPEC §5.

use polars::prelude::*;

use super::{identities::person_id, AccountRef};

/// The name of the `audience` row that counts people across all accounts.
pub const ALL_ACCOUNTS: &str = "*";

fn accounts_frame(accounts: &[AccountRef]) -> PolarsResult<DataFrame> {
    let ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    let kinds: Vec<&str> = accounts.iter().map(|a| a.account_kind.as_str()).collect();
    df!("account_id" => ids, "account_kind" => kinds)
}

/// `audience`: one row per account (also accounts with no members), and the
/// `*` row with the deduplicated totals. `joined`/`left` are left null here:
/// they need the previous snapshot.
pub fn audience(
    accounts: &[AccountRef],
    identities: LazyFrame,
    people: LazyFrame,
) -> PolarsResult<DataFrame> {
    let with_person = identities.with_column(person_id()).left_join(
        people.select([col("person_id"), col("n_accounts")]),
        col("person_id"),
        col("person_id"),
    );
    let per_account = with_person.clone().group_by([col("account_id")]).agg([
        col("member_id").n_unique().alias("members"),
        col("member_id")
            .filter(col("unionid").is_not_null())
            .n_unique()
            .alias("resolved"),
        // Unresolved members are people of their own (n_accounts = 1).
        col("person_id")
            .filter(col("n_accounts").eq(lit(1i64)))
            .n_unique()
            .alias("exclusive_people"),
    ]);
    let per_account = accounts_frame(accounts)?
        .lazy()
        .left_join(per_account, col("account_id"), col("account_id"))
        .select([
            col("account_id"),
            col("account_kind"),
            col("members").cast(DataType::Int64).fill_null(lit(0i64)),
            col("resolved").cast(DataType::Int64).fill_null(lit(0i64)),
            (col("members") - col("resolved"))
                .cast(DataType::Int64)
                .fill_null(lit(0i64))
                .alias("unresolved"),
            col("exclusive_people")
                .cast(DataType::Int64)
                .fill_null(lit(0i64)),
            lit(NULL).cast(DataType::Int64).alias("resolved_people"),
            lit(NULL).cast(DataType::Int64).alias("unique_people"),
            lit(NULL)
                .cast(DataType::Int64)
                .alias("duplicate_memberships"),
            lit(NULL).cast(DataType::Int64).alias("joined"),
            lit(NULL).cast(DataType::Int64).alias("left"),
        ])
        .collect()?;

    let resolved_people = with_person
        .select([col("unionid").drop_nulls().n_unique().cast(DataType::Int64)])
        .collect()?;
    let resolved_people = resolved_people
        .column("unionid")?
        .i64()?
        .get(0)
        .unwrap_or(0);
    let total = |name: &str| -> PolarsResult<i64> {
        Ok(per_account.column(name)?.i64()?.sum().unwrap_or(0))
    };
    let (members, resolved, unresolved) =
        (total("members")?, total("resolved")?, total("unresolved")?);
    let unique_people = resolved_people + unresolved;
    let none = None::<i64>;
    let star = df!(
        "account_id" => [ALL_ACCOUNTS],
        "account_kind" => [None::<&str>],
        "members" => [members],
        "resolved" => [resolved],
        "unresolved" => [unresolved],
        "exclusive_people" => [none],
        "resolved_people" => [Some(resolved_people)],
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
pub fn overlap(accounts: &[AccountRef], identities: LazyFrame) -> PolarsResult<DataFrame> {
    let memberships = identities
        .filter(col("unionid").is_not_null())
        .select([col("account_id"), col("unionid")])
        .unique(None, UniqueKeepStrategy::Any);
    let shared = memberships
        .clone()
        .select([col("account_id").alias("account_a"), col("unionid")])
        .inner_join(
            memberships.select([col("account_id").alias("account_b"), col("unionid")]),
            col("unionid"),
            col("unionid"),
        )
        .filter(col("account_a").lt(col("account_b")))
        .group_by([col("account_a"), col("account_b")])
        .agg([len().cast(DataType::Int64).alias("shared_people")]);

    let mut ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            first.push(*a);
            second.push(*b);
        }
    }
    df!("account_a" => first, "account_b" => second)?
        .lazy()
        .join(
            shared,
            [col("account_a"), col("account_b")],
            [col("account_a"), col("account_b")],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            col("account_a"),
            col("account_b"),
            col("shared_people").fill_null(lit(0i64)),
        ])
        .sort(["account_a", "account_b"], SortMultipleOptions::default())
        .collect()
}
