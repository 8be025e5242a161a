//! The least any client of the job's Official Accounts must do, and nothing
//! else: a token per account, every `user/get` page one after another, and
//! the profiles, each `batchget` answer read whole and thrown away (no JSON
//! decoded, nothing written). What `make bench` (bench/bench.py) sets beside
//! unionsnap on the same simulator, so a ratio to the listing chain can be
//! told apart from what the machine and the simulator themselves cost:
//! both share the machine's cores. Prints one JSON line.
//!
//! `--profiles all` profiles every listed follower (a first snapshot, case
//! c); `--profiles last` only the first 100 followers of the last page (a
//! next day whose new followers are the last listed, case f); `--profiles
//! none` none (a next day without new followers). Accounts are
//! crawled side by side, `[api] concurrency` batchget calls in flight each.
//!
//! `cargo bench --bench fetch_floor -- JOB.toml --profiles all`

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;
use unionsnap::job::{self, AccountSpec};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// OpenIDs a `user/get` page holds at most.
const PAGE: usize = 10_000;

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default, borrow)]
    data: Option<Openids<'a>>,
    #[serde(default)]
    next_openid: &'a str,
}

#[derive(Deserialize)]
struct Openids<'a> {
    #[serde(borrow)]
    openid: Vec<&'a str>,
}

#[derive(Clone, Copy, PartialEq)]
enum Profiles {
    All,
    Last,
    None,
}

/// One account's crawl: (pages, calls).
async fn crawl(
    client: reqwest::Client,
    base: String,
    appid: String,
    secret: String,
    concurrency: usize,
    profiles: Profiles,
) -> Result<(u64, u64), reqwest::Error> {
    let token: Token = client
        .post(format!("{base}/cgi-bin/stable_token"))
        .json(&json!({"grant_type": "client_credential", "appid": appid, "secret": secret}))
        .send()
        .await?
        .json()
        .await?;
    let token = Arc::new(token.access_token);
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let batchget = |openids: &[&str]| {
        let body = json!({"user_list": openids.iter()
            .map(|o| json!({"openid": o, "lang": "zh_CN"})).collect::<Vec<_>>()});
        let (client, base, token, permits) =
            (client.clone(), base.clone(), token.clone(), permits.clone());
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            client
                .post(format!("{base}/cgi-bin/user/info/batchget"))
                .query(&[("access_token", token.as_str())])
                .json(&body)
                .send()
                .await?
                .bytes()
                .await
                .map(|body| body.len())
        })
    };
    let (mut pages, mut next, mut calls) = (0, String::new(), Vec::new());
    let last: Vec<String> = loop {
        let mut request = client
            .get(format!("{base}/cgi-bin/user/get"))
            .query(&[("access_token", token.as_str())]);
        if !next.is_empty() {
            request = request.query(&[("next_openid", next.as_str())]);
        }
        let body = request.send().await?.bytes().await?;
        pages += 1;
        let page: Page = serde_json::from_slice(&body).expect("a user/get page");
        let openids = page.data.map(|d| d.openid).unwrap_or_default();
        if profiles == Profiles::All {
            calls.extend(openids.chunks(100).map(&batchget));
        }
        // As WeChat pages: only a full page is followed by more (the call
        // after the last full page answers no OpenIDs).
        if openids.len() < PAGE || page.next_openid.is_empty() {
            break openids.iter().take(100).map(|o| o.to_string()).collect();
        }
        next = page.next_openid.to_string();
    };
    if profiles == Profiles::Last && !last.is_empty() {
        calls.push(batchget(
            &last.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
    }
    let made = calls.len() as u64;
    for call in calls {
        call.await.expect("batchget task")?;
    }
    Ok((pages, made))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: cargo bench --bench fetch_floor -- JOB.toml --profiles all|last|none";
    let path = args.iter().find(|a| a.ends_with(".toml")).ok_or(usage)?;
    let profiles = match args.iter().skip_while(|a| *a != "--profiles").nth(1) {
        Some(p) if p == "all" => Profiles::All,
        Some(p) if p == "last" => Profiles::Last,
        Some(p) if p == "none" => Profiles::None,
        _ => return Err(usage.into()),
    };
    let job = job::load(std::path::Path::new(path))?;
    let client = reqwest::Client::builder().build()?;
    let start = Instant::now();
    let crawls: Vec<_> = job
        .accounts
        .iter()
        .filter_map(|account| match &account.spec {
            AccountSpec::OfficialAccount { appid, secret, .. } => Some(tokio::spawn(crawl(
                client.clone(),
                job.api.base_url.trim_end_matches('/').to_string(),
                appid.clone(),
                secret.expose().to_string(),
                job.api.concurrency,
                profiles,
            ))),
            _ => None,
        })
        .collect();
    let (mut longest, mut calls) = (0, 0);
    for crawl in crawls {
        let (pages, made) = crawl.await??;
        longest = longest.max(pages);
        calls += made;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        r#"{{"seconds": {seconds:.4}, "longest_chain_pages": {longest}, "batchget_calls": {calls}}}"#
    );
    Ok(())
}
