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

/// What `[privacy]` does to a raw table's rows before they are written: the
/// `drop`ped columns removed, then the ids pseudonymized if so configured.
/// Every raw table goes through [`TablePrivacy::apply`] (the derived tables
/// are built from rows that already did); the identity cache only looks ids
/// up through [`TablePrivacy::pseudonymizer`].
#[derive(Debug, Clone, Default)]
pub struct TablePrivacy {
    drop: Vec<String>,
    pseudonymizer: Option<Pseudonymizer>,
}

impl TablePrivacy {
    pub fn for_job(privacy: &crate::job::Privacy) -> Self {
        TablePrivacy {
            drop: privacy.drop.clone(),
            pseudonymizer: Pseudonymizer::for_job(privacy),
        }
    }

    /// The columns removed from every raw table.
    pub fn dropped(&self) -> &[String] {
        &self.drop
    }

    /// Whether ids are written as pseudonyms.
    pub fn pseudonymizes(&self) -> bool {
        self.pseudonymizer.is_some()
    }

    pub fn pseudonymizer(&self) -> Option<&Pseudonymizer> {
        self.pseudonymizer.as_ref()
    }

    /// `frame` as it may be written.
    pub fn apply(&self, mut frame: DataFrame) -> PolarsResult<DataFrame> {
        for name in &self.drop {
            if frame.get_column_index(name).is_some() {
                frame = frame.drop(name)?;
            }
        }
        match &self.pseudonymizer {
            Some(p) => p.frame(frame),
            None => Ok(frame),
        }
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
    fn table_privacy_drops_then_pseudonymizes() {
        let privacy = crate::job::Privacy {
            pseudonymize: true,
            key: Some(Secret::new("k")),
            drop: vec!["remark".to_string()],
        };
        let table = TablePrivacy::for_job(&privacy);
        let df = df!("openid" => ["oA"], "remark" => ["x"]).unwrap();
        let out = table.apply(df).unwrap();
        assert_eq!(out.get_column_names(), ["openid"]);
        let openid = out.column("openid").unwrap().str().unwrap().get(0).unwrap();
        assert_eq!(openid, Pseudonymizer::new(&Secret::new("k")).id("oA"));
        let off = TablePrivacy::for_job(&crate::job::Privacy {
            pseudonymize: false,
            ..privacy
        });
        assert!(!off.pseudonymizes() && off.dropped() == ["remark"]);
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
