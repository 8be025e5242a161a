//! The dedupe + audience + overlap step alone, over an `identities` Parquet
//! file: what `make bench` (bench/bench.py) sets side by side with DuckDB
//! running `sql/` over the same file. Prints one JSON line.
//!
//! Timed twice: `seconds` is the way the job runs it — the rows spilled to
//! local disk by person and derived a bucket group at a time (spilling
//! included) — and `in_memory_seconds` the whole table at once
//! (`transform::derive`, the reference the partitioned path is tested against).
//!
//! `cargo bench --bench derive -- PATH/part-0.parquet`

use std::time::Instant;

/// The allocator of the `unionsnap` binary, so the step is timed as the job runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use polars::prelude::*;
use unionsnap::pipeline::derive::{self, PartitionedDerive, SpilledIdentities};
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
    let derived = transform::derive(&accounts, identities.clone())?;
    let in_memory = start.elapsed();
    let in_memory_unique = derived.audience.column("unique_people")?.i64()?.get(0);
    drop(derived);

    let start = Instant::now();
    let mut spilled = SpilledIdentities::new(false)?;
    let mut offset = 0;
    while offset < rows {
        spilled.push(identities.slice(offset as i64, 250_000))?;
        offset += 250_000;
    }
    spilled.flush()?;
    drop(identities);
    let mut partitioned =
        PartitionedDerive::new(&accounts, vec![&spilled], None, derive::group_rows())?;
    let (mut people, mut groups) = (0, 0);
    for range in partitioned.person_groups() {
        let identities = partitioned.group_identities(range.clone())?;
        people += partitioned.person_group(range, &identities)?.height();
        groups += 1;
    }
    let (audience, _overlap) = partitioned.finish()?;
    // The read of the file is counted in both, as DuckDB's time counts its own.
    let seconds = start.elapsed() + read;
    let star = audience.column("unique_people")?.i64()?.get(0);
    assert_eq!(star, in_memory_unique, "both ways count the same people");
    println!(
        "{{\"rows\": {rows}, \"people\": {people}, \"groups\": {groups}, \"unique_people\": {}, \"read_seconds\": {:.3}, \"seconds\": {:.3}, \"in_memory_seconds\": {:.3}}}",
        star.unwrap_or(-1),
        read.as_secs_f64(),
        seconds.as_secs_f64(),
        in_memory.as_secs_f64()
    );
    Ok(())
}
