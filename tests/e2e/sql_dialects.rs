//! `sql/` through the dialect parsers data teams' tools use: sqlglot (PyPI,
//! pinned in the Makefile, which `make test` installs) parses every file of
//! `sql/ddl/` with its own engine's dialect and every analysis query with
//! DuckDB's, Trino's and Spark's. A statement it cannot parse fails the test.
//! A statement it can only keep as an opaque `Command` (it read the first
//! keyword and gave up on the rest) was not checked at all, so it fails the
//! test too unless [`OPAQUE`] lists it with the reason it stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::python;

/// Every DDL file of `sql/ddl/` and the sqlglot dialect of its engine.
const DDL_DIALECTS: [(&str, &str); 7] = [
    ("athena.sql", "athena"),
    ("bigquery.sql", "bigquery"),
    ("duckdb.sql", "duckdb"),
    ("duckdb_parquet.sql", "duckdb"),
    ("spark.sql", "spark"),
    ("spark_parquet.sql", "spark"),
    ("trino.sql", "trino"),
];

/// The analysis queries run unchanged on these engines (sql/README.md).
const QUERY_DIALECTS: [&str; 3] = ["duckdb", "trino", "spark"];
const QUERIES: [&str; 5] = ["audience", "overlap", "changes", "trend", "upset"];

/// The statements sqlglot can only keep as an opaque command: (file, a
/// fragment of the statement, why it stays as it is). Each is the engine's
/// documented syntax for something no other spelling does. An entry that no
/// statement matches any more fails the test: sqlglot learned it, drop it.
const OPAQUE: [(&str, &str, &str); 3] = [
    (
        "trino.sql",
        "CALL delta.system.register_table(",
        "Trino's Delta Lake connector registers an existing Delta table only \
         through this procedure; sqlglot 30 parses no CALL statement",
    ),
    (
        "bigquery.sql",
        "WITH CONNECTION `PROJECT.REGION.CONNECTION`",
        "a BigLake table over Delta Lake needs a connection; sqlglot 30's \
         BigQuery dialect has no WITH CONNECTION",
    ),
    (
        "bigquery.sql",
        "WITH PARTITION COLUMNS (snapshot_date DATE)",
        "the markers are a Hive-partitioned external table; sqlglot 30's \
         BigQuery dialect has no WITH PARTITION COLUMNS",
    ),
];

fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sql")
}

/// What sqlglot made of one file in one dialect.
#[derive(serde::Deserialize, Debug)]
struct Parsed {
    file: String,
    dialect: String,
    /// The parse error, if any.
    error: Option<String>,
    /// The expression type of each statement (`Select`, `Create`, `Command`, ...).
    kinds: Vec<String>,
    /// Each statement that holds a `Command`, whitespace collapsed.
    opaque: Vec<String>,
}

/// Parses each (file, SQL text, dialect) with sqlglot.
fn parse(inputs: &[(String, String, &str)]) -> Vec<Parsed> {
    let script = r#"
import json, logging, sys
import sqlglot
from sqlglot import exp
logging.getLogger("sqlglot").setLevel(logging.ERROR)
out = []
for item in json.load(sys.stdin):
    result = {"file": item["file"], "dialect": item["dialect"], "error": None,
              "kinds": [], "opaque": []}
    try:
        statements = [s for s in sqlglot.parse(item["sql"], read=item["dialect"]) if s is not None]
    except sqlglot.errors.SqlglotError as e:
        result["error"] = str(e)
        statements = []
    for s in statements:
        result["kinds"].append(type(s).__name__)
        if isinstance(s, exp.Command) or any(True for _ in s.find_all(exp.Command)):
            result["opaque"].append(" ".join(s.sql(dialect=item["dialect"]).split()))
    out.append(result)
print(json.dumps(out))
"#;
    let input: Vec<Value> = inputs
        .iter()
        .map(|(file, sql, dialect)| json!({ "file": file, "sql": sql, "dialect": dialect }))
        .collect();
    serde_json::from_value(python(script, &Value::Array(input).to_string())).unwrap()
}

#[test]
fn every_ddl_file_parses_in_its_engines_dialect() {
    let mut on_disk: Vec<String> = std::fs::read_dir(sql_dir().join("ddl"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let listed: Vec<String> = DDL_DIALECTS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "every file of sql/ddl/ has its dialect here"
    );

    let inputs: Vec<(String, String, &str)> = DDL_DIALECTS
        .iter()
        .map(|(file, dialect)| {
            let text = std::fs::read_to_string(sql_dir().join("ddl").join(file)).unwrap();
            (file.to_string(), text, *dialect)
        })
        .collect();
    let mut matched: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for parsed in parse(&inputs) {
        assert!(
            parsed.error.is_none(),
            "sqlglot ({}) cannot parse sql/ddl/{}: {}",
            parsed.dialect,
            parsed.file,
            parsed.error.unwrap_or_default()
        );
        assert!(parsed.kinds.len() >= 5, "{parsed:?}");
        for statement in &parsed.opaque {
            let entry = OPAQUE
                .iter()
                .find(|(file, fragment, _)| *file == parsed.file && statement.contains(fragment));
            match entry {
                Some((file, fragment, why)) => {
                    eprintln!(
                        "opaque to sqlglot ({}), {file}: {statement}\n  why: {why}",
                        parsed.dialect
                    );
                    *matched.entry((file, fragment)).or_default() += 1;
                }
                None => unexplained.push(format!("sql/ddl/{}: {statement}", parsed.file)),
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "sqlglot keeps these as opaque commands (not understood); fix the SQL or list \
         them in OPAQUE with the reason:\n{}",
        unexplained.join("\n")
    );
    for (file, fragment, _) in OPAQUE {
        assert!(
            matched.contains_key(&(file, fragment)),
            "{file}: no statement with {fragment:?} is opaque any more: drop it from OPAQUE"
        );
    }
}

#[test]
fn every_query_parses_as_one_query_in_duckdb_trino_and_spark() {
    let mut inputs = Vec::new();
    for name in QUERIES {
        let text = std::fs::read_to_string(sql_dir().join(format!("{name}.sql"))).unwrap();
        for dialect in QUERY_DIALECTS {
            inputs.push((format!("{name}.sql"), text.clone(), dialect));
        }
    }
    let parsed = parse(&inputs);
    assert_eq!(parsed.len(), QUERIES.len() * QUERY_DIALECTS.len());
    for parsed in parsed {
        let what = format!(
            "sql/{} in sqlglot's {} dialect",
            parsed.file, parsed.dialect
        );
        assert!(
            parsed.error.is_none(),
            "{what}: {}",
            parsed.error.unwrap_or_default()
        );
        assert!(
            parsed.opaque.is_empty(),
            "{what}: not understood: {:?}",
            parsed.opaque
        );
        assert!(
            parsed.kinds == ["Select"] || parsed.kinds == ["Union"],
            "{what}: one query, got {:?}",
            parsed.kinds
        );
    }
}

/// spark.sql (Delta) and spark_parquet.sql declare the markers' table with
/// the same statement, so the Spark test, which can run only the Parquet
/// variant (Delta's jars cannot be downloaded here), covers both.
#[test]
fn both_spark_ddls_declare_the_markers_table_alike() {
    let statement = |file: &str| {
        let text = std::fs::read_to_string(sql_dir().join("ddl").join(file)).unwrap();
        let start = text
            .find("CREATE TABLE IF NOT EXISTS unionsnap_files.manifests")
            .unwrap_or_else(|| panic!("{file} declares unionsnap_files.manifests"));
        let end = start + text[start..].find(';').unwrap();
        text[start..end].to_string()
    };
    assert_eq!(statement("spark.sql"), statement("spark_parquet.sql"));
}
