//! The `amiaudit` binary: parses the command line and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use amiaudit::app::{
    self, AuditOptions, FailOn, QueryFormat, ScanCommand, ScanFlags, SynthCommand,
};
use amiaudit::error::Error;
use amiaudit::inventory::TableFormat;
use amiaudit::render::OutputFormat;
use amiaudit::synth::SynthOptions;

const EXIT_CODES: &str = "Exit codes: 0 clean; 1 a failing finding at or above --fail-on \
(verify: the directory changed); 2 usage or input error (bad inventory, policy, waiver, config, \
parameter, no usable AWS credentials) or a rule that could not run; 3 coverage incomplete with --fail-on-incomplete. \
When several apply: 2, then 3, then 1.";

#[derive(Parser)]
#[command(name = "amiaudit", version, about = "Audit golden AMIs across every account and region of an AWS Organization", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate the policy rules over an inventory (or a live scan) and write reports.
    Audit(AuditArgs),
    /// Scan AWS (read-only) and write an inventory.
    Scan {
        #[command(flatten)]
        flags: ScanFlags,
        /// Inventory directory to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Table file format.
        #[arg(long, value_enum, default_value = "parquet")]
        format: TableFormat,
        /// Config file [default: ./amiaudit.toml when it exists].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Write a commented default amiaudit.toml (never overwrites).
    Init {
        #[arg(default_value = "amiaudit.toml")]
        path: PathBuf,
    },
    /// Write a deterministic synthetic inventory of any size.
    Synth(SynthArgs),
    /// List, explain and validate policy rules.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Run an SQL query over an inventory's tables.
    Query {
        #[arg(long, value_name = "DIR")]
        inventory: PathBuf,
        /// The query, e.g. "SELECT region, COUNT(*) FROM images GROUP BY region".
        sql: String,
        #[arg(long, value_enum, default_value = "table")]
        format: QueryFormat,
    },
    /// Check an audit output directory against its manifest: exit 1 if any
    /// file was added, removed or changed.
    Verify { dir: PathBuf },
    /// Compare two audit output directories: new, resolved and persisting failures.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Also write diff.json and diff.csv here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the inventory schema: every table and column with its type.
    Schema {
        /// Print the documented Markdown page instead of one line per column.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Subcommand)]
enum PoliciesCommand {
    /// One line per rule.
    List {
        #[arg(long = "policies", value_name = "DIR")]
        policies: Vec<PathBuf>,
        /// Only rules mapped to this framework, with their requirement ids.
        #[arg(long)]
        framework: Option<String>,
    },
    /// A rule's rationale, parameters (effective values), frameworks and query.
    Explain {
        rule: String,
        #[arg(long = "policies", value_name = "DIR")]
        policies: Vec<PathBuf>,
        #[arg(long = "param", value_name = "RULE.KEY=VALUE")]
        params: Vec<String>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Parse every rule file and dry-run every query on an empty inventory.
    Validate {
        /// Policy directories [default: the built-in pack].
        dirs: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct AuditArgs {
    /// Inventory directory (manifest.json plus one file per table).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    inventory: Option<PathBuf>,
    /// Scan AWS now (read-only) instead of reading an inventory; takes the scan flags.
    #[arg(long)]
    live: bool,
    #[command(flatten)]
    scan: ScanFlags,
    /// Directory to write report.html, findings.csv and findings.json into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Policy directory (repeatable); default: the rule pack built into amiaudit.
    #[arg(long = "policies", value_name = "DIR")]
    policies: Vec<PathBuf>,
    /// Override a rule parameter: RULE.KEY=VALUE (lists comma-separated). Repeatable.
    #[arg(long = "param", value_name = "RULE.KEY=VALUE")]
    params: Vec<String>,
    /// Only evaluate the rules mapped to this framework.
    #[arg(long, value_name = "NAME")]
    framework: Option<String>,
    /// Exit 1 when a failing finding at or above this severity exists [default: none].
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
    /// Waiver file (YAML): accepted risks with reason, approver and expiry.
    #[arg(long, value_name = "FILE")]
    waivers: Option<PathBuf>,
    /// Config file [default: ./amiaudit.toml when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An earlier audit's output directory: report new, resolved and persisting failures.
    #[arg(long, value_name = "OLD_OUT")]
    baseline: Option<PathBuf>,
    /// Also write OUT.tar.gz (reproducible) beside the output directory.
    #[arg(long)]
    bundle: bool,
    /// Exit 3 when some account-region in scope was not (fully) scanned.
    #[arg(long)]
    fail_on_incomplete: bool,
    /// Output formats to write (repeatable or comma-separated); default: all.
    #[arg(long = "format", value_enum, value_delimiter = ',')]
    formats: Vec<OutputFormat>,
    /// Directory of report templates overriding the built-in ones file by file.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
}

#[derive(Args)]
struct SynthArgs {
    #[arg(long, default_value_t = 12)]
    accounts: usize,
    #[arg(long, default_value_t = 4)]
    regions: usize,
    #[arg(long = "images-per-region", default_value_t = 7)]
    images_per_region: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The inventory's collection time ("now" for every rule).
    #[arg(long = "collected-at", default_value = "2026-11-20T00:00:00Z", value_parser = app::parse_time)]
    collected_at: chrono::DateTime<chrono::Utc>,
    /// Table file format.
    #[arg(long, value_enum, default_value = "parquet")]
    format: TableFormat,
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A panic is a bug, but the user still gets one line and exit 2, not a
    // backtrace: the default hook's message is replaced by ours below.
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(code) => code,
        Err(panic) => {
            eprintln!(
                "error: internal error: {}; please report it",
                amiaudit::error::panic_message(panic.as_ref())
            );
            ExitCode::from(amiaudit::error::EXIT_INPUT as u8)
        }
    }
}

fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Audit(a) => {
            let options = AuditOptions {
                inventory: a.inventory.unwrap_or_default(),
                out: a.out,
                policies: a.policies,
                params: a.params,
                framework: a.framework,
                fail_on: a.fail_on,
                formats: a.formats,
                templates: a.templates,
                waivers: a.waivers,
                config: a.config,
                baseline: a.baseline,
                bundle: a.bundle,
                fail_on_incomplete: a.fail_on_incomplete,
            };
            if a.live {
                app::audit_live(&a.scan, &options)
            } else if a.scan != ScanFlags::default() {
                Err(Error::input(
                    "audit: scan flags (--org, --accounts, --regions, ...) need --live",
                ))
            } else {
                app::audit(&options)
            }
        }
        .map(|outcome| {
            say(&outcome.summary);
            for path in &outcome.written {
                say(&format!("wrote {}\n", path.display()));
            }
            for e in &outcome.rule_errors {
                eprintln!("error: {e}");
            }
            outcome.exit_code
        }),
        Command::Scan {
            flags,
            out,
            format,
            config,
        } => app::scan(&ScanCommand {
            flags,
            config,
            out,
            format,
        })
        .map(|text| {
            say(&text);
            0
        }),
        Command::Init { path } => app::init(&path).map(|text| {
            say(&text);
            0
        }),
        Command::Synth(s) => app::synth(&SynthCommand {
            options: SynthOptions {
                accounts: s.accounts,
                regions: s.regions,
                images_per_region: s.images_per_region,
                seed: s.seed,
                collected_at: s.collected_at,
            },
            out: s.out,
            format: s.format,
        })
        .map(|line| {
            say(&format!("{line}\n"));
            0
        }),
        Command::Policies(p) => match p {
            PoliciesCommand::List {
                policies,
                framework,
            } => app::policies_list(&policies, framework.as_deref()),
            PoliciesCommand::Explain {
                rule,
                policies,
                params,
                config,
            } => app::policies_explain(&policies, config.as_deref(), &rule, &params),
            PoliciesCommand::Validate { dirs } => app::policies_validate(&dirs),
        }
        .map(|text| {
            say(&text);
            0
        }),
        Command::Query {
            inventory,
            sql,
            format,
        } => app::query(&inventory, &sql, format).map(|text| {
            say(&text);
            0
        }),
        Command::Verify { dir } => app::verify(&dir).map(|(code, text)| {
            say(&text);
            code
        }),
        Command::Diff { old, new, out } => app::diff(&old, &new, out.as_deref()).map(|text| {
            say(&text);
            0
        }),
        Command::Schema { markdown } => {
            say(&if markdown {
                amiaudit::inventory::schema::markdown()
            } else {
                app::schema_text()
            });
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => report(&e),
    }
}

/// Writes to stdout; a closed pipe (`amiaudit ... | head`) is not an error.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn report(e: &Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code() as u8)
}
