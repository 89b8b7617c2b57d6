//! The report's Adoption view: every running instance and Auto Scaling
//! group in exactly one standing against its golden family, shares over
//! what was read, and the places not read named.

use amiaudit::inventory::Value;
use amiaudit::results::adoption::{self, Adoption, Tally};

use super::rules::{A, R, Row, base, clean_world, days, image, launch_source, row};
use super::support::*;

fn view(rows: Vec<Row>) -> Adoption {
    let mut all = base();
    all.extend(clean_world());
    all.extend(rows);
    let inv = inventory_with(all, |m| m.scope.accounts = vec![A.to_string()]);
    adoption::build(&inv).unwrap()
}

fn instance(id: &str, image: &str, state: &str, extra: Vec<(&'static str, Value)>) -> Row {
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("instance_id", id.into()),
        ("image_id", image.into()),
        ("image_owner_id", A.into()),
        ("state", state.into()),
    ];
    cells.extend(extra);
    row("instances", cells)
}

fn group(name: &str) -> Row {
    row(
        "auto_scaling_groups",
        vec![
            ("group_name", name.into()),
            ("desired_capacity", 2i64.into()),
        ],
    )
}

/// The world: web-golden has ami-clean (newest), ami-retired (1 behind,
/// deprecated) and ami-old (2 behind); i-clean and asg-clean run ami-clean.
fn fleet() -> Vec<Row> {
    let mut old_override = launch_source("g-mixed", "lt-old:1", "ami-old");
    old_override.1.retain(|(k, _)| *k != "source");
    old_override.1.push(("source", "override".into()));
    let mut via_parameter = launch_source("g-ssm", "lt-s:1", "ami-clean");
    via_parameter.1.retain(|(k, _)| *k != "image_id");
    via_parameter
        .1
        .push(("image_parameter", "resolve:ssm:/golden/asg-clean".into()));
    vec![
        image(
            "ami-old",
            vec![
                ("name", "web-golden-20260801-v0".into()),
                ("creation_date", days(100)),
            ],
        ),
        instance("i-old", "ami-old", "running", vec![]),
        instance("i-retired", "ami-retired", "running", vec![]),
        instance("i-stopped", "ami-old", "stopped", vec![]),
        instance(
            "i-gone",
            "ami-gone",
            "running",
            vec![("image_state", "deregistered".into())],
        ),
        instance(
            "i-foreign",
            "ami-foreign",
            "running",
            vec![("image_owner_id", "999999999999".into())],
        ),
        instance("i-unread", "ami-unread", "running", vec![]),
        group("g-mixed"),
        launch_source("g-mixed", "lt-clean:$Default", "ami-clean"),
        old_override,
        group("g-nothing"),
        group("g-ssm"),
        via_parameter,
    ]
}

fn tally(
    total: u64,
    newest: u64,
    behind: u64,
    missing: u64,
    deprecated: u64,
    not_golden: u64,
    unknown: u64,
) -> Tally {
    Tally {
        total,
        newest,
        behind,
        missing,
        deprecated,
        not_golden,
        unknown,
        newest_percent: Some((newest as f64 * 1000.0 / total as f64).round() / 10.0),
    }
}

#[test]
fn every_running_consumer_has_one_standing_and_shares_are_over_what_was_read() {
    let v = view(fleet());
    // i-clean newest, i-old behind, i-gone missing, i-retired deprecated
    // (as the fleet rules read it, whatever its version), i-foreign not
    // golden, i-unread unknown; the stopped instance is not counted.
    assert_eq!(v.organization.instances, tally(6, 1, 1, 1, 1, 1, 1));
    assert_eq!(v.organization.instances.newest_percent, Some(16.7));
    // asg-clean and g-ssm (through the parameter) newest, g-mixed behind
    // (its worst source), g-nothing unknown (no source read).
    assert_eq!(v.organization.groups, tally(4, 2, 1, 0, 0, 0, 1));
    assert_eq!(v.accounts.len(), 1);
    assert_eq!(v.accounts[0].account_id, A);
    assert_eq!(v.accounts[0].instances, v.organization.instances);

    let bucket = |label: &str| {
        let b = v.versions_behind.iter().find(|b| b.label == label).unwrap();
        (b.instances, b.groups)
    };
    assert_eq!(bucket("newest"), (1, 2));
    assert_eq!(bucket("2 behind"), (1, 1));
    assert_eq!(bucket("1 behind"), (0, 0));
    assert_eq!(bucket("AMI missing"), (1, 0));
    assert_eq!(bucket("AMI deprecated"), (1, 0));
    assert_eq!(bucket("not golden"), (1, 0));
    assert_eq!(bucket("unknown"), (1, 1));

    // Worst first: the missing AMI, the deprecated one, then the most
    // versions behind.
    let worst: Vec<(&str, Option<i64>)> = v
        .worst
        .iter()
        .map(|w| (w.resource_id.as_str(), w.versions_behind))
        .collect();
    assert_eq!(
        worst,
        vec![
            ("i-gone", None),
            ("i-retired", Some(1)),
            ("g-mixed", Some(2)),
            ("i-old", Some(2))
        ]
    );
    assert!(v.worst[1].deprecated && !v.worst[2].deprecated);
    let mixed = &v.worst[2];
    assert_eq!(
        (mixed.image_id.as_str(), mixed.family.as_str()),
        ("ami-old", "web-golden")
    );
    assert_eq!(mixed.newest_image_id, "ami-clean");
    // ami-retired, the first newer version, came out 40 days ago.
    assert_eq!(mixed.days_behind, Some(40));

    // The base world's us-east-1 was not scanned: named, not counted as empty.
    let unread: Vec<(&str, &str)> = v
        .unread
        .iter()
        .map(|u| (u.account_id.as_str(), u.region.as_str()))
        .collect();
    assert_eq!(unread, vec![(A, "us-east-1")]);
    assert!(unread.iter().all(|(_, r)| *r != R));
}

#[test]
fn an_audit_shows_adoption_in_every_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = audit_sample(dir.path(), &["--format", "html,json,markdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("findings.json")).unwrap())
            .unwrap();
    let org = &json["adoption"]["organization"];
    let (instances, groups) = (&org["instances"], &org["groups"]);
    let total = instances["total"].as_u64().unwrap();
    assert!(total > 50, "{org}");
    let parts: u64 = [
        "newest",
        "behind",
        "missing",
        "deprecated",
        "not_golden",
        "unknown",
    ]
    .iter()
    .map(|k| instances[k].as_u64().unwrap())
    .sum();
    assert_eq!(parts, total, "one standing each: {org}");
    assert!(groups["total"].as_u64().unwrap() > 50, "{org}");
    // The planted stuck group is among the furthest behind.
    let worst = json["adoption"]["worst"].as_array().unwrap();
    assert!(
        json["adoption"]["more_offenders"].as_u64().unwrap() > 0 && worst.len() == 20,
        "{worst:?}"
    );
    let share = format!(
        "{:.1}% of {total} running instances",
        instances["newest_percent"].as_f64().unwrap()
    );
    let terminal = stdout(&out);
    assert!(
        terminal.contains(&format!("adoption: on the newest golden version: {share}")),
        "{terminal}"
    );
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        md.contains("## Adoption of the newest golden versions"),
        "{md}"
    );
    assert!(md.contains(&share), "{md}");
    // The denied account's regions were not read: said in every format.
    assert!(md.contains("were not read in 4 account-regions"), "{md}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("id=\"adoption\"") && html.contains("id=\"adoption-worst\""));
    assert!(html.contains("were not read in 4 account-regions"));
}

#[test]
fn an_owner_outside_the_accounts_known_is_not_golden_only_when_members_were_listed() {
    let listing_failed = row(
        "scan_errors",
        vec![
            ("region", Value::Null),
            ("service", "organizations".into()),
            ("operation", "ListAccounts".into()),
            ("error_code", "AccessDenied".into()),
        ],
    );
    let v = view([fleet(), vec![listing_failed]].concat());
    // i-foreign's owner may be a member nobody listed.
    assert_eq!(v.organization.instances, tally(6, 1, 1, 1, 1, 0, 2));
}
