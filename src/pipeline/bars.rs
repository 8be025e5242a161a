//! Per-account progress bars on a terminal (indicatif): pages listed,
//! people profiled out of the account's follower count, API calls, ETA.
//!
//! Bars are drawn only when stderr is a terminal; in a pod or under cron the
//! JSON log lines say the same thing. Log lines written while bars are shown
//! go through [`Progress::log_writer`], which lifts the bars out of the way.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::extract::ExtractProgress;
use crate::wechat::CallStats;

const TEMPLATE: &str =
    "{prefix:>16} [{bar:30}] {pos}/{len} people  {msg}  {elapsed_precise} ETA {eta}";

/// The bars of a process, one per account being extracted. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Progress {
    multi: MultiProgress,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// Bars drawn on stderr.
    pub fn new() -> Progress {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        }
    }

    /// Bars drawn nowhere (for tests of the counting).
    pub fn hidden() -> Progress {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
        }
    }

    /// A bar for `account_id`, showing the calls counted in `stats`.
    pub fn account(&self, account_id: &str, stats: Arc<CallStats>) -> AccountBar {
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(style);
        bar.set_prefix(account_id.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        let calls_before = stats.snapshot().total_calls();
        let account = AccountBar {
            bar,
            stats,
            calls_before,
            pages: AtomicU64::new(0),
            listed: AtomicU64::new(0),
        };
        account.refresh_message();
        account
    }

    /// A writer for log lines that does not tear the bars.
    pub fn log_writer(&self) -> ProgressLogWriter {
        ProgressLogWriter {
            multi: self.multi.clone(),
        }
    }
}

/// One account's bar; it is also the extractor's [`ExtractProgress`].
pub struct AccountBar {
    bar: ProgressBar,
    stats: Arc<CallStats>,
    calls_before: u64,
    pages: AtomicU64,
    listed: AtomicU64,
}

impl AccountBar {
    /// `user/get` pages seen so far.
    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }

    /// Members profiled so far (the bar's position).
    pub fn profiled_so_far(&self) -> u64 {
        self.bar.position()
    }

    /// The follower count WeChat reported (the bar's length).
    pub fn total(&self) -> u64 {
        self.bar.length().unwrap_or(0)
    }

    /// The text after the bar: pages, listed, calls.
    pub fn message(&self) -> String {
        let calls = self
            .stats
            .snapshot()
            .total_calls()
            .saturating_sub(self.calls_before);
        format!(
            "{} pages, {} listed, {} calls",
            self.pages(),
            self.listed.load(Ordering::Relaxed),
            calls
        )
    }

    fn refresh_message(&self) {
        self.bar.set_message(self.message());
    }

    /// Leaves the bar on screen with its final counts.
    pub fn finish(&self, ok: bool) {
        self.refresh_message();
        if ok {
            self.bar.finish();
        } else {
            self.bar
                .abandon_with_message(format!("{} — failed", self.message()));
        }
    }
}

impl ExtractProgress for AccountBar {
    fn page_listed(&self, total: u64, listed: u64) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        self.listed.store(listed, Ordering::Relaxed);
        // The list may grow past WeChat's `total` while it is paged.
        self.bar.set_length(total.max(listed));
        self.refresh_message();
    }

    fn profiled(&self, profiled: u64) {
        self.bar.inc(profiled);
        self.refresh_message();
    }
}

/// `std::io::Write` for tracing's text logs: suspends the bars around each line.
#[derive(Clone, Debug)]
pub struct ProgressLogWriter {
    multi: MultiProgress,
}

impl Write for ProgressLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.multi
            .suspend(|| std::io::stderr().write_all(buf))
            .map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ProgressLogWriter {
    type Writer = ProgressLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_counts_pages_people_and_calls_of_its_account() {
        let stats = Arc::new(CallStats::default());
        stats.record("/cgi-bin/stable_token", "ok");
        let bar = Progress::hidden().account("brand_oa", stats.clone());
        stats.record("/cgi-bin/user/get", "ok");
        bar.page_listed(12_000, 10_000);
        stats.record("/cgi-bin/user/get", "ok");
        bar.page_listed(12_000, 12_000);
        for _ in 0..3 {
            stats.record("/cgi-bin/user/info/batchget", "ok");
            bar.profiled(100);
        }
        assert_eq!(
            (bar.pages(), bar.profiled_so_far(), bar.total()),
            (2, 300, 12_000)
        );
        assert_eq!(bar.message(), "2 pages, 12000 listed, 5 calls");
    }

    #[test]
    fn the_length_follows_a_list_that_grew_while_paged() {
        let bar = Progress::hidden().account("brand_oa", Arc::new(CallStats::default()));
        bar.page_listed(10_000, 10_000);
        bar.page_listed(10_000, 10_003);
        assert_eq!(bar.total(), 10_003);
    }
}
