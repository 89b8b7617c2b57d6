//! Derived columns and tables: facts computed once, at load, from the
//! stored ones and the inventory's `collected_at`, so rules and reports
//! read one answer instead of each computing its own.
//!
//! - per table: ages (`age_days`, `open_days`), `deprecated`, `family`,
//!   the image a snapshot was made for ([`snapshots`]);
//! - the versions of each image family ([`family_versions`]);
//! - what each image is ultimately built on ([`provenance`]);
//! - across tables, what launches which AMI: the AMI a launch template
//!   version or an Auto Scaling launch source will launch, `resolve:ssm:`
//!   followed to the parameter ([`launch_images`]); every consumer of an
//!   AMI in one table, `launches`; and where the consumers were not read in
//!   full, `consumer_gaps` ([`usage`]);
//! - `image_key`, a number for each `image_id` to join on, and
//!   `created_for_image_key` for the snapshots' ([`image_keys`]).
//!
//! Lookups are polars' hash maps (`PlHashMap`: foldhash, seeded per
//! process). std's SipHash was 18 % of the load's CPU at a million AMIs;
//! seeded, a crafted inventory still cannot choose its collisions.

use polars::prelude::*;

use super::FAMILY_SUFFIX;
// A table of the inventory being assembled.
use super::table_of as table;
use crate::error::{Error, Result, polars_message};

mod inspector;
mod keys;
mod launch_images;
mod provenance;
mod snapshots;
mod usage;
mod uses;
mod versions;

pub(super) use inspector::inspector_scanned;
#[cfg(test)]
pub(super) use keys::KEYED;
pub(super) use keys::image_keys;
pub(super) use launch_images::launch_images;
pub(super) use provenance::provenance;
pub(super) use usage::usage;
pub(super) use versions::{Lineage, family_versions};

/// Adds the per-table derived columns of [`super::schema::DERIVED`] to a
/// table, from its stored columns and `now` (the inventory's collected_at).
pub(super) fn columns(name: &str, df: &mut DataFrame, now: i64) -> Result<()> {
    let days = |c: &str| (lit(now) - col(c).cast(DataType::Int64)).floor_div(lit(86_400_000i64));
    let columns = match name {
        "images" => vec![
            days("creation_date").alias("age_days"),
            (col("deprecation_time")
                .cast(DataType::Int64)
                .lt_eq(lit(now)))
            .fill_null(lit(false))
            .alias("deprecated"),
            days("last_launched_time").alias("days_since_last_launch"),
            // A function of `name` alone: FAMILY-REGION-GAP groups an
            // account's versions by name and takes the family with it.
            col("name")
                .str()
                .replace_all(lit(FAMILY_SUFFIX), lit(""), false)
                .alias("family"),
        ],
        "inspector_findings" => vec![days("first_observed_at").alias("open_days")],
        "pipeline_images" => vec![days("date_created").alias("age_days")],
        "snapshots" => return snapshots::created_for_image_id(df),
        _ => return Ok(()),
    };
    *df = std::mem::take(df)
        .lazy()
        .with_columns(columns)
        .collect()
        .map_err(|e| stage(name, &e))?;
    Ok(())
}

pub(super) fn stage(table: &str, e: &PolarsError) -> Error {
    Error::Internal(format!(
        "derived columns of `{table}`: {}",
        polars_message(e)
    ))
}
