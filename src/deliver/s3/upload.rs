//! Writing an audit below a prefix: what the manifest lists, the manifest last.

use std::path::{Path, PathBuf};

use aws_sdk_s3::types::ChecksumAlgorithm;

use super::*;
use crate::deliver::sdk_error_text;
use crate::error::{Error, Result};
use crate::evidence::{MANIFEST, SIGNATURE, Storage};
use crate::paths::is_plain_relative;

impl Store {
    /// Uploads the files `dir`'s manifest lists below the prefix, then
    /// `bundle` beside it, then the manifest. What goes up is what the
    /// manifest says: the manifest is read once, first, and sent from
    /// those bytes; a file whose bytes no longer match their digest in it,
    /// or a file it does not list, stops the upload before the manifest
    /// goes (another run writing into a shared `--local-copy`, an edit).
    /// Returns the number of objects written.
    pub async fn upload(
        &self,
        dir: &Path,
        storage: &Storage,
        bundle: Option<&Path>,
    ) -> Result<usize> {
        use futures_util::StreamExt;
        let manifest_path = dir.join(MANIFEST);
        let manifest_bytes = tokio::fs::read(&manifest_path)
            .await
            .map_err(|e| Error::io(&manifest_path, e))?;
        let manifest = serde_json::from_slice::<crate::evidence::EvidenceManifest>(&manifest_bytes)
            .map_err(|e| Error::Internal(format!("{}: {e}", manifest_path.display())))?;
        let signed = manifest.signing.is_some();
        let listed = manifest.files;
        let changed = |what: String| {
            Error::input(format!(
                "{}: {what} since the audit was written; nothing that does not match its manifest is uploaded",
                dir.display()
            ))
        };
        for rel in crate::output::files_below(dir)? {
            if rel != MANIFEST && !(signed && rel == SIGNATURE) && !listed.contains_key(&rel) {
                return Err(changed(format!("`{}` appeared", rel.escape_debug())));
            }
        }
        let mut uploads: Vec<(String, PathBuf, Option<&str>)> = Vec::new();
        for (rel, digest) in &listed {
            if !is_plain_relative(rel) {
                return Err(changed(format!(
                    "the manifest lists `{}`",
                    rel.escape_debug()
                )));
            }
            uploads.push((self.location.key(rel), dir.join(rel), Some(digest)));
        }
        // The signature goes before the manifest too (checked by its
        // signature, not a digest): a prefix is an audit only once the
        // manifest is there, and then its signature already is.
        if signed {
            uploads.push((self.location.key(SIGNATURE), dir.join(SIGNATURE), None));
        }
        if let Some(bundle) = bundle {
            uploads.push((self.location.bundle_key(), bundle.to_path_buf(), None));
        }
        let count = uploads.len() + 1;
        let mut results = futures_util::stream::iter(uploads.iter().map(|(key, path, digest)| {
            let changed = &changed;
            async move {
                let body = tokio::fs::read(path)
                    .await
                    .map_err(|e| Error::io(path, e))?;
                if let Some(digest) = digest {
                    use sha2::{Digest, Sha256};
                    if hex::encode(Sha256::digest(&body)) != *digest {
                        return Err(changed(format!("{} changed", path.display())));
                    }
                }
                self.put(key, body, storage).await
            }
        }))
        .buffer_unordered(8);
        while let Some(result) = results.next().await {
            result?;
        }
        drop(results);
        // Last: only now does the prefix hold an audit that verifies.
        self.put(&self.location.key(MANIFEST), manifest_bytes, storage)
            .await?;
        Ok(count)
    }

    async fn put(&self, key: &str, body: Vec<u8>, storage: &Storage) -> Result<()> {
        use sha2::{Digest, Sha256};
        let checksum = aws_smithy_types::base64::encode(Sha256::digest(&body));
        let sent_checksum = checksum.clone();
        let mut request = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(key)
            .content_type(content_type(key))
            // Never over an existing object, even one written since the
            // prefix was checked.
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .body(body.into());
        if let (Some(mode), Some(until)) = (&storage.retention_mode, &storage.retain_until) {
            // Never a silent default: only the two modes S3 has.
            let mode = match mode.as_str() {
                "COMPLIANCE" => RetainMode::Compliance,
                "GOVERNANCE" => RetainMode::Governance,
                other => {
                    return Err(Error::Internal(format!(
                        "retention mode `{}` is neither GOVERNANCE nor COMPLIANCE",
                        other.escape_debug()
                    )));
                }
            };
            let until = aws_smithy_types::DateTime::from_str(
                until,
                aws_smithy_types::date_time::Format::DateTime,
            )
            .map_err(|e| Error::Internal(format!("retain-until `{until}`: {e}")))?;
            request = request
                .object_lock_mode(mode.aws())
                .object_lock_retain_until_date(until);
        }
        let Err(e) = request.send().await else {
            return Ok(());
        };
        // A 412 to a retried PUT: the first attempt may have been written
        // and only its answer lost. The object is ours if its checksum is.
        if e.raw_response().map(|r| r.status().as_u16()) == Some(412)
            && self.stored_checksum(key).await.as_deref() == Some(sent_checksum.as_str())
        {
            return Ok(());
        }
        Err(Error::input(format!(
            "s3://{}/{key}: upload failed ({}); the writer needs s3:PutObject on the prefix (deploy/evidence-bucket-policy.json)",
            self.location.bucket,
            sdk_error_text(&e)
        )))
    }

    /// The SHA-256 checksum S3 holds for `key` (base64), if it can tell.
    async fn stored_checksum(&self, key: &str) -> Option<String> {
        let head = self
            .client
            .head_object()
            .bucket(&self.location.bucket)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .ok()?;
        head.checksum_sha256().map(str::to_string)
    }
}

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "jsonl" => "application/x-ndjson",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}
