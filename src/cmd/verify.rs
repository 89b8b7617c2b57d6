//! `amiaudit verify DIR`: whether an audit directory is what was written.

use std::path::Path;

use super::Outcome;
use crate::error::{EXIT_FINDINGS, EXIT_OK, Result};
use crate::evidence::{self, Verification};

pub fn run(dir: &Path) -> Result<Outcome> {
    let v = evidence::verify(dir)?;
    let mut out = String::new();
    for (what, list) in [
        ("changed", &v.changed),
        ("removed", &v.removed),
        ("added", &v.added),
        ("inconsistent", &v.inconsistent),
    ] {
        for item in list {
            out.push_str(&format!("{what}: {}\n", item.escape_debug()));
        }
    }
    for note in &v.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    let exit_code = if v.intact() {
        out.push_str(&format!(
            "intact: {} files match {}\n",
            v.files,
            dir.join(evidence::MANIFEST).display()
        ));
        EXIT_OK
    } else {
        out.push_str(&format!("not intact: {}\n", problems(&v)));
        EXIT_FINDINGS
    };
    out.push_str(&format!(
        "fingerprint (sha256 of manifest.json): {}\n",
        v.fingerprint
    ));
    Ok(Outcome {
        exit_code,
        stdout: out,
        stderr: Vec::new(),
    })
}

/// `2 changed, 1 removed, 0 added, 1 inconsistent`.
pub fn problems(v: &Verification) -> String {
    format!(
        "{} changed, {} removed, {} added, {} inconsistent",
        v.changed.len(),
        v.removed.len(),
        v.added.len(),
        v.inconsistent.len()
    )
}
