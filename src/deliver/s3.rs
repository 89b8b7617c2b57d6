//! S3 as an evidence store: an audit directory written to
//! `s3://bucket/prefix/`, read back for `verify`, `diff` and `--baseline`.
//!
//! **Invariants.**
//! - Writes go only to the bucket and prefix the user named, and only
//!   PutObject: nothing is ever deleted or overwritten. The prefix (and the
//!   bundle's key beside it) must hold nothing yet, and every PutObject is
//!   conditional (`If-None-Match: *`). Nor is a prefix inside another
//!   audit's (that audit would no longer verify).
//! - `manifest.json` is uploaded last, after every file it lists succeeded,
//!   so an interrupted upload never leaves an audit that `verify` calls
//!   intact; `--baseline-latest` only considers prefixes with a manifest
//!   (and an embedded inventory's).
//! - The directory is verified before the first upload; the upload sends
//!   exactly the files the manifest lists, each body checked against its
//!   digest there and sent with its SHA-256 checksum, and the manifest
//!   from the bytes it was read as, so what S3 accepts is byte for byte
//!   what the manifest lists.
//! - Keys read back are never trusted as paths: a key that is not a plain
//!   relative path below the prefix is reported, never written to disk.
//!   Listings are URL-encoded (XML cannot carry every key). Only the
//!   manifest and the files it lists are downloaded, streamed; any other
//!   key is an empty stand-in that verify counts as added.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_s3::types::{ChecksumAlgorithm, EncodingType, ObjectLockMode};
use chrono::{DateTime, Utc};

use crate::aws::Connection;
use crate::error::{Error, Result};
use crate::evidence::{MANIFEST, SIGNATURE, Storage};
use crate::paths::is_plain_relative;

use super::sdk_error_text;

/// `s3://bucket/prefix/`: the prefix is empty or ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

/// The longest segment of a prefix, in bytes.
const MAX_SEGMENT: usize = 200;

impl S3Location {
    /// `bucket/prefix/`, with or without `s3://`.
    pub fn parse(text: &str) -> Result<S3Location> {
        let rest = text
            .get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("s3://"))
            .and_then(|_| text.get(5..))
            .unwrap_or(text);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && bucket
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(Error::input(format!(
                "`{}`: `{}` is not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens); write s3://bucket/prefix/",
                text.escape_debug(),
                bucket.escape_debug()
            )));
        }
        if !crate::paths::is_plain_prefix(prefix) {
            return Err(Error::input(format!(
                "`{}`: the prefix has an empty, `.` or `..` segment or a control character",
                text.escape_debug()
            )));
        }
        // Each segment is also a directory name where the audit is written
        // or read back (a file system allows 255 bytes; the lock beside it
        // takes more).
        if prefix.split('/').any(|seg| seg.len() > MAX_SEGMENT) {
            return Err(Error::input(format!(
                "`{}`: a segment of the prefix is longer than {MAX_SEGMENT} bytes",
                text.escape_debug()
            )));
        }
        let mut prefix = prefix.to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// The prefix with `{date}` (2026-11-23) and `{time}` (142501Z) of `now`
    /// (UTC) filled in, so scheduled runs write side by side and sort by time.
    pub fn expand(&self, now: DateTime<Utc>) -> Result<S3Location> {
        let prefix = self
            .prefix
            .replace("{date}", &now.format("%Y-%m-%d").to_string())
            .replace("{time}", &now.format("%H%M%SZ").to_string());
        if prefix.contains('{') || prefix.contains('}') {
            return Err(Error::input(format!(
                "`{}`: the only placeholders are {{date}} and {{time}}",
                self.url().escape_debug()
            )));
        }
        Ok(S3Location {
            bucket: self.bucket.clone(),
            prefix,
        })
    }

    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// The prefix's last segment: the audit's name (its local directory,
    /// the root inside its bundle).
    pub fn name(&self) -> &str {
        self.prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
    }

    /// The bundle sits beside the audit, like `OUT.tar.gz` beside `OUT/`.
    pub fn bundle_key(&self) -> String {
        format!("{}.tar.gz", self.prefix.trim_end_matches('/'))
    }
}

/// Object Lock mode for `--retain-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainMode {
    Governance,
    Compliance,
}

impl RetainMode {
    pub const NAMES: [&'static str; 2] = ["governance", "compliance"];

    pub fn parse(text: &str) -> Option<RetainMode> {
        match text {
            "governance" => Some(RetainMode::Governance),
            "compliance" => Some(RetainMode::Compliance),
            _ => None,
        }
    }

    fn aws(self) -> ObjectLockMode {
        match self {
            RetainMode::Governance => ObjectLockMode::Governance,
            RetainMode::Compliance => ObjectLockMode::Compliance,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RetainMode::Governance => "GOVERNANCE",
            RetainMode::Compliance => "COMPLIANCE",
        }
    }
}

/// A bucket's Object Lock configuration as read.
#[derive(Debug, Clone, Default)]
pub struct LockState {
    pub enabled: bool,
    /// `COMPLIANCE 365 days`.
    pub default_retention: Option<String>,
}

/// A client for one bucket, in the bucket's region.
pub struct Store {
    client: aws_sdk_s3::Client,
    pub location: S3Location,
}

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
    /// Connects to the bucket's region (GetBucketLocation).
    pub async fn connect(connection: &Connection, location: S3Location) -> Result<Store> {
        let base = crate::aws::base_config(connection).await;
        // Emulators and custom endpoints answer on one host: path-style
        // addressing (bucket in the path, not the host name).
        let path_style = base.endpoint_url().is_some();
        let client_in = |region: Option<String>| {
            let mut config = aws_sdk_s3::config::Builder::from(&base).force_path_style(path_style);
            if let Some(region) = region {
                config = config.region(aws_config::Region::new(region));
            }
            aws_sdk_s3::Client::from_conf(config.build())
        };
        let probe = client_in(None);
        let region = probe
            .get_bucket_location()
            .bucket(&location.bucket)
            .send()
            .await
            .map_err(|e| {
                Error::input(format!(
                    "{}: cannot reach the bucket ({}); check its name, the credentials and s3:GetBucketLocation (deploy/evidence-bucket-policy.json)",
                    location.url(),
                    sdk_error_text(&e)
                ))
            })?
            .location_constraint()
            .map(|c| match c.as_str() {
                // Legacy names of us-east-1 and eu-west-1.
                "" => "us-east-1".to_string(),
                "EU" => "eu-west-1".to_string(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "us-east-1".to_string());
        Ok(Store {
            client: client_in(Some(region)),
            location,
        })
    }

    /// The bucket's Object Lock configuration. A bucket without one is
    /// `enabled: false`; a failed read is an error (what retention the
    /// evidence gets must be known before it is written).
    pub async fn object_lock(&self) -> Result<LockState> {
        match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.location.bucket)
            .send()
            .await
        {
            Ok(out) => {
                let config = out.object_lock_configuration();
                let enabled = config
                    .and_then(|c| c.object_lock_enabled())
                    .is_some_and(|e| e.as_str() == "Enabled");
                let default_retention = config
                    .and_then(|c| c.rule())
                    .and_then(|r| r.default_retention())
                    .and_then(|d| {
                        let mode = d.mode().map(|m| m.as_str().to_string())?;
                        match (d.days(), d.years()) {
                            (Some(days), _) => Some(format!("{mode} {days} days")),
                            (_, Some(years)) => Some(format!("{mode} {years} years")),
                            _ => None,
                        }
                    });
                Ok(LockState {
                    enabled,
                    default_retention,
                })
            }
            Err(e)
                if aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e)
                    == Some("ObjectLockConfigurationNotFoundError") =>
            {
                Ok(LockState::default())
            }
            Err(e) => Err(Error::input(format!(
                "{}: cannot read the bucket's Object Lock configuration ({}); the writer needs s3:GetBucketObjectLockConfiguration (deploy/evidence-bucket-policy.json)",
                self.location.url(),
                sdk_error_text(&e)
            ))),
        }
    }

    /// An audit goes to a prefix that holds nothing yet (nor its bundle's
    /// key): a run never adds files to another audit, or overwrites one.
    pub async fn ensure_unused(&self) -> Result<()> {
        // Nor inside another audit: its verify would count these as added.
        let segments: Vec<&str> = self.location.prefix.split_terminator('/').collect();
        for depth in 0..segments.len() {
            let ancestor: String = segments
                .iter()
                .take(depth)
                .map(|s| format!("{s}/"))
                .collect();
            let inside = self
                .client
                .head_object()
                .bucket(&self.location.bucket)
                .key(format!("{ancestor}{MANIFEST}"))
                .send()
                .await
                .is_ok();
            if inside {
                return Err(Error::input(format!(
                    "{}: lies inside the audit at s3://{}/{ancestor}, which would no longer verify; write the audit beside it",
                    self.location.url(),
                    self.location.bucket
                )));
            }
        }
        let taken = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(&self.location.prefix)
            .max_keys(1)
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| self.cannot_list(&e))?
            .contents()
            .first()
            .and_then(|o| o.key().map(listed_key));
        let bundle = self.location.bundle_key();
        let bundle_taken = self
            .client
            .head_object()
            .bucket(&self.location.bucket)
            .key(&bundle)
            .send()
            .await
            .is_ok();
        match (taken, bundle_taken) {
            (Some(key), _) => Err(Error::input(format!(
                "{}: already holds `{}`; amiaudit writes each audit to a prefix of its own (use {{date}} and {{time}}, e.g. s3://{}/audits/{{date}}/{{time}}/)",
                self.location.url(),
                key.escape_debug(),
                self.location.bucket
            ))),
            (None, true) => Err(Error::input(format!(
                "s3://{}/{bundle}: already exists; amiaudit writes each audit to a prefix of its own",
                self.location.bucket
            ))),
            (None, false) => Ok(()),
        }
    }

    /// What retention a write asked for gets, checked against the bucket.
    pub async fn plan_storage(
        &self,
        retain: Option<(u32, RetainMode)>,
        now: DateTime<Utc>,
    ) -> Result<Storage> {
        let lock = self.object_lock().await?;
        let (retention_mode, retain_until) = match retain {
            Some((days, mode)) => {
                if !lock.enabled {
                    return Err(Error::input(format!(
                        "{}: --retain-days needs a bucket with Object Lock enabled, and this one has none (deploy/evidence-bucket.yaml creates one)",
                        self.location.url()
                    )));
                }
                let until = now + chrono::Duration::days(i64::from(days));
                (
                    Some(mode.as_str().to_string()),
                    Some(until.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                )
            }
            None => (None, None),
        };
        Ok(Storage {
            location: self.location.url(),
            object_lock_enabled: lock.enabled,
            bucket_default_retention: if retention_mode.is_none() {
                lock.default_retention
            } else {
                None
            },
            retention_mode,
            retain_until,
        })
    }

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

    /// The complete audits below the prefix (those whose manifest is
    /// there), other than `exclude`, newest first.
    pub async fn audits_newest_first(
        &self,
        exclude: Option<&S3Location>,
    ) -> Result<Vec<S3Location>> {
        let keys = self.list(&self.location.prefix).await?;
        let candidates: BTreeMap<&str, aws_smithy_types::DateTime> = keys
            .iter()
            .filter_map(|(key, modified)| {
                let prefix = key.strip_suffix(MANIFEST)?;
                (prefix.is_empty() || prefix.ends_with('/')).then_some((prefix, *modified))
            })
            .collect();
        let mut audits: Vec<(&&str, &aws_smithy_types::DateTime)> = candidates
            .iter()
            .filter(|(prefix, _)| {
                // Every audit embeds its inventory, whose manifest has the
                // same name: a prefix is an audit when both are there.
                let embedded = format!("{prefix}inventory/{MANIFEST}");
                keys.iter().any(|(key, _)| *key == embedded)
                    && exclude
                        .is_none_or(|x| x.bucket != self.location.bucket || x.prefix != **prefix)
            })
            .collect();
        audits.sort_by_key(|(prefix, modified)| std::cmp::Reverse((modified.as_nanos(), **prefix)));
        Ok(audits
            .into_iter()
            .map(|(prefix, _)| S3Location {
                bucket: self.location.bucket.clone(),
                prefix: prefix.to_string(),
            })
            .collect())
    }

    fn cannot_list(
        &self,
        e: &aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    ) -> Error {
        Error::input(format!(
            "{}: cannot list ({}); reading and writing audits needs s3:ListBucket (deploy/evidence-bucket-policy.json)",
            self.location.url(),
            sdk_error_text(e)
        ))
    }

    /// Every key below `prefix` with its last-modified time.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, aws_smithy_types::DateTime)>> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.cannot_list(&e))?;
            for object in page.contents() {
                if let (Some(key), Some(modified)) = (object.key(), object.last_modified()) {
                    keys.push((listed_key(key), *modified));
                }
            }
        }
        Ok(keys)
    }
}

/// A key as listed with `encoding-type=url`, decoded. Listings ask for it
/// because XML 1.0 cannot carry every character a key may hold: one key
/// with a control character would make the whole listing unreadable.
/// S3 writes a space as `+` (and `+` as `%2B`), as botocore decodes it.
fn listed_key(encoded: &str) -> String {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
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

/// Downloads an audit from S3 into a temporary directory (for `verify`,
/// `diff` and `--baseline`).
pub fn fetch(connection: &Connection, location: &S3Location) -> Result<Download> {
    let download = super::block_on(async {
        let store = Store::connect(connection, location.clone()).await?;
        store.download().await
    })??;
    download.require_manifest(location)?;
    Ok(download)
}

/// The complete audits below `parent`, other than `exclude`, newest first
/// (none: the first audit of a schedule).
pub fn audits_newest_first(
    connection: &Connection,
    parent: &S3Location,
    exclude: Option<&S3Location>,
) -> Result<Vec<S3Location>> {
    super::block_on(async {
        let store = Store::connect(connection, parent.clone()).await?;
        store.audits_newest_first(exclude).await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_keys_are_decoded_as_s3_encodes_them() {
        assert_eq!(
            listed_key("audits/a+b%2Bc%1B%5B2J%E2%80%AE/x%20y"),
            "audits/a b+c\u{1b}[2J\u{202e}/x y"
        );
        assert_eq!(listed_key("plain/key.json"), "plain/key.json");
    }

    #[test]
    fn locations_parse_and_expand() {
        let l = S3Location::parse("s3://evidence-bucket/audits/{date}/{time}").unwrap();
        assert_eq!(l.bucket, "evidence-bucket");
        assert_eq!(l.prefix, "audits/{date}/{time}/");
        let now = DateTime::parse_from_rfc3339("2026-11-23T14:25:01Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = l.expand(now).unwrap();
        assert_eq!(e.url(), "s3://evidence-bucket/audits/2026-11-23/142501Z/");
        assert_eq!(e.name(), "142501Z");
        assert_eq!(e.bundle_key(), "audits/2026-11-23/142501Z.tar.gz");
        assert!(S3Location::parse("s3://b/x").is_err(), "short bucket");
        assert!(S3Location::parse("s3://Bucket/x").is_err());
        assert!(S3Location::parse("s3://bucket//x").is_err());
        assert!(S3Location::parse("s3://bucket/a\nb").is_err());
        let long = "b".repeat(MAX_SEGMENT);
        assert!(S3Location::parse(&format!("s3://bucket/a/{long}/")).is_ok());
        assert!(S3Location::parse(&format!("s3://bucket/a/{long}b/")).is_err());
        assert!(
            S3Location::parse("s3://bucket/{user}/")
                .unwrap()
                .expand(now)
                .is_err()
        );
    }
}
