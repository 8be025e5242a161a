//! `sql/` agrees with the Rust transform to the row: for several seeds and two
//! consecutive days, DuckDB runs `sql/ddl/duckdb.sql` over the job's output
//! and then every analysis query, and each result equals the warehouse's own
//! tables (audience, overlap, changes) or what the Rust `people` and
//! `identities` tables give (trend, upset). `sql/ddl/duckdb_parquet.sql`, the
//! variant for DuckDB without the delta extension, agrees too, also while
//! the files a re-run superseded are still on disk. So do the companion
//! files of the WeCom tables (`duckdb_contacts.sql`,
//! `duckdb_parquet_group_members.sql`, ...), run after the main ones.
//!
//! DuckDB's delta extension cannot be downloaded here, so the test reads each
//! Delta table with the python `deltalake` package (which `make test`
//! installs) and gives it to DuckDB in place of the DDL's `delta_scan(…)`;
//! everything else in the DDL runs as written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde_json::{json, Value};

use crate::common::*;
use unionsnap::load::layout;

const QUERIES: [&str; 5] = ["audience", "overlap", "changes", "trend", "upset"];
/// The DDL that reads the Delta tables (DuckDB's delta extension).
const DELTA_DDL: &str = "duckdb.sql";
/// The DDL that reads the Parquet files the snapshot markers name.
const PARQUET_DDL: &str = "duckdb_parquet.sql";
/// The complete-snapshot views both DDLs define.
const VIEWS: [&str; 9] = [
    "followers",
    "identities",
    "people",
    "audience",
    "overlap",
    "changes",
    "tags",
    "reconciliation",
    "follower_tags",
];

fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sql")
}

/// What DuckDB returned for one query.
#[derive(serde::Deserialize)]
pub(crate) struct SqlResult {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Value>,
}

/// Runs `sql/ddl/<ddl>` over `output`, then every analysis query and the
/// `probes` (name, SQL); rows as JSON arrays. Each `delta_scan('<path>')` of
/// the DDL becomes a DuckDB view of the Delta table at `<path>` as `deltalake`
/// reads it (its latest version), registered as `delta_<table>`.
pub(crate) fn run_sql(
    output: &Path,
    ddl: &str,
    probes: &[(String, String)],
) -> BTreeMap<String, SqlResult> {
    run_sql_files(output, &[ddl], probes)
}

/// [`run_sql`] with several DDL files run one after the other: a main file
/// and its companions (`duckdb.sql`, then `duckdb_contacts.sql`, ...).
pub(crate) fn run_sql_files(
    output: &Path,
    ddls: &[&str],
    probes: &[(String, String)],
) -> BTreeMap<String, SqlResult> {
    let ddl = ddls
        .iter()
        .map(|ddl| std::fs::read_to_string(sql_dir().join("ddl").join(ddl)).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
        .replace("'warehouse/", &format!("'{}/", output.display()));
    let mut queries = serde_json::Map::new();
    for name in QUERIES {
        let text = std::fs::read_to_string(sql_dir().join(format!("{name}.sql"))).unwrap();
        queries.insert(name.to_string(), Value::String(text));
    }
    for (name, text) in probes {
        queries.insert(name.clone(), Value::String(text.clone()));
    }
    let script = r#"
import duckdb, json, os, re, sys
from deltalake import DeltaTable
job = json.load(sys.stdin)
con = duckdb.connect()
def delta_table(scan):
    path = scan.group(1)
    name = "delta_" + os.path.basename(path.rstrip("/"))
    con.register(name, DeltaTable(path).to_pyarrow_table())
    return name
con.execute(re.sub(r"delta_scan\('([^']*)'\)", delta_table, job["ddl"]))
out = {}
for name, q in job["queries"].items():
    rel = con.sql(q)
    out[name] = {"columns": rel.columns, "rows": [list(r) for r in rel.fetchall()]}
print(json.dumps(out, default=str))
"#;
    let input = json!({ "ddl": ddl, "queries": queries }).to_string();
    serde_json::from_value(python(script, &input)).unwrap()
}

fn cell(value: AnyValue) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Int64(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::Boolean(v) => json!(v),
        AnyValue::String(v) => json!(v),
        AnyValue::StringOwned(v) => json!(v.as_str()),
        other => panic!("no JSON form for {other:?}"),
    }
}

/// The rows of a Rust table as JSON arrays, each prefixed by `date`.
pub(crate) fn rows(df: &DataFrame, date: &str) -> Vec<Value> {
    (0..df.height())
        .map(|i| {
            let mut row = vec![json!(date)];
            row.extend(df.columns().iter().map(|c| cell(c.get(i).unwrap())));
            Value::Array(row)
        })
        .collect()
}

pub(crate) fn column_names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect()
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|r| r.to_string());
    rows
}

/// Three Official Accounts (one unbound) or four bound ones with heavy
/// overlap, with enough daily churn that the second day has many changes.
fn parity_scenario(seed: u64) -> unionsnap::simulator::Scenario {
    let accounts: &[(&str, f64, bool)] = match seed % 3 {
        0 => &[
            ("brand_oa", 0.5, true),
            ("news_oa", 0.3, true),
            ("legacy_oa", 0.2, false),
        ],
        1 => &[
            ("a_oa", 0.6, true),
            ("b_oa", 0.6, true),
            ("c_oa", 0.4, true),
            ("d_oa", 0.1, true),
        ],
        _ => &[("shop_oa", 0.4, true), ("old_oa", 0.5, false)],
    };
    let mut scenario = scenario(seed, 3_000, accounts);
    for account in &mut scenario.accounts {
        account.daily_churn = 0.05;
    }
    scenario
}

/// Runs the job on [`DATE`] (simulated day 0) and [`NEXT_DATE`] (day 1).
async fn run_two_days(fixture: &Fixture) -> PathBuf {
    let job = fixture.write_job();
    assert_exit(&fixture.run_job_on(&job, DATE, &[]).await, 0);
    fixture.server.set_day(1);
    assert_exit(&fixture.run_job_on(&job, NEXT_DATE, &[]).await, 0);
    fixture.output_dir()
}

/// Every result of `sql` (the analysis queries run by `ddl`) equals what the
/// committed snapshots of [`DATE`] and [`NEXT_DATE`] in `output` give.
async fn assert_sql_matches_rust(
    seed: u64,
    output: &Path,
    ddl: &str,
    sql: &BTreeMap<String, SqlResult>,
) {
    let mut expected: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for date in [DATE, NEXT_DATE] {
        let table = |name| read_table(output, date, name);
        let (audience, overlap, changes) = (
            table(layout::AUDIENCE).await,
            table(layout::OVERLAP).await,
            table(layout::CHANGES).await,
        );
        // sql/ sees accounts through identities: one without members has no rows there.
        let fewest = audience.column("members").unwrap().i64().unwrap().min();
        assert!(fewest > Some(0), "seed {seed}: every account has members");
        for (name, df) in [
            ("audience", &audience),
            ("overlap", &overlap),
            ("changes", &changes),
        ] {
            let mut columns = vec!["snapshot_date".to_string()];
            columns.extend(column_names(df));
            assert_eq!(
                sql[name].columns, columns,
                "{ddl}: sql/{name}.sql returns the table's columns"
            );
        }
        expected
            .entry("audience")
            .or_default()
            .extend(rows(&audience, date));
        expected
            .entry("overlap")
            .or_default()
            .extend(rows(&overlap, date));
        expected
            .entry("changes")
            .or_default()
            .extend(rows(&changes, date));

        let (people, identities) = (table(layout::PEOPLE).await, table(layout::IDENTITIES).await);
        let members = identities.height() as i64;
        let unique = people.height() as i64;
        let resolved_people = people
            .column("resolved")
            .unwrap()
            .bool()
            .unwrap()
            .sum()
            .unwrap() as i64;
        expected.entry("trend").or_default().push(json!([
            date,
            members,
            resolved_people,
            unique,
            members - unique
        ]));
        let upset = unionsnap::transform::upset(people.lazy())
            .collect()
            .unwrap();
        let mut columns = vec!["snapshot_date".to_string()];
        columns.extend(column_names(&upset));
        assert_eq!(sql["upset"].columns, columns, "{ddl}: sql/upset.sql");
        expected
            .entry("upset")
            .or_default()
            .extend(rows(&upset, date));
    }
    // upset.sql returns the intersection as an array; the Rust side joins it.
    let upset_sql: Vec<Value> = sql["upset"]
        .rows
        .iter()
        .map(|row| {
            let mut row = row.as_array().unwrap().clone();
            let accounts: Vec<&str> = row[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            row[1] = json!(accounts.join(unionsnap::transform::ACCOUNT_SEPARATOR));
            Value::Array(row)
        })
        .collect();

    assert_eq!(
        sql["trend"].columns,
        [
            "snapshot_date",
            "members",
            "resolved_people",
            "unique_people",
            "duplicate_memberships"
        ]
    );
    for name in ["audience", "overlap", "changes", "trend"] {
        assert_eq!(
            sql[name].rows, expected[name],
            "seed {seed}, {ddl}: sql/{name}.sql differs from the Rust tables"
        );
    }
    assert_eq!(
        sorted(upset_sql),
        sorted(expected["upset"].clone()),
        "seed {seed}, {ddl}: sql/upset.sql"
    );
    let changed = expected["changes"].len();
    assert!(
        changed > 100,
        "seed {seed}: the second day has changes ({changed})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_agrees_with_the_rust_tables_row_for_row_on_two_days() {
    for seed in [60, 61, 62, 63] {
        let fixture = Fixture::start(parity_scenario(seed)).await;
        let output = run_two_days(&fixture).await;
        let sql = run_sql(&output, DELTA_DDL, &[]);
        assert_sql_matches_rust(seed, &output, DELTA_DDL, &sql).await;
    }
}

/// A re-run of a date replaces its files in the Delta log, but the files it
/// superseded stay on disk until vacuum (24 h later by default). A plain
/// glob over the folders reads both; the Parquet DDL reads only the files
/// the snapshot markers name, and so agrees with the Delta DDL and with the
/// Rust tables to the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_ddl_reads_only_the_marked_files_while_superseded_ones_remain() {
    let seed = 60;
    let fixture = Fixture::start(parity_scenario(seed)).await;
    let output = run_two_days(&fixture).await;
    // The re-run sees another day of the simulator: its rows differ too.
    fixture.server.set_day(2);
    let job = fixture.write_job();
    assert_exit(&fixture.run_job_on(&job, NEXT_DATE, &[]).await, 0);
    let folder = output.join(format!("{}/snapshot_date={NEXT_DATE}", layout::IDENTITIES));
    let on_disk = files_under(&folder)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .count();
    assert_eq!(
        on_disk, 2,
        "the superseded file of {NEXT_DATE} is still on disk"
    );

    // Every view in full, and what a plain glob over the folders reads.
    let mut probes: Vec<(String, String)> = VIEWS
        .iter()
        .map(|view| {
            (
                format!("view_{view}"),
                format!("SELECT * FROM {view} ORDER BY ALL"),
            )
        })
        .collect();
    probes.push((
        "glob_rows".to_string(),
        format!(
            "SELECT count(*) FROM read_parquet('{}/{}/snapshot_date=*/*.parquet')",
            output.display(),
            layout::IDENTITIES
        ),
    ));
    let delta = run_sql(&output, DELTA_DDL, &probes);
    let parquet = run_sql(&output, PARQUET_DDL, &probes);
    assert_sql_matches_rust(seed, &output, DELTA_DDL, &delta).await;
    assert_sql_matches_rust(seed, &output, PARQUET_DDL, &parquet).await;

    for view in VIEWS {
        let name = format!("view_{view}");
        assert_eq!(
            parquet[&name].columns, delta[&name].columns,
            "{PARQUET_DDL} and {DELTA_DDL}: the columns of {view}"
        );
        assert!(
            parquet[&name].rows == delta[&name].rows,
            "{PARQUET_DDL} and {DELTA_DDL}: the rows of {view} ({} and {})",
            parquet[&name].rows.len(),
            delta[&name].rows.len()
        );
    }
    let rows = &parquet["view_identities"].rows;
    let mut committed = 0;
    for date in [DATE, NEXT_DATE] {
        committed += read_table(&output, date, layout::IDENTITIES).await.height();
    }
    assert_eq!(
        rows.len(),
        committed,
        "the identities of the markers' files"
    );
    let globbed = parquet["glob_rows"].rows[0][0].as_u64().unwrap() as usize;
    assert!(
        globbed > committed,
        "a plain glob reads the superseded file too ({globbed} rows, {committed} committed)"
    );
}

/// The WeCom tables through their companion DDL files, run after the main
/// ones (`duckdb_<table>.sql` after `duckdb.sql`, `duckdb_parquet_<table>.sql`
/// after `duckdb_parquet.sql`): each view holds exactly the rows of the
/// files the snapshot markers name — the Rust tables of the complete
/// snapshots — also while a re-run's superseded files are on disk, and the
/// Delta and Parquet variants agree column for column and row for row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_companion_ddls_hold_the_marked_files_of_contacts_and_group_members() {
    let seed = 62;
    let mut scenario = parity_scenario(seed);
    scenario.corps = vec![unionsnap::simulator::SimCorp {
        staff: 20,
        wecom_user_share: 0.15,
        group_chats: 200,
        group_reach: 0.3,
        daily_churn: 0.05,
        ..unionsnap::simulator::SimCorp::new(seed, "crm", 0.3)
    }];
    let fixture = Fixture::start(scenario).await;
    let output = run_two_days(&fixture).await;
    // A re-run of NEXT_DATE on another simulated day: new rows, and the
    // superseded files stay on disk until vacuum.
    fixture.server.set_day(2);
    assert_exit(
        &fixture
            .run_job_on(&fixture.write_job(), NEXT_DATE, &[])
            .await,
        0,
    );

    // (table, the columns that identify a row)
    let tables = [
        (layout::CONTACTS, "external_userid, follow_userid"),
        (layout::GROUP_MEMBERS, "chat_id, external_userid"),
    ];
    let location = unionsnap::job::OutputLocation::Local(output.clone());
    let store = unionsnap::load::open(&location).unwrap();
    let mut probes = Vec::new();
    for (table, keys) in tables {
        let mut marked = Vec::new();
        for date in [DATE, NEXT_DATE] {
            let manifest = unionsnap::load::read_manifest(&store, date.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
            marked.extend(
                (manifest.files.iter())
                    .filter(|file| file.table == table)
                    .map(|file| format!("'{}/{}'", output.display(), file.path)),
            );
        }
        assert_eq!(marked.len(), 2, "one {table} file a date (one corp)");
        probes.push((
            format!("view_{table}"),
            format!("SELECT * FROM {table} ORDER BY ALL"),
        ));
        probes.push((
            format!("marked_{table}"),
            format!(
                "SELECT * EXCLUDE (snapshot_date, account_id), snapshot_date, account_id
                 FROM read_parquet([{}], hive_partitioning = true,
                                   hive_types = {{'snapshot_date': DATE, 'account_id': VARCHAR}})
                 ORDER BY ALL",
                marked.join(", ")
            ),
        ));
        probes.push((
            format!("keys_{table}"),
            format!("SELECT CAST(snapshot_date AS VARCHAR), {keys} FROM {table}"),
        ));
        probes.push((
            format!("glob_{table}"),
            format!(
                "SELECT count(*) FROM read_parquet('{}/{table}/snapshot_date=*/account_id=*/*.parquet')",
                output.display()
            ),
        ));
    }
    let delta = run_sql_files(
        &output,
        &[DELTA_DDL, "duckdb_contacts.sql", "duckdb_group_members.sql"],
        &probes,
    );
    let parquet = run_sql_files(
        &output,
        &[
            PARQUET_DDL,
            "duckdb_parquet_contacts.sql",
            "duckdb_parquet_group_members.sql",
        ],
        &probes,
    );

    for (table, keys) in tables {
        let view = format!("view_{table}");
        let marked = &parquet[&format!("marked_{table}")];
        for (ddl, sql) in [(DELTA_DDL, &delta), (PARQUET_DDL, &parquet)] {
            assert_eq!(
                sql[&view].columns, marked.columns,
                "{ddl} and its companion: the columns of {table}"
            );
            assert!(
                sql[&view].rows == marked.rows,
                "{ddl} and its companion: {table} holds the rows of the marked files ({} and {})",
                sql[&view].rows.len(),
                marked.rows.len()
            );
        }
        // The same rows as the Rust tables of the complete snapshots.
        let key_columns: Vec<&str> = keys.split(", ").collect();
        let mut expected = Vec::new();
        for date in [DATE, NEXT_DATE] {
            let df = read_table(&output, date, table).await;
            assert!(df.height() > 0, "{table} of {date} has rows");
            expected.extend(rows(&df.select(key_columns.clone()).unwrap(), date));
        }
        let committed = expected.len();
        assert_eq!(
            sorted(parquet[&format!("keys_{table}")].rows.clone()),
            sorted(expected),
            "{table}: the view's rows are the Rust table's"
        );
        let globbed = parquet[&format!("glob_{table}")].rows[0][0]
            .as_u64()
            .unwrap() as usize;
        assert!(
            globbed > committed,
            "{table}: a plain glob reads the superseded file too ({globbed} rows, {committed} committed)"
        );
    }
}

/// The analysis queries must run unchanged on Trino and Spark: one SELECT
/// each, none of DuckDB's own syntax.
#[test]
fn sql_queries_are_single_portable_selects() {
    const DUCKDB_ONLY: [&str; 14] = [
        "GROUP BY ALL",
        "ORDER BY ALL",
        "QUALIFY",
        "LIST_",
        "STRING_AGG",
        "::",
        "->",
        "ILIKE",
        "EXCLUDE",
        "STRUCT_PACK",
        "{'",
        "LISTAGG",
        "REGEXP_",
        "GETVARIABLE",
    ];
    for name in QUERIES {
        let text = std::fs::read_to_string(sql_dir().join(format!("{name}.sql"))).unwrap();
        let code: String = text
            .lines()
            .map(|line| line.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let upper = code.to_uppercase();
        let trimmed = upper.trim();
        assert!(
            trimmed.starts_with("WITH") || trimmed.starts_with("SELECT"),
            "{name}.sql is one query"
        );
        assert!(!trimmed.contains(';'), "{name}.sql is one statement");
        for construct in DUCKDB_ONLY {
            assert!(!upper.contains(construct), "{name}.sql uses {construct}");
        }
        assert!(
            upper.contains("FROM IDENTITIES"),
            "{name}.sql reads the identities view"
        );
    }
}
