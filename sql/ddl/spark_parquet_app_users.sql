-- Spark without Delta: the `app_users` views, for a warehouse that holds
-- the table. Run after spark_parquet.sql, whose markers' views these read;
-- the same two layers (unionsnap_files.app_users, and app_users restricted
-- to the complete snapshots).
--
-- Imported login exports (`app_users`): one row per user of a Mini Program,
-- mobile app or website account (`kind = "mini_program" | "mobile_app" |
-- "website"`). Written by a job with such an account. Columns:
-- src/extract/app_users.rs.
--
-- Not in spark_parquet.sql: a view binds its files when it is created, and
-- a job without such an account never writes the table, so the view could
-- not be created. Run this file once the output holds
-- `app_users/_delta_log/`; for every table only some jobs write:
--   for t in contacts group_members id_links app_users; do
--     hadoop fs -test -d s3a://BUCKET/PREFIX/$t/_delta_log &&
--       spark-sql -f sql/ddl/spark_parquet_$t.sql
--   done

SET spark.sql.parquet.mergeSchema = true;

-- Every file on disk, committed or not: for inspection only.
CREATE OR REPLACE VIEW unionsnap_files.app_users AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/app_users`;

-- Complete snapshots only: the rows of the files the markers name.
CREATE OR REPLACE VIEW unionsnap.app_users AS
SELECT * FROM parquet.`s3a://BUCKET/PREFIX/app_users`
WHERE regexp_extract(_metadata.file_path, '/(app_users/snapshot_date=.*)$', 1)
      IN (SELECT path FROM unionsnap_files.marked_files WHERE table_name = 'app_users');
