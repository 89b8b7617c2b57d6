//! The command line: clap types only, on the binary's side. Each flag set
//! becomes the library's settings types (`config::ScanSection`,
//! `config::AuditSection`, `settings::AuditRequest`), which `settings`
//! merges over `amiaudit.toml` and checks.

use std::path::PathBuf;
use std::str::FromStr;

use amiaudit::cmd::query::QueryFormat;
use amiaudit::config::{AuditSection, FailOn, RegionsSetting, ScanSection};
use amiaudit::deliver::Location;
use amiaudit::deliver::s3::RetainMode;
use amiaudit::inventory::TableFormat;
use amiaudit::render::FormatWord;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

pub const EXIT_CODES: &str = "Exit codes: 0 clean; 1 a failing finding at or above --fail-on \
(verify: the directory changed or contradicts itself); 2 usage or input error (bad inventory, policy, waiver, config, \
parameter, output directory, no usable AWS credentials), a rule that could not run, or a delivery that failed \
(an S3 upload, findings Security Hub did not import: the audit is kept locally); 3 coverage incomplete with --fail-on-incomplete. \
When several apply: 2, then 3, then 1.";

/// A value parser for one of the library's word-named enums.
fn words<T: Clone + Send + Sync + 'static>(
    names: &'static [&'static str],
    parse: fn(&str) -> Option<T>,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(names).try_map(move |word| {
        parse(&word).ok_or_else(|| format!("`{word}` is not one of {}", names.join(", ")))
    })
}

#[derive(Parser)]
#[command(name = "amiaudit", version, about = "Audit golden AMIs across every account and region of an AWS Organization", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Evaluate the policy rules over an inventory (or a live scan) and write reports.
    Audit(Box<AuditArgs>),
    /// Scan AWS (read-only) and write an inventory.
    Scan {
        #[command(flatten)]
        flags: Box<ScanFlags>,
        /// Inventory directory to write (new, empty, or an earlier inventory).
        #[arg(long, value_name = "DIR", value_parser = local)]
        out: PathBuf,
        /// Table file format.
        #[arg(long, default_value = "parquet", value_parser = words(&TableFormat::NAMES, TableFormat::parse))]
        format: TableFormat,
        /// Config file [default: ./amiaudit.toml when it exists].
        #[arg(long, value_name = "FILE", value_parser = local)]
        config: Option<PathBuf>,
    },
    /// Write a commented default amiaudit.toml (never overwrites).
    Init {
        #[arg(default_value = "amiaudit.toml", value_parser = local)]
        path: PathBuf,
    },
    /// Write a deterministic synthetic inventory of any size.
    Synth(SynthArgs),
    /// List, explain and validate policy rules.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Run an SQL query over an inventory's tables.
    Query {
        #[arg(long, value_name = "DIR", value_parser = local)]
        inventory: PathBuf,
        /// The query, e.g. "SELECT region, COUNT(*) FROM images GROUP BY region".
        sql: String,
        #[arg(long, default_value = "table", value_parser = words(&QueryFormat::NAMES, QueryFormat::parse))]
        format: QueryFormat,
    },
    /// Check an audit (a directory or s3://bucket/prefix/): every file
    /// against its manifest, both ways, and the manifest against what it
    /// embeds, and a signed manifest's signature; exit 1 if anything differs.
    Verify {
        #[arg(value_name = "DIR|S3_URL", value_parser = location)]
        dir: Location,
        /// Require a manifest signed by this KMS key (id, ARN or alias; its
        /// public key is read with kms:GetPublicKey).
        #[arg(long, value_name = "KMS_KEY")]
        kms_key: Option<String>,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Compare two audits, directories or s3:// prefixes (each verified
    /// first): new, resolved and persisting failures.
    Diff {
        #[arg(value_parser = location)]
        old: Location,
        #[arg(value_parser = location)]
        new: Location,
        #[command(flatten)]
        aws: AwsFlags,
        /// Also write diff.json and diff.csv here.
        #[arg(long, value_name = "DIR", value_parser = local)]
        out: Option<PathBuf>,
        /// Compare even when an audit does not verify (with a warning).
        /// `--allow-unverified-baseline`, the name the refusal gives, works too.
        #[arg(long, alias = "allow-unverified-baseline")]
        allow_unverified: bool,
    },
    /// Send an audit's findings somewhere (writes to AWS).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Print the inventory schema: every table and column with its type.
    Schema {
        /// Print the documented Markdown page instead of one line per column.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Import findings.asff.json of a verified audit into AWS Security Hub
    /// (BatchImportFindings, 100 a call, each finding into its region), then
    /// set the workflow of waived, resolved and reopened findings
    /// (BatchUpdateFindings); exit 2 if any finding was not imported or its
    /// workflow not set.
    SecurityHub {
        #[arg(value_name = "DIR|S3_URL", value_parser = location)]
        dir: Location,
        /// Import each account's findings into that account's own hub,
        /// through this role in it (deploy/security-hub-import-role.yaml)
        /// [default: every finding into the caller's account].
        #[arg(long, value_name = "ROLE_NAME")]
        security_hub_role: Option<String>,
        #[command(flatten)]
        aws: AwsFlags,
    },
}

/// How to reach AWS, for commands that read or write audits in S3 or
/// Security Hub (the standard chain otherwise: AWS_PROFILE, AWS_REGION, ...).
#[derive(Debug, Clone, Default, Args)]
pub struct AwsFlags {
    /// Named AWS profile (SSO profiles included).
    #[arg(long)]
    pub profile: Option<String>,
    /// Home region: STS, Organizations, DescribeRegions and the first S3
    /// call (a bucket's own region is found).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every call to this endpoint (emulators); AWS_ENDPOINT_URL works too.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

impl AwsFlags {
    pub fn connection(&self) -> amiaudit::aws::Connection {
        amiaudit::settings::connection(&ScanSection {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            ..Default::default()
        })
    }
}

/// `--out`, `--baseline`, `verify`, `diff`: a directory or `s3://bucket/prefix/`.
fn location(text: &str) -> Result<Location, String> {
    Location::parse(text).map_err(|e| e.to_string())
}

/// Every local path flag: never empty, padded or URL-like
/// ([`amiaudit::deliver::local_path`]).
fn local(text: &str) -> Result<PathBuf, String> {
    amiaudit::deliver::local_path(text).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
pub enum PoliciesCommand {
    /// One line per rule.
    List {
        #[arg(long = "policies", value_name = "DIR", value_parser = local)]
        policies: Vec<PathBuf>,
        /// Only rules mapped to this framework, with their requirement ids.
        #[arg(long)]
        framework: Option<String>,
    },
    /// A rule's rationale, parameters (effective values), evidence, frameworks and query.
    Explain {
        rule: String,
        #[arg(long = "policies", value_name = "DIR", value_parser = local)]
        policies: Vec<PathBuf>,
        #[arg(long = "param", value_name = "RULE.KEY=VALUE")]
        params: Vec<String>,
        #[arg(long, value_name = "FILE", value_parser = local)]
        config: Option<PathBuf>,
    },
    /// Parse every rule file and dry-run every query on an empty inventory.
    Validate {
        /// Policy directories [default: the built-in pack].
        #[arg(value_parser = local)]
        dirs: Vec<PathBuf>,
    },
}

/// Scope, role and connection flags of `scan` and `audit --live`. Every flag
/// overrides the `[scan]` section of amiaudit.toml.
#[derive(Debug, Clone, Default, Args)]
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
    #[command(flatten)]
    pub aws: AwsFlags,
    /// Account-regions scanned at once [default: 256].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Attempts per call, the first included, with exponential backoff [default: 6].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// EC2 calls per account, region and action: a bucket of BURST calls
    /// (1 to 10000) refilled at RATE a second (0.01 to 10000), or `off`
    /// (the SDK's retries absorb throttling) [default: 100/20, EC2's own
    /// limit for Describe calls].
    #[arg(long, value_name = "BURST/RATE|off")]
    pub ec2_pacing: Option<String>,
    /// Which owned snapshots get their createVolumePermission read (one call
    /// each): all, ami-backing or none [default: all]. The others are
    /// `unknown` for SNAP-SHARED-OUTSIDE-ORG.
    #[arg(long, value_name = "WHICH")]
    pub snapshot_permissions: Option<String>,
    /// Image usage reports (which accounts use each own AMI), never waited
    /// for: reuse reads one made earlier, at most
    /// `image_usage_report_max_age_days` (7) old; create also asks EC2 for
    /// one for each shared AMI without one (a write: needs
    /// deploy/iam-usage-reports-create.json); off reads none [default: reuse].
    #[arg(long, value_name = "reuse|create|off")]
    pub image_usage_reports: Option<String>,
    /// Print calls, retries, throttles and wall time after the scan.
    #[arg(long)]
    pub stats: bool,
}

impl ScanFlags {
    /// What the flags ask, as a `[scan]` section (absent where not given).
    pub fn section(&self) -> ScanSection {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        ScanSection {
            org: self.org.then_some(true),
            ou: self.ou.clone(),
            accounts: list(&self.accounts),
            exclude_accounts: list(&self.exclude_accounts),
            regions: self.regions.clone().map(RegionsSetting::Word),
            role_name: self.role_name.clone(),
            role_arn_template: self.role_arn_template.clone(),
            external_id: self.external_id.clone(),
            role_session_name: self.role_session_name.clone(),
            profile: self.aws.profile.clone(),
            region: self.aws.region.clone(),
            endpoint_url: self.aws.endpoint_url.clone(),
            concurrency: self.concurrency,
            max_attempts: self.max_attempts,
            ec2_pacing: self.ec2_pacing.clone(),
            snapshot_permissions: self.snapshot_permissions.clone(),
            image_usage_reports: self.image_usage_reports.clone(),
            image_usage_report_max_age_days: None,
            ami_parameter_paths: None,
        }
    }
}

#[derive(Args)]
pub struct AuditArgs {
    /// Inventory directory (manifest.json plus one file per table).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "live",
        conflicts_with = "live",
        value_parser = local
    )]
    pub inventory: Option<PathBuf>,
    /// Scan AWS now (read-only) instead of reading an inventory; takes the scan flags.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub scan: ScanFlags,
    /// Where to write the audit: a directory (new, empty, or an earlier
    /// audit, replaced whole only once the new one is complete) or
    /// s3://bucket/prefix/ ({date} and {time} are filled in; the manifest
    /// is uploaded last).
    #[arg(long, value_name = "DIR|S3_URL", value_parser = location)]
    pub out: Location,
    /// With --out s3://: also keep the audit in this directory [default: a
    /// temporary one, removed once uploaded; kept if the upload fails].
    #[arg(long, value_name = "DIR", value_parser = local)]
    pub local_copy: Option<PathBuf>,
    /// With --out s3:// on a bucket with Object Lock: retain every object this many days.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retain_days: Option<u32>,
    /// Object Lock mode for --retain-days (compliance: nobody can shorten it).
    #[arg(long, default_value = "governance", requires = "retain_days", value_parser = words(&RetainMode::NAMES, RetainMode::parse))]
    pub retain_mode: RetainMode,
    /// Import the findings into AWS Security Hub once written
    /// (BatchImportFindings, then BatchUpdateFindings for their workflow).
    #[arg(long)]
    pub security_hub: bool,
    /// With --security-hub: import each account's findings into that
    /// account's own hub, through this role in it.
    #[arg(long, value_name = "ROLE_NAME", requires = "security_hub")]
    pub security_hub_role: Option<String>,
    /// Sign manifest.json with this KMS key (ECC_NIST_P256, SIGN_VERIFY;
    /// id, ARN or alias): kms:Sign writes manifest.json.sig beside it.
    #[arg(long, value_name = "KMS_KEY")]
    pub sign_with_kms: Option<String>,
    /// Policy directory (repeatable); default: the rule pack built into amiaudit.
    #[arg(long = "policies", value_name = "DIR", value_parser = local)]
    pub policies: Vec<PathBuf>,
    /// Override a rule parameter: RULE.KEY=VALUE (lists comma-separated). Repeatable.
    #[arg(long = "param", value_name = "RULE.KEY=VALUE")]
    pub params: Vec<String>,
    /// Only evaluate the rules mapped to this framework.
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,
    /// Exit 1 when a failing finding at or above this severity exists [default: none].
    #[arg(long, value_parser = words(&FailOn::NAMES, FailOn::parse))]
    pub fail_on: Option<FailOn>,
    /// Waiver file (YAML): accepted risks with reason, approver and expiry.
    #[arg(long, value_name = "FILE", value_parser = local)]
    pub waivers: Option<PathBuf>,
    /// Config file [default: ./amiaudit.toml when it exists].
    #[arg(long, value_name = "FILE", value_parser = local)]
    pub config: Option<PathBuf>,
    /// An earlier audit, a directory or s3://bucket/prefix/ (verified
    /// first): report new, resolved and persisting failures.
    #[arg(long, value_name = "OLD_OUT", value_parser = location)]
    pub baseline: Option<Location>,
    /// The newest complete audit below s3://bucket/prefix/ (other than
    /// --out) is the baseline.
    #[arg(long, value_name = "S3_URL", value_parser = location, conflicts_with = "baseline")]
    pub baseline_latest: Option<Location>,
    /// Use a baseline that does not verify (with a warning).
    #[arg(long)]
    pub allow_unverified_baseline: bool,
    /// Also write OUT.tar.gz (reproducible) beside the output directory.
    #[arg(long)]
    pub bundle: bool,
    /// Exit 3 when some account-region in scope was not (fully) scanned.
    #[arg(long)]
    pub fail_on_incomplete: bool,
    /// Output formats to write (repeatable or comma-separated), or `all`
    /// [default: html,csv,json,junit,markdown; ocsf and asff when asked,
    /// asff also with --security-hub].
    #[arg(long = "format", value_delimiter = ',', value_parser = words(&FormatWord::NAMES, FormatWord::parse))]
    pub formats: Vec<FormatWord>,
    /// Directory of report templates overriding the built-in ones file by file.
    #[arg(long, value_name = "DIR", value_parser = local)]
    pub templates: Option<PathBuf>,
    /// Gzip the large machine files: findings.csv, findings-<framework>.csv,
    /// findings.json, OCSF and ASFF are written as <name>.gz (which verify,
    /// diff, --baseline and export read as they are).
    #[arg(long, overrides_with = "no_compress")]
    pub compress: bool,
    /// Write every file plain, whatever `[audit] compress` says.
    #[arg(long, overrides_with = "compress")]
    pub no_compress: bool,
}

impl AuditArgs {
    /// The `[audit]` settings the flags give.
    pub fn section(&self) -> AuditSection {
        AuditSection {
            policies: self.policies.clone(),
            waivers: self.waivers.clone(),
            fail_on: self.fail_on,
            formats: (!self.formats.is_empty()).then(|| FormatWord::formats(&self.formats)),
            framework: self.framework.clone(),
            templates: self.templates.clone(),
            compress: match (self.compress, self.no_compress) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        }
    }
}

#[derive(Args)]
pub struct SynthArgs {
    #[arg(long, default_value_t = 12)]
    pub accounts: usize,
    #[arg(long, default_value_t = 4)]
    pub regions: usize,
    #[arg(long = "images-per-region", default_value_t = 7)]
    pub images_per_region: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The inventory's collection time ("now" for every rule).
    #[arg(long = "collected-at", default_value = "2026-11-20T00:00:00Z", value_parser = parse_time)]
    pub collected_at: chrono::DateTime<chrono::Utc>,
    /// Table file format.
    #[arg(long, default_value = "parquet", value_parser = words(&TableFormat::NAMES, TableFormat::parse))]
    pub format: TableFormat,
    #[arg(long, value_name = "DIR", value_parser = local)]
    pub out: PathBuf,
}

/// `--collected-at`: RFC 3339 or a date.
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::from_str(text)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("`{text}` is not a date (use 2026-11-01 or 2026-11-01T00:00:00Z)"))
}
