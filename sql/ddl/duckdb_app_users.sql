-- DuckDB: the `app_users` views, for a warehouse that holds the table. Run
-- after duckdb.sql, whose markers' views these read; the same two layers
-- (unionsnap_files.app_users, and app_users restricted to the complete
-- snapshots).
--
-- Imported login exports (`app_users`): one row per user of a Mini Program,
-- mobile app or website account (`kind = "mini_program" | "mobile_app" |
-- "website"`). Written by a job with such an account. Columns:
-- src/extract/app_users.rs.
--
-- Not in duckdb.sql: a view binds its files when it is created, and a job
-- without such an account never writes the table, so the view could not be
-- created. Run this file once the output holds `app_users/_delta_log/`; for
-- every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     [ -d warehouse/$t/_delta_log ] &&
--       duckdb unionsnap.duckdb < sql/ddl/duckdb_$t.sql
--   done

CREATE OR REPLACE VIEW unionsnap_files.app_users AS
SELECT * FROM delta_scan('warehouse/app_users');

-- Complete snapshots only.
CREATE OR REPLACE VIEW app_users AS
SELECT * FROM unionsnap_files.app_users
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
