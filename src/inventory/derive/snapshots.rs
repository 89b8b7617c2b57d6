//! `created_for_image_id`: the AMI a snapshot was made for, read once from
//! its description instead of by every rule that asks.

use polars::prelude::*;

use super::stage;
use crate::error::Result;

/// What CreateImage writes on the snapshots it makes
/// (`Created by CreateImage(i-...) for ami-...`) and CopyImage on the
/// copies (`Copied for DestinationAmi ami-... from SourceAmi ami-... ...`).
const MADE_FOR_AN_IMAGE: [&str; 2] = ["Created by CreateImage(", "Copied for DestinationAmi ami-"];
const AMI: &str = "ami-";

/// Adds `created_for_image_id` to `snapshots` (see [`created_for`]).
pub(super) fn created_for_image_id(df: &mut DataFrame) -> Result<()> {
    let ids: StringChunked = df
        .column("description")
        .and_then(Column::str)
        .map_err(|e| stage("snapshots", &e))?
        .iter()
        .map(|description| description.and_then(created_for))
        .collect();
    df.with_column(ids.with_name("created_for_image_id".into()).into_column())
        .map_err(|e| stage("snapshots", &e))?;
    Ok(())
}

/// The image a description says its snapshot was made for: the first
/// `ami-` id (CopyImage: the destination) of a description CreateImage or
/// CopyImage wrote, up to a space, the next `ami-` or the end. None for
/// any other description, and for one of theirs that names no image.
fn created_for(description: &str) -> Option<&str> {
    if !MADE_FOR_AN_IMAGE
        .iter()
        .any(|prefix| description.starts_with(prefix))
    {
        return None;
    }
    let start = description.find(AMI)?;
    let rest = description.get(start + AMI.len()..)?;
    let end = [rest.find(' '), rest.find(AMI)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    (end > 0).then(|| description.get(start..start + AMI.len() + end))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_a_description_names() {
        for (description, image) in [
            (
                "Created by CreateImage(i-0a1b) for ami-0123456789abcdef0",
                Some("ami-0123456789abcdef0"),
            ),
            (
                "Created by CreateImage(i-1) for ami-gone from vol-1",
                Some("ami-gone"),
            ),
            (
                "Copied for DestinationAmi ami-dst from SourceAmi ami-src for SourceSnapshot snap-1. Task created on 1,700,000,000,000.",
                Some("ami-dst"),
            ),
            // The next id ends this one, as a space does.
            (
                "Created by CreateImage(i-1) for ami-12ami-34",
                Some("ami-12"),
            ),
            // Any text may surround it, in any script.
            ("Created by CreateImage(i-é) for ami-ü1 ✓", Some("ami-ü1")),
            // Theirs, naming no image.
            ("Created by CreateImage(i-1) for ", None),
            ("Created by CreateImage(i-1) for ami- x", None),
            // Not theirs.
            ("nightly backup of ami-1", None),
            ("created by createimage(i-1) for ami-1", None),
            ("", None),
        ] {
            assert_eq!(created_for(description), image, "{description}");
        }
    }

    #[test]
    fn a_null_description_names_no_image() {
        let mut df =
            df!("description" => [Some("Created by CreateImage(i-1) for ami-1"), None]).unwrap();
        created_for_image_id(&mut df).unwrap();
        let ids: Vec<Option<&str>> = df
            .column("created_for_image_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ids, [Some("ami-1"), None]);
    }
}
