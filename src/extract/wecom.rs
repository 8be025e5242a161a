//! WeCom customer contacts: every (external contact × staff member)
//! relation → the `contacts` table (SPEC §4), and, for third-party/代开发
//! apps that receive no UnionID (`unionid_mode = "idconvert"`), the linking
//! of contacts to UnionIDs learned from the run's Official Accounts and
//! Mini Programs.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use polars::prelude::*;

use crate::load::layout;
use crate::wechat::{ApiError, ContactRelation, Contacts, WeComClient};

use super::{ExtractError, RawTable};

/// Errcodes with which `idconvert` refuses one (unionid, openid) pair while
/// the API as such works: an OpenID of an account of another subject, or one
/// the corp may not convert. The pair is skipped (its contact, if any, stays
/// unresolved) and counted; every other error stops the account. 845003
/// ("unionid and corp subject not match", seen on real answers): the
/// UnionID's person is of another subject than the corp.
const PAIR_REFUSED_ERRCODES: [i64; 4] = [40003, 40096, 43104, 845003];

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

/// What linking did, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// WeChat-user contacts (type 1) without a UnionID before linking.
    pub unlinked_contacts: usize,
    /// Of those, how many got their UnionID.
    pub linked: usize,
    /// `idconvert` calls made.
    pub calls: usize,
    /// Pairs idconvert refused (see [`PAIR_REFUSED_ERRCODES`]).
    pub refused_pairs: usize,
}

/// Gives the WeChat-user contacts without UnionID the UnionID of the person
/// idconvert maps them to. `pairs` maps each UnionID the run learned to one
/// OpenID of the same Official Account or Mini Program.
///
/// One call per UnionID, `concurrency` in flight, in UnionID order; it stops
/// as soon as every such contact is linked, so a corp whose customers are
/// all found early costs fewer calls than the run learned UnionIDs
/// (idconvert is limited to 100,000 calls an hour and 480,000 a day per
/// corp, wechat-api.md §4.6). A pair idconvert refuses is skipped; any other
/// failure (quota, permission) stops the account.
pub async fn link_unionids(
    client: &WeComClient,
    relations: &mut [ContactRelation],
    pairs: &BTreeMap<String, String>,
    concurrency: usize,
) -> Result<LinkStats, ApiError> {
    let mut unlinked: HashSet<String> = relations
        .iter()
        .filter(|r| r.contact_type == 1 && r.unionid.is_none())
        .map(|r| r.external_userid.clone())
        .collect();
    let mut stats = LinkStats {
        unlinked_contacts: unlinked.len(),
        ..LinkStats::default()
    };
    let mut linked: HashMap<String, String> = HashMap::new();
    if !unlinked.is_empty() {
        let mut answers = futures::stream::iter(pairs.iter())
            .map(|(unionid, openid)| async move {
                let answer = client.unionid_to_external_userid(unionid, openid).await;
                (unionid, answer)
            })
            .buffer_unordered(concurrency.max(1))
            // Boxed: `Send` is proven here, where the lifetimes are concrete
            // (rustc cannot see it through the closure from outside).
            .boxed();
        // Dropping the stream (all linked, or an error) cancels the calls in flight.
        while let Some((unionid, answer)) = answers.next().await {
            stats.calls += 1;
            match answer {
                Ok(Some(external_userid)) => {
                    if unlinked.remove(&external_userid) {
                        linked.insert(external_userid, unionid.clone());
                        if unlinked.is_empty() {
                            break;
                        }
                    }
                }
                Ok(None) => {}
                Err(err)
                    if err
                        .errcode()
                        .is_some_and(|code| PAIR_REFUSED_ERRCODES.contains(&code))
                        && !err.is_fatal() =>
                {
                    stats.refused_pairs += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
    for relation in relations.iter_mut() {
        if let Some(unionid) = linked.get(&relation.external_userid) {
            relation.unionid = Some(unionid.clone());
        }
    }
    stats.linked = linked.len();
    Ok(stats)
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
