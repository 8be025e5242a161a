-- BigQuery: a unionsnap warehouse in Cloud Storage, read as Delta Lake
-- tables (BigLake tables over Delta Lake).
--
-- Replace gs://BUCKET/PREFIX by the job's `output` and PROJECT.REGION.CONNECTION
-- by a Cloud resource connection whose service account can read the bucket.
-- A Delta table's columns, partitions and files come from its Delta log at
-- every query: nothing to register after a run. Its schema is detected when
-- the table is created; after an upgrade of unionsnap that adds columns,
-- refresh it with `bq update --autodetect_schema DATASET.TABLE`.
-- The snapshot markers (_manifests/: JSON files, not a Delta table) are an
-- external table of text lines with Hive partitioning (discovered at query
-- time).
--
-- Two layers:
--   unionsnap_files.<table>  each Delta table at its latest version: every
--                            date committed so far, including a date whose
--                            run committed its tables but not yet its marker;
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
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/followers']);

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.identities
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/identities']);

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.people
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/people']);

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.audience
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/audience']);

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.overlap
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/overlap']);

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.changes
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/changes']);

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

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.tags
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/tags']);

CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.reconciliation
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/reconciliation']);

CREATE OR REPLACE VIEW unionsnap.tags AS
SELECT * FROM unionsnap_files.tags
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.reconciliation AS
SELECT * FROM unionsnap_files.reconciliation
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.follower_tags AS
SELECT f.snapshot_date, f.account_id, f.openid, f.unionid, listed_tag_id AS tag_id, t.name AS tag_name
FROM unionsnap.followers AS f
CROSS JOIN UNNEST(f.tagid_list) AS listed_tag_id
LEFT JOIN unionsnap.tags AS t
  ON t.snapshot_date = f.snapshot_date AND t.account_id = f.account_id AND t.tag_id = listed_tag_id;

-- Tables only some jobs write (docs/schema.md; id_links and app_users:
-- src/extract/idconvert.rs, src/extract/app_users.rs). A job without such
-- an account never writes the table, and BigQuery cannot create a Delta
-- Lake table without its log: run a table's statements once the output
-- holds `<table>/_delta_log/`, and skip the others.

-- contacts: WeCom external contacts: every job with a WeCom corp (kind =
-- "wecom").
CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.contacts
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/contacts']);

CREATE OR REPLACE VIEW unionsnap.contacts AS
SELECT * FROM unionsnap_files.contacts
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- group_members: WeCom customer group chats: a WeCom corp with groups =
-- true (the default).
CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.group_members
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/group_members']);

CREATE OR REPLACE VIEW unionsnap.group_members AS
SELECT * FROM unionsnap_files.group_members
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- id_links: idconvert's answers: a WeCom corp with unionid_mode =
-- "idconvert" once it linked someone.
CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.id_links
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/id_links']);

CREATE OR REPLACE VIEW unionsnap.id_links AS
SELECT * FROM unionsnap_files.id_links
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- app_users: imported login exports: a job with a mini_program, mobile_app
-- or website account.
CREATE OR REPLACE EXTERNAL TABLE unionsnap_files.app_users
WITH CONNECTION `PROJECT.REGION.CONNECTION`
OPTIONS (
  format = 'DELTA_LAKE',
  uris = ['gs://BUCKET/PREFIX/app_users']);

CREATE OR REPLACE VIEW unionsnap.app_users AS
SELECT * FROM unionsnap_files.app_users
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
