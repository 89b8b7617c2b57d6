//! Every use of an AMI, once each (`image_uses`), and the account-regions
//! where what pipelines build on is not known in full.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::{stage, table};
use crate::error::Result;
use crate::inventory::{bool_column, i64_column, str_column};

/// Account-regions and why something there is not known in full.
pub(super) type Gaps = BTreeMap<(String, String), String>;

/// The calls that read what pipelines build on.
pub const RECIPE_OPERATIONS: [&str; 2] = [
    "imagebuilder:ListImagePipelines",
    "imagebuilder:GetImageRecipe",
];

/// One use: the user's account and region, the AMI, the kind of user and
/// its id.
type Use = (String, String, String, String, String);

/// Every use of an AMI, once each: what launches it (`launches`), what EC2
/// says references it in its own account-region (`image_references`, each
/// ARN named as `launches` names that kind of resource), the accounts an
/// image usage report says use it (`image_usage_entries`), and each
/// pipeline's recipe, in any account, that builds on it (its parent
/// image, followed through a parameter or an Image Builder image to the
/// AMIs). A recipe whose parent could not be followed, or a pipeline
/// whose recipe was not read, is added to `recipe_gaps`. Sorted, so its
/// readers are deterministic.
pub(super) fn image_uses(
    tables: &BTreeMap<&'static str, DataFrame>,
    launches: &DataFrame,
    recipe_gaps: &mut Gaps,
    now: i64,
) -> Result<DataFrame> {
    let mut uses: BTreeSet<Use> = BTreeSet::new();
    let (account, region, image, kind, id) = (
        str_column(launches, "account_id")?,
        str_column(launches, "region")?,
        str_column(launches, "image_id")?,
        str_column(launches, "consumer_type")?,
        str_column(launches, "consumer_id")?,
    );
    for i in 0..launches.height() {
        if let (Some(a), Some(r), Some(x), Some(k), Some(c)) =
            (account[i], region[i], image[i], kind[i], id[i])
        {
            uses.insert((a.into(), r.into(), x.into(), k.into(), c.into()));
        }
    }
    reference_uses(table(tables, "image_references")?, &mut uses)?;
    report_uses(
        table(tables, "image_usage_entries")?,
        table(tables, "image_usage_reports")?,
        now,
        &mut uses,
    )?;
    recipe_uses(tables, &mut uses, recipe_gaps)?;
    frame(uses)
}

/// What EC2's reference check names.
fn reference_uses(references: &DataFrame, uses: &mut BTreeSet<Use>) -> Result<()> {
    let (account, region, image, kind, arn) = (
        str_column(references, "account_id")?,
        str_column(references, "region")?,
        str_column(references, "image_id")?,
        str_column(references, "resource_type")?,
        str_column(references, "resource_arn")?,
    );
    for i in 0..references.height() {
        let (Some(a), Some(r), Some(x)) = (account[i], region[i], image[i]) else {
            continue;
        };
        let (kind, id) =
            named_like_launches(kind[i].unwrap_or("reference"), arn[i].unwrap_or_default());
        uses.insert((a.into(), r.into(), x.into(), kind, id));
    }
    Ok(())
}

/// How long EC2 keeps a usage report: "30 days after the report was
/// created".
const REPORT_LIFE_MS: i64 = 30 * 86_400_000;

/// What the image usage reports read say: an account whose instances or
/// launch templates reference the AMI. Only an entry of a report read for
/// that same AMI (its row in `image_usage_reports`, entries read, not yet
/// expired at `now`) counts, with a count of at least 1 or none given.
fn report_uses(
    entries: &DataFrame,
    reports: &DataFrame,
    now: i64,
    uses: &mut BTreeSet<Use>,
) -> Result<()> {
    let read: PlHashSet<(&str, &str, &str, &str)> = {
        let (account, region, image, report, created, entries_read) = (
            str_column(reports, "account_id")?,
            str_column(reports, "region")?,
            str_column(reports, "image_id")?,
            str_column(reports, "report_id")?,
            i64_column(reports, "creation_time")?,
            bool_column(reports, "entries_read")?,
        );
        (0..reports.height())
            .filter(|&k| entries_read[k] == Some(true))
            .filter(|&k| created[k].is_some_and(|c| c <= now && now - c <= REPORT_LIFE_MS))
            .filter_map(|k| Some((account[k]?, region[k]?, image[k]?, report[k]?)))
            .collect()
    };
    let owner = str_column(entries, "account_id")?;
    let (region, image, report, user, kind, count) = (
        str_column(entries, "region")?,
        str_column(entries, "image_id")?,
        str_column(entries, "report_id")?,
        str_column(entries, "user_account_id")?,
        str_column(entries, "resource_type")?,
        i64_column(entries, "usage_count")?,
    );
    for i in 0..entries.height() {
        let (Some(a), Some(r), Some(x), Some(id), Some(u)) =
            (owner[i], region[i], image[i], report[i], user[i])
        else {
            continue;
        };
        if count[i].is_some_and(|n| n < 1) || !read.contains(&(a, r, x, id)) {
            continue;
        }
        let kind = format!("usage-report:{}", kind[i].unwrap_or("resource"));
        uses.insert((u.into(), r.into(), x.into(), kind, id.into()));
    }
    Ok(())
}

/// A resource EC2's reference check names by ARN, named as `launches`
/// names that kind (an instance, a launch template, a parameter), so one
/// resource read both ways is one use; any other kind keeps EC2's type and
/// the ARN.
fn named_like_launches(kind: &str, arn: &str) -> (String, String) {
    let after = |marker: &str| arn.split_once(marker).map(|(_, rest)| rest.to_string());
    let named = match kind {
        "ec2:Instance" => after(":instance/").map(|i| ("instance", i)),
        "ec2:LaunchTemplate" => after(":launch-template/").map(|t| ("launch-template", t)),
        "ssm:Parameter" => after(":parameter/").map(|n| ("ssm-parameter", format!("/{n}"))),
        _ => None,
    };
    match named {
        Some((kind, id)) => (kind.to_string(), id),
        None => (kind.to_string(), arn.to_string()),
    }
}

/// What a recipe's `parent_image` names, as the Image Builder API
/// reference lists the options: "AMI ID; Image Builder image Amazon
/// Resource Name (ARN); [an] SSM Parameter Store Parameter, prefixed by
/// `ssm:`, followed by the parameter name or ARN; Amazon Web Services
/// Marketplace product ID".
#[derive(Debug, PartialEq, Eq)]
enum Parent<'a> {
    Ami(&'a str),
    /// Not an AMI of any account: an AWS-managed Image Builder image
    /// (owner `aws`), an AWS public parameter (`/aws/service/...`), a
    /// Marketplace product.
    Outside,
    /// A parameter, by name as given (a name or an ARN's `parameter/...`
    /// part), in the account and region its ARN names, else the recipe's.
    Parameter {
        account: Option<&'a str>,
        region: Option<&'a str>,
        name: &'a str,
    },
    /// An Image Builder image of an account: where it is, its name and
    /// version, each part possibly `x`, and the build number when pinned.
    Build(ImageVersion<'a>),
    Unknown,
}

/// An Image Builder image ARN's parts
/// (`arn:<partition>:imagebuilder:<region>:<account>:image/<name>/<version>[/<build>]`).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct ImageVersion<'a> {
    region: &'a str,
    account: &'a str,
    name: &'a str,
    version: &'a str,
    build: Option<&'a str>,
}

fn image_version(arn: &str) -> Option<ImageVersion<'_>> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "imagebuilder", region, account, resource] = parts.as_slice() else {
        return None;
    };
    let path: Vec<&str> = resource.split('/').collect();
    let (name, version, build) = match path.as_slice() {
        ["image", name, version] => (*name, *version, None),
        ["image", name, version, build] => (*name, *version, Some(*build)),
        _ => return None,
    };
    Some(ImageVersion {
        region,
        account,
        name,
        version,
        build,
    })
}

fn parent_of(parent: &str) -> Parent<'_> {
    if parent.starts_with("ami-") {
        return Parent::Ami(parent);
    }
    if parent.starts_with("prod-") {
        return Parent::Outside;
    }
    if let Some(named) = parent.strip_prefix("ssm:") {
        let (account, region, name) = match named.split_once(":parameter/") {
            Some((arn, name)) => {
                let parts: Vec<&str> = arn.split(':').collect();
                match parts.as_slice() {
                    ["arn", _, "ssm", region, account] => (Some(*account), Some(*region), name),
                    _ => return Parent::Unknown,
                }
            }
            None if named.starts_with("arn:") || named.is_empty() => return Parent::Unknown,
            None => (None, None, named),
        };
        return if name.trim_start_matches('/').starts_with("aws/service/") {
            Parent::Outside
        } else {
            Parent::Parameter {
                account,
                region,
                name,
            }
        };
    }
    if parent.starts_with("arn:") {
        return match image_version(parent) {
            Some(v) if v.account == "aws" => Parent::Outside,
            Some(v) => Parent::Build(v),
            None => Parent::Unknown,
        };
    }
    Parent::Unknown
}

/// Whether a build's version and build number are what an image ARN asks
/// (`x` matches any part of the version).
fn version_matches(want: &ImageVersion<'_>, built: &ImageVersion<'_>) -> bool {
    let parts_match = want.version.split('.').count() == built.version.split('.').count()
        && want
            .version
            .split('.')
            .zip(built.version.split('.'))
            .all(|(w, g)| w == "x" || w == g);
    parts_match && want.build.is_none_or(|b| built.build == Some(b))
}

/// The AMIs of each Image Builder image's builds, parsed once: (region,
/// account, name) -> each build's version and the AMI it distributed, with
/// the AMI's region.
type BuildIndex<'a> =
    PlHashMap<(&'a str, &'a str, &'a str), Vec<(ImageVersion<'a>, &'a str, &'a str)>>;

fn build_index(builds: &DataFrame) -> Result<BuildIndex<'_>> {
    let (arn, ami_region, ami) = (
        str_column(builds, "image_build_arn")?,
        str_column(builds, "ami_region")?,
        str_column(builds, "image_id")?,
    );
    let mut index: BuildIndex = PlHashMap::default();
    for k in 0..builds.height() {
        let (Some(arn), Some(at), Some(ami)) = (arn[k], ami_region[k], ami[k]) else {
            continue;
        };
        if let Some(v) = image_version(arn) {
            index
                .entry((v.region, v.account, v.name))
                .or_default()
                .push((v, at, ami));
        }
    }
    Ok(index)
}

/// Each pipeline's recipe and what it builds on. A pipeline whose recipe
/// was not read, or a parent that names an AMI of the organization in a
/// way that could not be followed, leaves its account-region in
/// `recipe_gaps`: whatever the recipe builds on may be any AMI there.
fn recipe_uses(
    tables: &BTreeMap<&'static str, DataFrame>,
    uses: &mut BTreeSet<Use>,
    gaps: &mut Gaps,
) -> Result<()> {
    let recipes = table(tables, "image_recipes")?;
    let (account, region, arn, parent) = (
        str_column(recipes, "account_id")?,
        str_column(recipes, "region")?,
        str_column(recipes, "recipe_arn")?,
        str_column(recipes, "parent_image")?,
    );
    let parameters = parameter_values(table(tables, "ssm_parameters")?)?;
    let builds = build_index(table(tables, "pipeline_amis")?)?;
    let read: BTreeSet<(&str, &str, &str)> = (0..recipes.height())
        .filter_map(|i| Some((account[i]?, region[i]?, arn[i]?)))
        .collect();
    for i in 0..recipes.height() {
        let (Some(a), Some(r), Some(recipe)) = (account[i], region[i], arn[i]) else {
            continue;
        };
        let mut found = |image: &str| {
            uses.insert((
                a.into(),
                r.into(),
                image.into(),
                "imagebuilder:ImageRecipe".into(),
                recipe.into(),
            ));
        };
        let raw = parent[i].unwrap_or_default();
        let followed = match parent_of(raw) {
            Parent::Ami(image) => {
                found(image);
                true
            }
            Parent::Outside => true,
            Parent::Parameter {
                account,
                region,
                name,
            } => {
                let (pa, pr) = (account.unwrap_or(a), region.unwrap_or(r));
                // Hierarchical names start with `/`, which an ARN leaves
                // out; either spelling that was read answers.
                let bare = name.trim_start_matches('/');
                let slashed = format!("/{bare}");
                let held = [name, bare, slashed.as_str()]
                    .into_iter()
                    .find_map(|n| parameters.get(&(pa, pr, n)));
                match held {
                    Some(image) => {
                        if let Some(image) = image {
                            found(image);
                        }
                        true
                    }
                    None => false,
                }
            }
            Parent::Build(want) => {
                let mut any = false;
                let built = builds.get(&(want.region, want.account, want.name));
                for (version, at, image) in built.into_iter().flatten() {
                    if *at == r && version_matches(&want, version) {
                        found(image);
                        any = true;
                    }
                }
                any
            }
            Parent::Unknown => false,
        };
        if !followed {
            gaps.entry((a.to_string(), r.to_string()))
                .or_insert_with(|| {
                    format!(
                        "what recipe {recipe} builds on ({raw}) could not be followed to an AMI"
                    )
                });
        }
    }
    pipelines_without_recipe(table(tables, "pipelines")?, &read, gaps)
}

type ParameterValues<'a> = PlHashMap<(&'a str, &'a str, &'a str), Option<&'a str>>;

/// The value of each parameter that was read: (account, region, name) ->
/// the AMI it holds, if any.
fn parameter_values(parameters: &DataFrame) -> Result<ParameterValues<'_>> {
    let (account, region, name, read, image) = (
        str_column(parameters, "account_id")?,
        str_column(parameters, "region")?,
        str_column(parameters, "name")?,
        bool_column(parameters, "value_read")?,
        str_column(parameters, "image_id")?,
    );
    let mut values = PlHashMap::default();
    for k in 0..parameters.height() {
        if let (Some(a), Some(r), Some(n), Some(true)) = (account[k], region[k], name[k], read[k]) {
            values.insert((a, r, n), image[k]);
        }
    }
    Ok(values)
}

/// A pipeline whose recipe has no row was not read (GetImageRecipe failed
/// or answered nothing): what it builds on is not known.
fn pipelines_without_recipe(
    pipelines: &DataFrame,
    read: &BTreeSet<(&str, &str, &str)>,
    gaps: &mut Gaps,
) -> Result<()> {
    let (account, region, name, recipe) = (
        str_column(pipelines, "account_id")?,
        str_column(pipelines, "region")?,
        str_column(pipelines, "name")?,
        str_column(pipelines, "image_recipe_arn")?,
    );
    for i in 0..pipelines.height() {
        let (Some(a), Some(r)) = (account[i], region[i]) else {
            continue;
        };
        // A pipeline without its recipe's ARN (container pipelines are not
        // collected) builds on what is not known either.
        let unread = match recipe[i] {
            Some(arn) => !read.contains(&(a, r, arn)),
            None => true,
        };
        if unread {
            gaps.entry((a.to_string(), r.to_string()))
                .or_insert_with(|| {
                    format!(
                        "the recipe of pipeline {} was not read",
                        name[i].unwrap_or("?")
                    )
                });
        }
    }
    Ok(())
}

fn frame(uses: BTreeSet<Use>) -> Result<DataFrame> {
    let (mut account, mut region, mut image, mut kind, mut id) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (a, r, x, k, i) in uses {
        account.push(a);
        region.push(r);
        image.push(x);
        kind.push(k);
        id.push(i);
    }
    DataFrame::new(
        account.len(),
        vec![
            Column::new("account_id".into(), account),
            Column::new("region".into(), region),
            Column::new("image_id".into(), image),
            Column::new("use_type".into(), kind),
            Column::new("use_id".into(), id),
        ],
    )
    .map_err(|e| stage("image_uses", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_is_read_as_the_api_reference_lists_it() {
        assert_eq!(parent_of("ami-0abc"), Parent::Ami("ami-0abc"));
        assert_eq!(parent_of("prod-4x2example"), Parent::Outside);
        assert_eq!(
            parent_of("arn:aws:imagebuilder:eu-west-1:aws:image/amazon-linux-2023-x86/x.x.x"),
            Parent::Outside
        );
        assert_eq!(
            parent_of("ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
            Parent::Outside
        );
        assert_eq!(
            parent_of("ssm:/golden/base"),
            Parent::Parameter {
                account: None,
                region: None,
                name: "/golden/base"
            }
        );
        assert_eq!(
            parent_of("ssm:golden-erp"),
            Parent::Parameter {
                account: None,
                region: None,
                name: "golden-erp"
            }
        );
        assert_eq!(
            parent_of("ssm:arn:aws:ssm:eu-west-1:222222222222:parameter/golden/base"),
            Parent::Parameter {
                account: Some("222222222222"),
                region: Some("eu-west-1"),
                name: "golden/base"
            }
        );
        assert_eq!(
            parent_of("arn:aws:imagebuilder:eu-west-1:111111111111:image/base/1.x.x"),
            Parent::Build(ImageVersion {
                region: "eu-west-1",
                account: "111111111111",
                name: "base",
                version: "1.x.x",
                build: None
            })
        );
        assert_eq!(parent_of(""), Parent::Unknown);
        assert_eq!(parent_of("ssm:"), Parent::Unknown);
        assert_eq!(parent_of("something-else"), Parent::Unknown);
    }

    #[test]
    fn an_image_arn_matches_its_builds_by_version_and_build() {
        let built = image_version("arn:aws:imagebuilder:eu-west-1:111111111111:image/base/1.2.3/4")
            .unwrap();
        for (arn, expected) in [
            (
                "arn:aws:imagebuilder:eu-west-1:111111111111:image/base/x.x.x",
                true,
            ),
            (
                "arn:aws:imagebuilder:eu-west-1:111111111111:image/base/1.x.x",
                true,
            ),
            (
                "arn:aws:imagebuilder:eu-west-1:111111111111:image/base/1.2.3",
                true,
            ),
            (
                "arn:aws:imagebuilder:eu-west-1:111111111111:image/base/1.2.3/4",
                true,
            ),
            (
                "arn:aws:imagebuilder:eu-west-1:111111111111:image/base/1.2.3/5",
                false,
            ),
            (
                "arn:aws:imagebuilder:eu-west-1:111111111111:image/base/2.x.x",
                false,
            ),
            (
                "arn:aws:imagebuilder:eu-west-1:111111111111:image/base/x.x",
                false,
            ),
        ] {
            let want = image_version(arn).unwrap();
            assert_eq!(version_matches(&want, &built), expected, "{arn}");
        }
    }
}
