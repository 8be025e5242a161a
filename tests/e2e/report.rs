//! `unionsnap report`: the summary as text, JSON and CSV, and the HTML report
//! opened in headless Chromium — no console errors, every chart drawn with a
//! non-zero size, a screenshot saved.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;
use unionsnap::load::layout;

/// A committed warehouse of two consecutive days (so joined/left are set).
async fn two_days(seed: u64) -> Fixture {
    let fixture = Fixture::start(without_crawl_leavers(scenario(
        seed,
        3_000,
        &[
            ("brand_oa", 0.5, true),
            ("news_oa", 0.3, true),
            ("shop_oa", 0.2, true),
            ("legacy_oa", 0.2, false),
        ],
    )))
    .await;
    let job = fixture.write_job();
    assert_exit(&fixture.run_job_on(&job, DATE, &[]).await, 0);
    fixture.server.set_day(1);
    assert_exit(&fixture.run_job_on(&job, NEXT_DATE, &[]).await, 0);
    fixture
}

async fn report(fixture: &Fixture, args: &[&str]) -> std::process::Output {
    let output = fixture.output_dir().display().to_string();
    let mut all = vec!["report", output.as_str()];
    all.extend_from_slice(args);
    fixture.unionsnap(&all, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_summary_holds_the_audience_and_overlap_rows() {
    let fixture = two_days(91).await;
    let out = report(&fixture, &["--format", "json"]).await;
    assert_exit(&out, 0);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["snapshot_date"], NEXT_DATE, "the latest complete date");
    let audience = read_table(&fixture.output_dir(), NEXT_DATE, layout::AUDIENCE).await;
    let rows = json["audience"].as_array().unwrap();
    assert_eq!(rows.len(), audience.height());
    let truth = fixture.server.truth();
    let star = truth.row("*").unwrap();
    assert_eq!(rows[0]["account_id"], "*");
    assert_eq!(rows[0]["unique_people"], star.unique_people.unwrap());
    assert_eq!(rows[0]["exclusive_people"], Value::Null);
    assert!(rows[0]["joined"].as_i64().unwrap() > 0);
    assert_eq!(json["overlap"].as_array().unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_summary_is_the_audience_table_with_the_date() {
    let fixture = two_days(92).await;
    let out = report(&fixture, &["--format", "csv", "--date", DATE]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "snapshot_date,account_id,account_kind,members,resolved,unresolved,exclusive_people,\
         resolved_people,unique_people,duplicate_memberships,joined,left"
    );
    assert_eq!(lines.len(), 1 + 5, "the * row and four accounts");
    let star = fixture.scenario.truth();
    let star = star.row("*").unwrap();
    assert_eq!(
        lines[1],
        format!(
            "{DATE},*,,{},{},{},,{},{},{},,",
            star.members,
            star.resolved,
            star.unresolved,
            star.resolved_people.unwrap(),
            star.unique_people.unwrap(),
            star.duplicate_memberships.unwrap()
        ),
        "first snapshot: joined/left are empty"
    );
}

/// The Chromium binary: Debian's `chromium` (make test and .ci/run install it).
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .expect("chromium is missing: `make test` installs it (apt-get install -y chromium)")
}

/// Runs headless Chromium on `page` with `args`; (stdout, stderr).
fn run_chromium(profile: &Path, page: &Path, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("timeout")
        .arg("180")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "chromium failed: {stderr}");
    (stdout, stderr)
}

/// Records script errors and console.error calls from the first moment on.
const PROBE_HEAD: &str = r#"<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e.type)); }, true);
(function () {
  var original = console.error;
  console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
})();
</script>"#;

/// Measures every chart once the page is laid out, into #render-probe.
const PROBE_BODY: &str = r#"<script>
(function () {
  var charts = Array.prototype.map.call(document.querySelectorAll('figure.chart'), function (figure) {
    var svg = figure.querySelector('svg');
    var box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    return { id: figure.id, width: box.width, height: box.height,
             texts: svg ? svg.querySelectorAll('text').length : 0,
             shapes: svg ? svg.querySelectorAll('rect, circle, polyline, path, line').length : 0 };
  });
  var probe = document.createElement('pre');
  probe.id = 'render-probe';
  probe.textContent = JSON.stringify({ charts: charts, errors: window.__errors });
  document.body.appendChild(probe);
})();
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_every_chart_in_chromium_without_errors() {
    let chromium_binary = chromium();
    let fixture = two_days(93).await;
    let page = fixture.dir.path().join("report.html");
    let out = report(&fixture, &["--html", page.to_str().unwrap()]).await;
    assert_exit(&out, 0);
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: nothing to fetch (the SVG namespace is a name, not a fetch).
    let external = html
        .replace("http://www.w3.org/2000/svg", "")
        .replace("http://www.w3.org/1999/xlink", "");
    for reference in [
        "http://", "https://", "<script", "<link", "<img", "url(", "@import",
    ] {
        assert!(
            !external.contains(reference),
            "the report references {reference}"
        );
    }

    let probe_page = fixture.dir.path().join("probe.html");
    let probed = html
        .replacen("<head>", &format!("<head>\n{PROBE_HEAD}"), 1)
        .replacen("</body>", &format!("{PROBE_BODY}\n</body>"), 1);
    std::fs::write(&probe_page, probed).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let (dom, log) = run_chromium(
        profile.path(),
        &probe_page,
        &["--window-size=1000,3000", "--dump-dom"],
    );
    let start = dom
        .find("<pre id=\"render-probe\">")
        .expect("the probe ran")
        + 23;
    let end = start + dom[start..].find("</pre>").unwrap();
    let probe: Value = serde_json::from_str(
        &dom[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
    .unwrap();
    assert_eq!(
        probe["errors"],
        serde_json::json!([]),
        "no script or console errors"
    );
    assert!(
        !log.lines()
            .any(|line| line.contains(":CONSOLE") || line.contains("Uncaught")),
        "no console messages from the page:\n{log}"
    );
    let charts = probe["charts"].as_array().unwrap();
    let ids: Vec<&str> = charts.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "chart-trend",
            "chart-accounts",
            "chart-upset",
            "chart-overlap",
            "chart-changes"
        ]
    );
    for chart in charts {
        assert!(chart["width"].as_f64().unwrap() > 100.0, "{chart}");
        assert!(chart["height"].as_f64().unwrap() > 100.0, "{chart}");
        assert!(
            chart["texts"].as_u64().unwrap() > 0,
            "labels drawn: {chart}"
        );
        assert!(
            chart["shapes"].as_u64().unwrap() > 1,
            "marks drawn: {chart}"
        );
    }

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser.png");
    let _ = std::fs::remove_file(&screenshot);
    run_chromium(
        profile.path(),
        &page,
        &[
            "--window-size=1000,3400",
            &format!("--screenshot={}", screenshot.display()),
        ],
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG screenshot");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1000);
    eprintln!(
        "screenshot of the report ({}): {}",
        chromium_binary.display(),
        screenshot.display()
    );
}
