-- DuckDB without delta: the `app_users` views, for a warehouse that holds
-- the table. Run after duckdb_parquet.sql, whose markers' views these read;
-- the same two layers (unionsnap_files.app_users, and app_users restricted
-- to the complete snapshots).
--
-- Imported login exports (`app_users`): one row per user of a Mini Program,
-- mobile app or website account (`kind = "mini_program" | "mobile_app" |
-- "website"`). Written by a job with such an account. Columns:
-- src/extract/app_users.rs.
--
-- Not in duckdb_parquet.sql: a view binds its files when it is created, and
-- a job without such an account never writes the table, so the view could
-- not be created. Run this file once the output holds
-- `app_users/_delta_log/`; for every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     [ -d warehouse/$t/_delta_log ] &&
--       duckdb unionsnap.duckdb < sql/ddl/duckdb_parquet_$t.sql
--   done

-- Every file on disk, committed or not: for inspection only.
CREATE OR REPLACE VIEW unionsnap_files.app_users AS
SELECT * FROM read_parquet('warehouse/app_users/snapshot_date=*/account_id=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE, 'account_id': VARCHAR});

-- Complete snapshots only: the rows of the files the markers name.
-- (The partition columns last, in the Delta table's order.)
CREATE OR REPLACE VIEW app_users AS
SELECT * EXCLUDE (filename, snapshot_date, account_id), snapshot_date, account_id
FROM unionsnap_files.app_users
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);
