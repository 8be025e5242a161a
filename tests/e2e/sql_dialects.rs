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

/// The main DDL file of each engine (`<engine>.sql`) and its sqlglot dialect.
const DDL_DIALECTS: [(&str, &str); 7] = [
    ("athena", "athena"),
    ("bigquery", "bigquery"),
    ("duckdb", "duckdb"),
    ("duckdb_parquet", "duckdb"),
    ("spark", "spark"),
    ("spark_parquet", "spark"),
    ("trino", "trino"),
];

/// The tables only some jobs write (sql/README.md): declared at the end of
/// each catalog engine's file, and in a companion file
/// `<engine>_<table>.sql` for the engines whose views bind their files when
/// they are created.
const OPTIONAL_TABLES: [&str; 4] = ["contacts", "group_members", "id_links", "app_users"];
const COMPANION_ENGINES: [&str; 3] = ["duckdb", "duckdb_parquet", "spark_parquet"];

/// Every file `sql/ddl/` should hold and its dialect: the main files, and a
/// companion per (binding engine, optional table).
fn ddl_files() -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &str)> = DDL_DIALECTS
        .iter()
        .map(|(engine, dialect)| (format!("{engine}.sql"), *dialect))
        .collect();
    for engine in COMPANION_ENGINES {
        let dialect = DDL_DIALECTS.iter().find(|(e, _)| *e == engine).unwrap().1;
        for table in OPTIONAL_TABLES {
            files.push((format!("{engine}_{table}.sql"), dialect));
        }
    }
    files.sort();
    files
}

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
    let files = ddl_files();
    let listed: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(
        on_disk, listed,
        "every file of sql/ddl/ has its dialect here"
    );

    let inputs: Vec<(String, String, &str)> = files
        .into_iter()
        .map(|(file, dialect)| {
            let text = std::fs::read_to_string(sql_dir().join("ddl").join(&file)).unwrap();
            (file, text, dialect)
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
        // A main file declares a dozen tables; a companion one table's two
        // layers (and Spark's mergeSchema setting).
        let companion = OPTIONAL_TABLES
            .iter()
            .any(|table| parsed.file.ends_with(&format!("_{table}.sql")));
        let least = if companion { 2 } else { 5 };
        assert!(parsed.kinds.len() >= least, "{parsed:?}");
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

/// Every engine declares both layers of every table only some jobs write.
/// A binding engine (DuckDB, Spark without Delta) in a companion file and
/// never in its main file, which must run on any warehouse; a catalog engine
/// at the end of its main file, after every table all jobs write, so that a
/// run of the file as a script (`spark-sql -f`, `bq query`) that stops at a
/// table the job never wrote has declared all the others.
#[test]
fn every_engine_declares_the_tables_only_some_jobs_write() {
    let read = |file: &str| std::fs::read_to_string(sql_dir().join("ddl").join(file)).unwrap();
    for (engine, _) in DDL_DIALECTS {
        let main = read(&format!("{engine}.sql"));
        let binding = COMPANION_ENGINES.contains(&engine);
        let last_common = main
            .rfind("follower_tags")
            .unwrap_or_else(|| panic!("{engine}.sql declares follower_tags"));
        for table in OPTIONAL_TABLES {
            let (file, text) = if binding {
                let file = format!("{engine}_{table}.sql");
                let text = read(&file);
                assert!(
                    !main.contains(&format!("unionsnap_files.{table}")),
                    "{engine}.sql must run on a warehouse without {table}: declare it in {file}"
                );
                (file, text)
            } else {
                (format!("{engine}.sql"), main.clone())
            };
            let files_layer = [
                format!("unionsnap_files.{table}\n"),
                format!("unionsnap_files.{table} AS"),
                format!("table_name => '{table}'"),
            ]
            .into_iter()
            .filter_map(|declared| text.find(&declared))
            .min()
            .unwrap_or_else(|| panic!("{file}: no unionsnap_files.{table}"));
            // The complete-snapshot view: `[delta.][unionsnap.]<table>`.
            let view = ["", "unionsnap.", "delta.unionsnap."]
                .iter()
                .find_map(|schema| text.find(&format!("VIEW {schema}{table} AS\n")))
                .unwrap_or_else(|| panic!("{file}: no complete-snapshot view {table}"));
            let body = &text[view..view + text[view..].find(';').unwrap()];
            assert!(
                body.contains(&format!("unionsnap_files.{table}"))
                    || body.contains(&format!("/{table}`")),
                "{file}: the view {table} reads the table: {body}"
            );
            assert!(
                body.contains("unionsnap_files.manifests")
                    || body.contains("unionsnap_files.marked_files"),
                "{file}: the view {table} keeps the complete snapshots only: {body}"
            );
            if !binding {
                assert!(
                    files_layer > last_common && view > last_common,
                    "{file}: {table} comes after every table all jobs write"
                );
            }
        }
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
