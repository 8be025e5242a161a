-- Spark SQL without Delta Lake (plain open-source Spark 3.3+, a Hive
-- metastore or Glue): the views of spark.sql over the Parquet files
-- themselves, restricted to the files the snapshot markers name.
--
--   spark-sql -f sql/ddl/spark_parquet.sql     (then, with the settings below: -f sql/audience.sql)
--
-- Databricks, or Spark started with the Delta package: use spark.sql, which
-- reads the Delta tables. This file is for a Spark that cannot load Delta's
-- jars. Replace s3a://BUCKET/PREFIX by the job's `output` (s3a://, gs://,
-- abfss://, file:/ for a local folder). Same database, view and column names
-- as spark.sql, so the analysis queries (sql/*.sql) run unchanged on either;
-- for their "left", set (Spark 3.4+):
--   SET spark.sql.ansi.enabled = true;
--   SET spark.sql.ansi.doubleQuotedIdentifiers = true;
--
-- Why the filter: the folders hold more than the committed snapshots. A
-- re-run of a date commits new files and removes the date's old ones from
-- the Delta log, but the old files stay on disk until a vacuum deletes them
-- (UNIONSNAP_VACUUM_RETENTION, default 24 h), and runs that failed or were
-- killed, and `--shard` runs not yet merged, leave files no snapshot names.
-- A plain Spark table over a folder reads them all. The marker of a date
-- names every file of its complete snapshot (`files[].path`, relative to the
-- output root; never vacuumed), so each view keeps a row only when its file
-- (`_metadata.file_path`, Spark 3.3+) is one a marker names.
--
-- Nothing to repair after a run: the data views read their folders at every
-- query (`parquet.`…``: files and `snapshot_date=`/`account_id=` partitions
-- discovered then; Spark skips `_delta_log/`, whose checkpoints are Parquet
-- too), and the markers' table lists its folder whenever a session first
-- reads it. A session that stays up across runs (a Thrift server, a
-- notebook) sees a new date after
--   REFRESH TABLE unionsnap_files.manifests;
-- (until then the date is not complete to the views: late, never wrong).
-- mergeSchema reads every file's footer so that files written before a
-- column was added (docs/schema.md) are read with NULLs in it; the views
-- keep the setting they were created with. A Spark view fixes its columns
-- when it is created: after an upgrade of unionsnap that adds columns, run
-- this file again. The views need one committed snapshot to be created.
--
-- Two layers, as in spark.sql:
--   unionsnap_files.<table>  every file on disk, committed or not: for
--                            inspection only;
--   unionsnap.<table>        complete snapshots only: the rows of the files
--                            the markers name.
-- Run the analysis queries with `USE unionsnap;`.

SET spark.sql.parquet.mergeSchema = true;

CREATE DATABASE IF NOT EXISTS unionsnap_files;
CREATE DATABASE IF NOT EXISTS unionsnap;

-- The snapshot markers (JSON): a date is complete when its folder holds one.
CREATE TABLE IF NOT EXISTS unionsnap_files.manifests (
  snapshot_date DATE,
  files ARRAY<STRUCT<`table`: STRING, path: STRING>>)
USING json
OPTIONS (multiLine 'true', recursiveFileLookup 'true', pathGlobFilter 'manifest.json')
LOCATION 's3a://BUCKET/PREFIX/_manifests';

-- Every data file of every complete snapshot, relative to the output root.
CREATE OR REPLACE VIEW unionsnap_files.marked_files AS
SELECT file.`table` AS table_name, file.path AS path
FROM unionsnap_files.manifests
LATERAL VIEW explode(files) AS file;

-- Every file on disk, committed or not (see above): for inspection only.
CREATE OR REPLACE VIEW unionsnap_files.followers AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/followers`;

CREATE OR REPLACE VIEW unionsnap_files.identities AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/identities`;

CREATE OR REPLACE VIEW unionsnap_files.people AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/people`;

CREATE OR REPLACE VIEW unionsnap_files.audience AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/audience`;

CREATE OR REPLACE VIEW unionsnap_files.overlap AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/overlap`;

CREATE OR REPLACE VIEW unionsnap_files.changes AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/changes`;

-- Complete snapshots only: the rows of the files the markers name. A file's
-- path relative to the output root is the end of its full path from the
-- table's folder on, however the prefix is spelled (s3a://, file:/).
CREATE OR REPLACE VIEW unionsnap.followers AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/followers`
WHERE regexp_extract(_metadata.file_path, '/(followers/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'followers');

CREATE OR REPLACE VIEW unionsnap.identities AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/identities`
WHERE regexp_extract(_metadata.file_path, '/(identities/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'identities');

CREATE OR REPLACE VIEW unionsnap.people AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/people`
WHERE regexp_extract(_metadata.file_path, '/(people/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'people');

CREATE OR REPLACE VIEW unionsnap.audience AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/audience`
WHERE regexp_extract(_metadata.file_path, '/(audience/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'audience');

CREATE OR REPLACE VIEW unionsnap.overlap AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/overlap`
WHERE regexp_extract(_metadata.file_path, '/(overlap/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'overlap');

CREATE OR REPLACE VIEW unionsnap.changes AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/changes`
WHERE regexp_extract(_metadata.file_path, '/(changes/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'changes');

-- Official Accounts' own counts (#16): `tags` (WeChat's tags with our
-- members per tag) and `reconciliation` (WeChat's follower count of the day
-- before beside ours); docs/schema.md. `follower_tags`: one row per
-- (follower, tag) of the complete snapshots, the tag's name joined on (null
-- for a tag WeChat did not list).

CREATE OR REPLACE VIEW unionsnap_files.tags AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/tags`;

CREATE OR REPLACE VIEW unionsnap_files.reconciliation AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/reconciliation`;

CREATE OR REPLACE VIEW unionsnap.tags AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/tags`
WHERE regexp_extract(_metadata.file_path, '/(tags/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'tags');

CREATE OR REPLACE VIEW unionsnap.reconciliation AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/reconciliation`
WHERE regexp_extract(_metadata.file_path, '/(reconciliation/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'reconciliation');

CREATE OR REPLACE VIEW unionsnap.follower_tags AS
SELECT f.snapshot_date, f.account_id, f.openid, f.unionid, f.tag_id, t.name AS tag_name
FROM (SELECT snapshot_date, account_id, openid, unionid, explode(tagid_list) AS tag_id
      FROM unionsnap.followers) AS f
LEFT JOIN unionsnap.tags AS t
  ON t.snapshot_date = f.snapshot_date AND t.account_id = f.account_id AND t.tag_id = f.tag_id;
