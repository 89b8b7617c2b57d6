//! Collect: visit every account-region in scope and write an inventory.
//!
//! Owns the scan: per account, credentials (its own, or AssumeRole fetched up
//! front) and its regions; per account-region, one task under a global bound
//! (`--concurrency`) that gathers images, launch permissions, snapshots and
//! their permissions, the guarding settings, instances, launch templates,
//! KMS keys and Inspector findings, with a smaller bound for the per-image
//! calls inside. Then the harvest becomes the inventory tables.
//!
//! **Invariants.** Only Describe/List/Get/BatchGet calls and sts:AssumeRole
//! (the [`CallRecorder`] sees every one; a test holds them against
//! `deploy/iam-policy.json`). A failure never aborts the scan and never reads
//! as "nothing there": it becomes a `scan_errors` row and the account-region's
//! `scan_status` says `partial` or `failed`, so rules answer `unknown`.
//! Ctrl-C keeps what was collected and marks the rest `failed` and the
//! inventory incomplete.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::result::SdkError;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use crate::aws::{
    self, AccountCredentials, CallCounts, CallError, CallRecorder, Connection, RegionClients,
};
use crate::discover::{
    self, AccountInfo, AccountSelection, Discovery, RegionInfo, RegionSelection, RoleSettings,
    ScanErrorRow,
};
use crate::error::{Error, Result};
use crate::inventory::{Inventory, Manifest, Scope, TableBuilder, Value, schema};

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
    /// Per-image calls at once inside one account-region.
    pub image_concurrency: usize,
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
            progress: false,
            stop: None,
        }
    }
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

type Row = Vec<(&'static str, Value)>;

/// What one account-region yielded.
#[derive(Debug, Default)]
struct Harvest {
    account_id: String,
    region: String,
    opt_in_status: Option<String>,
    /// `failed` until the account-region finished or was skipped.
    scan_status: &'static str,
    settings: Row,
    rows: Vec<(&'static str, Row)>,
    errors: Vec<ScanErrorRow>,
    images: usize,
    /// Calls that succeeded, to tell `partial` from `failed`.
    successes: usize,
}

impl Harvest {
    fn new(account_id: &str, region: &RegionInfo) -> Self {
        Harvest {
            account_id: account_id.to_string(),
            region: region.region.clone(),
            opt_in_status: region.opt_in_status.clone(),
            scan_status: "failed",
            ..Default::default()
        }
    }

    fn fail(&mut self, service: &str, operation: &str, resource: Option<&str>, error: &CallError) {
        self.errors.push(ScanErrorRow::new(
            &self.account_id,
            Some(&self.region),
            service,
            operation,
            resource,
            error,
        ));
    }

    fn push(&mut self, table: &'static str, mut row: Row) {
        row.push(("account_id", self.account_id.clone().into()));
        row.push(("region", self.region.clone().into()));
        self.rows.push((table, row));
    }

    /// Records a call's outcome: the value, or an error row and None.
    fn take<T>(
        &mut self,
        service: &str,
        operation: &str,
        resource: Option<&str>,
        outcome: std::result::Result<T, CallError>,
    ) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.successes += 1;
                Some(value)
            }
            Err(error) => {
                self.fail(service, operation, resource, &error);
                None
            }
        }
    }
}

/// Shared state of a running scan, so Ctrl-C can keep what is done.
#[derive(Default)]
struct Progress {
    done: Vec<Harvest>,
    /// (account, region) planned but not finished.
    pending: BTreeSet<(String, String)>,
    account_errors: Vec<ScanErrorRow>,
    bar: Option<indicatif::ProgressBar>,
    images: usize,
    errors: usize,
}

impl Progress {
    fn update_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.set_length((self.done.len() + self.pending.len()) as u64);
            bar.set_position(self.done.len() as u64);
            bar.set_message(format!("{} images, {} errors", self.images, self.errors));
        }
    }
}

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
        bar: options.progress.then(progress_bar),
        ..Default::default()
    }));
    let work = run_accounts(
        &base,
        &recorder,
        &discovery,
        options,
        &home_region,
        progress.clone(),
    );
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
    let mut state = std::mem::take(&mut *progress.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(bar) = state.bar.take() {
        bar.finish_and_clear();
    }
    if interrupted {
        let error = CallError {
            code: "Interrupted".to_string(),
            message: "the scan was interrupted before this account-region finished".to_string(),
        };
        for (account, region) in std::mem::take(&mut state.pending) {
            let mut harvest = Harvest::new(
                &account,
                &RegionInfo {
                    region,
                    opt_in_status: None,
                },
            );
            harvest.fail("ec2", "DescribeImages", None, &error);
            state.done.push(harvest);
        }
        // Accounts whose regions were not known yet: their gap must show too.
        let seen: BTreeSet<String> = state.done.iter().map(|h| h.account_id.clone()).collect();
        for account in discovery
            .accounts
            .iter()
            .filter(|a| !seen.contains(&a.account_id))
        {
            for region in discover::fallback_regions(&options.regions, &home_region) {
                let mut harvest = Harvest::new(&account.account_id, &region);
                harvest.fail("ec2", "DescribeImages", None, &error);
                state.done.push(harvest);
            }
        }
    }
    let ended_at = Utc::now();
    let inventory = build_inventory(
        &discovery,
        state,
        options,
        started_at,
        ended_at,
        !interrupted,
    );
    let stats = ScanStats {
        wall_seconds: started.elapsed().as_secs_f64(),
        accounts: discovery.accounts.len(),
        account_regions: inventory.table("regions").height(),
        images: inventory.table("images").height(),
        errors: inventory.table("scan_errors").height(),
        interrupted,
        operations: recorder.snapshot(),
    };
    Ok(ScanOutcome { inventory, stats })
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} account-regions, {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn run_accounts(
    base: &SdkConfig,
    recorder: &CallRecorder,
    discovery: &Discovery,
    options: &ScanOptions,
    home_region: &str,
    progress: Arc<Mutex<Progress>>,
) {
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for account in &discovery.accounts {
        let (base, recorder, progress, permits) = (
            base.clone(),
            recorder.clone(),
            progress.clone(),
            permits.clone(),
        );
        let (account, discovery_caller, partition) = (
            account.clone(),
            discovery.caller_account_id.clone(),
            discovery.partition.clone(),
        );
        let (role, regions, image_concurrency, home_region) = (
            options.role.clone(),
            options.regions.clone(),
            options.image_concurrency,
            home_region.to_string(),
        );
        tasks.spawn(async move {
            let setup_permit = permits.clone().acquire_owned().await.expect("never closed");
            let credentials = if account.account_id == discovery_caller {
                AccountCredentials::own(&base, &account.account_id).ok_or_else(|| CallError {
                    code: "NoCredentials".to_string(),
                    message: "no credentials provider is configured".to_string(),
                })
            } else {
                AccountCredentials::assume(
                    &base,
                    &account.account_id,
                    &role.role_arn(&account.account_id, &partition),
                    role.external_id.as_deref(),
                    &role.session_name,
                    &recorder,
                )
                .await
            };
            let credentials = match credentials {
                Ok(c) => c,
                Err(error) => {
                    // The account's regions are unknown: plan the ones asked
                    // for (or the home region) as failed, so the gap shows.
                    let mut state = progress.lock().unwrap_or_else(|p| p.into_inner());
                    state.account_errors.push(ScanErrorRow::new(
                        &account.account_id,
                        None,
                        "sts",
                        "AssumeRole",
                        None,
                        &error,
                    ));
                    for region in discover::fallback_regions(&regions, &home_region) {
                        state.done.push(Harvest::new(&account.account_id, &region));
                    }
                    state.errors += 1;
                    state.update_bar();
                    return;
                }
            };
            let home = aws::home_ec2_client(&base, &credentials, &recorder);
            let region_list = match discover::regions(&home, &regions, &home_region).await {
                Ok(list) => list,
                Err(error) => {
                    let mut state = progress.lock().unwrap_or_else(|p| p.into_inner());
                    state.account_errors.push(ScanErrorRow::new(
                        &account.account_id,
                        None,
                        "ec2",
                        "DescribeRegions",
                        None,
                        &error,
                    ));
                    state.errors += 1;
                    discover::fallback_regions(&regions, &home_region)
                }
            };
            drop(setup_permit);
            let mut region_tasks = tokio::task::JoinSet::new();
            {
                let mut state = progress.lock().unwrap_or_else(|p| p.into_inner());
                for region in &region_list {
                    if region.enabled() {
                        state
                            .pending
                            .insert((account.account_id.clone(), region.region.clone()));
                    } else {
                        let mut skipped = Harvest::new(&account.account_id, region);
                        skipped.scan_status = "not-opted-in";
                        state.done.push(skipped);
                    }
                }
                state.update_bar();
            }
            for region in region_list.into_iter().filter(RegionInfo::enabled) {
                let (progress, permits, account_id) = (
                    progress.clone(),
                    permits.clone(),
                    account.account_id.clone(),
                );
                let (base, credentials, recorder) =
                    (base.clone(), credentials.clone(), recorder.clone());
                region_tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("never closed");
                    // Built only once running: clients are not small, and
                    // thousands of account-regions may be waiting.
                    let clients =
                        RegionClients::new(&base, &credentials, &region.region, &recorder);
                    // Boxed: the account-region's future (every SDK call
                    // state inline) is tens of KB; unboxed it would be
                    // allocated for every waiting task at spawn time.
                    let harvest = Box::pin(collect_region(
                        &clients,
                        &account_id,
                        &region,
                        image_concurrency,
                    ))
                    .await;
                    let mut state = progress.lock().unwrap_or_else(|p| p.into_inner());
                    state
                        .pending
                        .remove(&(harvest.account_id.clone(), harvest.region.clone()));
                    state.images += harvest.images;
                    state.errors += harvest.errors.len();
                    state.done.push(harvest);
                    state.update_bar();
                });
            }
            while region_tasks.join_next().await.is_some() {}
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Parses an EC2 timestamp string (ISO 8601) to milliseconds.
fn parse_time(text: Option<&str>) -> Value {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(Value::Null, |t| Value::Timestamp(t.timestamp_millis()))
}

fn smithy_time(t: Option<&aws_smithy_types::DateTime>) -> Value {
    t.and_then(|t| t.to_millis().ok())
        .map_or(Value::Null, Value::Timestamp)
}

fn text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::Str(s.to_string()))
}

fn enum_text<T: AsRef<str>>(e: Option<&T>) -> Value {
    e.map_or(Value::Null, |e| Value::Str(e.as_ref().to_string()))
}

/// One account-region, start to end. Never fails: every failure is a row.
async fn collect_region(
    clients: &RegionClients,
    account_id: &str,
    region: &RegionInfo,
    image_concurrency: usize,
) -> Harvest {
    let mut harvest = Harvest::new(account_id, region);
    let ec2 = &clients.ec2;

    // Inspector findings come from instances (each names its AMI): none are
    // asked for where Inspector is off or no instance runs.
    let instances_and_inspector = async {
        let (instances, status) = tokio::join!(
            describe_instances(ec2),
            inspector_status(&clients.inspector, account_id)
        );
        let nothing_to_find = matches!(&instances, Ok(list) if list.is_empty())
            || matches!(&status, Ok(Value::Str(s)) if s == "DISABLED");
        let findings = if nothing_to_find {
            Ok(Vec::new())
        } else {
            inspector_findings(&clients.inspector).await
        };
        (instances, (status, findings))
    };
    let (images, snapshots, (instances, inspector), templates, settings) = tokio::join!(
        describe_images(ec2),
        describe_snapshots(ec2),
        instances_and_inspector,
        describe_launch_templates(ec2),
        settings(ec2),
    );

    let images = match images {
        Err(error) if error.is_opt_in_required() => {
            harvest.scan_status = "not-opted-in";
            harvest.opt_in_status = Some("not-opted-in".to_string());
            return harvest;
        }
        other => harvest.take("ec2", "DescribeImages", None, other),
    };
    let images = images.unwrap_or_default();
    harvest.images = images.len();
    let own_images: BTreeSet<String> = images
        .iter()
        .filter_map(|i| i.image_id().map(str::to_string))
        .collect();

    // Settings that guard the account-region.
    let mut settings_row: Row = Vec::new();
    for (column, operation, outcome) in settings {
        if let Some(value) = harvest.take("ec2", operation, None, outcome) {
            settings_row.push((column, value));
        }
    }
    let (inspector_status, findings) = inspector;
    if let Some(status) = harvest.take(
        "inspector2",
        "BatchGetAccountStatus",
        None,
        inspector_status,
    ) {
        settings_row.push(("inspector_ec2_status", status));
    }
    harvest.settings = settings_row;

    // Images, their devices and tags.
    let mut backing_snapshots: BTreeSet<String> = BTreeSet::new();
    let mut kms_keys: BTreeSet<String> = BTreeSet::new();
    for image in &images {
        let Some(image_id) = image.image_id() else {
            continue;
        };
        harvest.push("images", image_row(image));
        for device in image.block_device_mappings() {
            let ebs = device.ebs();
            if let Some(snapshot) = ebs.and_then(|e| e.snapshot_id()) {
                backing_snapshots.insert(snapshot.to_string());
            }
            if let Some(key) = ebs.and_then(|e| e.kms_key_id()) {
                kms_keys.insert(key.to_string());
            }
            harvest.push(
                "image_block_devices",
                vec![
                    ("image_id", image_id.into()),
                    ("device_name", text(device.device_name())),
                    ("virtual_name", text(device.virtual_name())),
                    ("is_ebs", ebs.is_some().into()),
                    ("snapshot_id", text(ebs.and_then(|e| e.snapshot_id()))),
                    (
                        "volume_size",
                        ebs.and_then(|e| e.volume_size()).map(i64::from).into(),
                    ),
                    ("volume_type", enum_text(ebs.and_then(|e| e.volume_type()))),
                    ("encrypted", ebs.and_then(|e| e.encrypted()).into()),
                    ("kms_key_id", text(ebs.and_then(|e| e.kms_key_id()))),
                    (
                        "delete_on_termination",
                        ebs.and_then(|e| e.delete_on_termination()).into(),
                    ),
                ],
            );
        }
        for tag in image.tags() {
            if let Some(key) = tag.key() {
                harvest.push(
                    "image_tags",
                    vec![
                        ("image_id", image_id.into()),
                        ("key", key.into()),
                        ("value", text(tag.value())),
                    ],
                );
            }
        }
    }

    // Snapshots owned here.
    let snapshots = harvest.take("ec2", "DescribeSnapshots", None, snapshots);
    let own_snapshots: Option<BTreeSet<String>> = snapshots.as_ref().map(|list| {
        list.iter()
            .filter_map(|s| s.snapshot_id().map(str::to_string))
            .collect()
    });
    for snapshot in snapshots.iter().flatten() {
        let Some(id) = snapshot.snapshot_id() else {
            continue;
        };
        harvest.push(
            "snapshots",
            vec![
                ("snapshot_id", id.into()),
                ("volume_id", text(snapshot.volume_id())),
                ("volume_size", snapshot.volume_size().map(i64::from).into()),
                ("state", enum_text(snapshot.state())),
                ("encrypted", snapshot.encrypted().into()),
                ("kms_key_id", text(snapshot.kms_key_id())),
                ("description", text(snapshot.description())),
                ("start_time", smithy_time(snapshot.start_time())),
            ],
        );
    }
    // Only AMI-backing snapshots that this account owns get a permission call.
    let permission_snapshots: Vec<String> = backing_snapshots
        .into_iter()
        .filter(|s| own_snapshots.as_ref().is_none_or(|own| own.contains(s)))
        .collect();

    // Instances and launch templates: which AMIs are in use.
    let instances = harvest.take("ec2", "DescribeInstances", None, instances);
    let templates = harvest.take("ec2", "DescribeLaunchTemplateVersions", None, templates);
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    for instance in instances.iter().flatten() {
        if let Some(id) = instance.image_id() {
            in_use.insert(id.to_string());
        }
    }
    for version in templates.iter().flatten() {
        if let Some(id) = template_image(version) {
            in_use.insert(id.to_string());
        }
    }
    let foreign: Vec<String> = in_use
        .into_iter()
        .filter(|id| !own_images.contains(id))
        .collect();

    // The per-resource calls, bounded.
    let limit = image_concurrency;
    let (launch_permissions, snapshot_permissions, keys, owners) = tokio::join!(
        each_bounded(own_images.iter().cloned(), limit, |id| async move {
            ec2.describe_image_attribute()
                .image_id(id)
                .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
                .send()
                .await
                .map_err(|e| CallError::from_sdk(&e))
        }),
        each_bounded(permission_snapshots, limit, |id| async move {
            ec2.describe_snapshot_attribute()
                .snapshot_id(id)
                .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                .send()
                .await
                .map_err(|e| CallError::from_sdk(&e))
        }),
        each_bounded(kms_keys, limit, |key| async move {
            clients
                .kms
                .describe_key()
                .key_id(key)
                .send()
                .await
                .map_err(|e| CallError::from_sdk(&e))
        }),
        image_owners(ec2, &foreign),
    );

    for (image_id, outcome) in launch_permissions {
        let Some(out) = harvest.take("ec2", "DescribeImageAttribute", Some(&image_id), outcome)
        else {
            continue;
        };
        for permission in out.launch_permissions() {
            harvest.push(
                "launch_permissions",
                vec![
                    ("image_id", image_id.as_str().into()),
                    ("group", enum_text(permission.group())),
                    ("user_id", text(permission.user_id())),
                    ("organization_arn", text(permission.organization_arn())),
                    (
                        "organizational_unit_arn",
                        text(permission.organizational_unit_arn()),
                    ),
                ],
            );
        }
    }
    for (snapshot_id, outcome) in snapshot_permissions {
        let Some(out) = harvest.take(
            "ec2",
            "DescribeSnapshotAttribute",
            Some(&snapshot_id),
            outcome,
        ) else {
            continue;
        };
        for permission in out.create_volume_permissions() {
            harvest.push(
                "snapshot_permissions",
                vec![
                    ("snapshot_id", snapshot_id.as_str().into()),
                    ("group", enum_text(permission.group())),
                    ("user_id", text(permission.user_id())),
                ],
            );
        }
    }
    for (key_arn, outcome) in keys {
        let Some(out) = harvest.take("kms", "DescribeKey", Some(&key_arn), outcome) else {
            continue;
        };
        let Some(meta) = out.key_metadata() else {
            continue;
        };
        // The key may live in another account; the row belongs to its owner.
        let owner = meta.aws_account_id().unwrap_or(account_id).to_string();
        harvest.rows.push((
            "kms_keys",
            vec![
                ("account_id", owner.into()),
                ("region", harvest.region.clone().into()),
                ("key_arn", key_arn.as_str().into()),
                ("key_manager", enum_text(meta.key_manager())),
            ],
        ));
    }

    let mut owner_of: BTreeMap<String, String> = images
        .iter()
        .filter_map(|i| Some((i.image_id()?.to_string(), i.owner_id()?.to_string())))
        .collect();
    if let Some(found) = harvest.take("ec2", "DescribeImages", None, owners) {
        owner_of.extend(found);
    }
    for instance in instances.iter().flatten() {
        let Some(id) = instance.instance_id() else {
            continue;
        };
        let name = instance
            .tags()
            .iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| t.value());
        harvest.push(
            "instances",
            vec![
                ("instance_id", id.into()),
                ("name", text(name)),
                ("image_id", text(instance.image_id())),
                (
                    "image_owner_id",
                    text(
                        instance
                            .image_id()
                            .and_then(|i| owner_of.get(i))
                            .map(String::as_str),
                    ),
                ),
                ("state", enum_text(instance.state().and_then(|s| s.name()))),
                ("instance_type", enum_text(instance.instance_type())),
                ("launch_time", smithy_time(instance.launch_time())),
            ],
        );
    }
    template_rows(&mut harvest, templates.unwrap_or_default(), &owner_of);

    if let Some(findings) = harvest.take("inspector2", "ListFindings", None, findings) {
        for finding in findings {
            finding_row(&mut harvest, &finding);
        }
    }

    harvest.scan_status = if harvest.errors.is_empty() {
        "ok"
    } else if harvest.successes == 0 {
        "failed"
    } else {
        "partial"
    };
    harvest
}

fn image_row(image: &aws_sdk_ec2::types::Image) -> Row {
    vec![
        ("image_id", text(image.image_id())),
        ("name", text(image.name())),
        ("description", text(image.description())),
        ("state", enum_text(image.state())),
        ("owner_id", text(image.owner_id())),
        ("creation_date", parse_time(image.creation_date())),
        ("deprecation_time", parse_time(image.deprecation_time())),
        ("last_launched_time", parse_time(image.last_launched_time())),
        ("public", image.public().into()),
        ("architecture", enum_text(image.architecture())),
        ("platform", enum_text(image.platform())),
        ("platform_details", text(image.platform_details())),
        ("image_type", enum_text(image.image_type())),
        ("root_device_type", enum_text(image.root_device_type())),
        ("root_device_name", text(image.root_device_name())),
        (
            "virtualization_type",
            enum_text(image.virtualization_type()),
        ),
        ("ena_support", image.ena_support().into()),
        ("imds_support", enum_text(image.imds_support())),
        ("boot_mode", enum_text(image.boot_mode())),
        ("tpm_support", enum_text(image.tpm_support())),
        (
            "deregistration_protection",
            text(image.deregistration_protection()),
        ),
        ("source_image_id", text(image.source_image_id())),
        ("source_image_region", text(image.source_image_region())),
        ("image_allowed", image.image_allowed().into()),
    ]
}

/// The AMI a launch template version launches; None for `resolve:ssm:`
/// parameters, which are resolved only at launch.
fn template_image(version: &aws_sdk_ec2::types::LaunchTemplateVersion) -> Option<&str> {
    version
        .launch_template_data()
        .and_then(|d| d.image_id())
        .filter(|id| id.starts_with("ami-"))
}

fn template_rows(
    harvest: &mut Harvest,
    versions: Vec<aws_sdk_ec2::types::LaunchTemplateVersion>,
    owner_of: &BTreeMap<String, String>,
) {
    // $Default and $Latest may be one version, listed twice.
    let mut latest: BTreeMap<String, i64> = BTreeMap::new();
    for v in &versions {
        if let (Some(id), Some(n)) = (v.launch_template_id(), v.version_number()) {
            let e = latest.entry(id.to_string()).or_insert(n);
            *e = (*e).max(n);
        }
    }
    let mut seen: BTreeSet<(String, i64)> = BTreeSet::new();
    for v in &versions {
        let (Some(id), Some(n)) = (v.launch_template_id(), v.version_number()) else {
            continue;
        };
        if !seen.insert((id.to_string(), n)) {
            continue;
        }
        let image = template_image(v);
        harvest.push(
            "launch_templates",
            vec![
                ("launch_template_id", id.into()),
                ("launch_template_name", text(v.launch_template_name())),
                ("version_number", n.into()),
                ("is_default", v.default_version().into()),
                ("is_latest", (latest.get(id) == Some(&n)).into()),
                ("image_id", text(image)),
                (
                    "image_owner_id",
                    text(image.and_then(|i| owner_of.get(i)).map(String::as_str)),
                ),
            ],
        );
    }
}

fn finding_row(harvest: &mut Harvest, finding: &aws_sdk_inspector2::types::Finding) {
    let resource = finding.resources().first();
    let image_id = resource
        .and_then(|r| r.details())
        .and_then(|d| d.aws_ec2_instance())
        .and_then(|i| i.image_id());
    // Only findings tied to an AMI matter here.
    let Some(image_id) = image_id else { return };
    harvest.push(
        "inspector_findings",
        vec![
            ("finding_arn", finding.finding_arn().into()),
            ("image_id", image_id.into()),
            ("instance_id", text(resource.map(|r| r.id()))),
            ("resource_type", enum_text(resource.map(|r| r.r#type()))),
            ("severity", finding.severity().as_str().into()),
            (
                "vulnerability_id",
                text(
                    finding
                        .package_vulnerability_details()
                        .map(|p| p.vulnerability_id()),
                ),
            ),
            ("title", text(finding.title())),
            ("status", finding.status().as_str().into()),
            ("fix_available", enum_text(finding.fix_available())),
            (
                "first_observed_at",
                smithy_time(Some(finding.first_observed_at())),
            ),
            (
                "last_observed_at",
                smithy_time(Some(finding.last_observed_at())),
            ),
        ],
    );
}

type CallResult<T> = std::result::Result<T, CallError>;

/// One call per id, at most `limit` in flight, results in the order of `ids`.
async fn each_bounded<T, Call, Fut>(
    ids: impl IntoIterator<Item = String>,
    limit: usize,
    call: Call,
) -> Vec<(String, CallResult<T>)>
where
    Call: Fn(String) -> Fut,
    Fut: std::future::Future<Output = CallResult<T>>,
{
    futures_util::stream::iter(ids)
        .map(|id| {
            let pending = call(id.clone());
            async move { (id, pending.await) }
        })
        .buffered(limit.max(1))
        .collect()
        .await
}

/// Walks every page of a paginated call, keeping the items of each page.
async fn all_pages<Page, E, T>(
    mut pages: PaginationStream<
        std::result::Result<Page, SdkError<E, aws_smithy_runtime_api::http::Response>>,
    >,
    items: impl Fn(Page) -> Vec<T>,
) -> CallResult<Vec<T>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.extend(items(page.map_err(|e| CallError::from_sdk(&e))?));
    }
    Ok(out)
}

async fn describe_images(ec2: &aws_sdk_ec2::Client) -> CallResult<Vec<aws_sdk_ec2::types::Image>> {
    let pages = ec2
        .describe_images()
        .owners("self")
        .include_deprecated(true)
        .include_disabled(true)
        .max_results(1000)
        .into_paginator()
        .send();
    all_pages(pages, |p| p.images.unwrap_or_default()).await
}

async fn describe_snapshots(
    ec2: &aws_sdk_ec2::Client,
) -> CallResult<Vec<aws_sdk_ec2::types::Snapshot>> {
    let pages = ec2
        .describe_snapshots()
        .owner_ids("self")
        .max_results(1000)
        .into_paginator()
        .send();
    all_pages(pages, |p| p.snapshots.unwrap_or_default()).await
}

async fn describe_instances(
    ec2: &aws_sdk_ec2::Client,
) -> CallResult<Vec<aws_sdk_ec2::types::Instance>> {
    let pages = ec2
        .describe_instances()
        .max_results(1000)
        .into_paginator()
        .send();
    all_pages(pages, |p| {
        p.reservations
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.instances.unwrap_or_default())
            .collect()
    })
    .await
}

async fn describe_launch_templates(
    ec2: &aws_sdk_ec2::Client,
) -> CallResult<Vec<aws_sdk_ec2::types::LaunchTemplateVersion>> {
    // Without a template id, $Default and $Latest describe every template.
    let pages = ec2
        .describe_launch_template_versions()
        .versions("$Default")
        .versions("$Latest")
        .max_results(200)
        .into_paginator()
        .send();
    all_pages(pages, |p| p.launch_template_versions.unwrap_or_default()).await
}

/// The five account-region settings: (column, operation, outcome).
async fn settings(
    ec2: &aws_sdk_ec2::Client,
) -> Vec<(&'static str, &'static str, CallResult<Value>)> {
    let (encryption, key, image_bpa, snapshot_bpa, allowed) = tokio::join!(
        ec2.get_ebs_encryption_by_default().send(),
        ec2.get_ebs_default_kms_key_id().send(),
        ec2.get_image_block_public_access_state().send(),
        ec2.get_snapshot_block_public_access_state().send(),
        ec2.get_allowed_images_settings().send(),
    );
    vec![
        (
            "ebs_encryption_by_default",
            "GetEbsEncryptionByDefault",
            encryption
                .map(|o| o.ebs_encryption_by_default().into())
                .map_err(|e| CallError::from_sdk(&e)),
        ),
        (
            "ebs_default_kms_key_id",
            "GetEbsDefaultKmsKeyId",
            key.map(|o| text(o.kms_key_id()))
                .map_err(|e| CallError::from_sdk(&e)),
        ),
        (
            "image_block_public_access",
            "GetImageBlockPublicAccessState",
            image_bpa
                .map(|o| text(o.image_block_public_access_state()))
                .map_err(|e| CallError::from_sdk(&e)),
        ),
        (
            "snapshot_block_public_access",
            "GetSnapshotBlockPublicAccessState",
            snapshot_bpa
                .map(|o| enum_text(o.state()))
                .map_err(|e| CallError::from_sdk(&e)),
        ),
        (
            "allowed_images_state",
            "GetAllowedImagesSettings",
            allowed
                .map(|o| text(o.state()))
                .map_err(|e| CallError::from_sdk(&e)),
        ),
    ]
}

/// Inspector's EC2 scanning status in this account-region.
async fn inspector_status(
    client: &aws_sdk_inspector2::Client,
    account_id: &str,
) -> CallResult<Value> {
    let out = client
        .batch_get_account_status()
        .account_ids(account_id)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    let status = out
        .accounts()
        .iter()
        .find(|a| a.account_id() == account_id)
        .and_then(|a| a.resource_state())
        .and_then(|r| r.ec2())
        .map(|s| s.status().as_str().to_string());
    // An account Inspector has never seen has it disabled.
    Ok(Value::Str(status.unwrap_or_else(|| "DISABLED".to_string())))
}

/// Active findings on EC2 instances; each names the AMI the instance runs.
async fn inspector_findings(
    client: &aws_sdk_inspector2::Client,
) -> CallResult<Vec<aws_sdk_inspector2::types::Finding>> {
    let filter = |value: &str| {
        aws_sdk_inspector2::types::StringFilter::builder()
            .comparison(aws_sdk_inspector2::types::StringComparison::Equals)
            .value(value)
            .build()
            .expect("comparison and value are set")
    };
    let criteria = aws_sdk_inspector2::types::FilterCriteria::builder()
        .finding_status(filter("ACTIVE"))
        .resource_type(filter("AWS_EC2_INSTANCE"))
        .build();
    let pages = client
        .list_findings()
        .filter_criteria(criteria)
        .max_results(100)
        .into_paginator()
        .send();
    all_pages(pages, |p| p.findings.unwrap_or_default()).await
}

/// Owners of AMIs in use that this account does not own, by a filtered
/// DescribeImages (a filter, unlike ImageIds, does not fail on ids that no
/// longer exist). Images no longer visible stay without an owner.
async fn image_owners(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> CallResult<BTreeMap<String, String>> {
    let mut owners = BTreeMap::new();
    for chunk in ids.chunks(200) {
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("image-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let out = ec2
            .describe_images()
            .filters(filter)
            .include_deprecated(true)
            .send()
            .await
            .map_err(|e| CallError::from_sdk(&e))?;
        for image in out.images() {
            if let (Some(id), Some(owner)) = (image.image_id(), image.owner_id()) {
                owners.insert(id.to_string(), owner.to_string());
            }
        }
    }
    Ok(owners)
}

/// Turns the harvests into the inventory tables, sorted by account and region.
fn build_inventory(
    discovery: &Discovery,
    mut state: Progress,
    options: &ScanOptions,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    complete: bool,
) -> Inventory {
    let mut builders: BTreeMap<&'static str, TableBuilder> = schema::TABLES
        .iter()
        .map(|t| (t.name, TableBuilder::new(t.name)))
        .collect();
    let push =
        |builders: &mut BTreeMap<&'static str, TableBuilder>, table: &'static str, row: Row| {
            builders
                .get_mut(table)
                .expect("schema table")
                .push(row)
                .unwrap_or_else(|e| panic!("scanner row for `{table}` breaks the schema: {e}"));
        };
    for account in &discovery.accounts {
        push(&mut builders, "accounts", account_row(account));
    }
    state
        .done
        .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    let mut errors: Vec<ScanErrorRow> = discovery.errors.clone();
    errors.append(&mut state.account_errors);
    let mut seen_keys: BTreeSet<String> = BTreeSet::new();
    for harvest in state.done {
        let mut region_row: Row = vec![
            ("account_id", harvest.account_id.clone().into()),
            ("region", harvest.region.clone().into()),
            ("opt_in_status", harvest.opt_in_status.clone().into()),
            ("scan_status", harvest.scan_status.into()),
        ];
        region_row.extend(harvest.settings);
        push(&mut builders, "regions", region_row);
        for (table, row) in harvest.rows {
            if table == "kms_keys" {
                // A key shared by several accounts is described by each.
                let arn = row.iter().find_map(|(c, v)| match v {
                    Value::Str(s) if *c == "key_arn" => Some(s.clone()),
                    _ => None,
                });
                if !seen_keys.insert(arn.unwrap_or_default()) {
                    continue;
                }
            }
            push(&mut builders, table, row);
        }
        errors.extend(harvest.errors);
    }
    errors.sort();
    for e in errors {
        push(
            &mut builders,
            "scan_errors",
            vec![
                ("account_id", e.account_id.into()),
                ("region", e.region.into()),
                ("service", e.service.into()),
                ("operation", e.operation.into()),
                ("resource_id", e.resource_id.into()),
                ("error_code", e.code.into()),
                ("message", e.message.into()),
            ],
        );
    }
    let tables = builders
        .into_iter()
        .map(|(name, b)| (name, b.finish()))
        .collect::<BTreeMap<_, _>>();
    let scanned_regions: BTreeSet<String> =
        crate::inventory::str_column(&tables["regions"], "region")
            .into_iter()
            .flatten()
            .collect();
    Inventory {
        manifest: Manifest {
            schema_version: schema::SCHEMA_VERSION,
            collected_at: ended_at,
            tool_version: crate::VERSION.to_string(),
            scope: Scope {
                source: discovery.source.clone(),
                organization_id: discovery.organization_id.clone(),
                management_account_id: discovery.management_account_id.clone(),
                caller_arn: Some(discovery.caller_arn.clone()),
                accounts: discovery
                    .accounts
                    .iter()
                    .map(|a| a.account_id.clone())
                    .collect(),
                regions: match &options.regions {
                    RegionSelection::List(list) => list.clone(),
                    RegionSelection::All => scanned_regions.into_iter().collect(),
                },
            },
            scan_started_at: Some(started_at),
            scan_ended_at: Some(ended_at),
            complete,
            tables: BTreeMap::new(),
        },
        tables,
    }
}

fn account_row(account: &AccountInfo) -> Row {
    vec![
        ("account_id", account.account_id.clone().into()),
        ("account_name", account.name.clone().into()),
        ("email", account.email.clone().into()),
        ("status", account.status.clone().into()),
        ("ou_id", account.ou_id.clone().into()),
        ("ou_path", account.ou_path.clone().into()),
        (
            "joined_at",
            account.joined_at_ms.map_or(Value::Null, Value::Timestamp),
        ),
    ]
}
