//! Reading an audit back from a prefix into a temporary directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::aws::Connection;
use crate::deliver::sdk_error_text;
use crate::error::{Error, Result};
use crate::evidence::{MANIFEST, SIGNATURE};
use crate::paths::is_plain_relative;

/// Objects read back from a prefix.
pub struct Download {
    /// Owns the temporary directory; removed when dropped.
    _temp: tempfile::TempDir,
    /// The audit directory inside it.
    pub dir: PathBuf,
    /// Keys below the prefix that are not plain relative paths (never written).
    pub unsafe_keys: Vec<String>,
    /// `COMPLIANCE until 2033-11-23T00:00:00Z` -> number of objects (`none` for objects without).
    pub retention: BTreeMap<String, usize>,
}

/// The part of a manifest the download needs: which files it lists, and
/// whether a signature goes with it.
#[derive(serde::Deserialize)]
struct ListedFiles {
    files: BTreeMap<String, serde::de::IgnoredAny>,
    #[serde(default)]
    signing: Option<serde::de::IgnoredAny>,
}

impl Download {
    /// An audit read back must have its manifest: without one it is an
    /// upload that did not finish, or not an audit at all.
    fn require_manifest(&self, location: &S3Location) -> Result<()> {
        if self.dir.join(MANIFEST).is_file() {
            return Ok(());
        }
        Err(Error::input(format!(
            "{}: holds no {MANIFEST}: not a complete amiaudit audit (an upload that did not finish, or another prefix)",
            location.url()
        )))
    }

    /// Refuses a prefix holding a key that cannot be a file of the audit.
    /// `verify` counts such keys as added; whatever else reads the audit
    /// (a baseline, diff, an export) refuses it rather than pass over it.
    pub fn require_plain_keys(&self, location: &S3Location) -> Result<()> {
        if let Some(key) = self.unsafe_keys.first() {
            return Err(Error::input(format!(
                "{}: holds `{}`, which is not a plain path below the prefix; not an amiaudit audit (amiaudit verify lists what it holds)",
                location.url(),
                key.escape_debug()
            )));
        }
        Ok(())
    }
}

impl Store {
    /// The audit below the prefix, as a directory in a fresh temporary
    /// directory (named like the prefix's last segment): its manifest, the
    /// files it lists, and an empty stand-in for every other plain key.
    pub async fn download(&self) -> Result<Download> {
        let temp = tempfile::Builder::new()
            .prefix("amiaudit-s3-")
            .tempdir()
            .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
        let name = match self.location.name() {
            "" => "audit",
            name if is_plain_relative(name) => name,
            _ => "audit",
        };
        let dir = temp.path().join(name);
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let keys = self.list(&self.location.prefix).await?;
        let mut download = Download {
            _temp: temp,
            dir,
            unsafe_keys: Vec::new(),
            retention: BTreeMap::new(),
        };
        // The manifest first: without one nothing else is read (a parent
        // prefix, an unfinished upload), and only the files it lists are
        // fetched. Any other key is extra to the audit: an empty file of
        // its name stands for it, which verify counts as added, so a
        // planted object costs neither memory nor time.
        let manifest_key = self.location.key(MANIFEST);
        if !keys.iter().any(|(key, _)| *key == manifest_key) {
            return Ok(download);
        }
        let Download {
            dir,
            unsafe_keys,
            retention,
            ..
        } = &mut download;
        let dir: &Path = dir;
        let fetched: Result<()> = async {
            self.fetch_object(&manifest_key, &dir.join(MANIFEST), retention)
                .await?;
            let manifest = std::fs::read(dir.join(MANIFEST))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<ListedFiles>(&bytes).ok());
            let signed = manifest.as_ref().is_some_and(|m| m.signing.is_some());
            let listed = manifest.map(|m| m.files).unwrap_or_default();
            let mut others = Vec::new();
            for (key, _) in &keys {
                let rel = match key.strip_prefix(&self.location.prefix) {
                    Some(rel) if is_plain_relative(rel) => rel,
                    _ => {
                        unsafe_keys.push(key.clone());
                        continue;
                    }
                };
                if rel == MANIFEST {
                    continue;
                }
                let fetched = listed.contains_key(rel) || (signed && rel == SIGNATURE);
                if !fetched {
                    others.push((key, rel));
                    continue;
                }
                let path = dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                self.fetch_object(key, &path, retention).await?;
            }
            // After the audit's own files: a key whose name a file or a
            // folder of the audit already takes (`inventory` beside
            // `inventory/...`) cannot stand in as a file, and is foreign.
            for (key, rel) in others {
                let path = dir.join(rel);
                let stood_in = path
                    .parent()
                    .is_none_or(|parent| std::fs::create_dir_all(parent).is_ok())
                    && !path.exists()
                    && std::fs::write(&path, b"").is_ok();
                if !stood_in {
                    unsafe_keys.push(key.clone());
                }
            }
            Ok(())
        }
        .await;
        fetched.map_err(|e| e.shown_as(dir, &self.location.url()))?;
        Ok(download)
    }

    /// One object into `path`, streamed (never whole in memory), its
    /// Object Lock retention counted into `retention`.
    async fn fetch_object(
        &self,
        key: &str,
        path: &Path,
        retention: &mut BTreeMap<String, usize>,
    ) -> Result<()> {
        use std::io::Write;
        let mut out = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                Error::input(format!(
                    "s3://{}/{key}: cannot read ({}); the reader needs s3:GetObject and s3:ListBucket (deploy/evidence-bucket-policy.json)",
                    self.location.bucket,
                    sdk_error_text(&e)
                ))
            })?;
        let held = match (out.object_lock_mode(), out.object_lock_retain_until_date()) {
            (Some(mode), Some(until)) => format!(
                "{} until {}",
                mode.as_str(),
                until
                    .fmt(aws_smithy_types::date_time::Format::DateTime)
                    .unwrap_or_default()
            ),
            _ => "none".to_string(),
        };
        *retention.entry(held).or_insert(0) += 1;
        let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        while let Some(chunk) = out.body.next().await {
            let chunk = chunk.map_err(|e| {
                Error::input(format!(
                    "s3://{}/{key}: read interrupted ({e})",
                    self.location.bucket
                ))
            })?;
            file.write_all(&chunk).map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    }
}

/// Downloads an audit from S3 into a temporary directory (for `verify`,
/// `diff` and `--baseline`).
pub fn fetch(connection: &Connection, location: &S3Location) -> Result<Download> {
    let download = crate::deliver::block_on(async {
        let store = Store::connect(connection, location.clone()).await?;
        store.download().await
    })??;
    download.require_manifest(location)?;
    Ok(download)
}
