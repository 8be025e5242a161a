//! The login-export import, one rule per test: formats, strictness, dedupe,
//! sources.

use super::formats::{parse, FormatError};
use super::*;

const OPENID_A: &str = "oAAAAA1111111111111111111111";
const OPENID_B: &str = "oAAAAA2222222222222222222222";
const UNIONID_A: &str = "oUUUUU1111111111111111111111";
const UNIONID_B: &str = "oUUUUU2222222222222222222222";

fn rows(format: Format, text: &[u8]) -> Vec<(AppUser, RowLocation)> {
    match parse(format, "logins", bytes::Bytes::copy_from_slice(text)) {
        Ok(rows) => rows,
        Err(FormatError(at, why)) => panic!("{at}: {why}"),
    }
}

fn error(format: Format, text: &[u8]) -> (String, String) {
    match parse(format, "logins", bytes::Bytes::copy_from_slice(text)) {
        Ok(rows) => panic!("expected an error, got {} rows", rows.len()),
        Err(FormatError(at, why)) => (at, why),
    }
}

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_micros()
}

#[test]
fn csv_reads_quotes_crlf_a_bom_and_extra_columns() {
    let text = format!(
        "\u{feff}first_seen,OpenID,unionid,channel\r\n\
         2026-11-01T08:00:00Z,{OPENID_A},{UNIONID_A},\"store, \"\"north\"\"\"\r\n\
         ,{OPENID_B},,\"multi\nline\"\r\n"
    );
    let rows = rows(Format::Csv, text.as_bytes());
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].0,
        AppUser {
            openid: OPENID_A.to_string(),
            unionid: Some(UNIONID_A.to_string()),
            first_seen: Some(micros("2026-11-01T08:00:00Z")),
        }
    );
    assert_eq!(rows[1].0.unionid, None, "an empty unionid is none");
    assert_eq!(rows[1].0.first_seen, None);
    assert_eq!(rows[1].1.to_string(), "logins:3");
}

#[test]
fn csv_without_a_unionid_column_fails_at_the_header() {
    let (at, why) = error(
        Format::Csv,
        format!("openid,first_seen\n{OPENID_A},\n").as_bytes(),
    );
    assert_eq!(at, "logins:1");
    assert!(why.contains("missing column `unionid`"), "{why}");
    assert!(why.contains("the first line has 2 fields"), "{why}");
}

#[test]
fn csv_row_with_a_missing_field_fails_at_its_line_counting_quoted_newlines() {
    let text = format!(
        "openid,unionid,note\n{OPENID_A},{UNIONID_A},\"two\nlines\"\n{OPENID_B},{UNIONID_B}\n"
    );
    let (at, why) = error(Format::Csv, text.as_bytes());
    assert_eq!(at, "logins:4");
    assert_eq!(why, "2 fields, but the header has 3");
}

#[test]
fn csv_row_without_openid_fails_at_its_line() {
    let text = format!("openid,unionid\n{OPENID_A},{UNIONID_A}\n,{UNIONID_B}\n");
    assert_eq!(
        error(Format::Csv, text.as_bytes()),
        ("logins:3".to_string(), "openid is empty".to_string())
    );
}

#[test]
fn an_id_with_whitespace_is_refused_without_being_quoted() {
    let text = format!("openid,unionid\n{OPENID_A} ,{UNIONID_A}\n");
    let (at, why) = error(Format::Csv, text.as_bytes());
    assert_eq!(at, "logins:2");
    assert!(why.contains("openid contains whitespace"), "{why}");
    assert!(!why.contains(OPENID_A));
}

#[test]
fn csv_with_a_bad_first_seen_fails_at_its_line() {
    let text = format!("openid,unionid,first_seen\n{OPENID_A},{UNIONID_A},yesterday\n");
    let (at, why) = error(Format::Csv, text.as_bytes());
    assert_eq!(at, "logins:2");
    assert!(
        why.contains("first_seen (9 characters) is not a timestamp"),
        "{why}"
    );
}

#[test]
fn csv_with_an_unclosed_quote_fails_at_the_line_it_opens() {
    let text = format!("openid,unionid\n{OPENID_A},\"{UNIONID_A}\n{OPENID_B},\n");
    let (at, why) = error(Format::Csv, text.as_bytes());
    assert_eq!(at, "logins:2");
    assert_eq!(why, "a quoted field is never closed");
}

#[test]
fn bytes_that_are_not_utf8_fail_with_their_line() {
    let mut text = format!("openid,unionid\n{OPENID_A},{UNIONID_A}\n").into_bytes();
    text.extend_from_slice(b"o\xe9\xe8,x\n");
    let (at, why) = error(Format::Csv, &text);
    assert_eq!(at, "logins:3");
    assert!(why.starts_with("bad encoding"), "{why}");
    let (at, why) = error(Format::Ndjson, &text);
    assert_eq!(at, "logins:3");
    assert!(why.starts_with("bad encoding"), "{why}");
}

#[test]
fn utf16_exports_are_refused() {
    let (at, why) = error(Format::Csv, b"\xff\xfeo\x00p\x00");
    assert_eq!(at, "logins:1");
    assert!(why.contains("UTF-16"), "{why}");
}

#[test]
fn ndjson_takes_null_unionids_and_numeric_first_seen() {
    let text = format!(
        "{{\"openid\":\"{OPENID_A}\",\"unionid\":null,\"first_seen\":1795219200}}\n\n\
         {{\"openid\":\"{OPENID_B}\",\"unionid\":\"{UNIONID_B}\",\"first_seen\":\"2026-11-21 00:00:00\"}}\r\n"
    );
    let rows = rows(Format::Ndjson, text.as_bytes());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0.unionid, None);
    assert_eq!(rows[0].0.first_seen, Some(1_795_219_200_000_000));
    assert_eq!(rows[1].0.first_seen, Some(1_795_219_200_000_000));
    assert_eq!(rows[1].1.to_string(), "logins:3");
}

#[test]
fn ndjson_without_a_unionid_key_fails_at_its_line() {
    let text =
        format!("{{\"openid\":\"{OPENID_A}\",\"unionid\":\"\"}}\n{{\"openid\":\"{OPENID_B}\"}}\n");
    let (at, why) = error(Format::Ndjson, text.as_bytes());
    assert_eq!(at, "logins:2");
    assert!(why.contains("no `unionid` key"), "{why}");
}

#[test]
fn ndjson_with_a_broken_line_fails_at_it() {
    let text = format!("{{\"openid\":\"{OPENID_A}\",\"unionid\":\"\"}}\n{{\"openid\":\n[1]\n");
    let (at, why) = error(Format::Ndjson, text.as_bytes());
    assert_eq!(at, "logins:2");
    assert!(why.starts_with("not valid JSON"), "{why}");
    let (at, why) = error(Format::Ndjson, b"[1]\n");
    assert_eq!(
        (at.as_str(), why.starts_with("not a JSON object")),
        ("logins:1", true)
    );
}

fn parquet_bytes(frame: &mut DataFrame) -> bytes::Bytes {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(frame).unwrap();
    buf.into()
}

#[test]
fn parquet_reads_timestamps_and_null_unionids() {
    let users = [
        AppUser {
            openid: OPENID_A.to_string(),
            unionid: None,
            first_seen: Some(micros("2025-01-02T03:04:05Z")),
        },
        AppUser {
            openid: OPENID_B.to_string(),
            unionid: Some(UNIONID_B.to_string()),
            first_seen: None,
        },
    ];
    let bytes = parquet_bytes(&mut app_users_frame(&users));
    let rows = parse(Format::Parquet, "logins.parquet", bytes)
        .ok()
        .unwrap();
    let read: Vec<AppUser> = rows.iter().map(|(u, _)| u.clone()).collect();
    assert_eq!(read, users);
    assert_eq!(rows[1].1.to_string(), "logins.parquet: row 2");
}

#[test]
fn parquet_without_unionid_or_with_a_null_openid_fails() {
    let mut frame = df!("openid" => [OPENID_A]).unwrap();
    let Err(FormatError(at, why)) = parse(Format::Parquet, "x.parquet", parquet_bytes(&mut frame))
    else {
        panic!("expected an error");
    };
    assert_eq!(at, "x.parquet");
    assert!(why.contains("missing column `unionid`"), "{why}");

    let mut frame =
        df!("openid" => [Some(OPENID_A), None], "unionid" => [Some(UNIONID_A), None]).unwrap();
    let Err(FormatError(at, why)) = parse(Format::Parquet, "x.parquet", parquet_bytes(&mut frame))
    else {
        panic!("expected an error");
    };
    assert_eq!(
        (at.as_str(), why.as_str()),
        ("x.parquet: row 2", "openid is empty")
    );

    let Err(FormatError(at, why)) = parse(
        Format::Parquet,
        "x.parquet",
        bytes::Bytes::from_static(b"PAR1 not really"),
    ) else {
        panic!("expected an error");
    };
    assert_eq!(at, "x.parquet");
    assert!(why.starts_with("not a readable Parquet file"), "{why}");
}

/// Login exports that `make fuzz` made by changing a few bytes of a Parquet
/// file of two users, each starting with the fuzz target's format byte:
/// polars' decoder panicked on the first (an index out of bounds in its
/// dictionary), gave the second's `unionid` column no values for two rows,
/// where the reader then indexed past its end, reserved 2^61 bytes for
/// the third, whose page states a negative count, and 34.9 GB for the
/// fourth, whose footer states a huge list: those allocations failed and
/// aborted the process. All four took the run with them.
const CORRUPT_PARQUET: [&[u8]; 4] = [
    include_bytes!("../../../tests/fixtures/imports/corrupt-dictionary"),
    include_bytes!("../../../tests/fixtures/imports/short-column"),
    include_bytes!("../../../tests/fixtures/imports/negative-page-count"),
    include_bytes!("../../../tests/fixtures/imports/huge-footer-list"),
];

/// A login export of two users as pyarrow writes it (dictionary pages, a
/// UTC timestamp): the fuzz target's seed, after its format byte.
#[test]
fn a_parquet_export_pyarrow_wrote_passes_the_checks() {
    let file = include_bytes!("../../../fuzz/seeds/imports/parquet");
    let rows = rows(Format::Parquet, &file[1..]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].0.unionid.as_deref(), Some("uGhI-789"));
    assert_eq!(rows[0].0.first_seen, Some(micros("2025-01-02T03:04:05Z")));
}

#[tokio::test]
async fn parquet_files_the_decoder_breaks_on_fail_located_read_whole_or_streamed() {
    for file in CORRUPT_PARQUET {
        let bytes = &file[1..];
        let Err(FormatError(at, why)) = parse(
            Format::Parquet,
            "x.parquet",
            bytes::Bytes::copy_from_slice(bytes),
        ) else {
            panic!("expected an error");
        };
        assert_eq!(at, "x.parquet");
        assert!(why.starts_with("not a readable Parquet file"), "{why}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("logins.parquet"), bytes).unwrap();
        let err = snapshot("shop_mp", &OutputLocation::Local(dir.path().to_path_buf()))
            .await
            .unwrap_err();
        assert!(err.location.ends_with("logins.parquet"), "{err}");
        assert!(
            err.reason.starts_with("not a readable Parquet file"),
            "{err}"
        );
    }
}

#[test]
fn first_seen_takes_rfc3339_naive_utc_dates_and_unix_seconds() {
    let expected = micros("2026-11-21T00:00:00Z");
    for text in [
        "2026-11-21T08:00:00+08:00",
        "2026-11-21T00:00:00Z",
        "2026-11-21 00:00:00",
        "2026-11-21T00:00:00.000",
        "2026-11-21",
        "1795219200",
    ] {
        assert_eq!(parse_first_seen(text), Ok(expected), "{text}");
    }
    let millis = parse_first_seen("1795219200000").unwrap_err();
    assert!(millis.contains("milliseconds"), "{millis}");
}

#[test]
fn file_types_come_from_the_extension() {
    assert_eq!(Format::of("a/b/part-0.CSV"), Some(Format::Csv));
    assert_eq!(Format::of("x.jsonl"), Some(Format::Ndjson));
    assert_eq!(Format::of("x.ndjson"), Some(Format::Ndjson));
    assert_eq!(Format::of("x.parquet"), Some(Format::Parquet));
    assert_eq!(Format::of("x.csv.gz"), None);
    assert_eq!(Format::of("README"), None);
}

// --- whole sources ------------------------------------------------------

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test]
async fn a_folder_is_read_whole_and_repeated_logins_are_one_user() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "day1.csv",
        &format!("openid,unionid,first_seen\n{OPENID_A},,2026-11-02T00:00:00Z\n"),
    );
    write(
        dir.path(),
        "day2.ndjson",
        &format!(
            "{{\"openid\":\"{OPENID_A}\",\"unionid\":\"{UNIONID_A}\",\"first_seen\":\"2026-11-01T00:00:00Z\"}}\n\
             {{\"openid\":\"{OPENID_B}\",\"unionid\":\"{UNIONID_B}\"}}\n"
        ),
    );
    write(dir.path(), "_SUCCESS", "");
    write(dir.path(), ".day1.csv.crc", "junk");
    let source = OutputLocation::Local(dir.path().to_path_buf());
    let raw = snapshot("shop_mp", &source).await.unwrap();
    assert_eq!(raw.table, "app_users");
    let expected = app_users_frame(&[
        AppUser {
            openid: OPENID_A.to_string(),
            unionid: Some(UNIONID_A.to_string()),
            first_seen: Some(micros("2026-11-01T00:00:00Z")),
        },
        AppUser {
            openid: OPENID_B.to_string(),
            unionid: Some(UNIONID_B.to_string()),
            first_seen: None,
        },
    ]);
    assert!(raw.frame.equals_missing(&expected), "{}", raw.frame);
}

#[tokio::test]
async fn a_single_file_is_a_source_too() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "logins.csv",
        &format!("openid,unionid\n{OPENID_A},{UNIONID_A}\n"),
    );
    write(
        dir.path(),
        "other.csv",
        &format!("openid,unionid\n{OPENID_B},{UNIONID_B}\n"),
    );
    let source = OutputLocation::Local(dir.path().join("logins.csv"));
    let raw = snapshot("shop_mp", &source).await.unwrap();
    assert_eq!(raw.frame.height(), 1);
}

#[tokio::test]
async fn two_unionids_for_one_openid_name_both_places() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.csv",
        &format!("openid,unionid\n{OPENID_A},{UNIONID_A}\n"),
    );
    write(
        dir.path(),
        "b.csv",
        &format!("openid,unionid\n{OPENID_B},\n{OPENID_A},{UNIONID_B}\n"),
    );
    let err = snapshot("shop_mp", &OutputLocation::Local(dir.path().to_path_buf()))
        .await
        .unwrap_err();
    let a = dir.path().join("a.csv").display().to_string();
    let b = dir.path().join("b.csv").display().to_string();
    assert_eq!(err.location, format!("{b}:3"));
    assert!(err.reason.contains(&format!("{a}:2")), "{err}");
    assert!(!err.to_string().contains(UNIONID_A));
}

#[tokio::test]
async fn an_unknown_file_type_an_empty_folder_and_a_missing_path_fail() {
    let dir = tempfile::tempdir().unwrap();
    let source = OutputLocation::Local(dir.path().to_path_buf());
    let err = snapshot("shop_mp", &source).await.unwrap_err();
    assert!(err.reason.starts_with("no export files here"), "{err}");

    write(dir.path(), "logins.xlsx", "PK");
    let err = snapshot("shop_mp", &source).await.unwrap_err();
    assert!(err.location.ends_with("logins.xlsx"), "{err}");
    assert!(err.reason.starts_with("unknown file type"), "{err}");

    let missing = OutputLocation::Local(dir.path().join("nope"));
    let err = snapshot("shop_mp", &missing).await.unwrap_err();
    assert_eq!(err.reason, "no such file or folder");
    assert!(err.to_string().starts_with("shop_mp: "), "{err}");
}

/// Every way a file can be refused, each holding ids: no message quotes one.
#[test]
fn no_import_error_quotes_an_id() {
    let a = format!("{OPENID_A},{UNIONID_A}");
    let csv_cases = [
        format!("{a}\n{OPENID_B},{UNIONID_B}\n"), // no header line
        format!("openid,unionid\n{a},extra\n"),
        format!("openid,unionid\n{OPENID_A} x,{UNIONID_A}\n"),
        format!("openid,unionid\n{OPENID_A},{UNIONID_A}\r\u{1}\n"),
        format!("openid,unionid\n{OPENID_A},\"{UNIONID_A}\n"),
        format!("openid,unionid\n\"{OPENID_A}\"x,{UNIONID_A}\n"),
        format!("openid,unionid,first_seen\n{a},{OPENID_B}\n"),
        format!("openid,openid,unionid\n{OPENID_A},{OPENID_A},{UNIONID_A}\n"),
    ];
    let ndjson_cases = [
        format!("{{\"openid\":\"{OPENID_A}\",\"unionid\":\"{UNIONID_A}\"\n"),
        format!("[\"{OPENID_A}\"]\n"),
        format!("{{\"openid\":\"{OPENID_A}\"}}\n"),
        format!("{{\"openid\":\"{OPENID_A}\",\"unionid\":[\"{UNIONID_A}\"]}}\n"),
        format!("{{\"openid\":\"{OPENID_A} \",\"unionid\":\"{UNIONID_A}\"}}\n"),
        format!("{{\"openid\":\"{OPENID_A}\",\"unionid\":\"{UNIONID_A}\",\"first_seen\":\"{OPENID_B}\"}}\n"),
    ];
    let mut refused: Vec<(String, String)> = Vec::new();
    refused.extend(
        csv_cases
            .iter()
            .map(|text| error(Format::Csv, text.as_bytes())),
    );
    refused.extend(
        ndjson_cases
            .iter()
            .map(|text| error(Format::Ndjson, text.as_bytes())),
    );
    let mut frames = [
        df!("openid" => [OPENID_A], "unionid " => [UNIONID_A]).unwrap(),
        df!("openid" => [OPENID_A], "unionid" => [format!("{UNIONID_A}\t")]).unwrap(),
        df!("openid" => [OPENID_A], "unionid" => [UNIONID_A], "first_seen" => [OPENID_B]).unwrap(),
        df!("openid" => [OPENID_A], "unionid" => [UNIONID_A], "first_seen" => [1_763_700_000_000i64]).unwrap(),
    ];
    for frame in &mut frames {
        match parse(Format::Parquet, "x.parquet", parquet_bytes(frame)) {
            Ok(_) => panic!("expected an error for {frame}"),
            Err(FormatError(at, why)) => refused.push((at, why)),
        }
    }
    for (at, why) in &refused {
        for id in [OPENID_A, OPENID_B, UNIONID_A, UNIONID_B] {
            assert!(!at.contains(id) && !why.contains(id), "{at}: {why}");
            assert!(!why.contains(&id[6..]), "{at}: {why}");
        }
    }
}

#[test]
fn parquet_first_seen_in_milliseconds_is_refused_like_csv() {
    let ms = 1_763_700_000_000i64;
    let mut frame =
        df!("openid" => [OPENID_A], "unionid" => [UNIONID_A], "first_seen" => [ms]).unwrap();
    let Err(FormatError(at, why)) = parse(Format::Parquet, "x.parquet", parquet_bytes(&mut frame))
    else {
        panic!("milliseconds accepted as seconds");
    };
    assert_eq!(at, "x.parquet: row 1");
    assert!(why.contains("looks like milliseconds"), "{why}");
    let (_, csv_why) = error(
        Format::Csv,
        format!("openid,unionid,first_seen\n{OPENID_A},{UNIONID_A},{ms}\n").as_bytes(),
    );
    assert_eq!(why, csv_why);
}

/// Reads `bytes` fed `chunk` bytes at a time, parsed in blocks of `block`.
fn streamed(
    format: Format,
    bytes: &[u8],
    chunk: usize,
    block: usize,
) -> Result<Vec<(AppUser, String)>, (String, String)> {
    let mut rows = Vec::new();
    let mut sink = |user: AppUser, location: RowLocation| {
        rows.push((user, location.to_string()));
        Ok(())
    };
    let mut reader = super::formats::TextReader::with_block(format, "logins", block);
    let result = bytes
        .chunks(chunk.max(1))
        .try_for_each(|piece| reader.feed(piece, &mut sink))
        .and_then(|()| reader.finish(&mut sink));
    match result {
        Ok(()) => Ok(rows),
        Err(FormatError(at, why)) => Err((at, why)),
    }
}

#[test]
fn streamed_text_equals_the_whole_file_whatever_the_chunks_and_blocks() {
    let mut csv = String::from("\u{feff}openid,unionid,first_seen,note\r\n");
    let mut ndjson = String::new();
    for i in 0..200 {
        let note = if i % 7 == 0 {
            "\"two\nlines, \"\"quoted\"\"\""
        } else {
            "plain"
        };
        csv.push_str(&format!(
            "oOPENID{i:021},oUNION{i:022},{},{note}\r\n",
            1_700_000_000 + i
        ));
        if i % 13 == 0 {
            csv.push('\n');
            ndjson.push('\n');
        }
        ndjson.push_str(&format!(
            "{{\"openid\":\"oOPENID{i:021}\",\"unionid\":null,\"first_seen\":{}}}\n",
            1_700_000_000 + i
        ));
    }
    for (format, text) in [(Format::Csv, &csv), (Format::Ndjson, &ndjson)] {
        let whole: Vec<(AppUser, String)> = rows(format, text.as_bytes())
            .into_iter()
            .map(|(user, location)| (user, location.to_string()))
            .collect();
        assert_eq!(whole.len(), 200);
        for (chunk, block) in [(1, 1), (7, 64), (100, 10), (4096, 1000), (usize::MAX, 1)] {
            let chunk = chunk.min(text.len());
            assert_eq!(
                streamed(format, text.as_bytes(), chunk, block).unwrap(),
                whole,
                "{format:?} chunk {chunk} block {block}"
            );
        }
    }
}

#[test]
fn a_bad_byte_in_a_later_block_is_named_by_its_line() {
    let mut text = b"openid,unionid\n".to_vec();
    for i in 0..50 {
        text.extend_from_slice(format!("oOPENID{i:021},\n").as_bytes());
    }
    text.extend_from_slice(b"o\xff\xfe,\n");
    let err = streamed(Format::Csv, &text, 16, 32).unwrap_err();
    assert_eq!(err.0, "logins:52");
    assert!(err.1.contains("not UTF-8"), "{}", err.1);
    let err = streamed(Format::Csv, b"", 1, 1).unwrap_err();
    assert!(err.1.contains("the file is empty"), "{}", err.1);
}
