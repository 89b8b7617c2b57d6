//! `amiaudit init`: a commented default amiaudit.toml.

use std::path::Path;

use crate::error::{Error, Result};

/// The commented default amiaudit.toml that `amiaudit init` writes.
pub const INIT_CONFIG: &str = include_str!("../../docs/amiaudit.example.toml");

/// `amiaudit init`: writes a commented default config; never overwrites.
pub fn run(path: &Path) -> Result<String> {
    use std::io::Write;
    // Created only if absent, in one step: never over an existing file.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::input(format!(
                    "{}: already exists; remove it or pass another path",
                    path.display()
                ))
            } else {
                Error::io(path, e)
            }
        })?;
    file.write_all(INIT_CONFIG.as_bytes())
        .map_err(|e| Error::io(path, e))?;
    Ok(format!("wrote {}\n", path.display()))
}
