//! One account-region, start to end: which calls, in which order. Never
//! fails: every failure is a scan error in the harvest.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Image, Instance, InstanceImageMetadata, LaunchTemplateVersion};
use aws_sdk_inspector2::types::Finding;

use super::calls::{CallResult, each_bounded};
use super::ec2_snapshots::SnapshotPermissions;
use super::harvest::{Harvest, RegionScan};
use super::{
    ec2_ancestry, ec2_images, ec2_references, ec2_settings, ec2_snapshots, ec2_usage,
    ec2_usage_reports, fleet, imagebuilder, inspector, kms, rbin,
};
use crate::aws::RegionClients;
use crate::discover::RegionInfo;

/// What the scan reads in each account-region, beyond the fixed calls.
#[derive(Debug, Clone)]
pub struct RegionSettings {
    /// Per-resource calls at once inside one account-region.
    pub per_resource_concurrency: usize,
    pub snapshot_permissions: SnapshotPermissions,
    pub usage_reports: ec2_usage_reports::UsageReportSettings,
    /// SSM parameter paths read for AMI ids.
    pub ami_parameter_paths: std::sync::Arc<[String]>,
}

pub async fn collect(
    clients: &RegionClients,
    account_id: &str,
    region: &RegionInfo,
    settings: &RegionSettings,
) -> Harvest {
    let mut harvest = Harvest::new(account_id, region);
    let ec2 = &clients.ec2;

    let (images, snapshots, usage, templates, fetched_settings, factory, consumers) = tokio::join!(
        ec2_images::describe_images(ec2),
        ec2_snapshots::describe_snapshots(ec2),
        fetch_usage(clients, account_id),
        ec2_usage::describe_launch_templates(ec2),
        ec2_settings::fetch(ec2),
        imagebuilder::fetch(&clients.imagebuilder, settings.per_resource_concurrency),
        fleet::fetch(
            &clients.autoscaling,
            ec2,
            &clients.ssm,
            &settings.ami_parameter_paths,
            settings.per_resource_concurrency,
        ),
    );
    let images = match images {
        Err(error) if error.is_opt_in_required() => {
            harvest.scan = RegionScan::NotOptedIn;
            harvest.opt_in_status = Some("not-opted-in".to_string());
            return harvest;
        }
        other => harvest.take("ec2", "DescribeImages", None, other),
    };
    ec2_settings::record(&mut harvest, fetched_settings);
    let (instances, metadata, inspector_status, findings) = usage;
    harvest.settings.inspector_ec2_status = harvest.take(
        "inspector2",
        "BatchGetAccountStatus",
        None,
        inspector_status,
    );

    let images = images.unwrap_or_default();
    harvest.images = images.len();
    let OwnImages { own, backing, keys } = own_images(&images, account_id);

    let snapshots = harvest.take("ec2", "DescribeSnapshots", None, snapshots);
    let snapshot_reads = snapshots
        .as_ref()
        .map(|owned| ec2_snapshots::to_read(settings.snapshot_permissions, owned, &backing))
        .unwrap_or_default();

    let instances = harvest.take("ec2", "DescribeInstances", None, instances);
    let metadata =
        metadata.and_then(|m| harvest.take("ec2", "DescribeInstanceImageMetadata", None, m));
    let templates = harvest.take("ec2", "DescribeLaunchTemplateVersions", None, templates);
    let foreign = foreign_in_use(instances.as_deref(), templates.as_deref(), &consumers, &own);

    let sourced_elsewhere = ec2_ancestry::sourced_elsewhere(&images, &own);

    // The per-resource calls, bounded.
    let limit = settings.per_resource_concurrency;
    let (snapshot_permissions, key_outcomes, visible, own_reads) = tokio::join!(
        each_bounded(snapshot_reads, limit, |id| {
            ec2_snapshots::create_volume_permissions(ec2, id)
        }),
        each_bounded(keys, limit, |key| kms::describe_key(&clients.kms, key)),
        async {
            if foreign.is_empty() {
                Ok(BTreeMap::new())
            } else {
                ec2_usage::visible_images(ec2, &foreign).await
            }
        },
        read_own_images(clients, &own, sourced_elsewhere, settings),
    );
    let recycle_bin = record_own_images(&mut harvest, &images, own_reads);
    ec2_snapshots::rows(&mut harvest, snapshots.as_ref(), snapshot_permissions);
    kms::key_rows(&mut harvest, key_outcomes);
    let consumers_read = ConsumersRead {
        instances,
        metadata,
        templates,
        fleet: consumers,
        findings,
    };
    record_consumers(&mut harvest, consumers_read, visible, &own);
    imagebuilder::record(&mut harvest, factory);
    if let Some(recycle_bin) = recycle_bin {
        rbin::record(&mut harvest, recycle_bin);
    }
    harvest.finish();
    harvest
}

/// Instances, their images' metadata, Inspector's status and its findings.
type UsageFetch = (
    CallResult<Vec<Instance>>,
    Option<CallResult<Vec<InstanceImageMetadata>>>,
    CallResult<String>,
    Option<CallResult<Vec<Finding>>>,
);

async fn fetch_usage(clients: &RegionClients, account_id: &str) -> UsageFetch {
    let ec2 = &clients.ec2;
    // Inspector findings come from instances (each names its AMI): none are
    // asked for where Inspector is off or no instance runs. The image
    // metadata of instances is asked for only where instances exist.
    let (instances, status) = tokio::join!(
        ec2_usage::describe_instances(ec2),
        inspector::status(&clients.inspector, account_id)
    );
    let any_instance = !matches!(&instances, Ok(list) if list.is_empty());
    let inspector_off = matches!(&status, Ok(s) if s == "DISABLED");
    let (metadata, findings) = tokio::join!(
        async {
            if any_instance {
                Some(ec2_usage::describe_image_metadata(ec2).await)
            } else {
                None
            }
        },
        async {
            if any_instance && !inspector_off {
                Some(inspector::findings(&clients.inspector).await)
            } else {
                None
            }
        }
    );
    (instances, metadata, status, findings)
}

/// The account-region's own images (id -> owner), the snapshots backing
/// them and the keys encrypting those.
struct OwnImages {
    own: BTreeMap<String, String>,
    backing: BTreeSet<String>,
    keys: BTreeSet<String>,
}

fn own_images(images: &[Image], account_id: &str) -> OwnImages {
    let own: BTreeMap<String, String> = images
        .iter()
        .filter_map(|i| {
            Some((
                i.image_id()?.to_string(),
                i.owner_id().unwrap_or(account_id).to_string(),
            ))
        })
        .collect();
    let mut backing: BTreeSet<String> = BTreeSet::new();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for image in images {
        for device in image.block_device_mappings() {
            if let Some(ebs) = device.ebs() {
                backing.extend(ebs.snapshot_id().map(str::to_string));
                keys.extend(ebs.kms_key_id().map(str::to_string));
            }
        }
    }
    OwnImages { own, backing, keys }
}

/// The AMIs instances, templates and the fleet use that this account does
/// not own: their visibility is asked for by id.
fn foreign_in_use(
    instances: Option<&[Instance]>,
    templates: Option<&[LaunchTemplateVersion]>,
    consumers: &fleet::Fetched,
    own: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    in_use.extend(
        instances
            .into_iter()
            .flatten()
            .filter_map(|i| i.image_id().map(str::to_string)),
    );
    in_use.extend(
        templates
            .into_iter()
            .flatten()
            .filter_map(|v| ec2_usage::template_image(v).map(str::to_string)),
    );
    in_use.extend(fleet::images_named(consumers));
    in_use
        .into_iter()
        .filter(|id| !own.contains_key(id))
        .collect()
}

/// What the consumers' calls read, their failures already recorded.
struct ConsumersRead {
    instances: Option<Vec<Instance>>,
    metadata: Option<Vec<InstanceImageMetadata>>,
    templates: Option<Vec<LaunchTemplateVersion>>,
    fleet: fleet::Fetched,
    findings: Option<CallResult<Vec<Finding>>>,
}

/// The consumers' rows, each AMI they name with its visibility, and the
/// Inspector findings.
fn record_consumers(
    harvest: &mut Harvest,
    read: ConsumersRead,
    visible: CallResult<BTreeMap<String, String>>,
    own: &BTreeMap<String, String>,
) {
    let visible = harvest.take("ec2", "DescribeImages", None, visible);
    let visibility = ec2_usage::Visibility {
        own,
        foreign: visible.as_ref(),
    };
    if let Some(instances) = &read.instances {
        ec2_usage::instance_rows(harvest, instances, read.metadata.as_deref(), &visibility);
    }
    if let Some(templates) = &read.templates {
        ec2_usage::template_rows(harvest, templates, &visibility);
    }
    fleet::record(harvest, read.fleet, read.templates.as_deref(), &visibility);
    if let Some(findings) = read
        .findings
        .and_then(|f| harvest.take("inspector2", "ListFindings", None, f))
    {
        for finding in &findings {
            inspector::finding_row(harvest, finding);
        }
    }
}

/// The per-image reads of the account-region's own AMIs.
struct OwnImageReads {
    launch_permissions: Vec<(
        String,
        CallResult<aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput>,
    )>,
    ancestry: ec2_ancestry::Fetched,
    references: Vec<(String, CallResult<Vec<aws_sdk_ec2::types::ImageReference>>)>,
    /// None where the account-region holds no AMI of its own.
    recycle_bin: Option<rbin::Fetched>,
    /// None where none are read (no AMI of its own, or `off`).
    usage_reports: Option<ec2_usage_reports::Fetched>,
}

/// Who may launch each own AMI, the ancestry of those whose source is
/// elsewhere, what references it, which accounts use it (a usage report
/// made earlier), and the Recycle Bin rules that could bring it back.
async fn read_own_images(
    clients: &RegionClients,
    own: &BTreeMap<String, String>,
    sourced_elsewhere: Vec<ec2_ancestry::SourcedElsewhere>,
    settings: &RegionSettings,
) -> OwnImageReads {
    let ec2 = &clients.ec2;
    let limit = settings.per_resource_concurrency;
    let own_ids: Vec<String> = own.keys().cloned().collect();
    let (launch_permissions, ancestry, references, recycle_bin, usage_reports) = tokio::join!(
        each_bounded(own.keys().cloned(), limit, |id| {
            ec2_images::launch_permissions(ec2, id)
        }),
        ec2_ancestry::fetch(ec2, sourced_elsewhere, limit),
        each_bounded(
            ec2_references::batches(own.keys().cloned()),
            limit,
            |batch| ec2_references::describe(ec2, batch)
        ),
        // Only where there are AMIs to recover is Recycle Bin asked.
        async {
            if own.is_empty() {
                None
            } else {
                Some(rbin::fetch(&clients.rbin, limit).await)
            }
        },
        async {
            let off = settings.usage_reports.mode == ec2_usage_reports::UsageReports::Off;
            if own_ids.is_empty() || off {
                None
            } else {
                let now = chrono::Utc::now();
                Some(ec2_usage_reports::fetch(ec2, &own_ids, settings.usage_reports, now).await)
            }
        },
    );
    let mut usage_reports = usage_reports;
    if let Some(fetched) = usage_reports.as_mut()
        && settings.usage_reports.mode == ec2_usage_reports::UsageReports::Create
    {
        // Only AMIs whose launch permissions were read and name someone.
        let shared: Vec<String> = launch_permissions
            .iter()
            .filter(|(_, outcome)| {
                outcome
                    .as_ref()
                    .is_ok_and(|out| !out.launch_permissions().is_empty())
            })
            .map(|(id, _)| id.clone())
            .collect();
        ec2_usage_reports::create(ec2, fetched, shared, limit, chrono::Utc::now()).await;
    }
    OwnImageReads {
        launch_permissions,
        ancestry,
        references,
        recycle_bin,
        usage_reports,
    }
}

/// The own AMIs' rows; returns the Recycle Bin answers, recorded last.
fn record_own_images(
    harvest: &mut Harvest,
    images: &[Image],
    reads: OwnImageReads,
) -> Option<rbin::Fetched> {
    let references_read = ec2_references::rows(harvest, reads.references);
    ec2_images::rows(harvest, images, reads.launch_permissions, &references_read);
    ec2_ancestry::rows(harvest, reads.ancestry);
    if let Some(usage_reports) = reads.usage_reports {
        ec2_usage_reports::rows(harvest, usage_reports);
    }
    reads.recycle_bin
}
