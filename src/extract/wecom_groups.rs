//! WeCom customer group chats (客户群) → the `group_members` table: one row
//! per (chat, external member). Staff members (type 1) are the corp itself,
//! not its audience, and are left out; names and group nicknames are never
//! read. A member's id is the corp's external_userid, the same as in
//! `contacts`: a customer who is also in groups is one member of the corp.

use std::collections::HashSet;

use polars::prelude::*;

use crate::wechat::{GroupChats, WeComClient};

use super::ExtractError;

/// `type` of an external member in `member_list` (1 is staff).
const EXTERNAL_MEMBER: i32 = 2;

/// What reading a corp's groups cost and found (logged, and in the report
/// through the table itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Chats read (listed and still there at their `get`).
    pub chats: usize,
    /// Chats listed, then dismissed before their `get`.
    pub vanished: usize,
    pub list_calls: usize,
    pub get_calls: usize,
    /// Members an answer gave without a userid: left out.
    pub members_without_id: usize,
}

/// Reads every chat of the corp: the `group_members` rows and the stats.
pub async fn snapshot(
    client: &WeComClient,
    concurrency: usize,
) -> Result<(DataFrame, GroupStats), ExtractError> {
    let chats = client.group_chats(concurrency).await?;
    let stats = GroupStats {
        chats: chats.chats.len(),
        vanished: chats.vanished,
        list_calls: chats.list_calls,
        get_calls: chats.chats.len() + chats.vanished,
        members_without_id: chats.chats.iter().map(|(_, c)| c.members_without_id).sum(),
    };
    if stats.members_without_id > 0 {
        tracing::warn!(account_id = %client.account_id(), members = stats.members_without_id,
            "groupchat/get listed members without a userid; they are left out");
    }
    Ok((group_members_frame(&chats), stats))
}

/// One row of `group_members`.
struct Row<'a> {
    chat_id: &'a str,
    chat_name: Option<&'a str>,
    chat_owner: Option<&'a str>,
    chat_status: i32,
    chat_created_at: Option<i64>,
    member_version: Option<&'a str>,
    external_userid: &'a str,
    unionid: Option<&'a str>,
    join_time: Option<i64>,
    join_scene: Option<i32>,
    invitor: Option<&'a str>,
}

/// The `group_members` table: chat_id, chat_name, chat_owner, chat_status,
/// chat_created_at, member_version, external_userid, unionid, join_time,
/// join_scene, invitor; sorted by chat and member, each (chat, member) once.
pub fn group_members_frame(chats: &GroupChats) -> DataFrame {
    let mut seen = HashSet::new();
    let mut rows: Vec<Row<'_>> = chats
        .chats
        .iter()
        .flat_map(|(listed, chat)| {
            chat.members
                .iter()
                .filter(|m| m.member_type == EXTERNAL_MEMBER)
                .map(move |m| Row {
                    chat_id: &chat.chat_id,
                    chat_name: chat.name.as_deref(),
                    chat_owner: chat.owner.as_deref(),
                    chat_status: listed.status,
                    chat_created_at: chat.create_time,
                    member_version: chat.member_version.as_deref(),
                    external_userid: &m.userid,
                    unionid: m.unionid.as_deref(),
                    join_time: m.join_time,
                    join_scene: m.join_scene,
                    invitor: m.invitor.as_deref(),
                })
        })
        .filter(|row| seen.insert((row.chat_id, row.external_userid)))
        .collect();
    rows.sort_by(|a, b| (a.chat_id, a.external_userid).cmp(&(b.chat_id, b.external_userid)));
    let n = rows.len();
    fn strings<'a>(
        rows: &[Row<'a>],
        f: impl Fn(&Row<'a>) -> Option<&'a str>,
    ) -> Vec<Option<&'a str>> {
        rows.iter().map(f).collect()
    }
    let micros = |f: fn(&Row<'_>) -> Option<i64>, name: &str| -> Column {
        let values: Int64Chunked = rows
            .iter()
            .map(|r| f(r).map(|s| s.saturating_mul(1_000_000)))
            .collect();
        values
            .with_name(name.into())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column()
    };
    let status: Int32Chunked = rows.iter().map(|r| Some(r.chat_status)).collect();
    let scene: Int32Chunked = rows.iter().map(|r| r.join_scene).collect();
    let columns = vec![
        Column::new("chat_id".into(), strings(&rows, |r| Some(r.chat_id))),
        Column::new("chat_name".into(), strings(&rows, |r| r.chat_name)),
        Column::new("chat_owner".into(), strings(&rows, |r| r.chat_owner)),
        status.with_name("chat_status".into()).into_column(),
        micros(|r| r.chat_created_at, "chat_created_at"),
        Column::new(
            "member_version".into(),
            strings(&rows, |r| r.member_version),
        ),
        Column::new(
            "external_userid".into(),
            strings(&rows, |r| Some(r.external_userid)),
        ),
        Column::new("unionid".into(), strings(&rows, |r| r.unionid)),
        micros(|r| r.join_time, "join_time"),
        scene.with_name("join_scene".into()).into_column(),
        Column::new("invitor".into(), strings(&rows, |r| r.invitor)),
    ];
    DataFrame::new(n, columns).expect("columns of equal length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::{ChatMember, GroupChat, ListedChat};

    fn member(userid: &str, member_type: i32, join_time: i64) -> ChatMember {
        ChatMember {
            userid: userid.to_string(),
            member_type,
            unionid: userid.starts_with("wm").then(|| format!("oU{userid}")),
            join_time: Some(join_time),
            join_scene: Some(1),
            invitor: None,
        }
    }

    fn chat(chat_id: &str, status: i32, members: Vec<ChatMember>) -> (ListedChat, GroupChat) {
        (
            ListedChat {
                chat_id: chat_id.to_string(),
                status,
            },
            GroupChat {
                chat_id: chat_id.to_string(),
                name: Some("group".to_string()),
                owner: Some("sales_0001".to_string()),
                create_time: Some(1),
                member_version: Some("v1".to_string()),
                members,
                members_without_id: 0,
            },
        )
    }

    #[test]
    fn staff_are_left_out_and_a_member_of_two_chats_is_two_rows() {
        let chats = GroupChats {
            chats: vec![
                chat(
                    "wrB",
                    1,
                    vec![member("sales_0001", 1, 5), member("wmA", 2, 30)],
                ),
                chat("wrA", 0, vec![member("wmA", 2, 20), member("woB", 2, 10)]),
            ],
            ..GroupChats::default()
        };
        let frame = group_members_frame(&chats);
        assert_eq!(frame.height(), 3);
        let chat_ids: Vec<_> = frame
            .column("chat_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(chat_ids, ["wrA", "wrA", "wrB"]);
        let status = frame.column("chat_status").unwrap().i32().unwrap();
        assert_eq!(status.get(2), Some(1));
        let members = crate::transform::member_identities(
            "crm",
            "wecom",
            frame.lazy(),
            "external_userid",
            "join_time",
        )
        .collect()
        .unwrap();
        assert_eq!(members.height(), 2);
    }
}
