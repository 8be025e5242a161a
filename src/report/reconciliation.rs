//! WeChat's own follower count beside ours: the snapshot's `reconciliation`
//! rows, read for the terminal and the HTML report.

use chrono::NaiveDate;
use polars::prelude::*;

use super::{thousands, ReportError};
use crate::load::{self, layout, Store};

/// One Official Account's row of `reconciliation`: WeChat's own follower
/// count of the day before the snapshot beside ours.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationRow {
    pub account_id: String,
    pub ref_date: Option<NaiveDate>,
    pub wechat_cumulate_user: Option<i64>,
    pub members: Option<i64>,
    pub difference: Option<i64>,
    pub wechat_new_user: Option<i64>,
    pub wechat_cancel_user: Option<i64>,
    pub within_tolerance: Option<bool>,
    pub wechat_error: Option<String>,
}

/// Every `reconciliation` file the marker names, one row each (the account
/// id is the partition folder's).
pub async fn read_rows(
    store: &Store,
    manifest: &load::Manifest,
) -> Result<Vec<ReconciliationRow>, ReportError> {
    let mut rows = Vec::new();
    for file in manifest
        .files
        .iter()
        .filter(|f| f.table == layout::RECONCILIATION)
    {
        let Some(account_id) = file
            .path
            .split('/')
            .find_map(|part| part.strip_prefix("account_id="))
        else {
            continue;
        };
        let df = load::read_file(store, &file.path).await?;
        let dates: Vec<Option<NaiveDate>> = df.column("ref_date")?.date()?.as_date_iter().collect();
        let within: Vec<Option<bool>> = df.column("within_tolerance")?.bool()?.iter().collect();
        let errors: Vec<Option<String>> = df
            .column("wechat_error")?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect();
        let (cumulate, members, difference, new_user, cancel_user) = (
            ints(&df, "wechat_cumulate_user")?,
            ints(&df, "members")?,
            ints(&df, "difference")?,
            ints(&df, "wechat_new_user")?,
            ints(&df, "wechat_cancel_user")?,
        );
        for i in 0..df.height() {
            rows.push(ReconciliationRow {
                account_id: account_id.to_string(),
                ref_date: dates[i],
                wechat_cumulate_user: cumulate[i],
                members: members[i],
                difference: difference[i],
                wechat_new_user: new_user[i],
                wechat_cancel_user: cancel_user[i],
                within_tolerance: within[i],
                wechat_error: errors[i].clone(),
            });
        }
    }
    rows.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    Ok(rows)
}

fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<i64>>> {
    Ok(df.column(name)?.i64()?.iter().collect())
}

/// The terminal section: per Official Account, WeChat's count of the day
/// before the snapshot, ours, and the difference; or why WeChat's is missing.
pub fn render_text(rows: &[ReconciliationRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let number = |v: Option<i64>| v.map_or_else(|| "-".to_string(), thousands);
    let mut out = String::from(
        "
WeChat's own follower count (the day before, datacube) beside ours:
",
    );
    for row in rows {
        let day = row
            .ref_date
            .map_or_else(|| "-".to_string(), |d| d.to_string());
        let line = match &row.wechat_error {
            Some(error) => format!(
                "  {} {day}: not available ({error})
",
                row.account_id
            ),
            None => format!(
                "  {} {day}: WeChat {}, ours {}, difference {}{}\n",
                row.account_id,
                number(row.wechat_cumulate_user),
                number(row.members),
                row.difference
                    .map_or_else(|| "-".to_string(), |d| format!("{d:+}")),
                match row.within_tolerance {
                    Some(false) => "  (beyond the job's tolerance)",
                    _ => "",
                }
            ),
        };
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(account_id: &str) -> ReconciliationRow {
        ReconciliationRow {
            account_id: account_id.to_string(),
            ref_date: NaiveDate::from_ymd_opt(2026, 11, 21),
            wechat_cumulate_user: Some(12_000),
            members: Some(11_993),
            difference: Some(-7),
            wechat_new_user: Some(40),
            wechat_cancel_user: Some(12),
            within_tolerance: Some(false),
            wechat_error: None,
        }
    }

    #[test]
    fn the_terminal_says_the_difference_or_why_wechats_count_is_missing() {
        assert_eq!(render_text(&[]), "");
        let unverified = ReconciliationRow {
            wechat_error: Some("48001 api unauthorized".into()),
            ..row("news_oa")
        };
        let text = render_text(&[row("brand_oa"), unverified]);
        assert!(text.contains(
            "  brand_oa 2026-11-21: WeChat 12,000, ours 11,993, difference -7  (beyond the job's tolerance)\n"
        ));
        assert!(text.contains("  news_oa 2026-11-21: not available (48001 api unauthorized)\n"));
    }
}
