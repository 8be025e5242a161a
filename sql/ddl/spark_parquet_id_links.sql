-- Spark without Delta: the `id_links` views, for a warehouse that holds the
-- table. Run after spark_parquet.sql, whose markers' views these read; the
-- same two layers (unionsnap_files.id_links, and id_links restricted to the
-- complete snapshots).
--
-- What idconvert answered (`id_links`): UnionID ↔ external_userid /
-- pending_id, the memory of a WeCom corp with `unionid_mode = "idconvert"`.
-- Written once such a corp has linked someone. Columns:
-- src/extract/idconvert.rs.
--
-- Not in spark_parquet.sql: a view binds its files when it is created, and
-- a job without such an account never writes the table, so the view could
-- not be created. Run this file once the output holds
-- `id_links/_delta_log/`; for every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     hadoop fs -test -d s3a://BUCKET/PREFIX/$t/_delta_log &&
--       spark-sql -f sql/ddl/spark_parquet_$t.sql
--   done

SET spark.sql.parquet.mergeSchema = true;

-- Every file on disk, committed or not: for inspection only.
CREATE OR REPLACE VIEW unionsnap_files.id_links AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/id_links`;

-- Complete snapshots only: the rows of the files the markers name.
CREATE OR REPLACE VIEW unionsnap.id_links AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/id_links`
WHERE regexp_extract(_metadata.file_path, '/(id_links/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'id_links');
