//! What uses the synthetic images: instances, launch template versions,
//! and the Inspector findings on instances.

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use std::collections::BTreeMap;

use rand::Rng;

use super::org::{FACTORY, role};
use super::{AMAZON_OWNER, Gen, ImageFacts, MARKETPLACE_OWNER};
use crate::inventory::Value;

pub(super) const CVES: [(&str, &str, &str); 8] = [
    (
        "CVE-2024-6387",
        "CRITICAL",
        "openssh: regreSSHion remote code execution",
    ),
    (
        "CVE-2023-4911",
        "HIGH",
        "glibc: Looney Tunables buffer overflow in ld.so",
    ),
    ("CVE-2024-3094", "CRITICAL", "xz-utils: backdoor in liblzma"),
    (
        "CVE-2023-38545",
        "HIGH",
        "curl: SOCKS5 heap buffer overflow",
    ),
    ("CVE-2024-2961", "HIGH", "glibc: iconv out-of-bounds write"),
    ("CVE-2023-44487", "MEDIUM", "HTTP/2 rapid reset"),
    (
        "CVE-2024-21626",
        "HIGH",
        "runc: container breakout through leaked fd",
    ),
    (
        "CVE-2023-48795",
        "MEDIUM",
        "openssh: Terrapin prefix truncation",
    ),
];

/// Image id -> index of the owning account.
pub(super) type Owners = std::collections::HashMap<String, usize>;

fn owner_of(g: &Gen, owners: &Owners, image_id: &str) -> Option<String> {
    owners
        .get(image_id)
        .map(|account| g.account_ids[*account].clone())
}

/// A launch template made here, for the Auto Scaling groups to launch.
pub(super) struct Template {
    pub(super) id: String,
    pub(super) name: String,
    /// (number, is default, is latest, AMI, its owner), oldest first.
    pub(super) versions: Vec<(i64, bool, bool, String, Option<String>)>,
}

/// Instances, launch templates and Inspector findings: what uses which
/// image. Returns the templates.
pub(super) fn usage(
    g: &mut Gen,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    owners: &Owners,
    account: usize,
    ri: usize,
    region: &str,
) -> Vec<Template> {
    let acct = g.account_ids[account].clone();
    let own = &catalog[&(account, ri)];
    // Workloads run the factory's shared images as well as their own.
    let factory = catalog.get(&(FACTORY, ri)).filter(|_| account != FACTORY);
    let mut pool: Vec<&ImageFacts> = own.iter().collect();
    if let Some(f) = factory {
        pool.extend(f.iter());
    }
    let here = Here {
        account,
        acct,
        region,
    };
    instances(g, owners, &pool, (own.len() / 2).max(1), &here);
    launch_templates(g, owners, &pool, &here)
}

/// The account-region being generated.
struct Here<'a> {
    account: usize,
    acct: String,
    region: &'a str,
}

/// `n` instances, most on the pool's newest images, with Inspector findings
/// on some (more on deprecated images).
fn instances(g: &mut Gen, owners: &Owners, pool: &[&ImageFacts], n: usize, here: &Here<'_>) {
    let (account, acct, region) = (here.account, &here.acct, here.region);
    for _ in 0..n {
        let instance_id = format!("i-0{}", g.hex(16));
        let roll = g.rng.random_range(0..100);
        let (image_id, owner, image) = if roll < 5 {
            (format!("ami-0{}", g.hex(16)), None, None)
        } else if roll < 12 {
            let owner = *g.pick(&[AMAZON_OWNER, MARKETPLACE_OWNER]);
            (format!("ami-0{}", g.hex(16)), Some(owner.to_string()), None)
        } else {
            let newest: Vec<&&ImageFacts> = pool
                .iter()
                .filter(|i| i.newest || g.rng.random_bool(0.15))
                .collect();
            let chosen = if newest.is_empty() {
                pool[0]
            } else {
                *newest[g.rng.random_range(0..newest.len())]
            };
            let owner = owner_of(g, owners, &chosen.image_id);
            (chosen.image_id.clone(), owner, Some(chosen.clone()))
        };
        let launched = {
            let d = g.rng.random_range(0..60);
            g.days_ago(d)
        };
        {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("instance_id", instance_id.clone().into()),
                ("name", format!("{}-{}", role(account).0, g.hex(4)).into()),
                ("image_id", image_id.clone().into()),
                ("image_owner_id", owner.into()),
                (
                    "state",
                    (if g.chance(0.85) { "running" } else { "stopped" }).into(),
                ),
                (
                    "instance_type",
                    (*g.pick(&["m7g.large", "c7i.xlarge", "t3.medium", "r7g.2xlarge"])).into(),
                ),
                ("launch_time", launched.into()),
            ];
            g.push("instances", cells);
        }
        if let Some(image) = image
            && g.chance(if image.deprecated { 0.7 } else { 0.3 })
        {
            for _ in 0..g.rng.random_range(1..4) {
                let (cve, sev, title) = *g.pick(&CVES);
                finding(
                    g,
                    acct,
                    region,
                    &image.image_id,
                    Some(&instance_id),
                    cve,
                    sev,
                    title,
                );
            }
        }
    }
}

/// Two launch templates, each with its $Default and $Latest versions.
fn launch_templates(
    g: &mut Gen,
    owners: &Owners,
    pool: &[&ImageFacts],
    here: &Here<'_>,
) -> Vec<Template> {
    let (account, acct, region) = (here.account, &here.acct, here.region);
    let mut templates = Vec::new();
    for t in 0..2 {
        let lt = format!("lt-0{}", g.hex(16));
        let name = format!("{}-lt-{t}", role(account).0);
        let mut made = Vec::new();
        let latest = g.rng.random_range(1..6i64);
        let default = if g.chance(0.7) { latest } else { latest - 1 }.max(1);
        for version in if default == latest {
            vec![latest]
        } else {
            vec![default, latest]
        } {
            let roll = g.rng.random_range(0..100);
            let (image_id, owner) = if roll < 4 {
                (format!("ami-0{}", g.hex(16)), None)
            } else {
                let img = pool[g.rng.random_range(0..pool.len())];
                (img.image_id.clone(), owner_of(g, owners, &img.image_id))
            };
            made.push((
                version,
                version == default,
                version == latest,
                image_id.clone(),
                owner.clone(),
            ));
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("launch_template_id", lt.clone().into()),
                ("launch_template_name", name.clone().into()),
                ("version_number", version.into()),
                ("is_default", (version == default).into()),
                ("is_latest", (version == latest).into()),
                ("image_id", image_id.into()),
                ("image_owner_id", owner.into()),
            ];
            g.push("launch_templates", cells);
        }
        templates.push(Template {
            id: lt,
            name,
            versions: made,
        });
    }
    templates
}

#[allow(clippy::too_many_arguments)]
pub(super) fn finding(
    g: &mut Gen,
    acct: &str,
    region: &str,
    image_id: &str,
    instance: Option<&str>,
    cve: &str,
    severity: &str,
    title: &str,
) {
    let first = {
        let d = g.rng.random_range(1..120);
        g.days_ago(d)
    };
    let arn = format!("arn:aws:inspector2:{region}:{acct}:finding/{}", g.hex(32));
    {
        let cells = vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("finding_arn", arn.into()),
            ("image_id", image_id.into()),
            ("instance_id", instance.into()),
            (
                "resource_type",
                (if instance.is_some() {
                    "AWS_EC2_INSTANCE"
                } else {
                    "AWS_EC2_AMI"
                })
                .into(),
            ),
            ("severity", severity.into()),
            ("vulnerability_id", cve.into()),
            ("title", title.into()),
            ("status", "ACTIVE".into()),
            (
                "fix_available",
                (if g.chance(0.75) { "YES" } else { "NO" }).into(),
            ),
            ("first_observed_at", first.into()),
            ("last_observed_at", g.days_ago(0).into()),
        ];
        g.push("inspector_findings", cells);
    }
}
