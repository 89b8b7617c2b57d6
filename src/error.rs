//! The error type every stage returns, and the exit codes it maps to.
//!
//! Messages follow one style: lowercase, no trailing period, the file, line or
//! rule named first, user input in backticks, and a hint of what to do where
//! one helps. They are printed as a single line by the binary; nothing here
//! ever carries a backtrace or a raw polars dump.

use std::path::{Path, PathBuf};

/// Exit code for a clean run.
pub const EXIT_OK: i32 = 0;
/// Exit code when a failing finding at or above `--fail-on` exists.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code for a usage error or bad input (inventory, policy, waiver, config).
pub const EXIT_INPUT: i32 = 2;
/// Exit code when coverage is incomplete and `--fail-on-incomplete` is given.
pub const EXIT_INCOMPLETE: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the user handed us is wrong: the message names the file and the fix.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A rule could not be compiled or run; carries the rule id and its file.
    #[error("{file}: rule `{rule}`: {message}")]
    Rule {
        file: String,
        rule: String,
        message: String,
    },
    /// A scan could not start (no usable credentials, nothing in scope).
    /// Failures after the start are coverage gaps in the inventory, not errors.
    #[error("scan: {0}")]
    Scan(String),
    /// Something inside the tool went wrong; never the user's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Reads a file the user named: a missing file is bad input whose
    /// message says `missing` (what the file is, what to give instead);
    /// any other failure is an I/O error.
    pub fn read_text(path: &Path, missing: &str) -> Result<String> {
        std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::input(format!("{}: {missing}", path.display()))
            } else {
                Error::io(path, e)
            }
        })
    }

    /// This error with `local`, a temporary copy of something the user
    /// named (an audit read back from S3), shown as `shown`: a message
    /// names what the user gave, never a directory that is about to go.
    pub fn shown_as(self, local: &Path, shown: &str) -> Error {
        let local = local.display().to_string();
        let text = self.to_string();
        if !text.contains(&local) {
            return self;
        }
        let with_slash = match shown.ends_with('/') {
            true => shown.to_string(),
            false => format!("{shown}/"),
        };
        Error::Input(
            text.replace(&format!("{local}/"), &with_slash)
                .replace(&local, shown),
        )
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Io { .. } | Error::Rule { .. } | Error::Scan(_) => EXIT_INPUT,
            Error::Internal(_) => EXIT_INPUT,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens a polars error to its first line, without the error-kind prefix
/// and the long context polars appends, so it can sit inside a one-line message.
pub fn polars_message(err: &polars::prelude::PolarsError) -> String {
    let text = err.to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    first.trim_end_matches(':').to_string()
}

/// serde_json appends " at line L column C"; messages print the position first.
pub fn strip_serde_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The text of a caught panic, for a one-line error.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unexpected failure".to_string())
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}
