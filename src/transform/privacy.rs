//! `privacy.pseudonymize`: every openid, unionid and external_userid is
//! replaced by its HMAC-SHA256 under the job's key before anything is written.
//!
//! The HMAC of one UnionID is the same in every account and on every day, so
//! joins, counts, overlaps and changes are unchanged; without the key the
//! values cannot be turned back into WeChat ids, nor matched against ids
//! hashed under another key. Values are written as 64 lowercase hex digits.

use hmac::{Hmac, KeyInit, Mac};
use polars::prelude::*;
use sha2::Sha256;

use crate::secret::Secret;

/// Columns holding WeChat ids of people, in every table where they appear.
pub const ID_COLUMNS: [&str; 3] = ["openid", "unionid", "external_userid"];

/// Pseudonymizes ids with the job's key.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer([REDACTED key])")
    }
}

impl Pseudonymizer {
    pub fn new(key: &Secret) -> Self {
        // HMAC takes keys of any length; this cannot fail.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        Pseudonymizer { mac }
    }

    /// The job's pseudonymizer, when `privacy.pseudonymize` is on.
    pub fn for_job(privacy: &crate::job::Privacy) -> Option<Self> {
        privacy
            .key
            .as_ref()
            .filter(|_| privacy.pseudonymize)
            .map(Pseudonymizer::new)
    }

    /// The pseudonym of one id.
    pub fn id(&self, raw: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(raw.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        for byte in digest.iter() {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// `frame` with every column of [`ID_COLUMNS`] it has pseudonymized.
    pub fn frame(&self, mut frame: DataFrame) -> PolarsResult<DataFrame> {
        for name in ID_COLUMNS {
            if frame.get_column_index(name).is_none() {
                continue;
            }
            let hashed: StringChunked = frame
                .column(name)?
                .str()?
                .iter()
                .map(|value| value.map(|v| self.id(v)))
                .collect();
            frame.with_column(hashed.with_name(name.into()).into_column())?;
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_id_gets_one_pseudonym_under_one_key() {
        let p = Pseudonymizer::new(&Secret::new("k1"));
        let q = Pseudonymizer::new(&Secret::new("k2"));
        assert_eq!(p.id("oUnion"), p.id("oUnion"));
        assert_ne!(p.id("oUnion"), q.id("oUnion"));
        assert_ne!(p.id("oUnion"), p.id("oUnion2"));
        assert_eq!(p.id("oUnion").len(), 64);
        // RFC 4231 test case 2.
        let rfc = Pseudonymizer::new(&Secret::new("Jefe"));
        assert_eq!(
            rfc.id("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn frames_keep_nulls_and_other_columns() {
        let p = Pseudonymizer::new(&Secret::new("k"));
        let df =
            df!("openid" => ["oA", "oB"], "unionid" => [Some("oU"), None], "remark" => ["x", "y"])
                .unwrap();
        let out = p.frame(df).unwrap();
        let unionid: Vec<Option<&str>> = out
            .column("unionid")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(unionid[1], None);
        assert_eq!(unionid[0].map(str::len), Some(64));
        assert_eq!(
            out.column("remark").unwrap().str().unwrap().get(0),
            Some("x")
        );
    }
}
