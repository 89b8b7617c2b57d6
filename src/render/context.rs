//! The report context: a typed, serialisable view of one audit, which every
//! format renders.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::evaluate::{Evaluation, RuleError};
use crate::findings::{self, Document, RuleEntry};
use crate::inventory::str_column;
use crate::inventory::{Inventory, format_timestamp};
use crate::policy::{PolicyPack, Severity};
use crate::results::{Finding, Status, Summary, Text, for_each_finding, frameworks_text};

use super::*;

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
    /// Framework -> requirement ids.
    pub framework_ids: std::collections::BTreeMap<String, Vec<String>>,
    pub counts: crate::results::StatusCounts,
    /// Non-passing results (fail, unknown, waived) of this rule. Templates
    /// read them on demand ([`template_findings`]).
    #[serde(serialize_with = "template_findings")]
    pub findings: Arc<Vec<Finding>>,
}

/// A rule's findings as a template sees them: a sequence whose items become
/// template values only when a template reads them. Converting every
/// finding up front cost half a gigabyte at 100k AMIs, for a default template
/// that reads only how many there are.
fn template_findings<S: serde::Serializer>(
    findings: &Arc<Vec<Finding>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    if minijinja::value::serializing_for_value() {
        minijinja::Value::from_object(TemplateFindings(Arc::clone(findings))).serialize(serializer)
    } else {
        findings.serialize(serializer)
    }
}

#[derive(Debug)]
struct TemplateFindings(Arc<Vec<Finding>>);

impl minijinja::value::Object for TemplateFindings {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, index: &minijinja::Value) -> Option<minijinja::Value> {
        let finding = self.0.get(index.as_usize()?)?;
        Some(minijinja::Value::from_serialize(finding))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.0.len())
    }
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

/// A rule that could not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RuleNotRun {
    pub id: String,
    pub title: String,
    pub error: String,
}

/// Everything a report template sees.
#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    pub meta: AuditMeta,
    pub summary: Summary,
    pub rules: Vec<RuleSection>,
    pub scan_errors: Vec<ScanErrorRow>,
    pub rule_errors: Vec<String>,
    /// The rules that could not run (each also in `rule_errors`): no
    /// result of theirs is a pass, and every format says so.
    pub rules_not_run: Vec<RuleNotRun>,
    /// Regions in scope, sorted, for the report's filters.
    pub regions: Vec<String>,
    /// Every waiver of the waiver file, with its state: active, expired or unused.
    pub waivers: Vec<crate::waivers::WaiverUse>,
    pub charts: charts::Charts,
    /// The image factory: pipelines, their health and lineage.
    pub pipelines: pipelines::PipelinesView,
    /// Fleet adoption of the newest golden versions.
    pub adoption: crate::results::adoption::Adoption,
    /// What is safe to retire, and what deprecated AMIs are still in use.
    pub retirement: crate::results::retirement::Retirement,
    /// Drift since the baseline audit, with `--baseline`.
    pub diff: Option<crate::diff::Diff>,
    /// Account-regions in scope not read in full (see
    /// `findings::Document::not_read_in_full`).
    #[serde(skip)]
    pub not_read_in_full: Vec<(String, String)>,
    /// With `--baseline`: each of its non-passing results, by
    /// [`finding_key`], with when it was first observed and its status.
    #[serde(skip)]
    pub baseline: Option<BTreeMap<String, (String, Status)>>,
    /// Each Auto Scaling group's ARN (DescribeAutoScalingGroups
    /// `AutoScalingGroupARN`), by account, region and name.
    #[serde(skip)]
    pub group_arns: BTreeMap<(String, String, String), String>,
}

/// One result's identity across audits: rule, account, region, resource.
pub fn finding_key(rule: &str, account: &str, region: &str, resource: &str) -> String {
    [rule, account, region, resource].join("\u{0}")
}

impl ReportContext {
    /// Remembers the baseline's non-passing results: when each was first
    /// observed (its own `first_observed_at`, or the baseline's time for a
    /// document older than that field) and its status.
    pub fn set_baseline(&mut self, old: &findings::Document<'_>) {
        let map = old
            .findings
            .iter()
            .map(|f| {
                let first = if f.first_observed_at.is_empty() {
                    old.audit.collected_at.clone()
                } else {
                    f.first_observed_at.to_string()
                };
                (
                    finding_key(&f.rule_id, &f.account_id, &f.region, &f.resource_id),
                    (first, f.status),
                )
            })
            .collect();
        self.baseline = Some(map);
    }

    /// When this result was first observed: in the baseline, when it was
    /// non-passing there; else in this audit.
    pub fn first_observed_at(
        &self,
        rule: &str,
        account: &str,
        region: &str,
        resource: &str,
    ) -> &str {
        self.baseline
            .as_ref()
            .and_then(|b| b.get(&finding_key(rule, account, region, resource)))
            .map_or(self.meta.collected_at.as_str(), |(first, _)| first.as_str())
    }

    /// Whether a result failing (or unknown) now may be closed in Security
    /// Hub by an earlier audit: the baseline waived it, or did not list it
    /// (passing then, so resolved if it had been imported). None without a
    /// baseline: nothing is known of before.
    pub fn reopened(&self, rule: &str, account: &str, region: &str, resource: &str) -> bool {
        self.baseline.as_ref().is_some_and(|b| {
            !matches!(
                b.get(&finding_key(rule, account, region, resource)),
                Some((_, Status::Fail | Status::Unknown))
            )
        })
    }

    /// The non-passing findings in chunks of at most `size`, each with the
    /// index of its rule: formats with one record per finding serialise
    /// them in parallel, in results order.
    pub fn finding_chunks(&self, size: usize) -> Vec<(usize, &[Finding])> {
        self.rules
            .iter()
            .enumerate()
            .flat_map(|(i, rule)| rule.findings.chunks(size).map(move |c| (i, c)))
            .collect()
    }
}

impl ReportContext {
    pub fn build(
        inventory: &Inventory,
        pack: &PolicyPack,
        evaluation: &Evaluation,
        summary: Summary,
        meta: AuditMeta,
    ) -> Result<ReportContext> {
        // Each rule's list made as long as its non-passing count: grown by
        // doubling, the lists held up to twice what they needed.
        let mut findings_by_rule: BTreeMap<Text, Vec<Finding>> = summary
            .rules
            .iter()
            .map(|s| {
                let non_passing = s.counts.total() - s.counts.pass;
                let capacity = usize::try_from(non_passing).unwrap_or(0);
                (Text::from(s.rule_id.as_str()), Vec::with_capacity(capacity))
            })
            .collect();
        for_each_finding(
            inventory,
            evaluation,
            &pack.rules,
            |s| s != Status::Pass,
            |f| {
                findings_by_rule
                    .entry(Arc::clone(&f.rule_id))
                    .or_default()
                    .push(f)
            },
        )?;
        let rules: Vec<RuleSection> = pack
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
                framework_ids: r.frameworks.clone(),
                counts: summary
                    .rules
                    .iter()
                    .find(|s| s.rule_id == r.id)
                    .map(|s| s.counts)
                    .unwrap_or_default(),
                findings: Arc::new(findings_by_rule.remove(r.id.as_str()).unwrap_or_default()),
            })
            .collect();
        let pipelines = pipelines::build(inventory, pack, evaluation)?;
        let adoption = crate::results::adoption::build(inventory)?;
        let retirement = crate::results::retirement::build(inventory, &evaluation.results)?;
        let charts = charts::build(inventory, &summary, &rules, &adoption)?;
        Ok(ReportContext {
            meta,
            summary,
            rules,
            scan_errors: scan_errors(inventory)?,
            rule_errors: evaluation
                .rule_errors
                .iter()
                .map(RuleError::to_string)
                .collect(),
            rules_not_run: rules_not_run(pack, evaluation),
            regions: regions(inventory),
            waivers: Vec::new(),
            not_read_in_full: not_read_in_full(inventory),
            charts,
            pipelines,
            adoption,
            retirement,
            diff: None,
            baseline: None,
            group_arns: group_arns(inventory)?,
        })
    }
}

/// The rules that could not run, with why.
fn rules_not_run(pack: &PolicyPack, evaluation: &Evaluation) -> Vec<RuleNotRun> {
    evaluation
        .rule_errors
        .iter()
        .map(|e| RuleNotRun {
            id: e.rule_id.clone(),
            title: pack
                .rules
                .iter()
                .find(|r| r.id == e.rule_id)
                .map(|r| r.title.clone())
                .unwrap_or_default(),
            error: e.to_string(),
        })
        .collect()
}

/// Every region of the scope, sorted, once.
fn regions(inventory: &Inventory) -> Vec<String> {
    let mut r: Vec<String> = inventory
        .coverage()
        .regions
        .keys()
        .map(|(_, r)| r.clone())
        .filter(|r| !r.is_empty())
        .collect();
    r.sort();
    r.dedup();
    r
}

/// The account-regions not read in full (not opted in is out of scope,
/// not unread).
fn not_read_in_full(inventory: &Inventory) -> Vec<(String, String)> {
    inventory
        .coverage()
        .regions
        .iter()
        .filter(|(_, (status, _))| {
            !matches!(
                status,
                crate::inventory::ScanStatus::Ok | crate::inventory::ScanStatus::NotOptedIn
            )
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// `(account, region, group name) -> ARN` of every Auto Scaling group whose
/// ARN was read.
fn group_arns(inventory: &Inventory) -> Result<BTreeMap<(String, String, String), String>> {
    let groups = inventory.table("auto_scaling_groups")?;
    let column = |name| str_column(groups, name);
    let (accounts, regions, names, arns) = (
        column("account_id")?,
        column("region")?,
        column("group_name")?,
        column("group_arn")?,
    );
    Ok(accounts
        .into_iter()
        .zip(regions)
        .zip(names)
        .zip(arns)
        .filter_map(|(((a, r), n), arn)| {
            Some((
                (a?.to_string(), r?.to_string(), n?.to_string()),
                arn?.to_string(),
            ))
        })
        .collect())
}

pub fn audit_meta(
    inventory: &Inventory,
    pack: &PolicyPack,
    framework: Option<String>,
) -> Result<AuditMeta> {
    let manifest = inventory.manifest();
    let manifest_json = serde_json::to_string(manifest)
        .map_err(|e| Error::Internal(format!("evidence: inventory manifest: {e}")))?;
    Ok(AuditMeta {
        tool: "amiaudit".to_string(),
        tool_version: crate::VERSION.to_string(),
        inventory_schema_version: manifest.schema_version,
        collected_at: format_timestamp(inventory.collected_at_ms())?,
        collected_at_ms: inventory.collected_at_ms(),
        scope: manifest.scope.clone(),
        inventory_complete: manifest.complete,
        inventory_sha256: hex::encode(Sha256::digest(manifest_json.as_bytes())),
        policy_pack_sha256: pack.sha256.clone(),
        waivers_sha256: None,
        rules_evaluated: pack.rules.len(),
        framework,
        storage: None,
    })
}

fn scan_errors(inventory: &Inventory) -> Result<Vec<ScanErrorRow>> {
    let df = inventory.table("scan_errors")?;
    let get = |name| str_column(df, name);
    let (a, r, s, o, id, c, m) = (
        get("account_id")?,
        get("region")?,
        get("service")?,
        get("operation")?,
        get("resource_id")?,
        get("error_code")?,
        get("message")?,
    );
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    let mut rows: Vec<ScanErrorRow> = (0..df.height())
        .map(|i| ScanErrorRow {
            account_id: text(a[i]),
            region: text(r[i]),
            service: text(s[i]),
            operation: text(o[i]),
            resource_id: text(id[i]),
            error_code: text(c[i]),
            message: text(m[i]),
        })
        .collect();
    rows.sort_by(|x, y| {
        (&x.account_id, &x.region, &x.operation, &x.resource_id).cmp(&(
            &y.account_id,
            &y.region,
            &y.operation,
            &y.resource_id,
        ))
    });
    Ok(rows)
}

impl ReportContext {
    /// The findings.json document, borrowing from the context.
    pub fn document(&self) -> Document<'_> {
        self.document_of(self.document_findings().collect())
    }

    /// Writes findings.json: the document, one compact line, its findings
    /// serialised a batch of chunks at a time in parallel (at 100k AMIs
    /// they are a million records; one thread took 4.4 s). The same bytes
    /// as serialising [`ReportContext::document`] whole, which a test
    /// checks.
    pub fn write_findings_json(&self, file: &mut OutputFile) -> Result<()> {
        self.write_findings_json_in(file, 8192)
    }

    /// [`ReportContext::write_findings_json`], `chunk` findings to a chunk.
    fn write_findings_json_in(&self, file: &mut OutputFile, chunk: usize) -> Result<()> {
        let name = findings::FILE;
        let json_error = |e: serde_json::Error| Error::Internal(format!("{name}: {e}"));
        // The document with no findings ends `"findings":[]}` (findings is
        // its last field): everything before the `]}` is the head.
        let empty: [findings::Finding<'_>; 0] = [];
        let whole = serde_json::to_string(&self.document_of(empty)).map_err(json_error)?;
        let head = whole.strip_suffix("[]}").ok_or_else(|| {
            Error::Internal(format!(
                "{name}: the document does not end with its findings"
            ))
        })?;
        file.write_text(head)?;
        file.write_text("[")?;
        let chunks: Vec<(usize, &[Finding])> = self
            .finding_chunks(chunk)
            .into_iter()
            .map(|(_, chunk)| chunk)
            .enumerate()
            .collect();
        super::write_batched(
            chunks,
            |(n, chunk)| {
                // About 600 bytes a finding at 100k AMIs: one allocation.
                let mut out = Vec::with_capacity(chunk.len() * 640);
                for (k, f) in chunk.iter().enumerate() {
                    if n > 0 || k > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, &self.document_finding(f))
                        .map_err(json_error)?;
                }
                Ok(out)
            },
            |text| file.write_bytes(text),
        )?;
        file.write_text("]}\n")
    }

    fn document_of<F>(&self, findings: F) -> Document<'_, F> {
        Document {
            schema_version: findings::SCHEMA_VERSION,
            audit: Cow::Borrowed(&self.meta),
            summary: Cow::Borrowed(&self.summary),
            waivers: Cow::Borrowed(&self.waivers),
            rule_errors: Cow::Borrowed(&self.rule_errors),
            adoption: Some(Cow::Borrowed(&self.adoption)),
            retirement: Some(Cow::Borrowed(&self.retirement)),
            not_read_in_full: Some(Cow::Borrowed(&self.not_read_in_full)),
            rules: self
                .rules
                .iter()
                .map(|r| RuleEntry {
                    id: Cow::Borrowed(&r.id),
                    title: Cow::Borrowed(&r.title),
                    severity: r.severity,
                    resource_type: Cow::Borrowed(&r.resource_type),
                    frameworks: Cow::Borrowed(&r.framework_ids),
                    remediation: Cow::Borrowed(&r.remediation),
                })
                .collect(),
            findings,
        }
    }

    /// Every non-passing finding as findings.json holds it, in results order.
    fn document_findings(&self) -> impl Iterator<Item = findings::Finding<'_>> {
        self.rules
            .iter()
            .flat_map(|r| r.findings.iter())
            .map(|f| self.document_finding(f))
    }

    /// One non-passing finding as findings.json holds it.
    fn document_finding<'a>(&'a self, f: &'a Finding) -> findings::Finding<'a> {
        findings::Finding {
            rule_id: Cow::Borrowed(&f.rule_id),
            severity: f.severity,
            status: f.status,
            account_id: Cow::Borrowed(&f.account_id),
            account_name: Cow::Borrowed(&f.account_name),
            region: Cow::Borrowed(&f.region),
            resource_type: Cow::Borrowed(&f.resource_type),
            resource_id: Cow::Borrowed(&f.resource_id),
            resource_name: Cow::Borrowed(&f.resource_name),
            reason: Cow::Borrowed(&f.reason),
            remediation: Cow::Borrowed(&f.remediation),
            waiver_reason: Cow::Borrowed(&f.waiver_reason),
            waiver_expires: Cow::Borrowed(&f.waiver_expires),
            first_observed_at: Cow::Borrowed(self.first_observed_at(
                &f.rule_id,
                &f.account_id,
                &f.region,
                &f.resource_id,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "a test: a failed unwrap fails it"
    )]

    use super::*;

    /// findings.json written in parallel chunks is the document serialised
    /// whole, byte for byte, whatever the chunk size: chunks end inside a
    /// rule and at its end, and rules with no findings add nothing.
    #[test]
    fn chunked_findings_json_is_the_whole_document() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let inventory = crate::inventory::load(&root.join("sample-data/acme")).unwrap();
        let pack = crate::policy::load_builtin().unwrap();
        let evaluation = crate::evaluate::evaluate(
            &inventory,
            &pack.rules,
            &crate::policy::ParamOverrides::new(),
        );
        let summary = crate::results::summarize(&inventory, &evaluation, &pack.rules).unwrap();
        let meta = audit_meta(&inventory, &pack, None).unwrap();
        let mut context =
            ReportContext::build(&inventory, &pack, &evaluation, summary, meta).unwrap();
        assert!(
            context.rules.iter().any(|r| r.findings.len() > 3),
            "the sample has rules with several findings"
        );
        // Rules with no findings first, between and last.
        let mut empty = context.rules[0].clone();
        empty.findings = Arc::new(Vec::new());
        for at in [0, 2, context.rules.len() + 2] {
            context.rules.insert(at, empty.clone());
        }
        let whole = serde_json::to_string(&context.document()).unwrap() + "\n";
        let dir = tempfile::tempdir().unwrap();
        for chunk in [1, 3, 8192] {
            let mut file = OutputFile::create(dir.path(), "findings.json", false).unwrap();
            context.write_findings_json_in(&mut file, chunk).unwrap();
            let (path, _) = file.finish().unwrap();
            let written = std::fs::read_to_string(path).unwrap();
            assert!(
                written == whole,
                "chunks of {chunk}: not the whole document"
            );
        }
    }
}
