//! WeCom customer contacts: every (external contact × staff member)
//! relation → the `contacts` table (SPEC §4). For third-party/代开发 apps
//! that receive no UnionID, [`super::idconvert`] links them.

use std::collections::HashSet;

use polars::prelude::*;

use crate::load::layout;
use crate::wechat::{ContactRelation, Contacts, WeComClient};

use super::{ExtractError, RawTable};

/// Snapshots the contacts of one corp.
pub async fn snapshot(
    client: &WeComClient,
    concurrency: usize,
    allow_unlicensed: bool,
) -> Result<RawTable, ExtractError> {
    let contacts = client.contacts(concurrency).await?;
    let left_out = contacts.unlicensed_staff.len() as u64;
    Ok(RawTable {
        unlicensed_staff_left_out: left_out,
        ..raw_table(complete(client.account_id(), contacts, allow_unlicensed)?)
    })
}

/// The corp's contacts, if WeCom listed them all. Contacts of staff members
/// without an interop licence are left out by WeCom itself: the account then
/// fails (a snapshot would silently miss people) unless the job allows it
/// (`allow_unlicensed = true`), which is logged.
pub fn complete(
    account_id: &str,
    contacts: Contacts,
    allow_unlicensed: bool,
) -> Result<Vec<ContactRelation>, ExtractError> {
    let staff = contacts.unlicensed_staff.len();
    if staff > 0 && !allow_unlicensed {
        return Err(ExtractError::Incomplete {
            account_id: account_id.to_string(),
            unlicensed_staff: staff,
        });
    }
    if staff > 0 {
        tracing::warn!(account_id, unlicensed_staff = staff,
            "WeCom left out the contacts of staff members without an interop licence; committing without them (allow_unlicensed = true)");
    }
    Ok(contacts.relations)
}

/// The `contacts` table of `relations`, one row per (contact, staff member),
/// sorted by staff member and contact: a relation listed twice (the list
/// moved while it was paged) is kept once.
pub fn raw_table(mut relations: Vec<ContactRelation>) -> RawTable {
    let mut seen = HashSet::with_capacity(relations.len());
    relations.retain(|r| seen.insert((r.external_userid.clone(), r.follow_userid.clone())));
    // In staff order, then contact: the same contacts give the same file
    // however WeCom was asked (chunk sizes, one staff member at a time).
    relations.sort_by(|a, b| {
        (&a.follow_userid, &a.external_userid).cmp(&(&b.follow_userid, &b.external_userid))
    });
    RawTable {
        table: layout::CONTACTS,
        member_col: "external_userid",
        joined_col: "added_at",
        frame: contacts_frame(&relations),
        unlicensed_staff_left_out: 0,
        id_links: None,
        group_members: None,
    }
}

/// The `contacts` table (SPEC §4): external_userid, unionid?, contact_type,
/// follow_userid, added_at, add_way, state, tag_ids list<string>, remark.
pub fn contacts_frame(relations: &[ContactRelation]) -> DataFrame {
    let n = relations.len();
    let strings = |f: fn(&ContactRelation) -> Option<&str>| -> Vec<Option<&str>> {
        relations.iter().map(f).collect()
    };
    let mut tags = ListStringChunkedBuilder::new("tag_ids".into(), n, n * 2);
    for relation in relations {
        tags.append_values_iter(relation.tag_ids.iter().map(String::as_str));
    }
    let added_at: Int64Chunked = relations
        .iter()
        .map(|r| r.createtime.map(|s| s.saturating_mul(1_000_000)))
        .collect();
    let contact_type: Int32Chunked = relations.iter().map(|r| Some(r.contact_type)).collect();
    let add_way: Int32Chunked = relations.iter().map(|r| r.add_way).collect();
    let columns = vec![
        Column::new(
            "external_userid".into(),
            strings(|r| Some(r.external_userid.as_str())),
        ),
        Column::new("unionid".into(), strings(|r| r.unionid.as_deref())),
        contact_type.with_name("contact_type".into()).into_column(),
        Column::new(
            "follow_userid".into(),
            strings(|r| Some(r.follow_userid.as_str())),
        ),
        added_at
            .with_name("added_at".into())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column(),
        add_way.with_name("add_way".into()).into_column(),
        Column::new("state".into(), strings(|r| r.state.as_deref())),
        tags.finish().into_column(),
        Column::new("remark".into(), strings(|r| r.remark.as_deref())),
    ];
    DataFrame::new(n, columns).expect("columns of equal length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(external_userid: &str, staff: &str, createtime: i64) -> ContactRelation {
        ContactRelation {
            external_userid: external_userid.to_string(),
            contact_type: if external_userid.starts_with("wo") {
                2
            } else {
                1
            },
            unionid: None,
            follow_userid: staff.to_string(),
            createtime: Some(createtime),
            add_way: Some(1),
            state: None,
            tag_ids: vec!["etA".to_string(), "etB".to_string()],
            remark: None,
        }
    }

    #[test]
    fn a_contact_shared_by_two_staff_members_is_two_rows_and_one_member() {
        let raw = raw_table(vec![
            relation("wmA", "alice", 200),
            relation("wmA", "bob", 100),
            relation("woB", "alice", 300),
            relation("wmA", "alice", 200),
        ]);
        assert_eq!(raw.frame.height(), 3);
        let members = crate::transform::member_identities(
            "crm",
            "wecom",
            raw.frame.lazy(),
            raw.member_col,
            raw.joined_col,
        )
        .sort(["member_id"], Default::default())
        .collect()
        .unwrap();
        assert_eq!(members.height(), 2);
        let joined = members.column("joined_at").unwrap().datetime().unwrap();
        // The earliest createtime of the two staff members.
        assert_eq!(joined.phys.get(0), Some(100_000_000));
    }

    #[test]
    fn the_contacts_frame_has_the_spec_columns() {
        let frame = contacts_frame(&[relation("wmA", "alice", 1)]);
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "external_userid",
                "unionid",
                "contact_type",
                "follow_userid",
                "added_at",
                "add_way",
                "state",
                "tag_ids",
                "remark"
            ]
        );
        assert_eq!(
            frame.column("tag_ids").unwrap().dtype(),
            &DataType::List(Box::new(DataType::String))
        );
    }
}
