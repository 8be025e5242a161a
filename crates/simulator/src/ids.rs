//! Seeded hashing and the simulator's identifiers (OpenID, UnionID, AppID,
//! AppSecret).
//!
//! The simulator must serve up to 10M people without storing a single string,
//! so every identifier is *computed* from a small integer and decoded back in
//! O(1): an OpenID is `o` + a five-character prefix per account (real OpenIDs
//! of one appid share a prefix too) + 22 base64url characters carrying a
//! keyed 128-bit Feistel permutation of the person index and 96 check bits.
//! Decoding inverts the permutation and checks those bits, so an OpenID of
//! another account, a mangled one or a forged one is rejected (WeChat answers
//! `40003 invalid openid`) without any lookup table.

/// splitmix64's finaliser: a fast, well-mixed 64-bit hash step.
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of one value under a key.
pub(crate) const fn hash2(key: u64, x: u64) -> u64 {
    mix(key ^ mix(x))
}

/// A key derived from the seed and a label, so that every purpose (reach,
/// churn, profile, ids of one account, ...) draws independent numbers.
pub(crate) fn derive_key(seed: u64, label: &str) -> u64 {
    label
        .bytes()
        .fold(mix(seed ^ 0x5EED), |h, b| mix(h ^ u64::from(b)))
}

/// A uniform number in [0, 1) from a hash.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

const PREFIX_LEN: usize = 5;
const BODY_LEN: usize = 22;
/// Every observed OpenID and UnionID is 28 characters long.
pub(crate) const ID_LEN: usize = 1 + PREFIX_LEN + BODY_LEN;

/// Encodes person indices as 28-character ids starting with `o` and decodes
/// them back. One codec per account (OpenIDs) plus one for the whole
/// population (UnionIDs).
#[derive(Debug, Clone)]
pub(crate) struct IdCodec {
    prefix: [u8; PREFIX_LEN],
    round_keys: [u64; 4],
    tag: u64,
    check: u32,
    top: u8,
}

impl IdCodec {
    pub(crate) fn new(seed: u64, label: &str) -> IdCodec {
        let key = derive_key(seed, label);
        let mut prefix = [0u8; PREFIX_LEN];
        for (i, slot) in prefix.iter_mut().enumerate() {
            *slot = BASE64URL[(hash2(key, 100 + i as u64) % 64) as usize];
        }
        IdCodec {
            prefix,
            round_keys: [hash2(key, 1), hash2(key, 2), hash2(key, 3), hash2(key, 4)],
            tag: hash2(key, 5),
            check: hash2(key, 6) as u32,
            top: (hash2(key, 7) & 0xF) as u8,
        }
    }

    pub(crate) fn encode(&self, person: u32) -> String {
        let mut hi = self.tag;
        let mut lo = (u64::from(self.check) << 32) | u64::from(person);
        for k in self.round_keys {
            (hi, lo) = (lo, hi ^ mix(lo ^ k));
        }
        let block = (u128::from(hi) << 64) | u128::from(lo);
        let mut id = String::with_capacity(ID_LEN);
        id.push('o');
        for &c in &self.prefix {
            id.push(char::from(c));
        }
        // 132 bits: 4 constant bits on top of the 128-bit block, 6 per char.
        let first = (self.top << 2) | (block >> 126) as u8;
        id.push(char::from(BASE64URL[first as usize]));
        for j in 1..BODY_LEN {
            let shift = 126 - 6 * j;
            id.push(char::from(BASE64URL[((block >> shift) & 0x3F) as usize]));
        }
        id
    }

    /// The person index inside `id`, or `None` when `id` was not made by this
    /// codec (another account's OpenID, a typo, a forgery).
    pub(crate) fn decode(&self, id: &str) -> Option<u32> {
        let bytes = id.as_bytes();
        if bytes.len() != ID_LEN || bytes[0] != b'o' || bytes[1..=PREFIX_LEN] != self.prefix {
            return None;
        }
        let body = &bytes[1 + PREFIX_LEN..];
        let first = base64url_value(body[0])?;
        if first >> 2 != self.top {
            return None;
        }
        let mut block = u128::from(first & 0x3);
        for &c in &body[1..] {
            block = (block << 6) | u128::from(base64url_value(c)?);
        }
        let (mut hi, mut lo) = ((block >> 64) as u64, block as u64);
        for k in self.round_keys.iter().rev() {
            (hi, lo) = (lo ^ mix(hi ^ k), hi);
        }
        (hi == self.tag && (lo >> 32) as u32 == self.check).then_some(lo as u32)
    }
}

fn hex_of(words: &[u64], len: usize) -> String {
    let mut out: String = words.iter().map(|w| format!("{w:016x}")).collect();
    out.truncate(len);
    out
}

/// `wx` + 16 hex characters, as every AppID looks.
pub(crate) fn derived_appid(seed: u64, account_id: &str) -> String {
    let key = derive_key(seed, &format!("appid/{account_id}"));
    format!("wx{}", hex_of(&[mix(key)], 16))
}

/// A 32-hex-character AppSecret, deterministic so that the demo's job file
/// and the tests can be written ahead of time, random-looking so that a test
/// grepping logs for it cannot match by accident.
pub(crate) fn derived_secret(seed: u64, account_id: &str) -> String {
    let key = derive_key(seed, &format!("secret/{account_id}"));
    hex_of(&[hash2(key, 1), hash2(key, 2)], 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_look_like_wechat_ids() {
        let codec = IdCodec::new(7, "openid/brand_oa");
        for person in [0, 1, 2, 9_999, 10_000_000, u32::MAX] {
            let id = codec.encode(person);
            assert_eq!(id.len(), 28);
            assert!(id.starts_with('o'));
            assert!(id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            assert_eq!(codec.decode(&id), Some(person));
        }
    }

    #[test]
    fn ids_of_one_account_share_a_prefix_and_differ_per_account() {
        let brand = IdCodec::new(7, "openid/brand_oa");
        let news = IdCodec::new(7, "openid/news_oa");
        assert_eq!(brand.encode(1)[..6], brand.encode(2)[..6]);
        assert_ne!(brand.encode(1), news.encode(1));
        assert_eq!(news.decode(&brand.encode(1)), None);
    }

    #[test]
    fn mangled_or_forged_ids_are_rejected() {
        let codec = IdCodec::new(7, "openid/brand_oa");
        let id = codec.encode(42);
        for i in 6..28 {
            let mut forged = id.clone().into_bytes();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            assert_eq!(codec.decode(&forged), None, "{forged}");
        }
        assert_eq!(codec.decode(&format!("{id} ")), None);
        assert_eq!(codec.decode(""), None);
        assert_eq!(codec.decode("oPtYgjmUhBel31iEl2hpChYgCfrL"), None);
    }

    #[test]
    fn appids_and_secrets_have_the_real_shapes() {
        let appid = derived_appid(1, "brand_oa");
        assert_eq!(appid.len(), 18);
        assert!(appid.starts_with("wx"));
        let secret = derived_secret(1, "brand_oa");
        assert_eq!(secret.len(), 32);
        assert!(secret.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(secret, derived_secret(1, "news_oa"));
    }
}
