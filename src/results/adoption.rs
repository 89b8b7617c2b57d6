//! The report's view of fleet adoption: how much of the running fleet
//! (instances, and Auto Scaling groups by what they launch) is on the
//! newest version of its golden family, per account and for the
//! organization, how far behind the rest is, how old the AMIs in use are,
//! and the worst offenders.
//!
//! Counts, never judgements: the fleet rules judge. Every consumer lands in
//! exactly one standing; one whose AMI or family versions were not read is
//! `unknown`, and the places where instances or groups were not read at
//! all are named, so a share is never computed over a fleet not seen.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::Unread;
use super::account_directory;
use crate::error::Result;
use crate::inventory::{Inventory, bool_column, i64_column, str_column};

/// Worst offenders listed; the rest are counted in the tables.
pub const OFFENDERS_LISTED: usize = 20;

/// Where a consumer stands against its golden family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Its AMI is deregistered or no longer visible.
    Missing,
    /// Its AMI is deprecated (still launchable; the fleet rules fail it).
    Deprecated,
    /// This many versions behind the newest of its family.
    Behind(i64),
    /// Its AMI, its owner or its family's versions were not read.
    Unknown,
    /// An AMI owned outside the organization: no golden family.
    NotGolden,
    Newest,
}

/// Consumers by standing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub total: u64,
    pub newest: u64,
    pub behind: u64,
    pub missing: u64,
    /// On a deprecated AMI (absent from findings.json written before it was counted).
    #[serde(default)]
    pub deprecated: u64,
    pub not_golden: u64,
    pub unknown: u64,
    /// Share on the newest version, in percent with one decimal; none when
    /// there is nothing to count.
    pub newest_percent: Option<f64>,
}

impl Standing {
    /// Worst first: missing, deprecated, then most versions behind.
    fn rank(self) -> (u8, i64) {
        match self {
            Standing::Missing => (0, 0),
            Standing::Deprecated => (1, 0),
            Standing::Behind(n) => (2, -n),
            Standing::Unknown => (3, 0),
            Standing::NotGolden => (4, 0),
            Standing::Newest => (5, 0),
        }
    }
}

impl Tally {
    /// `74.8% of 111`, or `none` when there is nothing to count.
    pub fn share_text(&self) -> String {
        self.newest_percent
            .map_or("none".to_string(), |p| format!("{p:.1}% of {}", self.total))
    }

    fn add(&mut self, standing: Standing) {
        self.total += 1;
        match standing {
            Standing::Newest => self.newest += 1,
            Standing::Behind(_) => self.behind += 1,
            Standing::Missing => self.missing += 1,
            Standing::Deprecated => self.deprecated += 1,
            Standing::NotGolden => self.not_golden += 1,
            Standing::Unknown => self.unknown += 1,
        }
        self.newest_percent =
            Some((self.newest as f64 * 1000.0 / self.total as f64).round() / 10.0);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountAdoption {
    pub account_id: String,
    pub account_name: String,
    pub instances: Tally,
    pub groups: Tally,
}

/// One bar of a chart: instances and groups in a bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    pub label: String,
    pub instances: u64,
    pub groups: u64,
}

/// What consumes an AMI, as the view counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerKind {
    Instance,
    AutoScalingGroup,
}

impl ConsumerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerKind::Instance => "instance",
            ConsumerKind::AutoScalingGroup => "auto-scaling-group",
        }
    }
}

impl std::fmt::Display for ConsumerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A consumer on a missing, deprecated or outdated AMI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offender {
    pub kind: ConsumerKind,
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub resource_id: String,
    pub image_id: String,
    pub family: String,
    /// None when the AMI is missing.
    pub versions_behind: Option<i64>,
    /// The AMI is deprecated (absent from findings.json written before it was counted).
    #[serde(default)]
    pub deprecated: bool,
    pub days_behind: Option<i64>,
    pub newest_image_id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Adoption {
    pub organization: AccountAdoption,
    /// Worst share first.
    pub accounts: Vec<AccountAdoption>,
    pub versions_behind: Vec<Bucket>,
    /// Age of the AMIs running instances and groups launch.
    pub age_in_use: Vec<Bucket>,
    /// Missing first, then most versions and days behind.
    pub worst: Vec<Offender>,
    /// Consumers on a missing or outdated AMI beyond `worst`.
    pub more_offenders: usize,
    /// Account-regions whose instances or groups were not read: the counts
    /// above leave out whatever runs there.
    pub unread: Vec<Unread>,
}

impl Default for AccountAdoption {
    fn default() -> Self {
        AccountAdoption {
            account_id: String::new(),
            account_name: "organization".to_string(),
            instances: Tally::default(),
            groups: Tally::default(),
        }
    }
}

/// What the inventory knows of one AMI.
struct ImageFacts<'a> {
    family: Option<&'a str>,
    state: Option<&'a str>,
    deprecated: Option<bool>,
    versions_behind: Option<i64>,
    days_behind: Option<i64>,
    age_days: Option<i64>,
    newest: Option<&'a str>,
}

/// What a consumer launches, as read.
struct Launch<'a> {
    image: Option<&'a str>,
    owner: Option<&'a str>,
    visible: Option<bool>,
    deregistered: bool,
}

struct Judge<'a> {
    images: HashMap<(&'a str, &'a str), ImageFacts<'a>>,
    organization: BTreeSet<&'a str>,
    /// False when ListAccounts failed: an owner not among the accounts
    /// known may still be a member.
    members_listed: bool,
}

impl<'a> Judge<'a> {
    fn standing<'s>(
        &'s self,
        region: &'a str,
        launch: &Launch<'a>,
    ) -> (Standing, Option<&'s ImageFacts<'a>>) {
        let Some(image) = launch.image else {
            return (Standing::Unknown, None);
        };
        let facts = self.images.get(&(region, image));
        let standing = match facts {
            _ if launch.deregistered => Standing::Missing,
            Some(f) if f.state.is_none() => Standing::Unknown,
            Some(f) if f.state != Some("available") => Standing::Missing,
            // As the fleet rules read it: deprecated whatever its version.
            Some(f) if f.deprecated == Some(true) => Standing::Deprecated,
            Some(f) => match f.versions_behind {
                Some(0) => Standing::Newest,
                Some(n) => Standing::Behind(n),
                None => Standing::Unknown,
            },
            None if launch.visible == Some(false) => Standing::Missing,
            // Outside the organization only when its members were listed.
            None => match launch.owner {
                Some(owner) if self.members_listed && !self.organization.contains(owner) => {
                    Standing::NotGolden
                }
                _ => Standing::Unknown,
            },
        };
        (standing, facts)
    }
}

const AGE_BUCKETS: [(&str, i64, i64); 5] = [
    ("0-30 days", i64::MIN, 30),
    ("31-90 days", 31, 90),
    ("91-180 days", 91, 180),
    ("181-365 days", 181, 365),
    ("over a year", 366, i64::MAX),
];

fn behind_label(standing: Standing) -> &'static str {
    match standing {
        Standing::Newest => "newest",
        Standing::Behind(1) => "1 behind",
        Standing::Behind(2) => "2 behind",
        Standing::Behind(3) => "3 behind",
        Standing::Behind(_) => "4+ behind",
        Standing::Missing => "AMI missing",
        Standing::Deprecated => "AMI deprecated",
        Standing::NotGolden => "not golden",
        Standing::Unknown => "unknown",
    }
}

const BEHIND_LABELS: [&str; 9] = [
    "newest",
    "1 behind",
    "2 behind",
    "3 behind",
    "4+ behind",
    "AMI missing",
    "AMI deprecated",
    "not golden",
    "unknown",
];

pub fn build(inventory: &Inventory) -> Result<Adoption> {
    let unread = super::unread_places(
        inventory,
        &[
            "ec2:DescribeInstances",
            "autoscaling:DescribeAutoScalingGroups",
        ],
    );
    let images = inventory.table("images")?;
    let columns = ImageColumns::read(images)?;
    let judge = Judge::new(inventory, &columns)?;
    let mut tallies = Tallies {
        directory: account_directory(inventory)?,
        ..Tallies::default()
    };

    // Running instances.
    let instances = inventory.table("instances")?;
    let col = |name| str_column(instances, name);
    let (i_account, i_region, i_id, i_image, i_owner, i_state, i_image_state) = (
        col("account_id")?,
        col("region")?,
        col("instance_id")?,
        col("image_id")?,
        col("image_owner_id")?,
        col("state")?,
        col("image_state")?,
    );
    let i_visible = bool_column(instances, "image_visible")?;
    for i in 0..instances.height() {
        let (Some(a), Some(r), Some(id)) = (i_account[i], i_region[i], i_id[i]) else {
            continue;
        };
        // Running, or not known to be anything else (the rules judge
        // those too).
        if i_state[i].is_some_and(|s| s != "running") {
            continue;
        }
        let launch = Launch {
            image: i_image[i],
            owner: i_owner[i],
            visible: i_visible[i],
            deregistered: i_image_state[i] == Some("deregistered"),
        };
        let (standing, facts) = judge.standing(r, &launch);
        let consumer = Consumer {
            kind: ConsumerKind::Instance,
            account: a,
            region: r,
            resource: id,
        };
        tallies.record(&consumer, Some(&launch), standing, facts);
    }

    // Auto Scaling groups, by what their launch sources launch.
    let launches = group_launches(inventory.table("asg_launch_sources")?)?;
    let groups = inventory.table("auto_scaling_groups")?;
    let (g_account, g_region, g_name) = (
        str_column(groups, "account_id")?,
        str_column(groups, "region")?,
        str_column(groups, "group_name")?,
    );
    for i in 0..groups.height() {
        let (Some(a), Some(r), Some(g)) = (g_account[i], g_region[i], g_name[i]) else {
            continue;
        };
        let consumer = Consumer {
            kind: ConsumerKind::AutoScalingGroup,
            account: a,
            region: r,
            resource: g,
        };
        // A group stands where its worst launch source stands; one with no
        // source read is unknown.
        let worst = launches.get(&(a, r, g)).and_then(|list| {
            list.iter()
                .map(|l| {
                    let (standing, facts) = judge.standing(r, l);
                    (standing, facts, l)
                })
                .min_by_key(|(standing, facts, _)| {
                    (
                        standing.rank(),
                        facts.and_then(|f| f.days_behind).map(|d| -d),
                    )
                })
        });
        match worst {
            Some((standing, facts, launch)) => {
                tallies.record(&consumer, Some(launch), standing, facts)
            }
            None => tallies.record(&consumer, None, Standing::Unknown, None),
        }
    }
    Ok(tallies.finish(unread))
}

/// The images' columns the view reads.
struct ImageColumns<'a> {
    region: Vec<Option<&'a str>>,
    image: Vec<Option<&'a str>>,
    family: Vec<Option<&'a str>>,
    state: Vec<Option<&'a str>>,
    newest: Vec<Option<&'a str>>,
    deprecated: Vec<Option<bool>>,
    behind: Vec<Option<i64>>,
    days: Vec<Option<i64>>,
    age: Vec<Option<i64>>,
}

impl<'a> ImageColumns<'a> {
    fn read(images: &'a polars::prelude::DataFrame) -> Result<Self> {
        Ok(ImageColumns {
            region: str_column(images, "region")?,
            image: str_column(images, "image_id")?,
            family: str_column(images, "family")?,
            state: str_column(images, "state")?,
            newest: str_column(images, "family_newest_image_id")?,
            deprecated: bool_column(images, "deprecated")?,
            behind: i64_column(images, "versions_behind")?,
            days: i64_column(images, "days_behind")?,
            age: i64_column(images, "age_days")?,
        })
    }
}

impl<'a> Judge<'a> {
    fn new(inventory: &'a Inventory, c: &ImageColumns<'a>) -> Result<Self> {
        let mut judge = Judge {
            images: HashMap::with_capacity(c.image.len()),
            organization: str_column(inventory.table("accounts")?, "account_id")?
                .into_iter()
                .flatten()
                .collect(),
            members_listed: !inventory.coverage().failed_calls.iter().any(|e| {
                e.operation
                    .eq_ignore_ascii_case("organizations:ListAccounts")
            }),
        };
        for i in 0..c.image.len() {
            if let (Some(r), Some(id)) = (c.region[i], c.image[i]) {
                judge.images.insert(
                    (r, id),
                    ImageFacts {
                        family: c.family[i],
                        state: c.state[i],
                        deprecated: c.deprecated[i],
                        versions_behind: c.behind[i],
                        days_behind: c.days[i],
                        age_days: c.age[i],
                        newest: c.newest[i],
                    },
                );
            }
        }
        Ok(judge)
    }
}

/// What each group (account, region, name) launches, one entry a source.
type GroupLaunches<'a> = HashMap<(&'a str, &'a str, &'a str), Vec<Launch<'a>>>;

/// What each Auto Scaling group's launch sources launch, by group. What a
/// source launches, `resolve:ssm:` followed to its parameter, is derived
/// once at load (launch_image_*), for the fleet rules and this view alike.
fn group_launches(sources: &polars::prelude::DataFrame) -> Result<GroupLaunches<'_>> {
    let scol = |name| str_column(sources, name);
    let (s_account, s_region, s_group, s_image, s_owner) = (
        scol("account_id")?,
        scol("region")?,
        scol("group_name")?,
        scol("launch_image_id")?,
        scol("launch_image_owner_id")?,
    );
    let s_visible = bool_column(sources, "launch_image_visible")?;
    let mut launches = GroupLaunches::new();
    for i in 0..sources.height() {
        let (Some(a), Some(r), Some(g)) = (s_account[i], s_region[i], s_group[i]) else {
            continue;
        };
        launches.entry((a, r, g)).or_default().push(Launch {
            image: s_image[i],
            owner: s_owner[i],
            visible: s_visible[i],
            deregistered: false,
        });
    }
    Ok(launches)
}

/// One consumer counted.
struct Consumer<'a> {
    kind: ConsumerKind,
    account: &'a str,
    region: &'a str,
    resource: &'a str,
}

/// The counts as consumers are recorded.
#[derive(Default)]
struct Tallies {
    directory: BTreeMap<String, super::AccountInfo>,
    organization: AccountAdoption,
    accounts: BTreeMap<String, AccountAdoption>,
    behind_buckets: BTreeMap<&'static str, (u64, u64)>,
    age_buckets: BTreeMap<&'static str, (u64, u64)>,
    offenders: Vec<(Standing, i64, Offender)>,
}

impl Tallies {
    fn record(
        &mut self,
        consumer: &Consumer,
        launch: Option<&Launch>,
        standing: Standing,
        facts: Option<&ImageFacts>,
    ) {
        let is_instance = consumer.kind == ConsumerKind::Instance;
        let bump = |pair: &mut (u64, u64)| {
            if is_instance {
                pair.0 += 1
            } else {
                pair.1 += 1
            }
        };
        bump(
            self.behind_buckets
                .entry(behind_label(standing))
                .or_default(),
        );
        let age_label = facts
            .and_then(|f| f.age_days)
            .and_then(|d| AGE_BUCKETS.iter().find(|(_, lo, hi)| d >= *lo && d <= *hi))
            .map_or("age not known", |b| b.0);
        bump(self.age_buckets.entry(age_label).or_default());
        let name = self
            .directory
            .get(consumer.account)
            .map(|a| a.name.clone())
            .unwrap_or_default();
        let entry = self
            .accounts
            .entry(consumer.account.to_string())
            .or_insert_with(|| AccountAdoption {
                account_id: consumer.account.to_string(),
                account_name: name.clone(),
                ..AccountAdoption::default()
            });
        let tallies = [&mut entry.instances, &mut self.organization.instances];
        let group_tallies = [&mut entry.groups, &mut self.organization.groups];
        for t in if is_instance { tallies } else { group_tallies } {
            t.add(standing);
        }
        if matches!(
            standing,
            Standing::Missing | Standing::Deprecated | Standing::Behind(_)
        ) {
            self.offenders.push((
                standing,
                facts.and_then(|f| f.days_behind).unwrap_or(0),
                Offender {
                    kind: consumer.kind,
                    account_id: consumer.account.to_string(),
                    account_name: name,
                    region: consumer.region.to_string(),
                    resource_id: consumer.resource.to_string(),
                    image_id: launch.and_then(|l| l.image).unwrap_or_default().to_string(),
                    family: facts.and_then(|f| f.family).unwrap_or_default().to_string(),
                    versions_behind: match standing {
                        Standing::Missing => None,
                        _ => facts.and_then(|f| f.versions_behind),
                    },
                    deprecated: standing == Standing::Deprecated,
                    days_behind: facts.and_then(|f| f.days_behind),
                    newest_image_id: facts.and_then(|f| f.newest).unwrap_or_default().to_string(),
                },
            ));
        }
    }

    /// The view: accounts worst share first, offenders worst first.
    fn finish(self, unread: Vec<Unread>) -> Adoption {
        let mut accounts: Vec<AccountAdoption> = self.accounts.into_values().collect();
        let share = |a: &AccountAdoption| {
            let t = a.instances.total + a.groups.total;
            let n = a.instances.newest + a.groups.newest;
            if t == 0 { 1.0 } else { n as f64 / t as f64 }
        };
        accounts.sort_by(|x, y| {
            share(x)
                .total_cmp(&share(y))
                .then_with(|| x.account_id.cmp(&y.account_id))
        });
        let mut offenders = self.offenders;
        offenders.sort_by(|x, y| {
            x.0.rank()
                .cmp(&y.0.rank())
                .then_with(|| y.1.cmp(&x.1))
                .then_with(|| x.2.account_id.cmp(&y.2.account_id))
                .then_with(|| x.2.region.cmp(&y.2.region))
                .then_with(|| x.2.resource_id.cmp(&y.2.resource_id))
        });
        let more_offenders = offenders.len().saturating_sub(OFFENDERS_LISTED);
        let buckets = |labels: &[&str], counts: &BTreeMap<&str, (u64, u64)>| -> Vec<Bucket> {
            labels
                .iter()
                .map(|label| {
                    let (instances, groups) = counts.get(label).copied().unwrap_or_default();
                    Bucket {
                        label: label.to_string(),
                        instances,
                        groups,
                    }
                })
                .collect()
        };
        let age_labels: Vec<&str> = AGE_BUCKETS
            .iter()
            .map(|b| b.0)
            .chain(["age not known"])
            .collect();
        Adoption {
            organization: self.organization,
            accounts,
            versions_behind: buckets(&BEHIND_LABELS, &self.behind_buckets),
            age_in_use: buckets(&age_labels, &self.age_buckets),
            worst: offenders
                .into_iter()
                .take(OFFENDERS_LISTED)
                .map(|o| o.2)
                .collect(),
            more_offenders,
            unread,
        }
    }
}
