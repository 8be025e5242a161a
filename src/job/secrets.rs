//! Secrets named by the job file (`{ env = "NAME" }` / `{ file = "PATH" }`)
//! and their resolution into [`Secret`]s.
//!
//! The job file is committed to git and mounted in ConfigMaps, so it may only
//! say where a secret lives. Every message here names the variable or the
//! file, never what it holds.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

use super::error::Problem;
use super::raw::RawSecret;

/// Where one secret lives, after its shape was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SecretSource {
    Env(String),
    /// Already resolved against the job file's directory.
    File(PathBuf),
}

/// A secret reference and the span of its value in the job file.
#[derive(Debug, Clone)]
pub(super) struct SecretRef {
    pub source: SecretSource,
    pub span: Range<usize>,
}

const HOW: &str = r#"write secret = { env = "NAME" } or secret = { file = "PATH" }"#;

/// Checks the shape of a secret reference. `key` is the key as the user wrote
/// it (`secret`, `auth.verify_ticket`, `privacy.key`), for messages.
pub(super) fn reference(
    raw: &RawSecret,
    key: &str,
    span: Range<usize>,
    job_dir: &Path,
) -> Result<SecretRef, Problem> {
    let how = HOW.replace("secret =", &format!("{key} ="));
    let source = match raw {
        RawSecret::Literal => {
            return Err(Problem::new(
                format!(
                    r#"literal secrets are not allowed in the job file; use {key} = {{ env = "..." }} or {{ file = "..." }}"#
                ),
                "job files end up in git and ConfigMaps: put the value in an environment variable or a file (e.g. a mounted Kubernetes secret) and name it here",
            ))
        }
        RawSecret::Ref(reference) => match (&reference.env, &reference.file) {
            (Some(env), None) => {
                let name = env.get_ref().trim();
                if name.is_empty() {
                    return Err(Problem::new(format!("`{key}.env` is empty"), how));
                }
                SecretSource::Env(name.to_string())
            }
            (None, Some(file)) => {
                if file.get_ref().trim().is_empty() {
                    return Err(Problem::new(format!("`{key}.file` is empty"), how));
                }
                SecretSource::File(job_dir.join(file.get_ref()))
            }
            (Some(_), Some(_)) => {
                return Err(Problem::new(
                    format!("`{key}` names both an environment variable and a file"),
                    format!("keep one of them: {how}"),
                ))
            }
            (None, None) => {
                return Err(Problem::new(
                    format!("`{key}` names no environment variable or file"),
                    how,
                ))
            }
        },
    };
    Ok(SecretRef { source, span })
}

/// Reads a secret. `what` names the key it is for (`privacy.key`), for messages.
pub(super) fn resolve(
    source: &SecretSource,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, Problem> {
    match source {
        SecretSource::Env(name) => match env(name) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            Some(_) => Err(Problem::new(
                format!("environment variable {name} (for {what}) is empty"),
                format!("set {name} to the secret before running unionsnap"),
            )),
            None => Err(Problem::new(
                format!("environment variable {name} (for {what}) is not set"),
                format!("export {name}=... before running unionsnap (in Kubernetes: an env entry from a Secret)"),
            )),
        },
        SecretSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| {
                Problem::new(
                    format!("cannot read secret file {} (for {what}): {err}", path.display()),
                    "check the path and its permissions; a relative path is resolved against the job file's directory",
                )
            })?;
            // Kubernetes secrets and `echo x > file` end the value with a newline
            // that is not part of it.
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(Problem::new(
                    format!("secret file {} (for {what}) is empty", path.display()),
                    "write the secret into the file, or point to the right file",
                ));
            }
            Ok(Secret::new(value))
        }
    }
}
