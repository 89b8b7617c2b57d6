//! What launches which AMI, and where that is not known in full.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::uses::{self, Gaps, RECIPE_OPERATIONS};
use super::{stage, table};
use crate::error::Result;
use crate::inventory::coverage::{Coverage, ScanStatus};
use crate::inventory::{bool_column, i64_column, str_column};

/// The calls that find what launches an AMI: instances, launch templates,
/// Auto Scaling groups and launch configurations, SSM parameters.
pub const CONSUMER_OPERATIONS: [&str; 7] = [
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "ssm:DescribeParameters",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
];

/// The usage model, derived once: `launches` (what will launch which AMI),
/// `consumer_gaps` (where that is not known in full),
/// `image_consumer_gaps` (for each image, where someone who may launch it
/// was not read), `image_uses` (launches, EC2's references and pipelines'
/// recipes) and `image_use_gaps` (for each image, where a launch or what a
/// pipeline builds on was not read).
pub(in crate::inventory) fn usage(
    tables: &BTreeMap<&'static str, DataFrame>,
    coverage: &Coverage,
    now: i64,
) -> Result<Usage> {
    let mut launches = Launches::default();
    let mut gaps = Gaps::new();
    instance_launches(tables, &mut launches, &mut gaps)?;
    template_launches(tables, &mut launches, &mut gaps)?;
    group_launches(tables, &mut launches, &mut gaps)?;
    parameter_launches(tables, &mut launches, &mut gaps)?;
    let accounts = table(tables, "accounts")?;
    coverage_gaps(&mut gaps, coverage, accounts, &CONSUMER_OPERATIONS)?;
    let per_image = image_gaps(tables, &gaps, coverage)?;
    let launches = launches.finish()?;
    let mut recipe_gaps = Gaps::new();
    let uses = uses::image_uses(tables, &launches, &mut recipe_gaps, now)?;
    coverage_gaps(&mut recipe_gaps, coverage, accounts, &RECIPE_OPERATIONS)?;
    // Where no recipe adds a gap, the gaps of use are those of launches.
    let recipe_only: Gaps = recipe_gaps
        .into_iter()
        .filter(|(place, _)| !gaps.contains_key(place))
        .collect();
    let per_image_use = if recipe_only.is_empty() {
        per_image.clone()
    } else {
        let mut all = gaps.clone();
        all.extend(recipe_only);
        image_gaps(tables, &all, coverage)?
    };
    Ok(Usage {
        launches,
        consumer_gaps: gaps_frame(gaps)?,
        image_consumer_gaps: per_image,
        image_uses: uses,
        image_use_gaps: per_image_use,
    })
}

/// What instances launched (their AMI launches again on a restart or a
/// replacement).
fn instance_launches(
    tables: &BTreeMap<&'static str, DataFrame>,
    launches: &mut Launches,
    gaps: &mut Gaps,
) -> Result<()> {
    let instances = table(tables, "instances")?;
    let (account, region, id, image, state) = (
        str_column(instances, "account_id")?,
        str_column(instances, "region")?,
        str_column(instances, "instance_id")?,
        str_column(instances, "image_id")?,
        str_column(instances, "state")?,
    );
    for i in 0..instances.height() {
        // Terminated and terminating instances launch nothing again; an
        // instance whose state is not known may be running.
        if state[i].is_some_and(|s| s == "terminated" || s == "shutting-down") {
            continue;
        }
        match image[i] {
            Some(image) => launches.push(account[i], region[i], image, "instance", id[i]),
            None => unresolved(gaps, account[i], region[i], || {
                format!("the AMI of instance {} is not known", id[i].unwrap_or("?"))
            }),
        }
    }
    Ok(())
}

/// What launch templates' $Default and $Latest versions launch.
fn template_launches(
    tables: &BTreeMap<&'static str, DataFrame>,
    launches: &mut Launches,
    gaps: &mut Gaps,
) -> Result<()> {
    let templates = table(tables, "launch_templates")?;
    let (account, region, id, default, latest) = (
        str_column(templates, "account_id")?,
        str_column(templates, "region")?,
        str_column(templates, "launch_template_id")?,
        bool_column(templates, "is_default")?,
        bool_column(templates, "is_latest")?,
    );
    let (image, known, parameter) = (
        str_column(templates, "launch_image_id")?,
        bool_column(templates, "launch_image_known")?,
        str_column(templates, "image_parameter")?,
    );
    for i in 0..templates.height() {
        // $Default launches unless a version is named; $Latest is what
        // `$Latest` references get. A row whose role is not known counts.
        if default[i] == Some(false) && latest[i] == Some(false) {
            continue;
        }
        match (image[i], known[i]) {
            (Some(image), _) => {
                launches.push(account[i], region[i], image, "launch-template", id[i])
            }
            (None, Some(true)) => {}
            _ => unresolved(gaps, account[i], region[i], || {
                format!(
                    "what launch template {} launches is not known{}",
                    id[i].unwrap_or("?"),
                    parameter[i]
                        .map(|p| format!(" ({p} was not read)"))
                        .unwrap_or_default()
                )
            }),
        }
    }
    Ok(())
}

/// What Auto Scaling groups' launch sources launch, and groups whose
/// sources were not resolved at all.
fn group_launches(
    tables: &BTreeMap<&'static str, DataFrame>,
    launches: &mut Launches,
    gaps: &mut Gaps,
) -> Result<()> {
    let sources = table(tables, "asg_launch_sources")?;
    let (account, region, group, image, reference) = (
        str_column(sources, "account_id")?,
        str_column(sources, "region")?,
        str_column(sources, "group_name")?,
        str_column(sources, "launch_image_id")?,
        str_column(sources, "reference")?,
    );
    for i in 0..sources.height() {
        match image[i] {
            Some(image) => {
                launches.push(account[i], region[i], image, "auto-scaling-group", group[i])
            }
            None => unresolved(gaps, account[i], region[i], || {
                format!(
                    "what {} of Auto Scaling group {} launches is not known",
                    reference[i].unwrap_or("a launch source"),
                    group[i].unwrap_or("?")
                )
            }),
        }
    }
    // A group whose launch sources were not resolved at all.
    let groups = table(tables, "auto_scaling_groups")?;
    let with_sources: PlHashSet<(Option<&str>, Option<&str>, Option<&str>)> = {
        let (a, r, g) = (
            str_column(sources, "account_id")?,
            str_column(sources, "region")?,
            str_column(sources, "group_name")?,
        );
        (0..sources.height()).map(|i| (a[i], r[i], g[i])).collect()
    };
    let (account, region, group) = (
        str_column(groups, "account_id")?,
        str_column(groups, "region")?,
        str_column(groups, "group_name")?,
    );
    for i in 0..groups.height() {
        if !with_sources.contains(&(account[i], region[i], group[i])) {
            unresolved(gaps, account[i], region[i], || {
                format!(
                    "what Auto Scaling group {} launches is not known",
                    group[i].unwrap_or("?")
                )
            });
        }
    }
    Ok(())
}

/// Which AMIs the AMI parameters name.
fn parameter_launches(
    tables: &BTreeMap<&'static str, DataFrame>,
    launches: &mut Launches,
    gaps: &mut Gaps,
) -> Result<()> {
    let parameters = table(tables, "ssm_parameters")?;
    let (account, region, name, image, read, data_type, parameter_type) = (
        str_column(parameters, "account_id")?,
        str_column(parameters, "region")?,
        str_column(parameters, "name")?,
        str_column(parameters, "image_id")?,
        bool_column(parameters, "value_read")?,
        str_column(parameters, "data_type")?,
        str_column(parameters, "parameter_type")?,
    );
    for i in 0..parameters.height() {
        match (image[i], read[i]) {
            (Some(image), _) => {
                launches.push(account[i], region[i], image, "ssm-parameter", name[i])
            }
            // Read, and no AMI id in it; or a SecureString, never read
            // (it cannot be of data type aws:ec2:image).
            (None, Some(true)) => {}
            (None, Some(false))
                if parameter_type[i] == Some("SecureString")
                    && data_type[i] != Some("aws:ec2:image") => {}
            _ => unresolved(gaps, account[i], region[i], || {
                format!(
                    "the value of AMI parameter {} was not read",
                    name[i].unwrap_or("?")
                )
            }),
        }
    }
    Ok(())
}

/// The `consumer_gaps` table: one reason per account-region.
fn gaps_frame(gaps: Gaps) -> Result<DataFrame> {
    let (mut account, mut region, mut reason) = (Vec::new(), Vec::new(), Vec::new());
    for ((a, r), why) in gaps {
        account.push(a);
        region.push(r);
        reason.push(why);
    }
    let height = account.len();
    DataFrame::new(
        height,
        vec![
            Column::new("account_id".into(), account),
            Column::new("region".into(), region),
            Column::new("reason".into(), reason),
        ],
    )
    .map_err(|e| stage("consumer_gaps", &e))
}

/// The derived tables of the usage model.
pub(in crate::inventory) struct Usage {
    pub launches: DataFrame,
    pub consumer_gaps: DataFrame,
    pub image_consumer_gaps: DataFrame,
    pub image_uses: DataFrame,
    pub image_use_gaps: DataFrame,
}

/// For each image, the first account-region in its region where an
/// account that may launch it was not read in full: its owner; the
/// accounts its launch permissions name; every account when it is shared
/// with the organization, an OU or everyone, or when its permissions or
/// public flag are not known.
fn image_gaps(
    tables: &BTreeMap<&'static str, DataFrame>,
    gaps: &Gaps,
    coverage: &Coverage,
) -> Result<DataFrame> {
    let mut by_region: PlHashMap<&str, Vec<(&str, &str)>> = PlHashMap::default();
    for ((a, r), why) in gaps {
        by_region
            .entry(r.as_str())
            .or_default()
            .push((a.as_str(), why.as_str()));
    }
    let launchers = launchers(table(tables, "launch_permissions")?)?;
    let idle = idle_accounts(table(tables, "accounts")?)?;
    let visited = |id: &str| coverage.accounts.contains(id) || idle.contains(id);
    let images = table(tables, "images")?;
    let (account, region, image, public, count) = (
        str_column(images, "account_id")?,
        str_column(images, "region")?,
        str_column(images, "image_id")?,
        bool_column(images, "public")?,
        i64_column(images, "launch_permission_count")?,
    );
    let (mut out_account, mut out_region, mut out_image, mut out_reason) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..images.height() {
        let (Some(a), Some(r), Some(id)) = (account[i], region[i], image[i]) else {
            continue;
        };
        let everyone = public[i] != Some(false) || count[i].is_none();
        let named = launchers.get(&(a, r, id));
        // Beyond the account-regions read: an account its permissions name
        // that the audit never visited, or, where it is shared with the
        // organization (an OU, everyone), members the audit could not list.
        let unvisited =
            match named {
                Some(Some(set)) => set.iter().filter(|u| !visited(u)).min().map(|u| {
                    format!("{u}: named in its launch permissions, not read by this audit")
                }),
                _ => None,
            };
        let unlisted = (everyone || matches!(named, Some(None))) && !coverage.members_listed;
        // Public, or permissions not read: any AWS account may launch it,
        // and accounts outside the organization are never read.
        let anyone = match (public[i], count[i]) {
            (Some(true), _) => Some("it is public: any AWS account may launch it"),
            (_, None) => {
                Some("its launch permissions were not read: it may be shared with any account")
            }
            _ => None,
        };
        let beyond = unvisited
            .or_else(|| anyone.map(str::to_string))
            .or_else(|| {
                unlisted.then(|| {
                    "it is shared beyond the accounts read, and the organization's member accounts were not listed".to_string()
                })
            });
        if let Some(why) = beyond {
            out_account.push(a.to_string());
            out_region.push(r.to_string());
            out_image.push(id.to_string());
            out_reason.push(why);
            continue;
        }
        let Some(places) = by_region.get(r) else {
            continue;
        };
        let may_launch = |other: &str| {
            other == a
                || everyone
                || match named {
                    Some(Some(set)) => set.contains(other),
                    Some(None) => true,
                    None => false,
                }
        };
        if let Some((other, why)) = places.iter().find(|(other, _)| may_launch(other)) {
            out_account.push(a.to_string());
            out_region.push(r.to_string());
            out_image.push(id.to_string());
            out_reason.push(format!("{other}: {why}"));
        }
    }
    let height = out_account.len();
    DataFrame::new(
        height,
        vec![
            Column::new("account_id".into(), out_account),
            Column::new("region".into(), out_region),
            Column::new("image_id".into(), out_image),
            Column::new("reason".into(), out_reason),
        ],
    )
    .map_err(|e| stage("image_consumer_gaps", &e))
}

/// Who may launch each image: (owner, region, image) -> Some(the accounts
/// named) or None (everyone, the organization or an OU).
fn launchers(permissions: &DataFrame) -> Result<Launchers<'_>> {
    let mut launchers: Launchers = PlHashMap::default();
    let (account, region, image, group, user, org, ou) = (
        str_column(permissions, "account_id")?,
        str_column(permissions, "region")?,
        str_column(permissions, "image_id")?,
        str_column(permissions, "group")?,
        str_column(permissions, "user_id")?,
        str_column(permissions, "organization_arn")?,
        str_column(permissions, "organizational_unit_arn")?,
    );
    for k in 0..permissions.height() {
        let (Some(a), Some(r), Some(i)) = (account[k], region[k], image[k]) else {
            continue;
        };
        let entry = launchers
            .entry((a, r, i))
            .or_insert_with(|| Some(PlHashSet::default()));
        match (
            user[k],
            group[k].is_some() || org[k].is_some() || ou[k].is_some(),
        ) {
            (Some(u), false) => {
                if let Some(named) = entry {
                    named.insert(u);
                }
            }
            _ => *entry = None,
        }
    }
    Ok(launchers)
}

type Launchers<'a> = PlHashMap<(&'a str, &'a str, &'a str), Option<PlHashSet<&'a str>>>;

/// Accounts known not to launch anything: members not ACTIVE.
fn idle_accounts(accounts: &DataFrame) -> Result<PlHashSet<&str>> {
    let ids = str_column(accounts, "account_id")?;
    let statuses = str_column(accounts, "status")?;
    Ok(ids
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.is_some_and(|s| s != "ACTIVE"))
        .filter_map(|(id, _)| *id)
        .collect())
}

/// Rows of the `launches` table, column by column.
#[derive(Default)]
struct Launches {
    account: Vec<String>,
    region: Vec<String>,
    image: Vec<String>,
    kind: Vec<&'static str>,
    id: Vec<String>,
}

impl Launches {
    fn push(
        &mut self,
        account: Option<&str>,
        region: Option<&str>,
        image: &str,
        kind: &'static str,
        id: Option<&str>,
    ) {
        let (Some(account), Some(region), Some(id)) = (account, region, id) else {
            return;
        };
        self.account.push(account.to_string());
        self.region.push(region.to_string());
        self.image.push(image.to_string());
        self.kind.push(kind);
        self.id.push(id.to_string());
    }

    fn finish(self) -> Result<DataFrame> {
        let height = self.account.len();
        DataFrame::new(
            height,
            vec![
                Column::new("account_id".into(), self.account),
                Column::new("region".into(), self.region),
                Column::new("image_id".into(), self.image),
                Column::new("consumer_type".into(), self.kind),
                Column::new("consumer_id".into(), self.id),
            ],
        )
        .map_err(|e| stage("launches", &e))
    }
}

/// A consumer whose AMI is not known makes its account-region a gap.
fn unresolved(
    gaps: &mut Gaps,
    account: Option<&str>,
    region: Option<&str>,
    why: impl FnOnce() -> String,
) {
    if let (Some(a), Some(r)) = (account, region) {
        gaps.entry((a.to_string(), r.to_string()))
            .or_insert_with(why);
    }
}

/// The account-regions whose consumers were not read: not scanned, a
/// consumer call failed (for the whole account-region or one resource) or
/// was never made (an older inventory), and every region of the scope in
/// each ACTIVE member account outside the scope.
fn coverage_gaps(
    gaps: &mut Gaps,
    coverage: &Coverage,
    accounts: &DataFrame,
    operations: &[&str],
) -> Result<()> {
    let never: Vec<&str> = operations
        .iter()
        .copied()
        .filter(|op| coverage.not_collected.contains(&op.to_ascii_lowercase()))
        .collect();
    let mut regions: BTreeSet<&str> = BTreeSet::new();
    for ((account, region), (status, why)) in &coverage.regions {
        if region.is_empty() {
            continue;
        }
        regions.insert(region);
        let key = (account.clone(), region.clone());
        match status {
            ScanStatus::NotOptedIn => {}
            ScanStatus::Failed | ScanStatus::Missing => {
                gaps.insert(key, why.clone());
            }
            ScanStatus::Ok | ScanStatus::Partial => {
                if let Some(op) = never.first() {
                    gaps.insert(
                        key,
                        format!(
                            "{op} was not collected by this inventory (schema version {})",
                            coverage.written_with
                        ),
                    );
                }
            }
        }
    }
    for e in &coverage.failed_calls {
        if !operations
            .iter()
            .any(|op| op.eq_ignore_ascii_case(&e.operation))
        {
            continue;
        }
        let why = format!("{} failed ({})", e.operation, e.error_code);
        let places: Vec<String> = match &e.region {
            Some(r) => vec![r.clone()],
            None => coverage
                .regions_of(&e.account_id)
                .map(str::to_string)
                .collect(),
        };
        for region in places {
            if coverage.status(&e.account_id, &region) == Some(ScanStatus::NotOptedIn) {
                continue;
            }
            gaps.entry((e.account_id.clone(), region))
                .or_insert_with(|| why.clone());
        }
    }
    // Members of the organization the audit did not visit may run anything.
    let ids = str_column(accounts, "account_id")?;
    let statuses = str_column(accounts, "status")?;
    let visited: PlHashSet<&str> = coverage.accounts.iter().map(String::as_str).collect();
    for k in 0..accounts.height() {
        let Some(id) = ids[k] else { continue };
        if visited.contains(id) || statuses[k].is_some_and(|s| s != "ACTIVE") {
            continue;
        }
        for region in &regions {
            gaps.entry((id.to_string(), region.to_string()))
                .or_insert_with(|| {
                    "a member account of the organization outside this audit's scope".to_string()
                });
        }
    }
    Ok(())
}
