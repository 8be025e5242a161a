//! WeChat's own follower count beside ours: the snapshot's `reconciliation`
//! rows, read for the terminal and the HTML report.

use super::{thousands, ReportError};
use crate::extract::oa_counts::Reconciled;
use crate::load::{self, layout, Store};

/// Every `reconciliation` file the marker names, one row each with its
/// account id (the partition folder's), as a run computed them.
pub async fn read_rows(
    store: &Store,
    manifest: &load::Manifest,
) -> Result<Vec<(String, Reconciled)>, ReportError> {
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
        for figures in Reconciled::from_frame(&df)? {
            rows.push((account_id.to_string(), figures));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(rows)
}

/// The terminal section: per Official Account, WeChat's count of the day
/// before the snapshot, ours, and the difference; or why WeChat's is missing.
pub fn render_text(rows: &[(String, Reconciled)]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let number = |v: Option<i64>| v.map_or_else(|| "-".to_string(), thousands);
    let mut out =
        String::from("\nWeChat's own follower count (the day before, datacube) beside ours:\n");
    for (account_id, row) in rows {
        let day = row.ref_date;
        let line = match &row.wechat_error {
            Some(error) => format!("  {account_id} {day}: not available ({error})\n"),
            None => format!(
                "  {account_id} {day}: WeChat {}, ours {}, difference {}{}\n",
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
    use chrono::NaiveDate;

    use super::*;

    fn row() -> Reconciled {
        Reconciled {
            ref_date: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
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
        let unverified = Reconciled {
            wechat_error: Some("48001 api unauthorized".into()),
            ..row()
        };
        let text = render_text(&[("brand_oa".into(), row()), ("news_oa".into(), unverified)]);
        assert!(text.contains(
            "  brand_oa 2026-11-21: WeChat 12,000, ours 11,993, difference -7  (beyond the job's tolerance)\n"
        ));
        assert!(text.contains("  news_oa 2026-11-21: not available (48001 api unauthorized)\n"));
    }
}
