//! An Official Account's own counts beside our snapshot of it: its `tags`
//! rows (WeChat's tags, with how many members of our snapshot carry each)
//! and its `reconciliation` row (WeChat's `cumulate_user` of the day before
//! the snapshot against our members of that day's snapshot).
//!
//! The calls are one `tags/get`, one `getusercumulate` and one
//! `getusersummary` per account and run, made beside the crawl. None of them
//! can fail the account: these endpoints need a verified account (else
//! `48001`) and WeChat's statistics lag, so a refusal is logged as a warning
//! and written down — the `tags` rows then lack WeChat's name and count, the
//! `reconciliation` row carries the error in `wechat_error` — while the
//! account's followers are committed as usual.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::job::Tolerance;
use crate::wechat::{ApiError, CumulateDay, OfficialAccountClient, SummaryRow, Tag};

/// What WeChat answered (or why not) for one account and run.
#[derive(Debug)]
pub struct WeChatCounts {
    /// The day the datacube figures are of: the day before the snapshot.
    pub ref_date: NaiveDate,
    pub tags: Result<Vec<Tag>, ApiError>,
    /// `None` when WeChat has no figure of `ref_date` (yet).
    pub cumulate: Result<Option<CumulateDay>, ApiError>,
    pub summary: Result<Vec<SummaryRow>, ApiError>,
}

/// The three calls, at once, for the snapshot of `date`.
pub async fn fetch(client: &OfficialAccountClient, date: NaiveDate) -> WeChatCounts {
    let ref_date = date.pred_opt().unwrap_or(date);
    let (tags, cumulate, summary) = tokio::join!(
        client.tags(),
        client.user_cumulate(ref_date, ref_date),
        client.user_summary(ref_date, ref_date),
    );
    let counts = WeChatCounts {
        ref_date,
        tags,
        cumulate: cumulate.map(|days| days.into_iter().find(|d| d.ref_date == ref_date)),
        summary,
    };
    for (endpoint, error) in [
        ("tags/get", counts.tags.as_ref().err()),
        ("datacube/getusercumulate", counts.cumulate.as_ref().err()),
        ("datacube/getusersummary", counts.summary.as_ref().err()),
    ] {
        if let Some(error) = error {
            tracing::warn!(account_id = client.account_id(), endpoint, %error,
                "WeChat's own counts are not available; the followers are snapshotted all the same and the table notes it");
        }
    }
    counts
}

/// Counts the tag ids of the `tagid_list` column of followers rows, a row
/// group at a time: tag id → followers carrying it.
#[derive(Debug, Default, Clone)]
pub struct TagMembers(BTreeMap<i64, i64>);

impl TagMembers {
    /// Adds the tags of `rows` (without a `tagid_list` column: nothing).
    pub fn add(&mut self, rows: &DataFrame) -> PolarsResult<()> {
        let Ok(column) = rows.column("tagid_list") else {
            return Ok(());
        };
        // One cast per row group, not per follower; then the lists' offsets
        // and values as they are (a Series per row would cost more than
        // the counting: ~2% of a day 2's CPU).
        let lists = column.cast(&DataType::List(Box::new(DataType::Int64)))?;
        let lists = lists.list()?.rechunk();
        let values = lists.get_inner();
        let mut ids: Vec<i64> = Vec::new();
        for (lists, values) in lists.downcast_iter().zip(values.i64()?.downcast_iter()) {
            let offsets = lists.offsets().as_slice();
            let listed = |row: usize| lists.validity().is_none_or(|v| v.get_bit(row));
            let present = |i: usize| values.validity().is_none_or(|v| v.get_bit(i));
            for row in (0..offsets.len() - 1).filter(|&row| listed(row)) {
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                ids.clear();
                ids.extend(
                    (start..end)
                        .filter(|&i| present(i))
                        .map(|i| values.value(i)),
                );
                // WeChat lists a tag once per follower; a repeat is counted once.
                ids.sort_unstable();
                ids.dedup();
                for id in &ids {
                    *self.0.entry(*id).or_insert(0) += 1;
                }
            }
        }
        Ok(())
    }
}

/// The `tags` rows: every tag WeChat listed and every tag id found on a
/// member, by id. `members_with_tag` is null when the followers were not
/// counted (`tagid_list` dropped by `[privacy] drop`); `name` and
/// `wechat_count` are null for a tag WeChat did not list (deleted since, or
/// `tags/get` refused).
pub fn tags_frame(
    tags: &Result<Vec<Tag>, ApiError>,
    members: Option<&TagMembers>,
) -> PolarsResult<DataFrame> {
    let mut rows: BTreeMap<i64, (Option<&str>, Option<i64>)> = BTreeMap::new();
    if let Some(members) = members {
        for id in members.0.keys() {
            rows.insert(*id, (None, None));
        }
    }
    for tag in tags.iter().flatten() {
        rows.insert(tag.id, (tag.name.as_deref(), Some(tag.count)));
    }
    let ids: Vec<i64> = rows.keys().copied().collect();
    let member_counts: Vec<Option<i64>> = ids
        .iter()
        .map(|id| members.map(|m| m.0.get(id).copied().unwrap_or(0)))
        .collect();
    let columns = vec![
        Column::new("tag_id".into(), &ids),
        Column::new(
            "name".into(),
            rows.values().map(|(name, _)| *name).collect::<Vec<_>>(),
        ),
        Column::new(
            "wechat_count".into(),
            rows.values().map(|(_, count)| *count).collect::<Vec<_>>(),
        ),
        Column::new("members_with_tag".into(), member_counts),
    ];
    DataFrame::new(ids.len(), columns)
}

/// One account's reconciliation, for the log, the metrics and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    pub ref_date: NaiveDate,
    pub wechat_cumulate_user: Option<i64>,
    /// Members of our snapshot of `ref_date`, if there is one.
    pub members: Option<i64>,
    /// `members − wechat_cumulate_user`, when both are known.
    pub difference: Option<i64>,
    pub wechat_new_user: Option<i64>,
    pub wechat_cancel_user: Option<i64>,
    /// Whether the difference is within the job's tolerance (None when
    /// there is no difference to judge).
    pub within_tolerance: Option<bool>,
    /// Why WeChat's figures are missing, if they are.
    pub wechat_error: Option<String>,
}

impl Reconciled {
    /// Puts WeChat's figures of `counts` beside `members`, our members of
    /// `counts.ref_date`.
    pub fn new(counts: &WeChatCounts, members: Option<i64>, tolerance: Tolerance) -> Reconciled {
        let ref_date = counts.ref_date;
        let (cumulate, cumulate_error) = match &counts.cumulate {
            Ok(Some(day)) => (Some(day.cumulate_user), None),
            Ok(None) => (
                None,
                Some(format!("WeChat has no cumulate_user of {ref_date} (yet)")),
            ),
            Err(error) => (None, Some(error.to_string())),
        };
        let (new_user, cancel_user, summary_error) = match &counts.summary {
            Ok(rows) => {
                let of_day = rows.iter().filter(|r| r.ref_date == ref_date);
                let (new, cancel) = of_day.fold((0i64, 0i64), |(n, c), r| {
                    (
                        n.saturating_add(r.new_user),
                        c.saturating_add(r.cancel_user),
                    )
                });
                (Some(new), Some(cancel), None)
            }
            Err(error) => (None, None, Some(error.to_string())),
        };
        let difference = members.zip(cumulate).map(|(ours, wechat)| ours - wechat);
        let within_tolerance = difference
            .zip(cumulate)
            .map(|(difference, wechat)| !tolerance.exceeded_by(difference, wechat));
        let errors: Vec<String> = [cumulate_error, summary_error]
            .into_iter()
            .flatten()
            .collect();
        Reconciled {
            ref_date,
            wechat_cumulate_user: cumulate,
            members,
            difference,
            wechat_new_user: new_user,
            wechat_cancel_user: cancel_user,
            within_tolerance,
            wechat_error: (!errors.is_empty()).then(|| errors.join("; ")),
        }
    }

    /// The account's one `reconciliation` row.
    pub fn to_frame(&self) -> PolarsResult<DataFrame> {
        let columns = vec![
            DateChunked::from_naive_date_options("ref_date".into(), [Some(self.ref_date)])
                .into_column(),
            Column::new("wechat_cumulate_user".into(), [self.wechat_cumulate_user]),
            Column::new("members".into(), [self.members]),
            Column::new("difference".into(), [self.difference]),
            Column::new("wechat_new_user".into(), [self.wechat_new_user]),
            Column::new("wechat_cancel_user".into(), [self.wechat_cancel_user]),
            Column::new("within_tolerance".into(), [self.within_tolerance]),
            Column::new("wechat_error".into(), [self.wechat_error.as_deref()]),
        ];
        DataFrame::new(1, columns)
    }

    /// The rows of a `reconciliation` file, as [`Reconciled::to_frame`]
    /// wrote them (a row without its `ref_date`, never written, is skipped).
    pub fn from_frame(df: &DataFrame) -> PolarsResult<Vec<Reconciled>> {
        let ints = |name: &str| -> PolarsResult<Vec<Option<i64>>> {
            Ok(df.column(name)?.i64()?.iter().collect())
        };
        let (cumulate, members, difference, new_user, cancel_user) = (
            ints("wechat_cumulate_user")?,
            ints("members")?,
            ints("difference")?,
            ints("wechat_new_user")?,
            ints("wechat_cancel_user")?,
        );
        let dates = df.column("ref_date")?.date()?;
        let within = df.column("within_tolerance")?.bool()?;
        let errors = df.column("wechat_error")?.str()?;
        let rows = (dates.as_date_iter().enumerate())
            .filter_map(|(i, ref_date)| {
                Some(Reconciled {
                    ref_date: ref_date?,
                    wechat_cumulate_user: cumulate[i],
                    members: members[i],
                    difference: difference[i],
                    wechat_new_user: new_user[i],
                    wechat_cancel_user: cancel_user[i],
                    within_tolerance: within.get(i),
                    wechat_error: errors.get(i).map(str::to_string),
                })
            })
            .collect();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn counts(cumulate: Option<i64>) -> WeChatCounts {
        let ref_date = day("2026-11-21");
        WeChatCounts {
            ref_date,
            tags: Ok(Vec::new()),
            cumulate: Ok(cumulate.map(|cumulate_user| CumulateDay {
                ref_date,
                cumulate_user,
            })),
            summary: Ok(vec![
                SummaryRow {
                    ref_date,
                    user_source: 0,
                    new_user: 3,
                    cancel_user: 1,
                },
                SummaryRow {
                    ref_date,
                    user_source: 30,
                    new_user: 2,
                    cancel_user: 0,
                },
            ]),
        }
    }

    #[test]
    fn reconciled_difference_is_ours_minus_wechats() {
        let r = Reconciled::new(&counts(Some(1000)), Some(990), Tolerance::Followers(5));
        assert_eq!(r.difference, Some(-10));
        assert_eq!(r.within_tolerance, Some(false));
        assert_eq!(
            (r.wechat_new_user, r.wechat_cancel_user),
            (Some(5), Some(1))
        );
        assert_eq!(r.wechat_error, None);
        let none = Reconciled::new(&counts(Some(1000)), None, Tolerance::Followers(5));
        assert_eq!((none.difference, none.within_tolerance), (None, None));
        let missing = Reconciled::new(&counts(None), Some(990), Tolerance::Followers(5));
        assert!(missing
            .wechat_error
            .as_deref()
            .unwrap()
            .contains("no cumulate_user"));
        assert_eq!(r.to_frame().unwrap().height(), 1);
        assert_eq!(
            Reconciled::from_frame(&r.to_frame().unwrap()).unwrap(),
            std::slice::from_ref(&r)
        );
        assert_eq!(
            Reconciled::from_frame(&missing.to_frame().unwrap()).unwrap(),
            std::slice::from_ref(&missing)
        );
    }

    #[test]
    fn tag_members_count_each_follower_once_per_tag() {
        // Null lists, null ids, repeats, empty lists, and a slice whose
        // lists start inside the values.
        let lists = Series::new(
            "tagid_list".into(),
            [
                Some(Series::new("".into(), [Some(2i32), Some(127), Some(2)])),
                None,
                Some(Series::new("".into(), [None, Some(127i32)])),
                Some(Series::new("".into(), Vec::<i32>::new())),
                Some(Series::new("".into(), [5i32])),
            ],
        );
        let rows = DataFrame::new(5, vec![lists.into_column()]).unwrap();
        let mut members = TagMembers::default();
        members.add(&rows).unwrap();
        assert_eq!(members.0, BTreeMap::from([(2, 1), (5, 1), (127, 2)]));
        let mut sliced = TagMembers::default();
        sliced.add(&rows.slice(2, 3)).unwrap();
        sliced
            .add(&rows.vstack(&rows.slice(0, 1)).unwrap())
            .unwrap();
        assert_eq!(sliced.0, BTreeMap::from([(2, 2), (5, 2), (127, 4)]));
    }

    #[test]
    fn tags_frame_joins_wechats_tags_and_ours() {
        let rows = df!("tagid_list" => [Series::new("".into(), [2i32, 127]), Series::new("".into(), [127i32, 127])]).unwrap();
        let mut members = TagMembers::default();
        members.add(&rows).unwrap();
        let tags = Ok(vec![
            Tag {
                id: 2,
                name: Some("星标组".into()),
                count: 1,
            },
            Tag {
                id: 1,
                name: None,
                count: 0,
            },
        ]);
        let frame = tags_frame(&tags, Some(&members)).unwrap();
        let ids: Vec<i64> = frame
            .column("tag_id")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(ids, [1, 2, 127]);
        let ours: Vec<Option<i64>> = frame
            .column("members_with_tag")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ours, [Some(0), Some(1), Some(2)]);
        let wechat: Vec<Option<i64>> = frame
            .column("wechat_count")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(wechat, [Some(0), Some(1), None]);
        // tagid_list dropped by [privacy] drop: WeChat's tags, our counts null.
        let uncounted = tags_frame(&tags, None).unwrap();
        assert_eq!(uncounted.height(), 2);
        assert_eq!(
            uncounted.column("members_with_tag").unwrap().null_count(),
            2
        );
    }
}
