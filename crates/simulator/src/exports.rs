//! Login exports of the simulated Mini Programs, apps and websites: what a
//! business dumps from its own login records, since no WeChat API lists
//! these users (wechat-api.md §5). Written as CSV (RFC 3339 times), NDJSON
//! (Unix-second times, `null` for none) or Parquet (timestamp column), split
//! over several files, with some users logging in twice (a later
//! `first_seen`), so an import must dedupe and keep the earliest time.
//! Every format holds the same members.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use polars::prelude::*;
use serde_json::json;

use super::ids::{derive_key, hash2, unit};
use super::kinds::SimAppKind;
use super::population::World;
use super::profile::DAY0_UNIX;
use super::scenario::Scenario;

const TWO_YEARS_SECS: f64 = 2.0 * 365.0 * 86_400.0;
/// Share of rows without a `first_seen` (older login records lack it).
const NO_FIRST_SEEN: f64 = 0.03;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
    Parquet,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] = [
        ExportFormat::Csv,
        ExportFormat::Ndjson,
        ExportFormat::Parquet,
    ];

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Parquet => "parquet",
        }
    }

    /// What the demo writes for each kind, so that it shows all three.
    pub fn for_demo(kind: SimAppKind) -> ExportFormat {
        match kind {
            SimAppKind::MiniProgram => ExportFormat::Csv,
            SimAppKind::MobileApp => ExportFormat::Ndjson,
            SimAppKind::Website => ExportFormat::Parquet,
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.extension() == s.trim())
            .ok_or_else(|| format!("unknown export format {s:?}: csv, ndjson or parquet"))
    }
}

/// An export that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the scenario has no Mini Program / app / website {0:?}")]
    UnknownApp(String),
    #[error("cannot encode the export as Parquet: {0}")]
    Encode(#[from] PolarsError),
    #[error("cannot write {path}: {source}")]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: object_store::Error,
    },
}

/// One login record.
struct Login {
    openid: String,
    unionid: Option<String>,
    /// Unix seconds.
    first_seen: Option<i64>,
}

/// The login records of one app on the scenario's day: every user once,
/// then again for those who logged in twice (later).
fn logins(scenario: &Scenario, world: &World, app: usize) -> Vec<Login> {
    let model = &world.apps[app];
    let key = derive_key(scenario.seed, &format!("logins/{}", scenario.apps[app].id));
    let repeat_share = scenario.apps[app].repeat_logins;
    let members: Vec<u32> = (0..world.people)
        .filter(|&p| model.users.is_member(p, scenario.day))
        .collect();
    let login = |person: u32, later: i64| {
        let h = |salt: u64| hash2(key ^ salt, u64::from(person));
        let first_seen = (unit(h(1)) >= NO_FIRST_SEEN || later > 0)
            .then(|| DAY0_UNIX - (unit(h(2)) * TWO_YEARS_SECS) as i64 + later);
        Login {
            openid: model.openids.encode(person),
            unionid: model.users.bound.then(|| world.unionids.encode(person)),
            first_seen,
        }
    };
    let mut rows: Vec<Login> = members.iter().map(|&p| login(p, 0)).collect();
    rows.extend(
        members
            .iter()
            .filter(|&&p| unit(hash2(key ^ 3, u64::from(p))) < repeat_share)
            .map(|&p| login(p, 86_400 * (1 + (hash2(key ^ 4, u64::from(p)) % 30) as i64))),
    );
    rows
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn encode(rows: &[Login], format: ExportFormat) -> Result<Vec<u8>, ExportError> {
    match format {
        ExportFormat::Csv => {
            let mut out = String::from("openid,unionid,first_seen\n");
            for row in rows {
                out.push_str(&format!(
                    "{},{},{}\n",
                    row.openid,
                    row.unionid.as_deref().unwrap_or(""),
                    row.first_seen.map(rfc3339).unwrap_or_default()
                ));
            }
            Ok(out.into_bytes())
        }
        ExportFormat::Ndjson => {
            let mut out = String::new();
            for row in rows {
                let line = json!({
                    "openid": row.openid,
                    "unionid": row.unionid,
                    "first_seen": row.first_seen,
                });
                out.push_str(&line.to_string());
                out.push('\n');
            }
            Ok(out.into_bytes())
        }
        ExportFormat::Parquet => {
            let first_seen: Int64Chunked = rows
                .iter()
                .map(|r| r.first_seen.map(|s| s * 1_000_000))
                .collect();
            let mut frame = DataFrame::new(
                rows.len(),
                vec![
                    Column::new(
                        "openid".into(),
                        rows.iter().map(|r| r.openid.as_str()).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "unionid".into(),
                        rows.iter()
                            .map(|r| r.unionid.as_deref())
                            .collect::<Vec<_>>(),
                    ),
                    first_seen
                        .with_name("first_seen".into())
                        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                        .into_column(),
                ],
            )?;
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf).finish(&mut frame)?;
            Ok(buf)
        }
    }
}

/// Writes the login export of app `account_id` as `files` files
/// `prefix/part-00000.<ext>`, … in `store`; returns their keys.
pub async fn write_app_export(
    scenario: &Scenario,
    account_id: &str,
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    format: ExportFormat,
    files: usize,
) -> Result<Vec<String>, ExportError> {
    let app = scenario
        .apps
        .iter()
        .position(|a| a.id == account_id)
        .ok_or_else(|| ExportError::UnknownApp(account_id.to_string()))?;
    let world = World::new(scenario);
    let rows = logins(scenario, &world, app);
    let files = files.max(1);
    let per_file = rows.len().div_ceil(files).max(1);
    let mut keys = Vec::with_capacity(files);
    for (i, chunk) in rows
        .chunks(per_file)
        .chain(std::iter::repeat_n(&[][..], files))
        .take(files)
        .enumerate()
    {
        let key = format!(
            "{}/part-{i:05}.{}",
            prefix.trim_matches('/'),
            format.extension()
        );
        let key = key.trim_start_matches('/').to_string();
        let path = object_store::path::Path::from(key.as_str());
        store
            .put(&path, PutPayload::from(encode(chunk, format)?))
            .await
            .map_err(|source| ExportError::Store {
                path: key.clone(),
                source,
            })?;
        keys.push(key);
    }
    Ok(keys)
}

/// Writes every app's export into the local folder `dir_of(account_id)`
/// (created if missing), as `format_of(kind)`, in `files` files.
/// [`Scenario::export_location`] is where [`Scenario::job_toml`] looks.
pub async fn write_local_exports(
    scenario: &Scenario,
    dir_of: impl Fn(&str) -> std::path::PathBuf,
    format_of: impl Fn(SimAppKind) -> ExportFormat,
    files: usize,
) -> Result<(), ExportError> {
    for app in &scenario.apps {
        let dir = dir_of(&app.id);
        let open = |source| ExportError::Open {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|err| {
            open(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(err),
            })
        })?;
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(open)?);
        write_app_export(scenario, &app.id, &store, "", format_of(app.kind), files).await?;
    }
    Ok(())
}
