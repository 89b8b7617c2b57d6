//! What each image is ultimately built on: the root of its ancestry.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::HashMap;

use polars::prelude::*;

use super::stage;
use crate::error::Result;
use crate::inventory::{bool_column, i64_column, str_column};

/// The root of one image's chain, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Base {
    image: Option<String>,
    /// An owner alias (`amazon`, `aws-marketplace`, ...) or an account id.
    owner: Option<String>,
    name: Option<String>,
    /// Why the base, or its owner, is not known.
    not_known: Option<String>,
}

/// The root of an ancestry chain as GetImageAncestry and DescribeImages
/// gave it: (image, alias, owner account, name, described).
type Root<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<bool>,
);

/// Adds `base_image_id`, `base_owner`, `base_name` and `base_not_known` to
/// `images`: each image's source followed through the inventory's own
/// images (a copy or a build of an organization's AMI) until an image
/// whose chain GetImageAncestry gave, whose root is the base.
pub(in crate::inventory) fn provenance(images: &mut DataFrame, ancestry: &DataFrame) -> Result<()> {
    let roots = roots(ancestry)?;
    let (account, region, image, source, source_region) = (
        str_column(images, "account_id")?,
        str_column(images, "region")?,
        str_column(images, "image_id")?,
        str_column(images, "source_image_id")?,
        str_column(images, "source_image_region")?,
    );
    let (owner, name) = (str_column(images, "owner_id")?, str_column(images, "name")?);
    let at: HashMap<(&str, &str), usize> = (0..images.height())
        .filter_map(|i| Some(((image[i]?, region[i]?), i)))
        .collect();
    let by_id: HashMap<&str, usize> = at.iter().map(|(&(id, _), &i)| (id, i)).collect();
    let known = Known {
        by_id: &by_id,
        owners: &owner,
        names: &name,
        sources: &source,
    };
    let n = images.height();
    let mut bases = Vec::with_capacity(n);
    for start in 0..n {
        let mut i = start;
        let mut steps = 0;
        let base = loop {
            // A chain through the inventory longer than any real lineage
            // loops (sources are recorded by AWS, but an inventory file is
            // not trusted).
            steps += 1;
            if steps > MAX_LINKS {
                break not_known(format!(
                    "its ancestry through {} does not end",
                    image[start].unwrap_or("?")
                ));
            }
            let key = (account[i], region[i], image[i]);
            if let (Some(a), Some(r), Some(x)) = key
                && let Some(root) = roots.get(&(a, r, x))
            {
                break from_root(*root, &known);
            }
            let Some(src) = source[i] else {
                break not_known(no_source(image[i].unwrap_or("?")));
            };
            match at.get(&(src, source_region[i].or(region[i]).unwrap_or_default())) {
                Some(&next) => i = next,
                None => {
                    break not_known(format!(
                        "the ancestry of {} (from {src}) was not read (GetImageAncestry)",
                        image[i].unwrap_or("?")
                    ));
                }
            }
        };
        bases.push(base);
    }
    for c in [
        Column::new(
            "base_image_id".into(),
            bases.iter().map(|b| b.image.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "base_owner".into(),
            bases.iter().map(|b| b.owner.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "base_name".into(),
            bases.iter().map(|b| b.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "base_not_known".into(),
            bases
                .iter()
                .map(|b| b.not_known.clone())
                .collect::<Vec<_>>(),
        ),
    ] {
        images.with_column(c).map_err(|e| stage("images", &e))?;
    }
    Ok(())
}

fn no_source(image: &str) -> String {
    format!(
        "{image} records no source image (registered, imported, or made before EC2 recorded sources)"
    )
}

/// The most links followed through the inventory's own images.
const MAX_LINKS: usize = 64;

/// The inventory's images by id, with their owners and names.
struct Known<'a, 'b> {
    by_id: &'b HashMap<&'a str, usize>,
    owners: &'b [Option<&'a str>],
    names: &'b [Option<&'a str>],
    sources: &'b [Option<&'a str>],
}

fn not_known(why: String) -> Base {
    Base {
        not_known: Some(why),
        ..Base::default()
    }
}

/// The base a chain's root names: its alias, else the owner DescribeImages
/// showed, else (the root is one of the inventory's images) its owner.
fn from_root((root, alias, owner_id, name, described): Root<'_>, known: &Known<'_, '_>) -> Base {
    let held = known.by_id.get(root).copied();
    // A root among the inventory's images that records no source is no
    // more a known base than that image is on its own.
    if let Some(i) = held
        && alias.is_none()
        && known.sources[i].is_none()
    {
        return not_known(no_source(root));
    }
    let owner = alias
        .or(owner_id)
        .or_else(|| held.and_then(|i| known.owners[i]));
    let name = name.or_else(|| held.and_then(|i| known.names[i]));
    let not_known = owner.is_none().then(|| match described {
        Some(false) => format!("its base {root} has no owner alias, and DescribeImages no longer shows it (deregistered or not visible)"),
        _ => format!("its base {root} has no owner alias, and its owner was not read (DescribeImages)"),
    });
    Base {
        image: Some(root.to_string()),
        owner: owner.map(str::to_string),
        name: name.map(str::to_string),
        not_known,
    }
}

/// (account, region, image) -> the root of the chain GetImageAncestry gave.
fn roots(ancestry: &DataFrame) -> Result<HashMap<(&str, &str, &str), Root<'_>>> {
    let (account, region, image, depth, ancestor) = (
        str_column(ancestry, "account_id")?,
        str_column(ancestry, "region")?,
        str_column(ancestry, "image_id")?,
        i64_column(ancestry, "depth")?,
        str_column(ancestry, "ancestor_image_id")?,
    );
    let (alias, owner, name, described) = (
        str_column(ancestry, "owner_alias")?,
        str_column(ancestry, "owner_id")?,
        str_column(ancestry, "name")?,
        bool_column(ancestry, "described")?,
    );
    let mut deepest: HashMap<(&str, &str, &str), (i64, Root)> = HashMap::new();
    for k in 0..ancestry.height() {
        let (Some(a), Some(r), Some(x), Some(d), Some(root)) =
            (account[k], region[k], image[k], depth[k], ancestor[k])
        else {
            continue;
        };
        let entry = (d, (root, alias[k], owner[k], name[k], described[k]));
        deepest
            .entry((a, r, x))
            .and_modify(|held| {
                if d > held.0 {
                    *held = entry;
                }
            })
            .or_insert(entry);
    }
    Ok(deepest
        .into_iter()
        .map(|(k, (_, root))| (k, root))
        .collect())
}
