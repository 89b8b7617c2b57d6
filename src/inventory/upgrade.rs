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
    if from < 5 {
        v4_to_v5(tables).map_err(|e| {
            Error::Internal(format!(
                "upgrading a schema version {from} inventory: {}",
                polars_message(&e)
            ))
        })?;
    }
    Ok(())
}

/// Scanners before version 5 wrote `pipelines.tests_enabled` as AWS
/// answered it, null where the answer named none; the API reference makes
/// that the default, which is on ("Image Builder defaults to enable tests
/// to run following the image build"). Every other column version 5 added
/// was not collected and stays null.
///
/// They also wrote `infrastructure_configurations.http_tokens` as
/// `optional` where the configuration set none, which version 5 records as
/// null (EC2's launch default then decides): an `optional` of theirs may
/// be either, so it is not known.
fn v4_to_v5(tables: &mut BTreeMap<&'static str, DataFrame>) -> PolarsResult<()> {
    let pipelines = take(tables, "pipelines")?
        .lazy()
        .with_column(col("tests_enabled").fill_null(lit(true)))
        .collect()?;
    tables.insert("pipelines", pipelines);
    let infrastructures = take(tables, "infrastructure_configurations")?
        .lazy()
        .with_column(
            when(col("http_tokens").eq(lit("optional")))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(col("http_tokens"))
                .alias("http_tokens"),
        )
        .collect()?;
    tables.insert("infrastructure_configurations", infrastructures);
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
    let images = with_launch_permission_count(
        take(tables, "images")?.lazy(),
        take(tables, "launch_permissions")?.lazy(),
        lit(true),
    );
    tables.insert("images", images.collect()?);

    let backing = take(tables, "image_block_devices")?
        .lazy()
        .filter(col("snapshot_id").is_not_null())
        .select([col("account_id"), col("region"), col("snapshot_id")])
        .unique(None, UniqueKeepStrategy::First)
        .with_column(lit(true).alias("backs_an_image"));
    let snapshot_keys = [col("account_id"), col("region"), col("snapshot_id")];
    let snapshots = take(tables, "snapshots")?.lazy().join(
        backing,
        snapshot_keys.clone(),
        snapshot_keys,
        JoinArgs::new(JoinType::Left),
    );
    let snapshots = with_snapshot_permission_columns(
        snapshots,
        take(tables, "snapshot_permissions")?.lazy(),
        col("backs_an_image").is_not_null(),
        col("backs_an_image").is_not_null(),
    )
    .drop(by_name(["backs_an_image"], true, false));
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

/// `images.launch_permission_count` from the image's `launch_permissions`
/// rows where `read` (an expression over the image row) says they were
/// read, null (not known) where not.
pub(crate) fn with_launch_permission_count(
    images: LazyFrame,
    launch_permissions: LazyFrame,
    read: Expr,
) -> LazyFrame {
    let keys = [col("account_id"), col("region"), col("image_id")];
    let counts = launch_permissions
        .group_by(keys.clone())
        .agg([len().cast(DataType::Int64).alias("permission_rows")]);
    images
        .drop(by_name(["launch_permission_count"], true, false))
        .join(counts, keys.clone(), keys, JoinArgs::new(JoinType::Left))
        .with_column(
            when(read)
                .then(col("permission_rows").fill_null(lit(0i64)))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("launch_permission_count"),
        )
        .drop(by_name(["permission_rows"], true, false))
}

/// `snapshots.create_volume_permission_count` from the snapshot's
/// `snapshot_permissions` rows where `read` says they were read, and
/// `public` (a permission for `all`) where `public_known` says the scan
/// could tell; null (not known) elsewhere.
pub(crate) fn with_snapshot_permission_columns(
    snapshots: LazyFrame,
    snapshot_permissions: LazyFrame,
    read: Expr,
    public_known: Expr,
) -> LazyFrame {
    let keys = [col("account_id"), col("region"), col("snapshot_id")];
    let permissions = snapshot_permissions.group_by(keys.clone()).agg([
        len().cast(DataType::Int64).alias("permission_rows"),
        col("group").eq(lit("all")).any(true).alias("any_public"),
    ]);
    snapshots
        .drop(by_name(
            ["public", "create_volume_permission_count"],
            true,
            false,
        ))
        .join(
            permissions,
            keys.clone(),
            keys,
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            when(public_known)
                .then(col("any_public").fill_null(lit(false)))
                .otherwise(lit(NULL).cast(DataType::Boolean))
                .alias("public"),
            when(read)
                .then(col("permission_rows").fill_null(lit(0i64)))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("create_volume_permission_count"),
        ])
        .drop(by_name(["permission_rows", "any_public"], true, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::TableBuilder;
    use crate::inventory::schema::{
        self, ImageBlockDeviceRow, ImageRow, LaunchPermissionRow, SnapshotPermissionRow,
        SnapshotRow, TableRow,
    };

    fn table<R: TableRow>(rows: Vec<R>) -> (&'static str, DataFrame) {
        let def = schema::table(R::TABLE).expect("a table");
        let mut builder = TableBuilder::new(def);
        for row in rows {
            builder.push_row(row).expect("a valid row");
        }
        (def.name, builder.finish().expect("a table"))
    }

    /// What a version 1 scanner knew: every image's launch permissions; the
    /// permissions of backing snapshots only.
    #[test]
    fn version_1_knows_what_its_scanner_read_and_no_more() {
        let (a, r) = ("111111111111".to_string(), "eu-west-1".to_string());
        let image = |id: &str| ImageRow {
            account_id: a.clone(),
            region: r.clone(),
            image_id: id.into(),
            ..Default::default()
        };
        let snapshot = |id: &str| SnapshotRow {
            account_id: a.clone(),
            region: r.clone(),
            snapshot_id: id.into(),
            ..Default::default()
        };
        let mut tables: BTreeMap<&'static str, DataFrame> = schema::TABLES
            .iter()
            .map(|def| (def.name, TableBuilder::new(def).finish().expect("empty")))
            .collect();
        for (name, df) in [
            table(vec![image("ami-shared"), image("ami-private")]),
            table(vec![
                LaunchPermissionRow {
                    account_id: a.clone(),
                    region: r.clone(),
                    image_id: "ami-shared".into(),
                    user_id: Some("222222222222".into()),
                    ..Default::default()
                },
                LaunchPermissionRow {
                    account_id: a.clone(),
                    region: r.clone(),
                    image_id: "ami-shared".into(),
                    group: Some("all".into()),
                    ..Default::default()
                },
            ]),
            table(vec![ImageBlockDeviceRow {
                account_id: a.clone(),
                region: r.clone(),
                image_id: "ami-shared".into(),
                is_ebs: true,
                snapshot_id: Some("snap-backing".into()),
                ..Default::default()
            }]),
            table(vec![snapshot("snap-backing"), snapshot("snap-loose")]),
            table(vec![SnapshotPermissionRow {
                account_id: a.clone(),
                region: r.clone(),
                snapshot_id: "snap-backing".into(),
                group: Some("all".into()),
                ..Default::default()
            }]),
        ] {
            tables.insert(name, df);
        }
        v1_to_v2(&mut tables).expect("upgrade");

        let column = |table: &str, name: &str| -> Vec<String> {
            let df = &tables[table];
            let df = df
                .sort([df.get_column_names()[2].as_str()], Default::default())
                .expect("sorted");
            df.column(name)
                .expect("column")
                .as_materialized_series()
                .iter()
                .map(|v| v.to_string())
                .collect()
        };
        assert_eq!(
            column("images", "launch_permission_count"),
            ["0", "2"],
            "ami-private, ami-shared"
        );
        assert_eq!(
            column("snapshots", "create_volume_permission_count"),
            ["1", "null"],
            "snap-backing, snap-loose (never read)"
        );
        assert_eq!(column("snapshots", "public"), ["true", "null"]);
        let ordered: Vec<&str> = tables["snapshots"]
            .get_column_names()
            .iter()
            .map(|c| c.as_str())
            .collect();
        let expected: Vec<&str> = schema::table("snapshots")
            .expect("snapshots")
            .columns
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(ordered, expected, "schema column order");
    }
}
