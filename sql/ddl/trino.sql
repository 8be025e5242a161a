-- Trino: a unionsnap warehouse through the Delta Lake connector.
--
-- Replace s3://BUCKET/PREFIX by the job's `output`. Two catalogs on the same
-- metastore (Hive metastore or Glue) and file system:
--   delta  (etc/catalog/delta.properties): connector.name=delta_lake, with
--          delta.register-table-procedure.enabled=true (register_table is
--          off by default) and delta.parquet.time-zone=UTC;
--   hive   (etc/catalog/hive.properties): connector.name=hive, only for the
--          snapshot markers: _manifests/ is a folder of JSON files, not a
--          Delta table. Partition projection is on by default in recent
--          releases (hive.partition-projection-enabled).
--
-- Each table is registered once: its schema, partitions and files come from
-- its Delta log at every query, so nothing needs registering after a run.
-- register_table fails on a name already registered; to re-register, CALL
-- delta.system.unregister_table(schema_name => …, table_name => …) first.
-- The connector reads Delta's TIMESTAMP as timestamp(3) with time zone:
-- unionsnap's microseconds are read as milliseconds.
--
-- Two layers:
--   delta.unionsnap_files.<table>  each Delta table at its latest version:
--                                  every date committed so far, including a
--                                  date whose run committed its tables but
--                                  not yet its marker;
--   delta.unionsnap.<table>        complete snapshots only: dates that have a
--                                  _manifests/snapshot_date=D/manifest.json,
--                                  which unionsnap writes last (the commit
--                                  protocol).
-- Run the analysis queries (sql/*.sql) with `USE delta.unionsnap;`.
-- `left` is a reserved word in Trino: it is quoted "left".

CREATE SCHEMA IF NOT EXISTS delta.unionsnap_files;
CREATE SCHEMA IF NOT EXISTS delta.unionsnap;
CREATE SCHEMA IF NOT EXISTS hive.unionsnap_files;

-- The manifests, read as text: a date is complete when its folder holds one.
CREATE TABLE IF NOT EXISTS hive.unionsnap_files.manifests (
    line varchar,
    snapshot_date date WITH (
        partition_projection_type = 'date',
        partition_projection_format = 'yyyy-MM-dd',
        partition_projection_range = ARRAY['2024-01-01', 'NOW'],
        partition_projection_interval = 1,
        partition_projection_interval_unit = 'DAYS')
) WITH (
    external_location = 's3://BUCKET/PREFIX/_manifests',
    format = 'TEXTFILE',
    partitioned_by = ARRAY['snapshot_date'],
    partition_projection_enabled = true
);

CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'followers',
                                 table_location => 's3://BUCKET/PREFIX/followers');
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'identities',
                                 table_location => 's3://BUCKET/PREFIX/identities');
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'people',
                                 table_location => 's3://BUCKET/PREFIX/people');
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'audience',
                                 table_location => 's3://BUCKET/PREFIX/audience');
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'overlap',
                                 table_location => 's3://BUCKET/PREFIX/overlap');
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'changes',
                                 table_location => 's3://BUCKET/PREFIX/changes');

-- Complete snapshots only.
CREATE OR REPLACE VIEW delta.unionsnap.followers AS
SELECT * FROM delta.unionsnap_files.followers
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW delta.unionsnap.identities AS
SELECT * FROM delta.unionsnap_files.identities
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW delta.unionsnap.people AS
SELECT * FROM delta.unionsnap_files.people
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW delta.unionsnap.audience AS
SELECT * FROM delta.unionsnap_files.audience
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW delta.unionsnap.overlap AS
SELECT * FROM delta.unionsnap_files.overlap
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW delta.unionsnap.changes AS
SELECT * FROM delta.unionsnap_files.changes
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

-- Official Accounts' own counts (#16): `tags` (WeChat's tags with our
-- members per tag) and `reconciliation` (WeChat's follower count of the day
-- before beside ours); docs/schema.md. `follower_tags`: one row per
-- (follower, tag) of the complete snapshots, the tag's name joined on (null
-- for a tag WeChat did not list).

CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'tags',
                                 table_location => 's3://BUCKET/PREFIX/tags');

CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'reconciliation',
                                 table_location => 's3://BUCKET/PREFIX/reconciliation');

CREATE OR REPLACE VIEW delta.unionsnap.tags AS
SELECT * FROM delta.unionsnap_files.tags
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW delta.unionsnap.reconciliation AS
SELECT * FROM delta.unionsnap_files.reconciliation
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW delta.unionsnap.follower_tags AS
SELECT f.snapshot_date, f.account_id, f.openid, f.unionid, u.tag_id, t.name AS tag_name
FROM delta.unionsnap.followers AS f
CROSS JOIN UNNEST(f.tagid_list) AS u (tag_id)
LEFT JOIN delta.unionsnap.tags AS t
  ON t.snapshot_date = f.snapshot_date AND t.account_id = f.account_id AND t.tag_id = u.tag_id;

-- Tables only some jobs write (docs/schema.md; id_links and app_users:
-- src/extract/idconvert.rs, src/extract/app_users.rs). A job without such
-- an account never writes the table, and register_table fails on a location
-- without a Delta log: run a table's statements once the output holds
-- `<table>/_delta_log/`, and skip the others.

-- contacts: WeCom external contacts: every job with a WeCom corp (kind =
-- "wecom").
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'contacts',
                                 table_location => 's3://BUCKET/PREFIX/contacts');

CREATE OR REPLACE VIEW delta.unionsnap.contacts AS
SELECT * FROM delta.unionsnap_files.contacts
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

-- group_members: WeCom customer group chats: a WeCom corp with groups =
-- true (the default).
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'group_members',
                                 table_location => 's3://BUCKET/PREFIX/group_members');

CREATE OR REPLACE VIEW delta.unionsnap.group_members AS
SELECT * FROM delta.unionsnap_files.group_members
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

-- id_links: idconvert's answers: a WeCom corp with unionid_mode =
-- "idconvert" once it linked someone.
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'id_links',
                                 table_location => 's3://BUCKET/PREFIX/id_links');

CREATE OR REPLACE VIEW delta.unionsnap.id_links AS
SELECT * FROM delta.unionsnap_files.id_links
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

-- app_users: imported login exports: a job with a mini_program, mobile_app
-- or website account.
CALL delta.system.register_table(schema_name => 'unionsnap_files', table_name => 'app_users',
                                 table_location => 's3://BUCKET/PREFIX/app_users');

CREATE OR REPLACE VIEW delta.unionsnap.app_users AS
SELECT * FROM delta.unionsnap_files.app_users
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);
