//! Waivers and amiaudit.toml.
use std::fs;

use super::support::*;

fn audit_with(extra: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let out_dir = tempfile::tempdir().unwrap();
    (audit_sample(out_dir.path(), extra), out_dir)
}

pub const WAIVERS: &str = r#"waivers:
  - rule: AMI-NAMING
    account: "210009000333"
    reason: sandbox images are throwaway
    approved_by: ciso@acme.example
    expires: 2027-03-31
  - rule: "VULN-*"
    resource: ami-0f1e2d3c4b5a6978
    reason: replaced next sprint
    approved_by: ciso@acme.example
    expires: 2026-10-01
  - rule: AMI-NOT-PIPELINE-BUILT
    tag: { key: Environment, value: sand* }
    reason: sandboxes build by hand
    approved_by: platform@acme.example
    expires: 2027-01-01
  - rule: AMI-PUBLIC
    resource: ami-doesnotexist
    reason: nothing matches
    approved_by: nobody@acme.example
    expires: 2027-01-01
"#;

#[test]
fn waivers_waive_expire_and_report_unused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("waivers.yaml");
    fs::write(&file, WAIVERS).unwrap();
    let (out, out_dir) = audit_with(&["--waivers", path(&file)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = csv_rows(&out_dir.path().join("findings.csv"));
    // Active waiver by account: the planted bad name in the sandbox is waived.
    assert_eq!(
        status_of(&rows, "AMI-NAMING", "ami-0a11ce0000ad0c01"),
        ["waived"]
    );
    let waived = rows
        .iter()
        .find(|r| r["resource_id"] == "ami-0a11ce0000ad0c01" && r["rule_id"] == "AMI-NAMING")
        .unwrap();
    assert!(waived["waiver_reason"].contains("sandbox images are throwaway"));
    assert_eq!(waived["waiver_expires"], "2027-03-31");
    // Same rule elsewhere is not waived.
    assert!(
        rows.iter()
            .any(|r| r["rule_id"] == "AMI-NAMING" && r["status"] == "fail")
    );
    // Expired waiver (2026-10-01 < collected 2026-11-20) does not apply.
    assert_eq!(
        status_of(&rows, "VULN-CRITICAL", "ami-0f1e2d3c4b5a6978"),
        ["fail"]
    );
    // Tag glob: the sandbox image is tagged Environment=sandbox.
    assert_eq!(
        status_of(&rows, "AMI-NOT-PIPELINE-BUILT", "ami-0a11ce0000ad0c01"),
        ["waived"]
    );

    let summary = stdout(&out);
    assert!(
        summary.contains("waiver expired 2026-10-01: VULN-*"),
        "{summary}"
    );
    assert!(summary.contains("waiver unused: AMI-PUBLIC"), "{summary}");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.path().join("findings.json")).unwrap())
            .unwrap();
    let states: Vec<&str> = json["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "expired", "active", "unused"]);
    assert!(json["audit"]["waivers_sha256"].as_str().unwrap().len() == 64);
    let html = fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(html.contains("replaced next sprint") && html.contains(">expired<"));
}

#[test]
fn bad_waiver_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.yaml");
    fs::write(
        &file,
        "waivers:\n  - rule: X\n    reason: r\n    approved_by: a\n    expires: someday\n",
    )
    .unwrap();
    let (out, _) = audit_with(&["--waivers", path(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("w.yaml:5:"), "{}", stderr(&out));
    fs::write(&file, "waivers:\n  - rule: X\n    reasn: r\n").unwrap();
    let (out, _) = audit_with(&["--waivers", path(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("reasn"), "{}", stderr(&out));
    let (out, _) = audit_with(&["--waivers", "/nonexistent/waivers.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("waiver file not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_file_sets_params_fail_on_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amiaudit.toml");
    fs::write(&config, "[audit]\nfail_on = \"critical\"\nformats = [\"csv\"]\n\n[params.AMI-STALE]\nmax_age_days = 10000\n").unwrap();
    let (out, out_dir) = audit_with(&["--config", path(&config)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "fail_on from config: {}",
        stderr(&out)
    );
    assert!(out_dir.path().join("findings.csv").is_file());
    assert!(
        !out_dir.path().join("report.html").exists(),
        "formats from config"
    );
    let rows = csv_rows(&out_dir.path().join("findings.csv"));
    assert!(
        !rows
            .iter()
            .any(|r| r["rule_id"] == "AMI-STALE" && r["status"] == "fail"),
        "param from config"
    );
    // Flags override the file.
    let (out, _) = audit_with(&["--config", path(&config), "--fail-on", "none"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn bad_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amiaudit.toml");
    let cases = [
        ("[audit]\nfail_onn = \"high\"\n", "amiaudit.toml:2:"),
        (
            "[audit]\nfail_on = \"severe\"\n",
            "amiaudit.toml:2:11: unknown variant `severe`",
        ),
        (
            "[params.AMI-STALE]\nmax_age_days = \"soon\"\n",
            "[params.AMI-STALE] max_age_days: expects integer",
        ),
        ("[params.NO-SUCH-RULE]\nx = 1\n", "no rule `NO-SUCH-RULE`"),
    ];
    for (text, expected) in cases {
        fs::write(&config, text).unwrap();
        let (out, _) = audit_with(&["--config", path(&config)]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{text}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
