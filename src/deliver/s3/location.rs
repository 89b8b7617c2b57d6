//! `s3://bucket/prefix/` locations, checked and expanded.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// `s3://bucket/prefix/`: the prefix is empty or ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

/// The longest segment of a prefix, in bytes.
pub(super) const MAX_SEGMENT: usize = 200;

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
