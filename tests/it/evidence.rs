//! Evidence directories: manifest, verify, bundle, baseline drift, exit 3.
use std::fs;

use super::support::*;

#[test]
fn output_directory_is_verifiable_evidence() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("audit-2026-11");
    let o = audit_sample(&out, &["--bundle", "--format", "all"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The inventory used is kept beside the reports.
    assert!(
        out.join("inventory/manifest.json").is_file()
            && out.join("inventory/images.jsonl").is_file()
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["kind"], "amiaudit-audit");
    assert_eq!(manifest["collected_at"], "2026-11-20T00:00:00Z");
    assert_eq!(manifest["policy_pack_sha256"].as_str().unwrap().len(), 64);
    let files = manifest["files"].as_object().unwrap();
    for f in [
        "report.html",
        "findings.csv",
        "findings.json",
        "findings.ocsf.jsonl",
        "junit.xml",
        "summary.md",
        "inventory/images.jsonl",
    ] {
        assert!(files.contains_key(f), "manifest lists {f}");
    }
    let ok = amiaudit(&["verify", path(&out)]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).starts_with("intact:"));

    // The bundle is reproducible: a second audit of the same inputs gives the same bytes.
    let bundle = root.path().join("audit-2026-11.tar.gz");
    let first = fs::read(&bundle).unwrap();
    assert!(first.starts_with(&[0x1f, 0x8b]), "gzip");
    let o = audit_sample(&out, &["--bundle", "--format", "all"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        fs::read(&bundle).unwrap() == first,
        "bundle differs between identical audits"
    );

    // Tampering is found: changed, removed and added files, exit 1.
    fs::write(out.join("summary.md"), "all clean!\n").unwrap();
    fs::remove_file(out.join("junit.xml")).unwrap();
    fs::write(out.join("inventory/extra.jsonl"), "{}\n").unwrap();
    let bad = amiaudit(&["verify", path(&out)]);
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(
        text.contains("changed: summary.md")
            && text.contains("removed: junit.xml")
            && text.contains("added: inventory/extra.jsonl"),
        "{text}"
    );

    // A directory holding files amiaudit did not write is never written over.
    let o = audit_sample(&out, &["--format", "csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("amiaudit did not write"),
        "{}",
        stderr(&o)
    );
    assert!(out.join("inventory/extra.jsonl").exists(), "left alone");
    fs::remove_file(out.join("inventory/extra.jsonl")).unwrap();
    // Nor is a report someone edited: it is theirs now.
    let o = audit_sample(&out, &["--format", "csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("`summary.md` is not the file amiaudit wrote"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        fs::read_to_string(out.join("summary.md")).unwrap(),
        "all clean!\n"
    );
    fs::remove_file(out.join("summary.md")).unwrap();
    // An earlier audit is replaced whole: stale reports go with it.
    let o = audit_sample(&out, &["--format", "csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!out.join("report.html").exists(), "stale report removed");
    let again = amiaudit(&["verify", path(&out)]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    fs::write(out.join("later.txt"), "added after the audit\n").unwrap();
    let again = amiaudit(&["verify", path(&out)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stdout(&again).contains("added: later.txt"),
        "{}",
        stdout(&again)
    );

    let missing = amiaudit(&["verify", "/nonexistent"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn baseline_reports_drift() {
    let root = tempfile::tempdir().unwrap();
    let old = root.path().join("old");
    let new = root.path().join("new");
    assert_eq!(audit_sample(&old, &[]).status.code(), Some(0));
    // Stricter age limit: new AMI-STALE failures. Waiving the planted public AMI: now waived.
    let waivers = root.path().join("w.yaml");
    fs::write(&waivers, "waivers:\n  - rule: AMI-PUBLIC\n    resource: ami-0a11ce5ec7e7pub1\n    reason: debug image, removal scheduled\n    approved_by: ciso@acme.example\n    expires: 2026-12-31\n").unwrap();
    let o = audit_sample(
        &new,
        &[
            "--baseline",
            path(&old),
            "--param",
            "AMI-STALE.max_age_days=30",
            "--param",
            "AMI-NO-DEPRECATION.max_age_days_unused=1",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "unknown parameter is an input error"
    );
    let o = audit_sample(
        &new,
        &[
            "--baseline",
            path(&old),
            "--param",
            "AMI-STALE.max_age_days=30",
            "--waivers",
            path(&waivers),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("since 2026-11-20T00:00:00Z:"),
        "{}",
        stdout(&o)
    );
    let diff: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(new.join("diff.json")).unwrap()).unwrap();
    assert!(diff["counts"]["new"].as_u64().unwrap() > 0);
    assert_eq!(diff["counts"]["now_waived"], 1);
    assert_eq!(diff["counts"]["resolved"], 0);
    let changes = diff["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .all(|c| c["change"] != "new" || c["rule_id"] == "AMI-STALE")
    );
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "now-waived" && c["resource_id"] == "ami-0a11ce5ec7e7pub1")
    );
    assert_eq!(diff["waivers"][0]["change"], "added");
    let csv = fs::read_to_string(new.join("diff.csv")).unwrap();
    assert!(csv.starts_with("change,rule_id,"));
    let md = fs::read_to_string(new.join("summary.md")).unwrap();
    assert!(md.contains("## Since the last audit"), "{md}");
    let html = fs::read_to_string(new.join("report.html")).unwrap();
    assert!(html.contains("Since the last audit"));

    // `amiaudit diff` gives the same counts, the other way round too.
    let o = amiaudit(&["diff", path(&new), path(&old)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Reversed, the stricter failures are resolved and the waived one is new again.
    assert!(
        stdout(&o).contains(": 1 new,") && !stdout(&o).contains(" 0 resolved"),
        "{}",
        stdout(&o)
    );
    let o = amiaudit(&["diff", path(&old), "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn fail_on_incomplete_exits_3() {
    let out = tempfile::tempdir().unwrap();
    let o = audit_sample(
        out.path(),
        &["--fail-on-incomplete", "--fail-on", "critical"],
    );
    assert_eq!(o.status.code(), Some(3), "the sample has a denied account");
    let clean = tempfile::tempdir().unwrap();
    save(
        &inventory(vec![(
            "regions",
            vec![
                ("account_id", "111111111111".into()),
                ("region", "eu-west-1".into()),
                ("scan_status", "ok".into()),
            ],
        )]),
        clean.path(),
    );
    let o = amiaudit(&[
        "audit",
        "--inventory",
        path(clean.path()),
        "--out",
        path(out.path()),
        "--fail-on-incomplete",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_failure_no_longer_listed_where_the_new_audit_did_not_look_is_not_resolved() {
    use amiaudit::evaluate::Status;
    use std::borrow::Cow;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit");
    assert_eq!(audit_sample(&dir, &[]).status.code(), Some(0));
    let old = amiaudit::findings::read(&dir).unwrap();
    let unread = old
        .not_read_in_full
        .clone()
        .expect("written by this version");
    assert!(
        !unread.is_empty(),
        "the sample has account-regions not read in full"
    );
    let fails: Vec<&amiaudit::findings::Finding> = old
        .findings
        .iter()
        .filter(|f| f.status == Status::Fail)
        .collect();
    // One failing account-region the next audit cannot read, and one
    // failure fixed in an account-region it reads.
    let gone_dark = (fails[0].account_id.to_string(), fails[0].region.to_string());
    let fixed = fails
        .iter()
        .find(|f| {
            let at = (f.account_id.to_string(), f.region.to_string());
            at != gone_dark && !unread.contains(&at)
        })
        .unwrap();
    let fixed_key = (fixed.rule_id.to_string(), fixed.resource_id.to_string());
    let mut new = amiaudit::findings::read(&dir).unwrap();
    new.findings.retain(|f| {
        (f.account_id.to_string(), f.region.to_string()) != gone_dark
            && (f.rule_id.to_string(), f.resource_id.to_string()) != fixed_key
    });
    let mut now_unread = unread.to_vec();
    now_unread.push(gone_dark.clone());
    new.not_read_in_full = Some(Cow::Owned(now_unread));
    let d = amiaudit::diff::compare(&old, &new);
    let dark_fails = fails
        .iter()
        .filter(|f| (f.account_id.to_string(), f.region.to_string()) == gone_dark)
        .count();
    assert_eq!(d.counts.not_seen, dark_fails);
    assert_eq!(d.counts.resolved, 1, "{:?}", d.counts);
    assert!(
        d.changes
            .iter()
            .any(|c| c.change == amiaudit::diff::ChangeKind::Resolved
                && c.rule_id == fixed_key.0
                && c.resource_id == fixed_key.1)
    );
    assert!(
        d.summary_line()
            .contains(&format!("{dark_fails} not seen again"))
    );
    // A document from before coverage was recorded is taken at its word.
    new.not_read_in_full = None;
    assert_eq!(
        amiaudit::diff::compare(&old, &new).counts.resolved,
        dark_fails + 1
    );
}

/// An older inventory audited against a baseline of a newer one: what the
/// older schema never collected was not looked at. Its failures are
/// `not-seen`, never `resolved`, and Security Hub is not told they passed.
#[test]
fn failures_of_tables_an_older_inventory_never_collected_are_not_seen() {
    let root = tempfile::tempdir().unwrap();
    let baseline = root.path().join("baseline");
    assert_eq!(audit_sample(&baseline, &[]).status.code(), Some(0));
    let v3 = broken_copy();
    downgrade(v3.path(), 3);
    let out_dir = root.path().join("v3");
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(v3.path()),
        "--out",
        path(&out_dir),
        "--baseline",
        path(&baseline),
        "--format",
        "asff,csv",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let changes = csv_rows(&out_dir.join("diff.csv"));
    let of = |rule: &str, change: &str| {
        changes
            .iter()
            .filter(|c| c["rule_id"] == rule && c["change"] == change)
            .count()
    };
    // Auto Scaling groups and AMI parameters came with schema version 4.
    for rule in [
        "ASG-LAUNCHES-OUTDATED-AMI",
        "LT-VERSION-OUTDATED-AMI",
        "SSM-PARAM-OUTDATED-AMI",
    ] {
        assert_eq!(of(rule, "resolved"), 0, "{rule} resolved by a v3 inventory");
        assert!(of(rule, "not-seen") > 0, "{rule}: {changes:?}");
    }
    let asff: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("findings.asff.json")).unwrap())
            .unwrap();
    let archived: Vec<&str> = asff
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["RecordState"] == "ARCHIVED")
        .map(|f| f["GeneratorId"].as_str().unwrap_or_default())
        .collect();
    assert!(
        !archived
            .iter()
            .any(|g| g.contains("ASG-") || g.contains("SSM-PARAM") || g.contains("LT-VERSION")),
        "{archived:?}"
    );
}
