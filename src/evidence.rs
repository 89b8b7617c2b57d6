//! Evidence: an audit output directory an auditor can keep and check.
//!
//! Owns the directory's `manifest.json` (sha256 of every file, tool version,
//! policy pack and waiver hashes, scope, caller identity, collection time),
//! the copies it embeds (the inventory, the rule files, the waiver file),
//! `amiaudit verify`, and the optional reproducible `.tar.gz` bundle. Runs
//! after render, over the files of a staging directory (see `output`).
//!
//! `verify` trusts nothing the manifest says about itself: every listed path
//! must be a plain path inside the directory, every file must match its
//! digest both ways, and the manifest's own fields must agree with what it
//! embeds (the inventory's manifest and tables, the rule files' pack hash,
//! the waiver file's hash).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
pub use crate::findings::Storage;
use crate::inventory::{self, Scope, sha256_file};
use crate::output::{files_below, is_plain_relative};

pub const MANIFEST: &str = "manifest.json";
pub const INVENTORY_DIR: &str = "inventory";
/// The rule files the audit ran, copied in.
pub const POLICIES_DIR: &str = "policies";
/// The waiver file the audit applied, copied in.
pub const WAIVERS_FILE: &str = "waivers.yaml";
/// The DER ECDSA signature of manifest.json, beside it, when the audit was
/// signed with `--sign-with-kms` (the manifest names the key).
pub const SIGNATURE: &str = "manifest.json.sig";

/// The evidence manifest of an audit output directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceManifest {
    /// Always `amiaudit-audit`: tells this manifest from an inventory's.
    pub kind: String,
    pub tool_version: String,
    /// The inventory's collection time: the audit's point in time.
    pub collected_at: String,
    pub scope: Scope,
    /// When the live scan behind the inventory started and ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_ended_at: Option<String>,
    pub inventory_complete: bool,
    pub policy_pack_sha256: String,
    pub waivers_sha256: Option<String>,
    pub framework: Option<String>,
    /// Each rule file's path as the pack was loaded -> its copy under
    /// `policies/` (absent in audits written before rules were embedded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policy_files: BTreeMap<String, String>,
    /// Where the audit was delivered and with what retention (`--out s3://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// The KMS key whose signature of this manifest is [`SIGNATURE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<Signing>,
    /// Relative path -> sha256, every file of the directory but this one
    /// (and its signature).
    pub files: BTreeMap<String, String>,
}

/// The key an audit's manifest is signed with (`--sign-with-kms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// The key's ARN (kms:GetPublicKey `KeyId`).
    pub kms_key_arn: String,
    /// Always `ECDSA_SHA_256`.
    pub algorithm: String,
    /// The key's public half: DER SubjectPublicKeyInfo, base64
    /// (kms:GetPublicKey `PublicKey`).
    pub public_key: String,
}

impl Signing {
    /// sha256 of the public key's DER: how a key is named in one line.
    pub fn public_key_sha256(&self) -> String {
        let der = aws_smithy_types::base64::decode(&self.public_key).unwrap_or_default();
        hex::encode(Sha256::digest(der))
    }
}

/// The DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey,
/// prime256v1, a 66-byte bit string), before the uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// What a signed audit's key signs: this one line naming the manifest's
/// sha256 (short enough for kms:Sign's RAW messages, and never mistaken for
/// a signature of anything else). An auditor checks it without amiaudit:
/// `printf 'amiaudit-manifest-sha256:%s' "$(sha256sum manifest.json | cut -c1-64)"
/// | openssl dgst -sha256 -verify key.pem -signature manifest.json.sig`.
pub fn signed_statement(manifest: &[u8]) -> String {
    format!(
        "amiaudit-manifest-sha256:{}",
        hex::encode(Sha256::digest(manifest))
    )
}

/// Whether `signature` (DER ECDSA) is `signing`'s key's signature of the
/// [`signed_statement`] of `manifest` (its bytes). An error when the
/// recorded key is not a P-256 public key at all.
pub fn signature_verifies(signing: &Signing, manifest: &[u8], signature: &[u8]) -> Result<bool> {
    let der = aws_smithy_types::base64::decode(&signing.public_key).unwrap_or_default();
    let point = der
        .strip_prefix(&P256_SPKI_PREFIX)
        .filter(|p| p.len() == 65 && p[0] == 0x04 && signing.algorithm == "ECDSA_SHA_256")
        .ok_or_else(|| {
            Error::input(format!(
                "the manifest's signing key `{}` is not an ECDSA_SHA_256 P-256 public key",
                signing.kms_key_arn.escape_debug()
            ))
        })?;
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point);
    Ok(key
        .verify(signed_statement(manifest).as_bytes(), signature)
        .is_ok())
}

pub const KIND: &str = "amiaudit-audit";

/// An audit directory, as an output amiaudit may write over.
pub const OUTPUT: crate::output::Kind = crate::output::Kind {
    noun: "audit",
    listed: listed_files,
};

/// The files an audit directory's manifest lists, the manifest included.
fn listed_files(dir: &Path) -> Result<crate::output::Listed> {
    let manifest = read_manifest(dir)?;
    let signature = manifest.signing.as_ref().map(|_| SIGNATURE.to_string());
    Ok(manifest
        .files
        .into_iter()
        .map(|(file, sha)| (file, Some(sha)))
        .chain([(MANIFEST.to_string(), None)])
        .chain(signature.map(|s| (s, None)))
        .collect())
}

/// sha256 of files already known to the writer (hashed while written, or
/// verified on load), by path, so the manifest need not read them again.
pub type Digests = BTreeMap<PathBuf, String>;

/// Copies the inventory at `source` into `dir/inventory/`, hashing each
/// file as it is copied: a file whose bytes do not match the manifest (it
/// changed after it was written, or while it was read) is an error naming
/// it. The audit then reads only this copy, so what it judges is what it
/// embeds, whatever happens to `source` meanwhile. The manifest's paths are
/// checked plain file names before any is opened.
pub fn embed_inventory(source: &Path, dir: &Path, digests: &mut Digests) -> Result<()> {
    if !source.is_dir() {
        return Err(Error::input(format!(
            "{}: inventory directory not found (give the folder that holds manifest.json)",
            source.display()
        )));
    }
    let manifest_path = source.join(inventory::MANIFEST_FILE);
    let text = Error::read_text(
        &manifest_path,
        "not found; an inventory directory needs a manifest.json (write one with `amiaudit scan` or `amiaudit synth`)",
    )?;
    let manifest = inventory::parse_manifest(&text, &manifest_path)?;
    let dest = dir.join(INVENTORY_DIR);
    fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    let copy = dest.join(inventory::MANIFEST_FILE);
    fs::write(&copy, &text).map_err(|e| Error::io(&copy, e))?;
    for (table, entry) in &manifest.tables {
        let from = source.join(&entry.file);
        let to = dest.join(&entry.file);
        let (reader, len) = crate::error::open_regular_file(
            &from,
            &format!("table file not found (listed for `{table}` in manifest.json)"),
        )?;
        let mut reader = std::io::Read::take(reader, len);
        let file = fs::File::create_new(&to).map_err(|e| Error::io(&to, e))?;
        let mut writer = HashingWriter {
            inner: std::io::BufWriter::new(file),
            hasher: Sha256::new(),
        };
        std::io::copy(&mut reader, &mut writer).map_err(|e| Error::io(&from, e))?;
        use std::io::Write;
        writer.inner.flush().map_err(|e| Error::io(&to, e))?;
        let digest = hex::encode(writer.hasher.finalize());
        if digest != entry.sha256 {
            return Err(Error::input(format!(
                "{}: sha256 does not match manifest.json; the file changed after it was written, or while the audit read it (restore it, or re-run the scan)",
                from.display()
            )));
        }
        digests.insert(to, digest);
    }
    Ok(())
}

/// Writes through, hashing what passes.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(written) = buf.get(..n) {
            self.hasher.update(written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Copies the rule files and the waiver file into `dir`; returns the
/// original path -> copy map for the manifest.
pub fn embed_policies(
    dir: &Path,
    files: &[(String, String)],
    waivers: Option<&str>,
) -> Result<BTreeMap<String, String>> {
    let dest = dir.join(POLICIES_DIR);
    fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    let mut map = BTreeMap::new();
    for (index, (original, text)) in files.iter().enumerate() {
        let base: String = Path::new(original)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let rel = format!("{POLICIES_DIR}/{index:03}-{base}");
        let path = dir.join(&rel);
        fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        map.insert(original.clone(), rel);
    }
    if let Some(text) = waivers {
        let path = dir.join(WAIVERS_FILE);
        fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(map)
}

/// Writes `manifest.json` over every file now in `dir`; returns its sha256.
pub fn write_manifest(
    dir: &Path,
    mut manifest: EvidenceManifest,
    known: &Digests,
) -> Result<String> {
    manifest.files.clear();
    for rel in files_below(dir)? {
        if rel == MANIFEST || rel == SIGNATURE || rel.starts_with('.') {
            continue;
        }
        let path = dir.join(&rel);
        let digest = match known.get(&path) {
            Some(d) => d.clone(),
            None => sha256_file(&path)?,
        };
        manifest.files.insert(rel, digest);
    }
    let path = dir.join(MANIFEST);
    let mut text =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    text.push('\n');
    fs::write(&path, &text).map_err(|e| Error::io(&path, e))?;
    Ok(hex::encode(Sha256::digest(text.as_bytes())))
}

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

pub fn read_manifest(dir: &Path) -> Result<EvidenceManifest> {
    let path = dir.join(MANIFEST);
    let text = Error::read_text(
        &path,
        "not found; give a directory written by `amiaudit audit`",
    )?;
    let manifest: EvidenceManifest = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: not an audit manifest: {}",
            path.display(),
            e.line(),
            e.column(),
            crate::error::strip_serde_position(&e.to_string())
        ))
    })?;
    if manifest.kind != KIND {
        return Err(Error::input(format!(
            "{}: not an audit manifest (kind `{}`)",
            path.display(),
            manifest.kind.escape_debug()
        )));
    }
    Ok(manifest)
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
    let stated = match manifest.files.get(report) {
        Some(_) => crate::findings::read_meta(dir).ok(),
        None => None,
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

/// The bundle's path for an audit directory: `<dir>.tar.gz` beside it.
pub fn bundle_path(destination: &Path) -> Result<PathBuf> {
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::input(format!("{}: no name for a bundle", destination.display())))?;
    Ok(destination.with_file_name(format!("{name}.tar.gz")))
}

/// Writes the directory `dir` as a reproducible `.tar.gz` (sorted entries,
/// fixed times and modes, entries under `name/`) into a temporary file
/// created exclusively beside `path` (never a name someone could have
/// planted). Written before the audit is moved into place, so a bundle that
/// cannot be written costs nothing; [`place_bundle`] moves it in after.
pub fn write_bundle_beside(dir: &Path, name: &str, path: &Path) -> Result<tempfile::NamedTempFile> {
    let parent = path
        .parent()
        .ok_or_else(|| Error::input(format!("{}: no directory for a bundle", path.display())))?;
    let temp = tempfile::Builder::new()
        .prefix(".amiaudit-bundle-")
        .tempfile_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let file = temp.reopen().map_err(|e| Error::io(temp.path(), e))?;
    let file = write_bundle(dir, name, std::io::BufWriter::new(file))
        .map_err(|e| Error::io(temp.path(), e))?;
    let file = file
        .into_inner()
        .map_err(|e| Error::io(temp.path(), e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(temp.path(), e))?;
    Ok(temp)
}

/// Moves a bundle written by [`write_bundle_beside`] to `path`: over the
/// file there only while it still hashes to `earlier` (the earlier audit's
/// own bundle, checked before the run), else only where nothing is. When
/// it cannot be placed the temporary file is kept and the error names it.
pub fn place_bundle(
    temp: tempfile::NamedTempFile,
    path: &Path,
    earlier: Option<&str>,
) -> Result<PathBuf> {
    let present = match fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(kept_bundle(temp, path, &e.to_string())),
    };
    let placed = match (present, earlier) {
        (false, _) => temp
            .persist_noclobber(path)
            .map_err(|e| (e.file, e.error.to_string())),
        (true, Some(earlier))
            if fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
                && sha256_file(path).ok().as_deref() == Some(earlier) =>
        {
            temp.persist(path)
                .map_err(|e| (e.file, e.error.to_string()))
        }
        (true, _) => Err((
            temp,
            "a file appeared there during the run that is not the earlier audit's bundle"
                .to_string(),
        )),
    };
    match placed {
        Ok(_) => Ok(path.to_path_buf()),
        Err((temp, why)) => Err(kept_bundle(temp, path, &why)),
    }
}

fn kept_bundle(temp: tempfile::NamedTempFile, path: &Path, why: &str) -> Error {
    let kept = match temp.keep() {
        Ok((_, kept)) => kept.display().to_string(),
        Err(e) => format!("nowhere ({})", e.error),
    };
    Error::input(format!(
        "{}: bundle not placed ({why}); the audit is in place and its bundle is kept at {kept}",
        path.display()
    ))
}

/// A file at a bundle's place may be replaced only when it is, byte for
/// byte, the bundle of the earlier audit about to be replaced (bundles are
/// reproducible: the earlier audit is its record). Anything else, a user's
/// own `tar czf` of the directory included, is refused. Returns the earlier
/// bundle's sha256 (None: there is none).
pub fn check_bundle_replaceable(path: &Path, earlier: &Path, name: &str) -> Result<Option<String>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.is_file() && read_manifest(earlier).is_ok() {
        let present = sha256_file(path).ok();
        if present.is_some() && present == bundle_sha256(earlier, name).ok() {
            return Ok(present);
        }
    }
    Err(Error::input(format!(
        "{}: exists and is not the bundle amiaudit wrote of the audit at `{}`; move it away or drop --bundle",
        path.display(),
        earlier.display()
    )))
}

/// sha256 of the bundle `dir` would make, without writing it.
fn bundle_sha256(dir: &Path, name: &str) -> Result<String> {
    let hashing = HashingWriter {
        inner: std::io::sink(),
        hasher: Sha256::new(),
    };
    let done = write_bundle(dir, name, hashing).map_err(|e| Error::io(dir, e))?;
    Ok(hex::encode(done.hasher.finalize()))
}

fn write_bundle<W: std::io::Write>(dir: &Path, name: &str, out: W) -> std::io::Result<W> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let rels = files_below(dir).map_err(|e| std::io::Error::other(e.to_string()))?;
    // A staged audit still holds the staging marker, which is not part of it.
    for rel in rels.into_iter().filter(|r| r != crate::output::MARKER) {
        let data = fs::read(dir.join(&rel))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{rel}"), data.as_slice())?;
    }
    let gz = tar.into_inner()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(dir: &Path, at: &Path) -> tempfile::NamedTempFile {
        write_bundle_beside(dir, "audit", at).unwrap()
    }

    #[test]
    fn a_bundle_is_placed_only_where_nothing_or_the_earlier_bundle_is() {
        let root = tempfile::tempdir().unwrap();
        let audit = root.path().join("audit");
        fs::create_dir(&audit).unwrap();
        fs::write(audit.join("a.txt"), "a").unwrap();
        let at = root.path().join("audit.tar.gz");

        // Nothing there: placed.
        place_bundle(staged(&audit, &at), &at, None).unwrap();
        let earlier = sha256_file(&at).unwrap();

        // The earlier bundle there: replaced.
        fs::write(audit.join("a.txt"), "b").unwrap();
        place_bundle(staged(&audit, &at), &at, Some(&earlier)).unwrap();
        assert_ne!(sha256_file(&at).unwrap(), earlier);

        // Something else appeared during the run: left alone, ours kept.
        fs::write(&at, "a user's file").unwrap();
        let err = place_bundle(staged(&audit, &at), &at, Some(&earlier))
            .unwrap_err()
            .to_string();
        assert_eq!(fs::read(&at).unwrap(), b"a user's file");
        let kept = err.rsplit("kept at ").next().unwrap();
        assert!(Path::new(kept).is_file(), "{err}");
        // A file appearing where none was: left alone too.
        let fresh = root.path().join("fresh.tar.gz");
        let temp = staged(&audit, &fresh);
        fs::write(&fresh, "planted").unwrap();
        assert!(place_bundle(temp, &fresh, None).is_err());
        assert_eq!(fs::read(&fresh).unwrap(), b"planted");
    }
}
