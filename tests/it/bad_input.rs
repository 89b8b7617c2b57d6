//! Bad inventories: one clear line naming the file and the problem, exit 2.
use std::fs;
use std::path::Path;

use super::support::*;

pub fn audit_error(inventory: &Path) -> String {
    let out_dir = tempfile::tempdir().unwrap();
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(inventory),
        "--out",
        path(out_dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line, got:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

#[test]
fn missing_directory() {
    let err = audit_error(Path::new("/nonexistent/inventory"));
    assert!(
        err.contains("/nonexistent/inventory: inventory directory not found"),
        "{err}"
    );
}

#[test]
fn missing_manifest() {
    let dir = broken_copy();
    fs::remove_file(dir.path().join("manifest.json")).unwrap();
    let err = audit_error(dir.path());
    assert!(err.contains("manifest.json: not found"), "{err}");
}

#[test]
fn missing_table_file() {
    let dir = broken_copy();
    fs::remove_file(dir.path().join("images.jsonl")).unwrap();
    let err = audit_error(dir.path());
    assert!(err.contains("images.jsonl: table file not found"), "{err}");
}

#[test]
fn table_missing_from_manifest() {
    let dir = broken_copy();
    let manifest_path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["tables"]
        .as_object_mut()
        .unwrap()
        .remove("snapshots");
    fs::write(&manifest_path, manifest.to_string()).unwrap();
    let err = audit_error(dir.path());
    assert!(
        err.contains("table `snapshots` is missing from the manifest"),
        "{err}"
    );
}

#[test]
fn malformed_json_line_names_file_and_line() {
    let dir = broken_copy();
    let original = fs::read_to_string(dir.path().join("accounts.jsonl")).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    lines[2] = "{\"account_id\": \"123\", broken";
    rewrite_table(dir.path(), "accounts.jsonl", &(lines.join("\n") + "\n"));
    let err = audit_error(dir.path());
    assert!(
        err.contains("accounts.jsonl:3:") && err.contains("invalid JSON"),
        "{err}"
    );
}

#[test]
fn wrong_column_type_and_unknown_column() {
    let dir = broken_copy();
    rewrite_table(dir.path(), "accounts.jsonl", "{\"account_id\": 123}\n");
    let err = audit_error(dir.path());
    assert!(
        err.contains("accounts.jsonl:1: column `account_id` expects string, found number `123`"),
        "{err}"
    );

    rewrite_table(
        dir.path(),
        "accounts.jsonl",
        "{\"account_id\": \"1\", \"acount_name\": \"typo\"}\n",
    );
    let err = audit_error(dir.path());
    assert!(
        err.contains("accounts.jsonl:1: unknown column `acount_name`"),
        "{err}"
    );

    rewrite_table(
        dir.path(),
        "accounts.jsonl",
        "{\"account_name\": \"no id\"}\n",
    );
    let err = audit_error(dir.path());
    assert!(
        err.contains("accounts.jsonl:1: column `account_id` is required"),
        "{err}"
    );
}

#[test]
fn wrong_schema_version() {
    let dir = broken_copy();
    let manifest_path = dir.path().join("manifest.json");
    let text = fs::read_to_string(&manifest_path).unwrap().replace(
        &format!(
            "\"schema_version\": {}",
            amiaudit::inventory::SCHEMA_VERSION
        ),
        "\"schema_version\": 99",
    );
    fs::write(&manifest_path, text).unwrap();
    let err = audit_error(dir.path());
    assert!(err.contains("schema version 99 is not supported"), "{err}");
}

#[test]
fn malformed_manifest_names_line() {
    let dir = broken_copy();
    fs::write(
        dir.path().join("manifest.json"),
        "{\n  \"schema_version\": 1,\n  oops\n}",
    )
    .unwrap();
    let err = audit_error(dir.path());
    assert!(err.contains("manifest.json:3:"), "{err}");
}

#[test]
fn table_changed_after_collection() {
    let dir = broken_copy();
    let file = dir.path().join("images.jsonl");
    let text = fs::read_to_string(&file)
        .unwrap()
        .replacen("available", "failed", 1);
    fs::write(&file, text).unwrap();
    let err = audit_error(dir.path());
    assert!(
        err.contains("images.jsonl: sha256 does not match manifest.json"),
        "{err}"
    );
}

#[test]
fn broken_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = amiaudit(&[
        "synth",
        "--accounts",
        "2",
        "--regions",
        "1",
        "--images-per-region",
        "2",
        "--out",
        path(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = dir.path().join("images.parquet");
    let garbage = b"this is not parquet";
    fs::write(&file, garbage).unwrap();
    let manifest_path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    use sha2::Digest;
    manifest["tables"]["images"]["sha256"] = hex::encode(sha2::Sha256::digest(garbage)).into();
    fs::write(&manifest_path, manifest.to_string()).unwrap();
    let err = audit_error(dir.path());
    assert!(
        err.contains("images.parquet: not a readable Parquet file"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = amiaudit(&["audit", "--inventory", path(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(&sample()),
        "--out",
        "/tmp/x",
        "--fail-on",
        "severe",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("severe"));
}

/// Rows and scope that contradict each other are refused at load, never
/// judged: an image in a region its `regions` row says is not opted in,
/// and one in an account-region outside the scope with no `regions` row.
#[test]
fn rows_that_contradict_the_scope() {
    let images = fs::read_to_string(sample().join("images.jsonl")).unwrap();
    let first = images.lines().next().unwrap();
    let mut row: serde_json::Value = serde_json::from_str(first).unwrap();
    for (account, region, expected) in [
        (
            "210009000333",
            "ap-southeast-1",
            "table `images` holds rows of account 210009000333 in ap-southeast-1, which `regions` marks not-opted-in",
        ),
        (
            "210009000333",
            "sa-east-1",
            "table `images` holds rows of account 210009000333 in sa-east-1, which has no `regions` row and lies outside the manifest's scope",
        ),
        (
            "999999999999",
            "us-east-1",
            "table `images` holds rows of account 999999999999 in us-east-1, which has no `regions` row",
        ),
    ] {
        let dir = broken_copy();
        row["account_id"] = account.into();
        row["region"] = region.into();
        row["image_id"] = "ami-0planted0planted".into();
        let content = format!("{images}{}\n", serde_json::to_string(&row).unwrap());
        rewrite_table(dir.path(), "images.jsonl", &content);
        let err = audit_error(dir.path());
        assert!(err.contains(expected), "{err}");
    }
}
