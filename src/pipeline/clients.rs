//! The WeChat API clients of a job, built once and reused run after run.
//!
//! A client holds its account's access token, rate limiter and call
//! counters. `unionsnap run` builds them for one run; `unionsnap serve`
//! keeps them for the life of the process, so that tokens stay warm between
//! runs (a stable token is fetched once per ~2 hours, not once per run) and
//! the counters add up across runs, as Prometheus counters should.

use std::collections::BTreeMap;

use crate::job::Job;
use crate::wechat::{ApiError, OfficialAccountClient, StatsSnapshot, WeChatHttp};

/// One connection pool and one client per account of a job.
#[derive(Debug, Clone)]
pub struct Clients {
    http: WeChatHttp,
    official_accounts: BTreeMap<String, OfficialAccountClient>,
}

impl Clients {
    /// Builds the clients of every account of `job` (no network yet).
    pub fn new(job: &Job) -> Result<Clients, ApiError> {
        let http = WeChatHttp::new(&job.api)?;
        let official_accounts = job
            .accounts
            .iter()
            .filter_map(|account| {
                crate::extract::official_account_client(account, &http)
                    .map(|client| (account.id.clone(), client))
            })
            .collect();
        Ok(Clients {
            http,
            official_accounts,
        })
    }

    /// The shared HTTP side (connection pool, `[api]` settings).
    pub fn http(&self) -> &WeChatHttp {
        &self.http
    }

    /// The client of an Official Account of the job.
    pub fn official_account(&self, account_id: &str) -> Option<&OfficialAccountClient> {
        self.official_accounts.get(account_id)
    }

    /// Every account's call counters now, by account id.
    pub fn stats(&self) -> BTreeMap<String, StatsSnapshot> {
        self.official_accounts
            .iter()
            .map(|(id, client)| (id.clone(), client.stats()))
            .collect()
    }
}
