//! Test harness: the simulator in-process on 127.0.0.1, the real `unionsnap`
//! binary as a child process, DuckDB (Python) reading the Parquet back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use unionsnap::simulator::{self, Scenario, SimServer};

pub const BIN: &str = env!("CARGO_BIN_EXE_unionsnap");
pub const DATE: &str = "2026-11-21";
/// The day after [`DATE`]: the snapshot of simulated day 1 in two-day tests.
pub const NEXT_DATE: &str = "2026-11-22";

/// A simulator serving `scenario`, and a temp dir holding the job file.
pub struct Fixture {
    pub scenario: Scenario,
    pub server: SimServer,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start(scenario: Scenario) -> Fixture {
        let server = simulator::start(scenario.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Fixture {
            scenario,
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn output_dir(&self) -> PathBuf {
        self.dir.path().join("warehouse")
    }

    /// Writes the scenario's job file (output = a local folder) and returns its path.
    pub fn write_job(&self) -> PathBuf {
        self.write_job_with_output(&self.output_dir().display().to_string())
    }

    pub fn write_job_with_output(&self, output: &str) -> PathBuf {
        let text = self.scenario.job_toml(&self.server.base_url(), output);
        self.write_job_text(&text)
    }

    pub fn write_job_text(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("job.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `unionsnap ARGS` with the scenario's secrets in the environment.
    pub async fn unionsnap(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args)
            .env_remove("RUST_LOG")
            .envs(self.scenario.secret_env())
            .envs(extra_env.iter().copied())
            .kill_on_drop(true);
        cmd.output().await.unwrap()
    }

    pub async fn run_job(&self, job: &Path, extra_env: &[(&str, &str)]) -> Output {
        self.run_job_on(job, DATE, extra_env).await
    }

    /// Runs the job for snapshot date `date`.
    pub async fn run_job_on(&self, job: &Path, date: &str, extra_env: &[(&str, &str)]) -> Output {
        self.unionsnap(&["run", job.to_str().unwrap(), "--date", date], extra_env)
            .await
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Runs a DuckDB query (Python) and returns the rows as JSON arrays.
pub fn duckdb(sql: &str) -> Vec<serde_json::Value> {
    let script = r#"
import duckdb, json, sys
rows = duckdb.sql(sys.stdin.read()).fetchall()
print(json.dumps([list(r) for r in rows], default=str))
"#;
    let rows = python(script, sql);
    rows.as_array().cloned().unwrap_or_default()
}

/// Runs a Python script (with DuckDB, which `make test` installs) with
/// `input` on its stdin and returns what it printed as JSON.
#[track_caller]
pub fn python(script: &str, input: &str) -> serde_json::Value {
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with duckdb (make test installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python/DuckDB failed: {}\ninput: {input}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// A scenario of Official Accounts with their own AppSecret: (id, reach, bound) each.
pub fn scenario(seed: u64, people: u64, accounts: &[(&str, f64, bool)]) -> Scenario {
    let mut scenario = Scenario::demo();
    scenario.seed = seed;
    scenario.people = people;
    // Official Accounts only: the demo's other kinds are added by tests that want them.
    scenario.platform = None;
    scenario.corps.clear();
    scenario.apps.clear();
    scenario.accounts = accounts
        .iter()
        .enumerate()
        .map(|(i, (id, reach, bound))| simulator::SimAccount {
            id: id.to_string(),
            appid: format!("wx{:016x}", seed.wrapping_mul(1000) + i as u64),
            secret: format!(
                "testsecret{seed:x}{i:x}{:016x}",
                seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ),
            bound: *bound,
            reach: *reach,
            leave_during_crawl: 0.003,
            daily_churn: 0.01,
        })
        .collect();
    scenario
}

/// `scenario` for tests that run several days with `refresh = "new"` (the
/// default): no followers who unfollow during the crawl, because a known
/// follower is not re-checked by batchget (README: the refresh trade-off) and
/// the simulator's truth counts such followers out. `refresh = "full"`, which
/// catches them, is proven in scale.rs.
pub fn without_crawl_leavers(mut scenario: Scenario) -> Scenario {
    for account in &mut scenario.accounts {
        account.leave_during_crawl = 0.0;
    }
    scenario
}

/// The committed snapshot of `DATE` in a local output folder.
pub async fn read_snapshot(output: &Path) -> unionsnap::report::Snapshot {
    let location = unionsnap::job::OutputLocation::Local(output.to_path_buf());
    let store = unionsnap::load::open(&location).unwrap();
    unionsnap::report::read_snapshot(&store, Some(DATE.parse().unwrap()))
        .await
        .unwrap()
}

/// A table of the committed snapshot of `date` in a local output folder.
pub async fn read_table(output: &Path, date: &str, table: &str) -> polars::prelude::DataFrame {
    let location = unionsnap::job::OutputLocation::Local(output.to_path_buf());
    let store = unionsnap::load::open(&location).unwrap();
    let manifest = unionsnap::load::read_manifest(&store, date.parse().unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{date} is not complete"));
    let path = unionsnap::load::table_file(&manifest, table).unwrap();
    unionsnap::load::read_file(&store, path).await.unwrap()
}

/// The committed file of `account`'s partition of `table` on `date` (named
/// by the date's snapshot marker: file names are unique to the run).
pub fn committed_partition(output: &Path, table: &str, date: &str, account: &str) -> PathBuf {
    let marker = output.join(format!("_manifests/snapshot_date={date}/manifest.json"));
    let manifest: unionsnap::load::Manifest =
        serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    let folder = format!("{table}/snapshot_date={date}/account_id={account}/");
    let file = manifest
        .files
        .iter()
        .find(|f| f.path.starts_with(&folder))
        .unwrap_or_else(|| panic!("{date} has no {table} partition of {account}"));
    output.join(&file.path)
}

/// The file of `account`'s partition of `table` on `date`: the committed one
/// when the date has a marker, else the one a run landed (and did not
/// commit), else a path that does not exist.
pub fn partition_of(output: &Path, table: &str, date: &str, account: &str) -> PathBuf {
    let marker = output.join(format!("_manifests/snapshot_date={date}/manifest.json"));
    if marker.exists() {
        return committed_partition(output, table, date, account);
    }
    let landed = output.join(format!(
        "_state/snapshot_date={date}/account_id={account}/landed.json"
    ));
    match std::fs::read(&landed) {
        Ok(bytes) => {
            let landed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(landed["table"], table, "{landed}");
            output.join(landed["path"].as_str().unwrap())
        }
        Err(_) => output.join(format!(
            "{table}/snapshot_date={date}/account_id={account}/none"
        )),
    }
}

/// Asserts that the committed snapshot equals the simulator's ground truth.
pub async fn assert_matches_truth(fixture: &Fixture) {
    let snapshot = read_snapshot(&fixture.output_dir()).await;
    let truth = fixture.scenario.truth();
    assert_eq!(
        simulator::audience_rows(&snapshot.audience).unwrap(),
        truth.audience
    );
    assert_eq!(
        simulator::overlap_rows(&snapshot.overlap).unwrap(),
        truth.overlap
    );
}

/// Asserts that the committed snapshot of `date` equals the ground truth of
/// the day the simulator serves now.
pub async fn assert_matches_truth_on(fixture: &Fixture, date: &str) {
    let truth = fixture.server.truth();
    let audience = read_table(&fixture.output_dir(), date, "audience").await;
    let overlap = read_table(&fixture.output_dir(), date, "overlap").await;
    assert_eq!(simulator::audience_rows(&audience).unwrap(), truth.audience);
    assert_eq!(simulator::overlap_rows(&overlap).unwrap(), truth.overlap);
}

/// Every object of a warehouse: (path, Parquet decoded without
/// `profile_fetched_at` — the time of the crawl — or None for JSON).
pub type Tables = Vec<(String, Option<polars::prelude::DataFrame>)>;

fn decode_for_compare(path: &str, bytes: Vec<u8>) -> Option<polars::prelude::DataFrame> {
    if !path.ends_with(".parquet") || path.contains("/_delta_log/") {
        return None;
    }
    let df = unionsnap::load::parquet::decode(bytes.into()).unwrap();
    Some(match df.get_column_index("profile_fetched_at") {
        Some(_) => df.drop("profile_fetched_at").unwrap(),
        None => df,
    })
}

/// Whether `path` is the warehouse's bookkeeping rather than its tables:
/// the leases (one per shard in a sharded run), crawl state and the
/// vacuum's journal.
pub fn is_bookkeeping(path: &str) -> bool {
    ["_leases/", "_state/", "_vacuum/"]
        .iter()
        .any(|folder| path.starts_with(folder))
}

/// `path` with the run id in a data file's name replaced by `RUN` (file
/// names are unique to the run that wrote them), or `None` for the objects
/// two equal warehouses need not share ([`is_bookkeeping`]).
pub fn comparable_path(path: &str) -> Option<String> {
    if is_bookkeeping(path) {
        return None;
    }
    let Some(start) = path.rfind("/part-") else {
        return Some(path.to_string());
    };
    let name = &path[start + "/part-".len()..];
    // part-<YYYYMMDDTHHMMSSZ>-<8 hex>-<n>.parquet
    let run_id_len = "20261121T023000Z-9f3a1c2b".len();
    if name.len() > run_id_len && name.as_bytes()[run_id_len] == b'-' {
        Some(format!(
            "{}/part-RUN{}",
            &path[..start],
            &name[run_id_len..]
        ))
    } else {
        Some(path.to_string())
    }
}

pub fn read_local_tables(root: &Path) -> Tables {
    let mut out: Tables = files_under(root)
        .into_iter()
        .filter_map(|f| {
            let path = comparable_path(&f)?;
            let bytes = std::fs::read(root.join(&f)).unwrap();
            let df = decode_for_compare(&f, bytes);
            Some((path, df))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub async fn read_store_tables(store: &unionsnap::load::Store) -> Tables {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let mut objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    let mut out = Vec::new();
    for object in objects {
        let bytes = store
            .get(&object.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let path = object.location.to_string();
        let Some(comparable) = comparable_path(&path) else {
            continue;
        };
        let df = decode_for_compare(&path, bytes.to_vec());
        out.push((comparable, df));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Same objects, and the same rows in each Parquet file.
#[track_caller]
pub fn assert_same_tables(a: &Tables, b: &Tables) {
    let names = |t: &Tables| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b));
    for ((path, x), (_, y)) in a.iter().zip(b) {
        if let (Some(x), Some(y)) = (x, y) {
            assert!(x.equals_missing(y), "{path} differs:\n{x}\n{y}");
        }
    }
}

/// Every line `out` logged on stderr, each parsed as JSON; panics naming a
/// line that is not.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    (stderr(out).lines())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The run id every JSON line of `out` carries, in its `run` span or (the
/// lines logged around the span) as a field; panics naming a line without
/// one, or on two run ids.
pub fn the_run_id_of_every_line(out: &Output) -> String {
    let mut ids = BTreeMap::new();
    for event in json_lines(out) {
        let in_span = (event["spans"].as_array().into_iter().flatten())
            .find(|s| s["name"] == "run")
            .map(|s| &s["run_id"]);
        let id = in_span
            .or(event["fields"].get("run_id"))
            .and_then(|id| id.as_str())
            .unwrap_or_else(|| panic!("a line without the run's id: {event}"));
        *ids.entry(id.to_string()).or_insert(0) += 1;
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids.into_keys().next().unwrap()
}
