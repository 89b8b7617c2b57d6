//! Discover: who is calling, which accounts are in scope, which regions.
//!
//! Owns: the caller identity (STS GetCallerIdentity), the organization's
//! accounts with their OU paths (Organizations DescribeOrganization,
//! ListAccounts, and a walk of the OU tree), the account selection flags
//! (`--org`, `--ou`, `--accounts`, `--exclude-accounts`), role selection
//! (`--role-name`, `--role-arn-template`), and the regions of each account
//! (DescribeRegions, opt-in status). Failures are recorded as
//! [`ScanErrorRow`]s and the scan goes on with what could be learned.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;

use crate::aws::{self, CallError, CallRecorder};
use crate::inventory::schema::ScanErrorRow;

/// Which accounts to scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccountSelection {
    /// Only the caller's own account (the default: a quick hygiene check).
    #[default]
    Caller,
    /// Every ACTIVE account of the organization, or of one OU's subtree.
    Organization { ou: Option<String> },
    /// These accounts.
    List(Vec<String>),
}

/// Which regions to visit in each account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RegionSelection {
    /// Every region enabled for the account.
    #[default]
    All,
    List(Vec<String>),
}

/// How to get into member accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSettings {
    pub role_name: String,
    /// `arn:aws:iam::{account_id}:role/Audit`; overrides `role_name`.
    pub role_arn_template: Option<String>,
    pub external_id: Option<String>,
    pub session_name: String,
}

impl Default for RoleSettings {
    fn default() -> Self {
        RoleSettings {
            role_name: "OrganizationAccountAccessRole".to_string(),
            role_arn_template: None,
            external_id: None,
            session_name: "amiaudit".to_string(),
        }
    }
}

impl RoleSettings {
    /// The role to assume in `account_id`, in the caller's partition.
    pub fn role_arn(&self, account_id: &str, partition: &str) -> String {
        match &self.role_arn_template {
            Some(template) => template.replace("{account_id}", account_id),
            None => format!("arn:{partition}:iam::{account_id}:role/{}", self.role_name),
        }
    }
}

/// One failed call, as the `scan_errors` table holds it.
pub fn failed_call(
    account_id: &str,
    region: Option<&str>,
    service: &str,
    operation: &str,
    resource_id: Option<&str>,
    error: &CallError,
) -> ScanErrorRow {
    ScanErrorRow {
        account_id: account_id.to_string(),
        region: region.map(str::to_string),
        service: service.to_string(),
        operation: operation.to_string(),
        resource_id: resource_id.map(str::to_string),
        error_code: Some(error.code.clone()),
        // An AWS message is kept whole up to a few KiB (EC2's encoded
        // authorization messages are the longest); past that it is cut.
        message: Some(crate::text::clip_bytes(&error.message, 4096)),
    }
}

/// An account in scope, with what Organizations says of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountInfo {
    pub account_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub ou_id: Option<String>,
    pub ou_path: Option<String>,
    pub joined_at_ms: Option<i64>,
}

/// What discovery learned before any account is visited.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub caller_account_id: String,
    pub caller_arn: String,
    pub partition: String,
    /// `organizations`, `accounts` or `caller`.
    pub source: String,
    pub organization_id: Option<String>,
    pub management_account_id: Option<String>,
    /// The accounts in scope.
    pub accounts: Vec<AccountInfo>,
    /// Every account of the organization, in scope or not (suspended ones
    /// included): whether a share stays inside the organization is judged
    /// against these, not against the scope.
    pub members: Vec<AccountInfo>,
    pub errors: Vec<ScanErrorRow>,
}

/// Errors that stop a scan before it starts: without a caller identity there
/// are no credentials at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(
        "cannot identify the caller (sts:GetCallerIdentity failed: {code}: {message}); check the AWS credentials, --profile and --region"
    )]
    NoCaller { code: String, message: String },
    #[error("no account is in scope: {0}")]
    EmptyScope(String),
}

pub async fn discover(
    base: &SdkConfig,
    recorder: &CallRecorder,
    selection: &AccountSelection,
    exclude: &[String],
) -> Result<Discovery, DiscoverError> {
    let sts = aws::sts_client(base, recorder);
    let identity = sts.get_caller_identity().send().await.map_err(|e| {
        let e = CallError::from_sdk(&e);
        DiscoverError::NoCaller {
            code: e.code,
            message: e.message,
        }
    })?;
    let caller_account_id = identity.account().unwrap_or_default().to_string();
    let caller_arn = identity.arn().unwrap_or_default().to_string();
    let partition = caller_arn.split(':').nth(1).unwrap_or("aws").to_string();
    let mut discovery = Discovery {
        caller_account_id: caller_account_id.clone(),
        caller_arn,
        partition,
        ..Default::default()
    };
    match selection {
        AccountSelection::Caller => {
            discovery.source = "caller".to_string();
            discovery.accounts = vec![AccountInfo {
                account_id: caller_account_id,
                ..Default::default()
            }];
        }
        AccountSelection::List(ids) => {
            discovery.source = "accounts".to_string();
            discovery.accounts = ids
                .iter()
                .map(|id| AccountInfo {
                    account_id: id.clone(),
                    ..Default::default()
                })
                .collect();
        }
        AccountSelection::Organization { ou } => {
            discovery.source = "organizations".to_string();
            organization(base, recorder, ou.as_deref(), &mut discovery).await?;
        }
    }
    discovery
        .accounts
        .retain(|a| !exclude.contains(&a.account_id));
    discovery
        .accounts
        .sort_by(|a, b| a.account_id.cmp(&b.account_id));
    discovery
        .accounts
        .dedup_by(|a, b| a.account_id == b.account_id);
    if discovery.accounts.is_empty() {
        return Err(DiscoverError::EmptyScope(
            "every account was excluded or the OU holds no ACTIVE account".to_string(),
        ));
    }
    Ok(discovery)
}

/// Fills the accounts from Organizations. When Organizations cannot be
/// reached, records why and falls back to the caller's own account.
async fn organization(
    base: &SdkConfig,
    recorder: &CallRecorder,
    ou: Option<&str>,
    discovery: &mut Discovery,
) -> Result<(), DiscoverError> {
    let client = aws::organizations_client(base, recorder);
    let caller = discovery.caller_account_id.clone();
    let fail = |discovery: &mut Discovery, operation: &str, error: CallError| {
        discovery.errors.push(failed_call(
            &caller,
            None,
            "organizations",
            operation,
            None,
            &error,
        ));
    };
    match client.describe_organization().send().await {
        Ok(out) => {
            if let Some(org) = out.organization() {
                discovery.organization_id = org.id().map(str::to_string);
                discovery.management_account_id = org.master_account_id().map(str::to_string);
            }
        }
        Err(e) => fail(discovery, "DescribeOrganization", CallError::from_sdk(&e)),
    }

    let mut accounts = match list_accounts(&client).await {
        Ok(accounts) => accounts,
        Err(e) => {
            fail(discovery, "ListAccounts", e);
            if ou.is_some() {
                return Err(DiscoverError::EmptyScope(
                    "--ou needs Organizations, which could not be listed (see the ListAccounts error)"
                        .to_string(),
                ));
            }
            discovery.accounts = vec![AccountInfo {
                account_id: caller,
                ..Default::default()
            }];
            return Ok(());
        }
    };
    discovery.members = accounts.values().cloned().collect();
    // Suspended and closing accounts cannot be scanned; ACTIVE only.
    accounts.retain(|_, a| a.status.as_deref().is_none_or(|s| s == "ACTIVE"));

    match ou_tree(&client, ou).await {
        Ok(placement) => {
            for (account_id, (ou_id, path)) in &placement {
                if let Some(a) = accounts.get_mut(account_id) {
                    a.ou_id = Some(ou_id.clone());
                    a.ou_path = Some(path.clone());
                }
            }
            if ou.is_some() {
                accounts.retain(|id, _| placement.contains_key(id));
            }
        }
        Err((operation, error)) => {
            if ou.is_some() {
                return Err(DiscoverError::EmptyScope(format!(
                    "--ou needs the OU tree, but organizations:{operation} failed: {}: {}",
                    error.code, error.message
                )));
            }
            fail(discovery, operation, error);
        }
    }
    for member in &mut discovery.members {
        if let Some(placed) = accounts.get(&member.account_id) {
            *member = placed.clone();
        }
    }
    discovery.accounts = accounts.into_values().collect();
    Ok(())
}

/// Every member account of the organization, by id (ListAccounts, all
/// pages; one page failing fails the listing).
async fn list_accounts(
    client: &aws_sdk_organizations::Client,
) -> Result<BTreeMap<String, AccountInfo>, CallError> {
    let mut accounts = BTreeMap::new();
    let mut pages = client.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| CallError::from_sdk(&e))?;
        for account in page.accounts() {
            let Some(id) = account.id() else { continue };
            accounts.insert(
                id.to_string(),
                AccountInfo {
                    account_id: id.to_string(),
                    name: account.name().map(str::to_string),
                    email: account.email().map(str::to_string),
                    status: account.state().map(|s| s.as_str().to_string()),
                    joined_at_ms: account.joined_timestamp().and_then(|t| t.to_millis().ok()),
                    ..Default::default()
                },
            );
        }
    }
    Ok(accounts)
}

/// account id -> (OU id, OU path from the root), for the whole tree or the
/// subtree under `start`.
async fn ou_tree(
    client: &aws_sdk_organizations::Client,
    start: Option<&str>,
) -> Result<BTreeMap<String, (String, String)>, (&'static str, CallError)> {
    let mut queue: Vec<(String, String)> = Vec::new();
    let roots = client
        .list_roots()
        .send()
        .await
        .map_err(|e| ("ListRoots", CallError::from_sdk(&e)))?;
    for root in roots.roots() {
        if let Some(id) = root.id() {
            queue.push((id.to_string(), root.name().unwrap_or("Root").to_string()));
        }
    }
    let mut placement = BTreeMap::new();
    let mut in_subtree: BTreeSet<String> = BTreeSet::new();
    while let Some((parent, path)) = queue.pop() {
        let inside = start.is_none_or(|s| s == parent) || in_subtree.contains(&parent);
        if inside {
            in_subtree.insert(parent.clone());
        }
        let mut ous = client
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = ous.next().await {
            let page =
                page.map_err(|e| ("ListOrganizationalUnitsForParent", CallError::from_sdk(&e)))?;
            for unit in page.organizational_units() {
                if let Some(id) = unit.id() {
                    let child_path = format!("{path}/{}", unit.name().unwrap_or(id));
                    if inside {
                        in_subtree.insert(id.to_string());
                    }
                    queue.push((id.to_string(), child_path));
                }
            }
        }
        if !inside {
            continue;
        }
        let mut accounts = client
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = accounts.next().await {
            let page = page.map_err(|e| ("ListAccountsForParent", CallError::from_sdk(&e)))?;
            for account in page.accounts() {
                if let Some(id) = account.id() {
                    placement.insert(id.to_string(), (parent.clone(), path.clone()));
                }
            }
        }
    }
    Ok(placement)
}

/// A region of an account and whether it may be scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    pub region: String,
    /// opt-in-not-required | opted-in | not-opted-in
    pub opt_in_status: Option<String>,
}

impl RegionInfo {
    pub fn enabled(&self) -> bool {
        self.opt_in_status.as_deref() != Some("not-opted-in")
    }
}

/// The regions to visit in one account: DescribeRegions (AllRegions) in the
/// home region, limited to the caller's partition and to `selection`.
/// Regions that are listed but not opted in come back disabled, to be
/// recorded as skipped.
pub async fn regions(
    ec2: &aws_sdk_ec2::Client,
    selection: &RegionSelection,
    home_region: &str,
) -> Result<Vec<RegionInfo>, CallError> {
    let out = ec2
        .describe_regions()
        .all_regions(true)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    let mut found: Vec<RegionInfo> = out
        .regions()
        .iter()
        .filter_map(|r| {
            Some(RegionInfo {
                region: r.region_name()?.to_string(),
                opt_in_status: r.opt_in_status().map(str::to_string),
            })
        })
        // Emulators list GovCloud and China regions to every caller.
        .filter(|r| same_partition(&r.region, home_region))
        .collect();
    if let RegionSelection::List(wanted) = selection {
        found.retain(|r| wanted.contains(&r.region));
        for w in wanted {
            if !found.iter().any(|r| r.region == *w) {
                // Not offered to this account at all: treat as not opted in.
                found.push(RegionInfo {
                    region: w.clone(),
                    opt_in_status: Some("not-opted-in".to_string()),
                });
            }
        }
    }
    found.sort_by(|a, b| a.region.cmp(&b.region));
    Ok(found)
}

/// Regions when DescribeRegions cannot tell: the explicit list, else the
/// home region.
pub fn fallback_regions(selection: &RegionSelection, home_region: &str) -> Vec<RegionInfo> {
    let names = match selection {
        RegionSelection::List(list) => list.clone(),
        RegionSelection::All => vec![home_region.to_string()],
    };
    names
        .into_iter()
        .map(|region| RegionInfo {
            region,
            opt_in_status: None,
        })
        .collect()
}

fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso") {
        "aws-iso"
    } else {
        "aws"
    }
}

fn same_partition(region: &str, home_region: &str) -> bool {
    partition_of(region) == partition_of(home_region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_from_name_or_template() {
        let role = RoleSettings::default();
        assert_eq!(
            role.role_arn("111122223333", "aws"),
            "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"
        );
        let role = RoleSettings {
            role_arn_template: Some("arn:aws:iam::{account_id}:role/Audit".to_string()),
            ..Default::default()
        };
        assert_eq!(
            role.role_arn("111122223333", "aws"),
            "arn:aws:iam::111122223333:role/Audit"
        );
    }

    #[test]
    fn partitions_do_not_mix() {
        assert!(same_partition("eu-west-1", "us-east-1"));
        assert!(!same_partition("us-gov-west-1", "us-east-1"));
        assert!(!same_partition("cn-north-1", "us-east-1"));
    }
}
