//! Which AMIs are in use: instances (DescribeInstances), the AMI each was
//! launched from (DescribeInstanceImageMetadata, which knows it even after
//! it was deregistered or unshared), launch template versions, and whether
//! the AMIs in use are visible to the account now (DescribeImages by id).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Instance, InstanceImageMetadata, LaunchTemplateVersion};

use super::calls::{CallResult, all_pages, enum_text, smithy_time, text};
use super::harvest::Harvest;
use crate::inventory::schema::{InstanceRow, LaunchTemplateRow};

pub async fn describe_instances(ec2: &aws_sdk_ec2::Client) -> CallResult<Vec<Instance>> {
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

pub async fn describe_image_metadata(
    ec2: &aws_sdk_ec2::Client,
) -> CallResult<Vec<InstanceImageMetadata>> {
    let pages = ec2
        .describe_instance_image_metadata()
        .max_results(1000)
        .into_paginator()
        .send();
    all_pages(pages, |p| p.instance_image_metadata.unwrap_or_default()).await
}

pub async fn describe_launch_templates(
    ec2: &aws_sdk_ec2::Client,
) -> CallResult<Vec<LaunchTemplateVersion>> {
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

/// AMIs in use that this account does not own, as DescribeImages shows
/// them to it now (id -> owner); an id absent from the answer is not
/// visible.
pub async fn visible_images(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> CallResult<BTreeMap<String, String>> {
    Ok(super::ec2_images::describe_by_id(ec2, ids)
        .await?
        .iter()
        .filter_map(|image| Some((image.image_id()?.to_string(), image.owner_id()?.to_string())))
        .collect())
}

/// The AMI a launch template version launches; None for `resolve:ssm:`
/// parameters, which are resolved only at launch.
pub fn template_image(version: &LaunchTemplateVersion) -> Option<&str> {
    version
        .launch_template_data()
        .and_then(|d| d.image_id())
        .filter(|id| id.starts_with("ami-"))
}

/// What a launch template version names instead of an AMI id: a
/// `resolve:ssm:<parameter>` reference (or anything else that is not an
/// AMI id), kept as written so the launch is never taken for "no AMI".
pub fn template_parameter(version: &LaunchTemplateVersion) -> Option<&str> {
    version
        .launch_template_data()
        .and_then(|d| d.image_id())
        .filter(|id| !id.starts_with("ami-"))
}

/// What the account can see of the AMIs in use.
pub struct Visibility<'a> {
    /// AMIs the account owns (listed by DescribeImages Owners=self).
    pub own: &'a BTreeMap<String, String>,
    /// Other AMIs in use as DescribeImages showed them (None: that call failed).
    pub foreign: Option<&'a BTreeMap<String, String>>,
}

impl Visibility<'_> {
    /// Whether the AMI is visible, and its owner if known.
    pub fn of(&self, image_id: &str) -> (Option<bool>, Option<String>) {
        if let Some(owner) = self.own.get(image_id) {
            return (Some(true), Some(owner.clone()));
        }
        match self.foreign {
            Some(foreign) => match foreign.get(image_id) {
                Some(owner) => (Some(true), Some(owner.clone())),
                None => (Some(false), None),
            },
            None => (None, None),
        }
    }
}

pub fn instance_rows(
    harvest: &mut Harvest,
    instances: &[Instance],
    metadata: Option<&[InstanceImageMetadata]>,
    visibility: &Visibility,
) {
    let by_instance: BTreeMap<&str, &InstanceImageMetadata> = metadata
        .unwrap_or_default()
        .iter()
        .filter_map(|m| Some((m.instance_id()?, m)))
        .collect();
    for instance in instances {
        let Some(id) = instance.instance_id() else {
            continue;
        };
        let name = instance
            .tags()
            .iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| t.value());
        let image_id = instance.image_id();
        let (visible, visible_owner) = image_id.map_or((None, None), |i| visibility.of(i));
        let meta = by_instance
            .get(id)
            .and_then(|m| m.image_metadata())
            .filter(|m| m.image_id() == image_id);
        let row = InstanceRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            instance_id: id.to_string(),
            name: text(name),
            image_id: text(image_id),
            image_owner_id: meta.and_then(|m| text(m.owner_id())).or(visible_owner),
            state: enum_text(instance.state().and_then(|s| s.name())),
            instance_type: enum_text(instance.instance_type()),
            launch_time: smithy_time(instance.launch_time()),
            image_state: meta.and_then(|m| enum_text(m.state())),
            image_visible: visible,
            image_owner_alias: meta.and_then(|m| text(m.image_owner_alias())),
        };
        harvest.push(row);
    }
}

pub fn template_rows(
    harvest: &mut Harvest,
    versions: &[LaunchTemplateVersion],
    visibility: &Visibility,
) {
    // $Default and $Latest may be one version, listed twice.
    let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
    for v in versions {
        if let (Some(id), Some(n)) = (v.launch_template_id(), v.version_number()) {
            let e = latest.entry(id).or_insert(n);
            *e = (*e).max(n);
        }
    }
    let mut seen: BTreeSet<(&str, i64)> = BTreeSet::new();
    for v in versions {
        let (Some(id), Some(n)) = (v.launch_template_id(), v.version_number()) else {
            continue;
        };
        if !seen.insert((id, n)) {
            continue;
        }
        let image = template_image(v);
        let (visible, owner) = image.map_or((None, None), |i| visibility.of(i));
        let row = LaunchTemplateRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            launch_template_id: id.to_string(),
            launch_template_name: text(v.launch_template_name()),
            version_number: Some(n),
            is_default: v.default_version(),
            is_latest: Some(latest.get(id) == Some(&n)),
            image_id: text(image),
            image_owner_id: owner,
            image_visible: visible,
            image_parameter: text(template_parameter(v)),
        };
        harvest.push(row);
    }
}
