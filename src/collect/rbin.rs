//! Recycle Bin: the retention rules that keep a deregistered AMI
//! (`EC2_IMAGE`) and deleted snapshots (`EBS_SNAPSHOT`) recoverable.
//! ListRules for each resource type, then GetRule for each rule (its
//! status, resource and exclusion tags are only there).

use aws_sdk_rbin::operation::get_rule::GetRuleOutput;
use aws_sdk_rbin::types::{ResourceType, RetentionPeriodUnit, RuleSummary};

use super::calls::{CallResult, all_pages, each_bounded, enum_text, sdk, text};
use super::harvest::Harvest;
use crate::inventory::schema::RecycleBinRuleRow;

const SERVICE: &str = "rbin";
const RESOURCE_TYPES: [ResourceType; 2] = [ResourceType::Ec2Image, ResourceType::EbsSnapshot];

/// Each resource type's rules, then each rule's details.
pub struct Fetched {
    listed: Vec<(ResourceType, CallResult<Vec<RuleSummary>>)>,
    details: Vec<(String, CallResult<GetRuleOutput>)>,
}

pub async fn fetch(client: &aws_sdk_rbin::Client, limit: usize) -> Fetched {
    let mut listed = Vec::new();
    for resource_type in RESOURCE_TYPES {
        let pages = client
            .list_rules()
            .resource_type(resource_type.clone())
            .into_paginator()
            .send();
        let rules = all_pages(pages, |p| p.rules.unwrap_or_default()).await;
        listed.push((resource_type, rules));
    }
    let identifiers: Vec<String> = listed
        .iter()
        .filter_map(|(_, rules)| rules.as_ref().ok())
        .flatten()
        .filter_map(|r| text(r.identifier()))
        .collect();
    let details = each_bounded(identifiers, limit, |identifier| async move {
        client
            .get_rule()
            .identifier(identifier)
            .send()
            .await
            .map_err(sdk)
    })
    .await;
    Fetched { listed, details }
}

/// One row per listed rule; a failed listing or detail is a scan error, and
/// a rule whose detail failed keeps `detail_read` false.
pub fn record(harvest: &mut Harvest, fetched: Fetched) {
    let mut details = std::collections::BTreeMap::new();
    for (identifier, outcome) in fetched.details {
        if let Some(detail) = harvest.take(SERVICE, "GetRule", Some(&identifier), outcome) {
            details.insert(identifier, detail);
        }
    }
    for (resource_type, outcome) in fetched.listed {
        // A listing is the account-region's, whichever type failed: the
        // whole region's rules are then not known.
        let Some(rules) = harvest.take(SERVICE, "ListRules", None, outcome) else {
            continue;
        };
        for rule in &rules {
            let Some(arn) = text(rule.rule_arn()) else {
                continue;
            };
            let detail = rule.identifier().and_then(|id| details.get(id));
            let retention = rule.retention_period();
            let row = RecycleBinRuleRow {
                account_id: harvest.account_id.clone(),
                region: harvest.region.clone(),
                rule_arn: arn,
                identifier: text(rule.identifier()),
                resource_type: resource_type.as_str().to_string(),
                detail_read: detail.is_some(),
                status: detail.and_then(|d| enum_text(d.status())),
                lock_state: detail
                    .and_then(|d| enum_text(d.lock_state()))
                    .or_else(|| enum_text(rule.lock_state())),
                retention_days: retention
                    .filter(|p| p.retention_period_unit() == &RetentionPeriodUnit::Days)
                    .map(|p| i64::from(p.retention_period_value())),
                resource_tag_count: detail.map(|d| d.resource_tags().len() as i64),
                exclude_tag_count: detail.map(|d| d.exclude_resource_tags().len() as i64),
            };
            harvest.push(row);
        }
    }
}
