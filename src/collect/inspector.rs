//! Amazon Inspector: whether EC2 scanning is on in the account-region, and
//! the active findings on instances (each names the AMI it runs).

use aws_sdk_inspector2::types::{FilterCriteria, Finding, StringComparison, StringFilter};

use super::calls::{CallResult, all_pages, enum_text, smithy_time, text};
use super::harvest::Harvest;
use crate::aws::CallError;
use crate::inventory::schema::InspectorFindingRow;

/// Inspector's EC2 scanning status in this account-region.
pub async fn status(client: &aws_sdk_inspector2::Client, account_id: &str) -> CallResult<String> {
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
    Ok(status.unwrap_or_else(|| "DISABLED".to_string()))
}

/// Active findings on EC2 instances.
pub async fn findings(client: &aws_sdk_inspector2::Client) -> CallResult<Vec<Finding>> {
    let filter = |value: &str| {
        StringFilter::builder()
            .comparison(StringComparison::Equals)
            .value(value)
            .build()
            .map_err(|e| CallError {
                code: "ClientError".to_string(),
                message: e.to_string(),
            })
    };
    let criteria = FilterCriteria::builder()
        .finding_status(filter("ACTIVE")?)
        .resource_type(filter("AWS_EC2_INSTANCE")?)
        .build();
    let pages = client
        .list_findings()
        .filter_criteria(criteria)
        .max_results(100)
        .into_paginator()
        .send();
    all_pages(pages, |p| p.findings.unwrap_or_default()).await
}

/// A finding tied to an AMI becomes a row; others are not about images.
pub fn finding_row(harvest: &mut Harvest, finding: &Finding) {
    let resource = finding.resources().first();
    let image_id = resource
        .and_then(|r| r.details())
        .and_then(|d| d.aws_ec2_instance())
        .and_then(|i| i.image_id());
    let Some(image_id) = image_id else { return };
    let row = InspectorFindingRow {
        account_id: harvest.account_id.clone(),
        region: harvest.region.clone(),
        finding_arn: finding.finding_arn().to_string(),
        image_id: Some(image_id.to_string()),
        instance_id: text(resource.map(|r| r.id())),
        resource_type: enum_text(resource.map(|r| r.r#type())),
        severity: Some(finding.severity().as_str().to_string()),
        vulnerability_id: text(
            finding
                .package_vulnerability_details()
                .map(|p| p.vulnerability_id()),
        ),
        title: text(finding.title()),
        status: Some(finding.status().as_str().to_string()),
        fix_available: enum_text(finding.fix_available()),
        first_observed_at: smithy_time(Some(finding.first_observed_at())),
        last_observed_at: smithy_time(Some(finding.last_observed_at())),
    };
    harvest.push(row);
}
