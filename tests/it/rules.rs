//! Every rule of the built-in pack on hand-made tables: a passing resource,
//! a failing one, and `unknown` where data is missing or the account-region
//! could not be scanned.
use std::collections::BTreeMap;

use amiaudit::evaluate::evaluate;
use amiaudit::inventory::Value;
use amiaudit::inventory::str_column;
use amiaudit::policy::ParamOverrides;
use chrono::Duration;

use super::support::*;

pub(super) const A: &str = "111111111111";
const B: &str = "222222222222";
pub(super) const R: &str = "eu-west-1";
pub(super) type Row = (&'static str, Vec<(&'static str, Value)>);

pub(super) fn row(table: &'static str, cells: Vec<(&'static str, Value)>) -> Row {
    let mut all: Vec<(&'static str, Value)> = vec![("account_id", A.into())];
    if table != "accounts" {
        all.push(("region", R.into()));
    }
    for (k, v) in cells {
        all.retain(|(name, _)| *name != k);
        all.push((k, v));
    }
    (table, all)
}

/// A failed call of the base account-region: `service:operation` refused
/// with `error_code`; `extra` adds or overrides cells (a resource, an
/// account, no region).
pub(super) fn scan_error(
    service: &str,
    operation: &str,
    error_code: &str,
    extra: Vec<(&'static str, Value)>,
) -> Row {
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("service", service.to_string().into()),
        ("operation", operation.to_string().into()),
        ("error_code", error_code.to_string().into()),
    ];
    cells.extend(extra);
    row("scan_errors", cells)
}

pub(super) fn days(n: i64) -> Value {
    (now() - Duration::days(n)).into()
}

/// A clean image; `extra` overrides columns.
pub(super) fn image(id: &str, extra: Vec<(&'static str, Value)>) -> Row {
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("image_id", id.into()),
        ("name", format!("web-golden-20261101-v{}", id.len()).into()),
        ("state", "available".into()),
        ("public", false.into()),
        ("creation_date", days(10)),
        ("deprecation_time", (now() + Duration::days(300)).into()),
        ("last_launched_time", days(1)),
        ("imds_support", "v2.0".into()),
        ("deregistration_protection", "enabled".into()),
        ("launch_permission_count", 0i64.into()),
        ("references_read", true.into()),
    ];
    cells.extend(extra);
    row("images", cells)
}

/// A snapshot nobody else may restore; `extra` overrides columns.
fn snapshot(id: &str, extra: Vec<(&'static str, Value)>) -> Row {
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("snapshot_id", id.into()),
        ("public", false.into()),
        ("create_volume_permission_count", 0i64.into()),
    ];
    cells.extend(extra);
    row("snapshots", cells)
}

fn tag(image: &str, key: &str, value: &str) -> Row {
    row(
        "image_tags",
        vec![
            ("image_id", image.into()),
            ("key", key.into()),
            ("value", value.into()),
        ],
    )
}

/// Two org accounts; eu-west-1 scanned with good settings; us-east-1 not scanned.
pub(super) fn base() -> Vec<Row> {
    vec![
        row("accounts", vec![("account_name", "a".into())]),
        row(
            "accounts",
            vec![("account_id", B.into()), ("account_name", "b".into())],
        ),
        row(
            "regions",
            vec![
                ("scan_status", "ok".into()),
                ("ebs_encryption_by_default", true.into()),
                ("image_block_public_access", "block-new-sharing".into()),
                ("snapshot_block_public_access", "block-all-sharing".into()),
                ("allowed_images_state", "enabled".into()),
                ("inspector_ec2_status", "ENABLED".into()),
            ],
        ),
        row(
            "regions",
            vec![
                ("region", "us-east-1".into()),
                ("scan_status", "failed".into()),
            ],
        ),
        scan_error(
            "ec2",
            "DescribeImages",
            "UnauthorizedOperation",
            vec![("region", "us-east-1".into())],
        ),
    ]
}

/// Runs one built-in rule; resource id -> status.
fn run(rule: &str, rows: Vec<Row>) -> BTreeMap<String, String> {
    run_with(rule, rows, ParamOverrides::new())
}

fn run_with(rule: &str, mut rows: Vec<Row>, overrides: ParamOverrides) -> BTreeMap<String, String> {
    let mut all = base();
    // A withheld region setting replaces the base region's value.
    if let Some(at) = rows.iter().position(|(t, _)| *t == "regions:withheld") {
        let (_, cells) = rows.remove(at);
        for (column, value) in cells {
            all[2].1.retain(|(k, _)| *k != column);
            all[2].1.push((column, value));
        }
    }
    // ... and so does a withheld column of account B's row.
    if let Some(at) = rows.iter().position(|(t, _)| *t == "accounts:B") {
        let (_, cells) = rows.remove(at);
        for (column, value) in cells {
            all[1].1.retain(|(k, _)| *k != column);
            all[1].1.push((column, value));
        }
    }
    // The organization's members were listed (its ListAccounts answered).
    let listed = match rows.iter().position(|(t, _)| *t == "scope:organization") {
        Some(at) => {
            rows.remove(at);
            true
        }
        None => false,
    };
    all.append(&mut rows);
    // Account B is a member of the organization outside the scope.
    let inv = inventory_with(all, |m| {
        m.scope.accounts = vec![A.to_string()];
        if listed {
            m.scope.source = "organizations".to_string();
        }
    });
    let evaluation = evaluate_builtin(&inv, rule, &overrides);
    let ids = str_column(&evaluation.results, "resource_id").unwrap();
    let statuses = str_column(&evaluation.results, "status").unwrap();
    let map: BTreeMap<String, String> = ids
        .into_iter()
        .zip(statuses)
        .map(|(i, s)| (i.unwrap().to_string(), s.unwrap().to_string()))
        .collect();
    // The account-region that was not scanned is never judged.
    assert_eq!(
        map.get("us-east-1").map(String::as_str),
        Some("unknown"),
        "{rule}: {map:?}"
    );
    map
}

/// One built-in rule over `inv`, which it judges without a rule error.
fn evaluate_builtin(
    inv: &amiaudit::inventory::Inventory,
    rule: &str,
    overrides: &ParamOverrides,
) -> amiaudit::evaluate::Evaluation {
    let pack = amiaudit::settings::load_pack(&[]).unwrap();
    let rules: Vec<_> = pack.rules.into_iter().filter(|r| r.id == rule).collect();
    assert_eq!(rules.len(), 1, "no rule {rule}");
    let evaluation = evaluate(inv, &rules, overrides);
    assert!(
        evaluation.rule_errors.is_empty(),
        "{rule}: {:?}",
        evaluation.rule_errors
    );
    evaluation
}

/// Parameter `name` of `rule` set to `value`, every other as its default.
fn one_param(rule: &str, name: &str, value: amiaudit::policy::ParamValue) -> ParamOverrides {
    let mut overrides = ParamOverrides::new();
    overrides
        .entry(rule.into())
        .or_default()
        .insert(name.into(), value);
    overrides
}

/// ASG-UNAPPROVED-AMI approving only images owned by `owner`.
fn approved_owners_only(owner: &str) -> ParamOverrides {
    let owners = amiaudit::policy::ParamValue::List(vec![owner.into()]);
    one_param("ASG-UNAPPROVED-AMI", "approved_owners", owners)
}

fn expect(map: &BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (id, status) in expected {
        assert_eq!(
            map.get(*id).map(String::as_str),
            Some(*status),
            "{id} in {map:?}"
        );
    }
}

#[test]
fn ami_public() {
    let m = run(
        "AMI-PUBLIC",
        vec![
            image("ami-ok", vec![]),
            image("ami-flag", vec![("public", true.into())]),
            image("ami-perm", vec![]),
            row(
                "launch_permissions",
                vec![("image_id", "ami-perm".into()), ("group", "all".into())],
            ),
            image("ami-null", vec![("public", Value::Null)]),
        ],
    );
    expect(
        &m,
        &[
            ("ami-ok", "pass"),
            ("ami-flag", "fail"),
            ("ami-perm", "fail"),
            ("ami-null", "unknown"),
        ],
    );
}

#[test]
fn ami_public_unknown_when_launch_permissions_failed() {
    let m = run(
        "AMI-PUBLIC",
        vec![
            image("ami-ok", vec![]),
            image("ami-throttled", vec![]),
            scan_error(
                "ec2",
                "DescribeImageAttribute",
                "RequestLimitExceeded",
                vec![("resource_id", "ami-throttled".into())],
            ),
        ],
    );
    expect(&m, &[("ami-ok", "pass"), ("ami-throttled", "unknown")]);
}

#[test]
fn ami_shared_outside_org() {
    let m = run(
        "AMI-SHARED-OUTSIDE-ORG",
        vec![
            image("ami-in", vec![]),
            row(
                "launch_permissions",
                vec![("image_id", "ami-in".into()), ("user_id", B.into())],
            ),
            row(
                "launch_permissions",
                vec![
                    ("image_id", "ami-in".into()),
                    (
                        "organization_arn",
                        "arn:aws:organizations::111111111111:organization/o-test123456".into(),
                    ),
                ],
            ),
            image("ami-out", vec![]),
            row(
                "launch_permissions",
                vec![
                    ("image_id", "ami-out".into()),
                    ("user_id", "999999999999".into()),
                ],
            ),
            image("ami-other-org", vec![]),
            row(
                "launch_permissions",
                vec![
                    ("image_id", "ami-other-org".into()),
                    (
                        "organizational_unit_arn",
                        "arn:aws:organizations::333333333333:ou/o-other99999/ou-x".into(),
                    ),
                ],
            ),
        ],
    );
    expect(
        &m,
        &[
            ("ami-in", "pass"),
            ("ami-out", "fail"),
            ("ami-other-org", "fail"),
        ],
    );
    let trusted = one_param(
        "AMI-SHARED-OUTSIDE-ORG",
        "trusted_accounts",
        amiaudit::policy::ParamValue::List(vec!["999999999999".into()]),
    );
    let m = run_with(
        "AMI-SHARED-OUTSIDE-ORG",
        vec![
            image("ami-out", vec![]),
            row(
                "launch_permissions",
                vec![
                    ("image_id", "ami-out".into()),
                    ("user_id", "999999999999".into()),
                ],
            ),
        ],
        trusted,
    );
    expect(&m, &[("ami-out", "pass")]);
}

#[test]
fn ami_shared_account_by_account() {
    let mut rows = vec![image("ami-few", vec![]), image("ami-many", vec![])];
    for n in 0..6 {
        rows.push(row(
            "launch_permissions",
            vec![
                ("image_id", "ami-many".into()),
                ("user_id", format!("30000000000{n}").into()),
            ],
        ));
    }
    rows.push(row(
        "launch_permissions",
        vec![("image_id", "ami-few".into()), ("user_id", B.into())],
    ));
    let m = run("AMI-SHARED-ACCOUNT-BY-ACCOUNT", rows);
    expect(&m, &[("ami-few", "pass"), ("ami-many", "fail")]);
}

#[test]
fn snapshots_public_and_shared_outside() {
    let rows = || {
        vec![
            snapshot("snap-ok", vec![]),
            // Listed by DescribeSnapshots RestorableByUserIds=all, never read one by one.
            snapshot(
                "snap-listed",
                vec![
                    ("public", true.into()),
                    ("create_volume_permission_count", Value::Null),
                ],
            ),
            snapshot(
                "snap-pub",
                vec![("create_volume_permission_count", 1i64.into())],
            ),
            row(
                "snapshot_permissions",
                vec![("snapshot_id", "snap-pub".into()), ("group", "all".into())],
            ),
            snapshot(
                "snap-out",
                vec![("create_volume_permission_count", 1i64.into())],
            ),
            row(
                "snapshot_permissions",
                vec![
                    ("snapshot_id", "snap-out".into()),
                    ("user_id", "999999999999".into()),
                ],
            ),
        ]
    };
    let m = run("SNAP-PUBLIC", rows());
    expect(
        &m,
        &[
            ("snap-ok", "pass"),
            ("snap-listed", "fail"),
            ("snap-pub", "fail"),
            ("snap-out", "pass"),
        ],
    );
    let m = run("SNAP-SHARED-OUTSIDE-ORG", rows());
    expect(
        &m,
        &[
            ("snap-ok", "pass"),
            ("snap-out", "fail"),
            // Its permissions were never read: sharing is not known.
            ("snap-listed", "unknown"),
        ],
    );
}

/// Region rules: the base region passes; a second region with bad or unknown settings.
fn region_rule(rule: &str, column: &'static str, bad: Value) {
    let m = run(rule, vec![]);
    expect(&m, &[(R, "pass")]);
    let mut all = vec![];
    for (region, value) in [("eu-central-1", bad), ("ap-south-1", Value::Null)] {
        all.push(row(
            "regions",
            vec![
                ("region", region.into()),
                ("scan_status", "ok".into()),
                ("ebs_encryption_by_default", true.into()),
                ("image_block_public_access", "block-new-sharing".into()),
                ("snapshot_block_public_access", "block-all-sharing".into()),
                ("allowed_images_state", "enabled".into()),
                ("inspector_ec2_status", "ENABLED".into()),
                (column, value),
            ],
        ));
    }
    let m = run(rule, all);
    expect(&m, &[("eu-central-1", "fail"), ("ap-south-1", "unknown")]);
}

#[test]
fn region_settings() {
    region_rule(
        "REGION-IMAGE-BPA",
        "image_block_public_access",
        "unblocked".into(),
    );
    region_rule(
        "REGION-SNAPSHOT-BPA",
        "snapshot_block_public_access",
        "block-new-sharing".into(),
    );
    region_rule(
        "REGION-EBS-DEFAULT-ENCRYPTION",
        "ebs_encryption_by_default",
        false.into(),
    );
    region_rule(
        "REGION-INSPECTOR-EC2-OFF",
        "inspector_ec2_status",
        "DISABLED".into(),
    );
    region_rule(
        "REGION-ALLOWED-AMIS-OFF",
        "allowed_images_state",
        "disabled".into(),
    );
}

fn device(image: &str, name: &str, encrypted: Value, key: Option<&str>, is_ebs: bool) -> Row {
    row(
        "image_block_devices",
        vec![
            ("image_id", image.into()),
            ("device_name", name.into()),
            ("is_ebs", is_ebs.into()),
            ("encrypted", encrypted),
            ("kms_key_id", key.into()),
        ],
    )
}

#[test]
fn ami_unencrypted_ignores_instance_store() {
    let m = run(
        "AMI-UNENCRYPTED",
        vec![
            image("ami-enc", vec![]),
            device("ami-enc", "/dev/xvda", true.into(), Some("k1"), true),
            device("ami-enc", "/dev/sdb", Value::Null, None, false),
            image("ami-plain", vec![]),
            device("ami-plain", "/dev/xvda", false.into(), None, true),
            image("ami-null", vec![]),
            device("ami-null", "/dev/xvda", Value::Null, None, true),
        ],
    );
    expect(
        &m,
        &[
            ("ami-enc", "pass"),
            ("ami-plain", "fail"),
            ("ami-null", "unknown"),
        ],
    );
}

#[test]
fn ami_aws_managed_key() {
    let m = run(
        "AMI-AWS-MANAGED-KEY",
        vec![
            row(
                "kms_keys",
                vec![
                    ("key_arn", "cmk".into()),
                    ("key_manager", "CUSTOMER".into()),
                ],
            ),
            row(
                "kms_keys",
                vec![
                    ("key_arn", "awskey".into()),
                    ("key_manager", "AWS".into()),
                    ("alias", "alias/aws/ebs".into()),
                ],
            ),
            image("ami-cmk", vec![]),
            device("ami-cmk", "/dev/xvda", true.into(), Some("cmk"), true),
            image("ami-aws", vec![]),
            device("ami-aws", "/dev/xvda", true.into(), Some("awskey"), true),
            image("ami-nokey", vec![]),
            device(
                "ami-nokey",
                "/dev/xvda",
                true.into(),
                Some("undescribed"),
                true,
            ),
            // A key described, but whether AWS manages it was not returned.
            row("kms_keys", vec![("key_arn", "vague".into())]),
            image("ami-vague", vec![]),
            device("ami-vague", "/dev/xvda", true.into(), Some("vague"), true),
            image("ami-unsure", vec![]),
            device("ami-unsure", "/dev/xvda", Value::Null, None, true),
            // No AWS-managed key on an unencrypted or volume-less image.
            image("ami-plain", vec![]),
            device("ami-plain", "/dev/xvda", false.into(), None, true),
            image("ami-bare", vec![]),
        ],
    );
    expect(
        &m,
        &[
            ("ami-cmk", "pass"),
            ("ami-aws", "fail"),
            ("ami-nokey", "unknown"),
            ("ami-vague", "unknown"),
            ("ami-unsure", "unknown"),
            ("ami-plain", "pass"),
            ("ami-bare", "pass"),
        ],
    );
}

#[test]
fn lifecycle_deprecation_and_age() {
    let rows = || {
        vec![
            image("ami-fresh", vec![]),
            image("ami-nodep", vec![("deprecation_time", Value::Null)]),
            image(
                "ami-old",
                vec![
                    ("creation_date", days(200)),
                    ("deprecation_time", Value::Null),
                ],
            ),
            image(
                "ami-old-deprecated",
                vec![
                    ("creation_date", days(200)),
                    ("deprecation_time", days(100)),
                ],
            ),
        ]
    };
    let m = run("AMI-NO-DEPRECATION", rows());
    expect(&m, &[("ami-fresh", "pass"), ("ami-nodep", "fail")]);
    let m = run("AMI-STALE", rows());
    expect(
        &m,
        &[
            ("ami-fresh", "pass"),
            ("ami-old", "fail"),
            ("ami-old-deprecated", "pass"),
        ],
    );
    let m = run(
        "AMI-STALE",
        vec![image("ami-undated", vec![("creation_date", Value::Null)])],
    );
    expect(&m, &[("ami-undated", "unknown")]);
}

#[test]
fn deprecated_in_use_and_protection() {
    let rows = || {
        vec![
            image(
                "ami-dep-used",
                vec![
                    ("deprecation_time", days(5)),
                    ("deregistration_protection", "disabled".into()),
                ],
            ),
            image("ami-dep-idle", vec![("deprecation_time", days(5))]),
            image("ami-dep-template", vec![("deprecation_time", days(5))]),
            row(
                "instances",
                vec![
                    ("account_id", B.into()),
                    ("instance_id", "i-1".into()),
                    ("image_id", "ami-dep-used".into()),
                    ("state", "running".into()),
                ],
            ),
            row(
                "launch_templates",
                vec![
                    ("launch_template_id", "lt-1".into()),
                    ("is_default", true.into()),
                    ("is_latest", true.into()),
                    ("image_id", "ami-dep-template".into()),
                    ("image_owner_id", A.into()),
                ],
            ),
        ]
    };
    let m = run("AMI-DEPRECATED-IN-USE", rows());
    expect(
        &m,
        &[
            ("ami-dep-used", "fail"),
            ("ami-dep-template", "fail"),
            ("ami-dep-idle", "pass"),
        ],
    );
    let m = run("AMI-NO-DEREGISTRATION-PROTECTION", rows());
    expect(
        &m,
        &[("ami-dep-used", "fail"), ("ami-dep-template", "pass")],
    );
    assert!(
        !m.contains_key("ami-dep-idle"),
        "unused images are out of scope"
    );

    // A $Default version that names `resolve:ssm:` launches what the
    // parameter holds: the one resolution every rule reads.
    let ssm = |value_read: bool| {
        let mut parameter = vec![
            ("name", "/golden/web".into()),
            ("data_type", "aws:ec2:image".into()),
            ("value_read", value_read.into()),
        ];
        if value_read {
            parameter.push(("image_id", "ami-dep-idle".into()));
        }
        vec![
            row("ssm_parameters", parameter),
            row(
                "launch_templates",
                vec![
                    ("launch_template_id", "lt-ssm".into()),
                    ("version_number", 4i64.into()),
                    ("is_default", true.into()),
                    ("is_latest", false.into()),
                    ("image_parameter", "resolve:ssm:/golden/web".into()),
                ],
            ),
        ]
    };
    let m = run("AMI-DEPRECATED-IN-USE", [rows(), ssm(true)].concat());
    expect(&m, &[("ami-dep-idle", "fail")]);
    let m = run(
        "AMI-NO-DEREGISTRATION-PROTECTION",
        [rows(), ssm(true)].concat(),
    );
    expect(&m, &[("ami-dep-idle", "pass")]);
    // Not read: what the template launches is not known, and neither is
    // whether the images its account may launch are in use.
    let m = run("AMI-DEPRECATED-IN-USE", [rows(), ssm(false)].concat());
    expect(
        &m,
        &[
            ("ami-dep-idle", "unknown"),
            ("ami-dep-used", "fail"),
            ("ami-dep-template", "fail"),
        ],
    );
    // Shared with the organization: account C, a member the audit did not
    // visit, may launch it.
    let shared = [
        rows(),
        vec![
            row(
                "launch_permissions",
                vec![
                    ("image_id", "ami-dep-idle".into()),
                    (
                        "organization_arn",
                        "arn:aws:organizations::1:organization/o-1".into(),
                    ),
                ],
            ),
            row(
                "accounts",
                vec![
                    ("account_id", "333333333333".into()),
                    ("status", "ACTIVE".into()),
                ],
            ),
        ],
    ]
    .concat();
    let shared = set_image(
        shared,
        "ami-dep-idle",
        "launch_permission_count",
        1i64.into(),
    );
    let m = run("AMI-DEPRECATED-IN-USE", shared);
    expect(&m, &[("ami-dep-idle", "unknown")]);
}

/// Replaces `column` of one image's row.
fn set_image(mut rows: Vec<Row>, id: &str, column: &'static str, value: Value) -> Vec<Row> {
    for (t, cells) in rows.iter_mut() {
        if *t == "images"
            && cells
                .iter()
                .any(|(k, v)| *k == "image_id" && *v == Value::from(id))
        {
            cells.retain(|(k, _)| *k != column);
            cells.push((column, value.clone()));
        }
    }
    rows
}

#[test]
fn instance_or_template_ami_missing() {
    let instance = |id: &str, image: &str, extra: Vec<(&'static str, Value)>| {
        let mut cells: Vec<(&'static str, Value)> = vec![
            ("instance_id", id.into()),
            ("image_id", image.into()),
            ("state", "running".into()),
        ];
        cells.extend(extra);
        row("instances", cells)
    };
    let template = |id: &str, image: &str, visible: Value| {
        row(
            "launch_templates",
            vec![
                ("launch_template_id", id.into()),
                ("version_number", 1i64.into()),
                ("is_default", true.into()),
                ("is_latest", true.into()),
                ("image_id", image.into()),
                ("image_visible", visible),
            ],
        )
    };
    let m = run(
        "INSTANCE-AMI-MISSING",
        vec![
            image("ami-here", vec![]),
            instance("i-ok", "ami-here", vec![("image_owner_id", A.into())]),
            instance(
                "i-amazon",
                "ami-amzn",
                vec![
                    ("image_owner_id", "137112412989".into()),
                    ("image_state", "available".into()),
                    ("image_visible", true.into()),
                ],
            ),
            instance(
                "i-gone",
                "ami-gone",
                vec![
                    ("state", "stopped".into()),
                    ("image_owner_id", B.into()),
                    ("image_state", "deregistered".into()),
                    ("image_visible", false.into()),
                ],
            ),
            instance(
                "i-unshared",
                "ami-private",
                vec![
                    ("image_state", "available".into()),
                    ("image_visible", false.into()),
                ],
            ),
            instance("i-unasked", "ami-unasked", vec![]),
            template("lt-gone", "ami-gone", false.into()),
            template("lt-ok", "ami-here", Value::Null),
            template("lt-unasked", "ami-unasked", Value::Null),
        ],
    );
    expect(
        &m,
        &[
            ("i-ok", "pass"),
            ("i-amazon", "pass"),
            ("i-gone", "fail"),
            ("i-unshared", "fail"),
            ("i-unasked", "unknown"),
            ("lt-gone", "fail"),
            ("lt-ok", "pass"),
            ("lt-unasked", "unknown"),
        ],
    );
}

#[test]
fn snap_orphaned() {
    let m = run("SNAP-ORPHANED", vec![
        image("ami-here", vec![]),
        row("snapshots", vec![("snapshot_id", "snap-kept".into()), ("description", "Created by CreateImage(i-1) for ami-here".into())]),
        row("snapshots", vec![("snapshot_id", "snap-orphan".into()), ("description", "Created by CreateImage(i-1) for ami-gone from vol-1".into())]),
        row("snapshots", vec![("snapshot_id", "snap-copy".into()), ("description", "Copied for DestinationAmi ami-gone2 from SourceAmi ami-x for SourceSnapshot snap-y".into())]),
        row("snapshots", vec![("snapshot_id", "snap-backup".into()), ("description", "nightly backup".into())]),
        row("snapshots", vec![("snapshot_id", "snap-nameless".into()), ("description", "Created by CreateImage(i-1) for ".into())]),
    ]);
    expect(
        &m,
        &[
            ("snap-kept", "pass"),
            ("snap-orphan", "fail"),
            ("snap-copy", "fail"),
            // CreateImage's words, but no image: what it was made for is not known.
            ("snap-nameless", "unknown"),
        ],
    );
    assert!(
        !m.contains_key("snap-backup"),
        "snapshots not made for an AMI are out of scope"
    );
}

#[test]
fn ami_unused_spares_the_newest_version() {
    let m = run(
        "AMI-UNUSED",
        vec![
            image(
                "ami-newest",
                vec![
                    ("name", "app-golden-20261101-v3".into()),
                    ("last_launched_time", days(400)),
                    ("creation_date", days(500)),
                ],
            ),
            image(
                "ami-old-idle",
                vec![
                    ("name", "app-golden-20250101-v1".into()),
                    ("last_launched_time", days(300)),
                    ("creation_date", days(700)),
                ],
            ),
            image(
                "ami-old-busy",
                vec![
                    ("name", "app-golden-20250601-v2".into()),
                    ("last_launched_time", days(3)),
                    ("creation_date", days(600)),
                ],
            ),
            image(
                "ami-never",
                vec![
                    ("name", "app-golden-20240101-v0".into()),
                    ("last_launched_time", Value::Null),
                    ("creation_date", days(900)),
                ],
            ),
        ],
    );
    expect(
        &m,
        &[
            ("ami-newest", "pass"),
            ("ami-old-idle", "fail"),
            ("ami-old-busy", "pass"),
            ("ami-never", "fail"),
        ],
    );
}

/// An old, idle, superseded image is unused only when EC2 was asked what
/// references it and named nothing; a reference EC2 names (here an Image
/// Builder recipe, which no direct read sees) makes it used.
#[test]
fn ami_unused_needs_the_references_read_and_empty() {
    // Built on different days: versions built in the same second are not ordered.
    let idle = |id: &str, extra: Vec<(&'static str, Value)>| {
        let mut cells = vec![
            ("name", format!("app-golden-20250101-v{}", id.len()).into()),
            ("last_launched_time", days(300)),
            ("creation_date", days(700 + id.len() as i64)),
        ];
        cells.extend(extra);
        image(id, cells)
    };
    let m = run(
        "AMI-UNUSED",
        vec![
            image(
                "ami-newest-of-all",
                vec![
                    ("name", "app-golden-20261101-v99".into()),
                    ("creation_date", days(5)),
                ],
            ),
            idle("ami-idle", vec![]),
            idle("ami-in-a-recipe", vec![]),
            row(
                "image_references",
                vec![
                    ("image_id", "ami-in-a-recipe".into()),
                    ("resource_type", "imagebuilder:ImageRecipe".into()),
                    (
                        "resource_arn",
                        "arn:aws:imagebuilder:eu-west-1:111111111111:image-recipe/app/1.0.0".into(),
                    ),
                ],
            ),
            idle("ami-not-asked", vec![("references_read", Value::Null)]),
            // Used only by an instance of another account: in use.
            idle("ami-used-elsewhere", vec![]),
            row(
                "instances",
                vec![
                    ("account_id", B.into()),
                    ("instance_id", "i-in-b".into()),
                    ("image_id", "ami-used-elsewhere".into()),
                    ("state", "running".into()),
                ],
            ),
            // The parent of a pipeline's recipe in another account.
            idle("ami-a-recipe-parent", vec![]),
            row(
                "image_recipes",
                vec![
                    ("account_id", B.into()),
                    (
                        "recipe_arn",
                        "arn:aws:imagebuilder:eu-west-1:222222222222:image-recipe/app/1.0.0".into(),
                    ),
                    ("parent_image", "ami-a-recipe-parent".into()),
                ],
            ),
            // Held only by an AMI parameter: whatever reads it launches it.
            idle("ami-in-a-parameter", vec![]),
            row(
                "ssm_parameters",
                vec![
                    ("name", "/golden/app".into()),
                    ("parameter_type", "String".into()),
                    ("data_type", "aws:ec2:image".into()),
                    ("value_read", true.into()),
                    ("image_id", "ami-in-a-parameter".into()),
                ],
            ),
        ],
    );
    expect(
        &m,
        &[
            ("ami-newest-of-all", "pass"),
            ("ami-idle", "fail"),
            ("ami-in-a-recipe", "pass"),
            ("ami-not-asked", "unknown"),
            ("ami-used-elsewhere", "pass"),
            ("ami-a-recipe-parent", "pass"),
            ("ami-in-a-parameter", "pass"),
        ],
    );
}

/// An idle, older version of `app-golden` (a newer one is in each test):
/// AMI-UNUSED fails it unless something uses it or a fact is missing.
fn idle(id: &str) -> Row {
    image(
        id,
        vec![
            ("name", format!("app-golden-20250101-v{}", id.len()).into()),
            ("last_launched_time", days(300)),
            ("creation_date", days(700 + id.len() as i64)),
        ],
    )
}

/// An image usage report's entry is use; a count of 0, or no report, does
/// not close the gap of an account the audit did not read.
#[test]
fn ami_unused_reads_usage_reports_as_use() {
    let shared_with_b = |id: &str| {
        row(
            "launch_permissions",
            vec![("image_id", id.to_string().into()), ("user_id", B.into())],
        )
    };
    let report = |id: &str, read: bool, age: i64| {
        row(
            "image_usage_reports",
            vec![
                ("image_id", id.to_string().into()),
                ("report_id", format!("amiur-{}", id.len()).into()),
                ("creation_time", days(age)),
                ("entries_read", read.into()),
            ],
        )
    };
    let entry = |id: &str, count: i64| {
        row(
            "image_usage_entries",
            vec![
                ("image_id", id.to_string().into()),
                ("report_id", format!("amiur-{}", id.len()).into()),
                ("user_account_id", B.into()),
                ("resource_type", "ec2:LaunchTemplate".into()),
                ("usage_count", count.into()),
            ],
        )
    };
    let mut rows = vec![image(
        "ami-newest-of-all",
        vec![
            ("name", "app-golden-20261101-v99".into()),
            ("creation_date", days(5)),
        ],
    )];
    // Each idle, shared with B (outside the scope), each name a different
    // length (the report ids follow it).
    let cases = [
        ("ami-used-by-b", Some((true, 1)), 2),
        ("ami-counted-zero", Some((true, 1)), 0),
        ("ami-no-report", None, 2),
        ("ami-entries-unread-", Some((false, 1)), 2),
        ("ami-report-expired--", Some((true, 40)), 2),
    ];
    for (id, with_report, count) in cases {
        rows.push(idle(id));
        rows.push(shared_with_b(id));
        if let Some((read, age)) = with_report {
            rows.push(report(id, read, age));
        }
        rows.push(entry(id, count));
    }
    let m = run("AMI-UNUSED", rows.clone());
    expect(
        &m,
        &[
            ("ami-used-by-b", "pass"),
            ("ami-counted-zero", "unknown"),
            ("ami-no-report", "unknown"),
            ("ami-entries-unread-", "unknown"),
            ("ami-report-expired--", "unknown"),
        ],
    );

    // Public, with every member of the organization read: any account
    // outside it may launch it, so only a use proves anything.
    let (table, mut cells) = idle("ami-public-idle");
    cells.retain(|(k, _)| !matches!(*k, "public" | "launch_permission_count"));
    cells.push(("public", true.into()));
    cells.push(("launch_permission_count", 1i64.into()));
    rows.push((table, cells));
    rows.push(row(
        "launch_permissions",
        vec![
            ("image_id", "ami-public-idle".into()),
            ("group", "all".into()),
        ],
    ));
    rows.push(("scope:organization", vec![]));
    // B suspended: no member of the organization is left unread.
    rows.push(("accounts:B", vec![("status", "SUSPENDED".into())]));
    let m = run("AMI-UNUSED", rows);
    expect(
        &m,
        &[("ami-public-idle", "unknown"), ("ami-used-by-b", "pass")],
    );
}

#[test]
fn ami_unused_follows_what_pipelines_build_on() {
    let newest = image(
        "ami-newest-of-all",
        vec![
            ("name", "app-golden-20261101-v99".into()),
            ("creation_date", days(5)),
        ],
    );
    let recipe = |account: &str, parent: &str| {
        row(
            "image_recipes",
            vec![
                ("account_id", account.to_string().into()),
                (
                    "recipe_arn",
                    format!(
                        "arn:aws:imagebuilder:{R}:{account}:image-recipe/app/{}",
                        parent.len()
                    )
                    .into(),
                ),
                ("parent_image", parent.to_string().into()),
            ],
        )
    };
    // Another account's recipe builds on an Image Builder image of A, any
    // version: every AMI its builds distributed to the region is used.
    let built = vec![
        newest.clone(),
        idle("ami-idle"),
        idle("ami-built-by-a"),
        row(
            "pipeline_amis",
            vec![
                (
                    "image_build_arn",
                    format!("arn:aws:imagebuilder:{R}:{A}:image/base/1.2.0/3").into(),
                ),
                (
                    "pipeline_arn",
                    format!("arn:aws:imagebuilder:{R}:{A}:image-pipeline/base").into(),
                ),
                ("ami_region", R.into()),
                ("ami_account_id", A.into()),
                ("image_id", "ami-built-by-a".into()),
            ],
        ),
        recipe(B, &format!("arn:aws:imagebuilder:{R}:{A}:image/base/1.x.x")),
        // Named no AMI of the organization: no gap.
        recipe(
            A,
            &format!("arn:aws:imagebuilder:{R}:aws:image/amazon-linux-2023-x86/x.x.x"),
        ),
        recipe(
            A,
            "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        ),
        // A top-level parameter name (no `/`), read: followed, no gap.
        recipe(A, "ssm:golden-erp"),
        row(
            "ssm_parameters",
            vec![
                ("name", "golden-erp".into()),
                ("parameter_type", "String".into()),
                ("data_type", "aws:ec2:image".into()),
                ("value_read", true.into()),
                ("image_id", "ami-newest-of-all".into()),
            ],
        ),
    ];
    expect(
        &run("AMI-UNUSED", built.clone()),
        &[
            ("ami-newest-of-all", "pass"),
            ("ami-idle", "fail"),
            ("ami-built-by-a", "pass"),
        ],
    );
    // Each way of not knowing what a pipeline of A builds on leaves A's
    // idle AMIs unknown; the same in B, with which nothing is shared, does
    // not.
    let pipeline = |account: &str| {
        row(
            "pipelines",
            vec![
                ("account_id", account.to_string().into()),
                (
                    "pipeline_arn",
                    format!("arn:aws:imagebuilder:{R}:{account}:image-pipeline/unread").into(),
                ),
                (
                    "image_recipe_arn",
                    format!("arn:aws:imagebuilder:{R}:{account}:image-recipe/unread/1.0.0").into(),
                ),
            ],
        )
    };
    let failed = |account: &str| {
        scan_error(
            "imagebuilder",
            "GetImageRecipe",
            "AccessDeniedException",
            vec![("account_id", account.to_string().into())],
        )
    };
    for (case, gap) in [
        ("a parameter not read", recipe(A, "ssm:/golden/base")),
        (
            "an image none of whose builds were read",
            recipe(
                A,
                &format!("arn:aws:imagebuilder:{R}:{A}:image/other/x.x.x"),
            ),
        ),
        ("no documented form", recipe(A, "golden-base")),
        ("a pipeline whose recipe was not read", pipeline(A)),
        (
            "a pipeline without its recipe's ARN",
            row(
                "pipelines",
                vec![(
                    "pipeline_arn",
                    format!("arn:aws:imagebuilder:{R}:{A}:image-pipeline/nameless").into(),
                )],
            ),
        ),
        ("GetImageRecipe failed", failed(A)),
    ] {
        let mut rows = built.clone();
        rows.push(gap);
        let m = run("AMI-UNUSED", rows);
        assert_eq!(m["ami-idle"], "unknown", "{case}");
        assert_eq!(m["ami-built-by-a"], "pass", "{case}");
    }
    for (case, gap) in [("pipeline", pipeline(B)), ("failed", failed(B))] {
        let mut rows = built.clone();
        rows.push(gap);
        assert_eq!(run("AMI-UNUSED", rows)["ami-idle"], "fail", "in B: {case}");
    }
}

#[test]
fn ami_unhealthy_state() {
    let m = run(
        "AMI-UNHEALTHY-STATE",
        vec![
            image("ami-ok", vec![]),
            image("ami-failed", vec![("state", "failed".into())]),
            image(
                "ami-stuck",
                vec![("state", "pending".into()), ("creation_date", days(2))],
            ),
            image(
                "ami-building",
                vec![("state", "pending".into()), ("creation_date", now().into())],
            ),
        ],
    );
    expect(
        &m,
        &[
            ("ami-ok", "pass"),
            ("ami-failed", "fail"),
            ("ami-stuck", "fail"),
            ("ami-building", "pass"),
        ],
    );
}

#[test]
fn governance_tags_naming_pipeline_imds() {
    let rows = || {
        vec![
            image("ami-good", vec![("name", "web-golden-20261101-v3".into())]),
            tag("ami-good", "Owner", "web"),
            tag("ami-good", "Version", "3"),
            tag("ami-good", "Environment", "prod"),
            tag("ami-good", "Ec2ImageBuilderArn", "arn:x"),
            image(
                "ami-bad",
                vec![("name", "My Image".into()), ("imds_support", Value::Null)],
            ),
            tag("ami-bad", "Owner", ""),
            tag("ami-bad", "Version", "1"),
        ]
    };
    expect(
        &run("AMI-REQUIRED-TAGS", rows()),
        &[("ami-good", "pass"), ("ami-bad", "fail")],
    );
    expect(
        &run("AMI-NAMING", rows()),
        &[("ami-good", "pass"), ("ami-bad", "fail")],
    );
    expect(
        &run("AMI-NOT-PIPELINE-BUILT", rows()),
        &[("ami-good", "pass"), ("ami-bad", "fail")],
    );
    expect(
        &run("AMI-IMDSV1-ALLOWED", rows()),
        &[("ami-good", "pass"), ("ami-bad", "fail")],
    );
}

#[test]
fn instance_unapproved_ami() {
    let m = run(
        "INSTANCE-UNAPPROVED-AMI",
        vec![
            image("ami-golden", vec![]),
            row(
                "instances",
                vec![
                    ("instance_id", "i-golden".into()),
                    ("image_id", "ami-golden".into()),
                    ("state", "running".into()),
                    ("image_owner_id", A.into()),
                ],
            ),
            row(
                "instances",
                vec![
                    ("instance_id", "i-shared".into()),
                    ("image_id", "ami-of-b".into()),
                    ("state", "running".into()),
                    ("image_owner_id", B.into()),
                ],
            ),
            row(
                "instances",
                vec![
                    ("instance_id", "i-community".into()),
                    ("image_id", "ami-c".into()),
                    ("state", "running".into()),
                    ("image_owner_id", "555555555555".into()),
                ],
            ),
            row(
                "instances",
                vec![
                    ("instance_id", "i-unresolved".into()),
                    ("image_id", "ami-gone".into()),
                    ("state", "running".into()),
                ],
            ),
        ],
    );
    expect(
        &m,
        &[
            ("i-golden", "pass"),
            ("i-shared", "pass"),
            ("i-community", "fail"),
            ("i-unresolved", "unknown"),
        ],
    );
}

#[test]
fn family_region_gap() {
    let img = |id: &str, region: &'static str, name: &str, age: i64| {
        let mut r = image(
            id,
            vec![
                ("name", name.to_string().into()),
                ("creation_date", days(age)),
            ],
        );
        r.1.retain(|(k, _)| *k != "region");
        r.1.push(("region", region.into()));
        r
    };
    let rows = vec![
        row(
            "regions",
            vec![
                ("region", "eu-central-1".into()),
                ("scan_status", "ok".into()),
            ],
        ),
        img("ami-1", R, "base-golden-20261101-v2", 10),
        img("ami-2", "eu-central-1", "base-golden-20261001-v1", 40),
    ];
    let m = run("FAMILY-REGION-GAP", rows);
    expect(
        &m,
        &[
            ("base-golden@eu-west-1", "pass"),
            ("base-golden@eu-central-1", "fail"),
        ],
    );
}

#[test]
fn vulnerabilities() {
    let finding = |arn: &str, image: &str, severity: &str, fix: &str, first: i64| {
        row(
            "inspector_findings",
            vec![
                ("finding_arn", arn.into()),
                ("image_id", image.into()),
                ("severity", severity.into()),
                ("vulnerability_id", format!("CVE-{arn}").into()),
                ("status", "ACTIVE".into()),
                ("fix_available", fix.into()),
                ("first_observed_at", days(first)),
            ],
        )
    };
    let running = |instance: &str, image: &str| {
        row(
            "instances",
            vec![
                ("instance_id", instance.into()),
                ("image_id", image.into()),
                ("state", "running".into()),
            ],
        )
    };
    let rows = || {
        vec![
            image("ami-clean", vec![]),
            running("i-1", "ami-clean"),
            image("ami-crit", vec![]),
            running("i-2", "ami-crit"),
            finding("1", "ami-crit", "CRITICAL", "YES", 45),
            image("ami-high", vec![]),
            running("i-3", "ami-high"),
            finding("2", "ami-high", "HIGH", "YES", 5),
            // Nothing runs it: Inspector never looked, so no pass.
            image("ami-idle", vec![]),
        ]
    };
    expect(
        &run("VULN-CRITICAL", rows()),
        &[
            ("ami-clean", "pass"),
            ("ami-crit", "fail"),
            ("ami-high", "pass"),
            ("ami-idle", "unknown"),
        ],
    );
    expect(
        &run("VULN-HIGH", rows()),
        &[("ami-clean", "pass"), ("ami-high", "fail")],
    );
    expect(
        &run("VULN-FIX-OVERDUE", rows()),
        &[("ami-crit", "fail"), ("ami-high", "pass")],
    );
    // Inspector off where its instances run: no finding proves nothing.
    let mut rows = rows();
    rows.push(row(
        "regions",
        vec![
            ("region", "eu-central-1".into()),
            ("scan_status", "ok".into()),
            ("inspector_ec2_status", "DISABLED".into()),
        ],
    ));
    rows.push(image("ami-blind", vec![]));
    let mut blind_instance = running("i-4", "ami-blind");
    blind_instance.1.retain(|(k, _)| *k != "region");
    blind_instance.1.push(("region", "eu-central-1".into()));
    rows.push(blind_instance);
    expect(&run("VULN-CRITICAL", rows), &[("ami-blind", "unknown")]);
}

/// A world in which every built-in rule passes one resource (see [`passing`]).
pub(super) fn clean_world() -> Vec<Row> {
    let mut rows = vec![
        retention_rule(
            "arn:aws:rbin:eu-west-1:111111111111:rule/clean-img",
            "EC2_IMAGE",
            vec![],
        ),
        retention_rule(
            "arn:aws:rbin:eu-west-1:111111111111:rule/clean-snap",
            "EBS_SNAPSHOT",
            vec![],
        ),
        image(
            "ami-clean",
            vec![
                ("name", "web-golden-20261101-v2".into()),
                ("source_image_id", "ami-al2023".into()),
                ("source_image_region", R.into()),
                ("source_instance_id", "i-0".into()),
            ],
        ),
        // Built on Amazon Linux, as GetImageAncestry and DescribeImages say.
        row(
            "image_ancestry",
            vec![
                ("image_id", "ami-clean".into()),
                ("depth", 1i64.into()),
                ("ancestor_image_id", "ami-al2023".into()),
                ("ancestor_region", R.into()),
                ("owner_alias", "amazon".into()),
                ("owner_id", "137112412989".into()),
                (
                    "name",
                    "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64".into(),
                ),
                ("described", true.into()),
            ],
        ),
        tag("ami-clean", "Owner", "web"),
        tag("ami-clean", "Version", "2"),
        tag("ami-clean", "Environment", "prod"),
        tag("ami-clean", "Ec2ImageBuilderArn", "arn:x"),
        row(
            "image_block_devices",
            vec![
                ("image_id", "ami-clean".into()),
                ("device_name", "/dev/xvda".into()),
                ("is_ebs", true.into()),
                ("snapshot_id", "snap-clean".into()),
                ("encrypted", true.into()),
                ("kms_key_id", "cmk".into()),
            ],
        ),
        row(
            "kms_keys",
            vec![
                ("key_arn", "cmk".into()),
                ("key_manager", "CUSTOMER".into()),
            ],
        ),
        snapshot(
            "snap-clean",
            vec![(
                "description",
                "Created by CreateImage(i-0) for ami-clean".into(),
            )],
        ),
        image(
            "ami-retired",
            vec![
                ("name", "web-golden-20261001-v1".into()),
                ("creation_date", days(40)),
                ("deprecation_time", days(5)),
                ("last_launched_time", days(20)),
            ],
        ),
        row(
            "instances",
            vec![
                ("instance_id", "i-clean".into()),
                ("image_id", "ami-clean".into()),
                ("image_owner_id", A.into()),
                ("image_state", "available".into()),
                ("image_visible", true.into()),
                ("state", "running".into()),
            ],
        ),
        row(
            "launch_templates",
            vec![
                ("launch_template_id", "lt-clean".into()),
                ("version_number", 1i64.into()),
                ("is_default", true.into()),
                ("is_latest", true.into()),
                ("image_id", "ami-clean".into()),
                ("image_owner_id", A.into()),
                ("image_visible", true.into()),
            ],
        ),
    ];
    rows.extend(factory("pl-clean", vec![]));
    rows.extend(fleet_world("asg-clean", "ami-clean"));
    rows
}

/// An Auto Scaling group `group` launching `lt-clean` $Default (version 1,
/// of `image`), and a parameter `/golden/<group>` naming `image`.
fn fleet_world(group: &'static str, image: &'static str) -> Vec<Row> {
    vec![
        row(
            "auto_scaling_groups",
            vec![
                ("group_name", group.into()),
                ("desired_capacity", 2i64.into()),
            ],
        ),
        launch_source(group, "lt-clean:$Default", image),
        row(
            "ssm_parameters",
            vec![
                ("name", format!("/golden/{group}").into()),
                ("parameter_type", "String".into()),
                ("data_type", "aws:ec2:image".into()),
                ("value_read", true.into()),
                ("image_id", image.into()),
                ("image_owner_id", A.into()),
                ("image_visible", true.into()),
            ],
        ),
    ]
}

/// A launch source of `group`: `reference` resolved to version 1 of `lt-clean` and `image`.
pub(super) fn launch_source(
    group: &'static str,
    reference: &'static str,
    image: &'static str,
) -> Row {
    row(
        "asg_launch_sources",
        vec![
            ("group_name", group.into()),
            ("source", "launch_template".into()),
            ("reference", reference.into()),
            ("launch_template_id", "lt-clean".into()),
            ("version_spec", "$Default".into()),
            ("version_number", 1i64.into()),
            ("image_id", image.into()),
            ("image_owner_id", A.into()),
            ("image_visible", true.into()),
        ],
    )
}

/// A launch source of `group`: launch configuration `lc`, naming `image`;
/// `extra` adds columns.
fn launch_configuration_source(group: &str, image: &str, extra: Vec<(&'static str, Value)>) -> Row {
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("group_name", group.into()),
        ("source", "launch_configuration".into()),
        ("reference", "lc".into()),
        ("image_id", image.into()),
    ];
    cells.extend(extra);
    row("asg_launch_sources", cells)
}

/// A clean pipeline `id` with its recipe, infrastructure, distribution,
/// one build (of `ami-clean`) and a lifecycle policy; `extra` overrides
/// columns of the pipeline row.
fn factory(id: &'static str, extra: Vec<(&'static str, Value)>) -> Vec<Row> {
    let mut pipeline: Vec<(&'static str, Value)> = vec![
        ("pipeline_arn", id.into()),
        ("name", id.into()),
        ("status", "ENABLED".into()),
        ("schedule_expression", "cron(0 6 ? * mon *)".into()),
        ("tests_enabled", true.into()),
        ("scanning_enabled", true.into()),
        ("consecutive_failures", 0i64.into()),
        ("images_listed", 1i64.into()),
        ("image_recipe_arn", format!("{id}-recipe").into()),
        ("infrastructure_arn", format!("{id}-infra").into()),
        ("distribution_arn", format!("{id}-dist").into()),
    ];
    pipeline.extend(extra);
    let build = format!("{id}-build");
    vec![
        row("pipelines", pipeline),
        row(
            "pipeline_images",
            vec![
                ("image_build_arn", build.clone().into()),
                ("pipeline_arn", id.into()),
                ("status", "AVAILABLE".into()),
                ("date_created", days(5)),
            ],
        ),
        row(
            "pipeline_amis",
            vec![
                ("image_build_arn", build.into()),
                ("pipeline_arn", id.into()),
                ("ami_region", R.into()),
                ("ami_account_id", A.into()),
                ("image_id", "ami-clean".into()),
            ],
        ),
        row(
            "image_recipes",
            vec![
                ("recipe_arn", format!("{id}-recipe").into()),
                ("name", id.into()),
                ("version", "1.0.3".into()),
                (
                    "parent_image",
                    "arn:aws:imagebuilder:eu-west-1:aws:image/amazon-linux-2023-x86/x.x.x".into(),
                ),
            ],
        ),
        row(
            "recipe_block_devices",
            vec![
                ("recipe_arn", format!("{id}-recipe").into()),
                ("device_name", "/dev/xvda".into()),
                ("is_ebs", true.into()),
                ("encrypted", true.into()),
            ],
        ),
        row(
            "infrastructure_configurations",
            vec![
                ("infrastructure_arn", format!("{id}-infra").into()),
                ("http_tokens", "required".into()),
            ],
        ),
        row(
            "distributions",
            vec![
                ("distribution_arn", format!("{id}-dist").into()),
                ("target_region", R.into()),
                ("ami_distribution", true.into()),
                ("kms_key_id", "cmk".into()),
            ],
        ),
        row(
            "distribution_shares",
            vec![
                ("distribution_arn", format!("{id}-dist").into()),
                ("target_region", R.into()),
                ("kind", "target_account".into()),
                ("target", B.into()),
            ],
        ),
        row(
            "lifecycle_policies",
            vec![
                ("policy_arn", format!("{id}-retire").into()),
                ("status", "ENABLED".into()),
                ("resource_type", "AMI_IMAGE".into()),
                ("actions", "DELETE,DEPRECATE".into()),
                ("selects_by_tags", false.into()),
            ],
        ),
        row(
            "lifecycle_policy_rules",
            vec![
                ("policy_arn", format!("{id}-retire").into()),
                ("rule_index", 0i64.into()),
                ("action", "DEPRECATE".into()),
                ("include_amis", true.into()),
                ("include_snapshots", false.into()),
                ("filter_type", "AGE".into()),
                ("filter_value", 60i64.into()),
                ("filter_unit", "DAYS".into()),
            ],
        ),
        row(
            "lifecycle_policy_recipes",
            vec![
                ("policy_arn", format!("{id}-retire").into()),
                ("recipe_name", id.into()),
                ("semantic_version", "1.0.x".into()),
            ],
        ),
    ]
}

/// A build of pipeline `pl-bad`, `age` days old, in `status`.
fn build(n: usize, status: &str, age: i64, kind: &str) -> Row {
    row(
        "pipeline_images",
        vec![
            ("image_build_arn", format!("pl-bad-build-{n}").into()),
            ("pipeline_arn", "pl-bad".into()),
            ("status", status.to_string().into()),
            ("date_created", days(age)),
            ("build_type", kind.to_string().into()),
        ],
    )
}

/// A tag of a build of pipeline `pl-bad` (`pl-bad-build` is its newest).
fn build_tag(build: &str, key: &str, value: &str) -> Row {
    row(
        "pipeline_image_tags",
        vec![
            ("image_build_arn", build.to_string().into()),
            ("key", key.to_string().into()),
            ("value", value.to_string().into()),
        ],
    )
}

/// A tag the lifecycle policy of `pl-bad` selects images by.
fn policy_tag(key: &str, value: &str) -> Row {
    row(
        "lifecycle_policy_tags",
        vec![
            ("policy_arn", "pl-bad-retire".into()),
            ("key", key.to_string().into()),
            ("value", value.to_string().into()),
        ],
    )
}

/// Replaces `column` in every `table` row of `rows` (adding it where absent).
pub(super) fn set(mut rows: Vec<Row>, table: &str, column: &'static str, value: Value) -> Vec<Row> {
    for (t, cells) in rows.iter_mut() {
        if *t == table {
            cells.retain(|(k, _)| *k != column);
            cells.push((column, value.clone()));
        }
    }
    rows
}

#[test]
fn pipelines() {
    let without = |mut rows: Vec<Row>, table: &str| {
        rows.retain(|(t, _)| *t != table);
        rows
    };
    let share = |kind: &str, target: &str| {
        row(
            "distribution_shares",
            vec![
                ("distribution_arn", "pl-bad-dist".into()),
                ("target_region", R.into()),
                ("kind", kind.to_string().into()),
                ("target", target.to_string().into()),
            ],
        )
    };
    let bad = |extra| factory("pl-bad", extra);
    // Its distribution targets another region than the one its AMIs are in.
    let elsewhere = || {
        set(
            bad(vec![]),
            "distributions",
            "target_region",
            "us-west-2".into(),
        )
    };
    let no_tokens = || {
        set(
            bad(vec![]),
            "infrastructure_configurations",
            "http_tokens",
            Value::Null,
        )
    };
    // Its policy selects no recipe of it, and images by tag.
    let by_tags = || {
        set(
            set(
                bad(vec![]),
                "lifecycle_policy_recipes",
                "semantic_version",
                "2.x.x".into(),
            ),
            "lifecycle_policies",
            "selects_by_tags",
            true.into(),
        )
    };
    let cases: Vec<(&str, Vec<Row>, &str)> = vec![
        (
            "PIPELINE-DISABLED",
            bad(vec![("status", "DISABLED".into())]),
            "fail",
        ),
        (
            "PIPELINE-DISABLED",
            bad(vec![("status", Value::Null)]),
            "unknown",
        ),
        (
            "PIPELINE-NO-SCHEDULE",
            bad(vec![("schedule_expression", Value::Null)]),
            "fail",
        ),
        (
            "PIPELINE-TESTS-OFF",
            bad(vec![("tests_enabled", false.into())]),
            "fail",
        ),
        // Scanning that cannot run is off: Inspector scans the test
        // instance (none with tests off) and must be activated.
        (
            "PIPELINE-SCANNING-OFF",
            bad(vec![("tests_enabled", false.into())]),
            "fail",
        ),
        (
            "PIPELINE-SCANNING-OFF",
            [
                bad(vec![]),
                vec![row(
                    "regions:withheld",
                    vec![("inspector_ec2_status", "DISABLED".into())],
                )],
            ]
            .concat(),
            "fail",
        ),
        (
            "PIPELINE-SCANNING-OFF",
            [
                bad(vec![]),
                vec![row(
                    "regions:withheld",
                    vec![("inspector_ec2_status", Value::Null)],
                )],
            ]
            .concat(),
            "unknown",
        ),
        (
            "PIPELINE-SCANNING-OFF",
            bad(vec![("scanning_enabled", false.into())]),
            "fail",
        ),
        // Judged from the build history (newest first): the last two
        // builds failed, whether scheduled or started by hand; AWS's
        // counter counts scheduled runs only and is not needed.
        (
            "PIPELINE-FAILING",
            [
                bad(vec![("consecutive_failures", 0i64.into())]),
                vec![
                    build(1, "FAILED", 2, "USER_INITIATED"),
                    build(2, "FAILED", 1, "USER_INITIATED"),
                ],
            ]
            .concat(),
            "fail",
        ),
        (
            "PIPELINE-FAILING",
            [
                bad(vec![("consecutive_failures", Value::Null)]),
                vec![
                    build(1, "FAILED", 3, "SCHEDULED"),
                    build(2, "CANCELLED", 2, "USER_INITIATED"),
                    build(3, "BUILDING", 0, "SCHEDULED"),
                ],
            ]
            .concat(),
            "pass",
        ),
        // Two failures, then a success: the pipeline recovered.
        (
            "PIPELINE-FAILING",
            [
                bad(vec![("consecutive_failures", 2i64.into())]),
                vec![
                    build(1, "FAILED", 9, "SCHEDULED"),
                    build(2, "FAILED", 8, "SCHEDULED"),
                ],
            ]
            .concat(),
            "pass",
        ),
        // Two failures, then a build whose outcome is not known.
        (
            "PIPELINE-FAILING",
            [
                set(bad(vec![]), "pipeline_images", "status", Value::Null),
                vec![
                    build(1, "FAILED", 3, "SCHEDULED"),
                    build(2, "FAILED", 2, "SCHEDULED"),
                ],
            ]
            .concat(),
            "unknown",
        ),
        // The history was not read: the counter decides, and nothing else.
        (
            "PIPELINE-FAILING",
            bad(vec![
                ("images_listed", Value::Null),
                ("consecutive_failures", 2i64.into()),
            ]),
            "fail",
        ),
        (
            "PIPELINE-FAILING",
            bad(vec![
                ("images_listed", Value::Null),
                ("consecutive_failures", 1i64.into()),
            ]),
            "pass",
        ),
        (
            "PIPELINE-FAILING",
            bad(vec![
                ("images_listed", Value::Null),
                ("consecutive_failures", Value::Null),
            ]),
            "unknown",
        ),
        (
            "PIPELINE-STALE-OUTPUT",
            set(bad(vec![]), "pipeline_images", "date_created", days(36)),
            "fail",
        ),
        (
            "PIPELINE-STALE-OUTPUT",
            set(bad(vec![]), "pipeline_images", "status", "FAILED".into()),
            "fail",
        ),
        (
            "PIPELINE-STALE-OUTPUT",
            set(bad(vec![]), "pipeline_images", "date_created", Value::Null),
            "unknown",
        ),
        (
            "PIPELINE-REGION-GAP",
            [
                set(
                    bad(vec![]),
                    "distributions",
                    "target_region",
                    "us-west-2".into(),
                ),
                vec![row(
                    "instances",
                    vec![
                        ("instance_id", "i-1".into()),
                        ("image_id", "ami-clean".into()),
                    ],
                )],
            ]
            .concat(),
            "fail",
        ),
        (
            "PIPELINE-REGION-GAP",
            without(bad(vec![]), "distributions"),
            "unknown",
        ),
        // Every consumer counts, in any account: an Auto Scaling launch
        // configuration in the other account, ...
        (
            "PIPELINE-REGION-GAP",
            [
                elsewhere(),
                vec![launch_configuration_source(
                    "g",
                    "ami-clean",
                    vec![("account_id", B.into())],
                )],
            ]
            .concat(),
            "fail",
        ),
        // ... an SSM parameter, ...
        (
            "PIPELINE-REGION-GAP",
            [
                elsewhere(),
                vec![row(
                    "ssm_parameters",
                    vec![
                        ("name", "/golden/web".into()),
                        ("value_read", true.into()),
                        ("image_id", "ami-clean".into()),
                    ],
                )],
            ]
            .concat(),
            "fail",
        ),
        // ... a launch template version that resolves that parameter.
        (
            "PIPELINE-REGION-GAP",
            [
                elsewhere(),
                vec![
                    row(
                        "ssm_parameters",
                        vec![
                            ("name", "/golden/web".into()),
                            ("data_type", "aws:ec2:image".into()),
                            ("value_read", false.into()),
                        ],
                    ),
                    row(
                        "ssm_parameters",
                        vec![
                            ("account_id", B.into()),
                            ("name", "/golden/web".into()),
                            ("value_read", true.into()),
                            ("image_id", "ami-clean".into()),
                        ],
                    ),
                    row(
                        "launch_templates",
                        vec![
                            ("account_id", B.into()),
                            ("launch_template_id", "lt-ssm".into()),
                            ("version_number", 1i64.into()),
                            ("is_default", true.into()),
                            ("is_latest", true.into()),
                            ("image_parameter", "resolve:ssm:/golden/web".into()),
                        ],
                    ),
                ],
            ]
            .concat(),
            "fail",
        ),
        // Where its AMIs are but its distribution is not, a consumer not
        // read (a parameter whose value was not read) may be using them.
        (
            "PIPELINE-REGION-GAP",
            [
                elsewhere(),
                vec![row(
                    "ssm_parameters",
                    vec![
                        ("account_id", B.into()),
                        ("name", "/golden/web".into()),
                        ("data_type", "aws:ec2:image".into()),
                        ("value_read", false.into()),
                    ],
                )],
            ]
            .concat(),
            "unknown",
        ),
        // Account B, a member outside the audit's scope, may launch them.
        ("PIPELINE-REGION-GAP", elsewhere(), "unknown"),
        (
            "PIPELINE-REGION-GAP",
            [
                elsewhere(),
                vec![("accounts:B", vec![("status", "SUSPENDED".into())])],
            ]
            .concat(),
            "pass",
        ),
        (
            "PIPELINE-PUBLIC",
            [bad(vec![]), vec![share("group", "all")]].concat(),
            "fail",
        ),
        (
            "PIPELINE-PUBLIC",
            without(bad(vec![]), "distributions"),
            "unknown",
        ),
        (
            "PIPELINE-SHARED-OUTSIDE-ORG",
            [bad(vec![]), vec![share("user_id", "999988887777")]].concat(),
            "fail",
        ),
        (
            "PIPELINE-SHARED-OUTSIDE-ORG",
            [
                bad(vec![]),
                vec![share(
                    "organization_arn",
                    "arn:aws:organizations::999988887777:organization/o-other",
                )],
            ]
            .concat(),
            "fail",
        ),
        (
            "PIPELINE-SHARED-OUTSIDE-ORG",
            without(bad(vec![]), "distributions"),
            "unknown",
        ),
        (
            "PIPELINE-SHARED-ACCOUNT-BY-ACCOUNT",
            [
                bad(vec![]),
                (0..6)
                    .map(|n| share("user_id", &format!("21000000000{n}")))
                    .collect(),
            ]
            .concat(),
            "fail",
        ),
        (
            "PIPELINE-RECIPE-UNENCRYPTED",
            set(
                bad(vec![]),
                "recipe_block_devices",
                "encrypted",
                false.into(),
            ),
            "fail",
        ),
        (
            "PIPELINE-RECIPE-UNENCRYPTED",
            set(
                bad(vec![]),
                "recipe_block_devices",
                "encrypted",
                Value::Null,
            ),
            "fail",
        ),
        (
            "PIPELINE-RECIPE-UNENCRYPTED",
            without(bad(vec![]), "image_recipes"),
            "unknown",
        ),
        (
            "PIPELINE-DISTRIBUTION-NO-CMK",
            set(bad(vec![]), "distributions", "kms_key_id", Value::Null),
            "fail",
        ),
        (
            "PIPELINE-DISTRIBUTION-NO-CMK",
            set(
                bad(vec![]),
                "distributions",
                "kms_key_id",
                "alias/aws/ebs".into(),
            ),
            "fail",
        ),
        (
            "PIPELINE-BUILD-IMDSV1",
            set(
                bad(vec![]),
                "infrastructure_configurations",
                "http_tokens",
                "optional".into(),
            ),
            "fail",
        ),
        (
            "PIPELINE-BUILD-IMDSV1",
            without(bad(vec![]), "infrastructure_configurations"),
            "unknown",
        ),
        // No httpTokens of its own: EC2's launch default, by precedence the
        // account-region's default, then the parent AMI's ImdsSupport.
        (
            "PIPELINE-BUILD-IMDSV1",
            [
                no_tokens(),
                vec![row(
                    "regions:withheld",
                    vec![("imds_default_http_tokens", "required".into())],
                )],
            ]
            .concat(),
            "pass",
        ),
        (
            "PIPELINE-BUILD-IMDSV1",
            [
                no_tokens(),
                vec![row(
                    "regions:withheld",
                    vec![("imds_default_http_tokens", "optional".into())],
                )],
            ]
            .concat(),
            "fail",
        ),
        (
            "PIPELINE-BUILD-IMDSV1",
            [
                no_tokens(),
                vec![row(
                    "regions:withheld",
                    vec![("imds_default_http_tokens", Value::Null)],
                )],
            ]
            .concat(),
            "unknown",
        ),
        // No preference, and a parent image managed by Image Builder: the AMI
        // it resolves to is not known.
        (
            "PIPELINE-BUILD-IMDSV1",
            [
                no_tokens(),
                vec![row(
                    "regions:withheld",
                    vec![("imds_default_http_tokens", "no-preference".into())],
                )],
            ]
            .concat(),
            "unknown",
        ),
        (
            "PIPELINE-BUILD-IMDSV1",
            [
                set(
                    no_tokens(),
                    "image_recipes",
                    "parent_image",
                    "ami-parent".into(),
                ),
                vec![
                    image("ami-parent", vec![("imds_support", "v2.0".into())]),
                    row(
                        "regions:withheld",
                        vec![("imds_default_http_tokens", "no-preference".into())],
                    ),
                ],
            ]
            .concat(),
            "pass",
        ),
        (
            "PIPELINE-BUILD-IMDSV1",
            [
                set(
                    no_tokens(),
                    "image_recipes",
                    "parent_image",
                    "ami-parent".into(),
                ),
                vec![
                    image("ami-parent", vec![("imds_support", Value::Null)]),
                    row(
                        "regions:withheld",
                        vec![("imds_default_http_tokens", "no-preference".into())],
                    ),
                ],
            ]
            .concat(),
            "fail",
        ),
        (
            "PIPELINE-NO-LIFECYCLE",
            set(
                bad(vec![]),
                "lifecycle_policy_recipes",
                "semantic_version",
                "2.x.x".into(),
            ),
            "fail",
        ),
        // A rule reaches the AMIs only when it includes them.
        (
            "PIPELINE-NO-LIFECYCLE",
            set(
                bad(vec![]),
                "lifecycle_policy_rules",
                "include_amis",
                false.into(),
            ),
            "fail",
        ),
        (
            "PIPELINE-NO-LIFECYCLE",
            set(
                bad(vec![]),
                "lifecycle_policy_rules",
                "action",
                "DISABLE".into(),
            ),
            "pass",
        ),
        // Its details were not read: it may cover the pipeline.
        (
            "PIPELINE-NO-LIFECYCLE",
            without(
                set(bad(vec![]), "lifecycle_policies", "actions", Value::Null),
                "lifecycle_policy_rules",
            ),
            "unknown",
        ),
        (
            "PIPELINE-NO-LIFECYCLE",
            set(
                bad(vec![]),
                "lifecycle_policies",
                "status",
                "DISABLED".into(),
            ),
            "fail",
        ),
        // A policy that selects by tag, judged from the newest build's tags.
        (
            "PIPELINE-NO-LIFECYCLE",
            [
                by_tags(),
                vec![
                    policy_tag("Team", "platform"),
                    policy_tag("Retire", "yes"),
                    build_tag("pl-bad-build", "Team", "platform"),
                    build_tag("pl-bad-build", "Retire", "yes"),
                ],
            ]
            .concat(),
            "pass",
        ),
        (
            "PIPELINE-NO-LIFECYCLE",
            [
                by_tags(),
                vec![
                    policy_tag("Team", "platform"),
                    build(1, "AVAILABLE", 30, "SCHEDULED"),
                    build_tag("pl-bad-build-1", "Team", "platform"),
                    build_tag("pl-bad-build", "Team", "data"),
                ],
            ]
            .concat(),
            "fail",
        ),
        // Some of its tags: covered if it selects by any, not if by all.
        (
            "PIPELINE-NO-LIFECYCLE",
            [
                by_tags(),
                vec![
                    policy_tag("Team", "platform"),
                    policy_tag("Retire", "yes"),
                    build_tag("pl-bad-build", "Team", "platform"),
                ],
            ]
            .concat(),
            "unknown",
        ),
        // No build to compare.
        (
            "PIPELINE-NO-LIFECYCLE",
            [
                without(by_tags(), "pipeline_images"),
                vec![policy_tag("Team", "platform")],
            ]
            .concat(),
            "unknown",
        ),
        (
            "PIPELINE-PARENT-PINNED",
            set(
                bad(vec![]),
                "image_recipes",
                "parent_image",
                "ami-0123456789abcdef0".into(),
            ),
            "fail",
        ),
        (
            "PIPELINE-PARENT-PINNED",
            set(
                bad(vec![]),
                "image_recipes",
                "parent_image",
                "arn:aws:imagebuilder:eu-west-1:aws:image/amazon-linux-2023-x86/2025.1.2".into(),
            ),
            "fail",
        ),
        (
            "PIPELINE-PARENT-PINNED",
            set(
                bad(vec![]),
                "image_recipes",
                "parent_image",
                "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".into(),
            ),
            "pass",
        ),
    ];
    for (n, (rule, rows, expected)) in cases.into_iter().enumerate() {
        let m = run(rule, rows);
        assert_eq!(
            m.get("pl-bad").map(String::as_str),
            Some(expected),
            "case {n}: {rule} {m:?}"
        );
    }
    // An image a pipeline lists as output is pipeline-built without any tag.
    let rows = [vec![image("ami-built", vec![])], factory("pl-x", vec![])].concat();
    let rows = set(rows, "pipeline_amis", "image_id", "ami-built".into());
    expect(
        &run("AMI-NOT-PIPELINE-BUILT", rows),
        &[("ami-built", "pass")],
    );
}

/// The resource a rule passes in the clean world.
fn passing(rule: &str) -> &'static str {
    match rule {
        r if r.starts_with("PIPELINE-") => "pl-clean",
        r if r.starts_with("ASG-") => "asg-clean",
        "LT-VERSION-OUTDATED-AMI" => "lt-clean:1",
        "SSM-PARAM-OUTDATED-AMI" => "/golden/asg-clean",
        "AMI-DEPRECATED-IN-USE" => "ami-retired",
        "FAMILY-REGION-GAP" => "web-golden@eu-west-1",
        r if r.starts_with("SNAP-") => "snap-clean",
        r if r.starts_with("INSTANCE-") => "i-clean",
        r if r.starts_with("REGION-") => R,
        _ => "ami-clean",
    }
}

/// The clean world without one fact, for the resource that passes.
fn withhold(fact: &amiaudit::policy::Evidence, resource: &str) -> Vec<Row> {
    use amiaudit::policy::Evidence;
    let mut rows = clean_world();
    match fact {
        Evidence::Call(op) => {
            let (service, operation) = op.split_once(':').unwrap();
            // Organizations is account-wide: no region.
            let extra = if service == "organizations" {
                vec![("region", Value::Null)]
            } else {
                vec![]
            };
            rows.push(scan_error(service, operation, "AccessDenied", extra));
        }
        Evidence::Column { table, column } => {
            let column = amiaudit::inventory::schema::table(table.name)
                .and_then(|t| t.column(column))
                .map(|c| c.name)
                .expect("a stored column");
            if table.name == "regions" {
                // The base region row is the resource: `run` adds it, so the
                // clean world carries the withheld copy and `run` skips its own.
                rows.push(("regions:withheld", vec![(column, Value::Null)]));
                return rows;
            }
            let mut found = false;
            for (t, cells) in rows.iter_mut() {
                let is_it = *t == table.name
                    && cells.iter().any(|(k, v)| {
                        *k == table.resource_id && *v == Value::Str(resource.to_string())
                    });
                if is_it {
                    cells.retain(|(k, _)| *k != column);
                    found = true;
                }
            }
            assert!(found, "no {} row for {resource}", table.name);
        }
    }
    rows
}

#[test]
fn every_fact_a_rule_rests_on_is_needed_for_a_pass() {
    for rule in amiaudit::settings::load_pack(&[]).unwrap().rules {
        let id = passing(&rule.id);
        let clean = run(&rule.id, clean_world());
        assert_eq!(
            clean.get(id).map(String::as_str),
            Some("pass"),
            "{} in the clean world: {clean:?}",
            rule.id
        );
        assert!(!rule.evidence.is_empty(), "{} names no evidence", rule.id);
        for fact in &rule.evidence {
            let m = run(&rule.id, withhold(fact, id));
            assert_eq!(
                m.get(id).map(String::as_str),
                Some("unknown"),
                "{} without {fact}: {m:?}",
                rule.id
            );
        }
    }
}

#[test]
fn every_builtin_rule_is_covered_here() {
    let source = include_str!("rules.rs");
    for rule in amiaudit::settings::load_pack(&[]).unwrap().rules {
        assert!(
            source.contains(&format!("\"{}\"", rule.id)),
            "no test for {}",
            rule.id
        );
    }
}

/// The fleet rules: instances, Auto Scaling groups, the template versions
/// they launch and SSM parameters, against the family's versions. The base
/// world's family `web-golden` has ami-clean (10 days, newest), ami-retired
/// (40 days, deprecated); this adds ami-old (100 days): two versions behind.
#[test]
fn fleet() {
    let old = || {
        image(
            "ami-old",
            vec![
                ("name", "web-golden-20260801-v0".into()),
                ("creation_date", days(100)),
            ],
        )
    };
    let with = |extra: Vec<Row>| [clean_world(), vec![old()], extra].concat();
    let instance = |id: &str, image: &str, extra: Vec<(&'static str, Value)>| {
        let mut cells: Vec<(&'static str, Value)> = vec![
            ("instance_id", id.to_string().into()),
            ("image_id", image.to_string().into()),
            ("state", "running".into()),
        ];
        cells.extend(extra);
        row("instances", cells)
    };
    let m = run(
        "INSTANCE-GOLDEN-BEHIND",
        with(vec![
            instance("i-old", "ami-old", vec![("image_owner_id", A.into())]),
            instance(
                "i-retired",
                "ami-retired",
                vec![("image_owner_id", A.into())],
            ),
            instance(
                "i-gone",
                "ami-gone",
                vec![
                    ("image_owner_id", A.into()),
                    ("image_state", "deregistered".into()),
                ],
            ),
            instance("i-unread", "ami-unread", vec![("image_owner_id", A.into())]),
            instance(
                "i-foreign",
                "ami-foreign",
                vec![("image_owner_id", "999999999999".into())],
            ),
        ]),
    );
    // ami-retired is 1 version behind, and ami-clean has been out for 10
    // days: within the limits.
    expect(
        &m,
        &[
            ("i-clean", "pass"),
            ("i-retired", "pass"),
            ("i-old", "fail"),
            ("i-gone", "fail"),
            ("i-unread", "unknown"),
        ],
    );
    assert!(
        !m.contains_key("i-foreign"),
        "an image owned outside the organization is not golden: {m:?}"
    );
    let tight = one_param(
        "INSTANCE-GOLDEN-BEHIND",
        "max_days_behind",
        amiaudit::policy::ParamValue::Int(9),
    );
    let m = run_with(
        "INSTANCE-GOLDEN-BEHIND",
        with(vec![instance("i-retired", "ami-retired", vec![])]),
        tight,
    );
    expect(&m, &[("i-retired", "fail")]);

    // Groups: every launch source is judged.
    let group = |name: &'static str, sources: Vec<Row>| {
        [
            vec![row(
                "auto_scaling_groups",
                vec![("group_name", name.into())],
            )],
            sources,
        ]
        .concat()
    };
    let source = |g: &'static str, reference: &'static str, cells: Vec<(&'static str, Value)>| {
        let (t, mut all) = launch_source(g, reference, "ami-old");
        for (k, v) in cells {
            all.retain(|(name, _)| *name != k);
            all.push((k, v));
        }
        (t, all)
    };
    let rows = with(
        [
            group(
                "g-old",
                vec![source(
                    "g-old",
                    "lt-old:$Default",
                    vec![("launch_template_id", "lt-old".into())],
                )],
            ),
            group(
                "g-retired",
                vec![source(
                    "g-retired",
                    "lt-clean:$Latest",
                    vec![
                        ("image_id", "ami-retired".into()),
                        ("version_number", 2i64.into()),
                    ],
                )],
            ),
            group(
                "g-gone",
                vec![source(
                    "g-gone",
                    "lt-gone:1",
                    vec![
                        ("launch_template_id", "lt-gone".into()),
                        ("image_id", "ami-gone".into()),
                        ("image_visible", false.into()),
                    ],
                )],
            ),
            group(
                "g-unresolved",
                vec![source(
                    "g-unresolved",
                    "lt-x:7",
                    vec![
                        ("launch_template_id", "lt-x".into()),
                        ("version_number", Value::Null),
                        ("image_id", Value::Null),
                    ],
                )],
            ),
            group(
                "g-ssm",
                vec![source(
                    "g-ssm",
                    "lt-s:1",
                    vec![
                        ("launch_template_id", "lt-s".into()),
                        ("image_id", Value::Null),
                        ("image_owner_id", Value::Null),
                        ("image_visible", Value::Null),
                        ("image_parameter", "resolve:ssm:/golden/web".into()),
                    ],
                )],
            ),
            group(
                "g-ssm-read",
                vec![source(
                    "g-ssm-read",
                    "lt-r:1",
                    vec![
                        ("launch_template_id", "lt-r".into()),
                        ("image_id", Value::Null),
                        ("image_owner_id", Value::Null),
                        ("image_visible", Value::Null),
                        ("image_parameter", "resolve:ssm:/golden/asg-clean".into()),
                    ],
                )],
            ),
            group("g-nothing", vec![]),
            group(
                "g-foreign",
                vec![source(
                    "g-foreign",
                    "lt-f:1",
                    vec![
                        ("launch_template_id", "lt-f".into()),
                        ("image_id", "ami-foreign".into()),
                        ("image_owner_id", "999999999999".into()),
                    ],
                )],
            ),
            group(
                "g-owner-unknown",
                vec![source(
                    "g-owner-unknown",
                    "lt-u:1",
                    vec![
                        ("launch_template_id", "lt-u".into()),
                        ("image_id", "ami-u".into()),
                        ("image_owner_id", Value::Null),
                        ("image_visible", Value::Null),
                    ],
                )],
            ),
        ]
        .concat(),
    );
    let m = run("ASG-LAUNCHES-OUTDATED-AMI", rows.clone());
    expect(
        &m,
        &[
            ("asg-clean", "pass"),
            ("g-old", "fail"),
            ("g-retired", "fail"),
            ("g-gone", "fail"),
            ("g-unresolved", "unknown"),
            // resolve:ssm: the parameter's AMI is judged; not read: unknown.
            ("g-ssm", "unknown"),
            ("g-ssm-read", "pass"),
            ("g-nothing", "unknown"),
            ("g-owner-unknown", "unknown"),
        ],
    );
    assert!(!m.contains_key("g-foreign"), "{m:?}");
    let m = run("ASG-UNAPPROVED-AMI", rows.clone());
    expect(
        &m,
        &[
            ("asg-clean", "pass"),
            ("g-old", "pass"),
            ("g-foreign", "fail"),
            ("g-owner-unknown", "unknown"),
            ("g-nothing", "unknown"),
            ("g-ssm", "unknown"),
            ("g-ssm-read", "pass"),
        ],
    );
    let m = run("LT-VERSION-OUTDATED-AMI", rows);
    expect(
        &m,
        &[
            ("lt-clean:1", "pass"),
            ("lt-old:1", "fail"),
            ("lt-clean:2", "fail"),
            ("lt-gone:1", "fail"),
            ("lt-x:7", "unknown"),
            ("lt-s:1", "unknown"),
            ("lt-r:1", "pass"),
        ],
    );
    assert!(!m.contains_key("lt-f:1"), "{m:?}");

    // Parameters.
    let parameter = |name: &'static str, cells: Vec<(&'static str, Value)>| {
        let mut all: Vec<(&'static str, Value)> = vec![
            ("name", name.into()),
            ("parameter_type", "String".into()),
            ("data_type", "aws:ec2:image".into()),
            ("value_read", true.into()),
            ("image_id", "ami-old".into()),
            ("image_owner_id", A.into()),
            ("image_visible", true.into()),
        ];
        for (k, v) in cells {
            all.retain(|(n, _)| *n != k);
            all.push((k, v));
        }
        row("ssm_parameters", all)
    };
    let m = run(
        "SSM-PARAM-OUTDATED-AMI",
        with(vec![
            parameter("/p/old", vec![]),
            parameter("/p/retired", vec![("image_id", "ami-retired".into())]),
            parameter(
                "/p/gone",
                vec![
                    ("image_id", "ami-gone".into()),
                    ("image_visible", false.into()),
                ],
            ),
            parameter(
                "/p/unread",
                vec![("value_read", false.into()), ("image_id", Value::Null)],
            ),
            parameter(
                "/p/text",
                vec![("data_type", "text".into()), ("image_id", Value::Null)],
            ),
        ]),
    );
    expect(
        &m,
        &[
            ("/golden/asg-clean", "pass"),
            ("/p/old", "fail"),
            ("/p/retired", "fail"),
            ("/p/gone", "fail"),
            ("/p/unread", "unknown"),
        ],
    );
    assert!(
        !m.contains_key("/p/text"),
        "a value that is no AMI id is not judged: {m:?}"
    );

    // A newer version whose state or creation date is not known (a value
    // the scan could not keep): ami-old is at least two versions behind,
    // but how far the clean instance is, is not known.
    for withheld in [("state", Value::Null), ("creation_date", Value::Null)] {
        let newer = image(
            "ami-newer",
            vec![
                ("name", "web-golden-20261119-v3".into()),
                ("creation_date", days(1)),
                withheld.clone(),
            ],
        );
        let m = run(
            "INSTANCE-GOLDEN-BEHIND",
            with(vec![
                newer,
                instance("i-old", "ami-old", vec![("image_owner_id", A.into())]),
            ]),
        );
        expect(&m, &[("i-clean", "unknown"), ("i-old", "unknown")]);
    }
}

/// False passes a review of these rules found, each pinned: where the
/// facts do not prove a pass, the result is `unknown` (or the `fail` they
/// prove).
#[test]
fn facts_that_do_not_prove_a_pass() {
    // FAMILY-REGION-GAP: a newer image of the family whose state is not
    // known may be the newest version.
    let m = run(
        "FAMILY-REGION-GAP",
        vec![
            image("ami-1", vec![("name", "base-golden-20261101-v2".into())]),
            image(
                "ami-2",
                vec![
                    ("name", "base-golden-20261115-v3".into()),
                    ("creation_date", days(2)),
                    ("state", Value::Null),
                ],
            ),
        ],
    );
    expect(&m, &[("base-golden@eu-west-1", "unknown")]);

    // PIPELINE-FAILING: a failure at the very time of the last success
    // may be after it.
    let tied = [
        bad_factory(),
        vec![
            build(1, "FAILED", 5, "SCHEDULED"),
            build(2, "FAILED", 9, "SCHEDULED"),
        ],
    ]
    .concat();
    assert_eq!(
        run("PIPELINE-FAILING", tied)
            .get("pl-bad")
            .map(String::as_str),
        Some("unknown")
    );

    // PIPELINE-NO-LIFECYCLE: two newest builds at the same time, each with
    // one of the policy's two tags, or a newest build whose time is not
    // known: which one is the newest is not known.
    let by_tags = set(
        set(
            bad_factory(),
            "lifecycle_policy_recipes",
            "semantic_version",
            "2.x.x".into(),
        ),
        "lifecycle_policies",
        "selects_by_tags",
        true.into(),
    );
    let twins = [
        by_tags.clone(),
        vec![
            policy_tag("Team", "platform"),
            policy_tag("Retire", "yes"),
            build(1, "AVAILABLE", 5, "SCHEDULED"),
            build_tag("pl-bad-build", "Team", "platform"),
            build_tag("pl-bad-build-1", "Retire", "yes"),
        ],
    ]
    .concat();
    assert_eq!(
        run("PIPELINE-NO-LIFECYCLE", twins)
            .get("pl-bad")
            .map(String::as_str),
        Some("unknown")
    );
    let untimed = [
        by_tags,
        vec![
            policy_tag("Team", "platform"),
            build_tag("pl-bad-build", "Team", "platform"),
            row(
                "pipeline_images",
                vec![
                    ("image_build_arn", "pl-bad-build-late".into()),
                    ("pipeline_arn", "pl-bad".into()),
                    ("status", "AVAILABLE".into()),
                ],
            ),
        ],
    ]
    .concat();
    assert_eq!(
        run("PIPELINE-NO-LIFECYCLE", untimed)
            .get("pl-bad")
            .map(String::as_str),
        Some("unknown")
    );

    // PIPELINE-REGION-GAP: a copy of a copy of its AMI is its AMI.
    let mut copy = image(
        "ami-copy",
        vec![
            ("source_image_id", "ami-clean".into()),
            ("source_image_region", R.into()),
        ],
    );
    copy.1.retain(|(k, _)| *k != "region");
    copy.1.push(("region", "eu-central-1".into()));
    let mut copy2 = image(
        "ami-copy2",
        vec![
            ("source_image_id", "ami-copy".into()),
            ("source_image_region", "eu-central-1".into()),
        ],
    );
    copy2.1.retain(|(k, _)| *k != "region");
    copy2.1.push(("region", "us-west-2".into()));
    let gap = [
        set(
            bad_factory(),
            "distributions",
            "target_region",
            "eu-central-1".into(),
        ),
        vec![
            image("ami-clean", vec![]),
            copy,
            copy2,
            row(
                "instances",
                vec![
                    ("region", "us-west-2".into()),
                    ("instance_id", "i-far".into()),
                    ("image_id", "ami-copy2".into()),
                    ("state", "running".into()),
                ],
            ),
            ("accounts:B", vec![("status", "SUSPENDED".into())]),
        ],
    ]
    .concat();
    let gap = set(gap, "pipeline_amis", "image_id", "ami-clean".into());
    assert_eq!(
        run("PIPELINE-REGION-GAP", gap)
            .get("pl-bad")
            .map(String::as_str),
        Some("fail")
    );

    // ASG-UNAPPROVED-AMI: a source that names no owner is judged by the
    // owner the image itself names.
    let overrides = approved_owners_only("999999999999");
    let m = run_with(
        "ASG-UNAPPROVED-AMI",
        vec![
            image("ami-owned", vec![("owner_id", A.into())]),
            row("auto_scaling_groups", vec![("group_name", "asg-x".into())]),
            launch_configuration_source("asg-x", "ami-owned", vec![]),
        ],
        overrides,
    );
    expect(&m, &[("asg-x", "fail")]);

    // ASG-LAUNCHES-OUTDATED-AMI: an image owned outside the organization
    // whose existence is not known.
    let m = run(
        "ASG-LAUNCHES-OUTDATED-AMI",
        vec![
            row("auto_scaling_groups", vec![("group_name", "asg-y".into())]),
            launch_configuration_source(
                "asg-y",
                "ami-vendor",
                vec![("image_owner_id", "999999999999".into())],
            ),
        ],
    );
    expect(&m, &[("asg-y", "unknown")]);

    // AMI-DEPRECATED-IN-USE: a group whose launch sources are not known, a
    // text parameter whose value was not read, an account named in the
    // image's launch permissions that the audit did not read.
    let deprecated = || image("ami-dep", vec![("deprecation_time", days(5))]);
    for (extra, count) in [
        (
            vec![row(
                "auto_scaling_groups",
                vec![("group_name", "asg-z".into())],
            )],
            0i64,
        ),
        (
            vec![row(
                "ssm_parameters",
                vec![
                    ("name", "/ami/web".into()),
                    ("parameter_type", "String".into()),
                    ("value_read", false.into()),
                ],
            )],
            0,
        ),
        (
            vec![row(
                "launch_permissions",
                vec![
                    ("image_id", "ami-dep".into()),
                    ("user_id", "444455556666".into()),
                ],
            )],
            1,
        ),
    ] {
        let rows = [vec![deprecated()], extra].concat();
        let rows = set_image(rows, "ami-dep", "launch_permission_count", count.into());
        let m = run("AMI-DEPRECATED-IN-USE", rows);
        expect(&m, &[("ami-dep", "unknown")]);
    }

    // INSTANCE-AMI-MISSING: the image the inventory holds is deregistered.
    let m = run(
        "INSTANCE-AMI-MISSING",
        vec![
            image("ami-gone", vec![("state", "deregistered".into())]),
            row(
                "instances",
                vec![
                    ("instance_id", "i-on-gone".into()),
                    ("image_id", "ami-gone".into()),
                    ("state", "running".into()),
                ],
            ),
        ],
    );
    expect(&m, &[("i-on-gone", "fail")]);
}

/// The factory of `pipelines()`, alone.
fn bad_factory() -> Vec<Row> {
    factory("pl-bad", vec![])
}

/// A Recycle Bin retention rule of the base account-region; `extra`
/// overrides columns of an available, never-locked Region-level rule.
fn retention_rule(arn: &str, resource_type: &str, extra: Vec<(&'static str, Value)>) -> Row {
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("rule_arn", arn.into()),
        ("identifier", arn.rsplit('/').next().unwrap_or(arn).into()),
        ("resource_type", resource_type.into()),
        ("detail_read", true.into()),
        ("status", "available".into()),
        ("retention_days", 30i64.into()),
        ("resource_tag_count", 0i64.into()),
        ("exclude_tag_count", 0i64.into()),
    ];
    cells.extend(extra);
    row("recycle_bin_rules", cells)
}

/// REGION-RECYCLE-BIN-OFF on the base account-region holding one AMI, with
/// `rules` (and `require_lock` when asked): its status there.
fn recycle_bin_status(rules: Vec<Row>, require_lock: bool) -> String {
    let overrides = one_param(
        "REGION-RECYCLE-BIN-OFF",
        "require_lock",
        amiaudit::policy::ParamValue::Bool(require_lock),
    );
    let mut rows = vec![image("ami-golden", vec![])];
    rows.extend(rules);
    let m = run_with("REGION-RECYCLE-BIN-OFF", rows, overrides);
    m.get(R)
        .cloned()
        .unwrap_or_else(|| panic!("no result for {R}: {m:?}"))
}

#[test]
fn region_recycle_bin_off() {
    let image_rule = |extra| {
        retention_rule(
            "arn:aws:rbin:eu-west-1:111111111111:rule/img",
            "EC2_IMAGE",
            extra,
        )
    };
    let snapshot_rule = |extra| {
        retention_rule(
            "arn:aws:rbin:eu-west-1:111111111111:rule/snap",
            "EBS_SNAPSHOT",
            extra,
        )
    };
    let locked = || vec![("lock_state", Value::from("locked"))];
    let cases: Vec<(&str, Vec<Row>, bool, &str)> = vec![
        (
            "both Region-level rules",
            vec![image_rule(vec![]), snapshot_rule(vec![])],
            false,
            "pass",
        ),
        ("no rule at all", vec![], false, "fail"),
        (
            "AMIs kept, their snapshots not",
            vec![image_rule(vec![])],
            false,
            "fail",
        ),
        (
            "a pending rule keeps nothing yet",
            vec![
                image_rule(vec![("status", "pending".into())]),
                snapshot_rule(vec![]),
            ],
            false,
            "fail",
        ),
        (
            "a tag-level rule: coverage rests on tags",
            vec![
                image_rule(vec![("resource_tag_count", 1i64.into())]),
                snapshot_rule(vec![]),
            ],
            false,
            "unknown",
        ),
        (
            "exclusion tags: coverage rests on tags",
            vec![
                image_rule(vec![]),
                snapshot_rule(vec![("exclude_tag_count", 2i64.into())]),
            ],
            false,
            "unknown",
        ),
        (
            "a rule whose details were not read",
            vec![
                image_rule(vec![
                    ("detail_read", false.into()),
                    ("status", Value::Null),
                    ("resource_tag_count", Value::Null),
                    ("exclude_tag_count", Value::Null),
                ]),
                snapshot_rule(vec![]),
            ],
            false,
            "unknown",
        ),
        (
            "no snapshot rule at all, whatever the unread image rule says",
            vec![image_rule(vec![
                ("detail_read", false.into()),
                ("status", Value::Null),
                ("resource_tag_count", Value::Null),
                ("exclude_tag_count", Value::Null),
            ])],
            false,
            "fail",
        ),
        (
            "locks asked, none locked",
            vec![image_rule(vec![]), snapshot_rule(vec![])],
            true,
            "fail",
        ),
        (
            "locks asked, both locked",
            vec![image_rule(locked()), snapshot_rule(locked())],
            true,
            "pass",
        ),
        (
            "locks asked, one pending unlock",
            vec![
                image_rule(locked()),
                snapshot_rule(vec![("lock_state", "pending_unlock".into())]),
            ],
            true,
            "fail",
        ),
        (
            "the AMIs could not be listed",
            vec![
                image_rule(vec![]),
                snapshot_rule(vec![]),
                scan_error("ec2", "DescribeImages", "UnauthorizedOperation", vec![]),
            ],
            false,
            "unknown",
        ),
        (
            "the rules could not be listed",
            vec![
                image_rule(vec![]),
                snapshot_rule(vec![]),
                scan_error("rbin", "ListRules", "AccessDeniedException", vec![]),
            ],
            false,
            "unknown",
        ),
    ];
    for (case, rules, require_lock, expected) in cases {
        assert_eq!(recycle_bin_status(rules, require_lock), expected, "{case}");
    }
}

/// The retirement plan is AMI-UNUSED's verdict and nothing more: its
/// failures are safe (protection lifted before deregistering, deprecation
/// first), its unknowns only counted, a deprecated AMI another account
/// still launches is kept with that consumer named.
#[test]
fn retirement_plan_follows_ami_unused() {
    let idle = |id: &str, extra: Vec<(&'static str, Value)>| {
        let mut cells = vec![
            ("name", format!("app-golden-20250101-v{}", id.len()).into()),
            ("last_launched_time", days(300)),
            ("creation_date", days(700 + id.len() as i64)),
            ("deregistration_protection", "disabled".into()),
        ];
        cells.extend(extra);
        image(id, cells)
    };
    let mut all = base();
    all.extend([
        image(
            "ami-newest-of-all",
            vec![
                ("name", "app-golden-20261101-v99".into()),
                ("creation_date", days(5)),
            ],
        ),
        idle("ami-idle", vec![]),
        row(
            "image_block_devices",
            vec![
                ("image_id", "ami-idle".into()),
                ("device_name", "/dev/xvda".into()),
                ("is_ebs", true.into()),
                ("snapshot_id", "snap-idle".into()),
            ],
        ),
        idle(
            "ami-idle-protected",
            vec![
                ("deregistration_protection", "enabled".into()),
                ("deprecation_time", days(30)),
            ],
        ),
        idle("ami-not-asked", vec![("references_read", Value::Null)]),
        idle("ami-deprecated-busy", vec![("deprecation_time", days(30))]),
        row(
            "instances",
            vec![
                ("account_id", B.into()),
                ("instance_id", "i-elsewhere".into()),
                ("image_id", "ami-deprecated-busy".into()),
                ("state", "running".into()),
            ],
        ),
    ]);
    let inv = inventory_with(all, |m| {
        m.scope.accounts = vec![A.to_string(), B.to_string()]
    });
    let evaluation = evaluate_builtin(&inv, "AMI-UNUSED", &ParamOverrides::new());
    let plan = amiaudit::results::retirement::build(&inv, &evaluation.results).unwrap();
    let safe: BTreeMap<&str, &amiaudit::results::retirement::SafeToRetire> =
        plan.safe.iter().map(|s| (s.image_id.as_str(), s)).collect();
    assert_eq!(
        safe.keys().copied().collect::<Vec<_>>(),
        ["ami-idle", "ami-idle-protected"],
        "{plan:?}"
    );
    let idle = safe["ami-idle"];
    assert_eq!(idle.snapshots, ["snap-idle"]);
    assert!(idle.commands[0].starts_with("aws ec2 enable-image-deprecation"));
    assert!(
        !idle
            .commands
            .iter()
            .any(|c| c.contains("deregistration-protection"))
    );
    let protected = safe["ami-idle-protected"];
    assert!(protected.deprecated && protected.protected);
    let order: Vec<&str> = protected
        .commands
        .iter()
        .filter(|c| c.starts_with("aws "))
        .map(|c| c.split(' ').nth(2).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "disable-image-deregistration-protection",
            "deregister-image"
        ]
    );
    // Unknown AMIs are counted (an account-region not read at all is the
    // coverage section's to say, not one AMI).
    assert_eq!(plan.not_known, 1, "ami-not-asked is counted, never safe");
    let kept: Vec<_> = plan
        .still_used
        .iter()
        .map(|u| u.image_id.as_str())
        .collect();
    assert!(kept.contains(&"ami-deprecated-busy"), "{kept:?}");
    let busy = plan
        .still_used
        .iter()
        .find(|u| u.image_id == "ami-deprecated-busy")
        .unwrap();
    assert_eq!(busy.consumers[0].id, "i-elsewhere");
    assert_eq!(busy.consumers[0].account_id, B);
}

/// An image built (CreateImage) from an instance of `source`, whose chain
/// GetImageAncestry gave with `root` last.
fn built_on(id: &'static str, source: &str, root: Vec<(&'static str, Value)>) -> Vec<Row> {
    let mut ancestor = vec![
        ("image_id", Value::from(id)),
        ("depth", 1i64.into()),
        ("ancestor_image_id", source.into()),
        ("ancestor_region", R.into()),
    ];
    ancestor.extend(root);
    vec![
        image(
            id,
            vec![
                ("source_image_id", source.into()),
                ("source_image_region", R.into()),
                ("source_instance_id", format!("i-{}", id.len()).into()),
            ],
        ),
        row("image_ancestry", ancestor),
    ]
}

#[test]
fn ami_base_unapproved() {
    let shown = |alias: Option<&str>, owner: &str, name: &str| {
        vec![
            ("owner_alias", alias.map(Value::from).unwrap_or(Value::Null)),
            ("owner_id", owner.into()),
            ("name", name.into()),
            ("described", true.into()),
        ]
    };
    let amazon = || {
        shown(
            Some("amazon"),
            "137112412989",
            "al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64",
        )
    };
    let mut rows = vec![];
    rows.extend(built_on("ami-on-amazon", "ami-al2023", amazon()));
    rows.extend(built_on(
        "ami-on-amzn2",
        "ami-amzn2",
        shown(
            Some("amazon"),
            "137112412989",
            "amzn2-ami-hvm-2.0.20250101.0-x86_64-gp2",
        ),
    ));
    rows.extend(built_on(
        "ami-on-community",
        "ami-cheap",
        shown(None, "999988887777", "ubuntu-cheap-hardened"),
    ));
    rows.extend(built_on(
        "ami-on-gone",
        "ami-gone",
        vec![("described", false.into())],
    ));
    rows.extend(built_on(
        "ami-on-unread-root",
        "ami-unread",
        vec![("described", Value::Null)],
    ));
    // Built on the organization's own image, itself built on Amazon's.
    rows.extend(built_on(
        "ami-on-org",
        "ami-org-base",
        shown(None, A, "org-base"),
    ));
    // A copy of an image of the inventory takes its base.
    rows.push(image(
        "ami-copy-of-on-amazon",
        vec![
            ("source_image_id", "ami-on-amazon".into()),
            ("source_image_region", R.into()),
        ],
    ));
    rows.push(image(
        "ami-no-source",
        vec![("source_image_id", Value::Null)],
    ));
    // Whose chain ends at that image: no more known than it.
    rows.extend(built_on(
        "ami-on-registered",
        "ami-no-source",
        vec![("described", false.into())],
    ));
    rows.push(image(
        "ami-ancestry-unread",
        vec![
            ("source_image_id", "ami-elsewhere".into()),
            ("source_image_region", "us-east-1".into()),
        ],
    ));
    rows.extend(built_on("ami-ancestry-failed", "ami-al2023", amazon()));
    rows.push(scan_error(
        "ec2",
        "GetImageAncestry",
        "RequestLimitExceeded",
        vec![("resource_id", "ami-ancestry-failed".into())],
    ));
    let expected = [
        ("ami-on-amazon", "pass"),
        ("ami-on-amzn2", "pass"),
        ("ami-on-community", "fail"),
        ("ami-on-gone", "unknown"),
        ("ami-on-unread-root", "unknown"),
        ("ami-on-org", "fail"),
        ("ami-copy-of-on-amazon", "pass"),
        // No recorded ancestor: its own base, owned by A.
        ("ami-no-source", "fail"),
        ("ami-on-registered", "fail"),
        ("ami-ancestry-unread", "unknown"),
        ("ami-ancestry-failed", "unknown"),
        ("ami-on-truncated", "unknown"),
        ("ami-on-truncated-held", "pass"),
        ("ami-on-backup-vault", "unknown"),
        ("ami-on-layer", "fail"),
    ];
    // A chain that stops short ("the 50th AMI", another partition): not
    // known, unless the inventory holds where it goes on.
    rows.extend(built_on(
        "ami-on-truncated",
        "ami-50th",
        vec![
            ("ancestor_source_image_id", "ami-beyond".into()),
            ("owner_id", "999988887777".into()),
            ("described", true.into()),
        ],
    ));
    rows.extend(built_on(
        "ami-on-truncated-held",
        "ami-50th-b",
        vec![
            ("ancestor_source_image_id", "ami-on-amazon".into()),
            ("described", false.into()),
        ],
    ));
    // aws-backup-vault is no verified provider: its source goes on.
    rows.extend(built_on(
        "ami-on-backup-vault",
        "ami-vault",
        vec![
            ("owner_alias", "aws-backup-vault".into()),
            ("ancestor_source_image_id", "ami-somewhere".into()),
        ],
    ));
    // A root the chain names that the inventory shows with a source of its
    // own is followed there (to the community base).
    rows.extend(built_on(
        "ami-on-layer",
        "ami-on-community",
        vec![("owner_id", A.into()), ("described", true.into())],
    ));
    expect(&run("AMI-BASE-UNAPPROVED", rows.clone()), &expected);

    // Amazon's account id approves what its alias does.
    let by_account = one_param(
        "AMI-BASE-UNAPPROVED",
        "approved_base_owners",
        amiaudit::policy::ParamValue::List(vec!["137112412989".into()]),
    );
    let m = run_with("AMI-BASE-UNAPPROVED", rows.clone(), by_account);
    expect(
        &m,
        &[("ami-on-amazon", "pass"), ("ami-on-community", "fail")],
    );

    // The organization approved, and only AL2023 by name.
    let mut strict = ParamOverrides::new();
    let params = strict.entry("AMI-BASE-UNAPPROVED".into()).or_default();
    params.insert(
        "approved_base_owners".into(),
        amiaudit::policy::ParamValue::List(vec!["amazon".into(), "organization".into()]),
    );
    params.insert(
        "approved_base_name_pattern".into(),
        amiaudit::policy::ParamValue::Str("^(al2023-ami-|org-base$)".into()),
    );
    rows.extend(built_on(
        "ami-on-nameless-amazon",
        "ami-nameless",
        vec![
            ("owner_alias", "amazon".into()),
            ("described", false.into()),
        ],
    ));
    let m = run_with("AMI-BASE-UNAPPROVED", rows.clone(), strict.clone());
    expect(
        &m,
        &[
            ("ami-on-amazon", "pass"),
            ("ami-on-amzn2", "fail"),
            // Whether an account is the organization's is known only where
            // its members were listed.
            ("ami-on-community", "unknown"),
            ("ami-on-org", "unknown"),
            ("ami-on-nameless-amazon", "unknown"),
        ],
    );
    rows.push(("scope:organization", vec![]));
    let m = run_with("AMI-BASE-UNAPPROVED", rows, strict);
    expect(
        &m,
        &[
            ("ami-on-org", "pass"),
            ("ami-on-community", "fail"),
            // Its own base, the organization's, by a name the pattern
            // does not allow.
            ("ami-no-source", "fail"),
        ],
    );
}

/// The same image in two accounts' rows (an inventory merged from two
/// scans, both accounts in scope): each group's reason names it once, in
/// both ASG rules.
#[test]
fn asg_reasons_name_an_image_held_twice_once() {
    let mut all = base();
    all.push(row(
        "regions",
        vec![("account_id", B.into()), ("scan_status", "ok".into())],
    ));
    all.extend([
        image(
            "ami-twice",
            vec![("owner_id", A.into()), ("deprecation_time", days(1))],
        ),
        image(
            "ami-twice",
            vec![
                ("owner_id", A.into()),
                ("account_id", B.into()),
                ("deprecation_time", days(1)),
            ],
        ),
        row("auto_scaling_groups", vec![("group_name", "asg-z".into())]),
        launch_configuration_source("asg-z", "ami-twice", vec![]),
    ]);
    let inv = inventory_with(all, |m| {
        m.scope.accounts = vec![A.to_string(), B.to_string()]
    });
    let overrides = approved_owners_only("999999999999");
    for rule in ["ASG-UNAPPROVED-AMI", "ASG-LAUNCHES-OUTDATED-AMI"] {
        let evaluation = evaluate_builtin(&inv, rule, &overrides);
        let ids = str_column(&evaluation.results, "resource_id").unwrap();
        let statuses = str_column(&evaluation.results, "status").unwrap();
        let reasons = str_column(&evaluation.results, "reason").unwrap();
        let (status, reason) = ids
            .into_iter()
            .zip(statuses.into_iter().zip(reasons))
            .find_map(|(id, judged)| (id == Some("asg-z")).then_some(judged))
            .unwrap_or_else(|| panic!("{rule}: no result for asg-z"));
        assert_eq!(status, Some("fail"), "{rule}");
        let reason = reason.unwrap_or_default();
        assert_eq!(reason.matches("ami-twice").count(), 1, "{rule}: {reason}");
    }
}
