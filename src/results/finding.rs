//! [`Finding`]: one result row with everything a report shows next to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::{Status, account_directory};
use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::{Inventory, optional_text_cells, rows_where, text_rows};
use crate::policy::{Rule, Severity};

/// One result row with everything a report shows next to it. Text is
/// shared: a rule's, an account's and a repeated value's text is held once
/// however many findings show it (half a million findings at 100k AMIs held
/// 15 strings each).
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule_id: Text,
    pub title: Text,
    pub severity: Severity,
    pub status: Status,
    pub account_id: Text,
    pub account_name: Text,
    pub ou_path: Text,
    pub region: Text,
    pub resource_type: Text,
    pub resource_id: Text,
    pub resource_name: Text,
    pub reason: Text,
    pub remediation: Text,
    pub frameworks: Text,
    pub waiver_reason: Text,
    pub waiver_expires: Text,
}

/// Shared, immutable text.
pub type Text = Arc<str>;

/// One [`Text`] per distinct value read: equal strings are held once.
/// Hashed with std's keyed hasher: the values come from the inventory,
/// which an attacker may have written.
#[derive(Default)]
struct Interner<'a> {
    seen: HashMap<&'a str, Text>,
}

impl<'a> Interner<'a> {
    fn text(&mut self, value: Option<&'a str>) -> Text {
        let value = value.unwrap_or("");
        Arc::clone(self.seen.entry(value).or_insert_with(|| Text::from(value)))
    }
}

/// One column's last text: rows come grouped by account and region, and
/// a rule's reasons repeat, so a run of equal cells is looked up once, not
/// hashed row by row.
#[derive(Default)]
struct Run<'a> {
    last: Option<(&'a str, Text)>,
}

impl<'a> Run<'a> {
    fn text(&mut self, texts: &mut Interner<'a>, value: Option<&'a str>) -> Text {
        let value = value.unwrap_or("");
        if let Some((last, text)) = &self.last
            && *last == value
        {
            return Arc::clone(text);
        }
        let text = texts.text(Some(value));
        self.last = Some((value, Arc::clone(&text)));
        text
    }
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
    let directory = account_directory(inventory)?;
    let by_id: BTreeMap<&str, (&Rule, [Text; 3])> = rules
        .iter()
        .map(|r| {
            let shared = [
                Text::from(r.id.as_str()),
                Text::from(r.title.as_str()),
                Text::from(frameworks_text(r)),
            ];
            (r.id.as_str(), (r, shared))
        })
        .collect();
    let accounts: BTreeMap<&str, [Text; 2]> = directory
        .iter()
        .map(|(id, info)| {
            let shared = [
                Text::from(info.name.as_str()),
                Text::from(info.ou_path.as_str()),
            ];
            (id.as_str(), shared)
        })
        .collect();
    let stage = |e: Error| Error::Internal(format!("findings: {e}"));
    // The rows kept are picked first, on their status alone: most results
    // are passes, which most readers skip, and reading every cell of a
    // row only to drop it was most of the time here. The statuses of the
    // rows kept are kept beside them, parsed once.
    let mut row = 0;
    let mut statuses: Vec<Status> = Vec::new();
    let kept = rows_where(&evaluation.results, "status", |status| {
        row += 1;
        let st = status.and_then(Status::parse).ok_or_else(|| {
            Error::Internal(format!(
                "findings: result row {row} has status `{}`",
                status.unwrap_or("")
            ))
        })?;
        let kept = keep(st);
        if kept {
            statuses.push(st);
        }
        Ok(kept)
    })?;
    if statuses.len() != kept.height() {
        return Err(Error::Internal(format!(
            "findings: {} rows kept for {} statuses",
            kept.height(),
            statuses.len()
        )));
    }
    // Waivers add these two; without waivers they are absent.
    let mut waiver_reason = optional_text_cells(&kept, "waiver_reason").map_err(stage)?;
    let mut waiver_expires = optional_text_cells(&kept, "waiver_expires").map_err(stage)?;
    // Iterated chunk by chunk, never collected: at 100k AMIs the results
    // are 2 M rows, and ten collected columns were 350 MB.
    let rows = text_rows(&kept, crate::evaluate::RESULT_COLUMNS).map_err(stage)?;
    let mut texts = Interner::default();
    let [
        mut accounts_run,
        mut regions,
        mut types,
        mut reasons,
        mut waived,
        mut expiry,
    ] = <[Run; 6]>::default();
    let unnamed: [Text; 2] = Default::default();
    // The status cell was read and parsed when the row was picked.
    for ([id, account_id, region, rtype, resource_id, name, _, reason], st) in rows.zip(statuses) {
        let waiver_reason = waiver_reason.as_mut().and_then(Iterator::next).flatten();
        let waiver_expires = waiver_expires.as_mut().and_then(Iterator::next).flatten();
        let id = id.unwrap_or("");
        let (rule, [rule_id, title, frameworks]) = by_id.get(id).ok_or_else(|| {
            Error::Internal(format!("findings: results name unknown rule `{id}`"))
        })?;
        let account_id = account_id.unwrap_or("");
        let [account_name, ou_path] = accounts.get(account_id).unwrap_or(&unnamed);
        let (region, resource_id) = (region.unwrap_or(""), resource_id.unwrap_or(""));
        let command = match st {
            Status::Fail => rule.remediation_command(account_id, region, resource_id),
            _ => None,
        };
        sink(Finding {
            rule_id: Arc::clone(rule_id),
            title: Arc::clone(title),
            severity: rule.severity,
            status: st,
            account_name: Arc::clone(account_name),
            ou_path: Arc::clone(ou_path),
            account_id: accounts_run.text(&mut texts, Some(account_id)),
            region: regions.text(&mut texts, Some(region)),
            resource_type: types.text(&mut texts, rtype),
            resource_id: texts.text(Some(resource_id)),
            resource_name: texts.text(name),
            reason: reasons.text(&mut texts, reason),
            remediation: command.map_or_else(|| texts.text(None), Text::from),
            frameworks: Arc::clone(frameworks),
            waiver_reason: waived.text(&mut texts, waiver_reason),
            waiver_expires: expiry.text(&mut texts, waiver_expires),
        });
    }
    Ok(())
}
