//! The inventory schema: every table, every column, its type and meaning.
//!
//! **API boundary.** This list is the contract between scanning and
//! evaluating. Adding a nullable column is backwards compatible; renaming or
//! retyping one bumps [`SCHEMA_VERSION`]. `tests/schema_snapshot.txt` pins it
//! and `docs/inventory-schema.md` documents it; tests keep both equal to this.
//!
//! Conventions: every table carries `account_id`; every table but `accounts`
//! carries `region`. A null means "not known" (the call that would have told
//! us failed or the field was absent), never "false". Timestamps are UTC,
//! millisecond precision, written as RFC 3339 strings in JSON Lines.

/// Version of the table layout below. An inventory with another version is refused.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Str,
    Int,
    Bool,
    Timestamp,
}

impl ColumnKind {
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Str => "string",
            ColumnKind::Int => "integer",
            ColumnKind::Bool => "boolean",
            ColumnKind::Timestamp => "timestamp",
        }
    }
}

#[derive(Debug)]
pub struct ColumnDef {
    pub name: &'static str,
    pub kind: ColumnKind,
    /// Whether the value must be present in every row.
    pub required: bool,
    pub doc: &'static str,
}

#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [ColumnDef],
    /// Column that identifies a resource of this table in findings.
    pub resource_id: &'static str,
    /// Column that gives the resource a human name in findings.
    pub resource_name: &'static str,
    /// What a finding on a row of this table calls its resource.
    pub resource_type: &'static str,
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Columns the loader adds from the stored ones and the inventory's
/// `collected_at`, so rules never read the wall clock.
#[derive(Debug)]
pub struct DerivedColumn {
    pub table: &'static str,
    pub name: &'static str,
    pub kind: ColumnKind,
    pub doc: &'static str,
}

const fn req(name: &'static str, kind: ColumnKind, doc: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        kind,
        required: true,
        doc,
    }
}
const fn opt(name: &'static str, kind: ColumnKind, doc: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        kind,
        required: false,
        doc,
    }
}

use ColumnKind::{Bool, Int, Str, Timestamp};

pub const TABLES: &[TableDef] = &[
    TableDef {
        name: "accounts",
        doc: "Accounts in scope, from Organizations (or the account list given).",
        resource_id: "account_id",
        resource_name: "account_name",
        resource_type: "account",
        columns: &[
            req("account_id", Str, "12-digit AWS account id"),
            opt("account_name", Str, "account name in the organization"),
            opt("email", Str, "root e-mail address"),
            opt("status", Str, "ACTIVE | SUSPENDED | PENDING_CLOSURE"),
            opt(
                "ou_id",
                Str,
                "id of the organizational unit holding the account",
            ),
            opt(
                "ou_path",
                Str,
                "OU names from the root, `/`-separated, e.g. `Root/Workloads/Prod`",
            ),
            opt(
                "joined_at",
                Timestamp,
                "when the account joined the organization",
            ),
        ],
    },
    TableDef {
        name: "regions",
        doc: "One row per account-region in scope: whether it was scanned and the settings that guard AMIs there.",
        resource_id: "region",
        resource_name: "region",
        resource_type: "account-region",
        columns: &[
            req("account_id", Str, "account id"),
            req("region", Str, "region code, e.g. `eu-west-1`"),
            opt(
                "opt_in_status",
                Str,
                "opt-in-not-required | opted-in | not-opted-in",
            ),
            req(
                "scan_status",
                Str,
                "ok (everything collected) | partial (some calls failed, see scan_errors) | failed (nothing collected) | not-opted-in (skipped)",
            ),
            opt(
                "ebs_encryption_by_default",
                Bool,
                "GetEbsEncryptionByDefault",
            ),
            opt("ebs_default_kms_key_id", Str, "GetEbsDefaultKmsKeyId"),
            opt(
                "image_block_public_access",
                Str,
                "GetImageBlockPublicAccessState: block-new-sharing | unblocked",
            ),
            opt(
                "snapshot_block_public_access",
                Str,
                "GetSnapshotBlockPublicAccessState: block-all-sharing | block-new-sharing | unblocked",
            ),
            opt(
                "allowed_images_state",
                Str,
                "GetAllowedImagesSettings: disabled | audit-mode | enabled",
            ),
            opt(
                "inspector_ec2_status",
                Str,
                "Inspector2 BatchGetAccountStatus, EC2 resource: ENABLED | ENABLING | DISABLED | DISABLING | SUSPENDED",
            ),
        ],
    },
    TableDef {
        name: "images",
        doc: "AMIs owned by the account (DescribeImages Owners=self, IncludeDeprecated, IncludeDisabled).",
        resource_id: "image_id",
        resource_name: "name",
        resource_type: "ami",
        columns: &[
            req("account_id", Str, "owning account"),
            req("region", Str, "region"),
            req("image_id", Str, "AMI id"),
            opt("name", Str, "image name"),
            opt("description", Str, "image description"),
            opt(
                "state",
                Str,
                "available | pending | failed | error | invalid | deregistered | transient | disabled",
            ),
            opt("owner_id", Str, "owner account id"),
            opt("creation_date", Timestamp, "when the image was created"),
            opt(
                "deprecation_time",
                Timestamp,
                "when the image is (or was) deprecated; null when none is set",
            ),
            opt(
                "last_launched_time",
                Timestamp,
                "last time an instance was launched from it; null when never or unknown",
            ),
            opt(
                "public",
                Bool,
                "whether the image has public launch permissions",
            ),
            opt(
                "architecture",
                Str,
                "x86_64 | arm64 | i386 | x86_64_mac | arm64_mac",
            ),
            opt("platform", Str, "windows, or null for Linux/UNIX"),
            opt(
                "platform_details",
                Str,
                "platform and billing details, e.g. `Linux/UNIX`",
            ),
            opt("image_type", Str, "machine | kernel | ramdisk"),
            opt("root_device_type", Str, "ebs | instance-store"),
            opt("root_device_name", Str, "e.g. `/dev/xvda`"),
            opt("virtualization_type", Str, "hvm | paravirtual"),
            opt("ena_support", Bool, "whether ENA is enabled"),
            opt(
                "imds_support",
                Str,
                "v2.0 when instances launched from it require IMDSv2; null otherwise",
            ),
            opt("boot_mode", Str, "legacy-bios | uefi | uefi-preferred"),
            opt("tpm_support", Str, "v2.0 when NitroTPM is enabled"),
            opt(
                "deregistration_protection",
                Str,
                "disabled | enabled | enabled-with-cooldown",
            ),
            opt(
                "source_image_id",
                Str,
                "AMI this one was copied from (CopyImage)",
            ),
            opt("source_image_region", Str, "region of the source image"),
            opt(
                "image_allowed",
                Bool,
                "whether the Allowed AMIs setting admits this image",
            ),
        ],
    },
    TableDef {
        name: "image_block_devices",
        doc: "Block-device mappings of each image.",
        resource_id: "image_id",
        resource_name: "device_name",
        resource_type: "ami",
        columns: &[
            req("account_id", Str, "owning account"),
            req("region", Str, "region"),
            req("image_id", Str, "AMI id"),
            opt("device_name", Str, "e.g. `/dev/xvda`"),
            opt(
                "virtual_name",
                Str,
                "instance-store name (`ephemeral0`); null for EBS",
            ),
            req(
                "is_ebs",
                Bool,
                "true when the mapping has an `Ebs` block (instance store and NoDevice are false)",
            ),
            opt("snapshot_id", Str, "backing snapshot"),
            opt("volume_size", Int, "GiB"),
            opt(
                "volume_type",
                Str,
                "gp3 | gp2 | io1 | io2 | st1 | sc1 | standard",
            ),
            opt("encrypted", Bool, "whether the EBS volume is encrypted"),
            opt("kms_key_id", Str, "ARN of the KMS key that encrypts it"),
            opt("delete_on_termination", Bool, "DeleteOnTermination"),
        ],
    },
    TableDef {
        name: "image_tags",
        doc: "Tags of each image, one row per tag.",
        resource_id: "image_id",
        resource_name: "key",
        resource_type: "ami",
        columns: &[
            req("account_id", Str, "owning account"),
            req("region", Str, "region"),
            req("image_id", Str, "AMI id"),
            req("key", Str, "tag key"),
            opt("value", Str, "tag value"),
        ],
    },
    TableDef {
        name: "launch_permissions",
        doc: "DescribeImageAttribute(launchPermission): who may launch each image. One of the four target columns is set per row.",
        resource_id: "image_id",
        resource_name: "image_id",
        resource_type: "ami",
        columns: &[
            req("account_id", Str, "owning account"),
            req("region", Str, "region"),
            req("image_id", Str, "AMI id"),
            opt("group", Str, "`all` for a public image"),
            opt("user_id", Str, "account the image is shared with"),
            opt(
                "organization_arn",
                Str,
                "organization the image is shared with",
            ),
            opt(
                "organizational_unit_arn",
                Str,
                "OU the image is shared with",
            ),
        ],
    },
    TableDef {
        name: "snapshots",
        doc: "EBS snapshots owned by the account (DescribeSnapshots OwnerIds=self).",
        resource_id: "snapshot_id",
        resource_name: "description",
        resource_type: "snapshot",
        columns: &[
            req("account_id", Str, "owning account"),
            req("region", Str, "region"),
            req("snapshot_id", Str, "snapshot id"),
            opt("volume_id", Str, "source volume"),
            opt("volume_size", Int, "GiB"),
            opt(
                "state",
                Str,
                "pending | completed | error | recoverable | recovering",
            ),
            opt("encrypted", Bool, "whether the snapshot is encrypted"),
            opt("kms_key_id", Str, "ARN of the KMS key"),
            opt(
                "description",
                Str,
                "description; CreateImage writes `Created by CreateImage(i-...) for ami-...`",
            ),
            opt("start_time", Timestamp, "when the snapshot was started"),
        ],
    },
    TableDef {
        name: "snapshot_permissions",
        doc: "DescribeSnapshotAttribute(createVolumePermission): who may restore each snapshot.",
        resource_id: "snapshot_id",
        resource_name: "snapshot_id",
        resource_type: "snapshot",
        columns: &[
            req("account_id", Str, "owning account"),
            req("region", Str, "region"),
            req("snapshot_id", Str, "snapshot id"),
            opt("group", Str, "`all` for a public snapshot"),
            opt("user_id", Str, "account the snapshot is shared with"),
        ],
    },
    TableDef {
        name: "instances",
        doc: "EC2 instances (DescribeInstances), to tell which AMIs are in use.",
        resource_id: "instance_id",
        resource_name: "name",
        resource_type: "instance",
        columns: &[
            req("account_id", Str, "account"),
            req("region", Str, "region"),
            req("instance_id", Str, "instance id"),
            opt("name", Str, "value of the `Name` tag"),
            opt("image_id", Str, "AMI it was launched from"),
            opt(
                "image_owner_id",
                Str,
                "owner of that AMI (DescribeImages on the ids in use); null when the AMI no longer exists",
            ),
            opt(
                "state",
                Str,
                "pending | running | stopping | stopped | shutting-down | terminated",
            ),
            opt("instance_type", Str, "e.g. `m7g.large`"),
            opt("launch_time", Timestamp, "launch time"),
        ],
    },
    TableDef {
        name: "launch_templates",
        doc: "The $Default and $Latest versions of each launch template (DescribeLaunchTemplateVersions).",
        resource_id: "launch_template_id",
        resource_name: "launch_template_name",
        resource_type: "launch-template",
        columns: &[
            req("account_id", Str, "account"),
            req("region", Str, "region"),
            req("launch_template_id", Str, "template id"),
            opt("launch_template_name", Str, "template name"),
            opt("version_number", Int, "version"),
            opt("is_default", Bool, "this version is $Default"),
            opt("is_latest", Bool, "this version is $Latest"),
            opt(
                "image_id",
                Str,
                "AMI the version launches (null when it resolves an SSM parameter at launch)",
            ),
            opt(
                "image_owner_id",
                Str,
                "owner of that AMI (DescribeImages on the ids in use); null when the AMI no longer exists",
            ),
        ],
    },
    TableDef {
        name: "kms_keys",
        doc: "KMS keys referenced by image block devices (DescribeKey), to tell AWS-managed from customer-managed keys.",
        resource_id: "key_arn",
        resource_name: "alias",
        resource_type: "kms-key",
        columns: &[
            req("account_id", Str, "account that owns the key"),
            req("region", Str, "region"),
            req("key_arn", Str, "key ARN"),
            opt("key_manager", Str, "AWS | CUSTOMER"),
            opt("alias", Str, "first alias, e.g. `alias/aws/ebs`"),
        ],
    },
    TableDef {
        name: "inspector_findings",
        doc: "Active Amazon Inspector findings tied to an AMI: found on instances launched from it, or on the AMI itself.",
        resource_id: "finding_arn",
        resource_name: "title",
        resource_type: "finding",
        columns: &[
            req("account_id", Str, "account"),
            req("region", Str, "region"),
            req("finding_arn", Str, "finding ARN"),
            opt("image_id", Str, "AMI the finding is tied to"),
            opt("instance_id", Str, "instance it was found on, if any"),
            opt("resource_type", Str, "AWS_EC2_INSTANCE | AWS_EC2_AMI"),
            opt(
                "severity",
                Str,
                "CRITICAL | HIGH | MEDIUM | LOW | INFORMATIONAL | UNTRIAGED",
            ),
            opt("vulnerability_id", Str, "e.g. `CVE-2024-6387`"),
            opt("title", Str, "finding title"),
            opt("status", Str, "ACTIVE | SUPPRESSED | CLOSED"),
            opt("fix_available", Str, "YES | NO | PARTIAL"),
            opt("first_observed_at", Timestamp, "first observed"),
            opt("last_observed_at", Timestamp, "last observed"),
        ],
    },
    TableDef {
        name: "scan_errors",
        doc: "Every call that failed during the scan. A rule that needs a failed call reports `unknown` where it failed.",
        resource_id: "operation",
        resource_name: "operation",
        resource_type: "scan-error",
        columns: &[
            req("account_id", Str, "account"),
            opt(
                "region",
                Str,
                "region; null for account-wide failures such as AssumeRole",
            ),
            req(
                "service",
                Str,
                "sts | organizations | ec2 | inspector2 | kms",
            ),
            req(
                "operation",
                Str,
                "API operation, e.g. `DescribeImageAttribute`",
            ),
            opt(
                "resource_id",
                Str,
                "resource the call was about, when it was about one",
            ),
            opt(
                "error_code",
                Str,
                "AWS error code, e.g. `AccessDenied`, `OptInRequired`, `Throttling`",
            ),
            opt("message", Str, "error message"),
        ],
    },
];

pub const DERIVED: &[DerivedColumn] = &[
    DerivedColumn {
        table: "images",
        name: "age_days",
        kind: Int,
        doc: "whole days from creation_date to collected_at",
    },
    DerivedColumn {
        table: "images",
        name: "deprecated",
        kind: Bool,
        doc: "deprecation_time is set and not after collected_at",
    },
    DerivedColumn {
        table: "images",
        name: "days_since_last_launch",
        kind: Int,
        doc: "whole days from last_launched_time to collected_at; null when never launched",
    },
    DerivedColumn {
        table: "images",
        name: "family",
        kind: Str,
        doc: "name without its trailing date and version (`web-golden-20260301-v3` -> `web-golden`)",
    },
    DerivedColumn {
        table: "inspector_findings",
        name: "open_days",
        kind: Int,
        doc: "whole days from first_observed_at to collected_at",
    },
    DerivedColumn {
        table: "audit",
        name: "collected_at",
        kind: Timestamp,
        doc: "one-row table: when the inventory was collected (\"now\" for every rule)",
    },
    DerivedColumn {
        table: "audit",
        name: "organization_id",
        kind: Str,
        doc: "one-row table: the organization id (`o-...`), null outside an organization",
    },
];

pub fn table(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

/// The schema as plain text, one line per column: what `tests/schema_snapshot.txt` pins.
pub fn describe() -> String {
    let mut out = format!("schema_version {SCHEMA_VERSION}\n");
    for t in TABLES {
        for c in t.columns {
            let req = if c.required { " required" } else { "" };
            out.push_str(&format!("{}.{} {}{}\n", t.name, c.name, c.kind.name(), req));
        }
    }
    for d in DERIVED {
        out.push_str(&format!(
            "{}.{} {} derived\n",
            d.table,
            d.name,
            d.kind.name()
        ));
    }
    out
}

/// The schema as a Markdown page: what `docs/inventory-schema.md` holds.
pub fn markdown() -> String {
    let mut out = format!(
        "# Inventory schema (version {SCHEMA_VERSION})\n\n\
         Generated by `amiaudit schema --markdown`; a test keeps this page equal to the code.\n\n\
         An inventory is a directory with `manifest.json` and one file per table below, \
         Parquet (`<table>.parquet`, what scans write) or JSON Lines (`<table>.jsonl`, one object \
         per row, nulls omitted). Every table carries `account_id`; every table but `accounts` \
         carries `region`. A null means *not known* (the call that would tell failed, or AWS \
         returned no value), never *false*. Timestamps are UTC, RFC 3339 in JSON Lines.\n\n\
         `manifest.json` holds `schema_version`, `collected_at` (\"now\" for every rule), \
         `tool_version`, `scope` (source, organization id, management account, caller ARN, \
         accounts, regions), `complete` (false when the scan was interrupted) and, per table, \
         its `file`, `sha256` and `rows`. Loading refuses any other schema version, a missing \
         table, a file whose sha256 differs, an unknown column, a wrong type, or a null in a \
         required column.\n"
    );
    for t in TABLES {
        out.push_str(&format!(
            "\n## `{}`\n\n{}\nA finding on a row of it names the resource by `{}` ({}).\n\n| column | type | meaning |\n|---|---|---|\n",
            t.name, t.doc, t.resource_id, t.resource_type
        ));
        for c in t.columns {
            let ty = if c.required {
                format!("{}, required", c.kind.name())
            } else {
                c.kind.name().to_string()
            };
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.name,
                ty,
                c.doc.replace('|', "\\|")
            ));
        }
    }
    out.push_str(
        "\n## Derived columns\n\nAdded when an inventory is loaded, from stored columns and `collected_at`, \
         so rules never read the clock. `audit` is a one-row table.\n\n| table | column | type | meaning |\n|---|---|---|---|\n",
    );
    for d in DERIVED {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            d.table,
            d.name,
            d.kind.name(),
            d.doc
        ));
    }
    out
}
