//! Findings imported into Security Hub: stable ids, re-import updates,
//! resolved findings archived, waived ones suppressed, failed batches
//! counted, and each account's findings filed in its own hub.

use super::*;

/// Every finding in every region's hub, by id.
async fn hub_findings(
    moto: &Moto,
    regions: &[String],
) -> std::collections::BTreeMap<String, aws_sdk_securityhub::types::AwsSecurityFinding> {
    hub_findings_as(&moto.config().await, regions).await
}

/// Every finding in every region's hub of the account `config` is in.
async fn hub_findings_as(
    config: &aws_config::SdkConfig,
    regions: &[String],
) -> std::collections::BTreeMap<String, aws_sdk_securityhub::types::AwsSecurityFinding> {
    let mut all = std::collections::BTreeMap::new();
    for region in regions {
        let client = aws_sdk_securityhub::Client::from_conf(
            aws_sdk_securityhub::config::Builder::from(config)
                .region(aws_config::Region::new(region.clone()))
                .build(),
        );
        let mut pages = client
            .get_findings()
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for f in page.unwrap().findings() {
                all.insert(f.id().unwrap().to_string(), f.clone());
            }
        }
    }
    all
}

/// The regions findings are filed in, once each.
fn filed_regions(findings: &[AsffFinding]) -> Vec<String> {
    let regions: std::collections::BTreeSet<String> = findings
        .iter()
        .map(|f| f.resources[0].region.clone())
        .collect();
    regions.into_iter().collect()
}

/// The first audit of two synthetic organizations (the second scan reads
/// one region of the two), imported into Security Hub.
struct HubStart {
    work: tempfile::TempDir,
    first_inventory: PathBuf,
    first: PathBuf,
    second: PathBuf,
    second_inventory: PathBuf,
    hub_aws: Connection,
    outcome: amiaudit::cmd::Outcome,
    findings: Vec<AsffFinding>,
}

fn first_hub_import(moto: &Moto) -> HubStart {
    let work = tempfile::tempdir().unwrap();
    // The second scan reads one region of the two: the other's failures are
    // no longer listed, but nobody looked.
    let (first_inventory, second_inventory) = (synth(work.path(), 1, 2), synth(work.path(), 2, 1));
    let first = work.path().join("first");
    let second = work.path().join("second");
    let hub_aws = hub_connection(moto, "000000000000");
    let outcome = audit(
        &first_inventory,
        Location::Local(first.clone()),
        AuditRequest {
            security_hub: true,
            aws: Some(hub_aws.clone()),
            ..Default::default()
        },
        None,
    );
    let findings = asff(&first);
    HubStart {
        work,
        first_inventory,
        first,
        second,
        second_inventory,
        hub_aws,
        outcome,
        findings,
    }
}

#[test]
fn security_hub_import_files_each_finding_once_and_updates_it_on_reimport() {
    let moto = Moto::start();
    let HubStart {
        // Kept until the end: dropping it removes the audits.
        work,
        first_inventory,
        hub_aws,
        outcome,
        findings,
        ..
    } = first_hub_import(&moto);
    let text = &outcome.stdout;
    assert!(
        findings.len() > 100,
        "more than one batch: {}",
        findings.len()
    );
    assert!(
        text.contains(&format!(
            "imported {0} of {0} findings (0 archived as resolved)",
            findings.len()
        )) && text.contains("0 failed"),
        "{text}"
    );
    let regions = filed_regions(&findings);
    let rt = runtime();
    let hub = rt.block_on(hub_findings(&moto, &regions));
    assert_eq!(
        hub.len(),
        findings.len(),
        "one hub finding per ASFF finding"
    );
    for f in &findings {
        let h = &hub[&f.id];
        // Filed under the importing account (Security Hub takes nothing
        // else from a custom integration), naming the account it is about.
        assert_eq!(h.aws_account_id(), Some("123456789012"));
        let about = &f.product_fields["amiaudit/AccountId"];
        assert!(f.id.contains(&format!("/{about}/")), "{}", f.id);
        assert_eq!(
            h.product_fields().and_then(|p| p.get("amiaudit/AccountId")),
            Some(about)
        );
        assert_eq!(
            h.product_arn(),
            Some(
                format!(
                    "arn:aws:securityhub:{}:123456789012:product/123456789012/default",
                    f.resources[0].region
                )
                .as_str()
            )
        );
    }
    assert!(
        findings
            .iter()
            .any(|f| f.compliance.status == "NOT_AVAILABLE"),
        "unknown results are findings too, never passes"
    );
    // The file says when the audit saw it; the import stamps its own time,
    // so Security Hub takes it, and a finding new to it is created then.
    let collected = &findings[0].updated_at;
    let first_import = hub[&findings[0].id].updated_at().unwrap().to_string();
    assert!(first_import.as_str() > collected.as_str(), "{first_import}");
    assert_eq!(
        hub[&findings[0].id].created_at(),
        Some(first_import.as_str())
    );

    // Importing the same audit again updates, never duplicates, and is
    // newer than the first import (an update not newer is ignored). Written
    // with --compress this time: the export reads findings.asff.json.gz.
    let zipped = work.path().join("first-compressed");
    let plan = AuditPlan::resolve(
        AuditRequest {
            inventory: Some(first_inventory),
            out: Location::Local(zipped.clone()),
            ..Default::default()
        },
        AuditSection {
            formats: Some(vec![amiaudit::render::OutputFormat::Asff]),
            compress: Some(true),
            ..AuditSection::default()
        },
        &Config::default(),
    )
    .unwrap();
    amiaudit::cmd::audit::run(plan).unwrap();
    assert!(zipped.join("findings.asff.json.gz").is_file());
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = security_hub::export(&zipped, &hub_aws, None).unwrap();
    assert_eq!(again.imported, findings.len());
    let hub = rt.block_on(hub_findings(&moto, &regions));
    assert_eq!(hub.len(), findings.len());
    assert!(hub[&findings[0].id].updated_at().unwrap() > first_import.as_str());
}

#[test]
fn the_next_import_archives_the_resolved_suppresses_the_waived_and_reopens_the_unwaived() {
    let moto = Moto::start();
    let HubStart {
        work,
        first,
        second,
        second_inventory,
        hub_aws,
        findings,
        ..
    } = first_hub_import(&moto);
    let regions = filed_regions(&findings);
    let rt = runtime();
    let collected = &findings[0].updated_at;
    // The next audit, against the first, with a waiver: what was resolved
    // is archived and RESOLVED, what is waived SUPPRESSED with the reason.
    let waivers = work.path().join("waivers.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n  - rule: AMI-NO-DEPRECATION\n    reason: deprecation dates come next quarter\n    approved_by: ciso@example.com\n    expires: 2099-01-01\n",
    )
    .unwrap();
    // The second inventory audited against `baseline` into `out`, imported.
    let audit_second = |baseline: &Path, out: &Path, waivers: Option<&Path>| {
        audit(
            &second_inventory,
            Location::Local(out.to_path_buf()),
            AuditRequest {
                baseline: Some(Location::Local(baseline.to_path_buf())),
                security_hub: true,
                aws: Some(hub_aws.clone()),
                ..Default::default()
            },
            waivers,
        )
    };
    let outcome = audit_second(&first, &second, Some(&waivers));
    assert_eq!(outcome.exit_code, 0, "{}", outcome.stdout);
    let workflow = |f: &AsffFinding| {
        crate::it::moto::hub_workflow("123456789012", &f.resources[0].region, &f.id)
    };
    let second_findings = asff(&second);
    let waived: Vec<&AsffFinding> = second_findings
        .iter()
        .filter(|f| f.workflow.status == "SUPPRESSED")
        .collect();
    assert!(!waived.is_empty(), "the waiver matched");
    for f in &waived {
        let (status, note) = workflow(f).expect("workflow set");
        assert_eq!(status, "SUPPRESSED");
        assert_eq!(
            note,
            "amiaudit: waived until 2099-01-01: deprecation dates come next quarter (approved by ciso@example.com)"
        );
    }
    // A failure that persists keeps when it was first observed.
    let persisting = second_findings
        .iter()
        .find(|f| {
            f.compliance.status == "FAILED"
                && f.workflow.status == "NEW"
                && findings
                    .iter()
                    .any(|old| old.id == f.id && old.compliance.status == "FAILED")
        })
        .expect("a persisting failure");
    assert_eq!(&persisting.first_observed_at, collected);
    assert_eq!(&persisting.created_at, collected);
    assert!(persisting.last_observed_at > *collected);
    let resolved: Vec<AsffFinding> = asff(&second)
        .into_iter()
        .filter(|f| f.record_state == "ARCHIVED")
        .collect();
    assert!(!resolved.is_empty(), "the second inventory fixed something");
    let hub = rt.block_on(hub_findings(&moto, &regions));
    for f in &resolved {
        let h = &hub[&f.id];
        assert_eq!(
            workflow(f).map(|w| w.0).as_deref(),
            Some("RESOLVED"),
            "{}",
            f.id
        );
        assert_eq!(h.record_state().map(|s| s.as_str()), Some("ARCHIVED"));
        assert_eq!(
            h.compliance().and_then(|c| c.status()).map(|s| s.as_str()),
            Some("PASSED")
        );
        assert!(findings.iter().any(|old| old.id == f.id), "{}", f.id);
    }
    // Resolved means looked at again: a failure the diff no longer lists in
    // an account-region the second scan did not read in full stays as it was.
    let coverage = amiaudit::inventory::load(&second_inventory)
        .unwrap()
        .coverage()
        .regions
        .clone();
    let diff: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("diff.json")).unwrap()).unwrap();
    let mut left_alone = 0;
    for change in diff["changes"].as_array().unwrap() {
        let resolved_here = match change["change"].as_str().unwrap() {
            "resolved" => true,
            "not-seen" => false,
            _ => continue,
        };
        let (account, region) = (
            change["account_id"].as_str().unwrap().to_string(),
            change["region"].as_str().unwrap().to_string(),
        );
        let id = amiaudit::render::asff::finding_id(
            change["rule_id"].as_str().unwrap(),
            &account,
            &region,
            change["resource_id"].as_str().unwrap(),
        );
        let in_full = coverage
            .get(&(account, region))
            .is_some_and(|(status, _)| *status == amiaudit::inventory::ScanStatus::Ok);
        assert_eq!(resolved.iter().any(|f| f.id == id), resolved_here, "{id}");
        assert_eq!(resolved_here, in_full, "{id}");
        left_alone += usize::from(!resolved_here);
    }
    assert!(left_alone > 0, "the second scan left a region out");

    // The waiver gone, against the second audit: the waived failures are
    // reopened (NEW), said in their note.
    let third = work.path().join("third");
    let outcome = audit_second(&second, &third, None);
    assert_eq!(outcome.exit_code, 0, "{}", outcome.stdout);
    for f in &waived {
        let (status, note) = workflow(f).expect("workflow set");
        assert_eq!(status, "NEW", "{}", f.id);
        assert!(note.starts_with("amiaudit: failing again"), "{note}");
    }
}

#[test]
fn a_refused_import_counts_every_finding_and_an_edited_audit_is_not_imported() {
    let moto = Moto::start();
    let HubStart {
        // Kept until the end: dropping it removes the audits.
        work: _work,
        first,
        findings,
        ..
    } = first_hub_import(&moto);
    // A refused call is a failed batch: every finding in it is counted and named.
    let mut refused = connection(&moto);
    refused.http_client = Some(
        Refusing::client(
            |_, uri| uri.contains("/findings/import"),
            403,
            "application/json",
            r#"{"__type":"AccessDeniedException","message":"not the administrator of this account"}"#,
        )
        .0,
    );
    let report = security_hub::export(&first, &refused, None).unwrap();
    assert_eq!(report.imported, 0);
    assert_eq!(report.failures.len(), findings.len());
    assert_eq!(report.failed_batches, report.batches);
    assert!(
        report.failures[0]
            .message
            .contains("not the administrator of this account")
    );
    let outcome = amiaudit::cmd::export::outcome(&report);
    assert_eq!(outcome.exit_code, 2);

    // An edited audit is not imported at all.
    std::fs::write(first.join("findings.asff.json"), "[]\n").unwrap();
    let err = security_hub::export(&first, &connection(&moto), None).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// `--security-hub-role`: each account's findings go into its own hub,
/// through the role there, filed as that account; an account whose role
/// cannot be assumed has its findings failed and named (exit 2), and none
/// of them lands in the caller's hub instead.
#[test]
fn security_hub_role_files_each_accounts_findings_in_its_own_hub() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let inventory = synth(work.path(), 1, 1);
    let accounts = amiaudit::inventory::load(&inventory)
        .unwrap()
        .manifest()
        .scope
        .accounts
        .clone();
    let denied = accounts[2].clone();
    let out = work.path().join("audit");
    let outcome = audit(
        &inventory,
        Location::Local(out.clone()),
        AuditRequest {
            security_hub: true,
            security_hub_role: Some("amiaudit-security-hub-import".to_string()),
            aws: Some(hub_connection(&moto, &denied)),
            ..Default::default()
        },
        None,
    );
    assert_eq!(outcome.exit_code, 2, "{}", outcome.stdout);
    let findings = asff(&out);
    let about = |f: &AsffFinding| f.product_fields["amiaudit/AccountId"].clone();
    let refused = findings.iter().filter(|f| about(f) == denied).count();
    assert!(refused > 0);
    assert!(
        outcome.stdout.contains(&format!("{refused} failed")),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains(&format!(
            "cannot assume arn:aws:iam::{denied}:role/amiaudit-security-hub-import"
        )),
        "{}",
        outcome.stdout
    );
    let regions = filed_regions(&findings);
    let rt = runtime();
    for account in &accounts[..2] {
        let config = rt.block_on(moto.account(account));
        let hub = rt.block_on(hub_findings_as(&config, &regions));
        let expected: Vec<&AsffFinding> =
            findings.iter().filter(|f| about(f) == *account).collect();
        assert!(!expected.is_empty());
        assert_eq!(hub.len(), expected.len(), "{account}");
        for f in expected {
            let h = &hub[&f.id];
            assert_eq!(h.aws_account_id(), Some(account.as_str()));
            assert!(
                h.product_arn()
                    .unwrap()
                    .ends_with(&format!(":{account}:product/{account}/default"))
            );
        }
    }
    let caller = rt.block_on(hub_findings(&moto, &regions));
    assert!(
        caller.is_empty(),
        "nothing filed under the caller instead: {}",
        caller.len()
    );
}
