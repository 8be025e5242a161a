//! The three export formats, read strictly: CSV with a header (RFC 4180:
//! quoted fields, doubled quotes, CRLF or LF), NDJSON (one JSON object per
//! line) and Parquet. Every row becomes an [`AppUser`] with its location, or
//! the file fails with the line (row) and the reason.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use polars::prelude::*;
use serde_json::Value;

use crate::load::parquet;

use super::{AppUser, Position, RowLocation};

/// A failure: (where, why).
pub(super) struct FormatError(pub String, pub String);

/// Where the rows of a file go, each with its line (row): an error from it
/// stops the file.
pub(super) type Sink<'a> = dyn FnMut(AppUser, RowLocation) -> Result<(), FormatError> + Send + 'a;

/// Text is parsed in blocks of at least this many bytes, cut after a
/// complete record: memory holds a block, never the file.
const TEXT_BLOCK: usize = 4 << 20;
/// Parquet is read this many rows at a time.
pub(super) const PARQUET_SLICE_ROWS: usize = 250_000;

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

/// Reads a whole file held in memory (tests, the fuzz target): the same
/// readers the import streams through.
pub(super) fn parse(
    format: Format,
    file: &str,
    bytes: bytes::Bytes,
) -> Result<Vec<(AppUser, RowLocation)>, FormatError> {
    let mut rows = Vec::new();
    let mut sink = |user: AppUser, location: RowLocation| {
        rows.push((user, location));
        Ok(())
    };
    match format {
        Format::Parquet => {
            let frame = parquet::check(&bytes)
                .and_then(|()| parquet::decode(bytes))
                .map_err(|err| FormatError(file.to_string(), not_parquet(err)))?;
            parquet_rows(file, &frame, 0, &mut sink)?;
        }
        Format::Csv | Format::Ndjson => {
            let mut reader = TextReader::new(format, file);
            reader.feed(&bytes, &mut sink)?;
            reader.finish(&mut sink)?;
        }
    }
    Ok(rows)
}

const COLUMNS_HELP: &str =
    "an export has the columns openid, unionid (empty for none) and optionally first_seen";

pub(super) fn not_parquet(err: impl std::fmt::Display) -> String {
    format!("not a readable Parquet file: {err}")
}

/// A CSV or NDJSON file read a block at a time as its bytes arrive. A block
/// ends after a complete record (for CSV, a line break outside quotes), so
/// each block is parsed on its own, with its first line number; UTF-8 is
/// checked per block (a line break is never inside a multi-byte character).
pub(super) struct TextReader<'f> {
    format: Format,
    file: &'f str,
    pending: Vec<u8>,
    /// Bytes of `pending` already scanned for record ends.
    scanned: usize,
    /// The scan is inside a quoted CSV field.
    in_quotes: bool,
    /// End of the last complete record in `pending`.
    boundary: usize,
    /// Line number of `pending[0]`.
    line: usize,
    /// No block was parsed yet (the byte-order mark is looked for).
    at_start: bool,
    header: Option<CsvHeader>,
    /// Parse once this many complete bytes are pending ([`TEXT_BLOCK`]).
    block: usize,
}

/// The columns of a CSV export, found in its header line.
struct CsvHeader {
    width: usize,
    openid: usize,
    unionid: usize,
    first_seen: Option<usize>,
}

impl<'f> TextReader<'f> {
    pub(super) fn new(format: Format, file: &'f str) -> Self {
        TextReader {
            format,
            file,
            pending: Vec::new(),
            scanned: 0,
            in_quotes: false,
            boundary: 0,
            line: 1,
            at_start: true,
            header: None,
            block: TEXT_BLOCK,
        }
    }

    /// A reader that parses blocks of `block` bytes (tests cut files small).
    #[cfg(test)]
    pub(super) fn with_block(format: Format, file: &'f str, block: usize) -> Self {
        TextReader {
            block,
            ..TextReader::new(format, file)
        }
    }

    /// Takes the next bytes of the file; parses what is complete once a
    /// block's worth is there.
    pub(super) fn feed(&mut self, chunk: &[u8], sink: &mut Sink<'_>) -> Result<(), FormatError> {
        self.pending.extend_from_slice(chunk);
        let csv = self.format == Format::Csv;
        let from = self.scanned;
        for at in memchr::memchr2_iter(b'"', b'\n', &self.pending[from..]) {
            match self.pending[from + at] {
                b'"' if csv => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => self.boundary = from + at + 1,
                _ => {}
            }
        }
        self.scanned = self.pending.len();
        if self.boundary >= self.block {
            let end = self.boundary;
            self.parse_block(end, sink)?;
        }
        Ok(())
    }

    /// The end of the file: parses the rest.
    pub(super) fn finish(mut self, sink: &mut Sink<'_>) -> Result<(), FormatError> {
        let end = self.pending.len();
        self.parse_block(end, sink)?;
        if self.format == Format::Csv && self.header.is_none() {
            return Err(fail(
                &at_line(self.file, 1),
                format!(
                    "the file is empty: a CSV export starts with a header line; {COLUMNS_HELP}"
                ),
            ));
        }
        Ok(())
    }

    /// Parses `pending[..end]` and drops it.
    fn parse_block(&mut self, end: usize, sink: &mut Sink<'_>) -> Result<(), FormatError> {
        // The block is taken as it is; only the (short) rest is copied.
        let rest = self.pending.split_off(end);
        let block = std::mem::replace(&mut self.pending, rest);
        self.scanned = self.scanned.saturating_sub(end);
        self.boundary = self.boundary.saturating_sub(end);
        let mut bytes = block.as_slice();
        if std::mem::take(&mut self.at_start) {
            if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
                return Err(FormatError(
                    format!("{}:1", self.file),
                    "bad encoding: the file is UTF-16; export it as UTF-8".to_string(),
                ));
            }
            // Excel and some Windows tools start UTF-8 files with a BOM.
            bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
        }
        let text = std::str::from_utf8(bytes).map_err(|err| {
            let before = &bytes[..err.valid_up_to()];
            let line = self.line + memchr::memchr_iter(b'\n', before).count();
            FormatError(
                format!("{}:{line}", self.file),
                "bad encoding: the file is not UTF-8 (GBK or Latin-1?); export it as UTF-8"
                    .to_string(),
            )
        })?;
        let first_line = self.line;
        self.line += memchr::memchr_iter(b'\n', bytes).count();
        match self.format {
            Format::Csv => self.csv_block(text, first_line, sink),
            _ => ndjson_block(self.file, text, first_line, sink),
        }
    }

    fn csv_block(
        &mut self,
        text: &str,
        first_line: usize,
        sink: &mut Sink<'_>,
    ) -> Result<(), FormatError> {
        let file = self.file;
        let mut records = CsvRecords::starting_at(text, first_line);
        if self.header.is_none() {
            match records.next_record() {
                None => return Ok(()),
                Some(Err((line, reason))) => return Err(fail(&at_line(file, line), reason)),
                Some(Ok((line, header))) => {
                    self.header = Some(CsvHeader::of(&header, &at_line(file, line))?)
                }
            }
        }
        let Some(header) = &self.header else {
            return Ok(());
        };
        while let Some(record) = records.next_record() {
            let (line, fields) =
                record.map_err(|(line, reason)| fail(&at_line(file, line), reason))?;
            let location = at_line(file, line);
            if fields.len() != header.width {
                return Err(fail(
                    &location,
                    format!(
                        "{} fields, but the header has {}",
                        fields.len(),
                        header.width
                    ),
                ));
            }
            let cell = |i: usize| fields[i].as_str();
            let user = user(
                cell(header.openid),
                Some(cell(header.unionid)),
                header.first_seen.map(cell),
            )
            .map_err(|reason| fail(&location, reason))?;
            sink(user, location)?;
        }
        Ok(())
    }
}

impl CsvHeader {
    fn of(header: &[String], location: &RowLocation) -> Result<CsvHeader, FormatError> {
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
                _ => Err(fail(location, format!("the header names `{name}` twice"))),
            }
        };
        let required = |name: &str| -> Result<usize, FormatError> {
            // The header's cells are not quoted: without a header line,
            // the first row (ids) would be read as one.
            column(name)?.ok_or_else(|| {
                fail(
                    location,
                    format!(
                        "missing column `{name}`: the first line has {} fields and none is named `{name}` (is the header line missing?); {COLUMNS_HELP}",
                        header.len()
                    ),
                )
            })
        };
        Ok(CsvHeader {
            width: header.len(),
            openid: required("openid")?,
            unionid: required("unionid")?,
            first_seen: column("first_seen")?,
        })
    }
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
    /// The records of `text`, whose first line is line `line` of its file.
    fn starting_at(text: &'a str, line: usize) -> Self {
        CsvRecords { text, pos: 0, line }
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

// --- NDJSON -----------------------------------------------------------------

fn ndjson_block(
    file: &str,
    text: &str,
    first_line: usize,
    sink: &mut Sink<'_>,
) -> Result<(), FormatError> {
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let location = at_line(file, first_line + i);
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
        sink(user, location)?;
    }
    Ok(())
}

// --- Parquet ----------------------------------------------------------------

/// The rows of `frame`, a slice of a Parquet file starting at row
/// `row_offset` (0-based).
pub(super) fn parquet_rows(
    file: &str,
    frame: &DataFrame,
    row_offset: usize,
    sink: &mut Sink<'_>,
) -> Result<(), FormatError> {
    let whole = |reason: String| FormatError(file.to_string(), reason);
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
    let first_seen = first_seen_micros(frame).map_err(whole)?;
    for i in 0..frame.height() {
        let location = RowLocation {
            file: file.to_string(),
            position: Position::Row(row_offset + i + 1),
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
        sink(user, location)?;
    }
    Ok(())
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
