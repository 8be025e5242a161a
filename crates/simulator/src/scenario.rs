//! What the simulator simulates: a seeded population of people, the Official
//! Accounts they follow (with their own AppSecret or through a third-party
//! platform), the WeCom corps whose customers they are, the Mini Programs,
//! apps and websites they log in to, the day of the simulated calendar, the
//! faults and the limits. A `Scenario` is plain data; the same scenario
//! always produces the same members, profiles and ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::faults::Faults;
use super::ids;
use super::kinds::{SimApp, SimAppKind, SimCorp, SimPlatform};

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
    /// A third-party platform and the Official Accounts it manages.
    #[serde(default)]
    pub platform: Option<SimPlatform>,
    /// WeCom corps with external contacts.
    #[serde(default)]
    pub corps: Vec<SimCorp>,
    /// Mini Programs, mobile apps and websites (login exports).
    #[serde(default)]
    pub apps: Vec<SimApp>,
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
    #[error("corp {0:?} has no staff members")]
    NoStaff(String),
    #[error("corpid {corpid:?} of corp {account:?} is also used by another corp")]
    DuplicateCorpid { account: String, corpid: String },
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
            platform: None,
            corps: Vec::new(),
            apps: Vec::new(),
        }
    }

    /// Every Official Account, own-credential ones first, then those of the
    /// platform: the order of the simulator's account indices.
    pub fn official_accounts(&self) -> impl Iterator<Item = &SimAccount> {
        self.accounts
            .iter()
            .chain(self.platform.iter().flat_map(|p| p.accounts.iter()))
    }

    /// Every account id of every kind, with its `account_kind`.
    pub fn account_ids(&self) -> Vec<(String, &'static str)> {
        let mut ids: Vec<(String, &'static str)> = self
            .official_accounts()
            .map(|a| (a.id.clone(), "official_account"))
            .collect();
        ids.extend(self.apps.iter().map(|a| (a.id.clone(), a.kind.as_str())));
        ids.extend(self.corps.iter().map(|c| (c.id.clone(), "wecom")));
        ids
    }

    /// The scenario behind `make run` and `unionsnap demo`: 30,000 people,
    /// three bound Official Accounts and one unbound legacy one, one managed
    /// through a third-party platform, two WeCom corps (a self-built app with
    /// UnionIDs, a 代开发 app linked through idconvert), and a Mini Program,
    /// an app and a website whose users come from login exports.
    pub fn demo() -> Scenario {
        let account = |id: &str, appid: &str, reach: f64, bound: bool| SimAccount {
            appid: appid.to_string(),
            bound,
            // The demo snapshots seven days with refresh = "new", which does
            // not re-check known followers; followers who leave mid-crawl
            // would make its exact truth check fail (see the README's
            // refresh trade-off). The tests cover them.
            leave_during_crawl: 0.0,
            daily_churn: 0.01,
            ..SimAccount::new(DEMO_SEED, id, reach)
        };
        let mut partner_crm = SimCorp {
            corpid: "ww00000000000c0002".to_string(),
            idconvert: true,
            staff: 8,
            ..SimCorp::new(DEMO_SEED, "partner_crm", 0.06)
        };
        partner_crm.daily_churn = 0.01;
        let crm = SimCorp {
            corpid: "ww00000000000c0001".to_string(),
            staff: 140,
            daily_churn: 0.01,
            // Customer groups: their members count, many are no contact.
            group_chats: 300,
            group_reach: 0.04,
            ..SimCorp::new(DEMO_SEED, "crm", 0.12)
        };
        let app = |id: &str, kind: SimAppKind, appid: &str, reach: f64, bound: bool| SimApp {
            appid: appid.to_string(),
            bound,
            daily_churn: 0.01,
            ..SimApp::new(DEMO_SEED, id, kind, reach)
        };
        Scenario {
            platform: Some(SimPlatform {
                component_appid: "wx00000000000000c1".to_string(),
                ..SimPlatform::new(
                    DEMO_SEED,
                    vec![account("agency_oa", "wx0000000000000b05", 0.15, true)],
                )
            }),
            corps: vec![crm, partner_crm],
            apps: vec![
                app(
                    "shop_mp",
                    SimAppKind::MiniProgram,
                    "wx0000000000000a01",
                    0.25,
                    true,
                ),
                app(
                    "brand_app",
                    SimAppKind::MobileApp,
                    "wx0000000000000a02",
                    0.08,
                    true,
                ),
                app(
                    "brand_web",
                    SimAppKind::Website,
                    "wx0000000000000a03",
                    0.05,
                    false,
                ),
            ],
            ..Scenario::new(
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
        for (id, _) in self.account_ids() {
            if id.is_empty() {
                return Err(ScenarioError::EmptyAccountId);
            }
            if !ids.insert(id.clone()) {
                return Err(ScenarioError::DuplicateAccount(id));
            }
        }
        let mut appids = BTreeSet::new();
        let apps: Vec<SimAccount> = self.apps.iter().map(SimApp::as_account).collect();
        for account in self.official_accounts().chain(&apps) {
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
        for app in &self.apps {
            check_probability(&app.id, "repeat_logins", app.repeat_logins)?;
        }
        let mut corpids = BTreeSet::new();
        for corp in &self.corps {
            if corp.staff == 0 {
                return Err(ScenarioError::NoStaff(corp.id.clone()));
            }
            if !corpids.insert(corp.corpid.as_str()) {
                return Err(ScenarioError::DuplicateCorpid {
                    account: corp.id.clone(),
                    corpid: corp.corpid.clone(),
                });
            }
            check_probability(&corp.id, "reach", corp.reach)?;
            check_probability(&corp.id, "wecom_user_share", corp.wecom_user_share)?;
            check_probability(&corp.id, "shared_share", corp.shared_share)?;
            check_probability(&corp.id, "daily_churn", corp.daily_churn)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_has_the_four_documented_official_accounts() {
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
    fn demo_has_an_account_of_every_kind() {
        let kinds: BTreeSet<&str> = Scenario::demo()
            .account_ids()
            .into_iter()
            .map(|(_, kind)| kind)
            .collect();
        assert_eq!(
            kinds,
            BTreeSet::from([
                "official_account",
                "wecom",
                "mini_program",
                "mobile_app",
                "website"
            ])
        );
        let demo = Scenario::demo();
        assert_eq!(demo.platform.as_ref().map(|p| p.accounts.len()), Some(1));
        assert!(demo.corps.iter().any(|c| c.idconvert) && demo.corps.iter().any(|c| !c.idconvert));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let demo = Scenario::demo();
        let printed = format!("{demo:?}");
        for (_, secret) in demo.secret_env() {
            assert!(!printed.contains(&secret));
        }
        assert!(printed.contains("brand_oa"));
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
