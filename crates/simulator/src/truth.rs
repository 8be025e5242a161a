//! The ground truth: the `audience` and `overlap` figures (SPEC §5) a correct
//! snapshot of a scenario must produce.
//!
//! Deliberately a second, independent implementation of those definitions:
//! plain loops over the membership function, no polars, no follower lists,
//! no HTTP. When the pipeline and this disagree, one of them is wrong.

use serde::{Deserialize, Serialize};

use super::contacts::ContactType;
use super::kinds::SimAppKind;
use super::population::World;
use super::scenario::Scenario;

/// The account id of the all-accounts row.
pub const ALL_ACCOUNTS: &str = "*";

/// One row of the `audience` table (without `joined`/`left`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceRow {
    pub account_id: String,
    /// `"official_account"`; `None` on the `*` row.
    pub account_kind: Option<String>,
    pub members: i64,
    pub resolved: i64,
    pub unresolved: i64,
    /// `None` on the `*` row.
    pub exclusive_people: Option<i64>,
    /// Distinct UnionIDs; only on the `*` row.
    pub resolved_people: Option<i64>,
    /// `resolved_people` + all unresolved members; only on the `*` row.
    pub unique_people: Option<i64>,
    /// `members` − `unique_people`; only on the `*` row.
    pub duplicate_memberships: Option<i64>,
}

/// One row of the `overlap` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlapRow {
    /// `account_a < account_b` in string order.
    pub account_a: String,
    pub account_b: String,
    /// People (distinct UnionIDs) found in both accounts.
    pub shared_people: i64,
}

/// What a correct snapshot of the scenario's day must contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    pub snapshot_day: u32,
    /// Sorted by `account_id`, `*` first.
    pub audience: Vec<AudienceRow>,
    /// Every pair of accounts (zeros included), sorted by `(account_a, account_b)`.
    pub overlap: Vec<OverlapRow>,
}

impl Truth {
    /// The audience row of one account (or of `*`).
    pub fn row(&self, account_id: &str) -> Option<&AudienceRow> {
        self.audience
            .iter()
            .find(|row| row.account_id == account_id)
    }

    /// `shared_people` of a pair, in either order.
    pub fn shared(&self, a: &str, b: &str) -> Option<i64> {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        self.overlap
            .iter()
            .find(|row| row.account_a == a && row.account_b == b)
            .map(|row| row.shared_people)
    }
}

/// `*` first, then plain string order.
fn audience_order(a: &AudienceRow, b: &AudienceRow) -> std::cmp::Ordering {
    (a.account_id != ALL_ACCOUNTS, &a.account_id)
        .cmp(&(b.account_id != ALL_ACCOUNTS, &b.account_id))
}

/// How a person stands in one account on the snapshot day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Absent,
    /// A member whose UnionID the snapshot cannot know.
    Unresolved,
    /// A member with a UnionID.
    Resolved,
}

/// Every account's standings, in [`Scenario::account_ids`] order:
/// Official Accounts, apps, corps.
struct Standings<'a> {
    world: &'a World,
    day: u32,
    /// Resolved in some bound Official Account or Mini Program: the people
    /// whose (openid, unionid) pair a run learns, so idconvert can link them.
    /// Empty when no corp uses idconvert (nothing reads it then).
    linkable: Vec<bool>,
}

impl<'a> Standings<'a> {
    fn new(world: &'a World, day: u32) -> Self {
        // A pass over people × accounts: only worth it when a corp links.
        if !world.corps.iter().any(|corp| corp.idconvert) {
            return Standings {
                world,
                day,
                linkable: Vec::new(),
            };
        }
        let linkable = (0..world.people)
            .map(|person| {
                world
                    .models
                    .iter()
                    .any(|m| m.bound && m.is_member(person, day))
                    || world.apps.iter().any(|app| {
                        app.kind == SimAppKind::MiniProgram
                            && app.users.bound
                            && app.users.is_member(person, day)
                    })
            })
            .collect();
        Standings {
            world,
            day,
            linkable,
        }
    }

    fn accounts(&self) -> usize {
        self.world.models.len() + self.world.apps.len() + self.world.corps.len()
    }

    fn of(&self, account: usize, person: u32) -> Standing {
        let (oas, apps) = (self.world.models.len(), self.world.apps.len());
        let member = |is_member: bool, resolved: bool| match (is_member, resolved) {
            (false, _) => Standing::Absent,
            (true, true) => Standing::Resolved,
            (true, false) => Standing::Unresolved,
        };
        if account < oas {
            let model = &self.world.models[account];
            return member(model.is_member(person, self.day), model.bound);
        }
        if account < oas + apps {
            let users = &self.world.apps[account - oas].users;
            return member(users.is_member(person, self.day), users.bound);
        }
        let corp = &self.world.corps[account - oas - apps];
        let resolved = corp.reveals_unionid(person)
            || (corp.idconvert
                && corp.is_customer(person, self.day)
                && corp.contact_type(person) == ContactType::WeChat
                && self.linkable[person as usize]);
        // Group members count like customers: the same external_userid,
        // one member (a group-only member of an idconvert corp stays
        // unresolved: idconvert links contacts only).
        member(corp.is_member(person, self.day), resolved)
    }
}

impl Scenario {
    /// The contacts of the idconvert corp `corp_id` that a run can link to a
    /// UnionID: WeChat-user customers who are resolved members of a bound
    /// Official Account or Mini Program of the scenario (0 for a corp that
    /// does not use idconvert, None for an unknown corp).
    pub fn linkable_contacts(&self, corp_id: &str) -> Option<i64> {
        let c = self.corps.iter().position(|corp| corp.id == corp_id)?;
        if !self.corps[c].idconvert {
            // A self-built app may not call idconvert (48002).
            return Some(0);
        }
        let world = World::new(self);
        let standings = Standings::new(&world, self.day);
        let corp = &world.corps[c];
        Some(
            (0..world.people)
                .filter(|&p| {
                    corp.is_customer(p, self.day)
                        && corp.contact_type(p) == ContactType::WeChat
                        && standings.linkable[p as usize]
                })
                .count() as i64,
        )
    }

    /// The expected `audience` and `overlap` of a snapshot taken on
    /// `self.day`, over accounts of every kind. Costs a pass over people ×
    /// accounts.
    pub fn truth(&self) -> Truth {
        let world = World::new(self);
        let day = self.day;
        let standings = Standings::new(&world, day);
        let ids = self.account_ids();
        let accounts = standings.accounts();
        let words = accounts.div_ceil(64).max(1);
        let people = world.people as usize;

        // resolved_in[person * words ..]: bit a = person has a UnionID in account a.
        let mut resolved_in = vec![0u64; people * words];
        let mut members = vec![0i64; accounts];
        let mut resolved = vec![0i64; accounts];
        for (a, (members, resolved)) in members.iter_mut().zip(&mut resolved).enumerate() {
            for person in 0..world.people {
                match standings.of(a, person) {
                    Standing::Absent => {}
                    Standing::Unresolved => *members += 1,
                    Standing::Resolved => {
                        *members += 1;
                        *resolved += 1;
                        resolved_in[person as usize * words + a / 64] |= 1 << (a % 64);
                    }
                }
            }
        }

        let mut resolved_people = 0i64;
        let mut exclusive_resolved = vec![0i64; accounts];
        let mut shared = vec![vec![0i64; accounts]; accounts];
        let mut in_accounts = Vec::with_capacity(accounts);
        for person in 0..people {
            let bits = &resolved_in[person * words..(person + 1) * words];
            in_accounts.clear();
            in_accounts.extend((0..accounts).filter(|a| bits[a / 64] & (1 << (a % 64)) != 0));
            if in_accounts.is_empty() {
                continue;
            }
            resolved_people += 1;
            if let [only] = in_accounts[..] {
                exclusive_resolved[only] += 1;
            }
            for (i, &a) in in_accounts.iter().enumerate() {
                for &b in &in_accounts[i + 1..] {
                    shared[a][b] += 1;
                }
            }
        }

        let mut audience: Vec<AudienceRow> = ids
            .iter()
            .enumerate()
            .map(|(a, (account_id, kind))| {
                let unresolved = members[a] - resolved[a];
                AudienceRow {
                    account_id: account_id.clone(),
                    account_kind: Some(kind.to_string()),
                    members: members[a],
                    resolved: resolved[a],
                    unresolved,
                    exclusive_people: Some(exclusive_resolved[a] + unresolved),
                    resolved_people: None,
                    unique_people: None,
                    duplicate_memberships: None,
                }
            })
            .collect();
        let total_members: i64 = members.iter().sum();
        let total_resolved: i64 = resolved.iter().sum();
        let total_unresolved = total_members - total_resolved;
        let unique_people = resolved_people + total_unresolved;
        audience.push(AudienceRow {
            account_id: ALL_ACCOUNTS.to_string(),
            account_kind: None,
            members: total_members,
            resolved: total_resolved,
            unresolved: total_unresolved,
            exclusive_people: None,
            resolved_people: Some(resolved_people),
            unique_people: Some(unique_people),
            duplicate_memberships: Some(total_members - unique_people),
        });
        audience.sort_by(audience_order);

        let mut overlap = Vec::new();
        for (a, shared_with_a) in shared.iter().enumerate() {
            for (b, &shared_people) in shared_with_a.iter().enumerate().skip(a + 1) {
                let (id_a, id_b) = (&ids[a].0, &ids[b].0);
                let (account_a, account_b) = if id_a < id_b {
                    (id_a, id_b)
                } else {
                    (id_b, id_a)
                };
                overlap.push(OverlapRow {
                    account_a: account_a.clone(),
                    account_b: account_b.clone(),
                    shared_people,
                });
            }
        }
        overlap.sort_by(|x, y| (&x.account_a, &x.account_b).cmp(&(&y.account_a, &y.account_b)));

        Truth {
            snapshot_day: day,
            audience,
            overlap,
        }
    }
}

/// Memberships per account, as a map: used by the tests to cross-check the
/// truth against what the HTTP API serves.
#[cfg(test)]
pub(crate) fn members_by_account(
    scenario: &Scenario,
) -> std::collections::BTreeMap<String, Vec<u32>> {
    let world = World::new(scenario);
    scenario
        .accounts
        .iter()
        .zip(&world.models)
        .map(|(account, model)| {
            let members = (0..world.people)
                .filter(|&person| model.is_member(person, scenario.day))
                .collect();
            (account.id.clone(), members)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SimAccount;
    use std::collections::BTreeMap;

    fn small() -> Scenario {
        let mut accounts = vec![
            SimAccount::new(5, "zeta_oa", 0.5),
            SimAccount::new(5, "alpha_oa", 0.3),
            SimAccount::new(5, "mid_oa", 0.2),
            SimAccount::new(5, "empty_oa", 0.0),
        ];
        accounts[2].bound = false;
        for account in &mut accounts {
            account.leave_during_crawl = 0.01;
        }
        Scenario::new(5, 3_000, accounts)
    }

    #[test]
    fn star_row_follows_the_spec_formulas() {
        let truth = small().truth();
        let star = truth.row(ALL_ACCOUNTS).unwrap();
        let rows: Vec<_> = truth
            .audience
            .iter()
            .filter(|r| r.account_id != "*")
            .collect();
        assert_eq!(star.members, rows.iter().map(|r| r.members).sum::<i64>());
        assert_eq!(star.resolved, rows.iter().map(|r| r.resolved).sum::<i64>());
        assert_eq!(star.unresolved, star.members - star.resolved);
        assert_eq!(
            star.unique_people,
            Some(star.resolved_people.unwrap() + star.unresolved)
        );
        assert_eq!(
            star.duplicate_memberships,
            Some(star.members - star.unique_people.unwrap())
        );
        assert_eq!(
            (star.account_kind.as_deref(), star.exclusive_people),
            (None, None)
        );
    }

    #[test]
    fn rows_are_sorted_with_star_first_and_every_pair_present() {
        let truth = small().truth();
        let ids: Vec<_> = truth
            .audience
            .iter()
            .map(|r| r.account_id.as_str())
            .collect();
        assert_eq!(ids, ["*", "alpha_oa", "empty_oa", "mid_oa", "zeta_oa"]);
        assert_eq!(truth.overlap.len(), 6);
        assert!(truth.overlap.iter().all(|r| r.account_a < r.account_b));
        assert_eq!(truth.shared("zeta_oa", "empty_oa"), Some(0));
        // mid_oa is unbound: its members cannot be matched to anyone.
        assert_eq!(truth.shared("mid_oa", "alpha_oa"), Some(0));
    }

    #[test]
    fn unbound_members_are_all_unresolved_and_exclusive() {
        let truth = small().truth();
        let mid = truth.row("mid_oa").unwrap();
        assert_eq!(mid.resolved, 0);
        assert_eq!(mid.unresolved, mid.members);
        assert_eq!(mid.exclusive_people, Some(mid.members));
        assert!(mid.resolved_people.is_none());
    }

    #[test]
    fn truth_matches_brute_force_over_member_sets() {
        let scenario = small();
        let truth = scenario.truth();
        let members = members_by_account(&scenario);
        let bound: BTreeMap<_, _> = scenario
            .accounts
            .iter()
            .map(|a| (a.id.clone(), a.bound))
            .collect();
        for (a, list_a) in &members {
            assert_eq!(truth.row(a).unwrap().members, list_a.len() as i64);
            for (b, list_b) in &members {
                if a >= b {
                    continue;
                }
                let shared = if bound[a] && bound[b] {
                    list_a.iter().filter(|p| list_b.contains(p)).count() as i64
                } else {
                    0
                };
                assert_eq!(truth.shared(a, b), Some(shared), "{a} {b}");
            }
        }
    }

    #[test]
    fn truth_round_trips_through_json() {
        let truth = small().truth();
        let json = serde_json::to_string(&truth).unwrap();
        assert_eq!(serde_json::from_str::<Truth>(&json).unwrap(), truth);
    }
}
