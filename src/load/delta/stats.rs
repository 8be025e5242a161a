//! Per-file statistics for the Delta log's `add` actions: `numRecords` and,
//! per column, `nullCount`, `minValues` and `maxValues` (Delta protocol,
//! "Per-file Statistics"). Rows and null counts are counted as the rows are
//! written; the bounds are read from the statistics the Parquet encoder
//! wrote in the file's footer (it computes them anyway), so no file is read
//! back and no column is scanned twice.
//!
//! Bounds are only ever loose in the safe direction: a string minimum is cut
//! to its first [`STRING_PREFIX`] characters (a prefix is never greater), a
//! longer string maximum is left out (unknown), and a timestamp maximum is
//! rounded up to the millisecond the log holds. A column a row group of
//! which has values but no bounds in the footer gets none. Lists and
//! booleans get a null count only.

use std::cmp::Ordering;
use std::io::Cursor;

use chrono::{DateTime, NaiveDate};
use polars::prelude::*;
use polars_parquet::parquet::read::read_metadata;
use polars_parquet::parquet::statistics::Statistics;
use serde_json::{Map, Value};

/// Characters of a string kept in its statistics.
pub const STRING_PREFIX: usize = 32;

/// One bound of a column.
#[derive(Debug, Clone, PartialEq)]
enum Bound {
    Int(i64),
    Str(String),
    /// Microseconds since the epoch, UTC.
    Micros(i64),
    /// Days since the epoch.
    Days(i32),
}

impl Bound {
    /// The minimum and maximum of a row group's column of `dtype` from its
    /// footer statistics; `None` for a bound the footer does not hold.
    fn of_footer(stats: &Statistics, dtype: &DataType) -> (Option<Bound>, Option<Bound>) {
        let micros = |unit: &TimeUnit, v: i64| match unit {
            TimeUnit::Nanoseconds => v.div_euclid(1_000),
            TimeUnit::Microseconds => v,
            TimeUnit::Milliseconds => v.saturating_mul(1_000),
        };
        match (stats, dtype) {
            (Statistics::Int64(s), DataType::Int64) => {
                (s.min_value.map(Bound::Int), s.max_value.map(Bound::Int))
            }
            (Statistics::Int64(s), DataType::Datetime(unit, _)) => (
                s.min_value.map(|v| Bound::Micros(micros(unit, v))),
                s.max_value.map(|v| Bound::Micros(micros(unit, v))),
            ),
            (Statistics::Int32(s), DataType::Int32 | DataType::Int16 | DataType::Int8) => (
                s.min_value.map(|v| Bound::Int(v.into())),
                s.max_value.map(|v| Bound::Int(v.into())),
            ),
            (Statistics::Int32(s), DataType::Date) => {
                (s.min_value.map(Bound::Days), s.max_value.map(Bound::Days))
            }
            (Statistics::Binary(s), DataType::String) => {
                let text = |v: &Option<Vec<u8>>| {
                    v.as_deref()
                        .and_then(|bytes| std::str::from_utf8(bytes).ok())
                        .map(|text| Bound::Str(text.to_string()))
                };
                (text(&s.min_value), text(&s.max_value))
            }
            _ => (None, None),
        }
    }

    fn cmp(&self, other: &Bound) -> Option<Ordering> {
        match (self, other) {
            (Bound::Int(a), Bound::Int(b)) | (Bound::Micros(a), Bound::Micros(b)) => Some(a.cmp(b)),
            (Bound::Str(a), Bound::Str(b)) => Some(a.cmp(b)),
            (Bound::Days(a), Bound::Days(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// The bound as the log holds it; `None` when it cannot be held exactly
    /// or loosely in the safe direction.
    fn json(&self, is_max: bool) -> Option<Value> {
        match self {
            Bound::Int(v) => Some(Value::from(*v)),
            Bound::Str(s) if s.chars().count() <= STRING_PREFIX => Some(Value::from(s.as_str())),
            Bound::Str(_) if is_max => None,
            Bound::Str(s) => Some(Value::from(
                s.chars().take(STRING_PREFIX).collect::<String>(),
            )),
            Bound::Micros(micros) => {
                let millis = if is_max {
                    micros.div_euclid(1_000) + i64::from(micros.rem_euclid(1_000) != 0)
                } else {
                    micros.div_euclid(1_000)
                };
                let time = DateTime::from_timestamp_millis(millis)?;
                Some(Value::from(
                    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                ))
            }
            Bound::Days(days) => {
                let date = NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)?;
                Some(Value::from(date.to_string()))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ColumnStats {
    dtype: DataType,
    nulls: u64,
    min: Option<Bound>,
    max: Option<Bound>,
    /// Bounds are not kept for this column (its type has none, two chunks
    /// disagreed on the type, or a row group's bounds are unknown).
    unbounded: bool,
}

impl ColumnStats {
    fn new(dtype: &DataType) -> Self {
        ColumnStats {
            dtype: dtype.clone(),
            nulls: 0,
            min: None,
            max: None,
            unbounded: !has_bounds(dtype),
        }
    }

    fn widen(&mut self, min: Option<Bound>, max: Option<Bound>) {
        if self.unbounded {
            return;
        }
        let consistent = [
            widen_one(&mut self.min, min, Ordering::Less),
            widen_one(&mut self.max, max, Ordering::Greater),
        ];
        if consistent.contains(&false) {
            self.forget_bounds();
        }
    }

    fn forget_bounds(&mut self) {
        self.unbounded = true;
        self.min = None;
        self.max = None;
    }
}

/// Widens `bound` to `theirs` when `theirs` is further in the `keep`
/// direction; false when the two are not comparable (another type).
fn widen_one(bound: &mut Option<Bound>, theirs: Option<Bound>, keep: Ordering) -> bool {
    let Some(theirs) = theirs else { return true };
    match bound {
        None => *bound = Some(theirs),
        Some(current) => match theirs.cmp(current) {
            Some(order) if order == keep => *current = theirs,
            Some(_) => {}
            None => return false,
        },
    }
    true
}

/// The statistics of one file, gathered chunk by chunk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStats {
    rows: u64,
    columns: Vec<(String, ColumnStats)>,
}

impl FileStats {
    /// The statistics of a whole file: `frame`, encoded as `parquet`.
    pub fn of_file(frame: &DataFrame, parquet: &[u8]) -> PolarsResult<Self> {
        let mut stats = FileStats::default();
        stats.update(frame)?;
        stats.read_bounds(parquet)?;
        Ok(stats)
    }

    /// Counts the rows and nulls of `chunk` (of the file's schema).
    pub fn update(&mut self, chunk: &DataFrame) -> PolarsResult<()> {
        self.rows += chunk.height() as u64;
        for column in chunk.columns() {
            let name = column.name().as_str();
            let index = match self.columns.iter().position(|(n, _)| n == name) {
                Some(index) => index,
                None => {
                    self.columns
                        .push((name.to_string(), ColumnStats::new(column.dtype())));
                    self.columns.len() - 1
                }
            };
            let stats = &mut self.columns[index].1;
            stats.nulls += column.null_count() as u64;
            if stats.dtype != *column.dtype() {
                stats.forget_bounds();
            } else if stats.dtype == DataType::UInt32 && column.null_count() < column.len() {
                // The footer holds these as signed 32-bit integers and
                // reduces a row group's pages as signed ones, which puts
                // values of 2^31 and more out of order: read them here.
                let series = column.as_materialized_series();
                let bound = |v: Option<u32>| v.map(|v| Bound::Int(v.into()));
                stats.widen(bound(series.min::<u32>()?), bound(series.max::<u32>()?));
            }
        }
        Ok(())
    }

    /// Widens each column's bounds to those the Parquet encoder wrote in
    /// the footer of the file, every row group's: `file_end` holds the end
    /// of the file, its footer whole (the encoder's last write).
    pub fn read_bounds(&mut self, file_end: &[u8]) -> PolarsResult<()> {
        let metadata = read_metadata(&mut Cursor::new(file_end))?;
        for group in &metadata.row_groups {
            for chunk in group.parquet_columns() {
                // A top-level column; lists and structs are leaves below it.
                let [name] = chunk.descriptor().path_in_schema.as_slice() else {
                    continue;
                };
                let Some((_, stats)) = self.columns.iter_mut().find(|(n, _)| n == name.as_str())
                else {
                    continue;
                };
                if stats.unbounded || stats.dtype == DataType::UInt32 {
                    continue;
                }
                let Some(Ok(footer)) = chunk.statistics(&metadata.footer_buf) else {
                    stats.forget_bounds();
                    continue;
                };
                if null_count(&footer) == Some(group.num_rows() as i64) {
                    continue;
                }
                match Bound::of_footer(&footer, &stats.dtype) {
                    (Some(min), Some(max)) => stats.widen(Some(min), Some(max)),
                    _ => stats.forget_bounds(),
                }
            }
        }
        Ok(())
    }

    /// Rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The `stats` string of an `add` action.
    pub fn to_json(&self) -> String {
        let (mut nulls, mut mins, mut maxs) = (Map::new(), Map::new(), Map::new());
        for (name, stats) in &self.columns {
            nulls.insert(name.clone(), Value::from(stats.nulls));
            if let Some(min) = stats.min.as_ref().and_then(|b| b.json(false)) {
                mins.insert(name.clone(), min);
            }
            if let Some(max) = stats.max.as_ref().and_then(|b| b.json(true)) {
                maxs.insert(name.clone(), max);
            }
        }
        let mut stats = Map::new();
        stats.insert("numRecords".to_string(), Value::from(self.rows));
        stats.insert("minValues".to_string(), Value::Object(mins));
        stats.insert("maxValues".to_string(), Value::Object(maxs));
        stats.insert("nullCount".to_string(), Value::Object(nulls));
        Value::Object(stats).to_string()
    }
}

/// The nulls a footer's statistics count.
fn null_count(stats: &Statistics) -> Option<i64> {
    match stats {
        Statistics::Binary(s) => s.null_count,
        Statistics::Boolean(s) => s.null_count,
        Statistics::FixedLen(s) => s.null_count,
        Statistics::Int32(s) => s.null_count,
        Statistics::Int64(s) => s.null_count,
        Statistics::Int96(s) => s.null_count,
        Statistics::Float(s) => s.null_count,
        Statistics::Double(s) => s.null_count,
    }
}

/// Whether the log keeps minimum and maximum values for a column of `dtype`.
fn has_bounds(dtype: &DataType) -> bool {
    matches!(
        dtype,
        DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::UInt32
            | DataType::String
            | DataType::Datetime(_, _)
            | DataType::Date
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `chunks` written as the row groups of one file, as the partition
    /// writer does, with the encoder's statistics or none.
    fn file_of(chunks: &[DataFrame], statistics: StatisticsOptions) -> Vec<u8> {
        let mut file = Vec::new();
        let mut writer = ParquetWriter::new(&mut file)
            .with_statistics(statistics)
            .batched(chunks[0].schema())
            .unwrap();
        for chunk in chunks {
            writer.write_batch(chunk).unwrap();
        }
        writer.finish().unwrap();
        file
    }

    fn file_stats(chunks: &[DataFrame], statistics: StatisticsOptions) -> FileStats {
        let file = file_of(chunks, statistics);
        let mut stats = FileStats::default();
        for chunk in chunks {
            stats.update(chunk).unwrap();
        }
        // Only the end of the file, as the partition writer has it.
        let footer = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
        stats
            .read_bounds(&file[file.len() - footer as usize - 8..])
            .unwrap();
        stats
    }

    fn stats_of(chunks: &[DataFrame]) -> Value {
        let stats = file_stats(chunks, StatisticsOptions::full());
        serde_json::from_str(&stats.to_json()).unwrap()
    }

    /// A column's bounds from its values, the way polars reduces them: the
    /// oracle of the footer's.
    fn bounds_from_values(column: &Column) -> (Option<Bound>, Option<Bound>) {
        let of = |value: AnyValue<'_>| match value {
            AnyValue::Int64(v) => Some(Bound::Int(v)),
            AnyValue::Int32(v) => Some(Bound::Int(v.into())),
            AnyValue::Int16(v) => Some(Bound::Int(v.into())),
            AnyValue::Int8(v) => Some(Bound::Int(v.into())),
            AnyValue::UInt32(v) => Some(Bound::Int(v.into())),
            AnyValue::String(s) => Some(Bound::Str(s.to_string())),
            AnyValue::StringOwned(s) => Some(Bound::Str(s.to_string())),
            AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => {
                Some(Bound::Micros(match unit {
                    TimeUnit::Nanoseconds => v.div_euclid(1_000),
                    TimeUnit::Microseconds => v,
                    TimeUnit::Milliseconds => v * 1_000,
                }))
            }
            AnyValue::Date(days) => Some(Bound::Days(days)),
            _ => None,
        };
        let series = column.as_materialized_series();
        (
            of(series.min_reduce().unwrap().as_any_value()),
            of(series.max_reduce().unwrap().as_any_value()),
        )
    }

    fn timestamps(name: &str, values: &[Option<i64>], unit: TimeUnit) -> Column {
        Series::new(name.into(), values)
            .cast(&DataType::Datetime(
                unit,
                Some(polars::prelude::TimeZone::UTC),
            ))
            .unwrap()
            .into()
    }

    /// Row groups of every type the tables hold, with nulls, a column all
    /// null in one row group, repeated bounds and strings longer than the
    /// prefix.
    fn every_type(rows: std::ops::Range<i64>, null_every: i64) -> DataFrame {
        let value = |i: i64| (i % null_every != 0).then_some(i);
        let strings: Vec<Option<String>> = rows
            .clone()
            .map(|i| {
                value(i).map(|i| format!("o{:x}{}", i * 7919 % 1013, "z".repeat((i % 40) as usize)))
            })
            .collect();
        let ints: Vec<Option<i64>> = rows
            .clone()
            .map(|i| value(i).map(|i| (i * 37) % 101 - 50))
            .collect();
        let small: Vec<Option<i32>> = ints.iter().map(|v| v.map(|v| v as i32)).collect();
        let tiny: Vec<Option<i8>> = ints.iter().map(|v| v.map(|v| v as i8)).collect();
        let counts: Vec<Option<u32>> = ints.iter().map(|v| v.map(|v| (v + 50) as u32)).collect();
        let times: Vec<Option<i64>> = ints
            .iter()
            .map(|v| v.map(|v| 1_700_000_000_123_456 + v * 1_001))
            .collect();
        let days: Vec<Option<i32>> = small.iter().map(|v| v.map(|v| 20_000 + v)).collect();
        let lists: Vec<Series> = rows
            .clone()
            .map(|i| Series::new("".into(), vec![i; (i % 3) as usize]))
            .collect();
        let height = strings.len();
        DataFrame::new(
            height,
            vec![
                Column::new("openid".into(), strings),
                Column::new("n".into(), ints),
                Column::new("n32".into(), small),
                Column::new("n8".into(), tiny),
                Column::new("count".into(), counts),
                timestamps("at_us", &times, TimeUnit::Microseconds),
                timestamps(
                    "at_ns",
                    &times
                        .iter()
                        .map(|v| v.map(|v| v * 1_000 + 1))
                        .collect::<Vec<_>>(),
                    TimeUnit::Nanoseconds,
                ),
                timestamps(
                    "at_ms",
                    &times
                        .iter()
                        .map(|v| v.map(|v| v / 1_000))
                        .collect::<Vec<_>>(),
                    TimeUnit::Milliseconds,
                ),
                Series::new("day".into(), days)
                    .cast(&DataType::Date)
                    .unwrap()
                    .into(),
                Column::new("accounts".into(), lists),
                Column::new("flag".into(), rows.map(|i| i % 2 == 0).collect::<Vec<_>>()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_footer_bounds_equal_the_values_bounds() {
        let chunks = [
            every_type(0..700, 5),
            every_type(700..1_000, 1),
            every_type(1_000..3_000, 3),
        ];
        let stats = file_stats(&chunks, StatisticsOptions::full());
        let mut whole = chunks[0].clone();
        for chunk in &chunks[1..] {
            whole.vstack_mut(chunk).unwrap();
        }
        assert_eq!(stats.rows(), 3_000);
        for column in whole.columns() {
            let (name, kept) = stats
                .columns
                .iter()
                .find(|(name, _)| name == column.name().as_str())
                .unwrap();
            assert_eq!(kept.nulls, column.null_count() as u64, "{name}");
            if has_bounds(column.dtype()) {
                assert_eq!(
                    (kept.min.clone(), kept.max.clone()),
                    bounds_from_values(column),
                    "{name}"
                );
                assert!(kept.min.is_some(), "{name}");
            } else {
                assert!(
                    kept.unbounded && kept.min.is_none() && kept.max.is_none(),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn unsigned_bounds_hold_values_of_two_to_the_31_and_more() {
        let first = df!("count" => [5u32, 3_000_000_000]).unwrap();
        let second = df!("count" => [7u32, 2_147_483_648]).unwrap();
        let stats = stats_of(&[first, second]);
        assert_eq!(stats["minValues"]["count"], 5);
        assert_eq!(stats["maxValues"]["count"], 3_000_000_000u64);
    }

    #[test]
    fn a_file_without_footer_bounds_has_none_in_the_log() {
        let chunks = [every_type(0..100, 4), every_type(100..200, 7)];
        let stats = file_stats(&chunks, StatisticsOptions::empty());
        let json: Value = serde_json::from_str(&stats.to_json()).unwrap();
        let unsigned = ["count"];
        for (name, _) in &stats.columns {
            if !unsigned.contains(&name.as_str()) {
                assert!(json["minValues"].get(name).is_none(), "{name}");
                assert!(json["maxValues"].get(name).is_none(), "{name}");
            }
        }
        let nulls =
            (0..100).filter(|i| i % 4 == 0).count() + (100..200).filter(|i| i % 7 == 0).count();
        assert_eq!(json["nullCount"]["openid"], nulls);
        assert_eq!(json["numRecords"], 200);
    }

    #[test]
    fn bounds_and_null_counts_span_every_chunk() {
        let first = df!(
            "openid" => [Some("ob"), None, Some("oc")],
            "n" => [Some(5i64), Some(-2), None],
        )
        .unwrap();
        let second = df!(
            "openid" => [Some("oa"), Some("oz")],
            "n" => [Some(7i64), None],
        )
        .unwrap();
        let stats = stats_of(&[first, second]);
        assert_eq!(stats["numRecords"], 5);
        assert_eq!(stats["minValues"]["openid"], "oa");
        assert_eq!(stats["maxValues"]["openid"], "oz");
        assert_eq!(stats["minValues"]["n"], -2);
        assert_eq!(stats["maxValues"]["n"], 7);
        assert_eq!(stats["nullCount"]["openid"], 1);
        assert_eq!(stats["nullCount"]["n"], 2);
    }

    #[test]
    fn bounds_are_loose_only_in_the_safe_direction() {
        let long = "x".repeat(STRING_PREFIX + 5);
        let micros = Series::new("t".into(), [1_000_001i64, 2_000_500])
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(polars::prelude::TimeZone::UTC),
            ))
            .unwrap();
        let frame = DataFrame::new(
            2,
            vec![
                Series::new("s".into(), [long.as_str(), "y"]).into(),
                micros.into(),
                Series::new("flag".into(), [true, false]).into(),
            ],
        )
        .unwrap();
        let stats = stats_of(&[frame]);
        assert_eq!(stats["minValues"]["s"], "x".repeat(STRING_PREFIX));
        assert_eq!(stats["maxValues"]["s"], "y");
        assert_eq!(stats["minValues"]["t"], "1970-01-01T00:00:01.000Z");
        assert_eq!(stats["maxValues"]["t"], "1970-01-01T00:00:02.001Z");
        assert!(stats["minValues"].get("flag").is_none());
        assert_eq!(stats["nullCount"]["flag"], 0);
        let longest_last = df!("s" => ["a", long.as_str()]).unwrap();
        let stats = stats_of(&[longest_last]);
        assert!(
            stats["maxValues"].get("s").is_none(),
            "a cut maximum would be too small"
        );
    }
}
