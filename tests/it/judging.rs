//! Inventories that load must be judged right: each case here once loaded
//! and was judged wrong (a failed region judged, an account vanished,
//! duplicate rows, "not known" read as "no"), or crashed.
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use polars::prelude::*;

use super::bad_input::audit_error;
use super::support::*;

fn table_text(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap()
}

#[test]
fn a_scan_status_outside_the_vocabulary_is_refused_with_file_and_line() {
    let dir = broken_copy();
    let text = table_text(dir.path(), "regions.jsonl");
    let broken = text.replacen(
        "\"scan_status\":\"failed\"",
        "\"scan_status\":\"FAILED\"",
        1,
    );
    assert_ne!(text, broken);
    let line = broken.lines().position(|l| l.contains("FAILED")).unwrap() + 1;
    rewrite_table(dir.path(), "regions.jsonl", &broken);
    let err = audit_error(dir.path());
    assert!(
        err.contains(&format!(
            "regions.jsonl:{line}: column `scan_status`: `FAILED` is not one of"
        )),
        "{err}"
    );
}

#[test]
fn an_account_in_scope_without_rows_is_a_coverage_gap() {
    let dir = broken_copy();
    // Drop every row of one account from every table.
    let gone = "210006000222";
    for entry in fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".jsonl") {
            let text = fs::read_to_string(&path).unwrap();
            let kept: String = text
                .lines()
                .filter(|l| !l.contains(&format!("\"account_id\":\"{gone}\"")))
                .map(|l| format!("{l}\n"))
                .collect();
            rewrite_table(dir.path(), &name, &kept);
        }
    }
    let out = tempfile::tempdir().unwrap();
    let run = amiaudit(&[
        "audit",
        "--inventory",
        path(dir.path()),
        "--out",
        path(&out.path().join("a")),
        "--fail-on-incomplete",
    ]);
    let text = stdout(&run);
    assert_eq!(run.status.code(), Some(3), "{text}{}", stderr(&run));
    assert!(text.contains("coverage: 12 accounts"), "{text}");
    let rows = csv_rows(&out.path().join("a/findings.csv"));
    let of_gone: Vec<&std::collections::BTreeMap<String, String>> =
        rows.iter().filter(|r| r["account_id"] == gone).collect();
    assert!(!of_gone.is_empty(), "the account is reported");
    assert!(
        of_gone.iter().all(|r| r["status"] == "unknown"),
        "{of_gone:?}"
    );
}

#[test]
fn duplicate_rows_are_refused_with_both_lines() {
    let dir = broken_copy();
    let text = table_text(dir.path(), "image_tags.jsonl");
    let owner = text
        .lines()
        .position(|l| l.contains("\"key\":\"Owner\""))
        .unwrap();
    let line = text.lines().nth(owner).unwrap().to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(owner + 1, &line);
    lines.insert(owner + 1, &line);
    let broken: String = lines.iter().map(|l| format!("{l}\n")).collect();
    rewrite_table(dir.path(), "image_tags.jsonl", &broken);
    let err = audit_error(dir.path());
    assert!(
        err.contains(&format!("image_tags.jsonl:{}: duplicate row", owner + 2))
            && err.contains(&format!("as line {}", owner + 1)),
        "{err}"
    );
}

/// AMI-AWS-MANAGED-KEY's status per image in an audit of `dir`.
fn managed_key_results(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let out = tempfile::tempdir().unwrap();
    let run = amiaudit(&[
        "audit",
        "--inventory",
        path(dir),
        "--out",
        path(out.path()),
        "--format",
        "csv",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    csv_rows(&out.path().join("findings.csv"))
        .into_iter()
        .filter(|r| r["rule_id"] == "AMI-AWS-MANAGED-KEY" && r["resource_type"] == "ami")
        .map(|r| (r["resource_id"].clone(), r["status"].clone()))
        .collect()
}

#[test]
fn a_key_whose_manager_is_not_known_is_not_customer_managed() {
    let before = managed_key_results(&sample());
    let images = table_text(&sample(), "images.jsonl").lines().count();
    assert_eq!(before.len(), images, "every AMI gets a result");
    let dir = broken_copy();
    let text = table_text(dir.path(), "kms_keys.jsonl");
    let broken = text
        .replace(",\"key_manager\":\"AWS\"", "")
        .replace("\"alias\":\"alias/aws/ebs\",", "");
    assert_ne!(text, broken);
    rewrite_table(dir.path(), "kms_keys.jsonl", &broken);
    let after = managed_key_results(dir.path());
    let failed: Vec<&String> = before
        .iter()
        .filter(|(_, s)| *s == "fail")
        .map(|(id, _)| id)
        .collect();
    assert!(failed.len() >= 40, "{failed:?}");
    for id in failed {
        assert_eq!(
            after[id], "unknown",
            "{id}: a key nobody described is not customer-managed"
        );
    }
}

/// Writes `df` over an inventory's parquet table and fixes the manifest.
fn replace_parquet(dir: &Path, table: &str, df: &mut DataFrame) {
    let path = dir.join(format!("{table}.parquet"));
    let file = fs::File::create(&path).unwrap();
    polars_io::parquet::write::ParquetWriter::new(file)
        .finish(df)
        .unwrap();
    let digest = amiaudit::inventory::sha256_file(&path).unwrap();
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["tables"][table]["sha256"] = digest.into();
    fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

fn parquet_inventory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = amiaudit(&["synth", "--out", path(dir.path())]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    dir
}

fn read_parquet(dir: &Path, table: &str) -> DataFrame {
    use polars_io::SerReader;
    let file = fs::File::open(dir.join(format!("{table}.parquet"))).unwrap();
    polars_io::parquet::read::ParquetReader::new(file)
        .finish()
        .unwrap()
}

#[test]
fn a_timestamp_near_the_end_of_time_is_refused_not_wrapped() {
    let dir = parquet_inventory();
    let mut images = read_parquet(dir.path(), "images");
    let n = images.height();
    let mut ms: Vec<Option<i64>> = vec![Some(1_700_000_000_000); n];
    ms[3] = Some(i64::MIN + 1_000);
    let column = Series::new("creation_date".into(), ms)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    images.with_column(column.into_column()).unwrap();
    replace_parquet(dir.path(), "images", &mut images);
    let err = audit_error(dir.path());
    assert!(
        err.contains("images.parquet: row 4: column `creation_date`: timestamp outside 1970-01-01..2200-01-01"),
        "{err}"
    );
}

#[test]
fn dictionary_encoded_strings_and_narrow_integers_load() {
    let dir = parquet_inventory();
    let out = tempfile::tempdir().unwrap();
    let before = amiaudit(&[
        "audit",
        "--inventory",
        path(dir.path()),
        "--out",
        path(&out.path().join("before")),
        "--format",
        "csv",
    ]);
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    let mut images = read_parquet(dir.path(), "images");
    let state = images
        .column("state")
        .unwrap()
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap();
    images.with_column(state).unwrap();
    let mut devices = read_parquet(dir.path(), "image_block_devices");
    let size = devices
        .column("volume_size")
        .unwrap()
        .cast(&DataType::Int32)
        .unwrap();
    devices.with_column(size).unwrap();
    replace_parquet(dir.path(), "images", &mut images);
    replace_parquet(dir.path(), "image_block_devices", &mut devices);
    let after = amiaudit(&[
        "audit",
        "--inventory",
        path(dir.path()),
        "--out",
        path(&out.path().join("after")),
        "--format",
        "csv",
    ]);
    assert_eq!(after.status.code(), Some(0), "{}", stderr(&after));
    assert_eq!(
        fs::read(out.path().join("before/findings.csv")).unwrap(),
        fs::read(out.path().join("after/findings.csv")).unwrap(),
        "the same facts, judged the same"
    );
}

#[test]
fn an_out_of_range_timestamp_in_a_query_is_one_line() {
    for format in ["table", "csv", "json"] {
        let out = amiaudit(&[
            "query",
            "--inventory",
            path(&sample()),
            "--format",
            format,
            "SELECT CAST(9223372036854775807 AS TIMESTAMP) AS far FROM audit",
        ]);
        assert_eq!(out.status.code(), Some(2), "{format}: {}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{format}: {err}");
        assert!(err.starts_with("error: query: "), "{format}: {err}");
        assert!(!err.contains("panicked"), "{format}: {err}");
    }
}

#[test]
fn a_rule_that_breaks_the_query_engine_is_that_rule_s_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("far.yaml"),
        "id: FAR-FUTURE\ntitle: far\nseverity: low\nresource_type: ami\ndescription: d\nremediation:\n  text: t\nevidence: [ec2:DescribeImages]\nquery: |\n  SELECT account_id, region, image_id AS resource_id, name AS resource_name, 'fail' AS status,\n         CAST(CAST(253402300800000000 AS TIMESTAMP) AS VARCHAR) AS reason\n  FROM images\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = audit_sample(out.path(), &["--policies", path(dir.path())]);
    let err = stderr(&run);
    assert!(!err.contains("panicked"), "{err}");
    // Either the engine copes or the rule is reported; never a crash.
    assert!(matches!(run.status.code(), Some(0) | Some(2)), "{err}");
}

/// A rule that could not run on real data (a cast the dry run cannot see
/// fail) is an error case in junit.xml and a line at the top of
/// summary.md; diff calls its earlier failures `not-seen`, so Security Hub
/// archives none of them.
#[test]
fn a_rule_that_could_not_run_is_said_in_every_format() {
    use amiaudit::render::{self, OutputFormat, ReportContext};
    let inventory = amiaudit::inventory::load(&sample()).unwrap();
    let mut pack = amiaudit::settings::load_pack(&[]).unwrap();
    let bad = amiaudit::policy::parse_rule(
        std::path::Path::new("custom/ami-name-number.yaml"),
        "id: AMI-NAME-NUMBER\ntitle: Veraltetes AMI für Produktion\nseverity: low\nresource_type: ami\ndescription: names are numbers\nremediation:\n  text: rename\nevidence:\n  - ec2:DescribeImages\nfrom: images\nfail_when: CAST(name AS BIGINT) > 0\nreason: \"Name {name} ist keine Zahl\"\n",
    )
    .unwrap();
    pack.rules.push(bad);
    let evaluation = amiaudit::evaluate::evaluate(
        &inventory,
        &pack.rules,
        &amiaudit::policy::ParamOverrides::new(),
    );
    assert_eq!(
        evaluation.rule_errors.len(),
        1,
        "{:?}",
        evaluation.rule_errors
    );
    let summary = amiaudit::results::summarize(&inventory, &evaluation, &pack.rules).unwrap();
    let meta = render::audit_meta(&inventory, &pack, None).unwrap();
    let context = ReportContext::build(&inventory, &pack, &evaluation, summary, meta).unwrap();
    let dir = tempfile::tempdir().unwrap();
    render::write_reports(
        dir.path(),
        &[OutputFormat::Junit, OutputFormat::Markdown],
        false,
        &evaluation,
        &context,
        None,
    )
    .unwrap();
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"AMI-NAME-NUMBER: Veraltetes AMI für Produktion\" tests=\"1\" failures=\"0\" errors=\"1\"")
            && junit.contains("<error type=\"rule-error\""),
        "{junit}"
    );
    let markdown = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        markdown.contains("**1 rule(s) could not run**")
            && markdown.contains("AMI\\-NAME\\-NUMBER"),
        "{markdown}"
    );
    // Its failures of an earlier audit were not looked at again.
    let mut old = context.document();
    old.findings.push(amiaudit::findings::Finding {
        rule_id: "AMI-NAME-NUMBER".into(),
        severity: amiaudit::policy::Severity::Low,
        status: amiaudit::evaluate::Status::Fail,
        account_id: "210002000074".into(),
        account_name: "".into(),
        region: "us-east-1".into(),
        resource_type: "ami".into(),
        resource_id: "ami-0123".into(),
        resource_name: "".into(),
        reason: "".into(),
        remediation: "".into(),
        waiver_reason: "".into(),
        waiver_expires: "".into(),
        first_observed_at: "".into(),
    });
    let diff = amiaudit::diff::compare(&old, &context.document());
    assert_eq!((diff.counts.resolved, diff.counts.not_seen), (0, 1));
}

/// The sample's images table as `n` rows (distinct ids) whose descriptions
/// are `description(row)`, written over the Parquet inventory in `dir`
/// with the manifest declaring `declared` rows.
fn plant_images(dir: &Path, n: usize, declared: usize, description: impl Fn(usize) -> String) {
    let images = read_parquet(dir, "images");
    let mut many = images.new_from_index(0, n);
    let descriptions: Vec<String> = (0..n).map(description).collect();
    many.with_column(Series::new("description".into(), descriptions).into_column())
        .unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("ami-{i:017x}")).collect();
    many.with_column(Series::new("image_id".into(), ids).into_column())
        .unwrap();
    replace_parquet(dir, "images", &mut many);
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["tables"]["images"]["rows"] = declared.into();
    fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

/// A 30 KB file of 20,000 rows sharing one dictionary-encoded 200 KB
/// description took 17 s and 840 MB (a larger one 12 GB): rows the
/// manifest does not declare and pages that inflate far beyond the file
/// are refused from the footer, before any page is decoded; text longer
/// than any AWS value is refused.
#[test]
fn a_small_parquet_file_cannot_inflate_into_a_large_audit() {
    let dir = parquet_inventory();
    plant_images(dir.path(), 20_000, 309, |i| format!("build {i}"));
    let err = audit_error(dir.path());
    assert!(
        err.contains("images.parquet: holds more than the 309 rows manifest.json says"),
        "{err}"
    );

    let dir = parquet_inventory();
    plant_images(dir.path(), 3, 3, |_| "A".repeat(200_000));
    let err = audit_error(dir.path());
    assert!(
        err.contains("images.parquet: row 1: column `description`: 200000 bytes of text"),
        "{err}"
    );

    // Pages that inflate far beyond the file: 6,000 distinct 15 KB texts.
    let dir = parquet_inventory();
    plant_images(dir.path(), 6_000, 6_000, |i| {
        format!("{i:06}{}", "B".repeat(15_000))
    });
    let err = audit_error(dir.path());
    assert!(err.contains("images.parquet: decompresses to"), "{err}");
}

/// Loading gives every table with an `image_id` (as the schema lists them)
/// an `image_key`, one number per id across all of them: rules join on it
/// as on the id itself.
#[test]
fn image_keys_stand_for_the_same_ids_in_every_table() {
    use std::collections::HashMap;
    let inventory = amiaudit::inventory::load(&sample()).unwrap();
    let mut key_of: HashMap<String, u32> = HashMap::new();
    let mut id_of: HashMap<u32, String> = HashMap::new();
    let mut tables = 0;
    for derived in amiaudit::inventory::schema::DERIVED {
        if derived.name != "image_key" {
            continue;
        }
        let df = inventory.table(derived.table).unwrap();
        let ids = df.column("image_id").unwrap().str().unwrap().clone();
        let keys = df.column("image_key").unwrap().u32().unwrap().clone();
        for (id, key) in ids.iter().zip(keys.iter()) {
            assert_eq!(id.is_none(), key.is_none(), "{}", derived.table);
            if let (Some(id), Some(key)) = (id, key) {
                assert_eq!(*key_of.entry(id.to_string()).or_insert(key), key, "{id}");
                assert_eq!(id_of.entry(key).or_insert_with(|| id.to_string()), id);
            }
        }
        tables += 1;
    }
    assert_eq!(tables, 18);
    assert!(key_of.len() > 10, "{}", key_of.len());
}

/// Each result of a rule over the sample: (resource id, status, reason).
type Judged = Vec<(String, String, String)>;

/// Each result of `rule_yaml` over the sample, with the images' states by
/// id.
fn judged_with_states(rule_yaml: &str) -> (Judged, BTreeMap<String, Option<String>>) {
    let inventory = amiaudit::inventory::load(&sample()).unwrap();
    let rule = amiaudit::policy::parse_rule(Path::new("custom/reasons.yaml"), rule_yaml).unwrap();
    let evaluation = amiaudit::evaluate::evaluate(
        &inventory,
        &[rule],
        &amiaudit::policy::ParamOverrides::new(),
    );
    assert!(
        evaluation.rule_errors.is_empty(),
        "{:?}",
        evaluation.rule_errors
    );
    let rows =
        amiaudit::inventory::text_rows(&evaluation.results, ["resource_id", "status", "reason"])
            .unwrap()
            .map(|[id, status, reason]| {
                let text = |cell: Option<&str>| cell.unwrap_or("").to_string();
                (text(id), text(status), text(reason))
            })
            .collect();
    let images = inventory.table("images").unwrap();
    let states = amiaudit::inventory::text_rows(images, ["image_id", "state"])
        .unwrap()
        .map(|[id, state]| (id.unwrap().to_string(), state.map(str::to_string)))
        .collect();
    (rows, states)
}

fn reasons_rule(query: &str) -> String {
    let query: String = query.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "id: REASONS\ntitle: t\nseverity: low\nresource_type: ami\ndescription: d\nremediation:\n  text: t\nquery: |\n{query}"
    )
}

/// The engine builds a query's reasons only for the rows that keep one
/// (evaluate/reasons.rs): each reason still lands on its own row, in a
/// `UNION ALL`, where a branch's reason is one literal, and where the
/// query's rows come out of results order; and a pass never keeps one.
#[test]
fn reasons_built_apart_land_on_their_own_rows() {
    let branches = "SELECT account_id, region, image_id AS resource_id, name AS resource_name,
       CASE WHEN state = 'available' THEN 'pass' ELSE 'fail' END AS status,
       concat('state ', state, ' of ', image_id) AS reason
FROM images WHERE state IS NOT NULL
UNION ALL
SELECT account_id, region, image_id AS resource_id, name AS resource_name,
       'unknown' AS status, 'no state' AS reason
FROM images WHERE state IS NULL";
    let reversed = "SELECT account_id, region, image_id AS resource_id, name AS resource_name,
       CASE WHEN state = 'available' THEN 'pass' ELSE 'fail' END AS status,
       concat('state ', state, ' of ', image_id) AS reason
FROM images WHERE state IS NOT NULL
ORDER BY image_id DESC";
    for query in [branches, reversed] {
        let (rows, states) = judged_with_states(&reasons_rule(query));
        let mut failed = 0;
        for (id, status, reason) in &rows {
            let Some(state) = states.get(id) else {
                continue;
            };
            match (status.as_str(), state) {
                ("pass", _) => assert_eq!(reason, "", "{id}"),
                ("fail", Some(state)) => {
                    failed += 1;
                    assert_eq!(reason, &format!("state {state} of {id}"), "{query}");
                }
                ("unknown", None) => {
                    assert!(reason == "no state" || !reason.is_empty(), "{id}")
                }
                _ => {}
            }
        }
        assert!(failed > 0, "no image failed: {rows:?}");
        assert!(rows.iter().any(|(_, s, _)| s == "pass"));
    }
}

/// A reason that reads other rows (a window) is not built apart: built
/// for the failing rows alone it would count them, not every image.
#[test]
fn a_reason_that_reads_other_rows_is_built_among_all_of_them() {
    let query = "SELECT account_id, region, image_id AS resource_id, name AS resource_name,
       CASE WHEN state = 'available' THEN 'pass' ELSE 'fail' END AS status,
       concat('one of ', CAST(COUNT(image_id) OVER () AS VARCHAR)) AS reason
FROM images WHERE state IS NOT NULL";
    let (rows, states) = judged_with_states(&reasons_rule(query));
    let with_state = states.values().filter(|s| s.is_some()).count();
    let failed: Vec<_> = rows.iter().filter(|(_, s, _)| s == "fail").collect();
    assert!(!failed.is_empty() && failed.len() < with_state);
    for (id, _, reason) in failed {
        assert_eq!(reason, &format!("one of {with_state}"), "{id}");
    }
}

/// A `UNION ALL` gives every branch the column types wide enough for all:
/// an integer reason next to a float one reads as a float, however
/// the reasons are built.
#[test]
fn a_union_s_reasons_read_as_the_union_s_type() {
    let query = "SELECT account_id, region, image_id AS resource_id, name AS resource_name,
       CASE WHEN age_days > 90 THEN 'fail' ELSE 'pass' END AS status,
       age_days AS reason
FROM images WHERE region = 'us-east-1'
UNION ALL
SELECT account_id, region, image_id AS resource_id, name AS resource_name,
       CASE WHEN age_days > 90 THEN 'fail' ELSE 'pass' END AS status,
       age_days * 1.5 AS reason
FROM images WHERE region <> 'us-east-1'";
    let (rows, _) = judged_with_states(&reasons_rule(query));
    let failed: Vec<_> = rows.iter().filter(|(_, s, _)| s == "fail").collect();
    assert!(failed.len() > 10, "{rows:?}");
    for (id, _, reason) in failed {
        assert!(
            reason.contains('.') && reason.parse::<f64>().is_ok(),
            "{id}: {reason}"
        );
    }
}
