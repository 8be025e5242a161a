//! `unionsnap demo`: the built-in simulator in-process, `jobs/demo.toml`, one
//! snapshot per simulated day into `./warehouse`, every number checked
//! against the simulator's truth, then the report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;

use crate::job::{self, Job};
use crate::pipeline::bars::Progress;
use crate::pipeline::RunContext;
use crate::{load, report, simulator};

use super::runner::{MetricsSinks, Runner};
use super::Exit;

/// `unionsnap demo`: the simulator in-process, `jobs/demo.toml`, `./warehouse`:
/// one snapshot per simulated day, on consecutive dates ending today.
pub async fn demo(
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
    // Day 0 is the first date snapshotted, so WeChat's datacube counts of a
    // snapshot's day before are the simulator's counts of that day.
    server.set_first_date(today - chrono::Days::new(u64::from(days - 1)));
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
        if code != Exit::Ok.code() {
            return Ok(code);
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
    super::write_html_report(&store, Some(today), html).await?;
    println!(
        "\nsimulator ground truth: {}",
        if matches {
            "every number matches"
        } else {
            "MISMATCH"
        }
    );
    server.shutdown().await;
    Ok(if matches { Exit::Ok } else { Exit::Failure }.code())
}

/// Runs `job` for `date` as `unionsnap run` would; returns the exit code.
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
