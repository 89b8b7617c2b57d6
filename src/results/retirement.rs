//! The retirement plan: which AMIs are safe to deregister (AMI-UNUSED
//! failed them: every source of use was read and none uses them, they have
//! not launched in a long time and a newer version exists), with the
//! evidence, their snapshots and the commands to retire each safely; and
//! which deprecated AMIs are still launched or referenced, by what and
//! where, so nobody deregisters them.
//!
//! The plan never decides anything the rules did not: "safe" is exactly
//! AMI-UNUSED's `fail`; an AMI it could not settle (`unknown`) is counted,
//! never listed as safe.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::{HashMap, HashSet};

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::account_directory;
use crate::error::Result;
use crate::inventory::{Inventory, bool_column, rows_where, str_column, text_rows};
use crate::text::shell_word;

/// The rule whose failures are the AMIs safe to retire.
pub const UNUSED_RULE: &str = "AMI-UNUSED";

/// Consumers listed per deprecated AMI still in use (the rest counted).
const CONSUMERS_LISTED: usize = 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Retirement {
    /// AMIs safe to deregister, with the evidence for each.
    pub safe: Vec<SafeToRetire>,
    /// Deprecated AMIs that something still launches or references: keep.
    pub still_used: Vec<StillUsed>,
    /// AMIs AMI-UNUSED could not settle (a source of use not read):
    /// not safe to retire until a later audit reads it.
    pub not_known: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SafeToRetire {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub image_id: String,
    pub name: Option<String>,
    /// AMI-UNUSED's reason: how long idle, nothing launches or references it.
    pub evidence: String,
    pub deprecated: bool,
    /// Deregistration protection on (it must be turned off first).
    pub protected: bool,
    /// The EBS snapshots behind it (deleted with it).
    pub snapshots: Vec<String>,
    /// Deprecate first; deregister (with its snapshots) once a later audit
    /// still finds it unused.
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StillUsed {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub image_id: String,
    pub name: Option<String>,
    /// The first consumers (what launches or references it, where).
    pub consumers: Vec<Consumer>,
    /// How many consumers in all.
    pub consumer_count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Consumer {
    /// `instance`, `launch-template`, `auto-scaling-group`, `ssm-parameter`,
    /// or the type EC2's reference check names (`imagebuilder:ImageRecipe`).
    pub kind: String,
    pub id: String,
    pub account_id: String,
    pub region: String,
}

/// An image's facts the plan shows, by (account, region, image).
struct ImageFacts<'a> {
    name: Option<&'a str>,
    deprecated: Option<bool>,
    protection: Option<&'a str>,
}

/// Account, region, image id, borrowed from the inventory: keys for every
/// image and device, never copied.
type Key<'a> = (&'a str, &'a str, &'a str);

pub fn build(inventory: &Inventory, results: &DataFrame) -> Result<Retirement> {
    let directory = account_directory(inventory)?;
    let name_of = |account: &str| {
        directory
            .get(account)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };
    let images = inventory.table("images")?;
    let (account, region, id, name, protection) = (
        str_column(images, "account_id")?,
        str_column(images, "region")?,
        str_column(images, "image_id")?,
        str_column(images, "name")?,
        str_column(images, "deregistration_protection")?,
    );
    let deprecated = bool_column(images, "deprecated")?;
    let mut facts: HashMap<Key, ImageFacts> = HashMap::with_capacity(images.height());
    for i in 0..images.height() {
        if let (Some(a), Some(r), Some(x)) = (account[i], region[i], id[i]) {
            facts.insert(
                (a, r, x),
                ImageFacts {
                    name: name[i],
                    deprecated: deprecated[i],
                    protection: protection[i],
                },
            );
        }
    }
    let snapshots = snapshots_of(inventory)?;
    // Only deprecated AMIs' consumers are listed.
    let deprecated_images: HashSet<(&str, &str)> = facts
        .iter()
        .filter(|(_, f)| f.deprecated == Some(true))
        .map(|(k, _)| (k.1, k.2))
        .collect();
    let consumers = consumers_of(inventory, |region, image| {
        deprecated_images.contains(&(region, image))
    })?;

    let mut plan = Retirement::default();
    // Only this rule's rows are read: at 100k AMIs there are 2 M results,
    // a twentieth of them this rule's.
    let unused = rows_where(results, "rule_id", |rule| Ok(rule == Some(UNUSED_RULE)))?;
    let rows = text_rows(
        &unused,
        [
            "resource_type",
            "account_id",
            "region",
            "resource_id",
            "status",
            "reason",
        ],
    )?;
    for [resource_type, a, r, x, status, reason] in rows {
        // An account-region not read at all stands for all its AMIs in
        // one result: not counted as one AMI (the coverage section says it).
        if resource_type != Some("ami") {
            continue;
        }
        let (Some(a), Some(r), Some(x)) = (a, r, x) else {
            continue;
        };
        match status {
            Some("fail") => {}
            Some("unknown") => {
                plan.not_known += 1;
                continue;
            }
            _ => continue,
        }
        let key = (a, r, x);
        let fact = facts.get(&key);
        let is_deprecated = fact.and_then(|f| f.deprecated) == Some(true);
        // Anything but `disabled` (or not known) is treated as on.
        let protected = fact.and_then(|f| f.protection) != Some("disabled");
        plan.safe.push(SafeToRetire {
            account_name: name_of(a),
            name: fact.and_then(|f| f.name).map(str::to_string),
            evidence: reason.unwrap_or_default().to_string(),
            deprecated: is_deprecated,
            protected,
            snapshots: snapshots
                .get(&key)
                .map(|ids| ids.iter().map(|id| id.to_string()).collect())
                .unwrap_or_default(),
            commands: commands(r, x, is_deprecated, protected),
            account_id: a.to_string(),
            region: r.to_string(),
            image_id: x.to_string(),
        });
    }
    plan.still_used = still_used(&facts, &consumers, &name_of);
    plan.safe.sort_by(|a, b| {
        (&a.account_id, &a.region, &a.image_id).cmp(&(&b.account_id, &b.region, &b.image_id))
    });
    Ok(plan)
}

/// Deprecated AMIs that something launches or references, with the first
/// consumers, sorted by account, region and AMI.
fn still_used(
    facts: &HashMap<Key, ImageFacts>,
    consumers: &HashMap<(&str, &str), Vec<Consumer>>,
    name_of: &dyn Fn(&str) -> String,
) -> Vec<StillUsed> {
    let mut out = Vec::new();
    for (key, fact) in facts {
        if fact.deprecated != Some(true) {
            continue;
        }
        let Some(used_by) = consumers.get(&(key.1, key.2)) else {
            continue;
        };
        // A launch may be any account's (an AMI launches in its own
        // region); a reference EC2 names is the owner's own.
        let mut listed: Vec<Consumer> = used_by.clone();
        listed.sort();
        listed.dedup();
        if listed.is_empty() {
            continue;
        }
        let consumer_count = listed.len();
        listed.truncate(CONSUMERS_LISTED);
        out.push(StillUsed {
            account_id: key.0.to_string(),
            account_name: name_of(key.0),
            region: key.1.to_string(),
            image_id: key.2.to_string(),
            name: fact.name.map(str::to_string),
            consumers: listed,
            consumer_count,
        });
    }
    out.sort_by(|a, b| {
        (&a.account_id, &a.region, &a.image_id).cmp(&(&b.account_id, &b.region, &b.image_id))
    });
    out
}

/// Retire safely: deprecate first (consumers see it going; a later audit
/// confirms nothing started using it), then lift deregistration protection
/// and deregister with its snapshots. Never the deregistration alone.
fn commands(region: &str, image_id: &str, deprecated: bool, protected: bool) -> Vec<String> {
    let (region, image) = (shell_word(region), shell_word(image_id));
    let mut out = Vec::new();
    if !deprecated {
        out.push(format!(
            "aws ec2 enable-image-deprecation --region {region} --image-id {image} --deprecate-at \"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)\""
        ));
    }
    // Lifted now: with a cooldown the protection lasts 24 hours after it
    // is turned off, which the wait for the next audit covers.
    if protected {
        out.push(format!(
            "aws ec2 disable-image-deregistration-protection --region {region} --image-id {image}"
        ));
    }
    out.push("# once a later audit still finds it unused:".to_string());
    out.push(format!(
        "aws ec2 deregister-image --region {region} --image-id {image} --delete-associated-snapshots"
    ));
    out
}

/// Each image's EBS snapshots, in device order.
fn snapshots_of(inventory: &Inventory) -> Result<HashMap<Key<'_>, Vec<&str>>> {
    let devices = inventory.table("image_block_devices")?;
    let (account, region, image, snapshot) = (
        str_column(devices, "account_id")?,
        str_column(devices, "region")?,
        str_column(devices, "image_id")?,
        str_column(devices, "snapshot_id")?,
    );
    let mut out: HashMap<Key, Vec<&str>> = HashMap::new();
    for i in 0..devices.height() {
        if let (Some(a), Some(r), Some(x), Some(s)) = (account[i], region[i], image[i], snapshot[i])
        {
            out.entry((a, r, x)).or_default().push(s);
        }
    }
    Ok(out)
}

/// The uses (`image_uses`, derived once at inventory load) of the AMIs
/// `wanted` names, by (region, image).
fn consumers_of(
    inventory: &Inventory,
    wanted: impl Fn(&str, &str) -> bool,
) -> Result<HashMap<(&str, &str), Vec<Consumer>>> {
    let uses = inventory.table("image_uses")?;
    let (account, region, image, kind, id) = (
        str_column(uses, "account_id")?,
        str_column(uses, "region")?,
        str_column(uses, "image_id")?,
        str_column(uses, "use_type")?,
        str_column(uses, "use_id")?,
    );
    let mut out: HashMap<(&str, &str), Vec<Consumer>> = HashMap::new();
    for i in 0..uses.height() {
        if let (Some(a), Some(r), Some(x)) = (account[i], region[i], image[i])
            && wanted(r, x)
        {
            out.entry((r, x)).or_default().push(Consumer {
                kind: kind[i].unwrap_or_default().to_string(),
                id: id[i].unwrap_or_default().to_string(),
                account_id: a.to_string(),
                region: r.to_string(),
            });
        }
    }
    Ok(out)
}

impl Retirement {
    /// `retirement.csv`: one row per AMI of the plan, `retire` (safe to
    /// deregister, its commands one per line) or `keep` (deprecated, still
    /// in use, its consumers one per line). Cells a spreadsheet would run
    /// as formulas are neutralised. Streamed into `out`: at 100k AMIs the
    /// plan is tens of MB.
    pub fn write_csv(&self, out: impl std::io::Write) -> csv::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record([
            "plan",
            "account_id",
            "account_name",
            "region",
            "image_id",
            "name",
            "deprecated",
            "evidence",
            "snapshots",
            "commands",
        ])?;
        let mut write = |record: [&str; 10]| {
            w.write_record(
                record
                    .iter()
                    .map(|s| crate::text::neutralise_cell(s).into_owned()),
            )
        };
        for s in &self.safe {
            write([
                "retire",
                &s.account_id,
                &s.account_name,
                &s.region,
                &s.image_id,
                s.name.as_deref().unwrap_or_default(),
                if s.deprecated { "true" } else { "false" },
                &s.evidence,
                &s.snapshots.join(" "),
                &s.commands.join("\n"),
            ])?;
        }
        for u in &self.still_used {
            let used_by: Vec<String> = u
                .consumers
                .iter()
                .map(|c| format!("{} {} ({} {})", c.kind, c.id, c.account_id, c.region))
                .collect();
            let more = u.consumer_count.saturating_sub(u.consumers.len());
            let mut evidence = format!("used by {}:\n{}", u.consumer_count, used_by.join("\n"));
            if more > 0 {
                evidence.push_str(&format!("\nand {more} more"));
            }
            write([
                "keep",
                &u.account_id,
                &u.account_name,
                &u.region,
                &u.image_id,
                u.name.as_deref().unwrap_or_default(),
                "true",
                &evidence,
                "",
                "",
            ])?;
        }
        Ok(w.flush()?)
    }
}
