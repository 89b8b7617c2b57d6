//! Planted results: resources with fixed ids that the sample organization
//! must fail (or, for coverage gaps, not judge), each a record. The
//! generator, the tests and `sample-data/README.md` (a test keeps its
//! tables equal to [`PLANTED`]) read the same list, and the ids below are
//! written once. (Long: the records and their builders, side by side.)

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use chrono::Duration;

use super::factory::{
    AL2023_PIPELINE, EKS_PIPELINE, LEGACY_PIPELINE, RHEL_PIPELINE, SANDBOX_PIPELINE,
    SECURITY_PIPELINE, UBUNTU_PIPELINE, WINDOWS_PIPELINE,
};
use super::org::{FACTORY, LEGACY, SANDBOX};
use super::region::{block_device, launch_permission, snapshot};
use super::usage::finding;
use super::{COMMUNITY_OWNER, Gen, OUTSIDE_ACCOUNTS, SynthOptions};
use crate::inventory::Value;

pub const PUBLIC_IMAGE: &str = "ami-0a11ce5ec7e7pub1";
pub const DEPRECATED_IN_USE: &str = "ami-0f1e2d3c4b5a6978";
pub const DEPRECATED_USER: &str = "i-0de9ecaedf00d0001";
pub const SHARED_OUTSIDE: &str = "ami-0b0bca75ea7ed0a1";
pub const THROTTLED_IMAGE: &str = "ami-0d0e5c71be7a7001";
pub const SHARED_ONE_BY_ONE: &str = "ami-0c0ffee5a11ac0c7";
pub const ORPHANED_SNAPSHOT: &str = "snap-0c0ffee0ab5e0b1d";
pub const ORPHANED_SNAPSHOT_IMAGE: &str = "ami-0de7e7ed0000beef";
pub const LEGACY_IMAGE: &str = "ami-0dead0e7c0de0e70";
pub const PUBLIC_SNAPSHOT: &str = "snap-0bad5eed0b11c0a1";
pub const AWS_KEY_IMAGE: &str = "ami-0e0f5aa7ad0be5ca";
pub const OUTSIDE_SNAPSHOT: &str = "snap-0d00dada7a5ea7ed";
pub const FAILED_BUILD: &str = "ami-0fa11edbu11d0001";
pub const MISSING_AMI_TEMPLATE: &str = "lt-0a1b2c3d4e5f60718";
pub const MISSING_AMI: &str = "ami-0de7e7ed0000cafe";
pub const SANDBOX_IMAGE: &str = "ami-0a11ce0000ad0c01";
pub const COMMUNITY_INSTANCE: &str = "i-0c0aa1ce0c0aa1ce0";
pub const COMMUNITY_IMAGE: &str = "ami-0c0a11c0ffee0c0a";
pub const THROTTLED_SNAPSHOT: &str = "snap-0feed5a11ed00001";
pub const STUCK_ASG: &str = "payments-api-asg";
macro_rules! stuck_template {
    () => {
        "lt-0bad0a5c0ffee0a5"
    };
}
pub const STUCK_TEMPLATE: &str = stuck_template!();
/// The version the stuck group pins (LT-VERSION-OUTDATED-AMI's resource id).
pub const STUCK_TEMPLATE_VERSION: &str = concat!(stuck_template!(), ":3");
pub const STALE_PARAMETER: &str = "/golden/payments-api/latest";
pub const UNRESOLVED_ASG: &str = "web-frontend-asg";
pub const UNREAD_TEMPLATE: &str = "lt-0feed0f00d0a5a17";
pub const VENDOR_ASG: &str = "alice-experiment-asg";
pub const VENDOR_TEMPLATE: &str = "lt-0c0de0ffee0bad05";

/// What a planted resource must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Fail,
    /// A coverage gap on purpose: the result must be `unknown`.
    Unknown,
}

/// One planted result.
#[derive(Debug, Clone, Copy)]
pub struct Planted {
    pub rule: &'static str,
    pub resource: &'static str,
    pub expect: Expect,
    pub why: &'static str,
}

pub const PLANTED: &[Planted] = &[
    Planted {
        rule: "AMI-PUBLIC",
        resource: PUBLIC_IMAGE,
        expect: Expect::Fail,
        why: "payments debug image made public by hand",
    },
    Planted {
        rule: "AMI-SHARED-OUTSIDE-ORG",
        resource: SHARED_OUTSIDE,
        expect: Expect::Fail,
        why: "web image shared with partner account 999988887777",
    },
    Planted {
        rule: "AMI-SHARED-ACCOUNT-BY-ACCOUNT",
        resource: SHARED_ONE_BY_ONE,
        expect: Expect::Fail,
        why: "factory image shared with 7 accounts one by one",
    },
    Planted {
        rule: "AMI-UNENCRYPTED",
        resource: LEGACY_IMAGE,
        expect: Expect::Fail,
        why: "legacy ERP image with an unencrypted root volume",
    },
    Planted {
        rule: "AMI-AWS-MANAGED-KEY",
        resource: AWS_KEY_IMAGE,
        expect: Expect::Fail,
        why: "staging image encrypted with aws/ebs",
    },
    Planted {
        rule: "AMI-NO-DEPRECATION",
        resource: LEGACY_IMAGE,
        expect: Expect::Fail,
        why: "legacy ERP image, no deprecation time",
    },
    Planted {
        rule: "AMI-STALE",
        resource: LEGACY_IMAGE,
        expect: Expect::Fail,
        why: "legacy ERP image from January 2025",
    },
    Planted {
        rule: "AMI-DEPRECATED-IN-USE",
        resource: DEPRECATED_IN_USE,
        expect: Expect::Fail,
        why: "deprecated payments image still run by i-0de9ecaedf00d0001",
    },
    Planted {
        rule: "INSTANCE-AMI-MISSING",
        resource: MISSING_AMI_TEMPLATE,
        expect: Expect::Fail,
        why: "web-dev launch template pointing at a deregistered AMI",
    },
    Planted {
        rule: "SNAP-ORPHANED",
        resource: ORPHANED_SNAPSHOT,
        expect: Expect::Fail,
        why: "factory snapshot left behind by a deregistered AMI",
    },
    Planted {
        rule: "SNAP-PUBLIC",
        resource: PUBLIC_SNAPSHOT,
        expect: Expect::Fail,
        why: "legacy ERP snapshot restorable by anyone",
    },
    Planted {
        rule: "SNAP-SHARED-OUTSIDE-ORG",
        resource: OUTSIDE_SNAPSHOT,
        expect: Expect::Fail,
        why: "data snapshot shared with 444455556666",
    },
    Planted {
        rule: "AMI-UNHEALTHY-STATE",
        resource: FAILED_BUILD,
        expect: Expect::Fail,
        why: "web-dev build that failed",
    },
    Planted {
        rule: "AMI-REQUIRED-TAGS",
        resource: SANDBOX_IMAGE,
        expect: Expect::Fail,
        why: "sandbox image with no Owner tag",
    },
    Planted {
        rule: "AMI-NAMING",
        resource: SANDBOX_IMAGE,
        expect: Expect::Fail,
        why: "`Alice-Test-Image` breaks the naming convention",
    },
    Planted {
        rule: "AMI-NOT-PIPELINE-BUILT",
        resource: SANDBOX_IMAGE,
        expect: Expect::Fail,
        why: "sandbox image built by hand",
    },
    Planted {
        rule: "INSTANCE-UNAPPROVED-AMI",
        resource: COMMUNITY_INSTANCE,
        expect: Expect::Fail,
        why: "sandbox instance on a community AMI",
    },
    Planted {
        rule: "VULN-CRITICAL",
        resource: DEPRECATED_IN_USE,
        expect: Expect::Fail,
        why: "CVE-2024-6387 (regreSSHion) on the deprecated payments image",
    },
    Planted {
        rule: "FAMILY-REGION-GAP",
        resource: "al2023-base-golden@ap-southeast-1",
        expect: Expect::Fail,
        why: "newest al2023 base image not copied to ap-southeast-1",
    },
    Planted {
        rule: "AMI-PUBLIC",
        resource: THROTTLED_IMAGE,
        expect: Expect::Unknown,
        why: "DescribeImageAttribute was throttled for this image",
    },
    Planted {
        rule: "AMI-SHARED-OUTSIDE-ORG",
        resource: THROTTLED_IMAGE,
        expect: Expect::Unknown,
        why: "DescribeImageAttribute was throttled for this image",
    },
    Planted {
        rule: "REGION-INSPECTOR-EC2-OFF",
        resource: "eu-west-1",
        expect: Expect::Unknown,
        why: "acme-data-prod denied inspector2:BatchGetAccountStatus",
    },
    Planted {
        rule: "SNAP-SHARED-OUTSIDE-ORG",
        resource: THROTTLED_SNAPSHOT,
        expect: Expect::Unknown,
        why: "DescribeSnapshotAttribute was throttled for this snapshot, which backs no AMI",
    },
    Planted {
        rule: "PIPELINE-REGION-GAP",
        resource: AL2023_PIPELINE,
        expect: Expect::Fail,
        why: "al2023 base pipeline leaves out ap-southeast-1, where its older images run",
    },
    Planted {
        rule: "PIPELINE-SHARED-OUTSIDE-ORG",
        resource: UBUNTU_PIPELINE,
        expect: Expect::Fail,
        why: "ubuntu pipeline grants launch permission to 999988887777",
    },
    Planted {
        rule: "PIPELINE-DISTRIBUTION-NO-CMK",
        resource: UBUNTU_PIPELINE,
        expect: Expect::Fail,
        why: "ubuntu pipeline copies to eu-west-1 without a KMS key",
    },
    Planted {
        rule: "PIPELINE-TESTS-OFF",
        resource: WINDOWS_PIPELINE,
        expect: Expect::Fail,
        why: "Windows pipeline with image tests turned off",
    },
    Planted {
        rule: "PIPELINE-SCANNING-OFF",
        resource: WINDOWS_PIPELINE,
        expect: Expect::Fail,
        why: "Windows pipeline scans nothing: Inspector scans the test instance, and its tests are off",
    },
    Planted {
        rule: "PIPELINE-NO-LIFECYCLE",
        resource: WINDOWS_PIPELINE,
        expect: Expect::Fail,
        why: "no lifecycle policy selects the Windows recipe",
    },
    Planted {
        rule: "PIPELINE-FAILING",
        resource: RHEL_PIPELINE,
        expect: Expect::Fail,
        why: "RHEL CIS pipeline failed its last 4 runs",
    },
    Planted {
        rule: "PIPELINE-SCANNING-OFF",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node pipeline with image scanning off",
    },
    Planted {
        rule: "PIPELINE-BUILD-IMDSV1",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node build instances accept IMDSv1",
    },
    Planted {
        rule: "PIPELINE-PARENT-PINNED",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node recipe built on one fixed AMI",
    },
    Planted {
        rule: "PIPELINE-SHARED-ACCOUNT-BY-ACCOUNT",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node AMIs shared with 7 accounts one by one",
    },
    Planted {
        rule: "PIPELINE-DISABLED",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 pipeline, disabled",
    },
    Planted {
        rule: "PIPELINE-NO-SCHEDULE",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 pipeline, no schedule",
    },
    Planted {
        rule: "PIPELINE-RECIPE-UNENCRYPTED",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 recipe maps an unencrypted root volume",
    },
    Planted {
        rule: "PIPELINE-STALE-OUTPUT",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 pipeline's newest image is 200 days old",
    },
    Planted {
        rule: "PIPELINE-NO-LIFECYCLE",
        resource: SANDBOX_PIPELINE,
        expect: Expect::Fail,
        why: "the sandbox's lifecycle policy selects its recipe but retires Image Builder's image records only (includeResources.amis off)",
    },
    Planted {
        rule: "PIPELINE-PUBLIC",
        resource: SANDBOX_PIPELINE,
        expect: Expect::Fail,
        why: "sandbox pipeline grants launch permission to all",
    },
    Planted {
        rule: "PIPELINE-SHARED-OUTSIDE-ORG",
        resource: SECURITY_PIPELINE,
        expect: Expect::Unknown,
        why: "GetDistributionConfiguration was throttled for the security tools pipeline",
    },
    Planted {
        rule: "INSTANCE-GOLDEN-BEHIND",
        resource: DEPRECATED_USER,
        expect: Expect::Fail,
        why: "payments-api-legacy runs a payments-api version months behind the newest",
    },
    Planted {
        rule: "ASG-LAUNCHES-OUTDATED-AMI",
        resource: STUCK_ASG,
        expect: Expect::Fail,
        why: "payments-api group pins template version 3, which launches the deprecated v2 AMI",
    },
    Planted {
        rule: "LT-VERSION-OUTDATED-AMI",
        resource: STUCK_TEMPLATE_VERSION,
        expect: Expect::Fail,
        why: "version 3 of the payments-api template, still used by its group, names the deprecated AMI",
    },
    Planted {
        rule: "SSM-PARAM-OUTDATED-AMI",
        resource: STALE_PARAMETER,
        expect: Expect::Fail,
        why: "the parameter payments stacks read was not updated since the deprecated v2 AMI",
    },
    Planted {
        rule: "ASG-UNAPPROVED-AMI",
        resource: VENDOR_ASG,
        expect: Expect::Fail,
        why: "sandbox group launching a community AMI",
    },
    Planted {
        rule: "ASG-LAUNCHES-OUTDATED-AMI",
        resource: UNRESOLVED_ASG,
        expect: Expect::Unknown,
        why: "DescribeLaunchTemplateVersions was throttled for the web-frontend template its group pins",
    },
];

/// The two tables of `sample-data/README.md` that list [`PLANTED`].
pub fn markdown_tables() -> (String, String) {
    let table = |expect: Expect, header: &str| {
        let mut out = format!("| rule | resource | {header} |\n|---|---|---|\n");
        for p in PLANTED.iter().filter(|p| p.expect == expect) {
            out.push_str(&format!("| {} | `{}` | {} |\n", p.rule, p.resource, p.why));
        }
        out
    };
    (
        table(Expect::Fail, "what is wrong"),
        table(Expect::Unknown, "why the result is `unknown`"),
    )
}

/// Planted findings with fixed ids (see [`PLANTED`]); each needs its account
/// and region to exist in the requested size.
pub(super) fn plant(g: &mut Gen, o: &SynthOptions, regions: &[&str]) {
    let has = |account: usize, ri: usize| account < o.accounts && ri < regions.len();
    let now = g.now;
    let image = |g: &mut Gen,
                 account: usize,
                 ri: usize,
                 id: &str,
                 name: &str,
                 created_days: i64,
                 extra: Vec<(&'static str, Value)>,
                 encrypted: bool,
                 key_alias: &str,
                 tags: &[(&str, &str)]| {
        let acct = g.account_ids[account].clone();
        let region = regions[ri];
        let mut cells: Vec<(&'static str, Value)> = vec![
            ("account_id", acct.clone().into()),
            ("region", region.into()),
            ("image_id", id.into()),
            ("name", name.into()),
            ("description", format!("planted: {name}").into()),
            ("state", "available".into()),
            ("owner_id", acct.clone().into()),
            ("creation_date", (now - Duration::days(created_days)).into()),
            ("deprecation_time", (now + Duration::days(300)).into()),
            ("last_launched_time", (now - Duration::days(1)).into()),
            ("public", false.into()),
            ("architecture", "x86_64".into()),
            ("platform_details", "Linux/UNIX".into()),
            ("image_type", "machine".into()),
            ("root_device_type", "ebs".into()),
            ("root_device_name", "/dev/xvda".into()),
            ("virtualization_type", "hvm".into()),
            ("ena_support", true.into()),
            ("imds_support", "v2.0".into()),
            ("boot_mode", "uefi".into()),
            ("deregistration_protection", "enabled".into()),
            ("image_allowed", true.into()),
        ];
        for (k, v) in extra {
            if let Some(c) = cells.iter_mut().find(|(name, _)| *name == k) {
                c.1 = v;
            } else {
                cells.push((k, v));
            }
        }
        g.push("images", cells);
        let key = format!(
            "arn:aws:kms:{region}:{acct}:key/{}",
            if key_alias == "aws/ebs" {
                "aws-managed-ebs-key"
            } else {
                "golden-cmk"
            }
        );
        if g.planted_keys.insert(key.clone()) {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("key_arn", key.clone().into()),
                (
                    "key_manager",
                    (if key_alias == "aws/ebs" {
                        "AWS"
                    } else {
                        "CUSTOMER"
                    })
                    .into(),
                ),
                ("alias", format!("alias/{key_alias}").into()),
            ];
            g.push("kms_keys", cells);
        }
        let snap = format!("snap-{}", id.trim_start_matches("ami-"));
        block_device(
            g,
            &acct,
            region,
            id,
            "/dev/xvda",
            Some(&snap),
            8,
            encrypted,
            &key,
        );
        let description = format!("Created by CreateImage(i-0{}) for {id}", g.hex(16));
        snapshot(
            g,
            &acct,
            region,
            &snap,
            8,
            encrypted,
            &key,
            &description,
            now - Duration::days(created_days),
        );
        for (k, v) in tags {
            {
                let cells = vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("image_id", id.into()),
                    ("key", (*k).into()),
                    ("value", (*v).into()),
                ];
                g.push("image_tags", cells);
            }
        }
    };
    let good_tags: &[(&str, &str)] = &[
        ("Owner", "platform-team@acme.example"),
        ("Version", "1"),
        ("Environment", "prod"),
        ("CreatedBy", "EC2 Image Builder"),
    ];

    if has(3, 0) {
        image(
            g,
            3,
            0,
            PUBLIC_IMAGE,
            "payments-debug-golden-20261015-v1",
            38,
            vec![("public", true.into())],
            true,
            "golden-ami",
            good_tags,
        );
        launch_permission(
            g,
            &g.account_ids[3].clone(),
            regions[0],
            PUBLIC_IMAGE,
            "group",
            "all",
        );
        // A deprecated image still in use, with a critical CVE.
        image(
            g,
            3,
            0,
            DEPRECATED_IN_USE,
            "payments-api-golden-20260301-v2",
            266,
            vec![
                ("deprecation_time", (now - Duration::days(120)).into()),
                ("deregistration_protection", "disabled".into()),
            ],
            true,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[3].clone();
        {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", regions[0].into()),
                ("instance_id", DEPRECATED_USER.into()),
                ("name", "payments-api-legacy".into()),
                ("image_id", DEPRECATED_IN_USE.into()),
                ("image_owner_id", acct.clone().into()),
                ("state", "running".into()),
                ("instance_type", "m7g.large".into()),
                ("launch_time", (now - Duration::days(200)).into()),
            ];
            g.push("instances", cells);
        }
        finding(
            g,
            &acct,
            regions[0],
            DEPRECATED_IN_USE,
            Some(DEPRECATED_USER),
            "CVE-2024-6387",
            "CRITICAL",
            "openssh: regreSSHion remote code execution",
        );
    }
    if has(5, 0) {
        image(
            g,
            5,
            0,
            SHARED_OUTSIDE,
            "web-frontend-golden-20261002-v4",
            30,
            vec![],
            true,
            "golden-ami",
            good_tags,
        );
        launch_permission(
            g,
            &g.account_ids[5].clone(),
            regions[0],
            SHARED_OUTSIDE,
            "user_id",
            OUTSIDE_ACCOUNTS[0],
        );
        // Launch permissions of this one could not be read: sharing rules say unknown.
        image(
            g,
            5,
            0,
            THROTTLED_IMAGE,
            "web-api-golden-20261101-v5",
            19,
            vec![],
            true,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[5].clone();
        ec2_throttled(
            g,
            &acct,
            regions[0],
            "DescribeImageAttribute",
            THROTTLED_IMAGE,
        );
    }
    if has(FACTORY, 0) && o.accounts >= 8 {
        image(
            g,
            FACTORY,
            0,
            SHARED_ONE_BY_ONE,
            "al2023-jdk21-golden-20261020-v2",
            20,
            vec![],
            true,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[FACTORY].clone();
        for n in 3..10 {
            let target = g.account_ids[n % o.accounts].clone();
            launch_permission(g, &acct, regions[0], SHARED_ONE_BY_ONE, "user_id", &target);
        }
        snapshot(
            g,
            &acct,
            regions[0],
            ORPHANED_SNAPSHOT,
            8,
            true,
            "arn:aws:kms:us-east-1:0:key/x",
            &format!("Created by CreateImage(i-0123456789abcdef0) for {ORPHANED_SNAPSHOT_IMAGE}"),
            now - Duration::days(150),
        );
    }
    if has(LEGACY, 0) {
        image(
            g,
            LEGACY,
            0,
            LEGACY_IMAGE,
            "erp-app-golden-20250115-v3",
            676,
            vec![("deprecation_time", Value::Null)],
            false,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[LEGACY].clone();
        snapshot(
            g,
            &acct,
            regions[0],
            PUBLIC_SNAPSHOT,
            30,
            false,
            "",
            "ERP database export",
            now - Duration::days(90),
        );
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[0].into()),
                ("snapshot_id", PUBLIC_SNAPSHOT.into()),
                ("group", "all".into()),
            ];
            g.push("snapshot_permissions", cells);
        }
    }
    if has(4, 1) {
        image(
            g,
            4,
            1,
            AWS_KEY_IMAGE,
            "payments-api-golden-20261101-v7",
            12,
            vec![],
            true,
            "aws/ebs",
            good_tags,
        );
    }
    if has(7, 1) {
        let acct = g.account_ids[7].clone();
        snapshot(
            g,
            &acct,
            regions[1],
            OUTSIDE_SNAPSHOT,
            500,
            true,
            "arn:aws:kms:eu-west-1:0:key/y",
            "spark warehouse copy for partner",
            now - Duration::days(10),
        );
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[1].into()),
                ("snapshot_id", OUTSIDE_SNAPSHOT.into()),
                ("user_id", OUTSIDE_ACCOUNTS[1].into()),
            ];
            g.push("snapshot_permissions", cells);
        }
    }
    if has(6, 0) {
        image(
            g,
            6,
            0,
            FAILED_BUILD,
            "web-api-golden-20261118-v9",
            4,
            vec![("state", "failed".into())],
            true,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[6].clone();
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[0].into()),
                ("launch_template_id", MISSING_AMI_TEMPLATE.into()),
                ("launch_template_name", "web-dev-canary".into()),
                ("version_number", 3i64.into()),
                ("is_default", true.into()),
                ("is_latest", true.into()),
                ("image_id", MISSING_AMI.into()),
            ];
            g.push("launch_templates", cells);
        }
    }
    if has(SANDBOX, 0) {
        image(
            g,
            SANDBOX,
            0,
            SANDBOX_IMAGE,
            "Alice-Test-Image",
            60,
            vec![("imds_support", Value::Null)],
            true,
            "golden-ami",
            &[("Environment", "sandbox")],
        );
        let acct = g.account_ids[SANDBOX].clone();
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[0].into()),
                ("instance_id", COMMUNITY_INSTANCE.into()),
                ("name", "alice-experiment".into()),
                ("image_id", COMMUNITY_IMAGE.into()),
                ("image_owner_id", COMMUNITY_OWNER.into()),
                ("state", "running".into()),
                ("instance_type", "t3.medium".into()),
                ("launch_time", (now - Duration::days(3)).into()),
            ];
            g.push("instances", cells);
        }
    }
    if has(5, 0) {
        // A weekly export that backs no AMI; reading who may restore it was
        // throttled, so whether it is shared is not known.
        let acct = g.account_ids[5].clone();
        snapshot(
            g,
            &acct,
            regions[0],
            THROTTLED_SNAPSHOT,
            40,
            true,
            "arn:aws:kms:us-east-1:0:key/z",
            "weekly web database export",
            now - Duration::days(7),
        );
        ec2_throttled(
            g,
            &acct,
            regions[0],
            "DescribeSnapshotAttribute",
            THROTTLED_SNAPSHOT,
        );
    }
}

/// A scan error: EC2 throttled `operation` on `resource` until retries ran out.
pub(super) fn ec2_throttled(
    g: &mut Gen,
    acct: &str,
    region: &str,
    operation: &str,
    resource: &str,
) {
    let cells = vec![
        ("account_id", Value::from(acct)),
        ("region", region.into()),
        ("service", "ec2".into()),
        ("operation", operation.into()),
        ("resource_id", resource.into()),
        ("error_code", "RequestLimitExceeded".into()),
        ("message", "Request limit exceeded.".into()),
    ];
    g.push("scan_errors", cells);
}
