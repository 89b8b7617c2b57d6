//! Whether Inspector scans an image: the one fact both vulnerability rules
//! stand on.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::stage;
use crate::error::Result;
use crate::inventory::str_column;

/// Inspector scans running instances, not images: an image is covered
/// where one of its instances runs in an account-region with EC2 scanning
/// `ENABLED` (BatchGetAccountStatus) whose findings were read (no
/// ListFindings error there).
const SCANNED: &str = "
    SELECT DISTINCT t.image_id
    FROM instances t
    JOIN regions r ON t.account_id = r.account_id AND t.region = r.region
    LEFT JOIN (SELECT DISTINCT account_id, region FROM scan_errors
               WHERE service = 'inspector2' AND operation = 'ListFindings') e
      ON t.account_id = e.account_id AND t.region = e.region
    WHERE t.state = 'running' AND r.inspector_ec2_status = 'ENABLED' AND e.account_id IS NULL
";

/// Adds `inspector_scanned` to `images`: true where a running instance of
/// the image is scanned as [`SCANNED`] says, else false (the rules read
/// false as "no finding proves nothing").
pub(in crate::inventory) fn inspector_scanned(
    tables: &mut BTreeMap<&'static str, DataFrame>,
) -> Result<()> {
    let mut ctx = polars::sql::SQLContext::new();
    for name in ["instances", "regions", "scan_errors"] {
        if let Some(df) = tables.get(name) {
            ctx.register(name, df.clone().lazy());
        }
    }
    let scanned = ctx
        .execute(SCANNED)
        .and_then(|plan| plan.collect())
        .map_err(|e| stage("images", &e))?;
    let ids: PlHashSet<&str> = str_column(&scanned, "image_id")?
        .into_iter()
        .flatten()
        .collect();
    let Some(images) = tables.get_mut("images") else {
        return Ok(());
    };
    let flags: Vec<bool> = str_column(images, "image_id")?
        .into_iter()
        .map(|id| id.is_some_and(|id| ids.contains(id)))
        .collect();
    images
        .with_column(Column::new("inspector_scanned".into(), flags))
        .map_err(|e| stage("images", &e))?;
    Ok(())
}
