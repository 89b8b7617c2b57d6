//! Render: turns results into the files people read and tools ingest.
//!
//! Owns the report context (a typed, serialisable view of one audit), the
//! output formats and their stable columns, and the terminal summary. Reads
//! only what [`crate::results`] and the inventory manifest provide.
//!
//! **Architecture invariant:** output is a pure function of the inventory,
//! the policies, the parameters and the waivers: no wall clock, no random
//! order, so the same inputs give byte-identical files. AWS-sourced text is
//! escaped in HTML (minijinja autoescape) and neutralised in CSV.

mod csv;
mod html;
mod terminal;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::evaluate::{Evaluation, RuleError};
use crate::inventory::{Inventory, Scope, format_timestamp};
use crate::policy::{PolicyPack, Severity};
use crate::results::{Finding, Status, Summary, for_each_finding, frameworks_text, str_column};

pub use csv::{CSV_COLUMNS, neutralise_cell};
pub use terminal::terminal_summary;

/// Which files an audit writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Html,
    Csv,
    Json,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Html, OutputFormat::Csv, OutputFormat::Json];

    pub fn file_name(self) -> &'static str {
        match self {
            OutputFormat::Html => "report.html",
            OutputFormat::Csv => "findings.csv",
            OutputFormat::Json => "findings.json",
        }
    }
}

/// What every report says about the audit itself.
#[derive(Debug, Clone, Serialize)]
pub struct AuditMeta {
    pub tool: &'static str,
    pub tool_version: &'static str,
    pub inventory_schema_version: u32,
    /// The inventory's `collected_at`: the audit's point in time.
    pub collected_at: String,
    pub scope: Scope,
    pub inventory_complete: bool,
    /// sha256 of the inventory manifest (which holds each table file's sha256).
    pub inventory_sha256: String,
    pub policy_pack_sha256: String,
    /// sha256 of the waiver file, when one was given.
    pub waivers_sha256: Option<String>,
    pub rules_evaluated: usize,
    pub framework: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleSection {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub resource_type: String,
    pub description: String,
    pub remediation: String,
    pub remediation_command: Option<String>,
    pub references: Vec<String>,
    pub frameworks: String,
    pub counts: crate::results::StatusCounts,
    /// Non-passing results (fail, unknown, waived) of this rule.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanErrorRow {
    pub account_id: String,
    pub region: String,
    pub service: String,
    pub operation: String,
    pub resource_id: String,
    pub error_code: String,
    pub message: String,
}

/// Everything a report template sees.
#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    pub meta: AuditMeta,
    pub summary: Summary,
    pub rules: Vec<RuleSection>,
    pub scan_errors: Vec<ScanErrorRow>,
    pub rule_errors: Vec<String>,
    /// Regions in scope, sorted, for the report's filters.
    pub regions: Vec<String>,
    /// Every waiver of the waiver file, with its state: active, expired or unused.
    pub waivers: Vec<crate::waivers::WaiverUse>,
}

impl ReportContext {
    pub fn build(
        inventory: &Inventory,
        pack: &PolicyPack,
        evaluation: &Evaluation,
        summary: Summary,
        framework: Option<String>,
    ) -> ReportContext {
        let mut findings_by_rule: std::collections::BTreeMap<String, Vec<Finding>> = Default::default();
        for_each_finding(inventory, evaluation, &pack.rules, |s| s != Status::Pass, |f| {
            findings_by_rule.entry(f.rule_id.clone()).or_default().push(f)
        });
        let rules = pack
            .rules
            .iter()
            .filter(|r| !evaluation.rule_errors.iter().any(|e| e.rule_id == r.id))
            .map(|r| RuleSection {
                id: r.id.clone(),
                title: r.title.clone(),
                severity: r.severity,
                resource_type: r.resource_type.clone(),
                description: r.description.trim().to_string(),
                remediation: r.remediation.text.trim().to_string(),
                remediation_command: r.remediation.command.clone(),
                references: r.references.clone(),
                frameworks: frameworks_text(r),
                counts: summary
                    .rules
                    .iter()
                    .find(|s| s.rule_id == r.id)
                    .map(|s| s.counts)
                    .unwrap_or_default(),
                findings: findings_by_rule.remove(&r.id).unwrap_or_default(),
            })
            .collect();
        ReportContext {
            meta: audit_meta(inventory, pack, framework),
            summary,
            rules,
            scan_errors: scan_errors(inventory),
            rule_errors: evaluation.rule_errors.iter().map(RuleError::to_string).collect(),
            regions: {
                let mut r: Vec<String> = str_column(inventory.table("regions"), "region")
                    .into_iter()
                    .flatten()
                    .collect();
                r.sort();
                r.dedup();
                r
            },
            waivers: Vec::new(),
        }
    }
}

pub fn audit_meta(inventory: &Inventory, pack: &PolicyPack, framework: Option<String>) -> AuditMeta {
    let manifest_json = serde_json::to_string(&inventory.manifest).unwrap_or_default();
    AuditMeta {
        tool: "amiaudit",
        tool_version: crate::VERSION,
        inventory_schema_version: inventory.manifest.schema_version,
        collected_at: format_timestamp(inventory.collected_at_ms()),
        scope: inventory.manifest.scope.clone(),
        inventory_complete: inventory.manifest.complete,
        inventory_sha256: hex::encode(Sha256::digest(manifest_json.as_bytes())),
        policy_pack_sha256: pack.sha256.clone(),
        waivers_sha256: None,
        rules_evaluated: pack.rules.len(),
        framework,
    }
}

fn scan_errors(inventory: &Inventory) -> Vec<ScanErrorRow> {
    let df = inventory.table("scan_errors");
    let get = |name| str_column(df, name);
    let (a, r, s, o, id, c, m) = (
        get("account_id"),
        get("region"),
        get("service"),
        get("operation"),
        get("resource_id"),
        get("error_code"),
        get("message"),
    );
    let mut rows: Vec<ScanErrorRow> = (0..df.height())
        .map(|i| ScanErrorRow {
            account_id: a[i].clone().unwrap_or_default(),
            region: r[i].clone().unwrap_or_default(),
            service: s[i].clone().unwrap_or_default(),
            operation: o[i].clone().unwrap_or_default(),
            resource_id: id[i].clone().unwrap_or_default(),
            error_code: c[i].clone().unwrap_or_default(),
            message: m[i].clone().unwrap_or_default(),
        })
        .collect();
    rows.sort_by(|x, y| {
        (&x.account_id, &x.region, &x.operation, &x.resource_id)
            .cmp(&(&y.account_id, &y.region, &y.operation, &y.resource_id))
    });
    rows
}

/// Writes the selected formats into `out_dir`; returns the paths written.
pub fn write_reports(
    out_dir: &Path,
    formats: &[OutputFormat],
    inventory: &Inventory,
    pack: &PolicyPack,
    evaluation: &Evaluation,
    context: &ReportContext,
    templates: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut written = Vec::new();
    for format in OutputFormat::ALL {
        if !formats.contains(&format) {
            continue;
        }
        let path = out_dir.join(format.file_name());
        match format {
            OutputFormat::Csv => csv::write_findings(&path, inventory, pack, evaluation, &context.meta)?,
            OutputFormat::Json => {
                let text = findings_json(context)?;
                fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
            }
            OutputFormat::Html => {
                let text = html::render(context, templates)?;
                fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
            }
        }
        written.push(path);
    }
    Ok(written)
}

#[derive(Serialize)]
struct FindingsJson<'a> {
    audit: &'a AuditMeta,
    summary: &'a Summary,
    waivers: &'a [crate::waivers::WaiverUse],
    rule_errors: &'a [String],
    /// Non-passing results; passing ones are counted in `summary` and listed in findings.csv.
    findings: Vec<&'a Finding>,
}

fn findings_json(context: &ReportContext) -> Result<String> {
    let doc = FindingsJson {
        audit: &context.meta,
        summary: &context.summary,
        waivers: &context.waivers,
        rule_errors: &context.rule_errors,
        findings: context.rules.iter().flat_map(|r| r.findings.iter()).collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Internal(e.to_string()))?;
    text.push('\n');
    Ok(text)
}
