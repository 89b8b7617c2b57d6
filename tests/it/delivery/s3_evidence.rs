//! Audits written to S3: Object Lock retention, the manifest last, verify,
//! diff and baselines read back from S3, and uploads refused or lost.

use super::*;

/// The first audit of a scheduled series into the locked bucket: retained
/// 30 days in COMPLIANCE mode, bundled, with nothing to compare with.
/// Returns its run, its prefix and the date in its path.
fn first_audit_in_s3(
    moto: &Moto,
    rt: &tokio::runtime::Runtime,
) -> (std::process::Output, String, String) {
    rt.block_on(bucket(moto, BUCKET, true));
    let first = cli(
        moto,
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
            "--format",
            "all",
            // As scheduled runs ask: the first has nothing to compare with.
            "--baseline-latest",
            &format!("s3://{BUCKET}/audits/"),
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let prefix = format!("audits/{date}/first/");
    (first, prefix, date)
}

#[test]
fn an_audit_in_s3_is_retained_and_verifies_only_where_the_retention_holds() {
    let moto = Moto::start();
    let rt = runtime();
    let (first, prefix, date) = first_audit_in_s3(&moto, &rt);
    assert!(
        stderr(&first).contains("no earlier audit") && stderr(&first).contains("no baseline"),
        "{}",
        stderr(&first)
    );
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
}

#[test]
fn a_prefix_holding_an_audit_is_never_written_into() {
    let moto = Moto::start();
    let rt = runtime();
    let (_, prefix, _) = first_audit_in_s3(&moto, &rt);
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
}

#[test]
fn the_newest_audit_that_verifies_is_the_baseline_and_a_tampered_one_is_passed_over() {
    let moto = Moto::start();
    let rt = runtime();
    let (_, prefix, date) = first_audit_in_s3(&moto, &rt);
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
    let run = crate::it::support::audit_sample(&edited, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    std::fs::write(edited.join("summary.md"), "all clear\n").unwrap();
    let err = upload(&edited, "audits/edited/").unwrap_err().to_string();
    assert!(
        err.contains("summary.md changed since the audit was written"),
        "{err}"
    );
    // ...nor is one with a file its manifest does not list.
    let extra = work.path().join("extra");
    let run = crate::it::support::audit_sample(&extra, &[]);
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
