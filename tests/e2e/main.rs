//! End-to-end tests: the real binary against the simulator over real HTTP,
//! Parquet read back by polars and by DuckDB, S3 through moto's server.

mod changes;
mod common;
mod counts;
mod crash;
mod groups;
mod job_errors;
mod k8s;
mod kinds;
mod lease;
mod metrics;
mod moto;
mod official_account;
mod privacy;
mod real_wechat;
mod report;
mod s3;
mod scale;
mod schema;
mod secrets;
mod serve;
mod shards;
mod snapshots;
mod spark;
mod sql_dialects;
mod sql_parity;
mod validate_online;
