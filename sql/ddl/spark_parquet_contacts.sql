-- Spark without Delta: the `contacts` views, for a warehouse that holds the
-- table. Run after spark_parquet.sql, whose markers' views these read; the
-- same two layers (unionsnap_files.contacts, and contacts restricted to the
-- complete snapshots).
--
-- WeCom external contacts (`contacts`): one row per (external contact,
-- staff member who added them). Written by every job with a WeCom corp
-- (`kind = "wecom"`). Columns: docs/schema.md.
--
-- Not in spark_parquet.sql: a view binds its files when it is created, and
-- a job without such an account never writes the table, so the view could
-- not be created. Run this file once the output holds
-- `contacts/_delta_log/`; for every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     hadoop fs -test -d s3a://BUCKET/PREFIX/$t/_delta_log &&
--       spark-sql -f sql/ddl/spark_parquet_$t.sql
--   done

SET spark.sql.parquet.mergeSchema = true;

-- Every file on disk, committed or not: for inspection only.
CREATE OR REPLACE VIEW unionsnap_files.contacts AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/contacts`;

-- Complete snapshots only: the rows of the files the markers name.
CREATE OR REPLACE VIEW unionsnap.contacts AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/contacts`
WHERE regexp_extract(_metadata.file_path, '/(contacts/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'contacts');
