//! The `amiaudit` binary: parses the command line (`cli`), resolves it into
//! settings, runs one command, prints, exits. Nothing else.

mod cli;

use std::process::ExitCode;

use amiaudit::cmd::{self, Outcome};
use amiaudit::error::{Error, Result};
use amiaudit::settings::{self, AuditPlan, AuditRequest};
use amiaudit::{config, inventory, synth};
use clap::Parser;
use cli::{Cli, Command, ExportCommand, PoliciesCommand};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return command_line_error(e),
    };
    // A panic is a bug, but the user still gets one line and exit 2, not a
    // backtrace: the default hook's message is replaced by ours below.
    std::panic::set_hook(Box::new(|_| {}));
    // polars' own warnings (a deprecated cast in a rule or a query) as one
    // inert line each, like ours.
    polars::error::set_warning_function(|message, kind| {
        eprintln!(
            "{}",
            error_line(&format!("warning: polars {kind:?}: {message}"))
        );
    });
    let outcome = std::panic::catch_unwind(|| run(cli)).unwrap_or_else(|panic| {
        Err(Error::Internal(format!(
            "{}; please report it",
            amiaudit::error::panic_message(panic.as_ref())
        )))
    });
    match outcome {
        Ok(outcome) => {
            say(&outcome.stdout);
            // Warnings quote AWS and S3 text (keys, prefixes, fields of
            // an audit read back): inert, like the error line below.
            for line in &outcome.stderr {
                eprintln!("{}", error_line(line));
            }
            ExitCode::from(outcome.exit_code as u8)
        }
        Err(e) => {
            eprintln!("{}", error_line(&format!("error: {e}")));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// One line of stderr: inert, and no longer than a person reads (a
/// library's message can quote a whole SQL syntax tree).
fn error_line(text: &str) -> String {
    const MAX_CHARS: usize = 2000;
    let line = amiaudit::text::terminal_field(text);
    let chars = line.chars().count();
    if chars <= MAX_CHARS {
        return line;
    }
    let kept: String = line.chars().take(MAX_CHARS).collect();
    format!("{kept}… ({} more characters)", chars - MAX_CHARS)
}

/// Help and version as clap prints them; a bad command line as one line
/// (clap's message and its tip, if any) and exit 2, like any bad input.
fn command_line_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: bad command line");
    let tips: Vec<&str> = lines.filter(|l| l.starts_with("tip:")).collect();
    let line = if tips.is_empty() {
        first.to_string()
    } else {
        format!("{first} ({})", tips.join("; "))
    };
    eprintln!("{}", error_line(&line));
    ExitCode::from(2)
}

fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Audit(a) => {
            let config = config::load(a.config.as_deref())?;
            let request = AuditRequest {
                inventory: a.inventory.clone(),
                live: a.live,
                scan: a.scan.section(),
                out: a.out.clone(),
                local_copy: a.local_copy.clone(),
                retain: a.retain_days.map(|days| (days, a.retain_mode)),
                params: a.params.clone(),
                baseline: a.baseline.clone(),
                baseline_latest: a.baseline_latest.clone(),
                security_hub: a.security_hub,
                security_hub_role: a.security_hub_role.clone(),
                sign_with_kms: a.sign_with_kms.clone(),
                aws: None,
                allow_unverified_baseline: a.allow_unverified_baseline,
                bundle: a.bundle,
                fail_on_incomplete: a.fail_on_incomplete,
                stats: a.scan.stats,
            };
            if !a.live && a.scan.stats {
                return Err(Error::input("audit: --stats needs --live"));
            }
            cmd::audit::run(AuditPlan::resolve(request, a.section(), &config)?)
        }
        Command::Scan {
            flags,
            out,
            format,
            config,
        } => {
            let config = config::load(config.as_deref())?;
            let options =
                settings::scan_options(&flags.section().or(&config.scan), &config.name())?;
            cmd::scan::run(&options, &out, format, flags.stats)
        }
        Command::Init { path } => cmd::init::run(&path).map(Outcome::ok),
        Command::Synth(s) => cmd::synth::run(
            &synth::SynthOptions {
                accounts: s.accounts,
                regions: s.regions,
                images_per_region: s.images_per_region,
                seed: s.seed,
                collected_at: s.collected_at,
            },
            &s.out,
            s.format,
        )
        .map(Outcome::ok),
        Command::Policies(p) => match p {
            PoliciesCommand::List {
                policies,
                framework,
            } => cmd::policies::list(&policies, framework.as_deref()),
            PoliciesCommand::Explain {
                rule,
                policies,
                params,
                config,
            } => cmd::policies::explain(&policies, config.as_deref(), &rule, &params),
            PoliciesCommand::Validate { dirs } => cmd::policies::validate(&dirs),
        }
        .map(Outcome::ok),
        Command::Query {
            inventory,
            sql,
            format,
        } => cmd::query::run(&inventory, &sql, format).map(Outcome::ok),
        Command::Verify { dir, kms_key, aws } => {
            cmd::verify::run(&dir, &aws.connection(), kms_key.as_deref())
        }
        Command::Diff {
            old,
            new,
            aws,
            out,
            allow_unverified,
        } => cmd::diff::run(
            &old,
            &new,
            &aws.connection(),
            out.as_deref(),
            allow_unverified,
        ),
        Command::Export(ExportCommand::SecurityHub {
            dir,
            security_hub_role,
            aws,
        }) => cmd::export::security_hub(&dir, &aws.connection(), security_hub_role.as_deref()),
        Command::Schema { markdown } => Ok(Outcome::ok(if markdown {
            inventory::schema::markdown()
        } else {
            inventory::schema::describe()
        })),
    }
}

/// Writes to stdout; a closed pipe (`amiaudit ... | head`) is not an error.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
