//! The report's Pipelines view: health read from the pipeline rules'
//! results, lineage down to the consumers, and every gap said out loud
//! (pipelines not read, consumers not read, a rule that gave no result).

use amiaudit::evaluate::evaluate;
use amiaudit::inventory::{self, Value, schema};
use amiaudit::policy::ParamOverrides;
use amiaudit::render::pipelines::{self, PipelinesView};

use super::rules::{A, R, Row, base, clean_world, row, set};
use super::support::*;

/// The view of `rows` (over the rules' base world), with every rule of the
/// pack judged except `skip`.
fn view(rows: Vec<Row>, skip: Option<&str>) -> PipelinesView {
    let mut all = base();
    all.extend(rows);
    let inv = inventory_with(all, |m| m.scope.accounts = vec![A.to_string()]);
    view_of(&inv, skip)
}

fn view_of(inv: &amiaudit::inventory::Inventory, skip: Option<&str>) -> PipelinesView {
    let pack = amiaudit::settings::load_pack(&[]).unwrap();
    let judged: Vec<_> = pack
        .rules
        .iter()
        .filter(|r| Some(r.id.as_str()) != skip)
        .cloned()
        .collect();
    let evaluation = evaluate(inv, &judged, &ParamOverrides::new());
    assert!(
        evaluation.rule_errors.is_empty(),
        "{:?}",
        evaluation.rule_errors
    );
    pipelines::build(inv, &pack, &evaluation).unwrap()
}

fn scan_error(operation: &str, resource: Option<&str>) -> Row {
    let (service, operation) = operation.split_once(':').unwrap();
    let mut cells: Vec<(&'static str, Value)> = vec![
        ("service", service.to_string().into()),
        ("operation", operation.to_string().into()),
        ("error_code", "AccessDenied".into()),
    ];
    if let Some(resource) = resource {
        cells.push(("resource_id", resource.to_string().into()));
    }
    row("scan_errors", cells)
}

#[test]
fn a_clean_pipeline_is_healthy_with_its_lineage_down_to_the_consumers() {
    let v = view(clean_world(), None);
    assert_eq!(v.pipelines.len(), 1);
    let p = &v.pipelines[0];
    assert_eq!(p.pipeline_arn, "pl-clean");
    assert_eq!(p.health, "healthy", "{p:?}");
    assert!(p.failing_rules.is_empty() && p.unknown_rules.is_empty());
    assert_eq!(p.schedule, "cron(0 6 ? * mon *)");
    assert_eq!(p.newest_age_days, Some(5));
    assert!(p.builds_read);
    assert_eq!((p.builds, p.amis), (1, 1));
    let ami = &p.versions[0].amis[0];
    assert_eq!(
        (ami.image_id.as_str(), ami.region.as_str()),
        ("ami-clean", R)
    );
    // i-clean and lt-clean (one template: $Default and $Latest are one row here).
    assert_eq!(ami.instances.to_string(), "1");
    assert_eq!(ami.launch_templates.to_string(), "1");
    assert_eq!(p.instances.to_string(), "1");
    // The base world's us-east-1 was not scanned: said, not hidden.
    let unread: Vec<(&str, &str)> = v
        .unread
        .iter()
        .map(|u| (u.account_id.as_str(), u.region.as_str()))
        .collect();
    assert_eq!(unread, vec![(A, "us-east-1")]);
    assert!(v.unread[0].why.contains("not scanned"), "{:?}", v.unread);
    assert_eq!(v.usage_unread.len(), 1);
}

#[test]
fn health_is_the_worst_of_the_pipeline_rules_and_a_missing_result_is_not_a_pass() {
    // A failing rule.
    let rows = set(clean_world(), "pipelines", "status", "DISABLED".into());
    let p = &view(rows, None).pipelines[0];
    assert_eq!(p.health, "failing");
    assert!(p.failing_rules.contains(&"PIPELINE-DISABLED".to_string()));

    // A distribution that was not read (as a scan records it: the failed
    // call, and no rows): its rules are unknown, and so is health.
    let mut rows: Vec<Row> = clean_world()
        .into_iter()
        .filter(|(t, _)| !t.starts_with("distribution"))
        .collect();
    rows.push(scan_error(
        "imagebuilder:GetDistributionConfiguration",
        Some("pl-clean-dist"),
    ));
    let p = &view(rows, None).pipelines[0];
    assert_eq!(p.health, "unknown", "{p:?}");
    assert!(
        p.unknown_rules
            .contains(&"PIPELINE-DISTRIBUTION-NO-CMK".to_string()),
        "{:?}",
        p.unknown_rules
    );
    assert!(p.failing_rules.is_empty());

    // A pipeline rule of the pack that gave no result for it.
    let p = &view(clean_world(), Some("PIPELINE-TESTS-OFF")).pipelines[0];
    assert_eq!(p.health, "unknown");
    assert_eq!(p.unknown_rules, vec!["PIPELINE-TESTS-OFF".to_string()]);
}

#[test]
fn consumers_in_a_region_not_read_are_a_floor() {
    // The build's AMI is in us-east-1, where the account was not scanned.
    let rows = set(
        clean_world(),
        "pipeline_amis",
        "ami_region",
        "us-east-1".into(),
    );
    let p = &view(rows, None).pipelines[0];
    let ami = &p.versions[0].amis[0];
    assert_eq!(ami.instances.to_string(), "0+");
    assert_eq!(ami.launch_templates.to_string(), "0+");
    assert_eq!(p.instances.to_string(), "0+");
}

#[test]
fn pipelines_not_read_are_named_with_why() {
    let mut rows: Vec<Row> = clean_world()
        .into_iter()
        .filter(|(t, _)| *t != "pipelines")
        .collect();
    rows.push(scan_error("imagebuilder:ListImagePipelines", None));
    let v = view(rows, None);
    assert!(v.pipelines.is_empty());
    let place = v.unread.iter().find(|u| u.region == R).expect("eu-west-1");
    assert_eq!(
        place.why,
        "imagebuilder:ListImagePipelines failed: AccessDenied"
    );
}

#[test]
fn an_inventory_older_than_image_builder_says_pipelines_were_not_read() {
    let mut all = base();
    all.extend(clean_world());
    // Nothing schema version 2 could not have written.
    for (table, cells) in &mut all {
        let def = schema::table(table).unwrap();
        if def.since > 2 {
            continue; // removed below
        }
        cells.retain(|(column, _)| {
            def.columns
                .iter()
                .any(|c| c.name == *column && c.since <= 2)
        });
    }
    let inv = inventory_with(all, |m| m.scope.accounts = vec![A.to_string()]);
    let dir = tempfile::tempdir().unwrap();
    save(&inv, dir.path());
    // Rewrite it as schema version 2 wrote it: no Image Builder tables.
    let manifest_path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["schema_version"] = 2.into();
    for def in schema::TABLES.iter().filter(|t| t.since > 2) {
        let entry = manifest["tables"]
            .as_object_mut()
            .unwrap()
            .remove(def.name)
            .unwrap_or_else(|| panic!("{} in the manifest", def.name));
        std::fs::remove_file(dir.path().join(entry["file"].as_str().unwrap())).unwrap();
    }
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();

    let old = inventory::load(dir.path()).unwrap();
    let v = view_of(&old, None);
    assert!(v.pipelines.is_empty());
    let place = v.unread.iter().find(|u| u.region == R).expect("eu-west-1");
    assert!(place.why.contains("not collected"), "{}", place.why);

    // The report says so; it never claims there is no factory.
    let out_dir = tempfile::tempdir().unwrap();
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(dir.path()),
        "--out",
        path(out_dir.path()),
        "--format",
        "html,markdown",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(html.contains("Pipelines were not read in 2 account-regions"));
    assert!(!html.contains("No EC2 Image Builder pipeline builds AMIs"));
    let md = std::fs::read_to_string(out_dir.path().join("summary.md")).unwrap();
    assert!(
        md.contains("Pipelines were not read in 2 account-regions"),
        "{md}"
    );
}
