//! EC2 Image Builder: the factory. Pipelines, the image builds each
//! produced (with every AMI they distributed), and the recipe, distribution
//! and infrastructure configurations they use; lifecycle policies.
//!
//! Where Image Builder is not used this is one call (ListImagePipelines).
//! Container pipelines are left out: the rules judge AMI pipelines.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_imagebuilder::Client;
use aws_sdk_imagebuilder::operation::get_distribution_configuration::GetDistributionConfigurationOutput;
use aws_sdk_imagebuilder::operation::get_image_recipe::GetImageRecipeOutput;
use aws_sdk_imagebuilder::operation::get_infrastructure_configuration::GetInfrastructureConfigurationOutput;
use aws_sdk_imagebuilder::operation::get_lifecycle_policy::GetLifecyclePolicyOutput;
use aws_sdk_imagebuilder::types::{ImagePipeline, ImageSummary, LifecyclePolicySummary};

use super::calls::{CallResult, all_pages, each_bounded, enum_text, parse_time, sdk, text};
use super::harvest::Harvest;
use crate::inventory::schema::{
    DistributionRow, DistributionShareRow, ImageRecipeRow, InfrastructureRow,
    LifecyclePolicyRecipeRow, LifecyclePolicyRow, LifecyclePolicyRuleRow, LifecyclePolicyTagRow,
    PipelineAmiRow, PipelineImageRow, PipelineImageTagRow, PipelineRow, RecipeBlockDeviceRow,
};

const SERVICE: &str = "imagebuilder";

/// Every Image Builder answer of one account-region, before it becomes rows.
pub struct Fetched {
    pipelines: CallResult<Vec<ImagePipeline>>,
    images: Vec<(String, CallResult<Vec<ImageSummary>>)>,
    recipes: Vec<(String, CallResult<GetImageRecipeOutput>)>,
    distributions: Vec<(String, CallResult<GetDistributionConfigurationOutput>)>,
    infrastructures: Vec<(String, CallResult<GetInfrastructureConfigurationOutput>)>,
    /// None where no AMI pipeline exists: nothing for a policy to cover.
    lifecycle: Option<CallResult<Vec<LifecyclePolicySummary>>>,
    lifecycle_details: Vec<(String, CallResult<GetLifecyclePolicyOutput>)>,
}

/// Makes every call, `limit` per-resource calls at once.
pub async fn fetch(client: &Client, limit: usize) -> Fetched {
    let pipelines = all_pages(
        client.list_image_pipelines().into_paginator().send(),
        |page| page.image_pipeline_list.unwrap_or_default(),
    )
    .await
    .map(|all| {
        all.into_iter()
            .filter(|p| p.image_recipe_arn().is_some())
            .collect::<Vec<_>>()
    });
    let empty = Fetched {
        pipelines: Ok(Vec::new()),
        images: Vec::new(),
        recipes: Vec::new(),
        distributions: Vec::new(),
        infrastructures: Vec::new(),
        lifecycle: None,
        lifecycle_details: Vec::new(),
    };
    let list = match &pipelines {
        Ok(list) if !list.is_empty() => list,
        _ => return Fetched { pipelines, ..empty },
    };
    let arns = |f: fn(&ImagePipeline) -> Option<&str>| -> BTreeSet<String> {
        list.iter().filter_map(f).map(str::to_string).collect()
    };
    let pipeline_arns: Vec<String> = list
        .iter()
        .filter_map(|p| p.arn().map(str::to_string))
        .collect();
    let (images, recipes, distributions, infrastructures, (summaries, lifecycle_details)) = tokio::join!(
        pipeline_images(client, pipeline_arns, limit),
        each_bounded(
            arns(ImagePipeline::image_recipe_arn),
            limit,
            |arn| async move {
                client
                    .get_image_recipe()
                    .image_recipe_arn(arn)
                    .send()
                    .await
                    .map_err(sdk)
            }
        ),
        each_bounded(
            arns(ImagePipeline::distribution_configuration_arn),
            limit,
            |arn| async move {
                client
                    .get_distribution_configuration()
                    .distribution_configuration_arn(arn)
                    .send()
                    .await
                    .map_err(sdk)
            }
        ),
        each_bounded(
            arns(ImagePipeline::infrastructure_configuration_arn),
            limit,
            |arn| async move {
                client
                    .get_infrastructure_configuration()
                    .infrastructure_configuration_arn(arn)
                    .send()
                    .await
                    .map_err(sdk)
            }
        ),
        lifecycle_policies(client, limit),
    );
    Fetched {
        pipelines,
        images,
        recipes,
        distributions,
        infrastructures,
        lifecycle: Some(summaries),
        lifecycle_details,
    }
}

/// Turns the answers into rows; every failed call becomes a scan error.
pub fn record(harvest: &mut Harvest, fetched: Fetched) {
    let Some(pipelines) = harvest.take(SERVICE, "ListImagePipelines", None, fetched.pipelines)
    else {
        return;
    };
    let mut listed = BTreeMap::new();
    for (arn, outcome) in fetched.images {
        let Some(images) = harvest.take(SERVICE, "ListImagePipelineImages", Some(&arn), outcome)
        else {
            continue;
        };
        listed.insert(arn.clone(), images.len() as i64);
        for image in &images {
            image_rows(harvest, &arn, image);
        }
    }
    for pipeline in &pipelines {
        let images_listed = pipeline.arn().and_then(|a| listed.get(a)).copied();
        if let Some(row) = pipeline_row(
            &harvest.account_id,
            &harvest.region,
            pipeline,
            images_listed,
        ) {
            harvest.push(row);
        }
    }
    for (arn, outcome) in fetched.recipes {
        if let Some(recipe) = harvest
            .take(SERVICE, "GetImageRecipe", Some(&arn), outcome)
            .and_then(|out| out.image_recipe)
        {
            recipe_rows(harvest, &arn, &recipe);
        }
    }
    for (arn, outcome) in fetched.distributions {
        if let Some(config) = harvest
            .take(SERVICE, "GetDistributionConfiguration", Some(&arn), outcome)
            .and_then(|out| out.distribution_configuration)
        {
            distribution_rows(harvest, &arn, &config);
        }
    }
    for (arn, outcome) in fetched.infrastructures {
        if let Some(config) = harvest
            .take(
                SERVICE,
                "GetInfrastructureConfiguration",
                Some(&arn),
                outcome,
            )
            .and_then(|out| out.infrastructure_configuration)
        {
            let row = infrastructure_row(&harvest.account_id, &harvest.region, &arn, &config);
            harvest.push(row);
        }
    }
    if let Some(lifecycle) = fetched.lifecycle {
        lifecycle_rows(harvest, lifecycle, fetched.lifecycle_details);
    }
}

/// The lifecycle policies' rows, their rules and the recipes they select.
fn lifecycle_rows(
    harvest: &mut Harvest,
    lifecycle: CallResult<Vec<LifecyclePolicySummary>>,
    lifecycle_details: Vec<(String, CallResult<GetLifecyclePolicyOutput>)>,
) {
    let Some(summaries) = harvest.take(SERVICE, "ListLifecyclePolicies", None, lifecycle) else {
        return;
    };
    let mut details = BTreeMap::new();
    for (arn, outcome) in lifecycle_details {
        if let Some(policy) = harvest
            .take(SERVICE, "GetLifecyclePolicy", Some(&arn), outcome)
            .and_then(|out| out.lifecycle_policy)
        {
            details.insert(arn, policy);
        }
    }
    for summary in &summaries {
        let Some(arn) = summary.arn() else { continue };
        let detail = details.get(arn);
        let actions = detail.map(|d| {
            let mut names: Vec<String> = d
                .policy_details()
                .iter()
                .filter_map(|p| p.action().map(|a| a.r#type().as_str().to_string()))
                .collect();
            names.sort();
            names.dedup();
            names.join(",")
        });
        let selection = detail.and_then(|d| d.resource_selection());
        let row = LifecyclePolicyRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            policy_arn: arn.to_string(),
            name: text(summary.name()),
            status: enum_text(summary.status()),
            resource_type: enum_text(summary.resource_type()),
            actions,
            // Read, but with no selection at all: it selects nothing by tag.
            selects_by_tags: detail.map(|_| selection.is_some_and(|s| s.tag_map().is_some())),
        };
        harvest.push(row);
        if let Some(policy) = detail {
            lifecycle_rule_rows(harvest, arn, policy);
        }
        for recipe in selection.map(|s| s.recipes()).unwrap_or_default() {
            let row = LifecyclePolicyRecipeRow {
                account_id: harvest.account_id.clone(),
                region: harvest.region.clone(),
                policy_arn: arn.to_string(),
                recipe_name: recipe.name().to_string(),
                semantic_version: recipe.semantic_version().to_string(),
            };
            harvest.push(row);
        }
    }
}

/// Each pipeline's images.
async fn pipeline_images(
    client: &Client,
    pipeline_arns: Vec<String>,
    limit: usize,
) -> Vec<(String, CallResult<Vec<ImageSummary>>)> {
    each_bounded(pipeline_arns, limit, |arn| async move {
        all_pages(
            client
                .list_image_pipeline_images()
                .image_pipeline_arn(arn)
                .into_paginator()
                .send(),
            |page| page.image_summary_list.unwrap_or_default(),
        )
        .await
    })
    .await
}

/// The lifecycle policies, then each one's details.
async fn lifecycle_policies(
    client: &Client,
    limit: usize,
) -> (
    CallResult<Vec<LifecyclePolicySummary>>,
    Vec<(String, CallResult<GetLifecyclePolicyOutput>)>,
) {
    let summaries = all_pages(
        client.list_lifecycle_policies().into_paginator().send(),
        |page| page.lifecycle_policy_summary_list.unwrap_or_default(),
    )
    .await;
    let arns: Vec<String> = summaries
        .iter()
        .flatten()
        .filter_map(|s| s.arn().map(str::to_string))
        .collect();
    let details = each_bounded(arns, limit, |arn| async move {
        client
            .get_lifecycle_policy()
            .lifecycle_policy_arn(arn)
            .send()
            .await
            .map_err(sdk)
    })
    .await;
    (summaries, details)
}

/// A lifecycle policy's rules and the tags it selects images by.
fn lifecycle_rule_rows(
    harvest: &mut Harvest,
    arn: &str,
    policy: &aws_sdk_imagebuilder::types::LifecyclePolicy,
) {
    for (index, detail) in policy.policy_details().iter().enumerate() {
        let action = detail.action();
        // includeResources: "Specifies whether the lifecycle action should
        // apply to distributed AMIs"; absent, it applies to none of them
        // (the SDK reads an absent flag as false, as AWS sends it).
        let include = action.and_then(|a| a.include_resources());
        let filter = detail.filter();
        harvest.push(LifecyclePolicyRuleRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            policy_arn: arn.to_string(),
            rule_index: index as i64,
            action: action.map(|a| a.r#type().as_str().to_string()),
            include_amis: include.is_some_and(|i| i.amis()),
            include_snapshots: include.is_some_and(|i| i.snapshots()),
            filter_type: filter.map(|f| f.r#type().as_str().to_string()),
            filter_value: filter.map(|f| i64::from(f.value())),
            filter_unit: enum_text(filter.and_then(|f| f.unit())),
        });
    }
    let tags: BTreeMap<&String, &String> = policy
        .resource_selection()
        .and_then(|s| s.tag_map())
        .into_iter()
        .flatten()
        .collect();
    for (key, value) in tags {
        harvest.push(LifecyclePolicyTagRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            policy_arn: arn.to_string(),
            key: key.clone(),
            value: Some(value.clone()),
        });
    }
}

pub fn pipeline_row(
    account_id: &str,
    region: &str,
    p: &ImagePipeline,
    images_listed: Option<i64>,
) -> Option<PipelineRow> {
    let schedule = p.schedule();
    Some(PipelineRow {
        account_id: account_id.to_string(),
        region: region.to_string(),
        pipeline_arn: p.arn()?.to_string(),
        name: text(p.name()),
        status: enum_text(p.status()),
        platform: enum_text(p.platform()),
        schedule_expression: text(schedule.and_then(|s| s.schedule_expression()))
            .filter(|e| !e.is_empty()),
        schedule_timezone: text(schedule.and_then(|s| s.timezone())),
        start_condition: enum_text(schedule.and_then(|s| s.pipeline_execution_start_condition())),
        // "Image Builder defaults to enable tests to run following the
        // image build, before image distribution": an answer that names no
        // setting has tests on.
        tests_enabled: Some(
            p.image_tests_configuration()
                .and_then(|t| t.image_tests_enabled())
                .unwrap_or(true),
        ),
        // No scanning configuration at all means scanning was never turned on.
        scanning_enabled: Some(
            p.image_scanning_configuration()
                .and_then(|s| s.image_scanning_enabled())
                .unwrap_or(false),
        ),
        enhanced_metadata_enabled: p.enhanced_image_metadata_enabled(),
        last_run_status: enum_text(p.last_run_status()),
        consecutive_failures: p.consecutive_failures().map(i64::from),
        next_run: parse_time(p.date_next_run()),
        date_created: parse_time(p.date_created()),
        image_recipe_arn: text(p.image_recipe_arn()),
        infrastructure_arn: text(p.infrastructure_configuration_arn()),
        distribution_arn: text(p.distribution_configuration_arn()),
        images_listed,
    })
}

fn image_rows(harvest: &mut Harvest, pipeline_arn: &str, image: &ImageSummary) {
    let Some(build_arn) = image.arn() else { return };
    harvest.push(PipelineImageRow {
        account_id: harvest.account_id.clone(),
        region: harvest.region.clone(),
        image_build_arn: build_arn.to_string(),
        pipeline_arn: pipeline_arn.to_string(),
        name: text(image.name()),
        version: text(image.version()),
        status: image
            .state()
            .and_then(|s| s.status())
            .map(|s| s.as_str().to_string()),
        date_created: parse_time(image.date_created()),
        build_type: enum_text(image.build_type()),
    });
    // Sorted: the harvest's rows, and so the inventory, are deterministic.
    let tags: BTreeMap<&String, &String> = image.tags().into_iter().flatten().collect();
    for (key, value) in tags {
        harvest.push(PipelineImageTagRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            image_build_arn: build_arn.to_string(),
            key: key.clone(),
            value: Some(value.clone()),
        });
    }
    let amis = image
        .output_resources()
        .map(|o| o.amis())
        .unwrap_or_default();
    for ami in amis {
        let (Some(region), Some(image_id)) = (ami.region(), ami.image()) else {
            continue;
        };
        harvest.push(PipelineAmiRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            image_build_arn: build_arn.to_string(),
            pipeline_arn: pipeline_arn.to_string(),
            ami_region: region.to_string(),
            ami_account_id: ami.account_id().unwrap_or(&harvest.account_id).to_string(),
            image_id: image_id.to_string(),
        });
    }
}

fn recipe_rows(
    harvest: &mut Harvest,
    arn: &str,
    recipe: &aws_sdk_imagebuilder::types::ImageRecipe,
) {
    let devices = recipe.block_device_mappings();
    harvest.push(ImageRecipeRow {
        account_id: harvest.account_id.clone(),
        region: harvest.region.clone(),
        recipe_arn: arn.to_string(),
        name: text(recipe.name()),
        version: text(recipe.version()),
        parent_image: text(recipe.parent_image()),
        component_count: Some(recipe.components().len() as i64),
        block_device_count: Some(devices.len() as i64),
    });
    for device in devices {
        let ebs = device.ebs();
        harvest.push(RecipeBlockDeviceRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            recipe_arn: arn.to_string(),
            device_name: text(device.device_name()),
            is_ebs: ebs.is_some(),
            encrypted: ebs.and_then(|e| e.encrypted()),
            kms_key_id: text(ebs.and_then(|e| e.kms_key_id())),
            volume_size: ebs.and_then(|e| e.volume_size()).map(i64::from),
            volume_type: enum_text(ebs.and_then(|e| e.volume_type())),
        });
    }
}

fn distribution_rows(
    harvest: &mut Harvest,
    arn: &str,
    config: &aws_sdk_imagebuilder::types::DistributionConfiguration,
) {
    for d in config.distributions() {
        let ami = d.ami_distribution_configuration();
        harvest.push(DistributionRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            distribution_arn: arn.to_string(),
            name: text(config.name()),
            target_region: d.region().to_string(),
            ami_distribution: ami.is_some(),
            kms_key_id: text(ami.and_then(|a| a.kms_key_id())),
            ssm_parameter_count: Some(d.ssm_parameter_configurations().len() as i64),
            launch_template_count: Some(d.launch_template_configurations().len() as i64),
        });
        let Some(ami) = ami else { continue };
        let permission = ami.launch_permission();
        let shares = [
            ("target_account", ami.target_account_ids()),
            (
                "user_id",
                permission.map(|p| p.user_ids()).unwrap_or_default(),
            ),
            (
                "group",
                permission.map(|p| p.user_groups()).unwrap_or_default(),
            ),
            (
                "organization_arn",
                permission
                    .map(|p| p.organization_arns())
                    .unwrap_or_default(),
            ),
            (
                "organizational_unit_arn",
                permission
                    .map(|p| p.organizational_unit_arns())
                    .unwrap_or_default(),
            ),
        ];
        let unique: BTreeSet<(&str, &String)> = shares
            .iter()
            .flat_map(|(kind, targets)| targets.iter().map(move |t| (*kind, t)))
            .collect();
        for (kind, target) in unique {
            harvest.push(DistributionShareRow {
                account_id: harvest.account_id.clone(),
                region: harvest.region.clone(),
                distribution_arn: arn.to_string(),
                target_region: d.region().to_string(),
                kind: kind.to_string(),
                target: target.clone(),
            });
        }
    }
}

pub fn infrastructure_row(
    account_id: &str,
    region: &str,
    arn: &str,
    config: &aws_sdk_imagebuilder::types::InfrastructureConfiguration,
) -> InfrastructureRow {
    let metadata = config.instance_metadata_options();
    InfrastructureRow {
        account_id: account_id.to_string(),
        region: region.to_string(),
        infrastructure_arn: arn.to_string(),
        name: text(config.name()),
        // As AWS answered: none set means the build instance is launched
        // with EC2's default, which the account-region's instance metadata
        // defaults and the parent image decide (PIPELINE-BUILD-IMDSV1).
        http_tokens: text(metadata.and_then(|m| m.http_tokens())),
        http_put_response_hop_limit: metadata
            .and_then(|m| m.http_put_response_hop_limit())
            .map(i64::from),
        terminate_on_failure: config.terminate_instance_on_failure(),
        sns_topic_arn: text(config.sns_topic_arn()),
        logging_bucket: text(
            config
                .logging()
                .and_then(|l| l.s3_logs())
                .and_then(|s| s.s3_bucket_name()),
        ),
        instance_profile_name: text(config.instance_profile_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::schema::TableRow;
    use aws_sdk_imagebuilder::types::{
        ImageScanningConfiguration, ImageTestsConfiguration, PipelineStatus, Schedule,
    };

    #[test]
    fn a_pipeline_maps_to_a_row_the_schema_accepts() {
        let pipeline = ImagePipeline::builder()
            .arn("arn:aws:imagebuilder:eu-west-1:111111111111:image-pipeline/web")
            .name("web")
            .status(PipelineStatus::Enabled)
            .schedule(
                Schedule::builder()
                    .schedule_expression("cron(0 0 * * ? *)")
                    .build(),
            )
            .image_tests_configuration(
                ImageTestsConfiguration::builder()
                    .image_tests_enabled(false)
                    .build(),
            )
            .image_scanning_configuration(ImageScanningConfiguration::builder().build())
            .consecutive_failures(3)
            .date_created("2026-01-02T03:04:05.000Z")
            .image_recipe_arn("arn:aws:imagebuilder:eu-west-1:111111111111:image-recipe/web/1.0.0")
            .build();
        let row = pipeline_row("111111111111", "eu-west-1", &pipeline, Some(4)).expect("row");
        assert_eq!(row.status.as_deref(), Some("ENABLED"));
        assert_eq!(row.tests_enabled, Some(false));
        // A scanning block that does not say it is enabled is off.
        assert_eq!(row.scanning_enabled, Some(false));
        assert_eq!(row.consecutive_failures, Some(3));
        assert_eq!(row.date_created.map(|m| m.0), Some(1_767_323_045_000));
        let columns = crate::inventory::schema::table("pipelines").map(|t| t.columns.len());
        assert_eq!(Some(row.into_values().len()), columns);
    }

    #[test]
    fn build_instances_without_metadata_options_get_no_http_tokens_of_their_own() {
        let config = aws_sdk_imagebuilder::types::InfrastructureConfiguration::builder().build();
        let row = infrastructure_row("111111111111", "eu-west-1", "arn:infra", &config);
        assert_eq!(row.http_tokens, None);
    }

    #[test]
    fn a_pipeline_that_names_no_test_setting_has_tests_on() {
        let pipeline = ImagePipeline::builder()
            .arn("arn:aws:imagebuilder:eu-west-1:111111111111:image-pipeline/web")
            .build();
        let row = pipeline_row("111111111111", "eu-west-1", &pipeline, None).expect("row");
        assert_eq!(row.tests_enabled, Some(true));
    }
}
