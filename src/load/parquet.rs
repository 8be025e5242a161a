//! Parquet encoding and decoding of whole tables (zstd, statistics, bounded
//! row groups so warehouses can split and prune the files).

use std::io::Cursor;

use polars::prelude::*;

mod check;
pub use check::check_file;

/// Rows per row group: SPEC §4 asks for ~128 MiB or 1M rows; our rows are
/// small, so the row count is the binding limit.
pub const ROW_GROUP_ROWS: usize = 1_000_000;

/// The compression of every table: zstd at level 1. Our columns are mostly
/// random ids, which no level compresses much: on the 1M followers of
/// `make bench` case c, level 1 wrote files 3% smaller than zstd's default
/// level 3, and the run took about a tenth less CPU.
pub fn compression() -> ParquetCompression {
    ParquetCompression::Zstd(polars_parquet::write::ZstdLevel::try_new(1).ok())
}

/// Encodes `df` as one zstd-compressed Parquet file with column statistics.
pub fn encode(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(compression())
        .with_statistics(StatisticsOptions::full())
        .with_row_group_size(Some(ROW_GROUP_ROWS))
        .finish(df)?;
    Ok(buf)
}

/// Encodes `df` for crawl state, which is read back once and deleted: LZ4
/// (several times cheaper than zstd), no statistics.
pub fn encode_scratch(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Lz4Raw)
        .with_statistics(StatisticsOptions::empty())
        .finish(df)?;
    Ok(buf)
}

/// Decodes a whole Parquet file.
pub fn decode(bytes: bytes::Bytes) -> PolarsResult<DataFrame> {
    guarded_frame(|| ParquetReader::new(Cursor::new(bytes)).finish())
}

/// [`check_file`] as a read of polars: what it finds, or a panic in polars'
/// footer reader that it uses, is the file's error.
pub fn check(file: &[u8]) -> PolarsResult<()> {
    guarded(|| check_file(file).map_err(|why| polars_err!(ComputeError: "{why}")))
}

/// Runs a read of Parquet that may meet a corrupt file: polars' decoder
/// panics on some broken pages instead of failing (an index out of bounds
/// in the dictionary of a login export whose bytes `make fuzz` had changed),
/// and such a panic is the file's error like any other. Its message is not
/// repeated: it could hold the file's bytes.
pub fn guarded<T>(read: impl FnOnce() -> PolarsResult<T>) -> PolarsResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(polars_err!(
            ComputeError: "the Parquet decoder failed on a corrupt page"
        ))
    })
}

/// [`guarded`] for a read of rows, which must also give every column as many
/// values as the frame has rows: from a file whose page header states too
/// few values, polars hands back a column shorter than the others.
pub fn guarded_frame(read: impl FnOnce() -> PolarsResult<DataFrame>) -> PolarsResult<DataFrame> {
    let frame = guarded(read)?;
    match frame.columns().iter().find(|c| c.len() != frame.height()) {
        Some(short) => Err(polars_err!(
            ComputeError: "column `{}` has {} values for {} rows (a corrupt page)",
            short.name(), short.len(), frame.height()
        )),
        None => Ok(frame),
    }
}
