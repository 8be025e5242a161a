//! End-to-end tests: the real binary against the simulator over real HTTP,
//! Parquet read back by polars and by DuckDB, S3 through moto's server.

mod changes;
mod common;
mod job_errors;
mod official_account;
mod report;
mod s3;
mod schema;
mod secrets;
mod sql_parity;
