//! The commands, one file each: what the binary calls after parsing.
//!
//! Each takes settings already resolved (`settings`) and returns an
//! [`Outcome`]: the text for stdout, lines for stderr, and the exit code.
//! These, with `settings` and `config`, are the only modules that know
//! every stage.

pub mod audit;
pub mod diff;
pub mod export;
pub mod init;
pub mod policies;
pub mod query;
pub mod scan;
pub mod synth;
pub mod verify;

pub use crate::settings::OUTPUT_KINDS;

/// The warning for an earlier output kept because it held files amiaudit
/// did not write by the time it was replaced.
pub fn kept_warning(committed: &crate::output::Committed) -> Option<String> {
    committed.kept.as_ref().map(|kept| {
        format!(
            "{} held files amiaudit did not write by the time it was replaced; the earlier output, with them, is kept at {}",
            committed.path.display(),
            kept.display()
        )
    })
}

/// What a command printed and how it ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub exit_code: i32,
    pub stdout: String,
    /// Lines for stderr (`warning: ...`, `error: ...`), already prefixed.
    pub stderr: Vec<String>,
}

impl Outcome {
    pub fn ok(stdout: String) -> Outcome {
        Outcome {
            exit_code: crate::error::EXIT_OK,
            stdout,
            stderr: Vec::new(),
        }
    }
}
