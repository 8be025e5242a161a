//! Parquet encoding and decoding of whole tables (zstd, statistics, bounded
//! row groups so warehouses can split and prune the files).

use std::io::Cursor;

use polars::prelude::*;

/// Rows per row group: SPEC §4 asks for ~128 MiB or 1M rows; our rows are
/// small, so the row count is the binding limit.
pub const ROW_GROUP_ROWS: usize = 1_000_000;

/// Encodes `df` as one zstd-compressed Parquet file with column statistics.
pub fn encode(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
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
