//! The `unionsnap` command line: parse arguments, build the job, run it, and
//! map every outcome to a documented exit code. Nothing else lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use tokio_util::sync::CancellationToken;
use unionsnap::job::{self, JobError};
#[cfg(feature = "simulator")]
use unionsnap::ops::demo::demo;
use unionsnap::ops::runner::{shard_accounts, MetricsSinks, Runner};
use unionsnap::ops::{merge::merge_command, preflight, serve, write_html_report, Exit};
use unionsnap::pipeline::bars::Progress;
use unionsnap::pipeline::RunContext;
use unionsnap::shard::Shard;
#[cfg(feature = "simulator")]
use unionsnap::simulator;
use unionsnap::{load, report};

mod allocator;

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
    #[cfg(feature = "simulator")]
    Simulate(simulator::cli::SimulateArgs),
    /// Start the simulator in-process, run jobs/demo.toml against it, print the report.
    #[cfg(feature = "simulator")]
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

fn main() -> ExitCode {
    allocator::tune();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return ExitCode::from(
                if err.use_stderr() {
                    Exit::Usage
                } else {
                    Exit::Ok
                }
                .code(),
            );
        }
    };
    // Bars only on a terminal; log lines then go around them.
    let progress = std::io::stderr().is_terminal().then(Progress::new);
    init_logging(cli.log_format, progress.as_ref());
    // The environment knobs are checked like job keys, before anything runs.
    if let Err(err) = job::EnvSettings::check() {
        eprintln!("error: {err}");
        return ExitCode::from(Exit::Usage.code());
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if matches!(cli.command, Command::Serve { .. }) {
        allocator::tidy_after_each_run(&mut runtime, serve::runs_finished);
    }
    let runtime = match runtime.build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(Exit::Failure.code());
        }
    };
    let outcome = runtime.block_on(dispatch(cli.command, progress));
    // The command is over: whatever it committed is on the store, and what
    // it left running (the blocking file operations of futures it dropped)
    // would be killed with the process anyway, as by any kill, which the
    // warehouse survives by design. The process ends now instead of
    // joining every thread first (~3 ms of a 20k day 2's 0.18 s).
    runtime.shutdown_background();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if let Some(job_err) = err.downcast_ref::<JobError>() {
                eprintln!("error: {job_err}");
                return ExitCode::from(Exit::Usage.code());
            }
            eprintln!("error: {err:#}");
            ExitCode::from(Exit::Failure.code())
        }
    }
}

/// The log filter when `RUST_LOG` is not set: the run's own lines at
/// `info`, the Delta libraries' only from `warn` (at `info` they write a
/// dozen lines of their own for every table a run reads or commits).
const DEFAULT_LOG_FILTER: &str = "info,buoyant_kernel=warn,deltalake_core=warn";

fn init_logging(format: LogFormat, progress: Option<&Progress>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
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

/// A token cancelled on the first SIGTERM or SIGINT. The handlers are
/// installed before this returns, not when a task first runs: a signal that
/// comes as the run starts, while every worker is busy, must not find the
/// default action (death) still in place.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    let signal = wait_for_signal();
    tokio::spawn(async move {
        signal.await;
        tracing::warn!("shutdown requested: finishing what is safe to finish, then exiting");
        cancel.cancel();
    });
    token
}

/// Installs the handlers now; the future ends on the first signal.
#[cfg(unix)]
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listened = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match listened {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (Ok(mut one), Err(error)) | (Err(error), Ok(mut one)) => {
                tracing::warn!(%error, "cannot listen for one of SIGTERM and SIGINT");
                one.recv().await;
            }
            (Err(error), Err(_)) => {
                tracing::warn!(%error, "cannot listen for SIGTERM or SIGINT: only killing stops the process");
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        let _ = ctrl_c.await;
    }
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
            merge_command(job, date, metrics.sinks()).await
        }
        Command::Serve { job, metrics } => {
            let job = job::load(&job)?;
            job.schedule_to_serve()?;
            let mut context = RunContext::new(&job)?;
            context.progress = progress;
            let mut runner = Runner::new(job, context, metrics.sinks());
            let summary = serve::serve(&mut runner, shutdown_on_signal()).await?;
            tracing::info!(
                runs = summary.runs,
                succeeded = summary.succeeded,
                "serve stopped"
            );
            Ok(Exit::Ok.code())
        }
        Command::Vacuum { job, retention } => {
            let job = job::load(&job)?;
            let store = load::open(&job.output)?;
            let retention = retention.unwrap_or_else(load::vacuum::retention);
            let cutoff = load::vacuum::cutoff(retention);
            let done = load::vacuum::vacuum_output(
                &store,
                &job.output,
                cutoff,
                None,
                &Default::default(),
                load::vacuum::Sweep::Whole,
            )
            .await?;
            let (files, bytes) = done
                .values()
                .fold((0, 0), |(f, b), v| (f + v.files, b + v.bytes));
            println!(
                "vacuum: {files} file(s), {bytes} bytes deleted (retention {})",
                humantime::format_duration(retention)
            );
            Ok(Exit::Ok.code())
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
            Ok(Exit::Ok.code())
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
            Ok(Exit::Ok.code())
        }
        Command::Validate { job, online } => {
            let job = job::load(&job)?;
            println!("{}", job.summary());
            println!("  environment: {}", job::EnvSettings::current());
            println!("job file is valid");
            if !online {
                return Ok(Exit::Ok.code());
            }
            let readiness = preflight::check(&job).await;
            println!("\n{readiness}");
            Ok(if readiness.all_ready() {
                Exit::Ok
            } else {
                Exit::Failure
            }
            .code())
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
            print!("{}", report::render(&snapshot, format.into())?);
            if let Some(path) = html {
                write_html_report(&store, Some(snapshot.manifest.snapshot_date), &path).await?;
            }
            Ok(Exit::Ok.code())
        }
        #[cfg(feature = "simulator")]
        Command::Simulate(args) => {
            simulator::cli::run(args).await?;
            Ok(Exit::Ok.code())
        }
        #[cfg(feature = "simulator")]
        Command::Demo { job, days, html } => demo(&job, days, &html, progress).await,
    }
}
