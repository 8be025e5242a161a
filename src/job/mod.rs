//! The job file (`jobs/*.toml`, SPEC §3): what to snapshot, where to write it,
//! and how to talk to WeChat.
//!
//! A job file is read once, at start, and checked strictly: unknown keys,
//! missing secrets, a bad cron expression, a bad URL or duplicate account ids
//! stop the run with the file, the line and the fix ([`JobError`]), before
//! anything is written. The whole schema of SPEC §3 is supported.
//!
//! - `raw`: the serde structs, as written; `api`: the `[api]` section whole;
//!   `reconciliation`: the `[reconciliation]` section whole;
//! - `validate`: from those to the runtime [`Job`], and the order of the checks;
//! - `context`: what every check shares (the file, the environment, ranges);
//! - `accounts`: the `[[accounts]]` tables, their shape, then their values;
//! - `kinds`: the keys of WeCom, app-login and third-party (`auth`) accounts;
//! - `output`: the `output` location; `secrets`: `{ env }` / `{ file }` secrets;
//! - `error`: [`JobError`] and line/column bookkeeping.

mod accounts;
mod api;
mod context;
mod env;
mod error;
mod kinds;
mod output;
mod raw;
mod reconciliation;
mod secrets;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::secret::Secret;
use crate::wechat::ApiConfig;

pub use env::{
    EnvError, EnvSettings, DEFAULT_GROUP_ROWS, DEFAULT_LEASE_TTL, DEFAULT_STATE_RETENTION,
    DEFAULT_VACUUM_RETENTION,
};
pub use error::JobError;
pub use output::OutputLocation;
pub use reconciliation::{Tolerance, DEFAULT_TOLERANCE};

/// A schedule firing more often than this gets a warning from `validate`
/// and `serve`: a snapshot run lists every follower and commits a date.
pub const FREQUENT_SCHEDULE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Columns that `[privacy] drop` may name: descriptive columns that are not
/// needed to count or dedupe people. Ids and join dates are not among them.
pub const DROPPABLE_COLUMNS: &[&str] = &[
    "remark",
    "qr_scene",
    "qr_scene_str",
    "subscribe_scene",
    "language",
    "tagid_list",
    "state",
    "tag_ids",
    "add_way",
    // group_members: the group's name as its owner set it, who invited a
    // member and how.
    "chat_name",
    "invitor",
    "join_scene",
];

/// A validated job: everything a run needs, secrets already read.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job file, as given.
    pub path: PathBuf,
    pub name: String,
    /// For `serve`; cron with seconds first.
    pub schedule: Option<cron::Schedule>,
    /// `snapshot_date` is the local date in this zone (default UTC).
    pub timezone: chrono_tz::Tz,
    pub output: OutputLocation,
    pub api: ApiConfig,
    pub privacy: Privacy,
    /// `[reconciliation] tolerance`: how far our follower count may stray
    /// from WeChat's before a run warns.
    pub reconciliation_tolerance: Tolerance,
    /// In file order; at least one.
    pub accounts: Vec<Account>,
}

/// `[privacy]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privacy {
    /// HMAC every openid/unionid/external_userid (not supported yet: always false).
    pub pseudonymize: bool,
    /// The HMAC key; read only when `pseudonymize` is true, `None` otherwise.
    pub key: Option<Secret>,
    /// Columns never to write, from [`DROPPABLE_COLUMNS`], without duplicates.
    pub drop: Vec<String>,
}

/// One `[[accounts]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stable id, `[a-z0-9_-]+`: the `account_id` partition value.
    pub id: String,
    /// Line of its `[[accounts]]` header in the job file, for later messages.
    pub line: usize,
    pub spec: AccountSpec,
}

impl Account {
    pub fn kind(&self) -> AccountKind {
        match self.spec {
            AccountSpec::OfficialAccount { .. } | AccountSpec::ThirdPartyOfficialAccount { .. } => {
                AccountKind::OfficialAccount
            }
            AccountSpec::Wecom { .. } => AccountKind::Wecom,
            AccountSpec::AppLogins { kind, .. } => kind,
        }
    }

    /// An Official Account's `refresh` (None for the other kinds).
    pub fn refresh(&self) -> Option<Refresh> {
        match &self.spec {
            AccountSpec::OfficialAccount { refresh, .. }
            | AccountSpec::ThirdPartyOfficialAccount { refresh, .. } => Some(*refresh),
            AccountSpec::Wecom { .. } | AccountSpec::AppLogins { .. } => None,
        }
    }
}

/// The kinds of account SPEC §3 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    OfficialAccount,
    Wecom,
    MiniProgram,
    MobileApp,
    Website,
}

impl AccountKind {
    /// Every kind, in the order the help texts list them.
    pub const ALL: [AccountKind; 5] = [
        AccountKind::OfficialAccount,
        AccountKind::Wecom,
        AccountKind::MiniProgram,
        AccountKind::MobileApp,
        AccountKind::Website,
    ];

    /// The `kind = "..."` value (also the `account_kind` column).
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::OfficialAccount => "official_account",
            AccountKind::Wecom => "wecom",
            AccountKind::MiniProgram => "mini_program",
            AccountKind::MobileApp => "mobile_app",
            AccountKind::Website => "website",
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is needed to snapshot one account, per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSpec {
    /// An Official Account with its own AppSecret.
    OfficialAccount {
        appid: String,
        secret: Secret,
        refresh: Refresh,
    },
    /// An Official Account managed through a third-party platform
    /// (`auth = { ... }`): its token comes from the platform's component token.
    ThirdPartyOfficialAccount {
        appid: String,
        auth: ComponentAuth,
        refresh: Refresh,
    },
    /// WeCom customer contacts (`kind = "wecom"`).
    Wecom {
        corpid: String,
        /// The app's own secret, or a third-party app's suite credentials.
        credentials: crate::wechat::WecomCredentials,
        unionid_mode: UnionidMode,
        /// Commit the corp's contacts even when WeCom leaves out those of
        /// staff members without an interop licence (otherwise the account
        /// fails, exit 3).
        allow_unlicensed: bool,
        /// Most idconvert conversions a run makes (`unionid_mode =
        /// "idconvert"`); new UnionIDs go first, the rest wait.
        idconvert_budget: u64,
        /// Read the customer group chats too (`groups`, default true): their
        /// external members are members of the corp, in `group_members`.
        groups: bool,
    },
    /// `mini_program`, `mobile_app` or `website`: no WeChat API lists their
    /// users, so members come from the business's own login export.
    AppLogins {
        kind: AccountKind,
        /// A file, or a folder / prefix of files (CSV, NDJSON, Parquet).
        source: OutputLocation,
    },
}

/// `auth = { component_appid, component_secret, verify_ticket, refresh_token }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentAuth {
    /// The third-party platform's AppID.
    pub component_appid: String,
    pub component_secret: Secret,
    /// The latest `component_verify_ticket` WeChat pushed to the platform.
    pub verify_ticket: Secret,
    /// The account's `authorizer_refresh_token`.
    pub refresh_token: Secret,
    /// Where the ticket and the refresh token come from (a file ticket is
    /// read again at every run; a rotated file token is written back).
    pub origins: crate::wechat::CredentialOrigins,
}

/// idconvert conversions per run when the job sets no `idconvert_budget`:
/// WeChat's hourly limit per corp (100,000 an hour, 480,000 a day:
/// wechat-api.md §4.6).
pub const DEFAULT_IDCONVERT_BUDGET: u64 = 100_000;
/// The most `idconvert_budget` may be: WeChat's daily limit per corp.
pub const MAX_IDCONVERT_BUDGET: i64 = 480_000;

/// How a WeCom account's contacts get their UnionID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnionidMode {
    /// Self-built app: `unionid` comes with the contact details.
    #[default]
    Direct,
    /// Third-party / 代开发 app: contacts come without UnionID and are linked
    /// through `idconvert/unionid_to_external_userid` with the (openid,
    /// unionid) pairs the same run learned from Official Accounts and Mini
    /// Programs.
    Idconvert,
}

impl UnionidMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UnionidMode::Direct => "direct",
            UnionidMode::Idconvert => "idconvert",
        }
    }
}

impl fmt::Display for UnionidMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which followers get a `user/info` profile call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Refresh {
    /// Only OpenIDs not seen in the previous snapshot (an OpenID→UnionID pair never changes).
    #[default]
    New,
    /// Every follower.
    Full,
}

impl Refresh {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresh::New => "new",
            Refresh::Full => "full",
        }
    }
}

impl fmt::Display for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads and validates a job file; secrets come from the process environment
/// and from files.
pub fn load(path: &Path) -> Result<Job, JobError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        JobError::whole_file(
            path,
            format!("cannot read the job file: {err}"),
            Some("check the path given on the command line".to_string()),
        )
    })?;
    parse(&text, path, &|name| std::env::var(name).ok())
}

/// Validates the text of a job file. `path` places errors and anchors
/// relative paths; `env` looks up environment variables (tests pass their own).
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Job, JobError> {
    let src = error::Source { path, text };
    let raw: raw::RawJob = toml::from_str(text).map_err(|err| toml_error(&err, &src))?;
    let cx = context::Context {
        src,
        job_dir: validate::job_dir(path),
        env,
    };
    validate::job(raw, &cx)
}

/// Syntax errors, unknown keys and wrong types, as the TOML parser found them.
/// Its message is kept: for an unknown key it lists the expected ones.
fn toml_error(err: &toml::de::Error, src: &error::Source<'_>) -> JobError {
    let message = err.message().trim_end().to_string();
    let help = if message.starts_with("unknown field") {
        "remove the key or fix its spelling"
    } else if message.starts_with("duplicate key") {
        "a key may appear only once in a table: remove one of them"
    } else if message.starts_with("invalid type") {
        r#"write the value with the type expected: text in quotes, numbers bare, durations as text ("20s"), secrets as { env = "NAME" }"#
    } else {
        "fix the TOML syntax (https://toml.io)"
    };
    let problem = error::Problem::new(message, help);
    match err.span() {
        Some(span) => src.at(span, problem),
        None => src.whole_file(problem),
    }
}

impl Job {
    /// Today's date in the job's timezone: the `snapshot_date` of a run started now.
    pub fn snapshot_date_today(&self) -> chrono::NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.timezone)
            .date_naive()
    }

    /// Keeps only the accounts named (for `--accounts a,b`), in file order.
    pub fn filter_accounts(&mut self, ids: &[String]) -> Result<(), JobError> {
        let known: Vec<&str> = self.accounts.iter().map(|a| a.id.as_str()).collect();
        let unknown: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !known.contains(id))
            .collect();
        if !unknown.is_empty() || ids.is_empty() {
            let message = if ids.is_empty() {
                "--accounts names no account".to_string()
            } else {
                format!(
                    "--accounts names unknown account(s): {}",
                    unknown.join(", ")
                )
            };
            return Err(JobError::whole_file(
                &self.path,
                message,
                Some(format!("accounts in this job: {}", known.join(", "))),
            ));
        }
        self.accounts.retain(|a| ids.contains(&a.id));
        Ok(())
    }

    /// The shortest time between two runs of the schedule, over its next
    /// 1,000 times (None without a schedule or with fewer than two times).
    pub fn shortest_schedule_interval(&self) -> Option<std::time::Duration> {
        let times: Vec<_> = self
            .schedule
            .as_ref()?
            .upcoming(self.timezone)
            .take(1_000)
            .collect();
        times
            .windows(2)
            .filter_map(|pair| (pair[1] - pair[0]).to_std().ok())
            .min()
    }

    /// The schedule `serve` runs on; a job without one is a usage error
    /// (exit 2), named before anything starts.
    pub fn schedule_to_serve(&self) -> Result<&cron::Schedule, JobError> {
        self.schedule.as_ref().ok_or_else(|| {
            JobError::whole_file(
                &self.path,
                "the job has no `schedule`, which `serve` runs on".to_string(),
                Some(r#"add e.g. schedule = "0 30 2 * * *" (cron with seconds), or run `unionsnap run` from cron or another scheduler"#.to_string()),
            )
        })
    }

    /// Why the schedule fires more often than a run can be expected to
    /// finish (under [`FREQUENT_SCHEDULE`]), for `validate` and `serve`.
    pub fn schedule_warning(&self) -> Option<String> {
        let every = self.shortest_schedule_interval()?;
        (every < FREQUENT_SCHEDULE).then(|| {
            format!(
                "the schedule fires as often as every {}: a run (listing every follower, then the commit) usually takes longer, so `serve` will skip the times a run outlasts, and every run of one local date replaces that date's snapshot; a daily schedule such as \"0 30 2 * * *\" is what a snapshot needs",
                humantime::format_duration(every)
            )
        })
    }

    /// A human summary for `unionsnap validate`. Names where things are and
    /// how they are set, never a secret.
    pub fn summary(&self) -> String {
        let mut out = format!("job {} ({})\n", self.name, self.path.display());
        out.push_str(&format!("  output:    {}\n", self.output));
        out.push_str(&format!(
            "  timezone:  {} (snapshot_date today: {})\n",
            self.timezone.name(),
            self.snapshot_date_today()
        ));
        match &self.schedule {
            Some(schedule) => {
                let next = schedule
                    .upcoming(self.timezone)
                    .next()
                    .map_or("never".to_string(), |t| {
                        t.format("%Y-%m-%d %H:%M:%S %Z").to_string()
                    });
                out.push_str(&format!(
                    "  schedule:  {} (next run {next})\n",
                    schedule.source()
                ));
                if let Some(warning) = self.schedule_warning() {
                    out.push_str(&format!("             warning: {warning}\n"));
                }
            }
            None => out.push_str("  schedule:  none (serve needs one; run, merge work without)\n"),
        }
        out.push_str(&api::summary(&self.api));
        out.push_str(&reconciliation::summary(self.reconciliation_tolerance));
        let drop = if self.privacy.drop.is_empty() {
            "nothing".to_string()
        } else {
            self.privacy.drop.join(", ")
        };
        out.push_str(&format!(
            "  privacy:   pseudonymize {}, drop {drop}\n",
            if self.privacy.pseudonymize {
                "on"
            } else {
                "off"
            }
        ));
        out.push_str(&format!("  accounts:  {}\n", self.accounts.len()));
        for account in &self.accounts {
            let detail = match &account.spec {
                AccountSpec::OfficialAccount { appid, refresh, .. } => {
                    format!("appid {appid}, refresh {refresh}")
                }
                AccountSpec::ThirdPartyOfficialAccount {
                    appid,
                    auth,
                    refresh,
                } => format!(
                    "appid {appid}, refresh {refresh}, through third-party platform {}",
                    auth.component_appid
                ),
                AccountSpec::Wecom {
                    corpid,
                    credentials,
                    unionid_mode,
                    allow_unlicensed,
                    idconvert_budget,
                    groups,
                } => format!(
                    "corpid {corpid}{}, unionid_mode {unionid_mode}{}{}, {}",
                    match credentials {
                        crate::wechat::WecomCredentials::Secret(_) => String::new(),
                        crate::wechat::WecomCredentials::Suite(suite) =>
                            format!(" through the suite {}", suite.suite_id),
                    },
                    if *unionid_mode == UnionidMode::Idconvert {
                        format!(" (at most {idconvert_budget} conversions a run)")
                    } else {
                        String::new()
                    },
                    if *allow_unlicensed {
                        ", allow_unlicensed (commits without unlicensed staff's contacts)"
                    } else {
                        ""
                    },
                    if *groups {
                        "contacts and customer groups"
                    } else {
                        "contacts only (groups = false)"
                    }
                ),
                AccountSpec::AppLogins { source, .. } => format!("login export {source}"),
            };
            out.push_str(&format!(
                "    {:<20} {:<18} {detail}\n",
                account.id,
                account.kind()
            ));
        }
        out
    }
}
