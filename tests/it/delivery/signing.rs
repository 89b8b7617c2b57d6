//! Manifests signed with KMS: the signature verifies, and nothing else does.

use super::*;

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
    aws.http_client = Some(crate::it::moto::MotoGaps::client("000000000000"));
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
    aws.http_client = Some(crate::it::moto::MotoGaps::client("000000000000"));
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
