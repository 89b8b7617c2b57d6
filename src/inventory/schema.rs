//! The inventory schema: every table, every column, its type and meaning.
//!
//! (Long on purpose: the schema is one list, read in one place.)
//!
//! **API boundary.** This list is the contract between scanning and
//! evaluating. Each table is declared once, in [`tables!`] below, which
//! yields both its [`TableDef`] (what loading checks and the docs print)
//! and a typed row struct (what the scanner fills), so a misspelt or
//! mistyped column is a compile error, not a runtime panic.
//! `tests/schema_snapshot.txt` pins the list and `docs/inventory-schema.md`
//! documents it; tests keep both equal to this.
//!
//! Versions: a table or column carries the schema version that introduced
//! it (`since`). An inventory of an older version loads: the tables it
//! lacks are empty and marked *not collected*, so the rules that need them
//! answer `unknown`; columns it lacks are filled the way that version's
//! scanner would have known them (see `inventory::upgrade`), else null.
//!
//! Conventions: every table carries `account_id`; every table but `accounts`
//! carries `region`. A null means "not known" (the call that would have told
//! us failed, was not made, or the field was absent), never "false".
//! Timestamps are UTC, millisecond precision, written as RFC 3339 strings in
//! JSON Lines.

/// Version of the table layout below. Older versions down to
/// [`OLDEST_SCHEMA_VERSION`] load; newer ones are refused.
pub const SCHEMA_VERSION: u32 = 7;
/// The oldest inventory layout this build still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

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
    /// The values a string column may take (None: any text). Vocabularies
    /// only ever grow, so an inventory saved today still loads next year.
    pub vocabulary: Option<&'static [&'static str]>,
    /// Schema version that introduced the column.
    pub since: u32,
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
    /// Columns that identify a row: no two rows may share them. Empty: no key.
    pub key: &'static [&'static str],
    /// Schema version that introduced the table.
    pub since: u32,
    /// The calls (`service:Operation`) that fill this table. A rule that
    /// needs one of them is `unknown` on an inventory that predates the table.
    pub operations: &'static [&'static str],
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
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

/// A cell value while building a table; see [`TableRow`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Bool(bool),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

/// A timestamp cell: milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Millis(pub i64);

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<Millis> for Value {
    fn from(v: Millis) -> Self {
        Value::Timestamp(v.0)
    }
}
impl From<chrono::DateTime<chrono::Utc>> for Value {
    fn from(t: chrono::DateTime<chrono::Utc>) -> Self {
        Value::Timestamp(t.timestamp_millis())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A typed row of one table, generated by [`tables!`]: its fields are the
/// table's columns, in order, with required columns not optional.
pub trait TableRow {
    const TABLE: &'static str;
    /// The row's cells in schema column order.
    fn into_values(self) -> Vec<Value>;
}

/// The Rust type of a column: required columns are plain, others optional.
macro_rules! cell_type {
    (Str, required) => { String };
    (Str, optional) => { Option<String> };
    (Int, required) => { i64 };
    (Int, optional) => { Option<i64> };
    (Bool, required) => { bool };
    (Bool, optional) => { Option<bool> };
    (Timestamp, required) => { Millis };
    (Timestamp, optional) => { Option<Millis> };
}

macro_rules! is_required {
    (required) => {
        true
    };
    (optional) => {
        false
    };
}

macro_rules! vocabulary {
    () => {
        None
    };
    ([$($v:literal),+]) => {
        Some(&[$($v),+])
    };
}

macro_rules! column_since {
    ($table:literal) => {
        $table
    };
    ($table:literal, $column:literal) => {
        $column
    };
}

/// Declares every table once: its [`TableDef`] in [`TABLES`] and its row struct.
macro_rules! tables {
    ($(
        $(#[doc = $tdoc:literal])*
        $table:ident => $Row:ident {
            resource: ($rid:literal, $rname:literal, $rtype:literal),
            key: [$($key:literal),* $(,)?],
            since: $since:literal,
            operations: [$($op:literal),* $(,)?],
            columns: {
                $(
                    $(#[doc = $cdoc:literal])+
                    $col:ident: $kind:ident $req:ident $(since $csince:literal)? $(in [$($v:literal),+ $(,)?])?,
                )+
            }
        }
    )+) => {
        pub const TABLES: &[TableDef] = &[$(
            TableDef {
                name: stringify!($table),
                doc: concat!($($tdoc),*),
                resource_id: $rid,
                resource_name: $rname,
                resource_type: $rtype,
                key: &[$($key),*],
                since: $since,
                operations: &[$($op),*],
                columns: &[$(
                    ColumnDef {
                        name: stringify!($col),
                        kind: ColumnKind::$kind,
                        required: is_required!($req),
                        doc: concat!($($cdoc),+),
                        vocabulary: vocabulary!($([$($v),+])?),
                        since: column_since!($since $(, $csince)?),
                    },
                )+],
            },
        )+];

        $(
            $(#[doc = $tdoc])*
            #[derive(Debug, Clone, Default, PartialEq)]
            pub struct $Row {
                $(
                    $(#[doc = $cdoc])+
                    pub $col: cell_type!($kind, $req),
                )+
            }

            impl TableRow for $Row {
                const TABLE: &'static str = stringify!($table);
                fn into_values(self) -> Vec<Value> {
                    vec![$(Value::from(self.$col)),+]
                }
            }
        )+
    };
}

tables! {
    /// Accounts in scope, from Organizations (or the account list given).
    accounts => AccountRow {
        resource: ("account_id", "account_name", "account"),
        key: ["account_id"],
        since: 1,
        operations: ["organizations:ListAccounts"],
        columns: {
            /// 12-digit AWS account id
            account_id: Str required,
            /// account name in the organization
            account_name: Str optional,
            /// root e-mail address
            email: Str optional,
            /// PENDING_ACTIVATION | ACTIVE | SUSPENDED | PENDING_CLOSURE | CLOSED
            status: Str optional in ["PENDING_ACTIVATION", "ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED"],
            /// id of the organizational unit holding the account
            ou_id: Str optional,
            /// OU names from the root, `/`-separated, e.g. `Root/Workloads/Prod`
            ou_path: Str optional,
            /// when the account joined the organization
            joined_at: Timestamp optional,
        }
    }

    /// One row per account-region in scope: whether it was scanned and the settings that guard AMIs there.
    regions => RegionRow {
        resource: ("region", "region", "account-region"),
        key: ["account_id", "region"],
        since: 1,
        operations: ["ec2:DescribeRegions"],
        columns: {
            /// account id
            account_id: Str required,
            /// region code, e.g. `eu-west-1`
            region: Str required,
            /// opt-in-not-required | opted-in | not-opted-in
            opt_in_status: Str optional in ["opt-in-not-required", "opted-in", "not-opted-in"],
            /// ok (everything collected) | partial (some calls failed, see scan_errors) | failed (nothing collected) | not-opted-in (skipped)
            scan_status: Str required in ["ok", "partial", "failed", "not-opted-in"],
            /// GetEbsEncryptionByDefault
            ebs_encryption_by_default: Bool optional,
            /// GetEbsDefaultKmsKeyId
            ebs_default_kms_key_id: Str optional,
            /// GetImageBlockPublicAccessState: block-new-sharing | unblocked
            image_block_public_access: Str optional in ["block-new-sharing", "unblocked"],
            /// GetSnapshotBlockPublicAccessState: block-all-sharing | block-new-sharing | unblocked
            snapshot_block_public_access: Str optional in ["block-all-sharing", "block-new-sharing", "unblocked"],
            /// GetAllowedImagesSettings: disabled | audit-mode | enabled
            allowed_images_state: Str optional in ["disabled", "audit-mode", "enabled"],
            /// Inspector2 BatchGetAccountStatus, EC2 resource: ENABLED | ENABLING | DISABLED | DISABLING | SUSPENDING | SUSPENDED
            inspector_ec2_status: Str optional in ["ENABLED", "ENABLING", "DISABLED", "DISABLING", "SUSPENDING", "SUSPENDED"],
            /// GetInstanceMetadataDefaults, account level: required | optional | no-preference (the answer names none); what a launch that sets no httpTokens gets before the AMI's ImdsSupport is considered
            imds_default_http_tokens: Str optional since 5 in ["required", "optional", "no-preference"],
        }
    }

    /// AMIs owned by the account (DescribeImages Owners=self, IncludeDeprecated, IncludeDisabled).
    images => ImageRow {
        resource: ("image_id", "name", "ami"),
        key: ["account_id", "region", "image_id"],
        since: 1,
        operations: ["ec2:DescribeImages"],
        columns: {
            /// owning account
            account_id: Str required,
            /// region
            region: Str required,
            /// AMI id
            image_id: Str required,
            /// image name
            name: Str optional,
            /// image description
            description: Str optional,
            /// available | pending | failed | error | invalid | deregistered | transient | disabled
            state: Str optional in ["available", "pending", "failed", "error", "invalid", "deregistered", "transient", "disabled"],
            /// owner account id
            owner_id: Str optional,
            /// when the image was created
            creation_date: Timestamp optional,
            /// when the image is (or was) deprecated; null when none is set
            deprecation_time: Timestamp optional,
            /// last time an instance was launched from it; null when never or unknown
            last_launched_time: Timestamp optional,
            /// whether the image has public launch permissions
            public: Bool optional,
            /// x86_64 | arm64 | i386 | x86_64_mac | arm64_mac
            architecture: Str optional,
            /// windows, or null for Linux/UNIX
            platform: Str optional,
            /// platform and billing details, e.g. `Linux/UNIX`
            platform_details: Str optional,
            /// machine | kernel | ramdisk
            image_type: Str optional,
            /// ebs | instance-store
            root_device_type: Str optional,
            /// e.g. `/dev/xvda`
            root_device_name: Str optional,
            /// hvm | paravirtual
            virtualization_type: Str optional,
            /// whether ENA is enabled
            ena_support: Bool optional,
            /// v2.0 when instances launched from it require IMDSv2; null otherwise
            imds_support: Str optional,
            /// legacy-bios | uefi | uefi-preferred
            boot_mode: Str optional,
            /// v2.0 when NitroTPM is enabled
            tpm_support: Str optional,
            /// disabled | enabled | enabled-with-cooldown
            deregistration_protection: Str optional,
            /// the AMI this one was created from: the source of a copy (CopyImage), or the AMI the instance of a CreateImage was launched from
            source_image_id: Str optional,
            /// region of the source image
            source_image_region: Str optional,
            /// whether the Allowed AMIs setting admits this image
            image_allowed: Bool optional,
            /// how many launch permissions DescribeImageAttribute(launchPermission) returned (rows in `launch_permissions`); null when they were not read
            launch_permission_count: Int optional since 2,
            /// instance the AMI was created from (CreateImage only): with `source_image_id` set and this null, the AMI is a copy
            source_instance_id: Str optional since 5,
            /// true when DescribeImageReferences answered for this image in its own account-region (what references it there are its rows in `image_references`); null when it was not asked or the call failed
            references_read: Bool optional since 6,
        }
    }

    /// The image usage report read for each own AMI (DescribeImageUsageReports; `[scan] image_usage_reports = "reuse"`): the newest `available` one ("The report is available to view") no older than `image_usage_report_max_age_days` that covers every account (no AccountIds: "To include all accounts, omit this parameter") and both resource types (`ec2:Instance`, `ec2:LaunchTemplate`). Which accounts use the AMI is known as of its `creation_time`; an AMI without a row has no such report (or the listing failed).
    image_usage_reports => ImageUsageReportRow {
        resource: ("image_id", "report_id", "ami"),
        key: ["account_id", "region", "image_id", "report_id"],
        since: 7,
        operations: ["ec2:DescribeImageUsageReports"],
        columns: {
            /// owning account of the AMI (the account asked)
            account_id: Str required,
            /// region of the AMI
            region: Str required,
            /// the AMI reported on
            image_id: Str required,
            /// the report's id
            report_id: Str required,
            /// when the report was created: what it says is as of then
            creation_time: Timestamp optional,
            /// when EC2 deletes it ("30 days after the report was created")
            expiration_time: Timestamp optional,
            /// whether DescribeImageUsageReportEntries answered for it (its rows in `image_usage_entries`)
            entries_read: Bool required,
        }
    }

    /// What each report of `image_usage_reports` says ("how an image is being used by a specific Amazon Web Services account and resource type").
    image_usage_entries => ImageUsageEntryRow {
        resource: ("image_id", "user_account_id", "ami"),
        key: ["account_id", "region", "image_id", "report_id", "user_account_id", "resource_type"],
        since: 7,
        operations: ["ec2:DescribeImageUsageReportEntries"],
        columns: {
            /// owning account of the AMI
            account_id: Str required,
            /// region of the AMI
            region: Str required,
            /// the AMI
            image_id: Str required,
            /// the report
            report_id: Str required,
            /// "The ID of the account that uses the image"
            user_account_id: Str required,
            /// `ec2:Instance` | `ec2:LaunchTemplate`
            resource_type: Str optional,
            /// "The number of times resources of this type reference this image in the account"
            usage_count: Int optional,
        }
    }

    /// Recycle Bin retention rules of each account-region, for AMIs (EC2_IMAGE) and snapshots (EBS_SNAPSHOT) (ListRules, then GetRule for each): whether a deregistered AMI and the snapshots it needs can be recovered.
    recycle_bin_rules => RecycleBinRuleRow {
        resource: ("rule_arn", "identifier", "recycle-bin-rule"),
        key: ["account_id", "region", "rule_arn"],
        since: 6,
        operations: ["rbin:ListRules", "rbin:GetRule"],
        columns: {
            /// account id
            account_id: Str required,
            /// region
            region: Str required,
            /// ARN of the retention rule
            rule_arn: Str required,
            /// the rule's id
            identifier: Str optional,
            /// what it retains: `EC2_IMAGE` (EBS-backed AMIs) | `EBS_SNAPSHOT`
            resource_type: Str required in ["EC2_IMAGE", "EBS_SNAPSHOT"],
            /// whether GetRule answered: the columns below but `lock_state` and `retention_days` come from it
            detail_read: Bool required,
            /// `available` | `pending` ("Only retention rules that are in the available state retain resources"); null when not read
            status: Str optional in ["available", "pending"],
            /// `locked` | `pending_unlock` | `unlocked`; null when the rule "has never been locked"
            lock_state: Str optional in ["locked", "pending_unlock", "unlocked"],
            /// how long it retains what is deleted, in days
            retention_days: Int optional,
            /// how many resource tags select what it retains ("[Tag-level retention rules only]"): 0 for a Region-level rule; null when not read
            resource_tag_count: Int optional,
            /// how many exclusion tags leave resources out ("[Region-level retention rules only]"); null when not read
            exclude_tag_count: Int optional,
        }
    }

    /// What references each image in its own account-region, as EC2 answers DescribeImageReferences ("Describes your Amazon Web Services resources that are referencing the specified images"): instances in any state but terminated or shutting-down, launch templates' 10 most recent versions, SSM parameters, Image Builder image and container recipes. Only images with `references_read` true were asked.
    image_references => ImageReferenceRow {
        resource: ("image_id", "resource_arn", "ami"),
        key: ["account_id", "region", "image_id", "resource_arn"],
        since: 6,
        operations: ["ec2:DescribeImageReferences"],
        columns: {
            /// owning account of the referenced AMI (the account asked)
            account_id: Str required,
            /// region of the referenced AMI
            region: Str required,
            /// the referenced AMI
            image_id: Str required,
            /// `ec2:Instance` | `ec2:LaunchTemplate` | `ssm:Parameter` | `imagebuilder:ImageRecipe` | `imagebuilder:ContainerRecipe` (as EC2 names it)
            resource_type: Str optional,
            /// ARN of the referencing resource
            resource_arn: Str required,
        }
    }

    /// The ancestry of each AMI whose source is not in its own account-region: one row per ancestor, nearest first, the last the root ("from the specified AMI to the root AMI"). From GetImageAncestry, except for an image created from an instance of an AMI that DescribeImages shows as a root (an owner alias, or no source of its own): its one row is that AMI as DescribeImages shows it. Before schema version 7, copies only.
    image_ancestry => ImageAncestryRow {
        resource: ("image_id", "ancestor_image_id", "ami"),
        key: ["account_id", "region", "image_id", "depth"],
        since: 5,
        operations: ["ec2:GetImageAncestry"],
        columns: {
            /// owning account of the AMI asked about
            account_id: Str required,
            /// region of the AMI asked about
            region: Str required,
            /// the AMI asked about
            image_id: Str required,
            /// 1 for its source, 2 for the source's source, ...
            depth: Int required,
            /// the ancestor's AMI id
            ancestor_image_id: Str required,
            /// the ancestor's region
            ancestor_region: Str optional,
            /// when the ancestor was created
            creation_date: Timestamp optional,
            /// the ancestor's owner alias (`amazon`, `aws-marketplace`, `aws-backup-vault`); null for an account
            owner_alias: Str optional,
            /// the ancestor's owner account, as DescribeImages shows the root; null on other rows and where it was not shown
            owner_id: Str optional since 7,
            /// the ancestor's name, as DescribeImages shows the root; null on other rows and where it was not shown
            name: Str optional since 7,
            /// the ancestor's own source as the chain gives it ("The ID of the parent AMI"); on the last row set only where the chain stops short ("An AMI whose source AMI is from a different partition", "The 50th AMI in the list")
            ancestor_source_image_id: Str optional since 7,
            /// on the root: true when DescribeImages (by `image-id` filter) showed it, false when it answered without it (deregistered, or not visible to the account); null on other rows, where the call failed, and before schema version 7
            described: Bool optional since 7,
        }
    }

    /// Block-device mappings of each image.
    image_block_devices => ImageBlockDeviceRow {
        resource: ("image_id", "device_name", "ami"),
        key: ["account_id", "region", "image_id", "device_name"],
        since: 1,
        operations: ["ec2:DescribeImages"],
        columns: {
            /// owning account
            account_id: Str required,
            /// region
            region: Str required,
            /// AMI id
            image_id: Str required,
            /// e.g. `/dev/xvda`
            device_name: Str optional,
            /// instance-store name (`ephemeral0`); null for EBS
            virtual_name: Str optional,
            /// true when the mapping has an `Ebs` block (instance store and NoDevice are false)
            is_ebs: Bool required,
            /// backing snapshot
            snapshot_id: Str optional,
            /// GiB
            volume_size: Int optional,
            /// gp3 | gp2 | io1 | io2 | st1 | sc1 | standard
            volume_type: Str optional,
            /// whether the EBS volume is encrypted
            encrypted: Bool optional,
            /// ARN of the KMS key that encrypts it
            kms_key_id: Str optional,
            /// DeleteOnTermination
            delete_on_termination: Bool optional,
        }
    }

    /// Tags of each image, one row per tag.
    image_tags => ImageTagRow {
        resource: ("image_id", "key", "ami"),
        key: ["account_id", "region", "image_id", "key"],
        since: 1,
        operations: ["ec2:DescribeImages"],
        columns: {
            /// owning account
            account_id: Str required,
            /// region
            region: Str required,
            /// AMI id
            image_id: Str required,
            /// tag key
            key: Str required,
            /// tag value
            value: Str optional,
        }
    }

    /// DescribeImageAttribute(launchPermission): who may launch each image. One of the four target columns is set per row.
    launch_permissions => LaunchPermissionRow {
        resource: ("image_id", "image_id", "ami"),
        key: ["account_id", "region", "image_id", "group", "user_id", "organization_arn", "organizational_unit_arn"],
        since: 1,
        operations: ["ec2:DescribeImageAttribute"],
        columns: {
            /// owning account
            account_id: Str required,
            /// region
            region: Str required,
            /// AMI id
            image_id: Str required,
            /// `all` for a public image
            group: Str optional in ["all"],
            /// account the image is shared with
            user_id: Str optional,
            /// organization the image is shared with
            organization_arn: Str optional,
            /// OU the image is shared with
            organizational_unit_arn: Str optional,
        }
    }

    /// EBS snapshots owned by the account (DescribeSnapshots OwnerIds=self).
    snapshots => SnapshotRow {
        resource: ("snapshot_id", "description", "snapshot"),
        key: ["account_id", "region", "snapshot_id"],
        since: 1,
        operations: ["ec2:DescribeSnapshots"],
        columns: {
            /// owning account
            account_id: Str required,
            /// region
            region: Str required,
            /// snapshot id
            snapshot_id: Str required,
            /// source volume
            volume_id: Str optional,
            /// GiB
            volume_size: Int optional,
            /// pending | completed | error | recoverable | recovering
            state: Str optional in ["pending", "completed", "error", "recoverable", "recovering"],
            /// whether the snapshot is encrypted
            encrypted: Bool optional,
            /// ARN of the KMS key
            kms_key_id: Str optional,
            /// description; CreateImage writes `Created by CreateImage(i-...) for ami-...`
            description: Str optional,
            /// when the snapshot was started
            start_time: Timestamp optional,
            /// restorable by anyone (listed by DescribeSnapshots RestorableByUserIds=all, or a createVolumePermission for group `all`); null when not known
            public: Bool optional since 2,
            /// how many createVolumePermissions DescribeSnapshotAttribute returned (rows in `snapshot_permissions`); null when they were not read
            create_volume_permission_count: Int optional since 2,
        }
    }

    /// DescribeSnapshotAttribute(createVolumePermission): who may restore each snapshot.
    snapshot_permissions => SnapshotPermissionRow {
        resource: ("snapshot_id", "snapshot_id", "snapshot"),
        key: ["account_id", "region", "snapshot_id", "group", "user_id"],
        since: 1,
        operations: ["ec2:DescribeSnapshotAttribute"],
        columns: {
            /// owning account
            account_id: Str required,
            /// region
            region: Str required,
            /// snapshot id
            snapshot_id: Str required,
            /// `all` for a public snapshot
            group: Str optional in ["all"],
            /// account the snapshot is shared with
            user_id: Str optional,
        }
    }

    /// EC2 instances (DescribeInstances), to tell which AMIs are in use, with the AMI each was launched from (DescribeInstanceImageMetadata).
    instances => InstanceRow {
        resource: ("instance_id", "name", "instance"),
        key: ["account_id", "region", "instance_id"],
        since: 1,
        operations: ["ec2:DescribeInstances"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// instance id
            instance_id: Str required,
            /// value of the `Name` tag
            name: Str optional,
            /// AMI it was launched from
            image_id: Str optional,
            /// owner of that AMI (DescribeInstanceImageMetadata, which knows it even when the AMI was deregistered or unshared; else DescribeImages); null when not known
            image_owner_id: Str optional,
            /// pending | running | stopping | stopped | shutting-down | terminated
            state: Str optional in ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"],
            /// e.g. `m7g.large`
            instance_type: Str optional,
            /// launch time
            launch_time: Timestamp optional,
            /// state of the AMI it was launched from (DescribeInstanceImageMetadata): available | deregistered | disabled | ...; null when not known
            image_state: Str optional since 2 in ["available", "pending", "failed", "error", "invalid", "deregistered", "transient", "disabled"],
            /// whether DescribeImages shows that AMI to this account now; false when it was deregistered, made private or unshared; null when not asked
            image_visible: Bool optional since 2,
            /// alias of the AMI's owner (`amazon`, `aws-marketplace`), from DescribeInstanceImageMetadata
            image_owner_alias: Str optional since 2,
        }
    }

    /// The $Default and $Latest versions of each launch template (DescribeLaunchTemplateVersions).
    launch_templates => LaunchTemplateRow {
        resource: ("launch_template_id", "launch_template_name", "launch-template"),
        key: ["account_id", "region", "launch_template_id", "version_number"],
        since: 1,
        operations: ["ec2:DescribeLaunchTemplateVersions"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// template id
            launch_template_id: Str required,
            /// template name
            launch_template_name: Str optional,
            /// version
            version_number: Int optional,
            /// this version is $Default
            is_default: Bool optional,
            /// this version is $Latest
            is_latest: Bool optional,
            /// AMI the version launches (null when it resolves an SSM parameter at launch)
            image_id: Str optional,
            /// owner of that AMI (DescribeImages on the ids in use); null when not known or not visible
            image_owner_id: Str optional,
            /// whether DescribeImages shows that AMI to this account now; false when it was deregistered, made private or unshared; null when not asked
            image_visible: Bool optional since 2,
            /// `resolve:ssm:<parameter>` when the version names an SSM parameter instead of an AMI id
            image_parameter: Str optional since 5,
        }
    }

    /// KMS keys referenced by image block devices (DescribeKey), to tell AWS-managed from customer-managed keys.
    kms_keys => KmsKeyRow {
        resource: ("key_arn", "alias", "kms-key"),
        key: ["key_arn"],
        since: 1,
        operations: ["kms:DescribeKey"],
        columns: {
            /// account that owns the key
            account_id: Str required,
            /// region
            region: Str required,
            /// key ARN
            key_arn: Str required,
            /// AWS | CUSTOMER; null when not known
            key_manager: Str optional in ["AWS", "CUSTOMER"],
            /// first alias, e.g. `alias/aws/ebs`
            alias: Str optional,
        }
    }

    /// Active Amazon Inspector findings tied to an AMI: found on instances launched from it, or on the AMI itself.
    inspector_findings => InspectorFindingRow {
        resource: ("finding_arn", "title", "finding"),
        key: ["account_id", "region", "finding_arn"],
        since: 1,
        operations: ["inspector2:ListFindings"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// finding ARN
            finding_arn: Str required,
            /// AMI the finding is tied to
            image_id: Str optional,
            /// instance it was found on, if any
            instance_id: Str optional,
            /// AWS_EC2_INSTANCE | AWS_EC2_AMI
            resource_type: Str optional,
            /// CRITICAL | HIGH | MEDIUM | LOW | INFORMATIONAL | UNTRIAGED
            severity: Str optional in ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"],
            /// e.g. `CVE-2024-6387`
            vulnerability_id: Str optional,
            /// finding title
            title: Str optional,
            /// ACTIVE | SUPPRESSED | CLOSED
            status: Str optional in ["ACTIVE", "SUPPRESSED", "CLOSED"],
            /// YES | NO | PARTIAL
            fix_available: Str optional in ["YES", "NO", "PARTIAL"],
            /// first observed
            first_observed_at: Timestamp optional,
            /// last observed
            last_observed_at: Timestamp optional,
        }
    }

    /// EC2 Image Builder pipelines that build AMIs (ListImagePipelines; container pipelines are left out).
    pipelines => PipelineRow {
        resource: ("pipeline_arn", "name", "image-pipeline"),
        key: ["account_id", "region", "pipeline_arn"],
        since: 3,
        operations: ["imagebuilder:ListImagePipelines"],
        columns: {
            /// account
            account_id: Str required,
            /// region the pipeline builds in
            region: Str required,
            /// pipeline ARN
            pipeline_arn: Str required,
            /// pipeline name
            name: Str optional,
            /// ENABLED | DISABLED
            status: Str optional in ["ENABLED", "DISABLED"],
            /// Linux | Windows | macOS
            platform: Str optional,
            /// cron or rate expression; null when the pipeline has no schedule (it runs only when started by hand)
            schedule_expression: Str optional,
            /// time zone of the schedule (IANA), e.g. `Etc/UTC`
            schedule_timezone: Str optional,
            /// EXPRESSION_MATCH_ONLY | EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE
            start_condition: Str optional in ["EXPRESSION_MATCH_ONLY", "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"],
            /// imageTestsConfiguration.imageTestsEnabled
            tests_enabled: Bool optional,
            /// imageScanningConfiguration.imageScanningEnabled (Inspector scans each new image); false when the pipeline has no scanning configuration
            scanning_enabled: Bool optional,
            /// enhancedImageMetadataEnabled
            enhanced_metadata_enabled: Bool optional,
            /// status of the last run, e.g. AVAILABLE | FAILED | BUILDING
            last_run_status: Str optional,
            /// runs that failed in a row (as AWS reports it)
            consecutive_failures: Int optional,
            /// when the schedule next starts it
            next_run: Timestamp optional,
            /// when the pipeline was created
            date_created: Timestamp optional,
            /// image recipe it builds
            image_recipe_arn: Str optional,
            /// infrastructure configuration (build instances)
            infrastructure_arn: Str optional,
            /// distribution configuration; null when the pipeline distributes nowhere (the image stays in its build region and account)
            distribution_arn: Str optional,
            /// how many image builds ListImagePipelineImages returned (rows in `pipeline_images`); null when they were not read
            images_listed: Int optional,
        }
    }

    /// Each image build version a pipeline produced (ListImagePipelineImages).
    pipeline_images => PipelineImageRow {
        resource: ("image_build_arn", "version", "image-build"),
        key: ["account_id", "region", "image_build_arn"],
        since: 3,
        operations: ["imagebuilder:ListImagePipelineImages"],
        columns: {
            /// account
            account_id: Str required,
            /// region of the pipeline
            region: Str required,
            /// image build version ARN (`.../image/<name>/<version>/<build>`)
            image_build_arn: Str required,
            /// pipeline that built it
            pipeline_arn: Str required,
            /// image name
            name: Str optional,
            /// semantic version, e.g. `1.0.3`
            version: Str optional,
            /// PENDING | CREATING | BUILDING | TESTING | DISTRIBUTING | INTEGRATING | AVAILABLE | CANCELLED | FAILED | DEPRECATED | DELETED | DISABLED
            status: Str optional,
            /// when the build was created
            date_created: Timestamp optional,
            /// USER_INITIATED | SCHEDULED | IMPORT | IMPORT_ISO
            build_type: Str optional,
        }
    }

    /// The tags of each image build (ListImagePipelineImages `tags`): what a lifecycle policy that selects by tag matches.
    pipeline_image_tags => PipelineImageTagRow {
        resource: ("image_build_arn", "key", "image-build"),
        key: ["account_id", "region", "image_build_arn", "key"],
        since: 5,
        operations: [],
        columns: {
            /// account
            account_id: Str required,
            /// region of the pipeline
            region: Str required,
            /// image build version ARN
            image_build_arn: Str required,
            /// tag key
            key: Str required,
            /// tag value
            value: Str optional,
        }
    }

    /// Every AMI an image build distributed, per region and account (ListImagePipelineImages outputResources.amis).
    pipeline_amis => PipelineAmiRow {
        resource: ("image_id", "image_id", "ami"),
        key: ["account_id", "region", "image_build_arn", "ami_region", "ami_account_id", "image_id"],
        since: 3,
        operations: ["imagebuilder:ListImagePipelineImages"],
        columns: {
            /// account of the pipeline
            account_id: Str required,
            /// region of the pipeline
            region: Str required,
            /// image build version ARN
            image_build_arn: Str required,
            /// pipeline that built it
            pipeline_arn: Str required,
            /// region the AMI is in
            ami_region: Str required,
            /// account that owns the AMI (the pipeline's account when AWS names none)
            ami_account_id: Str required,
            /// AMI id
            image_id: Str required,
        }
    }

    /// Image recipes that pipelines build (GetImageRecipe).
    image_recipes => ImageRecipeRow {
        resource: ("recipe_arn", "name", "image-recipe"),
        key: ["account_id", "region", "recipe_arn"],
        since: 3,
        operations: ["imagebuilder:GetImageRecipe"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// recipe ARN
            recipe_arn: Str required,
            /// recipe name
            name: Str optional,
            /// semantic version
            version: Str optional,
            /// base image: an AMI id, an Image Builder image ARN (`x.x.x` follows new versions), or an `ssm:` parameter
            parent_image: Str optional,
            /// how many components the recipe runs
            component_count: Int optional,
            /// how many block-device mappings it sets (rows in `recipe_block_devices`)
            block_device_count: Int optional,
        }
    }

    /// Block-device mappings of each recipe: the volumes of the build instance and of the image.
    recipe_block_devices => RecipeBlockDeviceRow {
        resource: ("recipe_arn", "device_name", "image-recipe"),
        key: ["account_id", "region", "recipe_arn", "device_name"],
        since: 3,
        operations: ["imagebuilder:GetImageRecipe"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// recipe ARN
            recipe_arn: Str required,
            /// e.g. `/dev/xvda`
            device_name: Str optional,
            /// true when the mapping has an `ebs` block
            is_ebs: Bool required,
            /// whether the EBS volume is encrypted; null when the mapping does not say
            encrypted: Bool optional,
            /// KMS key for the volume
            kms_key_id: Str optional,
            /// GiB
            volume_size: Int optional,
            /// gp3 | gp2 | io1 | io2 | st1 | sc1 | standard
            volume_type: Str optional,
        }
    }

    /// Each target region of a distribution configuration (GetDistributionConfiguration).
    distributions => DistributionRow {
        resource: ("distribution_arn", "name", "image-distribution"),
        key: ["account_id", "region", "distribution_arn", "target_region"],
        since: 3,
        operations: ["imagebuilder:GetDistributionConfiguration"],
        columns: {
            /// account
            account_id: Str required,
            /// region of the configuration
            region: Str required,
            /// distribution configuration ARN
            distribution_arn: Str required,
            /// configuration name
            name: Str optional,
            /// region the AMI is copied to
            target_region: Str required,
            /// whether this region has an AMI distribution block
            ami_distribution: Bool required,
            /// KMS key that encrypts the copies; null when none is set (copies use the default EBS key)
            kms_key_id: Str optional,
            /// SSM parameters the distribution updates with the new AMI id
            ssm_parameter_count: Int optional,
            /// launch templates the distribution updates
            launch_template_count: Int optional,
        }
    }

    /// Who receives the AMIs of each distribution region: accounts the AMI is copied to, and launch permissions.
    distribution_shares => DistributionShareRow {
        resource: ("distribution_arn", "target", "image-distribution"),
        key: ["account_id", "region", "distribution_arn", "target_region", "kind", "target"],
        since: 3,
        operations: ["imagebuilder:GetDistributionConfiguration"],
        columns: {
            /// account
            account_id: Str required,
            /// region of the configuration
            region: Str required,
            /// distribution configuration ARN
            distribution_arn: Str required,
            /// target region
            target_region: Str required,
            /// target_account (copied into that account) | user_id | group | organization_arn | organizational_unit_arn (launch permission)
            kind: Str required in ["target_account", "user_id", "group", "organization_arn", "organizational_unit_arn"],
            /// the account id, `all`, or ARN
            target: Str required,
        }
    }

    /// Infrastructure configurations: the build instances of each pipeline (GetInfrastructureConfiguration).
    infrastructure_configurations => InfrastructureRow {
        resource: ("infrastructure_arn", "name", "image-infrastructure"),
        key: ["account_id", "region", "infrastructure_arn"],
        since: 3,
        operations: ["imagebuilder:GetInfrastructureConfiguration"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// infrastructure configuration ARN
            infrastructure_arn: Str required,
            /// name
            name: Str optional,
            /// instanceMetadataOptions.httpTokens of the build instances: required | optional; null when the configuration sets none (then EC2's launch default applies)
            http_tokens: Str optional in ["required", "optional"],
            /// IMDS hop limit
            http_put_response_hop_limit: Int optional,
            /// whether a failed build's instance is terminated
            terminate_on_failure: Bool optional,
            /// SNS topic told of each build
            sns_topic_arn: Str optional,
            /// S3 bucket for build logs
            logging_bucket: Str optional,
            /// instance profile of the build instances
            instance_profile_name: Str optional,
        }
    }

    /// Image Builder lifecycle policies (ListLifecyclePolicies, GetLifecyclePolicy).
    lifecycle_policies => LifecyclePolicyRow {
        resource: ("policy_arn", "name", "lifecycle-policy"),
        key: ["account_id", "region", "policy_arn"],
        since: 3,
        operations: ["imagebuilder:ListLifecyclePolicies"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// policy ARN
            policy_arn: Str required,
            /// name
            name: Str optional,
            /// ENABLED | DISABLED
            status: Str optional in ["ENABLED", "DISABLED"],
            /// AMI_IMAGE | CONTAINER_IMAGE
            resource_type: Str optional in ["AMI_IMAGE", "CONTAINER_IMAGE"],
            /// its actions, sorted and comma-separated (`DELETE,DEPRECATE`); null when GetLifecyclePolicy was not read
            actions: Str optional,
            /// whether it selects images by tag (rather than by recipe); null when not read
            selects_by_tags: Bool optional,
        }
    }

    /// The recipes a lifecycle policy selects (GetLifecyclePolicy resourceSelection.recipes).
    lifecycle_policy_recipes => LifecyclePolicyRecipeRow {
        resource: ("policy_arn", "recipe_name", "lifecycle-policy"),
        key: ["account_id", "region", "policy_arn", "recipe_name", "semantic_version"],
        since: 3,
        operations: ["imagebuilder:GetLifecyclePolicy"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// policy ARN
            policy_arn: Str required,
            /// recipe name
            recipe_name: Str required,
            /// version pattern, e.g. `1.0.x` or `x.x.x`
            semantic_version: Str required,
        }
    }

    /// The rules of each lifecycle policy (GetLifecyclePolicy policyDetails): what each does, and to what.
    lifecycle_policy_rules => LifecyclePolicyRuleRow {
        resource: ("policy_arn", "action", "lifecycle-policy"),
        key: ["account_id", "region", "policy_arn", "rule_index"],
        since: 5,
        operations: ["imagebuilder:GetLifecyclePolicy"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// policy ARN
            policy_arn: Str required,
            /// position of the rule in the policy, from 0
            rule_index: Int required,
            /// DELETE | DEPRECATE | DISABLE
            action: Str optional in ["DELETE", "DEPRECATE", "DISABLE"],
            /// includeResources.amis: the action applies to the distributed AMIs (false when absent: only Image Builder's image resources)
            include_amis: Bool required,
            /// includeResources.snapshots: the action applies to the AMIs' snapshots
            include_snapshots: Bool required,
            /// AGE | COUNT
            filter_type: Str optional in ["AGE", "COUNT"],
            /// images to keep (COUNT) or time units of age (AGE)
            filter_value: Int optional,
            /// DAYS | WEEKS | MONTHS | YEARS (AGE filters)
            filter_unit: Str optional in ["DAYS", "WEEKS", "MONTHS", "YEARS"],
        }
    }

    /// The tags a lifecycle policy selects Image Builder images by (GetLifecyclePolicy resourceSelection.tagMap).
    lifecycle_policy_tags => LifecyclePolicyTagRow {
        resource: ("policy_arn", "key", "lifecycle-policy"),
        key: ["account_id", "region", "policy_arn", "key"],
        since: 5,
        operations: ["imagebuilder:GetLifecyclePolicy"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// policy ARN
            policy_arn: Str required,
            /// tag key
            key: Str required,
            /// tag value
            value: Str optional,
        }
    }

    /// Auto Scaling groups (DescribeAutoScalingGroups): what each launches is in `asg_launch_sources`.
    auto_scaling_groups => AutoScalingGroupRow {
        resource: ("group_name", "group_name", "auto-scaling-group"),
        key: ["account_id", "region", "group_name"],
        since: 4,
        operations: ["autoscaling:DescribeAutoScalingGroups"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// group name
            group_name: Str required,
            /// group ARN
            group_arn: Str optional,
            /// instances the group aims to run
            desired_capacity: Int optional,
            /// smallest size
            min_size: Int optional,
            /// largest size
            max_size: Int optional,
            /// instances the group holds now
            instance_count: Int optional,
            /// whether a mixed instances policy chooses its launch templates
            mixed_instances: Bool optional,
        }
    }

    /// What each Auto Scaling group launches: its launch template, the templates of its mixed instances policy and their overrides, or its launch configuration, each resolved to a version and the AMI (DescribeLaunchTemplateVersions, DescribeLaunchConfigurations).
    asg_launch_sources => AsgLaunchSourceRow {
        resource: ("reference", "group_name", "asg-launch-source"),
        key: ["account_id", "region", "group_name", "source", "reference"],
        since: 4,
        operations: ["autoscaling:DescribeAutoScalingGroups"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// the group
            group_name: Str required,
            /// launch_template | mixed_instances_policy | override | launch_configuration
            source: Str required in ["launch_template", "mixed_instances_policy", "override", "launch_configuration"],
            /// `<template id or name>:<version as named>` for a template, the name for a launch configuration
            reference: Str required,
            /// template id
            launch_template_id: Str optional,
            /// template name
            launch_template_name: Str optional,
            /// the version as the group names it: `$Default`, `$Latest` or a number (AWS uses `$Default` when none is named)
            version_spec: Str optional,
            /// the version number it resolves to; null when not resolved
            version_number: Int optional,
            /// launch configuration name
            launch_configuration_name: Str optional,
            /// AMI it launches; null when not known or when the template resolves an SSM parameter at launch
            image_id: Str optional,
            /// the `resolve:ssm:` parameter a template names instead of an AMI
            image_parameter: Str optional,
            /// owner of the AMI (DescribeImages on the ids in use); null when not known or not visible
            image_owner_id: Str optional,
            /// whether DescribeImages shows that AMI to this account now; null when not asked
            image_visible: Bool optional,
        }
    }

    /// SSM parameters that hold AMI ids: those of data type `aws:ec2:image` (DescribeParameters, then GetParameters) and those under the configured paths (GetParametersByPath). Values that are not AMI ids are not kept.
    ssm_parameters => SsmParameterRow {
        resource: ("name", "name", "ssm-parameter"),
        key: ["account_id", "region", "name"],
        since: 4,
        operations: ["ssm:DescribeParameters", "ssm:GetParametersByPath"],
        columns: {
            /// account
            account_id: Str required,
            /// region
            region: Str required,
            /// parameter name, e.g. `/golden/al2023/latest`
            name: Str required,
            /// String | StringList | SecureString (a SecureString value is never read)
            parameter_type: Str optional in ["String", "StringList", "SecureString"],
            /// text | aws:ec2:image
            data_type: Str optional,
            /// whether its value was read (GetParameters or GetParametersByPath); a SecureString's never is
            value_read: Bool optional,
            /// the AMI id it holds; null when the value is not an AMI id or was not read
            image_id: Str optional,
            /// parameter version
            version: Int optional,
            /// last change
            last_modified: Timestamp optional,
            /// data_type (listed for its data type) | path (found under a configured path)
            selected_by: Str optional in ["data_type", "path"],
            /// owner of the AMI (DescribeImages on the ids in use); null when not known or not visible
            image_owner_id: Str optional,
            /// whether DescribeImages shows that AMI to this account now; null when not asked
            image_visible: Bool optional,
        }
    }

    /// Every call that failed during the scan. A rule that needs a failed call reports `unknown` where it failed.
    scan_errors => ScanErrorRow {
        resource: ("operation", "operation", "scan-error"),
        key: [],
        since: 1,
        operations: [],
        columns: {
            /// account
            account_id: Str required,
            /// region; null for account-wide failures such as AssumeRole
            region: Str optional,
            /// sts | organizations | ec2 | inspector2 | kms | imagebuilder | autoscaling | ssm
            service: Str required,
            /// API operation, e.g. `DescribeImageAttribute`
            operation: Str required,
            /// resource the call was about, when it was about one
            resource_id: Str optional,
            /// AWS error code, e.g. `AccessDenied`, `OptInRequired`, `Throttling`
            error_code: Str optional,
            /// error message
            message: Str optional,
        }
    }
}

pub const DERIVED: &[DerivedColumn] = &[
    DerivedColumn {
        table: "images",
        name: "age_days",
        kind: ColumnKind::Int,
        doc: "whole days from creation_date to collected_at",
    },
    DerivedColumn {
        table: "images",
        name: "deprecated",
        kind: ColumnKind::Bool,
        doc: "deprecation_time is set and not after collected_at",
    },
    DerivedColumn {
        table: "images",
        name: "inspector_scanned",
        kind: ColumnKind::Bool,
        doc: "a running instance of the image is in an account-region where Inspector EC2 scanning is ENABLED and ListFindings did not fail",
    },
    DerivedColumn {
        table: "images",
        name: "days_since_last_launch",
        kind: ColumnKind::Int,
        doc: "whole days from last_launched_time to collected_at; null when never launched",
    },
    DerivedColumn {
        table: "images",
        name: "family",
        kind: ColumnKind::Str,
        doc: "name without its trailing date and version (`web-golden-20260301-v3` -> `web-golden`)",
    },
    DerivedColumn {
        table: "images",
        name: "is_copy",
        kind: ColumnKind::Bool,
        doc: "whether the image is a copy (CopyImage): source_image_id set and source_instance_id null; null when not known (an inventory before schema version 5, which did not collect source_instance_id, with a source in the same region)",
    },
    DerivedColumn {
        table: "images",
        name: "original_image_id",
        kind: ColumnKind::Str,
        doc: "the image this version was first built as: itself, or for a copy the end of its chain of copies (in the inventory, else its source from image_ancestry when that source has no ancestor of its own); null when not known",
    },
    DerivedColumn {
        table: "images",
        name: "original_region",
        kind: ColumnKind::Str,
        doc: "the region of original_image_id",
    },
    DerivedColumn {
        table: "images",
        name: "version_built_at",
        kind: ColumnKind::Timestamp,
        doc: "when the version was first built (the creation_date of original_image_id); null when not known",
    },
    DerivedColumn {
        table: "images",
        name: "family_newest_image_id",
        kind: ColumnKind::Str,
        doc: "the newest available image of the same family in the same account and region (by version_built_at, to the second); null when that is not certain (a tie, or a version whose build time or state is not known)",
    },
    DerivedColumn {
        table: "images",
        name: "versions_behind",
        kind: ColumnKind::Int,
        doc: "available images of the same family, account and region built after this one (0: it is the newest); null when the image is not available, or when another version could be newer and it is not certain (same second, build time or state not known)",
    },
    DerivedColumn {
        table: "images",
        name: "days_behind",
        kind: ColumnKind::Int,
        doc: "whole days since the first newer version arrived in this account-region (its own creation_date), up to collected_at (0 for the newest): how long its consumers have had to move; null exactly when versions_behind is",
    },
    DerivedColumn {
        table: "images",
        name: "base_image_id",
        kind: ColumnKind::Str,
        doc: "the root of its ancestry (EC2 User Guide, \"AMI ancestry\": a verified provider's public AMI, alias `amazon` or `aws-marketplace`; \"An AMI with no recorded ancestor\"): its source followed through the inventory's images (a copy, or a build from an instance of an organization's AMI) to one with no recorded source (its own base) or one whose chain was read, whose last entry is the base (a chain that stops short, at another partition or the 50th AMI, goes on through the inventory or is not known); null when not known (`base_not_known` says why)",
    },
    DerivedColumn {
        table: "images",
        name: "base_owner",
        kind: ColumnKind::Str,
        doc: "the base's owner alias when it is a verified provider's (`amazon`, `aws-marketplace`), else its owner account as DescribeImages showed it (or as the inventory holds it); null when not known",
    },
    DerivedColumn {
        table: "images",
        name: "base_owner_account",
        kind: ColumnKind::Str,
        doc: "the base's owner account, where DescribeImages showed it or the inventory holds it; null otherwise (an alias alone)",
    },
    DerivedColumn {
        table: "images",
        name: "base_owner_in_organization",
        kind: ColumnKind::Bool,
        doc: "whether `base_owner_account` is an account of the organization; null when the organization's members were not listed (an audit of some accounts, or ListAccounts failed) or the account is not known",
    },
    DerivedColumn {
        table: "images",
        name: "base_name",
        kind: ColumnKind::Str,
        doc: "the base's name as DescribeImages showed it (or as the inventory holds it); null when not shown",
    },
    DerivedColumn {
        table: "images",
        name: "base_not_known",
        kind: ColumnKind::Str,
        doc: "why the base or its owner is not known (ancestry not read, the chain stops short, the root's owner not shown); null when both are known",
    },
    DerivedColumn {
        table: "launch_templates",
        name: "launch_image_id",
        kind: ColumnKind::Str,
        doc: "the AMI the version launches: image_id, or for `resolve:ssm:<name>` the value of that parameter in the same account-region; null when not known (the parameter was not read, or a version or label of it is named)",
    },
    DerivedColumn {
        table: "launch_templates",
        name: "launch_image_owner_id",
        kind: ColumnKind::Str,
        doc: "the owner of launch_image_id (as image_owner_id)",
    },
    DerivedColumn {
        table: "launch_templates",
        name: "launch_image_visible",
        kind: ColumnKind::Bool,
        doc: "whether launch_image_id is visible to the account (as image_visible)",
    },
    DerivedColumn {
        table: "launch_templates",
        name: "launch_image_known",
        kind: ColumnKind::Bool,
        doc: "whether what it launches is known: launch_image_id is, or (a launch template version of schema version 5 on) it names no AMI at all",
    },
    DerivedColumn {
        table: "asg_launch_sources",
        name: "launch_image_id",
        kind: ColumnKind::Str,
        doc: "the AMI the source launches, `resolve:ssm:` followed as for launch_templates; null when not known",
    },
    DerivedColumn {
        table: "asg_launch_sources",
        name: "launch_image_owner_id",
        kind: ColumnKind::Str,
        doc: "the owner of launch_image_id (as image_owner_id)",
    },
    DerivedColumn {
        table: "asg_launch_sources",
        name: "launch_image_visible",
        kind: ColumnKind::Bool,
        doc: "whether launch_image_id is visible to the account (as image_visible)",
    },
    DerivedColumn {
        table: "asg_launch_sources",
        name: "launch_image_known",
        kind: ColumnKind::Bool,
        doc: "whether what it launches is known: launch_image_id is, or (a launch template version of schema version 5 on) it names no AMI at all",
    },
    DerivedColumn {
        table: "inspector_findings",
        name: "open_days",
        kind: ColumnKind::Int,
        doc: "whole days from first_observed_at to collected_at",
    },
    DerivedColumn {
        table: "pipeline_images",
        name: "age_days",
        kind: ColumnKind::Int,
        doc: "whole days from date_created to collected_at",
    },
    DerivedColumn {
        table: "snapshots",
        name: "created_for_image_id",
        kind: ColumnKind::Str,
        doc: "the image the snapshot was made for, as its description says: the first `ami-` id (up to a space, the next `ami-` or the end) of a description beginning `Created by CreateImage(` or `Copied for DestinationAmi ami-` (CopyImage: the destination); null for any other description, one of theirs naming no image, or none",
    },
    DerivedColumn {
        table: "launches",
        name: "account_id",
        kind: ColumnKind::Str,
        doc: "a table of its own: one row per consumer of an AMI, what will launch it: an instance not terminated, the $Default or $Latest version of a launch template, an Auto Scaling launch source (`resolve:ssm:` followed), an SSM parameter holding its id; the consumer's account",
    },
    DerivedColumn {
        table: "launches",
        name: "region",
        kind: ColumnKind::Str,
        doc: "the consumer's region (an AMI is launched in its own region)",
    },
    DerivedColumn {
        table: "launches",
        name: "image_id",
        kind: ColumnKind::Str,
        doc: "the AMI",
    },
    DerivedColumn {
        table: "launches",
        name: "consumer_type",
        kind: ColumnKind::Str,
        doc: "instance | launch-template | auto-scaling-group | ssm-parameter",
    },
    DerivedColumn {
        table: "launches",
        name: "consumer_id",
        kind: ColumnKind::Str,
        doc: "instance id, launch template id, group name or parameter name",
    },
    DerivedColumn {
        table: "image_uses",
        name: "account_id",
        kind: ColumnKind::Str,
        doc: "a table of its own: one row per use of an AMI, once each: what launches it (`launches`), what EC2 says references it in its own account-region (`image_references`; an instance, launch template or parameter named as `launches` names it), each account an image usage report says uses it (`image_usage_entries`, a count of 0 aside), and each pipeline's recipe in any account that builds on it (`image_recipes.parent_image`: an AMI id, or a parameter or an Image Builder image of an account followed to the AMIs it names or its builds distributed); the user's account",
    },
    DerivedColumn {
        table: "image_uses",
        name: "region",
        kind: ColumnKind::Str,
        doc: "the user's region (the AMI's own)",
    },
    DerivedColumn {
        table: "image_uses",
        name: "image_id",
        kind: ColumnKind::Str,
        doc: "the AMI",
    },
    DerivedColumn {
        table: "image_uses",
        name: "use_type",
        kind: ColumnKind::Str,
        doc: "instance | launch-template | auto-scaling-group | ssm-parameter, the type EC2's reference check names (`imagebuilder:ImageRecipe`, `imagebuilder:ContainerRecipe`, ...), or `usage-report:` and the report's resource type (`usage-report:ec2:Instance`)",
    },
    DerivedColumn {
        table: "image_uses",
        name: "use_id",
        kind: ColumnKind::Str,
        doc: "the id as `launches` gives it, else the ARN (a usage report's id for its entries)",
    },
    DerivedColumn {
        table: "consumer_gaps",
        name: "account_id",
        kind: ColumnKind::Str,
        doc: "a table of its own: one row per account-region where what launches AMIs is not known in full: not scanned, a consumer call (instances, launch templates, Auto Scaling groups and launch configurations, SSM parameters) failed or was never made, a consumer whose AMI is not known (a `resolve:ssm:` parameter not read), or an ACTIVE member account outside the scope (every region of the scope)",
    },
    DerivedColumn {
        table: "consumer_gaps",
        name: "region",
        kind: ColumnKind::Str,
        doc: "the region",
    },
    DerivedColumn {
        table: "consumer_gaps",
        name: "reason",
        kind: ColumnKind::Str,
        doc: "why its consumers were not read",
    },
    DerivedColumn {
        table: "image_consumer_gaps",
        name: "image_id",
        kind: ColumnKind::Str,
        doc: "a table of its own (account_id, region, image_id, reason): one row per image of the inventory for which a consumer_gaps account-region lies in its region and belongs to an account that may launch it (its owner; those its launch permissions name; any account when it is shared with the organization, an OU or everyone, or its permissions are not known), or that is public or whose launch permissions were not read (any AWS account may launch it): whether it is in use cannot be proven there",
    },
    DerivedColumn {
        table: "image_consumer_gaps",
        name: "reason",
        kind: ColumnKind::Str,
        doc: "the account and why its consumers were not read",
    },
    DerivedColumn {
        table: "image_use_gaps",
        name: "image_id",
        kind: ColumnKind::Str,
        doc: "a table of its own (account_id, region, image_id, reason): as `image_consumer_gaps`, and also where what a pipeline builds on was not read in an account that may use the image: a pipeline whose recipe was not read, a recipe whose parent image (a parameter not read, an Image Builder image of an account none of whose builds were read, a value of no documented form) could not be followed to an AMI, or imagebuilder:ListImagePipelines or imagebuilder:GetImageRecipe failed or was never made",
    },
    DerivedColumn {
        table: "image_use_gaps",
        name: "reason",
        kind: ColumnKind::Str,
        doc: "the account and why what uses images there was not read",
    },
    DerivedColumn {
        table: "audit",
        name: "collected_at",
        kind: ColumnKind::Timestamp,
        doc: "one-row table: when the inventory was collected (\"now\" for every rule)",
    },
    DerivedColumn {
        table: "audit",
        name: "organization_id",
        kind: ColumnKind::Str,
        doc: "one-row table: the organization id (`o-...`), null outside an organization",
    },
    DerivedColumn {
        table: "images",
        name: "image_key",
        kind: ColumnKind::Int,
        doc: "a number standing for `image_id` in this load, the same in every table below (equal ids, equal keys; a null id, a null key), for joins and groups: one machine word where the id is 21 bytes of text. It means nothing else: the same inventory always gets the same keys, another numbers its ids its own way",
    },
    image_key_of("image_usage_reports"),
    image_key_of("image_usage_entries"),
    image_key_of("image_references"),
    image_key_of("image_ancestry"),
    image_key_of("image_block_devices"),
    image_key_of("image_tags"),
    image_key_of("launch_permissions"),
    image_key_of("instances"),
    image_key_of("launch_templates"),
    image_key_of("inspector_findings"),
    image_key_of("pipeline_amis"),
    image_key_of("asg_launch_sources"),
    image_key_of("ssm_parameters"),
    image_key_of("launches"),
    image_key_of("image_uses"),
    image_key_of("image_consumer_gaps"),
    image_key_of("image_use_gaps"),
    DerivedColumn {
        table: "snapshots",
        name: "created_for_image_key",
        kind: ColumnKind::Int,
        doc: "as `images.image_key`: a number for `created_for_image_id`, to join on",
    },
];

/// The `image_key` of a table with an `image_id` other than `images`.
const fn image_key_of(table: &'static str) -> DerivedColumn {
    DerivedColumn {
        table,
        name: "image_key",
        kind: ColumnKind::Int,
        doc: "as `images.image_key`: a number for `image_id`, to join on",
    }
}

pub fn table(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

/// The table whose rows are resources of `resource_type` (`ami` -> `images`).
pub fn table_for_resource_type(resource_type: &str) -> Option<&'static TableDef> {
    TABLES
        .iter()
        .find(|t| t.resource_type == resource_type && t.key.contains(&t.resource_id))
}

/// The schema as plain text, one line per column: what `tests/schema_snapshot.txt` pins.
pub fn describe() -> String {
    let mut out = format!("schema_version {SCHEMA_VERSION}\n");
    for t in TABLES {
        out.push_str(&format!(
            "{} key({}) since {}\n",
            t.name,
            t.key.join(","),
            t.since
        ));
        for c in t.columns {
            let req = if c.required { " required" } else { "" };
            let since = if c.since > t.since {
                format!(" since {}", c.since)
            } else {
                String::new()
            };
            let vocab = c
                .vocabulary
                .map(|v| format!(" in {}", v.join("|")))
                .unwrap_or_default();
            out.push_str(&format!(
                "{}.{} {}{req}{since}{vocab}\n",
                t.name,
                c.name,
                c.kind.name()
            ));
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
         carries `region`. A null means *not known* (the call that would tell failed or was not \
         made, or AWS returned no value), never *false*. Timestamps are UTC, RFC 3339 in JSON Lines, \
         between 1970 and 2200.\n\n\
         `manifest.json` holds `schema_version`, `collected_at` (\"now\" for every rule), \
         `tool_version`, `scope` (source, organization id, management account, caller ARN, \
         accounts, regions), `complete` (false when the scan was interrupted), `settings` (scan \
         settings that limited what was read, e.g. `snapshot_permissions`) and, per table, \
         its `file`, `sha256` and `rows`. Table files are plain names inside the directory.\n\n\
         Loading refuses a schema version newer than {SCHEMA_VERSION} or older than \
         {OLDEST_SCHEMA_VERSION}, a missing table, a file whose sha256 differs, an unknown column, \
         a wrong type, a null in a required column, a value outside a column's vocabulary, two rows \
         with the same key, or a timestamp outside 1970-2200; each error names the file and the line \
         (or row). An older inventory loads: a table it predates is empty and *not collected*, so \
         rules that need it answer `unknown`. Every account and region in `scope` without a \
         `regions` row is a coverage gap.\n"
    );
    for t in TABLES {
        let since = if t.since > 1 {
            format!(" Since schema version {}.", t.since)
        } else {
            String::new()
        };
        let key = if t.key.is_empty() {
            "no key".to_string()
        } else {
            format!(
                "key ({})",
                t.key
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push_str(&format!(
            "\n## `{}`\n\n{}{since}\nA finding on a row of it names the resource by `{}` ({}); {key}.\n\n| column | type | meaning |\n|---|---|---|\n",
            t.name, t.doc, t.resource_id, t.resource_type
        ));
        for c in t.columns {
            let mut ty = c.kind.name().to_string();
            if c.required {
                ty.push_str(", required");
            }
            if c.since > t.since {
                ty.push_str(&format!(", since v{}", c.since));
            }
            let doc = match c.vocabulary {
                Some(v) => format!(
                    "{} (one of {})",
                    c.doc,
                    v.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => c.doc.to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.name,
                ty,
                doc.replace('|', "\\|")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_column_exists_and_every_table_has_account_and_region() {
        for t in TABLES {
            for k in t.key {
                assert!(t.column(k).is_some(), "{}: key column `{k}`", t.name);
            }
            assert!(t.column("account_id").is_some(), "{}", t.name);
            if t.name != "accounts" {
                assert!(t.column("region").is_some(), "{}", t.name);
            }
            assert!(t.column(t.resource_id).is_some(), "{}", t.name);
        }
    }

    /// Every table with an `image_id`, stored or derived, gets an
    /// `image_key` at load (derive/keys.rs), and the schema says so.
    #[test]
    fn every_table_with_an_image_id_documents_its_image_key() {
        use std::collections::BTreeSet;
        let with_id: BTreeSet<&str> = TABLES
            .iter()
            .filter(|t| t.column("image_id").is_some())
            .map(|t| t.name)
            .chain(
                DERIVED
                    .iter()
                    .filter(|d| d.name == "image_id")
                    .map(|d| d.table),
            )
            .collect();
        let keyed: BTreeSet<&str> = DERIVED
            .iter()
            .filter(|d| d.name == "image_key")
            .map(|d| d.table)
            .collect();
        assert_eq!(with_id, keyed);
        // And every other column of image ids that gets keys.
        for (id, key) in crate::inventory::derive::KEYED.into_iter().skip(1) {
            let tables = |name: &str| -> BTreeSet<&str> {
                DERIVED
                    .iter()
                    .filter(|d| d.name == name)
                    .map(|d| d.table)
                    .collect()
            };
            assert!(!tables(id).is_empty(), "{id}");
            assert_eq!(tables(id), tables(key), "{id} -> {key}");
        }
    }

    #[test]
    fn row_structs_have_the_schema_columns_in_order() {
        let values = ImageRow::default().into_values();
        assert_eq!(values.len(), table("images").map_or(0, |t| t.columns.len()));
        let snapshot = SnapshotRow {
            public: Some(true),
            ..Default::default()
        };
        let def = table("snapshots").expect("snapshots table");
        let idx = def.column_index("public").expect("public column");
        assert_eq!(snapshot.into_values()[idx], Value::Bool(true));
    }
}
