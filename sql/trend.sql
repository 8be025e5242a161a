-- The trend: per snapshot_date, gross memberships against unique people —
-- the `*` row of `audience` over time. Reads only the `identities` view
-- (complete snapshots, see sql/ddl/). Portable: runs unchanged on DuckDB,
-- Trino/Athena and Spark.
WITH
members AS (
    SELECT DISTINCT snapshot_date, account_id, member_id, unionid FROM identities
),
per_date AS (
    SELECT snapshot_date,
           COUNT(*) AS members,
           COUNT(DISTINCT unionid) AS resolved_people,
           COUNT(CASE WHEN unionid IS NULL THEN 1 END) AS unresolved
    FROM members
    GROUP BY snapshot_date
)
SELECT snapshot_date,
       members,
       resolved_people,
       resolved_people + unresolved AS unique_people,
       members - (resolved_people + unresolved) AS duplicate_memberships
FROM per_date
ORDER BY snapshot_date
