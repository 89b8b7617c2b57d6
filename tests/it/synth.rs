//! `amiaudit synth`: deterministic, and round-trips through `audit`.
use std::fs;

use super::support::*;

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn sample_data_is_what_synth_writes() {
    // sample-data/acme is `amiaudit synth --format jsonl` with the defaults;
    // regenerating must give the committed bytes, so its README stays true.
    let dir = tempfile::tempdir().unwrap();
    let out = amiaudit(&["synth", "--format", "jsonl", "--out", path(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fresh = files(dir.path());
    let committed: Vec<_> = files(&sample())
        .into_iter()
        .filter(|(n, _)| n != "README.md")
        .collect();
    assert_eq!(fresh.len(), committed.len());
    for ((a, x), (b, y)) in fresh.iter().zip(&committed) {
        assert_eq!(a, b);
        assert!(
            x == y,
            "{a} differs from sample-data/acme/{b}: regenerate with `amiaudit synth --format jsonl --out sample-data/acme`"
        );
    }
}

#[test]
fn parquet_and_jsonl_inventories_audit_the_same() {
    let pq = tempfile::tempdir().unwrap();
    let js = tempfile::tempdir().unwrap();
    let args = [
        "--accounts",
        "15",
        "--regions",
        "3",
        "--images-per-region",
        "5",
        "--seed",
        "42",
    ];
    for (dir, format) in [(&pq, "parquet"), (&js, "jsonl")] {
        let mut a = vec!["synth", "--format", format, "--out", path(dir.path())];
        a.extend(args);
        let out = amiaudit(&a);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert!(pq.path().join("images.parquet").is_file());
    let mut csvs = Vec::new();
    for dir in [&pq, &js] {
        let out_dir = tempfile::tempdir().unwrap();
        let out = amiaudit(&[
            "audit",
            "--inventory",
            path(dir.path()),
            "--out",
            path(out_dir.path()),
            "--format",
            "csv",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        csvs.push(fs::read(out_dir.path().join("findings.csv")).unwrap());
    }
    assert!(
        csvs[0] == csvs[1],
        "parquet and jsonl inventories gave different findings"
    );
    let rows = String::from_utf8(csvs.remove(0)).unwrap();
    assert!(
        rows.lines().count() > 1000,
        "a 15-account org yields many results"
    );
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let run = |seed: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = amiaudit(&[
            "synth",
            "--accounts",
            "3",
            "--regions",
            "2",
            "--images-per-region",
            "3",
            "--seed",
            seed,
            "--format",
            "jsonl",
            "--out",
            path(dir.path()),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        files(dir.path())
    };
    assert_eq!(run("1"), run("1"));
    assert_ne!(run("1"), run("2"));
}

#[test]
fn synth_rejects_bad_sizes() {
    let out = amiaudit(&["synth", "--accounts", "0", "--out", "/tmp/unused"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--accounts"), "{}", stderr(&out));
    let out = amiaudit(&["synth", "--regions", "40", "--out", "/tmp/unused"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schema_is_pinned_and_documented() {
    // Changing the inventory schema is an API change: update the snapshot on
    // purpose (and SCHEMA_VERSION when a column is renamed or retyped).
    let snapshot = fs::read_to_string(repo().join("tests/schema_snapshot.txt")).unwrap();
    assert_eq!(
        amiaudit::inventory::schema::describe(),
        snapshot,
        "run `amiaudit schema > tests/schema_snapshot.txt`"
    );
    let doc = fs::read_to_string(repo().join("docs/inventory-schema.md")).unwrap();
    assert_eq!(
        amiaudit::inventory::schema::markdown(),
        doc,
        "run `amiaudit schema --markdown > docs/inventory-schema.md`"
    );
}
