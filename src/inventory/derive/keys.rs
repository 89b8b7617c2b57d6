//! `image_key`: a number standing for each table's `image_id`, the same
//! number for the same id in every table of one load, for rules to join and
//! group on (and `created_for_image_key`, in the same numbers, for the
//! image a snapshot was made for). polars hashes and compares a text key
//! byte by byte (an AMI id is 21 bytes); a 32-bit number is one word. At a
//! million AMIs a join of `images` with a per-image aggregate took a fifth
//! to a third less time on the number (BENCHMARKS.md, "Issue 30, eleventh
//! pass").
//!
//! The numbers mean nothing but equality: equal keys, equal ids; a null id,
//! a null key. They are given in a fixed order (the same inventory, the
//! same keys), are never stored, and no report shows them (a `query` of a
//! table does).

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// The column every table with an `image_id` gets.
pub(in crate::inventory) const IMAGE_KEY: &str = "image_key";

/// Each column of image ids that gets keys, and the column its keys go to.
pub(in crate::inventory) const KEYED: [(&str, &str); 2] = [
    ("image_id", IMAGE_KEY),
    ("created_for_image_id", "created_for_image_key"),
];

/// Adds a key column to every table with a text column of [`KEYED`].
///
/// `images.image_id` is keyed first: it holds most ids, and most other
/// columns repeat them in its order. The other columns are then keyed side
/// by side against it alone; the few ids no image has are given their
/// numbers last, one column after another, so the same inventory always
/// gets the same keys.
pub(in crate::inventory) fn image_keys<'t>(
    tables: impl Iterator<Item = (&'t str, &'t mut DataFrame)>,
) -> Result<()> {
    let mut tables: Vec<(&str, &mut DataFrame)> = tables.collect();
    // (table's place, table, id column, key column), `images.image_id` first.
    let mut keyed: Vec<(usize, &str, &'static str, &'static str)> = tables
        .iter()
        .enumerate()
        .flat_map(|(at, (name, df))| {
            KEYED
                .iter()
                .filter(|(id, _)| {
                    df.schema()
                        .get(id)
                        .is_some_and(|dtype| dtype == &DataType::String)
                })
                .map(move |&(id, key)| (at, *name, id, key))
        })
        .collect();
    let is_images =
        |&(_, name, id, _): &(usize, &str, &str, &str)| (name, id) == ("images", "image_id");
    keyed.sort_by_key(|column| !is_images(column));
    let columns = {
        let ids = keyed
            .iter()
            .map(|&(at, name, id, _)| {
                let df = tables.get(at).map(|(_, df)| &**df);
                df.ok_or_else(|| Error::Internal(format!("image keys: no table `{name}`")))?
                    .column(id)
                    .and_then(Column::str)
                    .map(|ids| (name, ids))
                    .map_err(|e| super::stage(name, &e))
            })
            .collect::<Result<Vec<_>>>()?;
        let first_is_images = keyed.first().is_some_and(is_images);
        let (images, rest) = match ids.split_first() {
            Some((&(_, first), rest)) if first_is_images => (Images::key(first)?, rest),
            _ => (Images::default(), &ids[..]),
        };
        let mut looked_up: Vec<LookedUp> = rest
            .par_iter()
            .map(|&(_, ids)| images.look_up(ids))
            .collect();
        // Ids no image has, in column order.
        let mut next = images.of.len();
        let mut others: PlHashMap<&str, u32> = PlHashMap::new();
        for (column, &(name, _)) in looked_up.iter_mut().zip(rest) {
            for &(row, id) in &column.misses {
                let key = match others.get(id) {
                    Some(&key) => key,
                    None => {
                        let key = u32::try_from(next).map_err(|_| too_many(name))?;
                        others.insert(id, key);
                        next += 1;
                        key
                    }
                };
                // Always there: `row` is one of the column's rows.
                if let Some(slot) = column.keys.get_mut(row) {
                    *slot = key;
                }
            }
        }
        let first = first_is_images.then_some(images.keys);
        first
            .into_iter()
            .chain(looked_up.into_iter().map(|t| t.keys))
            .zip(ids.iter().zip(&keyed))
            .map(|(keys, ((name, ids), &(_, _, _, key)))| {
                column(key, keys, ids).map_err(|e| super::stage(name, &e))
            })
            .collect::<Result<Vec<Column>>>()?
    };
    for (&(at, name, _, _), column) in keyed.iter().zip(columns) {
        if let Some((_, df)) = tables.get_mut(at) {
            df.with_column(column).map_err(|e| super::stage(name, &e))?;
        }
    }
    Ok(())
}

fn too_many(table: &str) -> Error {
    Error::Input(format!(
        "inventory: table `{table}`: more than {} distinct image ids, more than one audit can hold",
        u32::MAX
    ))
}

/// A key column named `name`: `keys`, null where the id is.
fn column(name: &'static str, keys: Vec<u32>, ids: &StringChunked) -> PolarsResult<Column> {
    let keys = UInt32Chunked::from_vec(PlSmallStr::from_static(name), keys);
    let keys = if ids.null_count() > 0 {
        keys.set(&ids.is_null(), None)?
    } else {
        keys
    };
    Ok(keys.into_column())
}

/// The keys of `images`: each id's key and its first row there.
#[derive(Default)]
struct Images<'d> {
    of: PlHashMap<&'d str, (u32, usize)>,
    /// Each row's id (None where it is null).
    ids: Vec<Option<&'d str>>,
    keys: Vec<u32>,
}

/// One other table's keys, as far as `images` gives them: the rows whose
/// id no image has hold 0 until they are given theirs (`misses`), and the
/// rows with no id hold 0 until the column makes them null.
struct LookedUp<'d> {
    keys: Vec<u32>,
    misses: Vec<(usize, &'d str)>,
}

impl<'d> Images<'d> {
    fn key(ids: &'d StringChunked) -> Result<Self> {
        let mut images = Images {
            of: PlHashMap::with_capacity(ids.len()),
            ids: Vec::with_capacity(ids.len()),
            keys: Vec::with_capacity(ids.len()),
        };
        for (row, id) in ids.iter().enumerate() {
            images.ids.push(id);
            let key = match id {
                Some(id) => {
                    let next = u32::try_from(images.of.len()).map_err(|_| too_many("images"))?;
                    images.of.entry(id).or_insert((next, row)).0
                }
                None => 0,
            };
            images.keys.push(key);
        }
        Ok(images)
    }

    /// The keys of a table's ids that images have. Each id is first tried
    /// against the image after the last one found (tables stored in the
    /// images' order: account, region, image), then hashed; a run of one
    /// id (rows grouped by image) is taken once.
    fn look_up(&self, ids: &'d StringChunked) -> LookedUp<'d> {
        let mut keys = Vec::with_capacity(ids.len());
        let mut misses = Vec::new();
        let mut previous: Option<(&str, Option<u32>)> = None;
        let mut next_row = 0usize;
        for (row, id) in ids.iter().enumerate() {
            let Some(id) = id else {
                keys.push(0);
                continue;
            };
            let key = match previous {
                Some((p, key)) if p == id => key,
                _ => {
                    let key = if self.ids.get(next_row).copied().flatten() == Some(id) {
                        let key = self.keys.get(next_row).copied();
                        next_row += 1;
                        key
                    } else {
                        self.of.get(id).map(|&(key, at)| {
                            next_row = at + 1;
                            key
                        })
                    };
                    previous = Some((id, key));
                    key
                }
            };
            match key {
                Some(key) => keys.push(key),
                None => {
                    keys.push(0);
                    misses.push((row, id));
                }
            }
        }
        LookedUp { keys, misses }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(df: &DataFrame) -> Vec<Option<u32>> {
        df.column(IMAGE_KEY)
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .collect()
    }

    /// Equal ids get equal keys across tables, different ids different
    /// keys, a null id a null key; a table without `image_id` is untouched.
    #[test]
    fn the_same_id_gets_the_same_key_in_every_table() {
        let mut images = df!("image_id" => ["ami-b", "ami-a", "ami-c"]).unwrap();
        let mut tags = df!("image_id" => [Some("ami-a"), Some("ami-a"), None, Some("ami-d"), Some("ami-b"), Some("ami-a")]).unwrap();
        // In the images' order (the image after the last one found is right), then
        // out of it, then an id no image has.
        let mut devices =
            df!("image_id" => ["ami-b", "ami-a", "ami-a", "ami-c", "ami-a", "ami-e", "ami-c"])
                .unwrap();
        let mut regions = df!("region" => ["eu-west-1"]).unwrap();
        let tables = [
            ("image_block_devices", &mut devices),
            ("image_tags", &mut tags),
            ("regions", &mut regions),
            ("images", &mut images),
        ];
        image_keys(tables.into_iter()).unwrap();
        let (i, t) = (keys_of(&images), keys_of(&tags));
        assert_eq!(
            i.iter()
                .flatten()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            3
        );
        assert_eq!(t[0], i[1]);
        assert_eq!(t[1], i[1]);
        assert_eq!(t[2], None);
        assert!(t[3].is_some() && !i.contains(&t[3]));
        assert_eq!(t[4], i[0]);
        assert_eq!(t[5], i[1]);
        let d = keys_of(&devices);
        assert_eq!(d[..5], [i[0], i[1], i[1], i[2], i[1]]);
        assert!(d[5].is_some() && !i.contains(&d[5]) && d[5] != t[3]);
        assert_eq!(d[6], i[2]);
        assert!(regions.column(IMAGE_KEY).is_err());
    }

    /// An id twice in `images`, a null there, and inventories with no
    /// `images` rows or no `images` table: still one key per id.
    #[test]
    fn repeats_nulls_and_a_missing_images_table_keep_one_key_per_id() {
        let mut images =
            df!("image_id" => [Some("ami-a"), None, Some("ami-b"), Some("ami-a")]).unwrap();
        let mut uses =
            df!("image_id" => [Some("ami-b"), Some("ami-a"), None, Some("ami-z")]).unwrap();
        image_keys([("images", &mut images), ("image_uses", &mut uses)].into_iter()).unwrap();
        let (i, u) = (keys_of(&images), keys_of(&uses));
        assert_eq!(i[0], i[3]);
        assert_eq!(i[1], None);
        assert_ne!(i[0], i[2]);
        assert_eq!(u[..3], [i[2], i[0], None]);
        assert!(u[3].is_some() && !i.contains(&u[3]));

        for with_images in [false, true] {
            let mut empty = df!("image_id" => Vec::<String>::new()).unwrap();
            let mut tags = df!("image_id" => ["ami-a", "ami-b", "ami-a"]).unwrap();
            let mut uses = df!("image_id" => ["ami-b", "ami-c"]).unwrap();
            let mut tables = vec![("image_tags", &mut tags), ("image_uses", &mut uses)];
            if with_images {
                tables.push(("images", &mut empty));
            }
            image_keys(tables.into_iter()).unwrap();
            let (t, u) = (keys_of(&tags), keys_of(&uses));
            assert_eq!(t[0], t[2]);
            assert_eq!(u[0], t[1]);
            let distinct: std::collections::BTreeSet<_> = t.iter().chain(&u).flatten().collect();
            assert_eq!(distinct.len(), 3, "{with_images}");
        }
    }

    /// A snapshot's `created_for_image_id` gets the key its image has, and
    /// an id no image has gets one no other id has, in any table.
    #[test]
    fn the_image_a_snapshot_was_made_for_gets_that_image_s_key() {
        let mut images = df!("image_id" => ["ami-a", "ami-b"]).unwrap();
        let mut uses = df!("image_id" => ["ami-z"]).unwrap();
        let mut snapshots = df!(
            "created_for_image_id" => [Some("ami-b"), None, Some("ami-gone"), Some("ami-z"), Some("ami-gone")]
        )
        .unwrap();
        let tables = [
            ("snapshots", &mut snapshots),
            ("image_uses", &mut uses),
            ("images", &mut images),
        ];
        image_keys(tables.into_iter()).unwrap();
        let (i, u) = (keys_of(&images), keys_of(&uses));
        let s: Vec<Option<u32>> = snapshots
            .column("created_for_image_key")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(s[..2], [i[1], None]);
        assert!(s[2].is_some() && !i.contains(&s[2]) && s[2] != u[0]);
        assert_eq!(s[3], u[0]);
        assert_eq!(s[4], s[2]);
        assert!(snapshots.column(IMAGE_KEY).is_err());
    }
}
