//! Settings: what the user asked for (flags over `amiaudit.toml` over the
//! defaults), checked once into what a command runs with. Like ripgrep's
//! low and high arguments: [`ScanSection`] and [`AuditSection`] hold what
//! was typed, [`scan_options`] and [`AuditPlan::resolve`] turn them into
//! checked, loaded settings (a policy pack, waivers, a verified baseline),
//! so the commands never look at a flag or the config file again.

use std::path::{Path, PathBuf};

use crate::aws::{Connection, Pacing};
use crate::collect::{ScanOptions, SnapshotPermissions, UsageReports};
use crate::config::{AuditSection, Config, FailOn, RegionsSetting, ScanSection};
use crate::deliver::Location;
use crate::deliver::s3::{self, RetainMode, S3Location};
use crate::discover::{AccountSelection, RegionSelection};
use crate::error::{Error, Result};
use crate::evidence::Storage;
use crate::policy::{self, ParamOverrides, PolicyPack};
use crate::render::OutputFormat;
use crate::waivers::{self, Waivers};

/// Where rules come from: given directories, or the pack built into the binary.
pub fn load_pack(dirs: &[PathBuf]) -> Result<PolicyPack> {
    if dirs.is_empty() {
        policy::load_builtin()
    } else {
        policy::load_dirs(dirs)
    }
}

/// Turns the scan settings (flags over `[scan]`) into scan options,
/// checking every value: account ids, region codes, the role template.
pub fn scan_options(asked: &ScanSection, config_name: &str) -> Result<ScanOptions> {
    let at = |key: &str| format!("{config_name} [scan] {key} (or its flag)");
    let mut options = ScanOptions {
        accounts: account_selection(asked)?,
        exclude_accounts: asked.exclude_accounts.clone().unwrap_or_default(),
        regions: region_selection(asked, &at)?,
        ..ScanOptions::default()
    };
    if let Some(name) = &asked.role_name {
        options.role.role_name = name.clone();
    }
    options.role.role_arn_template = asked.role_arn_template.clone();
    if let Some(template) = &options.role.role_arn_template
        && !(template.starts_with("arn:") && template.contains("{account_id}"))
    {
        return Err(Error::input(format!(
            "scan: role ARN template `{}` must be an ARN containing {{account_id}}",
            template.escape_debug()
        )));
    }
    options.role.external_id = asked.external_id.clone();
    if let Some(name) = &asked.role_session_name {
        options.role.session_name = name.clone();
    }
    options.connection.profile = asked.profile.clone();
    options.connection.region = asked.region.clone();
    options.connection.endpoint_url = asked.endpoint_url.clone();
    if let Some(n) = asked.concurrency {
        if n == 0 {
            return Err(Error::input("scan: --concurrency must be at least 1"));
        }
        options.concurrency = n;
    }
    if let Some(n) = asked.max_attempts {
        if n == 0 {
            return Err(Error::input("scan: --max-attempts must be at least 1"));
        }
        options.connection.max_attempts = n;
    }
    if let Some(text) = &asked.ec2_pacing {
        options.connection.pacing = Pacing::parse(text).ok_or_else(|| {
            Error::input(format!(
                "scan: EC2 pacing `{}` is not BURST/RATE (1 to 10000 calls, 0.01 to 10000 calls a second; e.g. 100/20) or off",
                text.escape_debug()
            ))
        })?;
    }
    if let Some(which) = &asked.snapshot_permissions {
        options.snapshot_permissions = SnapshotPermissions::parse(which).ok_or_else(|| {
            Error::input(format!(
                "scan: snapshot permissions `{}` is not one of all, ami-backing, none",
                which.escape_debug()
            ))
        })?;
    }
    if let Some(mode) = &asked.image_usage_reports {
        options.usage_reports.mode = UsageReports::parse(mode).ok_or_else(|| {
            Error::input(format!(
                "scan: image usage reports `{}` is not one of reuse, create, off",
                mode.escape_debug()
            ))
        })?;
    }
    if let Some(days) = asked.image_usage_report_max_age_days {
        // A report expires "30 days after the report was created": one
        // taken at 30 days could expire before its entries are read.
        if !(1..=29).contains(&days) {
            return Err(Error::input(format!(
                "scan: image_usage_report_max_age_days is {days}; give 1 to 29 (a report expires after 30 days)"
            )));
        }
        options.usage_reports.max_age_days = days;
    }
    if let Some(paths) = &asked.ami_parameter_paths {
        for path in paths {
            if !path.starts_with('/') || path.chars().any(char::is_control) {
                return Err(Error::input(format!(
                    "scan: ami_parameter_paths entry `{}` is not an SSM parameter path (it starts with `/`, e.g. \"/golden/\")",
                    path.escape_debug()
                )));
            }
        }
        options.ami_parameter_paths = paths.clone();
    }
    options.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    Ok(options)
}

/// Which accounts the scan reads: the organization (or an OU of it), a
/// list, or the caller's own; account ids checked (excluded ones too).
fn account_selection(asked: &ScanSection) -> Result<AccountSelection> {
    let ou = asked.ou.clone();
    let accounts = asked.accounts.clone().unwrap_or_default();
    let org = asked.org.unwrap_or(false) || ou.is_some();
    if org && !accounts.is_empty() {
        return Err(Error::input(
            "scan: give either --org/--ou or --accounts, not both",
        ));
    }
    let exclude = asked.exclude_accounts.clone().unwrap_or_default();
    for id in accounts.iter().chain(&exclude) {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::input(format!(
                "scan: `{}` is not an AWS account id (12 digits)",
                id.escape_debug()
            )));
        }
    }
    if let Some(ou) = &ou
        && !(ou.starts_with("ou-") || ou.starts_with("r-"))
    {
        return Err(Error::input(format!(
            "scan: --ou `{}` is not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)",
            ou.escape_debug()
        )));
    }
    Ok(if org {
        AccountSelection::Organization { ou }
    } else if accounts.is_empty() {
        AccountSelection::Caller
    } else {
        AccountSelection::List(accounts)
    })
}

/// Which regions the scan reads: all enabled, or a checked list.
fn region_selection(asked: &ScanSection, at: &dyn Fn(&str) -> String) -> Result<RegionSelection> {
    let regions = match &asked.regions {
        None => RegionSelection::All,
        Some(RegionsSetting::Word(w)) if w == "all" => RegionSelection::All,
        Some(RegionsSetting::Word(w)) => {
            RegionSelection::List(w.split(',').map(|r| r.trim().to_string()).collect())
        }
        Some(RegionsSetting::List(list)) => RegionSelection::List(list.clone()),
    };
    if let RegionSelection::List(list) = &regions {
        if list.is_empty() {
            return Err(Error::input(format!(
                "{}: no region given; use \"all\" or a list",
                at("regions")
            )));
        }
        for region in list {
            if !is_region_code(region) {
                return Err(Error::input(format!(
                    "scan: `{}` is not a region code (e.g. eu-west-1); use --regions all or a comma-separated list",
                    region.escape_debug()
                )));
            }
        }
    }
    Ok(regions)
}

fn is_region_code(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    match parts.as_slice() {
        [country, middle @ .., number] if !middle.is_empty() => {
            country.len() == 2
                && lower(country)
                && middle.iter().all(lower)
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// Where an audit's inventory comes from.
#[derive(Debug)]
pub enum Source {
    /// A saved inventory directory.
    Directory(PathBuf),
    /// A live scan, run first.
    Scan(Box<ScanOptions>),
}

/// What the audit was asked, besides the `[audit]` settings.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub inventory: Option<PathBuf>,
    pub live: bool,
    pub scan: ScanSection,
    /// A local directory or `s3://bucket/prefix/`.
    pub out: Location,
    /// Where an audit bound for S3 is written first (kept); default: a
    /// temporary directory, removed once the upload succeeded.
    pub local_copy: Option<PathBuf>,
    /// `--retain-days N` and its mode, for `--out s3://` with Object Lock.
    pub retain: Option<(u32, RetainMode)>,
    pub params: Vec<String>,
    pub baseline: Option<Location>,
    /// `--baseline-latest s3://bucket/prefix/`: the newest audit below it.
    pub baseline_latest: Option<Location>,
    /// Use a baseline that `verify` rejects (with a warning).
    pub allow_unverified_baseline: bool,
    pub bundle: bool,
    pub fail_on_incomplete: bool,
    pub stats: bool,
    /// Import the findings into Security Hub once written.
    pub security_hub: bool,
    /// With `security_hub`: import each account's findings into its own
    /// hub through this role in it.
    pub security_hub_role: Option<String>,
    /// `--sign-with-kms KEY`: sign the manifest with this KMS key.
    pub sign_with_kms: Option<String>,
    /// How to reach AWS for delivery and S3 baselines, when not from the
    /// `[scan]` connection settings (embedding, tests).
    pub aws: Option<Connection>,
}

/// Where a finished audit goes besides its local directory.
#[derive(Debug)]
pub struct Delivery {
    /// The prefix, placeholders filled in.
    pub location: S3Location,
    /// The retention its objects get, as the manifest and reports say.
    pub storage: Storage,
    pub connection: Connection,
    /// The temporary directory the audit is written into when no
    /// `--local-copy` was named (removed after a successful upload).
    pub temp: Option<tempfile::TempDir>,
}

/// An audit, resolved: everything loaded and checked before any work.
#[derive(Debug)]
pub struct AuditPlan {
    pub source: Source,
    /// The local directory the audit is written into.
    pub out: PathBuf,
    pub delivery: Option<Delivery>,
    /// Import into Security Hub as this connection's caller (or, with a
    /// role name, through that role in each account).
    pub security_hub: Option<(Connection, Option<String>)>,
    /// Sign the manifest with this KMS key (id, ARN or alias), reached
    /// through this connection.
    pub sign_with_kms: Option<(Connection, String)>,
    pub pack: PolicyPack,
    pub overrides: ParamOverrides,
    pub framework: Option<String>,
    pub fail_on: FailOn,
    pub formats: Vec<OutputFormat>,
    /// Gzip the large machine files (see `render::compressible`).
    pub compress: bool,
    pub templates: Option<PathBuf>,
    pub waivers: Option<Waivers>,
    /// The baseline audit, its findings, and a warning when it did not verify.
    pub baseline: Option<crate::findings::Document<'static>>,
    /// The audit `--baseline-latest` picked, said on the terminal.
    pub baseline_chosen: Option<String>,
    pub warnings: Vec<String>,
    pub bundle: bool,
    pub fail_on_incomplete: bool,
    pub stats: bool,
}

impl AuditPlan {
    /// Merges the flags (`asked`) over `[audit]` and checks every value.
    pub fn resolve(
        request: AuditRequest,
        asked: AuditSection,
        config: &Config,
    ) -> Result<AuditPlan> {
        let name = config.name();
        let settings = asked.or(&config.audit);
        let scan = request.scan.clone().or(&config.scan);
        let connection = request.aws.clone().unwrap_or_else(|| connection(&scan));
        let source = audit_source(&request, &scan, &name)?;
        let mut pack = load_pack(&settings.policies)?;
        if let Some(framework) = &settings.framework {
            policy::filter_framework(&mut pack, framework)?;
        }
        let overrides =
            policy::parse_param_flags(&pack, &request.params, config.param_overrides(&pack)?)?;
        let mut formats = settings
            .formats
            .unwrap_or_else(|| OutputFormat::DEFAULT.to_vec());
        if request.security_hub && !formats.contains(&OutputFormat::Asff) {
            // What is imported is the evidence's findings.asff.json.
            formats.push(OutputFormat::Asff);
        }
        if formats.is_empty() {
            return Err(Error::input(format!(
                "{name}: [audit] formats is empty: name at least one of {}",
                OutputFormat::NAMES.join(", ")
            )));
        }
        if let Some(dir) = &settings.templates
            && !dir.is_dir()
        {
            return Err(Error::input(format!(
                "{}: templates directory not found ([audit] templates or --templates)",
                dir.display()
            )));
        }
        let waivers = settings.waivers.as_deref().map(waivers::load).transpose()?;
        let mut warnings = Vec::new();
        let (out, delivery) = destination(&request, &connection)?;
        let (baseline, baseline_chosen) =
            choose_baseline(&request, &connection, delivery.as_ref(), &mut warnings)?;
        if let Source::Directory(inventory) = &source {
            let flag = match request.local_copy {
                Some(_) => "--local-copy",
                None => "--out",
            };
            check_out_apart_from_inventory(&out, flag, inventory)?;
        }
        Ok(AuditPlan {
            source,
            out,
            delivery,
            sign_with_kms: request
                .sign_with_kms
                .clone()
                .map(|key| (connection.clone(), key)),
            security_hub: request
                .security_hub
                .then(|| (connection, request.security_hub_role.clone())),
            pack,
            overrides,
            framework: settings.framework,
            fail_on: settings.fail_on.unwrap_or(FailOn::None),
            formats,
            compress: settings.compress.unwrap_or(false),
            templates: settings.templates,
            waivers,
            baseline,
            baseline_chosen,
            warnings,
            bundle: request.bundle,
            fail_on_incomplete: request.fail_on_incomplete,
            stats: request.stats,
        })
    }
}

/// Where an audit's inventory comes from: a directory, or a live scan.
fn audit_source(request: &AuditRequest, scan: &ScanSection, name: &str) -> Result<Source> {
    Ok(match (&request.inventory, request.live) {
        (Some(dir), false) => {
            if request.scan.scope().any() {
                return Err(Error::input(
                    "audit: scan flags (--org, --accounts, --regions, ...) need --live",
                ));
            }
            Source::Directory(dir.clone())
        }
        (None, true) => Source::Scan(Box::new(scan_options(scan, name)?)),
        _ => {
            return Err(Error::input(
                "audit: give --inventory DIR or --live (not both)",
            ));
        }
    })
}

/// Where an audit is written: the local directory, or (for s3://) a local
/// copy or temporary directory and the delivery to the prefix, whose
/// retention is checked against the bucket now.
fn destination(
    request: &AuditRequest,
    connection: &Connection,
) -> Result<(PathBuf, Option<Delivery>)> {
    Ok(match &request.out {
        Location::Local(dir) => {
            if request.retain.is_some() || request.local_copy.is_some() {
                return Err(Error::input(
                    "audit: --retain-days, --retain-mode and --local-copy are for --out s3://bucket/prefix/",
                ));
            }
            crate::output::refuse_nested(dir, &crate::evidence::OUTPUT, &OUTPUT_KINDS)?;
            (dir.clone(), None)
        }
        Location::S3(asked) => {
            let now = chrono::Utc::now();
            let location = asked.expand(now)?;
            if location.prefix.is_empty() {
                return Err(Error::input(format!(
                    "--out {}: name a prefix for the audit, e.g. s3://{}/audits/{{date}}/{{time}}/",
                    location.url(),
                    location.bucket
                )));
            }
            let storage = crate::deliver::block_on(async {
                let store = s3::Store::connect(connection, location.clone()).await?;
                store.ensure_unused().await?;
                store.plan_storage(request.retain, now).await
            })??;
            let (out, temp) = match &request.local_copy {
                Some(dir) => {
                    crate::output::refuse_nested(dir, &crate::evidence::OUTPUT, &OUTPUT_KINDS)?;
                    (dir.clone(), None)
                }
                None => {
                    let temp = tempfile::Builder::new()
                        .prefix("amiaudit-out-")
                        .tempdir()
                        .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
                    (temp.path().join(location.name()), Some(temp))
                }
            };
            (
                out,
                Some(Delivery {
                    location,
                    storage,
                    connection: connection.clone(),
                    temp,
                }),
            )
        }
    })
}

/// The baseline a drift report compares with: named, or the newest usable
/// audit below an S3 prefix (and which one was chosen).
fn choose_baseline(
    request: &AuditRequest,
    connection: &Connection,
    delivery: Option<&Delivery>,
    warnings: &mut Vec<String>,
) -> Result<(Option<crate::findings::Document<'static>>, Option<String>)> {
    let mut baseline_chosen = None;
    let allow_unverified = request.allow_unverified_baseline;
    let baseline = match (&request.baseline, &request.baseline_latest) {
        (Some(_), Some(_)) => {
            return Err(Error::input(
                "audit: give --baseline or --baseline-latest, not both",
            ));
        }
        (Some(location), None) => Some(read_baseline(
            location,
            connection,
            allow_unverified,
            warnings,
        )?),
        (None, Some(Location::S3(parent))) => {
            let exclude = delivery.map(|d| &d.location);
            match latest_usable_baseline(parent, exclude, connection, allow_unverified, warnings)? {
                Some((location, document)) => {
                    baseline_chosen = Some(location.url());
                    Some(document)
                }
                None => None,
            }
        }
        (None, Some(Location::Local(dir))) => {
            return Err(Error::input(format!(
                "--baseline-latest `{}`: give an S3 prefix (s3://bucket/prefix/); for a local audit use --baseline DIR",
                dir.display()
            )));
        }
        (None, None) => None,
    };
    Ok((baseline, baseline_chosen))
}

/// The AWS connection for delivery and for reading audits from S3: the
/// connection settings of `[scan]` (profile, region, endpoint).
pub fn connection(scan: &ScanSection) -> Connection {
    let mut connection = Connection::new();
    connection.profile = scan.profile.clone();
    connection.region = scan.region.clone();
    connection.endpoint_url = scan.endpoint_url.clone();
    connection
}

/// Audits below a `--baseline-latest` prefix tried, newest first, before
/// giving up: a damaged newest audit (which Object Lock may keep for years)
/// must not stop every scheduled run, nor may the search read the whole
/// history.
const BASELINE_CANDIDATES: usize = 3;

/// The newest audit below `parent` (but `exclude`) that can be a baseline,
/// passing over (with a warning) one that does not verify or cannot be
/// read. `None`, with a warning, when there is no audit below it at all
/// (a schedule's first run); an error when there are some and none of the
/// newest can be used.
fn latest_usable_baseline(
    parent: &S3Location,
    exclude: Option<&S3Location>,
    connection: &Connection,
    allow_unverified: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<(S3Location, crate::findings::Document<'static>)>> {
    let candidates = s3::audits_newest_first(connection, parent, exclude)?;
    if candidates.is_empty() {
        warnings.push(format!(
            "{}: no earlier audit (a prefix with manifest.json and inventory/manifest.json) below it; this audit has no baseline",
            parent.url()
        ));
        return Ok(None);
    }
    let mut passed_over = Vec::new();
    for candidate in candidates.into_iter().take(BASELINE_CANDIDATES) {
        let location = Location::S3(candidate.clone());
        match read_baseline(&location, connection, allow_unverified, warnings) {
            Ok(document) => {
                warnings.extend(
                    passed_over
                        .iter()
                        .map(|why| format!("passed over as the baseline: {why}")),
                );
                return Ok(Some((candidate, document)));
            }
            Err(e) => passed_over.push(e.to_string()),
        }
    }
    Err(Error::input(format!(
        "{}: none of the {} newest audits below it can be a baseline: {}",
        parent.url(),
        passed_over.len(),
        passed_over.join("; ")
    )))
}

/// An earlier audit, local or in S3, verified (see [`verified_baseline`]).
pub fn read_baseline(
    location: &Location,
    connection: &Connection,
    allow_unverified: bool,
    warnings: &mut Vec<String>,
) -> Result<crate::findings::Document<'static>> {
    match location {
        Location::Local(dir) => verified_baseline(dir, allow_unverified, warnings),
        Location::S3(s3_location) => {
            let download = s3::fetch(connection, s3_location)?;
            download.require_plain_keys(s3_location)?;
            let shown = s3_location.url();
            verified_baseline_named(&download.dir, &shown, allow_unverified, warnings)
                .map_err(|e| e.shown_as(&download.dir, &shown))
        }
    }
}

/// An earlier audit to compare with: it must verify, or the user must say
/// to use it anyway (and is warned).
pub fn verified_baseline(
    dir: &Path,
    allow_unverified: bool,
    warnings: &mut Vec<String>,
) -> Result<crate::findings::Document<'static>> {
    verified_baseline_named(dir, &dir.display().to_string(), allow_unverified, warnings)
}

fn verified_baseline_named(
    dir: &Path,
    shown: &str,
    allow_unverified: bool,
    warnings: &mut Vec<String>,
) -> Result<crate::findings::Document<'static>> {
    let verification = crate::evidence::verify(dir)?;
    if !verification.intact() {
        let why = verification.problems();
        if !allow_unverified {
            return Err(Error::input(format!(
                "{shown}: the baseline does not verify ({why}); drift against it would be drift against edited data (--allow-unverified-baseline to use it anyway)"
            )));
        }
        warnings.push(format!(
            "{shown}: the baseline does not verify ({why}); drift is reported against it anyway"
        ));
    }
    crate::findings::read(dir)
}

/// Every kind of directory amiaudit writes: no output may sit inside one.
pub const OUTPUT_KINDS: [&crate::output::Kind; 3] = [
    &crate::evidence::OUTPUT,
    &crate::inventory::OUTPUT,
    &crate::diff::OUTPUT,
];

/// `--out` (or `flag`) may not be the inventory being audited, hold it, or
/// sit inside it.
pub fn check_out_apart_from_inventory(out: &Path, flag: &str, inventory: &Path) -> Result<()> {
    let (Ok(inventory), Ok(out)) = (
        inventory.canonicalize(),
        crate::output::absolute(out, false),
    ) else {
        // A missing inventory is reported when it is loaded.
        return Ok(());
    };
    if inventory.starts_with(&out) || out.starts_with(&inventory) {
        return Err(Error::input(format!(
            "{flag} `{}` overlaps the inventory being audited (`{}`); write the audit somewhere else",
            out.display(),
            inventory.display()
        )));
    }
    Ok(())
}
