//! Drift between two audits: which failures are new, resolved or
//! persisting, and how the waivers changed.
//!
//! Reads two audit output directories' `findings.json` (the non-passing
//! results of each) and matches results by rule, account, region and
//! resource. A failure that is no longer failing is only called `resolved`
//! when the resource now passes or is gone; when it is now `unknown` or
//! `waived` it is reported as such, never as fixed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a diff needs of one audit: read from `findings.json`, or taken from
/// an audit in progress (`--baseline`).
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    audit: AuditHead,
    findings: Vec<FindingRow>,
    #[serde(default)]
    waivers: Vec<WaiverRow>,
}

impl Snapshot {
    pub fn from_context(context: &crate::render::ReportContext) -> Snapshot {
        Snapshot {
            audit: AuditHead {
                collected_at: context.meta.collected_at.clone(),
            },
            findings: context
                .rules
                .iter()
                .flat_map(|r| r.findings.iter())
                .map(|f| FindingRow {
                    rule_id: f.rule_id.clone(),
                    severity: f.severity.to_string(),
                    status: f.status.as_str().to_string(),
                    account_id: f.account_id.clone(),
                    region: f.region.clone(),
                    resource_id: f.resource_id.clone(),
                    resource_name: f.resource_name.clone(),
                    reason: f.reason.clone(),
                })
                .collect(),
            waivers: context
                .waivers
                .iter()
                .map(|w| WaiverRow {
                    rule: w.spec.rule.clone(),
                    account: w.spec.account.clone(),
                    region: w.spec.region.clone(),
                    resource: w.spec.resource.clone(),
                    reason: w.spec.reason.clone(),
                    expires: w.spec.expires.to_string(),
                    state: w.state.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditHead {
    collected_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingRow {
    pub rule_id: String,
    pub severity: String,
    pub status: String,
    pub account_id: String,
    pub region: String,
    pub resource_id: String,
    #[serde(default)]
    pub resource_name: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaiverRow {
    pub rule: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    pub reason: String,
    pub expires: String,
    pub state: String,
}

/// One failure's change between the two audits.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// new | resolved | persisting | now-waived | now-unknown
    pub change: &'static str,
    pub rule_id: String,
    pub severity: String,
    pub account_id: String,
    pub region: String,
    pub resource_id: String,
    pub resource_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffCounts {
    pub new: usize,
    pub resolved: usize,
    pub persisting: usize,
    pub now_waived: usize,
    pub now_unknown: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaiverChange {
    /// added | removed | state-changed
    pub change: &'static str,
    pub waiver: WaiverRow,
    pub previous_state: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub old_collected_at: String,
    pub new_collected_at: String,
    pub counts: DiffCounts,
    pub changes: Vec<Change>,
    pub waivers: Vec<WaiverChange>,
}

pub fn read(dir: &Path) -> Result<Snapshot> {
    let path = dir.join("findings.json");
    let text = fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input(format!(
                "{}: not found; give an audit output directory written with the json format",
                path.display()
            ))
        } else {
            Error::io(&path, e)
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: not an amiaudit findings.json: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

type Key = (String, String, String, String);

fn key(f: &FindingRow) -> Key {
    (
        f.rule_id.clone(),
        f.account_id.clone(),
        f.region.clone(),
        f.resource_id.clone(),
    )
}

/// Compares the audit in `old_dir` with the one in `new_dir`.
pub fn diff(old_dir: &Path, new_dir: &Path) -> Result<Diff> {
    Ok(compare(&read(old_dir)?, &read(new_dir)?))
}

pub fn compare(old: &Snapshot, new: &Snapshot) -> Diff {
    let old_by: BTreeMap<Key, &FindingRow> = old.findings.iter().map(|f| (key(f), f)).collect();
    let new_by: BTreeMap<Key, &FindingRow> = new.findings.iter().map(|f| (key(f), f)).collect();
    let mut changes = Vec::new();
    let mut counts = DiffCounts::default();
    let change = |kind: &'static str, f: &FindingRow| Change {
        change: kind,
        rule_id: f.rule_id.clone(),
        severity: f.severity.clone(),
        account_id: f.account_id.clone(),
        region: f.region.clone(),
        resource_id: f.resource_id.clone(),
        resource_name: f.resource_name.clone(),
        reason: f.reason.clone(),
    };
    for (k, f) in &new_by {
        if f.status != "fail" {
            continue;
        }
        match old_by.get(k) {
            Some(o) if o.status == "fail" => {
                counts.persisting += 1;
                changes.push(change("persisting", f));
            }
            _ => {
                counts.new += 1;
                changes.push(change("new", f));
            }
        }
    }
    for (k, o) in &old_by {
        if o.status != "fail" {
            continue;
        }
        match new_by.get(k).map(|f| f.status.as_str()) {
            Some("fail") => {}
            Some("waived") => {
                counts.now_waived += 1;
                changes.push(change("now-waived", o));
            }
            Some("unknown") => {
                counts.now_unknown += 1;
                changes.push(change("now-unknown", o));
            }
            _ => {
                counts.resolved += 1;
                changes.push(change("resolved", o));
            }
        }
    }
    changes.sort_by(|a, b| {
        (
            a.change,
            &a.rule_id,
            &a.account_id,
            &a.region,
            &a.resource_id,
        )
            .cmp(&(
                b.change,
                &b.rule_id,
                &b.account_id,
                &b.region,
                &b.resource_id,
            ))
    });
    let ident = |w: &WaiverRow| {
        (
            w.rule.clone(),
            w.account.clone(),
            w.region.clone(),
            w.resource.clone(),
            w.reason.clone(),
            w.expires.clone(),
        )
    };
    let mut waivers = Vec::new();
    for w in &new.waivers {
        match old.waivers.iter().find(|o| ident(o) == ident(w)) {
            None => waivers.push(WaiverChange {
                change: "added",
                waiver: w.clone(),
                previous_state: None,
            }),
            Some(o) if o.state != w.state => waivers.push(WaiverChange {
                change: "state-changed",
                waiver: w.clone(),
                previous_state: Some(o.state.clone()),
            }),
            Some(_) => {}
        }
    }
    for o in &old.waivers {
        if !new.waivers.iter().any(|w| ident(w) == ident(o)) {
            waivers.push(WaiverChange {
                change: "removed",
                waiver: o.clone(),
                previous_state: Some(o.state.clone()),
            });
        }
    }
    Diff {
        old_collected_at: old.audit.collected_at.clone(),
        new_collected_at: new.audit.collected_at.clone(),
        counts,
        changes,
        waivers,
    }
}

impl Diff {
    pub fn summary_line(&self) -> String {
        let c = &self.counts;
        format!(
            "since {}: {} new, {} resolved, {} persisting failures; {} now waived, {} now unknown; {} waiver changes",
            self.old_collected_at,
            c.new,
            c.resolved,
            c.persisting,
            c.now_waived,
            c.now_unknown,
            self.waivers.len()
        )
    }

    pub fn json(&self) -> Result<String> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        text.push('\n');
        Ok(text)
    }

    pub fn csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let fail = |e: csv::Error| Error::Internal(e.to_string());
        w.write_record([
            "change",
            "rule_id",
            "severity",
            "account_id",
            "region",
            "resource_id",
            "resource_name",
            "reason",
        ])
        .map_err(fail)?;
        for c in &self.changes {
            let record = [
                c.change,
                &c.rule_id,
                &c.severity,
                &c.account_id,
                &c.region,
                &c.resource_id,
                &c.resource_name,
                &c.reason,
            ];
            w.write_record(
                record
                    .iter()
                    .map(|s| crate::render::neutralise_cell(s).into_owned()),
            )
            .map_err(fail)?;
        }
        String::from_utf8(w.into_inner().map_err(|e| Error::Internal(e.to_string()))?)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// A short Markdown section for summary.md.
    pub fn markdown(&self) -> String {
        let c = &self.counts;
        let mut out = format!(
            "\n## Since the last audit ({})\n\n| new | resolved | persisting | now waived | now unknown |\n|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} |\n",
            self.old_collected_at, c.new, c.resolved, c.persisting, c.now_waived, c.now_unknown
        );
        let new: Vec<&Change> = self
            .changes
            .iter()
            .filter(|c| c.change == "new")
            .take(10)
            .collect();
        if !new.is_empty() {
            out.push_str("\nNew failures:\n\n");
            for c in new {
                let _ = writeln!(
                    out,
                    "- {} `{}` {} {}",
                    c.rule_id, c.resource_id, c.account_id, c.region
                );
            }
        }
        out
    }
}
