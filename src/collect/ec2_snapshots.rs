//! EBS snapshots the account owns: DescribeSnapshots, which of them anyone
//! can restore (DescribeSnapshots RestorableByUserIds=all, one paged call
//! for all of them), and who else may restore each one
//! (DescribeSnapshotAttribute, one call per snapshot).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::operation::describe_snapshot_attribute::DescribeSnapshotAttributeOutput;
use aws_sdk_ec2::types::{Snapshot, SnapshotAttributeName};

use super::calls::{CallResult, all_pages, enum_text, smithy_time, text};
use super::harvest::Harvest;
use crate::aws::CallError;
use crate::inventory::schema::{SnapshotPermissionRow, SnapshotRow};

/// Which owned snapshots get a DescribeSnapshotAttribute call (one each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotPermissions {
    /// Every owned snapshot (the default: a snapshot need not back an AMI
    /// to leak one).
    #[default]
    All,
    /// Only snapshots that back an AMI of the same account-region.
    AmiBacking,
    /// None: sharing is `unknown` for every snapshot.
    None,
}

impl SnapshotPermissions {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotPermissions::All => "all",
            SnapshotPermissions::AmiBacking => "ami-backing",
            SnapshotPermissions::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<SnapshotPermissions> {
        [
            SnapshotPermissions::All,
            SnapshotPermissions::AmiBacking,
            SnapshotPermissions::None,
        ]
        .into_iter()
        .find(|v| v.as_str() == text)
    }
}

/// The owned snapshots, and the ids of those anyone can restore.
pub struct OwnedSnapshots {
    pub snapshots: Vec<Snapshot>,
    pub public: BTreeSet<String>,
}

/// Both listings are the same API and permission: one failing is the
/// account-region's DescribeSnapshots failing.
pub async fn describe_snapshots(ec2: &aws_sdk_ec2::Client) -> CallResult<OwnedSnapshots> {
    let owned = ec2
        .describe_snapshots()
        .owner_ids("self")
        .max_results(1000)
        .into_paginator()
        .send();
    let public = ec2
        .describe_snapshots()
        .owner_ids("self")
        .restorable_by_user_ids("all")
        .max_results(1000)
        .into_paginator()
        .send();
    let (owned, public) = tokio::join!(
        all_pages(owned, |p| p.snapshots.unwrap_or_default()),
        all_pages(public, |p| p.snapshots.unwrap_or_default()),
    );
    Ok(OwnedSnapshots {
        snapshots: owned?,
        public: public?.into_iter().filter_map(|s| s.snapshot_id).collect(),
    })
}

pub async fn create_volume_permissions(
    ec2: &aws_sdk_ec2::Client,
    snapshot_id: String,
) -> CallResult<DescribeSnapshotAttributeOutput> {
    ec2.describe_snapshot_attribute()
        .snapshot_id(snapshot_id)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))
}

/// The snapshots whose permissions are read, per the setting.
pub fn to_read(
    setting: SnapshotPermissions,
    owned: &OwnedSnapshots,
    backing: &BTreeSet<String>,
) -> Vec<String> {
    owned
        .snapshots
        .iter()
        .filter_map(|s| s.snapshot_id())
        .filter(|id| match setting {
            SnapshotPermissions::All => true,
            SnapshotPermissions::AmiBacking => backing.contains(*id),
            SnapshotPermissions::None => false,
        })
        .map(str::to_string)
        .collect()
}

/// Snapshot rows, with what the listing and the per-snapshot reads told.
pub fn rows(
    harvest: &mut Harvest,
    owned: Option<&OwnedSnapshots>,
    permissions: Vec<(String, CallResult<DescribeSnapshotAttributeOutput>)>,
) {
    // snapshot id -> (permissions read, any for everyone)
    let mut read: BTreeMap<String, (i64, bool)> = BTreeMap::new();
    for (snapshot_id, outcome) in permissions {
        let Some(out) = harvest.take(
            "ec2",
            "DescribeSnapshotAttribute",
            Some(&snapshot_id),
            outcome,
        ) else {
            continue;
        };
        let list = out.create_volume_permissions();
        let everyone = list
            .iter()
            .any(|p| p.group().is_some_and(|g| g.as_str() == "all"));
        read.insert(snapshot_id.clone(), (list.len() as i64, everyone));
        for permission in list {
            let row = SnapshotPermissionRow {
                account_id: harvest.account_id.clone(),
                region: harvest.region.clone(),
                snapshot_id: snapshot_id.clone(),
                group: enum_text(permission.group()),
                user_id: text(permission.user_id()),
            };
            harvest.push(row);
        }
    }
    let Some(owned) = owned else { return };
    for snapshot in &owned.snapshots {
        let Some(id) = snapshot.snapshot_id() else {
            continue;
        };
        let attribute = read.get(id);
        let row = SnapshotRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            snapshot_id: id.to_string(),
            volume_id: text(snapshot.volume_id()),
            volume_size: snapshot.volume_size().map(i64::from),
            state: enum_text(snapshot.state()),
            encrypted: snapshot.encrypted(),
            kms_key_id: text(snapshot.kms_key_id()),
            description: text(snapshot.description()),
            start_time: smithy_time(snapshot.start_time()),
            // The listing answers for every owned snapshot; a permission
            // read for `all` says the same.
            public: Some(owned.public.contains(id) || attribute.is_some_and(|(_, all)| *all)),
            create_volume_permission_count: attribute.map(|(n, _)| *n),
        };
        harvest.push(row);
    }
}
