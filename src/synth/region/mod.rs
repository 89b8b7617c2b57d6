//! One account-region of the synthetic organization: its KMS keys, the
//! settings that guard AMIs, its images (with launch permissions, block
//! devices, snapshots and tags) and snapshots that back no image.
//!
//! The random draws happen in a fixed order, so a seed always gives the
//! same organization: keep the order of calls when changing anything here.
//! Each image, with what hangs off it, is written in `image.rs`.

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::org::{FACTORY, LEGACY, SANDBOX, role};
use super::{Gen, ImageFacts, OUTSIDE_ACCOUNTS};
use crate::inventory::Value;

mod image;

use image::image;

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
    /// The account's images of its first region (the factory's builds,
    /// which its other regions copy): (family, version) -> (id, created).
    builds: BTreeMap<(String, usize), (String, DateTime<Utc>)>,
}

pub(super) fn account_region(
    g: &mut Gen,
    images_per_region: usize,
    account: usize,
    ri: usize,
    region: &str,
    builds: &[ImageFacts],
) -> Vec<ImageFacts> {
    let mut place = keys(g, account, ri, region);
    place.builds = builds
        .iter()
        .map(|b| {
            (
                (b.family.clone(), b.version),
                (b.image_id.clone(), b.created),
            )
        })
        .collect();
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
    recycle_bin(g, &place);
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
        builds: BTreeMap::new(),
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

/// Region-level Recycle Bin rules for AMIs and snapshots, locked in the
/// factory; the legacy account has none (REGION-RECYCLE-BIN-OFF fails
/// there). Drawn from nothing, so the rest of the sample is unchanged.
fn recycle_bin(g: &mut Gen, place: &Place) {
    if place.legacy {
        return;
    }
    for (n, resource_type) in ["EC2_IMAGE", "EBS_SNAPSHOT"].into_iter().enumerate() {
        let identifier = format!("{:011x}", place.account * 100 + place.ri * 2 + n);
        g.push(
            "recycle_bin_rules",
            vec![
                ("account_id", Value::from(place.acct.clone())),
                ("region", place.region.into()),
                (
                    "rule_arn",
                    format!(
                        "arn:aws:rbin:{}:{}:rule/{identifier}",
                        place.region, place.acct
                    )
                    .into(),
                ),
                ("identifier", identifier.into()),
                ("resource_type", resource_type.into()),
                ("detail_read", true.into()),
                ("status", "available".into()),
                (
                    "lock_state",
                    (if place.account == FACTORY {
                        Some("locked")
                    } else {
                        None
                    })
                    .into(),
                ),
                ("retention_days", 30i64.into()),
                ("resource_tag_count", 0i64.into()),
                ("exclude_tag_count", 0i64.into()),
            ],
        );
    }
}
