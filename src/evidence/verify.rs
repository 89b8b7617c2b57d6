//! `amiaudit verify`: every file against the manifest, both ways, and the
//! manifest's claims against what the audit embeds.

use std::fs;
use std::path::Path;

use serde::Serialize;

use super::*;
use crate::error::Result;
use crate::inventory::{self, sha256_file};
use crate::output::files_below;
use crate::paths::is_plain_relative;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Verification {
    /// sha256 of manifest.json: the audit's fingerprint.
    pub fingerprint: String,
    pub files: usize,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
    /// The manifest disagrees with itself or with what it embeds.
    pub inconsistent: Vec<String>,
    /// What could not be checked (an audit written by an older amiaudit).
    pub notes: Vec<String>,
    /// The key whose signature of the manifest verified.
    pub signed_by: Option<Signing>,
}

impl Verification {
    /// `2 changed, 1 removed, 0 added, 1 inconsistent`.
    pub fn problems(&self) -> String {
        format!(
            "{} changed, {} removed, {} added, {} inconsistent",
            self.changed.len(),
            self.removed.len(),
            self.added.len(),
            self.inconsistent.len()
        )
    }

    pub fn intact(&self) -> bool {
        self.changed.is_empty()
            && self.removed.is_empty()
            && self.added.is_empty()
            && self.inconsistent.is_empty()
    }
}

/// Recomputes every file's sha256, both ways, and checks the manifest
/// against what it embeds. Never reads or follows a path that is not a
/// plain path inside `dir`. An audit replaced while it was read (a new one
/// swapped in: the directory at `dir` is another one afterwards) is read
/// again, so the answer is about one audit, old or new, whole.
pub fn verify(dir: &Path) -> Result<Verification> {
    use std::os::unix::fs::MetadataExt;
    let identity = |dir: &Path| fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()));
    let mut attempts = 0;
    loop {
        attempts += 1;
        let before = identity(dir);
        let verified = verify_once(dir);
        if before == identity(dir) || attempts == 8 {
            return verified;
        }
    }
}

fn verify_once(dir: &Path) -> Result<Verification> {
    let manifest = read_manifest(dir)?;
    let text = fs::read(dir.join(MANIFEST)).map_err(|e| Error::io(&dir.join(MANIFEST), e))?;
    let mut v = Verification {
        fingerprint: hex::encode(Sha256::digest(&text)),
        files: manifest.files.len(),
        ..Default::default()
    };
    let present = files_below(dir)?;
    for (rel, digest) in &manifest.files {
        if !is_plain_relative(rel) {
            v.inconsistent.push(format!(
                "the manifest lists `{}`, outside the directory",
                rel.escape_debug()
            ));
            continue;
        }
        let path = dir.join(rel);
        if !present.contains(rel) || !path.is_file() {
            v.removed.push(rel.clone());
        } else if &sha256_file(&path)? != digest {
            v.changed.push(rel.clone());
        }
    }
    let signed = manifest.signing.is_some();
    for rel in present {
        if rel != MANIFEST && !(signed && rel == SIGNATURE) && !manifest.files.contains_key(&rel) {
            v.added.push(rel);
        }
    }
    if let Some(signing) = &manifest.signing {
        check_signature(dir, &text, signing, &mut v);
    }
    if manifest.files.is_empty() {
        v.inconsistent
            .push("the manifest lists no file".to_string());
        return Ok(v);
    }
    check_inventory(dir, &manifest, &mut v);
    check_policies(dir, &manifest, &mut v);
    check_claims(dir, &manifest, &mut v);
    Ok(v)
}

/// What the manifest in `dir` claims and the audit does not hold (its
/// signature, what it embeds, what findings.json says), without hashing
/// its files: an earlier audit whose manifest was edited is not replaced
/// as if it were amiaudit's own.
pub fn manifest_inconsistencies(dir: &Path, manifest: &EvidenceManifest) -> Vec<String> {
    let mut v = Verification::default();
    if let Some(signing) = &manifest.signing {
        match fs::read(dir.join(MANIFEST)) {
            Ok(text) => check_signature(dir, &text, signing, &mut v),
            Err(e) => v.inconsistent.push(format!("{MANIFEST}: {e}")),
        }
    }
    check_inventory(dir, manifest, &mut v);
    check_policies(dir, manifest, &mut v);
    check_claims(dir, manifest, &mut v);
    // A signature missing or not matching is as good as an edit.
    let signature = v
        .removed
        .into_iter()
        .chain(v.changed)
        .map(|f| format!("{f}: the manifest's signature does not hold"));
    v.inconsistent.into_iter().chain(signature).collect()
}

/// The signature beside a manifest that names a signing key: present, a
/// plain file, and that key's signature of these bytes.
fn check_signature(dir: &Path, manifest: &[u8], signing: &Signing, v: &mut Verification) {
    let path = dir.join(SIGNATURE);
    let plain = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    let signature = if plain { fs::read(&path).ok() } else { None };
    let Some(signature) = signature else {
        v.removed.push(SIGNATURE.to_string());
        return;
    };
    match signature_verifies(signing, manifest, &signature) {
        Ok(true) => v.signed_by = Some(signing.clone()),
        Ok(false) => v.changed.push(format!(
            "{SIGNATURE} (not the signature of manifest.json by {})",
            signing.kms_key_arn
        )),
        Err(e) => v.inconsistent.push(e.to_string()),
    }
}

/// The manifest's own claims (who wrote the audit, with which framework,
/// where it is kept, when the scan ran) against the copies the audit
/// embeds: findings.json states each of them again, the embedded inventory
/// the scan's times. What nothing embedded states is listed as unproven.
fn check_claims(dir: &Path, manifest: &EvidenceManifest, v: &mut Verification) {
    // (field, the manifest's value, the embedded value, where it is stated)
    let mut pairs: Vec<(&str, String, String, &str)> = Vec::new();
    if let Ok(inv) = inventory::read_manifest(&dir.join(INVENTORY_DIR)) {
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.and_then(|t| inventory::format_timestamp(t.timestamp_millis()).ok())
        };
        let by = "the embedded inventory";
        pairs.push((
            "scan_started_at",
            json(&manifest.scan_started_at),
            json(&time(inv.scan_started_at)),
            by,
        ));
        pairs.push((
            "scan_ended_at",
            json(&manifest.scan_ended_at),
            json(&time(inv.scan_ended_at)),
            by,
        ));
    }
    let report = crate::findings::FILE;
    let spellings = [report.to_string(), crate::output::file::gzip_name(report)];
    let listed = spellings
        .iter()
        .any(|name| manifest.files.contains_key(name));
    let stated = match listed {
        true => match crate::findings::read_meta(dir) {
            Ok(meta) => Some(meta),
            Err(e) => {
                // Listed and there, yet unreadable: its claims cannot be
                // checked, which is a failure, never a note. (Listed and
                // gone is already `removed`.)
                let present = spellings
                    .iter()
                    .any(|name| fs::symlink_metadata(dir.join(name)).is_ok());
                if present {
                    v.inconsistent.push(format!(
                        "{report}: listed, but its claims cannot be read: {e}"
                    ));
                }
                None
            }
        },
        false => None,
    };
    match &stated {
        Some(meta) => {
            let by = report;
            pairs.extend([
                ("tool_version", json(&manifest.tool_version), json(&meta.tool_version), by),
                ("collected_at", json(&manifest.collected_at), json(&meta.collected_at), by),
                ("scope", json(&manifest.scope), json(&meta.scope), by),
                ("inventory_complete", json(&manifest.inventory_complete), json(&meta.inventory_complete), by),
                ("policy_pack_sha256", json(&manifest.policy_pack_sha256), json(&meta.policy_pack_sha256), by),
                ("waivers_sha256", json(&manifest.waivers_sha256), json(&meta.waivers_sha256), by),
                ("framework", json(&manifest.framework), json(&meta.framework), by),
                ("storage", json(&manifest.storage), json(&meta.storage), by),
            ]);
        }
        None if listed => {}
        None => v.notes.push(format!(
            "not proven by anything the audit embeds (it holds no {report}): tool_version, framework{}",
            if manifest.storage.is_some() { ", storage" } else { "" }
        )),
    }
    for (field, claimed, embedded, by) in pairs {
        if claimed != embedded {
            v.inconsistent.push(format!(
                "`{field}` is {} in the manifest but {} in {by}",
                claimed.escape_debug(),
                embedded.escape_debug()
            ));
        }
    }
    let has_rule_files = manifest
        .files
        .keys()
        .any(|rel| rel.starts_with(&format!("{POLICIES_DIR}/")));
    if manifest.policy_files.is_empty() && has_rule_files {
        v.inconsistent.push(
            "rule files are embedded but `policy_files` names none, so the pack hash is not checked against them"
                .to_string(),
        );
    }
    if let Some(storage) = &manifest.storage {
        v.notes.push(format!(
            "the manifest says it was {}; only `amiaudit verify {}` checks that the objects hold that retention",
            storage.describe(),
            storage.location
        ));
    }
}

/// A value as JSON text: one notion of equality for every field's type.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The embedded inventory must be whole and must say what the manifest says.
fn check_inventory(dir: &Path, manifest: &EvidenceManifest, v: &mut Verification) {
    let inventory_dir = dir.join(INVENTORY_DIR);
    let listed = format!("{INVENTORY_DIR}/{}", inventory::MANIFEST_FILE);
    if !manifest.files.contains_key(&listed) {
        v.inconsistent.push(format!(
            "the manifest does not list `{listed}`: the audit carries no inventory"
        ));
        return;
    }
    let inv = match inventory::read_manifest(&inventory_dir) {
        Ok(m) => m,
        Err(e) => {
            v.inconsistent.push(format!("the embedded inventory: {e}"));
            return;
        }
    };
    for (table, entry) in &inv.tables {
        let rel = format!("{INVENTORY_DIR}/{}", entry.file);
        if manifest.files.get(&rel) != Some(&entry.sha256) {
            v.inconsistent.push(format!(
                "table `{table}`: the inventory's manifest and the audit's disagree on `{rel}`"
            ));
        }
    }
    let collected_at =
        inventory::format_timestamp(inv.collected_at.timestamp_millis()).unwrap_or_default();
    if manifest.collected_at != collected_at {
        v.inconsistent.push(format!(
            "collected_at `{}` differs from the inventory's `{collected_at}`",
            manifest.collected_at.escape_debug()
        ));
    }
    if manifest.inventory_complete != inv.complete {
        v.inconsistent.push(format!(
            "inventory_complete is {} but the inventory says {}",
            manifest.inventory_complete, inv.complete
        ));
    }
    let same_scope =
        serde_json::to_value(&manifest.scope).ok() == serde_json::to_value(&inv.scope).ok();
    if !same_scope {
        v.inconsistent
            .push("scope differs from the inventory's".to_string());
    }
}

/// The embedded rule files must hash to the pack hash; the embedded waiver
/// file to the waiver hash.
fn check_policies(dir: &Path, manifest: &EvidenceManifest, v: &mut Verification) {
    if manifest.policy_files.is_empty() {
        // Rule files embedded without being named are inconsistent (said
        // elsewhere), not missing.
        let embedded = manifest
            .files
            .keys()
            .any(|rel| rel.starts_with(&format!("{POLICIES_DIR}/")));
        if embedded {
            return;
        }
        v.notes.push(format!(
            "the rule files are not embedded (written by amiaudit {}): the policy pack hash and waiver hash cannot be checked",
            manifest.tool_version.escape_debug()
        ));
        return;
    }
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    for (original, rel) in &manifest.policy_files {
        if !is_plain_relative(rel) || !manifest.files.contains_key(rel) {
            v.inconsistent.push(format!(
                "rule file `{}` is not one of the audit's files",
                rel.escape_debug()
            ));
            return;
        }
        match fs::read(dir.join(rel)) {
            Ok(bytes) => files.push((original, bytes)),
            Err(_) => return, // already reported as removed
        }
    }
    let sha = crate::policy::pack_sha256(files.iter().map(|(p, b)| (*p, b.as_slice())));
    if sha != manifest.policy_pack_sha256 {
        v.inconsistent.push(format!(
            "policy_pack_sha256 is {} but the embedded rule files hash to {sha}",
            manifest.policy_pack_sha256.escape_debug()
        ));
    }
    match (
        &manifest.waivers_sha256,
        manifest.files.contains_key(WAIVERS_FILE),
    ) {
        (Some(expected), true) => {
            if let Ok(actual) = sha256_file(&dir.join(WAIVERS_FILE))
                && &actual != expected
            {
                v.inconsistent.push(format!(
                    "waivers_sha256 is {} but the embedded waiver file hashes to {actual}",
                    expected.escape_debug()
                ));
            }
        }
        (None, false) => {}
        (Some(_), false) => v
            .inconsistent
            .push("waivers_sha256 is set but no waiver file is embedded".to_string()),
        (None, true) => v
            .inconsistent
            .push("a waiver file is embedded but waivers_sha256 is not set".to_string()),
    }
}
