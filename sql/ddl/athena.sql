-- Amazon Athena: external tables over a unionsnap warehouse in S3, with
-- partition projection (no MSCK REPAIR or crawler after each run).
--
-- Replace s3://BUCKET/PREFIX by the job's `output`, and the account ids in the
-- `followers` projection by the job's. Athena DDL is Hive DDL (backquoted
-- `left`); the views and the analysis queries are Trino SQL (engine v3).
--
-- Two layers:
--   unionsnap_files.<table>  every file, also of dates still being written;
--   unionsnap.<table>        complete snapshots only: dates that have a
--                            _manifests/snapshot_date=D/manifest.json, which
--                            unionsnap writes last (the commit protocol).
-- Run the analysis queries (sql/*.sql) with the database `unionsnap` selected.

CREATE DATABASE IF NOT EXISTS unionsnap_files;
CREATE DATABASE IF NOT EXISTS unionsnap;

-- The manifests, read as text lines: a date is complete when its folder holds one.
CREATE EXTERNAL TABLE IF NOT EXISTS unionsnap_files.manifests (
  line string)
PARTITIONED BY (snapshot_date date)
STORED AS TEXTFILE
LOCATION 's3://BUCKET/PREFIX/_manifests/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS');

CREATE EXTERNAL TABLE IF NOT EXISTS unionsnap_files.followers (
  openid string,
  unionid string,
  subscribe_time timestamp,
  subscribe_scene string,
  language string,
  remark string,
  tagid_list array<int>,
  qr_scene bigint,
  qr_scene_str string,
  profile_fetched_at timestamp)
PARTITIONED BY (snapshot_date date, account_id string)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/followers/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'projection.account_id.type' = 'enum',
  'projection.account_id.values' = 'brand_oa,news_oa,shop_oa,legacy_oa');

CREATE EXTERNAL TABLE IF NOT EXISTS unionsnap_files.identities (
  account_id string,
  account_kind string,
  member_id string,
  unionid string,
  joined_at timestamp)
PARTITIONED BY (snapshot_date date)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/identities/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS');

CREATE EXTERNAL TABLE IF NOT EXISTS unionsnap_files.people (
  person_id string,
  unionid string,
  resolved boolean,
  accounts array<string>,
  n_accounts bigint,
  first_joined_at timestamp)
PARTITIONED BY (snapshot_date date)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/people/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS');

CREATE EXTERNAL TABLE IF NOT EXISTS unionsnap_files.audience (
  account_id string,
  account_kind string,
  members bigint,
  resolved bigint,
  unresolved bigint,
  exclusive_people bigint,
  resolved_people bigint,
  unique_people bigint,
  duplicate_memberships bigint,
  joined bigint,
  `left` bigint)
PARTITIONED BY (snapshot_date date)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/audience/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS');

CREATE EXTERNAL TABLE IF NOT EXISTS unionsnap_files.overlap (
  account_a string,
  account_b string,
  shared_people bigint)
PARTITIONED BY (snapshot_date date)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/overlap/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS');

CREATE EXTERNAL TABLE IF NOT EXISTS unionsnap_files.changes (
  account_id string,
  member_id string,
  unionid string,
  change string)
PARTITIONED BY (snapshot_date date)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/changes/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS');

-- Complete snapshots only (Trino SQL; run each statement on its own).
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
