//! The versions of each image family, in the order they were built.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use polars::prelude::*;

use super::stage;
use crate::error::Result;
use crate::inventory::{i64_column, str_column};

/// What the inventory knows of the images, to order the versions of a family.
pub(in crate::inventory) struct Lineage {
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

/// Orders the versions of each family: the columns `is_copy`,
/// `original_image_id`, `original_region`, `version_built_at`,
/// `family_newest_image_id`, `versions_behind` and `days_behind` of `images`.
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
pub(in crate::inventory) fn family_versions(
    df: &DataFrame,
    ancestry: &DataFrame,
    lineage: &Lineage,
    now: i64,
) -> Result<Vec<Column>> {
    let rows = ImageRows::read(df, ancestry, lineage)?;
    let n = df.height();
    let originals: Vec<Option<Original>> = (0..n).map(|i| rows.original(i)).collect();
    let versions: Vec<Version> = (0..n)
        .map(|i| Version {
            family: match (rows.account[i], rows.region[i], rows.family[i]) {
                (Some(a), Some(r), Some(f)) => Some((a, r, f)),
                _ => None,
            },
            available: rows.state[i].map(|s| s == "available"),
            arrived: seconds(rows.created[i]),
            built: originals[i].as_ref().map(|o| o.built),
        })
        .collect();
    let ranks = rank(&versions, &rows.image, now);
    let copied: Vec<Option<bool>> = (0..n).map(|i| rows.is_copy(i)).collect();
    // The lookups are done with; what follows borrows only from `df`. At
    // a million AMIs they hold hundreds of MB that the columns can reuse.
    drop(rows);
    let original_id: Vec<Option<&str>> = originals
        .iter()
        .map(|o| o.as_ref().map(|o| o.image))
        .collect();
    let original_region: Vec<Option<&str>> = originals
        .iter()
        .map(|o| o.as_ref().map(|o| o.region))
        .collect();
    let built_ms: Vec<Option<i64>> = versions.iter().map(|v| v.built.map(|s| s * 1000)).collect();
    drop(versions);
    let columns = [
        Column::new("is_copy".into(), copied),
        Column::new("original_image_id".into(), original_id),
        Column::new("original_region".into(), original_region),
        Column::new("version_built_at".into(), built_ms)
            .cast(&crate::inventory::timestamp_dtype())
            .map_err(|e| stage("images", &e))?,
        Column::new("family_newest_image_id".into(), ranks.newest),
        Column::new("versions_behind".into(), ranks.behind),
        Column::new("days_behind".into(), ranks.days),
    ];
    Ok(columns.into())
}

/// Milliseconds to whole seconds (CreationDate's resolution).
fn seconds(ms: Option<i64>) -> Option<i64> {
    ms.map(|t| t.div_euclid(1000))
}

/// The source GetImageAncestry named for a copy whose source is elsewhere:
/// (source id, source region, its creation).
type Root<'a> = (Option<&'a str>, Option<&'a str>, Option<i64>);

/// (account, region, image) -> its ancestry's root, None when not known.
type Roots<'a> = PlHashMap<(&'a str, &'a str, &'a str), Option<Root<'a>>>;

/// The images' columns a copy is followed by, with where each image is.
struct ImageRows<'a> {
    account: Vec<Option<&'a str>>,
    region: Vec<Option<&'a str>>,
    family: Vec<Option<&'a str>>,
    image: Vec<Option<&'a str>>,
    state: Vec<Option<&'a str>>,
    source: Vec<Option<&'a str>>,
    source_region: Vec<Option<&'a str>>,
    source_instance: Vec<Option<&'a str>>,
    created: Vec<Option<i64>>,
    /// Where each image is, to follow a copy to its source.
    at: PlHashMap<(&'a str, &'a str), usize>,
    /// (account, region, image) -> its ancestry's root (None: the root
    /// is not known), for copies whose source is not in the inventory.
    nearest: Roots<'a>,
    instance_ids_collected: bool,
}

impl<'a> ImageRows<'a> {
    fn read(df: &'a DataFrame, ancestry: &'a DataFrame, lineage: &Lineage) -> Result<Self> {
        let text = |name: &str| str_column(df, name);
        let region = text("region")?;
        let image = text("image_id")?;
        let mut at: PlHashMap<(&str, &str), usize> =
            PlHashMap::with_capacity_and_hasher(df.height(), Default::default());
        for i in 0..df.height() {
            if let (Some(id), Some(r)) = (image[i], region[i]) {
                at.insert((id, r), i);
            }
        }
        Ok(ImageRows {
            account: text("account_id")?,
            family: text("family")?,
            state: text("state")?,
            source: text("source_image_id")?,
            source_region: text("source_image_region")?,
            source_instance: text("source_instance_id")?,
            created: i64_column(df, "creation_date")?,
            region,
            image,
            at,
            nearest: ancestry_roots(ancestry)?,
            instance_ids_collected: lineage.instance_ids_collected,
        })
    }

    /// Whether row i is a copy: Some(true), Some(false), or None (not known).
    fn is_copy(&self, i: usize) -> Option<bool> {
        if self.source[i].is_none() || self.source_instance[i].is_some() {
            return Some(false);
        }
        if self.instance_ids_collected {
            return Some(true);
        }
        // Older inventories did not collect SourceInstanceId. A source in
        // another region can only be a copy's: CreateImage's source is the
        // AMI its instance was launched from, in the instance's region.
        match self.source_region[i] {
            Some(r) if Some(r) != self.region[i] => Some(true),
            _ => None,
        }
    }

    /// Row i's original (the image first built, where it is, when, to the
    /// second), following copies; bounded, so a cycle planted in a hostile
    /// inventory ends as "not known".
    fn original(&self, start: usize) -> Option<Original<'a>> {
        let mut i = start;
        for _ in 0..64 {
            if !self.is_copy(i)? {
                return Some(Original {
                    image: self.image[i]?,
                    region: self.region[i]?,
                    built: seconds(self.created[i])?,
                });
            }
            let source_id = self.source[i]?;
            let source_at = self.source_region[i].or(self.region[i])?;
            match self.at.get(&(source_id, source_at)) {
                Some(&j) => i = j,
                None => {
                    let key = (self.account[i]?, self.region[i]?, self.image[i]?);
                    let (id, at, created) = self.nearest.get(&key).copied().flatten()?;
                    return Some(Original {
                        image: id?,
                        region: at.unwrap_or(source_at),
                        built: seconds(created)?,
                    });
                }
            }
        }
        None
    }
}

/// The source GetImageAncestry named for each copy whose source is
/// elsewhere, when it is the root of the chain. A source that has a source
/// of its own may be a copy as well as the original build (the chain does
/// not say how each link was made): not taken.
fn ancestry_roots(ancestry: &DataFrame) -> Result<Roots<'_>> {
    let mut nearest = PlHashMap::default();
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
            // The source has ancestors: whether it is the original build
            // is not known.
            _ => {
                nearest.insert((a, r, id), None);
            }
        }
    }
    Ok(nearest)
}

/// Each image's family newest, versions behind and days behind.
struct Ranks<'a> {
    newest: Vec<Option<&'a str>>,
    behind: Vec<Option<i64>>,
    days: Vec<Option<i64>>,
}

/// Ranks each family's versions; `image` names the rows.
fn rank<'a>(versions: &[Version<'_>], image: &[Option<&'a str>], now: i64) -> Ranks<'a> {
    let mut members: PlHashMap<(&str, &str, &str), Vec<usize>> = PlHashMap::default();
    for (i, v) in versions.iter().enumerate() {
        if let Some(f) = v.family
            && v.available != Some(false)
        {
            members.entry(f).or_default().push(i);
        }
    }
    let n = versions.len();
    let mut ranks = Ranks {
        newest: vec![None; n],
        behind: vec![None; n],
        days: vec![None; n],
    };
    for list in members.values() {
        // The family's newest, when it is certain.
        let top = newest_of(list, versions);
        for &x in list {
            ranks.newest[x] = top.and_then(|t| image[t]);
            let (Some(true), Some(bx)) = (versions[x].available, versions[x].built) else {
                continue;
            };
            if let Some((count, first_arrival)) = newer_than(x, bx, list, versions) {
                ranks.behind[x] = Some(count);
                ranks.days[x] = Some(match first_arrival {
                    Some(t) => (now - t * 1000).max(0).div_euclid(86_400_000),
                    None => 0,
                });
            }
        }
    }
    ranks
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

#[cfg(test)]
mod tests;
