//! A WeCom corp's customer group chats (客户群), derived from the population
//! like customers are: who is in the corp's groups on which day (a model of
//! its own: many group members are no staff member's contact), which chats
//! each of them is in (one, or two), which chats were dismissed (gone from
//! `groupchat/list`), each chat's status (owner left, handover) and owner,
//! and the two staff members (type 1) in every chat. A member's
//! external_userid is the corp's one for that person ([`CorpModel`]), so a
//! customer in a group is the same member twice.

use serde_json::{json, Value};

use super::contacts::CorpModel;
use super::ids::{derive_key, hash2, unit};
use super::kinds::{draw, SimCorp};
use super::population::{AccountModel, World};
use super::profile::DAY0_UNIX;
use super::scenario::SimAccount;

/// Share of chats dismissed before the snapshot (never chat 0).
const DISMISSED_SHARE: f64 = 0.1;
/// Share of group members in a second chat.
const SECOND_CHAT_SHARE: f64 = 0.2;
const THREE_YEARS_SECS: f64 = 3.0 * 365.0 * 86_400.0;

#[derive(Debug, Clone)]
pub(crate) struct GroupModel {
    audience: AccountModel,
    pub(crate) chats: u32,
    staff: u32,
    key: u64,
}

impl GroupModel {
    pub(crate) fn new(seed: u64, corp: &SimCorp) -> GroupModel {
        let audience = SimAccount {
            id: format!("{}/groups", corp.id),
            appid: corp.corpid.clone(),
            secret: String::new(),
            bound: corp.bound,
            reach: corp.group_reach,
            leave_during_crawl: 0.0,
            daily_churn: corp.daily_churn,
        };
        GroupModel {
            audience: AccountModel::new(seed, &audience),
            chats: corp.group_chats,
            staff: corp.staff.max(1),
            key: derive_key(seed, &format!("groups/{}", corp.id)),
        }
    }

    /// The chats `person` would be in (dismissed ones included), ascending.
    pub(crate) fn chats_of(&self, person: u32) -> Vec<u32> {
        if self.chats == 0 {
            return Vec::new();
        }
        let chats = u64::from(self.chats);
        let mut list = vec![(draw(self.key, person, 30) % chats) as u32];
        if unit(draw(self.key, person, 31)) < SECOND_CHAT_SHARE {
            let second = (draw(self.key, person, 32) % chats) as u32;
            if second != list[0] {
                list.push(second);
            }
        }
        list.sort_unstable();
        list
    }

    /// Dismissed chats are gone: not listed, `get` answers 40050.
    pub(crate) fn dismissed(&self, chat: u32) -> bool {
        chat != 0 && unit(draw(self.key, chat, 40)) < DISMISSED_SHARE
    }

    /// In at least one chat of the corp that is not dismissed, on `day`.
    pub(crate) fn in_groups(&self, person: u32, day: u32) -> bool {
        self.chats > 0
            && self.audience.is_member(person, day)
            && self.chats_of(person).iter().any(|&c| !self.dismissed(c))
    }

    /// 0 normal (7 in 10), 1 owner left, 2 handover in progress, 3 handover done.
    pub(crate) fn status(&self, chat: u32) -> i64 {
        match draw(self.key, chat, 41) % 10 {
            7 => 1,
            8 => 2,
            9 => 3,
            _ => 0,
        }
    }

    /// The owner and the other staff member of a chat.
    fn staff_of(&self, chat: u32) -> [u32; 2] {
        let staff = u64::from(self.staff);
        let owner = (draw(self.key, chat, 42) % staff) as u32;
        [owner, ((u64::from(owner) + 1) % staff) as u32]
    }

    /// The owner's userid: a staff member's, or, while the chat waits for
    /// or is in its handover (status 1, 2), the userid of the owner who
    /// left the corp (`gone_…`: no longer among the staff).
    pub(crate) fn owner_userid(&self, chat: u32) -> String {
        let owner = self.staff_of(chat)[0];
        match self.status(chat) {
            1 | 2 => format!("gone_{owner:04}"),
            _ => CorpModel::staff_userid(owner),
        }
    }

    /// `wr` + 16 hex + the chat's 8 hex + `AAAA`: 30 characters like the
    /// doc's example ids.
    pub(crate) fn chat_id(&self, chat: u32) -> String {
        format!("wr{:016x}{chat:08x}AAAA", hash2(self.key, u64::from(chat)))
    }

    /// The chat an id names, if it is one of this corp's.
    pub(crate) fn chat_of_id(&self, id: &str) -> Option<u32> {
        let body = id.strip_prefix("wr")?.strip_suffix("AAAA")?;
        let (check, index) = (body.get(..16)?, body.get(16..)?);
        let chat = u32::from_str_radix(index, 16).ok()?;
        (chat < self.chats && *id == self.chat_id(chat) && check.len() == 16).then_some(chat)
    }

    fn create_time(&self, chat: u32) -> i64 {
        DAY0_UNIX - THREE_YEARS_SECS as i64 - i64::from(chat) * 60
    }

    /// Changes whenever the chat's member list does.
    fn member_version(&self, chat: u32, members: &[u32]) -> String {
        let digest = members
            .iter()
            .fold(hash2(self.key, u64::from(chat)), |h, &p| {
                hash2(h, u64::from(p))
            });
        format!("{:016x}{:016x}", digest, hash2(digest, 7))
    }

    /// The `group_chat` object of `groupchat/get`: the two staff members
    /// (type 1), then the external `members` (type 2) in person order.
    pub(crate) fn chat(
        &self,
        corp: &CorpModel,
        world: &World,
        chat: u32,
        members: &[u32],
        need_name: bool,
    ) -> Value {
        let [_, second] = self.staff_of(chat);
        let owner = self.owner_userid(chat);
        let created = self.create_time(chat);
        let mut list: Vec<Value> = [owner.clone(), CorpModel::staff_userid(second)]
            .iter()
            .map(|staff| {
                let mut member = json!({
                    "userid": staff,
                    "type": 1,
                    "join_time": created,
                    "join_scene": 1,
                    "invitor": {"userid": owner},
                    "group_nickname": "",
                });
                if need_name {
                    member["name"] = json!(format!("Staff {staff}"));
                }
                member
            })
            .collect();
        for &person in members {
            let h = |salt: u64| {
                draw(
                    self.key ^ u64::from(chat).wrapping_mul(0x9E37),
                    person,
                    salt,
                )
            };
            let scene = 1 + h(50) % 3;
            let mut member = json!({
                "userid": corp.external_userid(person),
                "type": 2,
                "join_time": DAY0_UNIX - (unit(h(51)) * THREE_YEARS_SECS * 0.9) as i64,
                "join_scene": scene,
                "group_nickname": "",
            });
            if scene == 1 {
                member["invitor"] = json!({"userid": owner});
            }
            if corp.reveals_unionid(person) {
                member["unionid"] = json!(world.unionids.encode(person));
            }
            if need_name {
                member["name"] = json!(format!("Customer {person}"));
            }
            list.push(member);
        }
        json!({
            "chat_id": self.chat_id(chat),
            "name": format!("Customer group {chat}"),
            "owner": owner,
            "create_time": created,
            "notice": "",
            "member_list": list,
            "admin_list": [{"userid": CorpModel::staff_userid(second)}],
            "member_version": self.member_version(chat, members),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> GroupModel {
        let corp = SimCorp {
            group_chats: 300,
            group_reach: 0.3,
            ..SimCorp::new(9, "crm", 0.2)
        };
        GroupModel::new(9, &corp)
    }

    #[test]
    fn chat_ids_round_trip_and_reject_forgeries() {
        let model = model();
        for chat in [0, 1, 299] {
            let id = model.chat_id(chat);
            assert_eq!(id.len(), 30, "{id}");
            assert_eq!(model.chat_of_id(&id), Some(chat));
        }
        let mut forged = model.chat_id(5).into_bytes();
        forged[3] = if forged[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(model.chat_of_id(&String::from_utf8(forged).unwrap()), None);
        assert_eq!(model.chat_of_id("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"), None);
    }

    #[test]
    fn some_chats_are_dismissed_and_statuses_vary() {
        let model = model();
        let dismissed = (0..300).filter(|&c| model.dismissed(c)).count();
        assert!((10..60).contains(&dismissed), "{dismissed}");
        assert!(!model.dismissed(0));
        let left = (0..300).filter(|&c| model.status(c) == 1).count();
        assert!((10..60).contains(&left), "{left}");
    }
}
