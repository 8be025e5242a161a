//! A real Spark, the engine data teams move the dedupe to when a population
//! outgrows one machine: pyspark 3.5 (PyPI; it ships Spark's jars) with a
//! local Hive catalog (its metastore an in-memory Derby database) runs
//! `sql/ddl/spark_parquet.sql` and its companion files of the tables only
//! some jobs write (`spark_parquet_contacts.sql`, ...) over the demo's
//! warehouse as written (only the output prefix replaced), then every
//! analysis query of `sql/` under the settings `sql/ddl/spark.sql` names;
//! `audience.sql`, `overlap.sql` and `changes.sql` equal the Rust tables row
//! for row on every date, every view holds exactly the rows of the files the
//! markers name, and a file no marker names (what a re-run leaves until
//! vacuum) is read by the files layer and not by the views.
//!
//! `sql/ddl/spark.sql` itself reads the tables with `USING delta`, whose jars
//! Spark downloads from Maven at start-up, which these machines cannot reach;
//! its markers' table is the same statement as the Parquet variant's
//! (`sql_dialects.rs` checks that), and its views differ only in the table
//! they read.
//!
//! Spark needs a Java runtime: `make test` installs Debian's
//! openjdk-17-jre-headless when `java` is missing. Where none runs, the test
//! says so and skips, except under CI (`CI` set), where it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;
use crate::sql_parity::{column_names, rows};
use unionsnap::load::layout;

/// Simulated days of the demo: the second and third have joined/left counts.
const DEMO_DAYS: u32 = 3;
/// The analysis queries compared with a Rust table of the same name.
const COMPARED: [&str; 3] = ["audience", "overlap", "changes"];
const QUERIES: [&str; 5] = ["audience", "overlap", "changes", "trend", "upset"];
/// The complete-snapshot views of `spark_parquet.sql` and of its companion
/// files (schema `unionsnap`).
const VIEWS: [&str; 10] = [
    layout::FOLLOWERS,
    layout::IDENTITIES,
    layout::PEOPLE,
    layout::AUDIENCE,
    layout::OVERLAP,
    layout::CHANGES,
    layout::CONTACTS,
    layout::GROUP_MEMBERS,
    layout::ID_LINKS,
    layout::APP_USERS,
];
/// The tables only some jobs write, each in its companion file
/// `spark_parquet_<table>.sql`: the demo's corps and imports write them all.
const COMPANIONS: [&str; 4] = [
    layout::CONTACTS,
    layout::GROUP_MEMBERS,
    layout::ID_LINKS,
    layout::APP_USERS,
];

/// Whether a Java runtime runs here (pyspark needs one). Without one it says
/// why the test skips, or fails under CI, which installs Java.
fn java_available() -> bool {
    // pyspark starts $JAVA_HOME/bin/java, or the `java` on the PATH.
    let java = std::env::var_os("JAVA_HOME")
        .map(|home| Path::new(&home).join("bin/java"))
        .unwrap_or_else(|| PathBuf::from("java"));
    let runs = std::process::Command::new(&java)
        .arg("-version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !runs {
        assert!(
            std::env::var_os("CI").is_none(),
            "no Java runtime: CI installs Debian's openjdk-17-jre-headless (make java-deps)"
        );
        eprintln!(
            "SKIPPED: the Spark test needs a Java runtime and `{} -version` does not run here. \
             `make test` installs Debian's openjdk-17-jre-headless where apt can; install Java 17 \
             (or set JAVA_HOME) to run it.",
            java.display()
        );
    }
    runs
}

/// `unionsnap demo` as `make run` runs it, into `dir/warehouse`.
async fn demo_warehouse(dir: &Path) -> PathBuf {
    let jobs = dir.join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    let job = jobs.join("demo.toml");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/demo.toml");
    std::fs::copy(source, &job).unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["demo", "--job", job.to_str().unwrap()])
        .args(["--days", &DEMO_DAYS.to_string()])
        .args(["--html", dir.join("report.html").to_str().unwrap()])
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert_exit(&out, 0);
    dir.join("warehouse")
}

/// The complete snapshot dates of `output`, oldest first, with their markers.
fn markers(output: &Path) -> Vec<(String, unionsnap::load::Manifest)> {
    let mut dates: Vec<String> = files_under(&output.join(layout::MANIFESTS))
        .iter()
        .filter_map(|f| {
            f.strip_prefix("snapshot_date=")?
                .strip_suffix("/manifest.json")
        })
        .map(str::to_owned)
        .collect();
    dates.sort();
    dates
        .into_iter()
        .map(|date| {
            let marker = output.join(format!(
                "{}/snapshot_date={date}/manifest.json",
                layout::MANIFESTS
            ));
            (
                date,
                serde_json::from_slice(&std::fs::read(marker).unwrap()).unwrap(),
            )
        })
        .collect()
}

/// What Spark returned for one query.
#[derive(serde::Deserialize)]
struct SparkResult {
    columns: Vec<String>,
    rows: Vec<Value>,
}

/// Runs `sql/ddl/spark_parquet.sql` and its companion files (run after it,
/// as a warehouse with WeCom corps and imports needs) over `output` in
/// pyspark with a Hive catalog under `scratch`, then every analysis query and each probe (name,
/// SQL); also reports the catalog implementation as `catalog`.
fn run_spark(
    output: &Path,
    scratch: &Path,
    probes: &[(String, String)],
) -> BTreeMap<String, SparkResult> {
    let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut ddl = std::fs::read_to_string(sql.join("ddl/spark_parquet.sql")).unwrap();
    for table in COMPANIONS {
        let file = sql.join(format!("ddl/spark_parquet_{table}.sql"));
        ddl.push_str(&std::fs::read_to_string(file).unwrap());
    }
    let ddl = ddl.replace("s3a://BUCKET/PREFIX", &format!("file:{}", output.display()));
    let mut queries = serde_json::Map::new();
    for name in QUERIES {
        let text = std::fs::read_to_string(sql.join(format!("{name}.sql"))).unwrap();
        queries.insert(name.to_string(), Value::String(text));
    }
    for (name, text) in probes {
        queries.insert(name.clone(), Value::String(text.clone()));
    }
    // The DDL runs statement by statement, as `spark-sql -f` does: its
    // comments removed (no string in it holds "--"), split at the semicolons.
    let script = r#"
import json, os, sys
job = json.load(sys.stdin)
os.chdir(job["scratch"])
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").appName("unionsnap-sql-test")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.sql.shuffle.partitions", "4")
         .config("spark.sql.warehouse.dir", os.path.join(job["scratch"], "spark-warehouse"))
         .config("spark.hadoop.javax.jdo.option.ConnectionURL", "jdbc:derby:memory:metastore;create=true")
         .enableHiveSupport().getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
code = "\n".join(line.split("--")[0] for line in job["ddl"].splitlines())
for statement in code.split(";"):
    if statement.strip():
        spark.sql(statement)
spark.sql("USE unionsnap")
spark.sql("SET spark.sql.ansi.enabled = true")
spark.sql("SET spark.sql.ansi.doubleQuotedIdentifiers = true")
out = {"catalog": {"columns": ["implementation"],
                   "rows": [[spark.conf.get("spark.sql.catalogImplementation")]]}}
for name, q in job["queries"].items():
    df = spark.sql(q)
    out[name] = {"columns": df.columns, "rows": [list(r) for r in df.collect()]}
spark.stop()
print(json.dumps(out, default=str))
"#;
    let input = json!({
        "ddl": ddl,
        "queries": queries,
        "scratch": scratch.display().to_string(),
    });
    serde_json::from_value(python(script, &input.to_string())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_runs_the_parquet_ddl_and_the_queries_equal_the_rust_tables() {
    if !java_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = demo_warehouse(dir.path()).await;
    let markers = markers(&output);
    assert_eq!(
        markers.len(),
        DEMO_DAYS as usize,
        "one complete snapshot a day"
    );
    let (latest, latest_marker) = markers.last().unwrap();

    // A file no marker names, as a re-run leaves one until vacuum: a copy of
    // the latest date's identities under another run's name.
    let committed = latest_marker
        .files
        .iter()
        .find(|f| f.table == layout::IDENTITIES)
        .unwrap();
    let stray = format!(
        "{}/snapshot_date={latest}/part-20000101T000000Z-00000000-0.parquet",
        layout::IDENTITIES
    );
    std::fs::copy(output.join(&committed.path), output.join(&stray)).unwrap();

    let mut probes: Vec<(String, String)> = VIEWS
        .iter()
        .map(|view| {
            (
                format!("rows_{view}"),
                format!("SELECT count(*) FROM unionsnap.{view}"),
            )
        })
        .collect();
    probes.push((
        "files_identities".to_string(),
        format!(
            "SELECT count(*) FROM unionsnap_files.{}",
            layout::IDENTITIES
        ),
    ));
    let scratch = dir.path().join("spark");
    std::fs::create_dir_all(&scratch).unwrap();
    let spark = run_spark(&output, &scratch, &probes);
    assert_eq!(spark["catalog"].rows, [json!(["hive"])], "a Hive catalog");

    let count = |name: &str| spark[name].rows[0][0].as_u64().unwrap();
    for view in VIEWS {
        let marked: u64 = markers
            .iter()
            .flat_map(|(_, m)| m.files.iter())
            .filter(|f| f.table == view)
            .map(|f| f.rows)
            .sum();
        assert!(marked > 0, "the demo writes {view}");
        assert_eq!(
            count(&format!("rows_{view}")),
            marked,
            "unionsnap.{view}: the marked files' rows"
        );
    }
    let marked_identities = count(&format!("rows_{}", layout::IDENTITIES));
    assert_eq!(
        count("files_identities"),
        marked_identities + committed.rows,
        "the files layer reads the stray file too, the views do not"
    );

    for name in COMPARED {
        let mut expected = Vec::new();
        let mut columns = vec!["snapshot_date".to_string()];
        for (date, _) in &markers {
            let table = read_table(&output, date, name).await;
            if columns.len() == 1 {
                columns.extend(column_names(&table));
            }
            expected.extend(rows(&table, date));
        }
        assert_eq!(
            spark[name].columns, columns,
            "sql/{name}.sql in Spark: the table's columns"
        );
        assert!(!expected.is_empty());
        assert!(
            spark[name].rows == expected,
            "sql/{name}.sql in Spark differs from the Rust table:\nspark: {:?}\nrust:  {:?}",
            spark[name].rows,
            expected
        );
    }
    // trend: one row per date; upset: a row for each date at least.
    assert_eq!(spark["trend"].rows.len(), markers.len());
    let upset_dates: std::collections::BTreeSet<String> = spark["upset"]
        .rows
        .iter()
        .map(|r| r[0].to_string())
        .collect();
    assert_eq!(upset_dates.len(), markers.len());
}
