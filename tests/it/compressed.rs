//! `--compress`: the large machine files gzip'd, holding exactly the bytes
//! an uncompressed audit writes, and every reader of an audit (verify,
//! diff, --baseline, export) taking them as they are.
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use super::support::*;

/// Every file of an audit directory by its path below it.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, fs::read(e.path()).unwrap())
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn compressed_audits_hold_the_same_bytes_and_every_reader_takes_them() {
    let root = tempfile::tempdir().unwrap();
    let (plain, gz, again) = (
        root.path().join("plain"),
        root.path().join("gz"),
        root.path().join("again"),
    );
    let run = audit_sample(&plain, &["--format", "all"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let run = audit_sample(&gz, &["--format", "all", "--compress"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    // The same from the config file, and the same bytes every run.
    let config = root.path().join("amiaudit.toml");
    fs::write(&config, "[audit]\ncompress = true\nformats = [\"all\"]\n").unwrap();
    let run = audit_sample(&again, &["--config", path(&config)]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let (plain_files, gz_files) = (files(&plain), files(&gz));
    assert_eq!(gz_files, files(&again), "gzip output is deterministic");

    let compressed = [
        "findings.csv",
        "findings-nist-800-53-r5.csv",
        "findings.json",
        "findings.asff.json",
        "findings.ocsf.jsonl",
    ];
    for name in compressed {
        assert!(plain_files.contains_key(name), "{name}");
    }
    for (name, bytes) in &plain_files {
        let zipped = format!("{name}.gz");
        if name == "manifest.json" {
            continue;
        }
        if compressed.contains(&name.as_str()) || name.starts_with("findings-") {
            assert!(!gz_files.contains_key(name), "{name} written plain too");
            let zipped_bytes = &gz_files[&zipped];
            assert!(
                zipped_bytes.len() * 3 < bytes.len(),
                "{name}: {} -> {}",
                bytes.len(),
                zipped_bytes.len()
            );
            assert!(gunzip(zipped_bytes) == *bytes, "{name}: other bytes");
        } else {
            // The report, summary, JUnit, retirement plan and the embedded
            // inventory and policies stay as they are.
            assert!(gz_files.get(name) == Some(bytes), "{name} differs");
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(&gz_files["manifest.json"]).unwrap();
    assert!(
        manifest["files"]["findings.csv.gz"].is_string(),
        "{manifest}"
    );
    assert!(manifest["files"]["findings.csv"].is_null(), "{manifest}");

    // verify hashes the compressed bytes; an edited one does not verify.
    let o = amiaudit(&["verify", path(&gz)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // diff reads either, and the two audits hold the same findings.
    let o = amiaudit(&["diff", path(&gz), path(&plain)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(": 0 new,") && stdout(&o).contains(" 0 resolved"),
        "{}",
        stdout(&o)
    );
    // A compressed baseline is read like a plain one.
    let next = root.path().join("next");
    let o = audit_sample(&next, &["--baseline", path(&gz), "--compress"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let diff: serde_json::Value =
        serde_json::from_slice(&fs::read(next.join("diff.json")).unwrap()).unwrap();
    assert_eq!(diff["counts"]["new"], 0, "{diff}");
    assert_eq!(
        diff["counts"]["persisting"].as_u64().map(|n| n > 0),
        Some(true),
        "{diff}"
    );

    let edited = gz.join("findings.json.gz");
    let mut bytes = fs::read(&edited).unwrap();
    bytes.push(0);
    fs::write(&edited, bytes).unwrap();
    let o = amiaudit(&["verify", path(&gz)]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("findings.json.gz"), "{}", stdout(&o));

    // Both spellings at once: one of them is not the audit's.
    fs::copy(plain.join("findings.json"), again.join("findings.json")).unwrap();
    let o = amiaudit(&["diff", path(&again), path(&plain), "--allow-unverified"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("holds both findings.json and findings.json.gz"),
        "{}",
        stderr(&o)
    );
}
