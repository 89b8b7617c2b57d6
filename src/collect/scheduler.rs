//! Scheduling: account tasks (credentials, regions) spawn account-region
//! tasks, all under one bound (`--concurrency`). Finished harvests are kept
//! in shared state, so an interrupted scan keeps what was done.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::sync::Semaphore;

use super::harvest::{Harvest, RegionScan};
use super::region::{self, RegionSettings};
use crate::aws::{self, AccountCredentials, CallError, CallRecorder, RegionClients};
use crate::discover::{self, Discovery, RegionInfo, RegionSelection, RoleSettings, failed_call};
use crate::inventory::schema::ScanErrorRow;

/// Shared state of a running scan, so Ctrl-C can keep what is done.
#[derive(Default)]
pub struct Progress {
    pub done: Vec<Harvest>,
    /// (account, region) planned but not finished.
    pub pending: BTreeSet<(String, String)>,
    pub account_errors: Vec<ScanErrorRow>,
    pub bar: Option<indicatif::ProgressBar>,
    pub images: usize,
    pub errors: usize,
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

pub fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    // A task that panicked while holding the lock left consistent data:
    // every update is a single push or insert.
    progress.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn progress_bar() -> Option<indicatif::ProgressBar> {
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} account-regions, {msg}",
    )
    .ok()?
    .progress_chars("=> ");
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// What every account task needs.
#[derive(Clone)]
pub struct Plan {
    pub base: SdkConfig,
    pub recorder: CallRecorder,
    pub role: RoleSettings,
    pub regions: RegionSelection,
    pub home_region: String,
    pub region_settings: RegionSettings,
    pub caller_account_id: String,
    pub partition: String,
    /// EC2 request pacing per account, region and action.
    pub pacing: Option<crate::aws::Pacing>,
}

/// An account-region whose task panicked: failed, with the panic's message
/// as its scan error.
fn panicked(account_id: &str, region: &RegionInfo, panic: &(dyn std::any::Any + Send)) -> Harvest {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message");
    let mut harvest = Harvest::new(account_id, region);
    harvest.fail(
        "amiaudit",
        "ScanAccountRegion",
        None,
        &CallError {
            code: "InternalError".to_string(),
            message: format!("the scan of this account-region stopped on a bug: {message}"),
        },
    );
    harvest
}

pub async fn run_accounts(
    plan: Plan,
    discovery: &Discovery,
    concurrency: usize,
    progress: Arc<Mutex<Progress>>,
) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for account in &discovery.accounts {
        let (plan, progress, permits, account_id) = (
            plan.clone(),
            progress.clone(),
            permits.clone(),
            account.account_id.clone(),
        );
        tasks.spawn(async move {
            let account = account_id.clone();
            let regions = (plan.regions.clone(), plan.home_region.clone());
            let state = progress.clone();
            let run = AssertUnwindSafe(run_account(plan, account_id, permits, progress));
            if let Err(panic) = run.catch_unwind().await {
                // The account's own steps (credentials, regions) panicked:
                // every account-region planned for it is failed, so the gap
                // shows.
                let mut state = lock(&state);
                let planned: Vec<RegionInfo> = discover::fallback_regions(&regions.0, &regions.1);
                let pending: Vec<(String, String)> = state
                    .pending
                    .iter()
                    .filter(|(a, _)| *a == account)
                    .cloned()
                    .collect();
                let done: BTreeSet<String> = state
                    .done
                    .iter()
                    .filter(|h| h.account_id == account)
                    .map(|h| h.region.clone())
                    .collect();
                let mut failed: Vec<RegionInfo> = pending
                    .iter()
                    .map(|(_, r)| RegionInfo {
                        region: r.clone(),
                        opt_in_status: None,
                    })
                    .collect();
                if pending.is_empty() && done.is_empty() {
                    failed = planned;
                }
                for key in &pending {
                    state.pending.remove(key);
                }
                for region in failed {
                    state.done.push(panicked(&account, &region, panic.as_ref()));
                }
                state.errors += 1;
                state.update_bar();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The account's credentials: the caller's own, or the scan role's there.
async fn account_credentials(
    plan: &Plan,
    account_id: &str,
) -> std::result::Result<AccountCredentials, CallError> {
    if account_id == plan.caller_account_id {
        AccountCredentials::own(&plan.base, account_id).ok_or_else(|| CallError {
            code: "NoCredentials".to_string(),
            message: "no credentials provider is configured".to_string(),
        })
    } else {
        AccountCredentials::assume(
            &plan.base,
            account_id,
            &plan.role.role_arn(account_id, &plan.partition),
            plan.role.external_id.as_deref(),
            &plan.role.session_name,
            &plan.recorder,
        )
        .await
    }
}

/// Records the account's regions: enabled ones pending, the others not
/// opted in.
fn plan_regions(progress: &Mutex<Progress>, account_id: &str, region_list: &[RegionInfo]) {
    let mut state = lock(progress);
    for region in region_list {
        if region.enabled() {
            state
                .pending
                .insert((account_id.to_string(), region.region.clone()));
        } else {
            let mut skipped = Harvest::new(account_id, region);
            skipped.scan = RegionScan::NotOptedIn;
            state.done.push(skipped);
        }
    }
    state.update_bar();
}

/// An account whose credentials could not be had: its regions are
/// unknown, so the ones asked for (or the home region) are planned as
/// failed, and the gap shows.
fn unreachable_account(
    progress: &Mutex<Progress>,
    plan: &Plan,
    account_id: &str,
    error: &CallError,
) {
    let mut state = lock(progress);
    state.account_errors.push(failed_call(
        account_id,
        None,
        "sts",
        "AssumeRole",
        None,
        error,
    ));
    for region in discover::fallback_regions(&plan.regions, &plan.home_region) {
        state.done.push(Harvest::new(account_id, &region));
    }
    state.errors += 1;
    state.update_bar();
}

async fn run_account(
    plan: Plan,
    account_id: String,
    permits: Arc<Semaphore>,
    progress: Arc<Mutex<Progress>>,
) {
    let Ok(setup_permit) = permits.clone().acquire_owned().await else {
        return;
    };
    let credentials = account_credentials(&plan, &account_id).await;
    let credentials = match credentials {
        Ok(c) => c,
        Err(error) => {
            unreachable_account(&progress, &plan, &account_id, &error);
            return;
        }
    };
    let home = aws::home_ec2_client(&plan.base, &credentials, &plan.recorder);
    let region_list = match discover::regions(&home, &plan.regions, &plan.home_region).await {
        Ok(list) => list,
        Err(error) => {
            let mut state = lock(&progress);
            state.account_errors.push(failed_call(
                &account_id,
                None,
                "ec2",
                "DescribeRegions",
                None,
                &error,
            ));
            state.errors += 1;
            discover::fallback_regions(&plan.regions, &plan.home_region)
        }
    };
    drop(setup_permit);
    plan_regions(&progress, &account_id, &region_list);
    let mut region_tasks = tokio::task::JoinSet::new();
    for region in region_list.into_iter().filter(RegionInfo::enabled) {
        let (plan, progress, permits, credentials, account_id) = (
            plan.clone(),
            progress.clone(),
            permits.clone(),
            credentials.clone(),
            account_id.clone(),
        );
        region_tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            // Built only once running: clients are not small, and thousands
            // of account-regions may be waiting.
            let clients = RegionClients::new(
                &plan.base,
                &credentials,
                &region.region,
                &plan.recorder,
                plan.pacing,
            );
            // Boxed: the account-region's future (every SDK call state
            // inline) is tens of KB; unboxed it would be allocated for every
            // waiting task at spawn time. A panic in it (a bug) is that
            // account-region's scan error, never a silent gap.
            let harvest = match AssertUnwindSafe(Box::pin(region::collect(
                &clients,
                &account_id,
                &region,
                &plan.region_settings,
            )))
            .catch_unwind()
            .await
            {
                Ok(harvest) => harvest,
                Err(panic) => panicked(&account_id, &region, panic.as_ref()),
            };
            let mut state = lock(&progress);
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
}
