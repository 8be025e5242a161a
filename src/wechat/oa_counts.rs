//! What WeChat itself counts about an Official Account's followers: its
//! tags with their member counts (`cgi-bin/tags/get`) and its daily follower
//! statistics (`datacube/getusercumulate`, `datacube/getusersummary`).
//!
//! Every answer is checked before it is handed on (a hostile or broken body
//! is an [`ApiError::UnexpectedBody`] naming what is wrong, never a panic):
//! tags need an id, unique, and a count that is not negative; datacube rows
//! need a `ref_date` inside the span asked for and counts that are not
//! negative. A tag without a name keeps its id (the name is `None`).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::errcode::CallKind;
use super::error::ApiError;
use super::http::Request;
use super::official_account::OfficialAccountClient;
use super::wire::{lenient_opt_i64, nonempty_string};

pub const TAGS_GET_PATH: &str = "/cgi-bin/tags/get";
pub const USER_CUMULATE_PATH: &str = "/datacube/getusercumulate";
pub const USER_SUMMARY_PATH: &str = "/datacube/getusersummary";

/// The longest span (in days, both ends included) one datacube call covers.
pub const DATACUBE_MAX_DAYS: i64 = 7;
/// More tags than an answer may list: WeChat allows 100 per account, so a
/// longer list is a broken answer, not data.
pub const TAGS_MAX: usize = 10_000;

/// One tag of `tags/get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub id: i64,
    /// `None` when WeChat sent none (or an empty one).
    pub name: Option<String>,
    /// Followers under the tag, as WeChat counts them.
    pub count: i64,
}

/// One day of `getusercumulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CumulateDay {
    pub ref_date: NaiveDate,
    /// Followers at the end of the day.
    pub cumulate_user: i64,
}

/// One (day, source) row of `getusersummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRow {
    pub ref_date: NaiveDate,
    pub user_source: i64,
    pub new_user: i64,
    pub cancel_user: i64,
}

#[derive(Deserialize)]
pub(crate) struct TagsResponse {
    #[serde(default)]
    tags: Option<Vec<WireTag>>,
}

#[derive(Deserialize)]
struct WireTag {
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    id: Option<i64>,
    #[serde(default, deserialize_with = "nonempty_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    count: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct DatacubeResponse<R> {
    #[serde(default = "Vec::new")]
    list: Vec<R>,
}

#[derive(Deserialize)]
pub(crate) struct WireCumulate {
    #[serde(default, deserialize_with = "nonempty_string")]
    ref_date: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    cumulate_user: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct WireSummary {
    #[serde(default, deserialize_with = "nonempty_string")]
    ref_date: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    user_source: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    new_user: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    cancel_user: Option<i64>,
}

#[derive(Serialize)]
struct DatacubeRequest {
    begin_date: String,
    end_date: String,
}

/// Why a body was refused, before the account and endpoint are added.
type Refusal = String;

impl TagsResponse {
    pub(crate) fn into_tags(self) -> Result<Vec<Tag>, Refusal> {
        // An account without tags may answer without the key at all.
        let wire = self.tags.unwrap_or_default();
        if wire.len() > TAGS_MAX {
            return Err(format!(
                "{} tags listed (WeChat allows 100 per account)",
                wire.len()
            ));
        }
        let mut seen = BTreeSet::new();
        let mut tags = Vec::with_capacity(wire.len());
        for (position, tag) in wire.into_iter().enumerate() {
            let id = tag
                .id
                .ok_or_else(|| format!("tag #{position} has no numeric id"))?;
            if !seen.insert(id) {
                return Err(format!("tag id {id} is listed twice"));
            }
            let count = match tag.count {
                Some(count) if count >= 0 => count,
                Some(count) => return Err(format!("tag {id} has a negative count ({count})")),
                None => return Err(format!("tag {id} has no numeric count")),
            };
            tags.push(Tag {
                id,
                name: tag.name,
                count,
            });
        }
        Ok(tags)
    }
}

/// A `ref_date` of an answer: a date inside `[begin, end]`.
fn ref_date(written: Option<&str>, begin: NaiveDate, end: NaiveDate) -> Result<NaiveDate, Refusal> {
    let written = written.ok_or("a row has no ref_date")?;
    let date: NaiveDate = written
        .trim()
        .parse()
        .map_err(|_| format!("ref_date {written:?} is not a YYYY-MM-DD date"))?;
    if date < begin || date > end {
        return Err(format!(
            "ref_date {date} lies outside the span asked for ({begin} to {end})"
        ));
    }
    Ok(date)
}

fn count(value: Option<i64>, field: &str, date: NaiveDate) -> Result<i64, Refusal> {
    match value {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(format!("{field} of {date} is negative ({n})")),
        None => Err(format!("the row of {date} has no numeric {field}")),
    }
}

impl DatacubeResponse<WireCumulate> {
    pub(crate) fn into_days(
        self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<CumulateDay>, Refusal> {
        let mut days: Vec<CumulateDay> = Vec::with_capacity(self.list.len());
        for row in self.list {
            let ref_date = ref_date(row.ref_date.as_deref(), begin, end)?;
            if days.iter().any(|d| d.ref_date == ref_date) {
                return Err(format!("ref_date {ref_date} is listed twice"));
            }
            let cumulate_user = count(row.cumulate_user, "cumulate_user", ref_date)?;
            days.push(CumulateDay {
                ref_date,
                cumulate_user,
            });
        }
        days.sort_by_key(|d| d.ref_date);
        Ok(days)
    }
}

impl DatacubeResponse<WireSummary> {
    pub(crate) fn into_rows(
        self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<SummaryRow>, Refusal> {
        // At most a row per (day, source) of a few dozen sources: more is
        // a broken answer (and no allocation follows its claim).
        let most = (DATACUBE_MAX_DAYS as usize) * 1_000;
        if self.list.len() > most {
            return Err(format!("{} rows listed (at most {most})", self.list.len()));
        }
        self.list
            .into_iter()
            .map(|row| {
                let ref_date = ref_date(row.ref_date.as_deref(), begin, end)?;
                Ok(SummaryRow {
                    ref_date,
                    // WeChat's doc example lists source 0 ("other"); a row
                    // without one is counted as that.
                    user_source: row.user_source.unwrap_or(0),
                    new_user: count(row.new_user, "new_user", ref_date)?,
                    cancel_user: count(row.cancel_user, "cancel_user", ref_date)?,
                })
            })
            .collect()
    }
}

/// Checks a datacube span: `begin <= end`, at most [`DATACUBE_MAX_DAYS`].
fn datacube_span(
    client: &OfficialAccountClient,
    endpoint: &'static str,
    begin: NaiveDate,
    end: NaiveDate,
) -> Result<DatacubeRequest, ApiError> {
    let days = (end - begin).num_days() + 1;
    if !(1..=DATACUBE_MAX_DAYS).contains(&days) {
        return Err(ApiError::InvalidRequest {
            account_id: client.account_id().to_string(),
            endpoint,
            detail: format!(
                "a datacube span covers 1 to {DATACUBE_MAX_DAYS} days; asked {begin} to {end}"
            ),
        });
    }
    Ok(DatacubeRequest {
        begin_date: begin.to_string(),
        end_date: end.to_string(),
    })
}

fn refused(client: &OfficialAccountClient, endpoint: &'static str, detail: Refusal) -> ApiError {
    ApiError::UnexpectedBody {
        account_id: client.account_id().to_string(),
        endpoint,
        detail,
        attempts: 1,
    }
}

impl OfficialAccountClient {
    /// Every tag of the account (`GET /cgi-bin/tags/get`), one call.
    /// Verified accounts only: others get `48001 api unauthorized`.
    pub async fn tags(&self) -> Result<Vec<Tag>, ApiError> {
        let request = Request::get(TAGS_GET_PATH, CallKind::DATA);
        let response: TagsResponse = self.call(&request).await?;
        response
            .into_tags()
            .map_err(|detail| refused(self, TAGS_GET_PATH, detail))
    }

    /// Followers at the end of each day from `begin` to `end` (at most 7
    /// days, all before today), as WeChat counts them
    /// (`POST /datacube/getusercumulate`), sorted by day. Days WeChat has
    /// no figure for are missing.
    pub async fn user_cumulate(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<CumulateDay>, ApiError> {
        let body = datacube_span(self, USER_CUMULATE_PATH, begin, end)?;
        let request = Request::post_json(USER_CUMULATE_PATH, CallKind::DATA, &body);
        let response: DatacubeResponse<WireCumulate> = self.call(&request).await?;
        response
            .into_days(begin, end)
            .map_err(|detail| refused(self, USER_CUMULATE_PATH, detail))
    }

    /// New and cancelled followers of each day from `begin` to `end`, one
    /// row per (day, `user_source`) (`POST /datacube/getusersummary`).
    pub async fn user_summary(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<SummaryRow>, ApiError> {
        let body = datacube_span(self, USER_SUMMARY_PATH, begin, end)?;
        let request = Request::post_json(USER_SUMMARY_PATH, CallKind::DATA, &body);
        let response: DatacubeResponse<WireSummary> = self.call(&request).await?;
        response
            .into_rows(begin, end)
            .map_err(|detail| refused(self, USER_SUMMARY_PATH, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn tags(body: &str) -> Result<Vec<Tag>, Refusal> {
        serde_json::from_str::<TagsResponse>(body)
            .unwrap()
            .into_tags()
    }

    #[test]
    fn tags_keep_a_tag_without_name_and_refuse_broken_ones() {
        let ok = tags(r#"{"tags":[{"id":2,"name":"星标组","count":0},{"id":"128","count":"5"}]}"#)
            .unwrap();
        assert_eq!(ok[1].id, 128);
        assert_eq!(ok[1].name, None);
        assert_eq!(ok[1].count, 5);
        assert_eq!(tags("{}").unwrap(), Vec::new());
        let huge: Vec<String> = (0..=TAGS_MAX)
            .map(|id| format!(r#"{{"id":{id},"name":"t","count":0}}"#))
            .collect();
        let refused = tags(&format!(r#"{{"tags":[{}]}}"#, huge.join(","))).unwrap_err();
        assert!(refused.contains("tags listed"), "{refused}");
        for broken in [
            r#"{"tags":[{"name":"x","count":1}]}"#,
            r#"{"tags":[{"id":1,"name":"x","count":-3}]}"#,
            r#"{"tags":[{"id":1,"name":"x"}]}"#,
            r#"{"tags":[{"id":1,"count":1},{"id":1,"count":2}]}"#,
        ] {
            assert!(tags(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn datacube_rows_must_lie_in_the_span_and_count_from_zero() {
        let (begin, end) = (day("2014-12-02"), day("2014-12-07"));
        let cumulate = |body: &str| {
            serde_json::from_str::<DatacubeResponse<WireCumulate>>(body)
                .unwrap()
                .into_days(begin, end)
        };
        let days = cumulate(r#"{"list":[{"ref_date":"2014-12-07","cumulate_user":1217056},{"ref_date":"2014-12-06","cumulate_user":"1217000"}]}"#).unwrap();
        assert_eq!(days[0].ref_date, day("2014-12-06"));
        assert_eq!(days[1].cumulate_user, 1_217_056);
        for broken in [
            r#"{"list":[{"ref_date":"2014-12-08","cumulate_user":1}]}"#,
            r#"{"list":[{"ref_date":"yesterday","cumulate_user":1}]}"#,
            r#"{"list":[{"ref_date":"2014-12-07","cumulate_user":-1}]}"#,
            r#"{"list":[{"cumulate_user":1}]}"#,
            r#"{"list":[{"ref_date":"2014-12-07","cumulate_user":1},{"ref_date":"2014-12-07","cumulate_user":2}]}"#,
        ] {
            assert!(cumulate(broken).is_err(), "{broken}");
        }
        let summary = |body: &str| {
            serde_json::from_str::<DatacubeResponse<WireSummary>>(body)
                .unwrap()
                .into_rows(begin, end)
        };
        let rows = summary(r#"{"list":[{"ref_date":"2014-12-07","user_source":0,"new_user":0,"cancel_user":0},{"ref_date":"2014-12-07","user_source":30,"new_user":4,"cancel_user":1}]}"#).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].new_user, 4);
        assert!(
            summary(r#"{"list":[{"ref_date":"2014-12-07","new_user":-4,"cancel_user":0}]}"#)
                .is_err()
        );
    }
}
