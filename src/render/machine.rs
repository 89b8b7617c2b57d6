//! Formats for other tools: OCSF for SIEMs, JUnit for CI dashboards,
//! Markdown for tickets and chat, and one CSV per framework.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::policy::Severity;
use crate::results::{Finding, Status};

use super::ReportContext;

fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// `findings.ocsf.jsonl`: one OCSF 1.3 Compliance Finding (class 2003) per
/// non-passing result. Waived results are findings with status Suppressed.
/// Returned as chunks of lines, in results order, serialised in parallel
/// (an audit of 100k AMIs has hundreds of thousands of findings); the
/// caller writes them one after another.
pub fn ocsf(context: &ReportContext) -> crate::error::Result<Vec<String>> {
    use rayon::prelude::*;
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
    let chunks: Vec<(usize, &[Finding])> = context
        .rules
        .iter()
        .enumerate()
        .flat_map(|(i, rule)| rule.findings.chunks(CHUNK).map(move |c| (i, c)))
        .collect();
    chunks
        .into_par_iter()
        .map(|(i, findings)| {
            let (rule, extra) = (&context.rules[i], &rules[i]);
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
            String::from_utf8(out).map_err(ocsf_error)
        })
        .collect()
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
) -> ocsf::Event<'a> {
    let (compliance_status_id, compliance_status) = match f.status {
        Status::Fail | Status::Waived => (3, "Fail"),
        Status::Unknown => (0, "Unknown"),
        Status::Pass => (1, "Pass"),
    };
    let (status_id, status) = if f.status == Status::Waived {
        (3, "Suppressed")
    } else {
        (1, "New")
    };
    ocsf::Event {
        activity_id: 1,
        activity_name: "Create",
        category_name: "Findings",
        category_uid: 2,
        class_name: "Compliance Finding",
        class_uid: 2003,
        cloud: ocsf::Cloud {
            account: ocsf::Account {
                name: &f.account_name,
                r#type: "AWS Account",
                uid: &f.account_id,
            },
            org: ocsf::Org {
                ou_name: &f.ou_path,
                uid: context.meta.scope.organization_id.as_deref(),
            },
            provider: "AWS",
            region: &f.region,
        },
        compliance: ocsf::Compliance {
            control: &f.rule_id,
            requirements: &extra.requirements,
            standards: &extra.standards,
            status: compliance_status,
            status_id: compliance_status_id,
        },
        finding_info: ocsf::FindingInfo {
            desc: &rule.description,
            title: &f.title,
            types: ["Golden AMI hygiene"],
            uid,
        },
        message: &f.reason,
        metadata: ocsf::Metadata {
            product: ocsf::Product {
                name: "amiaudit",
                vendor_name: "amiaudit",
                version: &context.meta.tool_version,
            },
            uid,
            version: "1.3.0",
        },
        remediation: ocsf::Remediation {
            desc: &rule.remediation,
            references: &rule.references,
        },
        resources: [ocsf::Resource {
            cloud_partition: "aws",
            name: &f.resource_name,
            region: &f.region,
            r#type: &f.resource_type,
            uid: &f.resource_id,
        }],
        severity: f.severity.as_str(),
        severity_id: severity_id(f.severity),
        status,
        status_id,
        time,
        type_name: "Compliance Finding: Create",
        type_uid: 200301,
        unmapped: ocsf::Unmapped {
            remediation_command: &f.remediation,
            waiver_expires: &f.waiver_expires,
            waiver_reason: &f.waiver_reason,
        },
    }
}

/// The OCSF 1.3 Compliance Finding fields amiaudit fills. Fields are in
/// alphabetical order at every level, the order the file has always had.
mod ocsf {
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
        pub org: Org<'a>,
        pub provider: &'a str,
        pub region: &'a str,
    }

    #[derive(Serialize)]
    pub struct Account<'a> {
        pub name: &'a str,
        pub r#type: &'a str,
        pub uid: &'a str,
    }

    #[derive(Serialize)]
    pub struct Org<'a> {
        pub ou_name: &'a str,
        pub uid: Option<&'a str>,
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
        pub desc: &'a str,
        pub title: &'a str,
        pub types: [&'a str; 1],
        pub uid: &'a str,
    }

    #[derive(Serialize)]
    pub struct Metadata<'a> {
        pub product: Product<'a>,
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
        pub references: &'a [String],
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

/// Escapes text for XML, SVG and HTML attributes and content, dropping
/// characters XML 1.0 forbids.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `junit.xml`: one test suite per rule, one test case per account-region
/// the rule has results in. A failing resource fails the case; an unknown
/// one (coverage gap) makes it an error, so CI never shows a gap as green.
pub fn junit(
    context: &ReportContext,
    account_regions: &BTreeMap<String, Vec<(String, String)>>,
) -> String {
    let mut suites = String::new();
    let (mut total, mut total_fail, mut total_err) = (0usize, 0usize, 0usize);
    for rule in &context.rules {
        // account/region -> non-passing findings
        let mut by_place: BTreeMap<(String, String), Vec<&Finding>> = BTreeMap::new();
        for place in account_regions.get(&rule.id).into_iter().flatten() {
            by_place.entry(place.clone()).or_default();
        }
        for f in &rule.findings {
            by_place
                .entry((f.account_id.clone(), f.region.clone()))
                .or_default()
                .push(f);
        }
        let (mut fails, mut errors) = (0, 0);
        let mut cases = String::new();
        for ((account, region), findings) in &by_place {
            let failing: Vec<&&Finding> = findings
                .iter()
                .filter(|f| f.status == Status::Fail)
                .collect();
            let unknown: Vec<&&Finding> = findings
                .iter()
                .filter(|f| f.status == Status::Unknown)
                .collect();
            let _ = write!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}/{}\">",
                xml_escape(&rule.id),
                xml_escape(account),
                xml_escape(region)
            );
            if !failing.is_empty() {
                fails += 1;
                let list: Vec<String> = failing
                    .iter()
                    .map(|f| format!("{} {}: {}", f.resource_id, f.resource_name, f.reason))
                    .collect();
                let _ = write!(
                    cases,
                    "\n      <failure type=\"{}\" message=\"{} failing resource(s)\">{}</failure>\n    ",
                    rule.severity,
                    failing.len(),
                    xml_escape(&list.join("\n"))
                );
            } else if !unknown.is_empty() {
                errors += 1;
                let list: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("{}: {}", f.resource_id, f.reason))
                    .collect();
                let _ = write!(
                    cases,
                    "\n      <error type=\"unknown\" message=\"{} result(s) could not be determined\">{}</error>\n    ",
                    unknown.len(),
                    xml_escape(&list.join("\n"))
                );
            }
            cases.push_str("</testcase>\n");
        }
        total += by_place.len();
        total_fail += fails;
        total_err += errors;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}: {}\" tests=\"{}\" failures=\"{fails}\" errors=\"{errors}\" skipped=\"0\">\n{cases}  </testsuite>\n",
            xml_escape(&rule.id),
            xml_escape(&rule.title),
            by_place.len()
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"amiaudit\" tests=\"{total}\" failures=\"{total_fail}\" errors=\"{total_err}\" timestamp=\"{}\">\n{suites}</testsuites>\n",
        xml_escape(&context.meta.collected_at)
    )
}

/// Text as inert Markdown, for a table cell or a list item: every ASCII
/// punctuation mark is backslash-escaped (so no heading, emphasis, link,
/// image, code span, table cell break or autolink can start), `<`, `>` and
/// `&` become entities (no raw HTML), control characters are dropped and
/// line breaks become spaces.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() || super::terminal::is_bidi_control(c) => {}
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `summary.md`: the audit in a page, for tickets and chat.
pub fn markdown(context: &ReportContext) -> String {
    let s = &context.summary;
    let c = &s.coverage;
    let mut out = String::new();
    let _ = writeln!(out, "# Golden AMI audit: {}\n", context.meta.collected_at);
    let _ = writeln!(
        out,
        "**{}** failing, **{}** unknown, **{}** waived, **{}** passing results from {} rules over {} accounts.\n",
        s.totals.fail,
        s.totals.unknown,
        s.totals.waived,
        s.totals.pass,
        context.meta.rules_evaluated,
        c.accounts_in_scope
    );
    if !c.complete {
        let _ = writeln!(
            out,
            "> Coverage incomplete: {} account-regions not scanned, {} scanned in part. Results there are `unknown`, not passing.\n",
            c.failed, c.partial
        );
    }
    let _ = writeln!(
        out,
        "| severity | fail | unknown | waived | pass |\n|---|---:|---:|---:|---:|"
    );
    for row in &s.by_severity {
        let k = &row.counts;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            row.severity, k.fail, k.unknown, k.waived, k.pass
        );
    }
    let _ = writeln!(
        out,
        "\n## Most failing rules\n\n| rule | severity | failing |\n|---|---|---:|"
    );
    let mut rules: Vec<_> = s.rules.iter().filter(|r| r.counts.fail > 0).collect();
    rules.sort_by(|a, b| {
        (a.severity, std::cmp::Reverse(a.counts.fail), &a.rule_id).cmp(&(
            b.severity,
            std::cmp::Reverse(b.counts.fail),
            &b.rule_id,
        ))
    });
    for r in rules.iter().take(10) {
        let _ = writeln!(
            out,
            "| {}: {} | {} | {} |",
            md(&r.rule_id),
            md(&r.title),
            r.severity,
            r.counts.fail
        );
    }
    let _ = writeln!(
        out,
        "\n## Accounts, worst first\n\n| grade | score | account | name | failing | unknown |\n|---|---:|---|---|---:|---:|"
    );
    for a in s.accounts.iter().take(10) {
        let score = a.score.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        let _ = writeln!(
            out,
            "| {} | {score} | {} | {} | {} | {} |",
            a.grade,
            md(&a.account_id),
            md(&a.account_name),
            a.counts.fail,
            a.counts.unknown
        );
    }
    if let Some(diff) = &context.diff {
        out.push_str(&diff_markdown(diff));
    }
    let expired: Vec<_> = context
        .waivers
        .iter()
        .filter(|w| w.state != crate::waivers::WaiverState::Active)
        .collect();
    if !expired.is_empty() {
        let _ = writeln!(out, "\n## Waivers needing attention\n");
        for w in expired {
            let _ = writeln!(
                out,
                "- {} {}: {} (approved by {}, expires {})",
                w.state.as_str(),
                md(&w.spec.rule),
                md(&w.spec.reason),
                md(&w.spec.approved_by),
                w.spec.expires
            );
        }
    }
    let _ = writeln!(
        out,
        "\n_amiaudit {}, policy pack `{}`, inventory `{}`._",
        context.meta.tool_version,
        &context.meta.policy_pack_sha256[..12.min(context.meta.policy_pack_sha256.len())],
        &context.meta.inventory_sha256[..12.min(context.meta.inventory_sha256.len())]
    );
    out
}

/// The drift section of summary.md.
fn diff_markdown(diff: &crate::diff::Diff) -> String {
    let c = &diff.counts;
    let mut out = format!(
        "\n## Since the last audit ({})\n\n| new | resolved | persisting | now waived | now unknown |\n|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} |\n",
        md(&diff.old_collected_at),
        c.new,
        c.resolved,
        c.persisting,
        c.now_waived,
        c.now_unknown
    );
    let new: Vec<&crate::diff::Change> = diff
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
                "- {} {} {} {}",
                md(&c.rule_id),
                md(&c.resource_id),
                md(&c.account_id),
                md(&c.region)
            );
        }
    }
    out
}
