//! unionsnap: snapshot the followers and contacts of every WeChat account bound
//! to one Open Platform account, dedupe people on UnionID, and write
//! Hive-partitioned Parquet to object storage.
//!
//! The data takes one road, and the modules follow it:
//!
//! ```text
//!  job ──► wechat ──► extract ──► transform ──► load
//!  (what)  (API client) (one snapshotter  (polars:      (Parquet, object store,
//!                        per account kind) identities,   manifest commit)
//!                                          people, ...)
//! ```
//!
//! - [`job`]: the job file: parsing, strict validation with file/line errors, defaults.
//! - [`secret`]: secrets and access tokens that cannot leak through `Debug`/`Display`.
//! - [`wechat`]: the HTTP client for WeChat's server APIs: tokens, retries, one
//!   table classifying every error code, redaction of tokens in every error.
//! - [`extract`]: per-account snapshotters turning API pages (Official
//!   Accounts, WeCom contacts) and login exports (Mini Programs, apps,
//!   websites) into raw tables.
//! - [`transform`]: pure polars functions: identities, people, audience, overlap,
//!   changes since the previous snapshot, UpSet intersections.
//! - [`load`]: the warehouse layout, Parquet encoding, the Delta tables and the
//!   commit protocol (fenced commits, the snapshot marker last, vacuum).
//! - [`pipeline`]: one run of a job from extract to commit, and its outcome (exit code);
//!   with the API clients kept across runs ([`pipeline::clients`], warm tokens) and
//!   the per-account progress bars on a terminal ([`pipeline::bars`]).
//! - [`report`]: the audience summary read back from the warehouse (text, JSON,
//!   CSV) and the self-contained HTML report with its charts.
//!
//! Each module may use only those below it (docs/ARCHITECTURE.md; checked by
//! `tests/layers.rs`).
//!
//! Around the road, for the platforms that run it:
//!
//! - [`ops`]: the operator's side of the commands — [`ops::runner`] (one run as
//!   the operator sees it: exit code, logs, metrics), [`ops::serve`] (the cron
//!   loop of `unionsnap serve`), [`ops::merge`] (commits a date from the
//!   shards' raw partitions), [`ops::metrics`] (Prometheus text for
//!   `--metrics-file` and `--pushgateway`), [`ops::preflight`] (`validate
//!   --online`) and [`ops::demo`] (`unionsnap demo`).
//! - [`shard`]: which accounts pod I of N extracts (`--shard`, Indexed Jobs).
//! - [`simulator`] (the crate `crates/simulator`, re-exported with the default
//!   `simulator` feature): the built-in WeChat API simulator with a seeded population and
//!   its ground truth; used by the demo, the tests and the benchmarks.

pub mod extract;
pub mod job;
pub mod load;
pub mod ops;
pub mod pipeline;
pub mod report;
pub mod secret;
pub mod shard;
#[cfg(any(test, feature = "simulator"))]
pub use unionsnap_simulator as simulator;
pub mod transform;
pub mod wechat;
