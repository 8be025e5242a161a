//! `--shard I/N`: which accounts one pod of a Kubernetes Indexed Job extracts.
//!
//! Past one machine, the accounts of a job are spread over N pods; each pod
//! extracts its share and writes raw partitions only, and `unionsnap merge`
//! builds the derived tables once every share has landed. Every pod must
//! compute the same assignment on its own, without talking to the others, so
//! the assignment is a pure function of the account ids, their last known
//! sizes and N:
//!
//! - an account's weight is its `members` in the latest complete snapshot
//!   *before* the date being run (a re-run of date D deletes D's manifest
//!   while it works, so D itself is not stable across the pods);
//! - an account without a known size weighs the mean of the known ones
//!   (1 when none is known: equal weights);
//! - greedy, largest first (ties by account id) onto the lightest shard
//!   (ties by the lowest shard index).

use std::collections::BTreeMap;
use std::fmt;

/// Environment variable Kubernetes sets in every pod of an Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Environment variable holding the number of shards (set it to the Job's
/// `completions`; Kubernetes does not expose that to the pod by itself).
pub const COUNT_ENV: &str = "UNIONSNAP_SHARD_COUNT";

/// Shard `index` of `count` (0-based, as `JOB_COMPLETION_INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// A `--shard` value or shard environment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0:?} is not of the form I/N (e.g. 0/4: the first of four shards)")]
    Syntax(String),
    #[error("shard {index}/{count} does not exist: I counts from 0 and must be below N (N ≥ 1)")]
    OutOfRange { index: usize, count: usize },
    #[error("{INDEX_ENV} is set but {COUNT_ENV} is not: set {COUNT_ENV} to the Job's completions, or pass --shard I/N")]
    MissingCount,
    #[error("{var} = {value:?} is not a whole number")]
    BadEnv { var: &'static str, value: String },
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }

    /// The shard given by `--shard`, else by [`INDEX_ENV`] and [`COUNT_ENV`]
    /// (looked up through `env`), else None: the run is not sharded.
    pub fn from_cli_or_env(
        cli: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>, ShardError> {
        if let Some(text) = cli {
            return Shard::parse(text).map(Some);
        }
        let Some(index) = env(INDEX_ENV) else {
            return Ok(None);
        };
        let count = env(COUNT_ENV).ok_or(ShardError::MissingCount)?;
        let number = |var: &'static str, value: String| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| ShardError::BadEnv { var, value })
        };
        Shard::new(number(INDEX_ENV, index)?, number(COUNT_ENV, count)?).map(Some)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard of every account: `account id → shard index`.
///
/// `accounts` are the job's account ids; `sizes` the known sizes (members in
/// the latest complete snapshot). See the module doc for the rule.
pub fn assign(
    accounts: &[&str],
    sizes: &BTreeMap<String, i64>,
    count: usize,
) -> BTreeMap<String, usize> {
    let known: Vec<u64> = accounts
        .iter()
        .filter_map(|id| sizes.get(*id))
        .map(|&members| members.max(0) as u64)
        .collect();
    let default_weight = if known.is_empty() {
        1
    } else {
        (known.iter().sum::<u64>() / known.len() as u64).max(1)
    };
    let mut weighted: Vec<(u64, &str)> = accounts
        .iter()
        .map(|id| {
            let weight = sizes
                .get(*id)
                .map_or(default_weight, |&members| members.max(0) as u64);
            (weight, *id)
        })
        .collect();
    // Largest first; equal weights in account id order.
    weighted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    weighted.dedup_by(|a, b| a.1 == b.1);
    let mut load = vec![0u64; count.max(1)];
    let mut assignment = BTreeMap::new();
    for (weight, id) in weighted {
        // The lightest shard; `min_by_key` keeps the first, i.e. the lowest index.
        let lightest = (0..load.len()).min_by_key(|&i| load[i]).unwrap_or(0);
        load[lightest] += weight;
        assignment.insert(id.to_string(), lightest);
    }
    assignment
}

/// The accounts of `shard`, in the order `accounts` lists them.
pub fn accounts_of<'a>(
    shard: Shard,
    accounts: &[&'a str],
    sizes: &BTreeMap<String, i64>,
) -> Vec<&'a str> {
    let assignment = assign(accounts, sizes, shard.count);
    accounts
        .iter()
        .copied()
        .filter(|id| assignment.get(*id) == Some(&shard.index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(id, n)| (id.to_string(), *n)).collect()
    }

    #[test]
    fn parses_index_over_count() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard::parse(" 0 / 1 "), Ok(Shard { index: 0, count: 1 }));
        assert_eq!(Shard::parse("1/3").unwrap().to_string(), "1/3");
    }

    #[test]
    fn rejects_shards_that_do_not_exist() {
        assert!(matches!(
            Shard::parse("3/3"),
            Err(ShardError::OutOfRange { .. })
        ));
        assert!(matches!(
            Shard::parse("0/0"),
            Err(ShardError::OutOfRange { .. })
        ));
        assert!(matches!(Shard::parse("1"), Err(ShardError::Syntax(_))));
        assert!(matches!(Shard::parse("a/b"), Err(ShardError::Syntax(_))));
    }

    #[test]
    fn the_command_line_wins_over_the_environment() {
        let env = |var: &str| match var {
            INDEX_ENV => Some("2".to_string()),
            COUNT_ENV => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(
            Shard::from_cli_or_env(Some("0/2"), &env),
            Ok(Some(Shard { index: 0, count: 2 }))
        );
        assert_eq!(
            Shard::from_cli_or_env(None, &env),
            Ok(Some(Shard { index: 2, count: 4 }))
        );
        assert_eq!(Shard::from_cli_or_env(None, &|_| None), Ok(None));
    }

    #[test]
    fn an_index_without_a_count_is_an_error_not_an_unsharded_run() {
        let env = |var: &str| (var == INDEX_ENV).then(|| "0".to_string());
        assert_eq!(
            Shard::from_cli_or_env(None, &env),
            Err(ShardError::MissingCount)
        );
    }

    #[test]
    fn every_account_lands_in_exactly_one_shard() {
        let accounts = ["a", "b", "c", "d", "e", "f", "g"];
        let known = sizes(&[("a", 10), ("c", 500), ("g", 70)]);
        for count in 1..=9 {
            let mut all: Vec<&str> = (0..count)
                .flat_map(|index| accounts_of(Shard { index, count }, &accounts, &known))
                .collect();
            all.sort();
            assert_eq!(all, accounts, "{count} shards");
        }
    }

    #[test]
    fn largest_accounts_go_first_onto_the_lightest_shard() {
        let accounts = ["small", "big", "mid", "tiny"];
        let known = sizes(&[("big", 1000), ("mid", 600), ("small", 300), ("tiny", 100)]);
        let assignment = assign(&accounts, &known, 2);
        // big → 0 (1000); mid → 1 (600); small → 1 (900); tiny → 1 (1000 = 1000).
        assert_eq!(assignment["big"], 0);
        assert_eq!(assignment["mid"], 1);
        assert_eq!(assignment["small"], 1);
        assert_eq!(assignment["tiny"], 1);
    }

    #[test]
    fn without_known_sizes_accounts_are_spread_evenly_in_id_order() {
        let accounts = ["d", "b", "a", "c"];
        let assignment = assign(&accounts, &BTreeMap::new(), 2);
        assert_eq!(assignment["a"], 0);
        assert_eq!(assignment["b"], 1);
        assert_eq!(assignment["c"], 0);
        assert_eq!(assignment["d"], 1);
    }

    #[test]
    fn the_assignment_does_not_depend_on_the_order_accounts_are_listed() {
        let known = sizes(&[("a", 5), ("b", 5), ("c", 9), ("d", 1)]);
        let one = assign(&["a", "b", "c", "d", "e"], &known, 3);
        let two = assign(&["e", "d", "c", "b", "a"], &known, 3);
        assert_eq!(one, two);
    }

    #[test]
    fn more_shards_than_accounts_leaves_some_shards_empty() {
        let accounts = ["a", "b"];
        let empty = accounts_of(Shard { index: 4, count: 5 }, &accounts, &BTreeMap::new());
        assert!(empty.is_empty());
    }
}
