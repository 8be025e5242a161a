//! `unionsnap simulate`: serve the simulator from the command line, for the
//! demo, manual testing and benchmarks run against a separate process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::exports::{write_local_exports, ExportFormat};
use super::faults::{parse_fault_kinds, FaultKind, Faults};
use super::ids;
use super::kinds::{SimApp, SimCorp, SimPlatform};
use super::scenario::{Scenario, SimAccount, DEFAULT_PAGE_SIZE, DEMO_PEOPLE, DEMO_SEED};
use super::server::start;

/// Arguments of `unionsnap simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub addr: SocketAddr,
    /// Seed of the population, the ids and the secrets.
    #[arg(long, default_value_t = DEMO_SEED)]
    pub seed: u64,
    /// People in the population.
    #[arg(long, default_value_t = DEMO_PEOPLE)]
    pub people: u64,
    /// Simulated day: each day some followers leave and others join.
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Official Accounts as `id:reach[:unbound]`, comma-separated, e.g.
    /// "brand_oa:0.45,legacy_oa:0.1:unbound"; then only these are served.
    /// Default: the demo's accounts of every kind (Official Accounts, one
    /// through a third-party platform, two WeCom corps, a Mini Program, an
    /// app and a website).
    #[arg(long, value_name = "SPEC")]
    pub accounts: Option<String>,
    /// Fraction of each account's listed followers who unfollow during the crawl.
    #[arg(long, default_value_t = 0.0)]
    pub leave_during_crawl: f64,
    /// Fraction of each account's followers who unfollow per day (as many follow).
    #[arg(long, default_value_t = 0.01)]
    pub daily_churn: f64,
    /// Probability that a request gets a fault.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Fault kinds to draw from, comma-separated: busy, minute-limit,
    /// token-invalid, token-expired, http-502, drop, truncate, non-json.
    /// Default: all.
    #[arg(long, value_name = "KINDS")]
    pub faults: Option<String>,
    /// Delay added to every response, e.g. "30ms".
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Access token lifetime, e.g. "2h".
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
    /// OpenIDs per user/get page.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE)]
    pub page_size: usize,
    /// A daily call limit as `PATH=LIMIT`, e.g. "/cgi-bin/user/get=500"; repeatable.
    #[arg(long = "quota", value_name = "PATH=LIMIT")]
    pub quotas: Vec<String>,
    /// Write the ground truth (audience and overlap) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Write DIR/job.toml pointing at this server (output DIR/warehouse),
    /// DIR/secrets.env with the `export VAR=...` lines it needs, and the
    /// login exports of the app accounts under DIR/exports/. Written once
    /// the server answers; each file appears whole, secrets.env last.
    #[arg(long, value_name = "DIR")]
    pub write_job: Option<PathBuf>,
}

/// Parses `id:reach[:unbound]` account specs.
pub fn parse_accounts(
    seed: u64,
    spec: &str,
    leave_during_crawl: f64,
    daily_churn: f64,
) -> anyhow::Result<Vec<SimAccount>> {
    spec.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let fields: Vec<&str> = part.trim().split(':').collect();
            let (id, reach, bound) = match fields[..] {
                [id, reach] => (id, reach, true),
                [id, reach, "unbound"] => (id, reach, false),
                [id, reach, "bound"] => (id, reach, true),
                _ => anyhow::bail!("account spec {part:?} is not id:reach[:unbound]"),
            };
            let reach: f64 = reach.parse().with_context(|| {
                format!("account spec {part:?}: reach {reach:?} is not a number")
            })?;
            Ok(SimAccount {
                bound,
                leave_during_crawl,
                daily_churn,
                ..SimAccount::new(seed, id, reach)
            })
        })
        .collect()
}

fn parse_quotas(quotas: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    quotas
        .iter()
        .map(|quota| {
            let (path, limit) = quota
                .split_once('=')
                .with_context(|| format!("quota {quota:?} is not PATH=LIMIT"))?;
            let limit = limit
                .parse()
                .with_context(|| format!("quota {quota:?}: {limit:?} is not a count"))?;
            Ok((path.to_string(), limit))
        })
        .collect()
}

impl SimulateArgs {
    /// The scenario these arguments describe.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let demo = Scenario::demo();
        let (accounts, platform, corps, apps) = match &self.accounts {
            Some(spec) => (
                parse_accounts(self.seed, spec, self.leave_during_crawl, self.daily_churn)?,
                None,
                Vec::new(),
                Vec::new(),
            ),
            None => {
                let reseed = |account: SimAccount| SimAccount {
                    secret: ids::derived_secret(self.seed, &account.id),
                    leave_during_crawl: self.leave_during_crawl,
                    daily_churn: self.daily_churn,
                    ..account
                };
                let platform = demo.platform.map(|platform| SimPlatform {
                    component_appid: platform.component_appid.clone(),
                    accounts: platform.accounts.into_iter().map(reseed).collect(),
                    ..SimPlatform::new(self.seed, Vec::new())
                });
                let corps = demo
                    .corps
                    .into_iter()
                    .map(|corp| SimCorp {
                        secret: ids::derived_secret(self.seed, &corp.id),
                        daily_churn: self.daily_churn,
                        ..corp
                    })
                    .collect();
                let apps = demo
                    .apps
                    .into_iter()
                    .map(|app| SimApp {
                        daily_churn: self.daily_churn,
                        ..app
                    })
                    .collect();
                (
                    demo.accounts.into_iter().map(reseed).collect(),
                    platform,
                    corps,
                    apps,
                )
            }
        };
        let kinds = match &self.faults {
            Some(list) => parse_fault_kinds(list)?,
            None => FaultKind::all(),
        };
        let scenario = Scenario {
            day: self.day,
            faults: Faults {
                seed: self.seed,
                rate: self.fault_rate,
                kinds,
                latency: self.latency,
            },
            token_ttl: self.token_ttl,
            page_size: self.page_size,
            quotas: parse_quotas(&self.quotas)?,
            platform,
            corps,
            apps,
            ..Scenario::new(self.seed, self.people, accounts)
        };
        scenario.validate()?;
        Ok(scenario)
    }
}

/// Writes the login exports under `dir/exports/`, then `dir/job.toml` and
/// `dir/secrets.env`, for a server at `base_url`. Each file appears whole
/// (written aside, then renamed), and `secrets.env` comes last: once it
/// exists, everything is written. The secrets are never readable by others,
/// not even while being written.
pub async fn write_job_dir(scenario: &Scenario, base_url: &str, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let output = dir.join("warehouse");
    let output_text = output.to_string_lossy().into_owned();
    write_local_exports(
        scenario,
        |id| Scenario::export_location(&output_text, id).into(),
        ExportFormat::for_demo,
        3,
    )
    .await?;
    let job = scenario.job_toml(base_url, &output_text);
    write_whole(&dir.join("job.toml"), job.as_bytes(), 0o644)?;
    let secrets: String = scenario
        .secret_env()
        .into_iter()
        .map(|(var, secret)| format!("export {var}={secret}\n"))
        .collect();
    write_whole(&dir.join("secrets.env"), secrets.as_bytes(), 0o600)
}

/// Writes `path` so that it appears whole: `contents` go to a file beside it
/// (created with `mode` on Unix), which is then renamed over `path`.
fn write_whole(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let aside = path.with_file_name(format!(".{name}.partial"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = options
        .open(&aside)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&aside, path));
    written.with_context(|| format!("cannot write {}", path.display()))
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Serves the simulator until Ctrl-C or SIGTERM. Logs the URL and the
/// accounts (never their secrets).
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let scenario = args.scenario()?;
    let server = start(scenario.clone(), args.addr)
        .await
        .with_context(|| format!("cannot start the simulator on {}", args.addr))?;
    let base_url = server.base_url();
    tracing::info!(
        url = %base_url,
        seed = scenario.seed,
        people = scenario.people,
        day = scenario.day,
        fault_rate = scenario.faults.rate,
        "WeChat API simulator listening"
    );
    for account in &scenario.accounts {
        tracing::info!(
            account = %account.id,
            appid = %account.appid,
            reach = account.reach,
            bound = account.bound,
            secret_env = %Scenario::secret_env_var(&account.id),
            "simulated Official Account"
        );
    }
    for (account, kind) in scenario.account_ids().iter().skip(scenario.accounts.len()) {
        tracing::info!(account = %account, kind = %kind, "simulated account");
    }
    if let Some(dir) = &args.write_job {
        write_job_dir(&scenario, &base_url, dir).await?;
        tracing::info!(dir = %dir.display(), "wrote job.toml and secrets.env");
    }
    if let Some(path) = &args.truth {
        let truth = scenario.truth();
        let json = serde_json::to_string_pretty(&truth)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the ground truth");
    }
    shutdown_signal()
        .await
        .context("cannot listen for Ctrl-C / SIGTERM")?;
    tracing::info!("stopping the simulator");
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parse(args: &[&str]) -> SimulateArgs {
        Cli::parse_from(std::iter::once("simulate").chain(args.iter().copied())).args
    }

    #[test]
    fn defaults_describe_the_demo() {
        let scenario = parse(&[]).scenario().unwrap();
        let demo = Scenario::demo();
        assert_eq!(scenario.accounts, demo.accounts);
        assert_eq!(scenario.platform, demo.platform);
        assert_eq!(scenario.corps, demo.corps);
        assert_eq!(scenario.apps, demo.apps);
        assert_eq!((scenario.seed, scenario.people), (DEMO_SEED, DEMO_PEOPLE));
    }

    #[test]
    fn account_specs_faults_and_quotas_parse() {
        let args = parse(&[
            "--accounts",
            "brand_oa:0.45,legacy_oa:0.1:unbound",
            "--faults",
            "busy,drop",
            "--fault-rate",
            "0.1",
            "--latency",
            "30ms",
            "--quota",
            "/cgi-bin/user/get=500",
        ]);
        let scenario = args.scenario().unwrap();
        let accounts: Vec<_> = scenario
            .accounts
            .iter()
            .map(|a| (a.id.as_str(), a.reach, a.bound))
            .collect();
        assert_eq!(
            accounts,
            [("brand_oa", 0.45, true), ("legacy_oa", 0.1, false)]
        );
        assert_eq!(scenario.faults.kinds, [FaultKind::Busy, FaultKind::Drop]);
        assert_eq!(scenario.faults.latency, Duration::from_millis(30));
        assert_eq!(scenario.quotas["/cgi-bin/user/get"], 500);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(parse(&["--accounts", "brand_oa"]).scenario().is_err());
        assert!(parse(&["--accounts", "a:x"]).scenario().is_err());
        assert!(parse(&["--accounts", "a:0.5:weird"]).scenario().is_err());
        assert!(parse(&["--faults", "slow"]).scenario().is_err());
        assert!(parse(&["--fault-rate", "2"]).scenario().is_err());
    }

    #[tokio::test]
    async fn write_job_dir_writes_job_secrets_and_exports() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario::demo();
        write_job_dir(&scenario, "http://127.0.0.1:9", dir.path())
            .await
            .unwrap();
        for app in &scenario.apps {
            let exports = dir.path().join("exports").join(&app.id);
            assert_eq!(std::fs::read_dir(exports).unwrap().count(), 3, "{}", app.id);
        }
        let job = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
        let secrets = std::fs::read_to_string(dir.path().join("secrets.env")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets.env"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "secrets.env is the owner's only");
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");
        assert!(job.contains("http://127.0.0.1:9"));
        assert!(job.contains("warehouse"));
        for account in &scenario.accounts {
            assert!(!job.contains(&account.secret));
            assert!(secrets.contains(&format!(
                "export {}={}\n",
                Scenario::secret_env_var(&account.id),
                account.secret
            )));
        }
    }
}
