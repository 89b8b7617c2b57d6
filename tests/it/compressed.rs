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

/// Replaces `name` in an audit and rewrites its manifest's sha256 for it:
/// what whoever hands over an unsigned audit can do.
fn plant(dir: &Path, name: &str, bytes: &[u8]) {
    use sha2::Digest as _;
    fs::write(dir.join(name), bytes).unwrap();
    let manifest = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    m["files"][name] = hex::encode(sha2::Sha256::digest(bytes)).into();
    fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

fn gzip_at(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    gzip_at(bytes, flate2::Compression::fast())
}

#[test]
fn hostile_gzip_files_are_refused_in_one_line_and_never_verify() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    let run = audit_sample(&good, &["--compress"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let zipped = fs::read(good.join("findings.json.gz")).unwrap();
    let whole = gunzip(&zipped);
    let copy = |name: &str| {
        let dir = root.path().join(name);
        fs::create_dir(&dir).unwrap();
        for (rel, bytes) in files(&good) {
            let to = dir.join(&rel);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::write(to, bytes).unwrap();
        }
        dir
    };
    // A bomb: 32 MB of one byte in a few tens of KB. Refused once it has
    // inflated past 128 times its size, long before memory is at risk.
    let bomb = copy("bomb");
    let bomb_bytes = gzip_at(&vec![b' '; 32 << 20], flate2::Compression::best());
    assert!(bomb_bytes.len() * 500 < 32 << 20, "{}", bomb_bytes.len());
    plant(&bomb, "findings.json.gz", &bomb_bytes);
    // Truncated, and with bytes after the stream.
    let truncated = copy("truncated");
    plant(
        &truncated,
        "findings.json.gz",
        zipped.get(..zipped.len() / 2).unwrap(),
    );
    let trailing = copy("trailing");
    plant(
        &trailing,
        "findings.json.gz",
        &[zipped.as_slice(), b"GARBAGE"].concat(),
    );
    for (dir, why) in [
        (&bomb, "inflates to more than 128 times its size"),
        (&truncated, "not a whole gzip file"),
        (&trailing, "not a whole gzip file"),
    ] {
        // The manifest's hashes hold, yet verify fails: the claims the
        // file should state cannot be read.
        let o = amiaudit(&["verify", path(dir)]);
        assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains("findings.json: listed, but its claims cannot be read"),
            "{}",
            stdout(&o)
        );
        // diff refuses it as unverified; told to read it anyway, it says
        // why it cannot, in one line.
        let o = amiaudit(&["diff", path(dir), path(&good)]);
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        assert!(stderr(&o).contains("does not verify"), "{}", stderr(&o));
        let o = amiaudit(&["diff", path(dir), path(&good), "--allow-unverified"]);
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        let err = stderr(&o);
        let errors: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
        assert!(
            errors.len() == 1 && errors[0].starts_with("error:") && errors[0].contains(why),
            "expected one line with `{why}`: {err}"
        );
    }
    // The same bytes gzip'd another way (several members) are still the file.
    let members = copy("members");
    let (head, tail) = whole.split_at(whole.len() / 2);
    plant(
        &members,
        "findings.json.gz",
        &[gzip(head), gzip(tail)].concat(),
    );
    let o = amiaudit(&["verify", path(&members)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // --no-compress beats the config file's `compress = true`.
    let config = root.path().join("amiaudit.toml");
    fs::write(&config, "[audit]\ncompress = true\n").unwrap();
    let plain = root.path().join("plain");
    let run = audit_sample(&plain, &["--config", path(&config), "--no-compress"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(plain.join("findings.json").is_file() && !plain.join("findings.json.gz").exists());
}
