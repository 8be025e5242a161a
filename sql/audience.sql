-- audience (SPEC §5): per snapshot_date, one row per account and the `*` row
-- with the deduplicated totals, the same rows as the warehouse's `audience`
-- table. Reads only the `identities` view (complete snapshots, see sql/ddl/).
-- Portable: runs unchanged on DuckDB, Trino/Athena and Spark (see README.md
-- for Spark's quoting of "left").
WITH
dates AS (
    -- The previous complete snapshot of each date (NULL for the first).
    SELECT snapshot_date,
           LAG(snapshot_date) OVER (ORDER BY snapshot_date) AS previous_date
    FROM (SELECT DISTINCT snapshot_date FROM identities) AS d
),
members AS (
    -- One row per (date, account, member); a member without a UnionID is a
    -- person of its own, `account_id/member_id`.
    SELECT DISTINCT snapshot_date, account_id, account_kind, member_id, unionid,
           CASE WHEN unionid IS NOT NULL THEN unionid
                ELSE concat(account_id, '/', member_id) END AS person_id
    FROM identities
),
reach AS (
    -- In how many accounts each person is a member.
    SELECT snapshot_date, person_id, COUNT(DISTINCT account_id) AS n_accounts
    FROM members
    GROUP BY snapshot_date, person_id
),
per_account AS (
    SELECT m.snapshot_date, m.account_id,
           MAX(m.account_kind) AS account_kind,
           COUNT(DISTINCT m.member_id) AS members,
           COUNT(DISTINCT CASE WHEN m.unionid IS NOT NULL THEN m.member_id END) AS resolved,
           COUNT(DISTINCT CASE WHEN r.n_accounts = 1 THEN m.person_id END) AS exclusive_people
    FROM members AS m
    JOIN reach AS r ON r.snapshot_date = m.snapshot_date AND r.person_id = m.person_id
    GROUP BY m.snapshot_date, m.account_id
),
member_changes AS (
    -- Members present now and absent from the previous snapshot, and the reverse.
    SELECT d.snapshot_date, cur.account_id, 'joined' AS change
    FROM dates AS d
    JOIN members AS cur ON cur.snapshot_date = d.snapshot_date
    LEFT JOIN members AS prev
      ON prev.snapshot_date = d.previous_date
     AND prev.account_id = cur.account_id AND prev.member_id = cur.member_id
    WHERE d.previous_date IS NOT NULL AND prev.member_id IS NULL
    UNION ALL
    SELECT d.snapshot_date, prev.account_id, 'left' AS change
    FROM dates AS d
    JOIN members AS prev ON prev.snapshot_date = d.previous_date
    LEFT JOIN members AS cur
      ON cur.snapshot_date = d.snapshot_date
     AND cur.account_id = prev.account_id AND cur.member_id = prev.member_id
    WHERE cur.member_id IS NULL
),
account_changes AS (
    SELECT snapshot_date, account_id,
           COUNT(CASE WHEN change = 'joined' THEN 1 END) AS n_joined,
           COUNT(CASE WHEN change = 'left' THEN 1 END) AS n_left
    FROM member_changes
    GROUP BY snapshot_date, account_id
),
persons AS (
    SELECT DISTINCT snapshot_date, person_id FROM members
),
people_changes AS (
    -- The `*` row counts people (person_id), not memberships.
    SELECT d.snapshot_date, 'joined' AS change
    FROM dates AS d
    JOIN persons AS cur ON cur.snapshot_date = d.snapshot_date
    LEFT JOIN persons AS prev
      ON prev.snapshot_date = d.previous_date AND prev.person_id = cur.person_id
    WHERE d.previous_date IS NOT NULL AND prev.person_id IS NULL
    UNION ALL
    SELECT d.snapshot_date, 'left' AS change
    FROM dates AS d
    JOIN persons AS prev ON prev.snapshot_date = d.previous_date
    LEFT JOIN persons AS cur
      ON cur.snapshot_date = d.snapshot_date AND cur.person_id = prev.person_id
    WHERE cur.person_id IS NULL
),
people_change_counts AS (
    SELECT snapshot_date,
           COUNT(CASE WHEN change = 'joined' THEN 1 END) AS n_joined,
           COUNT(CASE WHEN change = 'left' THEN 1 END) AS n_left
    FROM people_changes
    GROUP BY snapshot_date
),
totals AS (
    SELECT snapshot_date,
           CAST(SUM(members) AS BIGINT) AS members,
           CAST(SUM(resolved) AS BIGINT) AS resolved
    FROM per_account
    GROUP BY snapshot_date
),
resolved_people AS (
    SELECT snapshot_date, COUNT(DISTINCT unionid) AS resolved_people
    FROM members
    GROUP BY snapshot_date
)
-- Per-account rows first: the `*` row's bare NULL account_kind then takes
-- its type from them in every engine (Spark has no VARCHAR without a length).
SELECT d.snapshot_date,
       a.account_id,
       a.account_kind,
       a.members,
       a.resolved,
       a.members - a.resolved AS unresolved,
       a.exclusive_people,
       CAST(NULL AS BIGINT) AS resolved_people,
       CAST(NULL AS BIGINT) AS unique_people,
       CAST(NULL AS BIGINT) AS duplicate_memberships,
       CASE WHEN d.previous_date IS NULL THEN CAST(NULL AS BIGINT)
            ELSE COALESCE(ac.n_joined, 0) END AS joined,
       CASE WHEN d.previous_date IS NULL THEN CAST(NULL AS BIGINT)
            ELSE COALESCE(ac.n_left, 0) END AS "left"
FROM dates AS d
JOIN per_account AS a ON a.snapshot_date = d.snapshot_date
LEFT JOIN account_changes AS ac
  ON ac.snapshot_date = d.snapshot_date AND ac.account_id = a.account_id
UNION ALL
SELECT d.snapshot_date,
       '*' AS account_id,
       NULL AS account_kind,
       t.members,
       t.resolved,
       t.members - t.resolved AS unresolved,
       CAST(NULL AS BIGINT) AS exclusive_people,
       rp.resolved_people,
       rp.resolved_people + (t.members - t.resolved) AS unique_people,
       t.members - (rp.resolved_people + (t.members - t.resolved)) AS duplicate_memberships,
       CASE WHEN d.previous_date IS NULL THEN CAST(NULL AS BIGINT)
            ELSE COALESCE(pc.n_joined, 0) END AS joined,
       CASE WHEN d.previous_date IS NULL THEN CAST(NULL AS BIGINT)
            ELSE COALESCE(pc.n_left, 0) END AS "left"
FROM dates AS d
JOIN totals AS t ON t.snapshot_date = d.snapshot_date
JOIN resolved_people AS rp ON rp.snapshot_date = d.snapshot_date
LEFT JOIN people_change_counts AS pc ON pc.snapshot_date = d.snapshot_date
ORDER BY snapshot_date, account_id
