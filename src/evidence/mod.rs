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

use crate::output::file::HashingWriter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
pub use crate::findings::Storage;
use crate::inventory::{self, Scope, sha256_file};
use crate::output::files_below;

mod bundle;
mod verify;

pub use bundle::{bundle_path, check_bundle_replaceable, place_bundle, write_bundle_beside};
pub use verify::{Verification, verify};

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
        .filter(|p| {
            p.len() == 65 && p.first() == Some(&0x04) && signing.algorithm == "ECDSA_SHA_256"
        })
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
    consistent: manifest_consistent,
};

/// An earlier audit whose manifest claims what the audit does not hold
/// (or whose signature does not verify) is the user's now: not replaced.
fn manifest_consistent(dir: &Path) -> Result<()> {
    let manifest = read_manifest(dir)?;
    match verify::manifest_inconsistencies(dir, &manifest).first() {
        None => Ok(()),
        Some(first) => Err(Error::input(format!(
            "its {MANIFEST} says what the audit does not hold ({first}; `amiaudit verify` says all)"
        ))),
    }
}

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
        let mut writer = HashingWriter::new(std::io::BufWriter::new(file));
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
