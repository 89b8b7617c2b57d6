//! deploy/: the IAM policy and the CloudFormation role agree, and both are read-only.
use std::collections::BTreeSet;

use super::support::*;

pub fn policy_actions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("deploy/iam-policy.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).expect("iam-policy.json parses");
    assert_eq!(doc["Version"], "2012-10-17");
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|s| assert_eq!(s["Effect"], "Allow"))
        .flat_map(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
        })
        .collect()
}

/// Actions listed under the role's inline policy (`Action:` lists of `- service:Name`).
fn template_actions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("deploy/audit-role.yaml")).unwrap();
    // The inline policy is the last `PolicyDocument:` (the first is the trust policy).
    let policies = text
        .rsplit("\n          PolicyDocument:")
        .next()
        .expect("an inline policy");
    policies
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- "))
        .filter(|a| {
            a.split_once(':').is_some_and(|(service, name)| {
                !service.is_empty()
                    && service
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && name.chars().all(|c| c.is_ascii_alphanumeric())
            })
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn iam_policy_and_role_template_agree_and_are_read_only() {
    let policy = policy_actions();
    assert!(!policy.is_empty());
    // The member role needs what is called inside each account; the
    // scanner's own identity also discovers the organization and assumes roles.
    let member: BTreeSet<String> = policy
        .iter()
        .filter(|a| !a.starts_with("organizations:") && !a.starts_with("sts:"))
        .cloned()
        .collect();
    assert_eq!(
        member,
        template_actions(),
        "deploy/audit-role.yaml and deploy/iam-policy.json differ"
    );
    for action in policy.iter().filter(|a| *a != "sts:AssumeRole") {
        let name = action.split(':').nth(1).unwrap();
        assert!(
            ["Describe", "List", "Get", "BatchGet"]
                .iter()
                .any(|p| name.starts_with(p)),
            "{action} is not read-only"
        );
        assert!(!action.contains('*'), "{action}: no wildcards");
    }
}
