//! `people` carried forward: today's from the previous snapshot's and the
//! day's `changes`, when those are all that differ between the two days'
//! identities.
//!
//! When every account's `changes` rows came from its crawl (an Official
//! Account whose followers were carried over from the previous snapshot),
//! today's identities are the previous snapshot's without the rows that
//! left and with the rows that joined, row for row. A person none of whose
//! memberships joined or left then has today the `people` row they had, and
//! stayed in the audience; only the people `changes` names are derived
//! again, from their identity rows of today.

use polars::prelude::*;
use polars_arrow::array::{Array, ListArray, MutableBinaryViewArray};
use polars_arrow::bitmap::MutableBitmap;
use polars_arrow::offset::OffsetsBuffer;

#[cfg(doc)]
use super::identities::person_id;
use super::identities::{account_lists, people, text};

/// Today's `people` and the people who joined and left the audience as a
/// whole, from `previous_people` ([`people`] of the previous snapshot's
/// identities, sorted by person as it gives them), `identities` (today's)
/// and `changes` (every row of the day, of every account, in one or more
/// frames).
///
/// Exact only when `identities` are the previous snapshot's identities
/// without the `changes` rows that left and with those that joined; the
/// caller makes sure of it. Equal to [`people`] over `identities` and
/// [`super::people_changes`], rows in the same order (by person).
pub fn carried_people(
    previous_people: &DataFrame,
    identities: &DataFrame,
    changes: &[&DataFrame],
) -> PolarsResult<(DataFrame, (i64, i64))> {
    // The people whose memberships changed: a leaver's UnionID is the one of
    // the previous snapshot, so their id is the one they had. Read in place,
    // row by row: there are few of them, and a person id is built only for a
    // member without a UnionID (as [`person_id`] makes it).
    let mut affected: PlHashSet<String> = PlHashSet::new();
    for frame in changes {
        let [unionid, account, member] = id_columns(frame)?;
        for ((unionid, account), member) in unionid.iter().zip(account.iter()).zip(member.iter()) {
            if let Some(id) = person_of(unionid, account, member, &mut String::new()) {
                affected.insert(id.to_string());
            }
        }
    }
    // Their rows of today, every account's, derived again.
    let [unionid, account, member] = id_columns(identities)?;
    let mut key = String::new();
    let theirs: BooleanChunked = (unionid.iter().zip(account.iter()).zip(member.iter()))
        .map(|((unionid, account), member)| {
            let id = person_of(unionid, account, member, &mut key);
            id.is_some_and(|id| affected.contains(id))
        })
        .collect();
    let derived = people(identities.filter(&theirs)?.lazy()).collect()?;
    // Both are sorted by person: merged, the previous rows of the people
    // derived again give way to theirs. Everyone else is in both days or in
    // neither.
    let before = strings(previous_people)?;
    let after = strings(&derived)?;
    let mut order: Vec<IdxSize> = Vec::with_capacity(before.len() + after.len());
    let (mut joined, mut left) = (0, 0);
    let (mut i, mut j) = (0, 0);
    while i < before.len() || j < after.len() {
        let next = match (before.get(i), after.get(j)) {
            (Some(b), Some(a)) => b.cmp(a),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match next {
            std::cmp::Ordering::Less => {
                match before[i].is_some_and(|id| affected.contains(id)) {
                    true => left += 1,
                    false => order.push(i as IdxSize),
                }
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                joined += 1;
                order.push((before.len() + j) as IdxSize);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                order.push((before.len() + j) as IdxSize);
                (i, j) = (i + 1, j + 1);
            }
        }
    }
    // Gathered by polars but for the list of accounts, which its gather
    // copies element by element (7 to 10 ms of ~10 ms over 96k people).
    let accounts = gather_lists(
        previous_people.column("accounts")?.list()?,
        derived.column("accounts")?.list()?,
        &order,
    )?;
    let both = previous_people
        .drop("accounts")?
        .vstack(&derived.drop("accounts")?)?;
    let mut people = both.take(&IdxCa::from_vec("order".into(), order))?;
    let at = previous_people.get_column_index("accounts").unwrap_or(0);
    people.insert_column(at, accounts.into_column())?;
    Ok((people, (joined, left)))
}

/// The rows `order` of `first` followed by `second`, lists of strings: the
/// offsets and the strings' views written once each.
fn gather_lists(
    first: &ListChunked,
    second: &ListChunked,
    order: &[IdxSize],
) -> PolarsResult<ListChunked> {
    // Every chunk of both, and the row each starts at.
    let mut chunks = account_lists(first)?;
    chunks.extend(account_lists(second)?);
    let mut starts: Vec<usize> = Vec::with_capacity(chunks.len());
    let mut rows = 0;
    for (array, _) in &chunks {
        starts.push(rows);
        rows += array.len();
    }
    let Some(&(like, _)) = chunks.first() else {
        return Ok(first.clear());
    };
    let mut offsets: Vec<i64> = Vec::with_capacity(order.len() + 1);
    offsets.push(0);
    let mut strings = MutableBinaryViewArray::<str>::with_capacity(order.len());
    let mut validity = MutableBitmap::with_capacity(order.len());
    for &row in order {
        let row = row as usize;
        let chunk = starts.partition_point(|&start| start <= row) - 1;
        let ((array, values), row) = (chunks[chunk], row - starts[chunk]);
        let (start, end) = array.offsets().start_end(row);
        for at in start..end {
            strings.push(values.get(at));
        }
        offsets.push(strings.len() as i64);
        validity.push(array.is_valid(row));
    }
    let array = ListArray::<i64>::new(
        like.dtype().clone(),
        OffsetsBuffer::try_from(offsets)?,
        strings.freeze().boxed(),
        validity.into(),
    );
    Ok(ListChunked::with_chunk(first.name().clone(), array))
}

/// The `unionid`, `account_id` and `member_id` columns of `frame`, as text.
fn id_columns(frame: &DataFrame) -> PolarsResult<[StringChunked; 3]> {
    Ok([
        text(frame, "unionid")?,
        text(frame, "account_id")?,
        text(frame, "member_id")?,
    ])
}

/// The person id of a row, as [`person_id`] makes it: its UnionID, else
/// `account/member`, written into `key`.
fn person_of<'a>(
    unionid: Option<&'a str>,
    account: Option<&str>,
    member: Option<&str>,
    key: &'a mut String,
) -> Option<&'a str> {
    match (unionid, account, member) {
        (Some(unionid), _, _) => Some(unionid),
        (None, Some(account), Some(member)) => {
            key.clear();
            key.push_str(account);
            key.push('/');
            key.push_str(member);
            Some(key.as_str())
        }
        _ => None,
    }
}

/// Whether `people` are sorted by person, one row each, as [`people`] gives
/// them (the order [`carried_people`] merges in).
pub fn sorted_by_person(people: &DataFrame) -> bool {
    strings(people).is_ok_and(|ids| {
        ids.windows(2)
            .all(|pair| matches!(pair, [Some(a), Some(b)] if a < b))
    })
}

/// The `person_id` column of a `people` frame.
fn strings(people: &DataFrame) -> PolarsResult<Vec<Option<&str>>> {
    Ok(people.column("person_id")?.str()?.iter().collect())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::transform::{changes, identities, people_changes, unique_member_identities};

    /// A membership over the two days: (account, member, UnionID, joined
    /// at, on the day before, today).
    type Membership = (u8, u8, Option<u8>, i64, bool, bool);

    fn identities_of(rows: &[&Membership]) -> DataFrame {
        let parts = (0..3u8)
            .map(|account| {
                let mine: Vec<_> = rows.iter().filter(|r| r.0 == account).collect();
                let raw = df!(
                    "openid" => mine.iter().map(|r| format!("m{}", r.1)).collect::<Vec<_>>(),
                    "unionid" => mine.iter().map(|r| r.2.map(|u| format!("u{u}"))).collect::<Vec<_>>(),
                    "subscribe_time" => mine.iter().map(|r| r.3).collect::<Vec<_>>(),
                )
                .unwrap()
                .lazy();
                let id = format!("acct{account}");
                unique_member_identities(&id, "official_account", raw, "openid", "subscribe_time")
            })
            .collect();
        identities(parts).unwrap().collect().unwrap()
    }

    fn memberships() -> impl Strategy<Value = Vec<Membership>> {
        let membership = (
            0..3u8,
            0..12u8,
            prop::option::weighted(0.8, 0..8u8),
            0..5i64,
            any::<bool>(),
            any::<bool>(),
        );
        prop::collection::vec(membership, 0..40).prop_map(|mut rows| {
            // One row per (account, member), as the identities hold them.
            rows.sort_by_key(|r| (r.0, r.1));
            rows.dedup_by_key(|r| (r.0, r.1));
            rows
        })
    }

    #[test]
    fn people_are_sorted_by_person_as_derived_not_reversed_nor_repeated() {
        let rows = [
            (0, 1, Some(1), 0, true, true),
            (1, 2, None, 0, true, true),
            (2, 3, Some(1), 0, true, true),
        ];
        let derived = people(identities_of(&rows.iter().collect::<Vec<_>>()).lazy())
            .collect()
            .unwrap();
        assert_eq!(derived.height(), 2);
        assert!(sorted_by_person(&derived));
        assert!(!sorted_by_person(&derived.reverse()));
        assert!(!sorted_by_person(
            &derived.vstack(&derived.tail(Some(1))).unwrap()
        ));
    }

    #[test]
    fn lists_are_gathered_across_chunks_as_polars_gathers_them() {
        let lists = |rows: &[&[&str]]| -> ListChunked {
            let series: Vec<Series> = rows
                .iter()
                .map(|row| Series::new("".into(), row.to_vec()))
                .collect();
            ListChunked::from_iter(series.into_iter().map(Some)).with_name("accounts".into())
        };
        let mut first = lists(&[&["a"], &["a", "b"]]);
        first.append(&lists(&[&[], &["c"]])).unwrap();
        let second = lists(&[&["b", "c"]]);
        assert_eq!(first.chunks().len(), 2);
        let order = [4, 3, 0, 1, 2, 3];
        let gathered = gather_lists(&first, &second, &order).unwrap();
        let mut both = first.clone();
        both.append(&second).unwrap();
        let taken = both
            .take(&IdxCa::from_vec("".into(), order.to_vec()))
            .unwrap();
        assert_eq!(gathered.into_series(), taken.into_series());
        let none = gather_lists(&first.clear(), &second.clear(), &[]).unwrap();
        assert_eq!(none.len(), 0);
    }

    proptest! {
        #[test]
        fn carried_people_equal_the_people_derived_again(rows in memberships()) {
            let before: Vec<_> = rows.iter().filter(|r| r.4).collect();
            let today: Vec<_> = rows.iter().filter(|r| r.5).collect();
            let (before, today) = (identities_of(&before), identities_of(&today));
            let previous_people = people(before.clone().lazy()).collect().unwrap();
            let day = changes(before.clone().lazy(), today.clone().lazy()).unwrap();

            let day = day.collect().unwrap();
            let (carried, counts) =
                carried_people(&previous_people, &today, &[&day]).unwrap();

            let derived = people(today.lazy()).collect().unwrap();
            prop_assert!(carried.equals_missing(&derived), "{carried}\n{derived}");
            let derived_counts = people_changes(before.lazy(), derived.lazy()).unwrap();
            prop_assert_eq!(counts, derived_counts);
        }
    }
}
