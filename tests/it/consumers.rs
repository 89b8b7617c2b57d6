//! Each output through the validator its consumers use (tests/validate.py,
//! in the tests' Python: jsonschema and xmlschema, installed by
//! scripts/install-moto.sh): findings.json against docs/findings.schema.json,
//! findings.ocsf.jsonl against OCSF 1.3.0's Compliance Finding schema with
//! the cloud profile, junit.xml against the Jenkins xunit plugin's
//! junit-10.xsd. The sample audit (with waivers) and an audit of hostile
//! strings; and each validator shown to refuse what it must.

use std::path::{Path, PathBuf};

use super::moto::moto_python;
use super::support::*;

const OCSF_SCHEMA: &str = "tests/fixtures/ocsf-1.3.0-compliance_finding-cloud.schema.json";
const JUNIT_XSD: &str = "tests/fixtures/junit-10.xsd";
const FINDINGS_SCHEMA: &str = "docs/findings.schema.json";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs tests/validate.py; (valid, what it said).
fn validate(kind: &str, schema: &str, file: &Path) -> (bool, String) {
    let run = std::process::Command::new(moto_python())
        .arg(repo().join("tests/validate.py"))
        .arg(kind)
        .arg(repo().join(schema))
        .arg(file)
        .output()
        .expect("the tests' python (scripts/install-moto.sh)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.code().is_some_and(|c| c <= 1),
        "validate.py failed to run: {said}"
    );
    (run.status.success(), said)
}

fn assert_valid(kind: &str, schema: &str, file: &Path) {
    let (valid, said) = validate(kind, schema, file);
    assert!(valid, "{} against {schema}:\n{said}", file.display());
}

fn assert_every_consumer_accepts(dir: &Path) {
    assert_valid("json", FINDINGS_SCHEMA, &dir.join("findings.json"));
    assert_valid("jsonl", OCSF_SCHEMA, &dir.join("findings.ocsf.jsonl"));
    assert_valid("xsd", JUNIT_XSD, &dir.join("junit.xml"));
}

#[test]
fn the_sample_audit_is_valid_for_every_consumer() {
    let work = tempfile::tempdir().unwrap();
    let waivers = work.path().join("waivers.yaml");
    std::fs::write(&waivers, super::waivers::WAIVERS).unwrap();
    let out = work.path().join("audit");
    let run = audit_sample(&out, &["--waivers", path(&waivers), "--format", "all"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_every_consumer_accepts(&out);

    // A waived result is accepted risk in CI: a skipped case with the
    // waiver's reason.
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains(
            "<skipped message=\"waived: sandbox images are throwaway (approved by ciso@acme.example)\">"
        ),
        "{junit}"
    );
    let findings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("findings.json")).unwrap()).unwrap();
    assert_eq!(findings["schema_version"], 1);

    // The OCSF events say what OCSF means: captions, the cloud profile, an
    // AWS account, and unknown as Warning ("did not yield a result due to
    // missing information").
    let events: Vec<serde_json::Value> = std::fs::read_to_string(out.join("findings.ocsf.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let unknown = events
        .iter()
        .find(|e| {
            e["unmapped"]["remediation_command"].is_string() && e["compliance"]["status_id"] == 2
        })
        .expect("an unknown result");
    assert_eq!(unknown["compliance"]["status"], "Warning");
    assert!(events.iter().all(
        |e| e["metadata"]["profiles"] == serde_json::json!(["cloud"])
            && e["cloud"]["account"]["type_id"] == 10
    ));
    // Each event says what to do; the rule's rationale and references, the
    // same for every finding of the rule, are the rule's, not each event's.
    assert!(events.iter().all(|e| {
        e["remediation"]["desc"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
            && e["finding_info"].get("desc").is_none()
            && e["remediation"].get("references").is_none()
    }));

    // Each validator refuses what its consumer refuses.
    let broken = work.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    let first = std::fs::read_to_string(out.join("findings.ocsf.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    for (edit, why) in [
        (
            first
                .replace("\"Critical\"", "\"critical\"")
                .replace("\"High\"", "\"high\"")
                .replace("\"Medium\"", "\"medium\"")
                .replace("\"Low\"", "\"low\""),
            "but severity_id",
        ),
        (
            first.replace("\"profiles\":[\"cloud\"],", ""),
            "does not declare `cloud`",
        ),
        (
            first.replace("\"type_id\":10,", "\"type_id\":null,"),
            "null",
        ),
        (
            first.replace("\"activity_id\":1,", ""),
            "'activity_id' is a required property",
        ),
    ] {
        assert_ne!(edit, first, "{why}: the edit must change the event");
        let file = broken.join("event.jsonl");
        std::fs::write(&file, edit).unwrap();
        let (valid, said) = validate("jsonl", OCSF_SCHEMA, &file);
        assert!(!valid && said.contains(why), "{why}: {said}");
    }
    let file = broken.join("junit.xml");
    std::fs::write(
        &file,
        junit.replacen(
            "<testsuites name=\"amiaudit\"",
            "<testsuites timestamp=\"2026-11-20T00:00:00Z\" name=\"amiaudit\"",
            1,
        ),
    )
    .unwrap();
    assert!(
        !validate("xsd", JUNIT_XSD, &file).0,
        "timestamp on testsuites"
    );
    let mut unversioned = findings.clone();
    unversioned
        .as_object_mut()
        .unwrap()
        .remove("schema_version");
    let file = broken.join("findings.json");
    std::fs::write(&file, unversioned.to_string()).unwrap();
    assert!(
        !validate("json", FINDINGS_SCHEMA, &file).0,
        "no schema_version"
    );
}

/// Hostile account and image names, no organization: still valid for every
/// consumer (no `cloud.org` without an organization id; nothing null).
#[test]
fn an_audit_of_hostile_strings_is_valid_for_every_consumer() {
    let inv = tempfile::tempdir().unwrap();
    let payload = "\u{1b}]0;x\u{7}<b>\"'&\u{202e}\n# h | `c` $(id)";
    save(&hostile_inventory(payload, payload, payload), inv.path());
    let out = tempfile::tempdir().unwrap();
    let run = audit_inventory(inv.path(), out.path(), &["--format", "all"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_every_consumer_accepts(out.path());
}
