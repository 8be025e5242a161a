//! What this version of unionsnap recognises in a job file but cannot run yet.
//!
//! The parser accepts the whole schema of SPEC §3, so a job file written for a
//! later version fails here with "… is not supported by this version of
//! unionsnap" instead of a confusing "unknown key". Supporting one of these
//! later means deleting its lines below (and adding its builder in `accounts`).

use super::accounts::{AccountShape, Credentials, ShapeSpec};
use super::error::{JobError, Problem, Source};
use super::raw::RawPrivacy;
use super::AccountKind;

/// Rejects, in file order, the first feature this version cannot run.
/// Runs after the shape of the whole file was checked and before any secret
/// is read.
pub(super) fn check(
    _privacy: &RawPrivacy,
    accounts: &[AccountShape],
    src: &Source<'_>,
) -> Result<(), JobError> {
    for account in accounts {
        if account.kind != AccountKind::OfficialAccount {
            return Err(src.at(
                account.kind_span.clone(),
                not_supported(
                    &format!("account `{}`: kind = \"{}\"", account.id, account.kind),
                    "remove this account for now; this version snapshots kind = \"official_account\" accounts that have their own secret",
                ),
            ));
        }
        if let ShapeSpec::OfficialAccount {
            credentials: Credentials::Auth(span),
            ..
        } = &account.spec
        {
            return Err(src.at(
                span.clone(),
                not_supported(
                    &format!(
                        "account `{}`: auth = {{ ... }} (an account managed through a third-party platform)",
                        account.id
                    ),
                    r#"give the account its own AppSecret with secret = { env = "..." }, or remove it for now"#,
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
