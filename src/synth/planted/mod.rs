//! Planted results: resources with fixed ids that the sample organization
//! must fail (or, for coverage gaps, not judge), each a record. The
//! generator, the tests and `sample-data/README.md` (a test keeps its
//! tables equal to [`PLANTED`]) read the same list, and the ids below are
//! written once: the records in `records.rs`, their builders here.

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use chrono::Duration;

use super::bases::{BaseKind, Link, push_root, source_cells};
use super::factory::{
    AL2023_PIPELINE, EKS_PIPELINE, LEGACY_PIPELINE, RHEL_PIPELINE, SANDBOX_PIPELINE,
    SECURITY_PIPELINE, UBUNTU_PIPELINE, WINDOWS_PIPELINE,
};
use super::org::{FACTORY, LEGACY, SANDBOX};
use super::region::{block_device, launch_permission, snapshot};
use super::usage::finding;
use super::{COMMUNITY_OWNER, Gen, OUTSIDE_ACCOUNTS, SynthOptions};
use crate::inventory::Value;

mod records;

pub use records::{PLANTED, markdown_tables};

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

/// Planted findings with fixed ids (see [`PLANTED`]); each needs its account
/// and region to exist in the requested size. The scenarios run in a fixed
/// order so the sample stays byte-identical.
pub(super) fn plant(g: &mut Gen, o: &SynthOptions, regions: &[&str]) {
    let has = |account: usize, ri: usize| account < o.accounts && ri < regions.len();
    if has(3, 0) {
        public_and_deprecated_in_use(g, regions);
    }
    if has(5, 0) {
        shared_outside_and_throttled(g, regions);
    }
    if has(FACTORY, 0) && o.accounts >= 8 {
        shared_one_by_one(g, o, regions);
    }
    if has(LEGACY, 0) {
        legacy_and_public_snapshot(g, regions);
    }
    if has(4, 1) {
        planted_image(
            g,
            regions,
            PlantedImage {
                key_alias: "aws/ebs",
                ..PlantedImage::golden(4, 1, AWS_KEY_IMAGE, "payments-api-golden-20261101-v7", 12)
            },
        );
    }
    if has(7, 1) {
        snapshot_shared_outside(g, regions);
    }
    if has(6, 0) {
        failed_build_and_missing_ami(g, regions);
    }
    if has(SANDBOX, 0) {
        sandbox_and_community(g, regions);
    }
    if has(5, 0) {
        throttled_snapshot(g, regions);
    }
}

const GOOD_TAGS: &[(&str, &str)] = &[
    ("Owner", "platform-team@acme.example"),
    ("Version", "1"),
    ("Environment", "prod"),
    ("CreatedBy", "EC2 Image Builder"),
];

/// A planted image: where it lives, what it is, and what differs from a
/// well-kept golden image.
struct PlantedImage<'a> {
    account: usize,
    region_index: usize,
    id: &'a str,
    name: &'a str,
    created_days: i64,
    /// Columns that differ from (or add to) the well-kept defaults.
    overrides: Vec<(&'static str, Value)>,
    encrypted: bool,
    key_alias: &'a str,
    tags: &'a [(&'a str, &'a str)],
}

impl<'a> PlantedImage<'a> {
    /// A well-kept golden image: encrypted with the golden key, fully tagged.
    fn golden(
        account: usize,
        region_index: usize,
        id: &'a str,
        name: &'a str,
        created_days: i64,
    ) -> Self {
        PlantedImage {
            account,
            region_index,
            id,
            name,
            created_days,
            overrides: Vec::new(),
            encrypted: true,
            key_alias: "golden-ami",
            tags: GOOD_TAGS,
        }
    }
}

/// The KMS key a planted image is encrypted with (`alias/<key_alias>`),
/// written once per account-region.
fn planted_key(g: &mut Gen, acct: &str, region: &str, key_alias: &str) -> String {
    let aws_managed = key_alias == "aws/ebs";
    let key = format!(
        "arn:aws:kms:{region}:{acct}:key/{}",
        if aws_managed {
            "aws-managed-ebs-key"
        } else {
            "golden-cmk"
        }
    );
    if g.planted_keys.insert(key.clone()) {
        let cells = vec![
            ("account_id", Value::from(acct.to_string())),
            ("region", region.into()),
            ("key_arn", key.clone().into()),
            (
                "key_manager",
                (if aws_managed { "AWS" } else { "CUSTOMER" }).into(),
            ),
            ("alias", format!("alias/{key_alias}").into()),
        ];
        g.push("kms_keys", cells);
    }
    key
}

/// Pushes the image with its key, root volume, snapshot and tags.
fn planted_image(g: &mut Gen, regions: &[&str], spec: PlantedImage<'_>) {
    let now = g.now;
    let acct = g.account_ids[spec.account].clone();
    let region = regions[spec.region_index];
    let id = spec.id;
    let name = spec.name;
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("account_id", acct.clone().into()),
        ("region", region.into()),
        ("image_id", id.into()),
        ("name", name.into()),
        ("description", format!("planted: {name}").into()),
        ("state", "available".into()),
        ("owner_id", acct.clone().into()),
        (
            "creation_date",
            (now - Duration::days(spec.created_days)).into(),
        ),
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
    // Built from an instance of its base: Amazon's, or for the legacy
    // account a community image.
    let base = BaseKind::of(name, spec.account == LEGACY).base(region);
    cells.extend(source_cells(id, region, &base));
    for (k, v) in spec.overrides {
        if let Some(c) = cells.iter_mut().find(|(name, _)| *name == k) {
            c.1 = v;
        } else {
            cells.push((k, v));
        }
    }
    g.push("images", cells);
    let link = Link {
        account: &acct,
        region,
        image_id: id,
        depth: 1,
    };
    push_root(
        g,
        &link,
        &base,
        region,
        now - Duration::days(spec.created_days),
    );
    let key = planted_key(g, &acct, region, spec.key_alias);
    let snap = format!("snap-{}", id.trim_start_matches("ami-"));
    block_device(
        g,
        &acct,
        region,
        id,
        "/dev/xvda",
        Some(&snap),
        8,
        spec.encrypted,
        &key,
    );
    let description = format!("Created by CreateImage(i-0{}) for {id}", g.hex(16));
    snapshot(
        g,
        &acct,
        region,
        &snap,
        8,
        spec.encrypted,
        &key,
        &description,
        now - Duration::days(spec.created_days),
    );
    for (k, v) in spec.tags {
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

/// A public image, and a deprecated image still in use with a critical CVE.
fn public_and_deprecated_in_use(g: &mut Gen, regions: &[&str]) {
    let now = g.now;
    planted_image(
        g,
        regions,
        PlantedImage {
            overrides: vec![("public", true.into())],
            ..PlantedImage::golden(3, 0, PUBLIC_IMAGE, "payments-debug-golden-20261015-v1", 38)
        },
    );
    let acct = g.account_ids[3].clone();
    launch_permission(g, &acct, regions[0], PUBLIC_IMAGE, "group", "all");
    planted_image(
        g,
        regions,
        PlantedImage {
            overrides: vec![
                ("deprecation_time", (now - Duration::days(120)).into()),
                ("deregistration_protection", "disabled".into()),
            ],
            ..PlantedImage::golden(
                3,
                0,
                DEPRECATED_IN_USE,
                "payments-api-golden-20260301-v2",
                266,
            )
        },
    );
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

/// An image shared with an account outside the organization, and one whose
/// launch permissions could not be read (sharing rules say unknown).
fn shared_outside_and_throttled(g: &mut Gen, regions: &[&str]) {
    planted_image(
        g,
        regions,
        PlantedImage::golden(5, 0, SHARED_OUTSIDE, "web-frontend-golden-20261002-v4", 30),
    );
    let acct = g.account_ids[5].clone();
    launch_permission(
        g,
        &acct,
        regions[0],
        SHARED_OUTSIDE,
        "user_id",
        OUTSIDE_ACCOUNTS[0],
    );
    planted_image(
        g,
        regions,
        PlantedImage::golden(5, 0, THROTTLED_IMAGE, "web-api-golden-20261101-v5", 19),
    );
    ec2_throttled(
        g,
        &acct,
        regions[0],
        "DescribeImageAttribute",
        THROTTLED_IMAGE,
    );
}

/// An image shared account by account instead of with the organization, and
/// a snapshot whose image is gone.
fn shared_one_by_one(g: &mut Gen, o: &SynthOptions, regions: &[&str]) {
    let now = g.now;
    planted_image(
        g,
        regions,
        PlantedImage::golden(
            FACTORY,
            0,
            SHARED_ONE_BY_ONE,
            "al2023-jdk21-golden-20261020-v2",
            20,
        ),
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

/// An unencrypted image that never deprecates, and a public snapshot.
fn legacy_and_public_snapshot(g: &mut Gen, regions: &[&str]) {
    let now = g.now;
    planted_image(
        g,
        regions,
        PlantedImage {
            overrides: vec![("deprecation_time", Value::Null)],
            encrypted: false,
            ..PlantedImage::golden(LEGACY, 0, LEGACY_IMAGE, "erp-app-golden-20250115-v3", 676)
        },
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
    let cells = vec![
        ("account_id", Value::from(acct)),
        ("region", regions[0].into()),
        ("snapshot_id", PUBLIC_SNAPSHOT.into()),
        ("group", "all".into()),
    ];
    g.push("snapshot_permissions", cells);
}

/// A snapshot shared with an account outside the organization.
fn snapshot_shared_outside(g: &mut Gen, regions: &[&str]) {
    let now = g.now;
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
    let cells = vec![
        ("account_id", Value::from(acct)),
        ("region", regions[1].into()),
        ("snapshot_id", OUTSIDE_SNAPSHOT.into()),
        ("user_id", OUTSIDE_ACCOUNTS[1].into()),
    ];
    g.push("snapshot_permissions", cells);
}

/// A failed build, and a launch template naming an AMI that does not exist.
fn failed_build_and_missing_ami(g: &mut Gen, regions: &[&str]) {
    planted_image(
        g,
        regions,
        PlantedImage {
            overrides: vec![("state", "failed".into())],
            ..PlantedImage::golden(6, 0, FAILED_BUILD, "web-api-golden-20261118-v9", 4)
        },
    );
    let acct = g.account_ids[6].clone();
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

/// A badly named, badly tagged sandbox image, and an instance launched from
/// a community AMI.
fn sandbox_and_community(g: &mut Gen, regions: &[&str]) {
    let now = g.now;
    planted_image(
        g,
        regions,
        PlantedImage {
            overrides: vec![("imds_support", Value::Null)],
            tags: &[("Environment", "sandbox")],
            ..PlantedImage::golden(SANDBOX, 0, SANDBOX_IMAGE, "Alice-Test-Image", 60)
        },
    );
    let acct = g.account_ids[SANDBOX].clone();
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

/// A weekly export that backs no AMI; reading who may restore it was
/// throttled, so whether it is shared is not known.
fn throttled_snapshot(g: &mut Gen, regions: &[&str]) {
    let now = g.now;
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
