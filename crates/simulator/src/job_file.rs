//! The job file the simulator writes for its scenario (`simulate
//! --write-job`, the tests): every account of every kind, its credentials
//! referenced through environment variables (never written), app accounts
//! pointed at their login exports.

use super::scenario::Scenario;

impl Scenario {
    /// The environment variable the generated job file reads an account's
    /// secret from: `UNIONSNAP_SIM_SECRET_<ID>` (non-alphanumerics become `_`).
    pub fn secret_env_var(account_id: &str) -> String {
        let suffix: String = account_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("UNIONSNAP_SIM_SECRET_{suffix}")
    }

    /// The variable of a platform-managed account's authorizer refresh token:
    /// `UNIONSNAP_SIM_REFRESH_TOKEN_<ID>`.
    pub fn refresh_token_env_var(account_id: &str) -> String {
        Scenario::secret_env_var(account_id).replace("_SECRET_", "_REFRESH_TOKEN_")
    }

    /// The variable of the platform's AppSecret.
    pub const COMPONENT_SECRET_ENV: &'static str = "UNIONSNAP_SIM_COMPONENT_SECRET";
    /// The variable of the platform's `component_verify_ticket`.
    pub const VERIFY_TICKET_ENV: &'static str = "UNIONSNAP_SIM_VERIFY_TICKET";

    /// `(variable, secret)` for every credential of every account (AppSecrets,
    /// corp secrets, the platform's secret and ticket, refresh tokens), to
    /// put in a child's environment.
    pub fn secret_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .accounts
            .iter()
            .map(|account| {
                (
                    Scenario::secret_env_var(&account.id),
                    account.secret.clone(),
                )
            })
            .collect();
        if let Some(platform) = &self.platform {
            env.push((
                Scenario::COMPONENT_SECRET_ENV.to_string(),
                platform.component_secret.clone(),
            ));
            env.push((
                Scenario::VERIFY_TICKET_ENV.to_string(),
                platform.verify_ticket.clone(),
            ));
            env.extend(platform.accounts.iter().map(|account| {
                (
                    Scenario::refresh_token_env_var(&account.id),
                    account.secret.clone(),
                )
            }));
        }
        env.extend(
            self.corps
                .iter()
                .map(|corp| (Scenario::secret_env_var(&corp.id), corp.secret.clone())),
        );
        env
    }

    /// Where [`Scenario::job_toml`] expects an app account's login export:
    /// `exports/<id>/` next to the output (`/data/warehouse` →
    /// `/data/exports/<id>/`, `s3://b/wechat/prod` → `s3://b/wechat/exports/<id>/`).
    pub fn export_location(output: &str, account_id: &str) -> String {
        let trimmed = output.trim_end_matches('/');
        // Never climb above a URL's bucket (`s3://bucket` → `s3://bucket/exports`).
        let root_end = trimmed
            .find("://")
            .map(|i| {
                trimmed[i + 3..]
                    .find('/')
                    .map_or(trimmed.len(), |j| i + 3 + j)
            })
            .unwrap_or(0);
        let parent = match trimmed[root_end..].rfind('/') {
            Some(i) => &trimmed[..root_end + i],
            None if root_end > 0 => trimmed,
            None => return format!("exports/{account_id}/"),
        };
        format!("{parent}/exports/{account_id}/")
    }

    /// A job file (SPEC §3) that snapshots every account of this scenario
    /// from the simulator at `base_url` (both WeChat hosts) into `output`,
    /// with retry timings short enough for tests. Secrets are referenced
    /// through [`Scenario::secret_env`]'s variables, never written; app
    /// accounts read their export from [`Scenario::export_location`].
    pub fn job_toml(&self, base_url: &str, output: &str) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut job = format!(
            "# Written by the unionsnap simulator: seed {seed}, {people} people, day {day}.\n\
             name = \"sim\"\n\
             timezone = \"UTC\"\n\
             output = {output}\n\
             \n\
             [api]\n\
             base_url = {base_url}\n\
             wecom_base_url = {base_url}\n\
             requests_per_second = 5000\n\
             max_retries = 10\n\
             backoff = \"5ms\"\n\
             rate_limit_wait = \"20ms\"\n\
             timeout = \"5s\"\n",
            seed = self.seed,
            people = self.people,
            day = self.day,
            output = quote(output),
            base_url = quote(base_url),
        );
        for account in &self.accounts {
            job.push_str(&format!(
                "\n[[accounts]]\n\
                 id = {id}\n\
                 kind = \"official_account\"\n\
                 appid = {appid}\n\
                 secret = {{ env = {env} }}\n",
                id = quote(&account.id),
                appid = quote(&account.appid),
                env = quote(&Scenario::secret_env_var(&account.id)),
            ));
        }
        if let Some(platform) = &self.platform {
            for account in &platform.accounts {
                job.push_str(&format!(
                    "\n[[accounts]]\n\
                     id = {id}\n\
                     kind = \"official_account\"\n\
                     appid = {appid}\n\
                     auth = {{ component_appid = {component}, component_secret = {{ env = {secret} }}, verify_ticket = {{ env = {ticket} }}, refresh_token = {{ env = {refresh} }} }}\n",
                    id = quote(&account.id),
                    appid = quote(&account.appid),
                    component = quote(&platform.component_appid),
                    secret = quote(Scenario::COMPONENT_SECRET_ENV),
                    ticket = quote(Scenario::VERIFY_TICKET_ENV),
                    refresh = quote(&Scenario::refresh_token_env_var(&account.id)),
                ));
            }
        }
        for app in &self.apps {
            job.push_str(&format!(
                "\n[[accounts]]\n\
                 id = {id}\n\
                 kind = {kind}\n\
                 source = {source}\n",
                id = quote(&app.id),
                kind = quote(app.kind.as_str()),
                source = quote(&Scenario::export_location(output, &app.id)),
            ));
        }
        for corp in &self.corps {
            job.push_str(&format!(
                "\n[[accounts]]\n\
                 id = {id}\n\
                 kind = \"wecom\"\n\
                 corpid = {corpid}\n\
                 secret = {{ env = {env} }}\n\
                 unionid_mode = {mode}\n",
                id = quote(&corp.id),
                corpid = quote(&corp.corpid),
                env = quote(&Scenario::secret_env_var(&corp.id)),
                mode = quote(if corp.idconvert {
                    "idconvert"
                } else {
                    "direct"
                }),
            ));
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_env_var_names_follow_the_account_id() {
        assert_eq!(
            Scenario::secret_env_var("brand_oa"),
            "UNIONSNAP_SIM_SECRET_BRAND_OA"
        );
        assert_eq!(
            Scenario::secret_env_var("shop-mp.2"),
            "UNIONSNAP_SIM_SECRET_SHOP_MP_2"
        );
        assert_eq!(
            Scenario::refresh_token_env_var("agency_oa"),
            "UNIONSNAP_SIM_REFRESH_TOKEN_AGENCY_OA"
        );
        let names: Vec<String> = Scenario::demo()
            .secret_env()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "UNIONSNAP_SIM_SECRET_BRAND_OA",
                "UNIONSNAP_SIM_SECRET_NEWS_OA",
                "UNIONSNAP_SIM_SECRET_SHOP_OA",
                "UNIONSNAP_SIM_SECRET_LEGACY_OA",
                "UNIONSNAP_SIM_COMPONENT_SECRET",
                "UNIONSNAP_SIM_VERIFY_TICKET",
                "UNIONSNAP_SIM_REFRESH_TOKEN_AGENCY_OA",
                "UNIONSNAP_SIM_SECRET_CRM",
                "UNIONSNAP_SIM_SECRET_PARTNER_CRM",
            ]
        );
    }

    #[test]
    fn exports_sit_next_to_the_output() {
        let at = |output| Scenario::export_location(output, "shop_mp");
        assert_eq!(at("/data/warehouse"), "/data/exports/shop_mp/");
        assert_eq!(at("/data/warehouse/"), "/data/exports/shop_mp/");
        assert_eq!(at("warehouse"), "exports/shop_mp/");
        assert_eq!(
            at("s3://bucket/wechat/prod"),
            "s3://bucket/wechat/exports/shop_mp/"
        );
        assert_eq!(at("s3://bucket"), "s3://bucket/exports/shop_mp/");
    }
}
