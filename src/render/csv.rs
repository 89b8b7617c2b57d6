//! `findings.csv`: RFC 4180, comma-separated, UTF-8, one row per result
//! (passes included). **API boundary:** [`CSV_COLUMNS`] only grows at the end.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::Inventory;
use crate::policy::PolicyPack;
use crate::results::for_each_finding;

use super::AuditMeta;

/// Columns of `findings.csv`. A framework CSV (`findings-<framework>.csv`)
/// has the same columns with `requirements` (that framework's ids) after `rule_id`.
pub const CSV_COLUMNS: [&str; 17] = [
    "audit_time",
    "rule_id",
    "title",
    "severity",
    "status",
    "account_id",
    "account_name",
    "ou_path",
    "region",
    "resource_type",
    "resource_id",
    "resource_name",
    "reason",
    "remediation",
    "frameworks",
    "waiver_reason",
    "waiver_expires",
];

/// Prefixes a cell that a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@`, tab, carriage return) with an apostrophe, the OWASP-recommended fix.
pub fn neutralise_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

pub(super) fn write_findings(
    path: &Path,
    inventory: &Inventory,
    pack: &PolicyPack,
    evaluation: &Evaluation,
    meta: &AuditMeta,
    framework: Option<&str>,
) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(BufWriter::new(file));
    let io_err = |e: ::csv::Error| Error::Internal(format!("{}: {e}", path.display()));
    let mut header: Vec<&str> = CSV_COLUMNS.to_vec();
    if framework.is_some() {
        header.insert(2, "requirements");
    }
    writer.write_record(&header).map_err(io_err)?;
    let requirements: std::collections::BTreeMap<&str, String> = pack
        .rules
        .iter()
        .filter_map(|r| {
            let ids = r.frameworks.get(framework?)?;
            Some((r.id.as_str(), ids.join(", ")))
        })
        .collect();
    let mut failure = None;
    for_each_finding(inventory, evaluation, &pack.rules, |_| true, |f| {
        if failure.is_some() {
            return;
        }
        let req = match framework {
            Some(_) => match requirements.get(f.rule_id.as_str()) {
                Some(ids) => Some(ids.as_str()),
                None => return,
            },
            None => None,
        };
        let mut record = vec![
            meta.collected_at.as_str(),
            &f.rule_id,
            &f.title,
            f.severity.as_str(),
            f.status.as_str(),
            &f.account_id,
            &f.account_name,
            &f.ou_path,
            &f.region,
            &f.resource_type,
            &f.resource_id,
            &f.resource_name,
            &f.reason,
            &f.remediation,
            &f.frameworks,
            &f.waiver_reason,
            &f.waiver_expires,
        ];
        if let Some(req) = req {
            record.insert(2, req);
        }
        if let Err(e) = writer.write_record(record.iter().map(|c| neutralise_cell(c).into_owned())) {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        return Err(io_err(e));
    }
    writer.flush().map_err(|e| Error::io(path, e))
}
