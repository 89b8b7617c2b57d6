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

use aws_sdk_s3::types::{EncodingType, ObjectLockMode};
use chrono::{DateTime, Utc};

use crate::aws::Connection;
use crate::error::{Error, Result};
use crate::evidence::{MANIFEST, Storage};

use super::sdk_error_text;

mod download;
mod location;
mod upload;

pub use download::{Download, fetch};
pub use location::S3Location;

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
    use super::location::MAX_SEGMENT;
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
