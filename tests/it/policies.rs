//! Bad policy files: one line naming the file (and line, or rule), exit 2.
use std::fs;

use super::support::*;

const GOOD: &str = r#"id: TEST-RULE
title: test
severity: low
resource_type: ami
description: d
remediation:
  text: r
from: images
fail_when: public
"#;

fn policy_error(file_name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(file_name), text).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(out_dir.path(), &["--policies", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", stdout(&out));
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(file_name), "names the file: {err}");
    err
}

#[test]
fn good_rule_runs() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(out_dir.path(), &["--policies", path(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = csv_rows(&out_dir.path().join("findings.csv"));
    assert_eq!(
        status_of(&rows, "TEST-RULE", "ami-0a11ce5ec7e7pub1"),
        ["fail"]
    );
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let err = policy_error("bad.yaml", "id: X\ntitle: [unclosed\nseverity: low\n");
    assert!(err.contains("bad.yaml:"), "{err}");
    let position = err.split("bad.yaml:").nth(1).unwrap();
    assert!(
        position.chars().next().unwrap().is_ascii_digit(),
        "line number after the file: {err}"
    );
}

#[test]
fn unknown_key_is_rejected() {
    let err = policy_error("typo.yaml", &GOOD.replace("fail_when:", "fail_wen:"));
    assert!(err.contains("fail_wen"), "{err}");
}

#[test]
fn bad_severity_is_rejected() {
    let err = policy_error(
        "sev.yaml",
        &GOOD.replace("severity: low", "severity: urgent"),
    );
    assert!(err.contains("urgent"), "{err}");
    assert!(err.contains("sev.yaml:3:"), "points at line 3: {err}");
}

#[test]
fn duplicate_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
    fs::write(dir.path().join("b.yaml"), GOOD).unwrap();
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(&sample()),
        "--out",
        "/tmp/unused",
        "--policies",
        path(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("duplicate rule id `TEST-RULE`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn undeclared_parameter_is_rejected() {
    let err = policy_error(
        "param.yaml",
        &GOOD.replace("fail_when: public", "fail_when: age_days > {{ max_age }}"),
    );
    assert!(
        err.contains("rule `TEST-RULE`") && err.contains("`max_age`"),
        "{err}"
    );
}

#[test]
fn sql_errors_name_the_rule_and_do_not_dump_polars() {
    let err = policy_error(
        "sql.yaml",
        &GOOD.replace("fail_when: public", "fail_when: no_such_column = 1"),
    );
    assert!(err.contains("rule `TEST-RULE`"), "{err}");
    assert!(err.contains("no_such_column"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let err = policy_error("from.yaml", &GOOD.replace("from: images", "from: imagez"));
    assert!(err.contains("unknown table `imagez`"), "{err}");
}

/// A placeholder inside quotes would become a quoted word that ends them
/// (`'..."x'$(id)'"...'` runs `id`): refused at load, naming the rule.
#[test]
fn a_placeholder_inside_quotes_in_a_command_is_refused() {
    let err = policy_error(
        "quoted.yaml",
        &GOOD.replace(
            "  text: r\n",
            "  text: r\n  command: aws ec2 describe-images --filters '{\"Name\":\"{resource_id}\"}'\n",
        ),
    );
    assert!(
        err.contains("`{resource_id}` stands inside quotes"),
        "{err}"
    );
    let err = policy_error(
        "kind.yaml",
        &GOOD.replace(
            "resource_type: ami",
            "resource_type: \"ami\\nAMI-PUBLIC critical\"",
        ),
    );
    assert!(err.contains("resource_type must be"), "{err}");
}

/// A chain of 3,000 conditions overflowed the evaluator's stack (exit 134,
/// no output); a bounded rule is one line naming it.
#[test]
fn a_rule_too_deep_to_evaluate_is_refused_by_name() {
    let chain = vec!["public"; 3000].join(" AND ");
    let err = policy_error(
        "deep.yaml",
        &GOOD.replace("fail_when: public", &format!("fail_when: {chain}")),
    );
    assert!(err.contains("rule `TEST-RULE`"), "{err}");
    assert!(err.contains("at most 2500"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn wrong_param_override_type_is_rejected() {
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(&sample()),
        "--out",
        "/tmp/unused",
        "--param",
        "AMI-STALE.max_age_days=soon",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expects integer, got `soon`"),
        "{}",
        stderr(&out)
    );
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(&sample()),
        "--out",
        "/tmp/unused",
        "--param",
        "AMI-STALE.max_days=3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no parameter `max_days`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn param_override_changes_results() {
    let strict = tempfile::tempdir().unwrap();
    let loose = tempfile::tempdir().unwrap();
    let run = |dir: &tempfile::TempDir, days: &str| {
        let out = audit_sample(
            dir.path(),
            &[
                "--param",
                &format!("AMI-STALE.max_age_days={days}"),
                "--format",
                "csv",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        csv_rows(&dir.path().join("findings.csv"))
            .into_iter()
            .filter(|r| r["rule_id"] == "AMI-STALE" && r["status"] == "fail")
            .count()
    };
    assert!(run(&strict, "10") > run(&loose, "1000"));
}

#[test]
fn framework_filter_keeps_mapped_rules_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = audit_sample(dir.path(), &["--framework", "aws-fsbp", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rules: std::collections::BTreeSet<String> = csv_rows(&dir.path().join("findings.csv"))
        .into_iter()
        .map(|r| r["rule_id"].clone())
        .collect();
    let expected: std::collections::BTreeSet<String> = [
        "SNAP-PUBLIC",
        "REGION-SNAPSHOT-BPA",
        "REGION-EBS-DEFAULT-ENCRYPTION",
        "REGION-INSPECTOR-EC2-OFF",
    ]
    .map(String::from)
    .into();
    assert_eq!(rules, expected);
    let out = audit_sample(dir.path(), &["--framework", "pci"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--framework `pci`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn docs_list_the_evidence_of_every_builtin_rule() {
    let docs = std::fs::read_to_string(repo().join("docs/rules.md")).unwrap();
    for rule in amiaudit::settings::load_pack(&[]).unwrap().rules {
        let evidence = rule
            .evidence
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = format!("| {} | {evidence} |", rule.id);
        assert!(
            docs.contains(&row),
            "docs/rules.md lacks or differs for {}: expected a row starting `{row}`",
            rule.id
        );
    }
}

/// A rule written in German loads, validates and runs; its reason keeps
/// every character.
#[test]
fn a_rule_with_non_ascii_text_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("veraltet.yaml"),
        "id: AMI-VERALTET\ntitle: Veraltetes AMI für Produktion\nseverity: low\nresource_type: ami\ndescription: Älter als 30 Tage – bitte ersetzen ✓\nremediation:\n  text: Neu bauen\nevidence:\n  - ec2:DescribeImages\n  - images.age_days\nfrom: images\nwhere: state = 'available'\nfail_when: age_days > 30\nreason: \"{name} ist {age_days} Tage alt (über 30) – älter als erlaubt\"\n",
    )
    .unwrap();
    let validate = amiaudit(&["policies", "validate", path(dir.path())]);
    assert_eq!(validate.status.code(), Some(0), "{}", stderr(&validate));
    let out_dir = tempfile::tempdir().unwrap();
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(&sample()),
        "--out",
        path(out_dir.path()),
        "--policies",
        path(dir.path()),
        "--format",
        "csv,markdown",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = csv_rows(&out_dir.path().join("findings.csv"));
    assert!(
        rows.iter().any(|r| r["rule_id"] == "AMI-VERALTET"
            && r["status"] == "fail"
            && r["reason"].contains("Tage alt (über 30) – älter als erlaubt")
            && r["title"] == "Veraltetes AMI für Produktion"),
        "no German reason in findings.csv"
    );
}
