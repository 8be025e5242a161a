//! The `unionsnap` command line: parse arguments, build the job, run it, and
//! map every outcome to a documented exit code. Nothing else lives here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use unionsnap::job::{self, Job, JobError};
use unionsnap::pipeline::{self, AccountOutcome, RunOptions};
use unionsnap::{load, report, simulator};

const EXIT_CODES: &str = "\
Exit codes:
  0  every account snapshotted and the snapshot committed
  1  any other failure (output store unreachable, a bug-class API error, ...)
  2  bad job file or arguments; nothing was written
  3  partial: some accounts failed or ran out of quota; the others are written,
     the snapshot is not marked complete (no manifest); re-run to finish
  4  another run of the same job and date holds the lease; nothing was written
     (the lease expires after UNIONSNAP_LEASE_TTL, default 10m, if its holder died)";

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
    },
    /// Check the job file (syntax, keys, secrets present) without calling WeChat.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// The job file.
        job: PathBuf,
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
        #[arg(long)]
        html: Option<PathBuf>,
        /// How to print the summary.
        #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
        format: SummaryFormat,
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
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.with_target(false).init();
    }
}

async fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Run {
            job,
            date,
            accounts,
        } => {
            let mut job = job::load(&job)?;
            if !accounts.is_empty() {
                job.filter_accounts(&accounts)?;
            }
            run_job(&job, date).await
        }
        Command::Validate { job } => {
            let job = job::load(&job)?;
            println!("{}", job.summary());
            println!("job file is valid");
            Ok(0)
        }
        Command::Report {
            output,
            date,
            html,
            format,
        } => {
            let location = job::OutputLocation::parse_cli(&output)?;
            let store = load::open(&location)?;
            let snapshot = report::read_snapshot(&store, date).await?;
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
        Command::Demo { job, days, html } => demo(&job, days, &html).await,
    }
}

async fn run_job(job: &Job, date: Option<NaiveDate>) -> anyhow::Result<u8> {
    let date = date.unwrap_or_else(|| job.snapshot_date_today());
    let opts = RunOptions {
        date,
        run_id: new_run_id(),
    };
    tracing::info!(job = %job.name, snapshot_date = %date, run_id = %opts.run_id, output = %job.output, "run starts");
    let summary = match pipeline::run(job, &opts).await {
        Ok(summary) => summary,
        Err(pipeline::RunError::LeaseHeld(held)) => {
            eprintln!("error: {held}");
            return Err(Exit(4).into());
        }
        Err(error) => return Err(error.into()),
    };
    for outcome in &summary.accounts {
        if let AccountOutcome::Failed {
            account_id, error, ..
        } = outcome
        {
            eprintln!("account {account_id} failed: {error}");
        }
    }
    if summary.is_complete() {
        tracing::info!(job = %job.name, snapshot_date = %date, "snapshot committed");
        Ok(0)
    } else {
        eprintln!(
            "snapshot {date} is partial: {} failed; the other accounts are written, no manifest; re-run to finish",
            summary.failed_accounts().join(", ")
        );
        Ok(3)
    }
}

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

fn new_run_id() -> String {
    format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

/// `unionsnap demo`: the simulator in-process, `jobs/demo.toml`, `./warehouse`:
/// one snapshot per simulated day, on consecutive dates ending today.
async fn demo(job_path: &Path, days: u32, html: &Path) -> anyhow::Result<u8> {
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
    simulator::exports::write_local_exports(
        &server.scenario(),
        dir_of,
        simulator::ExportFormat::for_demo,
        3,
    )
    .await
    .context("cannot write the demo's login exports")?;
    eprintln!(
        "demo: simulator on {}, {} accounts, {days} day(s), writing {}",
        server.base_url(),
        job.accounts.len(),
        job.output
    );
    let store = load::open(&job.output)?;
    let today = job.snapshot_date_today();
    let mut matches = true;
    for day in 0..days {
        let date = today - chrono::Days::new(u64::from(days - 1 - day));
        // Rebuilding 30,000 people's follower lists takes milliseconds.
        server.set_day(day);
        let code = run_job(&job, Some(date)).await?;
        if code != 0 {
            return Err(Exit(code).into());
        }
        let snapshot = report::read_snapshot(&store, Some(date)).await?;
        let truth = server.truth();
        matches &= simulator::truth_matches(&truth, &snapshot.audience, &snapshot.overlap)?;
        if day > 0 {
            // Day 0's previous snapshot may be an older demo's: only later
            // days are compared with the simulator's own previous day.
            let changes = server.scenario().changes_since(day - 1);
            matches &= simulator::change_counts(&snapshot.audience)? == changes.counts;
        }
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
