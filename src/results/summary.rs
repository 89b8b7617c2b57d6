//! The summary of an audit: its results counted by severity, rule, account,
//! region and framework requirement, with each account's hygiene score
//! (the formula is in the module above) and the scan's coverage.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::inventory::text_rows;

/// Counts results by rule, account and region in one pass, then folds the
/// small counts table into the summary. Any failure is an error
/// naming this stage: a summary that cannot be made must never read as
/// "nothing failed".
pub fn summarize(
    inventory: &Inventory,
    evaluation: &Evaluation,
    rules: &[Rule],
) -> Result<Summary> {
    let by_id: BTreeMap<&str, &Rule> = rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut per_rule: BTreeMap<String, StatusCounts> = BTreeMap::new();
    let mut per_severity: BTreeMap<Severity, StatusCounts> = BTreeMap::new();
    // account -> (counts, pass weight, fail weight)
    let mut per_account: BTreeMap<String, (StatusCounts, f64, f64)> = BTreeMap::new();
    let mut totals = StatusCounts::default();
    let mut fail_matrix: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut per_region: BTreeMap<String, StatusCounts> = BTreeMap::new();
    for ((rule_id, account, region), counts) in grouped_counts(evaluation)? {
        let rule = by_id.get(rule_id).ok_or_else(|| {
            Error::Internal(format!("summarize: results name unknown rule `{rule_id}`"))
        })?;
        for (status, n) in Status::ALL.map(|s| (s, counts.get(s))) {
            if n == 0 {
                continue;
            }
            totals.add(status, n);
            per_rule
                .entry(rule_id.to_string())
                .or_default()
                .add(status, n);
            per_severity
                .entry(rule.severity)
                .or_default()
                .add(status, n);
            per_region
                .entry(region.to_string())
                .or_default()
                .add(status, n);
            if status == Status::Fail {
                *fail_matrix
                    .entry((account.to_string(), rule_id.to_string()))
                    .or_default() += n;
            }
            let entry = per_account.entry(account.to_string()).or_default();
            entry.0.add(status, n);
            let w = rule.severity.weight() * n as f64;
            match status {
                Status::Pass => entry.1 += w,
                Status::Fail => entry.2 += w,
                _ => {}
            }
        }
    }

    let accounts = account_scores(inventory, per_account)?;

    Ok(Summary {
        totals,
        by_severity: Severity::ALL
            .into_iter()
            .map(|severity| SeverityCounts {
                severity,
                counts: per_severity.get(&severity).copied().unwrap_or_default(),
            })
            .collect(),
        rules: rule_summaries(rules, evaluation, &per_rule),
        accounts,
        frameworks: frameworks(rules, &per_rule, &evaluation.rule_errors),
        regions: per_region,
        coverage: coverage(inventory),
        fail_matrix,
    })
}

/// Each rule that ran with its counts, in pack order.
fn rule_summaries(
    rules: &[Rule],
    evaluation: &Evaluation,
    per_rule: &BTreeMap<String, StatusCounts>,
) -> Vec<RuleSummary> {
    rules
        .iter()
        .filter(|r| !evaluation.rule_errors.iter().any(|e| e.rule_id == r.id))
        .map(|r| RuleSummary {
            rule_id: r.id.clone(),
            title: r.title.clone(),
            severity: r.severity,
            counts: per_rule.get(&r.id).copied().unwrap_or_default(),
        })
        .collect()
}

/// Results counted by rule, account and region, one pass over the columns
/// (a polars group-by of the 2 M results of 100k AMIs held 400 MB).
/// Results come sorted by rule, account and region, so a run of rows of
/// one place is counted before it is looked up; the counts do not depend
/// on that order.
pub(super) fn grouped_counts(
    evaluation: &Evaluation,
) -> Result<HashMap<(&str, &str, &str), StatusCounts>> {
    let df = &evaluation.results;
    let rows = text_rows(df, ["rule_id", "account_id", "region", "status"])
        .map_err(|e| Error::Internal(format!("summarize: {e}")))?;
    let mut counts: HashMap<(&str, &str, &str), StatusCounts> = HashMap::new();
    let mut run: Option<((&str, &str, &str), StatusCounts)> = None;
    for (i, [rule, account, region, status]) in rows.enumerate() {
        let (Some(rule), Some(account), Some(status)) = (rule, account, status) else {
            return Err(Error::Internal(format!(
                "summarize: result row {} has no rule, account or status",
                i + 1
            )));
        };
        let status = Status::parse(status).ok_or_else(|| {
            Error::Internal(format!(
                "summarize: rule `{rule}` has a result with status `{status}`"
            ))
        })?;
        let place = (rule, account, region.unwrap_or_default());
        match &mut run {
            Some((at, n)) if *at == place => n.add(status, 1),
            _ => {
                let mut n = StatusCounts::default();
                n.add(status, 1);
                if let Some((at, done)) = run.replace((place, n)) {
                    counts.entry(at).or_default().merge(done);
                }
            }
        }
    }
    if let Some((at, done)) = run {
        counts.entry(at).or_default().merge(done);
    }
    Ok(counts)
}

/// Every account of the scope with its score, worst first: unscored
/// accounts (nothing could be judged) first, then lowest score.
/// `per_account` holds each account's counts, pass weight and fail weight.
fn account_scores(
    inventory: &Inventory,
    mut per_account: BTreeMap<String, (StatusCounts, f64, f64)>,
) -> Result<Vec<AccountScore>> {
    let directory = account_directory(inventory)?;
    for id in directory.keys() {
        per_account.entry(id.clone()).or_default();
    }
    let mut accounts: Vec<AccountScore> = per_account
        .into_iter()
        .map(|(account_id, (counts, pw, fw))| {
            let (score, grade) = score_and_grade(pw, fw, counts.unknown);
            let info = directory.get(&account_id).cloned().unwrap_or_default();
            AccountScore {
                account_id,
                account_name: info.name,
                ou_path: info.ou_path,
                score,
                grade,
                counts,
            }
        })
        .collect();
    accounts.sort_by(|a, b| {
        a.score
            .unwrap_or(-1.0)
            .total_cmp(&b.score.unwrap_or(-1.0))
            .then_with(|| b.counts.fail.cmp(&a.counts.fail))
            .then_with(|| a.account_id.cmp(&b.account_id))
    });

    Ok(accounts)
}

/// Each framework's requirements with the counts of their rules. A
/// requirement fails when any result fails; otherwise it is `unknown` when
/// any result is, or when one of its rules could not run (what that rule
/// would have found is not known); only then does it pass.
pub(super) fn frameworks(
    rules: &[Rule],
    per_rule: &BTreeMap<String, StatusCounts>,
    errors: &[crate::evaluate::RuleError],
) -> Vec<FrameworkSummary> {
    // framework -> requirement -> rule ids
    let mut map: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for rule in rules {
        for (framework, ids) in &rule.frameworks {
            for id in ids {
                map.entry(framework)
                    .or_default()
                    .entry(id)
                    .or_default()
                    .push(&rule.id);
            }
        }
    }
    map.into_iter()
        .map(|(framework, requirements)| FrameworkSummary {
            framework: framework.to_string(),
            requirements: requirements
                .into_iter()
                .map(|(id, rule_ids)| {
                    let mut counts = StatusCounts::default();
                    for r in &rule_ids {
                        if let Some(c) = per_rule.get(*r) {
                            counts.fail += c.fail;
                            counts.unknown += c.unknown;
                            counts.waived += c.waived;
                            counts.pass += c.pass;
                        }
                    }
                    let errored = rule_ids
                        .iter()
                        .any(|r| errors.iter().any(|e| e.rule_id == *r));
                    let status = if counts.fail > 0 {
                        Status::Fail
                    } else if counts.unknown > 0 || errored {
                        Status::Unknown
                    } else {
                        Status::Pass
                    };
                    RequirementStatus {
                        id: id.to_string(),
                        rules: rule_ids.iter().map(|r| r.to_string()).collect(),
                        status,
                        counts,
                    }
                })
                .collect(),
        })
        .collect()
}

fn coverage(inventory: &Inventory) -> CoverageSummary {
    let c = inventory.coverage();
    let failed = c.count(ScanStatus::Failed) + c.count(ScanStatus::Missing);
    let (scanned_ok, partial) = (c.count(ScanStatus::Ok), c.count(ScanStatus::Partial));
    CoverageSummary {
        accounts_in_scope: c.accounts.len() as u64,
        account_regions_in_scope: scanned_ok + partial + failed,
        scanned_ok,
        partial,
        failed,
        not_opted_in: c.count(ScanStatus::NotOptedIn),
        scan_errors: c.failed_calls.len() as u64,
        complete: c.complete(),
        accounts_not_listed: c.accounts_not_listed.clone(),
    }
}
