//! What this version of unionsnap recognises in a job file but cannot run yet.
//!
//! The parser accepts the whole schema of SPEC §3, so a job file written for a
//! later version fails here with "… is not supported by this version of
//! unionsnap" instead of a confusing "unknown key". Supporting one of these
//! later means deleting its lines below. Every account kind and third-party
//! `auth` are supported; `privacy.pseudonymize` is not yet.

use super::accounts::AccountShape;
use super::error::{JobError, Problem, Source};
use super::raw::RawPrivacy;

/// Rejects, in file order, the first feature this version cannot run.
/// Runs after the shape of the whole file was checked and before any secret
/// is read.
pub(super) fn check(
    privacy: &RawPrivacy,
    _accounts: &[AccountShape],
    src: &Source<'_>,
) -> Result<(), JobError> {
    if let Some(pseudonymize) = &privacy.pseudonymize {
        if *pseudonymize.get_ref() {
            return Err(src.at(
                pseudonymize.span(),
                not_supported(
                    "privacy.pseudonymize = true (HMAC of every id)",
                    "set pseudonymize = false or remove the key; ids are written as WeChat returns them",
                ),
            ));
        }
    }
    Ok(())
}

/// The message every unsupported feature gets.
pub(super) fn not_supported(what: &str, help: &str) -> Problem {
    Problem::new(
        format!("{what} is not supported by this version of unionsnap"),
        help,
    )
}
