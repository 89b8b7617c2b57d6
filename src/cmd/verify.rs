//! `amiaudit verify DIR|s3://bucket/prefix/`: whether an audit is what
//! was written. An audit in S3 is read into a temporary directory first;
//! its objects' Object Lock retention is reported beside the result.

use super::Outcome;
use crate::aws::Connection;
use crate::deliver::Location;
use crate::error::{EXIT_FINDINGS, EXIT_OK, Result};
use crate::evidence::{self, Verification};

pub fn run(location: &Location, connection: &Connection, kms_key: Option<&str>) -> Result<Outcome> {
    // The key is read first: a key that cannot be read is a usage error,
    // whatever the audit holds.
    let expected = kms_key
        .map(|key| {
            crate::deliver::block_on(crate::deliver::kms::expected_key(connection, key))?
                .map(|signing| (key, signing))
        })
        .transpose()?;
    let (mut v, shown) = verify_at(location, connection)?;
    match (&expected, &v.signed_by) {
        (Some((_, wanted)), Some(found)) if wanted.public_key == found.public_key => {}
        (Some((key, _)), Some(found)) => v.inconsistent.push(format!(
            "signed by {}, not by {key}",
            found.kms_key_arn
        )),
        (Some((key, _)), None) => v.inconsistent.push(format!(
            "not signed by {key}: the manifest names no signing key, or its signature did not verify"
        )),
        (None, Some(found)) => v.notes.push(format!(
            "signed by the key the manifest names ({}); pass --kms-key to require that it is yours",
            found.kms_key_arn
        )),
        (None, None) => {}
    }
    report(v, &shown)
}

/// Verifies the audit at `location`; returns what was found and how the
/// location is shown.
fn verify_at(location: &Location, connection: &Connection) -> Result<(Verification, String)> {
    match location {
        Location::Local(dir) => Ok((evidence::verify(dir)?, dir.display().to_string())),
        Location::S3(s3) => {
            let download = crate::deliver::s3::fetch(connection, s3)?;
            let mut v = evidence::verify(&download.dir)
                .map_err(|e| e.shown_as(&download.dir, &s3.url()))?;
            // Objects that cannot be files of the audit are extra to it.
            v.added.extend(download.unsafe_keys.iter().cloned());
            for (held, count) in &download.retention {
                v.notes.push(if held == "none" {
                    format!("{count} object(s) without Object Lock retention (or not visible: s3:GetObjectRetention)")
                } else {
                    format!("{count} object(s) retained {held}")
                });
            }
            if let Ok(manifest) = evidence::read_manifest(&download.dir)
                && let Some(storage) = &manifest.storage
            {
                v.inconsistent
                    .extend(retention_not_held(storage, &download.retention));
            }
            Ok((v, s3.url()))
        }
    }
}

/// What the manifest claims of the objects' Object Lock retention, and
/// they do not hold: each object must be retained in the claimed mode at
/// least until the claimed time (or, for a bucket default, in its mode).
/// `held` counts objects by `MODE until TIME` (or `none`).
fn retention_not_held(
    storage: &evidence::Storage,
    held: &std::collections::BTreeMap<String, usize>,
) -> Option<String> {
    let (mode, until) = match (&storage.retention_mode, &storage.retain_until) {
        (Some(mode), until) => (mode.clone(), until.clone()),
        (None, _) => match &storage.bucket_default_retention {
            Some(default) => (default.split_whitespace().next()?.to_string(), None),
            None => return None,
        },
    };
    let short: usize = held
        .iter()
        .filter(|(h, _)| {
            let Some((m, t)) = h.split_once(" until ") else {
                return true;
            };
            let earlier = match (&until, chrono::DateTime::parse_from_rfc3339(t)) {
                (Some(claimed), Ok(t)) => chrono::DateTime::parse_from_rfc3339(claimed)
                    .map_or(true, |claimed| t < claimed),
                (Some(_), Err(_)) => true,
                (None, _) => false,
            };
            !m.eq_ignore_ascii_case(&mode) || earlier
        })
        .map(|(_, n)| n)
        .sum();
    (short > 0).then(|| {
        format!(
            "the manifest says every object is retained {mode}{}, but {short} object(s) are not",
            until.map(|u| format!(" until {u}")).unwrap_or_default()
        )
    })
}

fn report(v: Verification, shown: &str) -> Result<Outcome> {
    let mut out = String::new();
    // Paths are shown escaped; messages escape the values they quote, so
    // only what would break their line is replaced.
    for (what, list) in [
        ("changed", &v.changed),
        ("removed", &v.removed),
        ("added", &v.added),
    ] {
        for item in list {
            out.push_str(&format!("{what}: {}\n", item.escape_debug()));
        }
    }
    for item in &v.inconsistent {
        out.push_str(&crate::text::terminal_line(&format!(
            "inconsistent: {item}"
        )));
    }
    for note in &v.notes {
        // Notes may quote AWS (an object's retention).
        out.push_str(&crate::text::terminal_line(&format!("note: {note}\n")));
    }
    if let Some(signing) = &v.signed_by {
        out.push_str(&crate::text::terminal_line(&format!(
            "signed: manifest.json by KMS key {} ({}, public key sha256 {})",
            signing.kms_key_arn,
            signing.algorithm,
            signing.public_key_sha256()
        )));
    }
    let exit_code = if v.intact() {
        out.push_str(&format!(
            "intact: {} files match {}\n",
            v.files,
            crate::text::terminal_line(&format!(
                "{}/{}",
                shown.trim_end_matches('/'),
                evidence::MANIFEST
            ))
        ));
        EXIT_OK
    } else {
        out.push_str(&format!("not intact: {}\n", v.problems()));
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
