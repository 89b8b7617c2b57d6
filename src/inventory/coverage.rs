//! Coverage: which account-regions in scope were seen, and which calls
//! failed or were never made. Computed once, when an inventory is built or
//! loaded, so the evaluator and the summaries read one truth.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::{DataFrame, PlHashSet};

use super::{Manifest, str_column, text_rows};
use crate::error::Result;

/// What happened to one account-region in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScanStatus {
    /// Everything was collected.
    Ok,
    /// Some calls failed (see the scan errors).
    Partial,
    /// Nothing was collected.
    Failed,
    /// In scope, but the inventory holds no row for it at all.
    Missing,
    /// The region is not enabled for the account: out of scope.
    NotOptedIn,
}

impl ScanStatus {
    pub fn parse(text: &str) -> Option<ScanStatus> {
        Some(match text {
            "ok" => ScanStatus::Ok,
            "partial" => ScanStatus::Partial,
            "failed" => ScanStatus::Failed,
            "not-opted-in" => ScanStatus::NotOptedIn,
            _ => return None,
        })
    }

    /// Whether rules can judge resources here (possibly in part).
    pub fn seen(self) -> bool {
        matches!(self, ScanStatus::Ok | ScanStatus::Partial)
    }
}

/// A failed call, as the evaluator matches it against a rule's evidence.
#[derive(Debug, Clone)]
pub struct FailedCall {
    pub account_id: String,
    /// None for account-wide failures (AssumeRole, DescribeRegions).
    pub region: Option<String>,
    /// `service:Operation`, e.g. `ec2:DescribeImageAttribute`.
    pub operation: String,
    pub resource_id: Option<String>,
    pub error_code: String,
}

#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Every account-region in scope, with its status and, where it was not
    /// seen, why.
    pub regions: BTreeMap<(String, String), (ScanStatus, String)>,
    /// Every account in scope (the manifest's scope, else the accounts
    /// table), and any account with a region row.
    pub accounts: BTreeSet<String>,
    pub failed_calls: Vec<FailedCall>,
    /// `service:Operation`s this inventory never made at all (an older
    /// schema that predates the tables they fill), lower case.
    pub not_collected: BTreeSet<String>,
    /// The schema version the inventory was written with.
    pub written_with: u32,
    /// The manifest says the scan ran to the end.
    pub scan_finished: bool,
    /// The scope was the organization, but its accounts could not be
    /// listed (why): the accounts it holds beyond those in scope were never
    /// visited.
    pub accounts_not_listed: Option<String>,
    /// The scope is the organization and its accounts were listed: every
    /// member is known (in scope, or in `accounts` outside it).
    pub members_listed: bool,
}

/// Every failed call the scan recorded.
fn failed_calls(scan_errors: &DataFrame) -> Result<Vec<FailedCall>> {
    let mut calls = Vec::with_capacity(scan_errors.height());
    let account = str_column(scan_errors, "account_id")?;
    let region = str_column(scan_errors, "region")?;
    let service = str_column(scan_errors, "service")?;
    let operation = str_column(scan_errors, "operation")?;
    let resource = str_column(scan_errors, "resource_id")?;
    let code = str_column(scan_errors, "error_code")?;
    for i in 0..scan_errors.height() {
        calls.push(FailedCall {
            account_id: account[i].unwrap_or_default().to_string(),
            region: region[i].map(str::to_string),
            operation: format!(
                "{}:{}",
                service[i].unwrap_or_default(),
                operation[i].unwrap_or_default()
            ),
            resource_id: resource[i].map(str::to_string),
            error_code: code[i].unwrap_or("error").to_string(),
        });
    }
    Ok(calls)
}

impl Coverage {
    pub fn read(
        manifest: &Manifest,
        accounts: &DataFrame,
        regions: &DataFrame,
        scan_errors: &DataFrame,
        not_collected: BTreeSet<String>,
    ) -> Result<Coverage> {
        let mut coverage = Coverage {
            not_collected,
            written_with: manifest.schema_version,
            scan_finished: manifest.complete,
            ..Default::default()
        };
        coverage.failed_calls = failed_calls(scan_errors)?;
        // A synthetic organization lists every member it made.
        coverage.members_listed = manifest.scope.source == "synthetic";
        if manifest.scope.source == "organizations" {
            coverage.members_listed = !coverage.failed_calls.iter().any(|e| {
                e.operation
                    .eq_ignore_ascii_case("organizations:ListAccounts")
            });
            coverage.accounts_not_listed = coverage
                .failed_calls
                .iter()
                .find(|e| {
                    e.operation
                        .eq_ignore_ascii_case("organizations:ListAccounts")
                })
                .map(|e| format!("{} failed ({})", e.operation, e.error_code));
        }
        // The scope's account list when there is one; the accounts table
        // may also list members outside it (sharing is judged against them).
        coverage
            .accounts
            .extend(manifest.scope.accounts.iter().cloned());
        if coverage.accounts.is_empty() {
            coverage.accounts.extend(
                str_column(accounts, "account_id")?
                    .into_iter()
                    .flatten()
                    .map(str::to_string),
            );
        }
        let ids = str_column(regions, "account_id")?;
        let names = str_column(regions, "region")?;
        let statuses = str_column(regions, "scan_status")?;
        for i in 0..regions.height() {
            let (Some(account), Some(region)) = (ids[i], names[i]) else {
                continue;
            };
            coverage.accounts.insert(account.to_string());
            // The loader checked the vocabulary; anything else is not seen.
            let status = statuses[i]
                .and_then(ScanStatus::parse)
                .unwrap_or(ScanStatus::Failed);
            let why = match status {
                ScanStatus::Failed => coverage.why_failed(account, region),
                _ => String::new(),
            };
            coverage
                .regions
                .insert((account.to_string(), region.to_string()), (status, why));
        }
        coverage.add_missing(&manifest.scope.regions);
        Ok(coverage)
    }

    /// Marks every account-region of the scope without scan data as
    /// missing (never as seen), and says why for each not scanned.
    fn add_missing(&mut self, scope_regions: &[String]) {
        // Every account and region of the scope must have been accounted for.
        let mut regions: BTreeSet<&str> = scope_regions.iter().map(String::as_str).collect();
        if regions.is_empty() {
            regions = self.regions.keys().map(|(_, r)| r.as_str()).collect();
        }
        let regions: Vec<String> = regions.into_iter().map(str::to_string).collect();
        let accounts: Vec<String> = self.accounts.iter().cloned().collect();
        for account in &accounts {
            for region in &regions {
                let key = (account.clone(), region.clone());
                if !self.regions.contains_key(&key) {
                    let why = self.why_failed(account, region);
                    let why = if why == "scan failed" {
                        "no scan data for this account-region in the inventory".to_string()
                    } else {
                        why
                    };
                    self.regions.insert(key, (ScanStatus::Missing, why));
                }
            }
        }
        // An account in scope with no region at all (and no regions in scope to guess).
        for account in &self.accounts {
            if !self.regions.keys().any(|(a, _)| a == account) {
                self.regions.insert(
                    (account.clone(), String::new()),
                    (
                        ScanStatus::Missing,
                        "no scan data for this account in the inventory".to_string(),
                    ),
                );
            }
        }
        for (_, why) in self.regions.values_mut() {
            if why.is_empty() {
                continue;
            }
            if !why.starts_with("account-region not scanned") && !why.starts_with("no scan data") {
                *why = format!("account-region not scanned ({why})");
            }
        }
    }

    fn why_failed(&self, account: &str, region: &str) -> String {
        self.failed_calls
            .iter()
            .find(|e| e.account_id == account && e.region.as_deref().is_none_or(|r| r == region))
            .map(|e| format!("{} {}", e.operation, e.error_code))
            .unwrap_or_else(|| "scan failed".to_string())
    }

    pub fn status(&self, account: &str, region: &str) -> Option<ScanStatus> {
        self.regions
            .get(&(account.to_string(), region.to_string()))
            .map(|(s, _)| *s)
    }

    /// Account-regions in scope that rules cannot see, with why.
    pub fn unseen(&self) -> impl Iterator<Item = (&(String, String), &str)> {
        self.regions
            .iter()
            .filter(|(_, (s, _))| matches!(s, ScanStatus::Failed | ScanStatus::Missing))
            .map(|(k, (_, why))| (k, why.as_str()))
    }

    /// Account-regions out of scope (not opted in).
    pub fn skipped(&self) -> impl Iterator<Item = &(String, String)> {
        self.regions
            .iter()
            .filter(|(_, (s, _))| *s == ScanStatus::NotOptedIn)
            .map(|(k, _)| k)
    }

    /// In-scope regions of an account (everything but not-opted-in).
    pub fn regions_of<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.regions
            .iter()
            .filter(move |((a, _), (s, _))| a == account && *s != ScanStatus::NotOptedIn)
            .map(|((_, r), _)| r.as_str())
    }

    /// Account-regions in scope where `operation` (`service:Operation`)
    /// gave nothing to read, with why: the account-region was not scanned,
    /// the call failed there as a whole, or the inventory predates it. A
    /// list built from that operation's rows is short by these places.
    pub fn unread_by(&self, operation: &str) -> Vec<(&(String, String), String)> {
        let never_made = self.not_collected.contains(&operation.to_ascii_lowercase());
        self.regions
            .iter()
            .filter(|(_, (status, _))| *status != ScanStatus::NotOptedIn)
            .filter_map(|(key, (status, why))| {
                if !status.seen() {
                    return Some((key, why.clone()));
                }
                if never_made {
                    return Some((
                        key,
                        format!(
                            "{operation} not collected (the inventory was written with schema version {})",
                            self.written_with
                        ),
                    ));
                }
                self.failed_calls
                    .iter()
                    .find(|e| {
                        e.account_id == key.0
                            && e.region.as_deref().is_none_or(|r| r == key.1)
                            && e.resource_id.is_none()
                            && e.operation.eq_ignore_ascii_case(operation)
                    })
                    .map(|e| (key, format!("{} failed: {}", e.operation, e.error_code)))
            })
            .collect()
    }

    /// Refuses an inventory whose rows and scope contradict each other: rows
    /// of a region its `regions` row says is not opted in (nothing there
    /// could have been read), or of an account-region with no `regions` row
    /// that lies outside the scope (the manifest says it was never asked
    /// about). Judged, either would pass or vanish unseen.
    pub fn check_rows(&self, tables: &BTreeMap<&'static str, DataFrame>) -> Result<()> {
        for (name, df) in tables {
            if matches!(*name, "accounts" | "scan_errors" | "regions") || df.height() == 0 {
                continue;
            }
            // One pass over the rows, looking up each account-region once
            // (a group-by held the row-encoded pairs of every table). Rows
            // are stored grouped by account-region: most repeat the last.
            let mut checked: PlHashSet<(&str, &str)> = Default::default();
            let mut last = None;
            for [account, region] in text_rows(df, ["account_id", "region"])? {
                let (Some(account), Some(region)) = (account, region) else {
                    continue;
                };
                if last == Some((account, region)) || !checked.insert((account, region)) {
                    continue;
                }
                last = Some((account, region));
                let key = (account.to_string(), region.to_string());
                let problem = match self.regions.get(&key) {
                    Some((ScanStatus::NotOptedIn, _)) => {
                        "which `regions` marks not-opted-in: nothing there could have been read"
                    }
                    Some(_) => continue,
                    None => "which has no `regions` row and lies outside the manifest's scope",
                };
                return Err(crate::error::Error::input(format!(
                    "inventory: table `{name}` holds rows of account {account} in {region}, {problem}; the inventory contradicts itself (re-scan, or restore the files it was written with)"
                )));
            }
        }
        Ok(())
    }

    pub fn count(&self, status: ScanStatus) -> u64 {
        self.regions.values().filter(|(s, _)| *s == status).count() as u64
    }

    /// Every account-region in scope was scanned in full, the scan ran to
    /// the end, and the scope's accounts were listed.
    pub fn complete(&self) -> bool {
        self.scan_finished
            && self.accounts_not_listed.is_none()
            && self
                .regions
                .values()
                .all(|(s, _)| matches!(s, ScanStatus::Ok | ScanStatus::NotOptedIn))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::inventory::schema::{RegionRow, ScanErrorRow};
    use crate::inventory::{Inventory, Manifest, Scope, TABLES, TableBuilder};

    fn inventory(regions: Vec<RegionRow>, errors: Vec<ScanErrorRow>, scope: Scope) -> Inventory {
        let mut tables: BTreeMap<&'static str, TableBuilder> = TABLES
            .iter()
            .map(|t| (t.name, TableBuilder::new(t)))
            .collect();
        for r in regions {
            if let Some(b) = tables.get_mut("regions") {
                b.push_row(r).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        for e in errors {
            if let Some(b) = tables.get_mut("scan_errors") {
                b.push_row(e).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        let tables = tables
            .into_iter()
            .map(|(n, b)| (n, b.finish().unwrap_or_else(|e| panic!("{e}"))))
            .collect();
        Inventory::new(Manifest::new(chrono::Utc::now(), scope), tables)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn region(account: &str, region: &str, status: &str) -> RegionRow {
        RegionRow {
            account_id: account.into(),
            region: region.into(),
            scan_status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn scope_without_rows_is_a_gap_and_failed_regions_say_why() {
        let inv = inventory(
            vec![
                region("a", "r1", "ok"),
                region("a", "r2", "failed"),
                region("b", "r1", "partial"),
                region("b", "r3", "not-opted-in"),
            ],
            vec![ScanErrorRow {
                account_id: "a".into(),
                region: Some("r2".into()),
                service: "ec2".into(),
                operation: "DescribeImages".into(),
                error_code: Some("UnauthorizedOperation".into()),
                ..Default::default()
            }],
            Scope {
                accounts: vec!["a".into(), "b".into(), "c".into()],
                regions: vec!["r1".into(), "r2".into()],
                ..Default::default()
            },
        );
        let c = inv.coverage();
        assert_eq!(c.status("a", "r1"), Some(ScanStatus::Ok));
        assert_eq!(c.status("a", "r2"), Some(ScanStatus::Failed));
        assert_eq!(c.status("b", "r2"), Some(ScanStatus::Missing));
        assert_eq!(c.status("c", "r1"), Some(ScanStatus::Missing));
        assert_eq!(c.status("b", "r3"), Some(ScanStatus::NotOptedIn));
        let unseen: BTreeMap<_, _> = c.unseen().collect();
        assert_eq!(
            unseen[&("a".to_string(), "r2".to_string())],
            "account-region not scanned (ec2:DescribeImages UnauthorizedOperation)"
        );
        assert_eq!(c.accounts.len(), 3);
        assert!(!c.complete());
        assert_eq!(c.regions_of("b").collect::<Vec<_>>(), vec!["r1", "r2"]);
    }
}
