//! Results: what the evaluation found, summarised for people and tools.
//!
//! Owns the status vocabulary, counting by severity, rule and account, the
//! per-account hygiene score, and [`Finding`], the typed row reports render.
//! Reads the evaluator's results frame and the inventory's small tables; does
//! no I/O.
//!
//! Hygiene score of an account, 0-100: `100 * (1 - F / (P + F))` where `F`
//! is the severity weight summed over its failing results and `P` over its
//! passing ones (critical 10, high 5, medium 3, low 1, info 0). Waived and
//! unknown results count on neither side. No weighted result at all: 100,
//! unless some results are unknown: then no score and grade `?`, so an
//! account that could not be scanned never looks clean.
//! Grade: A >= 90, B >= 80, C >= 70, D >= 60, else F.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::{Inventory, ScanStatus, str_column};
use crate::policy::{Rule, Severity};

pub mod adoption;
mod finding;
pub mod retirement;
mod summary;
pub use finding::{Finding, Text, for_each_finding, frameworks_text};
pub use summary::summarize;

pub use crate::evaluate::Status;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub fail: u64,
    pub unknown: u64,
    pub waived: u64,
    pub pass: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: Status, n: u64) {
        match status {
            Status::Fail => self.fail += n,
            Status::Unknown => self.unknown += n,
            Status::Waived => self.waived += n,
            Status::Pass => self.pass += n,
        }
    }

    pub fn merge(&mut self, other: StatusCounts) {
        for status in Status::ALL {
            self.add(status, other.get(status));
        }
    }

    pub fn get(&self, status: Status) -> u64 {
        match status {
            Status::Fail => self.fail,
            Status::Unknown => self.unknown,
            Status::Waived => self.waived,
            Status::Pass => self.pass,
        }
    }

    pub fn total(&self) -> u64 {
        self.fail + self.unknown + self.waived + self.pass
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub severity: Severity,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleSummary {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountScore {
    pub account_id: String,
    pub account_name: String,
    pub ou_path: String,
    /// None when nothing in the account could be judged (all results unknown or waived).
    pub score: Option<f64>,
    /// A-F, or `?` when there is no score.
    pub grade: char,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CoverageSummary {
    pub accounts_in_scope: u64,
    pub account_regions_in_scope: u64,
    pub scanned_ok: u64,
    pub partial: u64,
    pub failed: u64,
    pub not_opted_in: u64,
    pub scan_errors: u64,
    /// False when the scan was interrupted, anything in scope failed, or
    /// the organization's accounts could not be listed.
    pub complete: bool,
    /// Why the organization's accounts could not be listed, when the scope
    /// was the organization: the audit saw only the caller's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts_not_listed: Option<String>,
}

/// One requirement of a framework: the rules mapped to it, and its status
/// (`fail` if any result fails, else `unknown` if any is unknown, else `pass`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequirementStatus {
    pub id: String,
    pub rules: Vec<String>,
    pub status: Status,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameworkSummary {
    pub framework: String,
    pub requirements: Vec<RequirementStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub totals: StatusCounts,
    pub by_severity: Vec<SeverityCounts>,
    pub rules: Vec<RuleSummary>,
    /// Worst first (lowest score), then by account id.
    pub accounts: Vec<AccountScore>,
    pub frameworks: Vec<FrameworkSummary>,
    /// Region -> result counts.
    pub regions: BTreeMap<String, StatusCounts>,
    pub coverage: CoverageSummary,
    /// (account, rule) -> failing results, for the heat map.
    #[serde(skip)]
    pub fail_matrix: BTreeMap<(String, String), u64>,
}

/// Account metadata for joining into findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountInfo {
    pub name: String,
    pub ou_path: String,
}

/// Every account in scope with its name and OU path; an account in scope
/// that the accounts table does not describe is listed with empty names.
pub fn account_directory(inventory: &Inventory) -> Result<BTreeMap<String, AccountInfo>> {
    let df = inventory.table("accounts")?;
    let ids = str_column(df, "account_id")?;
    let names = str_column(df, "account_name")?;
    let ous = str_column(df, "ou_path")?;
    let mut out: BTreeMap<String, AccountInfo> = inventory
        .coverage()
        .accounts
        .iter()
        .map(|a| (a.clone(), AccountInfo::default()))
        .collect();
    for i in 0..df.height() {
        if let Some(id) = ids[i] {
            out.insert(
                id.to_string(),
                AccountInfo {
                    name: names[i].unwrap_or_default().to_string(),
                    ou_path: ous[i].unwrap_or_default().to_string(),
                },
            );
        }
    }
    Ok(out)
}

/// Score and grade; no score where nothing was judged but something was not
/// seen (an account that could not be scanned must not look clean).
pub fn score_and_grade(pass_weight: f64, fail_weight: f64, unknown: u64) -> (Option<f64>, char) {
    let total = pass_weight + fail_weight;
    if total == 0.0 && unknown > 0 {
        return (None, '?');
    }
    let score = if total == 0.0 {
        100.0
    } else {
        100.0 * (1.0 - fail_weight / total)
    };
    let score = (score * 10.0).round() / 10.0;
    let grade = match score {
        s if s >= 90.0 => 'A',
        s if s >= 80.0 => 'B',
        s if s >= 70.0 => 'C',
        s if s >= 60.0 => 'D',
        _ => 'F',
    };
    (Some(score), grade)
}

/// An account-region something was not read in, with why (a view's
/// list is short by whatever it holds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unread {
    pub account_id: String,
    pub region: String,
    pub why: String,
}

/// Account-regions where any of `operations` gave nothing to read, one
/// entry per place (sorted), with the first operation's reason.
pub fn unread_places(inventory: &Inventory, operations: &[&str]) -> Vec<Unread> {
    let coverage = inventory.coverage();
    let mut by_place: BTreeMap<&(String, String), String> = BTreeMap::new();
    for operation in operations {
        for (place, why) in coverage.unread_by(operation) {
            by_place.entry(place).or_insert(why);
        }
    }
    by_place
        .into_iter()
        .map(|((account_id, region), why)| Unread {
            account_id: account_id.clone(),
            region: region.clone(),
            why,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::summary::{frameworks, grouped_counts};
    use super::*;
    use crate::evaluate::{Evaluation, empty_results};
    use polars::prelude::*;

    fn rule() -> Rule {
        crate::policy::load_builtin()
            .unwrap_or_else(|e| panic!("{e}"))
            .rules
            .remove(0)
    }

    fn evaluation(status: &str, rule_id: &str) -> Evaluation {
        let results = df!(
            "rule_id" => [rule_id],
            "account_id" => ["111111111111"],
            "region" => ["eu-west-1"],
            "resource_type" => ["ami"],
            "resource_id" => ["ami-1"],
            "resource_name" => ["n"],
            "status" => [status],
            "reason" => [""],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Evaluation {
            results,
            rule_errors: Vec::new(),
        }
    }

    fn inventory() -> Inventory {
        crate::inventory::empty(chrono::Utc::now()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_requirement_passes_only_when_every_rule_of_it_ran_and_none_failed_or_is_unknown() {
        let mut pack = crate::policy::load_builtin().unwrap_or_else(|e| panic!("{e}"));
        let mut mapped: Vec<Rule> = pack
            .rules
            .drain(..)
            .filter(|r| r.id == "AMI-PUBLIC" || r.id == "SNAP-PUBLIC")
            .collect();
        for r in &mut mapped {
            r.frameworks = BTreeMap::from([("f".to_string(), vec!["R-1".to_string()])]);
        }
        let counts = |fail, unknown, pass| StatusCounts {
            fail,
            unknown,
            waived: 0,
            pass,
        };
        let status = |a: StatusCounts, b: Option<StatusCounts>, errored: bool| {
            let mut per_rule = BTreeMap::from([("AMI-PUBLIC".to_string(), a)]);
            if let Some(b) = b {
                per_rule.insert("SNAP-PUBLIC".to_string(), b);
            }
            let errors = if errored {
                vec![crate::evaluate::RuleError {
                    rule_id: "SNAP-PUBLIC".into(),
                    file: "x".into(),
                    message: "x".into(),
                }]
            } else {
                Vec::new()
            };
            frameworks(&mapped, &per_rule, &errors)[0].requirements[0].status
        };
        let clean = counts(0, 0, 3);
        assert_eq!(status(clean, Some(clean), false), Status::Pass);
        assert_eq!(status(clean, Some(counts(1, 0, 2)), false), Status::Fail);
        assert_eq!(status(clean, Some(counts(0, 1, 2)), false), Status::Unknown);
        assert_eq!(
            status(counts(0, 2, 0), Some(counts(0, 1, 0)), false),
            Status::Unknown
        );
        // A rule that could not run has no counts: not a pass.
        assert_eq!(status(clean, None, true), Status::Unknown);
        assert_eq!(status(counts(1, 0, 0), None, true), Status::Fail);
    }

    #[test]
    fn the_hygiene_score_is_the_documented_formula() {
        // README: 100 x (1 - F / (P + F)), weights summed, one decimal;
        // A >= 90, B >= 80, C >= 70, D >= 60, else F.
        let w = |s: Severity| s.weight();
        assert_eq!(
            [
                Severity::Critical,
                Severity::High,
                Severity::Medium,
                Severity::Low,
                Severity::Info
            ]
            .map(w),
            [10.0, 5.0, 3.0, 1.0, 0.0]
        );
        assert_eq!(score_and_grade(90.0, 10.0, 0), (Some(90.0), 'A'));
        assert_eq!(score_and_grade(89.0, 11.0, 7), (Some(89.0), 'B'));
        assert_eq!(score_and_grade(80.0, 20.0, 0), (Some(80.0), 'B'));
        assert_eq!(score_and_grade(70.0, 30.0, 0), (Some(70.0), 'C'));
        assert_eq!(score_and_grade(60.0, 40.0, 0), (Some(60.0), 'D'));
        assert_eq!(score_and_grade(59.0, 41.0, 0), (Some(59.0), 'F'));
        // One critical failure against two high passes: 100 x (1 - 10/20).
        assert_eq!(
            score_and_grade(2.0 * w(Severity::High), w(Severity::Critical), 0),
            (Some(50.0), 'F')
        );
        // One decimal, rounded: 100 x (1 - 1/3) = 66.666...
        assert_eq!(score_and_grade(2.0, 1.0, 0), (Some(66.7), 'D'));
        // Nothing judged but something unknown: no score, never a clean A.
        assert_eq!(score_and_grade(0.0, 0.0, 3), (None, '?'));
        // Nothing judged and nothing unknown (only weightless or waived
        // results): nothing is wrong.
        assert_eq!(score_and_grade(0.0, 0.0, 0), (Some(100.0), 'A'));
    }

    #[test]
    fn results_are_counted_per_place_whatever_their_order() {
        let results = df!(
            "rule_id" => ["R", "R", "R", "R", "S"],
            "account_id" => ["1", "1", "2", "1", "1"],
            "region" => [Some("r"), Some("r"), Some("r"), Some("r"), None],
            "status" => ["fail", "pass", "fail", "fail", "unknown"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let evaluation = Evaluation {
            results,
            rule_errors: Vec::new(),
        };
        let counts = grouped_counts(&evaluation).unwrap_or_else(|e| panic!("{e}"));
        let expect = |fail, unknown, pass| StatusCounts {
            fail,
            unknown,
            waived: 0,
            pass,
        };
        assert_eq!(counts.len(), 3);
        assert_eq!(counts[&("R", "1", "r")], expect(2, 0, 1));
        assert_eq!(counts[&("R", "2", "r")], expect(1, 0, 0));
        assert_eq!(counts[&("S", "1", "")], expect(0, 1, 0));
    }

    #[test]
    fn a_summary_that_cannot_be_made_is_an_error_never_zero_failures() {
        let rule = rule();
        let inv = inventory();
        let ok = summarize(
            &inv,
            &evaluation("fail", &rule.id),
            std::slice::from_ref(&rule),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.totals.fail, 1);
        for bad in [
            evaluation("maybe", &rule.id),
            evaluation("fail", "NO-SUCH-RULE"),
            Evaluation {
                results: empty_results()
                    .drop("status")
                    .unwrap_or_else(|e| panic!("{e}")),
                rule_errors: Vec::new(),
            },
        ] {
            let err = summarize(&inv, &bad, std::slice::from_ref(&rule))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("summarize: "), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn findings_from_a_broken_results_frame_are_an_error_not_a_short_list() {
        let rule = rule();
        let inv = inventory();
        let mut seen = 0;
        for bad in [
            evaluation("maybe", &rule.id),
            evaluation("fail", "NO-SUCH-RULE"),
        ] {
            let outcome = for_each_finding(
                &inv,
                &bad,
                std::slice::from_ref(&rule),
                |_| true,
                |_| seen += 1,
            );
            let err = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("findings: "), "{err}");
        }
        assert_eq!(seen, 0);
    }
}
