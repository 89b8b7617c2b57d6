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

mod hub;
mod s3_evidence;
mod signing;

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
