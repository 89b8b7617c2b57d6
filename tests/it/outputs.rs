//! Output handling: an audit never destroys what it did not write, is
//! written whole or not at all, and its evidence proves itself. Each case
//! here once lost data or was believed when it should not have been.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::support::*;

/// Every file below `dir` with its bytes (symlinks not followed).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            out.insert(entry.path().to_path_buf(), fs::read(entry.path()).unwrap());
        }
    }
    out
}

fn refused(out: &std::process::Output, what: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(what), "expected `{what}` in: {err}");
}

#[test]
fn out_dot_in_a_working_directory_is_refused_and_nothing_is_deleted() {
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("notes.txt"), "mine\n").unwrap();
    fs::create_dir(work.path().join("src")).unwrap();
    fs::write(work.path().join("src/lib.rs"), "// code\n").unwrap();
    let before = snapshot(work.path());
    for _ in 0..2 {
        let out = Command::new(assert_cmd::cargo::cargo_bin("amiaudit"))
            .current_dir(work.path())
            .args(["audit", "--inventory", path(&sample()), "--out", "."])
            .output()
            .unwrap();
        refused(&out, "amiaudit writes only into a new or empty directory");
    }
    assert_eq!(snapshot(work.path()), before);
}

/// `s3:/b/p/` (one slash), a leading space, or s3:// where only a local
/// directory is written made a local directory named `s3:` (synth even
/// said "wrote s3://..."): anything URL-like that is not supported, and
/// any padded path, is refused and nothing is written.
#[test]
fn url_like_and_padded_outputs_are_refused_not_written_locally() {
    let work = tempfile::tempdir().unwrap();
    let sample = sample();
    let inventory = path(&sample);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["synth", "--out", "s3://bucket/p/"],
            "this takes a local path; s3://",
        ),
        (
            vec!["synth", "--out", "s3:/bucket/p/"],
            "this takes a local path; s3://",
        ),
        (
            vec!["synth", "--out", " out"],
            "begins or ends with whitespace",
        ),
        (
            vec!["scan", "--out", "s3://bucket/p/"],
            "this takes a local path; s3://",
        ),
        (
            vec!["scan", "--out", "https://example.com/x"],
            "looks like a URL (https:)",
        ),
        (
            vec!["diff", inventory, inventory, "--out", "s3://bucket/d/"],
            "this takes a local path",
        ),
        (
            vec!["audit", "--inventory", inventory, "--out", "s3:/bucket/p/"],
            "is not s3://BUCKET/PREFIX/",
        ),
        (
            vec![
                "audit",
                "--inventory",
                inventory,
                "--out",
                " s3://bucket/p/",
            ],
            "begins or ends with whitespace",
        ),
        (
            vec!["audit", "--inventory", inventory, "--out", "file:///tmp/x"],
            "is not s3://BUCKET/PREFIX/",
        ),
        (
            vec![
                "audit",
                "--inventory",
                inventory,
                "--out",
                "\u{200B}s3://bucket/p/",
            ],
            "holds a control or invisible character",
        ),
        (
            vec!["synth", "--out", "\u{FEFF}out"],
            "holds a control or invisible character",
        ),
        (
            vec!["audit", "--inventory", "s3://bucket/inv/", "--out", "x"],
            "this takes a local path",
        ),
    ];
    for (args, why) in cases {
        let out = Command::new(assert_cmd::cargo::cargo_bin("amiaudit"))
            .current_dir(work.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        refused(&out, why);
    }
    let left: Vec<_> = fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // A local name with a colon is still reachable, written as a path.
    let out = Command::new(assert_cmd::cargo::cargo_bin("amiaudit"))
        .current_dir(work.path())
        .args(["synth", "--out", "./inventory:2026"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(work.path().join("inventory:2026/manifest.json").is_file());
}

#[test]
fn out_may_not_overlap_the_inventory() {
    let root = tempfile::tempdir().unwrap();
    let x = root.path().join("x");
    fs::create_dir(&x).unwrap();
    let inventory = x.join("inventory");
    copy_dir(&sample(), &inventory);
    let before = snapshot(root.path());
    for (out, why) in [
        (&x, "overlaps the inventory being audited"),
        (&inventory, "overlaps the inventory being audited"),
        (
            &inventory.join("deeper"),
            "lies inside the amiaudit inventory at",
        ),
    ] {
        let run = amiaudit(&["audit", "--inventory", path(&inventory), "--out", path(out)]);
        refused(&run, why);
    }
    assert_eq!(snapshot(root.path()), before, "no table emptied");
    // Re-auditing an audit's own inventory copy into that audit.
    let e = root.path().join("e");
    assert_eq!(audit_sample(&e, &[]).status.code(), Some(0));
    let run = amiaudit(&[
        "audit",
        "--inventory",
        path(&e.join("inventory")),
        "--out",
        path(&e),
    ]);
    refused(&run, "overlaps the inventory being audited");
    assert_eq!(amiaudit(&["verify", path(&e)]).status.code(), Some(0));
    // Nor inside another audit, at any depth: it would no longer verify.
    for nested in [e.join("sub"), e.join("a").join("b")] {
        refused(
            &audit_sample(&nested, &[]),
            "lies inside the amiaudit audit at",
        );
        assert!(!nested.exists());
    }
    // One rule for every command: synth, diff and the audit's own
    // inventory are refused alike, and the audit still verifies.
    for nested in [e.join("inventory"), e.join("sub")] {
        let run = amiaudit(&["synth", "--accounts", "1", "--out", path(&nested)]);
        refused(&run, "lies inside the amiaudit audit at");
        let run = amiaudit(&["diff", path(&e), path(&e), "--out", path(&nested.join("d"))]);
        refused(&run, "lies inside the amiaudit");
    }
    assert!(!e.join("sub").exists());
    // Nor inside an inventory.
    let inv = root.path().join("inv");
    assert_eq!(
        amiaudit(&["synth", "--accounts", "1", "--out", path(&inv)])
            .status
            .code(),
        Some(0)
    );
    let run = amiaudit(&["synth", "--accounts", "1", "--out", path(&inv.join("x"))]);
    refused(&run, "lies inside the amiaudit inventory at");
    assert_eq!(amiaudit(&["verify", path(&e)]).status.code(), Some(0));
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_planted_manifest_never_points_a_removal_outside() {
    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim.txt");
    fs::write(&victim, "precious\n").unwrap();
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    for target in ["../victim.txt".to_string(), victim.display().to_string()] {
        let manifest = serde_json::json!({
            "kind": "amiaudit-audit",
            "tool_version": "0.1.0",
            "collected_at": "2026-11-20T00:00:00Z",
            "scope": {"source": "x", "organization_id": null, "management_account_id": null,
                      "caller_arn": null, "accounts": [], "regions": []},
            "inventory_complete": true,
            "policy_pack_sha256": "0",
            "waivers_sha256": null,
            "framework": null,
            "files": {target.clone(): "0"}
        });
        fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
        let run = audit_sample(&out, &[]);
        refused(&run, "not a plain path inside it");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        let verify = amiaudit(&["verify", path(&out)]);
        assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
        assert!(
            stdout(&verify).contains("outside the directory"),
            "{}",
            stdout(&verify)
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }
    // An inventory manifest naming a file outside its directory is refused.
    let inv = root.path().join("inv");
    copy_dir(&sample(), &inv);
    let manifest_path = inv.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    // Nor may a table be the manifest itself, or share another's file.
    let victim_name = victim.display().to_string();
    for (file, why) in [
        (
            victim_name.as_str(),
            "must be plain names inside the inventory directory",
        ),
        ("manifest.json", "each table needs its own file"),
        ("accounts.jsonl", "each table needs its own file"),
    ] {
        manifest["tables"]["images"]["file"] = file.into();
        fs::write(&manifest_path, manifest.to_string()).unwrap();
        let run = amiaudit(&[
            "audit",
            "--inventory",
            path(&inv),
            "--out",
            path(&root.path().join("o2")),
        ]);
        refused(&run, why);
        assert!(!stderr(&run).contains("staging"), "{}", stderr(&run));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }
}

#[test]
fn a_failed_audit_leaves_the_earlier_one_intact() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    assert_eq!(audit_sample(&out, &[]).status.code(), Some(0));
    let before = snapshot(&out);
    // A template error, a bad framework name, a missing templates directory.
    let templates = root.path().join("t");
    fs::create_dir(&templates).unwrap();
    fs::write(templates.join("report.html"), "{% if %}").unwrap();
    let run = audit_sample(&out, &["--templates", path(&templates)]);
    assert_eq!(run.status.code(), Some(2));
    let policies = root.path().join("p");
    fs::create_dir(&policies).unwrap();
    fs::write(
        policies.join("r.yaml"),
        "id: SLASHED\ntitle: t\nseverity: low\nresource_type: ami\ndescription: d\nremediation:\n  text: t\nframeworks:\n  \"../evil\": [\"1\"]\nfrom: images\nfail_when: public\n",
    )
    .unwrap();
    let run = audit_sample(&out, &["--policies", path(&policies)]);
    refused(&run, "rule `SLASHED`: framework name");
    let run = audit_sample(&out, &["--templates", "/nonexistent/templates"]);
    refused(&run, "templates directory not found");
    assert_eq!(snapshot(&out), before);
    assert_eq!(amiaudit(&["verify", path(&out)]).status.code(), Some(0));
    // Killed half way: the earlier audit stands, nothing of the new one shows.
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("amiaudit"))
        .args(["audit", "--inventory", path(&sample()), "--out", path(&out)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(amiaudit(&["verify", path(&out)]).status.code(), Some(0));
    // The next audit clears the dead run's staging directory.
    assert_eq!(audit_sample(&out, &[]).status.code(), Some(0));
    let leftovers: Vec<String> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn two_audits_at_once_into_one_place_never_interleave() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let spawn = |format: &str| {
        Command::new(assert_cmd::cargo::cargo_bin("amiaudit"))
            .args([
                "audit",
                "--inventory",
                path(&sample()),
                "--out",
                path(&out),
                "--format",
                format,
            ])
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("csv,json"));
        let b = s.spawn(|| spawn("html,markdown"));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)), "{codes:?}");
    for run in [&a, &b] {
        if run.status.code() != Some(0) {
            refused(run, "another amiaudit is writing here");
        }
    }
    let verify = amiaudit(&["verify", path(&out)]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

#[test]
fn synth_and_scan_outputs_follow_the_same_rules() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("audit");
    assert_eq!(audit_sample(&out, &[]).status.code(), Some(0));
    let before = snapshot(&out);
    let run = amiaudit(&["synth", "--out", path(&out)]);
    refused(&run, "is not an earlier amiaudit inventory");
    assert_eq!(snapshot(&out), before);
    // An earlier inventory is replaced whole; a second synth is the same bytes.
    let inv = root.path().join("inv");
    assert_eq!(
        amiaudit(&["synth", "--out", path(&inv)]).status.code(),
        Some(0)
    );
    let first = snapshot(&inv);
    assert_eq!(
        amiaudit(&["synth", "--out", path(&inv)]).status.code(),
        Some(0)
    );
    assert_eq!(snapshot(&inv), first);
}

/// Rewrites the audit manifest with `edit` (the files stay as they are).
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut m);
    fs::write(&p, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

#[test]
fn verify_trusts_no_field_of_the_manifest() {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("a");
    let waivers = root.path().join("w.yaml");
    fs::write(&waivers, "waivers:\n  - rule: AMI-PUBLIC\n    reason: r\n    approved_by: x@example.com\n    expires: 2027-01-01\n").unwrap();
    assert_eq!(
        audit_sample(&original, &["--waivers", path(&waivers)])
            .status
            .code(),
        Some(0)
    );
    let ok = amiaudit(&["verify", path(&original)]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("fingerprint (sha256 of manifest.json): "),
        "{}",
        stdout(&ok)
    );
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "inventory_complete",
            Box::new(|m| m["inventory_complete"] = false.into()),
        ),
        (
            "collected_at",
            Box::new(|m| m["collected_at"] = "2027-01-01T00:00:00Z".into()),
        ),
        (
            "scope",
            Box::new(|m| m["scope"]["accounts"] = serde_json::json!([])),
        ),
        (
            "policy_pack_sha256",
            Box::new(|m| m["policy_pack_sha256"] = "0".repeat(64).into()),
        ),
        (
            "waivers_sha256",
            Box::new(|m| m["waivers_sha256"] = serde_json::Value::Null),
        ),
        (
            "lists no file",
            Box::new(|m| m["files"] = serde_json::json!({})),
        ),
        (
            "tool_version",
            Box::new(|m| m["tool_version"] = "9.9.9".into()),
        ),
        ("framework", Box::new(|m| m["framework"] = "soa-c02".into())),
        (
            "storage",
            Box::new(|m| {
                m["storage"] = serde_json::json!({
                    "location": "s3://vault/audits/x/",
                    "object_lock_enabled": true,
                    "retention_mode": "COMPLIANCE",
                    "retain_until": "2099-01-01T00:00:00Z"
                })
            }),
        ),
        (
            "scan_started_at",
            Box::new(|m| m["scan_started_at"] = "2026-11-19T00:00:00Z".into()),
        ),
        (
            "policy_files",
            Box::new(|m| {
                m["policy_files"] = serde_json::json!({});
                m["policy_pack_sha256"] = "0".repeat(64).into();
            }),
        ),
    ];
    for (what, edit) in edits {
        let copy = root.path().join(format!("copy-{}", what.replace(' ', "-")));
        copy_tree(&original, &copy);
        edit_manifest(&copy, |m| edit(m));
        let run = amiaudit(&["verify", path(&copy)]);
        assert_eq!(run.status.code(), Some(1), "{what}: {}", stdout(&run));
        assert!(
            stdout(&run).contains("inconsistent:"),
            "{what}: {}",
            stdout(&run)
        );
        // A baseline that does not verify is refused, or used with a warning.
        let new = root.path().join(format!("new-{}", what.replace(' ', "-")));
        let run = audit_sample(&new, &["--baseline", path(&copy)]);
        refused(&run, "the baseline does not verify");
        let run = audit_sample(
            &new,
            &["--baseline", path(&copy), "--allow-unverified-baseline"],
        );
        if what != "lists no file" {
            assert_eq!(run.status.code(), Some(0), "{what}: {}", stderr(&run));
            assert!(stderr(&run).starts_with("warning: "), "{}", stderr(&run));
        }
        let diff = amiaudit(&["diff", path(&copy), path(&original)]);
        refused(&diff, "the baseline does not verify");
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

#[test]
fn bundle_goes_beside_the_audit_even_for_out_dot() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("here");
    fs::create_dir(&out).unwrap();
    let run = Command::new(assert_cmd::cargo::cargo_bin("amiaudit"))
        .current_dir(&out)
        .args([
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            ".",
            "--bundle",
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(root.path().join("here.tar.gz").is_file());
    let verify = amiaudit(&["verify", path(&out)]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    // A file of the bundle's name that is not an earlier bundle is left alone.
    let other = root.path().join("other");
    fs::write(root.path().join("other.tar.gz"), "not a bundle").unwrap();
    let run = audit_sample(&other, &["--bundle"]);
    refused(&run, "is not the bundle amiaudit wrote");
    assert_eq!(
        fs::read(root.path().join("other.tar.gz")).unwrap(),
        b"not a bundle"
    );
    // Nor a user's own tarball of the audit (it has the audit's entries and
    // manifest): refused before the audit is replaced, both kept as they are.
    let mine = root.path().join("mine");
    assert_eq!(
        audit_sample(&mine, &["--format", "csv"]).status.code(),
        Some(0)
    );
    let tar = Command::new("tar")
        .current_dir(root.path())
        .args(["czf", "mine.tar.gz", "mine"])
        .status()
        .unwrap();
    assert!(tar.success());
    let before = snapshot(&mine);
    let tarball = fs::read(root.path().join("mine.tar.gz")).unwrap();
    let run = audit_sample(&mine, &["--bundle", "--format", "json"]);
    refused(&run, "is not the bundle amiaudit wrote");
    assert_eq!(snapshot(&mine), before, "the audit was replaced");
    assert_eq!(fs::read(root.path().join("mine.tar.gz")).unwrap(), tarball);
    // Our own bundle is replaced, with the audit.
    fs::remove_file(root.path().join("mine.tar.gz")).unwrap();
    assert_eq!(audit_sample(&mine, &["--bundle"]).status.code(), Some(0));
    let run = audit_sample(&mine, &["--bundle", "--format", "csv"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    // A bundle planted as a symbolic link is refused, and its target kept.
    let target = root.path().join("target.txt");
    fs::write(&target, "keep").unwrap();
    fs::remove_file(root.path().join("mine.tar.gz")).unwrap();
    std::os::unix::fs::symlink(&target, root.path().join("mine.tar.gz")).unwrap();
    refused(
        &audit_sample(&mine, &["--bundle"]),
        "is not the bundle amiaudit wrote",
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
}

#[test]
fn empty_formats_are_a_mistake() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("amiaudit.toml");
    fs::write(&config, "[audit]\nformats = []\n").unwrap();
    let run = audit_sample(&root.path().join("o"), &["--config", path(&config)]);
    refused(&run, "formats is empty");
}

/// Text an attacker can put in an account name or image name.
const PAYLOADS: &[&str] = &[
    "# Heading",
    "![img](https://evil.example/x.png)",
    "[click](https://evil.example)",
    "<img src=x onerror=alert(1)>",
    "a | b | c",
    "`code`",
    "\u{1b}]0;pwned\u{7}",
    "\u{1b}[2J\u{1b}[31mred",
    "\u{202e}txt.exe",
    "\u{2066}isolated\u{2069}",
    "\u{9b}31mC1 CSI",
    "acme\naudit fingerprint (sha256 of manifest.json): 0000",
];

#[test]
fn hostile_text_stays_text_in_markdown_and_the_terminal() {
    for payload in PAYLOADS {
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("inv");
        save(&hostile_inventory(payload, payload, payload), &inv);
        let out = dir.path().join("out");
        let run = amiaudit(&["audit", "--inventory", path(&inv), "--out", path(&out)]);
        assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
        let terminal = stdout(&run);
        assert!(
            !terminal.contains('\u{1b}')
                && !terminal.contains('\u{202e}')
                && !terminal.contains('\u{7}')
                && !terminal.contains('\u{9b}'),
            "control characters reached the terminal for {payload:?}: {terminal:?}"
        );
        // A value never starts a line of its own: one fingerprint line.
        assert_eq!(
            terminal
                .lines()
                .filter(|l| l.starts_with("audit fingerprint"))
                .count(),
            1,
            "{payload:?} forged a line: {terminal}"
        );
        // Nor does `query`, in any of its formats.
        for format in ["table", "csv", "json"] {
            let run = amiaudit(&[
                "query",
                "--inventory",
                path(&inv),
                "--format",
                format,
                "SELECT account_name, name, description FROM accounts JOIN images USING (account_id)",
            ]);
            assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
            let text = stdout(&run);
            for bad in ['\u{1b}', '\u{202e}', '\u{7}', '\u{9b}', '\u{2066}'] {
                assert!(
                    !text.contains(bad),
                    "query --format {format} printed {bad:?} of {payload:?}: {text:?}"
                );
            }
            assert!(
                !text.lines().any(|l| l.starts_with("audit fingerprint")),
                "query --format {format}: {payload:?} forged a line: {text}"
            );
        }
        let md = fs::read_to_string(out.join("summary.md")).unwrap();
        let lines: Vec<&str> = md.lines().collect();
        for (at, line) in lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains("111111111111"))
        {
            // One account row: exactly its table's own pipes (its header's).
            let pipes = |l: &str| l.matches('|').count() - l.matches("\\|").count();
            let header = lines[..at]
                .iter()
                .rev()
                .find(|l| l.starts_with("| ") && !l.contains("111111111111"))
                .unwrap_or_else(|| panic!("no table header above {line}"));
            assert_eq!(
                pipes(line),
                pipes(header),
                "{payload:?} split the row: {line}"
            );
            for bad in ["<img", "](", "![", "\n#", "`code`", "\u{1b}", "\u{202e}"] {
                assert!(!line.contains(bad), "{payload:?} left `{bad}` in: {line}");
            }
        }
    }
}

/// The fingerprint an audit printed, if it completed.
fn fingerprint(out: &std::process::Output) -> Option<String> {
    (out.status.code() == Some(0))
        .then(|| {
            stdout(out)
                .lines()
                .find_map(|l| l.strip_prefix("audit fingerprint (sha256 of manifest.json): "))
                .map(str::to_string)
        })
        .flatten()
}

#[test]
fn random_sequences_of_audits_touch_nothing_else_and_leave_the_last_one() {
    // Audits, killed audits, racing audits, synth, rule errors and edits of
    // the inventory under a running audit, in a random order: files outside
    // the outputs never change, and each output is the last complete one.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("keep.txt"), "user data\n").unwrap();
    let shared = root.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::write(shared.join("notes.md"), "mine\n").unwrap();
    // A user's own tarball where b's bundle would go: never replaced.
    fs::write(root.path().join("b.tar.gz"), "my own tar czf b\n").unwrap();
    let others = |root: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot(root)
            .into_iter()
            .filter(|(p, _)| {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                !["a/", "b/", "s/"].iter().any(|d| rel.starts_with(d))
                    && !["a.tar.gz", "s.tar.gz"].contains(&rel.as_str())
                    && !rel.ends_with(".amiaudit-lock")
                    // A killed run's staging directory: amiaudit's own, removed next time.
                    && !rel.contains(".amiaudit-staging-")
            })
            .collect()
    };
    let untouched = others(root.path());
    let dirs = ["a", "b", "shared", "s"];
    let mut last: BTreeMap<&str, String> = BTreeMap::new();
    let formats = ["csv", "json,markdown", "html", "csv,junit,ocsf"];
    let audit = |dir: &Path, format: &str| {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("amiaudit"));
        command
            .args([
                "audit",
                "--inventory",
                path(&sample()),
                "--out",
                path(dir),
                "--format",
                format,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    // A rule that fails on real data (a dry run cannot tell), and a private
    // inventory to edit while an audit reads it.
    let bad_rules = tempfile::tempdir().unwrap();
    fs::write(
        bad_rules.path().join("cast.yaml"),
        "id: NAME-NUMBER\ntitle: t\nseverity: low\nresource_type: ami\ndescription: d\nremediation:\n  text: t\nevidence:\n  - ec2:DescribeImages\nfrom: images\nfail_when: CAST(name AS BIGINT) > 0\nreason: x\n",
    )
    .unwrap();
    let private = tempfile::tempdir().unwrap();
    let inventory = private.path().join("inv");
    copy_dir(&sample(), &inventory);
    let pristine = fs::read(inventory.join("images.jsonl")).unwrap();
    for step in 0..24 {
        let name = dirs[rng.random_range(0..dirs.len())];
        let dir = root.path().join(name);
        let format = formats[rng.random_range(0..formats.len())];
        match rng.random_range(0..7) {
            // A bundle: placed beside the audit, or refused where a file
            // that is not the earlier audit's bundle is.
            6 => {
                let run = audit(&dir, format).arg("--bundle").output().unwrap();
                if name == "b" {
                    assert_eq!(
                        run.status.code(),
                        Some(2),
                        "step {step}: bundle {}",
                        stdout(&run)
                    );
                }
                if let Some(fp) = fingerprint(&run) {
                    assert!(root.path().join(format!("{name}.tar.gz")).is_file());
                    last.insert(name, fp);
                }
            }
            // A rule error commits nothing.
            4 => {
                let run = audit(&dir, format)
                    .args(["--policies", path(bad_rules.path())])
                    .output()
                    .unwrap();
                assert_eq!(run.status.code(), Some(2), "step {step}: {}", stderr(&run));
                assert!(fingerprint(&run).is_none());
            }
            // The inventory edited while the audit reads it: the audit is
            // whole and verifies, or it is refused and nothing moves.
            5 => {
                let mut command = Command::new(assert_cmd::cargo::cargo_bin("amiaudit"));
                command.args([
                    "audit",
                    "--inventory",
                    path(&inventory),
                    "--out",
                    path(&dir),
                    "--format",
                    format,
                ]);
                let child = command
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                std::thread::sleep(std::time::Duration::from_millis(rng.random_range(0..300)));
                let mut edited = pristine.clone();
                edited.extend_from_slice(b"\n");
                fs::write(inventory.join("images.jsonl"), &edited).unwrap();
                let run = child.wait_with_output().unwrap();
                fs::write(inventory.join("images.jsonl"), &pristine).unwrap();
                // Refused (the edit seen, or the place not amiaudit's):
                // the checks below find everything as it was.
                if run.status.code() == Some(0)
                    && let Some(fp) = fingerprint(&run)
                {
                    last.insert(name, fp);
                }
            }
            0 => {
                let run = audit(&dir, format).output().unwrap();
                if let Some(fp) = fingerprint(&run) {
                    last.insert(name, fp);
                }
            }
            1 => {
                let child = audit(&dir, format).spawn().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(rng.random_range(20..400)));
                let pid = child.id();
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                let run = child.wait_with_output().unwrap();
                if let Some(fp) = fingerprint(&run) {
                    last.insert(name, fp);
                }
            }
            2 => {
                let (x, y) = std::thread::scope(|s| {
                    let x = s.spawn(|| audit(&dir, format).output().unwrap());
                    let y = s.spawn(|| audit(&dir, "csv").output().unwrap());
                    (x.join().unwrap(), y.join().unwrap())
                });
                // Whichever finished last holds the directory; with the lock
                // at most one ran.
                let done: Vec<String> = [&x, &y].iter().filter_map(|r| fingerprint(r)).collect();
                assert!(done.len() <= 1, "step {step}: two audits completed at once");
                if let Some(fp) = done.into_iter().next() {
                    last.insert(name, fp);
                }
            }
            _ => {
                let run = amiaudit(&["synth", "--out", path(&dir)]);
                if run.status.code() == Some(0) {
                    last.remove(name);
                    assert!(!last.contains_key(name));
                }
            }
        }
        assert_eq!(
            others(root.path()),
            untouched,
            "step {step}: a file outside the audits changed"
        );
        assert_eq!(
            fs::read_to_string(shared.join("notes.md")).unwrap(),
            "mine\n"
        );
        for (name, fp) in &last {
            let run = amiaudit(&["verify", path(&root.path().join(name))]);
            assert_eq!(
                run.status.code(),
                Some(0),
                "step {step}: {name}: {}",
                stdout(&run)
            );
            assert!(
                stdout(&run).contains(fp.as_str()),
                "step {step}: {name} is not the last completed audit"
            );
        }
    }
}

#[test]
fn missing_parent_directories_of_out_are_created() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out/2026/11/acme");
    let run = audit_sample(&out, &["--format", "csv"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(out.join("findings.csv").is_file());
}

/// `verify` while a new audit is swapped in sees the old audit or the new
/// one, whole: never "not intact".
#[test]
fn verify_racing_a_swap_sees_one_audit_whole() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    assert_eq!(
        audit_sample(&out, &["--format", "csv"]).status.code(),
        Some(0)
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let verifier = s.spawn(|| {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || runs == 0 {
                let run = amiaudit(&["verify", path(&out)]);
                assert_eq!(run.status.code(), Some(0), "{}", stdout(&run));
                runs += 1;
            }
            runs
        });
        for format in ["csv", "json", "csv,markdown", "junit", "csv", "json"] {
            let run = audit_sample(&out, &["--format", format]);
            assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(verifier.join().unwrap() > 0);
    });
}

/// A resource named like a shell command becomes one quoted word in every
/// remediation command, in every format.
#[test]
fn remediation_commands_are_shell_quoted_in_every_format() {
    let inv = tempfile::tempdir().unwrap();
    save(&hostile_inventory("acct", "img", ""), inv.path());
    let out = tempfile::tempdir().unwrap();
    let run = audit_inventory(inv.path(), out.path(), &["--format", "all"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let quoted = format!("--auto-scaling-group-names '{HOSTILE_GROUP}'");
    let raw = format!("--auto-scaling-group-names {HOSTILE_GROUP}");
    let rows = csv_rows(&out.path().join("findings.csv"));
    let row = rows
        .iter()
        .find(|r| r["rule_id"] == "ASG-LAUNCHES-OUTDATED-AMI" && r["status"] == "fail")
        .expect("the hostile group fails");
    assert!(
        row["remediation"].contains(&quoted),
        "{}",
        row["remediation"]
    );
    for file in ["findings.json", "findings.ocsf.jsonl", "findings.asff.json"] {
        let text = fs::read_to_string(out.path().join(file)).unwrap();
        // JSON escapes nothing of the quotes: the text holds the word as is.
        assert!(text.contains(&quoted), "{file}");
        assert!(!text.contains(&raw), "{file}: an unquoted command");
    }
    // The report's script fills the command from shell words.
    let html = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        html.contains(&format!("'{}'", HOSTILE_GROUP.replace('<', "\\u003c"))),
        "report.html carries no shell word for the group"
    );
}

/// What a review planted beside and inside outputs: a link or a user's
/// file at the lock's name, a link at a listed name, a temporary left by a
/// killed run, a parent made on the way through `..`.
#[test]
fn planted_locks_links_and_leftovers_are_never_followed_or_lost() {
    use std::os::unix::fs::symlink;
    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim");
    fs::create_dir(&victim).unwrap();
    let csv = ["--format", "csv"];

    // A link at the lock's name: refused, nothing made through it, the
    // link left.
    let lock = root.path().join(".o.amiaudit-lock");
    symlink(victim.join("created"), &lock).unwrap();
    let run = audit_sample(&root.path().join("o"), &csv);
    refused(&run, "is not an amiaudit lock");
    assert!(!victim.join("created").exists());
    assert!(
        fs::symlink_metadata(&lock)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fs::remove_file(&lock).unwrap();
    // A user's file of that name: refused, kept as it was.
    fs::write(&lock, "my notes\n").unwrap();
    refused(
        &audit_sample(&root.path().join("o"), &csv),
        "is not an amiaudit lock",
    );
    assert_eq!(fs::read_to_string(&lock).unwrap(), "my notes\n");
    // Even an empty one.
    fs::write(&lock, "").unwrap();
    refused(
        &audit_sample(&root.path().join("o"), &csv),
        "is not an amiaudit lock",
    );
    assert!(lock.is_file());
    fs::remove_file(&lock).unwrap();

    // A listed file replaced by a link: not amiaudit's, refused before work.
    let out = root.path().join("o");
    assert_eq!(audit_sample(&out, &csv).status.code(), Some(0));
    fs::write(victim.join("keep.txt"), "precious\n").unwrap();
    fs::remove_file(out.join("findings.csv")).unwrap();
    symlink(victim.join("keep.txt"), out.join("findings.csv")).unwrap();
    refused(
        &audit_sample(&out, &csv),
        "`findings.csv` is not the file amiaudit wrote",
    );
    assert!(
        fs::symlink_metadata(out.join("findings.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fs::remove_file(out.join("findings.csv")).unwrap();

    // A temporary a killed run left beside the output goes with the next run.
    let leftover = root.path().join(".o.amiaudit-tmp-x1y2z3");
    fs::write(&leftover, "half a bundle").unwrap();
    let run = audit_sample(&out, &["--format", "csv", "--bundle"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(!leftover.exists());
    assert!(root.path().join("o.tar.gz").is_file());

    // `new/../o2`: `new` is not a parent of the output and does not stay;
    // `o/../o3` does not lie inside the audit `o`.
    let run = audit_sample(&root.path().join("new/../o2"), &csv);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(!root.path().join("new").exists());
    let run = audit_sample(&root.path().join("o/../o3"), &csv);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(root.path().join("o3/findings.csv").is_file());
    assert_eq!(
        fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "precious\n"
    );
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 1);

    // An edited manifest (verify: inconsistent) is the user's now: refused.
    let manifest = root.path().join("o3/manifest.json");
    let mut edited: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).unwrap()).unwrap();
    edited["scope"]["organization_id"] = "o-edited".into();
    fs::write(&manifest, edited.to_string()).unwrap();
    refused(
        &audit_sample(&root.path().join("o3"), &csv),
        "says what the audit does not hold",
    );
    assert!(fs::read_to_string(&manifest).unwrap().contains("o-edited"));
}

/// The audit lists what it wrote in one order, whichever thread wrote
/// which file first: the reports in format order, the retirement plan after
/// them, then the findings CSVs and the manifest.
#[test]
fn written_files_are_listed_reports_then_retirement_plan_then_csvs() {
    let root = tempfile::tempdir().unwrap();
    let run = audit_sample(&root.path().join("out"), &["--format", "all"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let wrote: Vec<String> = stdout(&run)
        .lines()
        .filter_map(|l| l.strip_prefix("wrote "))
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let at = |name: &str| {
        wrote
            .iter()
            .position(|w| w == name)
            .unwrap_or_else(|| panic!("{name} not listed: {wrote:?}"))
    };
    assert!(at("report.html") < at("findings.json"), "{wrote:?}");
    assert!(at("findings.asff.json") < at("retirement.csv"), "{wrote:?}");
    assert!(at("retirement.csv") < at("findings.csv"), "{wrote:?}");
    assert_eq!(wrote.last().map(String::as_str), Some("manifest.json"));
}

/// The default formats are what an audit's readers keep; OCSF and ASFF are
/// written when asked, and `all` writes every one.
#[test]
fn default_formats_leave_the_siem_files_to_be_asked_for() {
    let root = tempfile::tempdir().unwrap();
    let written = |name: &str, extra: &[&str]| {
        let out = root.path().join(name);
        let run = audit_sample(&out, extra);
        assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
        let mut files: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("findings-") && n != "inventory" && n != "policies")
            .collect();
        files.sort();
        files
    };
    assert_eq!(
        written("default", &[]),
        [
            "findings.csv",
            "findings.json",
            "junit.xml",
            "manifest.json",
            "report.html",
            "retirement.csv",
            "summary.md"
        ]
    );
    let all = written("all", &["--format", "all"]);
    assert!(
        all.contains(&"findings.ocsf.jsonl".to_string())
            && all.contains(&"findings.asff.json".to_string()),
        "{all:?}"
    );
    assert_eq!(
        written("asked", &["--format", "ocsf"]),
        ["findings.ocsf.jsonl", "manifest.json"]
    );
    // `all` in the config file too; a wrong name is one line naming it.
    let config = root.path().join("amiaudit.toml");
    std::fs::write(&config, "[audit]\nformats = [\"all\"]\n").unwrap();
    let from_config = written("config", &["--config", path(&config)]);
    assert!(
        from_config.contains(&"findings.asff.json".to_string()),
        "{from_config:?}"
    );
    std::fs::write(&config, "[audit]\nformats = [\"pdf\"]\n").unwrap();
    let bad = audit_sample(&root.path().join("bad"), &["--config", path(&config)]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("`pdf` is not one of"),
        "{}",
        stderr(&bad)
    );
    assert_eq!(stderr(&bad).trim().lines().count(), 1, "{}", stderr(&bad));
}
