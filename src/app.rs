//! The commands, as library functions: what `main.rs` calls after parsing.
//!
//! Each function takes typed options (no I/O in their construction), runs
//! the stages in order and returns what the binary prints and the exit code.
//! This is the only module that knows every stage.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, Error, Result};
use crate::evaluate::evaluate;
use crate::inventory::{self, TableFormat};
use crate::policy::{self, ParamOverrides, PolicyPack, Severity};
use crate::render::{self, OutputFormat, ReportContext};
use crate::results::summarize;
use crate::synth::{self, SynthOptions};

/// Threshold for a failing exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    None,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Info => Some(Severity::Info),
            FailOn::None => None,
        }
    }
}

/// Where rules come from: given directories, or the pack built into the binary.
pub fn load_pack(dirs: &[PathBuf]) -> Result<PolicyPack> {
    if dirs.is_empty() {
        policy::load_builtin()
    } else {
        policy::load_dirs(dirs)
    }
}

#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub inventory: PathBuf,
    pub out: PathBuf,
    pub policies: Vec<PathBuf>,
    pub params: Vec<String>,
    pub framework: Option<String>,
    pub fail_on: FailOn,
    pub formats: Vec<OutputFormat>,
    pub templates: Option<PathBuf>,
}

#[derive(Debug)]
pub struct AuditOutcome {
    pub exit_code: i32,
    /// The terminal summary.
    pub summary: String,
    pub written: Vec<PathBuf>,
    /// One line per rule that could not run.
    pub rule_errors: Vec<String>,
}

pub fn audit(options: &AuditOptions) -> Result<AuditOutcome> {
    let mut pack = load_pack(&options.policies)?;
    if let Some(framework) = &options.framework {
        policy::filter_framework(&mut pack, framework)?;
    }
    let overrides = policy::parse_param_flags(&pack, &options.params, ParamOverrides::new())?;
    let inventory = inventory::load(&options.inventory)?;
    let evaluation = evaluate(&inventory, &pack.rules, &overrides);
    let summary = summarize(&inventory, &evaluation, &pack.rules);
    let context = ReportContext::build(&inventory, &pack, &evaluation, summary, options.framework.clone());
    let formats = if options.formats.is_empty() {
        OutputFormat::ALL.to_vec()
    } else {
        options.formats.clone()
    };
    let written = render::write_reports(
        &options.out,
        &formats,
        &inventory,
        &pack,
        &evaluation,
        &context,
        options.templates.as_deref(),
    )?;
    let failing_at_threshold = options.fail_on.threshold().is_some_and(|t| {
        context
            .summary
            .by_severity
            .iter()
            .any(|row| row.severity <= t && row.counts.fail > 0)
    });
    let exit_code = if !evaluation.rule_errors.is_empty() {
        EXIT_INPUT
    } else if failing_at_threshold {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    Ok(AuditOutcome {
        exit_code,
        summary: render::terminal_summary(&context, 5),
        written,
        rule_errors: context.rule_errors.clone(),
    })
}

#[derive(Debug, Clone)]
pub struct SynthCommand {
    pub options: SynthOptions,
    pub out: PathBuf,
    pub format: TableFormat,
}

pub fn synth(command: &SynthCommand) -> Result<String> {
    if command.options.accounts == 0 || command.options.images_per_region == 0 {
        return Err(Error::input("synth: --accounts and --images-per-region must be at least 1"));
    }
    if command.options.regions == 0 || command.options.regions > synth::REGIONS.len() {
        return Err(Error::input(format!(
            "synth: --regions must be between 1 and {}",
            synth::REGIONS.len()
        )));
    }
    let inventory = synth::generate(&command.options);
    let manifest = inventory::save(&inventory, &command.out, command.format)?;
    let images = manifest.tables.get("images").map_or(0, |t| t.rows);
    Ok(format!(
        "wrote {}: {} accounts, {} regions, {} images",
        command.out.display(),
        command.options.accounts,
        command.options.regions,
        images
    ))
}

/// Parses `--collected-at` (RFC 3339 or a date).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| format!("`{text}` is not a date (use 2026-11-01 or 2026-11-01T00:00:00Z)"))
}

/// `amiaudit schema`: the inventory tables and columns.
pub fn schema_text() -> String {
    inventory::schema::describe()
}

pub fn display_path(path: &Path) -> String {
    path.display().to_string()
}
