-- DuckDB: the `contacts` views, for a warehouse that holds the table. Run
-- after duckdb.sql, whose markers' views these read; the same two layers
-- (unionsnap_files.contacts, and contacts restricted to the complete
-- snapshots).
--
-- WeCom external contacts (`contacts`): one row per (external contact,
-- staff member who added them). Written by every job with a WeCom corp
-- (`kind = "wecom"`). Columns: docs/schema.md.
--
-- Not in duckdb.sql: a view binds its files when it is created, and a job
-- without such an account never writes the table, so the view could not be
-- created. Run this file once the output holds `contacts/_delta_log/`; for
-- every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     [ -d warehouse/$t/_delta_log ] &&
--       duckdb unionsnap.duckdb < sql/ddl/duckdb_$t.sql
--   done

CREATE OR REPLACE VIEW unionsnap_files.contacts AS
SELECT * FROM delta_scan('warehouse/contacts');

-- Complete snapshots only.
CREATE OR REPLACE VIEW contacts AS
SELECT * FROM unionsnap_files.contacts
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
