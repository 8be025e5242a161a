-- DuckDB: views over a unionsnap warehouse, read as Delta Lake tables.
--
--   duckdb unionsnap.duckdb < sql/ddl/duckdb.sql      (then: .read sql/audience.sql)
--
-- Needs DuckDB's delta extension: run `INSTALL delta; LOAD delta;` first
-- (recent releases also load it on the first delta_scan). Without it, use
-- sql/ddl/duckdb_parquet.sql instead: the same views over the Parquet files
-- the snapshot markers name, exact at every moment.
--
-- Paths are relative to where DuckDB runs: from the repository root they
-- point at `make run`'s ./warehouse. For another output replace 'warehouse'
-- everywhere by its location: a path, or s3://bucket/prefix, gs://…, az://…
-- (INSTALL httpfs/azure and CREATE SECRET first). A release of the delta
-- extension that rejects a relative path takes the absolute one,
-- file:///path/to/warehouse/<table>.
--
-- Two layers:
--   unionsnap_files.<table>  each Delta table at its latest version: every
--                            date committed so far, including a date whose
--                            run committed its tables but not yet its marker;
--   <table>                  complete snapshots only: dates that have a
--                            _manifests/snapshot_date=D/manifest.json, which
--                            unionsnap writes last (the commit protocol).
-- The analysis queries in sql/*.sql read the `identities` view.
--
-- Delta gives the partition columns their types (snapshot_date DATE,
-- account_id VARCHAR) and lists only the files of the latest version, so the
-- files a re-run superseded, which stay on disk until vacuum, are never read.
-- One window remains: a run commits its tables one by one and writes the
-- marker last, so while a re-run of a complete date is between its first
-- table commit and its marker (normally seconds) — or after a run killed
-- there, until the date is run again — a view can show that run's rows of
-- the date for the tables it already committed. duckdb_parquet.sql reads
-- exactly the files each marker names and has no such window.

CREATE SCHEMA IF NOT EXISTS unionsnap_files;

-- The snapshot markers: a date is complete when its folder holds one.
CREATE OR REPLACE VIEW unionsnap_files.manifests AS
SELECT CAST(regexp_extract(file, 'snapshot_date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE) AS snapshot_date,
       file
FROM glob('warehouse/_manifests/*/manifest.json');

CREATE OR REPLACE VIEW unionsnap_files.followers AS
SELECT * FROM delta_scan('warehouse/followers');

CREATE OR REPLACE VIEW unionsnap_files.identities AS
SELECT * FROM delta_scan('warehouse/identities');

CREATE OR REPLACE VIEW unionsnap_files.people AS
SELECT * FROM delta_scan('warehouse/people');

CREATE OR REPLACE VIEW unionsnap_files.audience AS
SELECT * FROM delta_scan('warehouse/audience');

CREATE OR REPLACE VIEW unionsnap_files.overlap AS
SELECT * FROM delta_scan('warehouse/overlap');

CREATE OR REPLACE VIEW unionsnap_files.changes AS
SELECT * FROM delta_scan('warehouse/changes');

-- Complete snapshots only.
CREATE OR REPLACE VIEW followers AS
SELECT * FROM unionsnap_files.followers
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW identities AS
SELECT * FROM unionsnap_files.identities
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW people AS
SELECT * FROM unionsnap_files.people
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW audience AS
SELECT * FROM unionsnap_files.audience
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW overlap AS
SELECT * FROM unionsnap_files.overlap
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW changes AS
SELECT * FROM unionsnap_files.changes
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- Official Accounts' own counts (#16): `tags` (WeChat's tags with our
-- members per tag) and `reconciliation` (WeChat's follower count of the day
-- before beside ours); docs/schema.md. `follower_tags`: one row per
-- (follower, tag) of the complete snapshots, the tag's name joined on (null
-- for a tag WeChat did not list).

CREATE OR REPLACE VIEW unionsnap_files.tags AS
SELECT * FROM delta_scan('warehouse/tags');

CREATE OR REPLACE VIEW unionsnap_files.reconciliation AS
SELECT * FROM delta_scan('warehouse/reconciliation');

CREATE OR REPLACE VIEW tags AS
SELECT * FROM unionsnap_files.tags
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW reconciliation AS
SELECT * FROM unionsnap_files.reconciliation
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW follower_tags AS
SELECT f.snapshot_date, f.account_id, f.openid, f.unionid, f.tag_id, t.name AS tag_name
FROM (SELECT snapshot_date, account_id, openid, unionid, unnest(tagid_list) AS tag_id
      FROM followers) AS f
LEFT JOIN tags AS t
  ON t.snapshot_date = f.snapshot_date AND t.account_id = f.account_id AND t.tag_id = f.tag_id;
