//! A WeCom corp's customers, derived from the population like followers
//! are: who is a customer on which day, whether they are a WeChat user
//! (type 1, `wm…`) or a WeCom user (type 2, `wo…`), which staff members
//! added them (one, or two or three for shared customers), and the
//! `follow_info` of each relation. Nothing is stored per customer except
//! the per-staff lists the server pages through.

use serde_json::{json, Value};

use super::groups::GroupModel;
use super::ids::{derive_key, unit, IdCodec};
use super::kinds::{draw, SimCorp};
use super::population::{AccountModel, World};
use super::profile::DAY0_UNIX;

/// `add_way` values a customer relation is drawn from (wechat-api.md §4.4).
const ADD_WAYS: [i64; 8] = [1, 1, 1, 2, 3, 4, 16, 202];
/// `state` channel parameters of 「联系我」 codes and acquisition links.
const STATES: [&str; 4] = ["store_qr", "autumn_campaign", "web_chat", "expo-2026"];
const REMARKS: [&str; 3] = ["VIP", "\u{8001}\u{5ba2}\u{6237}", "prefers WeChat calls"];
const THREE_YEARS_SECS: f64 = 3.0 * 365.0 * 86_400.0;

/// Observed external_userids end in `AAA` (wechat-api.md §4.3 examples).
const EXTERNAL_SUFFIX: &str = "AAA";

/// Which kind of contact a customer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContactType {
    /// A WeChat user: `wm…`, may carry a UnionID.
    WeChat = 1,
    /// A WeCom user of another company: `wo…`, never a UnionID.
    WeCom = 2,
}

#[derive(Debug, Clone)]
pub(crate) struct CorpModel {
    pub(crate) customers: AccountModel,
    pub(crate) bound: bool,
    pub(crate) idconvert: bool,
    pub(crate) staff: u32,
    /// The corp's customer group chats.
    pub(crate) groups: GroupModel,
    wecom_user_share: f64,
    shared_share: f64,
    key: u64,
    external_ids: IdCodec,
}

impl CorpModel {
    pub(crate) fn new(seed: u64, corp: &SimCorp) -> CorpModel {
        CorpModel {
            customers: AccountModel::new(seed, &corp.as_account()),
            bound: corp.bound,
            idconvert: corp.idconvert,
            staff: corp.staff,
            groups: GroupModel::new(seed, corp),
            wecom_user_share: corp.wecom_user_share,
            shared_share: corp.shared_share,
            key: derive_key(seed, &format!("corp/{}", corp.id)),
            external_ids: IdCodec::new(seed, &format!("external_userid/{}", corp.id)),
        }
    }

    /// A customer of the corp on `day` (added by at least one staff member).
    pub(crate) fn is_customer(&self, person: u32, day: u32) -> bool {
        self.customers.is_member(person, day)
    }

    /// A member of the corp's audience on `day`: a customer, or in one of
    /// its (not dismissed) group chats.
    pub(crate) fn is_member(&self, person: u32, day: u32) -> bool {
        self.is_customer(person, day) || self.groups.in_groups(person, day)
    }

    pub(crate) fn contact_type(&self, person: u32) -> ContactType {
        if unit(draw(self.key, person, 1)) < self.wecom_user_share {
            ContactType::WeCom
        } else {
            ContactType::WeChat
        }
    }

    /// The UnionID this corp's API reveals for a customer: only WeChat users,
    /// only with a bound developer ID, never to a third-party/代开发 app.
    pub(crate) fn reveals_unionid(&self, person: u32) -> bool {
        self.bound && !self.idconvert && self.contact_type(person) == ContactType::WeChat
    }

    /// The staff members who added `person`: one, or two or three distinct
    /// ones for a shared customer; ascending.
    pub(crate) fn staff_of(&self, person: u32) -> Vec<u32> {
        let staff = u64::from(self.staff);
        let mut list = vec![(draw(self.key, person, 2) % staff) as u32];
        if unit(draw(self.key, person, 3)) < self.shared_share {
            let extra = 1 + draw(self.key, person, 4) % 2;
            for i in 0..extra {
                let candidate = (draw(self.key, person, 5 + i) % staff) as u32;
                if !list.contains(&candidate) {
                    list.push(candidate);
                }
            }
        }
        list.sort_unstable();
        list
    }

    /// `wm` or `wo`, 27 characters carrying the person, `AAA`: 32 characters.
    pub(crate) fn external_userid(&self, person: u32) -> String {
        let prefix = match self.contact_type(person) {
            ContactType::WeChat => "wm",
            ContactType::WeCom => "wo",
        };
        let body = self.external_ids.encode(person);
        format!("{prefix}{}{EXTERNAL_SUFFIX}", &body[1..])
    }

    /// The person behind an external_userid of this corp.
    pub(crate) fn person_of_external_userid(&self, id: &str, people: u32) -> Option<u32> {
        let body = id.strip_suffix(EXTERNAL_SUFFIX)?;
        let (prefix, body) = (body.get(..2)?, body.get(2..)?);
        let person = self.external_ids.decode(&format!("o{body}"))?;
        let expected = match self.contact_type(person) {
            ContactType::WeChat => "wm",
            ContactType::WeCom => "wo",
        };
        (person < people && prefix == expected).then_some(person)
    }

    /// The userid of staff member `index`.
    pub(crate) fn staff_userid(index: u32) -> String {
        format!("sales_{index:04}")
    }

    pub(crate) fn staff_index(&self, userid: &str) -> Option<u32> {
        let index: u32 = userid.strip_prefix("sales_")?.parse().ok()?;
        (index < self.staff && Self::staff_userid(index) == userid).then_some(index)
    }

    /// Unix seconds when staff member `staff` added `person`.
    pub(crate) fn createtime(&self, person: u32, staff: u32) -> i64 {
        let h = draw(self.key ^ u64::from(staff).wrapping_mul(0x9E37), person, 6);
        DAY0_UNIX - (unit(h) * THREE_YEARS_SECS) as i64
    }

    /// One element of `external_contact_list`: the customer as
    /// `external_contact`, the relation with one staff member as `follow_info`.
    pub(crate) fn relation(&self, world: &World, person: u32, staff: u32) -> Value {
        let contact_type = self.contact_type(person);
        let userid = Self::staff_userid(staff);
        let h = |salt: u64| {
            draw(
                self.key ^ u64::from(staff).wrapping_mul(0x51ED),
                person,
                salt,
            )
        };
        let mut external_contact = json!({
            "external_userid": self.external_userid(person),
            "name": format!("Customer {person}"),
            "type": contact_type as i64,
            "gender": h(10) % 3,
        });
        if contact_type == ContactType::WeCom {
            external_contact["corp_name"] = json!("Partner Co.");
            external_contact["position"] = json!("Buyer");
        }
        if self.reveals_unionid(person) {
            external_contact["unionid"] = json!(world.unionids.encode(person));
        }
        let tags: Vec<String> = (0..h(11) % 3)
            .map(|i| format!("etSIMTAG{:02}", h(12 + i) % 20))
            .collect();
        let remark = if unit(h(15)) < 0.1 {
            REMARKS[(h(16) % REMARKS.len() as u64) as usize]
        } else {
            ""
        };
        let state = if unit(h(17)) < 0.4 {
            STATES[(h(18) % STATES.len() as u64) as usize]
        } else {
            ""
        };
        json!({
            "external_contact": external_contact,
            "follow_info": {
                "userid": userid,
                "remark": remark,
                "description": "",
                "createtime": self.createtime(person, staff),
                "tag_id": tags,
                "remark_corp_name": "",
                "remark_mobiles": [],
                "oper_userid": userid,
                "add_way": ADD_WAYS[(h(19) % ADD_WAYS.len() as u64) as usize],
                "state": state,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corp() -> CorpModel {
        let corp = SimCorp {
            wecom_user_share: 0.3,
            shared_share: 0.5,
            ..SimCorp::new(4, "crm", 0.5)
        };
        CorpModel::new(4, &corp)
    }

    #[test]
    fn external_userids_round_trip_and_carry_their_type() {
        let corp = corp();
        let mut types = [0, 0];
        for person in 0..200 {
            let id = corp.external_userid(person);
            assert_eq!(id.len(), 32, "{id}");
            assert_eq!(corp.person_of_external_userid(&id, 1000), Some(person));
            match corp.contact_type(person) {
                ContactType::WeChat => {
                    assert!(id.starts_with("wm"));
                    types[0] += 1
                }
                ContactType::WeCom => {
                    assert!(id.starts_with("wo"));
                    types[1] += 1
                }
            }
            let flipped = if id.starts_with("wm") {
                id.replacen("wm", "wo", 1)
            } else {
                id.replacen("wo", "wm", 1)
            };
            assert_eq!(corp.person_of_external_userid(&flipped, 1000), None);
        }
        assert!(types[0] > 100 && types[1] > 30, "{types:?}");
    }

    #[test]
    fn shared_customers_have_distinct_staff_members() {
        let corp = corp();
        let shared = (0..1000)
            .map(|p| corp.staff_of(p))
            .filter(|staff| staff.len() > 1)
            .inspect(|staff| {
                let mut distinct = staff.clone();
                distinct.dedup();
                assert_eq!(&distinct, staff);
            })
            .count();
        assert!((350..650).contains(&shared), "{shared}");
        assert_eq!(corp.staff_index(&CorpModel::staff_userid(7)), Some(7));
        assert_eq!(corp.staff_index("sales_7"), None);
        assert_eq!(corp.staff_index("sales_0012"), None);
    }
}
