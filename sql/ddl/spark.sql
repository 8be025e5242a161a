-- Spark SQL (3.3+; with a Hive metastore or Unity/Glue catalog): external
-- tables over a unionsnap warehouse.
--
-- Replace s3a://BUCKET/PREFIX by the job's `output` (s3a://, gs://, abfss://).
-- Spark does not project partitions: after each run, register the new date:
--   MSCK REPAIR TABLE unionsnap_files.<table>;      (every table below)
-- For the analysis queries (sql/*.sql), which quote the reserved word "left"
-- the standard way, set (Spark 3.4+):
--   SET spark.sql.ansi.enabled = true;
--   SET spark.sql.ansi.doubleQuotedIdentifiers = true;
--
-- Two layers:
--   unionsnap_files.<table>  every file, also of dates still being written;
--   unionsnap.<table>        complete snapshots only: dates that have a
--                            _manifests/snapshot_date=D/manifest.json, which
--                            unionsnap writes last (the commit protocol).
-- Run the analysis queries with `USE unionsnap;`.

CREATE DATABASE IF NOT EXISTS unionsnap_files;
CREATE DATABASE IF NOT EXISTS unionsnap;

-- The manifests, read as text lines: a date is complete when its folder holds one.
CREATE TABLE IF NOT EXISTS unionsnap_files.manifests (
  value STRING,
  snapshot_date DATE)
USING text
PARTITIONED BY (snapshot_date)
LOCATION 's3a://BUCKET/PREFIX/_manifests';

CREATE TABLE IF NOT EXISTS unionsnap_files.followers (
  openid STRING,
  unionid STRING,
  subscribe_time TIMESTAMP,
  subscribe_scene STRING,
  language STRING,
  remark STRING,
  tagid_list ARRAY<INT>,
  qr_scene BIGINT,
  qr_scene_str STRING,
  profile_fetched_at TIMESTAMP,
  snapshot_date DATE,
  account_id STRING)
USING parquet
PARTITIONED BY (snapshot_date, account_id)
LOCATION 's3a://BUCKET/PREFIX/followers';

CREATE TABLE IF NOT EXISTS unionsnap_files.identities (
  account_id STRING,
  account_kind STRING,
  member_id STRING,
  unionid STRING,
  joined_at TIMESTAMP,
  snapshot_date DATE)
USING parquet
PARTITIONED BY (snapshot_date)
LOCATION 's3a://BUCKET/PREFIX/identities';

CREATE TABLE IF NOT EXISTS unionsnap_files.people (
  person_id STRING,
  unionid STRING,
  resolved BOOLEAN,
  accounts ARRAY<STRING>,
  n_accounts BIGINT,
  first_joined_at TIMESTAMP,
  snapshot_date DATE)
USING parquet
PARTITIONED BY (snapshot_date)
LOCATION 's3a://BUCKET/PREFIX/people';

CREATE TABLE IF NOT EXISTS unionsnap_files.audience (
  account_id STRING,
  account_kind STRING,
  members BIGINT,
  resolved BIGINT,
  unresolved BIGINT,
  exclusive_people BIGINT,
  resolved_people BIGINT,
  unique_people BIGINT,
  duplicate_memberships BIGINT,
  joined BIGINT,
  `left` BIGINT,
  snapshot_date DATE)
USING parquet
PARTITIONED BY (snapshot_date)
LOCATION 's3a://BUCKET/PREFIX/audience';

CREATE TABLE IF NOT EXISTS unionsnap_files.overlap (
  account_a STRING,
  account_b STRING,
  shared_people BIGINT,
  snapshot_date DATE)
USING parquet
PARTITIONED BY (snapshot_date)
LOCATION 's3a://BUCKET/PREFIX/overlap';

CREATE TABLE IF NOT EXISTS unionsnap_files.changes (
  account_id STRING,
  member_id STRING,
  unionid STRING,
  change STRING,
  snapshot_date DATE)
USING parquet
PARTITIONED BY (snapshot_date)
LOCATION 's3a://BUCKET/PREFIX/changes';

MSCK REPAIR TABLE unionsnap_files.manifests;
MSCK REPAIR TABLE unionsnap_files.followers;
MSCK REPAIR TABLE unionsnap_files.identities;
MSCK REPAIR TABLE unionsnap_files.people;
MSCK REPAIR TABLE unionsnap_files.audience;
MSCK REPAIR TABLE unionsnap_files.overlap;
MSCK REPAIR TABLE unionsnap_files.changes;

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
