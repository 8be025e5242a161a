//! The dedupe + audience + overlap step alone, over an `identities` Parquet
//! file: what `make bench` (bench/bench.py) sets side by side with DuckDB
//! running `sql/` over the same file. Prints one JSON line.
//!
//! `cargo bench --bench derive -- PATH/part-0.parquet`

use std::time::Instant;

use polars::prelude::*;
use unionsnap::transform::{self, AccountRef};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .ok_or("usage: cargo bench --bench derive -- IDENTITIES.parquet")?;
    let start = Instant::now();
    let identities = ParquetReader::new(std::fs::File::open(&path)?).finish()?;
    let read = start.elapsed();
    let accounts = identities
        .clone()
        .lazy()
        .select([col("account_id"), col("account_kind")])
        .unique(None, UniqueKeepStrategy::Any)
        .sort(["account_id"], SortMultipleOptions::default())
        .collect()?;
    let accounts: Vec<AccountRef> = (0..accounts.height())
        .map(|i| -> PolarsResult<AccountRef> {
            Ok(AccountRef {
                account_id: accounts
                    .column("account_id")?
                    .str()?
                    .get(i)
                    .unwrap_or_default()
                    .to_string(),
                account_kind: accounts
                    .column("account_kind")?
                    .str()?
                    .get(i)
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect::<PolarsResult<_>>()?;
    let rows = identities.height();
    let derived = transform::derive(&accounts, identities)?;
    let total = start.elapsed();
    let star = derived.audience.column("unique_people")?.i64()?.get(0);
    println!(
        "{{\"rows\": {rows}, \"people\": {}, \"unique_people\": {}, \"read_seconds\": {:.3}, \"seconds\": {:.3}}}",
        derived.people.height(),
        star.unwrap_or(-1),
        read.as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(())
}
