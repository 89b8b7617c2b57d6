//! `amiaudit audit` on the bundled sample organization.
use super::support::*;
use amiaudit::synth::{Expect, PLANTED};

#[test]
fn sample_org_fails_every_planted_finding_and_passes_the_rest() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(out_dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = csv_rows(&out_dir.path().join("findings.csv"));
    for p in PLANTED {
        let (rule, resource, why) = (p.rule, p.resource, p.why);
        let statuses = status_of(&rows, rule, resource);
        match p.expect {
            Expect::Fail => assert_eq!(statuses, ["fail"], "{rule} on {resource} ({why})"),
            Expect::Unknown => assert!(
                statuses.contains(&"unknown".to_string()),
                "{rule} on {resource} ({why}): {statuses:?}"
            ),
        }
    }
    // Every rule of the pack has both passing and failing resources in the sample.
    let rules: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["rule_id"].as_str()).collect();
    assert!(
        rules.len() >= 29,
        "only {} rules produced results",
        rules.len()
    );
    for rule in &rules {
        for status in ["pass", "fail"] {
            assert!(
                rows.iter()
                    .any(|r| r["rule_id"] == *rule && r["status"] == status),
                "{rule} has no {status} result in the sample"
            );
        }
    }
    // The denied account is unknown everywhere, never pass.
    let denied: Vec<_> = rows
        .iter()
        .filter(|r| r["account_name"] == "acme-sandbox-bob")
        .collect();
    assert!(!denied.is_empty());
    assert!(
        denied.iter().all(|r| r["status"] == "unknown"),
        "denied account judged"
    );
    assert!(
        denied
            .iter()
            .all(|r| r["reason"].contains("sts:AssumeRole AccessDenied"))
    );
    // The region that is not opted in is out of scope: no result at all.
    assert!(
        !rows
            .iter()
            .any(|r| r["account_name"] == "acme-sandbox-alice" && r["region"] == "ap-southeast-1")
    );

    let summary = stdout(&out);
    assert!(summary.contains("coverage incomplete"), "{summary}");
    assert!(
        summary.contains("acme-legacy-erp"),
        "worst accounts list the legacy account:\n{summary}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("findings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["audit"]["collected_at"], "2026-11-20T00:00:00Z");
    let worst = &json["summary"]["accounts"][0];
    assert_eq!(worst["account_name"], "acme-sandbox-bob");
    assert_eq!(worst["grade"], "?", "an unscanned account gets no grade");
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(html.contains("ami-0a11ce5ec7e7pub1") && html.contains("AMI-PUBLIC"));
}

#[test]
fn fail_on_sets_the_exit_code() {
    let out_dir = tempfile::tempdir().unwrap();
    let o = path(out_dir.path());
    let s = sample();
    let run = |fail_on: &str| {
        amiaudit(&[
            "audit",
            "--inventory",
            path(&s),
            "--out",
            o,
            "--fail-on",
            fail_on,
        ])
    };
    assert_eq!(run("critical").status.code(), Some(1));
    assert_eq!(run("info").status.code(), Some(1));
    assert_eq!(run("none").status.code(), Some(0));

    // A clean inventory: nothing fails at any threshold.
    let clean = tempfile::tempdir().unwrap();
    save(&inventory(vec![]), clean.path());
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(clean.path()),
        "--out",
        o,
        "--fail-on",
        "info",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Only a low failure: --fail-on high passes, --fail-on low fails.
    let low = tempfile::tempdir().unwrap();
    save(
        &inventory(vec![
            (
                "images",
                vec![
                    ("account_id", "111111111111".into()),
                    ("region", "eu-west-1".into()),
                    ("image_id", "ami-1".into()),
                    ("name", "Bad Name".into()),
                    ("state", "available".into()),
                    ("public", false.into()),
                    ("imds_support", "v2.0".into()),
                    ("deprecation_time", now().into()),
                ],
            ),
            (
                "image_tags",
                vec![
                    ("account_id", "111111111111".into()),
                    ("region", "eu-west-1".into()),
                    ("image_id", "ami-1".into()),
                    ("key", "CreatedBy".into()),
                    ("value", "x".into()),
                ],
            ),
        ]),
        low.path(),
    );
    let run = |f: &str| {
        amiaudit(&[
            "audit",
            "--inventory",
            path(low.path()),
            "--out",
            o,
            "--fail-on",
            f,
            "--policies",
            path(&repo().join("policies/governance")),
        ])
    };
    let high = run("high");
    assert_eq!(high.status.code(), Some(0), "{}", stderr(&high));
    assert_eq!(run("low").status.code(), Some(1));
}

#[test]
fn same_inputs_give_byte_identical_reports() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [&a, &b] {
        let out = audit_sample(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(0));
    }
    let files: Vec<String> = walkdir::WalkDir::new(a.path())
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(a.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(files.len() >= 12, "{files:?}");
    for file in &files {
        let x = std::fs::read(a.path().join(file)).unwrap();
        let y = std::fs::read(b.path().join(file)).unwrap();
        assert!(x == y, "{file} differs between two runs");
    }
}

#[test]
fn aws_strings_are_escaped_in_html_and_neutralised_in_csv() {
    let inv_dir = tempfile::tempdir().unwrap();
    let payload = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let formula = "=HYPERLINK(\"http://evil.example\",\"x\")";
    save(
        &hostile_inventory(payload, formula, payload),
        inv_dir.path(),
    );
    let out_dir = tempfile::tempdir().unwrap();
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(inv_dir.path()),
        "--out",
        path(out_dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(!html.contains("<script>alert"), "raw script tag in report");
    assert!(!html.contains("<img src=x"), "raw img tag in report");
    // Server-rendered text (account tables, chart labels) is entity-escaped ...
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "minijinja escape"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "chart label escape"
    );
    // ... and the findings data cannot close its <script> element.
    assert!(
        html.contains("\\u003cscript\\u003ealert(1)"),
        "JSON data escape"
    );
    let csv = std::fs::read_to_string(out_dir.path().join("findings.csv")).unwrap();
    assert!(!csv.contains(",=HYPERLINK"), "formula cell not neutralised");
    assert!(csv.contains("'=HYPERLINK"));
}

#[test]
fn sample_readme_lists_the_planted_resources_as_synth_plants_them() {
    let readme = std::fs::read_to_string(repo().join("sample-data/README.md")).unwrap();
    let (fails, unknowns) = amiaudit::synth::markdown_tables();
    for table in [fails, unknowns] {
        assert!(
            readme.contains(&table),
            "sample-data/README.md must hold this table as is (from synth::PLANTED):\n{table}"
        );
    }
}

/// A template of one's own reads every rule's findings: each one, in
/// results order, with its fields (they are handed to templates on demand,
/// not converted up front).
#[test]
fn a_template_reads_each_rules_findings() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("report.html"),
        "{% for r in rules %}{% for f in r.findings %}[{{ f.rule_id }}|{{ f.resource_id }}|{{ f.status }}]\n{% endfor %}{% endfor %}\
         count={{ rules | map(attribute='findings') | map('length') | sum }} \
         first={{ rules[0].findings[0].account_id if rules[0].findings else 'none' }}",
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(
        out_dir.path(),
        &[
            "--format",
            "html,json",
            "--templates",
            path(templates.path()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    let document: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("findings.json")).unwrap(),
    )
    .unwrap();
    let findings = document["findings"].as_array().unwrap();
    assert!(findings.len() > 100, "the sample has many findings");
    let expected: String = findings
        .iter()
        .map(|f| {
            format!(
                "[{}|{}|{}]\n",
                f["rule_id"].as_str().unwrap(),
                // minijinja's HTML escaping of `/` (ARNs)
                f["resource_id"].as_str().unwrap().replace('/', "&#x2f;"),
                f["status"].as_str().unwrap()
            )
        })
        .collect();
    let (listed, tail) = html.split_at(expected.len());
    assert_eq!(listed, expected);
    assert!(
        tail.contains(&format!("count={}", findings.len())),
        "{tail}"
    );
    assert!(!tail.contains("first=none"), "{tail}");
}

#[test]
fn templates_dir_overrides_one_file_at_a_time() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("report.css"),
        "body { background: #123456; }",
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(
        out_dir.path(),
        &["--format", "html", "--templates", path(templates.path())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(html.contains("#123456"), "custom stylesheet used");
    assert!(
        html.contains("Executive summary"),
        "built-in report.html still used"
    );

    std::fs::write(
        templates.path().join("report.html"),
        "<p>{{ nosuch.value }}</p>",
    )
    .unwrap();
    let out = audit_sample(
        out_dir.path(),
        &["--format", "html", "--templates", path(templates.path())],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("report.html:1: template error"), "{err}");

    // A template that is a link is refused: it could land any readable
    // file (a key, a password file) in the report.
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("secret.txt"), "TOP-SECRET").unwrap();
    let linked = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        secret.path().join("secret.txt"),
        linked.path().join("report.css"),
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(
        out_dir.path(),
        &["--format", "html", "--templates", path(linked.path())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("report.css: not a regular file"),
        "{}",
        stderr(&out)
    );
    assert!(!out_dir.path().join("report.html").exists());
}

#[test]
fn framework_csvs_hold_the_mapped_rules_with_requirements_and_join_findings_csv() {
    let out_dir = tempfile::tempdir().unwrap();
    let run = audit_sample(out_dir.path(), &["--format", "csv"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let all = csv_rows(&out_dir.path().join("findings.csv"));
    let key = |r: &std::collections::BTreeMap<String, String>| {
        (
            r["rule_id"].clone(),
            r["account_id"].clone(),
            r["region"].clone(),
            r["resource_id"].clone(),
        )
    };
    let status: std::collections::BTreeMap<_, _> =
        all.iter().map(|r| (key(r), r["status"].clone())).collect();
    let path = out_dir.path().join("findings-cis-compute-v1.0.0.csv");
    let header = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        header.lines().next().unwrap(),
        "audit_time,requirements,rule_id,severity,status,account_id,region,resource_type,resource_id,reason,waiver_reason"
    );
    let rows = csv_rows(&path);
    assert!(!rows.is_empty());
    let cis_rules: std::collections::BTreeSet<String> =
        rows.iter().map(|r| r["rule_id"].clone()).collect();
    assert!(cis_rules.contains("AMI-PUBLIC"));
    // A rule with no CIS mapping is not in the CIS file.
    assert!(
        !cis_rules.contains("AMI-NOT-PIPELINE-BUILT"),
        "{cis_rules:?}"
    );
    for row in &rows {
        assert!(!row["requirements"].is_empty());
        assert_eq!(status.get(&key(row)), Some(&row["status"]), "{row:?}");
    }
    let expected = all
        .iter()
        .filter(|r| cis_rules.contains(&r["rule_id"]))
        .count();
    assert_eq!(rows.len(), expected);
}

/// Rules plan their SQL on threads with a stack of their own: with the
/// threads' default stack made small, the whole pack still runs (it
/// overflowed at 1.5 MiB, and under load at the 2 MiB default, before).
#[test]
fn rules_do_not_depend_on_the_default_thread_stack() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("amiaudit")
        .expect("binary built")
        .env("RUST_MIN_STACK", "1048576")
        .args([
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            path(out_dir.path()),
            "--format",
            "json",
        ])
        .output()
        .expect("run amiaudit");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The sample's retirement plan, in every format that carries it: the
/// deprecated payments AMI its legacy instance still runs is kept, naming
/// that instance; every AMI safe to retire is one AMI-UNUSED failed, with
/// its snapshots, deprecated before it is deregistered.
#[test]
fn the_sample_plants_a_retirement_plan() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(out_dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let document: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("findings.json")).unwrap(),
    )
    .unwrap();
    let plan = &document["retirement"];
    let kept = plan["still_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["image_id"] == amiaudit::synth::DEPRECATED_IN_USE)
        .expect("the deprecated payments AMI is kept");
    assert!(
        kept["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "instance" && c["id"] == amiaudit::synth::DEPRECATED_USER),
        "{kept}"
    );
    let rows = csv_rows(&out_dir.path().join("findings.csv"));
    let unused_failures: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| r["rule_id"] == "AMI-UNUSED" && r["status"] == "fail")
        .map(|r| r["resource_id"].clone())
        .collect();
    let safe = plan["safe"].as_array().unwrap();
    assert!(!safe.is_empty(), "the sample has AMIs safe to retire");
    let listed: std::collections::BTreeSet<String> = safe
        .iter()
        .map(|s| s["image_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed, unused_failures,
        "safe is exactly AMI-UNUSED's failures"
    );
    for s in safe {
        let commands: Vec<&str> = s["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let deregister = commands
            .iter()
            .position(|c| c.starts_with("aws ec2 deregister-image"))
            .expect("a deregistration");
        assert_eq!(
            deregister,
            commands.len() - 1,
            "deregistered last: {commands:?}"
        );
        if s["deprecated"] == false {
            assert!(
                commands[0].starts_with("aws ec2 enable-image-deprecation"),
                "deprecated first: {commands:?}"
            );
        }
        assert!(!s["snapshots"].as_array().unwrap().is_empty(), "{s}");
    }
    let csv = csv_rows(&out_dir.path().join("retirement.csv"));
    assert_eq!(
        csv.iter().filter(|r| r["plan"] == "retire").count(),
        safe.len()
    );
    assert!(
        csv.iter()
            .any(|r| r["plan"] == "keep" && r["image_id"] == amiaudit::synth::DEPRECATED_IN_USE)
    );
    let summary = std::fs::read_to_string(out_dir.path().join("summary.md")).unwrap();
    assert!(summary.contains("## Retirement plan"), "{summary}");
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(html.contains("id=\"retire-safe\"") && html.contains("id=\"retire-keep\""));
}
