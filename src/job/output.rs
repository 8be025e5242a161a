//! Where a job writes its warehouse: the `output` key, checked once here so
//! that the load stage receives either a local directory or a URL whose
//! scheme object_store understands, with no credentials inside.

use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

use super::error::Problem;

/// URL schemes accepted for `output`, as listed in the help text.
const SCHEMES: &str = "file://, s3://, gs://, az:// (or azure://, abfs://, abfss://)";

/// The warehouse root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputLocation {
    /// A directory on this machine: a bare path (relative ones resolved
    /// against the job file's directory) or a `file://` URL.
    Local(PathBuf),
    /// An object store: `s3://`, `gs://`, `az://`, `azure://`, `abfs://` or
    /// `abfss://`.
    Url(Url),
}

impl fmt::Display for OutputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputLocation::Local(path) => write!(f, "{}", path.display()),
            OutputLocation::Url(url) => f.write_str(url.as_str()),
        }
    }
}

/// Parses `output` as written. A string containing `://` is a URL; anything
/// else is a path, so that a directory named `a:b` stays a directory.
pub(super) fn parse(written: &str, job_dir: &Path) -> Result<OutputLocation, Problem> {
    if written.trim().is_empty() {
        return Err(Problem::new(
            "`output` is empty",
            format!(
                r#"write a directory or a URL, e.g. output = "s3://bucket/prefix"; accepted: {SCHEMES}"#
            ),
        ));
    }
    if !written.contains("://") {
        return Ok(OutputLocation::Local(normalize(&job_dir.join(written))));
    }
    let url = Url::parse(written).map_err(|err| {
        Problem::new(
            format!("`output` is not a valid URL: {err}"),
            r#"write it like "s3://bucket/prefix" or give a local directory"#,
        )
    })?;
    // Credentials belong in the environment (AWS_*, GOOGLE_*, AZURE_*): a URL
    // is printed in logs, summaries and reports.
    let is_abfs = matches!(url.scheme(), "abfs" | "abfss");
    if url.password().is_some() || (!url.username().is_empty() && !is_abfs) {
        return Err(Problem::new(
            "`output` contains credentials (user:password@)",
            "remove them from the URL; object-store credentials come from the usual environment variables (AWS_*, GOOGLE_*, AZURE_*)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Problem::new(
            "`output` has a query or fragment (`?` or `#`)",
            "an output URL is a bucket and an optional prefix, e.g. \"s3://bucket/prefix\"",
        ));
    }
    match url.scheme() {
        "file" => file_url(&url),
        // An in-memory store vanishes with the process: a run would exit 0
        // having kept nothing.
        "memory" => Err(Problem::new(
            "`output` = memory:// keeps nothing: the warehouse would vanish when the run ends",
            format!("write a local directory or a durable store: {SCHEMES}"),
        )),
        "s3" | "gs" | "az" | "azure" | "abfs" | "abfss" => {
            if url.host_str().is_none_or(str::is_empty) {
                let noun = if url.scheme() == "s3" || url.scheme() == "gs" {
                    "bucket"
                } else {
                    "container"
                };
                return Err(Problem::new(
                    format!("`output` names no {noun}: \"{url}\""),
                    format!("write {}://{noun}[/prefix]", url.scheme()),
                ));
            }
            Ok(OutputLocation::Url(url))
        }
        other => Err(Problem::new(
            format!("`output` has an unknown scheme \"{other}://\""),
            format!("use one of {SCHEMES}, or a bare path for a local directory"),
        )),
    }
}

fn file_url(url: &Url) -> Result<OutputLocation, Problem> {
    // `file://out` parses with host "out": the user meant a relative path,
    // which file URLs cannot express.
    let host_ok = url
        .host_str()
        .is_none_or(|h| h.is_empty() || h == "localhost");
    match url.to_file_path() {
        Ok(path) if host_ok => Ok(OutputLocation::Local(path)),
        _ => Err(Problem::new(
            format!("`output` is not a local file URL: \"{url}\""),
            "file URLs take an absolute path (file:///data/wechat); for a relative directory write the bare path",
        )),
    }
}

impl OutputLocation {
    /// Parses an output location given on the command line (`unionsnap report
    /// OUTPUT`): the same forms as the job file's `output`, relative paths
    /// against the current directory.
    pub fn parse_cli(written: &str) -> Result<OutputLocation, super::JobError> {
        parse(written, Path::new(".")).map_err(|problem| super::JobError {
            path: PathBuf::from("<command line>"),
            line: None,
            column: None,
            message: problem.message,
            help: problem.help,
        })
    }
}

/// `jobs/../warehouse` → `warehouse`: the path as a user reads it in logs.
/// Lexical only (no symlinks resolved), which is what joining did.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}
