//! The image factory: EC2 Image Builder pipelines in the factory account's
//! first region (one per family it builds, plus a retired one), a sandbox
//! experiment and the security team's tools pipeline. Each pipeline is one
//! record below; the planted problems ([`super::PLANTED`]) are fields of
//! those records, so generator and list cannot drift.

#![allow(
    clippy::indexing_slicing,
    reason = "the sample generator indexes arrays it sized itself; a slip is a bug the synth tests catch, never user input"
)]

use std::collections::BTreeMap;

use chrono::Duration;

use super::org::{FACTORY, SANDBOX};
use super::{Gen, ImageFacts, ORGANIZATION_ID, OUTSIDE_ACCOUNTS, account_id};
use crate::inventory::Value;

const SECURITY: usize = 1;

/// One pipeline of the synthetic organization.
struct Pipeline {
    account: usize,
    family: &'static str,
    enabled: bool,
    scheduled: bool,
    tests: bool,
    scanning: bool,
    consecutive_failures: i64,
    /// Builds of a family no account holds images of any more: (age in days of the newest).
    retired_builds_age: Option<i64>,
    /// Index into the regions of one the distribution leaves out.
    missing_region: Option<usize>,
    /// Index into the regions of one the distribution copies to without a key.
    region_without_key: Option<usize>,
    share_outside: bool,
    /// Org accounts the AMIs are shared with one by one.
    direct_shares: usize,
    public: bool,
    imds_required: bool,
    parent: &'static str,
    recipe_encrypted: bool,
    in_lifecycle_policy: bool,
    /// GetDistributionConfiguration was throttled for it.
    distribution_throttled: bool,
}

const CLEAN: Pipeline = Pipeline {
    account: FACTORY,
    family: "",
    enabled: true,
    scheduled: true,
    tests: true,
    scanning: true,
    consecutive_failures: 0,
    retired_builds_age: None,
    missing_region: None,
    region_without_key: None,
    share_outside: false,
    direct_shares: 0,
    public: false,
    imds_required: true,
    parent: "arn:aws:imagebuilder:{region}:aws:image/amazon-linux-2023-x86/x.x.x",
    recipe_encrypted: true,
    in_lifecycle_policy: true,
    distribution_throttled: false,
};

const PIPELINES: &[Pipeline] = &[
    Pipeline {
        family: "al2023-base-golden",
        // Planted (with FAMILY-REGION-GAP): ap-southeast-1 is not a target.
        missing_region: Some(2),
        ..CLEAN
    },
    Pipeline {
        family: "ubuntu2404-base-golden",
        share_outside: true,
        region_without_key: Some(1),
        parent: "ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
        ..CLEAN
    },
    Pipeline {
        family: "win2022-base-golden",
        tests: false,
        in_lifecycle_policy: false,
        parent: "arn:aws:imagebuilder:{region}:aws:image/windows-server-2022-english-full-base-x86/x.x.x",
        ..CLEAN
    },
    Pipeline {
        family: "rhel9-cis-golden",
        consecutive_failures: 4,
        ..CLEAN
    },
    Pipeline {
        family: "al2023-eks-node-golden",
        scanning: false,
        imds_required: false,
        direct_shares: 7,
        parent: "ami-0a1b2c3d4e5f6a7b8",
        ..CLEAN
    },
    Pipeline {
        family: "win2016-legacy-golden",
        enabled: false,
        scheduled: false,
        retired_builds_age: Some(200),
        recipe_encrypted: false,
        parent: "arn:aws:imagebuilder:{region}:aws:image/windows-server-2016-english-full-base-x86/2024.1.10",
        ..CLEAN
    },
    Pipeline {
        account: SANDBOX,
        family: "sandbox-golden",
        public: true,
        ..CLEAN
    },
    Pipeline {
        account: SECURITY,
        family: "sec-tools-golden",
        distribution_throttled: true,
        ..CLEAN
    },
];

// The planted pipelines' ARNs (the first region is always us-east-1).
pub const AL2023_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210002000074:image-pipeline/al2023-base-golden";
pub const UBUNTU_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210002000074:image-pipeline/ubuntu2404-base-golden";
pub const WINDOWS_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210002000074:image-pipeline/win2022-base-golden";
pub const RHEL_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210002000074:image-pipeline/rhel9-cis-golden";
pub const EKS_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210002000074:image-pipeline/al2023-eks-node-golden";
pub const LEGACY_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210002000074:image-pipeline/win2016-legacy-golden";
pub const SANDBOX_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210009000333:image-pipeline/sandbox-golden";
pub const SECURITY_PIPELINE: &str =
    "arn:aws:imagebuilder:us-east-1:210001000037:image-pipeline/sec-tools-golden";

/// Writes every pipeline whose account exists in this size.
pub(super) fn pipelines(
    g: &mut Gen,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    regions: &[&str],
) {
    let Some(&home) = regions.first() else { return };
    let mut policy_recipes = BTreeMap::<usize, Vec<&str>>::new();
    for p in PIPELINES {
        // Only where the account was scanned in its first region.
        if !catalog.contains_key(&(p.account, 0)) {
            continue;
        }
        if p.in_lifecycle_policy {
            policy_recipes.entry(p.account).or_default().push(p.family);
        }
        pipeline(g, p, catalog, regions, home);
    }
    for (account, recipes) in policy_recipes {
        // Planted (PIPELINE-NO-LIFECYCLE): the sandbox's policy retires
        // Image Builder's image resources only.
        let amis = account != SANDBOX;
        let acct = g.account_ids[account].clone();
        let arn = format!("arn:aws:imagebuilder:{home}:{acct}:lifecycle-policy/retire-golden");
        let row = |cells: Vec<(&'static str, Value)>| {
            let mut all: Vec<(&'static str, Value)> = vec![
                ("account_id", acct.clone().into()),
                ("region", home.into()),
                ("policy_arn", arn.clone().into()),
            ];
            all.extend(cells);
            all
        };
        g.push(
            "lifecycle_policies",
            row(vec![
                ("name", "retire-golden".into()),
                ("status", "ENABLED".into()),
                ("resource_type", "AMI_IMAGE".into()),
                ("actions", "DELETE,DEPRECATE".into()),
                ("selects_by_tags", false.into()),
            ]),
        );
        for (index, (action, filter, value)) in
            [("DEPRECATE", "AGE", 60i64), ("DELETE", "COUNT", 6)]
                .into_iter()
                .enumerate()
        {
            g.push(
                "lifecycle_policy_rules",
                row(vec![
                    ("rule_index", (index as i64).into()),
                    ("action", action.into()),
                    ("include_amis", amis.into()),
                    ("include_snapshots", amis.into()),
                    ("filter_type", filter.into()),
                    ("filter_value", value.into()),
                    (
                        "filter_unit",
                        (if filter == "AGE" { Some("DAYS") } else { None }).into(),
                    ),
                ]),
            );
        }
        for recipe in recipes {
            g.push(
                "lifecycle_policy_recipes",
                row(vec![
                    ("recipe_name", recipe.into()),
                    ("semantic_version", "x.x.x".into()),
                ]),
            );
        }
    }
}

/// One image build: when it was made, and its AMIs as (region, image id).
type Build = (chrono::DateTime<chrono::Utc>, Vec<(String, String)>);

fn pipeline(
    g: &mut Gen,
    p: &Pipeline,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    regions: &[&str],
    home: &str,
) {
    let ids = PipelineIds::new(g.account_ids[p.account].clone(), home, p.family);
    let builds = family_builds(g.now, p, catalog, regions);
    let listed = push_builds(g, p, &ids, &builds);
    push_pipeline(g, p, &ids, listed);
    push_recipe_and_infrastructure(g, p, &ids);
    if p.distribution_throttled {
        g.push(
            "scan_errors",
            ids.row(vec![
                ("service", "imagebuilder".into()),
                ("operation", "GetDistributionConfiguration".into()),
                ("resource_id", ids.distribution.clone().into()),
                ("error_code", "ThrottlingException".into()),
                ("message", "Rate exceeded".into()),
            ]),
        );
        return;
    }
    push_distributions(g, p, &ids, regions);
}

/// The ARNs of one pipeline and its resources, in its home region.
struct PipelineIds<'a> {
    account: String,
    home: &'a str,
    family: &'a str,
    pipeline: String,
    recipe: String,
    infrastructure: String,
    distribution: String,
}

impl<'a> PipelineIds<'a> {
    fn new(account: String, home: &'a str, family: &'a str) -> Self {
        let arn = |kind: &str, rest: &str| {
            format!("arn:aws:imagebuilder:{home}:{account}:{kind}/{family}{rest}")
        };
        PipelineIds {
            pipeline: arn("image-pipeline", ""),
            recipe: arn("image-recipe", "/1.0.0"),
            infrastructure: arn("infrastructure-configuration", ""),
            distribution: arn("distribution-configuration", ""),
            account,
            home,
            family,
        }
    }

    /// A row of the pipeline's account and home region with `extra` cells.
    fn row(&self, extra: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
        let mut all: Vec<(&'static str, Value)> = vec![
            ("account_id", self.account.clone().into()),
            ("region", self.home.into()),
        ];
        all.extend(extra);
        all
    }

    fn build(&self, version: &str) -> String {
        format!(
            "arn:aws:imagebuilder:{}:{}:image/{}/{version}/1",
            self.home, self.account, self.family
        )
    }

    fn key(&self, region: &str) -> String {
        format!("arn:aws:kms:{region}:{}:key/factory-{region}", self.account)
    }
}

/// Builds: one per version of the family's images in the account (any
/// region), each listing its AMIs; a retired family has old builds only.
fn family_builds(
    now: chrono::DateTime<chrono::Utc>,
    p: &Pipeline,
    catalog: &BTreeMap<(usize, usize), Vec<ImageFacts>>,
    regions: &[&str],
) -> BTreeMap<usize, Build> {
    let mut builds: BTreeMap<usize, Build> = BTreeMap::new();
    for ((account, ri), images) in catalog {
        if *account != p.account {
            continue;
        }
        for image in images.iter().filter(|i| i.family == p.family) {
            let entry = builds
                .entry(image.version)
                .or_insert_with(|| (image.created, Vec::new()));
            entry.0 = entry.0.min(image.created);
            entry
                .1
                .push((regions[*ri].to_string(), image.image_id.clone()));
        }
    }
    if let Some(age) = p.retired_builds_age {
        for (k, version) in [3usize, 2, 1].into_iter().enumerate() {
            builds.insert(
                version,
                (now - Duration::days(age + 30 * k as i64), Vec::new()),
            );
        }
    }
    builds
}

/// Pushes the pipeline's builds (with their AMIs) and its failed runs;
/// returns how many builds it listed.
fn push_builds(
    g: &mut Gen,
    p: &Pipeline,
    ids: &PipelineIds<'_>,
    builds: &BTreeMap<usize, Build>,
) -> i64 {
    let now = g.now;
    let mut listed = 0i64;
    for (version, (created, amis)) in builds {
        let build = ids.build(&format!("1.{version}.0"));
        listed += 1;
        g.push(
            "pipeline_images",
            ids.row(vec![
                ("image_build_arn", build.clone().into()),
                ("pipeline_arn", ids.pipeline.clone().into()),
                ("name", p.family.into()),
                ("version", format!("1.{version}.0").into()),
                ("status", "AVAILABLE".into()),
                ("date_created", (*created).into()),
                ("build_type", "SCHEDULED".into()),
            ]),
        );
        g.push(
            "pipeline_image_tags",
            ids.row(vec![
                ("image_build_arn", build.clone().into()),
                ("key", "Pipeline".into()),
                ("value", p.family.into()),
            ]),
        );
        for (region, image_id) in amis {
            g.push(
                "pipeline_amis",
                ids.row(vec![
                    ("image_build_arn", build.clone().into()),
                    ("pipeline_arn", ids.pipeline.clone().into()),
                    ("ami_region", region.clone().into()),
                    ("ami_account_id", ids.account.clone().into()),
                    ("image_id", image_id.clone().into()),
                ]),
            );
        }
    }
    for k in 0..p.consecutive_failures {
        listed += 1;
        g.push(
            "pipeline_images",
            ids.row(vec![
                ("image_build_arn", ids.build(&format!("9.{k}.0")).into()),
                ("pipeline_arn", ids.pipeline.clone().into()),
                ("name", p.family.into()),
                ("version", format!("9.{k}.0").into()),
                ("status", "FAILED".into()),
                ("date_created", (now - Duration::days(7 * k + 1)).into()),
                ("build_type", "SCHEDULED".into()),
            ]),
        );
    }
    listed
}

fn push_pipeline(g: &mut Gen, p: &Pipeline, ids: &PipelineIds<'_>, listed: i64) {
    let now = g.now;
    let schedule: Value = if p.scheduled {
        "cron(0 6 ? * mon *)".into()
    } else {
        Value::Null
    };
    g.push(
        "pipelines",
        ids.row(vec![
            ("pipeline_arn", ids.pipeline.clone().into()),
            ("name", p.family.into()),
            (
                "status",
                if p.enabled { "ENABLED" } else { "DISABLED" }.into(),
            ),
            (
                "platform",
                if p.family.starts_with("win") {
                    "Windows"
                } else {
                    "Linux"
                }
                .into(),
            ),
            ("schedule_expression", schedule),
            ("schedule_timezone", "Etc/UTC".into()),
            (
                "start_condition",
                "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE".into(),
            ),
            ("tests_enabled", p.tests.into()),
            ("scanning_enabled", p.scanning.into()),
            ("enhanced_metadata_enabled", true.into()),
            (
                "last_run_status",
                if p.consecutive_failures > 0 {
                    "FAILED"
                } else {
                    "AVAILABLE"
                }
                .into(),
            ),
            ("consecutive_failures", p.consecutive_failures.into()),
            ("next_run", (now + Duration::days(3)).into()),
            ("date_created", (now - Duration::days(400)).into()),
            ("image_recipe_arn", ids.recipe.clone().into()),
            ("infrastructure_arn", ids.infrastructure.clone().into()),
            ("distribution_arn", ids.distribution.clone().into()),
            ("images_listed", listed.into()),
        ]),
    );
}

fn push_recipe_and_infrastructure(g: &mut Gen, p: &Pipeline, ids: &PipelineIds<'_>) {
    let home = ids.home;
    g.push(
        "image_recipes",
        ids.row(vec![
            ("recipe_arn", ids.recipe.clone().into()),
            ("name", p.family.into()),
            ("version", "1.0.0".into()),
            ("parent_image", p.parent.replace("{region}", home).into()),
            ("component_count", 6i64.into()),
            ("block_device_count", 1i64.into()),
        ]),
    );
    g.push(
        "recipe_block_devices",
        ids.row(vec![
            ("recipe_arn", ids.recipe.clone().into()),
            ("device_name", "/dev/xvda".into()),
            ("is_ebs", true.into()),
            ("encrypted", p.recipe_encrypted.into()),
            (
                "kms_key_id",
                if p.recipe_encrypted {
                    Value::from(ids.key(home))
                } else {
                    Value::Null
                },
            ),
            ("volume_size", 30i64.into()),
            ("volume_type", "gp3".into()),
        ]),
    );
    g.push(
        "infrastructure_configurations",
        ids.row(vec![
            ("infrastructure_arn", ids.infrastructure.clone().into()),
            ("name", p.family.into()),
            (
                "http_tokens",
                if p.imds_required {
                    "required"
                } else {
                    "optional"
                }
                .into(),
            ),
            ("http_put_response_hop_limit", 2i64.into()),
            ("terminate_on_failure", true.into()),
            (
                "sns_topic_arn",
                format!("arn:aws:sns:{home}:{}:image-builds", ids.account).into(),
            ),
            (
                "logging_bucket",
                format!("acme-image-logs-{}", ids.account).into(),
            ),
            ("instance_profile_name", "ImageBuilderInstance".into()),
        ]),
    );
}

/// The distribution's target regions (less a planted missing one) and who
/// each shares with.
fn push_distributions(g: &mut Gen, p: &Pipeline, ids: &PipelineIds<'_>, regions: &[&str]) {
    let organization = format!(
        "arn:aws:organizations::{}:organization/{ORGANIZATION_ID}",
        account_id(0)
    );
    for (ri, target) in regions.iter().enumerate() {
        if p.missing_region == Some(ri) {
            continue;
        }
        let kms: Value = if p.region_without_key == Some(ri) {
            Value::Null
        } else {
            ids.key(target).into()
        };
        g.push(
            "distributions",
            ids.row(vec![
                ("distribution_arn", ids.distribution.clone().into()),
                ("name", p.family.into()),
                ("target_region", (*target).into()),
                ("ami_distribution", true.into()),
                ("kms_key_id", kms),
                ("ssm_parameter_count", 1i64.into()),
                ("launch_template_count", 0i64.into()),
            ]),
        );
        let mut shares: Vec<(&str, String)> = vec![("organization_arn", organization.clone())];
        if p.share_outside {
            shares.push(("user_id", OUTSIDE_ACCOUNTS[0].to_string()));
        }
        if p.public {
            shares.push(("group", "all".to_string()));
        }
        let members: Vec<String> = g
            .account_ids
            .iter()
            .skip(3)
            .take(p.direct_shares)
            .cloned()
            .collect();
        shares.extend(members.into_iter().map(|m| ("user_id", m)));
        for (kind, target_id) in shares {
            g.push(
                "distribution_shares",
                ids.row(vec![
                    ("distribution_arn", ids.distribution.clone().into()),
                    ("target_region", (*target).into()),
                    ("kind", kind.into()),
                    ("target", target_id.into()),
                ]),
            );
        }
    }
}
