//! The audience summary as data: `--format json` (the snapshot's `audience`
//! and `overlap` rows with the manifest's facts) and `--format csv` (the
//! `audience` rows), for scripts and spreadsheets. `--format text` is
//! [`super::render_text`].

use polars::prelude::*;
use serde_json::{json, Map, Value};

use super::Snapshot;

/// How `unionsnap report` prints the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    Csv,
}

fn cell(value: AnyValue) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::Int64(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float64(v) => json!(v),
        AnyValue::String(v) => json!(v),
        AnyValue::StringOwned(v) => json!(v.as_str()),
        other => json!(other.to_string()),
    }
}

/// The rows of a table as JSON objects keyed by column name.
fn json_rows(df: &DataFrame) -> PolarsResult<Vec<Value>> {
    (0..df.height())
        .map(|i| {
            let mut row = Map::new();
            for column in df.columns() {
                row.insert(column.name().to_string(), cell(column.get(i)?));
            }
            Ok(Value::Object(row))
        })
        .collect()
}

/// `--format json`: one object with the snapshot's facts and its tables.
pub fn render_json(snapshot: &Snapshot) -> PolarsResult<String> {
    let m = &snapshot.manifest;
    let report = json!({
        "job": m.job,
        "snapshot_date": m.snapshot_date.to_string(),
        "run_id": m.run_id,
        "committed_at": m.committed_at.to_rfc3339(),
        "audience": json_rows(&snapshot.audience)?,
        "overlap": json_rows(&snapshot.overlap)?,
    });
    let mut text = serde_json::to_string_pretty(&report)
        .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
    text.push('\n');
    Ok(text)
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `--format csv`: the `audience` rows with a header, `snapshot_date` first
/// (so the reports of several dates concatenate into one table); nulls are
/// empty fields.
pub fn render_csv(snapshot: &Snapshot) -> PolarsResult<String> {
    let a = &snapshot.audience;
    let date = snapshot.manifest.snapshot_date.to_string();
    let mut out = String::from("snapshot_date");
    for name in a.get_column_names() {
        out.push(',');
        out.push_str(name);
    }
    out.push('\n');
    for row in json_rows(a)? {
        out.push_str(&date);
        for column in a.get_column_names() {
            out.push(',');
            out.push_str(&csv_field(&row[column.as_str()]));
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field(&json!("brand_oa")), "brand_oa");
        assert_eq!(csv_field(&json!(12)), "12");
        assert_eq!(csv_field(&Value::Null), "");
        assert_eq!(csv_field(&json!("a,\"b\"")), "\"a,\"\"b\"\"\"");
    }
}
