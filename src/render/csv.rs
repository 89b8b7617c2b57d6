//! `findings.csv`: RFC 4180, comma-separated, UTF-8, one row per result
//! (passes included). **API boundary:** [`CSV_COLUMNS`] only grows at the end.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::path::Path;

use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::{Inventory, optional_text_cells, text_rows};
use crate::policy::PolicyPack;
use std::collections::HashMap;

use crate::results::{account_directory, frameworks_text};

use super::AuditMeta;
use super::OutputFile;
use crate::evaluate::Status;
use crate::text::neutralise_cell;

/// Columns of `findings.csv`.
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

/// Columns of each `findings-<framework>.csv`: the rows of rules mapped to
/// that framework with its requirement ids, and only what a per-framework
/// review needs; the key (`rule_id`, `account_id`, `region`, `resource_id`)
/// joins a row to `findings.csv` for the rest. Also only grows at the end.
pub const FRAMEWORK_CSV_COLUMNS: [&str; 11] = [
    "audit_time",
    "requirements",
    "rule_id",
    "severity",
    "status",
    "account_id",
    "region",
    "resource_type",
    "resource_id",
    "reason",
    "waiver_reason",
];

struct RuleRow<'a> {
    title: &'a str,
    severity: &'static str,
    frameworks: String,
    command: Option<&'a str>,
    /// Framework index -> this rule's requirement ids there.
    requirements: Vec<Option<String>>,
}

/// Writes `findings.csv` and one `findings-<framework>.csv` per framework in
/// a single pass over the results, borrowing every cell from the results
/// frame (an audit of 100k AMIs writes millions of rows). Returns each
/// file with its sha256, `findings.csv` first.
pub(super) fn write_all(
    out_dir: &Path,
    compress: bool,
    inventory: &Inventory,
    pack: &PolicyPack,
    evaluation: &Evaluation,
    meta: &AuditMeta,
) -> Result<Vec<(std::path::PathBuf, String)>> {
    let frameworks = pack.frameworks();
    let mut names = vec!["findings.csv".to_string()];
    names.extend(frameworks.iter().map(|f| format!("findings-{f}.csv")));
    let mut writers = open_writers(out_dir, &names, compress)?;
    let paths: Vec<std::path::PathBuf> = writers
        .iter()
        .map(|w| w.get_ref().path().to_path_buf())
        .collect();
    let rules = rule_rows(pack, &frameworks);
    let directory = account_directory(inventory)?;
    let df = &evaluation.results;
    let stage = |e: Error| Error::Internal(format!("findings.csv: {e}"));
    // Waivers add these two; without waivers they are absent (not an error).
    let mut waiver_reason = optional_text_cells(df, "waiver_reason").map_err(stage)?;
    let mut waiver_expires = optional_text_cells(df, "waiver_expires").map_err(stage)?;
    let rows = text_rows(df, crate::evaluate::RESULT_COLUMNS).map_err(stage)?;
    for [r, a, g, t, id, name, st, why] in rows {
        let row = ResultRow {
            rule_id: r,
            account: a,
            region: g,
            resource_type: t,
            resource_id: id,
            resource_name: name,
            status: st,
            reason: why,
            waiver_reason: waiver_reason.as_mut().and_then(Iterator::next).flatten(),
            waiver_expires: waiver_expires.as_mut().and_then(Iterator::next).flatten(),
        };
        write_row(&mut writers, &paths, &rules, &directory, meta, &row)?;
    }
    finish(writers, paths)
}

/// One result as the results frame holds it.
struct ResultRow<'a> {
    rule_id: Option<&'a str>,
    account: Option<&'a str>,
    region: Option<&'a str>,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    resource_name: Option<&'a str>,
    status: Option<&'a str>,
    reason: Option<&'a str>,
    waiver_reason: Option<&'a str>,
    waiver_expires: Option<&'a str>,
}

/// Writes one result to `findings.csv` and to the file of every framework
/// its rule maps to.
fn write_row(
    writers: &mut [CsvWriter],
    paths: &[std::path::PathBuf],
    rules: &HashMap<&str, RuleRow>,
    directory: &std::collections::BTreeMap<String, crate::results::AccountInfo>,
    meta: &AuditMeta,
    row: &ResultRow,
) -> Result<()> {
    let (r, a, g, t, id, name, st, why, wr, we) = (
        row.rule_id,
        row.account,
        row.region,
        row.resource_type,
        row.resource_id,
        row.resource_name,
        row.status,
        row.reason,
        row.waiver_reason,
        row.waiver_expires,
    );
    let rule = r.and_then(|r| rules.get(r)).ok_or_else(|| {
        Error::Internal(format!(
            "findings.csv: a result names unknown rule `{}`",
            r.unwrap_or("")
        ))
    })?;
    let (a, g, id) = (a.unwrap_or(""), g.unwrap_or(""), id.unwrap_or(""));
    let st = st.ok_or_else(|| Error::Internal("findings.csv: a result has no status".into()))?;
    let info = directory.get(a);
    let fix = match (Status::parse(st), rule.command) {
        (Some(Status::Fail), Some(cmd)) => crate::text::fill_command(cmd, a, g, id),
        _ => String::new(),
    };
    let mut cells: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(CSV_COLUMNS.len() + 1);
    for cell in [
        meta.collected_at.as_str(),
        r.unwrap_or(""),
        rule.title,
        rule.severity,
        st,
        a,
        info.map_or("", |i| i.name.as_str()),
        info.map_or("", |i| i.ou_path.as_str()),
        g,
        t.unwrap_or(""),
        id,
        name.unwrap_or(""),
        why.unwrap_or(""),
        &fix,
        &rule.frameworks,
        wr.unwrap_or(""),
        we.unwrap_or(""),
    ] {
        cells.push(neutralise_cell(cell));
    }
    writers[0]
        .write_record(cells.iter().map(|c| c.as_bytes()))
        .map_err(|e| csv_error(&paths[0], e))?;
    for (f, requirements) in rule.requirements.iter().enumerate() {
        if let Some(req) = requirements {
            // Same cells as above, picked by index (see CSV_COLUMNS).
            let req = neutralise_cell(req);
            let c = |i: usize| cells[i].as_bytes();
            let picked: [&[u8]; FRAMEWORK_CSV_COLUMNS.len()] = [
                c(0),
                req.as_bytes(),
                c(1),
                c(3),
                c(4),
                c(5),
                c(8),
                c(9),
                c(10),
                c(12),
                c(15),
            ];
            writers[f + 1]
                .write_record(picked)
                .map_err(|e| csv_error(&paths[f + 1], e))?;
        }
    }
    Ok(())
}

type CsvWriter = ::csv::Writer<OutputFile>;

/// One writer per file, its header written: `findings.csv` first, then
/// the frameworks'.
fn open_writers(out_dir: &Path, names: &[String], compress: bool) -> Result<Vec<CsvWriter>> {
    let mut writers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let file = super::create_file(out_dir, name, compress)?;
        let path = file.path().to_path_buf();
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(file);
        let header: &[&str] = if i == 0 {
            &CSV_COLUMNS
        } else {
            &FRAMEWORK_CSV_COLUMNS
        };
        writer
            .write_record(header)
            .map_err(|e| csv_error(&path, e))?;
        writers.push(writer);
    }
    Ok(writers)
}

/// What each row needs of its rule, by rule id.
fn rule_rows<'a>(pack: &'a PolicyPack, frameworks: &[String]) -> HashMap<&'a str, RuleRow<'a>> {
    pack.rules
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                RuleRow {
                    title: &r.title,
                    severity: r.severity.as_str(),
                    frameworks: frameworks_text(r),
                    command: r.remediation.command.as_deref(),
                    requirements: frameworks
                        .iter()
                        .map(|f| r.frameworks.get(f).map(|ids| ids.join(", ")))
                        .collect(),
                },
            )
        })
        .collect()
}

/// Flushes every writer; each file with its sha256.
fn finish(
    writers: Vec<CsvWriter>,
    paths: Vec<std::path::PathBuf>,
) -> Result<Vec<(std::path::PathBuf, String)>> {
    writers
        .into_iter()
        .zip(paths)
        .map(|(writer, path)| {
            writer
                .into_inner()
                .map_err(|e| Error::io(&path, e.into_error()))?
                .finish()
        })
        .collect()
}

/// A CSV writer's error on the file at `path`: an I/O error as one (the
/// disk, named with its file), anything else internal.
pub(super) fn csv_error(path: &Path, e: ::csv::Error) -> Error {
    let message = e.to_string();
    match e.into_kind() {
        ::csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::Internal(format!("{}: {message}", path.display())),
    }
}
