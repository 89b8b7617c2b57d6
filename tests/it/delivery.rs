//! Delivery against moto server: audits written to S3 (Object Lock
//! retention, manifest last, verify, diff and baselines read back from S3)
//! and findings imported into Security Hub (stable ids, re-import updates,
//! resolved findings archived, failed batches counted); manifests signed
//! with KMS.

use std::path::{Path, PathBuf};

use amiaudit::aws::Connection;
use amiaudit::config::{AuditSection, Config};
use amiaudit::deliver::Location;
use amiaudit::deliver::s3::S3Location;
use amiaudit::deliver::security_hub;
use amiaudit::render::asff::AsffFinding;
use amiaudit::settings::{AuditPlan, AuditRequest};
use aws_sdk_s3::types::{BucketVersioningStatus, ObjectLockEnabled, VersioningConfiguration};

use super::moto::{Moto, Refusing, static_credentials};
use super::support::{path, sample, stderr, stdout};

const BUCKET: &str = "amiaudit-evidence";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.config().await)
            .force_path_style(true)
            .build(),
    )
}

/// Writes `body` at `key` of the test bucket, as someone other than
/// amiaudit would (a planted or replaced object).
fn put(rt: &tokio::runtime::Runtime, moto: &Moto, key: &str, body: Vec<u8>) {
    rt.block_on(async {
        s3(moto)
            .await
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    });
}

/// A bucket as deploy/evidence-bucket.yaml makes it: versioned, and with
/// Object Lock when `locked`.
async fn bucket(moto: &Moto, name: &str, locked: bool) {
    let client = s3(moto).await;
    client
        .create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(locked)
        .send()
        .await
        .unwrap();
    client
        .put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    if locked {
        let config = client
            .get_object_lock_configuration()
            .bucket(name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            config
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled()),
            Some(&ObjectLockEnabled::Enabled)
        );
    }
}

async fn keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3(moto)
        .await
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

fn cli(moto: &Moto, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("amiaudit")
        .unwrap()
        .args(args)
        .args(["--endpoint-url", &moto.endpoint, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap()
}

/// A connection whose calls moto lacks (BatchUpdateFindings) the gap
/// client answers; AssumeRole into `denied` is refused.
fn hub_connection(moto: &Moto, denied: &str) -> Connection {
    let mut c = connection(moto);
    c.http_client = Some(super::moto::MotoGaps::client(denied));
    c
}

fn connection(moto: &Moto) -> Connection {
    let mut c = Connection::new();
    c.endpoint_url = Some(moto.endpoint.clone());
    c.region = Some("us-east-1".to_string());
    c.credentials = Some(static_credentials("test", "test", None));
    c.max_attempts = 2;
    c
}

fn audit(
    inventory: &Path,
    out: Location,
    request: AuditRequest,
    waivers: Option<&Path>,
) -> amiaudit::cmd::Outcome {
    let plan = AuditPlan::resolve(
        AuditRequest {
            inventory: Some(inventory.to_path_buf()),
            out,
            ..request
        },
        AuditSection {
            waivers: waivers.map(Path::to_path_buf),
            ..AuditSection::default()
        },
        &Config::default(),
    )
    .expect("audit settings");
    amiaudit::cmd::audit::run(plan).expect("audit")
}

#[test]
fn an_audit_in_s3_is_retained_verified_and_compared_from_s3() {
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(bucket(&moto, BUCKET, true));

    let first = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            &format!("s3://{BUCKET}/audits/{{date}}/first"),
            "--retain-days",
            "30",
            "--retain-mode",
            "compliance",
            "--bundle",
            // As scheduled runs ask: the first has nothing to compare with.
            "--baseline-latest",
            &format!("s3://{BUCKET}/audits/"),
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("no earlier audit") && stderr(&first).contains("no baseline"),
        "{}",
        stderr(&first)
    );
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let prefix = format!("audits/{date}/first/");
    let text = stdout(&first);
    assert!(
        text.contains(&format!("to s3://{BUCKET}/{prefix}"))
            && text.contains("Object Lock COMPLIANCE retention until"),
        "{text}"
    );
    let uploaded = rt.block_on(keys(&moto, BUCKET, &prefix));
    for key in [
        "manifest.json",
        "report.html",
        "findings.json",
        "findings.asff.json",
        "inventory/manifest.json",
    ] {
        assert!(
            uploaded.contains(&format!("{prefix}{key}")),
            "{key}: {uploaded:?}"
        );
    }
    assert!(
        rt.block_on(keys(&moto, BUCKET, &format!("audits/{date}/first.tar.gz")))
            .len()
            == 1,
        "the bundle sits beside the audit"
    );

    // Every object carries the retention asked for; the manifest says so.
    let (retention, manifest, summary) = rt.block_on(async {
        let client = s3(&moto).await;
        // HeadObject, not GetObjectRetention: moto answers that one with the
        // object itself.
        let retention = client
            .head_object()
            .bucket(BUCKET)
            .key(format!("{prefix}report.html"))
            .send()
            .await
            .unwrap();
        let object = |key: String| {
            let client = client.clone();
            async move {
                let out = client.get_object().bucket(BUCKET).key(key).send().await;
                out.unwrap().body.collect().await.unwrap().into_bytes()
            }
        };
        let manifest = object(format!("{prefix}manifest.json")).await;
        let summary = object(format!("{prefix}summary.md")).await;
        (retention, manifest, summary)
    });
    // The report says where the evidence is kept and how long.
    let summary = String::from_utf8(summary.to_vec()).unwrap();
    let line = summary
        .lines()
        .find(|l| l.starts_with("Evidence stored at s3"))
        .unwrap_or_else(|| panic!("{summary}"));
    // Markdown-escaped, as all text from outside is there.
    assert!(
        line.contains("amiaudit\\-evidence")
            && line.contains("with Object Lock COMPLIANCE retention until"),
        "{line}"
    );
    assert_eq!(retention.object_lock_mode().unwrap().as_str(), "COMPLIANCE");
    let until = retention.object_lock_retain_until_date().unwrap().secs();
    let days = (until - chrono::Utc::now().timestamp()) as f64 / 86400.0;
    assert!((29.9..=30.1).contains(&days), "{days} days");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["storage"]["retention_mode"], "COMPLIANCE");
    assert_eq!(
        manifest["storage"]["location"],
        format!("s3://{BUCKET}/{prefix}")
    );

    let verified = cli(&moto, &["verify", &format!("s3://{BUCKET}/{prefix}")]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
    assert!(
        stdout(&verified).contains("retained COMPLIANCE until"),
        "{}",
        stdout(&verified)
    );

    // A copy in a bucket without Object Lock: every byte matches, but the
    // retention its manifest claims, its objects do not hold.
    rt.block_on(async {
        bucket(&moto, "unlocked-copy", false).await;
        let client = s3(&moto).await;
        for key in keys(&moto, BUCKET, &prefix).await {
            client
                .copy_object()
                .bucket("unlocked-copy")
                .key(&key)
                .copy_source(format!("{BUCKET}/{key}"))
                .send()
                .await
                .unwrap();
        }
    });
    let copy = cli(&moto, &["verify", &format!("s3://unlocked-copy/{prefix}")]);
    assert_eq!(copy.status.code(), Some(1), "{}", stdout(&copy));
    assert!(
        stdout(&copy).contains("the manifest says every object is retained COMPLIANCE until"),
        "{}",
        stdout(&copy)
    );

    // A prefix that holds an audit is never written into again.
    let again = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            &format!("s3://{BUCKET}/{prefix}"),
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already holds") && stderr(&again).contains("{time}"),
        "{}",
        stderr(&again)
    );

    // Nor is one written inside another audit's prefix: it would no longer verify.
    let nested = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            &format!("s3://{BUCKET}/{prefix}{{time}}/"),
        ],
    );
    assert_eq!(nested.status.code(), Some(2));
    assert!(
        stderr(&nested).contains(&format!("lies inside the audit at s3://{BUCKET}/{prefix},")),
        "{}",
        stderr(&nested)
    );

    // The second run compares with the newest complete audit below audits/.
    let second = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            &format!("s3://{BUCKET}/audits/{{date}}/second/"),
            "--baseline-latest",
            &format!("s3://{BUCKET}/audits/"),
        ],
    );
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("persisting failures")
            && stdout(&second).contains(&format!("baseline: s3://{BUCKET}/{prefix} ")),
        "{}",
        stdout(&second)
    );
    let second_prefix = format!("audits/{date}/second/");
    assert!(
        rt.block_on(keys(&moto, BUCKET, &second_prefix))
            .contains(&format!("{second_prefix}diff.json"))
    );
    let diff = cli(
        &moto,
        &[
            "diff",
            &format!("s3://{BUCKET}/{prefix}"),
            &format!("s3://{BUCKET}/{second_prefix}"),
        ],
    );
    assert_eq!(diff.status.code(), Some(0), "{}", stderr(&diff));

    // A key planted beside the second audit that cannot be one of its files:
    // verify counts it as added, and nothing else reads the audit.
    // One with a character XML cannot carry does not make the listing unreadable.
    let planted = format!("{second_prefix}../../../../tmp/planted");
    let escape = format!("{second_prefix}esc\u{1b}[2J+ x");
    for key in [&planted, &escape] {
        put(&rt, &moto, key, b"x".to_vec());
    }
    let second_url = format!("s3://{BUCKET}/{second_prefix}");
    let verified = cli(&moto, &["verify", &second_url]);
    assert_eq!(verified.status.code(), Some(1), "{}", stdout(&verified));
    assert!(
        stdout(&verified).contains(&format!("added: {planted}"))
            // A control character: not a file name, shown escaped by its key.
            && stdout(&verified).contains(&format!("added: {second_prefix}esc\\u{{1b}}[2J+ x")),
        "{}",
        stdout(&verified)
    );
    for args in [
        vec!["export", "security-hub", &second_url],
        vec!["diff", &second_url, &second_url],
        vec![
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            "unused",
            "--baseline",
            &second_url,
        ],
    ] {
        let run = cli(&moto, &args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", stderr(&run));
        assert!(
            stderr(&run).contains("which is not a plain path below the prefix"),
            "{args:?}: {}",
            stderr(&run)
        );
    }

    // The newest audit cannot be a baseline now: the next run passes over
    // it, says so, and takes the one before.
    let baseline_latest = |out: &str| {
        cli(
            &moto,
            &[
                "audit",
                "--inventory",
                path(&sample()),
                "--out",
                &format!("s3://{BUCKET}/elsewhere/{out}/"),
                "--baseline-latest",
                &format!("s3://{BUCKET}/audits/"),
            ],
        )
    };
    let third = baseline_latest("third");
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert!(
        stdout(&third).contains(&format!("baseline: s3://{BUCKET}/{prefix} ")),
        "{}",
        stdout(&third)
    );
    assert!(
        stderr(&third).contains(&format!(
            "warning: passed over as the baseline: s3://{BUCKET}/{second_prefix}: holds"
        )),
        "{}",
        stderr(&third)
    );

    // A new version of one file (the bucket keeps the locked one) no longer verifies.
    put(
        &rt,
        &moto,
        &format!("{prefix}summary.md"),
        b"all clear\n".to_vec(),
    );
    let tampered = cli(&moto, &["verify", &format!("s3://{BUCKET}/{prefix}")]);
    assert_eq!(tampered.status.code(), Some(1), "{}", stdout(&tampered));
    assert!(stdout(&tampered).contains("changed: summary.md"));
    // With no usable audit left below the prefix, a run refuses to guess.
    let fourth = baseline_latest("fourth");
    assert_eq!(fourth.status.code(), Some(2), "{}", stdout(&fourth));
    assert!(
        stderr(&fourth).contains("none of the 2 newest audits below it can be a baseline")
            && stderr(&fourth).contains("the baseline does not verify"),
        "{}",
        stderr(&fourth)
    );
}

/// An audit bound for S3 through a recording (or refusing) HTTP client.
fn plan_to_s3(
    moto: &Moto,
    prefix: &str,
    local: Option<&Path>,
    client: aws_smithy_runtime_api::client::http::SharedHttpClient,
) -> AuditPlan {
    let mut aws = connection(moto);
    aws.http_client = Some(client);
    AuditPlan::resolve(
        AuditRequest {
            inventory: Some(sample()),
            out: Location::parse(&format!("s3://{BUCKET}/{prefix}")).unwrap(),
            local_copy: local.map(Path::to_path_buf),
            aws: Some(aws),
            ..Default::default()
        },
        AuditSection::default(),
        &Config::default(),
    )
    .unwrap()
}

#[test]
fn the_manifest_goes_up_last_and_a_refused_upload_keeps_the_audit_locally() {
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(bucket(&moto, BUCKET, false));
    let work = tempfile::tempdir().unwrap();

    // Every file is uploaded before the manifest, and the manifest once.
    let (client, seen) = Refusing::client(|_, _| false, 500, "application/xml", "");
    let plan = plan_to_s3(
        &moto,
        "audits/recorded/",
        Some(&work.path().join("recorded")),
        client,
    );
    amiaudit::cmd::audit::run(plan).unwrap();
    let puts: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(method, _)| method == "PUT")
        .map(|(_, uri)| uri.split('?').next().unwrap().to_string())
        .collect();
    assert!(puts.len() > 20, "{puts:?}");
    assert!(
        puts.last()
            .unwrap()
            .ends_with("/audits/recorded/manifest.json"),
        "{puts:?}"
    );
    assert_eq!(
        puts.iter()
            .filter(|u| u.ends_with("recorded/manifest.json"))
            .count(),
        1
    );

    // Every upload of a report is refused, as a bucket policy that denies
    // the writer would.
    let local = work.path().join("kept");
    let refused = || {
        Refusing::client(
            |method, uri| method == "PUT" && uri.contains("report.html"),
            403,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        )
        .0
    };
    let plan = plan_to_s3(&moto, "audits/refused/", Some(local.as_path()), refused());
    let err = amiaudit::cmd::audit::run(plan).unwrap_err();
    let message = err.to_string();
    assert_eq!(err.exit_code(), 2);
    assert!(
        message.contains("AccessDenied")
            && message.contains(&format!("kept at {}", local.display()))
            && !message.contains('\n'),
        "{message}"
    );
    assert!(
        amiaudit::evidence::verify(&local).unwrap().intact(),
        "the local copy is the whole audit"
    );
    let uploaded = rt.block_on(keys(&moto, BUCKET, "audits/refused/"));
    assert!(
        !uploaded.contains(&"audits/refused/manifest.json".to_string()),
        "{uploaded:?}"
    );
    // Without --local-copy the temporary copy is kept, and named.
    let err = amiaudit::cmd::audit::run(plan_to_s3(&moto, "audits/refused-2/", None, refused()))
        .unwrap_err()
        .to_string();
    let kept = PathBuf::from(
        err.split("kept at ")
            .nth(1)
            .and_then(|rest| rest.split(" (").next())
            .unwrap_or_else(|| panic!("{err}")),
    );
    assert!(amiaudit::evidence::verify(&kept).unwrap().intact(), "{err}");
    std::fs::remove_dir_all(kept.parent().unwrap()).unwrap();
    // And after a successful upload it is gone.
    let (client, _) = Refusing::client(|_, _| false, 500, "application/xml", "");
    let plan = plan_to_s3(&moto, "audits/temporary/", None, client);
    let temporary = plan.out.clone();
    amiaudit::cmd::audit::run(plan).unwrap();
    assert!(!temporary.exists() && !temporary.parent().unwrap().exists());
    // What went up is not an audit: verify says so, and the newest-audit
    // search passes over it (and over the inventory inside it) to the
    // newest complete one.
    let verified = amiaudit::cmd::verify::run(
        &Location::parse(&format!("s3://{BUCKET}/audits/refused/")).unwrap(),
        &connection(&moto),
        None,
    );
    assert!(verified.unwrap_err().to_string().starts_with(&format!(
        "s3://{BUCKET}/audits/refused/: holds no manifest.json"
    )));
    let latest = amiaudit::deliver::s3::audits_newest_first(
        &connection(&moto),
        &S3Location::parse(&format!("s3://{BUCKET}/audits/")).unwrap(),
        None,
    );
    assert_eq!(latest.unwrap()[0].prefix, "audits/temporary/", "the newest");
    let none = amiaudit::deliver::s3::audits_newest_first(
        &connection(&moto),
        &S3Location::parse(&format!("s3://{BUCKET}/audits/refused/")).unwrap(),
        None,
    );
    assert_eq!(none.unwrap(), [], "nothing complete below it");

    // A bucket that does not exist is refused before anything is written.
    let missing = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            "s3://no-such-bucket/audits/",
        ],
    );
    assert_eq!(missing.status.code(), Some(2));
    let line = stderr(&missing);
    assert!(
        line.starts_with(
            "error: s3://no-such-bucket/audits/: cannot reach the bucket (NoSuchBucket"
        ) && line.trim_end().lines().count() == 1,
        "{line}"
    );
    // --retain-days on a bucket without Object Lock is refused up front.
    let unlocked = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            &format!("s3://{BUCKET}/audits/x/"),
            "--retain-days",
            "7",
        ],
    );
    assert_eq!(unlocked.status.code(), Some(2));
    assert!(stderr(&unlocked).contains("needs a bucket with Object Lock"));
}

/// Every finding in every region's hub, by id.
async fn hub_findings(
    moto: &Moto,
    regions: &[String],
) -> std::collections::BTreeMap<String, aws_sdk_securityhub::types::AwsSecurityFinding> {
    hub_findings_as(&moto.config().await, regions).await
}

/// Every finding in every region's hub of the account `config` is in.
async fn hub_findings_as(
    config: &aws_config::SdkConfig,
    regions: &[String],
) -> std::collections::BTreeMap<String, aws_sdk_securityhub::types::AwsSecurityFinding> {
    let mut all = std::collections::BTreeMap::new();
    for region in regions {
        let client = aws_sdk_securityhub::Client::from_conf(
            aws_sdk_securityhub::config::Builder::from(config)
                .region(aws_config::Region::new(region.clone()))
                .build(),
        );
        let mut pages = client
            .get_findings()
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for f in page.unwrap().findings() {
                all.insert(f.id().unwrap().to_string(), f.clone());
            }
        }
    }
    all
}

/// The regions findings are filed in, once each.
fn filed_regions(findings: &[AsffFinding]) -> Vec<String> {
    let regions: std::collections::BTreeSet<String> = findings
        .iter()
        .map(|f| f.resources[0].region.clone())
        .collect();
    regions.into_iter().collect()
}

fn asff(dir: &Path) -> Vec<AsffFinding> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("findings.asff.json")).unwrap()).unwrap()
}

fn synth(dir: &Path, seed: u64, regions: usize) -> PathBuf {
    let inventory = amiaudit::synth::generate(&amiaudit::synth::SynthOptions {
        accounts: 3,
        regions,
        images_per_region: 4,
        seed,
        collected_at: super::support::now() + chrono::Duration::days(seed as i64),
    })
    .unwrap();
    let path = dir.join(format!("inventory-{seed}"));
    amiaudit::inventory::save(&inventory, &path, amiaudit::inventory::TableFormat::Parquet)
        .unwrap();
    path
}

#[test]
fn security_hub_import_is_stable_archives_what_was_resolved_and_counts_failures() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    // The second scan reads one region of the two: the other's failures are
    // no longer listed, but nobody looked.
    let (first_inventory, second_inventory) = (synth(work.path(), 1, 2), synth(work.path(), 2, 1));
    let first = work.path().join("first");
    let second = work.path().join("second");
    let hub_aws = hub_connection(&moto, "000000000000");
    let outcome = audit(
        &first_inventory,
        Location::Local(first.clone()),
        AuditRequest {
            security_hub: true,
            aws: Some(hub_aws.clone()),
            ..Default::default()
        },
        None,
    );
    let text = &outcome.stdout;
    let findings = asff(&first);
    assert!(
        findings.len() > 100,
        "more than one batch: {}",
        findings.len()
    );
    assert!(
        text.contains(&format!(
            "imported {0} of {0} findings (0 archived as resolved)",
            findings.len()
        )) && text.contains("0 failed"),
        "{text}"
    );
    let regions = filed_regions(&findings);
    let rt = runtime();
    let hub = rt.block_on(hub_findings(&moto, &regions));
    assert_eq!(
        hub.len(),
        findings.len(),
        "one hub finding per ASFF finding"
    );
    for f in &findings {
        let h = &hub[&f.id];
        // Filed under the importing account (Security Hub takes nothing
        // else from a custom integration), naming the account it is about.
        assert_eq!(h.aws_account_id(), Some("123456789012"));
        let about = &f.product_fields["amiaudit/AccountId"];
        assert!(f.id.contains(&format!("/{about}/")), "{}", f.id);
        assert_eq!(
            h.product_fields().and_then(|p| p.get("amiaudit/AccountId")),
            Some(about)
        );
        assert_eq!(
            h.product_arn(),
            Some(
                format!(
                    "arn:aws:securityhub:{}:123456789012:product/123456789012/default",
                    f.resources[0].region
                )
                .as_str()
            )
        );
    }
    assert!(
        findings
            .iter()
            .any(|f| f.compliance.status == "NOT_AVAILABLE"),
        "unknown results are findings too, never passes"
    );
    // The file says when the audit saw it; the import stamps its own time,
    // so Security Hub takes it, and a finding new to it is created then.
    let collected = &findings[0].updated_at;
    let first_import = hub[&findings[0].id].updated_at().unwrap().to_string();
    assert!(first_import.as_str() > collected.as_str(), "{first_import}");
    assert_eq!(
        hub[&findings[0].id].created_at(),
        Some(first_import.as_str())
    );

    // Importing the same audit again updates, never duplicates, and is
    // newer than the first import (an update not newer is ignored).
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = security_hub::export(&first, &hub_aws, None).unwrap();
    assert_eq!(again.imported, findings.len());
    let hub = rt.block_on(hub_findings(&moto, &regions));
    assert_eq!(hub.len(), findings.len());
    assert!(hub[&findings[0].id].updated_at().unwrap() > first_import.as_str());

    // The next audit, against the first, with a waiver: what was resolved
    // is archived and RESOLVED, what is waived SUPPRESSED with the reason.
    let waivers = work.path().join("waivers.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n  - rule: AMI-NO-DEPRECATION\n    reason: deprecation dates come next quarter\n    approved_by: ciso@example.com\n    expires: 2099-01-01\n",
    )
    .unwrap();
    // The second inventory audited against `baseline` into `out`, imported.
    let audit_second = |baseline: &Path, out: &Path, waivers: Option<&Path>| {
        audit(
            &second_inventory,
            Location::Local(out.to_path_buf()),
            AuditRequest {
                baseline: Some(Location::Local(baseline.to_path_buf())),
                security_hub: true,
                aws: Some(hub_aws.clone()),
                ..Default::default()
            },
            waivers,
        )
    };
    let outcome = audit_second(&first, &second, Some(&waivers));
    assert_eq!(outcome.exit_code, 0, "{}", outcome.stdout);
    let workflow =
        |f: &AsffFinding| super::moto::hub_workflow("123456789012", &f.resources[0].region, &f.id);
    let second_findings = asff(&second);
    let waived: Vec<&AsffFinding> = second_findings
        .iter()
        .filter(|f| f.workflow.status == "SUPPRESSED")
        .collect();
    assert!(!waived.is_empty(), "the waiver matched");
    for f in &waived {
        let (status, note) = workflow(f).expect("workflow set");
        assert_eq!(status, "SUPPRESSED");
        assert_eq!(
            note,
            "amiaudit: waived until 2099-01-01: deprecation dates come next quarter (approved by ciso@example.com)"
        );
    }
    // A failure that persists keeps when it was first observed.
    let persisting = second_findings
        .iter()
        .find(|f| {
            f.compliance.status == "FAILED"
                && f.workflow.status == "NEW"
                && findings
                    .iter()
                    .any(|old| old.id == f.id && old.compliance.status == "FAILED")
        })
        .expect("a persisting failure");
    assert_eq!(&persisting.first_observed_at, collected);
    assert_eq!(&persisting.created_at, collected);
    assert!(persisting.last_observed_at > *collected);
    let resolved: Vec<AsffFinding> = asff(&second)
        .into_iter()
        .filter(|f| f.record_state == "ARCHIVED")
        .collect();
    assert!(!resolved.is_empty(), "the second inventory fixed something");
    let hub = rt.block_on(hub_findings(&moto, &regions));
    for f in &resolved {
        let h = &hub[&f.id];
        assert_eq!(
            workflow(f).map(|w| w.0).as_deref(),
            Some("RESOLVED"),
            "{}",
            f.id
        );
        assert_eq!(h.record_state().map(|s| s.as_str()), Some("ARCHIVED"));
        assert_eq!(
            h.compliance().and_then(|c| c.status()).map(|s| s.as_str()),
            Some("PASSED")
        );
        assert!(findings.iter().any(|old| old.id == f.id), "{}", f.id);
    }
    // Resolved means looked at again: a failure the diff no longer lists in
    // an account-region the second scan did not read in full stays as it was.
    let coverage = amiaudit::inventory::load(&second_inventory)
        .unwrap()
        .coverage()
        .regions
        .clone();
    let diff: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("diff.json")).unwrap()).unwrap();
    let mut left_alone = 0;
    for change in diff["changes"].as_array().unwrap() {
        let resolved_here = match change["change"].as_str().unwrap() {
            "resolved" => true,
            "not-seen" => false,
            _ => continue,
        };
        let (account, region) = (
            change["account_id"].as_str().unwrap().to_string(),
            change["region"].as_str().unwrap().to_string(),
        );
        let id = amiaudit::render::asff::finding_id(
            change["rule_id"].as_str().unwrap(),
            &account,
            &region,
            change["resource_id"].as_str().unwrap(),
        );
        let in_full = coverage
            .get(&(account, region))
            .is_some_and(|(status, _)| *status == amiaudit::inventory::ScanStatus::Ok);
        assert_eq!(resolved.iter().any(|f| f.id == id), resolved_here, "{id}");
        assert_eq!(resolved_here, in_full, "{id}");
        left_alone += usize::from(!resolved_here);
    }
    assert!(left_alone > 0, "the second scan left a region out");

    // The waiver gone, against the second audit: the waived failures are
    // reopened (NEW), said in their note.
    let third = work.path().join("third");
    let outcome = audit_second(&second, &third, None);
    assert_eq!(outcome.exit_code, 0, "{}", outcome.stdout);
    for f in &waived {
        let (status, note) = workflow(f).expect("workflow set");
        assert_eq!(status, "NEW", "{}", f.id);
        assert!(note.starts_with("amiaudit: failing again"), "{note}");
    }

    // A refused call is a failed batch: every finding in it is counted and named.
    let mut refused = connection(&moto);
    refused.http_client = Some(
        Refusing::client(
            |_, uri| uri.contains("/findings/import"),
            403,
            "application/json",
            r#"{"__type":"AccessDeniedException","message":"not the administrator of this account"}"#,
        )
        .0,
    );
    let report = security_hub::export(&first, &refused, None).unwrap();
    assert_eq!(report.imported, 0);
    assert_eq!(report.failures.len(), findings.len());
    assert_eq!(report.failed_batches, report.batches);
    assert!(
        report.failures[0]
            .message
            .contains("not the administrator of this account")
    );
    let outcome = amiaudit::cmd::export::outcome(&report);
    assert_eq!(outcome.exit_code, 2);

    // An edited audit is not imported at all.
    std::fs::write(first.join("findings.asff.json"), "[]\n").unwrap();
    let err = security_hub::export(&first, &connection(&moto), None).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn a_write_whose_answer_was_lost_is_not_a_failed_upload() {
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(bucket(&moto, BUCKET, false));
    // moto writes the manifest, its answer is lost, the SDK retries and
    // If-None-Match refuses the retry (412): the object holds our bytes.
    let (client, seen) = Refusing::losing_first_response(|method, uri| {
        method == "PUT" && uri.contains("/audits/lost/manifest.json")
    });
    let plan = plan_to_s3(&moto, "audits/lost/", None, client);
    let outcome = amiaudit::cmd::audit::run(plan).unwrap();
    assert_eq!(outcome.exit_code, 0, "{:?}", outcome.stderr);
    let manifest_puts = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(method, uri)| method == "PUT" && uri.contains("/audits/lost/manifest.json"))
        .count();
    assert_eq!(manifest_puts, 2, "sent, lost, sent again");
    let verified = cli(&moto, &["verify", &format!("s3://{BUCKET}/audits/lost/")]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
}

#[test]
fn only_what_the_manifest_lists_goes_up_as_written() {
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(bucket(&moto, BUCKET, false));
    let work = tempfile::tempdir().unwrap();
    let upload = |dir: &Path, prefix: &str| {
        rt.block_on(async {
            let location = S3Location::parse(&format!("s3://{BUCKET}/{prefix}")).unwrap();
            let store = amiaudit::deliver::s3::Store::connect(&connection(&moto), location)
                .await
                .unwrap();
            let storage = store.plan_storage(None, chrono::Utc::now()).await.unwrap();
            store.upload(dir, &storage, None).await
        })
    };
    // An audit edited after it was written (a shared --local-copy another
    // run rewrote, a hand) is not uploaded as if it were the audit...
    let edited = work.path().join("edited");
    let run = super::support::audit_sample(&edited, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    std::fs::write(edited.join("summary.md"), "all clear\n").unwrap();
    let err = upload(&edited, "audits/edited/").unwrap_err().to_string();
    assert!(
        err.contains("summary.md changed since the audit was written"),
        "{err}"
    );
    // ...nor is one with a file its manifest does not list.
    let extra = work.path().join("extra");
    let run = super::support::audit_sample(&extra, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    std::fs::write(extra.join("note.txt"), "x").unwrap();
    let err = upload(&extra, "audits/extra/").unwrap_err().to_string();
    assert!(
        err.contains("`note.txt` appeared since the audit was written"),
        "{err}"
    );
    // Neither prefix holds a manifest: neither is taken for an audit.
    for prefix in ["audits/edited/", "audits/extra/"] {
        let held = rt.block_on(keys(&moto, BUCKET, prefix));
        assert!(
            !held.contains(&format!("{prefix}manifest.json")),
            "{held:?}"
        );
    }
    // The untouched audit goes up whole and verifies.
    std::fs::remove_file(extra.join("note.txt")).unwrap();
    assert!(upload(&extra, "audits/whole/").unwrap() > 20);
    let verified = cli(&moto, &["verify", &format!("s3://{BUCKET}/audits/whole/")]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));

    // Reading it back fetches only what its manifest lists: an object
    // planted beside it is counted as added, never downloaded.
    put(&rt, &moto, "audits/whole/planted.bin", vec![0u8; 1 << 20]);
    let (client, seen) = Refusing::client(|_, _| false, 500, "application/xml", "");
    let mut recorded = connection(&moto);
    recorded.http_client = Some(client);
    let download = amiaudit::deliver::s3::fetch(
        &recorded,
        &S3Location::parse(&format!("s3://{BUCKET}/audits/whole/")).unwrap(),
    )
    .unwrap();
    let verification = amiaudit::evidence::verify(&download.dir).unwrap();
    assert_eq!(verification.added, ["planted.bin"]);
    let gets: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(method, _)| method == "GET")
        .map(|(_, uri)| uri.clone())
        .collect();
    assert!(
        gets.iter()
            .any(|uri| uri.contains("/audits/whole/manifest.json")),
        "{gets:?}"
    );
    // A key named like one of the audit's folders is foreign too (verify:
    // added, exit 1), not an error about a temporary directory.
    put(&rt, &moto, "audits/whole/inventory", b"x".to_vec());
    let verified = cli(&moto, &["verify", &format!("s3://{BUCKET}/audits/whole/")]);
    assert_eq!(verified.status.code(), Some(1), "{}", stderr(&verified));
    assert!(
        stdout(&verified).contains("added: audits/whole/inventory\n"),
        "{}",
        stdout(&verified)
    );
    // Errors about an audit read back name it by its S3 location.
    let csv_only = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--format",
            "csv",
            "--out",
            &format!("s3://{BUCKET}/csv-only/a/"),
        ],
    );
    assert_eq!(csv_only.status.code(), Some(0), "{}", stderr(&csv_only));
    let baseline = cli(
        &moto,
        &[
            "audit",
            "--inventory",
            path(&sample()),
            "--out",
            &format!("s3://{BUCKET}/csv-only/b/"),
            "--baseline",
            &format!("s3://{BUCKET}/csv-only/a/"),
        ],
    );
    assert_eq!(baseline.status.code(), Some(2));
    assert!(
        stderr(&baseline).starts_with(&format!("error: s3://{BUCKET}/csv-only/a/findings.json: "))
            && !stderr(&baseline).contains("amiaudit-s3-"),
        "{}",
        stderr(&baseline)
    );
    assert!(
        !gets.iter().any(|uri| uri.contains("planted.bin")),
        "{gets:?}"
    );
}

/// A KMS key in moto; its ARN.
async fn kms_key(moto: &Moto, spec: aws_sdk_kms::types::KeySpec) -> String {
    use aws_sdk_kms::types::KeyUsageType;
    let usage = if spec == aws_sdk_kms::types::KeySpec::SymmetricDefault {
        KeyUsageType::EncryptDecrypt
    } else {
        KeyUsageType::SignVerify
    };
    aws_sdk_kms::Client::new(&moto.config().await)
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

fn verify_signed(moto: &Moto, at: &Location, key: Option<&str>) -> amiaudit::cmd::Outcome {
    let mut aws = connection(moto);
    aws.http_client = Some(super::moto::MotoGaps::client("000000000000"));
    amiaudit::cmd::verify::run(at, &aws, key).unwrap()
}

/// `--sign-with-kms`: the manifest names the key, manifest.json.sig is its
/// signature, `verify` checks it (and with `--kms-key`, that the key is the
/// one expected), openssl checks it with no AWS access, and any edit, a
/// removed signature or another key's is not intact. A key that cannot sign
/// stops the audit before anything is written. The same in S3.
#[test]
fn a_manifest_signed_with_kms_verifies_and_nothing_else_does() {
    use aws_sdk_kms::types::KeySpec;
    let moto = Moto::start();
    let rt = runtime();
    let key = rt.block_on(kms_key(&moto, KeySpec::EccNistP256));
    let other = rt.block_on(kms_key(&moto, KeySpec::EccNistP256));
    let symmetric = rt.block_on(kms_key(&moto, KeySpec::SymmetricDefault));
    let mut aws = connection(&moto);
    aws.http_client = Some(super::moto::MotoGaps::client("000000000000"));
    let signed = |out: Location, signer: &str| {
        AuditPlan::resolve(
            AuditRequest {
                inventory: Some(sample()),
                out,
                sign_with_kms: Some(signer.to_string()),
                aws: Some(aws.clone()),
                ..Default::default()
            },
            AuditSection::default(),
            &Config::default(),
        )
        .and_then(amiaudit::cmd::audit::run)
    };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("audit");
    let at = Location::Local(dir.clone());
    let outcome = signed(at.clone(), &key).unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", outcome.stdout);
    let manifest = amiaudit::evidence::read_manifest(&dir).unwrap();
    assert_eq!(manifest.signing.as_ref().unwrap().kms_key_arn, key);
    assert!(!manifest.files.contains_key(amiaudit::evidence::SIGNATURE));

    let verified = verify_signed(&moto, &at, Some(&key));
    assert_eq!(verified.exit_code, 0, "{}", verified.stdout);
    assert!(
        verified
            .stdout
            .contains(&format!("signed: manifest.json by KMS key {key}")),
        "{}",
        verified.stdout
    );
    let unpinned = verify_signed(&moto, &at, None);
    assert_eq!(unpinned.exit_code, 0, "{}", unpinned.stdout);
    assert!(
        unpinned.stdout.contains("pass --kms-key"),
        "{}",
        unpinned.stdout
    );
    let wrong = verify_signed(&moto, &at, Some(&other));
    assert_eq!(wrong.exit_code, 1, "{}", wrong.stdout);
    assert!(
        wrong
            .stdout
            .contains(&format!("signed by {key}, not by {other}")),
        "{}",
        wrong.stdout
    );

    // An auditor with openssl and the public key, no AWS and no amiaudit.
    let der =
        aws_smithy_types::base64::decode(&manifest.signing.as_ref().unwrap().public_key).unwrap();
    std::fs::write(work.path().join("key.der"), der).unwrap();
    let manifest_bytes = std::fs::read(dir.join("manifest.json")).unwrap();
    std::fs::write(
        work.path().join("statement"),
        amiaudit::evidence::signed_statement(&manifest_bytes),
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let run = std::process::Command::new("openssl")
            .current_dir(work.path())
            .args(args)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        (
            run.status.success(),
            String::from_utf8_lossy(&run.stdout).into_owned(),
        )
    };
    assert!(
        openssl(&[
            "pkey", "-pubin", "-inform", "DER", "-in", "key.der", "-out", "key.pem"
        ])
        .0
    );
    let signature = dir.join("manifest.json.sig");
    let (ok, said) = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        "key.pem",
        "-signature",
        path(&signature),
        "statement",
    ]);
    assert!(ok && said.contains("Verified OK"), "{said}");

    // Any edit of the manifest, even one byte of whitespace, breaks it.
    let edited = String::from_utf8(manifest_bytes.clone())
        .unwrap()
        .replacen("{", "{ ", 1);
    std::fs::write(dir.join("manifest.json"), &edited).unwrap();
    let broken = verify_signed(&moto, &at, None);
    assert_eq!(broken.exit_code, 1, "{}", broken.stdout);
    assert!(
        broken
            .stdout
            .contains("changed: manifest.json.sig (not the signature"),
        "{}",
        broken.stdout
    );
    // A manifest stripped of its signing key verifies unsigned, but not
    // against the key expected.
    let mut stripped: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    stripped.as_object_mut().unwrap().remove("signing");
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&stripped).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(&signature).unwrap();
    assert_eq!(verify_signed(&moto, &at, None).exit_code, 0);
    let unsigned = verify_signed(&moto, &at, Some(&key));
    assert_eq!(unsigned.exit_code, 1, "{}", unsigned.stdout);
    assert!(
        unsigned.stdout.contains("not signed by"),
        "{}",
        unsigned.stdout
    );
    // The signing key named, its signature gone: removed.
    std::fs::write(dir.join("manifest.json"), &manifest_bytes).unwrap();
    let missing = verify_signed(&moto, &at, None);
    assert!(
        missing.stdout.contains("removed: manifest.json.sig"),
        "{}",
        missing.stdout
    );

    // A key that cannot sign: one line, nothing written.
    let refused = work.path().join("refused");
    let err = signed(Location::Local(refused.clone()), &symmetric)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("amiaudit signs with an ECC_NIST_P256 key for SIGN_VERIFY"),
        "{err}"
    );
    assert!(!refused.exists());

    // In S3: the signature goes up with the audit and is read back.
    rt.block_on(bucket(&moto, BUCKET, false));
    let s3_at = Location::parse(&format!("s3://{BUCKET}/signed/")).unwrap();
    assert_eq!(signed(s3_at.clone(), &key).unwrap().exit_code, 0);
    let keys = rt.block_on(keys(&moto, BUCKET, "signed/"));
    assert!(
        keys.contains(&"signed/manifest.json.sig".to_string()),
        "{keys:?}"
    );
    let verified = verify_signed(&moto, &s3_at, Some(&key));
    assert_eq!(verified.exit_code, 0, "{}", verified.stdout);
}

/// `--security-hub-role`: each account's findings go into its own hub,
/// through the role there, filed as that account; an account whose role
/// cannot be assumed has its findings failed and named (exit 2), and none
/// of them lands in the caller's hub instead.
#[test]
fn security_hub_role_files_each_accounts_findings_in_its_own_hub() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let inventory = synth(work.path(), 1, 1);
    let accounts = amiaudit::inventory::load(&inventory)
        .unwrap()
        .manifest()
        .scope
        .accounts
        .clone();
    let denied = accounts[2].clone();
    let out = work.path().join("audit");
    let outcome = audit(
        &inventory,
        Location::Local(out.clone()),
        AuditRequest {
            security_hub: true,
            security_hub_role: Some("amiaudit-security-hub-import".to_string()),
            aws: Some(hub_connection(&moto, &denied)),
            ..Default::default()
        },
        None,
    );
    assert_eq!(outcome.exit_code, 2, "{}", outcome.stdout);
    let findings = asff(&out);
    let about = |f: &AsffFinding| f.product_fields["amiaudit/AccountId"].clone();
    let refused = findings.iter().filter(|f| about(f) == denied).count();
    assert!(refused > 0);
    assert!(
        outcome.stdout.contains(&format!("{refused} failed")),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains(&format!(
            "cannot assume arn:aws:iam::{denied}:role/amiaudit-security-hub-import"
        )),
        "{}",
        outcome.stdout
    );
    let regions = filed_regions(&findings);
    let rt = runtime();
    for account in &accounts[..2] {
        let config = rt.block_on(moto.account(account));
        let hub = rt.block_on(hub_findings_as(&config, &regions));
        let expected: Vec<&AsffFinding> =
            findings.iter().filter(|f| about(f) == *account).collect();
        assert!(!expected.is_empty());
        assert_eq!(hub.len(), expected.len(), "{account}");
        for f in expected {
            let h = &hub[&f.id];
            assert_eq!(h.aws_account_id(), Some(account.as_str()));
            assert!(
                h.product_arn()
                    .unwrap()
                    .ends_with(&format!(":{account}:product/{account}/default"))
            );
        }
    }
    let caller = rt.block_on(hub_findings(&moto, &regions));
    assert!(
        caller.is_empty(),
        "nothing filed under the caller instead: {}",
        caller.len()
    );
}
