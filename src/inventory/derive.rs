//! Derived columns and tables: facts computed once, at load, from the
//! stored ones and the inventory's `collected_at`, so rules and reports
//! read one answer instead of each computing its own.
//!
//! - per table: ages (`age_days`, `open_days`), `deprecated`, `family`;
//! - the versions of each image family ([`family_versions`]);
//! - across tables, what launches which AMI: the AMI a launch template
//!   version or an Auto Scaling launch source will launch, `resolve:ssm:`
//!   followed to the parameter ([`launch_images`]); every consumer of an
//!   AMI in one table, `launches`; and where the consumers were not read in
//!   full, `consumer_gaps` ([`usage`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use polars::prelude::*;

use super::coverage::{Coverage, ScanStatus};
use super::{FAMILY_SUFFIX, bool_column, i64_column, str_column};
use crate::error::{Error, Result, polars_message};

/// Adds the per-table derived columns of [`super::schema::DERIVED`] to a
/// table, from its stored columns and `now` (the inventory's collected_at).
pub(super) fn columns(name: &str, df: &mut DataFrame, now: i64) -> Result<()> {
    let days = |c: &str| (lit(now) - col(c).cast(DataType::Int64)).floor_div(lit(86_400_000i64));
    let columns = match name {
        "images" => vec![
            days("creation_date").alias("age_days"),
            (col("deprecation_time")
                .cast(DataType::Int64)
                .lt_eq(lit(now)))
            .fill_null(lit(false))
            .alias("deprecated"),
            days("last_launched_time").alias("days_since_last_launch"),
            col("name")
                .str()
                .replace_all(lit(FAMILY_SUFFIX), lit(""), false)
                .alias("family"),
        ],
        "inspector_findings" => vec![days("first_observed_at").alias("open_days")],
        "pipeline_images" => vec![days("date_created").alias("age_days")],
        _ => return Ok(()),
    };
    *df = std::mem::take(df)
        .lazy()
        .with_columns(columns)
        .collect()
        .map_err(|e| stage(name, &e))?;
    Ok(())
}

fn stage(table: &str, e: &PolarsError) -> Error {
    Error::Internal(format!(
        "derived columns of `{table}`: {}",
        polars_message(e)
    ))
}

/// What the inventory knows of the images, to order the versions of a family.
pub(super) struct Lineage {
    /// Whether `images.source_instance_id` was collected (schema version 5
    /// on): only then does its absence say an image is a copy.
    pub instance_ids_collected: bool,
}

/// The image a version was first built as.
#[derive(Clone, Copy)]
struct Original<'a> {
    image: &'a str,
    region: &'a str,
    /// Its creation, in whole seconds.
    built: i64,
}

/// An image as the ordering reads it.
struct Version<'a> {
    family: Option<(&'a str, &'a str, &'a str)>,
    /// Some(true): available; Some(false): not a version (failed,
    /// deregistered, ...); None: the state is not known.
    available: Option<bool>,
    /// Its own CreationDate, in whole seconds: when it arrived in this
    /// account-region (a copy's is the copy's).
    arrived: Option<i64>,
    /// When the version was first built, in whole seconds: its own
    /// creation, or for a copy its original's. None: not known.
    built: Option<i64>,
}

/// Orders the versions of each family and adds `is_copy`, `version_built_at`,
/// `family_newest_image_id`, `versions_behind` and `days_behind` to `images`.
///
/// A family is an owner account's images in one region with the same
/// `family`; its versions are its `available` images. Versions are ordered
/// by when they were first built: an image's own `creation_date`, but for
/// a copy (CopyImage stamps the copy's own CreationDate) the creation of
/// the image it was copied from, followed through copies in the inventory,
/// else the source's creation from `image_ancestry`. CreationDate has a
/// resolution of one second, so two versions built in the same second are
/// not ordered.
///
/// Nothing is guessed: an image whose place cannot be known (a tie, a
/// version whose build time or state is not known and that could be newer)
/// leaves `versions_behind` and `days_behind` null for the images it could
/// be newer than, and `family_newest_image_id` null for the family when it
/// could be the newest.
pub(super) fn family_versions(
    df: &mut DataFrame,
    ancestry: &DataFrame,
    lineage: &Lineage,
    now: i64,
) -> Result<()> {
    let text = |name: &str| str_column(df, name);
    let (account, region, family, image, state) = (
        text("account_id")?,
        text("region")?,
        text("family")?,
        text("image_id")?,
        text("state")?,
    );
    let (source, source_region, source_instance) = (
        text("source_image_id")?,
        text("source_image_region")?,
        text("source_instance_id")?,
    );
    let created = i64_column(df, "creation_date")?;
    let seconds = |ms: Option<i64>| ms.map(|t| t.div_euclid(1000));

    // Where each image is, to follow a copy to its source.
    let mut at: HashMap<(&str, &str), usize> = HashMap::with_capacity(df.height());
    for i in 0..df.height() {
        if let (Some(id), Some(r)) = (image[i], region[i]) {
            at.insert((id, r), i);
        }
    }
    // The source GetImageAncestry named for copies whose source is
    // elsewhere, when it is the root of the chain: (account, region, image)
    // -> (source id, source region, its creation). A source that has a
    // source of its own may be a copy as well as the original build (the
    // chain does not say how each link was made): not taken.
    type Root<'a> = (Option<&'a str>, Option<&'a str>, Option<i64>);
    let mut nearest: HashMap<(&str, &str, &str), Option<Root>> = HashMap::new();
    {
        let a_account = str_column(ancestry, "account_id")?;
        let a_region = str_column(ancestry, "region")?;
        let a_image = str_column(ancestry, "image_id")?;
        let depth = i64_column(ancestry, "depth")?;
        let a_id = str_column(ancestry, "ancestor_image_id")?;
        let a_at = str_column(ancestry, "ancestor_region")?;
        let a_created = i64_column(ancestry, "creation_date")?;
        for k in 0..ancestry.height() {
            let (Some(a), Some(r), Some(id)) = (a_account[k], a_region[k], a_image[k]) else {
                continue;
            };
            match depth[k] {
                Some(1) => {
                    nearest
                        .entry((a, r, id))
                        .or_insert(Some((a_id[k], a_at[k], a_created[k])));
                }
                // The source has ancestors: whether it is the original
                // build is not known.
                _ => {
                    nearest.insert((a, r, id), None);
                }
            }
        }
    }
    // Whether row i is a copy: Some(true), Some(false), or None (not known).
    let is_copy = |i: usize| -> Option<bool> {
        if source[i].is_none() || source_instance[i].is_some() {
            return Some(false);
        }
        if lineage.instance_ids_collected {
            return Some(true);
        }
        // Older inventories did not collect SourceInstanceId. A source in
        // another region can only be a copy's: CreateImage's source is the
        // AMI its instance was launched from, in the instance's region.
        match source_region[i] {
            Some(r) if Some(r) != region[i] => Some(true),
            _ => None,
        }
    };
    // Row i's original (the image first built, where it is, when, to the
    // second), following copies; bounded, so a cycle planted in a hostile
    // inventory ends as "not known".
    let original = |start: usize| -> Option<Original> {
        let mut i = start;
        for _ in 0..64 {
            match is_copy(i)? {
                false => {
                    return Some(Original {
                        image: image[i]?,
                        region: region[i]?,
                        built: seconds(created[i])?,
                    });
                }
                true => {
                    let source_id = source[i]?;
                    let source_at = source_region[i].or(region[i])?;
                    match at.get(&(source_id, source_at)) {
                        Some(&j) => i = j,
                        None => {
                            let key = (account[i]?, region[i]?, image[i]?);
                            let (id, at, created) = nearest.get(&key).copied().flatten()?;
                            return Some(Original {
                                image: id?,
                                region: at.unwrap_or(source_at),
                                built: seconds(created)?,
                            });
                        }
                    }
                }
            }
        }
        None
    };
    let originals: Vec<Option<Original>> = (0..df.height()).map(original).collect();
    let versions: Vec<Version> = (0..df.height())
        .map(|i| Version {
            family: match (account[i], region[i], family[i]) {
                (Some(a), Some(r), Some(f)) => Some((a, r, f)),
                _ => None,
            },
            available: state[i].map(|s| s == "available"),
            arrived: seconds(created[i]),
            built: originals[i].as_ref().map(|o| o.built),
        })
        .collect();

    let mut members: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (i, v) in versions.iter().enumerate() {
        if let Some(f) = v.family
            && v.available != Some(false)
        {
            members.entry(f).or_default().push(i);
        }
    }
    let n = df.height();
    let mut newest: Vec<Option<&str>> = vec![None; n];
    let mut behind: Vec<Option<i64>> = vec![None; n];
    let mut days: Vec<Option<i64>> = vec![None; n];
    let built_ms: Vec<Option<i64>> = versions.iter().map(|v| v.built.map(|s| s * 1000)).collect();
    for list in members.values() {
        // The family's newest, when it is certain.
        let top = newest_of(list, &versions);
        for &x in list {
            newest[x] = top.and_then(|t| image[t]);
            let (Some(true), Some(bx)) = (versions[x].available, versions[x].built) else {
                continue;
            };
            if let Some((count, first_arrival)) = newer_than(x, bx, list, &versions) {
                behind[x] = Some(count);
                days[x] = Some(match first_arrival {
                    Some(t) => (now - t * 1000).max(0).div_euclid(86_400_000),
                    None => 0,
                });
            }
        }
    }
    let copied: Vec<Option<bool>> = (0..n).map(is_copy).collect();
    let original_id: Vec<Option<&str>> = originals
        .iter()
        .map(|o| o.as_ref().map(|o| o.image))
        .collect();
    let original_region: Vec<Option<&str>> = originals
        .iter()
        .map(|o| o.as_ref().map(|o| o.region))
        .collect();
    let columns = [
        Column::new("is_copy".into(), copied),
        Column::new("original_image_id".into(), original_id),
        Column::new("original_region".into(), original_region),
        Column::new("version_built_at".into(), built_ms)
            .cast(&super::timestamp_dtype())
            .map_err(|e| stage("images", &e))?,
        Column::new("family_newest_image_id".into(), newest),
        Column::new("versions_behind".into(), behind),
        Column::new("days_behind".into(), days),
    ];
    for c in columns {
        df.with_column(c).map_err(|e| stage("images", &e))?;
    }
    Ok(())
}

/// The versions certainly newer than `x` (built at `bx`): how many, and
/// when the first of them arrived (seconds; None when there is none).
/// None when that is not known: a version that could be newer (same
/// second, unknown build time or state) or a newer one whose arrival is
/// not known.
fn newer_than(
    x: usize,
    bx: i64,
    family: &[usize],
    versions: &[Version],
) -> Option<(i64, Option<i64>)> {
    let mut count = 0;
    let mut first: Option<i64> = None;
    for &y in family {
        if y == x {
            continue;
        }
        let v = &versions[y];
        match (v.available, v.built) {
            // Certainly older: nothing to count.
            (_, Some(by)) if by < bx => {}
            (Some(true), Some(by)) if by > bx => {
                count += 1;
                let arrived = v.arrived?;
                first = Some(first.map_or(arrived, |f: i64| f.min(arrived)));
            }
            // Its build time is not known, but it arrived here before `x`
            // was first built: it is older whatever it is a copy of.
            (_, None) if v.arrived.is_some_and(|a| a < bx) => {}
            // A tie, a version of unknown state that may be newer, or one
            // whose build time is not known: the order is not known.
            _ => return None,
        }
    }
    Some((count, first))
}

/// The family's newest version, when certain: available, with a known
/// build time later than every other member that might be a version.
fn newest_of(family: &[usize], versions: &[Version]) -> Option<usize> {
    let candidate = family
        .iter()
        .copied()
        .filter(|&i| versions[i].available == Some(true) && versions[i].built.is_some())
        .max_by_key(|&i| versions[i].built)?;
    let top = versions[candidate].built?;
    let certain = family.iter().all(|&y| {
        y == candidate
            || match versions[y].built {
                Some(by) => by < top,
                None => versions[y].arrived.is_some_and(|a| a < top),
            }
    });
    certain.then_some(candidate)
}

/// The AMI each launch template version and Auto Scaling launch source
/// will launch: its own `image_id`, or for `resolve:ssm:<name>` the value
/// of that parameter in the same account-region when it was read. Adds
/// `launch_image_id`, `launch_image_owner_id` and `launch_image_visible`
/// (null where not known: the parameter was not read, or names a version
/// or label, of which only the current value is collected), and
/// `launch_image_known`: whether what it launches is known, which is also
/// true for a template version that names no AMI at all.
pub(super) fn launch_images(
    tables: &mut BTreeMap<&'static str, DataFrame>,
    parameters_collected: bool,
) -> Result<()> {
    type Held<'a> = (Option<&'a str>, Option<&'a str>, Option<bool>);
    let parameters = table(tables, "ssm_parameters")?.clone();
    let p_account = str_column(&parameters, "account_id")?;
    let p_region = str_column(&parameters, "region")?;
    let p_name = str_column(&parameters, "name")?;
    let p_read = bool_column(&parameters, "value_read")?;
    let p_image = str_column(&parameters, "image_id")?;
    let p_owner = str_column(&parameters, "image_owner_id")?;
    let p_visible = bool_column(&parameters, "image_visible")?;
    let mut held: HashMap<(&str, &str, &str), Held> = HashMap::new();
    for k in 0..parameters.height() {
        if let (Some(a), Some(r), Some(name), Some(true)) =
            (p_account[k], p_region[k], p_name[k], p_read[k])
        {
            held.insert((a, r, name), (p_image[k], p_owner[k], p_visible[k]));
        }
    }
    for name in ["launch_templates", "asg_launch_sources"] {
        let df = table(tables, name)?;
        let account = str_column(df, "account_id")?;
        let region = str_column(df, "region")?;
        let image = str_column(df, "image_id")?;
        let owner = str_column(df, "image_owner_id")?;
        let visible = bool_column(df, "image_visible")?;
        let parameter = str_column(df, "image_parameter")?;
        // A launch template row is a version that was read: with neither an
        // AMI nor a parameter it launches none of its own. An Auto Scaling
        // source without either was not resolved (its version or launch
        // configuration was not read).
        let empty_is_none = name == "launch_templates" && parameters_collected;
        let n = df.height();
        let (mut ids, mut owners, mut visibles, mut known) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for i in 0..n {
            let (held_now, is_known): (Held, bool) = if image[i].is_some() {
                ((image[i], owner[i], visible[i]), true)
            } else if let Some(reference) = parameter[i] {
                let found = match (
                    account[i],
                    region[i],
                    reference.strip_prefix("resolve:ssm:"),
                ) {
                    (Some(a), Some(r), Some(p)) if parameters_collected => {
                        held.get(&(a, r, p)).copied()
                    }
                    _ => None,
                };
                match found {
                    Some(h) => (h, h.0.is_some()),
                    None => ((None, None, None), false),
                }
            } else {
                ((None, None, None), empty_is_none)
            };
            ids.push(held_now.0.map(str::to_string));
            owners.push(held_now.1.map(str::to_string));
            visibles.push(held_now.2);
            known.push(is_known);
        }
        let mut df = df.clone();
        for c in [
            Column::new("launch_image_id".into(), ids),
            Column::new("launch_image_owner_id".into(), owners),
            Column::new("launch_image_visible".into(), visibles),
            Column::new("launch_image_known".into(), known),
        ] {
            df.with_column(c).map_err(|e| stage(name, &e))?;
        }
        let key = if name == "launch_templates" {
            "launch_templates"
        } else {
            "asg_launch_sources"
        };
        tables.insert(key, df);
    }
    Ok(())
}

fn table<'a>(tables: &'a BTreeMap<&'static str, DataFrame>, name: &str) -> Result<&'a DataFrame> {
    tables
        .get(name)
        .ok_or_else(|| Error::Internal(format!("no inventory table `{name}`")))
}

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
/// `consumer_gaps` (where that is not known in full) and
/// `image_consumer_gaps` (for each image, where someone who may launch it
/// was not read).
pub(super) fn usage(
    tables: &BTreeMap<&'static str, DataFrame>,
    coverage: &Coverage,
) -> Result<Usage> {
    let mut launches = Launches::default();
    let mut gaps: BTreeMap<(String, String), String> = BTreeMap::new();

    let instances = table(tables, "instances")?;
    {
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
                None => unresolved(&mut gaps, account[i], region[i], || {
                    format!("the AMI of instance {} is not known", id[i].unwrap_or("?"))
                }),
            }
        }
    }
    let templates = table(tables, "launch_templates")?;
    {
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
                _ => unresolved(&mut gaps, account[i], region[i], || {
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
    }
    let sources = table(tables, "asg_launch_sources")?;
    {
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
                None => unresolved(&mut gaps, account[i], region[i], || {
                    format!(
                        "what {} of Auto Scaling group {} launches is not known",
                        reference[i].unwrap_or("a launch source"),
                        group[i].unwrap_or("?")
                    )
                }),
            }
        }
    }
    // A group whose launch sources were not resolved at all.
    {
        let groups = table(tables, "auto_scaling_groups")?;
        let with_sources: HashSet<(Option<&str>, Option<&str>, Option<&str>)> = {
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
                unresolved(&mut gaps, account[i], region[i], || {
                    format!(
                        "what Auto Scaling group {} launches is not known",
                        group[i].unwrap_or("?")
                    )
                });
            }
        }
    }
    let parameters = table(tables, "ssm_parameters")?;
    {
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
                _ => unresolved(&mut gaps, account[i], region[i], || {
                    format!(
                        "the value of AMI parameter {} was not read",
                        name[i].unwrap_or("?")
                    )
                }),
            }
        }
    }
    coverage_gaps(&mut gaps, coverage, table(tables, "accounts")?)?;
    let per_image = image_gaps(tables, &gaps, coverage)?;

    let (mut account, mut region, mut reason) = (Vec::new(), Vec::new(), Vec::new());
    for ((a, r), why) in gaps {
        account.push(a);
        region.push(r);
        reason.push(why);
    }
    let height = account.len();
    let gaps = DataFrame::new(
        height,
        vec![
            Column::new("account_id".into(), account),
            Column::new("region".into(), region),
            Column::new("reason".into(), reason),
        ],
    )
    .map_err(|e| stage("consumer_gaps", &e))?;
    Ok(Usage {
        launches: launches.finish()?,
        consumer_gaps: gaps,
        image_consumer_gaps: per_image,
    })
}

/// The derived tables of the usage model.
pub(super) struct Usage {
    pub launches: DataFrame,
    pub consumer_gaps: DataFrame,
    pub image_consumer_gaps: DataFrame,
}

/// For each image, the first account-region in its region where an
/// account that may launch it was not read in full: its owner; the
/// accounts its launch permissions name; every account when it is shared
/// with the organization, an OU or everyone, or when its permissions or
/// public flag are not known.
fn image_gaps(
    tables: &BTreeMap<&'static str, DataFrame>,
    gaps: &BTreeMap<(String, String), String>,
    coverage: &Coverage,
) -> Result<DataFrame> {
    let mut by_region: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for ((a, r), why) in gaps {
        by_region
            .entry(r.as_str())
            .or_default()
            .push((a.as_str(), why.as_str()));
    }
    let permissions = table(tables, "launch_permissions")?;
    // (owner, region, image) -> Some(accounts named) or None (everyone).
    let mut launchers: HashMap<(&str, &str, &str), Option<HashSet<&str>>> = HashMap::new();
    {
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
                .or_insert_with(|| Some(HashSet::new()));
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
    }
    // Accounts known not to launch anything: members not ACTIVE.
    let idle: HashSet<&str> = {
        let accounts = table(tables, "accounts")?;
        let ids = str_column(accounts, "account_id")?;
        let statuses = str_column(accounts, "status")?;
        ids.iter()
            .zip(&statuses)
            .filter(|(_, s)| s.is_some_and(|s| s != "ACTIVE"))
            .filter_map(|(id, _)| *id)
            .collect()
    };
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
        let beyond = unvisited.or_else(|| {
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
    gaps: &mut BTreeMap<(String, String), String>,
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
    gaps: &mut BTreeMap<(String, String), String>,
    coverage: &Coverage,
    accounts: &DataFrame,
) -> Result<()> {
    let never: Vec<&str> = CONSUMER_OPERATIONS
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
        if !CONSUMER_OPERATIONS
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
    let visited: HashSet<&str> = coverage.accounts.iter().map(String::as_str).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_000 * DAY;

    /// One image: (id, region, state, created ms, source id, source region,
    /// source instance); account `a`, family `web`.
    type Img = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<i64>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );

    fn images(rows: &[Img]) -> DataFrame {
        let col = |f: fn(&Img) -> Option<&'static str>| rows.iter().map(f).collect::<Vec<_>>();
        df!(
            "account_id" => rows.iter().map(|_| "a").collect::<Vec<_>>(),
            "region" => col(|r| Some(r.1)),
            "image_id" => col(|r| Some(r.0)),
            "family" => rows.iter().map(|_| "web").collect::<Vec<_>>(),
            "state" => col(|r| r.2),
            "creation_date" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "source_image_id" => col(|r| r.4),
            "source_image_region" => col(|r| r.5),
            "source_instance_id" => col(|r| r.6),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// image_ancestry rows: (image, depth, ancestor, its creation).
    fn ancestry(rows: &[(&str, i64, &str, i64)]) -> DataFrame {
        df!(
            "account_id" => rows.iter().map(|_| "a").collect::<Vec<_>>(),
            "region" => rows.iter().map(|_| B).collect::<Vec<_>>(),
            "image_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "depth" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "ancestor_image_id" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "ancestor_region" => rows.iter().map(|_| A).collect::<Vec<_>>(),
            "creation_date" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn no_ancestry() -> DataFrame {
        ancestry(&[])
    }

    /// (versions_behind, days_behind, family_newest_image_id)
    type Place = (Option<i64>, Option<i64>, Option<String>);

    /// image id -> its place among its family's versions.
    fn order(rows: &[Img], ancestry: DataFrame, collected: bool) -> BTreeMap<String, Place> {
        let mut df = images(rows);
        let lineage = Lineage {
            instance_ids_collected: collected,
        };
        family_versions(&mut df, &ancestry, &lineage, NOW).unwrap_or_else(|e| panic!("{e}"));
        let ids = str_column(&df, "image_id").unwrap_or_else(|e| panic!("{e}"));
        let behind = i64_column(&df, "versions_behind").unwrap_or_else(|e| panic!("{e}"));
        let days = i64_column(&df, "days_behind").unwrap_or_else(|e| panic!("{e}"));
        let newest = str_column(&df, "family_newest_image_id").unwrap_or_else(|e| panic!("{e}"));
        (0..df.height())
            .map(|i| {
                (
                    ids[i].unwrap_or_default().to_string(),
                    (behind[i], days[i], newest[i].map(str::to_string)),
                )
            })
            .collect()
    }

    const A: &str = "eu-west-1";
    const B: &str = "us-east-1";
    const OK: Option<&str> = Some("available");

    #[test]
    fn copies_are_ordered_by_their_original_not_by_the_copy() {
        // v1 built 30 days ago, v2 10 days ago, in A; copied to B out of
        // order: v2 first (9 days ago), v1 last (2 days ago).
        let m = order(
            &[
                ("v1", A, OK, Some(NOW - 30 * DAY), None, None, Some("i-1")),
                ("v2", A, OK, Some(NOW - 10 * DAY), None, None, Some("i-2")),
                ("c2", B, OK, Some(NOW - 9 * DAY), Some("v2"), Some(A), None),
                ("c1", B, OK, Some(NOW - 2 * DAY), Some("v1"), Some(A), None),
            ],
            no_ancestry(),
            true,
        );
        assert_eq!(m["c2"], (Some(0), Some(0), Some("c2".into())));
        // Behind by one version, which arrived here 9 days ago.
        assert_eq!(m["c1"], (Some(1), Some(9), Some("c2".into())));
        assert_eq!(m["v1"], (Some(1), Some(10), Some("v2".into())));
    }

    #[test]
    fn a_copy_whose_source_is_elsewhere_is_ordered_by_its_ancestry() {
        let rows = [
            ("c2", B, OK, Some(NOW - 9 * DAY), Some("v2"), Some(A), None),
            ("c1", B, OK, Some(NOW - 2 * DAY), Some("v1"), Some(A), None),
        ];
        let sources = [
            ("c1", 1, "v1", NOW - 30 * DAY),
            ("c2", 1, "v2", NOW - 10 * DAY),
        ];
        let m = order(&rows, ancestry(&sources), true);
        assert_eq!(m["c1"].0, Some(1));
        assert_eq!(m["c2"].0, Some(0));
        // A source with ancestors of its own may itself be a copy (made
        // last week of a version built long ago): its time is not the
        // build's, and the order is not known.
        let deeper = [
            ("c1", 1, "v1", NOW - 30 * DAY),
            ("c2", 1, "v2-copy", NOW - 10 * DAY),
            ("c2", 2, "v2", NOW - 400 * DAY),
        ];
        let m = order(&rows, ancestry(&deeper), true);
        assert_eq!(m["c1"].0, None);
        assert_eq!(m["c2"].0, None);
        // Without the ancestry, the copies' places are not known.
        let m = order(&rows, no_ancestry(), true);
        assert_eq!(m["c1"], (None, None, None));
        assert_eq!(m["c2"], (None, None, None));
    }

    #[test]
    fn versions_built_in_the_same_second_are_not_ordered() {
        let t = NOW - 5 * DAY;
        let m = order(
            &[
                ("old", A, OK, Some(t - 20 * DAY), None, None, None),
                ("x", A, OK, Some(t + 100), None, None, None),
                ("y", A, OK, Some(t + 900), None, None, None),
            ],
            no_ancestry(),
            true,
        );
        assert_eq!(m["x"], (None, None, None));
        assert_eq!(m["y"], (None, None, None));
        // Both are certainly newer than the old one.
        assert_eq!(m["old"], (Some(2), Some(5), None));
    }

    #[test]
    fn a_version_whose_time_or_state_is_not_known_leaves_the_order_not_known() {
        // A newer image with no creation date: an image two versions
        // behind cannot pass for one behind.
        let m = order(
            &[
                ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
                ("v2", A, OK, Some(NOW - 30 * DAY), None, None, None),
                ("v3", A, OK, None, None, None, None),
            ],
            no_ancestry(),
            true,
        );
        assert_eq!(m["v1"].0, None);
        assert_eq!(m["v2"].0, None);
        // A newer image whose state is not known may be a version.
        let m = order(
            &[
                ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
                ("v2", A, OK, Some(NOW - 30 * DAY), None, None, None),
                ("v3", A, None, Some(NOW - DAY), None, None, None),
            ],
            no_ancestry(),
            true,
        );
        assert_eq!(m["v1"].0, None);
        assert_eq!(m["v2"].0, None);
        // An older one whose state is not known changes nothing above it.
        let m = order(
            &[
                ("v0", A, None, Some(NOW - 90 * DAY), None, None, None),
                ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
                ("v2", A, OK, Some(NOW - 30 * DAY), None, None, None),
            ],
            no_ancestry(),
            true,
        );
        assert_eq!(m["v1"], (Some(1), Some(30), Some("v2".into())));
        // A failed image is no version at all.
        let m = order(
            &[
                ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
                ("v2", A, Some("failed"), None, None, None, None),
            ],
            no_ancestry(),
            true,
        );
        assert_eq!(m["v1"], (Some(0), Some(0), Some("v1".into())));
    }

    #[test]
    fn older_inventories_tell_only_cross_region_copies() {
        // Before schema 5, SourceInstanceId was not collected: an image
        // with a source in its own region may be a copy or a CreateImage.
        let rows = [
            ("base", A, OK, Some(NOW - 400 * DAY), None, None, None),
            (
                "v1",
                A,
                OK,
                Some(NOW - 30 * DAY),
                Some("base"),
                Some(A),
                None,
            ),
            (
                "v2",
                A,
                OK,
                Some(NOW - 10 * DAY),
                Some("base"),
                Some(A),
                None,
            ),
        ];
        let m = order(&rows, no_ancestry(), false);
        assert_eq!(m["v1"].0, None);
        // With it collected (and absent), they are copies of one base: a tie.
        let m = order(&rows, no_ancestry(), true);
        assert_eq!(m["v1"].0, None);
        // Created from an instance, each is its own version.
        let rows = [
            (
                "v1",
                A,
                OK,
                Some(NOW - 30 * DAY),
                Some("base"),
                Some(A),
                Some("i-1"),
            ),
            (
                "v2",
                A,
                OK,
                Some(NOW - 10 * DAY),
                Some("base"),
                Some(A),
                Some("i-2"),
            ),
        ];
        let m = order(&rows, no_ancestry(), true);
        assert_eq!(m["v1"], (Some(1), Some(10), Some("v2".into())));
    }
}
