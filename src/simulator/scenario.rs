//! What the simulator simulates: a seeded population of people, the Official
//! Accounts they follow, the day of the simulated calendar, the faults and the
//! limits. A `Scenario` is plain data; the same scenario always produces the
//! same followers, profiles and ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::faults::Faults;
use super::ids;

/// Access tokens live 7200 s, as WeChat's `expires_in` says.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// `user/get` returns at most 10,000 OpenIDs per page.
pub const DEFAULT_PAGE_SIZE: usize = 10_000;
/// Seed of the demo scenario (`make run`).
pub const DEMO_SEED: u64 = 20_261_121;
/// People in the demo scenario.
pub const DEMO_PEOPLE: u64 = 30_000;

/// One simulated Official Account. Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SimAccount {
    /// The job file's account id (`brand_oa`).
    pub id: String,
    /// `wx` + 16 hex characters.
    pub appid: String,
    /// The AppSecret the token endpoints accept.
    pub secret: String,
    /// Bound to the Open Platform account: only then does WeChat return
    /// `unionid`.
    pub bound: bool,
    /// Probability that a person follows this account (on day 0).
    pub reach: f64,
    /// Fraction of the listed followers who unfollow while the crawl runs:
    /// `user/get` lists them, `user/info` answers `{"subscribe":0,...}`, and
    /// they are not members of the snapshot.
    pub leave_during_crawl: f64,
    /// Per day after day 0: the fraction of followers who unfollow; about as
    /// many people follow anew.
    pub daily_churn: f64,
}

impl fmt::Debug for SimAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAccount")
            .field("id", &self.id)
            .field("appid", &self.appid)
            .field("secret", &"[REDACTED]")
            .field("bound", &self.bound)
            .field("reach", &self.reach)
            .field("leave_during_crawl", &self.leave_during_crawl)
            .field("daily_churn", &self.daily_churn)
            .finish()
    }
}

impl SimAccount {
    /// A bound account with an AppID and AppSecret derived from the seed and
    /// the id, no leavers during the crawl and no churn.
    pub fn new(seed: u64, id: &str, reach: f64) -> SimAccount {
        SimAccount {
            id: id.to_string(),
            appid: ids::derived_appid(seed, id),
            secret: ids::derived_secret(seed, id),
            bound: true,
            reach,
            leave_during_crawl: 0.0,
            daily_churn: 0.0,
        }
    }
}

/// The whole simulated world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub seed: u64,
    /// People in the population; each follows each account with its `reach`.
    pub people: u64,
    /// The simulated calendar day: day `d` is day `d - 1` minus some
    /// unfollows plus some new follows.
    pub day: u32,
    pub accounts: Vec<SimAccount>,
    pub faults: Faults,
    pub token_ttl: Duration,
    /// OpenIDs per `user/get` page.
    pub page_size: usize,
    /// Daily call limits per endpoint path (`/cgi-bin/user/get`); a path not
    /// listed is unlimited.
    pub quotas: BTreeMap<String, u64>,
}

/// A scenario that cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("people = {0}: the simulator supports at most 4294967295 people")]
    TooManyPeople(u64),
    #[error("account id is empty")]
    EmptyAccountId,
    #[error("account {0:?} appears twice")]
    DuplicateAccount(String),
    #[error("appid {appid:?} of account {account:?} is also used by another account")]
    DuplicateAppid { account: String, appid: String },
    #[error("account {account:?}: {field} = {value} is not a probability in [0, 1]")]
    NotAProbability {
        account: String,
        field: &'static str,
        value: f64,
    },
    #[error("page_size must be at least 1")]
    EmptyPages,
}

fn check_probability(account: &str, field: &'static str, value: f64) -> Result<(), ScenarioError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ScenarioError::NotAProbability {
            account: account.to_string(),
            field,
            value,
        })
    }
}

impl Scenario {
    /// A scenario with the defaults: day 0, no faults, 7200 s tokens, pages
    /// of 10,000, no quotas.
    pub fn new(seed: u64, people: u64, accounts: Vec<SimAccount>) -> Scenario {
        Scenario {
            seed,
            people,
            day: 0,
            accounts,
            faults: Faults::none(),
            token_ttl: DEFAULT_TOKEN_TTL,
            page_size: DEFAULT_PAGE_SIZE,
            quotas: BTreeMap::new(),
        }
    }

    /// The scenario behind `make run` and `unionsnap demo`: 30,000 people,
    /// three bound accounts and one unbound legacy account.
    pub fn demo() -> Scenario {
        let account = |id: &str, appid: &str, reach: f64, bound: bool| SimAccount {
            appid: appid.to_string(),
            bound,
            leave_during_crawl: 0.002,
            daily_churn: 0.01,
            ..SimAccount::new(DEMO_SEED, id, reach)
        };
        Scenario::new(
            DEMO_SEED,
            DEMO_PEOPLE,
            vec![
                account("brand_oa", "wx0000000000000b01", 0.45, true),
                account("news_oa", "wx0000000000000b02", 0.30, true),
                account("shop_oa", "wx0000000000000b03", 0.20, true),
                account("legacy_oa", "wx0000000000000b04", 0.10, false),
            ],
        )
    }

    /// Checks what the simulator relies on: distinct ids and appids,
    /// probabilities in range, a population that fits in `u32`.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.people > u64::from(u32::MAX) {
            return Err(ScenarioError::TooManyPeople(self.people));
        }
        if self.page_size == 0 {
            return Err(ScenarioError::EmptyPages);
        }
        check_probability("*", "faults.rate", self.faults.rate)?;
        let mut ids = BTreeSet::new();
        let mut appids = BTreeSet::new();
        for account in &self.accounts {
            if account.id.is_empty() {
                return Err(ScenarioError::EmptyAccountId);
            }
            if !ids.insert(account.id.as_str()) {
                return Err(ScenarioError::DuplicateAccount(account.id.clone()));
            }
            if !appids.insert(account.appid.as_str()) {
                return Err(ScenarioError::DuplicateAppid {
                    account: account.id.clone(),
                    appid: account.appid.clone(),
                });
            }
            check_probability(&account.id, "reach", account.reach)?;
            check_probability(
                &account.id,
                "leave_during_crawl",
                account.leave_during_crawl,
            )?;
            check_probability(&account.id, "daily_churn", account.daily_churn)?;
        }
        Ok(())
    }

    /// The environment variable the generated job file reads an account's
    /// secret from: `UNIONSNAP_SIM_SECRET_<ID>` (non-alphanumerics become `_`).
    pub fn secret_env_var(account_id: &str) -> String {
        let suffix: String = account_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("UNIONSNAP_SIM_SECRET_{suffix}")
    }

    /// `(variable, secret)` for every account, to put in a child's environment.
    pub fn secret_env(&self) -> Vec<(String, String)> {
        self.accounts
            .iter()
            .map(|account| {
                (
                    Scenario::secret_env_var(&account.id),
                    account.secret.clone(),
                )
            })
            .collect()
    }

    /// A job file (SPEC §3) that snapshots every account of this scenario
    /// from the simulator at `base_url` into `output`, with retry timings
    /// short enough for tests. Secrets are referenced through
    /// [`Scenario::secret_env_var`], never written.
    pub fn job_toml(&self, base_url: &str, output: &str) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut job = format!(
            "# Written by the unionsnap simulator: seed {seed}, {people} people, day {day}.\n\
             name = \"sim\"\n\
             timezone = \"UTC\"\n\
             output = {output}\n\
             \n\
             [api]\n\
             base_url = {base_url}\n\
             max_retries = 10\n\
             backoff = \"5ms\"\n\
             rate_limit_wait = \"20ms\"\n\
             timeout = \"5s\"\n",
            seed = self.seed,
            people = self.people,
            day = self.day,
            output = quote(output),
            base_url = quote(base_url),
        );
        for account in &self.accounts {
            job.push_str(&format!(
                "\n[[accounts]]\n\
                 id = {id}\n\
                 kind = \"official_account\"\n\
                 appid = {appid}\n\
                 secret = {{ env = {env} }}\n",
                id = quote(&account.id),
                appid = quote(&account.appid),
                env = quote(&Scenario::secret_env_var(&account.id)),
            ));
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_has_the_four_documented_accounts() {
        let demo = Scenario::demo();
        demo.validate().unwrap();
        let summary: Vec<_> = demo
            .accounts
            .iter()
            .map(|a| (a.id.as_str(), a.appid.as_str(), a.reach, a.bound))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("brand_oa", "wx0000000000000b01", 0.45, true),
                ("news_oa", "wx0000000000000b02", 0.30, true),
                ("shop_oa", "wx0000000000000b03", 0.20, true),
                ("legacy_oa", "wx0000000000000b04", 0.10, false),
            ]
        );
        assert_eq!((demo.seed, demo.people), (20_261_121, 30_000));
        assert!(demo.accounts.iter().all(|a| a.secret.len() == 32));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let demo = Scenario::demo();
        let printed = format!("{demo:?}");
        assert!(demo.accounts.iter().all(|a| !printed.contains(&a.secret)));
        assert!(printed.contains("brand_oa"));
    }

    #[test]
    fn secret_env_var_names_follow_the_account_id() {
        assert_eq!(
            Scenario::secret_env_var("brand_oa"),
            "UNIONSNAP_SIM_SECRET_BRAND_OA"
        );
        assert_eq!(
            Scenario::secret_env_var("shop-mp.2"),
            "UNIONSNAP_SIM_SECRET_SHOP_MP_2"
        );
        let env = Scenario::demo().secret_env();
        assert_eq!(env.len(), 4);
        assert_eq!(env[3].0, "UNIONSNAP_SIM_SECRET_LEGACY_OA");
    }

    #[test]
    fn job_toml_references_secrets_without_containing_them() {
        let demo = Scenario::demo();
        let job = demo.job_toml("http://127.0.0.1:8089", "/tmp/warehouse");
        let parsed: toml::Table = job.parse().unwrap();
        assert_eq!(parsed["timezone"].as_str(), Some("UTC"));
        assert_eq!(
            parsed["api"]["base_url"].as_str(),
            Some("http://127.0.0.1:8089")
        );
        let accounts = parsed["accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 4);
        assert_eq!(
            accounts[0]["secret"]["env"].as_str(),
            Some("UNIONSNAP_SIM_SECRET_BRAND_OA")
        );
        assert!(demo.accounts.iter().all(|a| !job.contains(&a.secret)));
    }

    #[test]
    fn validate_rejects_duplicates_and_bad_probabilities() {
        let mut scenario = Scenario::new(1, 10, vec![SimAccount::new(1, "a", 0.5)]);
        scenario.accounts.push(SimAccount::new(1, "a", 0.5));
        assert!(matches!(
            scenario.validate(),
            Err(ScenarioError::DuplicateAccount(_))
        ));
        scenario.accounts[1] = SimAccount::new(1, "b", 1.5);
        assert!(matches!(
            scenario.validate(),
            Err(ScenarioError::NotAProbability { .. })
        ));
    }
}
