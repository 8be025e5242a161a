-- Spark without Delta: the `group_members` views, for a warehouse that
-- holds the table. Run after spark_parquet.sql, whose markers' views these
-- read; the same two layers (unionsnap_files.group_members, and
-- group_members restricted to the complete snapshots).
--
-- WeCom customer group chats (`group_members`): one row per (chat, external
-- member). Written by a job with a WeCom corp that reads its customer
-- groups (`groups = true`, the default). Columns: docs/schema.md.
--
-- Not in spark_parquet.sql: a view binds its files when it is created, and
-- a job without such an account never writes the table, so the view could
-- not be created. Run this file once the output holds
-- `group_members/_delta_log/`; for every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     hadoop fs -test -d s3a://BUCKET/PREFIX/$t/_delta_log &&
--       spark-sql -f sql/ddl/spark_parquet_$t.sql
--   done

SET spark.sql.parquet.mergeSchema = true;

-- Every file on disk, committed or not: for inspection only.
CREATE OR REPLACE VIEW unionsnap_files.group_members AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/group_members`;

-- Complete snapshots only: the rows of the files the markers name.
CREATE OR REPLACE VIEW unionsnap.group_members AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/group_members`
WHERE regexp_extract(_metadata.file_path, '/(group_members/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'group_members');
