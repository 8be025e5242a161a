//! Parquet encoding and decoding of whole tables (zstd, statistics, bounded
//! row groups so warehouses can split and prune the files).

use std::io::Cursor;

use polars::prelude::*;

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
    ParquetReader::new(Cursor::new(bytes)).finish()
}
