//! The numbers of SPEC §5 on a population small enough to count by hand, and
//! against a plain HashMap implementation on random populations.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use rand::{Rng, SeedableRng};

use super::*;

fn accounts(ids: &[&str]) -> Vec<AccountRef> {
    ids.iter()
        .map(|id| AccountRef {
            account_id: id.to_string(),
            account_kind: "official_account".to_string(),
        })
        .collect()
}

/// identities from (account, member, unionid) triples: one raw table per
/// account, as the pipeline has it (a member may be listed twice in it).
fn identities_of(rows: &[(&str, &str, Option<&str>)]) -> DataFrame {
    let mut by_account: BTreeMap<&str, Vec<(&str, Option<&str>)>> = BTreeMap::new();
    for (account, member, unionid) in rows {
        by_account
            .entry(account)
            .or_default()
            .push((member, *unionid));
    }
    let parts: Vec<LazyFrame> = by_account
        .into_iter()
        .map(|(account, members)| {
            let raw = df!(
                "openid" => members.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
                "unionid" => members.iter().map(|(_, u)| *u).collect::<Vec<_>>(),
                "subscribe_time" => vec![Some(1_700_000_000_000_000i64); members.len()],
            )
            .unwrap()
            .lazy();
            member_identities(account, "official_account", raw, "openid", "subscribe_time")
        })
        .collect();
    identities(parts).unwrap().collect().unwrap()
}

fn column(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name).unwrap().i64().unwrap().iter().collect()
}

#[test]
fn audience_counts_members_people_and_exclusives_as_specified() {
    let ids = identities_of(&[
        ("a", "m1", Some("u1")),
        ("a", "m2", Some("u2")),
        ("a", "m3", Some("u3")),
        ("b", "n1", Some("u1")),
        ("b", "n2", Some("u2")),
        ("b", "n3", Some("u4")),
        ("b", "n4", None),
        ("c", "c1", None),
        ("c", "c2", None),
        // The same member listed twice counts once.
        ("c", "c2", None),
    ]);
    let derived = derive(&accounts(&["a", "b", "c", "d"]), ids).unwrap();
    let audience = &derived.audience;
    let ids: Vec<&str> = audience
        .column("account_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids, ["*", "a", "b", "c", "d"]);
    assert_eq!(
        column(audience, "members"),
        [Some(9), Some(3), Some(4), Some(2), Some(0)]
    );
    assert_eq!(
        column(audience, "resolved"),
        [Some(6), Some(3), Some(3), Some(0), Some(0)]
    );
    assert_eq!(
        column(audience, "unresolved"),
        [Some(3), Some(0), Some(1), Some(2), Some(0)]
    );
    assert_eq!(
        column(audience, "exclusive_people"),
        [None, Some(1), Some(2), Some(2), Some(0)]
    );
    assert_eq!(
        column(audience, "resolved_people"),
        [Some(4), None, None, None, None]
    );
    assert_eq!(
        column(audience, "unique_people"),
        [Some(7), None, None, None, None]
    );
    assert_eq!(
        column(audience, "duplicate_memberships"),
        [Some(2), None, None, None, None]
    );
    assert_eq!(column(audience, "joined"), [None; 5]);

    assert_eq!(derived.people.height(), 7);
    let overlap = &derived.overlap;
    assert_eq!(overlap.height(), 6, "every pair, zeros included");
    assert_eq!(
        column(overlap, "shared_people"),
        [Some(2), Some(0), Some(0), Some(0), Some(0), Some(0)]
    );
}

#[test]
fn audience_reads_a_unionid_column_of_nulls_read_back_untyped() {
    let typed = identities_of(&[("a", "m1", None), ("b", "m1", None)]);
    let people = derive(&accounts(&["a", "b"]), typed.clone())
        .unwrap()
        .people;
    let mut untyped = typed.clone();
    untyped
        .with_column(Column::full_null(
            "unionid".into(),
            typed.height(),
            &DataType::Null,
        ))
        .unwrap();
    let audience = |identities: &DataFrame| {
        super::audience(&accounts(&["a", "b"]), identities, &people).unwrap()
    };
    assert_eq!(audience(&untyped), audience(&typed));
    assert_eq!(column(&audience(&untyped), "resolved"), [Some(0); 3]);
}

#[test]
fn unresolved_members_become_people_of_their_own() {
    let ids = identities_of(&[("a", "m1", None), ("b", "m1", None)]);
    let people = derive(&accounts(&["a", "b"]), ids).unwrap().people;
    let person_ids: Vec<&str> = people
        .column("person_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(person_ids, ["a/m1", "b/m1"]);
}

/// Per account [members, resolved, unresolved, exclusive_people]; the `*` row
/// [members, resolved, unresolved, resolved_people, unique_people,
/// duplicate_memberships]; shared people per pair.
type Naive = (
    BTreeMap<String, [i64; 4]>,
    [i64; 6],
    BTreeMap<(String, String), i64>,
);

/// The same numbers computed with plain maps, as SPEC §5 words them.
fn naive(rows: &[(String, String, Option<String>)], ids: &[&str]) -> Naive {
    let mut members: BTreeMap<&str, BTreeMap<&str, Option<&str>>> = BTreeMap::new();
    for (a, m, u) in rows {
        members.entry(a).or_default().insert(m, u.as_deref());
    }
    let mut accounts_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, ms) in &members {
        for u in ms.values().flatten() {
            accounts_of.entry(u).or_default().insert(a);
        }
    }
    let mut per = BTreeMap::new();
    let (mut tm, mut tr) = (0, 0);
    for id in ids {
        let ms = members.get(id).cloned().unwrap_or_default();
        let m = ms.len() as i64;
        let r = ms.values().filter(|u| u.is_some()).count() as i64;
        let excl_resolved = ms
            .values()
            .flatten()
            .collect::<BTreeSet<_>>()
            .iter()
            .filter(|u| accounts_of[**u].len() == 1)
            .count() as i64;
        per.insert(id.to_string(), [m, r, m - r, excl_resolved + (m - r)]);
        tm += m;
        tr += r;
    }
    let resolved_people = accounts_of.len() as i64;
    let unique = resolved_people + (tm - tr);
    let mut pairs = BTreeMap::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            let shared = accounts_of
                .values()
                .filter(|s| s.contains(a) && s.contains(b))
                .count() as i64;
            pairs.insert((a.to_string(), b.to_string()), shared);
        }
    }
    (
        per,
        [tm, tr, tm - tr, resolved_people, unique, tm - unique],
        pairs,
    )
}

#[test]
fn polars_agrees_with_a_plain_count_on_random_populations() {
    let ids = ["w", "x", "y", "z"];
    for seed in 0..20u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let rows: Vec<(String, String, Option<String>)> = (0..rng.random_range(0..300))
            .map(|_| {
                let account = ids[rng.random_range(0..ids.len())].to_string();
                let person = rng.random_range(0..80);
                let unionid = (account != "z" && person % 5 != 0).then(|| format!("u{person}"));
                (account.clone(), format!("{account}-{person}"), unionid)
            })
            .collect();
        let borrowed: Vec<(&str, &str, Option<&str>)> = rows
            .iter()
            .map(|(a, m, u)| (a.as_str(), m.as_str(), u.as_deref()))
            .collect();
        let derived = derive(&accounts(&ids), identities_of(&borrowed)).unwrap();
        let (per, star, pairs) = naive(&rows, &ids);
        let a = &derived.audience;
        let got = |name: &str, row: usize| column(a, name)[row].unwrap();
        for (row, id) in ids.iter().enumerate() {
            let expected = per[*id];
            assert_eq!(
                [
                    got("members", row + 1),
                    got("resolved", row + 1),
                    got("unresolved", row + 1),
                    got("exclusive_people", row + 1)
                ],
                expected,
                "seed {seed} account {id}"
            );
        }
        assert_eq!(
            [
                got("members", 0),
                got("resolved", 0),
                got("unresolved", 0),
                got("resolved_people", 0),
                got("unique_people", 0),
                got("duplicate_memberships", 0)
            ],
            star,
            "seed {seed}"
        );
        let o = &derived.overlap;
        for row in 0..o.height() {
            let key = (
                o.column("account_a")
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(row)
                    .unwrap()
                    .to_string(),
                o.column("account_b")
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(row)
                    .unwrap()
                    .to_string(),
            );
            assert_eq!(
                column(o, "shared_people")[row],
                Some(pairs[&key]),
                "seed {seed} {key:?}"
            );
        }
    }
}
