//! Tolerant serde helpers for WeChat response fields.
//!
//! WeChat's JSON drifts: fields retired in 2021 still arrive empty
//! (`"nickname":""`), optional strings arrive as `""` instead of being
//! absent, some SDK fixtures show numbers as strings, and keys are sometimes
//! `null`. These helpers turn all of that into plain Rust values so that one
//! odd row never fails a whole batch.

use std::fmt;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer};

/// A JSON number, or a string that should hold one. Read by a visitor (an
/// untagged enum would buffer every value first: a few percent of the CPU of
/// a crawl, where every follower has several such fields).
enum NumberLike {
    Int(i64),
    Float(f64),
    Text(Option<i64>),
}

impl<'de> Deserialize<'de> for NumberLike {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Lenient;

        impl Visitor<'_> for Lenient {
            type Value = NumberLike;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string holding one")
            }

            fn visit_i64<E>(self, n: i64) -> Result<NumberLike, E> {
                Ok(NumberLike::Int(n))
            }

            fn visit_u64<E>(self, n: u64) -> Result<NumberLike, E> {
                Ok(match i64::try_from(n) {
                    Ok(n) => NumberLike::Int(n),
                    Err(_) => NumberLike::Float(n as f64),
                })
            }

            fn visit_f64<E>(self, x: f64) -> Result<NumberLike, E> {
                Ok(NumberLike::Float(x))
            }

            fn visit_str<E>(self, text: &str) -> Result<NumberLike, E> {
                Ok(NumberLike::Text(text.trim().parse().ok()))
            }
        }

        deserializer.deserialize_any(Lenient)
    }
}

impl NumberLike {
    fn to_i64(&self) -> Option<i64> {
        match self {
            NumberLike::Int(n) => Some(*n),
            // Float-typed integers ("1.0") only: a fraction is not an id.
            NumberLike::Float(x) if x.fract() == 0.0 => Some(*x as i64),
            NumberLike::Float(_) => None,
            NumberLike::Text(parsed) => *parsed,
        }
    }
}

/// `Option<String>` where `""` and `null` mean absent.
pub(crate) fn nonempty_string<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value.filter(|text| !text.is_empty()))
}

/// `Option<i64>` from a number, a numeric string, `""` or `null`.
pub(crate) fn lenient_opt_i64<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<NumberLike>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(NumberLike::to_i64))
}

/// `i32` from a number or a numeric string; `null` and junk become 0.
pub(crate) fn lenient_i32<'de, D>(deserializer: D) -> Result<i32, D::Error>
where
    D: Deserializer<'de>,
{
    let value = lenient_opt_i64(deserializer)?;
    Ok(value.and_then(|n| i32::try_from(n).ok()).unwrap_or(0))
}

/// `u64` from a number or a numeric string; `null`, negatives and junk become 0.
pub(crate) fn lenient_u64<'de, D>(deserializer: D) -> Result<u64, D::Error>
where
    D: Deserializer<'de>,
{
    let value = lenient_opt_i64(deserializer)?;
    Ok(value.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

/// A list of `i32` ids; `null` is empty, elements that are not ids are skipped.
pub(crate) fn lenient_i32_list<'de, D>(deserializer: D) -> Result<Vec<i32>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<Vec<NumberLike>>::deserialize(deserializer)?;
    Ok(value
        .unwrap_or_default()
        .iter()
        .filter_map(NumberLike::to_i64)
        .filter_map(|n| i32::try_from(n).ok())
        .collect())
}

/// A list of strings; `null` is empty.
pub(crate) fn string_list<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct Sample {
        #[serde(default, deserialize_with = "nonempty_string")]
        text: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_i64")]
        number: Option<i64>,
        #[serde(default, deserialize_with = "lenient_i32_list")]
        ids: Vec<i32>,
    }

    fn sample(value: serde_json::Value) -> Sample {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn empty_and_null_strings_are_absent() {
        assert_eq!(sample(json!({"text": ""})).text, None);
        assert_eq!(sample(json!({"text": null})).text, None);
        assert_eq!(sample(json!({})).text, None);
        assert_eq!(sample(json!({"text": "x"})).text.as_deref(), Some("x"));
    }

    #[test]
    fn numbers_may_arrive_as_strings() {
        assert_eq!(
            sample(json!({"number": 1700000000})).number,
            Some(1700000000)
        );
        assert_eq!(
            sample(json!({"number": "1700000000"})).number,
            Some(1700000000)
        );
        assert_eq!(sample(json!({"number": ""})).number, None);
        assert_eq!(sample(json!({"number": null})).number, None);
    }

    #[test]
    fn numbers_read_from_bytes_as_the_client_reads_them() {
        let number = |body: &str| -> Result<Option<i64>, String> {
            serde_json::from_str::<Sample>(body)
                .map(|s| s.number)
                .map_err(|e| e.to_string())
        };
        assert_eq!(number(r#"{"number": " 42 "}"#), Ok(Some(42)));
        assert_eq!(number(r#"{"number": "4x"}"#), Ok(None));
        assert_eq!(number(r#"{"number": -7}"#), Ok(Some(-7)));
        assert_eq!(number(r#"{"number": 3.0}"#), Ok(Some(3)));
        assert_eq!(number(r#"{"number": 3.5}"#), Ok(None));
        // Past i64: read as a float, saturated.
        assert_eq!(
            number(r#"{"number": 18446744073709551615}"#),
            Ok(Some(i64::MAX))
        );
        assert_eq!(number(r#"{"number": "\u0034\u0032"}"#), Ok(Some(42)));
        // Neither a number nor a string: the body is not of the documented shape.
        assert!(number(r#"{"number": true}"#).is_err());
        assert!(number(r#"{"number": [1]}"#).is_err());
    }

    #[test]
    fn id_lists_tolerate_null_and_strings() {
        assert_eq!(sample(json!({"ids": [2, "128"]})).ids, vec![2, 128]);
        assert!(sample(json!({"ids": null})).ids.is_empty());
    }
}
