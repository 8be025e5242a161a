//! `unionsnap report OUTPUT --html FILE`: one self-contained HTML page that
//! an analyst can open offline or mail around — the charts are inline SVG,
//! the style an inline `<style>`, and there is no script and no link to
//! anything outside the file.

use super::charts::{self, ChartError};
use super::data::{AccountRow, ReportData};
use super::thousands;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body { font-family: -apple-system, "Segoe UI", Roboto, "Noto Sans", "PingFang SC", sans-serif;
       color: #333; margin: 0; background: #fafafa; }
main { max-width: 960px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 4px; }
p.meta, figcaption, p.note { color: #666; font-size: 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 20px 0; }
.card { background: #fff; border: 1px solid #e4e4e4; border-radius: 8px; padding: 12px 16px; flex: 1 1 160px; }
.card .value { font-size: 26px; font-weight: 600; }
.card .label { font-size: 13px; color: #666; }
figure.chart { background: #fff; border: 1px solid #e4e4e4; border-radius: 8px;
               margin: 0 0 20px; padding: 16px; }
figure.chart svg { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
"#;

fn card(value: i64, label: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
        thousands(value),
        escape(label)
    )
}

fn figure(id: &str, title: &str, caption: &str, svg: &str) -> String {
    format!(
        "<figure class=\"chart\" id=\"chart-{id}\">\n<h2>{}</h2>\n<figcaption>{}</figcaption>\n{svg}\n</figure>\n",
        escape(title),
        escape(caption)
    )
}

fn optional(v: Option<i64>) -> String {
    v.map(thousands).unwrap_or_else(|| "–".to_string())
}

/// Per corp: its chats, the members they add to its audience.
fn groups_table(data: &ReportData) -> String {
    let mut out = String::from(
        "<p>External members of customer group chats count as members of the corp; many are no staff member's contact.</p>\n\
         <table>\n<tr><th>account</th><th>chats</th><th>chats whose owner left</th>\
         <th>people in groups</th><th>in groups only (not a contact)</th></tr>\n",
    );
    for g in &data.groups {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&g.account_id),
            thousands(g.chats),
            thousands(g.chats_owner_left),
            thousands(g.members_in_groups),
            thousands(g.in_groups_only)
        ));
    }
    out.push_str("</table>\n");
    out
}

fn audience_table(data: &ReportData) -> String {
    let row = |a: &AccountRow| {
        format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&a.account_id),
            thousands(a.members),
            thousands(a.resolved),
            thousands(a.unresolved),
            thousands(a.exclusive_people),
            optional(a.joined),
            optional(a.left)
        )
    };
    let t = &data.totals;
    let (resolved, unresolved) = data
        .accounts
        .iter()
        .fold((0, 0), |(r, u), a| (r + a.resolved, u + a.unresolved));
    let mut out = String::from(
        "<table>\n<tr><th>account</th><th>members</th><th>resolved</th><th>unresolved</th>\
         <th>exclusive people</th><th>joined</th><th>left</th></tr>\n",
    );
    for account in &data.accounts {
        out.push_str(&row(account));
    }
    out.push_str(&format!(
        "<tr class=\"total\"><td>all accounts (people)</td><td>{}</td><td>{}</td><td>{}</td><td></td><td>{}</td><td>{}</td></tr>\n</table>\n",
        thousands(t.members),
        thousands(resolved),
        thousands(unresolved),
        optional(t.joined),
        optional(t.left)
    ));
    out
}

fn reconciliation_table(data: &ReportData) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>account</th><th>day</th><th>WeChat's count</th><th>our members</th>\
         <th>difference</th><th>within tolerance</th><th>WeChat new</th><th>WeChat cancelled</th><th>note</th></tr>\n",
    );
    for (account_id, r) in &data.snapshot.reconciliation {
        let within = match r.within_tolerance {
            Some(true) => "yes",
            Some(false) => "<strong>no</strong>",
            None => "–",
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{within}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(account_id),
            r.ref_date,
            optional(r.wechat_cumulate_user),
            optional(r.members),
            r.difference.map_or("–".to_string(), |d| format!("{d:+}")),
            optional(r.wechat_new_user),
            optional(r.wechat_cancel_user),
            escape(r.wechat_error.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</table>\n");
    out
}

/// The whole page.
pub fn render_html(data: &ReportData) -> Result<String, ChartError> {
    let m = &data.snapshot.manifest;
    let t = &data.totals;
    let account_ids: Vec<String> = data.accounts.iter().map(|a| a.account_id.clone()).collect();
    let first = data.trend.first().map(|p| p.date).unwrap_or(t.date);
    let mut body = String::new();
    body.push_str(&format!(
        "<h1>Audience of {} on {}</h1>\n<p class=\"meta\">Complete snapshot committed {} (run {}); {} accounts; trend over {} complete snapshot(s) since {}.</p>\n",
        escape(&m.job),
        t.date,
        m.committed_at.format("%Y-%m-%d %H:%M UTC"),
        escape(&m.run_id),
        data.accounts.len(),
        data.trend.len(),
        first
    ));
    body.push_str("<div class=\"cards\">");
    body.push_str(&card(
        t.unique_people,
        "unique people (deduplicated on UnionID)",
    ));
    body.push_str(&card(t.members, "gross memberships (sum over accounts)"));
    body.push_str(&card(t.duplicate_memberships, "duplicate memberships"));
    body.push_str(&card(t.resolved_people, "people with a UnionID"));
    body.push_str("</div>\n");
    body.push_str(&figure(
        "trend",
        "Unique people vs gross memberships",
        "Summing followers over accounts counts people who follow several accounts more than once; unique people count them once (unresolved members, whose UnionID is unknown, each count as a person).",
        &charts::trend(&data.trend)?,
    ));
    body.push_str(&figure(
        "accounts",
        "Members per account",
        "Members; those whose UnionID is known (resolved); exclusive people, found in no other account.",
        &charts::accounts(&data.accounts)?,
    ));
    body.push_str(&figure(
        "upset",
        "Who follows which accounts (UpSet)",
        &format!(
            "Each bar is the people who are members of exactly the accounts marked below it; every person is in one bar. The {} largest of {} intersections.",
            data.intersections.len().min(charts::UPSET_MAX_COLUMNS),
            data.intersections.len()
        ),
        &charts::upset(&data.intersections, &account_ids)?,
    ));
    body.push_str(&figure(
        "overlap",
        "Overlap between accounts",
        "People (distinct UnionIDs) shared by each pair of accounts; the diagonal holds each account's resolved members.",
        &charts::overlap(&data.accounts, &data.overlap)?,
    ));
    body.push_str(&figure(
        "changes",
        "Joined and left since the previous snapshot",
        "Members present now and absent from the previous complete snapshot (joined), and the reverse (left), per account.",
        &charts::changes(&data.accounts, t)?,
    ));
    body.push_str("<h2>Audience</h2>\n");
    body.push_str(&audience_table(data));
    if !data.snapshot.reconciliation.is_empty() {
        body.push_str("<h2 id=\"reconciliation\">WeChat's own count</h2>\n<p class=\"meta\">Per Official Account: followers at the end of the day before this snapshot as WeChat counts them (datacube), our members in the snapshot of that day, and the difference (ours − WeChat's). A difference beyond the job's tolerance suggests that snapshot is incomplete.</p>\n");
        body.push_str(&reconciliation_table(data));
    }
    if !data.groups.is_empty() {
        body.push_str("<h2>WeCom customer groups</h2>\n");
        body.push_str(&groups_table(data));
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>unionsnap — {} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(&m.job),
        t.date
    ))
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn text_from_the_warehouse_cannot_open_markup() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
