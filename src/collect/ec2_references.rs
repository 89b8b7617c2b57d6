//! What references each of the account-region's own AMIs, as EC2 itself
//! answers (DescribeImageReferences): instances, launch templates, SSM
//! parameters and Image Builder recipes of this account-region.
//!
//! Asked with `IncludeAllResourceTypes` (every type EC2 supports, with its
//! default options: a launch template's 10 most recent versions) and the
//! instance option overridden to leave out terminated and shutting-down
//! instances, which launch nothing again ("If you also specify
//! ResourceTypes with ResourceTypeOptions, your specified values override
//! the default values").

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    ImageReference, ImageReferenceOptionName, ImageReferenceResourceType, ResourceTypeOption,
    ResourceTypeRequest,
};

use super::calls::{CallResult, all_pages, enum_text, text};
use super::harvest::Harvest;
use crate::inventory::schema::ImageReferenceRow;

/// "Array Members: Minimum number of 1 item. Maximum number of 10 items."
const IMAGES_PER_CALL: usize = 10;

/// Instance states whose AMI may launch again (a stopped instance starts
/// from its root volume, but is still the AMI's consumer).
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// The batches asked, each its image ids joined by spaces (the scan
/// error's resource id when a batch fails).
pub fn batches(own: impl IntoIterator<Item = String>) -> Vec<String> {
    let ids: Vec<String> = own.into_iter().collect();
    ids.chunks(IMAGES_PER_CALL).map(|c| c.join(" ")).collect()
}

/// One call (every page) for one batch.
pub async fn describe(ec2: &aws_sdk_ec2::Client, batch: String) -> CallResult<Vec<ImageReference>> {
    let instances = ResourceTypeRequest::builder()
        .resource_type(ImageReferenceResourceType::Ec2Instance)
        .resource_type_options(
            ResourceTypeOption::builder()
                .option_name(ImageReferenceOptionName::StateName)
                .set_option_values(Some(LIVE_STATES.map(str::to_string).to_vec()))
                .build(),
        )
        .build();
    let pages = ec2
        .describe_image_references()
        .set_image_ids(Some(batch.split(' ').map(str::to_string).collect()))
        .include_all_resource_types(true)
        .resource_types(instances)
        .into_paginator()
        .send();
    all_pages(pages, |p| p.image_references.unwrap_or_default()).await
}

/// Records each answered batch's references; returns the images whose
/// references were read (a failed batch is a scan error, and its images'
/// references stay not known).
pub fn rows(
    harvest: &mut Harvest,
    outcomes: Vec<(String, CallResult<Vec<ImageReference>>)>,
) -> BTreeSet<String> {
    let mut read = BTreeSet::new();
    for (batch, outcome) in outcomes {
        let Some(references) =
            harvest.take("ec2", "DescribeImageReferences", Some(&batch), outcome)
        else {
            continue;
        };
        let asked: BTreeSet<&str> = batch.split(' ').collect();
        for reference in &references {
            // Only what was asked about is taken as an answer.
            let (Some(image_id), Some(arn)) = (reference.image_id(), text(reference.arn())) else {
                continue;
            };
            if !asked.contains(image_id) {
                continue;
            }
            let row = ImageReferenceRow {
                account_id: harvest.account_id.clone(),
                region: harvest.region.clone(),
                image_id: image_id.to_string(),
                resource_type: enum_text(reference.resource_type()),
                resource_arn: arn,
            };
            harvest.push(row);
        }
        read.extend(asked.into_iter().map(str::to_string));
    }
    read
}
