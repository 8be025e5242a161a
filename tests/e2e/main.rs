//! End-to-end tests: the real binary against the simulator over real HTTP,
//! Parquet read back by polars and by DuckDB, S3 through moto's server.

mod common;
mod job_errors;
mod k8s;
mod metrics;
mod official_account;
mod s3;
mod secrets;
mod serve;
mod shards;
mod validate_online;
