//! The commands, as library functions: what `main.rs` calls after parsing.
//!
//! Each function takes typed options (no I/O in their construction), runs
//! the stages in order and returns what the binary prints and the exit code.
//! This is the only module that knows every stage.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::collect;
use crate::config::{self, Config};
use crate::error::{EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_INPUT, EXIT_OK, Error, Result};
use crate::evaluate::evaluate;
use crate::evidence;
use crate::inventory::{self, TableFormat};
use crate::policy::{self, PolicyPack, Severity};
use crate::render::{self, OutputFormat, ReportContext};
use crate::results::summarize;
use crate::synth::{self, SynthOptions};
use crate::waivers;

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

/// What the user asked for; `None` and empty mean "from amiaudit.toml, else the default".
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    pub inventory: PathBuf,
    pub out: PathBuf,
    pub config: Option<PathBuf>,
    pub policies: Vec<PathBuf>,
    pub params: Vec<String>,
    pub framework: Option<String>,
    pub fail_on: Option<FailOn>,
    pub formats: Vec<OutputFormat>,
    pub templates: Option<PathBuf>,
    pub waivers: Option<PathBuf>,
    /// An earlier audit's output directory to report drift against.
    pub baseline: Option<PathBuf>,
    /// Also write `<out>.tar.gz`.
    pub bundle: bool,
    /// Exit 3 when coverage is incomplete.
    pub fail_on_incomplete: bool,
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

fn parse_enum<T: clap::ValueEnum>(config: &Config, key: &str, value: &str) -> Result<T> {
    T::from_str(value, true).map_err(|_| {
        let allowed: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        Error::input(format!(
            "{}: [audit] {key} = `{value}` is not one of {}",
            config
                .path
                .as_ref()
                .map_or("amiaudit.toml".into(), |p| p.display().to_string()),
            allowed.join(", ")
        ))
    })
}

pub fn audit(options: &AuditOptions) -> Result<AuditOutcome> {
    let config = config::load(options.config.as_deref())?;
    let policies = if options.policies.is_empty() {
        &config.audit.policies
    } else {
        &options.policies
    };
    let mut pack = load_pack(policies)?;
    let framework = options
        .framework
        .clone()
        .or_else(|| config.audit.framework.clone());
    if let Some(framework) = &framework {
        policy::filter_framework(&mut pack, framework)?;
    }
    let fail_on = match (options.fail_on, &config.audit.fail_on) {
        (Some(f), _) => f,
        (None, Some(text)) => parse_enum(&config, "fail_on", text)?,
        (None, None) => FailOn::None,
    };
    let formats = match (options.formats.is_empty(), &config.audit.formats) {
        (false, _) => options.formats.clone(),
        (true, Some(names)) => names
            .iter()
            .map(|n| parse_enum(&config, "formats", n))
            .collect::<Result<Vec<_>>>()?,
        (true, None) => OutputFormat::ALL.to_vec(),
    };
    let templates = options
        .templates
        .clone()
        .or_else(|| config.audit.templates.clone());
    let waivers = match options.waivers.as_ref().or(config.audit.waivers.as_ref()) {
        Some(path) => Some(waivers::load(path)?),
        None => None,
    };
    let overrides =
        policy::parse_param_flags(&pack, &options.params, config.param_overrides(&pack)?)?;
    let baseline = options
        .baseline
        .as_deref()
        .map(crate::diff::read)
        .transpose()?;
    let inventory = inventory::load(&options.inventory)?;

    let mut evaluation = evaluate(&inventory, &pack.rules, &overrides);
    let waiver_uses = match &waivers {
        Some(w) => w.apply(&inventory, &mut evaluation.results)?,
        None => Vec::new(),
    };
    evidence::prepare(&options.out)?;
    let mut digests = evidence::Digests::new();
    evidence::copy_inventory(&options.inventory, &inventory, &options.out, &mut digests)?;
    // The CSVs need only the results; they are written while the report
    // context (every non-passing finding with its account and rule) is
    // built and the other formats are rendered from it.
    let meta = render::audit_meta(&inventory, &pack, framework)?;
    let (csv_files, reports) = rayon::join(
        || {
            render::write_csv(
                &options.out,
                &formats,
                &inventory,
                &pack,
                &evaluation,
                &meta,
            )
        },
        || {
            let summary = summarize(&inventory, &evaluation, &pack.rules)?;
            let mut context =
                ReportContext::build(&inventory, &pack, &evaluation, summary, meta.clone())?;
            context.waivers = waiver_uses;
            context.meta.waivers_sha256 = waivers.as_ref().map(|w| w.sha256.clone());
            if let Some(old) = &baseline {
                context.diff = Some(crate::diff::compare(
                    old,
                    &crate::diff::Snapshot::from_context(&context),
                ));
            }
            let files = render::write_reports(
                &options.out,
                &formats,
                &evaluation,
                &context,
                templates.as_deref(),
            )?;
            Ok::<_, Error>((context, files))
        },
    );
    let (context, mut files) = reports?;
    files.extend(csv_files?);
    digests.extend(files.iter().cloned());
    let mut written: Vec<PathBuf> = files.into_iter().map(|(path, _)| path).collect();
    let meta = &context.meta;
    evidence::write_manifest(
        &options.out,
        evidence::EvidenceManifest {
            kind: evidence::KIND.to_string(),
            tool_version: meta.tool_version.to_string(),
            collected_at: meta.collected_at.clone(),
            scope: meta.scope.clone(),
            scan_started_at: inventory
                .manifest()
                .scan_started_at
                .map(|t| inventory::format_timestamp(t.timestamp_millis()))
                .transpose()?,
            scan_ended_at: inventory
                .manifest()
                .scan_ended_at
                .map(|t| inventory::format_timestamp(t.timestamp_millis()))
                .transpose()?,
            inventory_complete: meta.inventory_complete,
            policy_pack_sha256: meta.policy_pack_sha256.clone(),
            waivers_sha256: meta.waivers_sha256.clone(),
            framework: meta.framework.clone(),
            files: Default::default(),
        },
        &digests,
    )?;
    written.push(options.out.join(evidence::MANIFEST));
    if options.bundle {
        written.push(evidence::bundle(&options.out)?);
    }
    let failing_at_threshold = fail_on.threshold().is_some_and(|t| {
        context
            .summary
            .by_severity
            .iter()
            .any(|row| row.severity <= t && row.counts.fail > 0)
    });
    let exit_code = if !evaluation.rule_errors.is_empty() {
        EXIT_INPUT
    } else if options.fail_on_incomplete && !context.summary.coverage.complete {
        EXIT_INCOMPLETE
    } else if failing_at_threshold {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    let mut summary = render::terminal_summary(&context, 5);
    if let Some(diff) = &context.diff {
        summary.push_str(&diff.summary_line());
        summary.push('\n');
    }
    Ok(AuditOutcome {
        exit_code,
        summary,
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
        return Err(Error::input(
            "synth: --accounts and --images-per-region must be at least 1",
        ));
    }
    if command.options.regions == 0 || command.options.regions > synth::REGIONS.len() {
        return Err(Error::input(format!(
            "synth: --regions must be between 1 and {}",
            synth::REGIONS.len()
        )));
    }
    let inventory = synth::generate(&command.options)?;
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

/// `amiaudit policies list`: one line per rule.
pub fn policies_list(dirs: &[PathBuf], framework: Option<&str>) -> Result<String> {
    let mut pack = load_pack(dirs)?;
    if let Some(f) = framework {
        policy::filter_framework(&mut pack, f)?;
    }
    let mut out = format!(
        "{:<34} {:<9} {:<16} {}\n",
        "RULE", "SEVERITY", "RESOURCE", "TITLE"
    );
    for r in &pack.rules {
        let ids = match framework {
            Some(f) => format!(" [{f} {}]", r.frameworks[f].join(", ")),
            None => String::new(),
        };
        out.push_str(&format!(
            "{:<34} {:<9} {:<16} {}{ids}\n",
            r.id,
            r.severity.as_str(),
            r.resource_type,
            r.title
        ));
    }
    out.push_str(&format!(
        "{} rules; frameworks: {}\n",
        pack.rules.len(),
        pack.frameworks().join(", ")
    ));
    Ok(out)
}

/// `amiaudit policies explain RULE`: rationale, parameters, frameworks, SQL.
pub fn policies_explain(
    dirs: &[PathBuf],
    config: Option<&Path>,
    rule_id: &str,
    params: &[String],
) -> Result<String> {
    let config = config::load(config)?;
    let dirs = if dirs.is_empty() {
        &config.audit.policies
    } else {
        dirs
    };
    let pack = load_pack(dirs)?;
    let rule = pack.rules.iter().find(|r| r.id == rule_id).ok_or_else(|| {
        Error::input(format!(
            "no rule `{rule_id}` (see `amiaudit policies list`)"
        ))
    })?;
    let overrides = policy::parse_param_flags(&pack, params, config.param_overrides(&pack)?)?;
    let effective = rule.effective_params(&overrides);
    let mut out = format!(
        "{} ({}, {}): {}\nsource: {}\n\nwhy it matters:\n  {}\n\nremediation:\n  {}\n",
        rule.id,
        rule.severity,
        rule.resource_type,
        rule.title,
        rule.source,
        rule.description.trim(),
        rule.remediation.text.trim()
    );
    if let Some(cmd) = &rule.remediation.command {
        out.push_str(&format!("  $ {cmd}\n"));
    }
    if !rule.params.is_empty() {
        out.push_str("\nparameters (effective value, default):\n");
        for (name, spec) in &rule.params {
            out.push_str(&format!(
                "  {name} = {} (default {}): {}\n",
                effective[name].display(),
                spec.default.display(),
                spec.description
            ));
        }
    }
    if !rule.frameworks.is_empty() {
        out.push_str("\nframeworks:\n");
        for (f, ids) in &rule.frameworks {
            out.push_str(&format!("  {f}: {}\n", ids.join(", ")));
        }
    }
    if !rule.evidence.is_empty() {
        out.push_str(&format!(
            "\nrests on: {} (unknown where one was not gathered)\n",
            rule.evidence
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !rule.references.is_empty() {
        out.push_str("\nreferences:\n");
        for r in &rule.references {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out.push_str(&format!("\nquery:\n{}\n", rule.sql(&overrides)?));
    Ok(out)
}

/// `amiaudit policies validate [DIR]`: parse every file and dry-run every
/// query against an empty inventory of the right schema.
pub fn policies_validate(dirs: &[PathBuf]) -> Result<String> {
    let pack = load_pack(dirs)?;
    let empty = inventory::empty(chrono::DateTime::UNIX_EPOCH)?;
    let evaluation = evaluate(&empty, &pack.rules, &policy::ParamOverrides::new());
    if let Some(first) = evaluation.rule_errors.first() {
        let more = evaluation.rule_errors.len() - 1;
        let tail = if more > 0 {
            format!(" (and {more} more rule errors)")
        } else {
            String::new()
        };
        return Err(Error::Rule {
            file: first.file.clone(),
            rule: first.rule_id.clone(),
            message: format!("{}{tail}", first.message),
        });
    }
    Ok(format!(
        "{} rules valid ({} frameworks)\n",
        pack.rules.len(),
        pack.frameworks().len()
    ))
}

/// Output format of `amiaudit query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    Table,
    Csv,
    Json,
}

/// `amiaudit query`: ad-hoc SQL over an inventory (with its derived columns).
pub fn query(inventory_dir: &Path, sql: &str, format: QueryFormat) -> Result<String> {
    let inv = inventory::load(inventory_dir)?;
    // polars panics on values it cannot show (a timestamp past year 262143);
    // a query is user input, so that is one line of error, not a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_query(&inv, sql, format)))
        .unwrap_or_else(|panic| {
            Err(Error::input(format!(
                "query: the result cannot be shown: {}",
                crate::error::panic_message(panic.as_ref())
            )))
        })
}

fn run_query(inv: &inventory::Inventory, sql: &str, format: QueryFormat) -> Result<String> {
    use polars::prelude::*;
    let mut ctx = polars::sql::SQLContext::new();
    for (name, lf) in inv.frames()? {
        ctx.register(&name, lf);
    }
    let df = ctx.execute(sql).and_then(|lf| lf.collect()).map_err(|e| {
        Error::input(format!(
            "query: SQL error: {}",
            crate::error::polars_message(&e)
        ))
    })?;
    Ok(match format {
        QueryFormat::Table => format!("{df}\n{} rows\n", df.height()),
        QueryFormat::Csv | QueryFormat::Json => {
            let names: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            let cell = |c: &Column, i: usize| -> Result<serde_json::Value> {
                let value = c.get(i).map_err(|e| {
                    Error::input(format!("query: {}", crate::error::polars_message(&e)))
                })?;
                Ok(match value {
                    AnyValue::Null => serde_json::Value::Null,
                    AnyValue::Boolean(b) => b.into(),
                    AnyValue::Int64(v) => v.into(),
                    AnyValue::Int32(v) => v.into(),
                    AnyValue::UInt32(v) => v.into(),
                    AnyValue::UInt64(v) => v.into(),
                    AnyValue::Float64(v) => v.into(),
                    AnyValue::String(s) => s.into(),
                    AnyValue::Datetime(v, unit, _) => {
                        let ms = match unit {
                            TimeUnit::Milliseconds => v,
                            TimeUnit::Microseconds => v.div_euclid(1_000),
                            TimeUnit::Nanoseconds => v.div_euclid(1_000_000),
                        };
                        inventory::format_timestamp(ms)
                            .map_err(|_| {
                                Error::input(format!(
                                    "query: column `{}` holds a timestamp outside 1970-2200",
                                    c.name()
                                ))
                            })?
                            .into()
                    }
                    other => other.to_string().trim_matches('"').into(),
                })
            };
            let columns = df.columns();
            if format == QueryFormat::Json {
                let rows = (0..df.height())
                    .map(|i| {
                        names
                            .iter()
                            .zip(columns)
                            .map(|(n, c)| Ok((n.clone(), cell(c, i)?)))
                            .collect::<Result<serde_json::Map<_, _>>>()
                            .map(serde_json::Value::Object)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut text = serde_json::to_string_pretty(&rows)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                text.push('\n');
                text
            } else {
                let mut w = ::csv::Writer::from_writer(Vec::new());
                let fail = |e: ::csv::Error| Error::Internal(e.to_string());
                w.write_record(&names).map_err(fail)?;
                for i in 0..df.height() {
                    let record = columns
                        .iter()
                        .map(|c| {
                            Ok(match cell(c, i)? {
                                serde_json::Value::Null => String::new(),
                                serde_json::Value::String(s) => {
                                    render::neutralise_cell(&s).into_owned()
                                }
                                v => v.to_string(),
                            })
                        })
                        .collect::<Result<Vec<String>>>()?;
                    w.write_record(&record).map_err(fail)?;
                }
                String::from_utf8(w.into_inner().map_err(|e| Error::Internal(e.to_string()))?)
                    .map_err(|e| Error::Internal(e.to_string()))?
            }
        }
    })
}

/// `amiaudit verify DIR`: (exit code, report).
pub fn verify(dir: &Path) -> Result<(i32, String)> {
    let v = evidence::verify(dir)?;
    if v.intact() {
        return Ok((
            EXIT_OK,
            format!(
                "intact: {} files match {}\n",
                v.files,
                dir.join(evidence::MANIFEST).display()
            ),
        ));
    }
    let mut out = String::new();
    for (what, list) in [
        ("changed", &v.changed),
        ("removed", &v.removed),
        ("added", &v.added),
    ] {
        for file in list {
            out.push_str(&format!("{what}: {file}\n"));
        }
    }
    out.push_str(&format!(
        "not intact: {} changed, {} removed, {} added\n",
        v.changed.len(),
        v.removed.len(),
        v.added.len()
    ));
    Ok((EXIT_FINDINGS, out))
}

/// `amiaudit diff OLD NEW [--out DIR]`.
pub fn diff(old: &Path, new: &Path, out: Option<&Path>) -> Result<String> {
    let d = crate::diff::diff(old, new)?;
    let mut text = d.summary_line();
    text.push('\n');
    for c in d.changes.iter().filter(|c| c.change != "persisting") {
        text.push_str(&format!(
            "  {:<12} {:<32} {} {} {}\n",
            c.change, c.rule_id, c.account_id, c.region, c.resource_id
        ));
    }
    for w in &d.waivers {
        text.push_str(&format!(
            "  waiver {:<13} {} ({})\n",
            w.change, w.waiver.rule, w.waiver.reason
        ));
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (name, body) in [("diff.json", d.json()?), ("diff.csv", d.csv()?)] {
            let path = dir.join(name);
            std::fs::write(&path, body).map_err(|e| Error::io(&path, e))?;
            text.push_str(&format!("wrote {}\n", path.display()));
        }
    }
    Ok(text)
}

/// Scope, role and connection flags of `scan` and `audit --live`. Every flag
/// overrides the `[scan]` section of amiaudit.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ScanFlags {
    /// Every ACTIVE account of the organization (Organizations ListAccounts).
    #[arg(long)]
    pub org: bool,
    /// Only the accounts under this OU (implies --org).
    #[arg(long, value_name = "OU_ID")]
    pub ou: Option<String>,
    /// These accounts (comma-separated) [default: the caller's own account].
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Leave these accounts out.
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub exclude_accounts: Vec<String>,
    /// `all` (each account's enabled regions) or a comma-separated list [default: all].
    #[arg(long, value_name = "all|LIST")]
    pub regions: Option<String>,
    /// Role to assume in member accounts [default: OrganizationAccountAccessRole].
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
    /// Role ARN with `{account_id}`, e.g. 'arn:aws:iam::{account_id}:role/Audit'.
    #[arg(long, value_name = "TEMPLATE")]
    pub role_arn_template: Option<String>,
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,
    /// [default: amiaudit]
    #[arg(long, value_name = "NAME")]
    pub role_session_name: Option<String>,
    /// Named AWS profile (SSO profiles included).
    #[arg(long)]
    pub profile: Option<String>,
    /// Home region for STS, Organizations and DescribeRegions.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every call to this endpoint (emulators); AWS_ENDPOINT_URL works too.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Account-regions scanned at once [default: 256].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Attempts per call, the first included, with adaptive backoff [default: 6].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Which owned snapshots get their createVolumePermission read (one call
    /// each): all, ami-backing or none [default: all]. The others are
    /// `unknown` for SNAP-SHARED-OUTSIDE-ORG.
    #[arg(long, value_name = "WHICH")]
    pub snapshot_permissions: Option<String>,
    /// Print calls, retries, throttles and wall time after the scan.
    #[arg(long)]
    pub stats: bool,
}

/// Turns flags plus `[scan]` of amiaudit.toml into scan options, checking
/// every value (account ids, region codes, the role template).
pub fn scan_options(flags: &ScanFlags, config: &Config) -> Result<collect::ScanOptions> {
    use crate::discover::{AccountSelection, RegionSelection};
    let file = &config.scan;
    let at = |key: &str| format!("{} [scan] {key}", config.name());
    let mut options = collect::ScanOptions::default();

    let ou = flags.ou.clone().or_else(|| file.ou.clone());
    let accounts = if flags.accounts.is_empty() {
        file.accounts.clone().unwrap_or_default()
    } else {
        flags.accounts.clone()
    };
    let org = flags.org || file.org.unwrap_or(false) || ou.is_some();
    if org && !accounts.is_empty() {
        return Err(Error::input(
            "scan: give either --org/--ou or --accounts, not both",
        ));
    }
    let exclude = if flags.exclude_accounts.is_empty() {
        file.exclude_accounts.clone().unwrap_or_default()
    } else {
        flags.exclude_accounts.clone()
    };
    for id in accounts.iter().chain(&exclude) {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::input(format!(
                "scan: `{id}` is not an AWS account id (12 digits)"
            )));
        }
    }
    if let Some(ou) = &ou
        && !(ou.starts_with("ou-") || ou.starts_with("r-"))
    {
        return Err(Error::input(format!(
            "scan: --ou `{ou}` is not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)"
        )));
    }
    options.accounts = if org {
        AccountSelection::Organization { ou }
    } else if accounts.is_empty() {
        AccountSelection::Caller
    } else {
        AccountSelection::List(accounts)
    };
    options.exclude_accounts = exclude;

    let regions: Option<Vec<String>> = match (&flags.regions, &file.regions) {
        (Some(text), _) if text == "all" => None,
        (Some(text), _) => Some(text.split(',').map(|r| r.trim().to_string()).collect()),
        (None, Some(toml::Value::String(s))) if s == "all" => None,
        (None, Some(toml::Value::Array(items))) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Error::input(format!(
                        "{}: expects \"all\" or a list of region codes",
                        at("regions")
                    ))
                })?,
        ),
        (None, Some(_)) => {
            return Err(Error::input(format!(
                "{}: expects \"all\" or a list of region codes",
                at("regions")
            )));
        }
        (None, None) => None,
    };
    if let Some(list) = &regions {
        for region in list {
            if !is_region_code(region) {
                return Err(Error::input(format!(
                    "scan: `{region}` is not a region code (e.g. eu-west-1); use --regions all or a comma-separated list"
                )));
            }
        }
    }
    options.regions = regions.map_or(RegionSelection::All, RegionSelection::List);

    if let Some(name) = flags.role_name.clone().or_else(|| file.role_name.clone()) {
        options.role.role_name = name;
    }
    options.role.role_arn_template = flags
        .role_arn_template
        .clone()
        .or_else(|| file.role_arn_template.clone());
    if let Some(template) = &options.role.role_arn_template
        && !(template.starts_with("arn:") && template.contains("{account_id}"))
    {
        return Err(Error::input(format!(
            "scan: role ARN template `{template}` must be an ARN containing {{account_id}}"
        )));
    }
    options.role.external_id = flags
        .external_id
        .clone()
        .or_else(|| file.external_id.clone());
    if let Some(name) = flags
        .role_session_name
        .clone()
        .or_else(|| file.role_session_name.clone())
    {
        options.role.session_name = name;
    }
    options.connection.profile = flags.profile.clone().or_else(|| file.profile.clone());
    options.connection.region = flags.region.clone().or_else(|| file.region.clone());
    options.connection.endpoint_url = flags
        .endpoint_url
        .clone()
        .or_else(|| file.endpoint_url.clone());
    if let Some(n) = flags.concurrency.or(file.concurrency) {
        if n == 0 {
            return Err(Error::input("scan: --concurrency must be at least 1"));
        }
        options.concurrency = n;
    }
    if let Some(which) = flags
        .snapshot_permissions
        .clone()
        .or_else(|| file.snapshot_permissions.clone())
    {
        options.snapshot_permissions = collect::SnapshotPermissions::parse(&which).ok_or_else(|| {
            Error::input(format!(
                "scan: snapshot permissions `{which}` is not one of all, ami-backing, none"
            ))
        })?;
    }
    if let Some(n) = flags.max_attempts {
        if n == 0 {
            return Err(Error::input("scan: --max-attempts must be at least 1"));
        }
        options.connection.max_attempts = n;
    }
    options.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    Ok(options)
}

fn is_region_code(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone)]
pub struct ScanCommand {
    pub flags: ScanFlags,
    pub config: Option<PathBuf>,
    pub out: PathBuf,
    pub format: TableFormat,
}

/// `amiaudit scan`: writes an inventory; returns the text to print.
pub fn scan(command: &ScanCommand) -> Result<String> {
    let config = config::load(command.config.as_deref())?;
    let options = scan_options(&command.flags, &config)?;
    let outcome = collect::scan_blocking(&options)?;
    inventory::save(&outcome.inventory, &command.out, command.format)?;
    let mut text = scan_summary(&outcome.stats, &command.out);
    if command.flags.stats {
        text.push_str(&stats_text(&outcome.stats));
    }
    Ok(text)
}

fn scan_summary(stats: &collect::ScanStats, out: &Path) -> String {
    format!(
        "scanned {} accounts, {} account-regions: {} images, {} scan errors{}\nwrote {}\n",
        stats.accounts,
        stats.account_regions,
        stats.images,
        stats.errors,
        if stats.interrupted {
            " (interrupted: inventory marked incomplete)"
        } else {
            ""
        },
        out.display()
    )
}

/// `--stats`: per-operation calls, retries and throttles, then totals.
pub fn stats_text(stats: &collect::ScanStats) -> String {
    let mut out = format!(
        "{:<48} {:>8} {:>8} {:>9}\n",
        "operation", "calls", "retries", "throttled"
    );
    for (operation, c) in &stats.operations {
        out.push_str(&format!(
            "{:<48} {:>8} {:>8} {:>9}\n",
            operation,
            c.calls,
            c.attempts.saturating_sub(c.calls),
            c.throttled
        ));
    }
    out.push_str(&format!(
        "{:<48} {:>8} {:>8} {:>9}\nwall time {:.2} s; {:.2} calls per image\n",
        "total",
        stats.calls(),
        stats.retries(),
        stats.throttled(),
        stats.wall_seconds,
        stats.calls() as f64 / stats.images.max(1) as f64
    ));
    out
}

/// `amiaudit audit --live`: scans into a scratch inventory beside `out`,
/// audits it (the audit copies it into `out/inventory`), then removes the
/// scratch copy.
pub fn audit_live(flags: &ScanFlags, options: &AuditOptions) -> Result<AuditOutcome> {
    let config = config::load(options.config.as_deref())?;
    let scan_options = scan_options(flags, &config)?;
    let outcome = collect::scan_blocking(&scan_options)?;
    let name = options
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".to_string());
    let scratch = options
        .out
        .with_file_name(format!(".{name}.scan-{}", std::process::id()));
    inventory::save(&outcome.inventory, &scratch, TableFormat::Parquet)?;
    let mut audit_options = options.clone();
    audit_options.inventory = scratch.clone();
    let result = audit(&audit_options);
    let _ = std::fs::remove_dir_all(&scratch);
    let mut outcome_audit = result?;
    let mut prefix = scan_summary(&outcome.stats, &options.out.join(evidence::INVENTORY_DIR));
    if flags.stats {
        prefix.push_str(&stats_text(&outcome.stats));
    }
    outcome_audit.summary = prefix + &outcome_audit.summary;
    Ok(outcome_audit)
}

/// The commented default amiaudit.toml that `amiaudit init` writes.
pub const INIT_CONFIG: &str = include_str!("../docs/amiaudit.example.toml");

/// `amiaudit init`: writes a commented default config; never overwrites.
pub fn init(path: &Path) -> Result<String> {
    if path.exists() {
        return Err(Error::input(format!(
            "{}: already exists; remove it or pass another path",
            path.display()
        )));
    }
    std::fs::write(path, INIT_CONFIG).map_err(|e| Error::io(path, e))?;
    Ok(format!("wrote {}\n", path.display()))
}
