//! `policies list|explain|validate` and `query`.
use std::fs;

use super::support::*;

#[test]
fn policies_list_and_explain() {
    let out = amiaudit(&["policies", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("AMI-PUBLIC") && text.contains("51 rules"),
        "{text}"
    );
    let out = amiaudit(&["policies", "list", "--framework", "cis-compute-v1.0.0"]);
    let text = stdout(&out);
    assert!(
        text.contains("AMI-PUBLIC") && text.contains("[cis-compute-v1.0.0 2.1.5]"),
        "{text}"
    );
    assert!(!text.contains("VULN-HIGH"), "{text}");

    let out = amiaudit(&[
        "policies",
        "explain",
        "AMI-STALE",
        "--param",
        "AMI-STALE.max_age_days=45",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("max_age_days = 45 (default 90)"), "{text}");
    assert!(
        text.contains("age_days > 45"),
        "query shows the effective value: {text}"
    );
    let out = amiaudit(&["policies", "explain", "NOPE"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no rule `NOPE`"));
}

#[test]
fn policies_validate_dry_runs_queries() {
    let out = amiaudit(&["policies", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("51 rules valid"));
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("bad.yaml"),
        "id: BAD\ntitle: t\nseverity: low\nresource_type: ami\ndescription: d\nremediation: {text: r}\nquery: SELECT account_id, region, image_id AS resource_id FROM images\n",
    )
    .unwrap();
    let out = amiaudit(&["policies", "validate", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.yaml: rule `BAD`") && err.contains("must return the columns"),
        "{err}"
    );
}

#[test]
fn query_formats_and_errors() {
    let s = sample();
    let sql = "SELECT account_name FROM accounts WHERE account_name LIKE '%legacy%'";
    let out = amiaudit(&["query", "--inventory", path(&s), sql]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("acme-legacy-erp") && stdout(&out).contains("1 rows"));
    let out = amiaudit(&["query", "--inventory", path(&s), "--format", "csv", sql]);
    assert_eq!(stdout(&out), "account_name\nacme-legacy-erp\n");
    let out = amiaudit(&[
        "query",
        "--inventory",
        path(&s),
        "--format",
        "json",
        "SELECT COUNT(*) AS n FROM images WHERE family = 'al2023-base-golden'",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json[0]["n"].as_u64().unwrap() > 0);
    let out = amiaudit(&["query", "--inventory", path(&s), "SELECT nope FROM images"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: query: SQL error:") && err.lines().count() == 1,
        "{err}"
    );
}
