//! Where each own AMI comes from: the base at the root of its ancestry.
//!
//! An image created from an instance (CreateImage) of another account's or
//! region's AMI names that source; DescribeImages of the distinct sources
//! (one call for up to 200) shows whether each is a root: a verified
//! provider's (owner alias `amazon` or `aws-marketplace`) or one with no
//! source of its own (the EC2 User Guide's "AMI ancestry" roots). Only where
//! it is not, and for copies (whose versions are ordered by their chain),
//! GetImageAncestry is asked, then DescribeImages of the chains' roots for
//! their owner and name.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::operation::get_image_ancestry::GetImageAncestryOutput;
use aws_sdk_ec2::types::Image;

use super::calls::{CallResult, each_bounded, text};
use super::ec2_images::describe_by_id;
use super::harvest::Harvest;
use crate::aws::CallError;
use crate::inventory::schema::ImageAncestryRow;

/// The owner aliases of verified providers ("identified by its owner
/// alias, which is either amazon or aws-marketplace"), whose AMIs are
/// roots.
const VERIFIED: [&str; 2] = ["amazon", "aws-marketplace"];

/// An own image whose source is not one of `own` (this account-region's
/// images): its id, its source and the source's region, and whether it is
/// a copy (no source instance: "This field only appears if the AMI was
/// created using CreateImage").
pub struct SourcedElsewhere {
    image: String,
    source: String,
    source_region: Option<String>,
    copy: bool,
}

pub fn sourced_elsewhere(
    images: &[Image],
    own: &BTreeMap<String, String>,
) -> Vec<SourcedElsewhere> {
    images
        .iter()
        .filter_map(|i| {
            let source = i.source_image_id().filter(|s| !own.contains_key(*s))?;
            Some(SourcedElsewhere {
                image: i.image_id()?.to_string(),
                source: source.to_string(),
                source_region: text(i.source_image_region()),
                copy: i.source_instance_id().is_none(),
            })
        })
        .collect()
}

/// What DescribeImages showed of an AMI that is not the account's.
#[derive(Debug, Clone, Default)]
struct Shown {
    owner: Option<String>,
    name: Option<String>,
    alias: Option<String>,
    created: Option<crate::inventory::Millis>,
    /// Its own source, if it names one (then, unless it is a verified
    /// provider's, it is not a root).
    source: Option<String>,
}

type Described = BTreeMap<String, Shown>;

/// One DescribeImages of some ids: which were asked and what it answered.
type Description = (Vec<String>, CallResult<Described>);

/// What the reads answered.
pub struct Fetched {
    /// GetImageAncestry of the copies and of the builds whose source is
    /// not shown to be a root.
    chains: Vec<(String, CallResult<GetImageAncestryOutput>)>,
    /// Builds whose source DescribeImages showed as a root: (image, source,
    /// the source's region).
    on_roots: Vec<(String, String, Option<String>)>,
    /// The sources', then the chains' roots' descriptions.
    described: Vec<Description>,
}

pub async fn fetch(
    ec2: &aws_sdk_ec2::Client,
    sourced: Vec<SourcedElsewhere>,
    limit: usize,
) -> Fetched {
    let (copies, builds): (Vec<_>, Vec<_>) = sourced.into_iter().partition(|s| s.copy);
    let sources: Vec<String> = builds
        .iter()
        .map(|b| b.source.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (mut chains, sources_shown) = tokio::join!(
        each_bounded(copies.into_iter().map(|c| c.image), limit, |id| ancestry(
            ec2, id
        )),
        describe(ec2, sources),
    );
    let is_root = |source: &str| match &sources_shown {
        Some((_, Ok(shown))) => shown.get(source).is_some_and(|s| {
            s.alias.as_deref().is_some_and(|a| VERIFIED.contains(&a)) || s.source.is_none()
        }),
        _ => false,
    };
    let (on_roots, deeper): (Vec<_>, Vec<_>) = builds.into_iter().partition(|b| is_root(&b.source));
    chains.extend(
        each_bounded(deeper.into_iter().map(|b| b.image), limit, |id| {
            ancestry(ec2, id)
        })
        .await,
    );
    let shown_already: BTreeSet<String> = match &sources_shown {
        Some((asked, Ok(_))) => asked.iter().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let roots: Vec<String> = chains
        .iter()
        .filter_map(|(_, outcome)| outcome.as_ref().ok())
        .filter_map(|out| out.image_ancestry_entries().last())
        .filter_map(|root| root.image_id().map(str::to_string))
        .filter(|root| !shown_already.contains(root))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let roots_shown = describe(ec2, roots).await;
    Fetched {
        chains,
        on_roots: on_roots
            .into_iter()
            .map(|b| (b.image, b.source, b.source_region))
            .collect(),
        described: sources_shown.into_iter().chain(roots_shown).collect(),
    }
}

async fn ancestry(
    ec2: &aws_sdk_ec2::Client,
    image_id: String,
) -> CallResult<GetImageAncestryOutput> {
    ec2.get_image_ancestry()
        .image_id(image_id)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))
}

/// DescribeImages of `ids`; None when there are none to ask.
async fn describe(ec2: &aws_sdk_ec2::Client, ids: Vec<String>) -> Option<Description> {
    if ids.is_empty() {
        return None;
    }
    let shown = describe_by_id(ec2, &ids).await.map(|images| {
        images
            .iter()
            .filter_map(|image| {
                let shown = Shown {
                    owner: text(image.owner_id()),
                    name: text(image.name()),
                    alias: text(image.image_owner_alias()),
                    created: super::calls::parse_time(image.creation_date()),
                    source: text(image.source_image_id()),
                };
                Some((image.image_id()?.to_string(), shown))
            })
            .collect()
    });
    Some((ids, shown))
}

/// Records each image's ancestors, nearest first ("A list of entries in
/// the AMI ancestry chain, from the specified AMI to the root AMI"): the
/// first entry is the AMI itself, each entry names its parent's region.
/// The root (the last entry) carries what DescribeImages showed of it. A
/// build on a source shown to be a root has that one row, from
/// DescribeImages alone.
pub fn rows(harvest: &mut Harvest, fetched: Fetched) {
    let shown = merge(harvest, fetched.described);
    for (image_id, source, source_region) in fetched.on_roots {
        let Some(Some(Some(root))) = shown.get(&source) else {
            continue;
        };
        harvest.push(ImageAncestryRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            image_id,
            depth: 1,
            ancestor_image_id: source,
            ancestor_region: source_region,
            creation_date: root.created,
            owner_alias: root.alias.clone(),
            ancestor_source_image_id: root.source.clone(),
            owner_id: root.owner.clone(),
            name: root.name.clone(),
            described: Some(true),
        });
    }
    for (image_id, outcome) in fetched.chains {
        let Some(out) = harvest.take("ec2", "GetImageAncestry", Some(&image_id), outcome) else {
            continue;
        };
        // The chain starts at the AMI asked about, which names its
        // source's region; an answer that does not is taken as ancestors.
        let (mut parent_region, ancestors) = match out.image_ancestry_entries().split_first() {
            Some((head, rest)) if head.image_id() == Some(image_id.as_str()) => {
                (text(head.source_image_region()), rest)
            }
            _ => (None, out.image_ancestry_entries()),
        };
        let last = ancestors.len();
        for (depth, entry) in ancestors.iter().enumerate() {
            let Some(ancestor) = entry.image_id() else {
                break;
            };
            // Only the root was described: Some(answer) when the call
            // answered, the answer None when it did not show the AMI.
            let described = (depth + 1 == last)
                .then(|| shown.get(ancestor).cloned().flatten())
                .flatten();
            let root = described.clone().flatten().unwrap_or_default();
            harvest.push(ImageAncestryRow {
                account_id: harvest.account_id.clone(),
                region: harvest.region.clone(),
                image_id: image_id.clone(),
                depth: depth as i64 + 1,
                ancestor_image_id: ancestor.to_string(),
                ancestor_region: parent_region.take(),
                creation_date: entry
                    .creation_date()
                    .and_then(|t| t.to_millis().ok())
                    .map(crate::inventory::Millis),
                owner_alias: text(entry.image_owner_alias()).or(root.alias),
                ancestor_source_image_id: text(entry.source_image_id()),
                owner_id: root.owner,
                name: root.name,
                described: described.map(|found| found.is_some()),
            });
            parent_region = text(entry.source_image_region());
        }
    }
}

/// Every id DescribeImages was asked about: Some(what it showed, None when
/// it answered without the AMI), or None when the call failed (recorded
/// for each id asked; the account's own images were read all the same).
/// A later answer for an id wins over a failure.
fn merge(
    harvest: &mut Harvest,
    described: Vec<Description>,
) -> BTreeMap<String, Option<Option<Shown>>> {
    let mut merged: BTreeMap<String, Option<Option<Shown>>> = BTreeMap::new();
    for (asked, outcome) in described {
        match outcome {
            Ok(found) => {
                for id in asked {
                    let shown = found.get(&id).cloned();
                    merged.insert(id, Some(shown));
                }
            }
            Err(error) => {
                for id in asked {
                    harvest.fail("ec2", "DescribeImages", Some(&id), &error);
                    merged.entry(id).or_insert(None);
                }
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::ImageAncestryEntry;

    use super::*;
    use crate::inventory::Value;

    fn entry(id: &str, source: Option<&str>, alias: Option<&str>) -> ImageAncestryEntry {
        ImageAncestryEntry::builder()
            .image_id(id)
            .set_source_image_id(source.map(str::to_string))
            .set_source_image_region(source.map(|_| "us-east-1".to_string()))
            .set_image_owner_alias(alias.map(str::to_string))
            .build()
    }

    fn chain() -> Vec<(String, CallResult<GetImageAncestryOutput>)> {
        let out = GetImageAncestryOutput::builder()
            .image_ancestry_entries(entry("ami-copy", Some("ami-build"), None))
            .image_ancestry_entries(entry("ami-build", Some("ami-base"), None))
            .image_ancestry_entries(entry("ami-base", None, Some("amazon")))
            .build();
        vec![("ami-copy".to_string(), Ok(out))]
    }

    /// (depth, owner alias, owner id, name, described) of each row.
    fn ancestry(harvest: &Harvest) -> Vec<(Value, Value, Value, Value, Value)> {
        harvest
            .rows
            .iter()
            .filter(|(t, _)| *t == "image_ancestry")
            .map(|(_, c)| {
                (
                    c[3].clone(),
                    c[7].clone(),
                    c[8].clone(),
                    c[9].clone(),
                    c[11].clone(),
                )
            })
            .collect()
    }

    fn harvest() -> Harvest {
        let region = crate::discover::RegionInfo {
            region: "eu-west-1".into(),
            opt_in_status: None,
        };
        Harvest::new("111111111111", &region)
    }

    fn amazon(alias: bool) -> Described {
        Described::from([(
            "ami-base".to_string(),
            Shown {
                owner: Some("137112412989".into()),
                name: Some("al2023-ami".into()),
                alias: alias.then(|| "amazon".to_string()),
                ..Shown::default()
            },
        )])
    }

    #[test]
    fn the_root_carries_what_describe_images_showed() {
        let mut shown = harvest();
        rows(
            &mut shown,
            Fetched {
                chains: chain(),
                on_roots: vec![],
                described: vec![(vec!["ami-base".into()], Ok(amazon(false)))],
            },
        );
        assert_eq!(
            ancestry(&shown),
            vec![
                (
                    1i64.into(),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null
                ),
                (
                    2i64.into(),
                    "amazon".into(),
                    "137112412989".into(),
                    "al2023-ami".into(),
                    true.into()
                ),
            ]
        );

        // Answered without the root: shown as not found.
        let mut gone = harvest();
        rows(
            &mut gone,
            Fetched {
                chains: chain(),
                on_roots: vec![],
                described: vec![(vec!["ami-base".into()], Ok(Described::new()))],
            },
        );
        assert_eq!(ancestry(&gone)[1].4, false.into());

        // The call failed: a scan error for the root, the images stay read.
        let mut failed = harvest();
        let refused = Err(CallError {
            code: "RequestLimitExceeded".into(),
            message: "Rate exceeded".into(),
        });
        rows(
            &mut failed,
            Fetched {
                chains: chain(),
                on_roots: vec![],
                described: vec![(vec!["ami-base".into()], refused)],
            },
        );
        assert_eq!(ancestry(&failed)[1].4, Value::Null);
        assert_eq!(failed.errors.len(), 1);
        assert_eq!(failed.errors[0].resource_id.as_deref(), Some("ami-base"));
    }

    #[test]
    fn a_build_on_a_root_is_one_row_from_describe_images() {
        let mut built = harvest();
        rows(
            &mut built,
            Fetched {
                chains: vec![],
                on_roots: vec![(
                    "ami-build".into(),
                    "ami-base".into(),
                    Some("eu-west-1".into()),
                )],
                described: vec![(vec!["ami-base".into()], Ok(amazon(true)))],
            },
        );
        assert_eq!(
            ancestry(&built),
            vec![(
                1i64.into(),
                "amazon".into(),
                "137112412989".into(),
                "al2023-ami".into(),
                true.into()
            )]
        );
        assert!(built.errors.is_empty());
    }
}
