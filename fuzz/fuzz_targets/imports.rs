//! Fuzzes the login-export readers (CSV, NDJSON, Parquet): any bytes must
//! read as rows or give a located error, never a panic; an accepted row has
//! a non-empty OpenID without whitespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unionsnap::extract::app_users::{read_export, Format};

fuzz_target!(
    init: {
        // polars' Parquet decoder panics on some corrupt pages; the readers
        // catch it (`load::parquet::guarded`) and fail the file. The
        // fuzzer's hook aborts at any panic, so one in polars passes here
        // unseen: if the readers did not catch it, libFuzzer's own catch
        // would still abort on it.
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|at| at.file().contains("/polars-")) {
                fuzzer_hook(info);
            }
        }));
    },
    |data: &[u8]| {
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
    }
);
