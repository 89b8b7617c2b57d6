//! `findings.ocsf.jsonl`: OCSF 1.3 Compliance Findings (class 2003) for
//! SIEMs and Security Lake. Every event is valid against OCSF 1.3.0's
//! Compliance Finding schema with the `cloud` profile, which it declares
//! (`tests/fixtures/ocsf-1.3.0-compliance_finding-cloud.schema.json`):
//! strings beside an `*_id` are its caption, and nothing is null (an
//! attribute not known is left out).
//!
//! What is the same for every finding of a rule is not repeated in each
//! event beyond what triage needs: an event names its rule
//! (`compliance.control`), its title and what to do (`remediation.desc`);
//! the rule's rationale and references, optional in OCSF, are the rule's
//! own (`policies/` beside the report, `amiaudit policies explain RULE`), not
//! copied into hundreds of thousands of events.

use crate::policy::Severity;
use crate::results::{Finding, Status};

use super::ReportContext;

/// OCSF's `severity_id` and its caption.
fn severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// `findings.ocsf.jsonl`: one OCSF 1.3 Compliance Finding (class 2003) per
/// non-passing result. Waived results are findings with status Suppressed.
/// Serialised in parallel chunks of lines, in results order, and written a
/// batch of chunks at a time (an audit of 100k AMIs has hundreds of
/// thousands of findings: the file is never held whole).
pub fn write_ocsf(
    context: &ReportContext,
    file: &mut crate::output::file::OutputFile,
) -> crate::error::Result<()> {
    const CHUNK: usize = 8192;
    let time = context.meta.collected_at_ms;
    let rules: Vec<OcsfRule> = context
        .rules
        .iter()
        .map(|rule| OcsfRule {
            standards: rule.framework_ids.keys().map(String::as_str).collect(),
            requirements: rule
                .framework_ids
                .iter()
                .flat_map(|(fw, ids)| ids.iter().map(move |id| format!("{fw} {id}")))
                .collect(),
        })
        .collect();
    let chunks = context.finding_chunks(CHUNK);
    super::write_batched(
        chunks,
        |(i, findings)| {
            let (Some(rule), Some(extra)) = (context.rules.get(i), rules.get(i)) else {
                return Err(crate::error::Error::Internal(format!(
                    "rule {i} has no section"
                )));
            };
            let mut out = Vec::with_capacity(findings.len() * 1400);
            for f in findings {
                let uid = format!(
                    "{}:{}:{}:{}",
                    f.rule_id, f.account_id, f.region, f.resource_id
                );
                let event = ocsf_event(context, rule, extra, f, time, &uid);
                serde_json::to_writer(&mut out, &event).map_err(ocsf_error)?;
                out.push(b'\n');
            }
            Ok(out)
        },
        |text| file.write_bytes(text),
    )
}

fn ocsf_error(e: impl std::fmt::Display) -> crate::error::Error {
    crate::error::Error::Internal(format!("findings.ocsf.jsonl: {e}"))
}

/// Per-rule parts of an OCSF event, computed once.
struct OcsfRule<'a> {
    standards: Vec<&'a str>,
    requirements: Vec<String>,
}

fn ocsf_event<'a>(
    context: &'a ReportContext,
    rule: &'a super::RuleSection,
    extra: &'a OcsfRule<'a>,
    f: &'a Finding,
    time: i64,
    uid: &'a str,
) -> event::Event<'a> {
    // An unknown result is OCSF's Warning: "The compliance check did not
    // yield a result due to missing information" (compliance.status_id 2),
    // which is what unknown means here; OCSF's Unknown (0) says only that
    // the status itself is not known.
    let (compliance_status_id, compliance_status) = match f.status {
        Status::Fail | Status::Waived => (3, "Fail"),
        Status::Unknown => (2, "Warning"),
        Status::Pass => (1, "Pass"),
    };
    let (severity_id, severity) = severity(f.severity);
    let (status_id, status) = if f.status == Status::Waived {
        (3, "Suppressed")
    } else {
        (1, "New")
    };
    event::Event {
        activity_id: 1,
        activity_name: "Create",
        category_name: "Findings",
        category_uid: 2,
        class_name: "Compliance Finding",
        class_uid: 2003,
        cloud: event::Cloud {
            account: event::Account {
                name: &f.account_name,
                r#type: "AWS Account",
                type_id: 10,
                uid: &f.account_id,
            },
            // An organization is named by its id; without one, no `org`.
            org: context
                .meta
                .scope
                .organization_id
                .as_deref()
                .map(|uid| event::Org {
                    ou_name: (!f.ou_path.is_empty()).then_some(&*f.ou_path),
                    uid,
                }),
            provider: "AWS",
            region: &f.region,
        },
        compliance: event::Compliance {
            control: &f.rule_id,
            requirements: &extra.requirements,
            standards: &extra.standards,
            status: compliance_status,
            status_id: compliance_status_id,
        },
        finding_info: event::FindingInfo {
            title: &f.title,
            types: ["Golden AMI hygiene"],
            uid,
        },
        message: &f.reason,
        metadata: event::Metadata {
            product: event::Product {
                name: "amiaudit",
                vendor_name: "amiaudit",
                version: &context.meta.tool_version,
            },
            profiles: ["cloud"],
            uid,
            version: "1.3.0",
        },
        remediation: event::Remediation {
            desc: &rule.remediation,
        },
        resources: [event::Resource {
            cloud_partition: "aws",
            name: &f.resource_name,
            region: &f.region,
            r#type: &f.resource_type,
            uid: &f.resource_id,
        }],
        severity,
        severity_id,
        status,
        status_id,
        time,
        type_name: "Compliance Finding: Create",
        type_uid: 200301,
        unmapped: event::Unmapped {
            remediation_command: &f.remediation,
            waiver_expires: &f.waiver_expires,
            waiver_reason: &f.waiver_reason,
        },
    }
}

/// The OCSF 1.3 Compliance Finding fields amiaudit fills. Fields are in
/// alphabetical order at every level, the order the file has always had.
mod event {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct Event<'a> {
        pub activity_id: u8,
        pub activity_name: &'a str,
        pub category_name: &'a str,
        pub category_uid: u8,
        pub class_name: &'a str,
        pub class_uid: u32,
        pub cloud: Cloud<'a>,
        pub compliance: Compliance<'a>,
        pub finding_info: FindingInfo<'a>,
        pub message: &'a str,
        pub metadata: Metadata<'a>,
        pub remediation: Remediation<'a>,
        pub resources: [Resource<'a>; 1],
        pub severity: &'a str,
        pub severity_id: u8,
        pub status: &'a str,
        pub status_id: u8,
        pub time: i64,
        pub type_name: &'a str,
        pub type_uid: u32,
        pub unmapped: Unmapped<'a>,
    }

    #[derive(Serialize)]
    pub struct Cloud<'a> {
        pub account: Account<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub org: Option<Org<'a>>,
        pub provider: &'a str,
        pub region: &'a str,
    }

    #[derive(Serialize)]
    pub struct Account<'a> {
        pub name: &'a str,
        pub r#type: &'a str,
        pub type_id: u8,
        pub uid: &'a str,
    }

    #[derive(Serialize)]
    pub struct Org<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub ou_name: Option<&'a str>,
        pub uid: &'a str,
    }

    #[derive(Serialize)]
    pub struct Compliance<'a> {
        pub control: &'a str,
        pub requirements: &'a [String],
        pub standards: &'a [&'a str],
        pub status: &'a str,
        pub status_id: u8,
    }

    #[derive(Serialize)]
    pub struct FindingInfo<'a> {
        pub title: &'a str,
        pub types: [&'a str; 1],
        pub uid: &'a str,
    }

    #[derive(Serialize)]
    pub struct Metadata<'a> {
        pub product: Product<'a>,
        /// The profiles whose attributes the event uses (`cloud`).
        pub profiles: [&'a str; 1],
        pub uid: &'a str,
        pub version: &'a str,
    }

    #[derive(Serialize)]
    pub struct Product<'a> {
        pub name: &'a str,
        pub vendor_name: &'a str,
        pub version: &'a str,
    }

    #[derive(Serialize)]
    pub struct Remediation<'a> {
        pub desc: &'a str,
    }

    #[derive(Serialize)]
    pub struct Resource<'a> {
        pub cloud_partition: &'a str,
        pub name: &'a str,
        pub region: &'a str,
        pub r#type: &'a str,
        pub uid: &'a str,
    }

    #[derive(Serialize)]
    pub struct Unmapped<'a> {
        pub remediation_command: &'a str,
        pub waiver_expires: &'a str,
        pub waiver_reason: &'a str,
    }
}
