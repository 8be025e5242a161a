-- Trino, Hive connector: external tables over a unionsnap warehouse, with
-- partition projection (no partition registration after each run).
--
-- Replace s3://BUCKET/PREFIX by the job's `output`, and the account ids in the
-- `followers` projection by the job's. Catalog settings this assumes:
--   hive.partition-projection-enabled=true   (the default in recent releases)
--   hive.timestamp-precision=MICROSECONDS    (unionsnap writes UTC microseconds)
--   hive.parquet.time-zone=UTC
--
-- Two layers:
--   hive.unionsnap_files.<table>  every file, also of dates still being written;
--   hive.unionsnap.<table>        complete snapshots only: dates that have a
--                                 _manifests/snapshot_date=D/manifest.json, which
--                                 unionsnap writes last (the commit protocol).
-- Run the analysis queries (sql/*.sql) with `USE hive.unionsnap;`.
-- `left` is a reserved word in Trino: it is quoted "left".

CREATE SCHEMA IF NOT EXISTS hive.unionsnap_files;
CREATE SCHEMA IF NOT EXISTS hive.unionsnap;

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

CREATE TABLE IF NOT EXISTS hive.unionsnap_files.followers (
    openid varchar,
    unionid varchar,
    subscribe_time timestamp,
    subscribe_scene varchar,
    language varchar,
    remark varchar,
    tagid_list array(integer),
    qr_scene bigint,
    qr_scene_str varchar,
    profile_fetched_at timestamp,
    snapshot_date date WITH (
        partition_projection_type = 'date',
        partition_projection_format = 'yyyy-MM-dd',
        partition_projection_range = ARRAY['2024-01-01', 'NOW'],
        partition_projection_interval = 1,
        partition_projection_interval_unit = 'DAYS'),
    account_id varchar WITH (
        partition_projection_type = 'enum',
        partition_projection_values = ARRAY['brand_oa', 'news_oa', 'shop_oa', 'legacy_oa'])
) WITH (
    external_location = 's3://BUCKET/PREFIX/followers',
    format = 'PARQUET',
    partitioned_by = ARRAY['snapshot_date', 'account_id'],
    partition_projection_enabled = true
);

CREATE TABLE IF NOT EXISTS hive.unionsnap_files.identities (
    account_id varchar,
    account_kind varchar,
    member_id varchar,
    unionid varchar,
    joined_at timestamp,
    snapshot_date date WITH (
        partition_projection_type = 'date',
        partition_projection_format = 'yyyy-MM-dd',
        partition_projection_range = ARRAY['2024-01-01', 'NOW'],
        partition_projection_interval = 1,
        partition_projection_interval_unit = 'DAYS')
) WITH (
    external_location = 's3://BUCKET/PREFIX/identities',
    format = 'PARQUET',
    partitioned_by = ARRAY['snapshot_date'],
    partition_projection_enabled = true
);

CREATE TABLE IF NOT EXISTS hive.unionsnap_files.people (
    person_id varchar,
    unionid varchar,
    resolved boolean,
    accounts array(varchar),
    n_accounts bigint,
    first_joined_at timestamp,
    snapshot_date date WITH (
        partition_projection_type = 'date',
        partition_projection_format = 'yyyy-MM-dd',
        partition_projection_range = ARRAY['2024-01-01', 'NOW'],
        partition_projection_interval = 1,
        partition_projection_interval_unit = 'DAYS')
) WITH (
    external_location = 's3://BUCKET/PREFIX/people',
    format = 'PARQUET',
    partitioned_by = ARRAY['snapshot_date'],
    partition_projection_enabled = true
);

CREATE TABLE IF NOT EXISTS hive.unionsnap_files.audience (
    account_id varchar,
    account_kind varchar,
    members bigint,
    resolved bigint,
    unresolved bigint,
    exclusive_people bigint,
    resolved_people bigint,
    unique_people bigint,
    duplicate_memberships bigint,
    joined bigint,
    "left" bigint,
    snapshot_date date WITH (
        partition_projection_type = 'date',
        partition_projection_format = 'yyyy-MM-dd',
        partition_projection_range = ARRAY['2024-01-01', 'NOW'],
        partition_projection_interval = 1,
        partition_projection_interval_unit = 'DAYS')
) WITH (
    external_location = 's3://BUCKET/PREFIX/audience',
    format = 'PARQUET',
    partitioned_by = ARRAY['snapshot_date'],
    partition_projection_enabled = true
);

CREATE TABLE IF NOT EXISTS hive.unionsnap_files.overlap (
    account_a varchar,
    account_b varchar,
    shared_people bigint,
    snapshot_date date WITH (
        partition_projection_type = 'date',
        partition_projection_format = 'yyyy-MM-dd',
        partition_projection_range = ARRAY['2024-01-01', 'NOW'],
        partition_projection_interval = 1,
        partition_projection_interval_unit = 'DAYS')
) WITH (
    external_location = 's3://BUCKET/PREFIX/overlap',
    format = 'PARQUET',
    partitioned_by = ARRAY['snapshot_date'],
    partition_projection_enabled = true
);

CREATE TABLE IF NOT EXISTS hive.unionsnap_files.changes (
    account_id varchar,
    member_id varchar,
    unionid varchar,
    change varchar,
    snapshot_date date WITH (
        partition_projection_type = 'date',
        partition_projection_format = 'yyyy-MM-dd',
        partition_projection_range = ARRAY['2024-01-01', 'NOW'],
        partition_projection_interval = 1,
        partition_projection_interval_unit = 'DAYS')
) WITH (
    external_location = 's3://BUCKET/PREFIX/changes',
    format = 'PARQUET',
    partitioned_by = ARRAY['snapshot_date'],
    partition_projection_enabled = true
);

-- Complete snapshots only.
CREATE OR REPLACE VIEW hive.unionsnap.followers AS
SELECT * FROM hive.unionsnap_files.followers
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW hive.unionsnap.identities AS
SELECT * FROM hive.unionsnap_files.identities
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW hive.unionsnap.people AS
SELECT * FROM hive.unionsnap_files.people
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW hive.unionsnap.audience AS
SELECT * FROM hive.unionsnap_files.audience
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW hive.unionsnap.overlap AS
SELECT * FROM hive.unionsnap_files.overlap
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);

CREATE OR REPLACE VIEW hive.unionsnap.changes AS
SELECT * FROM hive.unionsnap_files.changes
WHERE snapshot_date IN (SELECT snapshot_date FROM hive.unionsnap_files.manifests);
