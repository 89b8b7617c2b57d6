//! `image_key`: a number standing for each table's `image_id`, the same
//! number for the same id in every table of one load, for rules to join and
//! group on. polars hashes and compares a text key byte by byte (an AMI id
//! is 21 bytes); a 32-bit number is one word. At a million AMIs a join of
//! `images` with a per-image aggregate took a fifth to a third less time on
//! the number (BENCHMARKS.md, "Issue 30, eleventh pass").
//!
//! The numbers mean nothing but equality: equal keys, equal ids; a null id,
//! a null key. They are given in the order the ids are first met and are
//! never stored or reported.

use polars::prelude::*;

use crate::error::{Error, Result};

/// The column every table with an `image_id` gets.
pub(in crate::inventory) const IMAGE_KEY: &str = "image_key";

/// Adds `image_key` to every table with a text `image_id` column, `images`
/// first (it holds most ids; the others mostly repeat them).
pub(in crate::inventory) fn image_keys<'t>(
    tables: impl Iterator<Item = (&'t str, &'t mut DataFrame)>,
) -> Result<()> {
    let mut keyed: Vec<(&str, &mut DataFrame)> = tables
        .filter(|(_, df)| {
            df.schema()
                .get("image_id")
                .is_some_and(|dtype| dtype == &DataType::String)
        })
        .collect();
    keyed.sort_by_key(|(name, _)| *name != "images");
    let columns = {
        let mut keys = Keys::default();
        keyed
            .iter()
            .map(|(name, df)| keys.column(name, df))
            .collect::<Result<Vec<Column>>>()?
    };
    for ((name, df), column) in keyed.iter_mut().zip(columns) {
        df.with_column(column).map_err(|e| super::stage(name, &e))?;
    }
    Ok(())
}

/// The keys given so far, and the first table's ids in its order.
#[derive(Default)]
struct Keys<'d> {
    /// Each id's key and, when the first table holds it, its place in
    /// `first`.
    of: PlHashMap<&'d str, (u32, Option<usize>)>,
    /// The first table's (`images`') ids and keys, row by row.
    first: Vec<(&'d str, u32)>,
}

impl<'d> Keys<'d> {
    /// The keys of one table's ids. Most tables are stored in the order of
    /// `images` (account, region, image), so the next id is tried against
    /// the image after the last one found before it is hashed; and rows
    /// come grouped by image, so each run of one id is taken once.
    fn column(&mut self, name: &str, df: &'d DataFrame) -> Result<Column> {
        let ids = df
            .column("image_id")
            .and_then(Column::str)
            .map_err(|e| super::stage(name, &e))?;
        let is_first = self.first.is_empty() && name == "images";
        if is_first {
            self.of.reserve(ids.len());
            self.first.reserve(ids.len());
        }
        let mut out: Vec<Option<u32>> = Vec::with_capacity(ids.len());
        let mut previous: Option<(&str, u32)> = None;
        let mut hint = 0usize;
        for id in ids.iter() {
            let Some(id) = id else {
                out.push(None);
                continue;
            };
            let key = match previous {
                Some((p, key)) if p == id => key,
                _ => {
                    let key = match self.first.get(hint) {
                        Some(&(at, key)) if !is_first && at == id => {
                            hint += 1;
                            key
                        }
                        _ => {
                            let next = u32::try_from(self.of.len()).map_err(|_| {
                                Error::Input(format!(
                                    "inventory: table `{name}`: more than {} distinct image ids, more than one audit can hold",
                                    u32::MAX
                                ))
                            })?;
                            let &mut (key, at) = self
                                .of
                                .entry(id)
                                .or_insert((next, is_first.then_some(self.first.len())));
                            if let Some(at) = at {
                                hint = at + 1;
                            }
                            key
                        }
                    };
                    previous = Some((id, key));
                    key
                }
            };
            if is_first {
                self.first.push((id, key));
            }
            out.push(Some(key));
        }
        Ok(
            UInt32Chunked::from_iter_options(PlSmallStr::from_static(IMAGE_KEY), out.into_iter())
                .into_column(),
        )
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
        // In the images' order (the guess at the next image is right), then
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
}
