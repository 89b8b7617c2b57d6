//! Drift between two audits: which failures are new, resolved or
//! persisting, and how the waivers changed.
//!
//! Compares two `findings.json` documents (the non-passing results of each;
//! see `findings`) and matches results by rule, account, region and
//! resource. A failure that is no longer failing is only called `resolved`
//! when the resource now passes or is gone; when it is now `unknown` or
//! `waived` it is reported as such, never as fixed. "Gone" needs the new
//! audit to have looked: a failure no longer listed in an account-region
//! the new audit left out of its scope or did not read in full, of a rule it
//! did not run, or of a rule that was blind there (its facts were not
//! collected, e.g. an older inventory), is `not-seen`, not resolved.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::evaluate::Status;
use crate::findings::{Document, Finding};
use crate::waivers::WaiverUse;

/// The output of `amiaudit diff --out`, as a directory amiaudit may write over.
pub const OUTPUT: crate::output::Kind = crate::output::Kind {
    noun: "diff",
    listed: listed_files,
    consistent: crate::output::always_consistent,
};

/// An earlier diff output holds diff.json (ours) and diff.csv, nothing else.
fn listed_files(dir: &std::path::Path) -> Result<crate::output::Listed> {
    let text = Error::read_text(&dir.join("diff.json"), "no diff.json")?;
    let ours = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v.get("old_collected_at").is_some());
    if !ours {
        return Err(Error::input("diff.json is not an amiaudit diff"));
    }
    Ok(["diff.json", "diff.csv"]
        .map(|f| (f.to_string(), None))
        .into())
}

/// A waiver as diff.json shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaiverRow {
    pub rule: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub resource: Option<String>,
    pub reason: String,
    pub expires: String,
    pub state: String,
}

impl From<&WaiverUse> for WaiverRow {
    fn from(w: &WaiverUse) -> Self {
        WaiverRow {
            rule: w.spec.rule.clone(),
            account: w.spec.account.clone(),
            region: w.spec.region.clone(),
            resource: w.spec.resource.clone(),
            reason: w.spec.reason.clone(),
            expires: w.spec.expires.to_string(),
            state: w.state.as_str().to_string(),
        }
    }
}

/// How a failure changed between the two audits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Failing now, not before.
    New,
    /// Failing before; looked at again and no longer failing.
    Resolved,
    Persisting,
    NowWaived,
    NowUnknown,
    /// Failing before, and not looked at this time (see the module).
    NotSeen,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Resolved => "resolved",
            ChangeKind::Persisting => "persisting",
            ChangeKind::NowWaived => "now-waived",
            ChangeKind::NowUnknown => "now-unknown",
            ChangeKind::NotSeen => "not-seen",
        }
    }
}

/// How a waiver changed between the two audits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaiverChangeKind {
    Added,
    Removed,
    StateChanged,
}

impl WaiverChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WaiverChangeKind::Added => "added",
            WaiverChangeKind::Removed => "removed",
            WaiverChangeKind::StateChanged => "state-changed",
        }
    }
}

/// One failure's change between the two audits.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub change: ChangeKind,
    pub rule_id: String,
    pub severity: String,
    pub account_id: String,
    pub region: String,
    pub resource_id: String,
    pub resource_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffCounts {
    pub new: usize,
    pub resolved: usize,
    pub persisting: usize,
    pub now_waived: usize,
    pub now_unknown: usize,
    /// No longer listed, where the new audit did not look (see the module).
    pub not_seen: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaiverChange {
    pub change: WaiverChangeKind,
    pub waiver: WaiverRow,
    pub previous_state: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub old_collected_at: String,
    pub new_collected_at: String,
    pub counts: DiffCounts,
    pub changes: Vec<Change>,
    pub waivers: Vec<WaiverChange>,
}

type Key<'a> = (&'a str, &'a str, &'a str, &'a str);

fn key<'a>(f: &'a Finding<'_>) -> Key<'a> {
    (&f.rule_id, &f.account_id, &f.region, &f.resource_id)
}

/// Compares two audits' findings.
pub fn compare(old: &Document<'_>, new: &Document<'_>) -> Diff {
    let old_by: BTreeMap<Key, &Finding> = old.findings.iter().map(|f| (key(f), f)).collect();
    let new_by: BTreeMap<Key, &Finding> = new.findings.iter().map(|f| (key(f), f)).collect();
    let mut changes = Vec::new();
    let mut counts = DiffCounts::default();
    let change = |kind: ChangeKind, f: &Finding| Change {
        change: kind,
        rule_id: f.rule_id.to_string(),
        severity: f.severity.to_string(),
        account_id: f.account_id.to_string(),
        region: f.region.to_string(),
        resource_id: f.resource_id.to_string(),
        resource_name: f.resource_name.to_string(),
        reason: f.reason.to_string(),
    };
    for (k, f) in &new_by {
        if f.status != Status::Fail {
            continue;
        }
        match old_by.get(k) {
            Some(o) if o.status == Status::Fail => {
                counts.persisting += 1;
                changes.push(change(ChangeKind::Persisting, f));
            }
            _ => {
                counts.new += 1;
                changes.push(change(ChangeKind::New, f));
            }
        }
    }
    // Where the new audit's rule saw nothing at all (an account-region it
    // was blind in: a call failed or was never made there, as in an older
    // inventory that predates the rule's tables), it stands one `unknown`
    // row for the whole account-region.
    let blind: std::collections::BTreeSet<(&str, &str, &str)> = new
        .findings
        .iter()
        .filter(|f| {
            f.status == Status::Unknown
                && f.resource_type == "account-region"
                && f.resource_id == f.region
        })
        .map(|f| (&*f.rule_id, &*f.account_id, &*f.region))
        .collect();
    let looked = |f: &Finding| -> bool {
        if blind.contains(&(&*f.rule_id, &*f.account_id, &*f.region)) {
            return false;
        }
        let scope = &new.audit.scope;
        let in_scope = scope.accounts.iter().any(|a| *a == *f.account_id)
            && (f.region.is_empty() || scope.regions.iter().any(|r| *r == *f.region));
        let read = new.not_read_in_full.as_ref().is_none_or(|unread| {
            !unread
                .iter()
                .any(|(a, r)| *a == *f.account_id && *r == *f.region)
        });
        let ran = new.rules.iter().any(|r| r.id == f.rule_id);
        // Documents older than `not_read_in_full` say nothing of coverage:
        // they are taken at their word, as before.
        (in_scope && read && ran) || new.not_read_in_full.is_none()
    };
    for (k, o) in &old_by {
        if o.status != Status::Fail {
            continue;
        }
        match new_by.get(k).map(|f| f.status) {
            Some(Status::Fail) => {}
            Some(Status::Waived) => {
                counts.now_waived += 1;
                changes.push(change(ChangeKind::NowWaived, o));
            }
            Some(Status::Unknown) => {
                counts.now_unknown += 1;
                changes.push(change(ChangeKind::NowUnknown, o));
            }
            Some(Status::Pass) | None if !looked(o) => {
                counts.not_seen += 1;
                changes.push(change(ChangeKind::NotSeen, o));
            }
            _ => {
                counts.resolved += 1;
                changes.push(change(ChangeKind::Resolved, o));
            }
        }
    }
    sort_changes(&mut changes);
    let waivers = waiver_changes(old, new);
    Diff {
        old_collected_at: old.audit.collected_at.clone(),
        new_collected_at: new.audit.collected_at.clone(),
        counts,
        changes,
        waivers,
    }
}

/// Changes by kind (by name: the order diff.csv has always had), rule,
/// account, region, resource.
fn sort_changes(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        (
            a.change.as_str(),
            &a.rule_id,
            &a.account_id,
            &a.region,
            &a.resource_id,
        )
            .cmp(&(
                b.change.as_str(),
                &b.rule_id,
                &b.account_id,
                &b.region,
                &b.resource_id,
            ))
    });
}

/// Waivers added, removed, or whose state changed between the audits.
fn waiver_changes(old: &Document<'_>, new: &Document<'_>) -> Vec<WaiverChange> {
    let ident = |w: &WaiverRow| {
        (
            w.rule.clone(),
            w.account.clone(),
            w.region.clone(),
            w.resource.clone(),
            w.reason.clone(),
            w.expires.clone(),
        )
    };
    let (old_waivers, new_waivers): (Vec<WaiverRow>, Vec<WaiverRow>) = (
        old.waivers.iter().map(WaiverRow::from).collect(),
        new.waivers.iter().map(WaiverRow::from).collect(),
    );
    let mut waivers = Vec::new();
    for w in &new_waivers {
        match old_waivers.iter().find(|o| ident(o) == ident(w)) {
            None => waivers.push(WaiverChange {
                change: WaiverChangeKind::Added,
                waiver: w.clone(),
                previous_state: None,
            }),
            Some(o) if o.state != w.state => waivers.push(WaiverChange {
                change: WaiverChangeKind::StateChanged,
                waiver: w.clone(),
                previous_state: Some(o.state.clone()),
            }),
            Some(_) => {}
        }
    }
    for o in &old_waivers {
        if !new_waivers.iter().any(|w| ident(w) == ident(o)) {
            waivers.push(WaiverChange {
                change: WaiverChangeKind::Removed,
                waiver: o.clone(),
                previous_state: Some(o.state.clone()),
            });
        }
    }
    waivers
}

impl Diff {
    pub fn summary_line(&self) -> String {
        let c = &self.counts;
        format!(
            "since {}: {} new, {} resolved, {} persisting failures; {} now waived, {} now unknown, {} not seen again; {} waiver changes",
            self.old_collected_at,
            c.new,
            c.resolved,
            c.persisting,
            c.now_waived,
            c.now_unknown,
            c.not_seen,
            self.waivers.len()
        )
    }

    pub fn json(&self) -> Result<String> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        text.push('\n');
        Ok(text)
    }

    pub fn csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let fail = |e: csv::Error| Error::Internal(e.to_string());
        w.write_record([
            "change",
            "rule_id",
            "severity",
            "account_id",
            "region",
            "resource_id",
            "resource_name",
            "reason",
        ])
        .map_err(fail)?;
        for c in &self.changes {
            let record = [
                c.change.as_str(),
                &c.rule_id,
                &c.severity,
                &c.account_id,
                &c.region,
                &c.resource_id,
                &c.resource_name,
                &c.reason,
            ];
            w.write_record(
                record
                    .iter()
                    .map(|s| crate::text::neutralise_cell(s).into_owned()),
            )
            .map_err(fail)?;
        }
        String::from_utf8(w.into_inner().map_err(|e| Error::Internal(e.to_string()))?)
            .map_err(|e| Error::Internal(e.to_string()))
    }
}
