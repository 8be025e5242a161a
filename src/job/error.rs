//! The one error type of the job file, and the bookkeeping that turns a byte
//! span of the TOML text into the `file:line:column` a user can jump to.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a job file cannot be run, where, and what to write instead.
///
/// Displays like a compiler diagnostic:
/// `jobs/acme.toml:12:6: duplicate account id "brand_oa" (first on line 8)`
/// followed by `  help: give every account a unique id`.
/// It never contains a secret value: messages name environment variables and
/// files, not what they hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct JobError {
    /// The job file, as given on the command line.
    pub path: PathBuf,
    /// 1-based line of the offending key or value; `None` for the file as a whole.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending value.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: Option<String>,
}

impl JobError {
    /// An error about the file as a whole (unreadable, a required key missing).
    pub fn whole_file(path: &Path, message: impl Into<String>, help: Option<String>) -> Self {
        JobError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            help,
        }
    }

    fn render(&self) -> String {
        let mut out = self.path.display().to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        out.push_str(": ");
        out.push_str(&self.message);
        if let Some(help) = &self.help {
            out.push_str("\n  help: ");
            out.push_str(help);
        }
        out
    }
}

/// What a single check found wrong, before it is placed in the file.
/// Checks return this so that they need not know about spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

/// The job file being validated: its path and text, to place errors.
pub(super) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at the value (or key) whose byte span is `span`.
    pub fn at(&self, span: Range<usize>, problem: Problem) -> JobError {
        let (line, column) = self.line_column(span.start);
        JobError {
            path: self.path.to_path_buf(),
            line: Some(line),
            column: Some(column),
            message: problem.message,
            help: problem.help,
        }
    }

    /// An error about the file as a whole.
    pub fn whole_file(&self, problem: Problem) -> JobError {
        JobError::whole_file(self.path, problem.message, problem.help)
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    /// 1-based line and column (counted in characters) of a byte offset.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // A span from the TOML parser always falls on a char boundary; if it
        // ever does not, fall back to the start of its line rather than panic.
        let before = self.text.get(..offset).unwrap_or_else(|| {
            let line_start = self.text[..floor_char_boundary(self.text, offset)]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            &self.text[..line_start]
        });
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
