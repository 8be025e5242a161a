//! `changes`, `joined`/`left` and the UpSet intersections on populations
//! small enough to count by hand.

use polars::prelude::*;

use super::*;

fn accounts(ids: &[&str]) -> Vec<AccountRef> {
    ids.iter()
        .map(|id| AccountRef {
            account_id: id.to_string(),
            account_kind: "official_account".to_string(),
        })
        .collect()
}

/// identities from (account, member, unionid) triples.
fn identities_of(rows: &[(&str, &str, Option<&str>)]) -> DataFrame {
    let parts: Vec<LazyFrame> = rows
        .iter()
        .map(|(account, member, unionid)| {
            let raw = df!(
                "openid" => [*member],
                "unionid" => [*unionid],
                "subscribe_time" => [Some(1_700_000_000_000_000i64)],
            )
            .unwrap()
            .lazy();
            member_identities(account, "official_account", raw, "openid", "subscribe_time")
        })
        .collect();
    identities(parts).unwrap().collect().unwrap()
}

fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name).unwrap().i64().unwrap().iter().collect()
}

fn monday() -> DataFrame {
    identities_of(&[
        ("a", "m1", Some("u1")),
        ("a", "m2", Some("u2")),
        ("b", "n1", Some("u1")),
        ("c", "c1", None),
    ])
}

fn tuesday() -> DataFrame {
    identities_of(&[
        // u1 left a but still follows b: a member who left, not a person.
        ("a", "m2", Some("u2")),
        ("a", "m3", Some("u3")),
        ("b", "n1", Some("u1")),
        ("b", "n2", Some("u2")),
        // c1 left c; c2 joined: unresolved, each a person of their own.
        ("c", "c2", None),
    ])
}

#[test]
fn changes_list_joiners_and_leavers_per_account() {
    let derived = derive_since(&accounts(&["a", "b", "c"]), tuesday(), Some(monday())).unwrap();
    let c = &derived.changes;
    let rows: Vec<_> = (0..c.height())
        .map(|i| {
            (
                strings(c, "account_id")[i].clone().unwrap(),
                strings(c, "member_id")[i].clone().unwrap(),
                strings(c, "unionid")[i].clone(),
                strings(c, "change")[i].clone().unwrap(),
            )
        })
        .collect();
    let row = |a: &str, m: &str, u: Option<&str>, ch: &str| {
        (
            a.to_string(),
            m.to_string(),
            u.map(str::to_string),
            ch.to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            row("a", "m1", Some("u1"), "left"),
            row("a", "m3", Some("u3"), "joined"),
            row("b", "n2", Some("u2"), "joined"),
            row("c", "c1", None, "left"),
            row("c", "c2", None, "joined"),
        ]
    );
}

#[test]
fn audience_counts_members_per_account_and_people_on_the_star_row() {
    let derived =
        derive_since(&accounts(&["a", "b", "c", "d"]), tuesday(), Some(monday())).unwrap();
    let a = &derived.audience;
    assert_eq!(
        strings(a, "account_id"),
        ["*", "a", "b", "c", "d"].map(|s| Some(s.to_string()))
    );
    // People: Monday u1, u2, c/c1; Tuesday u1, u2, u3, c/c2.
    assert_eq!(
        ints(a, "joined"),
        [Some(2), Some(1), Some(1), Some(1), Some(0)]
    );
    assert_eq!(
        ints(a, "left"),
        [Some(1), Some(1), Some(0), Some(1), Some(0)]
    );
    // The other columns are untouched by the change counts.
    let first = derive(&accounts(&["a", "b", "c", "d"]), tuesday()).unwrap();
    assert!(first
        .audience
        .drop_many(["joined", "left"])
        .equals_missing(&a.drop_many(["joined", "left"])));
}

#[test]
fn a_first_snapshot_has_null_counts_and_an_empty_changes_table() {
    let derived = derive(&accounts(&["a", "b"]), monday()).unwrap();
    assert_eq!(ints(&derived.audience, "joined"), [None, None, None]);
    assert_eq!(ints(&derived.audience, "left"), [None, None, None]);
    assert_eq!(derived.changes.height(), 0);
    assert_eq!(
        derived.changes.schema(),
        derive_since(&accounts(&["a", "b"]), tuesday(), Some(monday()))
            .unwrap()
            .changes
            .schema(),
        "the empty table has the schema of a full one"
    );
}

#[test]
fn the_same_snapshot_twice_has_zero_changes_not_null() {
    let derived = derive_since(&accounts(&["a", "b", "c"]), monday(), Some(monday())).unwrap();
    assert_eq!(derived.changes.height(), 0);
    assert_eq!(ints(&derived.audience, "joined"), [Some(0); 4]);
    assert_eq!(ints(&derived.audience, "left"), [Some(0); 4]);
}

#[test]
fn upset_puts_every_person_in_exactly_one_intersection() {
    let derived = derive(&accounts(&["a", "b", "c"]), tuesday()).unwrap();
    let upset = upset(derived.people.clone().lazy()).collect().unwrap();
    assert_eq!(
        strings(&upset, "accounts"),
        ["a", "a,b", "b", "c"].map(|s| Some(s.to_string()))
    );
    assert_eq!(
        ints(&upset, "n_accounts"),
        [Some(1), Some(2), Some(1), Some(1)]
    );
    // u3 | u2 | u1 | c/c2
    assert_eq!(ints(&upset, "people"), [Some(1), Some(1), Some(1), Some(1)]);
}

#[test]
fn a_previous_snapshot_read_back_from_parquet_diffs_like_one_built_in_memory() {
    let mut previous = identities_of(&[("c", "c1", None), ("c", "c3", None)]);
    let bytes = crate::load::parquet::encode(&mut previous).unwrap();
    let read_back = crate::load::parquet::decode(bytes.into()).unwrap();
    let derived = derive_since(&accounts(&["a", "b", "c"]), tuesday(), Some(read_back)).unwrap();
    let expected = derive_since(&accounts(&["a", "b", "c"]), tuesday(), Some(previous)).unwrap();
    assert!(derived.changes.equals_missing(&expected.changes));
    assert!(derived.audience.equals_missing(&expected.audience));
    assert_eq!(
        ints(&derived.audience, "left"),
        [Some(2), Some(0), Some(0), Some(2)]
    );
}
