-- DuckDB: views over a unionsnap warehouse.
--
--   duckdb unionsnap.duckdb < sql/ddl/duckdb.sql      (then: .read sql/audience.sql)
--
-- Paths are relative to where DuckDB runs: from the repository root they
-- point at `make run`'s ./warehouse. For another output replace 'warehouse'
-- everywhere by its location: a path, or s3://bucket/prefix, gs://…, az://…
-- (INSTALL httpfs/azure and CREATE SECRET first).
--
-- Two layers:
--   unionsnap_files.<table>  every file in the output, including dates whose
--                            run is still writing or stopped half-way;
--   <table>                  complete snapshots only: dates that have a
--                            _manifests/snapshot_date=D/manifest.json, which
--                            unionsnap writes last (the commit protocol).
-- The analysis queries in sql/*.sql read the `identities` view.
-- hive_types pins the partition types: an account id such as "2024" would
-- otherwise be read as a number.

CREATE SCHEMA IF NOT EXISTS unionsnap_files;

CREATE OR REPLACE VIEW unionsnap_files.manifests AS
SELECT CAST(regexp_extract(file, 'snapshot_date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE) AS snapshot_date,
       file
FROM glob('warehouse/_manifests/*/manifest.json');

CREATE OR REPLACE VIEW unionsnap_files.followers AS
SELECT * FROM read_parquet('warehouse/followers/*/*/*.parquet', hive_partitioning = true,
                           hive_types = {'snapshot_date': DATE, 'account_id': VARCHAR});

CREATE OR REPLACE VIEW unionsnap_files.identities AS
SELECT * FROM read_parquet('warehouse/identities/*/*.parquet', hive_partitioning = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.people AS
SELECT * FROM read_parquet('warehouse/people/*/*.parquet', hive_partitioning = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.audience AS
SELECT * FROM read_parquet('warehouse/audience/*/*.parquet', hive_partitioning = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.overlap AS
SELECT * FROM read_parquet('warehouse/overlap/*/*.parquet', hive_partitioning = true,
                           hive_types = {'snapshot_date': DATE});

CREATE OR REPLACE VIEW unionsnap_files.changes AS
SELECT * FROM read_parquet('warehouse/changes/*/*.parquet', hive_partitioning = true,
                           hive_types = {'snapshot_date': DATE});

-- Complete snapshots only.
CREATE OR REPLACE VIEW followers AS
SELECT * FROM unionsnap_files.followers
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW identities AS
SELECT * FROM unionsnap_files.identities
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW people AS
SELECT * FROM unionsnap_files.people
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW audience AS
SELECT * FROM unionsnap_files.audience
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW overlap AS
SELECT * FROM unionsnap_files.overlap
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);

CREATE OR REPLACE VIEW changes AS
SELECT * FROM unionsnap_files.changes
WHERE snapshot_date IN (SELECT snapshot_date FROM unionsnap_files.manifests);
