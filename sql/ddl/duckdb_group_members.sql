-- DuckDB: the `group_members` views, for a warehouse that holds the table.
-- Run after duckdb.sql, whose markers' views these read; the same two
-- layers (unionsnap_files.group_members, and group_members restricted to
-- the complete snapshots).
--
-- WeCom customer group chats (`group_members`): one row per (chat, external
-- member). Written by a job with a WeCom corp that reads its customer
-- groups (`groups = true`, the default). Columns: docs/schema.md.
--
-- Not in duckdb.sql: a view binds its files when it is created, and a job
-- without such an account never writes the table, so the view could not be
-- created. Run this file once the output holds `group_members/_delta_log/`;
-- for every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     [ -d warehouse/$t/_delta_log ] &&
--       duckdb unionsnap.duckdb < sql/ddl/duckdb_$t.sql
--   done

CREATE OR REPLACE VIEW unionsnap_files.group_members AS
SELECT * FROM delta_scan('warehouse/group_members');

-- Complete snapshots only.
CREATE OR REPLACE VIEW group_members AS
SELECT * FROM unionsnap_files.group_members
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
