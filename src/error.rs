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
        use std::io::Read;
        let (file, len) = open_regular_file(path, missing)?;
        let mut text = String::new();
        file.take(len)
            .read_to_string(&mut text)
            .map_err(|e| Error::io(path, e))?;
        Ok(text)
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
    match message.rsplit_once(" at line ") {
        Some((before, _)) => before.to_string(),
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

/// The most bytes a file named from outside is read to: far above any
/// inventory table, rule, waiver, config or findings file.
pub const MAX_INPUT_FILE_BYTES: u64 = 4 << 30;

/// Opens a file named from outside (by the user, or by a manifest) for
/// reading, with its length: a regular file (a link to one is followed),
/// never a device, a pipe or a directory, which could be read without end
/// or block forever, and no larger than [`MAX_INPUT_FILE_BYTES`]. Read at
/// most the length returned: a file that grows meanwhile is not followed.
pub fn open_regular_file(path: &Path, missing: &str) -> Result<(std::fs::File, u64)> {
    let not_found = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input(format!("{}: {missing}", path.display()))
        } else {
            Error::io(path, e)
        }
    };
    let meta = std::fs::metadata(path).map_err(not_found)?;
    if !meta.is_file() {
        return Err(Error::input(format!(
            "{}: not a regular file (a directory, a device or a pipe); give a file",
            path.display()
        )));
    }
    if meta.len() > MAX_INPUT_FILE_BYTES {
        return Err(Error::input(format!(
            "{}: {} MiB, more than amiaudit reads from one file ({} MiB)",
            path.display(),
            meta.len() >> 20,
            MAX_INPUT_FILE_BYTES >> 20
        )));
    }
    let file = std::fs::File::open(path).map_err(not_found)?;
    // The file opened must be the one checked (not swapped for a pipe).
    let opened = file.metadata().map_err(|e| Error::io(path, e))?;
    if !opened.is_file() {
        return Err(Error::input(format!(
            "{}: not a regular file (a directory, a device or a pipe); give a file",
            path.display()
        )));
    }
    Ok((file, opened.len()))
}
