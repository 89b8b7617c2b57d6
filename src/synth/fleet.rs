//! The fleet: Auto Scaling groups and what they launch, and the SSM
//! parameters stacks read AMI ids from, plus the planted fleet lag (ids in
//! [`super::PLANTED`]). Drawn from a random stream of its own, after
//! everything else, so the fleet did not change the rest of the sample.

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use std::collections::BTreeMap;

use chrono::Duration;
use rand::Rng;

use super::org::{FACTORY, SANDBOX, role};
use super::planted::{
    COMMUNITY_IMAGE, DEPRECATED_IN_USE, STALE_PARAMETER, STUCK_ASG, STUCK_TEMPLATE,
    UNREAD_TEMPLATE, UNRESOLVED_ASG, VENDOR_ASG, VENDOR_TEMPLATE,
};
use super::usage::Template;
use super::{COMMUNITY_OWNER, Gen, ImageFacts, SynthOptions};
use crate::inventory::Value;

/// Groups, their launch sources and AMI parameters of every account-region read.
pub(super) fn fleet(
    g: &mut Gen,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    templates: &BTreeMap<(usize, usize), Vec<Template>>,
    regions: &[&str],
) {
    for (&(account, ri), made) in templates {
        let region = regions[ri];
        for (t, template) in made.iter().enumerate() {
            if !g.chance(0.6) {
                continue;
            }
            let group = format!("{}-asg-{t}", role(account).0);
            let roll = g.rng.random_range(0..100);
            let chosen = |default: bool| {
                template
                    .versions
                    .iter()
                    .find(|v| if default { v.1 } else { v.2 })
            };
            let (spec, version) = match roll {
                0..60 => ("$Default".to_string(), chosen(true)),
                60..85 => ("$Latest".to_string(), chosen(false)),
                _ => {
                    let v = chosen(true);
                    (v.map_or_else(String::new, |v| v.0.to_string()), v)
                }
            };
            // `usage` gives every template a $Default and a $Latest version.
            let Some(version) = version else { continue };
            let mixed = g.chance(0.2);
            let desired = g.rng.random_range(1..7i64);
            asg(g, account, region, &group, desired, mixed);
            let (number, _, _, image, owner) = version;
            launch_source(
                g,
                account,
                region,
                &group,
                if mixed {
                    "mixed_instances_policy"
                } else {
                    "launch_template"
                },
                (&template.id, &template.name, &spec),
                Some(*number),
                Some(image),
                owner.as_deref(),
            );
        }
    }
    // The factory publishes the newest version of each family; workloads
    // keep their own pointer under /ami/.
    for (&(account, ri), images) in catalog {
        let region = regions[ri];
        if account == FACTORY {
            for newest in images.iter().filter(|i| i.newest) {
                let older = images
                    .iter()
                    .filter(|i| i.family == newest.family && i.version < newest.version)
                    .max_by_key(|i| i.version);
                let value = match older {
                    Some(older) if g.chance(0.1) => older,
                    _ => newest,
                };
                let name = format!("/golden/{}/latest", newest.family);
                parameter(g, account, region, &name, "aws:ec2:image", value, account);
            }
        } else if let Some(factory) = catalog.get(&(FACTORY, ri))
            && !factory.is_empty()
            && g.chance(0.5)
        {
            let newest: Vec<&ImageFacts> = factory.iter().filter(|i| i.newest).collect();
            let value = if !newest.is_empty() && g.chance(0.85) {
                newest[g.rng.random_range(0..newest.len())]
            } else {
                &factory[g.rng.random_range(0..factory.len())]
            };
            let name = format!("/ami/{}/base", role(account).0);
            parameter(g, account, region, &name, "text", value, FACTORY);
        }
    }
}

fn asg(g: &mut Gen, account: usize, region: &str, group: &str, desired: i64, mixed: bool) {
    let acct = g.account_ids[account].clone();
    let arn = format!(
        "arn:aws:autoscaling:{region}:{acct}:autoScalingGroup:{}-{}-{}-{}-{}:autoScalingGroupName/{group}",
        g.hex(8),
        g.hex(4),
        g.hex(4),
        g.hex(4),
        g.hex(12)
    );
    let cells = vec![
        ("account_id", Value::from(acct)),
        ("region", region.into()),
        ("group_name", group.into()),
        ("group_arn", arn.into()),
        ("desired_capacity", desired.into()),
        ("min_size", 1i64.min(desired).into()),
        ("max_size", (desired * 2).into()),
        ("instance_count", desired.into()),
        ("mixed_instances", mixed.into()),
    ];
    g.push("auto_scaling_groups", cells);
}

/// One launch source; `template` is (id, name, version as the group names it).
#[allow(clippy::too_many_arguments)]
fn launch_source(
    g: &mut Gen,
    account: usize,
    region: &str,
    group: &str,
    source: &str,
    template: (&str, &str, &str),
    number: Option<i64>,
    image: Option<&str>,
    owner: Option<&str>,
) {
    let (id, name, spec) = template;
    // An AMI with no owner known was never seen by DescribeImages: gone.
    let visible = image.map(|_| owner.is_some());
    let cells = vec![
        ("account_id", Value::from(g.account_ids[account].clone())),
        ("region", region.into()),
        ("group_name", group.into()),
        ("source", source.into()),
        ("reference", format!("{id}:{spec}").into()),
        ("launch_template_id", id.into()),
        ("launch_template_name", name.into()),
        ("version_spec", spec.into()),
        ("version_number", number.into()),
        ("image_id", image.into()),
        ("image_owner_id", owner.into()),
        ("image_visible", visible.into()),
    ];
    g.push("asg_launch_sources", cells);
}

fn parameter(
    g: &mut Gen,
    account: usize,
    region: &str,
    name: &str,
    data_type: &str,
    value: &ImageFacts,
    owner: usize,
) {
    let changed = value.created + Duration::hours(g.rng.random_range(1..48));
    let cells = vec![
        ("account_id", Value::from(g.account_ids[account].clone())),
        ("region", region.into()),
        ("name", name.into()),
        ("parameter_type", "String".into()),
        ("data_type", data_type.into()),
        ("value_read", true.into()),
        ("image_id", value.image_id.clone().into()),
        ("version", (value.version as i64).into()),
        ("last_modified", changed.into()),
        (
            "selected_by",
            (if data_type == "text" {
                "path"
            } else {
                "data_type"
            })
            .into(),
        ),
        ("image_owner_id", g.account_ids[owner].clone().into()),
        ("image_visible", true.into()),
    ];
    g.push("ssm_parameters", cells);
}

/// The planted fleet lag; each needs its account and region to exist.
pub(super) fn plant(
    g: &mut Gen,
    o: &SynthOptions,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    regions: &[&str],
) {
    let has = |account: usize, ri: usize| account < o.accounts && ri < regions.len();
    if has(3, 0) {
        stuck_on_deprecated(g, catalog, regions);
    }
    if has(5, 0) {
        unresolved_template(g, regions);
    }
    if has(SANDBOX, 0) {
        scaled_on_community_image(g, regions);
    }
}

/// payments-api pins template version 3 (the deprecated v2 AMI) while
/// $Default moved on; the parameter its stacks read was never updated.
fn stuck_on_deprecated(
    g: &mut Gen,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    regions: &[&str],
) {
    let now = g.now;
    let acct = g.account_ids[3].clone();
    let newest = catalog.get(&(3, 0)).and_then(|images| {
        images
            .iter()
            .find(|i| i.newest && i.family == "payments-api-golden")
    });
    let cells = vec![
        ("account_id", Value::from(acct.clone())),
        ("region", regions[0].into()),
        ("launch_template_id", STUCK_TEMPLATE.into()),
        ("launch_template_name", "payments-api".into()),
        ("version_number", 4i64.into()),
        ("is_default", true.into()),
        ("is_latest", true.into()),
        ("image_id", newest.map(|i| i.image_id.clone()).into()),
        ("image_owner_id", acct.clone().into()),
    ];
    g.push("launch_templates", cells);
    asg(g, 3, regions[0], STUCK_ASG, 6, false);
    launch_source(
        g,
        3,
        regions[0],
        STUCK_ASG,
        "launch_template",
        (STUCK_TEMPLATE, "payments-api", "3"),
        Some(3),
        Some(DEPRECATED_IN_USE),
        Some(&acct),
    );
    let cells = vec![
        ("account_id", Value::from(acct.clone())),
        ("region", regions[0].into()),
        ("name", STALE_PARAMETER.into()),
        ("parameter_type", "String".into()),
        ("data_type", "aws:ec2:image".into()),
        ("value_read", true.into()),
        ("image_id", DEPRECATED_IN_USE.into()),
        ("version", 2i64.into()),
        ("last_modified", (now - Duration::days(266)).into()),
        ("selected_by", "data_type".into()),
        ("image_owner_id", acct.clone().into()),
        ("image_visible", true.into()),
    ];
    g.push("ssm_parameters", cells);
}

/// Which version web-frontend's template 7 launches could not be read.
fn unresolved_template(g: &mut Gen, regions: &[&str]) {
    let acct = g.account_ids[5].clone();
    asg(g, 5, regions[0], UNRESOLVED_ASG, 4, true);
    launch_source(
        g,
        5,
        regions[0],
        UNRESOLVED_ASG,
        "mixed_instances_policy",
        (UNREAD_TEMPLATE, "web-frontend", "7"),
        None,
        None,
        None,
    );
    super::planted::ec2_throttled(
        g,
        &acct,
        regions[0],
        "DescribeLaunchTemplateVersions",
        UNREAD_TEMPLATE,
    );
}

/// Alice's experiment scaled out on the community AMI.
fn scaled_on_community_image(g: &mut Gen, regions: &[&str]) {
    let acct = g.account_ids[SANDBOX].clone();
    asg(g, SANDBOX, regions[0], VENDOR_ASG, 2, false);
    launch_source(
        g,
        SANDBOX,
        regions[0],
        VENDOR_ASG,
        "launch_template",
        (VENDOR_TEMPLATE, "alice-experiment", "$Default"),
        Some(1),
        Some(COMMUNITY_IMAGE),
        Some(COMMUNITY_OWNER),
    );
    let cells = vec![
        ("account_id", Value::from(acct)),
        ("region", regions[0].into()),
        ("launch_template_id", VENDOR_TEMPLATE.into()),
        ("launch_template_name", "alice-experiment".into()),
        ("version_number", 1i64.into()),
        ("is_default", true.into()),
        ("is_latest", true.into()),
        ("image_id", COMMUNITY_IMAGE.into()),
        ("image_owner_id", COMMUNITY_OWNER.into()),
    ];
    g.push("launch_templates", cells);
}
