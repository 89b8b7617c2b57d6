//! Waivers: accepted risks that turn matching failures into `waived`.
//!
//! Owns the waiver file format (`--waivers FILE`, YAML), matching a waiver
//! to results (rule id, account, region and resource id as globs, and/or a
//! tag of the resource), expiry, and the report of which waivers were used,
//! unused or expired. Part of the results stage: it rewrites statuses of
//! the evaluator's results frame and does no other I/O than reading the file.
//!
//! Expiry is judged at the inventory's `collected_at`, like every other
//! "now" in an audit, so re-auditing old evidence gives the same answer. A
//! waiver applies to `fail` results only: an `unknown` stays unknown, since
//! nobody can accept a risk that was not seen.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use globset::{Glob, GlobMatcher};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::evaluate::Status;
use crate::inventory::Inventory;
use crate::inventory::{str_column, text_cells, text_rows};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    waivers: Vec<WaiverSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagMatch {
    pub key: String,
    /// Glob; any value when absent.
    #[serde(default)]
    pub value: Option<String>,
}

/// One waiver as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiverSpec {
    /// Rule id glob, e.g. `AMI-NAMING` or `VULN-*`.
    pub rule: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub tag: Option<TagMatch>,
    pub reason: String,
    pub approved_by: String,
    /// Last day the waiver applies (inclusive), `YYYY-MM-DD`.
    pub expires: NaiveDate,
}

struct CompiledWaiver {
    spec: WaiverSpec,
    rule: GlobMatcher,
    account: Option<GlobMatcher>,
    region: Option<GlobMatcher>,
    resource: Option<GlobMatcher>,
    tag_value: Option<GlobMatcher>,
}

impl CompiledWaiver {
    /// Whether this waiver covers a result of rule `rule` on resource `id`
    /// in `account` and `region` (`tags`: each image's tags).
    fn matches(
        &self,
        rule: &str,
        account: &str,
        region: &str,
        id: &str,
        tags: &HashMap<&str, Vec<(&str, &str)>>,
    ) -> bool {
        self.rule.is_match(rule)
            && self.account.as_ref().is_none_or(|m| m.is_match(account))
            && self.region.as_ref().is_none_or(|m| m.is_match(region))
            && self.resource.as_ref().is_none_or(|m| m.is_match(id))
            && self.spec.tag.as_ref().is_none_or(|t| {
                tags.get(id).is_some_and(|pairs| {
                    pairs.iter().any(|(k, v)| {
                        *k == t.key && self.tag_value.as_ref().is_none_or(|m| m.is_match(v))
                    })
                })
            })
    }
}

/// Waivers loaded from a file.
pub struct Waivers {
    waivers: Vec<CompiledWaiver>,
    pub sha256: String,
    pub source: String,
    /// The file as read (an audit embeds it as evidence).
    pub text: String,
}

impl std::fmt::Debug for Waivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Waivers({}, {} waivers)",
            self.source,
            self.waivers.len()
        )
    }
}

/// How one waiver fared in this audit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaiverUse {
    #[serde(flatten)]
    pub spec: WaiverSpec,
    pub state: WaiverState,
    /// Failing results it waived (0 when expired).
    pub matched: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaiverState {
    /// Applied (it may or may not have matched).
    Active,
    /// Past its expiry at the audit's point in time: no longer applies.
    Expired,
    /// Active, but matched no failing result.
    Unused,
}

impl WaiverState {
    pub fn as_str(self) -> &'static str {
        match self {
            WaiverState::Active => "active",
            WaiverState::Expired => "expired",
            WaiverState::Unused => "unused",
        }
    }
}

fn glob(path: &Path, index: usize, field: &str, pattern: &str) -> Result<GlobMatcher> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| {
            Error::input(format!(
                "{}: waiver {}: `{field}` is not a valid glob `{pattern}`: {e}",
                path.display(),
                index + 1
            ))
        })
}

pub fn load(path: &Path) -> Result<Waivers> {
    use sha2::{Digest, Sha256};
    let text = Error::read_text(path, "waiver file not found")?;
    let file: WaiverFile =
        serde_saphyr::from_str(&text).map_err(|e| crate::policy::yaml_error(path, &e))?;
    let mut waivers = Vec::new();
    for (i, spec) in file.waivers.into_iter().enumerate() {
        if spec.reason.trim().is_empty() || spec.approved_by.trim().is_empty() {
            return Err(Error::input(format!(
                "{}: waiver {}: `reason` and `approved_by` must not be empty",
                path.display(),
                i + 1
            )));
        }
        let opt = |field: &str, p: &Option<String>| {
            p.as_deref().map(|p| glob(path, i, field, p)).transpose()
        };
        waivers.push(CompiledWaiver {
            rule: glob(path, i, "rule", &spec.rule)?,
            account: opt("account", &spec.account)?,
            region: opt("region", &spec.region)?,
            resource: opt("resource", &spec.resource)?,
            tag_value: opt(
                "tag.value",
                &spec.tag.as_ref().and_then(|t| t.value.clone()),
            )?,
            spec,
        });
    }
    Ok(Waivers {
        waivers,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        source: path.display().to_string(),
        text,
    })
}

impl Waivers {
    /// Rewrites `fail` results that an active waiver matches to `waived` and
    /// adds `waiver_reason` / `waiver_expires` columns. Returns each waiver's use.
    pub fn apply(&self, inventory: &Inventory, results: &mut DataFrame) -> Result<Vec<WaiverUse>> {
        let today = inventory.manifest().collected_at.date_naive();
        let active: Vec<usize> = (0..self.waivers.len())
            .filter(|&i| self.waivers[i].spec.expires >= today)
            .collect();
        let tags = if active.iter().any(|&i| self.waivers[i].spec.tag.is_some()) {
            resource_tags(inventory)?
        } else {
            HashMap::new()
        };
        let stage = |e: Error| Error::Internal(format!("waivers: {e}"));
        // What a waived result shows, once per waiver.
        let shown: Vec<(String, String)> = self
            .waivers
            .iter()
            .map(|w| {
                (
                    format!("{} (approved by {})", w.spec.reason, w.spec.approved_by),
                    w.spec.expires.to_string(),
                )
            })
            .collect();
        // Each result row's waiver, if any. The columns are iterated, not
        // collected: at 100k AMIs there are 2 M results.
        let mut hits: Vec<Option<usize>> = Vec::with_capacity(results.height());
        let columns = ["rule_id", "account_id", "region", "resource_id", "status"];
        let rows = text_rows(results, columns).map_err(stage)?;
        let mut matched = vec![0u64; self.waivers.len()];
        for [r, a, g, id, status] in rows {
            if status != Some(Status::Fail.as_str()) {
                hits.push(None);
                continue;
            }
            let (r, a, g, id) = (
                r.unwrap_or_default(),
                a.unwrap_or_default(),
                g.unwrap_or_default(),
                id.unwrap_or_default(),
            );
            let hit = active
                .iter()
                .copied()
                .find(|&i| self.waivers[i].matches(r, a, g, id, &tags));
            if let Some(i) = hit {
                matched[i] += 1;
            }
            hits.push(hit);
        }
        let status: StringChunked = text_cells(results, "status")
            .map_err(stage)?
            .zip(&hits)
            .map(|(status, hit)| match hit {
                Some(_) => Some(Status::Waived.as_str()),
                None => status,
            })
            .collect();
        let shown_part = |part: fn(&(String, String)) -> &str| -> StringChunked {
            hits.iter()
                .map(|hit| hit.and_then(|i| shown.get(i)).map(part))
                .collect()
        };
        let reason = shown_part(|s| s.0.as_str());
        let expires = shown_part(|s| s.1.as_str());
        let internal = |e: PolarsError| Error::Internal(crate::error::polars_message(&e));
        // The new columns are held as the evaluation's were: the status as
        // its status, a waiver's text as its reasons (categories: the text
        // repeats on every result a waiver covers; 32-bit, as many as a
        // file may hold).
        let held_as = |name: &str| -> Result<DataType> {
            Ok(results.column(name).map_err(internal)?.dtype().clone())
        };
        let (status_type, text_type) = (held_as("status")?, held_as("reason")?);
        for (name, values, dtype) in [
            ("status", status, &status_type),
            ("waiver_reason", reason, &text_type),
            ("waiver_expires", expires, &text_type),
        ] {
            let values = values.with_name(name.into()).into_column();
            let values = match dtype {
                DataType::Categorical(..) => {
                    crate::evaluate::as_categories(&values, dtype).map_err(internal)?
                }
                _ => values,
            };
            results.with_column(values).map_err(internal)?;
        }
        Ok(self
            .waivers
            .iter()
            .zip(matched)
            .map(|(w, n)| WaiverUse {
                spec: w.spec.clone(),
                state: if w.spec.expires < today {
                    WaiverState::Expired
                } else if n == 0 {
                    WaiverState::Unused
                } else {
                    WaiverState::Active
                },
                matched: n,
            })
            .collect())
    }
}

/// Image id -> its tags. Only images carry tags in the inventory.
fn resource_tags(inventory: &Inventory) -> Result<HashMap<&str, Vec<(&str, &str)>>> {
    let df = inventory.table("image_tags")?;
    let mut out: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    let ids = str_column(df, "image_id")?;
    let keys = str_column(df, "key")?;
    let values = str_column(df, "value")?;
    for ((id, key), value) in ids.into_iter().zip(keys).zip(values) {
        if let (Some(id), Some(key)) = (id, key) {
            out.entry(id)
                .or_default()
                .push((key, value.unwrap_or_default()));
        }
    }
    Ok(out)
}
