//! Fuzzes the login-export readers (CSV, NDJSON, Parquet): any bytes must
//! read as rows or give a located error, never a panic; an accepted row has
//! a non-empty OpenID without whitespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unionsnap::extract::app_users::{read_export, Format};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => Format::Csv,
        1 => Format::Ndjson,
        _ => Format::Parquet,
    };
    let bytes = bytes::Bytes::copy_from_slice(body);
    match read_export(format, "fuzz.export", bytes) {
        Ok(users) => {
            for user in users {
                assert!(!user.openid.is_empty());
                assert!(!user.openid.chars().any(char::is_whitespace));
            }
        }
        Err(error) => assert!(error.starts_with("fuzz.export")),
    }
});
