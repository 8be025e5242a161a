//! Tolerant serde helpers for WeChat response fields.
//!
//! WeChat's JSON drifts: fields retired in 2021 still arrive empty
//! (`"nickname":""`), optional strings arrive as `""` instead of being
//! absent, some SDK fixtures show numbers as strings, and keys are sometimes
//! `null`. These helpers turn all of that into plain Rust values so that one
//! odd row never fails a whole batch.

use serde::{Deserialize, Deserializer};

/// A JSON number, or a string that should hold one.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberLike {
    Int(i64),
    Float(f64),
    Text(String),
}

impl NumberLike {
    fn to_i64(&self) -> Option<i64> {
        match self {
            NumberLike::Int(n) => Some(*n),
            // Float-typed integers ("1.0") only: a fraction is not an id.
            NumberLike::Float(x) if x.fract() == 0.0 => Some(*x as i64),
            NumberLike::Float(_) => None,
            NumberLike::Text(text) => text.trim().parse().ok(),
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
    fn id_lists_tolerate_null_and_strings() {
        assert_eq!(sample(json!({"ids": [2, "128"]})).ids, vec![2, 128]);
        assert!(sample(json!({"ids": null})).ids.is_empty());
    }
}
