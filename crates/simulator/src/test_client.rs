//! A minimal WeChat client for the simulator's own tests: real HTTP on
//! 127.0.0.1 through reqwest, no retries, answers as raw JSON.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::{start, Scenario, SimServer};

pub(crate) struct Sim {
    pub(crate) server: SimServer,
    pub(crate) scenario: Scenario,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn sim(scenario: Scenario) -> Sim {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = start(scenario.clone(), addr).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Sim {
        server,
        scenario,
        http,
    }
}

pub(crate) fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().unwrap_or(0)
}

impl Sim {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let response = self
            .http
            .post(self.url(path))
            .query(&[("access_token", token)])
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub(crate) async fn stable_token_answer(&self, account: usize, force_refresh: bool) -> Value {
        let account = &self.scenario.accounts[account];
        let body = json!({
            "grant_type": "client_credential",
            "appid": account.appid,
            "secret": account.secret,
            "force_refresh": force_refresh,
        });
        let response = self
            .http
            .post(self.url("/cgi-bin/stable_token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub(crate) async fn token(&self, account: usize) -> String {
        let answer = self.stable_token_answer(account, false).await;
        answer["access_token"].as_str().unwrap().to_string()
    }

    pub(crate) async fn user_get(&self, token: &str, next_openid: &str) -> Value {
        self.get(
            "/cgi-bin/user/get",
            &[("access_token", token), ("next_openid", next_openid)],
        )
        .await
    }

    /// Pages through user/get until the empty page; returns every page.
    pub(crate) async fn all_pages(&self, token: &str) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut next = String::new();
        loop {
            let page = self.user_get(token, &next).await;
            assert_eq!(errcode(&page), 0, "{page}");
            next = page["next_openid"].as_str().unwrap().to_string();
            let done = page["count"] == 0;
            pages.push(page);
            if done {
                return pages;
            }
        }
    }

    pub(crate) async fn all_openids(&self, token: &str) -> Vec<String> {
        self.all_pages(token)
            .await
            .iter()
            .filter_map(|page| page["data"]["openid"].as_array())
            .flatten()
            .map(|openid| openid.as_str().unwrap().to_string())
            .collect()
    }

    pub(crate) async fn batchget(&self, token: &str, openids: &[String]) -> Value {
        let user_list: Vec<Value> = openids
            .iter()
            .map(|o| json!({"openid": o, "lang": "zh_CN"}))
            .collect();
        self.post(
            "/cgi-bin/user/info/batchget",
            token,
            json!({ "user_list": user_list }),
        )
        .await
    }

    /// Every profile of an account's listed followers, via batchget.
    pub(crate) async fn all_profiles(&self, account: usize) -> Vec<Value> {
        let token = self.token(account).await;
        let openids = self.all_openids(&token).await;
        let mut profiles = Vec::with_capacity(openids.len());
        for chunk in openids.chunks(100) {
            let answer = self.batchget(&token, chunk).await;
            assert_eq!(errcode(&answer), 0, "{answer}");
            profiles.extend(answer["user_info_list"].as_array().unwrap().iter().cloned());
        }
        profiles
    }

    pub(crate) async fn quota(&self, token: &str, cgi_path: &str) -> Value {
        self.post(
            "/cgi-bin/openapi/quota/get",
            token,
            json!({ "cgi_path": cgi_path }),
        )
        .await
    }
}
