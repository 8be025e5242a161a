//! WeCom customer group chats (客户群): `externalcontact/groupchat/list`
//! (every chat of the staff within the app's visibility, cursor-paged,
//! 1,000 a page) and `externalcontact/groupchat/get` (one chat's members).
//!
//! What WeCom's answers make knowable, and what not: the list gives only
//! `chat_id` and `status` (0 normal, 1 owner left, 2 handover in progress,
//! 3 handover done). `member_version` (a hash WeCom changes with the member
//! list) and every member are only in `groupchat/get`: no list or batch call
//! says whether a chat changed since yesterday, so every listed chat is
//! fetched on every run (the change event `change_external_chat` carries
//! the version, but a batch job receives no callbacks). Dismissed chats
//! disappear from the list; one dismissed between the list and its `get`
//! answers 40050 (chat not found) and is skipped, counted.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;

use super::cursor::Cursors;
use super::errcode::CallKind;
use super::error::ApiError;
use super::http::Request;
use super::wecom::WeComClient;
use super::wire::{lenient_i32, lenient_opt_i64, nonempty_string};

pub const GROUPCHAT_LIST_PATH: &str = "/cgi-bin/externalcontact/groupchat/list";
pub const GROUPCHAT_GET_PATH: &str = "/cgi-bin/externalcontact/groupchat/get";
/// Most chats per `groupchat/list` page (the doc's range is 1..=1000).
pub const GROUPCHAT_LIST_LIMIT: usize = 1000;
/// `groupchat/get` of a chat that no longer exists (dismissed since it was
/// listed).
pub const CHAT_NOT_FOUND: i64 = 40050;

/// One element of `group_chat_list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedChat {
    pub chat_id: String,
    /// 0 normal, 1 owner left (跟进人离职), 2 handover in progress, 3 handover done.
    #[serde(default, deserialize_with = "lenient_i32")]
    pub status: i32,
}

/// A member of a chat as `groupchat/get` lists it. Names and group
/// nicknames are personal data the snapshot does not need: never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMember {
    /// Staff: the corp's userid; external: the external_userid (`wm…` a
    /// WeChat user, `wo…` a WeCom user of another corp).
    pub userid: String,
    /// 1 staff of the corp, 2 external.
    pub member_type: i32,
    /// Only for WeChat users, and only when the corp bound a developer ID
    /// and the app is self-built.
    pub unionid: Option<String>,
    /// Unix seconds.
    pub join_time: Option<i64>,
    /// 1 invited directly, 2 by invitation link, 3 by QR code.
    pub join_scene: Option<i32>,
    /// The userid of the staff member who invited them (`invitor.userid`).
    pub invitor: Option<String>,
}

/// One chat as `groupchat/get` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChat {
    pub chat_id: String,
    pub name: Option<String>,
    /// The owner's userid (still listed after the owner left the corp).
    pub owner: Option<String>,
    /// Unix seconds.
    pub create_time: Option<i64>,
    /// Changes whenever the member list changes (absent from older answers).
    pub member_version: Option<String>,
    pub members: Vec<ChatMember>,
    /// Members without a `userid` in the answer: left out.
    pub members_without_id: usize,
}

/// A corp's chats: each listed chat with its status and answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupChats {
    pub chats: Vec<(ListedChat, GroupChat)>,
    /// Chats listed, then gone before their `get` (40050).
    pub vanished: usize,
    /// `groupchat/list` calls made.
    pub list_calls: usize,
}

#[derive(Deserialize)]
pub(crate) struct ListResponse {
    #[serde(default)]
    group_chat_list: Option<Vec<ListedChat>>,
    #[serde(default, deserialize_with = "nonempty_string")]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct GetResponse {
    group_chat: ChatBody,
}

#[derive(Deserialize)]
struct ChatBody {
    #[serde(default)]
    chat_id: String,
    #[serde(default, deserialize_with = "nonempty_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "nonempty_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    create_time: Option<i64>,
    #[serde(default, deserialize_with = "nonempty_string")]
    member_version: Option<String>,
    #[serde(default)]
    member_list: Option<Vec<MemberBody>>,
}

#[derive(Deserialize)]
struct MemberBody {
    #[serde(default, deserialize_with = "nonempty_string")]
    userid: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient_i32")]
    member_type: i32,
    #[serde(default, deserialize_with = "nonempty_string")]
    unionid: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    join_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    join_scene: Option<i64>,
    #[serde(default)]
    invitor: Option<Invitor>,
}

#[derive(Deserialize)]
struct Invitor {
    #[serde(default, deserialize_with = "nonempty_string")]
    userid: Option<String>,
}

impl ListResponse {
    pub(crate) fn into_page(self) -> (Vec<ListedChat>, Option<String>) {
        (self.group_chat_list.unwrap_or_default(), self.next_cursor)
    }
}

impl GetResponse {
    pub(crate) fn into_chat(self, asked: &str) -> GroupChat {
        GroupChat::from((asked.to_string(), self.group_chat))
    }
}

impl From<(String, ChatBody)> for GroupChat {
    fn from((asked, body): (String, ChatBody)) -> Self {
        let mut members_without_id = 0;
        let members = body
            .member_list
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let Some(userid) = m.userid else {
                    members_without_id += 1;
                    return None;
                };
                Some(ChatMember {
                    userid,
                    member_type: m.member_type,
                    unionid: m.unionid,
                    join_time: m.join_time,
                    join_scene: m.join_scene.and_then(|n| i32::try_from(n).ok()),
                    invitor: m.invitor.and_then(|i| i.userid),
                })
            })
            .collect();
        GroupChat {
            // The chat asked for: an answer without chat_id still is its.
            chat_id: if body.chat_id.is_empty() {
                asked
            } else {
                body.chat_id
            },
            name: body.name,
            owner: body.owner,
            create_time: body.create_time,
            member_version: body.member_version,
            members,
            members_without_id,
        }
    }
}

impl WeComClient {
    /// One page of every chat within the app's visibility (`status_filter`
    /// 0: all, owner left or not), from `cursor` (None: the first page).
    /// Returns the page and the next cursor (None: the list is over).
    pub async fn groupchat_list_page(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<ListedChat>, Option<String>), ApiError> {
        let mut body = json!({ "status_filter": 0, "limit": GROUPCHAT_LIST_LIMIT });
        if let Some(cursor) = cursor {
            body["cursor"] = json!(cursor);
        }
        let request = Request::post_json(GROUPCHAT_LIST_PATH, CallKind::WECOM_DATA, &body);
        let response: ListResponse = self.call(&request).await?;
        Ok(response.into_page())
    }

    /// Every listed chat, each once (a chat listed twice while the list
    /// moved keeps its first status), and the number of list calls. A
    /// cursor handed back twice ends in [`ApiError::RepeatedPage`], never in
    /// an endless loop.
    pub async fn groupchat_list(&self) -> Result<(Vec<ListedChat>, usize), ApiError> {
        let mut chats = Vec::new();
        let mut seen = HashSet::new();
        let mut cursors = Cursors::default();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = self.groupchat_list_page(cursor.as_deref()).await?;
            cursors.page(next.as_deref(), &self.scope.account_id, GROUPCHAT_LIST_PATH)?;
            chats.extend(
                page.into_iter()
                    .filter(|chat| !chat.chat_id.is_empty() && seen.insert(chat.chat_id.clone())),
            );
            match next {
                None => return Ok((chats, cursors.pages())),
                Some(next) => cursor = Some(next),
            }
        }
    }

    /// One chat's members (`need_name` 0: names are not read). `Ok(None)`
    /// when the chat no longer exists ([`CHAT_NOT_FOUND`]).
    pub async fn groupchat_get(&self, chat_id: &str) -> Result<Option<GroupChat>, ApiError> {
        let body = json!({ "chat_id": chat_id, "need_name": 0 });
        let request = Request::post_json(GROUPCHAT_GET_PATH, CallKind::WECOM_DATA, &body);
        match self.call::<GetResponse>(&request).await {
            Ok(response) => Ok(Some(response.into_chat(chat_id))),
            Err(err) if err.errcode() == Some(CHAT_NOT_FOUND) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every chat of the corp with its members: the list, then one `get`
    /// per chat (`concurrency` in flight). The cost is fixed by WeCom's
    /// answers: ⌈chats / 1000⌉ list calls plus one get per chat.
    pub async fn group_chats(&self, concurrency: usize) -> Result<GroupChats, ApiError> {
        let (listed, list_calls) = self.groupchat_list().await?;
        let answers: Vec<Option<GroupChat>> = futures::stream::iter(&listed)
            .map(|chat| self.groupchat_get(&chat.chat_id))
            .buffered(concurrency.max(1))
            .boxed()
            .try_collect()
            .await?;
        let mut chats = GroupChats {
            list_calls,
            ..GroupChats::default()
        };
        for (listed, answer) in listed.into_iter().zip(answers) {
            match answer {
                Some(chat) => chats.chats.push((listed, chat)),
                None => chats.vanished += 1,
            }
        }
        Ok(chats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::decode::decode_body;

    #[test]
    fn the_doc_shape_of_groupchat_get_decodes_with_version_and_invitor() {
        // The shape of WeChat's doc example (path/92122), names included:
        // they are dropped, never kept.
        let body = r#"{"errcode":0,"errmsg":"ok","group_chat":{"chat_id":"wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA","name":"销售客服群","owner":"ZhuShengBen","create_time":1572505490,"notice":"n","member_list":[{"userid":"abel","type":1,"join_time":1572505491,"join_scene":1,"invitor":{"userid":"jack"},"group_nickname":"客服小张","name":"张三丰"},{"userid":"wmOgQhDgAAuXFJGwbve4g4iXknfOAAAA","type":2,"unionid":"ozynqsulJFCZ2z1aYeS8h-nuasdAAA","join_time":1572505491,"join_scene":1,"group_nickname":"顾客老王","name":"王语嫣"},{"type":2}],"admin_list":[{"userid":"sam"}],"member_version":"71217227bbd112ecfe3a49c482195cb4"}}"#;
        let response: GetResponse = decode_body(200, body.as_bytes()).unwrap();
        let chat = GroupChat::from(("asked".to_string(), response.group_chat));
        assert_eq!(chat.chat_id, "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA");
        assert_eq!(
            chat.member_version.as_deref(),
            Some("71217227bbd112ecfe3a49c482195cb4")
        );
        assert_eq!(chat.members.len(), 2);
        assert_eq!(chat.members_without_id, 1);
        assert_eq!(chat.members[0].invitor.as_deref(), Some("jack"));
        assert_eq!(chat.members[1].member_type, 2);
        assert_eq!(
            chat.members[1].unionid.as_deref(),
            Some("ozynqsulJFCZ2z1aYeS8h-nuasdAAA")
        );
    }

    #[test]
    fn a_chat_body_without_any_optional_field_decodes() {
        let body = br#"{"errcode":0,"errmsg":"ok","group_chat":{"member_list":null}}"#;
        let response: GetResponse = decode_body(200, body).unwrap();
        let chat = GroupChat::from(("wrX".to_string(), response.group_chat));
        assert_eq!(chat.chat_id, "wrX");
        assert!(chat.members.is_empty() && chat.member_version.is_none());
    }
}
