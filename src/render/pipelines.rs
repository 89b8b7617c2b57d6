//! The report's view of the image factory: each EC2 Image Builder pipeline
//! with its health, schedule and newest image, and its lineage (pipeline ->
//! image builds -> AMIs per region and account -> instances and launch
//! templates using them).
//!
//! Health is read from the pipeline rules' results, never judged a second
//! time here: a pipeline is `healthy` only when every pipeline rule of the
//! pack passed (or was waived) for it. Where pipelines, builds or the
//! consumers of an AMI were not read, the view says so: an empty list or a
//! zero count is never shown where the inventory does not know.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::inventory::{Inventory, format_timestamp, i64_column, str_column, text_rows};
use crate::policy::PolicyPack;
use crate::results::{Status, account_directory};
use crate::results::{Unread, unread_places};

/// The resource type of pipeline rules.
const PIPELINE: &str = "image-pipeline";
/// Image builds listed per pipeline, newest first; older ones are counted.
const VERSIONS_SHOWN: usize = 10;
/// AMIs listed per build; the rest are counted.
const AMIS_SHOWN: usize = 100;

#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelinesView {
    pub pipelines: Vec<PipelineView>,
    /// Account-regions whose pipelines were not read, with why: the list
    /// above is short by whatever they hold.
    pub unread: Vec<Unread>,
    /// Account-regions whose instances or launch templates were not read:
    /// usage counts of AMIs in their regions are a floor, marked `+`.
    pub usage_unread: Vec<Unread>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineView {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub pipeline_arn: String,
    pub name: String,
    pub status: Option<String>,
    /// `cron(...) (Etc/UTC)`, or `manual only` when there is no schedule.
    pub schedule: String,
    pub last_run_status: Option<String>,
    pub consecutive_failures: Option<i64>,
    /// From the pipeline rules' results.
    pub health: Health,
    pub failing_rules: Vec<String>,
    pub unknown_rules: Vec<String>,
    pub waived_rules: Vec<String>,
    /// Newest build that is AVAILABLE: its version and age in days.
    pub newest_version: Option<String>,
    pub newest_age_days: Option<i64>,
    /// Whether ListImagePipelineImages was read for this pipeline; when
    /// not, `versions` is empty because nothing is known.
    pub builds_read: bool,
    pub builds: usize,
    pub versions: Vec<VersionView>,
    /// Builds older than those in `versions`.
    pub older_versions: usize,
    pub amis: usize,
    pub instances: Usage,
    pub launch_templates: Usage,
}

/// A pipeline's health, worst first: the worst of its pipeline rules'
/// results, and `healthy` only when every one passed or was waived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Failing,
    Unknown,
    Healthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Failing => "failing",
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Health {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub version: String,
    pub status: String,
    /// `YYYY-MM-DD`, empty when not known.
    pub created: String,
    pub age_days: Option<i64>,
    pub amis: Vec<AmiView>,
    /// AMIs beyond those listed.
    pub more_amis: usize,
    pub instances: Usage,
    pub launch_templates: Usage,
}

#[derive(Debug, Clone, Serialize)]
pub struct AmiView {
    pub region: String,
    pub account_id: String,
    pub image_id: String,
    pub instances: Usage,
    pub launch_templates: Usage,
}

/// How many consumers use an AMI; `complete` is false when some
/// account-region of the AMI's region was not read, so `count` is a floor.
/// Serialised as its text: `3`, or `3+` for a floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub count: u64,
    pub complete: bool,
}

/// The usage of several AMIs: a floor when any of them is.
impl std::iter::Sum for Usage {
    fn sum<I: Iterator<Item = Usage>>(iter: I) -> Usage {
        iter.fold(
            Usage {
                count: 0,
                complete: true,
            },
            |total, u| Usage {
                count: total.count + u.count,
                complete: total.complete && u.complete,
            },
        )
    }
}

impl Serialize for Usage {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.count, if self.complete { "" } else { "+" })
    }
}

pub fn build(
    inventory: &Inventory,
    pack: &PolicyPack,
    evaluation: &Evaluation,
) -> Result<PipelinesView> {
    let pipelines_unread = unread_places(inventory, &["imagebuilder:ListImagePipelines"]);
    // Instances or templates not read: the instances' reason first.
    let usage_unread = unread_places(
        inventory,
        &[
            "ec2:DescribeInstances",
            "ec2:DescribeLaunchTemplateVersions",
        ],
    );
    let partial_regions: BTreeSet<&str> = usage_unread.iter().map(|u| u.region.as_str()).collect();

    let table = |name| inventory.table(name);
    let pipelines = table("pipelines")?;
    if pipelines.height() == 0 {
        return Ok(PipelinesView {
            pipelines: Vec::new(),
            unread: pipelines_unread,
            usage_unread,
        });
    }
    let tallies = rule_tallies(pack, evaluation)?;
    let expected = pipeline_rules(pack);
    let usage = consumers(inventory)?;
    let mut builds = builds_by_pipeline(inventory, &usage, &partial_regions)?;
    let directory = account_directory(inventory)?;

    let col = |name| str_column(pipelines, name);
    let (account, region, arn, name, status) = (
        col("account_id")?,
        col("region")?,
        col("pipeline_arn")?,
        col("name")?,
        col("status")?,
    );
    let (schedule, timezone, last_run) = (
        col("schedule_expression")?,
        col("schedule_timezone")?,
        col("last_run_status")?,
    );
    let failures = i64_column(pipelines, "consecutive_failures")?;
    let listed = i64_column(pipelines, "images_listed")?;
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    let mut out = Vec::with_capacity(pipelines.height());
    for i in 0..pipelines.height() {
        let key = (text(account[i]), text(region[i]), text(arn[i]));
        let judged = Judged::of(tallies.get(&key), &expected);
        let schedule = schedule_text(schedule[i], timezone[i]);
        // Each pipeline ARN is one row: its builds are taken, not copied.
        let mut versions = builds.remove(&key.2).unwrap_or_default();
        let newest = newest_available(&versions);
        let instances: Usage = versions.iter().map(|v| v.instances).sum();
        let launch_templates: Usage = versions.iter().map(|v| v.launch_templates).sum();
        let amis = versions.iter().map(|v| v.amis.len() + v.more_amis).sum();
        let builds = versions.len();
        let older_versions = builds.saturating_sub(VERSIONS_SHOWN);
        versions.truncate(VERSIONS_SHOWN);
        out.push(PipelineView {
            account_name: directory
                .get(&key.0)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            name: text(name[i]),
            status: status[i].map(str::to_string),
            schedule,
            last_run_status: last_run[i].map(str::to_string),
            consecutive_failures: failures[i],
            health: judged.health,
            failing_rules: judged.failing,
            unknown_rules: judged.unknown,
            waived_rules: judged.waived,
            newest_version: newest.as_ref().map(|n| n.1.clone()),
            newest_age_days: newest.map(|n| n.0),
            builds_read: listed[i].is_some(),
            builds,
            versions,
            older_versions,
            amis,
            instances,
            launch_templates,
            account_id: key.0,
            region: key.1,
            pipeline_arn: key.2,
        });
    }
    out.sort_by(|a, b| pipeline_order(a).cmp(&pipeline_order(b)));
    Ok(PipelinesView {
        pipelines: out,
        unread: pipelines_unread,
        usage_unread,
    })
}

/// The rules that judge pipelines.
fn pipeline_rules(pack: &PolicyPack) -> Vec<&str> {
    pack.rules
        .iter()
        .filter(|r| r.resource_type == PIPELINE)
        .map(|r| r.id.as_str())
        .collect()
}

/// Pipelines in the report: by account, region, name, ARN.
fn pipeline_order(p: &PipelineView) -> (&str, &str, &str, &str) {
    (&p.account_id, &p.region, &p.name, &p.pipeline_arn)
}

/// The schedule as the report shows it.
fn schedule_text(expression: Option<&str>, timezone: Option<&str>) -> String {
    match (expression, timezone) {
        (Some(expr), Some(tz)) => format!("{expr} ({tz})"),
        (Some(expr), None) => expr.to_string(),
        (None, _) => "manual only".to_string(),
    }
}

/// The youngest available build: (age in days, version); the higher
/// version where two are as young.
fn newest_available(versions: &[VersionView]) -> Option<(i64, String)> {
    versions
        .iter()
        .filter(|v| v.status == "AVAILABLE")
        .filter_map(|v| v.age_days.map(|age| (age, v.version.clone())))
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
}

/// A pipeline's health as its rules' results say it.
struct Judged {
    health: Health,
    failing: Vec<String>,
    unknown: Vec<String>,
    waived: Vec<String>,
}

impl Judged {
    /// From the pipeline's results by rule; a pipeline rule of `expected`
    /// without a result here (it did not run) is unknown, never a pass.
    fn of(statuses: Option<&BTreeMap<String, Status>>, expected: &[&str]) -> Judged {
        let with = |wanted: Status| -> Vec<String> {
            statuses
                .map(|s| {
                    s.iter()
                        .filter(|(_, st)| **st == wanted)
                        .map(|(r, _)| r.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        let failing = with(Status::Fail);
        let mut unknown = with(Status::Unknown);
        for rule in expected {
            if !statuses.is_some_and(|s| s.contains_key(*rule)) {
                unknown.push(rule.to_string());
            }
        }
        unknown.sort();
        let health = if !failing.is_empty() {
            Health::Failing
        } else if !unknown.is_empty() {
            Health::Unknown
        } else {
            Health::Healthy
        };
        Judged {
            health,
            failing,
            unknown,
            waived: with(Status::Waived),
        }
    }
}

type PipelineKey = (String, String, String);

/// (account, region, pipeline ARN) -> rule id -> status, for pipeline rules.
fn rule_tallies(
    pack: &PolicyPack,
    evaluation: &Evaluation,
) -> Result<BTreeMap<PipelineKey, BTreeMap<String, Status>>> {
    let stage = |message: String| Error::Internal(format!("report pipelines: {message}"));
    // The results' columns iterated, never filtered into a copy (at 100k
    // AMIs there are 2 M results, a few hundred of them pipelines').
    let results = &evaluation.results;
    let rows = text_rows(
        results,
        [
            "resource_type",
            "rule_id",
            "account_id",
            "region",
            "resource_id",
            "status",
        ],
    )
    .map_err(|e| stage(e.to_string()))?;
    let known: BTreeSet<&str> = pack.rules.iter().map(|r| r.id.as_str()).collect();
    let mut out: BTreeMap<PipelineKey, BTreeMap<String, Status>> = BTreeMap::new();
    for (i, [resource_type, rule, account, region, resource, status]) in rows.enumerate() {
        if resource_type != Some(PIPELINE) {
            continue;
        }
        let (Some(rule), Some(account), Some(region), Some(resource), Some(status)) = (
            rule,
            account,
            region,
            resource,
            status.and_then(Status::parse),
        ) else {
            return Err(stage(format!(
                "pipeline result row {} lacks a rule, place, resource or status",
                i + 1
            )));
        };
        if !known.contains(rule) {
            return Err(stage(format!(
                "result names rule `{rule}`, not in the pack"
            )));
        }
        out.entry((
            account.to_string(),
            region.to_string(),
            resource.to_string(),
        ))
        .or_default()
        .insert(rule.to_string(), status);
    }
    Ok(out)
}

/// (region, image id) -> (instances, distinct launch templates) using it.
/// Terminated instances launch nothing and are not counted.
struct Consumers {
    by_image: BTreeMap<(String, String), (u64, u64)>,
}

impl Consumers {
    fn of(&self, region: &str, image_id: &str, partial: &BTreeSet<&str>) -> (Usage, Usage) {
        let complete = !partial.contains(region);
        let (instances, templates) = self
            .by_image
            .get(&(region.to_string(), image_id.to_string()))
            .copied()
            .unwrap_or((0, 0));
        (
            Usage {
                count: instances,
                complete,
            },
            Usage {
                count: templates,
                complete,
            },
        )
    }
}

fn consumers(inventory: &Inventory) -> Result<Consumers> {
    // Only AMIs some pipeline built are asked about.
    let amis = inventory.table("pipeline_amis")?;
    let wanted: BTreeSet<(&str, &str)> = str_column(amis, "ami_region")?
        .into_iter()
        .zip(str_column(amis, "image_id")?)
        .filter_map(|(r, i)| Some((r?, i?)))
        .collect();
    let mut by_image: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let instances = inventory.table("instances")?;
    let (region, image, state) = (
        str_column(instances, "region")?,
        str_column(instances, "image_id")?,
        str_column(instances, "state")?,
    );
    for i in 0..instances.height() {
        let (Some(r), Some(id)) = (region[i], image[i]) else {
            continue;
        };
        if matches!(state[i], Some("terminated" | "shutting-down")) || !wanted.contains(&(r, id)) {
            continue;
        }
        by_image
            .entry((r.to_string(), id.to_string()))
            .or_default()
            .0 += 1;
    }
    let templates = inventory.table("launch_templates")?;
    let (account, region, template, image) = (
        str_column(templates, "account_id")?,
        str_column(templates, "region")?,
        str_column(templates, "launch_template_id")?,
        str_column(templates, "image_id")?,
    );
    let mut seen: BTreeSet<(&str, &str, &str, &str)> = BTreeSet::new();
    for i in 0..templates.height() {
        let (Some(a), Some(r), Some(t), Some(id)) = (account[i], region[i], template[i], image[i])
        else {
            continue;
        };
        // $Default and $Latest of one template are one consumer.
        if wanted.contains(&(r, id)) && seen.insert((a, r, t, id)) {
            by_image
                .entry((r.to_string(), id.to_string()))
                .or_default()
                .1 += 1;
        }
    }
    Ok(Consumers { by_image })
}

/// Pipeline ARN -> its builds, newest first, each with its AMIs and their use.
fn builds_by_pipeline(
    inventory: &Inventory,
    usage: &Consumers,
    partial: &BTreeSet<&str>,
) -> Result<BTreeMap<String, Vec<VersionView>>> {
    let amis = inventory.table("pipeline_amis")?;
    let (build, ami_region, ami_account, image) = (
        str_column(amis, "image_build_arn")?,
        str_column(amis, "ami_region")?,
        str_column(amis, "ami_account_id")?,
        str_column(amis, "image_id")?,
    );
    let mut amis_by_build: BTreeMap<&str, Vec<AmiView>> = BTreeMap::new();
    for i in 0..amis.height() {
        let (Some(b), Some(r), Some(a), Some(id)) =
            (build[i], ami_region[i], ami_account[i], image[i])
        else {
            continue;
        };
        let (instances, launch_templates) = usage.of(r, id, partial);
        amis_by_build.entry(b).or_default().push(AmiView {
            region: r.to_string(),
            account_id: a.to_string(),
            image_id: id.to_string(),
            instances,
            launch_templates,
        });
    }
    let images = inventory.table("pipeline_images")?;
    let (pipeline, build, version, status) = (
        str_column(images, "pipeline_arn")?,
        str_column(images, "image_build_arn")?,
        str_column(images, "version")?,
        str_column(images, "status")?,
    );
    let created = i64_column(images, "date_created")?;
    let ages = i64_column(images, "age_days")?;
    let mut out: BTreeMap<String, Vec<(Option<i64>, String, VersionView)>> = BTreeMap::new();
    for i in 0..images.height() {
        let (Some(p), Some(b)) = (pipeline[i], build[i]) else {
            continue;
        };
        let mut amis = amis_by_build.remove(b).unwrap_or_default();
        amis.sort_by(|x, y| {
            (&x.region, &x.account_id, &x.image_id).cmp(&(&y.region, &y.account_id, &y.image_id))
        });
        let instances: Usage = amis.iter().map(|a| a.instances).sum();
        let launch_templates: Usage = amis.iter().map(|a| a.launch_templates).sum();
        let more_amis = amis.len().saturating_sub(AMIS_SHOWN);
        amis.truncate(AMIS_SHOWN);
        let created_text = match created[i] {
            Some(ms) => format_timestamp(ms)?.chars().take(10).collect(),
            None => String::new(),
        };
        out.entry(p.to_string()).or_default().push((
            created[i],
            b.to_string(),
            VersionView {
                version: version[i].unwrap_or(b).to_string(),
                status: status[i].unwrap_or("not known").to_string(),
                created: created_text,
                age_days: ages[i],
                amis,
                more_amis,
                instances,
                launch_templates,
            },
        ));
    }
    Ok(out
        .into_iter()
        .map(|(pipeline, mut builds)| {
            // Newest first; the build ARN breaks ties so the order is stable.
            builds.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
            (pipeline, builds.into_iter().map(|(_, _, v)| v).collect())
        })
        .collect())
}
