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
    // Both listings at once: each is a round trip on the region's path.
    let list = |resource_type: ResourceType| async move {
        let pages = client
            .list_rules()
            .resource_type(resource_type.clone())
            .into_paginator()
            .send();
        let rules = all_pages(pages, |p| p.rules.unwrap_or_default()).await;
        (resource_type, rules)
    };
    let [images, snapshots] = RESOURCE_TYPES;
    let (images, snapshots) = tokio::join!(list(images), list(snapshots));
    let listed = vec![images, snapshots];
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
            // A rule is kept even without its ARN (named by its id then):
            // dropping it could turn a rule in effect into "none".
            let Some(arn) = text(rule.rule_arn()).or_else(|| text(rule.identifier())) else {
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

#[cfg(test)]
mod tests {
    use aws_sdk_rbin::types::{LockState, ResourceTag, RetentionPeriod, RuleStatus};

    use super::*;
    use crate::aws::CallError;
    use crate::inventory::Value;

    fn summary(id: &str, lock: Option<LockState>) -> RuleSummary {
        RuleSummary::builder()
            .identifier(id)
            .rule_arn(format!("arn:aws:rbin:eu-west-1:111111111111:rule/{id}"))
            .retention_period(
                RetentionPeriod::builder()
                    .retention_period_value(14)
                    .retention_period_unit(RetentionPeriodUnit::Days)
                    .build()
                    .unwrap(),
            )
            .set_lock_state(lock)
            .build()
    }

    #[test]
    fn a_rule_whose_detail_failed_is_listed_but_not_known_and_a_failed_listing_is_an_error() {
        let region = crate::discover::RegionInfo {
            region: "eu-west-1".into(),
            opt_in_status: None,
        };
        let mut harvest = Harvest::new("111111111111", &region);
        let tagged = GetRuleOutput::builder()
            .identifier("tagged")
            .status(RuleStatus::Available)
            .resource_tags(
                ResourceTag::builder()
                    .resource_tag_key("golden")
                    .build()
                    .unwrap(),
            )
            .build();
        let fetched = Fetched {
            listed: vec![
                (
                    ResourceType::Ec2Image,
                    Ok(vec![
                        summary("tagged", None),
                        summary("unread", Some(LockState::Locked)),
                    ]),
                ),
                (
                    ResourceType::EbsSnapshot,
                    Err(CallError {
                        code: "AccessDeniedException".into(),
                        message: "no".into(),
                    }),
                ),
            ],
            details: vec![
                ("tagged".into(), Ok(tagged)),
                (
                    "unread".into(),
                    Err(CallError {
                        code: "ThrottlingException".into(),
                        message: "slow down".into(),
                    }),
                ),
            ],
        };
        record(&mut harvest, fetched);
        let def = crate::inventory::schema::table("recycle_bin_rules").unwrap();
        let cell = |row: &Vec<Value>, name: &str| {
            row.get(def.columns.iter().position(|c| c.name == name).unwrap())
                .cloned()
                .unwrap()
        };
        let rules: Vec<&Vec<Value>> = harvest
            .rows
            .iter()
            .filter(|(t, _)| *t == "recycle_bin_rules")
            .map(|(_, r)| r)
            .collect();
        assert_eq!(rules.len(), 2);
        let tagged = rules[0];
        assert_eq!(cell(tagged, "detail_read"), Value::Bool(true));
        assert_eq!(cell(tagged, "resource_tag_count"), Value::Int(1));
        assert_eq!(cell(tagged, "retention_days"), Value::Int(14));
        let unread = rules[1];
        assert_eq!(cell(unread, "detail_read"), Value::Bool(false));
        assert_eq!(cell(unread, "status"), Value::Null);
        assert_eq!(cell(unread, "lock_state"), Value::Str("locked".into()));
        let failed: Vec<(&str, Option<&str>)> = harvest
            .errors
            .iter()
            .map(|e| (e.operation.as_str(), e.resource_id.as_deref()))
            .collect();
        assert_eq!(failed, [("GetRule", Some("unread")), ("ListRules", None)]);
    }
}
