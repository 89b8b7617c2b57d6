//! `findings.json`: one document type, written by `render` and read back
//! by `diff` (for `--baseline` and `amiaudit diff`).
//!
//! **API boundary.** Its shape is what tools parse: fields are only ever
//! added. Strings are `Cow`s so the writer borrows from the report context
//! (an audit of 100k AMIs has hundreds of thousands of findings) while the
//! reader owns what it parsed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::evaluate::Status;
use crate::inventory::Scope;
use crate::policy::Severity;
use crate::results::Summary;
use crate::waivers::WaiverUse;

pub const FILE: &str = "findings.json";
/// The version of the document's shape (`docs/findings.schema.json`): it
/// changes when a field changes meaning or goes away; fields are only ever
/// added within a version. Documents written before it was recorded read
/// as 0.
pub const SCHEMA_VERSION: u32 = 1;

/// What every report says about the audit itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditMeta {
    pub tool: String,
    pub tool_version: String,
    pub inventory_schema_version: u32,
    /// The inventory's `collected_at`: the audit's point in time.
    pub collected_at: String,
    /// The same instant in milliseconds (for formats that want a number).
    #[serde(skip)]
    pub collected_at_ms: i64,
    pub scope: Scope,
    pub inventory_complete: bool,
    /// sha256 of the inventory manifest (which holds each table file's sha256).
    pub inventory_sha256: String,
    pub policy_pack_sha256: String,
    /// sha256 of the waiver file, when one was given.
    pub waivers_sha256: Option<String>,
    pub rules_evaluated: usize,
    pub framework: Option<String>,
    /// Where the audit is stored and its retention (`--out s3://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
}

/// What retention an audit's objects got: written into its manifest and
/// its reports before upload, so the evidence says how it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// `s3://bucket/prefix/` the audit was written to.
    pub location: String,
    pub object_lock_enabled: bool,
    /// Retention set on every object: `GOVERNANCE` or `COMPLIANCE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_mode: Option<String>,
    /// Until when (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<String>,
    /// The bucket's default retention when no retention was asked for
    /// (S3 applies it to every new object), e.g. `COMPLIANCE 365 days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_default_retention: Option<String>,
}

impl Storage {
    /// One sentence for the reports.
    pub fn describe(&self) -> String {
        let kept = match (&self.retention_mode, &self.retain_until) {
            (Some(mode), Some(until)) => format!("Object Lock {mode} retention until {until}"),
            _ => match &self.bucket_default_retention {
                Some(default) => format!("the bucket's default Object Lock retention ({default})"),
                None if self.object_lock_enabled => {
                    "no retention (Object Lock is enabled, with no default and none asked)"
                        .to_string()
                }
                None => "no retention (the bucket has no Object Lock)".to_string(),
            },
        };
        format!("stored at {} with {kept}", self.location)
    }
}

/// The document. `F` is its findings: a list when read, or anything that
/// serialises as one. `findings` is the last field: the report context
/// writes the document with none, then its findings after that head in
/// parallel chunks, never gathering them (a million at 100k AMIs).
#[derive(Debug, Serialize, Deserialize)]
pub struct Document<'a, F = Vec<Finding<'a>>> {
    #[serde(default)]
    pub schema_version: u32,
    pub audit: Cow<'a, AuditMeta>,
    pub summary: Cow<'a, Summary>,
    #[serde(default)]
    pub waivers: Cow<'a, [WaiverUse]>,
    #[serde(default)]
    pub rule_errors: Cow<'a, [String]>,
    /// Fleet adoption of the newest golden versions (absent before 0.x
    /// documents that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<Cow<'a, crate::results::adoption::Adoption>>,
    /// The retirement plan: AMIs safe to deregister, deprecated AMIs still
    /// in use (absent in documents that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement: Option<Cow<'a, crate::results::retirement::Retirement>>,
    pub rules: Vec<RuleEntry<'a>>,
    /// Account-regions of the scope (`audit.scope`) this audit did not read
    /// in full (scan failed or partial, no rows): a failure no longer listed
    /// there was not looked at, so `diff` never calls it resolved. Absent in
    /// documents written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_read_in_full: Option<Cow<'a, [(String, String)]>>,
    /// Non-passing results; passing ones are counted in `summary` and
    /// listed in findings.csv.
    pub findings: F,
}

/// A rule's metadata, once per rule.
#[derive(Debug, Serialize, Deserialize)]
pub struct RuleEntry<'a> {
    pub id: Cow<'a, str>,
    pub title: Cow<'a, str>,
    pub severity: Severity,
    pub resource_type: Cow<'a, str>,
    pub frameworks: Cow<'a, BTreeMap<String, Vec<String>>>,
    pub remediation: Cow<'a, str>,
}

// serde's skip_serializing_if hands the field itself: a &Cow.
#[allow(clippy::ptr_arg)]
fn is_empty(s: &Cow<'_, str>) -> bool {
    s.is_empty()
}

/// A non-passing result.
#[derive(Debug, Serialize, Deserialize)]
pub struct Finding<'a> {
    pub rule_id: Cow<'a, str>,
    pub severity: Severity,
    pub status: Status,
    pub account_id: Cow<'a, str>,
    pub account_name: Cow<'a, str>,
    pub region: Cow<'a, str>,
    pub resource_type: Cow<'a, str>,
    pub resource_id: Cow<'a, str>,
    pub resource_name: Cow<'a, str>,
    pub reason: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub remediation: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub waiver_reason: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub waiver_expires: Cow<'a, str>,
    /// When the result was first observed non-passing: carried from the
    /// baseline when it was non-passing there, else this audit's time.
    /// Empty in documents older than the field.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub first_observed_at: Cow<'a, str>,
}

const MISSING: &str = "not found; give an audit directory written with the json format";

/// Reads only the `audit` part of an audit directory's findings.json.
pub fn read_meta(dir: &Path) -> Result<AuditMeta> {
    #[derive(Deserialize)]
    struct Head {
        audit: AuditMeta,
    }
    let (path, reader) = crate::output::file::open_either(dir, FILE, MISSING)?;
    let head: Head = serde_json::from_reader(reader).map_err(|e| {
        Error::input(format!(
            "{}: not an amiaudit findings.json: {}",
            path.display(),
            crate::error::strip_serde_position(&e.to_string())
        ))
    })?;
    Ok(head.audit)
}

/// Reads an audit directory's findings.json.
pub fn read(dir: &Path) -> Result<Document<'static>> {
    let (path, text) = crate::output::file::read_either(dir, FILE, MISSING)?;
    let document: Document<'static> = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: not an amiaudit findings.json: {}",
            path.display(),
            e.line(),
            e.column(),
            crate::error::strip_serde_position(&e.to_string())
        ))
    })?;
    if document.schema_version > SCHEMA_VERSION {
        return Err(Error::input(format!(
            "{}: findings schema_version {} was written by a newer amiaudit (this one reads up to {SCHEMA_VERSION}); use that version",
            path.display(),
            document.schema_version
        )));
    }
    Ok(document)
}
