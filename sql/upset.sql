-- The UpSet numbers: per snapshot_date, the size of every exclusive
-- intersection of accounts — the people whose accounts are exactly
-- `accounts` (an array of account ids, sorted). Every person is in exactly
-- one intersection, so the sizes add up to unique_people, and the
-- one-account intersections are the accounts' exclusive_people. A member
-- without a UnionID is a person of its own, in a one-account intersection.
-- Reads only the `identities` view (complete snapshots, see sql/ddl/).
-- Portable: array_agg, array_sort and GROUP BY over an array run unchanged on
-- DuckDB, Trino/Athena and Spark 3.3+ (BigQuery: see README.md).
WITH
person_accounts AS (
    SELECT DISTINCT snapshot_date, account_id,
           CASE WHEN unionid IS NOT NULL THEN unionid
                ELSE concat(account_id, '/', member_id) END AS person_id
    FROM identities
),
person_sets AS (
    SELECT snapshot_date, person_id,
           array_sort(array_agg(account_id)) AS accounts,
           COUNT(*) AS n_accounts
    FROM person_accounts
    GROUP BY snapshot_date, person_id
)
SELECT snapshot_date, accounts, n_accounts, COUNT(*) AS people
FROM person_sets
GROUP BY snapshot_date, accounts, n_accounts
ORDER BY snapshot_date, n_accounts, people DESC
