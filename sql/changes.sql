-- changes (SPEC §4): per snapshot_date, every member who joined an account
-- since the previous complete snapshot or left it — the same rows as the
-- warehouse's `changes` table. The first snapshot has no rows. Reads only the
-- `identities` view (complete snapshots, see sql/ddl/). Portable: runs
-- unchanged on DuckDB, Trino/Athena and Spark.
WITH
dates AS (
    SELECT snapshot_date,
           LAG(snapshot_date) OVER (ORDER BY snapshot_date) AS previous_date
    FROM (SELECT DISTINCT snapshot_date FROM identities) AS d
),
members AS (
    SELECT DISTINCT snapshot_date, account_id, member_id, unionid
    FROM identities
)
SELECT d.snapshot_date, cur.account_id, cur.member_id, cur.unionid, 'joined' AS change
FROM dates AS d
JOIN members AS cur ON cur.snapshot_date = d.snapshot_date
LEFT JOIN members AS prev
  ON prev.snapshot_date = d.previous_date
 AND prev.account_id = cur.account_id AND prev.member_id = cur.member_id
WHERE d.previous_date IS NOT NULL AND prev.member_id IS NULL
UNION ALL
-- A leaver's unionid is the one of the previous snapshot.
SELECT d.snapshot_date, prev.account_id, prev.member_id, prev.unionid, 'left' AS change
FROM dates AS d
JOIN members AS prev ON prev.snapshot_date = d.previous_date
LEFT JOIN members AS cur
  ON cur.snapshot_date = d.snapshot_date
 AND cur.account_id = prev.account_id AND cur.member_id = prev.member_id
WHERE cur.member_id IS NULL
ORDER BY snapshot_date, account_id, member_id, change
