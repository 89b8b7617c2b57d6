//! Upgrading older inventory layouts to the current one.
//!
//! A column added in a later version is filled with what the older scanner
//! actually knew, and left null (not known) where it did not: an old
//! inventory must audit the same next year, and never better than the
//! facts it holds.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::error::{Error, Result, polars_message};

pub fn upgrade(from: u32, tables: &mut BTreeMap<&'static str, DataFrame>) -> Result<()> {
    if from < 2 {
        v1_to_v2(tables).map_err(|e| {
            Error::Internal(format!(
                "upgrading a schema version 1 inventory: {}",
                polars_message(&e)
            ))
        })?;
    }
    Ok(())
}

fn take(tables: &mut BTreeMap<&'static str, DataFrame>, name: &str) -> PolarsResult<DataFrame> {
    tables
        .get(name)
        .cloned()
        .ok_or_else(|| PolarsError::ColumnNotFound(format!("table `{name}`").into()))
}

/// Version 1 scanners read the launch permissions of every image they
/// owned, and the createVolumePermissions of only those snapshots that back
/// an image of the same account-region; a failed read left a scan error,
/// which still makes the results there `unknown`. They described the owner
/// of an AMI in use by DescribeImages, so a missing owner meant the AMI was
/// not visible.
fn v1_to_v2(tables: &mut BTreeMap<&'static str, DataFrame>) -> PolarsResult<()> {
    let keys = [col("account_id"), col("region"), col("image_id")];
    let launch_counts = take(tables, "launch_permissions")?
        .lazy()
        .group_by(keys.clone())
        .agg([len().cast(DataType::Int64).alias("n")]);
    let images = take(tables, "images")?
        .lazy()
        .drop(by_name(["launch_permission_count"], true, false))
        .join(
            launch_counts,
            keys.clone(),
            keys.clone(),
            JoinArgs::new(JoinType::Left),
        )
        .with_column(
            col("n")
                .fill_null(lit(0i64))
                .alias("launch_permission_count"),
        )
        .drop(by_name(["n"], true, false));
    tables.insert("images", images.collect()?);

    let snapshot_keys = [col("account_id"), col("region"), col("snapshot_id")];
    let backing = take(tables, "image_block_devices")?
        .lazy()
        .filter(col("snapshot_id").is_not_null())
        .select([col("account_id"), col("region"), col("snapshot_id")])
        .unique(None, UniqueKeepStrategy::First)
        .with_column(lit(true).alias("read"));
    let permissions = take(tables, "snapshot_permissions")?
        .lazy()
        .group_by(snapshot_keys.clone())
        .agg([
            len().cast(DataType::Int64).alias("n"),
            col("group").eq(lit("all")).any(true).alias("any_public"),
        ]);
    let snapshots = take(tables, "snapshots")?
        .lazy()
        .drop(by_name(
            ["public", "create_volume_permission_count"],
            true,
            false,
        ))
        .join(
            backing,
            snapshot_keys.clone(),
            snapshot_keys.clone(),
            JoinArgs::new(JoinType::Left),
        )
        .join(
            permissions,
            snapshot_keys.clone(),
            snapshot_keys,
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            when(col("read").is_not_null())
                .then(col("any_public").fill_null(lit(false)))
                .otherwise(lit(NULL).cast(DataType::Boolean))
                .alias("public"),
            when(col("read").is_not_null())
                .then(col("n").fill_null(lit(0i64)))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("create_volume_permission_count"),
        ])
        .drop(by_name(["read", "n", "any_public"], true, false));
    tables.insert("snapshots", snapshots.collect()?);

    for name in ["instances", "launch_templates"] {
        let visible = when(col("image_id").is_null())
            .then(lit(NULL).cast(DataType::Boolean))
            .otherwise(col("image_owner_id").is_not_null())
            .alias("image_visible");
        let df = take(tables, name)?.lazy().with_column(visible).collect()?;
        tables.insert(
            if name == "instances" {
                "instances"
            } else {
                "launch_templates"
            },
            df,
        );
    }
    // Restore schema column order (joins append).
    for name in ["images", "snapshots"] {
        if let (Some(def), Some(df)) = (super::schema::table(name), tables.get(name)) {
            let ordered = df.select(def.columns.iter().map(|c| c.name))?;
            tables.insert(def.name, ordered);
        }
    }
    Ok(())
}
