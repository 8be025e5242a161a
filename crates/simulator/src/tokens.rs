//! Access tokens as WeChat hands them out: the classic `cgi-bin/token` (each
//! call knocks out the previous token) and `cgi-bin/stable_token` (the same
//! token while it is valid), kept apart as WeChat keeps them apart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;

/// Which endpoint issued a token. The two families never invalidate each
/// other (wechat-api.md §1.2: "fully isolated").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TokenKind {
    Classic,
    Stable,
}

#[derive(Debug, Clone)]
struct TokenRecord {
    account: usize,
    expires_at: Instant,
    invalidated: bool,
}

/// What a presented `access_token` is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid(usize),
    /// No `access_token` parameter: `41001`.
    Missing,
    /// Unknown, superseded or invalidated: `40001`.
    Invalid,
    /// Past its lifetime: `42001`.
    Expired,
}

/// An issued token and its remaining lifetime in seconds (`expires_in`).
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
    /// Minted by this call (not a repeat of the current stable token).
    pub(crate) new: bool,
}

/// Every token issued so far (a few per account per run; never pruned).
#[derive(Debug)]
pub(crate) struct TokenStore {
    ttl: Duration,
    records: HashMap<String, TokenRecord>,
    current: HashMap<(usize, TokenKind), String>,
}

const TOKEN_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// "SIMTOK" + 130 random characters: as long as real tokens (~136) and easy
/// to grep for in logs that must not contain it.
fn new_token_value() -> String {
    let mut rng = rand::rng();
    let mut token = String::with_capacity(136);
    token.push_str("SIMTOK");
    for _ in 0..130 {
        token.push(char::from(TOKEN_ALPHABET[rng.random_range(0..64)]));
    }
    token
}

fn whole_seconds_left(expires_at: Instant, now: Instant) -> u64 {
    let left = expires_at.saturating_duration_since(now);
    left.as_millis().div_ceil(1000) as u64
}

impl TokenStore {
    pub(crate) fn new(ttl: Duration) -> TokenStore {
        TokenStore {
            ttl,
            records: HashMap::new(),
            current: HashMap::new(),
        }
    }

    fn issue(&mut self, account: usize, kind: TokenKind, now: Instant) -> Issued {
        let access_token = new_token_value();
        self.records.insert(
            access_token.clone(),
            TokenRecord {
                account,
                expires_at: now + self.ttl,
                invalidated: false,
            },
        );
        self.current.insert((account, kind), access_token.clone());
        Issued {
            access_token,
            expires_in: whole_seconds_left(now + self.ttl, now),
            new: true,
        }
    }

    fn current_record(&self, account: usize, kind: TokenKind) -> Option<(&String, &TokenRecord)> {
        let token = self.current.get(&(account, kind))?;
        Some((token, self.records.get(token)?))
    }

    /// `cgi-bin/token`: a new token on every call; the previous classic token
    /// of the account stops working at once. (Real WeChat keeps it usable for
    /// about five minutes; dropping it at once is the harsher test.)
    pub(crate) fn issue_classic(&mut self, account: usize) -> Issued {
        if let Some(previous) = self.current.get(&(account, TokenKind::Classic)) {
            if let Some(record) = self.records.get_mut(previous) {
                record.invalidated = true;
            }
        }
        self.issue(account, TokenKind::Classic, Instant::now())
    }

    /// `cgi-bin/stable_token`: the current token with its remaining lifetime
    /// while it has more than 1/24 of its lifetime left (300 s of 7200 s,
    /// when WeChat rotates it); otherwise a new one, the old one staying
    /// valid until it expires. `force_refresh` invalidates the old one now.
    pub(crate) fn issue_stable(&mut self, account: usize, force_refresh: bool) -> Issued {
        let now = Instant::now();
        let rotate_before = self.ttl / 24;
        if let Some((token, record)) = self.current_record(account, TokenKind::Stable) {
            let left = record.expires_at.saturating_duration_since(now);
            if !force_refresh && !record.invalidated && left > rotate_before {
                return Issued {
                    access_token: token.clone(),
                    expires_in: whole_seconds_left(record.expires_at, now),
                    new: false,
                };
            }
            if force_refresh {
                let token = token.clone();
                if let Some(record) = self.records.get_mut(&token) {
                    record.invalidated = true;
                }
            }
        }
        self.issue(account, TokenKind::Stable, now)
    }

    pub(crate) fn check(&self, access_token: Option<&str>) -> TokenCheck {
        let Some(access_token) = access_token.filter(|t| !t.is_empty()) else {
            return TokenCheck::Missing;
        };
        match self.records.get(access_token) {
            None => TokenCheck::Invalid,
            Some(record) if record.invalidated => TokenCheck::Invalid,
            Some(record) if Instant::now() >= record.expires_at => TokenCheck::Expired,
            Some(record) => TokenCheck::Valid(record.account),
        }
    }

    /// Knocks a token out, as another process fetching a classic token does.
    /// Every token ever issued (for tests that grep outputs for leaks).
    pub(crate) fn all_issued(&self) -> Vec<String> {
        let mut all: Vec<String> = self.records.keys().cloned().collect();
        all.sort();
        all
    }

    pub(crate) fn invalidate(&mut self, access_token: &str) {
        if let Some(record) = self.records.get_mut(access_token) {
            record.invalidated = true;
        }
    }

    /// Ends a token's life now (WeChat may expire tokens early).
    pub(crate) fn expire(&mut self, access_token: &str) {
        if let Some(record) = self.records.get_mut(access_token) {
            record.expires_at = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_tokens_supersede_each_other() {
        let mut store = TokenStore::new(Duration::from_secs(7200));
        let first = store.issue_classic(0);
        let second = store.issue_classic(0);
        assert_ne!(first.access_token, second.access_token);
        assert_eq!(store.check(Some(&first.access_token)), TokenCheck::Invalid);
        assert_eq!(
            store.check(Some(&second.access_token)),
            TokenCheck::Valid(0)
        );
        assert_eq!(first.access_token.len(), 136);
    }

    #[test]
    fn stable_tokens_repeat_until_forced_and_ignore_classic_ones() {
        let mut store = TokenStore::new(Duration::from_secs(7200));
        let stable = store.issue_stable(1, false);
        store.issue_classic(1);
        let again = store.issue_stable(1, false);
        assert_eq!(stable.access_token, again.access_token);
        assert!(again.expires_in <= 7200 && again.expires_in > 7000);
        let forced = store.issue_stable(1, true);
        assert_ne!(forced.access_token, stable.access_token);
        assert_eq!(store.check(Some(&stable.access_token)), TokenCheck::Invalid);
    }

    #[test]
    fn expired_and_missing_tokens_are_told_apart() {
        let mut store = TokenStore::new(Duration::from_secs(7200));
        let token = store.issue_stable(0, false).access_token;
        store.expire(&token);
        assert_eq!(store.check(Some(&token)), TokenCheck::Expired);
        assert_eq!(store.check(None), TokenCheck::Missing);
        assert_eq!(store.check(Some("")), TokenCheck::Missing);
        assert_eq!(store.check(Some("nope")), TokenCheck::Invalid);
        let renewed = store.issue_stable(0, false).access_token;
        assert_ne!(renewed, token);
    }
}
