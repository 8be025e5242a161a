-- DuckDB without the delta extension: the views of duckdb.sql over the
-- Parquet files themselves, restricted to the files the snapshot markers name.
--
--   duckdb unionsnap.duckdb < sql/ddl/duckdb_parquet.sql   (then: .read sql/audience.sql)
--
-- Same paths, same two layers and same view names as duckdb.sql, so the
-- analysis queries (sql/*.sql) run unchanged on either. The views need at
-- least one snapshot marker and one file of each table to be created.
--
-- Why the filter: the folders hold more than the committed snapshots. A
-- re-run of a date commits new files and removes the date's old ones from
-- the Delta log, but the old files stay on disk until a vacuum deletes them,
-- which happens once they were removed longer than the retention period ago
-- (UNIONSNAP_VACUUM_RETENTION, default 24 h; vacuum runs at the end of every
-- committed run and as `unionsnap vacuum`). So from a re-run's commit until
-- the first vacuum at least 24 h later — with one run a day, until the
-- first or the second run after it — a plain glob over the date's folders
-- reads the superseded files and the new ones: the date's rows twice, old
-- and new. The folders also hold the files of runs that failed or were
-- killed before their commit, and partitions landed by `--shard` runs that
-- `merge` has not committed yet. The marker of a date names every file of
-- its complete snapshot (`files[].path`, relative to the output root), so
-- the views below keep a row only when its file is named by a marker: exact
-- at every moment, also while a re-run is between its table commits and its
-- marker (the marker's files are never vacuumed).
--
-- The globs name the partition folders (snapshot_date=*/…) rather than
-- **/*.parquet: each table's _delta_log/ also holds Parquet files (the log's
-- checkpoints), which are not data. hive_types pins the partition types: an
-- account id such as "2024" would otherwise be read as a number.
-- union_by_name reads older files that lack a column added since
-- (docs/schema.md) with NULLs in it.

CREATE SCHEMA IF NOT EXISTS unionsnap_files;

-- The snapshot markers: a date is complete when its folder holds one.
CREATE OR REPLACE VIEW unionsnap_files.manifests AS
SELECT CAST(regexp_extract(file, 'snapshot_date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE) AS snapshot_date,
       file
FROM glob('warehouse/_manifests/*/manifest.json');

-- Every data file of every complete snapshot, spelled as read_parquet's
-- `filename` column spells it.
CREATE OR REPLACE VIEW unionsnap_files.marked_files AS
SELECT marked.file."table" AS table_name,
       'warehouse/' || marked.file.path AS file
FROM (SELECT unnest(files) AS file
      FROM read_json('warehouse/_manifests/*/manifest.json',
                     columns = {'snapshot_date': 'DATE',
                                'files': 'STRUCT("table" VARCHAR, path VARCHAR)[]'})) AS marked;

-- Every file on disk, committed or not (see above): for inspection only.
CREATE OR REPLACE VIEW unionsnap_files.followers AS
SELECT * FROM read_parquet('warehouse/followers/snapshot_date=*/account_id=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE, 'account_id': VARCHAR});

CREATE OR REPLACE VIEW unionsnap_files.identities AS
SELECT * FROM read_parquet('warehouse/identities/snapshot_date=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.people AS
SELECT * FROM read_parquet('warehouse/people/snapshot_date=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.audience AS
SELECT * FROM read_parquet('warehouse/audience/snapshot_date=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.overlap AS
SELECT * FROM read_parquet('warehouse/overlap/snapshot_date=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.changes AS
SELECT * FROM read_parquet('warehouse/changes/snapshot_date=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE});

-- Complete snapshots only: the rows of the files the markers name.
-- (The partition columns in the Delta tables' order, as in duckdb.sql.)
CREATE OR REPLACE VIEW followers AS
SELECT * EXCLUDE (filename, snapshot_date, account_id), snapshot_date, account_id
FROM unionsnap_files.followers
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

CREATE OR REPLACE VIEW identities AS
SELECT * EXCLUDE (filename) FROM unionsnap_files.identities
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

CREATE OR REPLACE VIEW people AS
SELECT * EXCLUDE (filename) FROM unionsnap_files.people
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

CREATE OR REPLACE VIEW audience AS
SELECT * EXCLUDE (filename) FROM unionsnap_files.audience
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

CREATE OR REPLACE VIEW overlap AS
SELECT * EXCLUDE (filename) FROM unionsnap_files.overlap
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

CREATE OR REPLACE VIEW changes AS
SELECT * EXCLUDE (filename) FROM unionsnap_files.changes
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

-- Official Accounts' own counts (#16): `tags` (WeChat's tags with our
-- members per tag) and `reconciliation` (WeChat's follower count of the day
-- before beside ours); docs/schema.md. `follower_tags`: one row per
-- (follower, tag) of the complete snapshots, the tag's name joined on (null
-- for a tag WeChat did not list).

CREATE OR REPLACE VIEW unionsnap_files.tags AS
SELECT * FROM read_parquet('warehouse/tags/snapshot_date=*/account_id=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE, 'account_id': VARCHAR});

CREATE OR REPLACE VIEW unionsnap_files.reconciliation AS
SELECT * FROM read_parquet('warehouse/reconciliation/snapshot_date=*/account_id=*/*.parquet',
                           hive_partitioning = true, filename = true, union_by_name = true,
                           hive_types = {'snapshot_date': DATE, 'account_id': VARCHAR});

CREATE OR REPLACE VIEW tags AS
SELECT * EXCLUDE (filename, snapshot_date, account_id), snapshot_date, account_id
FROM unionsnap_files.tags
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

CREATE OR REPLACE VIEW reconciliation AS
SELECT * EXCLUDE (filename, snapshot_date, account_id), snapshot_date, account_id
FROM unionsnap_files.reconciliation
WHERE filename IN (SELECT file FROM unionsnap_files.marked_files);

CREATE OR REPLACE VIEW follower_tags AS
SELECT f.snapshot_date, f.account_id, f.openid, f.unionid, f.tag_id, t.name AS tag_name
FROM (SELECT snapshot_date, account_id, openid, unionid, unnest(tagid_list) AS tag_id
      FROM followers) AS f
LEFT JOIN tags AS t
  ON t.snapshot_date = f.snapshot_date AND t.account_id = f.account_id AND t.tag_id = f.tag_id;
