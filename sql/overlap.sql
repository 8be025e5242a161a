-- overlap (SPEC §4): per snapshot_date, the people (distinct UnionIDs) shared
-- by every pair of accounts a < b, zeros included — the same rows as the
-- warehouse's `overlap` table. Reads only the `identities` view (complete
-- snapshots, see sql/ddl/). Portable: runs unchanged on DuckDB, Trino/Athena
-- and Spark.
WITH
accounts AS (
    SELECT DISTINCT snapshot_date, account_id FROM identities
),
pairs AS (
    SELECT a.snapshot_date, a.account_id AS account_a, b.account_id AS account_b
    FROM accounts AS a
    JOIN accounts AS b ON b.snapshot_date = a.snapshot_date AND a.account_id < b.account_id
),
resolved AS (
    -- Members without a UnionID cannot be matched with anyone.
    SELECT DISTINCT snapshot_date, account_id, unionid
    FROM identities
    WHERE unionid IS NOT NULL
),
shared AS (
    SELECT x.snapshot_date, x.account_id AS account_a, y.account_id AS account_b,
           COUNT(*) AS shared_people
    FROM resolved AS x
    JOIN resolved AS y
      ON y.snapshot_date = x.snapshot_date AND y.unionid = x.unionid
     AND x.account_id < y.account_id
    GROUP BY x.snapshot_date, x.account_id, y.account_id
)
SELECT p.snapshot_date, p.account_a, p.account_b,
       COALESCE(s.shared_people, 0) AS shared_people
FROM pairs AS p
LEFT JOIN shared AS s
  ON s.snapshot_date = p.snapshot_date
 AND s.account_a = p.account_a AND s.account_b = p.account_b
ORDER BY snapshot_date, account_a, account_b
