//! `junit.xml`: one test case per rule x account-region for CI dashboards,
//! and the XML escaping SVG shares.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::results::{Finding, Status};

use super::{OutputFile, ReportContext};
use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::text_rows;
use crate::text::xml_escape;

/// How one account-region's case of a rule ended.
enum Case {
    Failure,
    Error,
    Skipped,
    Passed,
}

/// One account-region's test case of `rule` into `out`: failed when any
/// result fails, else in error when any is unknown, else skipped when any
/// is waived.
fn testcase(
    out: &mut String,
    rule: &super::RuleSection,
    account: &str,
    region: &str,
    findings: &[&Finding],
) -> Case {
    let failing: Vec<&&Finding> = findings
        .iter()
        .filter(|f| f.status == Status::Fail)
        .collect();
    let unknown: Vec<&&Finding> = findings
        .iter()
        .filter(|f| f.status == Status::Unknown)
        .collect();
    let waived: Vec<&&Finding> = findings
        .iter()
        .filter(|f| f.status == Status::Waived)
        .collect();
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}/{}\">",
        xml_escape(&rule.id),
        xml_escape(account),
        xml_escape(region)
    );
    if !failing.is_empty() {
        let list: Vec<String> = failing
            .iter()
            .map(|f| format!("{} {}: {}", f.resource_id, f.resource_name, f.reason))
            .collect();
        let _ = write!(
            out,
            "\n      <failure type=\"{}\" message=\"{} failing resource(s)\">{}</failure>\n    ",
            rule.severity,
            failing.len(),
            xml_escape(&list.join("\n"))
        );
        return Case::Failure;
    } else if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|f| format!("{}: {}", f.resource_id, f.reason))
            .collect();
        let _ = write!(
            out,
            "\n      <error type=\"unknown\" message=\"{} result(s) could not be determined\">{}</error>\n    ",
            unknown.len(),
            xml_escape(&list.join("\n"))
        );
        return Case::Error;
    } else if !waived.is_empty() {
        let mut reasons: Vec<&str> = waived.iter().map(|f| &*f.waiver_reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        let list: Vec<String> = waived
            .iter()
            .map(|f| {
                format!(
                    "{} {}: waived until {}: {}",
                    f.resource_id, f.resource_name, f.waiver_expires, f.waiver_reason
                )
            })
            .collect();
        let _ = write!(
            out,
            "\n      <skipped message=\"waived: {}\">{}</skipped>\n    ",
            xml_escape(&reasons.join("; ")),
            xml_escape(&list.join("\n"))
        );
        return Case::Skipped;
    }
    Case::Passed
}

/// `junit.xml`: one test suite per rule, one test case per account-region
/// the rule has results in. A failing resource fails the case; an unknown
/// one (coverage gap) makes it an error, so CI never shows a gap as green;
/// a case whose only non-passing results are waived is skipped, with the
/// waivers' reasons, so CI shows accepted risk as accepted. Valid against
/// the Jenkins xunit plugin's junit-10.xsd (`tests/fixtures/junit-10.xsd`):
/// the audit's time is each suite's `timestamp` (the schema has none on
/// `testsuites`).
pub fn write_junit(
    context: &ReportContext,
    evaluation: &Evaluation,
    out: &mut OutputFile,
) -> Result<()> {
    let account_regions = account_regions(evaluation)?;
    let mut suites = String::new();
    let (mut total, mut total_fail, mut total_err) = (0usize, 0usize, 0usize);
    let timestamp = xml_escape(&context.meta.collected_at);
    for rule in &context.rules {
        // account/region -> non-passing findings
        let mut by_place: BTreeMap<(&str, &str), Vec<&Finding>> = BTreeMap::new();
        for place in account_regions.get(rule.id.as_str()).into_iter().flatten() {
            by_place.entry(*place).or_default();
        }
        for f in rule.findings.iter() {
            by_place
                .entry((&f.account_id, &f.region))
                .or_default()
                .push(f);
        }
        let (mut fails, mut errors, mut skipped) = (0, 0, 0);
        let mut cases = String::new();
        for ((account, region), findings) in &by_place {
            match testcase(&mut cases, rule, account, region, findings) {
                Case::Failure => fails += 1,
                Case::Error => errors += 1,
                Case::Skipped => skipped += 1,
                Case::Passed => {}
            }
            cases.push_str("</testcase>\n");
        }
        total += by_place.len();
        total_fail += fails;
        total_err += errors;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}: {}\" tests=\"{}\" failures=\"{fails}\" errors=\"{errors}\" skipped=\"{skipped}\" timestamp=\"{timestamp}\">\n{cases}  </testsuite>\n",
            xml_escape(&rule.id),
            xml_escape(&rule.title),
            by_place.len()
        );
    }
    // A rule that could not run is one case in error: CI shows it red.
    for rule in &context.rules_not_run {
        total += 1;
        total_err += 1;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}: {}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" timestamp=\"{timestamp}\">\n    <testcase classname=\"{}\" name=\"rule\">\n      <error type=\"rule-error\" message=\"the rule could not run: none of its results is known\">{}</error>\n    </testcase>\n  </testsuite>\n",
            xml_escape(&rule.id),
            xml_escape(&rule.title),
            xml_escape(&rule.id),
            xml_escape(&rule.error)
        );
    }
    // The totals head the file, so the suites are gathered first; they are
    // written as they are, not copied into one more string (41 MB at 100k
    // AMIs).
    out.write_text(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"amiaudit\" tests=\"{total}\" failures=\"{total_fail}\" errors=\"{total_err}\">\n"
    ))?;
    out.write_text(&suites)?;
    out.write_text("</testsuites>\n")
}

/// Rule id -> the (account, region) pairs it has results in, sorted. One
/// pass over three columns of the results (a polars `unique` over them
/// copied 2 M rows at 100k AMIs); a row repeating the last place is
/// skipped before it is looked up.
fn account_regions(evaluation: &Evaluation) -> Result<BTreeMap<&str, BTreeSet<(&str, &str)>>> {
    let stage = |message: String| Error::Internal(format!("junit.xml: {message}"));
    let rows = text_rows(&evaluation.results, ["rule_id", "account_id", "region"])
        .map_err(|e| stage(e.to_string()))?;
    let mut seen: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut last = None;
    for (i, [rule, account, region]) in rows.enumerate() {
        let (Some(rule), Some(account), Some(region)) = (rule, account, region) else {
            return Err(stage(format!(
                "result row {} lacks a rule, account or region",
                i + 1
            )));
        };
        if last != Some((rule, account, region)) {
            seen.entry(rule).or_default().insert((account, region));
            last = Some((rule, account, region));
        }
    }
    Ok(seen)
}
