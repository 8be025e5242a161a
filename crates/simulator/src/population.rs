//! Who follows whom, on which day: pure functions of (seed, account, person,
//! day), plus the per-account follower lists the server pages through.
//!
//! Memory is one `u32` per (follower, account): 10M people over 5 accounts
//! fit in tens of megabytes because OpenIDs, UnionIDs and profiles are derived
//! from the person index on the fly (see [`super::ids`] and
//! [`super::profile`]).

use super::contacts::CorpModel;
use super::ids::{derive_key, hash2, unit, IdCodec};
use super::kinds::SimAppKind;
use super::scenario::{Scenario, SimAccount};

/// The follow/unfollow model of one account.
#[derive(Debug, Clone)]
pub(crate) struct AccountModel {
    pub(crate) bound: bool,
    reach: f64,
    churn: f64,
    /// Daily probability that a non-follower follows: chosen so that joiners
    /// balance leavers (`reach · churn = (1 − reach) · join`), which keeps the
    /// audience size steady while people move.
    join: f64,
    leave_during_crawl: f64,
    reach_key: u64,
    churn_key: u64,
    crawl_key: u64,
    pub(crate) profile_key: u64,
}

impl AccountModel {
    pub(crate) fn new(seed: u64, account: &SimAccount) -> AccountModel {
        let key = |purpose: &str| derive_key(seed, &format!("{purpose}/{}", account.id));
        let join = if account.reach < 1.0 {
            (account.daily_churn * account.reach / (1.0 - account.reach)).min(1.0)
        } else {
            0.0
        };
        AccountModel {
            bound: account.bound,
            reach: account.reach,
            churn: account.daily_churn,
            join,
            leave_during_crawl: account.leave_during_crawl,
            reach_key: key("reach"),
            churn_key: key("churn"),
            crawl_key: key("crawl"),
            profile_key: key("profile"),
        }
    }

    /// Whether `person` is on this account's follower list on `day`: day 0
    /// is drawn with `reach`; each later day starts from the day before and
    /// draws one unfollow (followers) or follow (the others).
    pub(crate) fn follows(&self, person: u32, day: u32) -> bool {
        let mut follows = unit(hash2(self.reach_key, u64::from(person))) < self.reach;
        for d in 1..=day {
            let u = unit(hash2(
                self.churn_key,
                (u64::from(d) << 32) | u64::from(person),
            ));
            follows = if follows {
                u >= self.churn
            } else {
                u < self.join
            };
        }
        follows
    }

    /// Whether this follower unfollows while `day`'s crawl runs: still listed
    /// by `user/get`, answered `subscribe: 0` by `user/info`.
    pub(crate) fn leaves_during_crawl(&self, person: u32, day: u32) -> bool {
        self.leave_during_crawl > 0.0
            && unit(hash2(
                self.crawl_key,
                (u64::from(day) << 32) | u64::from(person),
            )) < self.leave_during_crawl
    }

    /// A member of `day`'s snapshot: listed and still following at the end.
    pub(crate) fn is_member(&self, person: u32, day: u32) -> bool {
        self.follows(person, day) && !self.leaves_during_crawl(person, day)
    }
}

/// The users of a Mini Program, app or website.
#[derive(Debug, Clone)]
pub(crate) struct AppModel {
    pub(crate) kind: SimAppKind,
    pub(crate) users: AccountModel,
    pub(crate) openids: IdCodec,
}

/// The scenario's derived machinery: one model and one OpenID codec per
/// Official Account (own-credential ones, then the platform's), one per app,
/// one model per WeCom corp, one UnionID codec for everybody.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(crate) people: u32,
    pub(crate) models: Vec<AccountModel>,
    pub(crate) openids: Vec<IdCodec>,
    pub(crate) unionids: IdCodec,
    pub(crate) apps: Vec<AppModel>,
    pub(crate) corps: Vec<CorpModel>,
}

impl World {
    /// Expects a validated scenario (people fit in `u32`).
    pub(crate) fn new(scenario: &Scenario) -> World {
        let openid_codec = |id: &str| IdCodec::new(scenario.seed, &format!("openid/{id}"));
        World {
            people: u32::try_from(scenario.people).unwrap_or(u32::MAX),
            models: scenario
                .official_accounts()
                .map(|account| AccountModel::new(scenario.seed, account))
                .collect(),
            openids: scenario
                .official_accounts()
                .map(|account| openid_codec(&account.id))
                .collect(),
            unionids: IdCodec::new(scenario.seed, "unionid"),
            apps: scenario
                .apps
                .iter()
                .map(|app| AppModel {
                    kind: app.kind,
                    users: AccountModel::new(scenario.seed, &app.as_account()),
                    openids: openid_codec(&app.id),
                })
                .collect(),
            corps: scenario
                .corps
                .iter()
                .map(|corp| CorpModel::new(scenario.seed, corp))
                .collect(),
        }
    }

    /// The person behind an OpenID that `idconvert` accepts: one of an
    /// Official Account or a Mini Program, bound to the Open Platform (only
    /// then does the caller know the UnionID to pair it with).
    pub(crate) fn person_of_convertible_openid(&self, openid: &str) -> Option<u32> {
        let official = self
            .models
            .iter()
            .zip(&self.openids)
            .filter(|(model, _)| model.bound)
            .map(|(_, codec)| codec);
        let mini_programs = self
            .apps
            .iter()
            .filter(|app| app.kind == SimAppKind::MiniProgram && app.users.bound)
            .map(|app| &app.openids);
        official
            .chain(mini_programs)
            .find_map(|codec| codec.decode(openid))
            .filter(|&person| person < self.people)
    }

    /// The person behind an OpenID of `account`, or `None` for any string that
    /// is not one (WeChat: `40003 invalid openid`).
    pub(crate) fn person_of_openid(&self, account: usize, openid: &str) -> Option<u32> {
        let person = self.openids.get(account)?.decode(openid)?;
        (person < self.people).then_some(person)
    }

    /// The person behind a UnionID.
    pub(crate) fn person_of_unionid(&self, unionid: &str) -> Option<u32> {
        let person = self.unionids.decode(unionid)?;
        (person < self.people).then_some(person)
    }

    /// The follower list of one account on one day, in `user/get` order
    /// (ascending person index, which looks random through the OpenIDs and
    /// lets a `next_openid` be found by binary search).
    pub(crate) fn followers(&self, account: usize, day: u32) -> Vec<u32> {
        let Some(model) = self.models.get(account) else {
            return Vec::new();
        };
        let expected = (f64::from(self.people) * model.reach * 1.05) as usize + 16;
        let mut followers = Vec::with_capacity(expected.min(self.people as usize));
        followers.extend((0..self.people).filter(|&person| model.follows(person, day)));
        followers.shrink_to_fit();
        followers
    }
}

/// Every account's follower list on one day, and every corp's customers
/// per staff member.
#[derive(Debug, Clone)]
pub(crate) struct Population {
    pub(crate) day: u32,
    pub(crate) followers: Vec<Vec<u32>>,
    /// corp → staff member → customers they added, ascending.
    pub(crate) contacts: Vec<Vec<Vec<u32>>>,
    /// corp → chat → the people in it, ascending (empty for dismissed chats).
    pub(crate) groups: Vec<Vec<Vec<u32>>>,
}

impl Population {
    /// Builds the lists, one thread per account (population building
    /// dominates the start-up of the 10M-follower benchmark).
    pub(crate) fn build(world: &World, day: u32) -> Population {
        let followers = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..world.models.len())
                .map(|account| scope.spawn(move || world.followers(account, day)))
                .collect();
            workers
                .into_iter()
                .enumerate()
                .map(|(account, worker)| {
                    // A worker only panics if the system is out of memory;
                    // rebuilding on this thread keeps that failure where it is.
                    worker
                        .join()
                        .unwrap_or_else(|_| world.followers(account, day))
                })
                .collect()
        });
        let contacts = world
            .corps
            .iter()
            .map(|corp| {
                let mut by_staff = vec![Vec::new(); corp.staff as usize];
                for person in (0..world.people).filter(|&p| corp.is_customer(p, day)) {
                    for staff in corp.staff_of(person) {
                        by_staff[staff as usize].push(person);
                    }
                }
                by_staff
            })
            .collect();
        let groups = world
            .corps
            .iter()
            .map(|corp| {
                let model = &corp.groups;
                let mut by_chat = vec![Vec::new(); model.chats as usize];
                if model.chats > 0 {
                    for person in (0..world.people).filter(|&p| model.in_groups(p, day)) {
                        for chat in model.chats_of(person) {
                            if !model.dismissed(chat) {
                                by_chat[chat as usize].push(person);
                            }
                        }
                    }
                }
                by_chat
            })
            .collect();
        Population {
            day,
            followers,
            contacts,
            groups,
        }
    }

    /// Whether `person` is listed by `account` (binary search in list order).
    pub(crate) fn is_listed(&self, account: usize, person: u32) -> bool {
        self.followers
            .get(account)
            .is_some_and(|list| list.binary_search(&person).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(churn: f64) -> Scenario {
        let mut account = SimAccount::new(3, "a", 0.4);
        account.daily_churn = churn;
        Scenario::new(3, 20_000, vec![account])
    }

    #[test]
    fn reach_sets_the_share_of_followers() {
        let world = World::new(&scenario(0.0));
        let followers = world.followers(0, 0).len();
        assert!((7_600..8_400).contains(&followers), "{followers}");
    }

    #[test]
    fn each_day_is_the_day_before_minus_leavers_plus_joiners() {
        let world = World::new(&scenario(0.05));
        let day1 = world.followers(0, 1);
        let day2 = world.followers(0, 2);
        let left = day1
            .iter()
            .filter(|p| day2.binary_search(p).is_err())
            .count();
        let joined = day2
            .iter()
            .filter(|p| day1.binary_search(p).is_err())
            .count();
        // 5% of ~8,000 leave; about as many join.
        assert!((300..500).contains(&left), "{left}");
        assert!((300..500).contains(&joined), "{joined}");
        for person in 0..world.people {
            assert_eq!(
                day2.binary_search(&person).is_ok(),
                world.models[0].follows(person, 2)
            );
        }
    }

    #[test]
    fn openids_decode_only_for_their_account_and_population() {
        let mut scenario = scenario(0.0);
        scenario.accounts.push(SimAccount::new(3, "b", 0.4));
        let world = World::new(&scenario);
        let openid = world.openids[0].encode(17);
        assert_eq!(world.person_of_openid(0, &openid), Some(17));
        assert_eq!(world.person_of_openid(1, &openid), None);
        assert_eq!(
            world.person_of_openid(0, &world.openids[0].encode(20_000)),
            None
        );
        assert_eq!(
            world.person_of_unionid(&world.unionids.encode(17)),
            Some(17)
        );
    }
}
