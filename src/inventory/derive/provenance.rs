//! What each image is ultimately built on: the root of its ancestry, as
//! the EC2 User Guide defines it ("AMI ancestry"): "A public AMI from a
//! verified provider (identified by its owner alias, which is either
//! amazon or aws-marketplace)"; "An AMI with no recorded ancestor"; "An
//! AMI whose source AMI is from a different partition"; "The 50th AMI in
//! the list".

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use polars::prelude::*;

use crate::error::Result;
use crate::inventory::{bool_column, i64_column, str_column};

/// The owner aliases of verified providers, whose AMIs end a chain.
const VERIFIED: [&str; 2] = ["amazon", "aws-marketplace"];

/// The most links followed through the inventory's own images.
const MAX_LINKS: usize = 64;

/// The root of one image's chain, as far as it is known: its text is the
/// inventory's own (a million AMIs' bases are not four million strings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Base<'a> {
    image: Option<&'a str>,
    /// The owner alias, else the owner account.
    owner: Option<&'a str>,
    /// The owner account, when known.
    account: Option<&'a str>,
    name: Option<&'a str>,
    /// Why the base, or its owner, is not known.
    not_known: Option<String>,
}

/// The last row of a chain GetImageAncestry (or DescribeImages of a root
/// source) gave.
#[derive(Debug, Clone, Copy)]
struct Root<'a> {
    image: &'a str,
    alias: Option<&'a str>,
    account: Option<&'a str>,
    name: Option<&'a str>,
    described: Option<bool>,
    /// Its own source, where the chain names one (the chain stopped short).
    source: Option<&'a str>,
}

/// The inventory's images as the walk reads them.
struct Images<'a> {
    image: Vec<Option<&'a str>>,
    source: Vec<Option<&'a str>>,
    source_region: Vec<Option<&'a str>>,
    region: Vec<Option<&'a str>>,
    owner: Vec<Option<&'a str>>,
    name: Vec<Option<&'a str>>,
    /// (id, region) and id alone -> row.
    at: PlHashMap<(&'a str, &'a str), usize>,
    by_id: PlHashMap<&'a str, usize>,
    /// (account, region, image) -> the depth and root of its chain.
    roots: Roots<'a>,
    account: Vec<Option<&'a str>>,
}

/// Adds `base_image_id`, `base_owner`, `base_owner_account`, `base_name`,
/// `base_owner_in_organization` and `base_not_known` to `images`: each
/// image's source followed through the inventory's own images (a copy or
/// a build of an organization's AMI) until an image with no recorded
/// source (it is its own base) or one whose chain was read, whose root is
/// the base. `members` are the organization's accounts when they were
/// listed.
pub(in crate::inventory) fn provenance(
    images: &DataFrame,
    ancestry: &DataFrame,
    members: Option<&PlHashSet<String>>,
) -> Result<Vec<Column>> {
    let bases: Vec<Base> = {
        let rows = Images::read(images, ancestry)?;
        (0..images.height()).map(|i| rows.base(i)).collect()
    };
    let in_org: Vec<Option<bool>> = bases
        .iter()
        .map(|b| match (members, b.account) {
            (Some(members), Some(account)) => Some(members.contains(account)),
            _ => None,
        })
        .collect();
    // Each column is written straight from the bases, never collected
    // into a vector of its own first.
    let text = |name: &str, f: for<'b> fn(&'b Base) -> Option<&'b str>| {
        StringChunked::from_iter_options(name.into(), bases.iter().map(f)).into_column()
    };
    Ok(vec![
        text("base_image_id", |b| b.image),
        text("base_owner", |b| b.owner),
        text("base_owner_account", |b| b.account),
        text("base_name", |b| b.name),
        Column::new("base_owner_in_organization".into(), in_org),
        text("base_not_known", |b| b.not_known.as_deref()),
    ])
}

fn not_known<'a>(why: String) -> Base<'a> {
    Base {
        not_known: Some(why),
        ..Base::default()
    }
}

impl<'a> Images<'a> {
    fn read(images: &'a DataFrame, ancestry: &'a DataFrame) -> Result<Images<'a>> {
        let image = str_column(images, "image_id")?;
        let region = str_column(images, "region")?;
        // Sized up front: grown from empty, a million rows were rehashed
        // (both strings of every key hashed again) some twenty times.
        let mut at: PlHashMap<(&str, &str), usize> =
            PlHashMap::with_capacity_and_hasher(images.height(), Default::default());
        at.extend((0..images.height()).filter_map(|i| Some(((image[i]?, region[i]?), i))));
        // An id in two regions (a hostile inventory: AMI ids are unique)
        // is its first row's, in table order, whichever way the map of
        // rows would iterate in this process.
        let mut by_id: PlHashMap<&str, usize> =
            PlHashMap::with_capacity_and_hasher(at.len(), Default::default());
        for i in 0..images.height() {
            if let (Some(id), Some(_)) = (image[i], region[i]) {
                by_id.entry(id).or_insert(i);
            }
        }
        Ok(Images {
            source: str_column(images, "source_image_id")?,
            source_region: str_column(images, "source_image_region")?,
            owner: str_column(images, "owner_id")?,
            name: str_column(images, "name")?,
            account: str_column(images, "account_id")?,
            roots: roots(ancestry)?,
            image,
            region,
            at,
            by_id,
        })
    }

    /// Row `start`'s base: follow sources through the inventory; a row
    /// with no source is its own base; a row whose chain was read ends at
    /// the chain's root, or continues where that root is one of the
    /// inventory's images.
    fn base(&self, start: usize) -> Base<'a> {
        let mut i = start;
        for _ in 0..MAX_LINKS {
            let key = (self.account[i], self.region[i], self.image[i]);
            if let (Some(a), Some(r), Some(x)) = key
                && let Some((_, root)) = self.roots.get(&(a, r, x))
            {
                match self.after_root(root) {
                    Ok(base) => return base,
                    Err(next) => {
                        i = next;
                        continue;
                    }
                }
            }
            let Some(src) = self.source[i] else {
                // "An AMI with no recorded ancestor": its own base.
                let owner = self.owner_of(i);
                return Base {
                    image: self.image[i],
                    owner,
                    account: owner,
                    name: self.name[i],
                    not_known: owner.is_none().then(|| {
                        format!("the owner of {} is not known", self.image[i].unwrap_or("?"))
                    }),
                };
            };
            let at = self.source_region[i].or(self.region[i]).unwrap_or_default();
            match self.at.get(&(src, at)) {
                Some(&next) => i = next,
                None => {
                    return not_known(format!(
                        "the ancestry of {} (from {src}) was not read (GetImageAncestry)",
                        self.image[i].unwrap_or("?")
                    ));
                }
            }
        }
        not_known(format!(
            "its ancestry through {} does not end",
            self.image[start].unwrap_or("?")
        ))
    }

    /// The owner of one of the inventory's images (its own account's).
    fn owner_of(&self, i: usize) -> Option<&'a str> {
        self.owner[i].or(self.account[i])
    }

    /// The base a chain's root gives, or the inventory row to go on from.
    fn after_root(&self, root: &Root<'a>) -> std::result::Result<Base<'a>, usize> {
        let verified = root.alias.filter(|a| VERIFIED.contains(a));
        let held = self.by_id.get(root.image).copied();
        if verified.is_none() {
            // The chain stopped short of the root ("from a different
            // partition", "the 50th AMI"): go on where the inventory holds
            // the rest, else it is not known.
            if let Some(src) = root.source {
                return match self.by_id.get(src) {
                    Some(&next) => Err(next),
                    None => Ok(not_known(format!(
                        "its ancestry stops at {}, whose own source {src} is not in it (another partition, or the 50-AMI limit)",
                        root.image
                    ))),
                };
            }
            // A root that is one of the inventory's images is followed
            // there (its own row says whether it has a source).
            if let Some(next) = held
                && self.source[next].is_some()
            {
                return Err(next);
            }
        }
        let account = root.account.or_else(|| held.and_then(|i| self.owner_of(i)));
        let owner = verified.or(account);
        let not_known = owner.is_none().then(|| match root.described {
            Some(false) => format!(
                "its base {} has no verified owner alias, and DescribeImages no longer shows it (deregistered or not visible)",
                root.image
            ),
            _ => format!(
                "its base {} has no verified owner alias, and its owner was not read (DescribeImages)",
                root.image
            ),
        });
        Ok(Base {
            image: Some(root.image),
            owner,
            account,
            name: root.name.or_else(|| held.and_then(|i| self.name[i])),
            not_known,
        })
    }
}

/// (account, region, image) -> the depth and root of its chain.
type Roots<'a> = PlHashMap<(&'a str, &'a str, &'a str), (i64, Root<'a>)>;

/// (account, region, image) -> the deepest row of its chain.
fn roots(ancestry: &DataFrame) -> Result<Roots<'_>> {
    let (account, region, image, depth, ancestor) = (
        str_column(ancestry, "account_id")?,
        str_column(ancestry, "region")?,
        str_column(ancestry, "image_id")?,
        i64_column(ancestry, "depth")?,
        str_column(ancestry, "ancestor_image_id")?,
    );
    let (alias, owner, name, described, source) = (
        str_column(ancestry, "owner_alias")?,
        str_column(ancestry, "owner_id")?,
        str_column(ancestry, "name")?,
        bool_column(ancestry, "described")?,
        str_column(ancestry, "ancestor_source_image_id")?,
    );
    let mut deepest: Roots =
        PlHashMap::with_capacity_and_hasher(ancestry.height(), Default::default());
    for k in 0..ancestry.height() {
        let (Some(a), Some(r), Some(x), Some(d), Some(root)) =
            (account[k], region[k], image[k], depth[k], ancestor[k])
        else {
            continue;
        };
        let entry = (
            d,
            Root {
                image: root,
                alias: alias[k],
                account: owner[k],
                name: name[k],
                described: described[k],
                source: source[k],
            },
        );
        deepest
            .entry((a, r, x))
            .and_modify(|held| {
                if d > held.0 {
                    *held = entry;
                }
            })
            .or_insert(entry);
    }
    Ok(deepest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A base found by id takes the first of the rows with that id, in
    /// table order, every time (the lookup was built by iterating a hash
    /// map, whose order varies from process to process).
    #[test]
    fn an_id_in_two_regions_resolves_to_its_first_row() {
        let images = df!(
            "account_id" => ["111", "111", "111"],
            "region" => ["eu-west-1", "us-east-1", "us-west-2"],
            "image_id" => ["ami-dup", "ami-dup", "ami-c"],
            "source_image_id" => [None, None, Some("ami-dup")],
            "source_image_region" => [None::<&str>, None, None],
            "owner_id" => ["111", "111", "111"],
            "name" => ["first", "second", "child"],
        )
        .unwrap();
        let ancestry = df!(
            "account_id" => ["111"],
            "region" => ["us-west-2"],
            "image_id" => ["ami-c"],
            "depth" => [1i64],
            "ancestor_image_id" => ["ami-dup"],
            "owner_alias" => [None::<&str>],
            "owner_id" => [None::<&str>],
            "name" => [None::<&str>],
            "described" => [Some(true)],
            "ancestor_source_image_id" => [None::<&str>],
        )
        .unwrap();
        for _ in 0..20 {
            let columns = provenance(&images, &ancestry, None).unwrap();
            let name = columns.iter().find(|c| c.name() == "base_name").unwrap();
            assert_eq!(name.str().unwrap().get(2), Some("first"));
        }
    }
}
