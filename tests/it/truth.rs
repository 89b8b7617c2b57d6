//! The truth test: a moto-seeded organization in which every result of every
//! seedable rule is known in advance, asserted exactly: the seeded problems
//! fail, everything else passes, and what was not seen is `unknown`. No
//! false positive, no pass without the facts.
//!
//! Where moto differs from EC2 the org is seeded around it (RegisterImage
//! makes its own backing snapshot, so shared and public snapshots are made
//! from volumes; moto returns no ImdsSupport, DeprecationTime or
//! deregistration protection, so every AMI fails those rules or is unknown
//! for them, and that is asserted too). Calls moto lacks or gets wrong are
//! answered by the gap client the way EC2 does (see `moto::MotoGaps`).
use std::collections::BTreeMap;

use amiaudit::collect::{self, ScanOptions};
use amiaudit::discover::{AccountSelection, RegionSelection};
use amiaudit::evaluate::evaluate;
use amiaudit::inventory::str_column;
use amiaudit::policy::{ParamOverrides, ParamValue};
use aws_sdk_ec2::types as ec2;
use serde_json::json;

use super::moto::{
    AMAZON, Moto, MotoGaps, copy_image, create_image, create_launch_template, register,
    run_instance, seed_image_builder, seed_recycle_bin, seed_usage_report, static_credentials,
};

const OUTSIDE: &str = "999999999999";
const US: &str = "us-east-1";
const EU: &str = "eu-west-1";

const FULL_TAGS: &[(&str, &str)] = &[
    ("Owner", "platform"),
    ("Version", "1"),
    ("Environment", "prod"),
    (
        "Ec2ImageBuilderArn",
        "arn:aws:imagebuilder:us-east-1:1:image/x/1.0.0/1",
    ),
];

#[derive(Default)]
struct Org {
    management: String,
    factory: String,
    workload: String,
    denied: String,
    organization_arn: String,
    images: BTreeMap<&'static str, String>,
    snapshots: BTreeMap<&'static str, String>,
    instances: BTreeMap<&'static str, String>,
    templates: BTreeMap<&'static str, String>,
    /// The workload's fleet: template name -> id.
    fleet_templates: BTreeMap<&'static str, String>,
}

impl Org {
    fn image(&self, name: &str) -> String {
        self.images[name].clone()
    }
}

fn launch(adds: Vec<ec2::LaunchPermission>) -> ec2::LaunchPermissionModifications {
    ec2::LaunchPermissionModifications::builder()
        .set_add(Some(adds))
        .build()
}

fn user(id: &str) -> ec2::LaunchPermission {
    ec2::LaunchPermission::builder().user_id(id).build()
}

async fn share_image(client: &aws_sdk_ec2::Client, image: &str, adds: Vec<ec2::LaunchPermission>) {
    client
        .modify_image_attribute()
        .image_id(image)
        .launch_permission(launch(adds))
        .send()
        .await
        .unwrap();
}

/// A snapshot of a fresh volume, with create-volume permissions added.
async fn standalone_snapshot(client: &aws_sdk_ec2::Client, users: &[&str], public: bool) -> String {
    let volume = client
        .create_volume()
        .availability_zone("us-east-1a")
        .size(8)
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string();
    let snapshot = client
        .create_snapshot()
        .volume_id(volume)
        .description("database export")
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    let mut modify = client
        .modify_snapshot_attribute()
        .snapshot_id(&snapshot)
        .attribute(ec2::SnapshotAttributeName::CreateVolumePermission)
        .operation_type(ec2::OperationType::Add);
    for u in users {
        modify = modify.user_ids(*u);
    }
    if public {
        modify = modify.group_names("all");
    }
    if !users.is_empty() || public {
        modify.send().await.unwrap();
    }
    snapshot
}

/// Turns on Inspector's EC2 scanning for `account` in the config's region.
async fn enable_inspector(config: &aws_config::SdkConfig, account: &str) {
    aws_sdk_inspector2::Client::new(config)
        .enable()
        .account_ids(account)
        .resource_types(aws_sdk_inspector2::types::ResourceScanType::Ec2)
        .send()
        .await
        .unwrap();
}

/// Copies `source` (from us-east-1) into the client's region with the tags
/// an Image Builder distribution gives its copies.
async fn copy_tagged(client: &aws_sdk_ec2::Client, source: &str, name: &str) -> String {
    let copy = copy_image(client, source, US, name).await;
    let mut tags = client.create_tags().resources(&copy);
    for (k, v) in FULL_TAGS {
        tags = tags.tags(ec2::Tag::builder().key(*k).value(*v).build());
    }
    tags.send().await.unwrap();
    copy
}

async fn seed(moto: &Moto) -> Org {
    use aws_sdk_organizations::types::OrganizationFeatureSet;
    let mut org = Org::default();
    let organizations = aws_sdk_organizations::Client::new(&moto.config().await);
    let created = organizations
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let organization = created.organization().unwrap();
    org.organization_arn = organization.arn().unwrap().to_string();
    org.management = organization.master_account_id().unwrap().to_string();
    let mut ids = Vec::new();
    for name in ["factory", "workload", "denied"] {
        ids.push(
            organizations
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
                .to_string(),
        );
    }
    org.factory = ids[0].clone();
    org.workload = ids[1].clone();
    org.denied = ids[2].clone();

    // The image factory, us-east-1.
    let factory_config = moto.account(&org.factory).await;
    let f = aws_sdk_ec2::Client::new(&factory_config);
    f.enable_ebs_encryption_by_default().send().await.unwrap();
    let good = register(&f, "base-golden-20261101-v1", FULL_TAGS).await;
    share_image(
        &f,
        &good,
        vec![
            ec2::LaunchPermission::builder()
                .organization_arn(&org.organization_arn)
                .build(),
        ],
    )
    .await;
    let public = register(&f, "web-golden-20261101-v1", FULL_TAGS).await;
    share_image(
        &f,
        &public,
        vec![
            ec2::LaunchPermission::builder()
                .group(ec2::PermissionGroup::All)
                .build(),
        ],
    )
    .await;
    let outside = register(&f, "app-golden-20261101-v1", FULL_TAGS).await;
    share_image(&f, &outside, vec![user(OUTSIDE), user(&org.workload)]).await;
    // Usage reports made earlier: a fresh one for every account and both
    // types (read), one naming accounts, one a month old (neither read).
    let at = |days: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    for (report, days, accounts) in [
        ("amiur-0fresh", 1, json!([])),
        ("amiur-0some", 1, json!([OUTSIDE])),
        ("amiur-0old", 29, json!([])),
    ] {
        seed_usage_report(
            &org.factory,
            US,
            json!({
                "ImageId": outside, "ReportId": report, "State": "available",
                "CreationTime": at(days), "ExpirationTime": at(days - 30),
                "ResourceTypes": ["ec2:Instance", "ec2:LaunchTemplate"],
                "AccountIds": accounts,
                "Entries": [{"AccountId": OUTSIDE, "ResourceType": "ec2:Instance", "UsageCount": 2}],
            }),
        );
    }
    let many = register(&f, "svc-golden-20261101-v1", FULL_TAGS).await;
    share_image(
        &f,
        &many,
        vec![
            user(&org.workload),
            user(&org.management),
            user(&org.denied),
        ],
    )
    .await;
    // Required tags missing one key at a time.
    let missing = |key: &str| -> Vec<(&'static str, &'static str)> {
        FULL_TAGS
            .iter()
            .copied()
            .filter(|(k, _)| *k != key)
            .collect()
    };
    let no_owner = register(&f, "db-golden-20261101-v1", &missing("Owner")).await;
    let no_version = register(&f, "db-golden-20261101-v2", &missing("Version")).await;
    let no_env = register(&f, "db-golden-20261101-v3", &missing("Environment")).await;
    let manual = register(&f, "Manual Build 1", &[]).await;

    // Snapshots that back no AMI.
    org.snapshots
        .insert("public", standalone_snapshot(&f, &[], true).await);
    org.snapshots
        .insert("outside", standalone_snapshot(&f, &[OUTSIDE], false).await);
    org.snapshots.insert(
        "inside",
        standalone_snapshot(&f, &[&org.workload], false).await,
    );
    org.snapshots
        .insert("private", standalone_snapshot(&f, &[], false).await);

    // Images made from an instance: one kept, one deregistered (its
    // snapshot is left behind), and a template still pointing at it.
    let builder = run_instance(&f, &good, "image-builder").await;
    let kept = create_image(&f, &builder, "kept-golden-20261102-v1").await;
    let gone = create_image(&f, &builder, "gone-golden-20261102-v1").await;
    let snapshot_of =
        |described: aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput,
         image: &str| {
            described
                .snapshots()
                .iter()
                .find(|s| {
                    s.description().is_some_and(|d| {
                        d.starts_with("Created by CreateImage(") && d.ends_with(image)
                    })
                })
                .and_then(|s| s.snapshot_id())
                .unwrap()
                .to_string()
        };
    let described = f
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    org.snapshots
        .insert("kept", snapshot_of(described.clone(), &kept));
    org.snapshots
        .insert("orphan", snapshot_of(described, &gone));
    for (name, image) in [("lt-gone", &gone), ("lt-ok", &good)] {
        let id = create_launch_template(&f, name, image).await;
        org.templates
            .insert(if name == "lt-gone" { "gone" } else { "ok" }, id);
    }
    f.deregister_image().image_id(&gone).send().await.unwrap();
    org.instances.insert("builder", builder);

    let eu_config = factory_config
        .to_builder()
        .region(aws_config::Region::new(EU))
        .build();
    let f_eu = aws_sdk_ec2::Client::new(&eu_config);

    // A vendor outside the organization shares an image with the workload.
    let vendor_client = aws_sdk_ec2::Client::new(&moto.account(OUTSIDE).await);
    let vendor = register(&vendor_client, "vendor-appliance-7.2", &[]).await;
    share_image(&vendor_client, &vendor, vec![user(&org.workload)]).await;

    // The workload, us-east-1, with Inspector on and a critical finding on
    // the golden image it runs.
    let workload_config = moto.account(&org.workload).await;
    let w = aws_sdk_ec2::Client::new(&workload_config);
    let w_good = run_instance(&w, &good, "web-1").await;
    let w_vendor = run_instance(&w, &vendor, "appliance").await;
    let temporary = register(&w, "scratch-golden-20261101-v1", FULL_TAGS).await;
    let w_gone = run_instance(&w, &temporary, "scratch").await;
    w.deregister_image()
        .image_id(&temporary)
        .send()
        .await
        .unwrap();
    enable_inspector(&workload_config, &org.workload).await;
    moto.seed_findings(
        &org.workload,
        US,
        json!([{
            "awsAccountId": org.workload,
            "findingArn": format!("arn:aws:inspector2:us-east-1:{}:finding/0f1e2d3c", org.workload),
            "description": "regreSSHion",
            "title": "CVE-2024-6387 - openssh",
            "type": "PACKAGE_VULNERABILITY",
            "severity": "CRITICAL",
            "status": "ACTIVE",
            "fixAvailable": "YES",
            "firstObservedAt": 1_760_000_000,
            "lastObservedAt": 1_763_000_000,
            "remediation": {"recommendation": {"text": "Update openssh"}},
            "packageVulnerabilityDetails": {
                "vulnerabilityId": "CVE-2024-6387",
                "source": "NVD",
                "vulnerablePackages": []
            },
            "resources": [{
                "id": w_good,
                "type": "AWS_EC2_INSTANCE",
                "region": US,
                "partition": "aws",
                "details": {"awsEc2Instance": {"imageId": good}}
            }]
        }]),
    );
    // The fleet: a newer base-golden version (a second later, so creation
    // times order them), and the workload's consumers of both.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let newer = register(&f, "base-golden-20261201-v2", FULL_TAGS).await;
    // Both copied to eu-west-1 out of order: the newer version first, the
    // older a second later. CopyImage stamps each copy with its own
    // CreationDate, so the older version's copy looks newest there; its
    // original's says otherwise. The stacks there read both.
    let eu_newer = copy_tagged(&f_eu, &newer, "base-golden-20261201-v2").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let eu = copy_tagged(&f_eu, &good, "base-golden-20261101-v1").await;
    let f_eu_ssm = aws_sdk_ssm::Client::new(&eu_config);
    for (name, value) in [("/golden/base", &eu), ("/golden/base-next", &eu_newer)] {
        f_eu_ssm
            .put_parameter()
            .name(name)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .data_type("aws:ec2:image")
            .value(value)
            .send()
            .await
            .unwrap();
    }
    // Image Builder scans with Inspector: on where the factory builds.
    enable_inspector(&factory_config, &org.factory).await;
    share_image(
        &f,
        &newer,
        vec![
            ec2::LaunchPermission::builder()
                .organization_arn(&org.organization_arn)
                .build(),
        ],
    )
    .await;
    seed_fleet(
        &mut org,
        &workload_config,
        &w,
        &good,
        &newer,
        &temporary,
        &vendor,
    )
    .await;
    for (k, v) in [
        ("good", good),
        ("public", public),
        ("outside", outside),
        ("many", many),
        ("no_owner", no_owner),
        ("no_version", no_version),
        ("no_env", no_env),
        ("manual", manual),
        ("kept", kept),
        ("gone", gone),
        ("eu", eu),
        ("eu_newer", eu_newer),
        ("vendor", vendor),
        ("temporary", temporary),
        ("newer", newer),
    ] {
        org.images.insert(k, v);
    }
    for (k, v) in [
        ("w_good", w_good),
        ("w_vendor", w_vendor),
        ("w_gone", w_gone),
    ] {
        org.instances.insert(k, v);
    }
    org
}

/// The workload's Auto Scaling groups (no capacity: moto would launch
/// instances), their templates and the SSM parameters stacks read:
/// - template `web`: version 1 `good` (one version behind), version 2
///   `newer`, $Default 1; `scratch`: the deregistered `temporary`; `vendor`:
///   the image from outside the organization;
/// - groups `asg-behind` (web version "1"), `asg-current` (web $Latest),
///   `asg-mixed` (web $Default, through a mixed instances policy),
///   `asg-gone` (scratch), `asg-vendor` (vendor);
/// - parameters `/golden/base` (aws:ec2:image, `good`), `/golden/base-next`
///   (aws:ec2:image, `newer`), `/ami/web` (text under a scanned path,
///   `newer`), `/golden/motd` (text, no AMI id) and `/app/base` (aws:ec2:image
///   outside the paths, `temporary`).
async fn seed_fleet(
    org: &mut Org,
    config: &aws_config::SdkConfig,
    w: &aws_sdk_ec2::Client,
    good: &str,
    newer: &str,
    temporary: &str,
    vendor: &str,
) {
    use aws_sdk_autoscaling::types as asg;
    let web = create_launch_template(w, "web", good).await;
    w.create_launch_template_version()
        .launch_template_id(&web)
        .launch_template_data(
            ec2::RequestLaunchTemplateData::builder()
                .image_id(newer)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let scratch = create_launch_template(w, "scratch", temporary).await;
    let vendor_template = create_launch_template(w, "vendor", vendor).await;
    let autoscaling = aws_sdk_autoscaling::Client::new(config);
    let spec = |id: &str, version: &str| {
        asg::LaunchTemplateSpecification::builder()
            .launch_template_id(id)
            .version(version)
            .build()
    };
    for (name, id, version, mixed) in [
        ("asg-behind", &web, "1", false),
        ("asg-current", &web, "$Latest", false),
        ("asg-mixed", &web, "$Default", true),
        ("asg-gone", &scratch, "$Default", false),
        ("asg-vendor", &vendor_template, "$Default", false),
    ] {
        let mut request = autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .availability_zones("us-east-1a")
            .min_size(0)
            .max_size(0)
            .desired_capacity(0);
        request = if mixed {
            request.mixed_instances_policy(
                asg::MixedInstancesPolicy::builder()
                    .launch_template(
                        asg::LaunchTemplate::builder()
                            .launch_template_specification(spec(id, version))
                            .build(),
                    )
                    .build(),
            )
        } else {
            request.launch_template(spec(id, version))
        };
        request.send().await.unwrap();
    }
    let ssm = aws_sdk_ssm::Client::new(config);
    for (name, data_type, value) in [
        ("/golden/base", "aws:ec2:image", good),
        ("/golden/base-next", "aws:ec2:image", newer),
        ("/ami/web", "text", newer),
        ("/golden/motd", "text", "welcome"),
        ("/app/base", "aws:ec2:image", temporary),
    ] {
        ssm.put_parameter()
            .name(name)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .data_type(data_type)
            .value(value)
            .send()
            .await
            .unwrap();
    }
    // A secret under a scanned path: never read, not even as ciphertext.
    ssm.put_parameter()
        .name("/golden/db-password")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value("hunter2")
        .send()
        .await
        .unwrap();
    for (k, v) in [
        ("web", web),
        ("scratch", scratch),
        ("vendor", vendor_template),
    ] {
        org.fleet_templates.insert(k, v);
    }
}

/// (account, resource) -> status, for every result of one rule.
type Results = BTreeMap<(String, String), String>;

struct Audit {
    by_rule: BTreeMap<String, Results>,
    denied: String,
    /// Every mismatch found, by rule: all are reported at the end, so a
    /// failure names every rule that broke, not only the first.
    problems: std::cell::RefCell<Vec<String>>,
}

impl Audit {
    /// The rule's results outside the denied account must be exactly
    /// `expected`; inside it, all unknown.
    fn check(&self, rule: &str, expected: Vec<(String, String, &str)>) {
        let mut problems = self.problems.borrow_mut();
        let Some(results) = self.by_rule.get(rule) else {
            problems.push(format!("{rule}: no results at all"));
            return;
        };
        let mut seen: Results = BTreeMap::new();
        for ((account, resource), status) in results {
            if *account == self.denied {
                if status != "unknown" {
                    problems.push(format!(
                        "{rule}: {resource} of the denied account is {status}, not unknown"
                    ));
                }
            } else {
                seen.insert((account.clone(), resource.clone()), status.clone());
            }
        }
        if !results.keys().any(|(a, _)| *a == self.denied) {
            problems.push(format!("{rule}: the denied account has no result"));
        }
        let expected: Results = expected
            .into_iter()
            .map(|(a, r, s)| ((a, r), s.to_string()))
            .collect();
        if seen != expected {
            let only = |x: &Results, y: &Results| -> Vec<String> {
                x.iter()
                    .filter(|(k, v)| y.get(*k) != Some(*v))
                    .map(|((a, r), s)| format!("{a} {r} {s}"))
                    .collect()
            };
            problems.push(format!(
                "{rule}:\n  got but not expected: {:?}\n  expected but not got: {:?}",
                only(&seen, &expected),
                only(&expected, &seen)
            ));
        }
    }

    fn assert_all_as_seeded(&self) {
        let problems = self.problems.borrow();
        assert!(
            problems.is_empty(),
            "{} rules judged other than seeded:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// The factory's Image Builder resources in us-east-1 (the gap client
/// answers them: moto has no Image Builder): `golden`, a pipeline that does
/// everything right and built the `good` AMI, and `neglected`, which does
/// everything wrong. Returns their ARNs.
fn seed_pipelines(org: &Org) -> (String, String) {
    let f = &org.factory;
    let arn = |kind: &str, name: &str| format!("arn:aws:imagebuilder:{US}:{f}:{kind}/{name}");
    let pipeline = |name: &str, good: bool| {
        json!({
            "arn": arn("image-pipeline", name),
            "name": name,
            "platform": "Linux",
            "status": if good { "ENABLED" } else { "DISABLED" },
            "schedule": if good {
                json!({"scheduleExpression": "cron(0 6 ? * mon *)", "timezone": "Etc/UTC",
                       "pipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"})
            } else { json!({}) },
            "imageTestsConfiguration": {"imageTestsEnabled": good, "timeoutMinutes": 720},
            "imageScanningConfiguration": {"imageScanningEnabled": good},
            "enhancedImageMetadataEnabled": true,
            "lastRunStatus": if good { "AVAILABLE" } else { "FAILED" },
            "consecutiveFailures": if good { 0 } else { 3 },
            "dateCreated": "2026-01-05T10:00:00.000Z",
            "imageRecipeArn": arn("image-recipe", &format!("{name}/1.0.0")),
            "infrastructureConfigurationArn": arn("infrastructure-configuration", name),
            "distributionConfigurationArn": arn("distribution-configuration", name),
        })
    };
    let recipe = |name: &str, good: bool| {
        json!({
            "arn": arn("image-recipe", &format!("{name}/1.0.0")),
            "name": name,
            "version": "1.0.0",
            "parentImage": if good {
                format!("arn:aws:imagebuilder:{US}:aws:image/amazon-linux-2023-x86/x.x.x")
            } else { "ami-0123456789abcdef0".to_string() },
            "components": [{"componentArn": format!("arn:aws:imagebuilder:{US}:aws:component/update-linux/x.x.x")}],
            "blockDeviceMappings": [{"deviceName": "/dev/xvda",
                "ebs": if good { json!({"encrypted": true, "kmsKeyId": "alias/golden", "volumeSize": 30}) }
                       else { json!({"volumeSize": 30}) }}],
        })
    };
    let distribution = |name: &str, good: bool| {
        let region = |r: &str| {
            let permission = if good {
                json!({"organizationArns": [org.organization_arn]})
            } else {
                json!({"userGroups": ["all"], "userIds": [OUTSIDE, org.workload, org.management]})
            };
            let mut ami = json!({"name": format!("{name}-{{{{imagebuilder:buildDate}}}}"), "launchPermission": permission});
            if good {
                ami["kmsKeyId"] = json!(format!("arn:aws:kms:{r}:{f}:key/golden"));
            }
            json!({"region": r, "amiDistributionConfiguration": ami})
        };
        let regions = if good {
            vec![region(US), region(EU)]
        } else {
            vec![region(US)]
        };
        json!({"arn": arn("distribution-configuration", name), "name": name,
               "distributions": regions, "timeoutMinutes": 360})
    };
    let infrastructure = |name: &str, good: bool| {
        json!({"arn": arn("infrastructure-configuration", name), "name": name,
               "instanceProfileName": "ImageBuilder",
               "instanceMetadataOptions": {"httpTokens": if good { "required" } else { "optional" }},
               "terminateInstanceOnFailure": true})
    };
    let golden = arn("image-pipeline", "golden");
    let neglected = arn("image-pipeline", "neglected");
    let build = |version: &str| arn("image", &format!("golden/{version}/1"));
    let fixture = json!({
        "pipelines": [pipeline("golden", true), pipeline("neglected", false)],
        "images": {
            golden.clone(): [{
                "arn": build("1.0.0"), "name": "golden", "version": "1.0.0",
                "state": {"status": "AVAILABLE"},
                // Relative to the scan's clock: the newest build is recent.
                "dateCreated": (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339(),
                "buildType": "SCHEDULED",
                "outputResources": {"amis": [{"region": US, "image": org.image("good"), "accountId": f}]},
            }],
            // Its last two runs failed, one started by hand: AWS's
            // counter would not count that one.
            neglected.clone(): [
                {"arn": arn("image", "neglected/1.0.1/1"), "name": "neglected", "version": "1.0.1",
                 "state": {"status": "FAILED", "reason": "component failed"},
                 "dateCreated": (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339(),
                 "buildType": "SCHEDULED", "outputResources": {"amis": []}},
                {"arn": arn("image", "neglected/1.0.1/2"), "name": "neglected", "version": "1.0.1",
                 "state": {"status": "FAILED", "reason": "component failed"},
                 "dateCreated": (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339(),
                 "buildType": "USER_INITIATED", "outputResources": {"amis": []},
                 "tags": {"Team": "platform"}},
            ],
        },
        "recipes": {
            arn("image-recipe", "golden/1.0.0"): recipe("golden", true),
            arn("image-recipe", "neglected/1.0.0"): recipe("neglected", false),
            // No pipeline builds from it: only EC2's reference check sees
            // that it uses the `kept` AMI.
            arn("image-recipe", "retired/1.0.0"): json!({
                "arn": arn("image-recipe", "retired/1.0.0"),
                "name": "retired",
                "version": "1.0.0",
                "parentImage": org.image("kept"),
            }),
        },
        "distributions": {
            arn("distribution-configuration", "golden"): distribution("golden", true),
            arn("distribution-configuration", "neglected"): distribution("neglected", false),
        },
        "infrastructures": {
            arn("infrastructure-configuration", "golden"): infrastructure("golden", true),
            arn("infrastructure-configuration", "neglected"): infrastructure("neglected", false),
        },
        // `retire-golden` deprecates the golden recipe's AMIs; `records`
        // selects the neglected pipeline's builds by tag but acts on Image
        // Builder's image resources only (no includeResources.amis).
        "lifecyclePolicies": [{
            "arn": arn("lifecycle-policy", "retire-golden"), "name": "retire-golden",
            "status": "ENABLED", "resourceType": "AMI_IMAGE",
            "executionRole": "arn:aws:iam::1:role/lifecycle",
            "policyDetails": [{"action": {"type": "DEPRECATE", "includeResources": {"amis": true}},
                               "filter": {"type": "AGE", "value": 90, "unit": "DAYS"}}],
            "resourceSelection": {"recipes": [{"name": "golden", "semanticVersion": "x.x.x"}]},
        }, {
            "arn": arn("lifecycle-policy", "records"), "name": "records",
            "status": "ENABLED", "resourceType": "AMI_IMAGE",
            "executionRole": "arn:aws:iam::1:role/lifecycle",
            "policyDetails": [{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 3}}],
            "resourceSelection": {"tagMap": {"Team": "platform"}},
        }],
    });
    seed_image_builder(f, US, fixture);
    // Recycle Bin: us-east-1 keeps deregistered AMIs and their snapshots
    // (Region-level rules); eu-west-1 keeps the AMIs but not the
    // snapshots they need.
    let rule = |region: &str, id: &str, resource_type: &str| {
        json!({
            "Identifier": id,
            "ResourceType": resource_type,
            "RetentionPeriod": {"RetentionPeriodValue": 30, "RetentionPeriodUnit": "DAYS"},
            "ResourceTags": [],
            "ExcludeResourceTags": [],
            "Status": "available",
            "LockState": "locked",
            "RuleArn": format!("arn:aws:rbin:{region}:{f}:rule/{id}"),
        })
    };
    seed_recycle_bin(
        f,
        US,
        vec![
            rule(US, "a1b2c3d4e5f", "EC2_IMAGE"),
            rule(US, "f5e4d3c2b1a", "EBS_SNAPSHOT"),
        ],
    );
    seed_recycle_bin(f, EU, vec![rule(EU, "0a1b2c3d4e5", "EC2_IMAGE")]);
    (golden, neglected)
}

/// The seeded organization, scanned and judged.
struct Judged {
    org: Org,
    inventory: amiaudit::inventory::Inventory,
    audit: Audit,
    /// The pipeline that does everything right, and the one that does
    /// everything wrong.
    golden: String,
    neglected: String,
}

/// Seeds the organization in a fresh moto, scans it through the gap client
/// and judges it with the built-in pack (a few parameters tightened). Each
/// test below judges one part, so a failure names the part that broke.
fn judged() -> Judged {
    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let org = rt.block_on(seed(&moto));
    let (golden, neglected) = seed_pipelines(&org);
    let mut options = ScanOptions::default();
    options.connection.endpoint_url = Some(moto.endpoint.clone());
    options.connection.region = Some(US.to_string());
    options.connection.http_client = Some(MotoGaps::client(&org.denied));
    options.connection.credentials = Some(static_credentials("test", "test", None));
    options.connection.max_attempts = 2;
    options.accounts = AccountSelection::Organization { ou: None };
    options.regions = RegionSelection::List(vec![EU.into(), US.into()]);
    let outcome = rt.block_on(collect::scan(&options)).expect("scan runs");
    let inventory = outcome.inventory;
    let errors = inventory.table("scan_errors").unwrap();
    assert_eq!(
        errors.height(),
        1,
        "only the denied AssumeRole fails: {errors}"
    );

    let parameters = str_column(inventory.table("ssm_parameters").unwrap(), "name").unwrap();
    assert!(
        parameters.contains(&Some("/golden/base"))
            && !parameters.contains(&Some("/golden/db-password")),
        "a SecureString is not listed, let alone read: {parameters:?}"
    );

    let pack = amiaudit::settings::load_pack(&[]).unwrap();
    let mut overrides = ParamOverrides::new();
    overrides
        .entry("AMI-SHARED-ACCOUNT-BY-ACCOUNT".to_string())
        .or_default()
        .insert("max_direct_shares".to_string(), ParamValue::Int(2));
    overrides
        .entry("PIPELINE-SHARED-ACCOUNT-BY-ACCOUNT".to_string())
        .or_default()
        .insert("max_direct_shares".to_string(), ParamValue::Int(2));
    overrides
        .entry("PIPELINE-REGION-GAP".to_string())
        .or_default()
        .insert(
            "required_regions".to_string(),
            ParamValue::List(vec![EU.to_string()]),
        );
    overrides
        .entry("ASG-LAUNCHES-OUTDATED-AMI".to_string())
        .or_default()
        .insert("max_versions_behind".to_string(), ParamValue::Int(0));
    let evaluation = evaluate(&inventory, &pack.rules, &overrides);
    assert!(
        evaluation.rule_errors.is_empty(),
        "{:?}",
        evaluation.rule_errors
    );
    let r = &evaluation.results;
    let (rules, accounts, resources, statuses) = (
        str_column(r, "rule_id").unwrap(),
        str_column(r, "account_id").unwrap(),
        str_column(r, "resource_id").unwrap(),
        str_column(r, "status").unwrap(),
    );
    let mut by_rule: BTreeMap<String, Results> = BTreeMap::new();
    for i in 0..r.height() {
        let previous = by_rule
            .entry(rules[i].unwrap().to_string())
            .or_default()
            .insert(
                (
                    accounts[i].unwrap().to_string(),
                    resources[i].unwrap().to_string(),
                ),
                statuses[i].unwrap().to_string(),
            );
        assert!(
            previous.is_none(),
            "one result per resource: {:?}",
            rules[i]
        );
    }
    let audit = Audit {
        by_rule,
        denied: org.denied.clone(),
        problems: Default::default(),
    };

    Judged {
        org,
        inventory,
        audit,
        golden,
        neglected,
    }
}

/// The factory's AMIs, rule by rule.
#[test]
fn images_are_judged_as_seeded() {
    let Judged {
        org,
        inventory,
        audit,
        ..
    } = judged();
    let f = org.factory.as_str();
    let id = |name: &str| org.image(name);
    // Every AMI the scan saw, by owner.
    let f_images: Vec<(&str, String)> = [
        "good",
        "public",
        "outside",
        "many",
        "no_owner",
        "no_version",
        "no_env",
        "manual",
        "kept",
        "eu",
        "eu_newer",
        "newer",
    ]
    .into_iter()
    .map(|n| (n, id(n)))
    .collect();
    let images_where =
        |status: &dyn Fn(&str) -> &'static str| -> Vec<(String, String, &'static str)> {
            f_images
                .iter()
                .map(|(n, i)| (f.to_string(), i.clone(), status(n)))
                .collect()
        };
    let check = |rule: &str, rows: Vec<(String, String, &'static str)>| audit.check(rule, rows);

    check(
        "AMI-PUBLIC",
        images_where(&|n| if n == "public" { "fail" } else { "pass" }),
    );
    check(
        "AMI-SHARED-OUTSIDE-ORG",
        images_where(&|n| if n == "outside" { "fail" } else { "pass" }),
    );
    check(
        "AMI-SHARED-ACCOUNT-BY-ACCOUNT",
        images_where(&|n| if n == "many" { "fail" } else { "pass" }),
    );
    check(
        "AMI-REQUIRED-TAGS",
        images_where(&|n| match n {
            "no_owner" | "no_version" | "no_env" | "manual" | "kept" => "fail",
            _ => "pass",
        }),
    );
    check(
        "AMI-NAMING",
        images_where(&|n| if n == "manual" { "fail" } else { "pass" }),
    );
    check(
        "AMI-NOT-PIPELINE-BUILT",
        images_where(&|n| {
            if matches!(n, "manual" | "kept") {
                "fail"
            } else {
                "pass"
            }
        }),
    );
    // moto returns no ImdsSupport and no DeprecationTime: all fail, as on EC2
    // for images registered without them.
    check("AMI-IMDSV1-ALLOWED", images_where(&|_| "fail"));
    check("AMI-NO-DEPRECATION", images_where(&|_| "fail"));
    for rule in ["AMI-STALE", "AMI-UNUSED", "AMI-UNHEALTHY-STATE"] {
        check(rule, images_where(&|_| "pass"));
    }
    // Every factory image is registered (no recorded ancestor: its own
    // base, the factory's, not approved by default) or copied or created
    // from one.
    check("AMI-BASE-UNAPPROVED", images_where(&|_| "fail"));
    // moto's block-device mappings carry no `Encrypted` flag: not known.
    check("AMI-UNENCRYPTED", images_where(&|_| "unknown"));
    check("AMI-AWS-MANAGED-KEY", images_where(&|_| "unknown"));
    // In use, and moto does not say whether deregistration protection is on.
    check(
        "AMI-NO-DEREGISTRATION-PROTECTION",
        vec![
            (f.to_string(), id("good"), "unknown"),
            (f.to_string(), id("newer"), "unknown"),
            (f.to_string(), id("eu"), "unknown"),
            (f.to_string(), id("eu_newer"), "unknown"),
        ],
    );
    check("AMI-DEPRECATED-IN-USE", vec![]);
    // Inspector scans only where an instance of the image runs with it on.
    check(
        "VULN-CRITICAL",
        images_where(&|n| if n == "good" { "fail" } else { "unknown" }),
    );
    check(
        "VULN-HIGH",
        images_where(&|n| if n == "good" { "pass" } else { "unknown" }),
    );
    check(
        "VULN-FIX-OVERDUE",
        images_where(&|n| if n == "good" { "fail" } else { "unknown" }),
    );
    // The newest base-golden reached eu-west-1 (copied before the older).
    // The three db-golden versions were registered one after the other:
    // CreationDate has whole seconds, so two in the newest second are not
    // ordered, and which is newest is not known.
    let db_golden = {
        let images = inventory.table("images").unwrap();
        let names = str_column(images, "name").unwrap();
        let created = amiaudit::inventory::i64_column(images, "creation_date").unwrap();
        let seconds: Vec<i64> = names
            .iter()
            .zip(created)
            .filter(|(n, _)| n.is_some_and(|n| n.starts_with("db-golden-")))
            .map(|(_, c)| c.unwrap().div_euclid(1000))
            .collect();
        let top = seconds.iter().max().copied();
        if seconds.iter().filter(|s| Some(**s) == top).count() > 1 {
            "unknown"
        } else {
            "pass"
        }
    };
    check(
        "FAMILY-REGION-GAP",
        [
            (US, "base-golden"),
            (EU, "base-golden"),
            (US, "web-golden"),
            (US, "app-golden"),
            (US, "svc-golden"),
            (US, "db-golden"),
            (US, "Manual Build 1"),
            (US, "kept-golden"),
        ]
        .into_iter()
        .map(|(region, family)| {
            let status = if family == "db-golden" {
                db_golden
            } else {
                "pass"
            };
            (f.to_string(), format!("{family}@{region}"), status)
        })
        .collect(),
    );

    audit.assert_all_as_seeded();
}

/// Snapshots: every one the factory owns, backing an AMI or not.
#[test]
fn snapshots_are_judged_as_seeded() {
    let Judged {
        org,
        inventory,
        audit,
        ..
    } = judged();
    let f = org.factory.as_str();
    let check = |rule: &str, rows: Vec<(String, String, &'static str)>| audit.check(rule, rows);
    let snapshots = inventory.table("snapshots").unwrap();
    let (owners, ids) = (
        str_column(snapshots, "account_id").unwrap(),
        str_column(snapshots, "snapshot_id").unwrap(),
    );
    let all_snapshots: Vec<(String, String)> = owners
        .iter()
        .zip(ids)
        .map(|(a, s)| (a.unwrap().to_string(), s.unwrap().to_string()))
        .collect();
    assert!(all_snapshots.len() >= 10, "{all_snapshots:?}");
    let snapshots_where = |bad: &str| -> Vec<(String, String, &'static str)> {
        all_snapshots
            .iter()
            .map(|(a, s)| {
                let status = if *s == org.snapshots[bad] {
                    "fail"
                } else {
                    "pass"
                };
                (a.clone(), s.clone(), status)
            })
            .collect()
    };
    check("SNAP-PUBLIC", snapshots_where("public"));
    check("SNAP-SHARED-OUTSIDE-ORG", snapshots_where("outside"));
    check(
        "SNAP-ORPHANED",
        vec![
            (f.to_string(), org.snapshots["kept"].clone(), "pass"),
            (f.to_string(), org.snapshots["orphan"].clone(), "fail"),
        ],
    );

    audit.assert_all_as_seeded();
}

/// Instances and templates, the fleet, and the AMIs they use.
#[test]
fn consumers_are_judged_as_seeded() {
    let Judged { org, audit, .. } = judged();
    let (f, w) = (org.factory.as_str(), org.workload.as_str());
    let check = |rule: &str, rows: Vec<(String, String, &'static str)>| audit.check(rule, rows);
    let inst = |n: &str| org.instances[n].clone();
    check(
        "INSTANCE-AMI-MISSING",
        vec![
            (f.to_string(), inst("builder"), "pass"),
            (w.to_string(), inst("w_good"), "pass"),
            (w.to_string(), inst("w_vendor"), "pass"),
            (w.to_string(), inst("w_gone"), "fail"),
            (f.to_string(), org.templates["gone"].clone(), "fail"),
            (f.to_string(), org.templates["ok"].clone(), "pass"),
            (w.to_string(), org.fleet_templates["web"].clone(), "pass"),
            (
                w.to_string(),
                org.fleet_templates["scratch"].clone(),
                "fail",
            ),
            (w.to_string(), org.fleet_templates["vendor"].clone(), "pass"),
        ],
    );
    check(
        "INSTANCE-UNAPPROVED-AMI",
        vec![
            (f.to_string(), inst("builder"), "pass"),
            (w.to_string(), inst("w_good"), "pass"),
            (w.to_string(), inst("w_vendor"), "fail"),
            (w.to_string(), inst("w_gone"), "pass"),
        ],
    );

    // The fleet (see `seed_fleet`): `good` is one version behind `newer`.
    let lt = |name: &str, version: u32| format!("{}:{version}", org.fleet_templates[name]);
    check(
        "INSTANCE-GOLDEN-BEHIND",
        vec![
            (f.to_string(), inst("builder"), "pass"),
            (w.to_string(), inst("w_good"), "pass"),
            (w.to_string(), inst("w_gone"), "fail"),
        ],
    );
    check(
        "ASG-LAUNCHES-OUTDATED-AMI",
        vec![
            (w.to_string(), "asg-behind".into(), "fail"),
            (w.to_string(), "asg-current".into(), "pass"),
            (w.to_string(), "asg-mixed".into(), "fail"),
            (w.to_string(), "asg-gone".into(), "fail"),
        ],
    );
    check(
        "ASG-UNAPPROVED-AMI",
        vec![
            (w.to_string(), "asg-behind".into(), "pass"),
            (w.to_string(), "asg-current".into(), "pass"),
            (w.to_string(), "asg-mixed".into(), "pass"),
            (w.to_string(), "asg-gone".into(), "unknown"),
            (w.to_string(), "asg-vendor".into(), "fail"),
        ],
    );
    check(
        "LT-VERSION-OUTDATED-AMI",
        vec![
            (w.to_string(), lt("web", 1), "pass"),
            (w.to_string(), lt("web", 2), "pass"),
            (w.to_string(), lt("scratch", 1), "fail"),
        ],
    );
    // In eu-west-1 the copies are ordered by their originals: `/golden/base`
    // names the copy made last, of the older version.
    check(
        "SSM-PARAM-OUTDATED-AMI",
        vec![
            (w.to_string(), "/golden/base".into(), "fail"),
            (w.to_string(), "/golden/base-next".into(), "pass"),
            (w.to_string(), "/ami/web".into(), "pass"),
            (w.to_string(), "/app/base".into(), "fail"),
            (f.to_string(), "/golden/base".into(), "fail"),
            (f.to_string(), "/golden/base-next".into(), "pass"),
        ],
    );

    audit.assert_all_as_seeded();
}

/// Settings of every account-region.
#[test]
fn region_settings_are_judged_as_seeded() {
    let Judged { org, audit, .. } = judged();
    let (m, f, w) = (
        org.management.as_str(),
        org.factory.as_str(),
        org.workload.as_str(),
    );
    let check = |rule: &str, rows: Vec<(String, String, &'static str)>| audit.check(rule, rows);
    let regions = |pass: &dyn Fn(&str, &str) -> bool| -> Vec<(String, String, &'static str)> {
        [m, f, w]
            .into_iter()
            .flat_map(|a| [US, EU].map(move |r| (a, r)))
            .map(|(a, r)| {
                (
                    a.to_string(),
                    r.to_string(),
                    if pass(a, r) { "pass" } else { "fail" },
                )
            })
            .collect()
    };
    for rule in [
        "REGION-IMAGE-BPA",
        "REGION-SNAPSHOT-BPA",
        "REGION-ALLOWED-AMIS-OFF",
    ] {
        check(rule, regions(&|_, r| r == EU));
    }
    check(
        "REGION-EBS-DEFAULT-ENCRYPTION",
        regions(&|a, r| a == f && r == US),
    );
    // Only the factory holds AMIs (see `seed_recycle_bin` in `seed_pipelines`).
    check(
        "REGION-RECYCLE-BIN-OFF",
        vec![
            (f.to_string(), US.to_string(), "pass"),
            (f.to_string(), EU.to_string(), "fail"),
        ],
    );
    check(
        "REGION-INSPECTOR-EC2-OFF",
        regions(&|a, r| (a == w || a == f) && r == US),
    );

    audit.assert_all_as_seeded();
}

/// The factory's pipelines: `golden` passes everything, `neglected` fails
/// everything.
#[test]
fn pipelines_are_judged_as_seeded() {
    let Judged {
        org,
        audit,
        golden,
        neglected,
        ..
    } = judged();
    let f = org.factory.as_str();
    for rule in [
        "PIPELINE-DISABLED",
        "PIPELINE-NO-SCHEDULE",
        "PIPELINE-TESTS-OFF",
        "PIPELINE-SCANNING-OFF",
        "PIPELINE-FAILING",
        "PIPELINE-STALE-OUTPUT",
        "PIPELINE-REGION-GAP",
        "PIPELINE-PUBLIC",
        "PIPELINE-SHARED-OUTSIDE-ORG",
        "PIPELINE-SHARED-ACCOUNT-BY-ACCOUNT",
        "PIPELINE-RECIPE-UNENCRYPTED",
        "PIPELINE-DISTRIBUTION-NO-CMK",
        "PIPELINE-BUILD-IMDSV1",
        "PIPELINE-NO-LIFECYCLE",
        "PIPELINE-PARENT-PINNED",
    ] {
        audit.check(
            rule,
            vec![
                (f.to_string(), golden.clone(), "pass"),
                (f.to_string(), neglected.clone(), "fail"),
            ],
        );
    }

    audit.assert_all_as_seeded();
}

/// What references the factory's AMIs in their own account-region, as EC2
/// answers DescribeImageReferences (the gap client answers from moto's
/// instances, templates and parameters and from the Image Builder fixture):
/// a recipe no pipeline uses, the parameters the factory's stacks read; and
/// every AMI the factory owns was asked about.
#[test]
fn what_references_each_ami_is_read_as_ec2_answers() {
    let Judged { org, inventory, .. } = judged();
    let f = org.factory.as_str();
    let references = inventory.table("image_references").unwrap();
    let (accounts, regions, images, kinds) = (
        str_column(references, "account_id").unwrap(),
        str_column(references, "region").unwrap(),
        str_column(references, "image_id").unwrap(),
        str_column(references, "resource_type").unwrap(),
    );
    let found: Vec<(String, String, String, String)> = (0..references.height())
        .map(|i| {
            (
                accounts[i].unwrap().to_string(),
                regions[i].unwrap().to_string(),
                images[i].unwrap().to_string(),
                kinds[i].unwrap().to_string(),
            )
        })
        .collect();
    for (region, image, kind) in [
        (US, org.image("kept"), "imagebuilder:ImageRecipe"),
        (EU, org.image("eu"), "ssm:Parameter"),
        (EU, org.image("eu_newer"), "ssm:Parameter"),
    ] {
        assert!(
            found.contains(&(
                f.to_string(),
                region.to_string(),
                image.clone(),
                kind.to_string()
            )),
            "{image} in {region} referenced by an {kind}: {found:?}"
        );
    }
    // Only the fresh report for every account and both types is read, and
    // what it says is use.
    let reports = inventory.table("image_usage_reports").unwrap();
    assert_eq!(
        str_column(reports, "report_id").unwrap(),
        vec![Some("amiur-0fresh")],
        "{reports}"
    );
    assert_eq!(
        amiaudit::inventory::bool_column(reports, "entries_read").unwrap(),
        vec![Some(true)]
    );
    let uses = inventory.table("image_uses").unwrap();
    let (users, used, kinds) = (
        str_column(uses, "account_id").unwrap(),
        str_column(uses, "image_id").unwrap(),
        str_column(uses, "use_type").unwrap(),
    );
    let outside = org.image("outside");
    assert!(
        (0..uses.height()).any(|i| users[i] == Some(OUTSIDE)
            && used[i] == Some(outside.as_str())
            && kinds[i] == Some("usage-report:ec2:Instance")),
        "the report's entry is a use by {OUTSIDE}: {uses}"
    );
    let images = inventory.table("images").unwrap();
    let owners = str_column(images, "account_id").unwrap();
    let read = amiaudit::inventory::bool_column(images, "references_read").unwrap();
    let factory_images = owners.iter().filter(|o| **o == Some(f)).count();
    assert!(factory_images >= 12);
    assert!(
        owners
            .iter()
            .zip(&read)
            .filter(|(o, _)| **o == Some(f))
            .all(|(_, r)| *r == Some(true)),
        "every AMI the factory owns was asked about: {read:?}"
    );
}

/// A scan of the caller's own account, us-east-1, through the gap client.
fn caller_scan(moto: &Moto) -> ScanOptions {
    let mut options = ScanOptions::default();
    options.connection.endpoint_url = Some(moto.endpoint.clone());
    options.connection.region = Some(US.to_string());
    options.connection.http_client = Some(MotoGaps::client("000000000000"));
    options.connection.credentials = Some(static_credentials("test", "test", None));
    options.connection.max_attempts = 2;
    options.regions = RegionSelection::List(vec![US.into()]);
    options
}

/// What each image is built on, through the real SDK: an image created
/// from an instance of Amazon's AMI passes (DescribeImages shows the source
/// is a root), one on another account's base built on Amazon's passes
/// (GetImageAncestry gives the chain), one from an instance of a community
/// AMI fails, and so does a registered image (no recorded ancestor: its
/// own base, owned by an account not approved by default).
#[test]
fn provenance_is_read_from_the_ancestry() {
    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (on_amazon, on_community, registered, on_layered) = rt.block_on(async {
        let public = || {
            vec![
                ec2::LaunchPermission::builder()
                    .group(ec2::PermissionGroup::All)
                    .build(),
            ]
        };
        let amazon = aws_sdk_ec2::Client::new(&moto.account(AMAZON).await);
        let al2023 = register(
            &amazon,
            "al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64",
            &[],
        )
        .await;
        share_image(&amazon, &al2023, public()).await;
        let community = aws_sdk_ec2::Client::new(&moto.account("444455556666").await);
        let cheap = register(&community, "ubuntu-cheap-hardened", &[]).await;
        share_image(&community, &cheap, public()).await;
        // Another account's base, itself built on Amazon's: a chain of two.
        let platform = aws_sdk_ec2::Client::new(&moto.account("777788889999").await);
        let platform_builder = run_instance(&platform, &al2023, "platform-builder").await;
        let layered = create_image(&platform, &platform_builder, "platform-base-20261001").await;
        share_image(&platform, &layered, public()).await;
        let caller = aws_sdk_ec2::Client::new(&moto.config().await);
        // moto copies only the caller's own images: the community base is
        // built on, not copied.
        let builder = run_instance(&caller, &al2023, "builder").await;
        let shortcut = run_instance(&caller, &cheap, "shortcut").await;
        let on_platform = run_instance(&caller, &layered, "on-platform").await;
        (
            create_image(&caller, &builder, "web-golden-20261101-v1").await,
            create_image(&caller, &shortcut, "app-golden-20261101-v1").await,
            register(&caller, "db-golden-20261101-v1", &[]).await,
            create_image(&caller, &on_platform, "svc-golden-20261101-v1").await,
        )
    });
    let options = caller_scan(&moto);
    let inventory = rt
        .block_on(collect::scan(&options))
        .expect("scan runs")
        .inventory;
    let pack = amiaudit::settings::load_pack(&[]).unwrap();
    let rules: Vec<_> = pack
        .rules
        .into_iter()
        .filter(|r| r.id == "AMI-BASE-UNAPPROVED")
        .collect();
    let evaluation = evaluate(&inventory, &rules, &ParamOverrides::new());
    assert!(
        evaluation.rule_errors.is_empty(),
        "{:?}",
        evaluation.rule_errors
    );
    let r = &evaluation.results;
    let (resources, statuses, reasons) = (
        str_column(r, "resource_id").unwrap(),
        str_column(r, "status").unwrap(),
        str_column(r, "reason").unwrap(),
    );
    let judged: BTreeMap<&str, (&str, &str)> = (0..r.height())
        .map(|i| {
            (
                resources[i].unwrap(),
                (statuses[i].unwrap(), reasons[i].unwrap_or("")),
            )
        })
        .collect();
    assert_eq!(judged.len(), 4, "{judged:?}");
    assert_eq!(judged[on_amazon.as_str()].0, "pass", "{judged:?}");
    assert_eq!(judged[on_community.as_str()].0, "fail", "{judged:?}");
    assert!(
        judged[on_community.as_str()].1.contains("444455556666")
            && judged[on_community.as_str()]
                .1
                .contains("ubuntu-cheap-hardened"),
        "the base's owner and name, as DescribeImages showed them: {judged:?}"
    );
    // No recorded ancestor: its own base, the caller's, not approved.
    assert_eq!(judged[registered.as_str()].0, "fail", "{judged:?}");
    // Amazon's base two links down: GetImageAncestry gave the chain.
    assert_eq!(judged[on_layered.as_str()].0, "pass", "{judged:?}");
    let ancestry = inventory.table("image_ancestry").unwrap();
    let (asked, depth, alias) = (
        str_column(ancestry, "image_id").unwrap(),
        amiaudit::inventory::i64_column(ancestry, "depth").unwrap(),
        str_column(ancestry, "owner_alias").unwrap(),
    );
    let chain: Vec<(Option<i64>, Option<&str>)> = (0..ancestry.height())
        .filter(|&i| asked[i] == Some(on_layered.as_str()))
        .map(|i| (depth[i], alias[i]))
        .collect();
    assert_eq!(chain, vec![(Some(1), None), (Some(2), Some("amazon"))]);
}

/// `image_usage_reports = "create"`: a report is asked for each shared AMI
/// that has none, once (the next scan finds it pending), and that is the
/// scan's only write; `reuse` never writes.
#[test]
fn create_mode_asks_once_for_a_report_on_each_shared_ami() {
    use amiaudit::collect::UsageReports;
    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let caller = aws_sdk_ec2::Client::new(&moto.config().await);
        let shared = register(&caller, "web-golden-20261101-v1", &[]).await;
        share_image(&caller, &shared, vec![user("444455556666")]).await;
        register(&caller, "db-golden-20261101-v1", &[]).await;
    });
    let mut options = caller_scan(&moto);
    options.usage_reports.mode = UsageReports::Create;
    let creates = |options: &ScanOptions| {
        let outcome = rt.block_on(collect::scan(options)).expect("scan runs");
        let policy = super::deploy::policy_actions();
        for op in outcome.stats.operations.keys() {
            assert!(
                op == "ec2:CreateImageUsageReport" || policy.contains(op),
                "{op} is neither read-only nor the one write create mode makes"
            );
        }
        outcome
            .stats
            .operations
            .get("ec2:CreateImageUsageReport")
            .map(|c| c.calls)
            .unwrap_or_default()
    };
    assert_eq!(creates(&options), 1, "one shared AMI, one report");
    assert_eq!(
        creates(&options),
        0,
        "the report is pending: not asked twice"
    );
    options.usage_reports.mode = UsageReports::Reuse;
    assert_eq!(creates(&options), 0, "reuse never writes");
}

/// Every rule of the pack is judged by one of the tests above.
#[test]
fn every_rule_is_asserted_by_a_truth_test() {
    let pack = amiaudit::settings::load_pack(&[]).unwrap();
    let source = include_str!("truth.rs");
    for rule in &pack.rules {
        assert!(
            source.contains(&format!("\"{}\"", rule.id)),
            "{} is not asserted by the truth test",
            rule.id
        );
    }
}
