//! Synthetic inventories: a fictional organization of any size with
//! realistic violation rates, for demos, tests and benchmarks.
//!
//! Deterministic: the same options give the same inventory, byte for byte
//! (ChaCha8 seeded from `--seed`; time is `--collected-at`, never the clock).
//! The first twelve accounts play fixed roles (an image factory that shares
//! golden images with the organization, workload accounts, sandboxes, a
//! denied account, a neglected legacy account) and carry *planted* findings
//! with fixed ids, listed in [`PLANTED`], that `sample-data/README.md`
//! documents and the tests assert.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use polars::prelude::*;

use crate::error::{Error, Result, polars_message};
use crate::inventory::{Inventory, Manifest, Scope, TableBuilder, Value, schema};

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
const AMAZON_OWNER: &str = "137112412989";
const MARKETPLACE_OWNER: &str = "679593333241";
const COMMUNITY_OWNER: &str = "555500001111";

/// Fixed roles of the first accounts: (name, OU path, image families).
const ROLES: [(&str, &str, &[&str]); 12] = [
    ("acme-management", "Root", &["mgmt-tools-golden"]),
    (
        "acme-security-audit",
        "Root/Security",
        &["sec-tools-golden"],
    ),
    (
        "acme-image-factory",
        "Root/Infrastructure",
        &[
            "al2023-base-golden",
            "ubuntu2404-base-golden",
            "win2022-base-golden",
            "rhel9-cis-golden",
            "al2023-eks-node-golden",
        ],
    ),
    (
        "acme-payments-prod",
        "Root/Workloads/Prod",
        &["payments-api-golden", "payments-worker-golden"],
    ),
    (
        "acme-payments-staging",
        "Root/Workloads/NonProd",
        &["payments-api-golden", "payments-worker-golden"],
    ),
    (
        "acme-web-prod",
        "Root/Workloads/Prod",
        &["web-frontend-golden", "web-api-golden"],
    ),
    (
        "acme-web-dev",
        "Root/Workloads/NonProd",
        &["web-frontend-golden", "web-api-golden"],
    ),
    (
        "acme-data-prod",
        "Root/Workloads/Prod",
        &["data-spark-golden", "data-airflow-golden"],
    ),
    (
        "acme-data-dev",
        "Root/Workloads/NonProd",
        &["data-spark-golden", "data-airflow-golden"],
    ),
    ("acme-sandbox-alice", "Root/Sandbox", &["sandbox-golden"]),
    ("acme-sandbox-bob", "Root/Sandbox", &["sandbox-golden"]),
    (
        "acme-legacy-erp",
        "Root/Workloads/Prod",
        &["erp-app-golden", "erp-db-golden"],
    ),
];
const FACTORY: usize = 2;
const DENIED: usize = 10;
const LEGACY: usize = 11;
const SANDBOX: usize = 9;

/// A planted result: (rule, resource id, why) that the sample organization
/// must fail, or for `unknown` entries (see [`PLANTED_UNKNOWN`]) not judge.
pub const PLANTED_UNKNOWN: &[(&str, &str, &str)] = &[
    (
        "AMI-PUBLIC",
        "ami-0d0e5c71be7a7001",
        "DescribeImageAttribute was throttled for this image",
    ),
    (
        "AMI-SHARED-OUTSIDE-ORG",
        "ami-0d0e5c71be7a7001",
        "DescribeImageAttribute was throttled for this image",
    ),
    (
        "REGION-INSPECTOR-EC2-OFF",
        "eu-west-1",
        "acme-data-prod denied inspector2:BatchGetAccountStatus",
    ),
];

pub const PLANTED: &[(&str, &str, &str)] = &[
    (
        "AMI-PUBLIC",
        "ami-0a11ce5ec7e7pub1",
        "payments debug image made public by hand",
    ),
    (
        "AMI-SHARED-OUTSIDE-ORG",
        "ami-0b0bca75ea7ed0a1",
        "web image shared with partner account 999988887777",
    ),
    (
        "AMI-SHARED-ACCOUNT-BY-ACCOUNT",
        "ami-0c0ffee5a11ac0c7",
        "factory image shared with 7 accounts one by one",
    ),
    (
        "AMI-UNENCRYPTED",
        "ami-0dead0e7c0de0e70",
        "legacy ERP image with an unencrypted root volume",
    ),
    (
        "AMI-AWS-MANAGED-KEY",
        "ami-0e0f5aa7ad0be5ca",
        "staging image encrypted with aws/ebs",
    ),
    (
        "AMI-NO-DEPRECATION",
        "ami-0dead0e7c0de0e70",
        "legacy ERP image, no deprecation time",
    ),
    (
        "AMI-STALE",
        "ami-0dead0e7c0de0e70",
        "legacy ERP image from January 2025",
    ),
    (
        "AMI-DEPRECATED-IN-USE",
        "ami-0f1e2d3c4b5a6978",
        "deprecated payments image still run by i-0de9ecaedf00d0001",
    ),
    (
        "INSTANCE-AMI-MISSING",
        "lt-0a1b2c3d4e5f60718",
        "web-dev launch template pointing at a deregistered AMI",
    ),
    (
        "SNAP-ORPHANED",
        "snap-0c0ffee0ab5e0b1d",
        "factory snapshot left behind by a deregistered AMI",
    ),
    (
        "SNAP-PUBLIC",
        "snap-0bad5eed0b11c0a1",
        "legacy ERP snapshot restorable by anyone",
    ),
    (
        "SNAP-SHARED-OUTSIDE-ORG",
        "snap-0d00dada7a5ea7ed",
        "data snapshot shared with 444455556666",
    ),
    (
        "AMI-UNHEALTHY-STATE",
        "ami-0fa11edbu11d0001",
        "web-dev build that failed",
    ),
    (
        "AMI-REQUIRED-TAGS",
        "ami-0a11ce0000ad0c01",
        "sandbox image with no Owner tag",
    ),
    (
        "AMI-NAMING",
        "ami-0a11ce0000ad0c01",
        "`Alice-Test-Image` breaks the naming convention",
    ),
    (
        "AMI-NOT-PIPELINE-BUILT",
        "ami-0a11ce0000ad0c01",
        "sandbox image built by hand",
    ),
    (
        "INSTANCE-UNAPPROVED-AMI",
        "i-0c0aa1ce0c0aa1ce0",
        "sandbox instance on a community AMI",
    ),
    (
        "VULN-CRITICAL",
        "ami-0f1e2d3c4b5a6978",
        "CVE-2024-6387 (regreSSHion) on the deprecated payments image",
    ),
    (
        "FAMILY-REGION-GAP",
        "al2023-base-golden@ap-southeast-1",
        "newest al2023 base image not copied to ap-southeast-1",
    ),
];

struct Gen {
    rng: ChaCha8Rng,
    now: DateTime<Utc>,
    tables: BTreeMap<&'static str, TableBuilder>,
    account_ids: Vec<String>,
    /// KMS keys already written by planted images, so each is listed once.
    planted_keys: std::collections::BTreeSet<String>,
}

impl Gen {
    fn push<V: Into<Value>>(&mut self, table: &'static str, cells: Vec<(&'static str, V)>) {
        self.tables
            .get_mut(table)
            .expect("schema table")
            .push(cells)
            .expect("synthetic rows match the schema");
    }

    fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..n)
            .map(|_| HEX[self.rng.random_range(0..16)] as char)
            .collect()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn days_ago(&self, days: i64) -> DateTime<Utc> {
        self.now - Duration::days(days)
    }
}

fn account_id(index: usize) -> String {
    format!("{:012}", 210_000_000_000u64 + index as u64 * 1_000_037)
}

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
    };
    for index in 0..options.accounts {
        let (name, ou, _) = role(index);
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
    // Which images each account-region holds, so instances can use them.
    let mut catalog: BTreeMap<(usize, usize), Vec<ImageFacts>> = BTreeMap::new();
    for account in 0..options.accounts {
        let denied = account == DENIED || (account >= ROLES.len() && g.chance(0.01));
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
            if account == SANDBOX && ri == 2 {
                region_not_opted_in(&mut g, account, region);
                continue;
            }
            let images = account_region(&mut g, options, account, ri, region);
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
    let owners: Owners = catalog
        .iter()
        .flat_map(|((account, _), images)| {
            images.iter().map(move |i| (i.image_id.clone(), *account))
        })
        .collect();
    for &(account, ri) in catalog.keys() {
        usage(&mut g, &catalog, &owners, account, ri, regions[ri]);
    }
    plant(&mut g, options, &regions);

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
    let failed = get(tables, "scan_errors")?
        .lazy()
        .filter(col("operation").eq(lit("DescribeImageAttribute")))
        .select([col("resource_id").alias("image_id")])
        .with_column(lit(true).alias("failed"));
    let image_keys = [col("account_id"), col("region"), col("image_id")];
    let counts = get(tables, "launch_permissions")?
        .lazy()
        .group_by(image_keys.clone())
        .agg([len().cast(DataType::Int64).alias("n")]);
    let images = get(tables, "images")?
        .lazy()
        .drop(by_name(["launch_permission_count"], true, false))
        .join(counts, image_keys.clone(), image_keys, JoinArgs::new(JoinType::Left))
        .join(
            failed,
            [col("image_id")],
            [col("image_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(
            when(col("failed").is_not_null())
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col("n").fill_null(lit(0i64)))
                .alias("launch_permission_count"),
        );
    let snapshot_keys = [col("account_id"), col("region"), col("snapshot_id")];
    let permissions = get(tables, "snapshot_permissions")?
        .lazy()
        .group_by(snapshot_keys.clone())
        .agg([
            len().cast(DataType::Int64).alias("n"),
            col("group").eq(lit("all")).any(true).alias("any_public"),
        ]);
    let snapshots = get(tables, "snapshots")?
        .lazy()
        .drop(by_name(["public", "create_volume_permission_count"], true, false))
        .join(
            permissions,
            snapshot_keys.clone(),
            snapshot_keys,
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("any_public").fill_null(lit(false)).alias("public"),
            col("n")
                .fill_null(lit(0i64))
                .alias("create_volume_permission_count"),
        ]);
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
    for (name, lf) in [
        ("images", images),
        ("snapshots", snapshots),
        ("instances", instances),
        ("launch_templates", templates),
    ] {
        let def = schema::table(name)
            .ok_or_else(|| PolarsError::ColumnNotFound(name.to_string().into()))?;
        let df = lf.select(def.columns.iter().map(|c| col(c.name)).collect::<Vec<_>>()).collect()?;
        tables.insert(def.name, df);
    }
    Ok(())
}

fn role(index: usize) -> (String, &'static str, Vec<String>) {
    if let Some((name, ou, families)) = ROLES.get(index) {
        return (
            name.to_string(),
            ou,
            families.iter().map(|f| f.to_string()).collect(),
        );
    }
    let ou = if index.is_multiple_of(3) {
        "Root/Workloads/NonProd"
    } else {
        "Root/Workloads/Prod"
    };
    let app = [
        "orders", "search", "billing", "ml", "media", "iot", "crm", "hr",
    ][index % 8];
    (
        format!("acme-{app}-{index:04}"),
        ou,
        vec![format!("{app}-api-golden"), format!("{app}-worker-golden")],
    )
}

fn region_not_opted_in(g: &mut Gen, account: usize, region: &str) {
    {
        let cells = vec![
            ("account_id", Value::from(g.account_ids[account].clone())),
            ("region", region.into()),
            ("opt_in_status", "not-opted-in".into()),
            ("scan_status", "not-opted-in".into()),
        ];
        g.push("regions", cells);
    }
    {
        let cells = vec![
        ("account_id", Value::from(g.account_ids[account].clone())),
        ("region", region.into()),
        ("service", "ec2".into()),
        ("operation", "DescribeImages".into()),
        ("error_code", "OptInRequired".into()),
        ("message", "You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.".into()),
    ];
        g.push("scan_errors", cells);
    }
}

#[derive(Debug, Clone)]
struct ImageFacts {
    image_id: String,
    newest: bool,
    deprecated: bool,
}

/// Rates of each kind of mistake; the legacy account makes more of them.
struct Rates {
    public: f64,
    outside_share: f64,
    unencrypted: f64,
    aws_key: f64,
    missing_tag: f64,
    bad_name: f64,
    manual: f64,
    imdsv1: f64,
}

fn rates(account: usize) -> Rates {
    let base = Rates {
        public: 0.004,
        outside_share: 0.015,
        unencrypted: 0.05,
        aws_key: 0.15,
        missing_tag: 0.10,
        bad_name: 0.05,
        manual: 0.12,
        imdsv1: 0.25,
    };
    if account == LEGACY {
        Rates {
            public: 0.05,
            outside_share: 0.1,
            unencrypted: 0.45,
            aws_key: 0.6,
            missing_tag: 0.5,
            bad_name: 0.4,
            manual: 0.8,
            imdsv1: 0.8,
        }
    } else {
        base
    }
}

fn account_region(
    g: &mut Gen,
    o: &SynthOptions,
    account: usize,
    ri: usize,
    region: &str,
) -> Vec<ImageFacts> {
    let acct = g.account_ids[account].clone();
    let legacy = account == LEGACY;
    let r = rates(account);
    let cmk = format!(
        "arn:aws:kms:{region}:{acct}:key/{}-{}-4{}-a{}-{}",
        g.hex(8),
        g.hex(4),
        g.hex(3),
        g.hex(3),
        g.hex(12)
    );
    let aws_key = format!(
        "arn:aws:kms:{region}:{acct}:key/{}-{}-4{}-b{}-{}",
        g.hex(8),
        g.hex(4),
        g.hex(3),
        g.hex(3),
        g.hex(12)
    );
    {
        let cells = vec![
            ("account_id", Value::from(acct.clone())),
            ("region", region.into()),
            ("key_arn", cmk.clone().into()),
            ("key_manager", "CUSTOMER".into()),
            ("alias", "alias/golden-ami".into()),
        ];
        g.push("kms_keys", cells);
    }
    {
        let cells = vec![
            ("account_id", Value::from(acct.clone())),
            ("region", region.into()),
            ("key_arn", aws_key.clone().into()),
            ("key_manager", "AWS".into()),
            ("alias", "alias/aws/ebs".into()),
        ];
        g.push("kms_keys", cells);
    }
    let inspector_partial = account == 7 && ri == 1;
    let ebs_default = if legacy { false } else { g.chance(0.75) };
    let image_bpa = if legacy {
        "unblocked"
    } else if g.chance(0.6) {
        "block-new-sharing"
    } else {
        "unblocked"
    };
    let snap_bpa = if legacy {
        "unblocked"
    } else {
        *g.pick(&[
            "block-all-sharing",
            "block-all-sharing",
            "block-new-sharing",
            "unblocked",
        ])
    };
    let allowed = if legacy {
        "disabled"
    } else {
        *g.pick(&["enabled", "audit-mode", "disabled", "disabled"])
    };
    let inspector = if inspector_partial {
        Value::Null
    } else if legacy || g.chance(0.3) {
        "DISABLED".into()
    } else {
        "ENABLED".into()
    };
    {
        let cells = vec![
            ("account_id", Value::from(acct.clone())),
            ("region", region.into()),
            (
                "opt_in_status",
                (if !(2..=5).contains(&ri) {
                    "opt-in-not-required"
                } else {
                    "opted-in"
                })
                .into(),
            ),
            (
                "scan_status",
                (if inspector_partial { "partial" } else { "ok" }).into(),
            ),
            ("ebs_encryption_by_default", ebs_default.into()),
            (
                "ebs_default_kms_key_id",
                (if ebs_default {
                    aws_key.clone()
                } else {
                    cmk.clone()
                })
                .into(),
            ),
            ("image_block_public_access", image_bpa.into()),
            ("snapshot_block_public_access", snap_bpa.into()),
            ("allowed_images_state", allowed.into()),
            ("inspector_ec2_status", inspector),
        ];
        g.push("regions", cells);
    }
    if inspector_partial {
        for op in ["BatchGetAccountStatus", "ListFindings"] {
            {
                let cells = vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("service", "inspector2".into()),
                    ("operation", op.into()),
                    ("error_code", "AccessDeniedException".into()),
                    (
                        "message",
                        format!("User is not authorized to perform: inspector2:{op}").into(),
                    ),
                ];
                g.push("scan_errors", cells);
            }
        }
    }

    let (_, _, families) = role(account);
    let env = if role(account).1.contains("NonProd") || role(account).1.contains("Sandbox") {
        "nonprod"
    } else {
        "prod"
    };
    let mut images = Vec::new();
    let k = o.images_per_region.max(1);
    let versions = k.div_ceil(families.len());
    for j in 0..k {
        let family = &families[j % families.len()];
        let version = versions - j / families.len(); // j < families.len() is the newest
        let newest = j < families.len();
        // Planted: the newest al2023 base image never reached ap-southeast-1.
        if account == FACTORY && ri == 2 && newest && family == "al2023-base-golden" {
            continue;
        }
        // Releases every ~30 days, the newest 5-35 days old.
        let offset = (j / families.len()) as i64;
        let age = 5
            + (account as i64 * 7 + j as i64 * 3) % 30
            + offset * 30
            + if legacy { 400 } else { 0 };
        let created = g.days_ago(age);
        let image_id = format!("ami-0{}", g.hex(16));
        let windows = family.starts_with("win");
        let mut name = format!("{family}-{}-v{version}", created.format("%Y%m%d"));
        if g.chance(r.bad_name) {
            name = if g.chance(0.5) {
                format!(
                    "{}-{}-v{version}",
                    family.to_uppercase().replace("-GOLDEN", "-Golden"),
                    created.format("%Y-%m-%d")
                )
            } else {
                format!("copy of {family} v{version}")
            };
        }
        let state = if g.chance(0.01) {
            "failed"
        } else if newest && g.chance(0.01) {
            "pending"
        } else {
            "available"
        };
        let deprecation = if newest {
            if g.chance(0.8) {
                Some(created + Duration::days(365))
            } else {
                None
            }
        } else if g.chance(if legacy { 0.2 } else { 0.8 }) {
            Some(created + Duration::days(45))
        } else {
            None
        };
        let deprecated = deprecation.is_some_and(|d| d <= g.now);
        let last_launched = if newest {
            {
                let d = g.rng.random_range(0..5);
                Some(g.days_ago(d))
            }
        } else if g.chance(0.6) {
            Some(created + Duration::days(g.rng.random_range(1..30)))
        } else {
            None
        };
        let public = g.chance(r.public);
        let protection = if newest {
            *g.pick(&[
                "enabled",
                "enabled",
                "enabled-with-cooldown",
                "disabled",
                "disabled",
            ])
        } else {
            "disabled"
        };
        let source = if ri > 0 && account == FACTORY {
            Some(format!("ami-0{}", g.hex(16)))
        } else {
            None
        };
        {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("image_id", image_id.clone().into()),
                ("name", name.clone().into()),
                (
                    "description",
                    format!("{family} golden image v{version}").into(),
                ),
                ("state", state.into()),
                ("owner_id", acct.clone().into()),
                ("creation_date", created.into()),
                ("deprecation_time", deprecation.into()),
                ("last_launched_time", last_launched.into()),
                ("public", public.into()),
                (
                    "architecture",
                    (if family.contains("eks") || g.chance(0.3) {
                        "arm64"
                    } else {
                        "x86_64"
                    })
                    .into(),
                ),
                (
                    "platform",
                    (if windows { Some("windows") } else { None }).into(),
                ),
                (
                    "platform_details",
                    (if windows { "Windows" } else { "Linux/UNIX" }).into(),
                ),
                ("image_type", "machine".into()),
                ("root_device_type", "ebs".into()),
                (
                    "root_device_name",
                    (if windows { "/dev/sda1" } else { "/dev/xvda" }).into(),
                ),
                ("virtualization_type", "hvm".into()),
                ("ena_support", true.into()),
                (
                    "imds_support",
                    (if g.chance(r.imdsv1) {
                        None
                    } else {
                        Some("v2.0")
                    })
                    .into(),
                ),
                (
                    "boot_mode",
                    (*g.pick(&["uefi-preferred", "uefi", "legacy-bios"])).into(),
                ),
                (
                    "tpm_support",
                    (if windows { Some("v2.0") } else { None }).into(),
                ),
                ("deregistration_protection", protection.into()),
                ("source_image_id", source.clone().into()),
                (
                    "source_image_region",
                    (if source.is_some() {
                        Some(REGIONS[0])
                    } else {
                        None
                    })
                    .into(),
                ),
                ("image_allowed", (allowed != "disabled").into()),
            ];
            g.push("images", cells);
        }
        // Launch permissions.
        if public {
            launch_permission(g, &acct, region, &image_id, "group", "all");
        }
        if account == FACTORY {
            match g.rng.random_range(0..100) {
                0..70 => launch_permission(
                    g,
                    &acct,
                    region,
                    &image_id,
                    "organization_arn",
                    &format!(
                        "arn:aws:organizations::{}:organization/{ORGANIZATION_ID}",
                        account_id(0)
                    ),
                ),
                70..85 => launch_permission(
                    g,
                    &acct,
                    region,
                    &image_id,
                    "organizational_unit_arn",
                    &format!(
                        "arn:aws:organizations::{}:ou/{ORGANIZATION_ID}/ou-acme-prod",
                        account_id(0)
                    ),
                ),
                85..95 => {
                    for n in 0..3usize.min(g.account_ids.len()) {
                        let target = g.account_ids[(account + 1 + n) % g.account_ids.len()].clone();
                        launch_permission(g, &acct, region, &image_id, "user_id", &target);
                    }
                }
                _ => {}
            }
        } else if g.chance(0.1) && g.account_ids.len() > 1 {
            let target = g.account_ids[(account + 1) % g.account_ids.len()].clone();
            launch_permission(g, &acct, region, &image_id, "user_id", &target);
        }
        if g.chance(r.outside_share) {
            let outside = (*g.pick(&OUTSIDE_ACCOUNTS)).to_string();
            launch_permission(g, &acct, region, &image_id, "user_id", &outside);
        }
        // Block devices and their snapshots.
        let encrypted = !g.chance(r.unencrypted);
        let key = if g.chance(r.aws_key) {
            aws_key.clone()
        } else {
            cmk.clone()
        };
        let root = if windows { "/dev/sda1" } else { "/dev/xvda" };
        let mut devices = vec![(root.to_string(), if windows { 50 } else { 8 })];
        if g.chance(0.3) {
            devices.push(("/dev/sdb".to_string(), 100));
        }
        for (device, size) in devices {
            let snap = format!("snap-0{}", g.hex(16));
            block_device(
                g,
                &acct,
                region,
                &image_id,
                &device,
                Some(&snap),
                size,
                encrypted,
                &key,
            );
            let description = format!("Created by CreateImage(i-0{}) for {image_id}", g.hex(16));
            snapshot(
                g,
                &acct,
                region,
                &snap,
                size,
                encrypted,
                &key,
                &description,
                created,
            );
            if public && g.chance(0.5) {
                {
                    let cells = vec![
                        ("account_id", Value::from(acct.clone())),
                        ("region", region.into()),
                        ("snapshot_id", snap.into()),
                        ("group", "all".into()),
                    ];
                    g.push("snapshot_permissions", cells);
                }
            }
        }
        if g.chance(0.1) {
            {
                let cells = vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("image_id", image_id.clone().into()),
                    ("device_name", "/dev/sdc".into()),
                    ("virtual_name", "ephemeral0".into()),
                    ("is_ebs", false.into()),
                ];
                g.push("image_block_devices", cells);
            }
        }
        // Tags.
        let pipeline = !g.chance(r.manual);
        let mut tags: Vec<(&str, String)> = vec![
            ("Name", name.clone()),
            (
                "Owner",
                format!(
                    "{}-team@acme.example",
                    family.split('-').next().unwrap_or("platform")
                ),
            ),
            ("Version", format!("{version}")),
            ("Environment", env.to_string()),
        ];
        if g.chance(r.missing_tag) {
            let drop = g.rng.random_range(1..4);
            if g.chance(0.3) {
                tags[drop].1 = String::new();
            } else {
                tags.remove(drop);
            }
        }
        if pipeline {
            tags.push(("CreatedBy", "EC2 Image Builder".to_string()));
            tags.push((
                "Ec2ImageBuilderArn",
                format!("arn:aws:imagebuilder:{region}:{acct}:image/{family}/1.{version}.0/1"),
            ));
        }
        for (key, value) in tags {
            {
                let cells = vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("image_id", image_id.clone().into()),
                    ("key", key.into()),
                    ("value", value.into()),
                ];
                g.push("image_tags", cells);
            }
        }
        images.push(ImageFacts {
            image_id,
            newest,
            deprecated,
        });
    }
    // Snapshots left behind by deregistered AMIs, and plain backups.
    if g.chance(0.3) {
        let snap = format!("snap-0{}", g.hex(16));
        let gone = format!("ami-0{}", g.hex(16));
        let description = format!("Created by CreateImage(i-0{}) for {gone}", g.hex(16));
        let started = g.days_ago(200);
        snapshot(
            g,
            &acct,
            region,
            &snap,
            8,
            true,
            &cmk,
            &description,
            started,
        );
    }
    let snap = format!("snap-0{}", g.hex(16));
    snapshot(
        g,
        &acct,
        region,
        &snap,
        20,
        ebs_default,
        &cmk,
        "nightly backup of data volume",
        g.days_ago(1),
    );
    if g.chance(0.01) {
        {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("snapshot_id", snap.into()),
                ("user_id", OUTSIDE_ACCOUNTS[1].into()),
            ];
            g.push("snapshot_permissions", cells);
        }
    }
    images
}

fn launch_permission(
    g: &mut Gen,
    acct: &str,
    region: &str,
    image_id: &str,
    column: &'static str,
    value: &str,
) {
    {
        let cells = vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("image_id", image_id.into()),
            (column, value.into()),
        ];
        g.push("launch_permissions", cells);
    }
}

#[allow(clippy::too_many_arguments)]
fn block_device(
    g: &mut Gen,
    acct: &str,
    region: &str,
    image_id: &str,
    device: &str,
    snap: Option<&str>,
    size: i64,
    encrypted: bool,
    key: &str,
) {
    {
        let cells = vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("image_id", image_id.into()),
            ("device_name", device.into()),
            ("is_ebs", true.into()),
            ("snapshot_id", snap.into()),
            ("volume_size", size.into()),
            ("volume_type", "gp3".into()),
            ("encrypted", encrypted.into()),
            (
                "kms_key_id",
                (if encrypted { Some(key) } else { None }).into(),
            ),
            ("delete_on_termination", true.into()),
        ];
        g.push("image_block_devices", cells);
    }
}

#[allow(clippy::too_many_arguments)]
fn snapshot(
    g: &mut Gen,
    acct: &str,
    region: &str,
    snap: &str,
    size: i64,
    encrypted: bool,
    key: &str,
    description: &str,
    started: DateTime<Utc>,
) {
    let vol = format!("vol-0{}", g.hex(16));
    {
        let cells = vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("snapshot_id", snap.into()),
            ("volume_id", vol.into()),
            ("volume_size", size.into()),
            ("state", "completed".into()),
            ("encrypted", encrypted.into()),
            (
                "kms_key_id",
                (if encrypted { Some(key) } else { None }).into(),
            ),
            ("description", description.into()),
            ("start_time", started.into()),
        ];
        g.push("snapshots", cells);
    }
}

const CVES: [(&str, &str, &str); 8] = [
    (
        "CVE-2024-6387",
        "CRITICAL",
        "openssh: regreSSHion remote code execution",
    ),
    (
        "CVE-2023-4911",
        "HIGH",
        "glibc: Looney Tunables buffer overflow in ld.so",
    ),
    ("CVE-2024-3094", "CRITICAL", "xz-utils: backdoor in liblzma"),
    (
        "CVE-2023-38545",
        "HIGH",
        "curl: SOCKS5 heap buffer overflow",
    ),
    ("CVE-2024-2961", "HIGH", "glibc: iconv out-of-bounds write"),
    ("CVE-2023-44487", "MEDIUM", "HTTP/2 rapid reset"),
    (
        "CVE-2024-21626",
        "HIGH",
        "runc: container breakout through leaked fd",
    ),
    (
        "CVE-2023-48795",
        "MEDIUM",
        "openssh: Terrapin prefix truncation",
    ),
];

/// Image id -> index of the owning account.
type Owners = std::collections::HashMap<String, usize>;

fn owner_of(g: &Gen, owners: &Owners, image_id: &str) -> Option<String> {
    owners
        .get(image_id)
        .map(|account| g.account_ids[*account].clone())
}

/// Instances, launch templates and Inspector findings: what uses which image.
fn usage(
    g: &mut Gen,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    owners: &Owners,
    account: usize,
    ri: usize,
    region: &str,
) {
    let acct = g.account_ids[account].clone();
    let own = &catalog[&(account, ri)];
    // Workloads run the factory's shared images as well as their own.
    let factory = catalog.get(&(FACTORY, ri)).filter(|_| account != FACTORY);
    let mut pool: Vec<&ImageFacts> = own.iter().collect();
    if let Some(f) = factory {
        pool.extend(f.iter());
    }
    let n = (own.len() / 2).max(1);
    for _ in 0..n {
        let instance_id = format!("i-0{}", g.hex(16));
        let roll = g.rng.random_range(0..100);
        let (image_id, owner, image) = if roll < 5 {
            (format!("ami-0{}", g.hex(16)), None, None)
        } else if roll < 12 {
            let owner = *g.pick(&[AMAZON_OWNER, MARKETPLACE_OWNER]);
            (format!("ami-0{}", g.hex(16)), Some(owner.to_string()), None)
        } else {
            let newest: Vec<&&ImageFacts> = pool
                .iter()
                .filter(|i| i.newest || g.rng.random_bool(0.15))
                .collect();
            let chosen = if newest.is_empty() {
                pool[0]
            } else {
                *newest[g.rng.random_range(0..newest.len())]
            };
            let owner = owner_of(g, owners, &chosen.image_id);
            (chosen.image_id.clone(), owner, Some(chosen.clone()))
        };
        let launched = {
            let d = g.rng.random_range(0..60);
            g.days_ago(d)
        };
        {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("instance_id", instance_id.clone().into()),
                ("name", format!("{}-{}", role(account).0, g.hex(4)).into()),
                ("image_id", image_id.clone().into()),
                ("image_owner_id", owner.into()),
                (
                    "state",
                    (if g.chance(0.85) { "running" } else { "stopped" }).into(),
                ),
                (
                    "instance_type",
                    (*g.pick(&["m7g.large", "c7i.xlarge", "t3.medium", "r7g.2xlarge"])).into(),
                ),
                ("launch_time", launched.into()),
            ];
            g.push("instances", cells);
        }
        if let Some(image) = image
            && g.chance(if image.deprecated { 0.7 } else { 0.3 })
        {
            for _ in 0..g.rng.random_range(1..4) {
                let (cve, sev, title) = *g.pick(&CVES);
                finding(
                    g,
                    &acct,
                    region,
                    &image.image_id,
                    Some(&instance_id),
                    cve,
                    sev,
                    title,
                );
            }
        }
    }
    // Launch templates: $Default and $Latest versions.
    for t in 0..2 {
        let lt = format!("lt-0{}", g.hex(16));
        let latest = g.rng.random_range(1..6i64);
        let default = if g.chance(0.7) { latest } else { latest - 1 }.max(1);
        for version in if default == latest {
            vec![latest]
        } else {
            vec![default, latest]
        } {
            let roll = g.rng.random_range(0..100);
            let (image_id, owner) = if roll < 4 {
                (format!("ami-0{}", g.hex(16)), None)
            } else {
                let img = pool[g.rng.random_range(0..pool.len())];
                (img.image_id.clone(), owner_of(g, owners, &img.image_id))
            };
            {
                let cells = vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("launch_template_id", lt.clone().into()),
                    (
                        "launch_template_name",
                        format!("{}-lt-{t}", role(account).0).into(),
                    ),
                    ("version_number", version.into()),
                    ("is_default", (version == default).into()),
                    ("is_latest", (version == latest).into()),
                    ("image_id", image_id.into()),
                    ("image_owner_id", owner.into()),
                ];
                g.push("launch_templates", cells);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn finding(
    g: &mut Gen,
    acct: &str,
    region: &str,
    image_id: &str,
    instance: Option<&str>,
    cve: &str,
    severity: &str,
    title: &str,
) {
    let first = {
        let d = g.rng.random_range(1..120);
        g.days_ago(d)
    };
    let arn = format!("arn:aws:inspector2:{region}:{acct}:finding/{}", g.hex(32));
    {
        let cells = vec![
            ("account_id", Value::from(acct)),
            ("region", region.into()),
            ("finding_arn", arn.into()),
            ("image_id", image_id.into()),
            ("instance_id", instance.into()),
            (
                "resource_type",
                (if instance.is_some() {
                    "AWS_EC2_INSTANCE"
                } else {
                    "AWS_EC2_AMI"
                })
                .into(),
            ),
            ("severity", severity.into()),
            ("vulnerability_id", cve.into()),
            ("title", title.into()),
            ("status", "ACTIVE".into()),
            (
                "fix_available",
                (if g.chance(0.75) { "YES" } else { "NO" }).into(),
            ),
            ("first_observed_at", first.into()),
            ("last_observed_at", g.days_ago(0).into()),
        ];
        g.push("inspector_findings", cells);
    }
}

/// Planted findings with fixed ids (see [`PLANTED`]); each needs its account
/// and region to exist in the requested size.
fn plant(g: &mut Gen, o: &SynthOptions, regions: &[&str]) {
    let has = |account: usize, ri: usize| account < o.accounts && ri < regions.len();
    let now = g.now;
    let image = |g: &mut Gen,
                 account: usize,
                 ri: usize,
                 id: &str,
                 name: &str,
                 created_days: i64,
                 extra: Vec<(&'static str, Value)>,
                 encrypted: bool,
                 key_alias: &str,
                 tags: &[(&str, &str)]| {
        let acct = g.account_ids[account].clone();
        let region = regions[ri];
        let mut cells: Vec<(&'static str, Value)> = vec![
            ("account_id", acct.clone().into()),
            ("region", region.into()),
            ("image_id", id.into()),
            ("name", name.into()),
            ("description", format!("planted: {name}").into()),
            ("state", "available".into()),
            ("owner_id", acct.clone().into()),
            ("creation_date", (now - Duration::days(created_days)).into()),
            ("deprecation_time", (now + Duration::days(300)).into()),
            ("last_launched_time", (now - Duration::days(1)).into()),
            ("public", false.into()),
            ("architecture", "x86_64".into()),
            ("platform_details", "Linux/UNIX".into()),
            ("image_type", "machine".into()),
            ("root_device_type", "ebs".into()),
            ("root_device_name", "/dev/xvda".into()),
            ("virtualization_type", "hvm".into()),
            ("ena_support", true.into()),
            ("imds_support", "v2.0".into()),
            ("boot_mode", "uefi".into()),
            ("deregistration_protection", "enabled".into()),
            ("image_allowed", true.into()),
        ];
        for (k, v) in extra {
            if let Some(c) = cells.iter_mut().find(|(name, _)| *name == k) {
                c.1 = v;
            } else {
                cells.push((k, v));
            }
        }
        g.push("images", cells);
        let key = format!(
            "arn:aws:kms:{region}:{acct}:key/{}",
            if key_alias == "aws/ebs" {
                "aws-managed-ebs-key"
            } else {
                "golden-cmk"
            }
        );
        if g.planted_keys.insert(key.clone()) {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", region.into()),
                ("key_arn", key.clone().into()),
                (
                    "key_manager",
                    (if key_alias == "aws/ebs" {
                        "AWS"
                    } else {
                        "CUSTOMER"
                    })
                    .into(),
                ),
                ("alias", format!("alias/{key_alias}").into()),
            ];
            g.push("kms_keys", cells);
        }
        let snap = format!("snap-{}", &id[4..]);
        block_device(
            g,
            &acct,
            region,
            id,
            "/dev/xvda",
            Some(&snap),
            8,
            encrypted,
            &key,
        );
        let description = format!("Created by CreateImage(i-0{}) for {id}", g.hex(16));
        snapshot(
            g,
            &acct,
            region,
            &snap,
            8,
            encrypted,
            &key,
            &description,
            now - Duration::days(created_days),
        );
        for (k, v) in tags {
            {
                let cells = vec![
                    ("account_id", Value::from(acct.clone())),
                    ("region", region.into()),
                    ("image_id", id.into()),
                    ("key", (*k).into()),
                    ("value", (*v).into()),
                ];
                g.push("image_tags", cells);
            }
        }
    };
    let good_tags: &[(&str, &str)] = &[
        ("Owner", "platform-team@acme.example"),
        ("Version", "1"),
        ("Environment", "prod"),
        ("CreatedBy", "EC2 Image Builder"),
    ];

    if has(3, 0) {
        image(
            g,
            3,
            0,
            "ami-0a11ce5ec7e7pub1",
            "payments-debug-golden-20261015-v1",
            38,
            vec![("public", true.into())],
            true,
            "golden-ami",
            good_tags,
        );
        launch_permission(
            g,
            &g.account_ids[3].clone(),
            regions[0],
            "ami-0a11ce5ec7e7pub1",
            "group",
            "all",
        );
        // A deprecated image still in use, with a critical CVE.
        image(
            g,
            3,
            0,
            "ami-0f1e2d3c4b5a6978",
            "payments-api-golden-20260301-v2",
            266,
            vec![
                ("deprecation_time", (now - Duration::days(120)).into()),
                ("deregistration_protection", "disabled".into()),
            ],
            true,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[3].clone();
        {
            let cells = vec![
                ("account_id", Value::from(acct.clone())),
                ("region", regions[0].into()),
                ("instance_id", "i-0de9ecaedf00d0001".into()),
                ("name", "payments-api-legacy".into()),
                ("image_id", "ami-0f1e2d3c4b5a6978".into()),
                ("image_owner_id", acct.clone().into()),
                ("state", "running".into()),
                ("instance_type", "m7g.large".into()),
                ("launch_time", (now - Duration::days(200)).into()),
            ];
            g.push("instances", cells);
        }
        finding(
            g,
            &acct,
            regions[0],
            "ami-0f1e2d3c4b5a6978",
            Some("i-0de9ecaedf00d0001"),
            "CVE-2024-6387",
            "CRITICAL",
            "openssh: regreSSHion remote code execution",
        );
    }
    if has(5, 0) {
        image(
            g,
            5,
            0,
            "ami-0b0bca75ea7ed0a1",
            "web-frontend-golden-20261002-v4",
            30,
            vec![],
            true,
            "golden-ami",
            good_tags,
        );
        launch_permission(
            g,
            &g.account_ids[5].clone(),
            regions[0],
            "ami-0b0bca75ea7ed0a1",
            "user_id",
            OUTSIDE_ACCOUNTS[0],
        );
        // Launch permissions of this one could not be read: sharing rules say unknown.
        image(
            g,
            5,
            0,
            "ami-0d0e5c71be7a7001",
            "web-api-golden-20261101-v5",
            19,
            vec![],
            true,
            "golden-ami",
            good_tags,
        );
        let cells = vec![
            ("account_id", Value::from(g.account_ids[5].clone())),
            ("region", regions[0].into()),
            ("service", "ec2".into()),
            ("operation", "DescribeImageAttribute".into()),
            ("resource_id", "ami-0d0e5c71be7a7001".into()),
            ("error_code", "RequestLimitExceeded".into()),
            ("message", "Request limit exceeded.".into()),
        ];
        g.push("scan_errors", cells);
    }
    if has(FACTORY, 0) && o.accounts >= 8 {
        image(
            g,
            FACTORY,
            0,
            "ami-0c0ffee5a11ac0c7",
            "al2023-jdk21-golden-20261020-v2",
            20,
            vec![],
            true,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[FACTORY].clone();
        for n in 3..10 {
            let target = g.account_ids[n % o.accounts].clone();
            launch_permission(
                g,
                &acct,
                regions[0],
                "ami-0c0ffee5a11ac0c7",
                "user_id",
                &target,
            );
        }
        snapshot(
            g,
            &acct,
            regions[0],
            "snap-0c0ffee0ab5e0b1d",
            8,
            true,
            "arn:aws:kms:us-east-1:0:key/x",
            "Created by CreateImage(i-0123456789abcdef0) for ami-0de7e7ed0000beef",
            now - Duration::days(150),
        );
    }
    if has(LEGACY, 0) {
        image(
            g,
            LEGACY,
            0,
            "ami-0dead0e7c0de0e70",
            "erp-app-golden-20250115-v3",
            676,
            vec![("deprecation_time", Value::Null)],
            false,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[LEGACY].clone();
        snapshot(
            g,
            &acct,
            regions[0],
            "snap-0bad5eed0b11c0a1",
            30,
            false,
            "",
            "ERP database export",
            now - Duration::days(90),
        );
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[0].into()),
                ("snapshot_id", "snap-0bad5eed0b11c0a1".into()),
                ("group", "all".into()),
            ];
            g.push("snapshot_permissions", cells);
        }
    }
    if has(4, 1) {
        image(
            g,
            4,
            1,
            "ami-0e0f5aa7ad0be5ca",
            "payments-api-golden-20261101-v7",
            12,
            vec![],
            true,
            "aws/ebs",
            good_tags,
        );
    }
    if has(7, 1) {
        let acct = g.account_ids[7].clone();
        snapshot(
            g,
            &acct,
            regions[1],
            "snap-0d00dada7a5ea7ed",
            500,
            true,
            "arn:aws:kms:eu-west-1:0:key/y",
            "spark warehouse copy for partner",
            now - Duration::days(10),
        );
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[1].into()),
                ("snapshot_id", "snap-0d00dada7a5ea7ed".into()),
                ("user_id", OUTSIDE_ACCOUNTS[1].into()),
            ];
            g.push("snapshot_permissions", cells);
        }
    }
    if has(6, 0) {
        image(
            g,
            6,
            0,
            "ami-0fa11edbu11d0001",
            "web-api-golden-20261118-v9",
            4,
            vec![("state", "failed".into())],
            true,
            "golden-ami",
            good_tags,
        );
        let acct = g.account_ids[6].clone();
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[0].into()),
                ("launch_template_id", "lt-0a1b2c3d4e5f60718".into()),
                ("launch_template_name", "web-dev-canary".into()),
                ("version_number", 3i64.into()),
                ("is_default", true.into()),
                ("is_latest", true.into()),
                ("image_id", "ami-0de7e7ed0000cafe".into()),
            ];
            g.push("launch_templates", cells);
        }
    }
    if has(SANDBOX, 0) {
        image(
            g,
            SANDBOX,
            0,
            "ami-0a11ce0000ad0c01",
            "Alice-Test-Image",
            60,
            vec![("imds_support", Value::Null)],
            true,
            "golden-ami",
            &[("Environment", "sandbox")],
        );
        let acct = g.account_ids[SANDBOX].clone();
        {
            let cells = vec![
                ("account_id", Value::from(acct)),
                ("region", regions[0].into()),
                ("instance_id", "i-0c0aa1ce0c0aa1ce0".into()),
                ("name", "alice-experiment".into()),
                ("image_id", "ami-0c0a11c0ffee0c0a".into()),
                ("image_owner_id", COMMUNITY_OWNER.into()),
                ("state", "running".into()),
                ("instance_type", "t3.medium".into()),
                ("launch_time", (now - Duration::days(3)).into()),
            ];
            g.push("instances", cells);
        }
    }
}
