//! The `unionsnap` command line: parse arguments, build the job, run it, and
//! map every outcome to a documented exit code. Nothing else lives here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use tokio_util::sync::CancellationToken;
use unionsnap::job::{self, Job, JobError};
use unionsnap::merge::MergeOutcome;
use unionsnap::metrics::{RunOutcome, RunReport};
use unionsnap::pipeline::RunContext;
use unionsnap::progress::Progress;
use unionsnap::runner::{MetricsSinks, Runner};
use unionsnap::shard::Shard;
use unionsnap::{load, merge, preflight, report, serve, simulator};

/// polars and the HTTP client allocate small buffers from several threads at
/// a high rate; glibc's malloc took a fifth of the crawl's CPU (perf, `make
/// bench` case c). mimalloc is what polars itself recommends. It keeps freed
/// pages for reuse, so a long `serve` settles higher (README "Guarantees";
/// `MIMALLOC_PURGE_DELAY=0` returns them at once).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_CODES: &str = "\
Exit codes:
  0  every account snapshotted and the snapshot committed
  1  any other failure (output store unreachable, a bug-class API error, ...)
  2  bad job file, arguments or UNIONSNAP_* environment setting; nothing was written
  3  partial: some accounts failed or ran out of quota; the others are landed,
     nothing is committed (a committed snapshot of the date stays as it was);
     re-run to finish
  4  another run of the same job and date holds the lease, or this run lost it
     (paused or stalled past it) to a later run; this run committed nothing
     (the lease expires after UNIONSNAP_LEASE_TTL, default 10m, if its holder died)
`run --shard I/N` exits 0 when its accounts landed (raw partitions, nothing committed);
`merge` exits 3 naming the accounts with no partition landed since the date's last commit;
`serve` exits 0 on SIGTERM/SIGINT; `validate --online` exits 1 if a check failed.";

/// Snapshot the followers and contacts of every WeChat account bound to one
/// Open Platform account, dedupe people on UnionID, and write Hive-partitioned
/// Parquet.
#[derive(Parser, Debug)]
#[command(name = "unionsnap", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `auto` is text on a terminal, JSON lines otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Take one snapshot now, then exit (for cron and Kubernetes CronJobs).
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The job file.
        job: PathBuf,
        /// Snapshot date (YYYY-MM-DD); default: today in the job's timezone.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Only these accounts (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        accounts: Vec<String>,
        /// Extract only shard I of N (0-based): raw partitions landed, no
        /// derived tables, nothing committed; `merge` commits. Default: from
        /// JOB_COMPLETION_INDEX and UNIONSNAP_SHARD_COUNT when both are set.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        #[command(flatten)]
        metrics: MetricsArgs,
    },
    /// Build the derived tables of a date from every account's raw partitions
    /// (after a sharded run) and commit it.
    #[command(after_help = EXIT_CODES)]
    Merge {
        /// The job file.
        job: PathBuf,
        /// Snapshot date (YYYY-MM-DD); default: today in the job's timezone.
        #[arg(long)]
        date: Option<NaiveDate>,
        #[command(flatten)]
        metrics: MetricsArgs,
    },
    /// Delete the files no reader may still need: replaced by a re-run, or
    /// left by failed and killed runs, once older than the retention period
    /// (every committed run also vacuums at its end).
    Vacuum {
        /// The job file.
        job: PathBuf,
        /// Keep files replaced or orphaned less than this long ago (e.g.
        /// "24h", "30m"); default: UNIONSNAP_VACUUM_RETENTION or 24h.
        #[arg(long, value_parser = humantime::parse_duration)]
        retention: Option<std::time::Duration>,
    },
    /// List the committed snapshots: date, run, lease epoch, the Delta
    /// version of every table and row counts.
    History {
        /// The output location (path or URL) the job writes to.
        output: String,
        /// How to print it.
        #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
        format: SummaryFormat,
    },
    /// Adopt a warehouse written before the tables were Delta tables: every
    /// complete date is committed to the Delta tables as it is, its marker
    /// rewritten. Run it once, while no run writes the output.
    Migrate {
        /// The output location (path or URL).
        output: String,
    },
    /// Stay up and run the job on its cron schedule; SIGTERM stops cleanly.
    #[command(after_help = EXIT_CODES)]
    Serve {
        /// The job file (must have a `schedule`).
        job: PathBuf,
        #[command(flatten)]
        metrics: MetricsArgs,
    },
    /// Check the job file (syntax, keys, secrets present); `--online` also
    /// checks every account and the output store.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// The job file.
        job: PathBuf,
        /// Also fetch a token per account, check that UnionIDs come back, and
        /// write and delete a probe object in the output.
        #[arg(long)]
        online: bool,
    },
    /// Print the audience summary of a complete snapshot; optionally write
    /// the HTML report with charts.
    Report {
        /// The output location (path or URL) the job writes to.
        output: String,
        /// Snapshot date; default: the latest complete one.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Also write a self-contained HTML report with charts to this file.
        #[arg(long, conflicts_with = "as_of")]
        html: Option<PathBuf>,
        /// How to print the summary.
        #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
        format: SummaryFormat,
        /// The snapshot as it stood at an earlier point: a version of the
        /// `audience` table (`unionsnap history` lists them) or a UTC time
        /// (2026-11-21T08:00:00Z); read from the Delta tables.
        #[arg(long)]
        as_of: Option<load::history::AsOf>,
    },
    /// Serve the built-in WeChat API simulator.
    Simulate(simulator::cli::SimulateArgs),
    /// Start the simulator in-process, run jobs/demo.toml against it, print the report.
    Demo {
        /// The demo job file.
        #[arg(long, default_value = "jobs/demo.toml")]
        job: PathBuf,
        /// Simulated days to snapshot, one date each, ending today (so the
        /// report has a trend and joined/left).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Write the HTML report here.
        #[arg(long, default_value = "report.html")]
        html: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
    Csv,
}

impl From<SummaryFormat> for report::Format {
    fn from(format: SummaryFormat) -> Self {
        match format {
            SummaryFormat::Text => report::Format::Text,
            SummaryFormat::Json => report::Format::Json,
            SummaryFormat::Csv => report::Format::Csv,
        }
    }
}

/// Where the metrics of a run go.
#[derive(clap::Args, Debug, Clone, Default)]
struct MetricsArgs {
    /// Write Prometheus text-format metrics to FILE at the end of each run.
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Push the same metrics to this Pushgateway at the end of each run
    /// (URL/metrics/job/unionsnap/unionsnap_job/NAME[/shard/I]).
    #[arg(long, value_name = "URL")]
    pushgateway: Option<url::Url>,
}

impl MetricsArgs {
    fn sinks(self) -> MetricsSinks {
        MetricsSinks {
            file: self.metrics_file,
            pushgateway: self.pushgateway,
        }
    }
}

/// Errors already explained to the user, with their exit code.
#[derive(Debug)]
struct Exit(u8);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    // Bars only on a terminal; log lines then go around them.
    let progress = std::io::stderr().is_terminal().then(Progress::new);
    init_logging(cli.log_format, progress.as_ref());
    // The environment knobs are checked like job keys, before anything runs.
    if let Err(err) = job::EnvSettings::check() {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command, progress)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if let Some(job_err) = err.downcast_ref::<JobError>() {
                eprintln!("error: {job_err}");
                return ExitCode::from(2);
            }
            if let Some(Exit(code)) = err.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn init_logging(format: LogFormat, progress: Option<&Progress>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (progress, json) {
        (Some(progress), true) => builder
            .with_writer(progress.log_writer())
            .json()
            .with_current_span(true)
            .init(),
        (Some(progress), false) => builder
            .with_writer(progress.log_writer())
            .with_target(false)
            .init(),
        (None, true) => builder
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
            .init(),
        (None, false) => builder
            .with_writer(std::io::stderr)
            .with_target(false)
            .init(),
    }
}

/// A token cancelled on the first SIGTERM or SIGINT.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!("shutdown requested: finishing what is safe to finish, then exiting");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops cleanly");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn dispatch(command: Command, progress: Option<Progress>) -> anyhow::Result<u8> {
    match command {
        Command::Run {
            job,
            date,
            accounts,
            shard,
            metrics,
        } => {
            let mut job = job::load(&job)?;
            if !accounts.is_empty() {
                // Checked against the job; the job stays whole: the date's
                // other accounts are kept as committed.
                job.clone().filter_accounts(&accounts)?;
            }
            let shard = Shard::from_cli_or_env(shard.as_deref(), &|var| std::env::var(var).ok())
                .map_err(|err| JobError::whole_file(&job.path, err.to_string(), None))?;
            let date = date.unwrap_or_else(|| job.snapshot_date_today());
            if let Some(shard) = shard {
                let ids = shard_accounts(&job, shard, date).await?;
                job.accounts.retain(|a| ids.contains(&a.id));
                tracing::info!(%shard, accounts = %ids.join(","), "this shard's accounts");
            }
            let mut context = RunContext::new(&job)?;
            context.shard = shard;
            context.only = (!accounts.is_empty()).then_some(accounts);
            context.progress = progress;
            context.cancel = shutdown_on_signal();
            let mut runner = Runner::new(job, context, metrics.sinks());
            let end = runner.run(date).await;
            if let Some(error) = &end.error {
                eprintln!("error: {error}");
            }
            Ok(end.exit_code)
        }
        Command::Merge { job, date, metrics } => {
            let job = job::load(&job)?;
            merge_job(job, date, metrics.sinks()).await
        }
        Command::Serve { job, metrics } => {
            let job = job::load(&job)?;
            if job.schedule.is_none() {
                return Err(JobError::whole_file(
                    &job.path,
                    "the job has no `schedule`, which `serve` runs on".to_string(),
                    Some(r#"add e.g. schedule = "0 30 2 * * *" (cron with seconds), or run `unionsnap run` from cron"#.to_string()),
                )
                .into());
            }
            let mut context = RunContext::new(&job)?;
            context.progress = progress;
            let mut runner = Runner::new(job, context, metrics.sinks());
            let summary = serve::serve(&mut runner, shutdown_on_signal()).await?;
            tracing::info!(
                runs = summary.runs,
                succeeded = summary.succeeded,
                "serve stopped"
            );
            Ok(0)
        }
        Command::Vacuum { job, retention } => {
            let job = job::load(&job)?;
            let store = load::open(&job.output)?;
            let retention = retention.unwrap_or_else(load::vacuum::retention);
            let done = load::vacuum::vacuum_output(&store, &job.output, retention).await?;
            let (files, bytes) = done
                .values()
                .fold((0, 0), |(f, b), v| (f + v.files, b + v.bytes));
            println!(
                "vacuum: {files} file(s), {bytes} bytes deleted (retention {})",
                humantime::format_duration(retention)
            );
            Ok(0)
        }
        Command::Migrate { output } => {
            let location = job::OutputLocation::parse_cli(&output)?;
            let store = load::open(&location)?;
            let adopted = load::migrate::migrate(&store).await?;
            println!(
                "migrate: {} date(s) adopted into the Delta tables{}",
                adopted.len(),
                if adopted.is_empty() {
                    String::new()
                } else {
                    format!(" ({} to {})", adopted[0], adopted[adopted.len() - 1])
                }
            );
            Ok(0)
        }
        Command::History { output, format } => {
            let location = job::OutputLocation::parse_cli(&output)?;
            let store = load::open(&location)?;
            let history = load::history::snapshots(&store).await?;
            let format = match format {
                SummaryFormat::Text => load::history::HistoryFormat::Text,
                SummaryFormat::Json => load::history::HistoryFormat::Json,
                SummaryFormat::Csv => load::history::HistoryFormat::Csv,
            };
            print!("{}", load::history::render(&history, format));
            Ok(0)
        }
        Command::Validate { job, online } => {
            let job = job::load(&job)?;
            println!("{}", job.summary());
            println!("  environment: {}", job::EnvSettings::current());
            println!("job file is valid");
            if !online {
                return Ok(0);
            }
            let readiness = preflight::check(&job).await;
            println!("\n{readiness}");
            Ok(if readiness.all_ready() { 0 } else { 1 })
        }
        Command::Report {
            output,
            date,
            html,
            format,
            as_of,
        } => {
            let location = job::OutputLocation::parse_cli(&output)?;
            let store = load::open(&location)?;
            let snapshot = match as_of {
                Some(as_of) => report::read_snapshot_as_of(&store, date, as_of).await?,
                None => report::read_snapshot(&store, date).await?,
            };
            print!("{}", render_summary(&snapshot, format.into())?);
            if let Some(path) = html {
                write_html_report(&store, Some(snapshot.manifest.snapshot_date), &path).await?;
            }
            Ok(0)
        }
        Command::Simulate(args) => {
            simulator::cli::run(args).await?;
            Ok(0)
        }
        Command::Demo { job, days, html } => demo(&job, days, &html, progress).await,
    }
}

async fn run_job(
    job: &Job,
    date: Option<NaiveDate>,
    progress: Option<Progress>,
) -> anyhow::Result<u8> {
    let date = date.unwrap_or_else(|| job.snapshot_date_today());
    let mut context = RunContext::new(job)?;
    context.progress = progress;
    let mut runner = Runner::new(job.clone(), context, MetricsSinks::default());
    let end = runner.run(date).await;
    if let Some(error) = end.error {
        anyhow::bail!(error);
    }
    Ok(end.exit_code)
}

/// The accounts of `shard`, balanced by their size in the latest complete
/// snapshot before `date` (see `unionsnap::shard`).
async fn shard_accounts(job: &Job, shard: Shard, date: NaiveDate) -> anyhow::Result<Vec<String>> {
    let store = load::open(&job.output)?;
    let mut sizes = std::collections::BTreeMap::new();
    if let Some(manifest) = load::history::previous_manifest(&store, date).await? {
        for account in manifest.accounts {
            sizes.insert(account.account_id, account.members);
        }
    }
    let ids: Vec<&str> = job.accounts.iter().map(|a| a.id.as_str()).collect();
    Ok(unionsnap::shard::accounts_of(shard, &ids, &sizes)
        .into_iter()
        .map(str::to_owned)
        .collect())
}

/// `unionsnap merge`: commit a date from the shards' raw partitions.
async fn merge_job(job: Job, date: Option<NaiveDate>, sinks: MetricsSinks) -> anyhow::Result<u8> {
    let date = date.unwrap_or_else(|| job.snapshot_date_today());
    let run_id = unionsnap::runner::new_run_id();
    tracing::info!(job = %job.name, snapshot_date = %date, run_id = %run_id, "merge starts");
    let started = std::time::Instant::now();
    let context = RunContext::new(&job)?;
    let outcome = match merge::merge(&job, date, &run_id).await {
        Ok(outcome) => outcome,
        Err(unionsnap::pipeline::RunError::LeaseHeld(held)) => {
            eprintln!("error: {held}");
            return Ok(unionsnap::runner::EXIT_LEASE_HELD);
        }
        Err(unionsnap::pipeline::RunError::Load(lost @ load::LoadError::LeaseLost { .. })) => {
            eprintln!("error: {lost}");
            return Ok(unionsnap::runner::EXIT_LEASE_HELD);
        }
        Err(error) => return Err(error.into()),
    };
    let mut runner = Runner::new(job, context, sinks);
    match outcome {
        MergeOutcome::Missing(accounts) => {
            eprintln!(
                "snapshot {date} cannot be merged: no raw partition for {} — their shards have not landed or failed; re-run those shards, then merge again",
                accounts.join(", ")
            );
            runner
                .publish(&RunReport {
                    outcome: RunOutcome::Partial,
                    duration: started.elapsed(),
                    finished_at: chrono::Utc::now(),
                    files: &[],
                    accounts: &[],
                    audience: None,
                })
                .await;
            Ok(3)
        }
        MergeOutcome::Committed(committed) => {
            let derived: Vec<_> = committed
                .manifest
                .files
                .iter()
                .filter(|f| DERIVED_TABLES.contains(&f.table.as_str()))
                .cloned()
                .collect();
            let accounts: Vec<_> = committed
                .manifest
                .accounts
                .iter()
                .map(|a| unionsnap::pipeline::AccountOutcome::Snapshotted {
                    account_id: a.account_id.clone(),
                    members: a.members,
                })
                .collect();
            runner
                .publish(&RunReport {
                    outcome: RunOutcome::Complete,
                    duration: started.elapsed(),
                    finished_at: chrono::Utc::now(),
                    files: &derived,
                    accounts: &accounts,
                    audience: Some(&committed.audience),
                })
                .await;
            tracing::info!(job = %runner.job.name, snapshot_date = %date, run_id = %run_id, "snapshot committed");
            Ok(0)
        }
    }
}

/// The tables `merge` writes itself (the raw ones were written by the shards).
const DERIVED_TABLES: [&str; 5] = [
    load::layout::IDENTITIES,
    load::layout::PEOPLE,
    load::layout::AUDIENCE,
    load::layout::OVERLAP,
    load::layout::CHANGES,
];

fn render_summary(snapshot: &report::Snapshot, format: report::Format) -> anyhow::Result<String> {
    Ok(match format {
        report::Format::Text => report::render_text(snapshot)?,
        report::Format::Json => report::render_json(snapshot)?,
        report::Format::Csv => report::render_csv(snapshot)?,
    })
}

async fn write_html_report(
    store: &load::Store,
    date: Option<NaiveDate>,
    path: &Path,
) -> anyhow::Result<()> {
    let data = report::read_report(store, date).await?;
    let page = report::render_html(&data)?;
    std::fs::write(path, page)
        .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
    eprintln!("HTML report: {}", path.display());
    Ok(())
}

/// `unionsnap demo`: the simulator in-process, `jobs/demo.toml`, `./warehouse`:
/// one snapshot per simulated day, on consecutive dates ending today.
async fn demo(
    job_path: &Path,
    days: u32,
    html: &Path,
    progress: Option<Progress>,
) -> anyhow::Result<u8> {
    let scenario = simulator::Scenario::demo();
    let secrets = scenario.secret_env();
    let server = simulator::start(scenario, "127.0.0.1:0".parse()?)
        .await
        .context("cannot start the simulator")?;
    let text = std::fs::read_to_string(job_path)
        .with_context(|| format!("cannot read {}", job_path.display()))?;
    let lookup = |name: &str| {
        secrets
            .iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let mut job = job::parse(&text, job_path, &lookup)?;
    job.api.base_url = server.base_url();
    job.api.wecom_base_url = server.base_url();
    // The app accounts read login exports: write them where the job looks.
    let sources: Vec<(String, PathBuf)> = job
        .accounts
        .iter()
        .filter_map(|account| match &account.spec {
            job::AccountSpec::AppLogins {
                source: job::OutputLocation::Local(dir),
                ..
            } => Some((account.id.clone(), dir.clone())),
            _ => None,
        })
        .collect();
    let dir_of = |id: &str| {
        sources
            .iter()
            .find(|(account, _)| account == id)
            .map(|(_, dir)| dir.clone())
            .unwrap_or_else(|| job_path.with_file_name("exports").join(id))
    };
    eprintln!(
        "demo: simulator on {}, {} accounts, {days} day(s), writing {}",
        server.base_url(),
        job.accounts.len(),
        job.output
    );
    let store = load::open(&job.output)?;
    let today = job.snapshot_date_today();
    let mut matches = true;
    let mut previous_truth = server.truth();
    for day in 0..days {
        let date = today - chrono::Days::new(u64::from(days - 1 - day));
        // Rebuilding 30,000 people's follower lists takes milliseconds.
        server.set_day(day);
        // The app accounts read the business's login export of that day.
        simulator::exports::write_local_exports(
            &server.scenario(),
            dir_of,
            simulator::ExportFormat::for_demo,
            3,
        )
        .await
        .context("cannot write the demo's login exports")?;
        let code = run_job(&job, Some(date), progress.clone()).await?;
        if code != 0 {
            return Err(Exit(code).into());
        }
        let snapshot = report::read_snapshot(&store, Some(date)).await?;
        let truth = server.truth();
        matches &= simulator::truth_matches(&truth, &snapshot.audience, &snapshot.overlap)?;
        if day > 0 {
            // Day 0's previous snapshot may be an older demo's: only later
            // days are compared with the simulator's own previous day. The
            // simulator's change truth covers Official Accounts row by row;
            // every account (and `*`) must at least balance: what joined
            // minus what left is what the count moved by.
            let changes = server.scenario().changes_since(day - 1);
            let got = simulator::change_counts(&snapshot.audience)?;
            let official: Vec<_> = got
                .iter()
                .filter(|c| {
                    changes
                        .counts
                        .iter()
                        .any(|t| t.account_id == c.account_id && t.account_id != "*")
                })
                .cloned()
                .collect();
            let expected: Vec<_> = changes
                .counts
                .iter()
                .filter(|t| t.account_id != "*")
                .cloned()
                .collect();
            matches &= official == expected;
            for counts in &got {
                let count = |t: &simulator::Truth| {
                    t.row(&counts.account_id)
                        .map(|r| {
                            r.unique_people
                                .filter(|_| r.account_id == "*")
                                .unwrap_or(r.members)
                        })
                        .unwrap_or(0)
                };
                matches &= count(&truth) - count(&previous_truth) == counts.joined - counts.left;
            }
        }
        previous_truth = truth;
    }
    let snapshot = report::read_snapshot(&store, Some(today)).await?;
    print!("{}", report::render_text(&snapshot)?);
    write_html_report(&store, Some(today), html).await?;
    println!(
        "\nsimulator ground truth: {}",
        if matches {
            "every number matches"
        } else {
            "MISMATCH"
        }
    );
    server.shutdown().await;
    Ok(if matches { 0 } else { 1 })
}
