//! deploy/: the IAM policy and the CloudFormation role agree, and both are read-only.
use std::collections::BTreeSet;

use super::support::*;

pub fn policy_actions() -> BTreeSet<String> {
    actions_of("deploy/iam-policy.json")
}

/// The actions an IAM policy document of the repository allows.
fn actions_of(policy: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(policy)).unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{policy} parses: {e}"));
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
    role_template_actions("deploy/audit-role.yaml")
}

/// The actions a role template's inline policy allows.
fn role_template_actions(template: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(template)).unwrap();
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

/// The Dockerfile cannot be built here (no registry for base images), so
/// check what it relies on: every COPY source exists, and the dependency
/// layer stubs every target Cargo.toml declares, or cargo refuses the manifest.
#[test]
fn dockerfile_copies_what_exists_and_stubs_every_declared_target() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(
                repo().join(source).exists(),
                "Dockerfile copies missing `{source}`"
            );
        }
    }
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    for bench in manifest["bench"].as_array().unwrap() {
        let name = bench["name"].as_str().unwrap();
        assert!(
            dockerfile.contains(&format!("benches/{name}.rs")),
            "Dockerfile does not stub benches/{name}.rs"
        );
    }
    assert!(
        dockerfile.contains("--locked"),
        "the image builds from Cargo.lock"
    );
    assert!(
        dockerfile.contains(":nonroot"),
        "the image runs as a non-root user"
    );
}

/// The member role `--security-hub-role` assumes writes findings and
/// nothing else: exactly the two Security Hub calls the importer makes.
#[test]
fn security_hub_import_role_allows_only_the_importers_calls() {
    let allowed = role_template_actions("deploy/security-hub-import-role.yaml");
    let source = std::fs::read_to_string(repo().join("src/deliver/security_hub.rs")).unwrap();
    let made: BTreeSet<String> = [
        (
            ".batch_import_findings()",
            "securityhub:BatchImportFindings",
        ),
        (
            ".batch_update_findings()",
            "securityhub:BatchUpdateFindings",
        ),
        (".get_findings()", "securityhub:GetFindings"),
    ]
    .iter()
    .filter(|(call, _)| source.contains(call))
    .map(|(_, action)| action.to_string())
    .collect();
    assert_eq!(allowed, made);
    assert_eq!(made.len(), 2, "{made:?}");
}

/// Create mode's write is one action, in a policy of its own: the read-only
/// policy never grows a write.
#[test]
fn the_usage_report_write_is_one_action_in_a_policy_of_its_own() {
    let actions = actions_of("deploy/iam-usage-reports-create.json");
    assert_eq!(
        actions,
        BTreeSet::from(["ec2:CreateImageUsageReport".to_string()])
    );
    assert!(!policy_actions().contains("ec2:CreateImageUsageReport"));
}
