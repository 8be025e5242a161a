-- Amazon Athena (engine v3): a unionsnap warehouse in S3, read as Delta Lake
-- tables (Athena reads the Delta log natively, through AWS Glue).
--
-- Replace s3://BUCKET/PREFIX by the job's `output`. A Delta table's DDL
-- takes only its LOCATION and table_type: columns, partitions and files come
-- from the Delta log at every query, so nothing needs registering after a
-- run. They are written as Athena documents them, without IF NOT EXISTS:
-- run them once (DROP TABLE first to re-create one). The snapshot markers
-- (_manifests/: JSON files, not a Delta table) are a Hive table of text
-- lines with partition projection.
-- Athena DDL is Hive DDL; the views and the analysis queries are Trino SQL.
--
-- Two layers:
--   unionsnap_files.<table>  each Delta table at its latest version: every
--                            date committed so far, including a date whose
--                            run committed its tables but not yet its marker;
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

CREATE EXTERNAL TABLE unionsnap_files.followers
LOCATION 's3://BUCKET/PREFIX/followers/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE EXTERNAL TABLE unionsnap_files.identities
LOCATION 's3://BUCKET/PREFIX/identities/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE EXTERNAL TABLE unionsnap_files.people
LOCATION 's3://BUCKET/PREFIX/people/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE EXTERNAL TABLE unionsnap_files.audience
LOCATION 's3://BUCKET/PREFIX/audience/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE EXTERNAL TABLE unionsnap_files.overlap
LOCATION 's3://BUCKET/PREFIX/overlap/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE EXTERNAL TABLE unionsnap_files.changes
LOCATION 's3://BUCKET/PREFIX/changes/'
TBLPROPERTIES ('table_type' = 'DELTA');

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

-- Official Accounts' own counts (#16): `tags` (WeChat's tags with our
-- members per tag) and `reconciliation` (WeChat's follower count of the day
-- before beside ours); docs/schema.md. `follower_tags`: one row per
-- (follower, tag) of the complete snapshots, the tag's name joined on (null
-- for a tag WeChat did not list).

CREATE EXTERNAL TABLE unionsnap_files.tags
LOCATION 's3://BUCKET/PREFIX/tags/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE EXTERNAL TABLE unionsnap_files.reconciliation
LOCATION 's3://BUCKET/PREFIX/reconciliation/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE OR REPLACE VIEW unionsnap.tags AS
SELECT * FROM unionsnap_files.tags
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.reconciliation AS
SELECT * FROM unionsnap_files.reconciliation
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW unionsnap.follower_tags AS
SELECT f.snapshot_date, f.account_id, f.openid, f.unionid, u.tag_id, t.name AS tag_name
FROM unionsnap.followers AS f
CROSS JOIN UNNEST(f.tagid_list) AS u (tag_id)
LEFT JOIN unionsnap.tags AS t
  ON t.snapshot_date = f.snapshot_date AND t.account_id = f.account_id AND t.tag_id = u.tag_id;

-- Tables only some jobs write (docs/schema.md; id_links and app_users:
-- src/extract/idconvert.rs, src/extract/app_users.rs). A job without such
-- an account never writes the table, and creating a Delta table over a
-- location without a Delta log fails: run a table's statements once the
-- output holds `<table>/_delta_log/`, and skip the others.

-- contacts: WeCom external contacts: every job with a WeCom corp (kind =
-- "wecom").
CREATE EXTERNAL TABLE unionsnap_files.contacts
LOCATION 's3://BUCKET/PREFIX/contacts/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE OR REPLACE VIEW unionsnap.contacts AS
SELECT * FROM unionsnap_files.contacts
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- group_members: WeCom customer group chats: a WeCom corp with groups =
-- true (the default).
CREATE EXTERNAL TABLE unionsnap_files.group_members
LOCATION 's3://BUCKET/PREFIX/group_members/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE OR REPLACE VIEW unionsnap.group_members AS
SELECT * FROM unionsnap_files.group_members
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- id_links: idconvert's answers: a WeCom corp with unionid_mode =
-- "idconvert" once it linked someone.
CREATE EXTERNAL TABLE unionsnap_files.id_links
LOCATION 's3://BUCKET/PREFIX/id_links/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE OR REPLACE VIEW unionsnap.id_links AS
SELECT * FROM unionsnap_files.id_links
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

-- app_users: imported login exports: a job with a mini_program, mobile_app
-- or website account.
CREATE EXTERNAL TABLE unionsnap_files.app_users
LOCATION 's3://BUCKET/PREFIX/app_users/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE OR REPLACE VIEW unionsnap.app_users AS
SELECT * FROM unionsnap_files.app_users
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
