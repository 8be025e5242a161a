//! The simulated accounts beyond Official Accounts with their own AppSecret:
//! a third-party platform and the Official Accounts that authorized it,
//! WeCom corps with customer contacts, and Mini Programs / apps / websites
//! whose users exist only in the business's login exports. All of them draw
//! their members from the scenario's one population of people, so a person
//! can be a follower, a customer and an app user at once, under one UnionID.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{self, derive_key, hash2, mix};
use super::scenario::SimAccount;

/// A third-party platform (开放平台第三方平台) and the Official Accounts that
/// authorized it. Its `Debug` output hides the secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SimPlatform {
    pub component_appid: String,
    pub component_secret: String,
    /// The `component_verify_ticket` the simulator accepts (WeChat pushes a
    /// new one every 10 minutes; the simulator keeps one).
    pub verify_ticket: String,
    /// Official Accounts managed through the platform, followed like any
    /// other. Here an account's `secret` is its `authorizer_refresh_token`:
    /// the credential a job holds for it.
    pub accounts: Vec<SimAccount>,
}

impl fmt::Debug for SimPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimPlatform")
            .field("component_appid", &self.component_appid)
            .field("component_secret", &"[REDACTED]")
            .field("verify_ticket", &"[REDACTED]")
            .field("accounts", &self.accounts)
            .finish()
    }
}

impl SimPlatform {
    /// A platform with credentials derived from the seed.
    pub fn new(seed: u64, accounts: Vec<SimAccount>) -> SimPlatform {
        SimPlatform {
            component_appid: ids::derived_appid(seed, "component"),
            component_secret: ids::derived_secret(seed, "component"),
            verify_ticket: format!(
                "ticket@@@{}",
                ids::derived_secret(seed, "component/verify_ticket")
            ),
            accounts,
        }
    }
}

/// Which app-login kind a [`SimApp`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimAppKind {
    MiniProgram,
    MobileApp,
    Website,
}

impl SimAppKind {
    /// The job file's `kind` (and the `account_kind` column).
    pub fn as_str(self) -> &'static str {
        match self {
            SimAppKind::MiniProgram => "mini_program",
            SimAppKind::MobileApp => "mobile_app",
            SimAppKind::Website => "website",
        }
    }
}

/// A Mini Program, mobile app or website using WeChat Login. No API lists its
/// users: the simulator writes the business's login export instead
/// (see `exports`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimApp {
    pub id: String,
    pub kind: SimAppKind,
    pub appid: String,
    /// Bound to the Open Platform account: logins carry a UnionID.
    pub bound: bool,
    /// Probability that a person has logged in (on day 0).
    pub reach: f64,
    /// Per day after day 0: the fraction of users who drop out of the export.
    pub daily_churn: f64,
    /// Fraction of users who appear a second time in the export (a login
    /// log): the import must count them once, with the earliest first_seen.
    pub repeat_logins: f64,
}

impl SimApp {
    pub fn new(seed: u64, id: &str, kind: SimAppKind, reach: f64) -> SimApp {
        SimApp {
            id: id.to_string(),
            kind,
            appid: ids::derived_appid(seed, id),
            bound: true,
            reach,
            daily_churn: 0.0,
            repeat_logins: 0.1,
        }
    }

    /// The follower-style model of its users (same draw rules as an
    /// Official Account; nobody leaves during a crawl, there is none).
    pub(crate) fn as_account(&self) -> SimAccount {
        SimAccount {
            id: self.id.clone(),
            appid: self.appid.clone(),
            secret: String::new(),
            bound: self.bound,
            reach: self.reach,
            leave_during_crawl: 0.0,
            daily_churn: self.daily_churn,
        }
    }
}

/// A WeCom corp whose staff members have external contacts (customers).
/// Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SimCorp {
    pub id: String,
    /// `ww` + 16 hex characters.
    pub corpid: String,
    /// The customer-contact secret `gettoken` accepts.
    pub secret: String,
    /// A developer ID (Official Account / Mini Program bound to the Open
    /// Platform account) is bound: WeChat-user contacts carry a UnionID.
    pub bound: bool,
    /// The app is a third-party / 代开发 app: contacts never carry a UnionID,
    /// and `idconvert/unionid_to_external_userid` links them.
    pub idconvert: bool,
    /// Staff members with customer contact (`get_follow_user_list`).
    pub staff: u32,
    /// Probability that a person is a customer (on day 0).
    pub reach: f64,
    /// Fraction of customers who are WeCom users (type 2, `wo…`): no
    /// UnionID ever.
    pub wecom_user_share: f64,
    /// Fraction of customers added by two or three staff members (one row
    /// per staff member, one member).
    pub shared_share: f64,
    /// Per day after day 0: the fraction of customers who delete the contact.
    pub daily_churn: f64,
    /// Customer group chats (客户群) the corp's staff own, dismissed ones
    /// included (0: no groups; `groupchat/list` answers an empty list).
    #[serde(default)]
    pub group_chats: u32,
    /// Probability that a person is in one of the corp's groups (on day 0;
    /// they move with `daily_churn` like customers do). Independent of
    /// being a customer: many group members are no staff member's contact.
    #[serde(default)]
    pub group_reach: f64,
}

impl fmt::Debug for SimCorp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCorp")
            .field("id", &self.id)
            .field("corpid", &self.corpid)
            .field("secret", &"[REDACTED]")
            .field("bound", &self.bound)
            .field("idconvert", &self.idconvert)
            .field("staff", &self.staff)
            .field("reach", &self.reach)
            .field("wecom_user_share", &self.wecom_user_share)
            .field("shared_share", &self.shared_share)
            .field("daily_churn", &self.daily_churn)
            .field("group_chats", &self.group_chats)
            .field("group_reach", &self.group_reach)
            .finish()
    }
}

impl SimCorp {
    /// A self-built, bound corp with 12 staff members, 10% WeCom-user
    /// contacts and 15% contacts shared by several staff members.
    pub fn new(seed: u64, id: &str, reach: f64) -> SimCorp {
        let key = derive_key(seed, &format!("corpid/{id}"));
        SimCorp {
            id: id.to_string(),
            corpid: format!("ww{:016x}", mix(key)),
            secret: ids::derived_secret(seed, id),
            bound: true,
            idconvert: false,
            staff: 12,
            reach,
            wecom_user_share: 0.1,
            shared_share: 0.15,
            daily_churn: 0.0,
            group_chats: 0,
            group_reach: 0.0,
        }
    }

    /// Its customers as a follower-style model (who is a customer on a day).
    pub(crate) fn as_account(&self) -> SimAccount {
        SimAccount {
            id: self.id.clone(),
            appid: self.corpid.clone(),
            secret: String::new(),
            bound: self.bound,
            reach: self.reach,
            leave_during_crawl: 0.0,
            daily_churn: self.daily_churn,
        }
    }
}

/// `hash2` of a (key, person, salt) triple: per-person draws of a corp.
pub(crate) fn draw(key: u64, person: u32, salt: u64) -> u64 {
    hash2(key ^ mix(salt), u64::from(person))
}
