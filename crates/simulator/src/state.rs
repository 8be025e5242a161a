//! The simulator's mutable state behind the HTTP handlers: the current day's
//! follower lists, issued tokens, quota counters, the fault dice and the
//! statistics tests and benchmarks read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::faults::{FaultDice, FaultKind, Faults};
use super::population::{Population, World};
use super::scenario::Scenario;
use super::tokens::TokenStore;

/// The daily limit `openapi/quota/get` reports for an endpoint without a
/// configured quota (user/info's documented 5,000,000).
pub const UNLIMITED_DAILY_LIMIT: u64 = 5_000_000;

/// What the simulator has served so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Every request, per endpoint path (`/cgi-bin/user/get`).
    pub calls: BTreeMap<String, u64>,
    /// Requests answered with success (no fault, no errcode), per path.
    pub ok_calls: BTreeMap<String, u64>,
    /// Non-zero errcodes returned, injected ones included.
    pub errcodes: BTreeMap<i64, u64>,
    /// Injected faults, per kind name (`busy`, `drop`, ...).
    pub faults: BTreeMap<String, u64>,
    /// Tokens minted, per account id (`component` for the platform's
    /// component tokens; a stable token handed out again is not counted; see
    /// `ok_calls` for token calls).
    pub tokens_issued: BTreeMap<String, u64>,
}

impl SimStats {
    /// All requests to one path.
    pub fn calls_to(&self, path: &str) -> u64 {
        self.calls.get(path).copied().unwrap_or(0)
    }

    /// Successful requests to one path.
    pub fn ok_calls_to(&self, path: &str) -> u64 {
        self.ok_calls.get(path).copied().unwrap_or(0)
    }

    /// How often `errcode` was returned.
    pub fn errcode_count(&self, errcode: i64) -> u64 {
        self.errcodes.get(&errcode).copied().unwrap_or(0)
    }
}

/// Locks a mutex; a handler that panicked while holding it cannot leave the
/// counters in a state worse than slightly off, so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct SimState {
    pub(crate) scenario: Scenario,
    pub(crate) world: World,
    population: RwLock<Arc<Population>>,
    pub(crate) tokens: Mutex<TokenStore>,
    quota_used: Mutex<HashMap<(usize, String), u64>>,
    /// Held from the quota check of a call under a configured quota to its
    /// counting, so that the check and the count are one step.
    pub(crate) quota_gate: Mutex<()>,
    stats: Mutex<SimStats>,
    /// The fault settings and their dice; replaceable while serving.
    faults: Mutex<(Faults, FaultDice)>,
    /// Bodies real WeChat has answered, served instead of the normal answer
    /// (see [`super::SimServer::replay`]).
    pub(crate) replays: Mutex<HashMap<String, std::collections::VecDeque<Replay>>>,
    /// `batch/get_by_user` leaves `follow_info.userid` out when asked for
    /// several staff members, as real answers have.
    pub(crate) omit_follow_userid: std::sync::atomic::AtomicBool,
    /// (corp, person) → the day idconvert issued the person's current
    /// `pending_id` (it lives [`super::handlers_wecom::PENDING_DAYS`]).
    pub(crate) pending_issued: Mutex<HashMap<(usize, u32), u32>>,
    /// Official Accounts answered `48001` by `tags/get` and the datacube
    /// endpoints (see [`super::SimServer::set_unverified`]).
    pub(crate) unverified: Mutex<std::collections::BTreeSet<usize>>,
    /// Official Account → followers added to `cumulate_user` (see
    /// [`super::SimServer::set_cumulate_offset`]).
    pub(crate) cumulate_offset: Mutex<HashMap<usize, i64>>,
    /// The calendar date of day 0, for the datacube endpoints (see
    /// [`super::SimServer::set_first_date`]).
    pub(crate) first_date: Mutex<chrono::NaiveDate>,
}

/// One recorded answer, for the next call to its path whose request lists
/// at least `min_list` ids (`user_list`, `userid_list`).
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    pub(crate) body: serde_json::Value,
    pub(crate) min_list: usize,
}

impl SimState {
    /// Builds the day's population: seconds for millions of people, so call
    /// it off the async threads.
    pub(crate) fn new(scenario: Scenario) -> SimState {
        let world = World::new(&scenario);
        let population = Population::build(&world, scenario.day);
        SimState {
            tokens: Mutex::new(TokenStore::new(scenario.token_ttl)),
            faults: Mutex::new((scenario.faults.clone(), FaultDice::new(&scenario.faults))),
            population: RwLock::new(Arc::new(population)),
            quota_used: Mutex::new(HashMap::new()),
            quota_gate: Mutex::new(()),
            stats: Mutex::new(SimStats::default()),
            replays: Mutex::new(HashMap::new()),
            omit_follow_userid: std::sync::atomic::AtomicBool::new(false),
            pending_issued: Mutex::new(HashMap::new()),
            unverified: Mutex::new(std::collections::BTreeSet::new()),
            cumulate_offset: Mutex::new(HashMap::new()),
            first_date: Mutex::new(super::counts::date_of_day(0)),
            world,
            scenario,
        }
    }

    pub(crate) fn population(&self) -> Arc<Population> {
        Arc::clone(
            &self
                .population
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Moves the population to `day` and starts a new quota day.
    pub(crate) fn set_day(&self, day: u32) {
        let population = Arc::new(Population::build(&self.world, day));
        *self
            .population
            .write()
            .unwrap_or_else(PoisonError::into_inner) = population;
        lock(&self.quota_used).clear();
    }

    pub(crate) fn day(&self) -> u32 {
        self.population().day
    }

    /// An Official Account with its own AppSecret (the platform's accounts
    /// cannot use the token endpoints: the job holds no AppSecret of theirs).
    pub(crate) fn account_by_appid(&self, appid: &str) -> Option<usize> {
        self.scenario.accounts.iter().position(|a| a.appid == appid)
    }

    // Principals: whoever a token is issued to. Official Accounts (own, then
    // the platform's) are 0..n, corps follow, the platform itself is last.

    /// Official Accounts, own-credential and platform-managed.
    /// The index of the Official Account `account_id` (own or the platform's).
    pub(crate) fn official_account_index(&self, account_id: &str) -> Option<usize> {
        self.scenario
            .official_accounts()
            .position(|a| a.id == account_id)
    }

    pub(crate) fn official_account_count(&self) -> usize {
        self.world.models.len()
    }

    /// The principal of the platform-managed account at `index` of the platform's list.
    pub(crate) fn authorizer_principal(&self, index: usize) -> usize {
        self.scenario.accounts.len() + index
    }

    pub(crate) fn corp_principal(&self, corp: usize) -> usize {
        self.official_account_count() + corp
    }

    /// The corp behind a principal, if it is one.
    pub(crate) fn corp_of(&self, principal: usize) -> Option<usize> {
        principal
            .checked_sub(self.official_account_count())
            .filter(|&c| c < self.world.corps.len())
    }

    pub(crate) fn component_principal(&self) -> usize {
        self.official_account_count() + self.world.corps.len()
    }

    /// The id counted in [`SimStats::tokens_issued`].
    fn principal_id(&self, principal: usize) -> Option<String> {
        if let Some(account) = self.scenario.official_accounts().nth(principal) {
            return Some(account.id.clone());
        }
        if let Some(corp) = self.corp_of(principal) {
            return Some(self.scenario.corps[corp].id.clone());
        }
        (principal == self.component_principal() && self.scenario.platform.is_some())
            .then(|| "component".to_string())
    }

    pub(crate) fn roll_fault(&self) -> Option<FaultKind> {
        lock(&self.faults).1.roll()
    }

    pub(crate) fn latency(&self) -> Duration {
        lock(&self.faults).0.latency
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).0.clone()
    }

    /// Replaces the fault dice (restarting from `faults.seed`) and the latency.
    pub(crate) fn set_faults(&self, faults: &Faults) {
        *lock(&self.faults) = (faults.clone(), FaultDice::new(faults));
    }

    pub(crate) fn daily_limit(&self, path: &str) -> u64 {
        self.scenario
            .quotas
            .get(path)
            .copied()
            .unwrap_or(UNLIMITED_DAILY_LIMIT)
    }

    pub(crate) fn quota_used(&self, account: usize, path: &str) -> u64 {
        lock(&self.quota_used)
            .get(&(account, path.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Whether today's quota of `path` is used up (only configured quotas
    /// can run out).
    pub(crate) fn quota_exhausted(&self, account: usize, path: &str) -> bool {
        self.scenario
            .quotas
            .get(path)
            .is_some_and(|&limit| self.quota_used(account, path) >= limit)
    }

    pub(crate) fn count_quota(&self, account: usize, path: &str) {
        *lock(&self.quota_used)
            .entry((account, path.to_string()))
            .or_insert(0) += 1;
    }

    pub(crate) fn stats(&self) -> SimStats {
        lock(&self.stats).clone()
    }

    pub(crate) fn record(&self, update: impl FnOnce(&mut SimStats)) {
        update(&mut lock(&self.stats));
    }

    pub(crate) fn count_token_issued(&self, principal: usize) {
        if let Some(id) = self.principal_id(principal) {
            self.record(|stats| *stats.tokens_issued.entry(id).or_insert(0) += 1);
        }
    }
}
