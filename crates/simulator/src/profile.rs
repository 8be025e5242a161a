//! The `user/info` object of a follower, derived from hashes of (seed,
//! account, person) so that it is stable between calls and runs and costs no
//! memory.

use serde::Serialize;

use super::ids::{hash2, unit};
use super::population::{AccountModel, World};

/// 2026-11-21T00:00:00Z: "now" on day 0 of every scenario. Subscribe times lie
/// in the five years before it.
pub(crate) const DAY0_UNIX: i64 = 1_795_219_200;
const FIVE_YEARS_SECS: f64 = 5.0 * 365.0 * 86_400.0;

/// The tag ids on a follower of the account `model` (`tagid_list`): up to
/// three of [`super::counts::TAGS`]' assignable ones, ascending.
pub(crate) fn follower_tags(model: &AccountModel, person: u32) -> Vec<u32> {
    let draw = |purpose: u64| hash2(model.profile_key ^ purpose, u64::from(person));
    let mut tags: Vec<u32> = (0..draw(7) % 4)
        .map(|i| match draw(8 + i) % 8 {
            0 => 2, // the system "starred" tag
            n => 99 + n as u32 * 4,
        })
        .collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// `subscribe_scene` values, the real enum (wechat-api.md §1.4), with weights
/// roughly like a brand account's.
const SCENES: &[(&str, u32)] = &[
    ("ADD_SCENE_SEARCH", 20),
    ("ADD_SCENE_ACCOUNT_MIGRATION", 2),
    ("ADD_SCENE_PROFILE_CARD", 10),
    ("ADD_SCENE_QR_CODE", 25),
    ("ADD_SCENE_PROFILE_LINK", 10),
    ("ADD_SCENE_PROFILE_ITEM", 5),
    ("ADD_SCENE_PAID", 2),
    ("ADD_SCENE_WECHAT_ADVERTISEMENT", 6),
    ("ADD_SCENE_REPRINT", 4),
    ("ADD_SCENE_LIVESTREAM", 3),
    ("ADD_SCENE_CHANNELS", 5),
    ("ADD_SCENE_OTHERS", 8),
];

const LANGUAGES: &[(&str, u32)] = &[("zh_CN", 85), ("en", 7), ("zh_TW", 5), ("zh_HK", 3)];

/// Operators' notes: mostly none; some in Chinese to exercise UTF-8.
const REMARKS: &[&str] = &[
    "VIP",
    "\u{8001}\u{5ba2}\u{6237}",
    "wholesale lead",
    "\u{5df2}\u{56de}\u{8bbf}",
];

const QR_SCENE_STRS: &[&str] = &["autumn_campaign", "store_0042", "expo-2026", "flyer_b"];

/// One element of `user_info_list` (and the body of `user/info`), in
/// WeChat's field order. `None` fields are left out, as WeChat does.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserInfo {
    pub(crate) subscribe: u8,
    pub(crate) openid: String,
    // Legacy fields: since 2021-12-27 WeChat returns them empty for some
    // accounts and omits them for others; parsers must accept both.
    #[serde(skip_serializing_if = "Option::is_none")]
    nickname: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sex: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    province: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headimgurl: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribe_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unionid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groupid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tagid_list: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribe_scene: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qr_scene: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qr_scene_str: Option<&'static str>,
}

fn weighted(table: &'static [(&'static str, u32)], h: u64) -> &'static str {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut pick = (h % u64::from(total)) as u32;
    for (value, weight) in table {
        if pick < *weight {
            return value;
        }
        pick -= weight;
    }
    table[0].0
}

impl UserInfo {
    /// What WeChat answers for someone who does not (or no longer) follow:
    /// `{"subscribe":0,"openid":"..."}` and nothing else.
    pub(crate) fn unsubscribed(openid: String) -> UserInfo {
        UserInfo {
            subscribe: 0,
            openid,
            nickname: None,
            sex: None,
            language: None,
            city: None,
            province: None,
            country: None,
            headimgurl: None,
            subscribe_time: None,
            unionid: None,
            remark: None,
            groupid: None,
            tagid_list: None,
            subscribe_scene: None,
            qr_scene: None,
            qr_scene_str: None,
        }
    }

    /// The full profile of a follower of `account`.
    pub(crate) fn follower(world: &World, account: usize, person: u32, openid: String) -> UserInfo {
        let Some(model) = world.models.get(account) else {
            return UserInfo::unsubscribed(openid);
        };
        let draw = |purpose: u64| hash2(model.profile_key ^ purpose, u64::from(person));
        let legacy = unit(draw(1)) < 0.6;
        let scene = weighted(SCENES, draw(2));
        let (qr_scene, qr_scene_str) = if scene == "ADD_SCENE_QR_CODE" {
            if draw(3) % 4 == 0 {
                (
                    0,
                    QR_SCENE_STRS[(draw(4) % QR_SCENE_STRS.len() as u64) as usize],
                )
            } else {
                (draw(4) % 100_000 + 1, "")
            }
        } else {
            (0, "")
        };
        let remark = if unit(draw(5)) < 0.03 {
            REMARKS[(draw(6) % REMARKS.len() as u64) as usize]
        } else {
            ""
        };
        let tags = follower_tags(model, person);
        let subscribe_time = DAY0_UNIX - (unit(draw(12)) * FIVE_YEARS_SECS) as i64;
        UserInfo {
            subscribe: 1,
            openid,
            nickname: legacy.then_some(""),
            sex: legacy.then_some(0),
            language: Some(weighted(LANGUAGES, draw(13))),
            city: legacy.then_some(""),
            province: legacy.then_some(""),
            country: legacy.then_some(""),
            headimgurl: legacy.then_some(""),
            subscribe_time: Some(subscribe_time),
            unionid: model.bound.then(|| world.unionids.encode(person)),
            remark: Some(remark),
            groupid: legacy.then_some(0),
            tagid_list: Some(tags),
            subscribe_scene: Some(scene),
            qr_scene: Some(qr_scene),
            qr_scene_str: Some(qr_scene_str),
        }
    }
}
