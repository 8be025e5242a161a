//! Per-file statistics for the Delta log's `add` actions: `numRecords` and,
//! per column, `nullCount`, `minValues` and `maxValues` (Delta protocol,
//! "Per-file Statistics"). Gathered from the rows as they are written, so
//! no file is read back.
//!
//! Bounds are only ever loose in the safe direction: a string minimum is cut
//! to its first [`STRING_PREFIX`] characters (a prefix is never greater), a
//! longer string maximum is left out (unknown), and a timestamp maximum is
//! rounded up to the millisecond the log holds. Lists and booleans get a
//! null count only.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate};
use polars::prelude::*;
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
    fn of(value: AnyValue<'_>) -> Option<Bound> {
        Some(match value {
            AnyValue::Int64(v) => Bound::Int(v),
            AnyValue::Int32(v) => Bound::Int(v.into()),
            AnyValue::Int16(v) => Bound::Int(v.into()),
            AnyValue::Int8(v) => Bound::Int(v.into()),
            AnyValue::UInt32(v) => Bound::Int(v.into()),
            AnyValue::String(s) => Bound::Str(s.to_string()),
            AnyValue::StringOwned(s) => Bound::Str(s.to_string()),
            AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => {
                Bound::Micros(match unit {
                    TimeUnit::Nanoseconds => v.div_euclid(1_000),
                    TimeUnit::Microseconds => v,
                    TimeUnit::Milliseconds => v.saturating_mul(1_000),
                })
            }
            AnyValue::Date(days) => Bound::Days(days),
            _ => return None,
        })
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

#[derive(Debug, Clone, Default, PartialEq)]
struct ColumnStats {
    nulls: u64,
    min: Option<Bound>,
    max: Option<Bound>,
    /// Bounds are not kept for this column (its type has none, or two
    /// chunks disagreed on the type).
    unbounded: bool,
}

impl ColumnStats {
    fn widen(&mut self, min: Option<Bound>, max: Option<Bound>) {
        if self.unbounded {
            return;
        }
        let consistent = [
            widen_one(&mut self.min, min, Ordering::Less),
            widen_one(&mut self.max, max, Ordering::Greater),
        ];
        if consistent.contains(&false) {
            self.unbounded = true;
            self.min = None;
            self.max = None;
        }
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
    /// Adds the rows of `chunk` (of the file's schema).
    pub fn update(&mut self, chunk: &DataFrame) -> PolarsResult<()> {
        self.rows += chunk.height() as u64;
        for column in chunk.columns() {
            let name = column.name().as_str();
            let index = match self.columns.iter().position(|(n, _)| n == name) {
                Some(index) => index,
                None => {
                    self.columns
                        .push((name.to_string(), ColumnStats::default()));
                    self.columns.len() - 1
                }
            };
            let stats = &mut self.columns[index].1;
            stats.nulls += column.null_count() as u64;
            if !has_bounds(column.dtype()) {
                stats.unbounded = true;
                continue;
            }
            if column.null_count() == column.len() {
                continue;
            }
            let series = column.as_materialized_series();
            let min = Bound::of(series.min_reduce()?.as_any_value());
            let max = Bound::of(series.max_reduce()?.as_any_value());
            stats.widen(min, max);
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

    fn stats_of(chunks: &[DataFrame]) -> Value {
        let mut stats = FileStats::default();
        for chunk in chunks {
            stats.update(chunk).unwrap();
        }
        serde_json::from_str(&stats.to_json()).unwrap()
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
