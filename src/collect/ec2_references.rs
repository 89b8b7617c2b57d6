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
use crate::aws::CallError;
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
        // A reference that does not say which image (or what resource) it
        // is leaves the batch's answer incomplete: none of it is read.
        if references
            .iter()
            .any(|r| r.image_id().is_none() || r.arn().is_none())
        {
            harvest.fail(
                "ec2",
                "DescribeImageReferences",
                Some(&batch),
                &CallError {
                    code: "IncompleteAnswer".to_string(),
                    message: "a reference named no image or no resource".to_string(),
                },
            );
            continue;
        }
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

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{ImageReference, ImageReferenceResourceType};

    use super::*;

    fn reference(image: &str, arn: &str) -> ImageReference {
        ImageReference::builder()
            .image_id(image)
            .resource_type(ImageReferenceResourceType::ImageBuilderImageRecipe)
            .arn(arn)
            .build()
    }

    #[test]
    fn only_answered_batches_are_read_and_only_what_was_asked_is_taken() {
        let region = crate::discover::RegionInfo {
            region: "eu-west-1".into(),
            opt_in_status: None,
        };
        let mut harvest = Harvest::new("111111111111", &region);
        let ids: Vec<String> = (0..12).map(|n| format!("ami-{n:02}")).collect();
        let batches = batches(ids);
        assert_eq!(batches.len(), 2, "at most 10 images a call");
        let outcomes = vec![
            (
                batches[0].clone(),
                Ok(vec![
                    reference(
                        "ami-03",
                        "arn:aws:imagebuilder:eu-west-1:111111111111:image-recipe/a/1.0.0",
                    ),
                    // Not asked in this batch: not taken as an answer.
                    reference("ami-99", "arn:aws:ec2:eu-west-1:111111111111:instance/i-1"),
                ]),
            ),
            (
                batches[1].clone(),
                Err(CallError {
                    code: "Throttling".into(),
                    message: "Rate exceeded".into(),
                }),
            ),
        ];
        let read = rows(&mut harvest, outcomes);
        assert_eq!(read.len(), 10);
        assert!(read.contains("ami-09") && !read.contains("ami-10"));
        let references: Vec<_> = harvest
            .rows
            .iter()
            .filter(|(t, _)| *t == "image_references")
            .collect();
        assert_eq!(references.len(), 1, "{references:?}");
        assert_eq!(harvest.errors.len(), 1);
        assert_eq!(
            harvest.errors[0].resource_id.as_deref(),
            Some("ami-10 ami-11")
        );

        // An answer that names no image for a reference reads nothing.
        let nameless = ImageReference::builder()
            .arn("arn:aws:ec2:eu-west-1:111111111111:instance/i-2")
            .build();
        let read = rows(
            &mut harvest,
            vec![("ami-20 ami-21".to_string(), Ok(vec![nameless]))],
        );
        assert!(read.is_empty());
        assert_eq!(harvest.errors.len(), 2);
    }
}
