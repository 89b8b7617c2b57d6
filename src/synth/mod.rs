//! Synthetic inventories: a fictional organization of any size with
//! realistic violation rates, for demos, tests and benchmarks.
//!
//! Deterministic: the same options give the same inventory, byte for byte
//! (ChaCha8 seeded from `--seed`; time is `--collected-at`, never the clock).
//! The first twelve accounts play fixed roles (`org`: an image factory that
//! shares golden images with the organization, workload accounts,
//! sandboxes, a denied account, a neglected legacy account); `region` makes
//! each account-region's keys, settings, images and snapshots; `usage` the
//! instances, templates and findings; `factory` the Image Builder
//! pipelines; `fleet` the Auto Scaling groups and AMI parameters;
//! `planted` the resources with fixed
//! ids listed in [`PLANTED`], which `sample-data/README.md` documents and
//! the tests assert.

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

mod bases;
mod factory;
mod fleet;
mod org;
mod planted;
mod region;
mod usage;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result, polars_message};
use crate::inventory::upgrade::{with_launch_permission_count, with_snapshot_permission_columns};
use crate::inventory::{Inventory, Manifest, Scope, TableBuilder, Value, schema};
pub use planted::{DEPRECATED_IN_USE, DEPRECATED_USER, Expect, PLANTED, Planted, markdown_tables};

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub accounts: usize,
    pub regions: usize,
    pub images_per_region: usize,
    pub seed: u64,
    pub collected_at: DateTime<Utc>,
}

pub const REGIONS: [&str; 17] = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-1",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "us-east-2",
    "eu-west-2",
    "ca-central-1",
    "ap-south-1",
    "sa-east-1",
    "eu-north-1",
    "ap-southeast-2",
    "us-west-1",
    "eu-west-3",
    "ap-northeast-2",
    "af-south-1",
];

pub const ORGANIZATION_ID: &str = "o-acme7k2x9q";
/// Accounts outside the organization that images get shared with by mistake.
pub const OUTSIDE_ACCOUNTS: [&str; 2] = ["999988887777", "444455556666"];
pub(super) const AMAZON_OWNER: &str = "137112412989";
pub(super) const MARKETPLACE_OWNER: &str = "679593333241";
pub(super) const COMMUNITY_OWNER: &str = "555500001111";

pub(super) struct Gen {
    pub(super) rng: ChaCha8Rng,
    pub(super) now: DateTime<Utc>,
    pub(super) tables: BTreeMap<&'static str, TableBuilder>,
    pub(super) account_ids: Vec<String>,
    /// KMS keys already written by planted images, so each is listed once.
    /// Rows the schema refused (a generator bug; `generate` fails on them).
    pub(super) errors: Vec<String>,
    pub(super) planted_keys: std::collections::BTreeSet<String>,
}

impl Gen {
    pub(super) fn push<V: Into<Value>>(
        &mut self,
        table: &'static str,
        cells: Vec<(&'static str, V)>,
    ) {
        // A row that breaks the schema is a bug of the generator; it is
        // reported by `generate`, never silently dropped.
        let outcome = match self.tables.get_mut(table) {
            Some(builder) => builder.push(cells).map_err(|e| e.to_string()),
            None => Err(format!("no table `{table}`")),
        };
        if let Err(e) = outcome {
            self.errors.push(format!("{table}: {e}"));
        }
    }

    pub(super) fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..n)
            .map(|_| HEX[self.rng.random_range(0..16)] as char)
            .collect()
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    pub(super) fn days_ago(&self, days: i64) -> DateTime<Utc> {
        self.now - Duration::days(days)
    }
}

pub(super) fn account_id(index: usize) -> String {
    format!("{:012}", 210_000_000_000u64 + index as u64 * 1_000_037)
}

#[derive(Debug, Clone)]
pub(super) struct ImageFacts {
    pub(super) image_id: String,
    pub(super) newest: bool,
    pub(super) deprecated: bool,
    pub(super) family: String,
    pub(super) version: usize,
    pub(super) created: DateTime<Utc>,
}

/// Seeds the fleet's random stream (`seed ^ FLEET_STREAM`).
const FLEET_STREAM: u64 = 0xf1ee_7000;

/// Builds the inventory.
pub fn generate(options: &SynthOptions) -> Result<Inventory> {
    let regions: Vec<&str> = REGIONS
        .iter()
        .copied()
        .take(options.regions.clamp(1, REGIONS.len()))
        .collect();
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(options.seed),
        now: options.collected_at,
        tables: schema::TABLES
            .iter()
            .map(|t| (t.name, TableBuilder::new(t)))
            .collect(),
        account_ids: (0..options.accounts).map(account_id).collect(),
        planted_keys: Default::default(),
        errors: Vec::new(),
    };
    push_accounts(&mut g, options.accounts);
    let catalog = images(&mut g, options, &regions);
    let owners: usage::Owners = catalog
        .iter()
        .flat_map(|((account, _), images)| {
            images.iter().map(move |i| (i.image_id.clone(), *account))
        })
        .collect();
    let mut templates = BTreeMap::new();
    for &(account, ri) in catalog.keys() {
        let made = usage::usage(&mut g, &catalog, &owners, account, ri, regions[ri]);
        templates.insert((account, ri), made);
    }
    planted::plant(&mut g, options, &regions);
    factory::pipelines(&mut g, &catalog, &regions);
    // The fleet draws from its own stream (see `fleet`).
    g.rng = ChaCha8Rng::seed_from_u64(options.seed ^ FLEET_STREAM);
    fleet::fleet(&mut g, &catalog, &templates, &regions);
    fleet::plant(&mut g, options, &catalog, &regions);

    finish(g, options, &regions)
}

/// The organization's accounts, each in its organizational unit.
fn push_accounts(g: &mut Gen, accounts: usize) {
    for index in 0..accounts {
        let (name, ou, _) = org::role(index);
        let ou_id = format!(
            "ou-acme-{}",
            ou.rsplit('/').next().unwrap_or("root").to_lowercase()
        );
        let joined = g.days_ago(400 + (index as i64 * 13) % 900);
        {
            let cells = vec![
                ("account_id", Value::from(g.account_ids[index].clone())),
                ("account_name", name.clone().into()),
                ("email", format!("aws+{name}@acme.example").into()),
                ("status", "ACTIVE".into()),
                ("ou_id", ou_id.into()),
                ("ou_path", ou.to_string().into()),
                ("joined_at", joined.into()),
            ];
            g.push("accounts", cells);
        }
    }
}

/// Every account-region's images (a denied account's regions failed and its
/// role could not be assumed); returns which images each account-region
/// holds, so instances can use them.
fn images(
    g: &mut Gen,
    options: &SynthOptions,
    regions: &[&str],
) -> BTreeMap<(usize, usize), Vec<ImageFacts>> {
    let mut catalog: BTreeMap<(usize, usize), Vec<ImageFacts>> = BTreeMap::new();
    for account in 0..options.accounts {
        let denied = account == org::DENIED || (account >= org::ROLES.len() && g.chance(0.01));
        for (ri, region) in regions.iter().enumerate() {
            if denied {
                {
                    let cells = vec![
                        ("account_id", Value::from(g.account_ids[account].clone())),
                        ("region", (*region).into()),
                        ("opt_in_status", "opt-in-not-required".into()),
                        ("scan_status", "failed".into()),
                    ];
                    g.push("regions", cells);
                }
                continue;
            }
            if account == org::SANDBOX && ri == 2 {
                org::region_not_opted_in(g, account, region);
                continue;
            }
            // The factory copies its builds from its first region.
            let builds = catalog
                .get(&(account, 0))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let images =
                region::account_region(g, options.images_per_region, account, ri, region, builds);
            catalog.insert((account, ri), images);
        }
        if denied {
            {
                let cells = vec![
                ("account_id", Value::from(g.account_ids[account].clone())),
                ("service", "sts".into()),
                ("operation", "AssumeRole".into()),
                ("error_code", "AccessDenied".into()),
                ("message", format!(
                    "User: arn:aws:sts::{}:assumed-role/amiaudit/scan is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{}:role/OrganizationAccountAccessRole",
                    account_id(0), g.account_ids[account]
                ).into()),
            ];
                g.push("scan_errors", cells);
            }
        }
    }
    catalog
}

/// The tables with what a scan reads filled in, under a complete manifest.
fn finish(g: Gen, options: &SynthOptions, regions: &[&str]) -> Result<Inventory> {
    if let Some(first) = g.errors.first() {
        return Err(Error::Internal(format!("synth: {first}")));
    }
    let mut tables = g
        .tables
        .into_iter()
        .map(|(name, b)| Ok((name, b.finish()?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    what_a_scan_reads(&mut tables)
        .map_err(|e| Error::Internal(format!("synth: {}", polars_message(&e))))?;
    let mut manifest = Manifest::new(
        options.collected_at,
        Scope {
            source: "synthetic".to_string(),
            organization_id: Some(ORGANIZATION_ID.to_string()),
            management_account_id: Some(account_id(0)),
            caller_arn: None,
            accounts: g.account_ids.clone(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
        },
    );
    manifest.complete = true;
    Inventory::new(manifest, tables)
}

/// What DescribeImageReferences answers in each account-region for its own
/// images: the instances (every one generated is running or stopped), the
/// launch template versions and the AMI parameters there that name them.
fn image_references(
    images: &LazyFrame,
    instances: &LazyFrame,
    templates: &LazyFrame,
    parameters: LazyFrame,
) -> PolarsResult<LazyFrame> {
    let own = images
        .clone()
        .select([col("account_id"), col("region"), col("image_id")]);
    let referencing = |consumers: LazyFrame, kind: &str, arn: Expr| {
        consumers
            .join(
                own.clone(),
                [col("account_id"), col("region"), col("image_id")],
                [col("account_id"), col("region"), col("image_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .select([
                col("account_id"),
                col("region"),
                col("image_id"),
                lit(kind.to_string()).alias("resource_type"),
                arn.alias("resource_arn"),
            ])
    };
    let arn = |service: &str, kind: &str, id: Expr| {
        concat_str(
            [
                lit(format!("arn:aws:{service}:")),
                col("region"),
                lit(":"),
                col("account_id"),
                lit(format!(":{kind}")),
                id,
            ],
            "",
            true,
        )
    };
    let parts = [
        referencing(
            instances.clone(),
            "ec2:Instance",
            arn("ec2", "instance/", col("instance_id")),
        ),
        referencing(
            templates.clone(),
            "ec2:LaunchTemplate",
            arn("ec2", "launch-template/", col("launch_template_id")),
        ),
        referencing(
            parameters.filter(col("data_type").eq(lit("aws:ec2:image"))),
            "ssm:Parameter",
            arn(
                "ssm",
                "parameter/",
                col("name").str().strip_prefix(lit("/")),
            ),
        ),
    ];
    Ok(concat(parts, UnionArgs::default())?.unique_stable(None, UniqueKeepStrategy::First))
}

/// The columns a scan fills from its per-resource reads, from the rows
/// generated: every image's and every snapshot's permissions were read
/// (except where a scan error says the read failed), snapshots anyone can
/// restore are the ones with a permission for `all`, and an instance's AMI
/// is visible when its owner is known (the others were deregistered).
fn what_a_scan_reads(tables: &mut BTreeMap<&'static str, DataFrame>) -> PolarsResult<()> {
    let get = |tables: &BTreeMap<&'static str, DataFrame>, name: &str| {
        tables
            .get(name)
            .cloned()
            .ok_or_else(|| PolarsError::ColumnNotFound(name.to_string().into()))
    };
    let failed_reads = |operation: &str, id: &str| -> PolarsResult<LazyFrame> {
        Ok(get(tables, "scan_errors")?
            .lazy()
            .filter(col("operation").eq(lit(operation.to_string())))
            .select([col("resource_id").alias(id.to_string())])
            .with_column(lit(true).alias("read_failed")))
    };
    let joined_on = |id: &str| [col(id.to_string())];
    let images = with_launch_permission_count(
        get(tables, "images")?.lazy().join(
            failed_reads("DescribeImageAttribute", "image_id")?,
            joined_on("image_id"),
            joined_on("image_id"),
            JoinArgs::new(JoinType::Left),
        ),
        get(tables, "launch_permissions")?.lazy(),
        col("read_failed").is_null(),
    );
    // Whether anyone may restore a snapshot comes from the listing of
    // publicly restorable snapshots, which covers every snapshot.
    let snapshots = with_snapshot_permission_columns(
        get(tables, "snapshots")?.lazy().join(
            failed_reads("DescribeSnapshotAttribute", "snapshot_id")?,
            joined_on("snapshot_id"),
            joined_on("snapshot_id"),
            JoinArgs::new(JoinType::Left),
        ),
        get(tables, "snapshot_permissions")?.lazy(),
        col("read_failed").is_null(),
        lit(true),
    );
    let instances = get(tables, "instances")?.lazy().with_columns([
        col("image_owner_id").is_not_null().alias("image_visible"),
        when(col("image_owner_id").is_not_null())
            .then(lit("available"))
            .otherwise(lit("deregistered"))
            .alias("image_state"),
        when(col("image_owner_id").eq(lit(AMAZON_OWNER)))
            .then(lit("amazon"))
            .when(col("image_owner_id").eq(lit(MARKETPLACE_OWNER)))
            .then(lit("aws-marketplace"))
            .otherwise(lit(NULL).cast(DataType::String))
            .alias("image_owner_alias"),
    ]);
    let templates = get(tables, "launch_templates")?.lazy().with_column(
        when(col("image_id").is_null())
            .then(lit(NULL).cast(DataType::Boolean))
            .otherwise(col("image_owner_id").is_not_null())
            .alias("image_visible"),
    );
    let references = image_references(
        &images,
        &instances,
        &templates,
        get(tables, "ssm_parameters")?.lazy(),
    )?;
    // Every image's references were read (nothing plants a failed batch).
    let images = images.with_column(lit(true).alias("references_read"));
    for (name, lf) in [
        ("images", images),
        ("snapshots", snapshots),
        ("instances", instances),
        ("launch_templates", templates),
        ("image_references", references),
    ] {
        let def = schema::table(name)
            .ok_or_else(|| PolarsError::ColumnNotFound(name.to_string().into()))?;
        let df = lf
            .select(def.columns.iter().map(|c| col(c.name)).collect::<Vec<_>>())
            .collect()?;
        tables.insert(def.name, df);
    }
    Ok(())
}
