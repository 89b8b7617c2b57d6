//! Evidence: an audit output directory an auditor can keep and check.
//!
//! Owns the directory's `manifest.json` (sha256 of every file, tool version,
//! policy pack and waiver hashes, scope, caller identity, collection time),
//! the copy of the inventory the audit used, `amiaudit verify`, and the
//! optional reproducible `.tar.gz` bundle. Runs after render, over files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inventory::{self, Inventory, Scope, sha256_file};

pub const MANIFEST: &str = "manifest.json";
pub const INVENTORY_DIR: &str = "inventory";

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
    /// Relative path -> sha256, every file of the directory but this one.
    pub files: BTreeMap<String, String>,
}

pub const KIND: &str = "amiaudit-audit";

/// sha256 of files already known to the writer (hashed while written, or
/// verified on load), by path, so the manifest need not read them again.
pub type Digests = BTreeMap<PathBuf, String>;

/// Every file below `dir`, as sorted relative paths with `/` separators.
fn walk(dir: &Path) -> Result<Vec<String>> {
    fn inner(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.is_dir() {
                inner(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    inner(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Prepares an output directory: creates it, and removes what an earlier
/// audit wrote there (the files its manifest lists), so a re-run leaves no
/// stale report behind. Other files are left alone.
pub fn prepare(out: &Path) -> Result<()> {
    fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let manifest = out.join(MANIFEST);
    if let Ok(text) = fs::read_to_string(&manifest)
        && let Ok(old) = serde_json::from_str::<EvidenceManifest>(&text)
        && old.kind == KIND
    {
        for file in old.files.keys() {
            let _ = fs::remove_file(out.join(file));
        }
        let _ = fs::remove_dir_all(out.join(INVENTORY_DIR));
        let _ = fs::remove_file(&manifest);
    }
    Ok(())
}

/// Copies the inventory files (as loaded and verified) into `out/inventory/`.
pub fn copy_inventory(
    source: &Path,
    inventory: &Inventory,
    out: &Path,
    digests: &mut Digests,
) -> Result<()> {
    let dest = out.join(INVENTORY_DIR);
    fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    let mut files: Vec<&str> = inventory
        .manifest()
        .tables
        .values()
        .map(|t| t.file.as_str())
        .collect();
    files.push(inventory::MANIFEST_FILE);
    for file in files {
        let from = source.join(file);
        fs::copy(&from, dest.join(file)).map_err(|e| Error::io(&from, e))?;
    }
    // Table files were checked against these digests when the inventory loaded.
    for table in inventory.manifest().tables.values() {
        digests.insert(dest.join(&table.file), table.sha256.clone());
    }
    Ok(())
}

/// Writes `manifest.json` over every file now in `out`.
pub fn write_manifest(
    out: &Path,
    mut manifest: EvidenceManifest,
    known: &Digests,
) -> Result<EvidenceManifest> {
    manifest.files.clear();
    for rel in walk(out)? {
        if rel == MANIFEST {
            continue;
        }
        let path = out.join(&rel);
        let digest = match known.get(&path) {
            Some(d) => d.clone(),
            None => sha256_file(&path)?,
        };
        manifest.files.insert(rel, digest);
    }
    let path = out.join(MANIFEST);
    let mut text =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    text.push('\n');
    fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    Ok(manifest)
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Verification {
    pub files: usize,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty() && self.added.is_empty()
    }
}

pub fn read_manifest(dir: &Path) -> Result<EvidenceManifest> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input(format!(
                "{}: not found; give a directory written by `amiaudit audit`",
                path.display()
            ))
        } else {
            Error::io(&path, e)
        }
    })?;
    let manifest: EvidenceManifest = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: not an audit manifest: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if manifest.kind != KIND {
        return Err(Error::input(format!(
            "{}: not an audit manifest (kind `{}`)",
            path.display(),
            manifest.kind
        )));
    }
    Ok(manifest)
}

/// Recomputes every file's sha256 and compares with the manifest.
pub fn verify(dir: &Path) -> Result<Verification> {
    let manifest = read_manifest(dir)?;
    let mut v = Verification {
        files: manifest.files.len(),
        ..Default::default()
    };
    let present = walk(dir)?;
    for (rel, digest) in &manifest.files {
        let path = dir.join(rel);
        if !path.is_file() {
            v.removed.push(rel.clone());
        } else if &sha256_file(&path)? != digest {
            v.changed.push(rel.clone());
        }
    }
    for rel in present {
        if rel != MANIFEST && !manifest.files.contains_key(&rel) {
            v.added.push(rel);
        }
    }
    Ok(v)
}

/// Writes `<out>.tar.gz` beside the directory: sorted entries, fixed
/// timestamps and modes, so the same directory gives the same bundle bytes.
pub fn bundle(out: &Path) -> Result<PathBuf> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit".to_string());
    let path = out.with_file_name(format!("{name}.tar.gz"));
    let file = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let fail = |e: std::io::Error| Error::io(&path, e);
    for rel in walk(out)? {
        let data = fs::read(out.join(&rel)).map_err(|e| Error::io(&out.join(&rel), e))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{rel}"), data.as_slice())
            .map_err(fail)?;
    }
    tar.into_inner().map_err(fail)?.finish().map_err(fail)?;
    Ok(path)
}
