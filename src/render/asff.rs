//! `findings.asff.json`: the AWS Security Finding Format, exactly the
//! findings `amiaudit export security-hub` sends with BatchImportFindings
//! (it fills in only the importing account, in `AwsAccountId` and
//! `ProductArn`).
//!
//! One finding per non-passing result (fail: FAILED; unknown:
//! NOT_AVAILABLE, never a pass; waived: FAILED with workflow SUPPRESSED),
//! plus, with `--baseline`, one per failure resolved since then (PASSED,
//! record state ARCHIVED), so a re-import closes what was fixed; only what
//! `diff` calls resolved, which the new audit looked at again (the
//! account-region in scope and read in full, the rule run). A finding that
//! was merely not seen again is left as it was.
//!
//! A custom integration may only file findings under the account that
//! imports them (BatchImportFindings API reference): every finding is the
//! importing account's, and names the account it is about in its id, in
//! its resource's ARN where the ARN has one, and in
//! `ProductFields["amiaudit/AccountId"]`. Ids are stable (rule, account,
//! region, resource): importing again updates a finding instead of adding
//! one. Severity and types go in `FindingProviderFields` too, the fields a
//! provider may update. The file is a pure function of the audit:
//! `LastObservedAt` and `UpdatedAt` are the inventory's `collected_at`;
//! `FirstObservedAt` and `CreatedAt` when the result was first observed
//! (carried from the baseline while it stays non-passing). The importer
//! stamps `UpdatedAt` with the time of import (Security Hub ignores an
//! update that is not newer), and `CreatedAt` too for a result first
//! observed in this audit (at creation the two must be equal).
//!
//! The workflow a finding should be in is `Workflow.Status` (SUPPRESSED
//! when waived, RESOLVED when resolved, else NEW), and
//! `ProductFields["amiaudit/Reopened"]` marks a failure an earlier audit
//! may have closed; BatchImportFindings cannot change the workflow of a
//! finding that exists, so the importer sets these with BatchUpdateFindings.
//!
//! Resource types are those of Security Hub's documented list where one
//! fits (AwsEc2Instance, AwsEc2LaunchTemplate, AwsAutoScalingAutoScalingGroup
//! with the group's own ARN); AMIs, snapshots, parameters and pipelines,
//! which the list does not name, are `Other` with their ARN.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::Severity;
use crate::results::Status;

use super::ReportContext;

pub const FILE: &str = "findings.asff.json";
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// Security Hub's limits on a few fields (characters).
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1024;
const RECOMMENDATION_MAX: usize = 512;
const ID_MAX: usize = 512;
const REQUIREMENTS_MAX: usize = 32;
const PRODUCT_FIELD_MAX: usize = 2048;
const TYPE: &str =
    "Software and Configuration Checks/AWS Security Best Practices/Golden AMI hygiene";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffFinding {
    pub schema_version: String,
    pub id: String,
    pub product_arn: String,
    pub product_name: String,
    pub company_name: String,
    pub generator_id: String,
    pub aws_account_id: String,
    pub types: Vec<String>,
    pub first_observed_at: String,
    pub last_observed_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub severity: AsffSeverity,
    pub title: String,
    pub description: String,
    pub remediation: AsffRemediation,
    pub product_fields: BTreeMap<String, String>,
    pub resources: Vec<AsffResource>,
    pub finding_provider_fields: AsffProviderFields,
    pub compliance: AsffCompliance,
    pub workflow: AsffWorkflow,
    pub record_state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffSeverity {
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffProviderFields {
    pub severity: AsffSeverity,
    pub types: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffRemediation {
    pub recommendation: AsffRecommendation,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffRecommendation {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffResource {
    pub r#type: String,
    pub id: String,
    pub partition: String,
    pub region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffCompliance {
    pub status: String,
    pub related_requirements: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffWorkflow {
    pub status: String,
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// The partition and account the findings are filed under until the
/// importer fills in its own: the scanning identity's, else the
/// organization's management account's.
pub fn product_owner(context: &ReportContext) -> (String, String) {
    let scope = &context.meta.scope;
    let from_arn = scope.caller_arn.as_deref().and_then(|arn| {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        (parts.len() == 6 && parts[0] == "arn" && parts[4].len() == 12)
            .then(|| (parts[1].to_string(), parts[4].to_string()))
    });
    from_arn.unwrap_or_else(|| {
        (
            "aws".to_string(),
            scope
                .management_account_id
                .clone()
                .or_else(|| scope.accounts.first().cloned())
                .unwrap_or_else(|| "000000000000".to_string()),
        )
    })
}

/// `arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default`:
/// an account's own integration, which accepts findings for the accounts it
/// administers.
pub fn default_product_arn(partition: &str, region: &str, account: &str) -> String {
    format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default")
}

/// Where a finding about no region (an account-wide one) is filed:
/// Security Hub is regional, and this is the region findings are
/// aggregated in by default.
pub const ACCOUNT_WIDE_REGION: &str = "us-east-1";

/// The region a finding is filed in (Security Hub is regional).
fn filed_region(region: &str) -> &str {
    if region.is_empty() {
        ACCOUNT_WIDE_REGION
    } else {
        region
    }
}

/// A stable id: the same rule, account, region and resource give the same id.
pub fn finding_id(rule: &str, account: &str, region: &str, resource: &str) -> String {
    let id = format!("amiaudit/{rule}/{account}/{region}/{resource}");
    if id.chars().count() <= ID_MAX {
        return id;
    }
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(resource.as_bytes()));
    format!("amiaudit/{rule}/{account}/{region}/sha256-{digest}")
}

/// The resource's ARN where amiaudit knows its form, else its id.
fn resource(
    partition: &str,
    kind: &str,
    account: &str,
    region: &str,
    id: &str,
) -> (String, String) {
    let arn = |service: &str, owner: &str, rest: String| {
        format!("arn:{partition}:{service}:{region}:{owner}:{rest}")
    };
    match kind {
        "ami" => ("Other".into(), arn("ec2", "", format!("image/{id}"))),
        "snapshot" => ("Other".into(), arn("ec2", "", format!("snapshot/{id}"))),
        "instance" => (
            "AwsEc2Instance".into(),
            arn("ec2", account, format!("instance/{id}")),
        ),
        "launch-template-version" => {
            let template = id.split(':').next().unwrap_or(id);
            (
                "AwsEc2LaunchTemplate".into(),
                arn("ec2", account, format!("launch-template/{template}")),
            )
        }
        // A group whose ARN was not read (its id is a UUID amiaudit cannot
        // make up): named, not typed.
        "auto-scaling-group" => (
            "Other".into(),
            format!("{account}/{region}/autoScalingGroupName/{id}"),
        ),
        "ssm-parameter" => (
            "Other".into(),
            arn(
                "ssm",
                account,
                format!("parameter/{}", id.trim_start_matches('/')),
            ),
        ),
        "account-region" => ("AwsAccount".into(), format!("AWS::::Account:{account}")),
        _ if id.starts_with("arn:") => ("Other".into(), id.to_string()),
        _ => ("Other".into(), id.to_string()),
    }
}

/// `text` cut to at most `max` characters, the cut marked.
pub fn clip(text: &str, max: usize) -> String {
    // No more bytes than `max` is no more characters: nothing to count.
    if text.len() <= max {
        return text.to_string();
    }
    match text.char_indices().nth(max) {
        None => text.to_string(),
        // One character fewer than `max`, and the mark.
        Some(_) => {
            let kept: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{kept}…")
        }
    }
}

/// What one finding is made of, whether it comes from this audit's
/// results or from a failure resolved since the baseline.
struct Source<'a> {
    rule_id: &'a str,
    severity: Severity,
    status: &'static str,
    account_id: &'a str,
    account_name: &'a str,
    region: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    resource_name: &'a str,
    reason: &'a str,
    remediation_command: &'a str,
    waiver_reason: &'a str,
    waiver_expires: &'a str,
    first_observed_at: &'a str,
    /// A failure an earlier audit may have suppressed or resolved.
    reopened: bool,
}

/// amiaudit's own fields of a finding, the empty ones left out.
fn product_fields(context: &ReportContext, s: &Source<'_>) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for (key, value) in [
        ("amiaudit/RuleId", s.rule_id),
        ("amiaudit/Status", s.status),
        ("amiaudit/AccountId", s.account_id),
        ("amiaudit/AccountName", s.account_name),
        ("amiaudit/ResourceType", s.resource_type),
        ("amiaudit/ResourceId", s.resource_id),
        ("amiaudit/ResourceName", s.resource_name),
        ("amiaudit/RemediationCommand", s.remediation_command),
        ("amiaudit/WaiverReason", s.waiver_reason),
        ("amiaudit/WaiverExpires", s.waiver_expires),
        ("amiaudit/CollectedAt", &context.meta.collected_at),
        ("amiaudit/Reopened", if s.reopened { "true" } else { "" }),
    ] {
        if !value.is_empty() {
            fields.insert(key.to_string(), clip(value, PRODUCT_FIELD_MAX));
        }
    }
    fields
}

/// The framework requirements a rule maps to, as `framework id`.
fn related_requirements(rule: Option<&super::RuleSection>) -> Vec<String> {
    rule.map(|r| {
        r.framework_ids
            .iter()
            .flat_map(|(fw, ids)| ids.iter().map(move |id| format!("{fw} {id}")))
            .take(REQUIREMENTS_MAX)
            .collect()
    })
    .unwrap_or_default()
}

/// One ASFF finding for a result (or a failure resolved since the baseline).
fn finding(
    context: &ReportContext,
    rule: Option<&super::RuleSection>,
    owner: &(String, String),
    s: &Source<'_>,
) -> AsffFinding {
    let (partition, product_account) = owner;
    let region = filed_region(s.region);
    let time = context.meta.collected_at.clone();
    let (compliance, workflow, record_state) = match s.status {
        "fail" => ("FAILED", "NEW", "ACTIVE"),
        "waived" => ("FAILED", "SUPPRESSED", "ACTIVE"),
        "unknown" => ("NOT_AVAILABLE", "NEW", "ACTIVE"),
        _ => ("PASSED", "RESOLVED", "ARCHIVED"),
    };
    let group_arn = context.group_arns.get(&(
        s.account_id.to_string(),
        s.region.to_string(),
        s.resource_id.to_string(),
    ));
    let (resource_type, resource_id) = match (s.resource_type, group_arn) {
        ("auto-scaling-group", Some(arn)) => ("AwsAutoScalingAutoScalingGroup".into(), arn.clone()),
        _ => resource(
            partition,
            s.resource_type,
            s.account_id,
            region,
            s.resource_id,
        ),
    };
    let fields = product_fields(context, s);
    let requirements = related_requirements(rule);
    let title = rule.map_or(s.rule_id, |r| r.title.as_str());
    let description = if s.reason.is_empty() {
        rule.map_or("", |r| r.description.as_str())
    } else {
        s.reason
    };
    AsffFinding {
        schema_version: SCHEMA_VERSION.to_string(),
        id: finding_id(s.rule_id, s.account_id, region, s.resource_id),
        product_arn: default_product_arn(partition, region, product_account),
        product_name: "amiaudit".to_string(),
        company_name: "amiaudit".to_string(),
        generator_id: format!("amiaudit/{}", s.rule_id),
        aws_account_id: product_account.clone(),
        types: vec![TYPE.to_string()],
        first_observed_at: s.first_observed_at.to_string(),
        last_observed_at: time.clone(),
        created_at: s.first_observed_at.to_string(),
        updated_at: time,
        severity: AsffSeverity {
            label: label(s.severity).to_string(),
        },
        title: clip(&format!("{}: {title}", s.rule_id), TITLE_MAX),
        description: clip(description, DESCRIPTION_MAX),
        remediation: AsffRemediation {
            recommendation: AsffRecommendation {
                text: clip(
                    rule.map_or("", |r| r.remediation.as_str()),
                    RECOMMENDATION_MAX,
                ),
                url: rule
                    .and_then(|r| r.references.iter().find(|u| u.starts_with("https://")))
                    .cloned(),
            },
        },
        product_fields: fields,
        finding_provider_fields: AsffProviderFields {
            severity: AsffSeverity {
                label: label(s.severity).to_string(),
            },
            types: vec![TYPE.to_string()],
        },
        resources: vec![AsffResource {
            r#type: resource_type,
            id: resource_id,
            partition: partition.clone(),
            region: region.to_string(),
        }],
        compliance: AsffCompliance {
            status: compliance.to_string(),
            related_requirements: requirements,
        },
        workflow: AsffWorkflow {
            status: workflow.to_string(),
        },
        record_state: record_state.to_string(),
    }
}

/// The file: a JSON array, one finding per line, in results order and then
/// the resolved ones in diff order. Serialised in parallel chunks and
/// written a batch of chunks at a time (never held whole).
pub fn write_asff(
    context: &ReportContext,
    file: &mut crate::output::file::OutputFile,
) -> crate::error::Result<()> {
    const CHUNK: usize = 8192;
    let owner = product_owner(context);
    // A JSON array: `,` between elements (chunks come without a trailing
    // one), a line each.
    let mut elements = ArrayWriter::begin(file)?;
    let chunks = context.finding_chunks(CHUNK);
    super::write_batched(
        chunks,
        |(i, findings)| {
            let rule = &context.rules[i];
            let mut out = Vec::with_capacity(findings.len() * 1500);
            for f in findings {
                let source = Source {
                    rule_id: &f.rule_id,
                    severity: f.severity,
                    status: match f.status {
                        Status::Fail => "fail",
                        Status::Waived => "waived",
                        Status::Unknown => "unknown",
                        Status::Pass => "pass",
                    },
                    account_id: &f.account_id,
                    account_name: &f.account_name,
                    region: &f.region,
                    resource_type: &f.resource_type,
                    resource_id: &f.resource_id,
                    resource_name: &f.resource_name,
                    reason: &f.reason,
                    remediation_command: &f.remediation,
                    waiver_reason: &f.waiver_reason,
                    waiver_expires: &f.waiver_expires,
                    first_observed_at: context.first_observed_at(
                        &f.rule_id,
                        &f.account_id,
                        &f.region,
                        &f.resource_id,
                    ),
                    reopened: matches!(f.status, Status::Fail | Status::Unknown)
                        && context.reopened(&f.rule_id, &f.account_id, &f.region, &f.resource_id),
                };
                if !out.is_empty() {
                    out.extend_from_slice(b",\n");
                }
                serde_json::to_writer(&mut out, &finding(context, Some(rule), &owner, &source))
                    .map_err(asff_error)?;
            }
            Ok(out)
        },
        |chunk| elements.push(chunk),
    )?;
    elements.push(&resolved_findings(context, &owner)?)?;
    elements.end()
}

/// The failures of the baseline resolved since, as ASFF findings joined by
/// `,` and a line break (diff order): serde_json's bytes, as the batches are.
fn resolved_findings(
    context: &ReportContext,
    owner: &(String, String),
) -> crate::error::Result<Vec<u8>> {
    let mut resolved = Vec::new();
    for change in context
        .diff
        .iter()
        .flat_map(|d| d.changes.iter())
        .filter(|c| c.change == crate::diff::ChangeKind::Resolved)
    {
        // `resolved` means looked at again (see `diff`); a rule that did
        // not run this time has no section, and its failures stay as they were.
        let Some(rule) = context.rules.iter().find(|r| r.id == change.rule_id) else {
            continue;
        };
        let severity = Severity::parse(&change.severity).unwrap_or(Severity::Info);
        let source = Source {
            rule_id: &change.rule_id,
            severity,
            status: "resolved",
            account_id: &change.account_id,
            account_name: "",
            region: &change.region,
            resource_type: &rule.resource_type,
            resource_id: &change.resource_id,
            resource_name: &change.resource_name,
            reason: &change.reason,
            remediation_command: "",
            waiver_reason: "",
            waiver_expires: "",
            first_observed_at: context.first_observed_at(
                &change.rule_id,
                &change.account_id,
                &change.region,
                &change.resource_id,
            ),
            reopened: false,
        };
        if !resolved.is_empty() {
            resolved.extend_from_slice(b",\n");
        }
        serde_json::to_writer(&mut resolved, &finding(context, Some(rule), owner, &source))
            .map_err(asff_error)?;
    }
    Ok(resolved)
}

/// Writes `[`, then elements separated by `,` and a line break, then `]`.
struct ArrayWriter<'a> {
    file: &'a mut crate::output::file::OutputFile,
    any: bool,
}

impl<'a> ArrayWriter<'a> {
    fn begin(file: &'a mut crate::output::file::OutputFile) -> crate::error::Result<Self> {
        file.write_text("[\n")?;
        Ok(ArrayWriter { file, any: false })
    }

    /// One or more elements already joined by `,\n` (nothing when empty).
    fn push(&mut self, elements: &[u8]) -> crate::error::Result<()> {
        if elements.is_empty() {
            return Ok(());
        }
        if self.any {
            self.file.write_text(",\n")?;
        }
        self.any = true;
        self.file.write_bytes(elements)
    }

    fn end(self) -> crate::error::Result<()> {
        self.file.write_text(if self.any { "\n]\n" } else { "]\n" })
    }
}

fn asff_error(e: impl std::fmt::Display) -> crate::error::Error {
    crate::error::Error::Internal(format!("{FILE}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_bounded() {
        assert_eq!(
            finding_id("AMI-PUBLIC", "111122223333", "eu-west-1", "ami-1"),
            "amiaudit/AMI-PUBLIC/111122223333/eu-west-1/ami-1"
        );
        let long = "x".repeat(600);
        let id = finding_id("R", "111122223333", "eu-west-1", &long);
        assert!(id.len() <= ID_MAX && id.contains("sha256-"), "{id}");
        assert_eq!(id, finding_id("R", "111122223333", "eu-west-1", &long));
    }

    /// The array written a chunk at a time is the array written whole:
    /// empty chunks add nothing, and no `,` trails the last element.
    #[test]
    fn chunked_arrays_are_json_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let written = |chunks: &[&str]| {
            let mut file =
                crate::output::file::OutputFile::create(dir.path(), "a.json", false).unwrap();
            let mut array = ArrayWriter::begin(&mut file).unwrap();
            for chunk in chunks {
                array.push(chunk.as_bytes()).unwrap();
            }
            array.end().unwrap();
            let (path, _) = file.finish().unwrap();
            std::fs::read_to_string(path).unwrap()
        };
        assert_eq!(written(&[]), "[\n]\n");
        assert_eq!(written(&["", ""]), "[\n]\n");
        assert_eq!(
            written(&["", "{\"a\":1}", "", "{\"b\":2},\n{\"c\":3}", ""]),
            "[\n{\"a\":1},\n{\"b\":2},\n{\"c\":3}\n]\n"
        );
        let parsed: Vec<serde_json::Value> =
            serde_json::from_str(&written(&["{}", "{},\n{}"])).unwrap();
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn clipped_text_stays_within_the_limit() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        let c = clip("ééééé", 3);
        assert_eq!(c.chars().count(), 3, "{c}");
    }
}
