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
    // Sized up front: grown from empty, its keys were hashed again at each
    // of some twenty doublings (a quarter of this stage's time at 1M AMIs).
    let mut nearest = PlHashMap::with_capacity_and_hasher(ancestry.height(), Default::default());
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
        let family = Family::new(list, versions);
        for &x in list {
            ranks.newest[x] = top.and_then(|t| image[t]);
            let (Some(true), Some(bx)) = (versions[x].available, versions[x].built) else {
                continue;
            };
            if let Some((count, first_arrival)) = family.newer_than(bx) {
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

/// A family's members as `newer_than` reads them: those with a known build
/// time in build order, with what is true of each run of them from a
/// position to the newest, so each version is placed with two binary
/// searches instead of a walk of the whole family (a family of k versions
/// cost k^2 steps: 112 M at a million AMIs).
struct Family {
    /// Build times, oldest first.
    built: Vec<i64>,
    /// From each position to the newest: whether any is not known to be
    /// available, whether any has no arrival time, and the first arrival.
    not_available: Vec<bool>,
    no_arrival: Vec<bool>,
    first_arrival: Vec<Option<i64>>,
    /// The members whose build time is not known: whether any has no
    /// arrival time, and the last arrival.
    unbuilt_without_arrival: bool,
    unbuilt_last_arrival: Option<i64>,
}

impl Family {
    fn new(members: &[usize], versions: &[Version]) -> Family {
        let mut built: Vec<&Version> = Vec::with_capacity(members.len());
        let (mut unbuilt_without_arrival, mut unbuilt_last_arrival) = (false, None);
        for v in members.iter().map(|&i| &versions[i]) {
            if v.built.is_some() {
                built.push(v);
            } else if let Some(arrived) = v.arrived {
                unbuilt_last_arrival =
                    Some(unbuilt_last_arrival.map_or(arrived, |l: i64| l.max(arrived)));
            } else {
                unbuilt_without_arrival = true;
            }
        }
        built.sort_by_key(|v| v.built);
        let k = built.len();
        let (mut not_available, mut no_arrival, mut first_arrival) =
            (vec![false; k], vec![false; k], vec![None; k]);
        let (mut any_not_available, mut any_no_arrival, mut first) = (false, false, None);
        for (p, v) in built.iter().enumerate().rev() {
            any_not_available |= v.available != Some(true);
            any_no_arrival |= v.arrived.is_none();
            if let Some(arrived) = v.arrived {
                first = Some(first.map_or(arrived, |f: i64| f.min(arrived)));
            }
            not_available[p] = any_not_available;
            no_arrival[p] = any_no_arrival;
            first_arrival[p] = first;
        }
        Family {
            built: built.iter().filter_map(|v| v.built).collect(),
            not_available,
            no_arrival,
            first_arrival,
            unbuilt_without_arrival,
            unbuilt_last_arrival,
        }
    }

    /// The versions certainly newer than a member built at `bx`: how many,
    /// and when the first of them arrived (seconds; None when there is
    /// none). None when that is not known: a version that could be newer
    /// (same second, unknown build time or state) or a newer one whose
    /// arrival is not known.
    fn newer_than(&self, bx: i64) -> Option<(i64, Option<i64>)> {
        // A version whose build time is not known is older only if it
        // arrived here before `bx`, whatever it is a copy of.
        if self.unbuilt_without_arrival || self.unbuilt_last_arrival.is_some_and(|a| a >= bx) {
            return None;
        }
        let same = self.built.partition_point(|&b| b < bx);
        let newer = self.built.partition_point(|&b| b <= bx);
        // The member itself is built at `bx`; any other is a tie.
        if newer - same > 1 {
            return None;
        }
        if newer == self.built.len() {
            return Some((0, None));
        }
        // Every newer one must be a version (available) and have arrived.
        if *self.not_available.get(newer)? || *self.no_arrival.get(newer)? {
            return None;
        }
        let count = i64::try_from(self.built.len() - newer).ok()?;
        Some((count, *self.first_arrival.get(newer)?))
    }
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
