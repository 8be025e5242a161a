//! Schema stability: the Parquet a run writes is exactly what docs/schema.md
//! documents (names, order, Parquet and Arrow types, columns that are never
//! null), and the documented schema still starts with the first released one
//! (columns are only ever added).

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde_json::{json, Value};

use unionsnap::simulator::{self, ExportFormat, Scenario, SimApp, SimAppKind, SimCorp};

use crate::common::*;

/// One documented column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    parquet: String,
    arrow: String,
    nullable: bool,
}

/// `table | column | parquet | arrow | yes/no` rows, or the markdown tables
/// under `### table` headings.
fn parse_rows(text: &str) -> BTreeMap<String, Vec<Column>> {
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    let mut heading = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            heading = Some(name.trim().to_string());
            continue;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let (table, cells) = if line.starts_with("| ") {
            match &heading {
                Some(table) if cells[0] != "column" && !cells[0].starts_with("---") => {
                    (table.clone(), &cells[..])
                }
                _ => continue,
            }
        } else if !line.starts_with('#') && cells.len() == 5 {
            (cells[0].to_string(), &cells[1..])
        } else {
            continue;
        };
        assert!(
            matches!(cells[3], "yes" | "no"),
            "nullable is yes or no: {line}"
        );
        tables.entry(table).or_default().push(Column {
            name: cells[0].to_string(),
            parquet: cells[1].to_string(),
            arrow: cells[2].to_string(),
            nullable: cells[3] == "yes",
        });
    }
    tables
}

fn documented() -> BTreeMap<String, Vec<Column>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md");
    parse_rows(&std::fs::read_to_string(path).unwrap())
}

fn arrow_name(dtype: &ArrowDataType) -> String {
    match dtype {
        ArrowDataType::Utf8View => "utf8_view".into(),
        ArrowDataType::Utf8 => "utf8".into(),
        ArrowDataType::LargeUtf8 => "large_utf8".into(),
        ArrowDataType::Int64 => "int64".into(),
        ArrowDataType::Int32 => "int32".into(),
        ArrowDataType::Boolean => "bool".into(),
        ArrowDataType::Float64 => "double".into(),
        ArrowDataType::Date32 => "date32".into(),
        ArrowDataType::Timestamp(unit, tz) => {
            let unit = match unit {
                ArrowTimeUnit::Second => "s",
                ArrowTimeUnit::Millisecond => "ms",
                ArrowTimeUnit::Microsecond => "us",
                ArrowTimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("timestamp[{unit}, tz={tz}]"),
                None => format!("timestamp[{unit}]"),
            }
        }
        ArrowDataType::LargeList(field) => format!("large_list<{}>", arrow_name(field.dtype())),
        ArrowDataType::List(field) => format!("list<{}>", arrow_name(field.dtype())),
        other => format!("{other:?}"),
    }
}

/// (name, Arrow type) of every column, from the file's embedded Arrow schema.
fn arrow_columns(file: &Path) -> Vec<(String, String)> {
    let mut reader = ParquetReader::new(std::fs::File::open(file).unwrap());
    let schema = reader.schema().unwrap();
    schema
        .iter()
        .map(|(name, field)| (name.to_string(), arrow_name(field.dtype())))
        .collect()
}

/// Per file: the Parquet type of every top-level column (physical type and
/// logical annotation, as DuckDB's parquet_schema reports them) and its nulls.
fn parquet_columns(files: &[String]) -> Vec<Value> {
    let script = r#"
import duckdb, json, sys
out = []
for path in json.load(sys.stdin):
    rows = duckdb.sql(f"SELECT name, type, converted_type, logical_type, num_children FROM parquet_schema('{path}')").fetchall()
    def leaf(row):
        name, physical, converted, logical, _ = row
        logical = logical or ""
        if logical.startswith("StringType"):
            return "STRING"
        if logical.startswith("DateType"):
            return "DATE"
        if logical.startswith("TimestampType"):
            unit = "MICROS" if "MICROS=MicroSeconds" in logical else "MILLIS" if "MILLIS=MilliSeconds" in logical else "NANOS"
            utc = ",UTC" if "isAdjustedToUTC=1" in logical else ""
            return f"TIMESTAMP({unit}{utc})"
        return physical
    columns, i = [], 1
    while i < len(rows):
        name, physical, converted, logical, children = rows[i]
        if converted == "LIST":
            columns.append([name, f"LIST<{leaf(rows[i + 2])}>"])
            i += 3
        else:
            columns.append([name, leaf(rows[i])])
            i += 1
    nulls = {}
    for name, _ in columns:
        nulls[name] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}') WHERE \"{name}\" IS NULL").fetchall()[0][0]
    rows_total = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
    out.append({"columns": columns, "nulls": nulls, "rows": rows_total})
print(json.dumps(out))
"#;
    let value = python(script, &json!(files).to_string());
    value.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_parquet_matches_the_documented_schema() {
    let mut scenario = scenario(
        81,
        3_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.3, false)],
    );
    // A WeCom corp with customer groups (`contacts`, `group_members`), one
    // linked by idconvert (`id_links`), and a Mini Program's login export
    // (`app_users`): every table a job can write.
    scenario.corps = vec![
        SimCorp {
            group_chats: 40,
            group_reach: 0.1,
            ..SimCorp::new(81, "crm", 0.1)
        },
        SimCorp {
            idconvert: true,
            staff: 20,
            ..SimCorp::new(81, "partner_crm", 0.2)
        },
    ];
    scenario.apps = vec![SimApp::new(81, "shop_mp", SimAppKind::MiniProgram, 0.2)];
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    let output = fixture.output_dir().display().to_string();
    let exports = |scenario: Scenario| {
        let output = output.clone();
        async move {
            simulator::exports::write_local_exports(
                &scenario,
                |id| std::path::PathBuf::from(Scenario::export_location(&output, id)),
                |_| ExportFormat::Csv,
                2,
            )
            .await
            .unwrap()
        }
    };
    exports(fixture.server.scenario()).await;
    assert_exit(&fixture.run_job_on(&job, DATE, &[]).await, 0);
    fixture.server.set_day(1);
    exports(fixture.server.scenario()).await;
    assert_exit(&fixture.run_job_on(&job, NEXT_DATE, &[]).await, 0);

    let docs = documented();
    let output = fixture.output_dir();
    let manifest = std::fs::read_to_string(output.join(format!(
        "_manifests/snapshot_date={NEXT_DATE}/manifest.json"
    )))
    .unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let files: Vec<(String, String)> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let table = f["table"].as_str().unwrap().to_string();
            let path = output.join(f["path"].as_str().unwrap());
            (table, path.display().to_string())
        })
        .collect();
    let mut written: Vec<&str> = files.iter().map(|(t, _)| t.as_str()).collect();
    written.dedup();
    for table in &written {
        assert!(
            docs.contains_key(*table),
            "table {table} is written but not documented in docs/schema.md"
        );
    }
    for table in docs.keys() {
        assert!(
            written.contains(&table.as_str()),
            "documented table {table} was not written"
        );
    }

    let paths: Vec<String> = files.iter().map(|(_, p)| p.clone()).collect();
    let parquet = parquet_columns(&paths);
    for ((table, path), parquet) in files.iter().zip(&parquet) {
        let doc = &docs[table];
        let arrow = arrow_columns(Path::new(path));
        let arrow_expected: Vec<(String, String)> = doc
            .iter()
            .map(|c| (c.name.clone(), c.arrow.clone()))
            .collect();
        assert_eq!(
            arrow, arrow_expected,
            "{path}: columns or Arrow types differ from docs/schema.md"
        );
        let parquet_types: Vec<(String, String)> = parquet["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_str().unwrap().to_string(),
                    c[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let parquet_expected: Vec<(String, String)> = doc
            .iter()
            .map(|c| (c.name.clone(), c.parquet.clone()))
            .collect();
        assert_eq!(
            parquet_types, parquet_expected,
            "{path}: Parquet types differ from docs/schema.md"
        );
        for column in doc.iter().filter(|c| !c.nullable) {
            assert_eq!(
                parquet["nulls"][&column.name],
                json!(0),
                "{path}: {} is documented as never null",
                column.name
            );
        }
    }
    // Every table had rows to check nulls on (changes too: it is the second day).
    for table in &written {
        let rows: u64 = files
            .iter()
            .zip(&parquet)
            .filter(|((t, _), _)| t == table)
            .map(|(_, p)| p["rows"].as_u64().unwrap())
            .sum();
        assert!(rows > 0, "{table} has rows");
    }
}

#[test]
fn the_documented_schema_only_adds_columns_to_the_first_release() {
    let first = parse_rows(include_str!("schema_first_release.txt"));
    let docs = documented();
    for (table, released) in &first {
        let now = docs
            .get(table)
            .unwrap_or_else(|| panic!("table {table} was removed from docs/schema.md"));
        assert!(
            now.len() >= released.len() && now[..released.len()] == released[..],
            "{table}: a released column was removed, renamed, retyped, moved or made nullable;\n\
             released: {released:#?}\nnow: {now:#?}"
        );
    }
}
