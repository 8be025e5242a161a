//! The three export formats, read strictly: CSV with a header (RFC 4180:
//! quoted fields, doubled quotes, CRLF or LF), NDJSON (one JSON object per
//! line) and Parquet. Every row becomes an [`AppUser`] with its location, or
//! the file fails with the line (row) and the reason.

use std::io::Cursor;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use polars::prelude::*;
use serde_json::Value;

use super::{AppUser, Position, RowLocation};

/// A failure: (where, why).
pub(super) struct FormatError(pub String, pub String);

type Rows = Vec<(AppUser, RowLocation)>;

/// The format of an export file, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
    Parquet,
}

impl Format {
    /// `.csv`; `.ndjson`, `.jsonl` or `.json`; `.parquet` (any case).
    pub fn of(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, ext)| ext)?;
        match ext {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// The extension files of this format are written with.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
        }
    }
}

pub(super) fn parse(format: Format, file: &str, bytes: bytes::Bytes) -> Result<Rows, FormatError> {
    match format {
        Format::Csv => csv(file, text(file, &bytes)?),
        Format::Ndjson => ndjson(file, text(file, &bytes)?),
        Format::Parquet => parquet(file, bytes),
    }
}

const COLUMNS_HELP: &str =
    "an export has the columns openid, unionid (empty for none) and optionally first_seen";

/// The file as UTF-8 text without a byte-order mark; anything else is
/// named with the line of the first bad byte.
fn text<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, FormatError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(FormatError(
            format!("{file}:1"),
            "bad encoding: the file is UTF-16; export it as UTF-8".to_string(),
        ));
    }
    // Excel and some Windows tools start UTF-8 files with a BOM.
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|err| {
        let before = &bytes[..err.valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        FormatError(
            format!("{file}:{line}"),
            "bad encoding: the file is not UTF-8 (GBK or Latin-1?); export it as UTF-8".to_string(),
        )
    })
}

fn at_line(file: &str, line: usize) -> RowLocation {
    RowLocation {
        file: file.to_string(),
        position: Position::Line(line),
    }
}

fn fail(location: &RowLocation, reason: impl Into<String>) -> FormatError {
    FormatError(location.to_string(), reason.into())
}

/// An id as exports should hold it: not empty, no whitespace or control
/// characters (a stray space or `\r` makes WeChat answer 40003 later and
/// never matches the same id elsewhere). The value is never quoted.
fn check_id(column: &str, value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{column} contains whitespace or control characters"
        ));
    }
    Ok(())
}

/// Builds a user from the three cells of a row.
fn user(openid: &str, unionid: Option<&str>, first_seen: Option<&str>) -> Result<AppUser, String> {
    if openid.is_empty() {
        return Err("openid is empty".to_string());
    }
    check_id("openid", openid)?;
    let unionid = unionid.filter(|u| !u.is_empty());
    if let Some(unionid) = unionid {
        check_id("unionid", unionid)?;
    }
    let first_seen = match first_seen.filter(|s| !s.is_empty()) {
        Some(text) => Some(parse_first_seen(text)?),
        None => None,
    };
    Ok(AppUser {
        openid: openid.to_string(),
        unionid: unionid.map(str::to_string),
        first_seen,
    })
}

/// Unix seconds as UTC microseconds. Unix seconds stay below 1e11 until the
/// year 5138; a larger number is almost certainly milliseconds, and guessing
/// would shift dates, so it is refused (in every format alike).
fn unix_seconds(seconds: i64) -> Result<i64, String> {
    if seconds.unsigned_abs() >= 100_000_000_000 {
        return Err(format!(
            "first_seen {seconds} looks like milliseconds: write Unix seconds or an RFC 3339 timestamp"
        ));
    }
    Ok(seconds * 1_000_000)
}

/// Parses a `first_seen` value into UTC microseconds: RFC 3339
/// (`2026-11-21T08:00:00+08:00`), `YYYY-MM-DD HH:MM:SS[.fff]` or
/// `YYYY-MM-DDTHH:MM:SS[.fff]` (UTC), `YYYY-MM-DD` (midnight UTC) or
/// integer Unix seconds.
pub fn parse_first_seen(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return unix_seconds(seconds);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_micros());
    }
    for pattern in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, pattern) {
            return Ok(at.and_utc().timestamp_micros());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros());
    }
    Err(format!(
        "first_seen ({} characters) is not a timestamp (the value is not quoted: a shifted column may hold an id): write RFC 3339 (2026-11-21T08:00:00Z), \"2026-11-21 08:00:00\" (UTC), a date, or Unix seconds",
        text.chars().count()
    ))
}

// --- CSV --------------------------------------------------------------------

/// A record and the line it starts on, or the line and what is wrong.
type CsvRecord = Result<(usize, Vec<String>), (usize, String)>;

/// The records of a CSV text, each with the line it starts on.
struct CsvRecords<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> CsvRecords<'a> {
    fn new(text: &'a str) -> Self {
        CsvRecords {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The next record (skipping empty lines), or `Err((line, reason))`.
    fn next_record(&mut self) -> Option<CsvRecord> {
        let bytes = self.text.as_bytes();
        // Empty lines are not rows.
        loop {
            if self.pos >= bytes.len() {
                return None;
            }
            match bytes[self.pos] {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                }
                b'\r' if bytes.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                }
                _ => break,
            }
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        loop {
            // At the start of a field.
            if bytes.get(self.pos) == Some(&b'"') {
                self.pos += 1;
                loop {
                    let Some(rest) = self.text.get(self.pos..) else {
                        return Some(Err((start_line, "a quoted field is never closed".into())));
                    };
                    let Some(quote) = rest.find('"') else {
                        return Some(Err((
                            start_line,
                            "a quoted field is never closed".to_string(),
                        )));
                    };
                    let chunk = &rest[..quote];
                    self.line += chunk.matches('\n').count();
                    field.push_str(chunk);
                    self.pos += quote + 1;
                    if bytes.get(self.pos) == Some(&b'"') {
                        field.push('"');
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                match bytes.get(self.pos) {
                    None | Some(b',') | Some(b'\n') => {}
                    Some(b'\r') if matches!(bytes.get(self.pos + 1), None | Some(b'\n')) => {}
                    Some(_) => return Some(Err((
                        self.line,
                        "text after a closing quote (a quote inside a field must be doubled: \"\")"
                            .to_string(),
                    ))),
                }
            } else {
                let rest = &self.text[self.pos..];
                let end = rest.find([',', '\n']).unwrap_or(rest.len());
                let mut value = &rest[..end];
                if rest[end..].starts_with('\n') || end == rest.len() {
                    value = value.strip_suffix('\r').unwrap_or(value);
                }
                if value.contains('"') {
                    return Some(Err((
                        self.line,
                        "a quote inside an unquoted field (quote the whole field and double the quote)".to_string(),
                    )));
                }
                field.push_str(value);
                self.pos += end;
            }
            fields.push(std::mem::take(&mut field));
            match bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'\r') => {
                    // CRLF after a quoted field.
                    self.pos += if bytes.get(self.pos + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    self.line += 1;
                    return Some(Ok((start_line, fields)));
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                    return Some(Ok((start_line, fields)));
                }
                _ => return Some(Ok((start_line, fields))),
            }
        }
    }
}

fn csv(file: &str, text: &str) -> Result<Rows, FormatError> {
    let mut records = CsvRecords::new(text);
    let header_location = at_line(file, 1);
    let (header_line, header) = match records.next_record() {
        None => {
            return Err(fail(
                &header_location,
                format!(
                    "the file is empty: a CSV export starts with a header line; {COLUMNS_HELP}"
                ),
            ))
        }
        Some(Err((line, reason))) => return Err(fail(&at_line(file, line), reason)),
        Some(Ok(record)) => record,
    };
    let header_location = at_line(file, header_line);
    let column = |name: &str| -> Result<Option<usize>, FormatError> {
        let found: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.trim().eq_ignore_ascii_case(name))
            .map(|(i, _)| i)
            .collect();
        match found[..] {
            [] => Ok(None),
            [i] => Ok(Some(i)),
            _ => Err(fail(
                &header_location,
                format!("the header names `{name}` twice"),
            )),
        }
    };
    let required = |name: &str| -> Result<usize, FormatError> {
        column(name)?.ok_or_else(|| {
            // The header's cells are not quoted: without a header line,
            // the first row (ids) would be read as one.
            fail(
                &header_location,
                format!(
                    "missing column `{name}`: the first line has {} fields and none is named `{name}` (is the header line missing?); {COLUMNS_HELP}",
                    header.len()
                ),
            )
        })
    };
    let openid = required("openid")?;
    let unionid = required("unionid")?;
    let first_seen = column("first_seen")?;
    let mut rows = Vec::new();
    while let Some(record) = records.next_record() {
        let (line, fields) = record.map_err(|(line, reason)| fail(&at_line(file, line), reason))?;
        let location = at_line(file, line);
        if fields.len() != header.len() {
            return Err(fail(
                &location,
                format!(
                    "{} fields, but the header has {}",
                    fields.len(),
                    header.len()
                ),
            ));
        }
        let cell = |i: usize| fields[i].as_str();
        let user = user(cell(openid), Some(cell(unionid)), first_seen.map(cell))
            .map_err(|reason| fail(&location, reason))?;
        rows.push((user, location));
    }
    Ok(rows)
}

// --- NDJSON -----------------------------------------------------------------

fn ndjson(file: &str, text: &str) -> Result<Rows, FormatError> {
    let mut rows = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let location = at_line(file, i + 1);
        let value: Value = serde_json::from_str(line).map_err(|err| {
            // serde's message may quote the text; keep only where it broke.
            fail(
                &location,
                format!(
                    "not valid JSON (column {}): one JSON object per line is expected",
                    err.column()
                ),
            )
        })?;
        let Value::Object(object) = value else {
            return Err(fail(
                &location,
                "not a JSON object: one object per line is expected",
            ));
        };
        let text_of = |key: &str, required: bool| -> Result<Option<String>, FormatError> {
            match object.get(key) {
                None if required => Err(fail(
                    &location,
                    format!("no `{key}` key (write \"{key}\": null or \"\" when there is none); {COLUMNS_HELP}"),
                )),
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) if key == "first_seen" => Ok(Some(n.to_string())),
                Some(_) => Err(fail(&location, format!("`{key}` is not a string"))),
            }
        };
        let openid = text_of("openid", true)?.unwrap_or_default();
        let unionid = text_of("unionid", true)?;
        let first_seen = text_of("first_seen", false)?;
        let user = user(&openid, unionid.as_deref(), first_seen.as_deref())
            .map_err(|reason| fail(&location, reason))?;
        rows.push((user, location));
    }
    Ok(rows)
}

// --- Parquet ----------------------------------------------------------------

fn parquet(file: &str, bytes: bytes::Bytes) -> Result<Rows, FormatError> {
    let whole = |reason: String| FormatError(file.to_string(), reason);
    let frame = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|err| whole(format!("not a readable Parquet file: {err}")))?;
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let strings = |name: &str, required: bool| -> Result<Option<StringChunked>, FormatError> {
        let Some(column) = frame.column(name).ok() else {
            if required {
                return Err(whole(format!(
                    "missing column `{name}` (the columns are: {}); {COLUMNS_HELP}",
                    names.join(",")
                )));
            }
            return Ok(None);
        };
        match column.dtype() {
            DataType::String | DataType::Null => column
                .cast(&DataType::String)
                .and_then(|c| c.str().cloned())
                .map(Some)
                .map_err(|err| whole(err.to_string())),
            other => Err(whole(format!("column `{name}` is {other}, not a string"))),
        }
    };
    let openid =
        strings("openid", true)?.unwrap_or_else(|| StringChunked::full_null("openid".into(), 0));
    let unionid =
        strings("unionid", true)?.unwrap_or_else(|| StringChunked::full_null("unionid".into(), 0));
    let first_seen = first_seen_micros(&frame).map_err(whole)?;
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let location = RowLocation {
            file: file.to_string(),
            position: Position::Row(i + 1),
        };
        let openid = openid.get(i).unwrap_or_default();
        let mut user =
            user(openid, unionid.get(i), None).map_err(|reason| fail(&location, reason))?;
        user.first_seen = match &first_seen {
            None => None,
            Some(FirstSeen::Micros(micros)) => micros[i],
            Some(FirstSeen::Seconds(seconds)) => match seconds[i] {
                None => None,
                Some(seconds) => Some(unix_seconds(seconds).map_err(|r| fail(&location, r))?),
            },
            Some(FirstSeen::Text(texts)) => match texts.get(i).filter(|t| !t.is_empty()) {
                None => None,
                Some(text) => Some(parse_first_seen(text).map_err(|r| fail(&location, r))?),
            },
        };
        rows.push((user, location));
    }
    Ok(rows)
}

enum FirstSeen {
    Micros(Vec<Option<i64>>),
    /// Integer Unix seconds, checked row by row like text.
    Seconds(Vec<Option<i64>>),
    Text(StringChunked),
}

/// `first_seen` as a timestamp or date column (any unit or zone), integer
/// Unix seconds, or text in the forms [`parse_first_seen`] takes.
fn first_seen_micros(frame: &DataFrame) -> Result<Option<FirstSeen>, String> {
    let Ok(column) = frame.column("first_seen") else {
        return Ok(None);
    };
    let micros = |column: &Column| -> Result<FirstSeen, String> {
        let cast = column
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(|err| format!("column `first_seen` cannot be read as a timestamp: {err}"))?;
        let values = cast.i64().map_err(|err| err.to_string())?;
        Ok(FirstSeen::Micros(values.iter().collect()))
    };
    match column.dtype() {
        DataType::Datetime(_, _) | DataType::Date => micros(column).map(Some),
        DataType::Int64 | DataType::Int32 | DataType::UInt32 | DataType::UInt64 => {
            let seconds = column.strict_cast(&DataType::Int64).map_err(|_| {
                "column `first_seen` holds numbers beyond any Unix time in seconds".to_string()
            })?;
            let seconds = seconds.i64().map_err(|err| err.to_string())?;
            Ok(Some(FirstSeen::Seconds(seconds.iter().collect())))
        }
        DataType::String => Ok(Some(FirstSeen::Text(
            column.str().map_err(|err| err.to_string())?.clone(),
        ))),
        DataType::Null => Ok(None),
        other => Err(format!(
            "column `first_seen` is {other}: use a timestamp, a date, Unix seconds or text"
        )),
    }
}
