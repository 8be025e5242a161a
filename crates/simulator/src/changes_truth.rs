//! The ground truth of `changes` and of the `joined`/`left` columns of
//! `audience` between two simulated days.
//!
//! Like [`super::truth`], a second implementation of SPEC §5 that shares
//! nothing with the pipeline: plain loops over the membership function of
//! both days, OpenIDs and UnionIDs encoded the way the server serves them.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::population::World;
use super::scenario::Scenario;
use super::truth::ALL_ACCOUNTS;

/// One row of the `changes` table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChangeRow {
    pub account_id: String,
    /// The member's OpenID.
    pub member_id: String,
    pub unionid: Option<String>,
    /// `"joined"` or `"left"`.
    pub change: String,
}

/// `joined`/`left` of one `audience` row (`*` counts people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub account_id: String,
    pub joined: i64,
    pub left: i64,
}

/// What a snapshot on `day` must hold when the previous complete snapshot
/// was taken on `previous_day`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesTruth {
    pub previous_day: u32,
    pub day: u32,
    /// Sorted by account, member, change.
    pub rows: Vec<ChangeRow>,
    /// Sorted by `account_id`, `*` first.
    pub counts: Vec<ChangeCounts>,
}

impl Scenario {
    /// The changes between a snapshot taken on `previous_day` and one taken
    /// on `self.day`. Costs two passes over people × accounts.
    pub fn changes_since(&self, previous_day: u32) -> ChangesTruth {
        let world = World::new(self);
        let (day, people) = (self.day, world.people);
        let mut rows = Vec::new();
        let mut counts = Vec::new();
        // A person with a UnionID is one person across all bound accounts;
        // every membership of an unbound account is a person of its own.
        let (mut resolved_now, mut resolved_before) =
            (vec![false; people as usize], vec![false; people as usize]);
        let (mut unresolved_joined, mut unresolved_left) = (0i64, 0i64);
        for (a, (account, model)) in self.accounts.iter().zip(&world.models).enumerate() {
            let (mut joined, mut left) = (0i64, 0i64);
            for person in 0..people {
                let now = model.is_member(person, day);
                let before = model.is_member(person, previous_day);
                if model.bound {
                    resolved_now[person as usize] |= now;
                    resolved_before[person as usize] |= before;
                }
                let change = match (before, now) {
                    (false, true) => "joined",
                    (true, false) => "left",
                    _ => continue,
                };
                if now {
                    joined += 1;
                } else {
                    left += 1;
                }
                rows.push(ChangeRow {
                    account_id: account.id.clone(),
                    member_id: world.openids[a].encode(person),
                    unionid: model.bound.then(|| world.unionids.encode(person)),
                    change: change.to_string(),
                });
            }
            if !model.bound {
                unresolved_joined += joined;
                unresolved_left += left;
            }
            counts.push(ChangeCounts {
                account_id: account.id.clone(),
                joined,
                left,
            });
        }
        let moved = |to: &[bool], from: &[bool]| {
            to.iter()
                .zip(from)
                .filter(|(now, before)| **now && !**before)
                .count() as i64
        };
        counts.push(ChangeCounts {
            account_id: ALL_ACCOUNTS.to_string(),
            joined: moved(&resolved_now, &resolved_before) + unresolved_joined,
            left: moved(&resolved_before, &resolved_now) + unresolved_left,
        });
        counts.sort_by(|x, y| {
            (x.account_id != ALL_ACCOUNTS, &x.account_id)
                .cmp(&(y.account_id != ALL_ACCOUNTS, &y.account_id))
        });
        rows.sort();
        ChangesTruth {
            previous_day,
            day,
            rows,
            counts,
        }
    }
}

/// The `changes` table as truth rows, sorted as the truth is (the file is
/// sorted only within each bucket group of the derivation).
pub fn change_rows(changes: &DataFrame) -> PolarsResult<Vec<ChangeRow>> {
    let text = |name: &str| -> PolarsResult<Vec<Option<String>>> {
        Ok(changes
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let (accounts, members) = (text("account_id")?, text("member_id")?);
    let (unionids, kinds) = (text("unionid")?, text("change")?);
    let mut rows: Vec<ChangeRow> = (0..changes.height())
        .map(|i| ChangeRow {
            account_id: accounts[i].clone().unwrap_or_default(),
            member_id: members[i].clone().unwrap_or_default(),
            unionid: unionids[i].clone(),
            change: kinds[i].clone().unwrap_or_default(),
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// `joined`/`left` of the `audience` table (rows where they are null are
/// reported as -1, which no truth holds).
pub fn change_counts(audience: &DataFrame) -> PolarsResult<Vec<ChangeCounts>> {
    let ids = audience.column("account_id")?.str()?;
    let joined = audience.column("joined")?.i64()?;
    let left = audience.column("left")?.i64()?;
    Ok((0..audience.height())
        .map(|i| ChangeCounts {
            account_id: ids.get(i).unwrap_or_default().to_string(),
            joined: joined.get(i).unwrap_or(-1),
            left: left.get(i).unwrap_or(-1),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimAccount;

    fn scenario(day: u32) -> Scenario {
        let mut accounts = vec![
            SimAccount::new(9, "a_oa", 0.5),
            SimAccount::new(9, "b_oa", 0.3),
            SimAccount::new(9, "legacy_oa", 0.2),
        ];
        accounts[2].bound = false;
        for account in &mut accounts {
            account.daily_churn = 0.05;
            account.leave_during_crawl = 0.01;
        }
        let mut scenario = Scenario::new(9, 2_000, accounts);
        scenario.day = day;
        scenario
    }

    #[test]
    fn members_change_by_the_difference_of_the_two_days_truths() {
        let (before, after) = (scenario(0).truth(), scenario(1).truth());
        let changes = scenario(1).changes_since(0);
        for counts in changes.counts.iter().filter(|c| c.account_id != "*") {
            let members = |t: &crate::Truth| t.row(&counts.account_id).unwrap().members;
            assert_eq!(
                members(&after) - members(&before),
                counts.joined - counts.left,
                "{}",
                counts.account_id
            );
            assert!(counts.joined > 0 && counts.left > 0, "{counts:?}");
        }
        let star = &changes.counts[0];
        let unique = |t: &crate::Truth| t.row("*").unwrap().unique_people.unwrap();
        assert_eq!(star.account_id, "*");
        assert_eq!(unique(&after) - unique(&before), star.joined - star.left);
    }

    #[test]
    fn a_day_compared_with_itself_has_no_changes() {
        let changes = scenario(2).changes_since(2);
        assert!(changes.rows.is_empty());
        assert!(changes.counts.iter().all(|c| c.joined == 0 && c.left == 0));
    }

    #[test]
    fn rows_agree_with_the_counts_and_unbound_rows_have_no_unionid() {
        let changes = scenario(1).changes_since(0);
        for counts in changes.counts.iter().filter(|c| c.account_id != "*") {
            let of = |kind: &str| {
                changes
                    .rows
                    .iter()
                    .filter(|r| r.account_id == counts.account_id && r.change == kind)
                    .count() as i64
            };
            assert_eq!((of("joined"), of("left")), (counts.joined, counts.left));
        }
        assert!(changes
            .rows
            .iter()
            .all(|r| r.unionid.is_some() == (r.account_id != "legacy_oa")));
    }
}
