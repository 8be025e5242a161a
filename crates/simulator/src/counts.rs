//! What WeChat counts about an Official Account itself: its tags with their
//! member counts (`cgi-bin/tags/get`) and its daily follower statistics
//! (`datacube/getusercumulate`, `datacube/getusersummary`), served in the
//! shapes of WeChat's docs (wechatpy's fixtures), and the truth a snapshot
//! is checked against.
//!
//! Day `d` of a scenario is the calendar date [`date_of_day`]`(d)`
//! (2026-11-21 + d); the world before day 0 was as on day 0. WeChat's count
//! of a day is the followers at its end: the members of that day's snapshot
//! (listed, and not unfollowed while the crawl ran). Two knobs of the
//! server make WeChat disagree or refuse: [`super::SimServer::set_cumulate_offset`]
//! and [`super::SimServer::set_unverified`] (then `48001`, as for an
//! unverified account).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::handlers::{authorize, errcode, ApiRequest, Reply};
use super::ids::hash2;
use super::population::World;
use super::profile::follower_tags;
use super::scenario::Scenario;
use super::state::{lock, SimState};

/// Every tag of every simulated account: (id, name). Ids 0-2 are WeChat's
/// reserved ones; 1 and 135 are never put on anybody (count 0, as in the
/// doc's example).
pub(crate) const TAGS: [(u32, &str); 10] = [
    (1, "每天一罐可乐星人"),
    (2, "星标组"),
    (103, "广东"),
    (107, "VIP"),
    (111, "北京"),
    (115, "老客户"),
    (119, "活动报名"),
    (123, "会员"),
    (127, "潜在客户"),
    (135, "已停用"),
];

/// `user_source` values of `getusersummary` a new follower is drawn from
/// (0 other, 1 search, 17 profile card, 30 QR code, 43 article menu,
/// 51 payment, 57 article, 100 ads, 161 reprint).
const USER_SOURCES: [i64; 9] = [0, 1, 17, 30, 43, 51, 57, 100, 161];

/// Most days one datacube call covers.
const DATACUBE_MAX_DAYS: i64 = 7;

/// One tag of an account: as `tags/get` lists it on the scenario's day and
/// as a correct snapshot of that day counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRow {
    pub account_id: String,
    pub tag_id: i64,
    pub name: String,
    /// Followers on the list with the tag (`count` of `tags/get`).
    pub wechat_count: i64,
    /// Members of the day's snapshot with the tag.
    pub members_with_tag: i64,
}

/// The calendar date of simulated day `day`.
pub fn date_of_day(day: u32) -> NaiveDate {
    // 2026-11-21 is a valid date: the fallback is never taken.
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default() + Duration::days(i64::from(day))
}

/// The simulated day of `date` when day 0 is `first` (before day 0: day 0).
fn day_of_date(first: NaiveDate, date: NaiveDate) -> u32 {
    u32::try_from((date - first).num_days().max(0)).unwrap_or(u32::MAX)
}

impl SimState {
    /// The date of day 0 the datacube endpoints count from.
    fn first_date(&self) -> NaiveDate {
        *lock(&self.first_date)
    }
}

/// Tag id → how many of `people` carry it.
fn tag_counts(
    world: &World,
    account: usize,
    people: impl Iterator<Item = u32>,
) -> BTreeMap<u32, i64> {
    let mut counts: BTreeMap<u32, i64> = TAGS.iter().map(|(id, _)| (*id, 0)).collect();
    if let Some(model) = world.models.get(account) {
        for person in people {
            for tag in follower_tags(model, person) {
                *counts.entry(tag).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Followers of `account` at the end of `day` as WeChat counts them.
fn cumulate(world: &World, account: usize, day: u32) -> i64 {
    let Some(model) = world.models.get(account) else {
        return 0;
    };
    (0..world.people)
        .filter(|&person| model.is_member(person, day))
        .count() as i64
}

fn account_index(scenario: &Scenario, account_id: &str) -> Option<usize> {
    scenario
        .official_accounts()
        .position(|a| a.id == account_id)
}

impl Scenario {
    /// The `tags` rows a correct snapshot of `self.day` holds for
    /// `account_id` (empty for an unknown account), by tag id.
    pub fn tag_rows(&self, account_id: &str) -> Vec<TagRow> {
        let Some(account) = account_index(self, account_id) else {
            return Vec::new();
        };
        let world = World::new(self);
        let listed: Vec<u32> = world.followers(account, self.day);
        let model = &world.models[account];
        let wechat = tag_counts(&world, account, listed.iter().copied());
        let members = tag_counts(
            &world,
            account,
            listed
                .iter()
                .copied()
                .filter(|&p| !model.leaves_during_crawl(p, self.day)),
        );
        TAGS.iter()
            .map(|(id, name)| TagRow {
                account_id: account_id.to_string(),
                tag_id: i64::from(*id),
                name: name.to_string(),
                wechat_count: wechat.get(id).copied().unwrap_or(0),
                members_with_tag: members.get(id).copied().unwrap_or(0),
            })
            .collect()
    }

    /// `cumulate_user` of `account_id` on `date` before any
    /// [`super::SimServer::set_cumulate_offset`], day 0 being on
    /// [`date_of_day`]`(0)`: the members of that date's snapshot.
    pub fn cumulate_user(&self, account_id: &str, date: NaiveDate) -> Option<i64> {
        let account = account_index(self, account_id)?;
        Some(cumulate(
            &World::new(self),
            account,
            day_of_date(date_of_day(0), date),
        ))
    }
}

/// Refuses the call of an account set unverified (WeChat: `48001`).
fn verified(state: &SimState, request: &ApiRequest) -> Result<usize, Reply> {
    let account = authorize(state, request)?;
    if lock(&state.unverified).contains(&account) {
        return Err(Reply::error(errcode::API_UNAUTHORIZED));
    }
    Ok(account)
}

/// `GET /cgi-bin/tags/get?access_token=..` → `{"tags":[{"id","name","count"}]}`
/// (no errcode on success); `count` over the followers listed today.
pub(crate) fn tags_get(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = verified(state, request)?;
    let population = state.population();
    let listed = population
        .followers
        .get(account)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let counts = tag_counts(&state.world, account, listed.iter().copied());
    let tags: Vec<Value> = TAGS
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "count": counts.get(id).copied().unwrap_or(0)}))
        .collect();
    Ok(Reply::ok(json!({ "tags": tags }).to_string(), account))
}

/// The `begin_date`..=`end_date` of a datacube body: dates (`61500`
/// otherwise), at most 7 days, all before today (`61501` otherwise).
fn datacube_span(state: &SimState, request: &ApiRequest) -> Result<(NaiveDate, NaiveDate), Reply> {
    let body = request.json_body()?;
    let date = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .and_then(|text| text.parse::<NaiveDate>().ok())
            .ok_or_else(|| Reply::error(errcode::DATE_FORMAT))
    };
    let (begin, end) = (date("begin_date")?, date("end_date")?);
    let today = state.first_date() + Duration::days(i64::from(state.day()));
    let days = (end - begin).num_days() + 1;
    if !(1..=DATACUBE_MAX_DAYS).contains(&days) || end >= today {
        return Err(Reply::error(errcode::DATE_RANGE));
    }
    Ok((begin, end))
}

fn dates(begin: NaiveDate, end: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    begin.iter_days().take_while(move |d| *d <= end)
}

/// `POST /datacube/getusercumulate` `{"begin_date","end_date"}` →
/// `{"list":[{"ref_date","cumulate_user"}]}`, one row per day.
pub(crate) fn user_cumulate(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = verified(state, request)?;
    let (begin, end) = datacube_span(state, request)?;
    let first = state.first_date();
    let offset = lock(&state.cumulate_offset)
        .get(&account)
        .copied()
        .unwrap_or(0);
    let list: Vec<Value> = dates(begin, end)
        .map(|date| {
            let count = cumulate(&state.world, account, day_of_date(first, date)) + offset;
            json!({"ref_date": date.to_string(), "cumulate_user": count.max(0)})
        })
        .collect();
    Ok(Reply::ok(json!({ "list": list }).to_string(), account))
}

/// `POST /datacube/getusersummary` → `{"list":[{"ref_date","user_source",
/// "new_user","cancel_user"}]}`: per day, a row for source 0 and one for
/// every other source with a follow or unfollow that day.
pub(crate) fn user_summary(state: &SimState, request: &ApiRequest) -> Result<Reply, Reply> {
    let account = verified(state, request)?;
    let (begin, end) = datacube_span(state, request)?;
    let Some(model) = state.world.models.get(account) else {
        return Err(Reply::error(errcode::BUSY));
    };
    let mut list = Vec::new();
    for date in dates(begin, end) {
        let day = day_of_date(state.first_date(), date);
        // (new, cancelled) per source; day 0 (and before) has no moves.
        let mut moves: BTreeMap<i64, (i64, i64)> = BTreeMap::from([(0, (0, 0))]);
        if day > 0 {
            for person in 0..state.world.people {
                let (now, before) = (
                    model.is_member(person, day),
                    model.is_member(person, day - 1),
                );
                if now == before {
                    continue;
                }
                let source = USER_SOURCES[(hash2(model.profile_key ^ 0x5eed, u64::from(person))
                    % USER_SOURCES.len() as u64)
                    as usize];
                let entry = moves.entry(source).or_insert((0, 0));
                if now {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
        for (source, (new_user, cancel_user)) in moves {
            list.push(json!({"ref_date": date.to_string(), "user_source": source, "new_user": new_user, "cancel_user": cancel_user}));
        }
    }
    Ok(Reply::ok(json!({ "list": list }).to_string(), account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_map_to_dates_from_2026_11_21() {
        assert_eq!(date_of_day(0).to_string(), "2026-11-21");
        assert_eq!(day_of_date(date_of_day(0), date_of_day(5)), 5);
        assert_eq!(
            day_of_date(date_of_day(0), "2026-01-01".parse().unwrap()),
            0
        );
    }
}
