//! One image of an account-region, with its launch permissions, block
//! devices, snapshots and tags.

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use crate::inventory::Value;
use crate::synth::bases::{BaseKind, Link, push_root, source_cells};
use crate::synth::org::FACTORY;
use crate::synth::{Gen, ImageFacts, ORGANIZATION_ID, OUTSIDE_ACCOUNTS, REGIONS, account_id};

use super::*;

/// One image with its permissions, devices, snapshots and tags.
#[allow(clippy::too_many_arguments)]
pub(super) fn image(
    g: &mut Gen,
    place: &Place,
    family: &str,
    version: usize,
    newest: bool,
    offset: i64,
    j: usize,
    env: &str,
) -> ImageFacts {
    // Releases every ~30 days, the newest 5-35 days old.
    let age = 5
        + (place.account as i64 * 7 + j as i64 * 3) % 30
        + offset * 30
        + if place.legacy { 400 } else { 0 };
    let created = g.days_ago(age);
    let image_id = format!("ami-0{}", g.hex(16));
    let name = draw_name(g, place, family, version, created);
    let lifecycle = draw_lifecycle(g, place.legacy, newest, created);
    let windows = family.starts_with("win");
    let public = g.chance(place.rates.public);
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
    // A copy of the factory's build of the same version in its first
    // region (the id is drawn either way, so the stream stays put).
    let source = if place.ri > 0 && place.account == FACTORY {
        let drawn = format!("ami-0{}", g.hex(16));
        Some(match place.builds.get(&(family.to_string(), version)) {
            Some((build, built)) => (build.clone(), Some(*built)),
            None => (drawn, None),
        })
    } else {
        None
    };
    let architecture = if family.contains("eks") || g.chance(0.3) {
        "arm64"
    } else {
        "x86_64"
    };
    let imds = if g.chance(place.rates.imdsv1) {
        None
    } else {
        Some("v2.0")
    };
    let boot_mode = *g.pick(&["uefi-preferred", "uefi", "legacy-bios"]);
    let drawn = DrawnImage {
        windows,
        public,
        protection,
        source,
        architecture,
        imds,
        boot_mode,
        image_id,
        name,
        created,
        lifecycle,
    };
    push_image(g, place, family, version, &drawn);
    permissions(g, place, &drawn.image_id, drawn.public);
    devices(
        g,
        place,
        &drawn.image_id,
        drawn.windows,
        drawn.public,
        created,
    );
    tags(g, place, &drawn.image_id, &drawn.name, family, version, env);
    ImageFacts {
        deprecated: drawn.lifecycle.deprecation.is_some_and(|d| d <= g.now),
        image_id: drawn.image_id,
        newest,
        family: family.to_string(),
        version,
        created,
    }
}

/// What was drawn for one image, in the order the generator draws it.
struct DrawnImage {
    image_id: String,
    name: String,
    created: DateTime<Utc>,
    lifecycle: Lifecycle,
    public: bool,
    protection: &'static str,
    /// The factory's build this image was copied from, for copies, and
    /// when it was built when it is one of the inventory's images.
    source: Option<(String, Option<DateTime<Utc>>)>,
    architecture: &'static str,
    imds: Option<&'static str>,
    boot_mode: &'static str,
    windows: bool,
}

struct Lifecycle {
    state: &'static str,
    deprecation: Option<DateTime<Utc>>,
    last_launched: Option<DateTime<Utc>>,
}

/// The image's name: the convention, or (at the account's rate) a broken one.
fn draw_name(
    g: &mut Gen,
    place: &Place,
    family: &str,
    version: usize,
    created: DateTime<Utc>,
) -> String {
    if !g.chance(place.rates.bad_name) {
        return format!("{family}-{}-v{version}", created.format("%Y%m%d"));
    }
    if g.chance(0.5) {
        format!(
            "{}-{}-v{version}",
            family.to_uppercase().replace("-GOLDEN", "-Golden"),
            created.format("%Y-%m-%d")
        )
    } else {
        format!("copy of {family} v{version}")
    }
}

/// State, deprecation and last launch: the newest version is fresh and
/// launched lately, older ones mostly deprecated.
fn draw_lifecycle(g: &mut Gen, legacy: bool, newest: bool, created: DateTime<Utc>) -> Lifecycle {
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
    let last_launched = if newest {
        let d = g.rng.random_range(0..5);
        Some(g.days_ago(d))
    } else if g.chance(0.6) {
        Some(created + Duration::days(g.rng.random_range(1..30)))
    } else {
        None
    };
    Lifecycle {
        state,
        deprecation,
        last_launched,
    }
}

/// The image's row and, for a copy, its ancestry.
fn push_image(g: &mut Gen, place: &Place, family: &str, version: usize, d: &DrawnImage) {
    let (acct, region, windows) = (&place.acct, place.region, d.windows);
    let base = BaseKind::of(family, place.legacy);
    let mut cells = vec![
        ("account_id", Value::from(acct.clone())),
        ("region", region.into()),
        ("image_id", d.image_id.clone().into()),
        ("name", d.name.clone().into()),
        (
            "description",
            format!("{family} golden image v{version}").into(),
        ),
        ("state", d.lifecycle.state.into()),
        ("owner_id", acct.clone().into()),
        ("creation_date", d.created.into()),
        ("deprecation_time", d.lifecycle.deprecation.into()),
        ("last_launched_time", d.lifecycle.last_launched.into()),
        ("public", d.public.into()),
        ("architecture", d.architecture.into()),
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
        ("imds_support", d.imds.into()),
        ("boot_mode", d.boot_mode.into()),
        (
            "tpm_support",
            (if windows { Some("v2.0") } else { None }).into(),
        ),
        ("deregistration_protection", d.protection.into()),
        ("image_allowed", (place.allowed != "disabled").into()),
    ];
    cells.extend(match &d.source {
        Some((source, _)) => vec![
            ("source_image_id", source.clone().into()),
            ("source_image_region", REGIONS[0].into()),
        ],
        None => source_cells(&d.image_id, region, &base.base(region)).to_vec(),
    });
    g.push("images", cells);
    let link = |depth| Link {
        account: acct,
        region,
        image_id: &d.image_id,
        depth,
    };
    match &d.source {
        // A copy of the factory's build in its first region: the scanner
        // asks GetImageAncestry (the source is in another region), and the
        // chain runs through the build to its base. A source that is not
        // one of the inventory's images was made an hour before its copies.
        Some((source, built)) => {
            let at = built.unwrap_or(d.created - Duration::hours(1));
            g.push(
                "image_ancestry",
                vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("image_id", d.image_id.clone().into()),
                    ("depth", 1i64.into()),
                    ("ancestor_image_id", source.clone().into()),
                    ("ancestor_region", REGIONS[0].into()),
                    ("creation_date", at.into()),
                ],
            );
            // Only a build of the inventory's has a base drawn for it.
            if built.is_some() {
                push_root(g, &link(2), &base.base(REGIONS[0]), REGIONS[0], at);
            }
        }
        // Built here from an instance of its base.
        None => push_root(g, &link(1), &base.base(region), region, d.created),
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
