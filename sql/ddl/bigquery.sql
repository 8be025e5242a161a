-- BigQuery: external tables over a unionsnap warehouse in Cloud Storage,
-- with Hive partitioning (partitions are discovered at query time: nothing to
-- register after a run).
--
-- Replace gs://BUCKET/PREFIX by the job's `output`. Column types come from
-- the Parquet files (enable_list_inference reads list columns as ARRAY).
--
-- Two layers:
--   unionsnap_files.<table>  every file, also of dates still being written;
--   unionsnap.<table>        complete snapshots only: dates that have a
--                            _manifests/snapshot_date=D/manifest.json, which
--                            unionsnap writes last (the commit protocol).
-- The analysis queries (sql/*.sql) need two edits for BigQuery: `left`
-- quoted with backquotes instead of "left", and in upset.sql
-- ARRAY_TO_STRING(ARRAY_AGG(account_id ORDER BY account_id), ',') instead of
-- array_sort(array_agg(account_id)) (BigQuery cannot GROUP BY an array).

CREATE SCHEMA IF NOT EXISTS unionsnap_files;
CREATE SCHEMA IF NOT EXISTS unionsnap;

-- The manifests, read as lines of text (tab-separated: JSON never holds a raw
-- tab), so that a date is complete when its folder holds one.
CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.manifests (line STRING)
WITH PARTITION COLUMNS (snapshot_date DATE)
OPTIONS (
  format = 'CSV',
  field_delimiter = '\t',
  quote = '',
  uris = ['gs://BUCKET/PREFIX/_manifests/*'],
  hive_partition_uri_prefix = 'gs://BUCKET/PREFIX/_manifests');

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.followers
WITH PARTITION COLUMNS (snapshot_date DATE, account_id STRING)
OPTIONS (
  format = 'PARQUET',
  enable_list_inference = TRUE,
  uris = ['gs://BUCKET/PREFIX/followers/*'],
  hive_partition_uri_prefix = 'gs://BUCKET/PREFIX/followers');

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.identities
WITH PARTITION COLUMNS (snapshot_date DATE)
OPTIONS (
  format = 'PARQUET',
  uris = ['gs://BUCKET/PREFIX/identities/*'],
  hive_partition_uri_prefix = 'gs://BUCKET/PREFIX/identities');

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.people
WITH PARTITION COLUMNS (snapshot_date DATE)
OPTIONS (
  format = 'PARQUET',
  enable_list_inference = TRUE,
  uris = ['gs://BUCKET/PREFIX/people/*'],
  hive_partition_uri_prefix = 'gs://BUCKET/PREFIX/people');

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.audience
WITH PARTITION COLUMNS (snapshot_date DATE)
OPTIONS (
  format = 'PARQUET',
  uris = ['gs://BUCKET/PREFIX/audience/*'],
  hive_partition_uri_prefix = 'gs://BUCKET/PREFIX/audience');

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.overlap
WITH PARTITION COLUMNS (snapshot_date DATE)
OPTIONS (
  format = 'PARQUET',
  uris = ['gs://BUCKET/PREFIX/overlap/*'],
  hive_partition_uri_prefix = 'gs://BUCKET/PREFIX/overlap');

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.changes
WITH PARTITION COLUMNS (snapshot_date DATE)
OPTIONS (
  format = 'PARQUET',
  uris = ['gs://BUCKET/PREFIX/changes/*'],
  hive_partition_uri_prefix = 'gs://BUCKET/PREFIX/changes');

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
