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
