//! Collect: visit every account-region in scope and build an inventory.
//!
//! - `scheduler`: account and account-region tasks under one bound, and the
//!   shared progress an interruption keeps;
//! - `region`: the calls of one account-region, in order;
//! - one module per AWS service area (`ec2_images`, `ec2_snapshots`,
//!   `ec2_settings`, `ec2_usage`, `inspector`, `kms`): the calls and the
//!   mapping of SDK types to typed inventory rows;
//! - `harvest`: what an account-region yields; `assemble`: harvests into
//!   the inventory.
//!
//! **Invariants.** Only Describe/List/Get/BatchGet calls and sts:AssumeRole
//! (the [`CallRecorder`] sees every one; a test holds them against
//! `deploy/iam-policy.json`). A failure never aborts the scan and never
//! reads as "nothing there": it becomes a `scan_errors` row and the
//! account-region's `scan_status` says `partial` or `failed`, so rules
//! answer `unknown`. Ctrl-C keeps what was collected and marks the rest
//! `failed` and the inventory incomplete. Nothing here panics on data.

mod assemble;
mod calls;
mod ec2_ancestry;
mod ec2_images;
mod ec2_references;
mod ec2_settings;
mod ec2_snapshots;
mod ec2_usage;
mod ec2_usage_reports;
mod fleet;
mod harvest;
mod imagebuilder;
mod inspector;
mod kms;
mod rbin;
mod region;
mod scheduler;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;

use crate::aws::{self, CallCounts, CallError, CallRecorder, Connection};
use crate::discover::{self, AccountSelection, RegionInfo, RegionSelection, RoleSettings};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
pub use ec2_snapshots::SnapshotPermissions;
pub use ec2_usage_reports::{UsageReportSettings, UsageReports};
use harvest::Harvest;
use scheduler::{Plan, Progress, lock};

/// Everything a scan needs to know.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub connection: Connection,
    pub accounts: AccountSelection,
    pub exclude_accounts: Vec<String>,
    pub regions: RegionSelection,
    pub role: RoleSettings,
    /// Account-regions scanned at once, across the organization.
    pub concurrency: usize,
    /// Per-resource calls at once inside one account-region.
    pub image_concurrency: usize,
    /// Which owned snapshots get a permission read.
    pub snapshot_permissions: SnapshotPermissions,
    /// Whether image usage reports are read, and how old one may be.
    pub usage_reports: UsageReportSettings,
    /// SSM parameter paths read for AMI ids, besides every parameter of
    /// data type `aws:ec2:image`.
    pub ami_parameter_paths: Vec<String>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Ends the scan like Ctrl-C when notified (for embedding and tests).
    pub stop: Option<Arc<tokio::sync::Notify>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            connection: Connection::new(),
            accounts: AccountSelection::default(),
            exclude_accounts: Vec::new(),
            regions: RegionSelection::default(),
            role: RoleSettings::default(),
            concurrency: 256,
            image_concurrency: 8,
            snapshot_permissions: SnapshotPermissions::default(),
            usage_reports: UsageReportSettings::default(),
            ami_parameter_paths: DEFAULT_AMI_PARAMETER_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            progress: false,
            stop: None,
        }
    }
}

/// Where stacks conventionally keep the AMI id they launch.
pub const DEFAULT_AMI_PARAMETER_PATHS: [&str; 2] = ["/golden/", "/ami/"];

/// The scan settings that limited what was read (the manifest's
/// `settings`): only those that differ from the default.
fn limiting_settings(options: &ScanOptions) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    if options.snapshot_permissions != SnapshotPermissions::All {
        settings.insert(
            "snapshot_permissions".to_string(),
            options.snapshot_permissions.as_str().to_string(),
        );
    }
    if options.usage_reports != UsageReportSettings::default() {
        settings.insert(
            "image_usage_reports".to_string(),
            match options.usage_reports.mode {
                UsageReports::Off => "off".to_string(),
                mode => format!(
                    "{}, at most {} days old",
                    mode.as_str(),
                    options.usage_reports.max_age_days
                ),
            },
        );
    }
    settings
}

/// What a scan produced, plus its statistics.
#[derive(Debug)]
pub struct ScanOutcome {
    pub inventory: Inventory,
    pub stats: ScanStats,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanStats {
    pub wall_seconds: f64,
    pub accounts: usize,
    pub account_regions: usize,
    pub images: usize,
    pub snapshots: usize,
    pub errors: usize,
    pub interrupted: bool,
    /// `service:Operation` -> calls, attempts, throttled responses.
    pub operations: BTreeMap<String, CallCounts>,
}

impl ScanStats {
    pub fn calls(&self) -> u64 {
        self.operations.values().map(|c| c.calls).sum()
    }
    pub fn retries(&self) -> u64 {
        self.operations
            .values()
            .map(|c| c.attempts.saturating_sub(c.calls))
            .sum()
    }
    pub fn throttled(&self) -> u64 {
        self.operations.values().map(|c| c.throttled).sum()
    }
}

/// Runs a scan on its own tokio runtime (the CLI's entry point).
pub fn scan_blocking(options: &ScanOptions) -> Result<ScanOutcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(scan(options))
}

/// A scan error for every account-region planned that did not finish
/// (and every region of an account whose regions were not known yet).
fn record_unfinished(
    state: &mut scheduler::Progress,
    interrupted: bool,
    discovery: &discover::Discovery,
    options: &ScanOptions,
    home_region: &str,
) {
    let (service, operation, error) = if interrupted {
        (
            "ec2",
            "DescribeImages",
            CallError {
                code: "Interrupted".to_string(),
                message: "the scan was interrupted before this account-region finished".to_string(),
            },
        )
    } else {
        (
            "amiaudit",
            "ScanAccountRegion",
            CallError {
                code: "InternalError".to_string(),
                message: "the scan of this account-region ended without a result".to_string(),
            },
        )
    };
    for (account, region) in std::mem::take(&mut state.pending) {
        let mut harvest = Harvest::new(
            &account,
            &RegionInfo {
                region,
                opt_in_status: None,
            },
        );
        harvest.fail(service, operation, None, &error);
        state.done.push(harvest);
    }
    // Accounts whose regions were not known yet: their gap must show too.
    let seen: BTreeSet<String> = state.done.iter().map(|h| h.account_id.clone()).collect();
    for account in discovery
        .accounts
        .iter()
        .filter(|a| !seen.contains(&a.account_id))
    {
        for region in discover::fallback_regions(&options.regions, home_region) {
            let mut harvest = Harvest::new(&account.account_id, &region);
            harvest.fail(service, operation, None, &error);
            state.done.push(harvest);
        }
    }
}

/// Discovers the accounts and their regions, scans them, and assembles the
/// inventory; an interrupted scan keeps what finished and says what did not.
pub async fn scan(options: &ScanOptions) -> Result<ScanOutcome> {
    let started = Instant::now();
    let started_at = Utc::now();
    let recorder = CallRecorder::default();
    let base = aws::base_config(&options.connection).await;
    let home_region = base
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| aws::DEFAULT_REGION.to_string());
    let discovery = discover::discover(
        &base,
        &recorder,
        &options.accounts,
        &options.exclude_accounts,
    )
    .await
    .map_err(|e| Error::Scan(e.to_string()))?;

    let progress = Arc::new(Mutex::new(Progress {
        bar: if options.progress {
            scheduler::progress_bar()
        } else {
            None
        },
        ..Default::default()
    }));
    let plan = Plan {
        base: base.clone(),
        recorder: recorder.clone(),
        role: options.role.clone(),
        regions: options.regions.clone(),
        home_region: home_region.clone(),
        region_settings: region::RegionSettings {
            per_resource_concurrency: options.image_concurrency,
            snapshot_permissions: options.snapshot_permissions,
            usage_reports: options.usage_reports,
            ami_parameter_paths: options.ami_parameter_paths.clone().into(),
        },
        caller_account_id: discovery.caller_account_id.clone(),
        partition: discovery.partition.clone(),
        pacing: options.connection.pacing,
    };
    let work = scheduler::run_accounts(plan, &discovery, options.concurrency, progress.clone());
    let stop = async {
        match &options.stop {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    };
    // Dropping `work` aborts the tasks still running; what they finished is kept.
    let interrupted = tokio::select! {
        _ = work => false,
        _ = tokio::signal::ctrl_c() => true,
        _ = stop => true,
    };
    let mut state = std::mem::take(&mut *lock(&progress));
    if let Some(bar) = state.bar.take() {
        bar.finish_and_clear();
    }
    // Account-regions planned that never finished: the scan was stopped,
    // or (a bug) their task ended without a harvest. Either way a gap.
    if interrupted || !state.pending.is_empty() {
        record_unfinished(&mut state, interrupted, &discovery, options, &home_region);
    }
    let settings = limiting_settings(options);
    let ended_at = Utc::now();
    let inventory = assemble::inventory(assemble::Assembly {
        discovery: &discovery,
        harvests: state.done,
        account_errors: state.account_errors,
        regions: &options.regions,
        settings,
        started_at,
        ended_at,
        complete: !interrupted,
    })?;
    let height = |t: &str| inventory.table(t).map(|df| df.height());
    let stats = ScanStats {
        wall_seconds: started.elapsed().as_secs_f64(),
        accounts: discovery.accounts.len(),
        account_regions: height("regions")?,
        images: height("images")?,
        snapshots: height("snapshots")?,
        errors: height("scan_errors")?,
        interrupted,
        operations: recorder.snapshot(),
    };
    Ok(ScanOutcome { inventory, stats })
}
