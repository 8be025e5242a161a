-- Spark SQL with Delta Lake (Databricks, or Spark 3.3+ with delta-spark and
-- a Hive metastore, Glue or Unity Catalog): a unionsnap warehouse.
--
-- Replace s3a://BUCKET/PREFIX by the job's `output` (s3a://, gs://, abfss://;
-- s3:// on Databricks). Databricks runs this as is (Unity Catalog: prefix
-- the schemas with a catalog, and the prefix must be an external location).
-- Open-source Spark needs the Delta package (delta-spark, delta-core before
-- Delta 3.0, in the release that matches your Spark) and session settings:
--   spark-sql --packages io.delta:delta-spark_2.12:<version> \
--     --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
--     --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog
--
-- A Delta table created over an existing location takes its columns,
-- partitions and files from the Delta log at every query: nothing to repair
-- after a run. The snapshot markers (_manifests/: JSON files, not a Delta
-- table) are a JSON table that lists its folder whenever a session first
-- reads it (the same statement as in spark_parquet.sql, which the tests run
-- in Spark 3.5): nothing to repair either. A session that stays up across
-- runs (a Thrift server, a notebook) sees a new date after
--   REFRESH TABLE unionsnap_files.manifests;
-- (until then the date is not complete to the views: late, never wrong).
-- For the analysis queries (sql/*.sql), which quote the reserved word "left"
-- the standard way, set (Spark 3.4+):
--   SET spark.sql.ansi.enabled = true;
--   SET spark.sql.ansi.doubleQuotedIdentifiers = true;
--
-- Two layers:
--   unionsnap_files.<table>  each Delta table at its latest version: every
--                            date committed so far, including a date whose
--                            run committed its tables but not yet its marker;
--   unionsnap.<table>        complete snapshots only: dates that have a
--                            _manifests/snapshot_date=D/manifest.json, which
--                            unionsnap writes last (the commit protocol).
-- Run the analysis queries with `USE unionsnap;`.

CREATE DATABASE IF NOT EXISTS unionsnap_files;
CREATE DATABASE IF NOT EXISTS unionsnap;

-- The snapshot markers (JSON): a date is complete when its folder holds one.
CREATE TABLE IF NOT EXISTS unionsnap_files.manifests (
  snapshot_date DATE,
  files ARRAY<STRUCT<`table`: STRING, path: STRING>>)
USING json
OPTIONS (multiLine 'true', recursiveFileLookup 'true', pathGlobFilter 'manifest.json')
LOCATION 's3a://BUCKET/PREFIX/_manifests';

CREATE TABLE IF NOT EXISTS unionsnap_files.followers
USING delta
LOCATION 's3a://BUCKET/PREFIX/followers';

CREATE TABLE IF NOT EXISTS unionsnap_files.identities
USING delta
LOCATION 's3a://BUCKET/PREFIX/identities';

CREATE TABLE IF NOT EXISTS unionsnap_files.people
USING delta
LOCATION 's3a://BUCKET/PREFIX/people';

CREATE TABLE IF NOT EXISTS unionsnap_files.audience
USING delta
LOCATION 's3a://BUCKET/PREFIX/audience';

CREATE TABLE IF NOT EXISTS unionsnap_files.overlap
USING delta
LOCATION 's3a://BUCKET/PREFIX/overlap';

CREATE TABLE IF NOT EXISTS unionsnap_files.changes
USING delta
LOCATION 's3a://BUCKET/PREFIX/changes';

-- Complete snapshots only.
CREATE OR REPLACE VIEW unionsnap.followers AS
SELECT * FROM unionsnap_files.followers
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.identities AS
SELECT * FROM unionsnap_files.identities
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.people AS
SELECT * FROM unionsnap_files.people
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.audience AS
SELECT * FROM unionsnap_files.audience
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.overlap AS
SELECT * FROM unionsnap_files.overlap
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.changes AS
SELECT * FROM unionsnap_files.changes
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- Official Accounts' own counts (#16): `tags` (WeChat's tags with our
-- members per tag) and `reconciliation` (WeChat's follower count of the day
-- before beside ours); docs/schema.md. `follower_tags`: one row per
-- (follower, tag) of the complete snapshots, the tag's name joined on (null
-- for a tag WeChat did not list).

CREATE TABLE IF NOT EXISTS unionsnap_files.tags
USING delta
LOCATION 's3a://BUCKET/PREFIX/tags';

CREATE TABLE IF NOT EXISTS unionsnap_files.reconciliation
USING delta
LOCATION 's3a://BUCKET/PREFIX/reconciliation';

CREATE OR REPLACE VIEW unionsnap.tags AS
SELECT * FROM unionsnap_files.tags
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.reconciliation AS
SELECT * FROM unionsnap_files.reconciliation
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.follower_tags AS
SELECT f.snapshot_date, f.account_id, f.openid, f.unionid, f.tag_id, t.name AS tag_name
FROM (SELECT snapshot_date, account_id, openid, unionid, explode(tagid_list) AS tag_id
      FROM unionsnap.followers) AS f
LEFT JOIN unionsnap.tags AS t
  ON t.snapshot_date = f.snapshot_date AND t.account_id = f.account_id AND t.tag_id = f.tag_id;

-- Tables only some jobs write (docs/schema.md; id_links and app_users:
-- src/extract/idconvert.rs, src/extract/app_users.rs). A job without such
-- an account never writes the table, and Delta cannot create a table over a
-- location without a Delta log (nor without columns). `spark-sql -f` stops
-- at the first error, so this section comes last: run a table's statements
-- once the output holds `<table>/_delta_log/`, and skip the others.

-- contacts: WeCom external contacts: every job with a WeCom corp (kind =
-- "wecom").
CREATE TABLE IF NOT EXISTS unionsnap_files.contacts
USING delta
LOCATION 's3a://BUCKET/PREFIX/contacts';

CREATE OR REPLACE VIEW unionsnap.contacts AS
SELECT * FROM unionsnap_files.contacts
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- group_members: WeCom customer group chats: a WeCom corp with groups =
-- true (the default).
CREATE TABLE IF NOT EXISTS unionsnap_files.group_members
USING delta
LOCATION 's3a://BUCKET/PREFIX/group_members';

CREATE OR REPLACE VIEW unionsnap.group_members AS
SELECT * FROM unionsnap_files.group_members
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- id_links: idconvert's answers: a WeCom corp with unionid_mode =
-- "idconvert" once it linked someone.
CREATE TABLE IF NOT EXISTS unionsnap_files.id_links
USING delta
LOCATION 's3a://BUCKET/PREFIX/id_links';

CREATE OR REPLACE VIEW unionsnap.id_links AS
SELECT * FROM unionsnap_files.id_links
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- app_users: imported login exports: a job with a mini_program, mobile_app
-- or website account.
CREATE TABLE IF NOT EXISTS unionsnap_files.app_users
USING delta
LOCATION 's3a://BUCKET/PREFIX/app_users';

CREATE OR REPLACE VIEW unionsnap.app_users AS
SELECT * FROM unionsnap_files.app_users
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
