//! The sample organization's audit, byte for byte: every output file's
//! sha256 is pinned in `tests/golden/acme.sha256`. A refactor must leave it
//! unchanged; a change that means to alter a report updates it on purpose:
//!
//!     AMIAUDIT_UPDATE_GOLDEN=1 cargo test golden
use std::fs;

use super::support::*;

#[test]
fn sample_audit_outputs_are_pinned() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("acme");
    let run = audit_sample(&out, &["--format", "all"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let mut lines = String::new();
    for entry in walkdir::WalkDir::new(&out).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(&out)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let digest = amiaudit::inventory::sha256_file(entry.path()).unwrap();
            lines.push_str(&format!("{digest}  {rel}\n"));
        }
    }
    let pinned = repo().join("tests/golden/acme.sha256");
    if std::env::var_os("AMIAUDIT_UPDATE_GOLDEN").is_some() {
        fs::write(&pinned, &lines).unwrap();
    }
    let expected = fs::read_to_string(&pinned).unwrap_or_default();
    assert_eq!(
        lines, expected,
        "the sample audit's outputs changed; if that is intended, run AMIAUDIT_UPDATE_GOLDEN=1 cargo test golden"
    );
}
