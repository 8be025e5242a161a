//! A WeChat answer's body: the status, the errcode envelope (errcode as a
//! number or a string, absent on success bodies: wechat-api.md §0), then
//! the typed body — what the client does with every answer. Pure functions:
//! `decode`'s entry points, the property tests and the fuzz targets feed
//! them hostile input.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::errcode::{Action, CallKind};
use super::error::{scrub, Failure};

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// A failure the client classifies and may retry (HTTP status, non-JSON
    /// body, an errcode).
    Failure(Failure),
    /// Valid JSON without errcode, but not of the expected shape.
    Shape(String),
}

impl BodyError {
    /// What the client does about it for a call of `kind`.
    pub fn action(&self, kind: CallKind) -> Action {
        match self {
            BodyError::Failure(failure) => failure.classify(kind).action,
            // The account stops: retrying cannot change what WeChat sends.
            BodyError::Shape(_) => Action::StopAccount,
        }
    }
}

/// Status, envelope, then the typed body.
pub fn decode_body<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, BodyError> {
    if !(200..300).contains(&status) {
        return Err(BodyError::Failure(Failure::Http(status)));
    }
    parse_body(body, &[])
}

/// The body of a 2xx answer: the errcode envelope (`sensitive` is scrubbed
/// from its errmsg), then the typed body — what the client does with every
/// answer.
///
/// One JSON pass instead of two where that provably gives the same result: a
/// JSON object whose bytes hold neither `"errcode"` nor a `\u` escape has no
/// errcode key at any depth (the key's letters can only be written plainly
/// or as `\u` escapes), so the envelope check cannot report one. That is
/// every data body (batchget, user/get); anything else, and any body the
/// typed decode refuses, takes the two passes and is classified as before.
/// (A property test holds the two ways equal for every response type.)
pub fn parse_body<T: DeserializeOwned>(body: &[u8], sensitive: &[&str]) -> Result<T, BodyError> {
    if cannot_carry_errcode(body) {
        if let Ok(value) = from_json(body) {
            return Ok(value);
        }
    }
    check_envelope(body, sensitive).map_err(BodyError::Failure)?;
    from_json(body).map_err(|err| BodyError::Shape(shape_error(&err)))
}

/// `body` decoded by serde_json, its UTF-8 checked once, whole: read as
/// bytes, serde_json checks every string it meets on its own, which took a
/// sixth of the decoding of a batchget answer (~2,700 short keys and values).
/// Bytes that are not UTF-8 are read as bytes, for serde_json's own error;
/// `wechat::tests::decode_props` holds both ways equal, values and errors.
pub(crate) fn from_json<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// True when `body` is a JSON object (by its first byte) without the bytes
/// `"errcode"` or `\u`.
fn cannot_carry_errcode(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && memchr::memmem::find(body, b"\"errcode\"").is_none()
        && memchr::memmem::find(body, b"\\u").is_none()
}

/// The fields every WeChat body may carry. Tolerant: errcode as a number or
/// a string, both absent on MP success bodies (wechat-api.md §0).
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errcode: Option<Value>,
    #[serde(default)]
    errmsg: Option<Value>,
}

pub(crate) fn check_envelope(body: &[u8], sensitive: &[&str]) -> Result<(), Failure> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|err| Failure::Decode(describe_non_json(&err, body)))?;
    let errcode = match &envelope.errcode {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    match errcode {
        None | Some(0) => Ok(()),
        Some(errcode) => {
            let errmsg = match envelope.errmsg {
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            Err(Failure::ErrCode {
                errcode,
                errmsg: scrub(&errmsg, sensitive),
            })
        }
    }
}

/// Says what kind of non-JSON arrived, without quoting it.
fn describe_non_json(err: &serde_json::Error, body: &[u8]) -> String {
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    match start {
        None => "empty body".to_string(),
        Some(b'<') => format!(
            "an HTML/XML page of {} bytes (an error page of WeChat or a proxy?)",
            body.len()
        ),
        Some(_) if err.is_eof() => format!("truncated JSON after {} bytes", body.len()),
        Some(_) => format!(
            "syntax error at line {} column {}",
            err.line(),
            err.column()
        ),
    }
}

/// Where a JSON body missed the documented shape. serde's message may quote
/// values (OpenIDs, tokens), so only the missing-field form is kept.
pub(crate) fn shape_error(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let location = format!("line {} column {}", err.line(), err.column());
    if message.starts_with("missing field") {
        message
    } else {
        format!("unexpected value at {location}")
    }
}
