//! The live scanner against moto server: a seeded organization of four
//! accounts (one whose role cannot be assumed) over two regions.
use std::collections::BTreeSet;
use std::path::Path;

use amiaudit::collect::{self, ScanOptions};
use amiaudit::discover::{AccountSelection, RegionSelection};
use aws_sdk_ec2::types as ec2;
use serde_json::{Value, json};

use super::moto::{Moto, MotoGaps, register, run_instance, settings_for, static_credentials};
use super::support::*;

const OUTSIDE_ACCOUNT: &str = "999999999999";

struct Seeded {
    management: String,
    factory: String,
    prod: String,
    denied: String,
    organization_arn: String,
    workloads_ou: String,
    public_image: String,
    shared_image: String,
    eu_image: String,
    public_snapshot: String,
    factory_instance: String,
    prod_instance: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Seeds the organization through the SDK, as its owners would have built it.
async fn seed(moto: &Moto) -> Seeded {
    use aws_sdk_organizations::types::OrganizationFeatureSet;
    let management_config = moto.config().await;
    let org = aws_sdk_organizations::Client::new(&management_config);
    let created = org
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let organization = created.organization().unwrap();
    let organization_arn = organization.arn().unwrap().to_string();
    let management = organization.master_account_id().unwrap().to_string();
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let ou = |parent: String, name: &'static str| {
        let org = org.clone();
        async move {
            org.create_organizational_unit()
                .parent_id(parent)
                .name(name)
                .send()
                .await
                .unwrap()
                .organizational_unit()
                .unwrap()
                .id()
                .unwrap()
                .to_string()
        }
    };
    let workloads = ou(root.clone(), "Workloads").await;
    let prod_ou = ou(workloads.clone(), "Prod").await;
    let mut accounts = Vec::new();
    for (name, parent) in [
        ("image-factory", &workloads),
        ("prod-app", &prod_ou),
        ("data-denied", &workloads),
    ] {
        let id = org
            .create_account()
            .email(format!("aws+{name}@acme.example"))
            .account_name(name)
            .send()
            .await
            .unwrap()
            .create_account_status()
            .unwrap()
            .account_id()
            .unwrap()
            .to_string();
        org.move_account()
            .account_id(&id)
            .source_parent_id(&root)
            .destination_parent_id(parent)
            .send()
            .await
            .unwrap();
        accounts.push(id);
    }
    let (factory, prod, denied) = (
        accounts[0].clone(),
        accounts[1].clone(),
        accounts[2].clone(),
    );

    // The image factory: one public image, one shared with an org account,
    // an outside account and the organization; its snapshot made public.
    let factory_config = moto.account(&factory).await;
    let us = aws_sdk_ec2::Client::new(&factory_config);
    let public_image = register(&us, "web-golden-20261101", &[("Owner", "platform")]).await;
    us.modify_image_attribute()
        .image_id(&public_image)
        .launch_permission(
            ec2::LaunchPermissionModifications::builder()
                .add(
                    ec2::LaunchPermission::builder()
                        .group(ec2::PermissionGroup::All)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let shared_image = register(&us, "app-golden-20261101", &[]).await;
    us.modify_image_attribute()
        .image_id(&shared_image)
        .launch_permission(
            ec2::LaunchPermissionModifications::builder()
                .add(ec2::LaunchPermission::builder().user_id(&prod).build())
                .add(
                    ec2::LaunchPermission::builder()
                        .user_id(OUTSIDE_ACCOUNT)
                        .build(),
                )
                .add(
                    ec2::LaunchPermission::builder()
                        .organization_arn(&organization_arn)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let described = us
        .describe_images()
        .image_ids(&public_image)
        .send()
        .await
        .unwrap();
    let public_snapshot = described.images()[0].block_device_mappings()[0]
        .ebs()
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    us.modify_snapshot_attribute()
        .snapshot_id(&public_snapshot)
        .attribute(ec2::SnapshotAttributeName::CreateVolumePermission)
        .operation_type(ec2::OperationType::Add)
        .group_names("all")
        .send()
        .await
        .unwrap();
    let factory_instance = run_instance(&us, &shared_image, "factory-smoke-test").await;
    us.create_launch_template()
        .launch_template_name("app")
        .launch_template_data(
            ec2::RequestLaunchTemplateData::builder()
                .image_id(&shared_image)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let eu_config = factory_config
        .to_builder()
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let eu = aws_sdk_ec2::Client::new(&eu_config);
    eu.enable_ebs_encryption_by_default().send().await.unwrap();
    let eu_image = register(&eu, "web-golden-20261015", &[("Owner", "platform")]).await;

    // prod-app runs the public image, with Inspector on and a critical finding.
    let prod_config = moto.account(&prod).await;
    let prod_ec2 = aws_sdk_ec2::Client::new(&prod_config);
    let prod_instance = run_instance(&prod_ec2, &public_image, "web-1").await;
    aws_sdk_inspector2::Client::new(&prod_config)
        .enable()
        .account_ids(&prod)
        .resource_types(aws_sdk_inspector2::types::ResourceScanType::Ec2)
        .send()
        .await
        .unwrap();
    moto.seed_findings(
        &prod,
        "us-east-1",
        json!([{
            "awsAccountId": prod,
            "findingArn": format!("arn:aws:inspector2:us-east-1:{prod}:finding/0f1e2d3c"),
            "description": "regreSSHion: remote code execution in OpenSSH",
            "title": "CVE-2024-6387 - openssh",
            "type": "PACKAGE_VULNERABILITY",
            "severity": "CRITICAL",
            "status": "ACTIVE",
            "fixAvailable": "YES",
            "firstObservedAt": 1760000000,
            "lastObservedAt": 1763000000,
            "remediation": {"recommendation": {"text": "Update openssh"}},
            "packageVulnerabilityDetails": {
                "vulnerabilityId": "CVE-2024-6387",
                "source": "NVD",
                "vulnerablePackages": []
            },
            "resources": [{
                "id": prod_instance,
                "type": "AWS_EC2_INSTANCE",
                "region": "us-east-1",
                "partition": "aws",
                "details": {"awsEc2Instance": {"imageId": public_image}}
            }]
        }]),
    );

    Seeded {
        management,
        factory,
        prod,
        denied,
        organization_arn,
        workloads_ou: workloads,
        public_image,
        shared_image,
        eu_image,
        public_snapshot,
        factory_instance,
        prod_instance,
    }
}

fn options(moto: &Moto, denied: &str) -> ScanOptions {
    let mut options = ScanOptions::default();
    options.connection.endpoint_url = Some(moto.endpoint.clone());
    options.connection.region = Some("us-east-1".to_string());
    options.connection.http_client = Some(MotoGaps::client(denied));
    options.connection.credentials = Some(static_credentials("test", "test", None));
    options.connection.max_attempts = 2;
    options.accounts = AccountSelection::Organization { ou: None };
    options.regions = RegionSelection::List(vec!["eu-west-1".into(), "us-east-1".into()]);
    options
}

/// Rows of one JSON Lines table file.
fn table(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("{name}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rows_where<'a>(rows: &'a [Value], key: &str, value: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r[key] == value).collect()
}

#[test]
fn scan_of_a_seeded_organization_matches_what_was_seeded() {
    let moto = Moto::start();
    let rt = runtime();
    let seeded = rt.block_on(seed(&moto));
    let outcome = rt
        .block_on(collect::scan(&options(&moto, &seeded.denied)))
        .expect("scan runs");
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    amiaudit::inventory::save(
        &outcome.inventory,
        &inv,
        amiaudit::inventory::TableFormat::Jsonl,
    )
    .unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(inv.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["scope"]["source"], "organizations");
    assert_eq!(
        manifest["scope"]["management_account_id"],
        seeded.management
    );
    assert!(
        manifest["scope"]["caller_arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:")
    );
    assert!(manifest["scan_started_at"].is_string() && manifest["scan_ended_at"].is_string());
    assert_eq!(manifest["complete"], true);
    let text = std::fs::read_to_string(inv.join("manifest.json")).unwrap();
    assert!(
        !text.contains("test\"") && !text.to_lowercase().contains("session"),
        "no credential in the manifest"
    );

    // Accounts with their OU paths.
    let accounts = table(&inv, "accounts");
    assert_eq!(accounts.len(), 4);
    assert_eq!(
        rows_where(&accounts, "account_id", &seeded.prod)[0]["ou_path"],
        "Root/Workloads/Prod"
    );
    assert_eq!(
        rows_where(&accounts, "account_id", &seeded.factory)[0]["account_name"],
        "image-factory"
    );

    // Every account-region: scanned, except the denied account's.
    let regions = table(&inv, "regions");
    assert_eq!(regions.len(), 8, "{regions:#?}");
    for r in &regions {
        let account = r["account_id"].as_str().unwrap();
        let region = r["region"].as_str().unwrap();
        if account == seeded.denied {
            assert_eq!(r["scan_status"], "failed");
            continue;
        }
        assert_eq!(r["scan_status"], "ok", "{r}");
        let (image_bpa, snapshot_bpa, allowed) = settings_for(region);
        assert_eq!(r["image_block_public_access"], image_bpa);
        assert_eq!(r["snapshot_block_public_access"], snapshot_bpa);
        assert_eq!(r["allowed_images_state"], allowed);
        assert_eq!(r["ebs_default_kms_key_id"], "alias/aws/ebs");
        let encrypted = account == seeded.factory && region == "eu-west-1";
        assert_eq!(r["ebs_encryption_by_default"], encrypted, "{r}");
        let inspector = if account == seeded.prod && region == "us-east-1" {
            "ENABLED"
        } else {
            "DISABLED"
        };
        assert_eq!(r["inspector_ec2_status"], inspector, "{r}");
    }

    // The one failure: the denied AssumeRole, account-wide.
    let errors = table(&inv, "scan_errors");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["account_id"], seeded.denied);
    assert_eq!(errors[0]["service"], "sts");
    assert_eq!(errors[0]["operation"], "AssumeRole");
    assert_eq!(errors[0]["error_code"], "AccessDenied");
    assert!(errors[0].get("region").is_none());

    // Images and who may launch them.
    let images = table(&inv, "images");
    let ids: BTreeSet<&str> = images
        .iter()
        .map(|i| i["image_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            seeded.public_image.as_str(),
            seeded.shared_image.as_str(),
            seeded.eu_image.as_str()
        ])
    );
    let public = rows_where(&images, "image_id", &seeded.public_image)[0];
    assert_eq!(public["public"], true);
    assert_eq!(public["account_id"], seeded.factory);
    assert_eq!(public["region"], "us-east-1");
    assert_eq!(public["name"], "web-golden-20261101");
    assert_eq!(
        rows_where(&images, "image_id", &seeded.eu_image)[0]["region"],
        "eu-west-1"
    );
    let tags = table(&inv, "image_tags");
    assert!(
        tags.iter()
            .any(|t| t["image_id"] == seeded.public_image.as_str()
                && t["key"] == "Owner"
                && t["value"] == "platform")
    );

    let permissions = table(&inv, "launch_permissions");
    let of = |image: &str| -> BTreeSet<String> {
        rows_where(&permissions, "image_id", image)
            .iter()
            .map(|p| {
                [
                    "group",
                    "user_id",
                    "organization_arn",
                    "organizational_unit_arn",
                ]
                .iter()
                .find_map(|k| {
                    p.get(*k)
                        .and_then(Value::as_str)
                        .map(|v| format!("{k}={v}"))
                })
                .unwrap()
            })
            .collect()
    };
    assert_eq!(
        of(&seeded.public_image),
        BTreeSet::from(["group=all".to_string()])
    );
    assert_eq!(
        of(&seeded.shared_image),
        BTreeSet::from([
            format!("user_id={}", seeded.prod),
            format!("user_id={OUTSIDE_ACCOUNT}"),
            format!("organization_arn={}", seeded.organization_arn),
        ])
    );
    assert!(of(&seeded.eu_image).is_empty());

    // The public snapshot behind the public image.
    let snapshots = table(&inv, "snapshots");
    assert!(
        snapshots
            .iter()
            .any(|s| s["snapshot_id"] == seeded.public_snapshot.as_str())
    );
    let snapshot_permissions = table(&inv, "snapshot_permissions");
    assert_eq!(snapshot_permissions.len(), 1, "{snapshot_permissions:#?}");
    assert_eq!(
        snapshot_permissions[0]["snapshot_id"],
        seeded.public_snapshot
    );
    assert_eq!(snapshot_permissions[0]["group"], "all");

    // Which AMIs are in use, and by what.
    let instances = table(&inv, "instances");
    assert_eq!(instances.len(), 2);
    let factory_instance = rows_where(&instances, "instance_id", &seeded.factory_instance)[0];
    assert_eq!(factory_instance["image_id"], seeded.shared_image);
    assert_eq!(factory_instance["image_owner_id"], seeded.factory);
    assert_eq!(factory_instance["name"], "factory-smoke-test");
    let prod_instance = rows_where(&instances, "instance_id", &seeded.prod_instance)[0];
    assert_eq!(prod_instance["image_id"], seeded.public_image);
    let templates = table(&inv, "launch_templates");
    assert_eq!(
        templates.len(),
        1,
        "$Default and $Latest are one version: {templates:#?}"
    );
    assert_eq!(templates[0]["image_id"], seeded.shared_image);
    assert_eq!(templates[0]["is_default"], true);
    assert_eq!(templates[0]["is_latest"], true);

    // The Inspector finding, tied to the AMI the instance runs.
    let findings = table(&inv, "inspector_findings");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["account_id"], seeded.prod);
    assert_eq!(findings[0]["image_id"], seeded.public_image);
    assert_eq!(findings[0]["instance_id"], seeded.prod_instance);
    assert_eq!(findings[0]["severity"], "CRITICAL");
    assert_eq!(findings[0]["vulnerability_id"], "CVE-2024-6387");

    // Read-only, provably: every operation invoked is in the shipped policy.
    let policy = super::deploy::policy_actions();
    let invoked: BTreeSet<String> = outcome.stats.operations.keys().cloned().collect();
    for op in &invoked {
        assert!(
            policy.contains(op),
            "{op} is invoked but not in deploy/iam-policy.json"
        );
    }
    for expected in [
        "ec2:DescribeImages",
        "ec2:DescribeImageAttribute",
        "ec2:DescribeSnapshotAttribute",
        "ec2:GetSnapshotBlockPublicAccessState",
        "inspector2:ListFindings",
        "organizations:ListAccounts",
        "sts:AssumeRole",
    ] {
        assert!(
            invoked.contains(expected),
            "{expected} was never called: {invoked:?}"
        );
    }
    // At most 2 API calls per image for the per-image calls.
    let per_image: u64 = [
        "ec2:DescribeImageAttribute",
        "ec2:DescribeSnapshotAttribute",
    ]
    .iter()
    .map(|op| outcome.stats.operations[*op].calls)
    .sum();
    assert!(
        per_image <= 2 * ids.len() as u64,
        "{per_image} per-image calls for {} images",
        ids.len()
    );

    // The audit over it: what was seeded fails, the denied account is unknown.
    let out = dir.path().join("out");
    let run = amiaudit(&["audit", "--inventory", path(&inv), "--out", path(&out)]);
    assert!(run.status.code() == Some(0), "{}", stderr(&run));
    let rows = csv_rows(&out.join("findings.csv"));
    assert_eq!(
        status_of(&rows, "AMI-PUBLIC", &seeded.public_image),
        ["fail"]
    );
    assert_eq!(
        status_of(&rows, "AMI-PUBLIC", &seeded.shared_image),
        ["pass"]
    );
    assert_eq!(
        status_of(&rows, "AMI-SHARED-OUTSIDE-ORG", &seeded.shared_image),
        ["fail"]
    );
    assert_eq!(
        status_of(&rows, "SNAP-PUBLIC", &seeded.public_snapshot),
        ["fail"]
    );
    assert_eq!(
        status_of(&rows, "VULN-CRITICAL", &seeded.public_image),
        ["fail"]
    );
    let region_status = |rule: &str, account: &str, region: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r["rule_id"] == rule && r["account_id"] == account && r["region"] == region)
            .map(|r| r["status"].clone())
            .collect()
    };
    assert_eq!(
        region_status(
            "REGION-EBS-DEFAULT-ENCRYPTION",
            &seeded.factory,
            "eu-west-1"
        ),
        ["pass"]
    );
    assert_eq!(
        region_status(
            "REGION-EBS-DEFAULT-ENCRYPTION",
            &seeded.factory,
            "us-east-1"
        ),
        ["fail"]
    );
    assert_eq!(
        region_status("REGION-IMAGE-BPA", &seeded.prod, "eu-west-1"),
        ["pass"]
    );
    assert_eq!(
        region_status("REGION-IMAGE-BPA", &seeded.prod, "us-east-1"),
        ["fail"]
    );
    for rule in ["AMI-PUBLIC", "REGION-EBS-DEFAULT-ENCRYPTION"] {
        for region in ["eu-west-1", "us-east-1"] {
            assert_eq!(
                region_status(rule, &seeded.denied, region),
                ["unknown"],
                "{rule} {region}"
            );
        }
    }
}

#[test]
fn scan_cli_writes_an_inventory_and_audit_live_audits_it() {
    let moto = Moto::start();
    let rt = runtime();
    let seeded = rt.block_on(seed(&moto));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live");
    // Plain moto (no gap client): the calls it lacks fail, and the audit
    // says so instead of passing.
    let run = assert_cmd::Command::cargo_bin("amiaudit")
        .unwrap()
        .args([
            "audit",
            "--live",
            "--accounts",
            &seeded.factory,
            "--regions",
            "us-east-1",
            "--endpoint-url",
            &moto.endpoint,
            "--region",
            "us-east-1",
            "--stats",
            "--max-attempts",
            "1",
            "--out",
            path(&out),
            "--fail-on-incomplete",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let text = stdout(&run);
    assert_eq!(run.status.code(), Some(3), "{text}\n{}", stderr(&run));
    assert!(
        text.contains("scanned 1 accounts, 1 account-regions: 2 images"),
        "{text}"
    );
    assert!(
        text.contains("ec2:DescribeImageAttribute"),
        "--stats lists operations: {text}"
    );
    let inv = out.join("inventory");
    assert!(inv.join("images.parquet").is_file());
    let regions = amiaudit(&[
        "query",
        "--inventory",
        path(&inv),
        "--format",
        "csv",
        "SELECT account_id, region, scan_status FROM regions",
    ]);
    assert_eq!(
        stdout(&regions),
        format!(
            "account_id,region,scan_status\n{},us-east-1,partial\n",
            seeded.factory
        )
    );
    let errors = amiaudit(&[
        "query",
        "--inventory",
        path(&inv),
        "--format",
        "csv",
        "SELECT operation, error_code FROM scan_errors ORDER BY operation",
    ]);
    assert_eq!(
        stdout(&errors),
        "operation,error_code\nDescribeImageReferences,HTTP500\nDescribeImageUsageReports,HTTP500\nDescribeInstanceImageMetadata,HTTP500\nDescribeParameters,ValidationException\nGetAllowedImagesSettings,HTTP500\nGetEbsDefaultKmsKeyId,HTTP500\nGetImageBlockPublicAccessState,HTTP500\nGetInstanceMetadataDefaults,HTTP500\nGetSnapshotBlockPublicAccessState,HTTP500\nListImagePipelines,HTTP500\nListRules,HTTP500\n"
    );
    let rows = csv_rows(&out.join("findings.csv"));
    let status = |rule: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r["rule_id"] == rule)
            .map(|r| r["status"].clone())
            .collect()
    };
    assert_eq!(status("REGION-IMAGE-BPA"), ["unknown"]);
    assert_eq!(status("REGION-EBS-DEFAULT-ENCRYPTION"), ["fail"]);
    // moto has no Image Builder: the failed listing leaves the pipelines unseen.
    assert_eq!(status("PIPELINE-PUBLIC"), ["unknown"]);
    // moto rejects DescribeParameters' DataType filter: the AMI parameters
    // of the region are unseen, not fine.
    assert_eq!(status("SSM-PARAM-OUTDATED-AMI"), ["unknown"]);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["scan_started_at"].is_string());
    assert!(manifest["scope"]["caller_arn"].is_string());
    assert_eq!(amiaudit(&["verify", path(&out)]).status.code(), Some(0));
    // No scratch inventory is left beside the output.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(leftovers, ["live"]);
}

#[test]
fn scan_limits_scope_to_an_ou_subtree_minus_excluded_accounts() {
    let moto = Moto::start();
    let rt = runtime();
    let seeded = rt.block_on(seed(&moto));
    let mut options = options(&moto, &seeded.denied);
    options.accounts = AccountSelection::Organization {
        ou: Some(seeded.workloads_ou.clone()),
    };
    options.exclude_accounts = vec![seeded.denied.clone()];
    options.regions = RegionSelection::List(vec!["us-east-1".into()]);
    let outcome = rt.block_on(collect::scan(&options)).expect("scan runs");
    let accounts: BTreeSet<String> = outcome
        .inventory
        .manifest()
        .scope
        .accounts
        .iter()
        .cloned()
        .collect();
    // The management account sits at the root, outside the subtree.
    assert_eq!(
        accounts,
        BTreeSet::from([seeded.factory.clone(), seeded.prod.clone()])
    );
    // Every member is listed (sharing is judged against the organization).
    let members: BTreeSet<String> =
        amiaudit::inventory::str_column(outcome.inventory.table("accounts").unwrap(), "account_id")
            .unwrap()
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();
    assert!(members.contains(&seeded.management), "{members:?}");
    assert_eq!(outcome.inventory.table("regions").unwrap().height(), 2);
    assert_eq!(outcome.inventory.table("scan_errors").unwrap().height(), 0);
    // Only the two member accounts in scope were entered.
    assert_eq!(outcome.stats.operations["sts:AssumeRole"].calls, 2);
}

/// One line on stderr, exit 2, no panic or backtrace.
fn assert_one_line_error(args: &[&str], needle: &str) {
    let run = assert_cmd::Command::cargo_bin("amiaudit")
        .unwrap()
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn bad_scan_flags_and_unreachable_credentials_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("inv");
    let out = path(&out);
    assert_one_line_error(
        &["scan", "--accounts", "12345", "--out", out],
        "`12345` is not an AWS account id",
    );
    assert_one_line_error(
        &["scan", "--regions", "eu-west", "--out", out],
        "`eu-west` is not a region code",
    );
    assert_one_line_error(
        &["scan", "--org", "--accounts", "111122223333", "--out", out],
        "not both",
    );
    assert_one_line_error(&["scan", "--ou", "prod", "--out", out], "is not an OU id");
    assert_one_line_error(
        &["scan", "--ec2-pacing", "20", "--out", out],
        "EC2 pacing `20` is not BURST/RATE",
    );
    // A rate near zero overflowed every wait: each region failed.
    assert_one_line_error(
        &["scan", "--ec2-pacing", "1/1e-300", "--out", out],
        "EC2 pacing `1/1e-300` is not BURST/RATE (1 to 10000 calls, 0.01 to 10000",
    );
    assert_one_line_error(
        &["scan", "--image-usage-reports", "wait", "--out", out],
        "image usage reports `wait` is not one of reuse, create, off",
    );
    let config = dir.path().join("amiaudit.toml");
    std::fs::write(&config, "[scan]\nimage_usage_report_max_age_days = 45\n").unwrap();
    assert_one_line_error(
        &["scan", "--config", path(&config), "--out", out],
        "image_usage_report_max_age_days is 45; give 1 to 29",
    );
    assert_one_line_error(
        &[
            "scan",
            "--role-arn-template",
            "arn:aws:iam::1:role/X",
            "--out",
            out,
        ],
        "must be an ARN containing {account_id}",
    );
    let sample = sample();
    assert_one_line_error(
        &["audit", "--inventory", path(&sample), "--org", "--out", out],
        "need --live",
    );
    // Nothing listens on this port: the caller cannot be identified.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    assert_one_line_error(
        &[
            "scan",
            "--endpoint-url",
            &endpoint,
            "--max-attempts",
            "1",
            "--out",
            out,
        ],
        "cannot identify the caller (sts:GetCallerIdentity failed",
    );
    assert!(
        !dir.path().join("inv").exists(),
        "no inventory from a scan that did not start"
    );
}

#[test]
fn init_writes_a_config_that_loads_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("amiaudit.toml");
    let run = amiaudit(&["init", path(&file)]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("[scan]") && text.contains("[audit]"));
    // Every documented key, uncommented, is accepted: `# key = value` and
    // `# [table]` lines become live (prose lines stay comments).
    let is_setting = |l: &str| {
        l.starts_with('[')
            || l.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
    };
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if is_setting(rest) => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    // `regions` is shown in both forms; keep the list.
    let uncommented = uncommented
        .replacen("regions = \"all\"\n", "", 1)
        .replace("policies = [\"policies\"]\n", "");
    let full = dir.path().join("full.toml");
    std::fs::write(&full, &uncommented).unwrap();
    let explain = amiaudit(&["policies", "explain", "AMI-STALE", "--config", path(&full)]);
    assert_eq!(
        explain.status.code(),
        Some(0),
        "{}\n{uncommented}",
        stderr(&explain)
    );
    assert!(
        stdout(&explain).contains("120"),
        "the [params] example applies"
    );

    let again = amiaudit(&["init", path(&file)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"));

    std::fs::write(&full, "[scan]\nrole = \"x\"\n").unwrap();
    let bad = amiaudit(&[
        "scan",
        "--config",
        path(&full),
        "--out",
        path(&dir.path().join("x")),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("full.toml:2:1"), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("unknown field `role`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn an_interrupted_scan_keeps_what_it_collected_and_marks_the_rest_failed() {
    let moto = Moto::start();
    let rt = runtime();
    let seeded = rt.block_on(seed(&moto));
    let mut options = options(&moto, &seeded.denied);
    options.accounts = AccountSelection::List(vec![seeded.factory.clone()]);
    options.connection.http_client = Some(MotoGaps::client_with_slow_region(
        &seeded.denied,
        Some("eu-west-1"),
    ));
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    options.stop = Some(stop.clone());
    let outcome = rt.block_on(async {
        // us-east-1 takes well under a second; eu-west-1 hangs for a minute.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            stop.notify_one();
        });
        collect::scan(&options).await.expect("scan runs")
    });
    assert!(outcome.stats.interrupted);
    assert!(outcome.stats.wall_seconds < 30.0, "the stop ended the wait");
    let inventory = &outcome.inventory;
    assert!(!inventory.manifest().complete);
    let regions = inventory.table("regions").unwrap();
    let names = amiaudit::inventory::str_column(regions, "region").unwrap();
    let statuses = amiaudit::inventory::str_column(regions, "scan_status").unwrap();
    let status: std::collections::BTreeMap<_, _> = names
        .into_iter()
        .flatten()
        .zip(statuses.into_iter().flatten())
        .collect();
    assert_eq!(status["us-east-1"], "ok");
    assert_eq!(status["eu-west-1"], "failed");
    let codes =
        amiaudit::inventory::str_column(inventory.table("scan_errors").unwrap(), "error_code")
            .unwrap();
    assert_eq!(codes, [Some("Interrupted")]);
    // What us-east-1 yielded is kept.
    assert_eq!(inventory.table("images").unwrap().height(), 2);
}

#[test]
fn calls_that_always_fail_with_a_server_error_cost_their_account_region_two_retries_in_all() {
    // Plain moto answers HTTP 500 to the calls it lacks, every time.
    let moto = Moto::start();
    let mut options = ScanOptions::default();
    options.connection.endpoint_url = Some(moto.endpoint.clone());
    options.connection.region = Some("us-east-1".to_string());
    options.connection.credentials = Some(static_credentials("test", "test", None));
    options.connection.max_attempts = 6;
    options.accounts = AccountSelection::Caller;
    options.regions = RegionSelection::List(vec!["us-east-1".into()]);
    let outcome = runtime()
        .block_on(collect::scan(&options))
        .expect("scan runs");
    let stats = &outcome.stats;
    let failing: Vec<&String> = stats
        .operations
        .iter()
        .filter(|(_, c)| c.attempts > c.calls)
        .map(|(op, _)| op)
        .collect();
    let retries: u64 = stats
        .operations
        .values()
        .map(|c| c.attempts - c.calls)
        .sum();
    assert!(stats.errors >= 4, "moto lacks several calls: {stats:?}");
    assert!(
        retries <= amiaudit::aws::SERVER_ERROR_RETRIES_PER_ACCOUNT_REGION as u64,
        "{retries} retries ({failing:?}) in one account-region"
    );
    // What failed is a scan error each, not silence.
    assert_eq!(
        outcome.inventory.table("scan_errors").unwrap().height(),
        stats.errors
    );
}

/// A scan of the caller's own account through the gap client, one attempt
/// a call.
fn caller_scan(moto: &Moto) -> ScanOptions {
    let mut options = ScanOptions::default();
    options.connection.endpoint_url = Some(moto.endpoint.clone());
    options.connection.region = Some("us-east-1".to_string());
    options.connection.http_client = Some(MotoGaps::client("000000000000"));
    options.connection.credentials = Some(static_credentials("test", "test", None));
    options.connection.max_attempts = 1;
    options
}

/// `--org` where the organization's accounts cannot be listed (here the
/// caller is in none: AWSOrganizationsNotInUseException) audits only the
/// caller's account, and says so: coverage is incomplete (exit 3 with
/// `--fail-on-incomplete`), in the terminal, summary.md and findings.json.
#[test]
fn org_scope_whose_accounts_cannot_be_listed_is_incomplete() {
    let moto = Moto::start();
    let rt = runtime();
    let mut options = caller_scan(&moto);
    options.accounts = AccountSelection::Organization { ou: None };
    options.regions = RegionSelection::List(vec!["us-east-1".into()]);
    let inventory = rt.block_on(collect::scan(&options)).unwrap().inventory;
    let dir = tempfile::tempdir().unwrap();
    let inventory_dir = dir.path().join("inventory");
    save(&inventory, &inventory_dir);
    let out = dir.path().join("audit");
    let run = amiaudit(&[
        "audit",
        "--inventory",
        path(&inventory_dir),
        "--out",
        path(&out),
        "--fail-on-incomplete",
    ]);
    let text = stdout(&run);
    assert_eq!(run.status.code(), Some(3), "{text}\n{}", stderr(&run));
    assert!(
        text.contains("the organization's accounts could not be listed (organizations:ListAccounts failed (AWSOrganizationsNotInUseException))"),
        "{text}"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("The organization's accounts could not be listed"),
        "{summary}"
    );
    let findings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("findings.json")).unwrap()).unwrap();
    let coverage = &findings["summary"]["coverage"];
    assert_eq!(coverage["complete"], false, "{coverage}");
    assert!(
        coverage["accounts_not_listed"]
            .as_str()
            .unwrap()
            .contains("ListAccounts"),
        "{coverage}"
    );
}

/// A bug that panics inside an account-region's task (here: pacing, built
/// past the range `--ec2-pacing` accepts, whose refill interval overflows a
/// Duration) fails that account-region with a
/// scan error naming it; it is never dropped from the inventory.
#[test]
fn a_panicking_account_region_is_a_scan_error() {
    let moto = Moto::start();
    let rt = runtime();
    let mut options = caller_scan(&moto);
    options.connection.pacing = Some(amiaudit::aws::Pacing {
        capacity: 1.0,
        refill_per_second: 1e-300,
    });
    options.regions = RegionSelection::List(vec!["us-east-1".into(), "eu-west-1".into()]);
    let inventory = rt.block_on(collect::scan(&options)).unwrap().inventory;
    let regions = inventory.table("regions").unwrap();
    let statuses: Vec<Option<&str>> =
        amiaudit::inventory::str_column(regions, "scan_status").unwrap();
    assert_eq!(statuses, [Some("failed"), Some("failed")], "{regions}");
    let errors = inventory.table("scan_errors").unwrap();
    let codes = amiaudit::inventory::str_column(errors, "error_code").unwrap();
    let messages = amiaudit::inventory::str_column(errors, "message").unwrap();
    assert_eq!(
        codes,
        [Some("InternalError"), Some("InternalError")],
        "{errors}"
    );
    assert!(
        messages
            .iter()
            .all(|m| m.is_some_and(|m| m.contains("stopped on a bug"))),
        "{errors}"
    );
    assert!(!inventory.coverage().complete());
}
