-- DuckDB: the `id_links` views, for a warehouse that holds the table. Run
-- after duckdb.sql, whose markers' views these read; the same two layers
-- (unionsnap_files.id_links, and id_links restricted to the complete
-- snapshots).
--
-- What idconvert answered (`id_links`): UnionID ↔ external_userid /
-- pending_id, the memory of a WeCom corp with `unionid_mode = "idconvert"`.
-- Written once such a corp has linked someone. Columns:
-- src/extract/idconvert.rs.
--
-- Not in duckdb.sql: a view binds its files when it is created, and a job
-- without such an account never writes the table, so the view could not be
-- created. Run this file once the output holds `id_links/_delta_log/`; for
-- every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     [ -d warehouse/$t/_delta_log ] &&
--       duckdb unionsnap.duckdb < sql/ddl/duckdb_$t.sql
--   done

CREATE OR REPLACE VIEW unionsnap_files.id_links AS
SELECT * FROM delta_scan('warehouse/id_links');

-- Complete snapshots only.
CREATE OR REPLACE VIEW id_links AS
SELECT * FROM unionsnap_files.id_links
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
