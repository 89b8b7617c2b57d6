//! One account-region of the synthetic organization: its KMS keys, the
//! settings that guard AMIs, its images (with launch permissions, block
//! devices, snapshots and tags) and snapshots that back no image.
//!
//! The random draws happen in a fixed order, so a seed always gives the
//! same organization: keep the order of calls when changing anything here.
//! (Long because most of it is rows written out column by column.)

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use super::org::{FACTORY, LEGACY, SANDBOX, role};
use super::{Gen, ImageFacts, ORGANIZATION_ID, OUTSIDE_ACCOUNTS, REGIONS, account_id};
use crate::inventory::Value;

/// Rates of each kind of mistake; the legacy account makes more of them.
struct Rates {
    public: f64,
    outside_share: f64,
    unencrypted: f64,
    aws_key: f64,
    missing_tag: f64,
    bad_name: f64,
    manual: f64,
    imdsv1: f64,
}

fn rates(account: usize) -> Rates {
    if account == LEGACY {
        Rates {
            public: 0.05,
            outside_share: 0.1,
            unencrypted: 0.45,
            aws_key: 0.6,
            missing_tag: 0.5,
            bad_name: 0.4,
            manual: 0.8,
            imdsv1: 0.8,
        }
    } else {
        Rates {
            public: 0.004,
            outside_share: 0.015,
            unencrypted: 0.05,
            aws_key: 0.15,
            missing_tag: 0.10,
            bad_name: 0.05,
            manual: 0.12,
            imdsv1: 0.25,
        }
    }
}

/// Where images are made, and with which keys.
struct Place<'a> {
    account: usize,
    ri: usize,
    acct: String,
    region: &'a str,
    legacy: bool,
    rates: Rates,
    /// The customer-managed and the AWS-managed key of the account-region.
    cmk: String,
    aws_key: String,
    /// The Allowed AMIs setting, which decides `image_allowed`.
    allowed: &'static str,
}

pub(super) fn account_region(
    g: &mut Gen,
    images_per_region: usize,
    account: usize,
    ri: usize,
    region: &str,
) -> Vec<ImageFacts> {
    let mut place = keys(g, account, ri, region);
    let ebs_default = settings(g, &mut place);
    let (_, ou, families) = role(account);
    let env = if ou.contains("NonProd") || ou.contains("Sandbox") {
        "nonprod"
    } else {
        "prod"
    };
    let k = images_per_region.max(1);
    let versions = k.div_ceil(families.len());
    let mut images = Vec::new();
    for j in 0..k {
        let family = &families[j % families.len()];
        let version = versions - j / families.len(); // j < families.len() is the newest
        let newest = j < families.len();
        // Planted (see planted::FAMILY_REGION_GAP): the newest al2023 base
        // image never reached ap-southeast-1.
        if account == FACTORY && ri == 2 && newest && family == "al2023-base-golden" {
            continue;
        }
        let offset = (j / families.len()) as i64;
        images.push(image(g, &place, family, version, newest, offset, j, env));
    }
    loose_snapshots(g, &place, ebs_default);
    images
}

/// The account-region's two KMS keys.
fn keys<'a>(g: &mut Gen, account: usize, ri: usize, region: &'a str) -> Place<'a> {
    let acct = g.account_ids[account].clone();
    let cmk = format!(
        "arn:aws:kms:{region}:{acct}:key/{}-{}-4{}-a{}-{}",
        g.hex(8),
        g.hex(4),
        g.hex(3),
        g.hex(3),
        g.hex(12)
    );
    let aws_key = format!(
        "arn:aws:kms:{region}:{acct}:key/{}-{}-4{}-b{}-{}",
        g.hex(8),
        g.hex(4),
        g.hex(3),
        g.hex(3),
        g.hex(12)
    );
    for (key, manager, alias) in [
        (&cmk, "CUSTOMER", "alias/golden-ami"),
        (&aws_key, "AWS", "alias/aws/ebs"),
    ] {
        g.push(
            "kms_keys",
            vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("key_arn", key.clone().into()),
                ("key_manager", manager.into()),
                ("alias", alias.into()),
            ],
        );
    }
    Place {
        account,
        ri,
        acct,
        region,
        legacy: account == LEGACY,
        rates: rates(account),
        cmk,
        aws_key,
        allowed: "disabled",
    }
}

/// The regions row; returns whether EBS encryption by default is on.
fn settings(g: &mut Gen, place: &mut Place) -> bool {
    let (acct, region, legacy) = (place.acct.clone(), place.region, place.legacy);
    // Planted (see planted::INSPECTOR_DENIED): acme-data-prod cannot read
    // Inspector in its second region.
    let inspector_partial = place.account == 7 && place.ri == 1;
    let ebs_default = if legacy { false } else { g.chance(0.75) };
    let image_bpa = if legacy {
        "unblocked"
    } else if g.chance(0.6) {
        "block-new-sharing"
    } else {
        "unblocked"
    };
    let snap_bpa = if legacy {
        "unblocked"
    } else {
        *g.pick(&[
            "block-all-sharing",
            "block-all-sharing",
            "block-new-sharing",
            "unblocked",
        ])
    };
    place.allowed = if legacy {
        "disabled"
    } else {
        *g.pick(&["enabled", "audit-mode", "disabled", "disabled"])
    };
    // Image Builder scans builds with Inspector: the accounts that run
    // pipelines keep it on where they build (their first region).
    let builds_here = place.ri == 0 && [FACTORY, SANDBOX, 1].contains(&place.account);
    let inspector = if inspector_partial {
        Value::Null
    } else if (legacy || g.chance(0.3)) && !builds_here {
        "DISABLED".into()
    } else {
        "ENABLED".into()
    };
    let opt_in = if !(2..=5).contains(&place.ri) {
        "opt-in-not-required"
    } else {
        "opted-in"
    };
    g.push(
        "regions",
        vec![
            ("account_id", Value::from(acct.clone())),
            ("region", region.into()),
            ("opt_in_status", opt_in.into()),
            (
                "scan_status",
                (if inspector_partial { "partial" } else { "ok" }).into(),
            ),
            ("ebs_encryption_by_default", ebs_default.into()),
            (
                "ebs_default_kms_key_id",
                (if ebs_default {
                    place.aws_key.clone()
                } else {
                    place.cmk.clone()
                })
                .into(),
            ),
            ("image_block_public_access", image_bpa.into()),
            ("snapshot_block_public_access", snap_bpa.into()),
            ("allowed_images_state", place.allowed.into()),
            ("inspector_ec2_status", inspector),
            ("imds_default_http_tokens", "no-preference".into()),
        ],
    );
    if inspector_partial {
        for op in ["BatchGetAccountStatus", "ListFindings"] {
            g.push(
                "scan_errors",
                vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("service", "inspector2".into()),
                    ("operation", op.into()),
                    ("error_code", "AccessDeniedException".into()),
                    (
                        "message",
                        format!("User is not authorized to perform: inspector2:{op}").into(),
                    ),
                ],
            );
        }
    }
    ebs_default
}

/// One image with its permissions, devices, snapshots and tags.
#[allow(clippy::too_many_arguments)]
fn image(
    g: &mut Gen,
    place: &Place,
    family: &str,
    version: usize,
    newest: bool,
    offset: i64,
    j: usize,
    env: &str,
) -> ImageFacts {
    let (acct, region, legacy, r) = (&place.acct, place.region, place.legacy, &place.rates);
    // Releases every ~30 days, the newest 5-35 days old.
    let age = 5
        + (place.account as i64 * 7 + j as i64 * 3) % 30
        + offset * 30
        + if legacy { 400 } else { 0 };
    let created = g.days_ago(age);
    let image_id = format!("ami-0{}", g.hex(16));
    let windows = family.starts_with("win");
    let mut name = format!("{family}-{}-v{version}", created.format("%Y%m%d"));
    if g.chance(r.bad_name) {
        name = if g.chance(0.5) {
            format!(
                "{}-{}-v{version}",
                family.to_uppercase().replace("-GOLDEN", "-Golden"),
                created.format("%Y-%m-%d")
            )
        } else {
            format!("copy of {family} v{version}")
        };
    }
    let state = if g.chance(0.01) {
        "failed"
    } else if newest && g.chance(0.01) {
        "pending"
    } else {
        "available"
    };
    let deprecation = if newest {
        if g.chance(0.8) {
            Some(created + Duration::days(365))
        } else {
            None
        }
    } else if g.chance(if legacy { 0.2 } else { 0.8 }) {
        Some(created + Duration::days(45))
    } else {
        None
    };
    let deprecated = deprecation.is_some_and(|d| d <= g.now);
    let last_launched = if newest {
        let d = g.rng.random_range(0..5);
        Some(g.days_ago(d))
    } else if g.chance(0.6) {
        Some(created + Duration::days(g.rng.random_range(1..30)))
    } else {
        None
    };
    let public = g.chance(r.public);
    let protection = if newest {
        *g.pick(&[
            "enabled",
            "enabled",
            "enabled-with-cooldown",
            "disabled",
            "disabled",
        ])
    } else {
        "disabled"
    };
    let source = if place.ri > 0 && place.account == FACTORY {
        Some(format!("ami-0{}", g.hex(16)))
    } else {
        None
    };
    let architecture = if family.contains("eks") || g.chance(0.3) {
        "arm64"
    } else {
        "x86_64"
    };
    let imds = if g.chance(r.imdsv1) {
        None
    } else {
        Some("v2.0")
    };
    let boot_mode = *g.pick(&["uefi-preferred", "uefi", "legacy-bios"]);
    g.push(
        "images",
        vec![
            ("account_id", Value::from(acct.clone())),
            ("region", region.into()),
            ("image_id", image_id.clone().into()),
            ("name", name.clone().into()),
            (
                "description",
                format!("{family} golden image v{version}").into(),
            ),
            ("state", state.into()),
            ("owner_id", acct.clone().into()),
            ("creation_date", created.into()),
            ("deprecation_time", deprecation.into()),
            ("last_launched_time", last_launched.into()),
            ("public", public.into()),
            ("architecture", architecture.into()),
            (
                "platform",
                (if windows { Some("windows") } else { None }).into(),
            ),
            (
                "platform_details",
                (if windows { "Windows" } else { "Linux/UNIX" }).into(),
            ),
            ("image_type", "machine".into()),
            ("root_device_type", "ebs".into()),
            (
                "root_device_name",
                (if windows { "/dev/sda1" } else { "/dev/xvda" }).into(),
            ),
            ("virtualization_type", "hvm".into()),
            ("ena_support", true.into()),
            ("imds_support", imds.into()),
            ("boot_mode", boot_mode.into()),
            (
                "tpm_support",
                (if windows { Some("v2.0") } else { None }).into(),
            ),
            ("deregistration_protection", protection.into()),
            ("source_image_id", source.clone().into()),
            (
                "source_image_region",
                (if source.is_some() {
                    Some(REGIONS[0])
                } else {
                    None
                })
                .into(),
            ),
            ("image_allowed", (place.allowed != "disabled").into()),
        ],
    );
    if let Some(source) = &source {
        // A copy of the factory's build in its first region, whose image
        // is not in the inventory: the scanner asks GetImageAncestry, and
        // the source was made an hour before its copies.
        g.push(
            "image_ancestry",
            vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("image_id", image_id.clone().into()),
                ("depth", 1i64.into()),
                ("ancestor_image_id", source.clone().into()),
                ("ancestor_region", REGIONS[0].into()),
                ("creation_date", (created - Duration::hours(1)).into()),
            ],
        );
    }
    permissions(g, place, &image_id, public);
    devices(g, place, &image_id, windows, public, created);
    tags(g, place, &image_id, &name, family, version, env);
    ImageFacts {
        image_id,
        newest,
        deprecated,
        family: family.to_string(),
        version,
        created,
    }
}

/// Who may launch the image.
fn permissions(g: &mut Gen, place: &Place, image_id: &str, public: bool) {
    let (acct, region, account) = (place.acct.as_str(), place.region, place.account);
    if public {
        launch_permission(g, acct, region, image_id, "group", "all");
    }
    if account == FACTORY {
        match g.rng.random_range(0..100) {
            0..70 => launch_permission(
                g,
                acct,
                region,
                image_id,
                "organization_arn",
                &format!(
                    "arn:aws:organizations::{}:organization/{ORGANIZATION_ID}",
                    account_id(0)
                ),
            ),
            70..85 => launch_permission(
                g,
                acct,
                region,
                image_id,
                "organizational_unit_arn",
                &format!(
                    "arn:aws:organizations::{}:ou/{ORGANIZATION_ID}/ou-acme-prod",
                    account_id(0)
                ),
            ),
            85..95 => {
                for n in 0..3usize.min(g.account_ids.len()) {
                    let target = g.account_ids[(account + 1 + n) % g.account_ids.len()].clone();
                    launch_permission(g, acct, region, image_id, "user_id", &target);
                }
            }
            _ => {}
        }
    } else if g.chance(0.1) && g.account_ids.len() > 1 {
        let target = g.account_ids[(account + 1) % g.account_ids.len()].clone();
        launch_permission(g, acct, region, image_id, "user_id", &target);
    }
    if g.chance(place.rates.outside_share) {
        let outside = (*g.pick(&OUTSIDE_ACCOUNTS)).to_string();
        launch_permission(g, acct, region, image_id, "user_id", &outside);
    }
}

/// Block devices and their snapshots.
fn devices(
    g: &mut Gen,
    place: &Place,
    image_id: &str,
    windows: bool,
    public: bool,
    created: DateTime<Utc>,
) {
    let (acct, region, r) = (place.acct.as_str(), place.region, &place.rates);
    let encrypted = !g.chance(r.unencrypted);
    let key = if g.chance(r.aws_key) {
        place.aws_key.clone()
    } else {
        place.cmk.clone()
    };
    let root = if windows { "/dev/sda1" } else { "/dev/xvda" };
    let mut devices = vec![(root.to_string(), if windows { 50 } else { 8 })];
    if g.chance(0.3) {
        devices.push(("/dev/sdb".to_string(), 100));
    }
    for (device, size) in devices {
        let snap = format!("snap-0{}", g.hex(16));
        block_device(
            g,
            acct,
            region,
            image_id,
            &device,
            Some(&snap),
            size,
            encrypted,
            &key,
        );
        let description = format!("Created by CreateImage(i-0{}) for {image_id}", g.hex(16));
        snapshot(
            g,
            acct,
            region,
            &snap,
            size,
            encrypted,
            &key,
            &description,
            created,
        );
        if public && g.chance(0.5) {
            g.push(
                "snapshot_permissions",
                vec![
                    ("account_id", Value::from(acct)),
                    ("region", region.into()),
                    ("snapshot_id", snap.into()),
                    ("group", "all".into()),
                ],
            );
        }
    }
    if g.chance(0.1) {
        g.push(
            "image_block_devices",
            vec![
                ("account_id", Value::from(acct)),
                ("region", region.into()),
                ("image_id", image_id.into()),
                ("device_name", "/dev/sdc".into()),
                ("virtual_name", "ephemeral0".into()),
                ("is_ebs", false.into()),
            ],
        );
    }
}

/// The image's tags, a few missing or empty.
fn tags(
    g: &mut Gen,
    place: &Place,
    image_id: &str,
    name: &str,
    family: &str,
    version: usize,
    env: &str,
) {
    let (acct, region, r) = (place.acct.as_str(), place.region, &place.rates);
    let pipeline = !g.chance(r.manual);
    let mut tags: Vec<(&str, String)> = vec![
        ("Name", name.to_string()),
        (
            "Owner",
            format!(
                "{}-team@acme.example",
                family.split('-').next().unwrap_or("platform")
            ),
        ),
        ("Version", format!("{version}")),
        ("Environment", env.to_string()),
    ];
    if g.chance(r.missing_tag) {
        let drop = g.rng.random_range(1..4);
        if g.chance(0.3) {
            tags[drop].1 = String::new();
        } else {
            tags.remove(drop);
        }
    }
    if pipeline {
        tags.push(("CreatedBy", "EC2 Image Builder".to_string()));
        tags.push((
            "Ec2ImageBuilderArn",
            format!("arn:aws:imagebuilder:{region}:{acct}:image/{family}/1.{version}.0/1"),
        ));
    }
    for (key, value) in tags {
        g.push(
            "image_tags",
            vec![
                ("account_id", Value::from(acct)),
                ("region", region.into()),
                ("image_id", image_id.into()),
                ("key", key.into()),
                ("value", value.into()),
            ],
        );
    }
}

/// Snapshots left behind by deregistered AMIs, and plain backups.
fn loose_snapshots(g: &mut Gen, place: &Place, ebs_default: bool) {
    let (acct, region) = (place.acct.as_str(), place.region);
    if g.chance(0.3) {
        let snap = format!("snap-0{}", g.hex(16));
        let gone = format!("ami-0{}", g.hex(16));
        let description = format!("Created by CreateImage(i-0{}) for {gone}", g.hex(16));
        let started = g.days_ago(200);
        snapshot(
            g,
            acct,
            region,
            &snap,
            8,
            true,
            &place.cmk,
            &description,
            started,
        );
    }
    let snap = format!("snap-0{}", g.hex(16));
    let started = g.days_ago(1);
    snapshot(
        g,
        acct,
        region,
        &snap,
        20,
        ebs_default,
        &place.cmk,
        "nightly backup of data volume",
        started,
    );
    if g.chance(0.01) {
        g.push(
            "snapshot_permissions",
            vec![
                ("account_id", Value::from(acct)),
                ("region", region.into()),
                ("snapshot_id", snap.into()),
                ("user_id", OUTSIDE_ACCOUNTS[1].into()),
            ],
        );
    }
}

pub(super) fn launch_permission(
    g: &mut Gen,
    acct: &str,
    region: &str,
    image_id: &str,
    column: &'static str,
    value: &str,
) {
    g.push(
        "launch_permissions",
        vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("image_id", image_id.into()),
            (column, value.into()),
        ],
    );
}

#[allow(clippy::too_many_arguments)]
pub(super) fn block_device(
    g: &mut Gen,
    acct: &str,
    region: &str,
    image_id: &str,
    device: &str,
    snap: Option<&str>,
    size: i64,
    encrypted: bool,
    key: &str,
) {
    g.push(
        "image_block_devices",
        vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("image_id", image_id.into()),
            ("device_name", device.into()),
            ("is_ebs", true.into()),
            ("snapshot_id", snap.into()),
            ("volume_size", size.into()),
            ("volume_type", "gp3".into()),
            ("encrypted", encrypted.into()),
            (
                "kms_key_id",
                (if encrypted { Some(key) } else { None }).into(),
            ),
            ("delete_on_termination", true.into()),
        ],
    );
}

#[allow(clippy::too_many_arguments)]
pub(super) fn snapshot(
    g: &mut Gen,
    acct: &str,
    region: &str,
    snap: &str,
    size: i64,
    encrypted: bool,
    key: &str,
    description: &str,
    started: DateTime<Utc>,
) {
    let vol = format!("vol-0{}", g.hex(16));
    g.push(
        "snapshots",
        vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("snapshot_id", snap.into()),
            ("volume_id", vol.into()),
            ("volume_size", size.into()),
            ("state", "completed".into()),
            ("encrypted", encrypted.into()),
            (
                "kms_key_id",
                (if encrypted { Some(key) } else { None }).into(),
            ),
            ("description", description.into()),
            ("start_time", started.into()),
        ],
    );
}
