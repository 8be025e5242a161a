//! Every WeChat `errcode` the client can meet, classified once, in one table.
//!
//! WeChat answers errors with HTTP 200 and `{"errcode":N,"errmsg":"..."}`
//! (wechat-api.md §0), so what to do about a failed call is decided by the
//! code, not by the HTTP status. [`ERRCODES`] holds one row per code: the
//! [`Action`] the client takes and a reason that tells the operator what they
//! can do about it. The retry loop in `http.rs` reads nothing else; adding a
//! product (WeCom, the third-party platform) means adding rows here.
//!
//! A few codes mean different things in different places, so a row may be
//! limited to a [`Scope`]: on a token endpoint `40001` means "wrong secret"
//! (stop), elsewhere "token superseded" (refresh); on WeCom `45009` is a
//! frequency limit (wait), on Official Accounts the daily quota (stop).

use std::fmt;

/// What the client does about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Transient: retry after an exponential backoff.
    Retry,
    /// Per-minute limit (45011): wait `rate_limit_wait`, then retry.
    WaitRateLimit,
    /// The access token is stale: compare-and-refresh it, then retry.
    RefreshToken,
    /// This account cannot be snapshotted now (quota, permissions, IP
    /// whitelist, credentials, ...); the other accounts of the run go on.
    StopAccount,
    /// A bug on our side (malformed request): stop the run.
    Fatal,
}

impl Action {
    /// Whether the call is tried again.
    pub fn retries(self) -> bool {
        matches!(
            self,
            Action::Retry | Action::WaitRateLimit | Action::RefreshToken
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Retry => "retry",
            Action::WaitRateLimit => "wait for the rate limit",
            Action::RefreshToken => "refresh the token",
            Action::StopAccount => "stop this account",
            Action::Fatal => "fatal",
        })
    }
}

/// Where a row applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every call.
    Any,
    /// Calls that fetch a token (`stable_token`, `gettoken`, component tokens).
    TokenEndpoint,
    /// Calls to the WeCom host.
    WeCom,
}

/// What kind of call failed: selects the rows of a [`Scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallKind {
    /// The call fetches an access token.
    pub token_endpoint: bool,
    /// The call goes to the WeCom host.
    pub wecom: bool,
}

impl CallKind {
    /// An Official Account / Open Platform data call.
    pub const DATA: CallKind = CallKind {
        token_endpoint: false,
        wecom: false,
    };
    /// An Official Account / Open Platform token call.
    pub const TOKEN: CallKind = CallKind {
        token_endpoint: true,
        wecom: false,
    };
    /// A WeCom data call.
    pub const WECOM_DATA: CallKind = CallKind {
        token_endpoint: false,
        wecom: true,
    };
    /// A WeCom token call (`gettoken`).
    pub const WECOM_TOKEN: CallKind = CallKind {
        token_endpoint: true,
        wecom: true,
    };

    fn matches(self, scope: Scope) -> bool {
        match scope {
            Scope::Any => true,
            Scope::TokenEndpoint => self.token_endpoint,
            Scope::WeCom => self.wecom,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrCodeRow {
    pub code: i64,
    pub scope: Scope,
    pub action: Action,
    /// What the operator can do; shown after the errmsg in every error.
    pub reason: &'static str,
}

const fn row(code: i64, scope: Scope, action: Action, reason: &'static str) -> ErrCodeRow {
    ErrCodeRow {
        code,
        scope,
        action,
        reason,
    }
}

use Action::{Fatal, RefreshToken, Retry, StopAccount, WaitRateLimit};
use Scope::{Any, TokenEndpoint, WeCom};

/// Reason given for a code that is not in the table (the action is
/// [`Action::StopAccount`]: a code we do not know is not worth retrying, and
/// not a reason to stop the other accounts).
pub const UNKNOWN_ERRCODE: &str = "unknown errcode";

/// The table. Scoped rows come before the `Any` row of the same code: the
/// first row whose scope matches wins.
#[rustfmt::skip]
pub const ERRCODES: &[ErrCodeRow] = &[
    // --- transient ---------------------------------------------------------
    row(-1, Any, Retry, "WeChat is busy (system error); retried with backoff"),
    row(45011, Any, WaitRateLimit, "per-minute API limit reached; waiting rate_limit_wait before retrying (lower requests_per_second if this repeats)"),
    row(45033, WeCom, Retry, "WeCom refused concurrent calls (api concurrent out of limit); retried with backoff (lower concurrency if this repeats)"),
    // --- token endpoint: the credentials themselves are wrong ---------------
    row(40001, TokenEndpoint, StopAccount, "the secret is wrong (or was reset in the console): update this account's secret in the job file"),
    row(40014, TokenEndpoint, StopAccount, "the token endpoint refused the credentials: check this account's appid and secret"),
    row(42001, TokenEndpoint, StopAccount, "the token endpoint refused the credentials: check this account's appid and secret"),
    row(41001, TokenEndpoint, StopAccount, "the token endpoint refused the credentials: check this account's appid and secret"),
    // --- stale token: refresh and retry ------------------------------------
    row(40001, Any, RefreshToken, "access token invalid or superseded (another process fetched a new one with cgi-bin/token); refreshing it"),
    row(40014, Any, RefreshToken, "access token malformed or not this account's; refreshing it"),
    row(42001, Any, RefreshToken, "access token expired; refreshing it"),
    row(41001, Any, RefreshToken, "access token missing from the request; refreshing it"),
    // --- this account fails, the run goes on -------------------------------
    row(45009, WeCom, WaitRateLimit, "WeCom frequency limit (per corp/IP per minute or hour); waiting rate_limit_wait before retrying"),
    row(45009, Any, StopAccount, "the daily API quota of this account is used up: re-run tomorrow, raise it, or reset it with clear_quota in the MP console (10 resets a month)"),
    row(48001, Any, StopAccount, "the account lacks the user-management permission for this API (verified service/subscription accounts only; third-party platforms need permission set 2 or 100)"),
    row(48002, Any, StopAccount, "WeCom API forbidden: grant the app customer-contact permission (or use the customer-contact secret)"),
    row(40164, Any, StopAccount, "add this machine's egress IP to the account's IP whitelist in the MP console"),
    row(60020, Any, StopAccount, "add this machine's egress IP to the app's trusted IP list in the WeCom admin console"),
    row(61004, Any, StopAccount, "add this machine's egress IP to the third-party platform's IP whitelist"),
    row(89501, Any, StopAccount, "an administrator must confirm calls from this IP (check the notification in the MP console or WeChat)"),
    row(89503, Any, StopAccount, "an administrator must confirm calls from this IP (check the notification in the MP console or WeChat)"),
    row(89506, Any, StopAccount, "an administrator rejected calls from this IP; ask them to allow it, then retry after 24 hours"),
    row(89507, Any, StopAccount, "an administrator rejected calls from this IP; ask them to allow it, then retry after 1 hour"),
    row(40013, Any, StopAccount, "invalid appid (or corpid): check this account's appid in the job file"),
    row(40125, Any, StopAccount, "invalid AppSecret: update this account's secret (MP console > Settings and Development > Basic configuration)"),
    row(40091, WeCom, StopAccount, "invalid WeCom secret: use the customer-contact secret (or an app allowed to call customer-contact APIs)"),
    row(41002, Any, StopAccount, "the appid is missing from the token request: check this account's appid"),
    row(41004, Any, StopAccount, "the secret is missing from the token request: check this account's secret"),
    row(40003, Any, StopAccount, "an OpenID/userid in the request does not belong to this account or is malformed; one bad id fails the whole batch"),
    row(40096, WeCom, StopAccount, "invalid external_userid: it does not belong to this corp/app"),
    row(43104, Any, StopAccount, "this appid has no permission for the OpenID/appid pair (Mini Program APIs)"),
    // 50001/50002 name "the user" of the call: on the token endpoints of
    // the third-party platform that user is the platform itself.
    row(50001, TokenEndpoint, StopAccount, "the third-party platform may not call this (not fully released, or the API is outside its permission sets): check the Open Platform console"),
    row(50002, TokenEndpoint, StopAccount, "the third-party platform (or the account it manages) is limited by WeChat: check the Open Platform console's notices"),
    row(50001, Any, StopAccount, "this account may not call the API (unverified, or the permission was not granted): check the MP console"),
    row(50002, Any, StopAccount, "this account is limited (banned) by WeChat: check the MP console's notices"),
    // WeCom.
    row(40058, WeCom, StopAccount, "a list in the request is longer than WeCom accepts (userid_list: 64 in practice, though the doc says 100); the client shrinks the list and retries before this stops the account"),
    row(60111, WeCom, StopAccount, "userid not found: a staff member left the company or is outside the app's visibility since the staff list was read; the client asks again without them"),
    row(40082, WeCom, StopAccount, "invalid suite_token: check suite_id and suite_secret (third-party app)"),
    row(40083, WeCom, StopAccount, "invalid suite_id: check auth.suite_id (the provider's app id in the WeCom provider console)"),
    row(40084, WeCom, StopAccount, "invalid permanent_code: the corp may have uninstalled the app; put its current permanent code in auth.permanent_code"),
    row(40085, WeCom, StopAccount, "invalid suite_ticket: point auth.suite_ticket at where the provider's callback writes the ticket WeCom pushes every 10 minutes"),
    row(40050, WeCom, StopAccount, "chat_id not found: the customer group chat was dismissed since it was listed; groupchat/get reads it as gone"),
    row(845003, WeCom, StopAccount, "unionid and corp subject not match: this UnionID is of another subject than the corp; idconvert leaves that person unlinked"),
    row(61003, Any, StopAccount, "the account has not authorized the third-party platform: re-authorize it"),
    row(61005, Any, StopAccount, "component_verify_ticket expired: check that WeChat's 10-minute ticket pushes reach the platform"),
    row(61006, Any, StopAccount, "component_verify_ticket invalid: supply the latest ticket pushed by WeChat"),
    row(61007, Any, StopAccount, "the account did not grant this permission set to the third-party platform (needs set 2 or 100): re-authorize with it"),
    row(61011, Any, StopAccount, "invalid component appid: check component_appid"),
    row(61023, Any, StopAccount, "the authorizer refresh_token is stale or not this account's: put the current one in this account's auth.refresh_token (the platform's api_get_authorizer_list returns it), or have the account's owner authorize the platform again"),
    row(61500, Any, StopAccount, "datacube: a date is not in YYYY-MM-DD form (a bug if unionsnap sent it)"),
    row(61501, Any, StopAccount, "datacube: the dates are out of range: WeChat's statistics cover past days only (not today), at most 7 days a call for user counts; the reconciliation row notes it"),
    row(61024, Any, StopAccount, "a third-party platform appid cannot use cgi-bin/token: configure this account with auth = { component_appid, ... }"),
    row(76022, Any, StopAccount, "wrong token type for this API: use the account's own (or authorizer) token"),
    row(89002, Any, StopAccount, "the account is not bound to any Open Platform account: bind it (UnionIDs are unavailable until then)"),
    row(60011, Any, StopAccount, "the member is outside the app's visibility: widen the app's visible range in the WeCom admin console"),
    row(84061, WeCom, StopAccount, "no customer relation between the member and the contact (also seen briefly right after an add event); batch/get_by_user reads it as no contacts"),
    row(84074, Any, StopAccount, "the app has no external-contact permission: enable customer contact for it in the WeCom admin console"),
    row(701008, Any, StopAccount, "none of the requested members has an interop licence (unconfirmed meaning)"),
    // --- our bug: stop the run ---------------------------------------------
    row(40002, Any, Fatal, "invalid grant_type: the client sent a malformed token request (bug)"),
    row(40032, Any, StopAccount, "invalid openid list size: WeChat refused a batch (seen once for exactly 100 OpenIDs); the client splits the batch and retries before this stops the account"),
    row(44002, Any, Fatal, "empty POST body: the client sent no JSON body (bug)"),
    row(47001, Any, Fatal, "data format error: the client sent a body that is not JSON (bug)"),
    row(76003, Any, Fatal, "cgi_path must start with '/' and omit the host (bug)"),
    row(76021, Any, Fatal, "unknown cgi_path for quota/get (bug)"),
];

/// The decision for one errcode: what to do and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub action: Action,
    pub reason: &'static str,
}

/// Looks `errcode` up in [`ERRCODES`] for a call of `kind`. Unknown codes
/// stop the account with [`UNKNOWN_ERRCODE`].
pub fn classify(errcode: i64, kind: CallKind) -> Classification {
    ERRCODES
        .iter()
        .find(|row| row.code == errcode && kind.matches(row.scope))
        .map(|row| Classification {
            action: row.action,
            reason: row.reason,
        })
        .unwrap_or(Classification {
            action: Action::StopAccount,
            reason: UNKNOWN_ERRCODE,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every code of wechat-api.md §2, with the action the brief demands.
    const SECTION_2: &[(i64, Action)] = &[
        (-1, Retry),
        (40001, RefreshToken),
        (40014, RefreshToken),
        (42001, RefreshToken),
        (40003, StopAccount),
        (40013, StopAccount),
        (40032, StopAccount),
        (40164, StopAccount),
        (43104, StopAccount),
        (45009, StopAccount),
        (45011, WaitRateLimit),
        (47001, Fatal),
        (48001, StopAccount),
        (50001, StopAccount),
        (50002, StopAccount),
        (61003, StopAccount),
        (61007, StopAccount),
        (61023, StopAccount),
        (61024, StopAccount),
        (89002, StopAccount),
    ];

    /// The Official Account codes of §1 that §2 does not list.
    const SECTION_1: &[i64] = &[
        40002, 40125, 41002, 41004, 89501, 89503, 89506, 89507, 76003, 76021, 76022,
    ];

    /// WeCom codes of §4.8 (and 40091 of §4.1).
    const SECTION_4_8: &[i64] = &[
        -1, 40001, 40003, 40013, 40014, 42001, 41001, 40096, 45009, 45033, 48002, 60011, 60020,
        84061, 84074, 701008, 40091, 40058, 60111, 845003,
    ];

    fn is_listed(code: i64) -> bool {
        ERRCODES.iter().any(|row| row.code == code)
    }

    #[test]
    fn every_section_2_code_has_its_documented_action() {
        for &(code, action) in SECTION_2 {
            assert!(is_listed(code), "{code} missing from the table");
            assert_eq!(classify(code, CallKind::DATA).action, action, "{code}");
        }
    }

    #[test]
    fn every_section_1_and_wecom_code_is_listed() {
        for &code in SECTION_1.iter().chain(SECTION_4_8) {
            assert!(is_listed(code), "{code} missing from the table");
        }
    }

    #[test]
    fn token_codes_on_the_token_endpoint_mean_wrong_credentials() {
        for code in [40001, 40014, 42001, 41001, 40125, 40013] {
            for kind in [CallKind::TOKEN, CallKind::WECOM_TOKEN] {
                assert_eq!(classify(code, kind).action, StopAccount, "{code}");
            }
        }
        assert!(classify(40001, CallKind::TOKEN).reason.contains("secret"));
    }

    #[test]
    fn token_codes_on_data_calls_refresh_the_token() {
        for code in [40001, 40014, 42001, 41001] {
            for kind in [CallKind::DATA, CallKind::WECOM_DATA] {
                assert_eq!(classify(code, kind).action, RefreshToken, "{code}");
            }
        }
    }

    #[test]
    fn wecom_45009_is_a_frequency_limit_not_a_daily_quota() {
        assert_eq!(classify(45009, CallKind::WECOM_DATA).action, WaitRateLimit);
        assert_eq!(classify(45009, CallKind::DATA).action, StopAccount);
    }

    #[test]
    fn unknown_codes_stop_the_account() {
        let verdict = classify(99_999, CallKind::DATA);
        assert_eq!(verdict.action, StopAccount);
        assert_eq!(verdict.reason, UNKNOWN_ERRCODE);
    }

    #[test]
    fn ip_whitelist_reason_tells_the_operator_what_to_do() {
        let reason = classify(40164, CallKind::DATA).reason;
        assert!(reason.contains("egress IP") && reason.contains("whitelist"));
    }

    #[test]
    fn rows_are_unique_and_explained() {
        let mut seen = HashSet::new();
        for row in ERRCODES {
            assert!(seen.insert((row.code, row.scope)), "duplicate {row:?}");
            assert!(!row.reason.is_empty(), "{} has no reason", row.code);
        }
    }

    #[test]
    fn scoped_rows_come_before_the_general_row_of_their_code() {
        for (i, row) in ERRCODES.iter().enumerate() {
            if row.scope == Any {
                let later_scoped = ERRCODES[i + 1..]
                    .iter()
                    .any(|later| later.code == row.code && later.scope != Any);
                assert!(!later_scoped, "{} has a scoped row after Any", row.code);
            }
        }
    }
}
