//! `unionsnap validate JOB.toml --online`: is everything outside the job file
//! ready? For every account: can we get a token (AppID, AppSecret, IP
//! whitelist), list followers (permission), and do UnionIDs come back (is the
//! account bound to the Open Platform account)? For the output: can we write
//! and delete an object? The answer is a table of what is ready and what to fix.
//!
//! The calls are the cheapest that prove each point: one token, one
//! `user/get` page, one `user/info/batchget` of a few OpenIDs per account.
//! Nothing is written to the warehouse except a probe object, deleted at once.

use std::fmt;

use object_store::{path::Path, ObjectStoreExt, PutPayload};

use crate::job::{AccountSpec, Job};
use crate::load;
use crate::pipeline::clients::Clients;
use crate::wechat::{ApiError, WeComClient};

/// OpenIDs sampled per account to see whether UnionIDs come back.
pub const SAMPLE: usize = 5;
/// The folder of the output probe (deleted again at once).
pub const PROBE_PREFIX: &str = "_unionsnap_probe";

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Ready.
    Ready,
    /// Ready, but worth knowing (an unbound account: its followers will count
    /// as unresolved; an account without followers: binding cannot be seen).
    Warn,
    /// Not ready: the detail says what to fix.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "ready",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `account brand_oa`, `output s3://...`.
    pub subject: String,
    pub status: Status,
    /// What was seen, and what to fix when it is not ready.
    pub detail: String,
}

/// Every check of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub checks: Vec<Check>,
}

impl Readiness {
    /// True when nothing failed (warnings do not stop a run).
    pub fn all_ready(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .checks
            .iter()
            .map(|c| c.subject.chars().count())
            .max()
            .unwrap_or(0)
            .max("check".len());
        writeln!(f, "{:<width$}  {:<6}  detail", "check", "status")?;
        for check in &self.checks {
            writeln!(
                f,
                "{:<width$}  {:<6}  {}",
                check.subject,
                check.status.as_str(),
                check.detail
            )?;
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        if failed == 0 {
            write!(f, "ready: every check passed")
        } else {
            write!(f, "not ready: {failed} check(s) to fix")
        }
    }
}

/// Runs every check of `job` (accounts concurrently).
pub async fn check(job: &Job) -> Readiness {
    let mut checks = match Clients::new(job) {
        Ok(clients) => {
            futures::future::join_all(
                job.accounts
                    .iter()
                    .map(|account| check_account(&clients, &account.id, &account.spec)),
            )
            .await
        }
        Err(error) => vec![Check {
            subject: "api".to_string(),
            status: Status::Fail,
            detail: error.to_string(),
        }],
    };
    checks.push(check_output(job).await);
    Readiness { checks }
}

async fn check_account(clients: &Clients, account_id: &str, spec: &AccountSpec) -> Check {
    let subject = format!("account {account_id}");
    let fail = |step: &str, error: ApiError| Check {
        subject: subject.clone(),
        status: Status::Fail,
        detail: format!("{step} failed: {error}"),
    };
    match spec {
        AccountSpec::Wecom {
            corpid,
            credentials,
            groups,
            ..
        } => {
            let client = WeComClient::with_credentials(
                clients.http().clone(),
                account_id,
                corpid,
                credentials.clone(),
            );
            if let Err(error) = client.verify_credentials().await {
                return fail("gettoken", error);
            }
            let staff = match client.follow_users().await {
                Ok(staff) => staff,
                Err(error) => return fail("get_follow_user_list", error),
            };
            // With groups, one list page proves the group chat permission.
            let groups = match groups {
                true => match client.groupchat_list_page(None).await {
                    Ok((chats, more)) => format!(
                        "; customer groups readable ({}{} chats on the first page)",
                        chats.len(),
                        if more.is_some() { "+" } else { "" }
                    ),
                    Err(error) => return fail("groupchat/list", error),
                },
                false => String::new(),
            };
            Check {
                subject,
                status: Status::Ready,
                detail: format!(
                    "token ok; {} staff members with customer contact{groups}",
                    staff.len()
                ),
            }
        }
        AccountSpec::AppLogins { source, .. } => {
            match crate::extract::app_users::snapshot(account_id, source).await {
                Ok(raw) => Check {
                    subject,
                    status: Status::Ready,
                    detail: format!("export readable: {} users", raw.frame.height()),
                },
                Err(error) => Check {
                    subject,
                    status: Status::Fail,
                    detail: format!("export: {error}"),
                },
            }
        }
        AccountSpec::OfficialAccount { .. } | AccountSpec::ThirdPartyOfficialAccount { .. } => {
            let Some(client) = clients.official_account(account_id) else {
                return Check {
                    subject,
                    status: Status::Fail,
                    detail: "no client for this account".to_string(),
                };
            };
            if let Err(error) = client.verify_credentials().await {
                return fail("token", error);
            }
            let page = match client.user_get_page(None).await {
                Ok(page) => page,
                Err(error) => return fail("user/get", error),
            };
            let sample: Vec<String> = page.openids.iter().take(SAMPLE).cloned().collect();
            if sample.is_empty() {
                return Check {
                    subject,
                    status: Status::Warn,
                    detail: "token ok; no followers yet, so whether UnionIDs come back (is the account bound?) cannot be seen".to_string(),
                };
            }
            let users = match client.batchget(&sample).await {
                Ok(users) => users,
                Err(error) => return fail("user/info/batchget", error),
            };
            let following: Vec<_> = users.iter().filter(|u| u.subscribe == 1).collect();
            let with_unionid = following.iter().filter(|u| u.unionid.is_some()).count();
            let seen = format!(
                "token ok; {} followers; {with_unionid} of {} sampled have a UnionID",
                page.total,
                following.len()
            );
            if with_unionid > 0 {
                Check {
                    subject,
                    status: Status::Ready,
                    detail: format!("{seen}: bound"),
                }
            } else {
                Check {
                    subject,
                    status: Status::Warn,
                    detail: format!("{seen}: not bound to the Open Platform account — its followers will count as unresolved; bind it (open.weixin.qq.com → Management Center → Official Accounts → Bind) to dedupe them"),
                }
            }
        }
    }
}

async fn check_output(job: &Job) -> Check {
    let subject = format!("output {}", job.output);
    let fail = |detail: String| Check {
        subject: subject.clone(),
        status: Status::Fail,
        detail,
    };
    let store = match load::open(&job.output) {
        Ok(store) => store,
        Err(error) => return fail(format!("{error}: check the URL and the credentials in the environment (AWS_*, GOOGLE_*, AZURE_*)")),
    };
    let probe = Path::from(format!(
        "{PROBE_PREFIX}/{}-{:08x}.txt",
        job.name,
        rand::random::<u32>()
    ));
    let body = PutPayload::from_static(b"unionsnap validate --online probe; safe to delete\n");
    if let Err(error) = store.put(&probe, body).await {
        return fail(format!("cannot write {probe}: {error}: grant write access (e.g. s3:PutObject) to these credentials"));
    }
    if let Err(error) = store.delete(&probe).await {
        return fail(format!("wrote {probe} but cannot delete it: {error}: grant delete access (e.g. s3:DeleteObject): a re-run deletes files it no longer writes"));
    }
    Check {
        subject,
        status: Status::Ready,
        detail: format!("wrote and deleted {probe}"),
    }
}
