//! EC2 images the account owns: DescribeImages (with block devices and
//! tags) and each image's launch permissions (DescribeImageAttribute).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, Image, ImageAttributeName};

use super::calls::{CallResult, all_pages, enum_text, parse_time, text};
use super::harvest::Harvest;
use crate::aws::CallError;
use crate::inventory::schema::{ImageBlockDeviceRow, ImageRow, ImageTagRow, LaunchPermissionRow};

pub async fn describe_images(ec2: &aws_sdk_ec2::Client) -> CallResult<Vec<Image>> {
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

/// Images by id as DescribeImages shows them to the account now, whoever
/// owns them (deprecated and disabled included). A filter, unlike
/// ImageIds, does not fail on ids that no longer exist: an id absent from
/// the answer is not visible.
pub async fn describe_by_id(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> CallResult<Vec<Image>> {
    let mut shown = Vec::new();
    for chunk in ids.chunks(200) {
        let filter = Filter::builder()
            .name("image-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let out = ec2
            .describe_images()
            .filters(filter)
            .include_deprecated(true)
            .include_disabled(true)
            .send()
            .await
            .map_err(|e| CallError::from_sdk(&e))?;
        shown.extend(out.images.unwrap_or_default());
    }
    Ok(shown)
}

pub async fn launch_permissions(
    ec2: &aws_sdk_ec2::Client,
    image_id: String,
) -> CallResult<aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput> {
    ec2.describe_image_attribute()
        .image_id(image_id)
        .attribute(ImageAttributeName::LaunchPermission)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))
}

/// The images' rows with their launch permissions' rows; `references_read`
/// names the images whose references (DescribeImageReferences) were read.
pub fn rows(
    harvest: &mut Harvest,
    images: &[Image],
    launch_permissions: Vec<(
        String,
        CallResult<aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput>,
    )>,
    references_read: &BTreeSet<String>,
) {
    let permission_counts = permission_rows(harvest, launch_permissions);
    for image in images {
        let count = image
            .image_id()
            .and_then(|id| permission_counts.get(id))
            .copied();
        let read = image
            .image_id()
            .is_some_and(|id| references_read.contains(id));
        image_rows(harvest, image, count, read);
    }
}

/// Records each image's launch permissions; returns image id -> how many
/// (absent where the read failed).
fn permission_rows(
    harvest: &mut Harvest,
    outcomes: Vec<(
        String,
        CallResult<aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput>,
    )>,
) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for (image_id, outcome) in outcomes {
        let Some(out) = harvest.take("ec2", "DescribeImageAttribute", Some(&image_id), outcome)
        else {
            continue;
        };
        let permissions = out.launch_permissions();
        counts.insert(image_id.clone(), permissions.len() as i64);
        for permission in permissions {
            let row = LaunchPermissionRow {
                account_id: harvest.account_id.clone(),
                region: harvest.region.clone(),
                image_id: image_id.clone(),
                group: enum_text(permission.group()),
                user_id: text(permission.user_id()),
                organization_arn: text(permission.organization_arn()),
                organizational_unit_arn: text(permission.organizational_unit_arn()),
            };
            harvest.push(row);
        }
    }
    counts
}

/// The image, its block devices and its tags.
fn image_rows(
    harvest: &mut Harvest,
    image: &Image,
    launch_permission_count: Option<i64>,
    references_read: bool,
) {
    let Some(image_id) = image.image_id() else {
        return;
    };
    let (account_id, region) = (harvest.account_id.clone(), harvest.region.clone());
    let mut row = image_row(&account_id, &region, image, launch_permission_count);
    // Read: true; not asked or failed: not known (never false).
    row.references_read = references_read.then_some(true);
    harvest.push(row);
    for device in image.block_device_mappings() {
        let ebs = device.ebs();
        harvest.push(ImageBlockDeviceRow {
            account_id: account_id.clone(),
            region: region.clone(),
            image_id: image_id.to_string(),
            device_name: text(device.device_name()),
            virtual_name: text(device.virtual_name()),
            is_ebs: ebs.is_some(),
            snapshot_id: text(ebs.and_then(|e| e.snapshot_id())),
            volume_size: ebs.and_then(|e| e.volume_size()).map(i64::from),
            volume_type: enum_text(ebs.and_then(|e| e.volume_type())),
            encrypted: ebs.and_then(|e| e.encrypted()),
            kms_key_id: text(ebs.and_then(|e| e.kms_key_id())),
            delete_on_termination: ebs.and_then(|e| e.delete_on_termination()),
        });
    }
    for tag in image.tags() {
        if let Some(key) = tag.key() {
            harvest.push(ImageTagRow {
                account_id: account_id.clone(),
                region: region.clone(),
                image_id: image_id.to_string(),
                key: key.to_string(),
                value: text(tag.value()),
            });
        }
    }
}

pub fn image_row(
    account_id: &str,
    region: &str,
    image: &Image,
    launch_permission_count: Option<i64>,
) -> ImageRow {
    ImageRow {
        account_id: account_id.to_string(),
        region: region.to_string(),
        image_id: image.image_id().unwrap_or_default().to_string(),
        name: text(image.name()),
        description: text(image.description()),
        state: enum_text(image.state()),
        owner_id: text(image.owner_id()),
        creation_date: parse_time(image.creation_date()),
        deprecation_time: parse_time(image.deprecation_time()),
        last_launched_time: parse_time(image.last_launched_time()),
        public: image.public(),
        architecture: enum_text(image.architecture()),
        platform: enum_text(image.platform()),
        platform_details: text(image.platform_details()),
        image_type: enum_text(image.image_type()),
        root_device_type: enum_text(image.root_device_type()),
        root_device_name: text(image.root_device_name()),
        virtualization_type: enum_text(image.virtualization_type()),
        ena_support: image.ena_support(),
        imds_support: enum_text(image.imds_support()),
        boot_mode: enum_text(image.boot_mode()),
        tpm_support: enum_text(image.tpm_support()),
        deregistration_protection: text(image.deregistration_protection()),
        source_image_id: text(image.source_image_id()),
        source_image_region: text(image.source_image_region()),
        image_allowed: image.image_allowed(),
        launch_permission_count,
        source_instance_id: text(image.source_instance_id()),
        // Set by `rows` once its references were read.
        references_read: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::TableBuilder;
    use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, ImageState, Tag};

    #[test]
    fn an_sdk_image_maps_to_rows_the_schema_accepts() {
        let image = Image::builder()
            .image_id("ami-1")
            .name("web-golden-20261101-v1")
            .state(ImageState::Available)
            .owner_id("111111111111")
            .creation_date("2026-11-01T10:00:00.000Z")
            .public(false)
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        EbsBlockDevice::builder()
                            .snapshot_id("snap-1")
                            .encrypted(true)
                            .kms_key_id("arn:aws:kms:eu-west-1:111111111111:key/k")
                            .build(),
                    )
                    .build(),
            )
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/sdb")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .tags(Tag::builder().key("Owner").value("platform").build())
            .build();
        let region = crate::discover::RegionInfo {
            region: "eu-west-1".into(),
            opt_in_status: None,
        };
        let mut harvest = Harvest::new("111111111111", &region);
        image_rows(&mut harvest, &image, Some(2), true);
        let tables: Vec<&str> = harvest.rows.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            tables,
            vec![
                "images",
                "image_block_devices",
                "image_block_devices",
                "image_tags"
            ]
        );
        for (table, values) in harvest.rows {
            let mut builder = TableBuilder::named(table).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(builder.push_values(values), Ok(()), "{table}");
        }
        let row = image_row("111111111111", "eu-west-1", &image, None);
        assert_eq!(row.creation_date.map(|m| m.0), Some(1_793_527_200_000));
        assert_eq!(row.state.as_deref(), Some("available"));
        assert_eq!(row.launch_permission_count, None);
    }
}
