//! Linking the contacts of a third-party / 代开发 WeCom app to UnionIDs
//! (`unionid_mode = "idconvert"`), with a memory of what WeChat already
//! answered: the `id_links` table.
//!
//! WeChat designed idconvert to be asked once per person (docs 97108,
//! 97357; its service-provider variant, 95878, bans providers who convert in
//! bulk): `unionid_to_external_userid` answers with the corp's
//! external_userid when the person is a customer, and a `pending_id` (valid
//! 90 days) either way; when the person becomes a customer later,
//! `batch/external_userid_to_pending_id` (100 external_userids a call) gives
//! that pending_id back, closing unionid → pending_id → external_userid.
//!
//! So each run starts from the corp's `id_links` of the previous complete
//! snapshot and:
//! 1. links every contact whose external_userid it already knows (no call);
//! 2. asks `external_userid_to_pending_id` for the contacts it does not know
//!    (new since the memory was written: every contact a run saw is
//!    remembered), 100 a call, and links those whose pending_id it holds —
//!    without converting again;
//! 3. converts the UnionIDs it has never converted, then those whose
//!    pending_id is near its expiry ([`RECHECK_DAYS`]), at most `budget` a
//!    run (new ones first); the rest wait for the next run (counted);
//! 4. writes the memory back, rows older than a pending_id's life without a
//!    contact dropped.
//!
//! The day after, an unchanged population costs no call at all. A contact
//! is linked only to a UnionID the same run learned (the pairs), as before:
//! the memory saves calls, it does not add people.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use futures::StreamExt;
use polars::prelude::*;

use crate::wechat::{ApiError, ContactRelation, Conversion, WeComClient};

/// Errcodes with which `idconvert` refuses one (unionid, openid) pair while
/// the API as such works: an OpenID of an account of another subject, or one
/// the corp may not convert. The pair is remembered as refused (re-checked
/// like a pending one) and counted; every other error stops the account.
/// 845003 ("unionid and corp subject not match", seen on real answers): the
/// UnionID's person is of another subject than the corp.
const PAIR_REFUSED_ERRCODES: [i64; 4] = [40003, 40096, 43104, 845003];

/// How long a `pending_id` lives (doc 97357: 有效期90天).
pub const PENDING_DAYS: i64 = 90;
/// A UnionID converted this many days ago without becoming a contact is
/// converted again (before its pending_id expires).
pub const RECHECK_DAYS: i64 = 80;

/// One row of `id_links`: what WeChat said of one person, for one corp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdLink {
    /// None for a contact looked up by `external_userid_to_pending_id`
    /// whose UnionID was never converted.
    pub unionid: Option<String>,
    pub external_userid: Option<String>,
    pub pending_id: Option<String>,
    /// When the UnionID was last converted (None for a looked-up contact).
    pub converted_on: Option<NaiveDate>,
    /// When the row was first written.
    pub learned_on: Option<NaiveDate>,
}

/// A corp's `id_links`, indexed three ways.
#[derive(Debug, Default)]
pub struct IdMemory {
    rows: Vec<Option<IdLink>>,
    by_unionid: HashMap<String, usize>,
    by_external: HashMap<String, usize>,
    by_pending: HashMap<String, usize>,
}

impl IdMemory {
    /// The memory in an `id_links` frame (the previous snapshot's).
    pub fn from_frame(frame: &DataFrame) -> PolarsResult<Self> {
        let strings = |name: &str| -> PolarsResult<Vec<Option<String>>> {
            Ok(frame
                .column(name)?
                .str()?
                .iter()
                .map(|v| v.map(str::to_owned))
                .collect())
        };
        let dates = |name: &str| -> PolarsResult<Vec<Option<NaiveDate>>> {
            Ok(frame.column(name)?.date()?.as_date_iter().collect())
        };
        let (unionids, externals, pendings) = (
            strings("unionid")?,
            strings("external_userid")?,
            strings("pending_id")?,
        );
        let (converted, learned) = (dates("converted_on")?, dates("learned_on")?);
        let mut memory = IdMemory::default();
        for i in 0..frame.height() {
            memory.push(IdLink {
                unionid: unionids[i].clone(),
                external_userid: externals[i].clone(),
                pending_id: pendings[i].clone(),
                converted_on: converted[i],
                learned_on: learned[i],
            });
        }
        Ok(memory)
    }

    /// The `id_links` frame: unionid, external_userid, pending_id,
    /// converted_on, learned_on; by UnionID (rows without one last), then
    /// external_userid.
    pub fn to_frame(&self) -> DataFrame {
        let mut rows: Vec<&IdLink> = self.rows.iter().flatten().collect();
        rows.sort_by(|a, b| {
            (a.unionid.is_none(), &a.unionid, &a.external_userid).cmp(&(
                b.unionid.is_none(),
                &b.unionid,
                &b.external_userid,
            ))
        });
        let strings = |f: fn(&IdLink) -> Option<&str>| -> Vec<Option<&str>> {
            rows.iter().map(|r| f(r)).collect()
        };
        let dates = |name: &str, f: fn(&IdLink) -> Option<NaiveDate>| -> Column {
            DateChunked::from_naive_date_options(name.into(), rows.iter().map(|r| f(r)))
                .into_column()
        };
        let columns = vec![
            Column::new("unionid".into(), strings(|r| r.unionid.as_deref())),
            Column::new(
                "external_userid".into(),
                strings(|r| r.external_userid.as_deref()),
            ),
            Column::new("pending_id".into(), strings(|r| r.pending_id.as_deref())),
            dates("converted_on", |r| r.converted_on),
            dates("learned_on", |r| r.learned_on),
        ];
        DataFrame::new(rows.len(), columns).expect("columns of equal length")
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, link: IdLink) {
        let index = self.rows.len();
        if let Some(unionid) = &link.unionid {
            if let Some(&old) = self.by_unionid.get(unionid) {
                // One row per UnionID: a duplicate replaces the earlier one.
                self.remove(old);
            }
            self.by_unionid.insert(unionid.clone(), index);
        }
        if let Some(external_userid) = &link.external_userid {
            if let Some(&old) = self.by_external.get(external_userid) {
                if self.rows[old].as_ref().is_some_and(|r| r.unionid.is_none()) {
                    // A looked-up contact whose UnionID is now known.
                    self.remove(old);
                }
            }
            self.by_external.insert(external_userid.clone(), index);
        }
        if let Some(pending_id) = &link.pending_id {
            self.by_pending.insert(pending_id.clone(), index);
        }
        self.rows.push(Some(link));
    }

    fn remove(&mut self, index: usize) {
        let Some(link) = self.rows[index].take() else {
            return;
        };
        for (key, map) in [
            (&link.unionid, &mut self.by_unionid),
            (&link.external_userid, &mut self.by_external),
            (&link.pending_id, &mut self.by_pending),
        ] {
            if let Some(key) = key {
                if map.get(key) == Some(&index) {
                    map.remove(key);
                }
            }
        }
    }

    /// The UnionID of the contact `external_userid`, if known.
    pub fn unionid_of(&self, external_userid: &str) -> Option<&str> {
        let row = self.rows[*self.by_external.get(external_userid)?].as_ref()?;
        row.unionid.as_deref()
    }

    /// Whether `external_userid` is in the memory (linked or looked up).
    fn knows_contact(&self, external_userid: &str) -> bool {
        self.by_external.contains_key(external_userid)
    }

    /// Whether some converted UnionID still waits for its person to become
    /// a contact: only then can a lookup of new contacts find anyone.
    fn has_pending(&self) -> bool {
        self.rows
            .iter()
            .flatten()
            .any(|r| r.unionid.is_some() && r.external_userid.is_none() && r.pending_id.is_some())
    }

    /// What to do with `unionid` on `today`.
    fn due(&self, unionid: &str, today: NaiveDate) -> Due {
        let Some(row) = self
            .by_unionid
            .get(unionid)
            .and_then(|&i| self.rows[i].as_ref())
        else {
            return Due::New;
        };
        match (&row.external_userid, row.converted_on) {
            (Some(_), _) => Due::Known,
            (None, Some(on)) if (today - on).num_days() < RECHECK_DAYS => Due::Known,
            (None, on) => Due::Recheck(on),
        }
    }

    /// Records `external_userid_to_pending_id`'s answer for a contact
    /// looked up on `today`.
    fn record_lookup(
        &mut self,
        external_userid: &str,
        pending_id: Option<String>,
        today: NaiveDate,
    ) {
        if let Some(&i) = pending_id.as_ref().and_then(|p| self.by_pending.get(p)) {
            if let Some(row) = self.rows[i].clone() {
                if row.unionid.is_some() && row.external_userid.is_none() {
                    // The person converted earlier is this contact now.
                    self.remove(i);
                    self.push(IdLink {
                        external_userid: Some(external_userid.to_string()),
                        ..row
                    });
                    return;
                }
            }
        }
        self.push(IdLink {
            unionid: None,
            external_userid: Some(external_userid.to_string()),
            pending_id,
            converted_on: None,
            learned_on: Some(today),
        });
    }

    /// Records a conversion of `unionid` on `today` (`None`: refused).
    fn record_conversion(&mut self, unionid: &str, answer: Option<Conversion>, today: NaiveDate) {
        let learned_on = self
            .by_unionid
            .get(unionid)
            .and_then(|&i| self.rows[i].as_ref())
            .and_then(|r| r.learned_on)
            .unwrap_or(today);
        let answer = answer.unwrap_or_default();
        self.push(IdLink {
            unionid: Some(unionid.to_string()),
            external_userid: answer.external_userid,
            pending_id: answer.pending_id,
            converted_on: Some(today),
            learned_on: Some(learned_on),
        });
    }

    /// Drops what can no longer serve on `today`: UnionIDs converted more
    /// than a pending_id's life ago that never became a contact (converted
    /// again if learned again), and looked-up contacts no longer among
    /// `contacts`.
    fn prune(&mut self, contacts: &HashSet<&str>, today: NaiveDate) {
        for i in 0..self.rows.len() {
            let Some(row) = &self.rows[i] else { continue };
            let expired = row.unionid.is_some()
                && row.external_userid.is_none()
                && row
                    .converted_on
                    .is_none_or(|on| (today - on).num_days() >= PENDING_DAYS);
            let gone = row.unionid.is_none()
                && row
                    .external_userid
                    .as_deref()
                    .is_none_or(|e| !contacts.contains(e));
            if expired || gone {
                self.remove(i);
            }
        }
    }
}

/// Whether a UnionID is converted this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Never converted: first in line.
    New,
    /// Converted long enough ago that its pending_id nears expiry.
    Recheck(Option<NaiveDate>),
    /// Nothing to do.
    Known,
}

/// What linking did, for the log, the metrics and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// WeChat-user contacts (type 1) without a UnionID before linking.
    pub unlinked_contacts: usize,
    /// Of those, how many got their UnionID.
    pub linked: usize,
    /// ...of which through the memory, with no conversion this run.
    pub linked_from_memory: usize,
    /// `unionid_to_external_userid` calls made.
    pub conversions: usize,
    /// `external_userid_to_pending_id` calls made.
    pub lookups: usize,
    /// Pairs idconvert refused (see [`PAIR_REFUSED_ERRCODES`]).
    pub refused_pairs: usize,
    /// UnionIDs due for a conversion that the budget left for later runs.
    pub unchecked: usize,
}

/// What one corp's linking needs besides its contacts.
pub struct LinkInput<'a> {
    /// UnionID → one OpenID of the same Official Account or Mini Program,
    /// as the run learned them.
    pub pairs: &'a BTreeMap<String, String>,
    /// The corp's `id_links` of the previous complete snapshot.
    pub memory: IdMemory,
    pub today: NaiveDate,
    /// Most conversions this run.
    pub budget: u64,
    pub concurrency: usize,
}

/// Gives the WeChat-user contacts without UnionID the UnionID of the person
/// behind them (see the module doc), and returns the memory to keep.
pub async fn link_unionids(
    client: &WeComClient,
    relations: &mut [ContactRelation],
    input: LinkInput<'_>,
) -> Result<(IdMemory, LinkStats), ApiError> {
    let LinkInput {
        pairs,
        mut memory,
        today,
        budget,
        concurrency,
    } = input;
    let concurrency = concurrency.max(1);
    let unlinked: HashSet<String> = relations
        .iter()
        .filter(|r| r.contact_type == 1 && r.unionid.is_none())
        .map(|r| r.external_userid.clone())
        .collect();
    let mut stats = LinkStats {
        unlinked_contacts: unlinked.len(),
        ..LinkStats::default()
    };
    // A contact is linked to a UnionID the memory holds for it and this run
    // learned.
    let linkable = |memory: &IdMemory, external_userid: &str| -> Option<String> {
        memory
            .unionid_of(external_userid)
            .filter(|u| pairs.contains_key(*u))
            .map(str::to_owned)
    };
    stats.linked_from_memory = unlinked
        .iter()
        .filter(|e| linkable(&memory, e).is_some())
        .count();

    // 2. New contacts, looked up by pending_id (only worth a call when a
    // converted UnionID still waits for its contact).
    if memory.has_pending() {
        let mut new: Vec<String> = unlinked
            .iter()
            .filter(|e| !memory.knows_contact(e))
            .cloned()
            .collect();
        new.sort();
        let chunks: Vec<Vec<String>> = new
            .chunks(crate::wechat::wecom::PENDING_IDS_MAX)
            .map(<[String]>::to_vec)
            .collect();
        let mut answers = futures::stream::iter(chunks)
            .map(|chunk| async move {
                let answer = client.external_userid_to_pending_id(&chunk).await;
                (chunk, answer)
            })
            .buffer_unordered(concurrency)
            .boxed();
        while let Some((chunk, answer)) = answers.next().await {
            stats.lookups += 1;
            let found: HashMap<String, String> = answer?.into_iter().collect();
            for external_userid in chunk {
                let pending_id = found.get(&external_userid).cloned();
                memory.record_lookup(&external_userid, pending_id, today);
            }
        }
    }

    // 3. Conversions: new UnionIDs first, then the oldest near expiry.
    let mut due: Vec<(&String, &String, Due)> = pairs
        .iter()
        .filter_map(|(unionid, openid)| match memory.due(unionid, today) {
            Due::Known => None,
            due => Some((unionid, openid, due)),
        })
        .collect();
    // Stable: `pairs` is in UnionID order, and stays so within each rank.
    due.sort_by_key(|(_, _, due)| match due {
        Due::New => (0, None),
        Due::Recheck(on) => (1, *on),
        Due::Known => (2, None),
    });
    let take = due.len().min(usize::try_from(budget).unwrap_or(usize::MAX));
    stats.unchecked = due.len() - take;
    let mut answers = futures::stream::iter(due.into_iter().take(take))
        .map(|(unionid, openid, _)| async move {
            let answer = client.unionid_to_external_userid(unionid, openid).await;
            (unionid, answer)
        })
        .buffer_unordered(concurrency)
        // Boxed: `Send` is proven here, where the lifetimes are concrete
        // (rustc cannot see it through the closure from outside).
        .boxed();
    while let Some((unionid, answer)) = answers.next().await {
        stats.conversions += 1;
        match answer {
            Ok(conversion) => memory.record_conversion(unionid, Some(conversion), today),
            Err(err)
                if err
                    .errcode()
                    .is_some_and(|code| PAIR_REFUSED_ERRCODES.contains(&code))
                    && !err.is_fatal() =>
            {
                stats.refused_pairs += 1;
                memory.record_conversion(unionid, None, today);
            }
            Err(err) => return Err(err),
        }
    }
    drop(answers);
    // Contacts still unknown are remembered as seen: a conversion made from
    // now on answers with their external_userid directly, so only contacts
    // new since this run can need a lookup.
    for external_userid in &unlinked {
        if !memory.knows_contact(external_userid) {
            memory.record_lookup(external_userid, None, today);
        }
    }

    // 1 and the rest: link every contact the memory now knows, to a UnionID
    // of this run.
    for relation in relations.iter_mut() {
        if relation.contact_type == 1 && relation.unionid.is_none() {
            relation.unionid = linkable(&memory, &relation.external_userid);
        }
    }
    stats.linked = unlinked
        .iter()
        .filter(|e| linkable(&memory, e).is_some())
        .count();
    let contacts: HashSet<&str> = relations
        .iter()
        .map(|r| r.external_userid.as_str())
        .collect();
    memory.prune(&contacts, today);
    Ok((memory, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(n))
    }

    fn conversion(external_userid: Option<&str>, pending_id: &str) -> Option<Conversion> {
        Some(Conversion {
            external_userid: external_userid.map(str::to_owned),
            pending_id: Some(pending_id.to_string()),
        })
    }

    #[test]
    fn a_frame_round_trips() {
        let mut memory = IdMemory::default();
        memory.record_conversion("u1", conversion(Some("wm1"), "p1"), day(0));
        memory.record_conversion("u2", conversion(None, "p2"), day(1));
        memory.record_conversion("u3", None, day(2));
        memory.record_lookup("wm9", None, day(3));
        let frame = memory.to_frame();
        assert_eq!(frame.height(), 4);
        let again = IdMemory::from_frame(&frame).unwrap();
        assert_eq!(again.to_frame(), frame);
        assert_eq!(again.unionid_of("wm1"), Some("u1"));
        assert_eq!(again.unionid_of("wm9"), None);
        assert!(again.knows_contact("wm9"));
        assert_eq!(again.len(), 4);
    }

    #[test]
    fn a_converted_unionid_is_due_again_only_near_its_pending_expiry() {
        let mut memory = IdMemory::default();
        memory.record_conversion("u1", conversion(Some("wm1"), "p1"), day(0));
        memory.record_conversion("u2", conversion(None, "p2"), day(0));
        assert_eq!(memory.due("u0", day(1)), Due::New);
        assert_eq!(memory.due("u1", day(400)), Due::Known);
        assert_eq!(memory.due("u2", day(79)), Due::Known);
        assert_eq!(memory.due("u2", day(80)), Due::Recheck(Some(day(0))));
    }

    #[test]
    fn a_lookup_links_the_person_converted_before_and_replaces_nothing_else() {
        let mut memory = IdMemory::default();
        memory.record_conversion("u2", conversion(None, "p2"), day(0));
        memory.record_lookup("wm2", Some("p2".to_string()), day(5));
        memory.record_lookup("wm3", Some("p-unknown".to_string()), day(5));
        assert_eq!(memory.unionid_of("wm2"), Some("u2"));
        assert_eq!(memory.unionid_of("wm3"), None);
        assert_eq!(memory.len(), 2);
        let frame = memory.to_frame();
        let learned = frame.column("learned_on").unwrap().date().unwrap();
        assert_eq!(learned.as_date_iter().next().unwrap(), Some(day(0)));
        // A later conversion of the looked-up contact's person replaces it.
        memory.record_conversion("u3", conversion(Some("wm3"), "p3"), day(6));
        assert_eq!(memory.len(), 2);
        assert_eq!(memory.unionid_of("wm3"), Some("u3"));
    }

    #[test]
    fn pruning_drops_expired_pending_rows_and_gone_lookups() {
        let mut memory = IdMemory::default();
        memory.record_conversion("u1", conversion(Some("wm1"), "p1"), day(0));
        memory.record_conversion("u2", conversion(None, "p2"), day(0));
        memory.record_conversion("u3", conversion(None, "p3"), day(50));
        memory.record_lookup("wm8", None, day(0));
        memory.record_lookup("wm9", None, day(0));
        memory.prune(&HashSet::from(["wm1", "wm9"]), day(95));
        let kept: Vec<Option<String>> = memory
            .to_frame()
            .column("unionid")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|u| u.map(str::to_owned))
            .collect();
        assert_eq!(kept, [Some("u1".into()), Some("u3".into()), None]);
        assert!(memory.knows_contact("wm9") && !memory.knows_contact("wm8"));
    }
}
