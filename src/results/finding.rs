//! [`Finding`]: one result row with everything a report shows next to it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Status, account_directory};
use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::{Inventory, str_column};
use crate::policy::{Rule, Severity};

/// One result row with everything a report shows next to it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    pub account_id: String,
    pub account_name: String,
    pub ou_path: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_name: String,
    pub reason: String,
    pub remediation: String,
    pub frameworks: String,
    pub waiver_reason: String,
    pub waiver_expires: String,
}

/// `cis-compute: 2.1.5; nist-800-53: AC-3` (sorted by framework).
pub fn frameworks_text(rule: &Rule) -> String {
    rule.frameworks
        .iter()
        .map(|(name, ids)| format!("{name}: {}", ids.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Streams result rows as [`Finding`]s, in results order, keeping those
/// `keep` accepts. A results frame without its columns, or a row naming a
/// rule that is not in the pack, is an error, never a silently short list.
pub fn for_each_finding(
    inventory: &Inventory,
    evaluation: &Evaluation,
    rules: &[Rule],
    mut keep: impl FnMut(Status) -> bool,
    mut sink: impl FnMut(Finding),
) -> Result<()> {
    let df = &evaluation.results;
    let directory = account_directory(inventory)?;
    let by_id: BTreeMap<&str, &Rule> = rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let frameworks: BTreeMap<&str, String> = rules
        .iter()
        .map(|r| (r.id.as_str(), frameworks_text(r)))
        .collect();
    let stage = |e: Error| Error::Internal(format!("findings: {e}"));
    let column = |name: &str| str_column(df, name).map_err(stage);
    let (rule_id, account, region, rtype, rid, rname, status, reason) = (
        column("rule_id")?,
        column("account_id")?,
        column("region")?,
        column("resource_type")?,
        column("resource_id")?,
        column("resource_name")?,
        column("status")?,
        column("reason")?,
    );
    // Waivers add these two; without waivers they are absent.
    let optional = |name: &str| -> Result<Option<Vec<Option<&str>>>> {
        if df.column(name).is_ok() {
            column(name).map(Some)
        } else {
            Ok(None)
        }
    };
    let waiver_reason = optional("waiver_reason")?;
    let waiver_expires = optional("waiver_expires")?;
    for i in 0..df.height() {
        let st = status[i].and_then(Status::parse).ok_or_else(|| {
            Error::Internal(format!(
                "findings: result row {} has status `{}`",
                i + 1,
                status[i].unwrap_or("")
            ))
        })?;
        if !keep(st) {
            continue;
        }
        let id = rule_id[i].unwrap_or("");
        let rule = by_id.get(id).ok_or_else(|| {
            Error::Internal(format!("findings: results name unknown rule `{id}`"))
        })?;
        let account_id = account[i].unwrap_or("").to_string();
        let info = directory.get(&account_id).cloned().unwrap_or_default();
        let region = region[i].unwrap_or("").to_string();
        let resource_id = rid[i].unwrap_or("").to_string();
        let remediation = match rule.remediation_command(&account_id, &region, &resource_id) {
            Some(cmd) if st == Status::Fail => cmd,
            _ => String::new(),
        };
        let cell =
            |c: &Option<Vec<Option<&str>>>| c.as_ref().and_then(|c| c[i]).unwrap_or("").to_string();
        sink(Finding {
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity,
            status: st,
            account_name: info.name,
            ou_path: info.ou_path,
            account_id,
            region,
            resource_type: rtype[i].unwrap_or("").to_string(),
            resource_id,
            resource_name: rname[i].unwrap_or("").to_string(),
            reason: reason[i].unwrap_or("").to_string(),
            remediation,
            frameworks: frameworks
                .get(rule.id.as_str())
                .cloned()
                .unwrap_or_default(),
            waiver_reason: cell(&waiver_reason),
            waiver_expires: cell(&waiver_expires),
        });
    }
    Ok(())
}
