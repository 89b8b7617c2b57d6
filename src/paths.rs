//! Paths read from outside: a manifest's file list, an S3 listing's keys
//! and prefixes, a template directory. One answer to "may amiaudit use
//! this as a path below a directory it owns?", for every reader.
//!
//! A path from outside is used only when it is *plain*: relative, in
//! canonical form (no empty, `.` or `..` segment, so no two spellings
//! reach one file), `/`-separated (no `\`), and free of control
//! characters. Files named that way are opened without following links.

use std::path::Path;

use crate::error::{Error, Result};

/// Whether `rel` is a plain relative path below a directory (see the
/// module).
pub fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\\')
        && !rel.chars().any(char::is_control)
        && rel.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

/// Whether `name` is a plain file name directly in a directory: plain, one
/// segment, and not hidden (amiaudit's own staging and lock files are).
pub fn is_plain_file_name(name: &str) -> bool {
    is_plain_relative(name) && !name.contains('/') && !name.starts_with('.')
}

/// Whether an S3 prefix (`a/b/`, or empty) is plain: each segment as a
/// plain relative path's.
pub fn is_plain_prefix(prefix: &str) -> bool {
    prefix.is_empty() || is_plain_relative(prefix.strip_suffix('/').unwrap_or(prefix))
}

/// The text of the regular file at `path`, opened without following a
/// link (a link could land any readable file in an output); None when
/// there is nothing of that name. `what` names such files in the error
/// (`templates`).
pub fn read_regular_no_follow(path: &Path, what: &str) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(Error::input(format!(
                "{}: not a regular file (a link or a directory); {what} must be regular files",
                path.display()
            )));
        }
        Ok(_) => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| Error::io(path, e))?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_trusted() {
        for ok in ["findings.csv", "inventory/images.parquet", "a/b/c", "a b"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./a",
            "a/.",
            "a\\b",
            "a//b",
            "a/",
            "a\u{1b}b",
            "a\0b",
        ] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
        assert!(is_plain_file_name("images.jsonl"));
        for bad in ["a/b", ".hidden", "..", ""] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
        assert!(is_plain_prefix("") && is_plain_prefix("audits/2026/"));
        assert!(!is_plain_prefix("audits//x/") && !is_plain_prefix("../x/"));
    }
}
