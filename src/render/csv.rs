//! `findings.csv`: RFC 4180, comma-separated, UTF-8, one row per result
//! (passes included). **API boundary:** [`CSV_COLUMNS`] only grows at the end.

#![allow(
    clippy::indexing_slicing,
    reason = "a framework row copies cells of the findings.csv line by the spans push_cell gave while writing that line"
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

/// What each row needs of its rule, its constant cells already encoded.
struct RuleRow<'a> {
    /// `audit_time,rule_id,title,severity,` of `findings.csv`.
    head: Vec<u8>,
    /// The `frameworks` cell.
    frameworks: Vec<u8>,
    command: Option<&'a str>,
    /// Framework index -> `audit_time,requirements,rule_id,severity,` of
    /// that framework's file, where the rule maps to it.
    framework_heads: Vec<Option<Vec<u8>>>,
}

/// Writes `findings.csv` and one `findings-<framework>.csv` per framework in
/// a single pass over the results, borrowing every cell from the results
/// frame (an audit of 100k AMIs writes millions of rows). Returns each
/// file with its sha256, `findings.csv` first.
///
/// Rows are encoded here, not by the `csv` crate: a rule's and an
/// account's cells are encoded once and copied into each of their rows,
/// and the cells a framework's row shares with `findings.csv` are copied
/// from it. Encoding every cell of 2 M rows one by one was most of the
/// time this file took. [`push_cell`] quotes as the crate does (a test
/// holds them to the same bytes).
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
    let mut files = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let mut file = super::create_file(out_dir, name, compress)?;
        let header: &[&str] = if i == 0 {
            &CSV_COLUMNS
        } else {
            &FRAMEWORK_CSV_COLUMNS
        };
        file.write_bytes(&encode_record(header))?;
        files.push(file);
    }
    let rules = rule_rows(pack, &frameworks, &meta.collected_at);
    let directory = account_directory(inventory)?;
    let df = &evaluation.results;
    let stage = |e: Error| Error::Internal(format!("findings.csv: {e}"));
    // Waivers add these two; without waivers they are absent (not an error).
    let mut waiver_reason = optional_text_cells(df, "waiver_reason").map_err(stage)?;
    let mut waiver_expires = optional_text_cells(df, "waiver_expires").map_err(stage)?;
    let rows = text_rows(df, crate::evaluate::RESULT_COLUMNS).map_err(stage)?;
    // Rows come grouped by rule, then account: the last of each is kept.
    let mut rule: Option<(&str, &RuleRow)> = None;
    let mut account: Option<(&str, AccountCells)> = None;
    let mut line = Vec::new();
    let mut framework_line = Vec::new();
    for [r, a, g, t, id, name, st, why] in rows {
        let (wr, we) = (
            waiver_reason.as_mut().and_then(Iterator::next).flatten(),
            waiver_expires.as_mut().and_then(Iterator::next).flatten(),
        );
        let r = r.unwrap_or("");
        let this_rule = match rule {
            Some((last, row)) if last == r => row,
            _ => {
                let row = rules.get(r).ok_or_else(|| {
                    Error::Internal(format!("findings.csv: a result names unknown rule `{r}`"))
                })?;
                rule = Some((r, row));
                row
            }
        };
        let (a, g, id) = (a.unwrap_or(""), g.unwrap_or(""), id.unwrap_or(""));
        let cells = match &account {
            Some((last, cells)) if *last == a => cells,
            _ => &account.insert((a, AccountCells::of(a, directory.get(a)))).1,
        };
        let st =
            st.ok_or_else(|| Error::Internal("findings.csv: a result has no status".into()))?;
        let fix = match (Status::parse(st), this_rule.command) {
            (Some(Status::Fail), Some(cmd)) => crate::text::fill_command(cmd, a, g, id),
            _ => String::new(),
        };
        // findings.csv, remembering where the cells a framework's row
        // shares begin and end.
        line.clear();
        line.extend_from_slice(&this_rule.head);
        let status = push_cell(&mut line, st);
        line.push(b',');
        line.extend_from_slice(&cells.findings);
        let region_begin = line.len();
        push_cell(&mut line, g);
        line.push(b',');
        push_cell(&mut line, t.unwrap_or(""));
        line.push(b',');
        push_cell(&mut line, id);
        let region_to_id = (region_begin, line.len());
        line.push(b',');
        push_cell(&mut line, name.unwrap_or(""));
        line.push(b',');
        let reason = push_cell(&mut line, why.unwrap_or(""));
        line.push(b',');
        push_cell(&mut line, &fix);
        line.push(b',');
        line.extend_from_slice(&this_rule.frameworks);
        line.push(b',');
        let waiver = push_cell(&mut line, wr.unwrap_or(""));
        line.push(b',');
        push_cell(&mut line, we.unwrap_or(""));
        line.extend_from_slice(b"\r\n");
        let (findings_csv, framework_files) = files
            .split_first_mut()
            .ok_or_else(|| Error::Internal("findings.csv: no file to write".into()))?;
        findings_csv.write_bytes(&line)?;
        for (head, file) in this_rule.framework_heads.iter().zip(framework_files) {
            let Some(head) = head else { continue };
            // The cells after the head are findings.csv's (see
            // FRAMEWORK_CSV_COLUMNS): status, account, region to resource
            // id, reason, waiver reason.
            let copied = |(begin, end): (usize, usize)| &line[begin..end];
            framework_line.clear();
            framework_line.extend_from_slice(head);
            for cell in [
                copied(status),
                &cells.account_id,
                copied(region_to_id),
                copied(reason),
            ] {
                framework_line.extend_from_slice(cell);
                framework_line.push(b',');
            }
            framework_line.extend_from_slice(copied(waiver));
            framework_line.extend_from_slice(b"\r\n");
            file.write_bytes(&framework_line)?;
        }
    }
    files.into_iter().map(OutputFile::finish).collect()
}

/// An account's cells, encoded once for all its rows.
struct AccountCells {
    /// `account_id,account_name,ou_path,` of `findings.csv`.
    findings: Vec<u8>,
    /// The `account_id` cell.
    account_id: Vec<u8>,
}

impl AccountCells {
    fn of(account_id: &str, info: Option<&crate::results::AccountInfo>) -> AccountCells {
        let mut id = Vec::new();
        push_cell(&mut id, account_id);
        AccountCells {
            findings: leading_cells(&[
                account_id,
                info.map_or("", |i| i.name.as_str()),
                info.map_or("", |i| i.ou_path.as_str()),
            ]),
            account_id: id,
        }
    }
}

/// Appends `cell` to `out` as one CSV field: neutralised (a spreadsheet
/// never runs it as a formula), then quoted where RFC 4180 needs it, as
/// the `csv` crate quotes by default (a comma, quote, CR or LF inside;
/// quotes doubled). Returns where the field begins and ends in `out`.
fn push_cell(out: &mut Vec<u8>, cell: &str) -> (usize, usize) {
    let begin = out.len();
    let cell = neutralise_cell(cell);
    let bytes = cell.as_bytes();
    if bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        out.push(b'"');
        for part in bytes.split_inclusive(|b| *b == b'"') {
            out.extend_from_slice(part);
            if part.last() == Some(&b'"') {
                out.push(b'"');
            }
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(bytes);
    }
    (begin, out.len())
}

/// One whole record: its cells, comma-separated, ended by CRLF.
fn encode_record(cells: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_cell(&mut out, cell);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Cells that begin a record, each encoded and followed by its comma.
fn leading_cells(cells: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for cell in cells {
        push_cell(&mut out, cell);
        out.push(b',');
    }
    out
}

/// What each row needs of its rule, by rule id.
fn rule_rows<'a>(
    pack: &'a PolicyPack,
    frameworks: &[String],
    audit_time: &str,
) -> HashMap<&'a str, RuleRow<'a>> {
    pack.rules
        .iter()
        .map(|r| {
            let severity = r.severity.as_str();
            let mut frameworks_cell = Vec::new();
            push_cell(&mut frameworks_cell, &frameworks_text(r));
            (
                r.id.as_str(),
                RuleRow {
                    head: leading_cells(&[audit_time, &r.id, &r.title, severity]),
                    frameworks: frameworks_cell,
                    command: r.remediation.command.as_deref(),
                    framework_heads: frameworks
                        .iter()
                        .map(|f| {
                            let requirements = r.frameworks.get(f)?.join(", ");
                            Some(leading_cells(&[audit_time, &requirements, &r.id, severity]))
                        })
                        .collect(),
                },
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records encoded here are the bytes the `csv` crate writes for the
    /// same (neutralised) cells, CRLF-terminated: readers of earlier audits'
    /// files see no difference.
    #[test]
    fn records_are_encoded_as_the_csv_crate_writes_them() {
        let cells = [
            "plain",
            "",
            "a,b",
            "say \"hi\"",
            "\"",
            "\"\"",
            "line\nnext",
            "cr\rhere",
            "=HYPERLINK(\"x\")",
            "+1",
            "-1,2",
            "@SUM",
            "\tx",
            "\rstart",
            "ünïcode, “quotes”",
            "'already",
            "trailing\"",
        ];
        let mut expected = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(Vec::new());
        expected
            .write_record(cells.iter().map(|c| neutralise_cell(c).into_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
        let expected = expected.into_inner().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8_lossy(&encode_record(&cells)),
            String::from_utf8_lossy(&expected)
        );
        // Each cell alone, and the span push_cell gives is that cell's.
        for cell in cells {
            let mut one = ::csv::WriterBuilder::new()
                .terminator(::csv::Terminator::CRLF)
                .from_writer(Vec::new());
            one.write_record([neutralise_cell(cell).as_ref(), "x"])
                .unwrap_or_else(|e| panic!("{e}"));
            let one = one.into_inner().unwrap_or_else(|e| panic!("{e}"));
            let mut line = b"prefix,".to_vec();
            let (begin, end) = push_cell(&mut line, cell);
            let mut whole = line[begin..end].to_vec();
            whole.extend_from_slice(b",x\r\n");
            assert_eq!(whole, one, "{cell:?}");
        }
    }
}
