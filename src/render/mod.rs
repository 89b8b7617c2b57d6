//! Render: turns results into the files people read and tools ingest.
//!
//! Owns the report context (a typed, serialisable view of one audit), the
//! output formats and their stable columns, and the terminal summary. Reads
//! only what [`crate::results`] and the inventory manifest provide.
//!
//! **Architecture invariant:** output is a pure function of the inventory,
//! the policies, the parameters and the waivers: no wall clock, no random
//! order, so the same inputs give byte-identical files. AWS-sourced text is
//! escaped in HTML (minijinja autoescape) and neutralised in CSV.

pub mod asff;
mod charts;
mod csv;
mod html;
mod junit;
mod markdown;
mod ocsf;
pub mod pipelines;
mod terminal;

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::Inventory;
use crate::policy::PolicyPack;

mod context;

pub use crate::findings::AuditMeta;
use crate::output::file::OutputFile;
pub use context::{ReportContext, RuleNotRun, RuleSection, ScanErrorRow, audit_meta, finding_key};
pub use csv::CSV_COLUMNS;
pub use terminal::terminal_summary;

/// Which files an audit writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// report.html
    Html,
    /// findings.csv, plus findings-<framework>.csv per framework
    Csv,
    /// findings.json
    Json,
    /// findings.ocsf.jsonl (OCSF Compliance Finding, class 2003)
    Ocsf,
    /// junit.xml (one test case per rule x account-region)
    Junit,
    /// summary.md
    Markdown,
    /// findings.asff.json (AWS Security Finding Format, for Security Hub)
    Asff,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 7] = [
        OutputFormat::Html,
        OutputFormat::Csv,
        OutputFormat::Json,
        OutputFormat::Ocsf,
        OutputFormat::Junit,
        OutputFormat::Markdown,
        OutputFormat::Asff,
    ];

    /// What an audit writes unless asked otherwise: what its readers keep
    /// (the report, CSV and findings.json for the security team and the
    /// auditor, summary.md for a review, junit.xml for a pipeline). OCSF
    /// and ASFF are for SIEMs and Security Hub: written when asked
    /// (`--format`, `[audit] formats`) or when `--security-hub` needs ASFF.
    pub const DEFAULT: [OutputFormat; 5] = [
        OutputFormat::Html,
        OutputFormat::Csv,
        OutputFormat::Json,
        OutputFormat::Junit,
        OutputFormat::Markdown,
    ];

    pub const NAMES: [&'static str; 7] =
        ["html", "csv", "json", "ocsf", "junit", "markdown", "asff"];

    pub fn parse(text: &str) -> Option<OutputFormat> {
        Self::NAMES
            .iter()
            .position(|n| *n == text)
            .and_then(|i| Self::ALL.get(i).copied())
    }

    pub fn file_name(self) -> &'static str {
        match self {
            OutputFormat::Html => "report.html",
            OutputFormat::Csv => "findings.csv",
            OutputFormat::Json => "findings.json",
            OutputFormat::Ocsf => "findings.ocsf.jsonl",
            OutputFormat::Junit => "junit.xml",
            OutputFormat::Markdown => "summary.md",
            OutputFormat::Asff => asff::FILE,
        }
    }
}

/// One word of `--format` or `[audit] formats`: a format's name, or `all`
/// (every format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatWord(Option<OutputFormat>);

impl FormatWord {
    pub const NAMES: [&'static str; 8] = [
        "html", "csv", "json", "ocsf", "junit", "markdown", "asff", "all",
    ];

    pub fn parse(word: &str) -> Option<FormatWord> {
        match word {
            "all" => Some(FormatWord(None)),
            other => OutputFormat::parse(other).map(|f| FormatWord(Some(f))),
        }
    }

    /// The formats the words name: every one where `all` is among them.
    pub fn formats(words: &[FormatWord]) -> Vec<OutputFormat> {
        if words.iter().any(|w| w.0.is_none()) {
            OutputFormat::ALL.to_vec()
        } else {
            words.iter().filter_map(|w| w.0).collect()
        }
    }
}

/// The retirement plan's file, written with the CSV format.
pub const RETIREMENT_CSV: &str = "retirement.csv";

/// Writes the reports made from the context (every format but CSV's
/// findings files, see [`write_csv`]; CSV's retirement plan is here), the
/// formats side by side, and `diff.json`/`diff.csv` when there is a
/// baseline. Returns each file with its sha256, in
/// [`OutputFormat::ALL`] order (the retirement plan after the reports),
/// hashed as it is written; with `compress`,
/// the files [`compressible`] names are gzip'd.
pub fn write_reports(
    out_dir: &Path,
    formats: &[OutputFormat],
    compress: bool,
    evaluation: &Evaluation,
    context: &ReportContext,
    templates: Option<&Path>,
) -> Result<Vec<(PathBuf, String)>> {
    use rayon::prelude::*;
    fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let wanted: Vec<OutputFormat> = OutputFormat::ALL
        .into_iter()
        .filter(|f| formats.contains(f))
        .collect();
    let mut written = wanted
        .into_par_iter()
        .map(|format| {
            let name = match format {
                // CSV's findings files are `write_csv`'s; here its
                // retirement plan, beside the other formats.
                OutputFormat::Csv => RETIREMENT_CSV,
                other => other.file_name(),
            };
            let mut file = create_file(out_dir, name, compress)?;
            match format {
                OutputFormat::Csv => context
                    .retirement
                    .write_csv(&mut file)
                    .map_err(|e| csv::csv_error(file.path(), e))?,
                // Streamed: the document of a large audit is hundreds of MB.
                OutputFormat::Json => context.write_findings_json(&mut file)?,
                OutputFormat::Html => html::render_to(context, templates, &mut file)?,
                OutputFormat::Ocsf => ocsf::write_ocsf(context, &mut file)?,
                OutputFormat::Junit => {
                    junit::write_junit(context, evaluation, &mut file)?;
                }
                OutputFormat::Markdown => file.write_text(&markdown::markdown(context))?,
                OutputFormat::Asff => asff::write_asff(context, &mut file)?,
            }
            file.finish()
        })
        .collect::<Result<Vec<_>>>()?;
    // The retirement plan is listed after the reports, as it always was.
    // Only the list is reordered: queued last, the plan's task changed how
    // the formats were split between threads, and a 100k audit took 0.5-1 s
    // longer (BENCHMARKS.md, issue 30, ninth pass).
    written.sort_by_key(|(path, _)| path.file_name() == Some(std::ffi::OsStr::new(RETIREMENT_CSV)));
    let mut small = |name: &str, text: String| -> Result<()> {
        let mut file = create_file(out_dir, name, compress)?;
        file.write_text(&text)?;
        written.push(file.finish()?);
        Ok(())
    };
    if let Some(diff) = &context.diff {
        small("diff.json", diff.json()?)?;
        small("diff.csv", diff.csv()?)?;
    }
    Ok(written)
}

/// The files `--compress` writes gzip'd (as `<name>.gz`): the machine files
/// that grow with the organization. The report, summary, JUnit, the
/// retirement plan, the diff and the manifest stay as they are: people and
/// CI runners open them directly, and they are small.
pub fn compressible(name: &str) -> bool {
    [
        "findings.csv",
        "findings.json",
        asff::FILE,
        "findings.ocsf.jsonl",
    ]
    .contains(&name)
        || (name.starts_with("findings-") && name.ends_with(".csv"))
}

/// `dir/name` to write, gzip'd (`name.gz`) when the audit compresses and
/// the file is one [`compressible`] names.
fn create_file(dir: &Path, name: &str, compress: bool) -> Result<OutputFile> {
    OutputFile::create(dir, name, compress && compressible(name))
}

/// Renders `items` in parallel a batch at a time and hands each rendered
/// text to `write`, in order: output of any size with memory for two
/// batches (twice the threads' items each), the same bytes as rendering
/// everything first. Each batch is written while the next is rendered:
/// writing (hashing, the kernel's copy) is a third of the time and ran
/// alone while the other threads waited. Texts are serde_json's bytes,
/// UTF-8 by construction, handed on as bytes.
fn write_batched<T: Send>(
    items: Vec<T>,
    render: impl Fn(T) -> Result<Vec<u8>> + Sync,
    mut write: impl FnMut(&[u8]) -> Result<()> + Send,
) -> Result<()> {
    use rayon::prelude::*;
    let batch = 2 * rayon::current_num_threads().max(1);
    let mut items = items.into_iter();
    let mut rendered: Vec<Vec<u8>> = Vec::new();
    loop {
        let taken: Vec<T> = items.by_ref().take(batch).collect();
        if taken.is_empty() && rendered.is_empty() {
            return Ok(());
        }
        let (next, written) = rayon::join(
            || {
                taken
                    .into_par_iter()
                    .map(&render)
                    .collect::<Result<Vec<Vec<u8>>>>()
            },
            || rendered.iter().try_for_each(|text| write(text)),
        );
        written?;
        rendered = next?;
    }
}

/// Writes `findings.csv` and the per-framework CSVs when CSV is asked for.
/// Needs only the results, not the report context, so it can run while the
/// context is built.
pub fn write_csv(
    out_dir: &Path,
    formats: &[OutputFormat],
    compress: bool,
    inventory: &Inventory,
    pack: &PolicyPack,
    evaluation: &Evaluation,
    meta: &AuditMeta,
) -> Result<Vec<(PathBuf, String)>> {
    if !formats.contains(&OutputFormat::Csv) {
        return Ok(Vec::new());
    }
    fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    csv::write_all(out_dir, compress, inventory, pack, evaluation, meta)
}
