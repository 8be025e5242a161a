//! The built-in WeChat API simulator (SPEC §6).
//!
//! No WeChat server is reachable from development or CI machines, so the
//! demo, the tests and the benchmarks run against this one: a seeded
//! synthetic population of people following Official Accounts (own
//! credentials or through a third-party platform), being customers of WeCom
//! corps and logging in to Mini Programs, apps and websites, served over
//! real HTTP with WeChat's wire formats, paging quirks, token rules, error
//! codes and quotas, plus injected faults, and written as login exports.
//! Because the population is a pure function of the seed, the simulator also
//! knows the exact `audience` and `overlap` figures a correct snapshot must
//! produce ([`Scenario::truth`]).
//!
//! - [`scenario`](Scenario): the population, accounts, faults and limits
//!   (plain data); `kinds`: the platform, corps and apps in it;
//! - `population`, `ids`, `profile`, `contacts`: membership per day,
//!   OpenIDs/UnionIDs/external_userids, profiles and contact relations
//!   derived from small integers (10M people fit in memory);
//! - `counts`: what WeChat counts itself (tags/get, the datacube
//!   follower statistics) and the truth of it;
//! - `truth`, `changes_truth`: the ground truth (also of `changes` between two
//!   days), computed independently of the pipeline;
//! - `server`, `handlers*`, `tokens`, `state`: the axum server and endpoints;
//! - [`exports`]: the Mini Program / app / website login exports;
//! - `faults`: what goes wrong and how often;
//! - [`cli`]: `unionsnap simulate`.

mod changes_truth;
pub mod cli;
mod compare;
mod contacts;
mod counts;
pub mod exports;
mod faults;
mod groups;
mod handlers;
mod handlers_platform;
mod handlers_wecom;
mod ids;
mod job_file;
mod kinds;
mod population;
mod profile;
mod scenario;
mod server;
mod state;
mod tokens;
mod truth;

#[cfg(test)]
mod test_client;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_http;
#[cfg(test)]
mod tests_kinds;

pub use changes_truth::{change_counts, change_rows, ChangeCounts, ChangeRow, ChangesTruth};
pub use cli::{run, SimulateArgs};
pub use compare::{audience_rows, overlap_rows, truth_matches};
pub use counts::{date_of_day, TagRow};
pub use exports::{write_app_export, ExportError, ExportFormat};
pub use faults::{parse_fault_kinds, FaultKind, Faults, UnknownFaultKind};
pub use kinds::{SimApp, SimAppKind, SimCorp, SimPlatform};
pub use scenario::{
    Scenario, ScenarioError, SimAccount, DEFAULT_PAGE_SIZE, DEFAULT_TOKEN_TTL, DEMO_PEOPLE,
    DEMO_SEED,
};
pub use server::{start, SimServer};
pub use state::{SimStats, UNLIMITED_DAILY_LIMIT};
pub use truth::{AudienceRow, OverlapRow, Truth, ALL_ACCOUNTS};
