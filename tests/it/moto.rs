//! moto server for the scanner tests: started per test on a free loopback
//! port, seeded through the AWS SDK, plus an HTTP client wrapper that
//! answers the few calls moto does not implement (in AWS's wire format) and
//! denies AssumeRole into one account.
use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

/// A running moto server; killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> PathBuf {
    let path = std::env::var_os("AMIAUDIT_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/amiaudit/moto-venv/bin/moto_server")
        });
    assert!(
        path.is_file(),
        "moto server not found at {}: run scripts/install-moto.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The python of moto's venv (it has `cryptography`, which moto needs too).
pub fn moto_python() -> PathBuf {
    moto_binary().with_file_name("python")
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto server did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// SDK config for the management account (moto's default account).
    pub async fn config(&self) -> SdkConfig {
        self.config_with(static_credentials("test", "test", None))
            .await
    }

    pub async fn config_with(&self, credentials: SharedCredentialsProvider) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(amiaudit::aws::https_client())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Credentials of a role session in `account_id` (moto maps them to it).
    pub async fn account(&self, account_id: &str) -> SdkConfig {
        let sts = aws_sdk_sts::Client::new(&self.config().await);
        let out = sts
            .assume_role()
            .role_arn(format!(
                "arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
            ))
            .role_session_name("seed")
            .send()
            .await
            .expect("assume role for seeding");
        let c = out.credentials().expect("credentials");
        self.config_with(static_credentials(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        ))
        .await
    }

    /// Queues Inspector findings for the next ListFindings in an account-region.
    pub fn seed_findings(&self, account_id: &str, region: &str, findings: serde_json::Value) {
        let body = serde_json::json!({
            "results": [findings],
            "account_id": account_id,
            "region": region,
        })
        .to_string();
        let port = self.endpoint.rsplit(':').next().unwrap();
        let request = format!(
            "POST /moto-api/static/inspector2/findings-results HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    }
}

pub fn static_credentials(
    key: &str,
    secret: &str,
    token: Option<&str>,
) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        key,
        secret,
        token.map(str::to_string),
        None,
        "amiaudit-tests",
    ))
}

/// Wraps the SDK's HTTP client: answers what moto lacks or gets wrong the
/// way EC2 does, denies AssumeRole into `denied_account`, forwards the rest
/// to moto. What it answers, and why:
/// - the four Get* settings moto does not implement (image and snapshot
///   block public access, allowed AMIs, EBS default key): canned per region;
/// - DescribeInstanceImageMetadata (missing in moto): from the caller's
///   instances and what moto knows of each AMI now (deregistered when its
///   owner no longer has it);
/// - DescribeSnapshots RestorableByUserIds=all (moto ignores the filter and
///   lists every snapshot): the caller's snapshots with a createVolumePermission
///   for `all`;
/// - DescribeImages by image id (moto shows another account's AMI to nobody,
///   even when shared or public): visible when the caller owns it, or its
///   launch permissions name the caller, `all` or an organization;
/// - DescribeImages (every answer): moto leaves out SourceImageId and
///   SourceImageRegion of a copy, and those and SourceInstanceId of an image
///   created from an instance; they are added for the copies and images a
///   test made ([`copy_image`], [`create_image`]);
/// - GetImageAncestry and GetInstanceMetadataDefaults (missing in moto):
///   the chain through the test's copies and created images (the alias
///   `amazon` on [`AMAZON`]'s images), and a canned account default per
///   region ([`imds_default_for`]);
/// - Organizations ListAccounts for a caller in no organization (moto lists
///   no accounts; AWS answers AWSOrganizationsNotInUseException);
/// - SSM DescribeParameters with a `DataType` filter (moto rejects that
///   filter key; AWS lists the parameters of that data type): moto's list
///   for the caller, filtered here;
/// - DescribeImageReferences (missing in moto): from moto's instances,
///   launch templates and AMI parameters of the caller, and the recipes of
///   the Image Builder fixture ([`MotoGaps::image_references`]);
/// - DescribeImageUsageReports, DescribeImageUsageReportEntries and
///   CreateImageUsageReport (missing in moto): from the reports a test
///   seeds per account-region ([`seed_usage_report`]), none where it seeds
///   none; a report created is `pending`;
/// - Recycle Bin ListRules and GetRule (moto has no Recycle Bin): from the
///   rules a test seeds per account-region ([`seed_recycle_bin`]), none
///   where it seeds none;
/// - EC2 Image Builder, every call (moto has no Image Builder at all): from
///   the fixtures a test seeds per account-region ([`seed_image_builder`]),
///   in the REST-JSON shapes of the API reference; an account-region with no
///   fixture has no pipelines, and an unknown ARN is a 404
///   ResourceNotFoundException, as AWS answers;
/// - KMS Sign and GetPublicKey of an ECC key (moto signs the base64 text of
///   `Message`, not the bytes it encodes, so no verifier outside moto
///   accepts its signatures; its GetPublicKey leaves out `KeySpec`, giving
///   only the deprecated `CustomerMasterKeySpec`, and names the key by id
///   where AWS gives its ARN): moto answers first (the key, its usage, the
///   algorithm and every error are moto's), then the signature and public
///   key are replaced by those of a P-256 key held here for that key ARN,
///   `KeySpec` added and `KeyId` made the ARN;
/// - Security Hub BatchUpdateFindings (missing in moto): answered here for
///   the findings imported through this client (FindingNotFound for any
///   other, as AWS answers), the workflow and note each was given kept for
///   the test to read ([`hub_workflow`]).
#[derive(Debug, Clone)]
pub struct MotoGaps {
    inner: SharedHttpClient,
    denied_account: String,
    /// EC2 calls to this region hang for a minute (for the interruption test).
    slow_region: Option<String>,
    /// Access key id -> account, learned from AssumeRole answers.
    sessions: Arc<Mutex<BTreeMap<String, String>>>,
}

impl MotoGaps {
    pub fn client(denied_account: &str) -> SharedHttpClient {
        Self::client_with_slow_region(denied_account, None)
    }

    pub fn client_with_slow_region(
        denied_account: &str,
        slow_region: Option<&str>,
    ) -> SharedHttpClient {
        SharedHttpClient::new(MotoGaps {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            denied_account: denied_account.to_string(),
            slow_region: slow_region.map(str::to_string),
            sessions: Arc::default(),
        })
    }
}

impl HttpClient for MotoGaps {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(GapConnector {
            inner: self.inner.http_connector(settings, components),
            denied_account: self.denied_account.clone(),
            slow_region: self.slow_region.clone(),
            sessions: self.sessions.clone(),
        })
    }
}

#[derive(Debug, Clone)]
struct GapConnector {
    inner: SharedHttpConnector,
    denied_account: String,
    slow_region: Option<String>,
    sessions: Arc<Mutex<BTreeMap<String, String>>>,
}

/// The P-256 key standing in for each KMS key a test signs with, by ARN
/// (PKCS#8), and what of a request the gap answers from it.
static SIGNING_KEYS: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());

fn signing_key(arn: &str) -> ring::signature::EcdsaKeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = SIGNING_KEYS
        .lock()
        .unwrap()
        .entry(arn.to_string())
        .or_insert_with(|| {
            ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &rng,
            )
            .unwrap()
            .as_ref()
            .to_vec()
        })
        .clone();
    ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8,
        &rng,
    )
    .unwrap()
}

/// moto's answer to Sign or GetPublicKey with the signature or public key
/// of the key held here; `message` is the request's base64 `Message`.
fn with_own_signature(answer: &str, message: Option<&str>, account: &str, region: &str) -> String {
    use ring::signature::KeyPair;
    let mut json: serde_json::Value = serde_json::from_str(answer).unwrap();
    let id = json["KeyId"].as_str().unwrap_or_default().to_string();
    let arn = if id.starts_with("arn:") {
        id
    } else {
        format!("arn:aws:kms:{region}:{account}:key/{id}")
    };
    json["KeyId"] = arn.clone().into();
    let key = signing_key(&arn);
    let b64 = aws_smithy_types::base64::encode;
    match message {
        Some(message) => {
            let bytes = aws_smithy_types::base64::decode(message).unwrap();
            let rng = ring::rand::SystemRandom::new();
            let signature = key.sign(&rng, &bytes).unwrap();
            json["Signature"] = b64(signature.as_ref()).into();
        }
        None => {
            // DER SubjectPublicKeyInfo of a P-256 key: the fixed header,
            // then the uncompressed point.
            let mut der = vec![
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ];
            der.extend_from_slice(key.public_key().as_ref());
            json["PublicKey"] = b64(&der).into();
            json["KeySpec"] = json["CustomerMasterKeySpec"].clone();
        }
    }
    json.to_string()
}

/// Security Hub findings imported through the gap client, by (account,
/// region, id), with the workflow status and note BatchUpdateFindings gave
/// each (None until then).
static HUB: Mutex<BTreeMap<HubKey, Option<Workflow>>> = Mutex::new(BTreeMap::new());

/// (account, region, finding id).
type HubKey = (String, String, String);
/// (workflow status, note).
type Workflow = (String, String);

/// The workflow status and note BatchUpdateFindings last gave a finding.
pub fn hub_workflow(account: &str, region: &str, id: &str) -> Option<(String, String)> {
    HUB.lock()
        .unwrap()
        .get(&(account.to_string(), region.to_string(), id.to_string()))
        .cloned()
        .flatten()
}

/// BatchUpdateFindings as AWS answers it, over the findings in [`HUB`].
fn batch_update_findings(account: &str, region: &str, body: &str) -> String {
    let request: serde_json::Value = serde_json::from_str(body).unwrap();
    let status = request["Workflow"]["Status"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let note = request["Note"]["Text"].as_str().unwrap_or("").to_string();
    let mut hub = HUB.lock().unwrap();
    let (mut processed, mut unprocessed) = (Vec::new(), Vec::new());
    for identifier in request["FindingIdentifiers"].as_array().unwrap() {
        let key = (
            account.to_string(),
            region.to_string(),
            identifier["Id"].as_str().unwrap().to_string(),
        );
        match hub.get_mut(&key) {
            Some(workflow) => {
                *workflow = Some((status.clone(), note.clone()));
                processed.push(identifier.clone());
            }
            None => unprocessed.push(serde_json::json!({
                "FindingIdentifier": identifier,
                "ErrorCode": "FindingNotFound",
                "ErrorMessage": "Finding Not Found",
            })),
        }
    }
    serde_json::json!({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})
        .to_string()
}

/// Every AMI a test registered or created, with its owner: EC2 remembers an
/// AMI's owner after it is deregistered; moto forgets it.
static KNOWN_IMAGES: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Every copy a test made (CopyImage): copy id -> (source id, source
/// region). EC2 names them in DescribeImages (SourceImageId,
/// SourceImageRegion) and GetImageAncestry; moto does neither.
static COPIES: Mutex<BTreeMap<String, (String, String)>> = Mutex::new(BTreeMap::new());

/// Copies an AMI into the client's region (CopyImage, as the owner) and
/// returns the copy's id; EC2 stamps the copy with a CreationDate of its own.
pub async fn copy_image(
    client: &aws_sdk_ec2::Client,
    source: &str,
    source_region: &str,
    name: &str,
) -> String {
    let id = client
        .copy_image()
        .source_image_id(source)
        .source_region(source_region)
        .name(name)
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    remember_image(client, &id).await;
    COPIES
        .lock()
        .unwrap()
        .insert(id.clone(), (source.to_string(), source_region.to_string()));
    id
}

/// Every image a test created from an instance (CreateImage): image id ->
/// (the instance's AMI, its region, the instance). EC2 names them in
/// DescribeImages (SourceImageId, SourceImageRegion, SourceInstanceId:
/// "This field only appears if the AMI was created using CreateImage") and
/// GetImageAncestry; moto does neither.
static CREATED: Mutex<BTreeMap<String, (String, String, String)>> = Mutex::new(BTreeMap::new());

/// The account that owns Amazon's AMIs (Amazon Linux): EC2 gives its images
/// the owner alias `amazon` in DescribeImages and GetImageAncestry.
pub const AMAZON: &str = "137112412989";

/// The source EC2 records for an image a test copied or created.
fn source_of(id: &str) -> Option<(String, String)> {
    COPIES.lock().unwrap().get(id).cloned().or_else(|| {
        CREATED
            .lock()
            .unwrap()
            .get(id)
            .map(|(s, r, _)| (s.clone(), r.clone()))
    })
}

/// moto's DescribeImages answer with what EC2 says of copies and of images
/// created from instances: their source, right after their id.
fn with_copy_sources(xml: &str) -> String {
    let mut out = xml.to_string();
    for (id, (source, region)) in COPIES.lock().unwrap().iter() {
        out = out.replace(
            &format!("<imageId>{id}</imageId>"),
            &format!(
                "<imageId>{id}</imageId><sourceImageId>{source}</sourceImageId><sourceImageRegion>{region}</sourceImageRegion>"
            ),
        );
    }
    for (id, (source, region, instance)) in CREATED.lock().unwrap().iter() {
        out = out.replace(
            &format!("<imageId>{id}</imageId>"),
            &format!(
                "<imageId>{id}</imageId><sourceImageId>{source}</sourceImageId><sourceImageRegion>{region}</sourceImageRegion><sourceInstanceId>{instance}</sourceInstanceId>"
            ),
        );
    }
    out
}

/// Image Builder fixtures, (account, region) -> {"pipelines": [ImagePipeline],
/// "images": {pipelineArn: [ImageSummary]}, "recipes": {arn: ImageRecipe},
/// "distributions": {arn: DistributionConfiguration}, "infrastructures":
/// {arn: InfrastructureConfiguration}, "lifecyclePolicies": [LifecyclePolicy]}.
static IMAGE_BUILDER: Mutex<BTreeMap<(String, String), serde_json::Value>> =
    Mutex::new(BTreeMap::new());

/// Seeds the Image Builder resources of one account-region.
pub fn seed_image_builder(account: &str, region: &str, fixture: serde_json::Value) {
    IMAGE_BUILDER
        .lock()
        .unwrap()
        .insert((account.to_string(), region.to_string()), fixture);
}

/// Recycle Bin retention rules per (account, region), each as GetRule
/// answers it (moto has no Recycle Bin).
static RECYCLE_BIN: Mutex<BTreeMap<(String, String), Vec<serde_json::Value>>> =
    Mutex::new(BTreeMap::new());

/// Image usage reports per account-region (moto has none), each
/// `{"ImageId", "ReportId", "State", "CreationTime", "ExpirationTime",
/// "ResourceTypes": [..], "AccountIds": [..], "Entries": [{"AccountId",
/// "ResourceType", "UsageCount"}]}`.
static USAGE_REPORTS: Mutex<BTreeMap<(String, String), Vec<serde_json::Value>>> =
    Mutex::new(BTreeMap::new());

/// Seeds an image usage report of an account-region, as if created earlier
/// with CreateImageUsageReport and now in the state it names.
pub fn seed_usage_report(account: &str, region: &str, report: serde_json::Value) {
    USAGE_REPORTS
        .lock()
        .unwrap()
        .entry((account.to_string(), region.to_string()))
        .or_default()
        .push(report);
}

/// DescribeImageUsageReports and DescribeImageUsageReportEntries of the
/// seeded reports, in the EC2 Query shapes of the API reference
/// (`imageUsageReportSet`, `imageUsageReportEntrySet`), one page: reports
/// for the `ImageId.N` asked in the `state` the filter names, and the
/// entries of the `ReportId.N` asked.
fn usage_reports(account: &str, region: &str, action: &str, params: &[(String, String)]) -> String {
    let values = |prefix: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let seeded = USAGE_REPORTS.lock().unwrap();
    let reports = seeded
        .get(&(account.to_string(), region.to_string()))
        .cloned()
        .unwrap_or_default();
    let mut items = String::new();
    if action == "DescribeImageUsageReports" {
        let (images, states) = (values("ImageId."), values("Filter.1.Value."));
        for r in &reports {
            let wanted = images.contains(&text(r, "ImageId").as_str())
                && (states.is_empty() || states.contains(&text(r, "State").as_str()));
            if !wanted {
                continue;
            }
            let list = |k: &str, item: &dyn Fn(&str) -> String| -> String {
                r[k].as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()).map(item).collect())
                    .unwrap_or_default()
            };
            items.push_str(&format!(
                "<item><imageId>{}</imageId><reportId>{}</reportId><resourceTypeSet>{}</resourceTypeSet><accountIdSet>{}</accountIdSet><state>{}</state><creationTime>{}</creationTime><expirationTime>{}</expirationTime></item>",
                text(r, "ImageId"),
                text(r, "ReportId"),
                list("ResourceTypes", &|t| format!("<item><resourceType>{t}</resourceType></item>")),
                list("AccountIds", &|a| format!("<item>{a}</item>")),
                text(r, "State"),
                text(r, "CreationTime"),
                text(r, "ExpirationTime"),
            ));
        }
        return ec2_xml(
            action,
            &format!("<imageUsageReportSet>{items}</imageUsageReportSet>"),
        );
    }
    let asked = values("ReportId.");
    for r in reports
        .iter()
        .filter(|r| asked.contains(&text(r, "ReportId").as_str()))
    {
        for e in r["Entries"].as_array().cloned().unwrap_or_default() {
            items.push_str(&format!(
                "<item><resourceType>{}</resourceType><reportId>{}</reportId><usageCount>{}</usageCount><accountId>{}</accountId><imageId>{}</imageId><reportCreationTime>{}</reportCreationTime></item>",
                text(&e, "ResourceType"),
                text(r, "ReportId"),
                e["UsageCount"].as_i64().unwrap_or_default(),
                text(&e, "AccountId"),
                text(r, "ImageId"),
                text(r, "CreationTime"),
            ));
        }
    }
    ec2_xml(
        action,
        &format!("<imageUsageReportEntrySet>{items}</imageUsageReportEntrySet>"),
    )
}

/// Seeds the retention rules of an account-region, each in GetRule's
/// REST-JSON shape (`Identifier`, `ResourceType`, `RetentionPeriod`,
/// `ResourceTags`, `ExcludeResourceTags`, `Status`, `LockState`, `RuleArn`).
pub fn seed_recycle_bin(account: &str, region: &str, rules: Vec<serde_json::Value>) {
    RECYCLE_BIN
        .lock()
        .unwrap()
        .insert((account.to_string(), region.to_string()), rules);
}

/// A Recycle Bin answer (moto has none): ListRules (`POST /list-rules`,
/// the rules of the requested `ResourceType` as `RuleSummary` items, one
/// page) and GetRule (`GET /rules/{identifier}`; an unknown identifier is
/// a 404 ResourceNotFoundException, as AWS answers). An account-region
/// with no seeded rules has none.
fn recycle_bin(
    account: &str,
    region: &str,
    uri: &str,
    body: &str,
) -> (u16, String, Option<&'static str>) {
    let seeded = RECYCLE_BIN.lock().unwrap();
    let rules = seeded
        .get(&(account.to_string(), region.to_string()))
        .cloned()
        .unwrap_or_default();
    let path = uri
        .split("://")
        .nth(1)
        .and_then(|u| u.split_once('/'))
        .map_or("", |(_, p)| p);
    if path.starts_with("list-rules") {
        let request: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let summaries: Vec<serde_json::Value> = rules
            .iter()
            .filter(|r| r["ResourceType"] == request["ResourceType"])
            .map(|r| {
                let mut summary = serde_json::json!({
                    "Identifier": r["Identifier"], "RetentionPeriod": r["RetentionPeriod"],
                    "RuleArn": r["RuleArn"],
                });
                if !r["LockState"].is_null() {
                    summary["LockState"] = r["LockState"].clone();
                }
                summary
            })
            .collect();
        return (
            200,
            serde_json::json!({ "Rules": summaries }).to_string(),
            None,
        );
    }
    let identifier = path.strip_prefix("rules/").map(decode).unwrap_or_default();
    match rules
        .iter()
        .find(|r| r["Identifier"] == identifier.as_str())
    {
        Some(rule) => (200, rule.to_string(), None),
        None => (
            404,
            serde_json::json!({ "Message": "rule not found" }).to_string(),
            Some("ResourceNotFoundException"),
        ),
    }
}

/// An Image Builder answer: (status, JSON body, error type).
fn image_builder(
    account: &str,
    region: &str,
    uri: &str,
    body: &str,
) -> (u16, String, Option<&'static str>) {
    let fixtures = IMAGE_BUILDER.lock().unwrap();
    let empty = serde_json::json!({});
    let fixture = fixtures
        .get(&(account.to_string(), region.to_string()))
        .unwrap_or(&empty);
    let path = uri
        .split("://")
        .nth(1)
        .and_then(|u| u.split_once('/'))
        .map_or("", |(_, p)| p);
    let (operation, query) = path.split_once('?').unwrap_or((path, ""));
    let arn = query
        .split_once('=')
        .map(|(_, v)| decode(v))
        .unwrap_or_default();
    let request: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let list = |key: &str| {
        fixture
            .get(key)
            .cloned()
            .unwrap_or_else(|| serde_json::json!([]))
    };
    let by_arn = |key: &str, arn: &str| fixture.get(key).and_then(|m| m.get(arn)).cloned();
    let found = |key: &str, value: Option<serde_json::Value>| match value {
        Some(v) => (200, serde_json::json!({ key: v }).to_string(), None),
        None => (
            404,
            serde_json::json!({ "message": "resource not found" }).to_string(),
            Some("ResourceNotFoundException"),
        ),
    };
    match operation {
        "ListImagePipelines" => found("imagePipelineList", Some(list("pipelines"))),
        "ListImagePipelineImages" => {
            let pipeline = request["imagePipelineArn"].as_str().unwrap_or_default();
            found("imageSummaryList", by_arn("images", pipeline))
        }
        "GetImageRecipe" => found("imageRecipe", by_arn("recipes", &arn)),
        "GetDistributionConfiguration" => {
            found("distributionConfiguration", by_arn("distributions", &arn))
        }
        "GetInfrastructureConfiguration" => found(
            "infrastructureConfiguration",
            by_arn("infrastructures", &arn),
        ),
        "ListLifecyclePolicies" => {
            let summaries: Vec<serde_json::Value> = list("lifecyclePolicies")
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    serde_json::json!({
                        "arn": p["arn"], "name": p["name"], "status": p["status"],
                        "resourceType": p["resourceType"],
                    })
                })
                .collect();
            found("lifecyclePolicySummaryList", Some(summaries.into()))
        }
        "GetLifecyclePolicy" => found(
            "lifecyclePolicy",
            list("lifecyclePolicies")
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["arn"] == arn.as_str())
                .cloned(),
        ),
        _ => (
            400,
            serde_json::json!({ "message": format!("the gap client does not answer {operation}") })
                .to_string(),
            Some("InvalidRequestException"),
        ),
    }
}

fn json_response(status: u16, json: String, error_type: Option<&str>) -> Response {
    let mut response = typed_response(status, json, "application/json");
    if let Some(kind) = error_type {
        response
            .headers_mut()
            .insert("x-amzn-errortype", kind.to_string());
    }
    response
}

/// moto's default account: the caller's own credentials map to it.
const MOTO_DEFAULT_ACCOUNT: &str = "123456789012";

/// Remembers an AMI's owner (asked of moto right after it was made).
pub async fn remember_image(client: &aws_sdk_ec2::Client, image_id: &str) {
    let owner = client
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
        .unwrap()
        .images()[0]
        .owner_id()
        .unwrap()
        .to_string();
    KNOWN_IMAGES
        .lock()
        .unwrap()
        .insert(image_id.to_string(), owner);
}

/// Adds `x-moto-account-id` to every request: moto then acts as that account.
#[derive(Debug)]
struct AsAccount(String);

impl Intercept for AsAccount {
    fn name(&self) -> &'static str {
        "AsAccount"
    }
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}

/// Query parameters of a form-encoded EC2 or STS body, decoded.
fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ec2_xml(action: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>5a3c2b1e-0000-4000-8000-000000000000</requestId>{inner}</{action}Response>"
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Get* settings moto does not implement, per region, so the test can
/// tell that each answer reached the right account-region row.
pub fn settings_for(region: &str) -> (&'static str, &'static str, &'static str) {
    match region {
        "eu-west-1" => ("block-new-sharing", "block-all-sharing", "enabled"),
        _ => ("unblocked", "unblocked", "disabled"),
    }
}

/// The account-level HttpTokens default the gap client answers
/// GetInstanceMetadataDefaults with (moto lacks the call): `required` in
/// eu-west-1, no preference elsewhere.
pub fn imds_default_for(region: &str) -> Option<&'static str> {
    (region == "eu-west-1").then_some("required")
}

impl GapConnector {
    fn canned(&self, body: &str, region: &str) -> Option<(u16, String)> {
        let action = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("");
        let (image_bpa, snapshot_bpa, allowed) = settings_for(region);
        Some(match action {
            "AssumeRole" if body.contains(&format!("%3A{}%3A", self.denied_account)) => (
                403,
                format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/auditor is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{}:role/OrganizationAccountAccessRole</Message></Error><RequestId>1</RequestId></ErrorResponse>",
                    self.denied_account
                ),
            ),
            "GetEbsDefaultKmsKeyId" => (200, ec2_xml(action, "<kmsKeyId>alias/aws/ebs</kmsKeyId>")),
            "GetImageBlockPublicAccessState" => (
                200,
                ec2_xml(
                    action,
                    &format!(
                        "<imageBlockPublicAccessState>{image_bpa}</imageBlockPublicAccessState><managedBy>account</managedBy>"
                    ),
                ),
            ),
            "GetSnapshotBlockPublicAccessState" => (
                200,
                ec2_xml(
                    action,
                    &format!("<state>{snapshot_bpa}</state><managedBy>account</managedBy>"),
                ),
            ),
            "GetAllowedImagesSettings" => (
                200,
                ec2_xml(
                    action,
                    &format!("<state>{allowed}</state><managedBy>account</managedBy>"),
                ),
            ),
            // No preference is an accountLevel without httpTokens.
            "GetInstanceMetadataDefaults" => (
                200,
                ec2_xml(
                    action,
                    &format!(
                        "<accountLevel>{}<managedBy>account</managedBy></accountLevel>",
                        imds_default_for(region)
                            .map(|t| format!("<httpTokens>{t}</httpTokens>"))
                            .unwrap_or_default()
                    ),
                ),
            ),
            _ => return None,
        })
    }

    /// An EC2 client that moto serves as `account`, not through this connector.
    fn ec2_as(&self, endpoint: &str, account: &str, region: &str) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(amiaudit::aws::https_client())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(static_credentials("test", "test", None))
            .interceptor(AsAccount(account.to_string()))
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// An SSM client that moto serves as `account`.
    fn ssm_as(&self, endpoint: &str, account: &str, region: &str) -> aws_sdk_ssm::Client {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(amiaudit::aws::https_client())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(static_credentials("test", "test", None))
            .interceptor(AsAccount(account.to_string()))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// DescribeImageReferences (moto lacks it), the body of the answer:
    /// what references each AMI asked (`ImageId.N`) among the caller's
    /// resources in the region, as the EC2 User Guide says it checks them:
    /// moto's instances in the states the request names for `ec2:Instance`
    /// (every state when it names none), each launch template whose 10 most
    /// recent versions name the AMI, SSM parameters of data type
    /// `aws:ec2:image` holding its id, and the Image Builder recipes of the
    /// test's fixture whose parent image is the id. One page, as
    /// `imageReferenceSet` items (`imageId`, `resourceType`, `arn`).
    async fn image_references(
        &self,
        endpoint: &str,
        caller: &str,
        region: &str,
        params: &[(String, String)],
    ) -> String {
        let asked: BTreeSet<String> = params
            .iter()
            .filter(|(k, _)| k.starts_with("ImageId."))
            .map(|(_, v)| v.clone())
            .collect();
        // ResourceType.N.ResourceType = ec2:Instance, then its
        // ResourceType.N.ResourceTypeOption.M.OptionName = state-name and
        // ResourceType.N.ResourceTypeOption.M.OptionValue.K.
        let instance_type = params
            .iter()
            .find(|(k, v)| {
                k.starts_with("ResourceType.")
                    && k.ends_with(".ResourceType")
                    && v == "ec2:Instance"
            })
            .map(|(k, _)| k.trim_end_matches("ResourceType").to_string());
        let states: BTreeSet<String> = instance_type
            .map(|prefix| {
                let option = params
                    .iter()
                    .find(|(k, v)| {
                        k.starts_with(&prefix) && k.ends_with(".OptionName") && v == "state-name"
                    })
                    .map(|(k, _)| k.trim_end_matches("OptionName").to_string());
                params
                    .iter()
                    .filter(|(k, _)| {
                        option
                            .as_ref()
                            .is_some_and(|o| k.starts_with(&format!("{o}OptionValue.")))
                    })
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut found: BTreeSet<(String, &str, String)> = BTreeSet::new();
        let ec2 = self.ec2_as(endpoint, caller, region);
        let reservations = ec2.describe_instances().send().await.unwrap();
        for instance in reservations
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
        {
            let state = instance
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string());
            if let (Some(id), Some(image)) = (instance.instance_id(), instance.image_id())
                && asked.contains(image)
                && (states.is_empty() || state.is_some_and(|s| states.contains(&s)))
            {
                found.insert((
                    image.to_string(),
                    "ec2:Instance",
                    format!("arn:aws:ec2:{region}:{caller}:instance/{id}"),
                ));
            }
        }
        let templates = ec2.describe_launch_templates().send().await.unwrap();
        for template in templates.launch_templates() {
            let Some(id) = template.launch_template_id() else {
                continue;
            };
            let versions = ec2
                .describe_launch_template_versions()
                .launch_template_id(id)
                .send()
                .await
                .unwrap();
            let mut numbered: Vec<(i64, Option<String>)> = versions
                .launch_template_versions()
                .iter()
                .map(|v| {
                    (
                        v.version_number().unwrap_or_default(),
                        v.launch_template_data()
                            .and_then(|d| d.image_id())
                            .map(str::to_string),
                    )
                })
                .collect();
            numbered.sort_by_key(|v| std::cmp::Reverse(v.0));
            for (_, image) in numbered.into_iter().take(10) {
                if let Some(image) = image.filter(|i| asked.contains(i)) {
                    found.insert((
                        image,
                        "ec2:LaunchTemplate",
                        format!("arn:aws:ec2:{region}:{caller}:launch-template/{id}"),
                    ));
                }
            }
        }
        let ssm = self.ssm_as(endpoint, caller, region);
        let mut pages = ssm.describe_parameters().into_paginator().send();
        while let Some(page) = pages.next().await {
            for p in page.expect("moto lists parameters").parameters() {
                let Some(name) = p.name().filter(|_| p.data_type() == Some("aws:ec2:image")) else {
                    continue;
                };
                let value = ssm.get_parameter().name(name).send().await.unwrap();
                if let Some(image) = value
                    .parameter()
                    .and_then(|v| v.value())
                    .filter(|v| asked.contains(*v))
                {
                    found.insert((
                        image.to_string(),
                        "ssm:Parameter",
                        format!(
                            "arn:aws:ssm:{region}:{caller}:parameter/{}",
                            name.trim_start_matches('/')
                        ),
                    ));
                }
            }
        }
        let recipes: Vec<(String, String)> = IMAGE_BUILDER
            .lock()
            .unwrap()
            .get(&(caller.to_string(), region.to_string()))
            .and_then(|f| f.get("recipes"))
            .and_then(|r| r.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(arn, recipe)| {
                Some((arn.clone(), recipe["parentImage"].as_str()?.to_string()))
            })
            .collect();
        for (arn, parent) in recipes {
            if asked.contains(&parent) {
                found.insert((parent, "imagebuilder:ImageRecipe", arn));
            }
        }
        let items: String = found
            .into_iter()
            .map(|(image, kind, arn)| {
                format!("<item><imageId>{image}</imageId><resourceType>{kind}</resourceType><arn>{}</arn></item>", xml_escape(&arn))
            })
            .collect();
        format!("<imageReferenceSet>{items}</imageReferenceSet>")
    }

    /// DescribeParameters filtered by `DataType` (moto refuses the filter
    /// key with a ValidationException; AWS accepts it): every parameter of
    /// the caller in moto, kept when its data type is `aws:ec2:image`, in
    /// the JSON shape of the API reference, one page.
    async fn parameters_of_image_type(&self, endpoint: &str, caller: &str, region: &str) -> String {
        let client = self.ssm_as(endpoint, caller, region);
        let mut items = Vec::new();
        let mut pages = client.describe_parameters().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.expect("moto lists parameters");
            for p in page.parameters() {
                if p.data_type() != Some("aws:ec2:image") {
                    continue;
                }
                items.push(serde_json::json!({
                    "Name": p.name(),
                    "Type": p.r#type().map(|t| t.as_str()),
                    "DataType": p.data_type(),
                    "Version": p.version(),
                    "LastModifiedDate": p.last_modified_date().map(|d| d.as_secs_f64()),
                }));
            }
        }
        serde_json::json!({ "Parameters": items }).to_string()
    }

    /// Whether `caller` belongs to an organization, as moto's
    /// DescribeOrganization says.
    async fn in_organization(&self, endpoint: &str, caller: &str, region: &str) -> bool {
        let config = aws_sdk_organizations::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(amiaudit::aws::https_client())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(static_credentials("test", "test", None))
            .interceptor(AsAccount(caller.to_string()))
            .build();
        aws_sdk_organizations::Client::from_conf(config)
            .describe_organization()
            .send()
            .await
            .is_ok()
    }

    /// The account a request is made as: a session from AssumeRole, or the caller.
    fn caller(&self, access_key: &str) -> String {
        self.sessions
            .lock()
            .unwrap()
            .get(access_key)
            .cloned()
            .unwrap_or_else(|| MOTO_DEFAULT_ACCOUNT.to_string())
    }

    /// Whether `caller` may see `image_id` now, and what EC2 would show.
    async fn describe_as_ec2(
        &self,
        endpoint: &str,
        caller: &str,
        region: &str,
        image_id: &str,
    ) -> Option<aws_sdk_ec2::types::Image> {
        let owner = KNOWN_IMAGES.lock().unwrap().get(image_id).cloned()?;
        let client = self.ec2_as(endpoint, &owner, region);
        let image = client
            .describe_images()
            .image_ids(image_id)
            .send()
            .await
            .ok()?
            .images()
            .first()
            .cloned()?;
        if owner == caller || image.public() == Some(true) {
            return Some(image);
        }
        let permissions = client
            .describe_image_attribute()
            .image_id(image_id)
            .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
            .send()
            .await
            .ok()?;
        permissions
            .launch_permissions()
            .iter()
            .any(|p| {
                p.user_id() == Some(caller)
                    || p.group().is_some_and(|g| g.as_str() == "all")
                    || p.organization_arn().is_some()
                    || p.organizational_unit_arn().is_some()
            })
            .then_some(image)
    }

    async fn dynamic(
        &self,
        endpoint: String,
        body: String,
        region: String,
        caller: String,
    ) -> Option<String> {
        let params = form(&body);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let action = get("Action")?;
        match action {
            "DescribeInstanceImageMetadata" => {
                let client = self.ec2_as(&endpoint, &caller, &region);
                let out = client.describe_instances().send().await.unwrap();
                let mut items = String::new();
                for instance in out.reservations().iter().flat_map(|r| r.instances()) {
                    let (Some(id), Some(image)) = (instance.instance_id(), instance.image_id())
                    else {
                        continue;
                    };
                    let owner = KNOWN_IMAGES.lock().unwrap().get(image).cloned();
                    let exists = match &owner {
                        Some(owner) => self
                            .ec2_as(&endpoint, owner, &region)
                            .describe_images()
                            .image_ids(image)
                            .send()
                            .await
                            .map(|o| o.images().first().cloned())
                            .ok()
                            .flatten(),
                        None => None,
                    };
                    let state = if exists.is_some() {
                        "available"
                    } else {
                        "deregistered"
                    };
                    let owner_xml = owner
                        .map(|o| format!("<imageOwnerId>{o}</imageOwnerId>"))
                        .unwrap_or_default();
                    let name_xml = exists
                        .as_ref()
                        .and_then(|i| i.name())
                        .map(|n| format!("<name>{}</name>", xml_escape(n)))
                        .unwrap_or_default();
                    items.push_str(&format!(
                        "<item><instanceId>{id}</instanceId><instanceOwnerId>{caller}</instanceOwnerId><imageMetadata><imageId>{image}</imageId>{name_xml}{owner_xml}<imageState>{state}</imageState></imageMetadata></item>"
                    ));
                }
                let xml = ec2_xml(
                    action,
                    &format!("<instanceImageMetadataSet>{items}</instanceImageMetadataSet>"),
                );
                Some(xml)
            }
            "DescribeSnapshots" if get("RestorableBy.1") == Some("all") => {
                let client = self.ec2_as(&endpoint, &caller, &region);
                let out = client
                    .describe_snapshots()
                    .owner_ids("self")
                    .send()
                    .await
                    .unwrap();
                let mut items = String::new();
                for snapshot in out.snapshots() {
                    let Some(id) = snapshot.snapshot_id() else {
                        continue;
                    };
                    let attribute = client
                        .describe_snapshot_attribute()
                        .snapshot_id(id)
                        .attribute(
                            aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission,
                        )
                        .send()
                        .await
                        .unwrap();
                    if attribute
                        .create_volume_permissions()
                        .iter()
                        .any(|p| p.group().is_some_and(|g| g.as_str() == "all"))
                    {
                        items.push_str(&format!(
                            "<item><snapshotId>{id}</snapshotId><ownerId>{caller}</ownerId><status>completed</status></item>"
                        ));
                    }
                }
                Some(ec2_xml(
                    action,
                    &format!("<snapshotSet>{items}</snapshotSet>"),
                ))
            }
            "DescribeImageUsageReports" | "DescribeImageUsageReportEntries" => {
                Some(usage_reports(&caller, &region, action, &params))
            }
            // A report asked for is `pending`, as EC2 makes it; the same
            // ClientToken gives the same report back.
            "CreateImageUsageReport" => {
                let image = get("ImageId")?.to_string();
                let token = get("ClientToken").unwrap_or_default().to_string();
                let report = format!("amiur-{}", image.trim_start_matches("ami-"));
                let known = USAGE_REPORTS
                    .lock()
                    .unwrap()
                    .get(&(caller.clone(), region.clone()))
                    .is_some_and(|r| r.iter().any(|r| r["ClientToken"] == token.as_str()));
                if !known {
                    let types: Vec<&str> = params
                        .iter()
                        .filter(|(k, _)| {
                            k.starts_with("ResourceType.") && k.ends_with(".ResourceType")
                        })
                        .map(|(_, v)| v.as_str())
                        .collect();
                    seed_usage_report(
                        &caller,
                        &region,
                        serde_json::json!({
                            "ImageId": image, "ReportId": report, "State": "pending",
                            "ClientToken": token,
                            "CreationTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                            "ResourceTypes": types, "AccountIds": [], "Entries": [],
                        }),
                    );
                }
                Some(ec2_xml(action, &format!("<reportId>{report}</reportId>")))
            }
            "DescribeImageReferences" => Some(ec2_xml(
                action,
                &self
                    .image_references(&endpoint, &caller, &region, &params)
                    .await,
            )),
            // The chain from the AMI to its root, each entry naming its
            // source (GetImageAncestry; moto lacks it): followed through
            // the copies and images from instances the test made; Amazon's
            // images carry their owner alias.
            "GetImageAncestry" => {
                let mut id = get("ImageId")?.to_string();
                let mut at = region.clone();
                let mut items = String::new();
                for _ in 0..50 {
                    let owner = KNOWN_IMAGES.lock().unwrap().get(&id).cloned()?;
                    let image = self
                        .ec2_as(&endpoint, &owner, &at)
                        .describe_images()
                        .image_ids(&id)
                        .send()
                        .await
                        .ok()?
                        .images()
                        .first()
                        .cloned()?;
                    let source = source_of(&id);
                    let alias = if owner == AMAZON {
                        "<imageOwnerAlias>amazon</imageOwnerAlias>"
                    } else {
                        ""
                    };
                    items.push_str(&format!(
                        "<item><imageId>{id}</imageId><creationDate>{}</creationDate>{alias}{}</item>",
                        image.creation_date().unwrap_or_default(),
                        source
                            .as_ref()
                            .map(|(s, r)| format!(
                                "<sourceImageId>{s}</sourceImageId><sourceImageRegion>{r}</sourceImageRegion>"
                            ))
                            .unwrap_or_default()
                    ));
                    match source {
                        Some((s, r)) => {
                            id = s;
                            at = r;
                        }
                        None => break,
                    }
                }
                Some(ec2_xml(
                    action,
                    &format!("<imageAncestryEntrySet>{items}</imageAncestryEntrySet>"),
                ))
            }
            "DescribeImages" if get("Filter.1.Name") == Some("image-id") => {
                let ids: Vec<String> = params
                    .iter()
                    .filter(|(k, _)| k.starts_with("Filter.1.Value."))
                    .map(|(_, v)| v.clone())
                    .collect();
                let mut items = String::new();
                for id in ids {
                    if let Some(image) =
                        self.describe_as_ec2(&endpoint, &caller, &region, &id).await
                    {
                        let owner = image.owner_id().unwrap_or_default();
                        let alias = if owner == AMAZON {
                            "<imageOwnerAlias>amazon</imageOwnerAlias>"
                        } else {
                            ""
                        };
                        let source = source_of(&id)
                            .map(|(s, r)| format!("<sourceImageId>{s}</sourceImageId><sourceImageRegion>{r}</sourceImageRegion>"))
                            .unwrap_or_default();
                        items.push_str(&format!(
                            "<item><imageId>{id}</imageId><imageOwnerId>{owner}</imageOwnerId>{alias}<imageState>available</imageState>{}{source}</item>",
                            image
                                .name()
                                .map(|n| format!("<name>{}</name>", xml_escape(n)))
                                .unwrap_or_default()
                        ));
                    }
                }
                Some(ec2_xml(action, &format!("<imagesSet>{items}</imagesSet>")))
            }
            _ => None,
        }
    }
}

impl HttpConnector for GapConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap_or_default();
        // The SigV4 credential scope names the key and the region:
        // Credential=AKID/20261123/eu-west-1/ec2/aws4_request
        let scope: Vec<String> = request
            .headers()
            .get("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .map(|c| c.split('/').map(str::to_string).collect())
            .unwrap_or_default();
        let access_key = scope.first().cloned().unwrap_or_default();
        let region = scope
            .get(2)
            .cloned()
            .unwrap_or_else(|| "us-east-1".to_string());
        let uri = request.uri().to_string();
        let endpoint = uri.split('/').take(3).collect::<Vec<_>>().join("/");
        if scope.get(3).map(String::as_str) == Some("securityhub") {
            let account = self.caller(&access_key);
            if uri.contains("/findings/batchupdate") {
                let answer = batch_update_findings(&account, &region, &body);
                return HttpConnectorFuture::ready(Ok(json_response(200, answer, None)));
            }
            if uri.contains("/findings/import")
                && let Ok(request) = serde_json::from_str::<serde_json::Value>(&body)
            {
                let mut hub = HUB.lock().unwrap();
                for finding in request["Findings"].as_array().into_iter().flatten() {
                    if let Some(id) = finding["Id"].as_str() {
                        hub.entry((account.clone(), region.clone(), id.to_string()))
                            .or_insert(None);
                    }
                }
            }
        }
        if scope.get(3).map(String::as_str) == Some("rbin") {
            let account = self.caller(&access_key);
            let (status, json, error) = recycle_bin(&account, &region, &uri, &body);
            return HttpConnectorFuture::ready(Ok(json_response(status, json, error)));
        }
        if scope.get(3).map(String::as_str) == Some("imagebuilder") {
            let account = self.caller(&access_key);
            let (status, json, error) = image_builder(&account, &region, &uri, &body);
            return HttpConnectorFuture::ready(Ok(json_response(status, json, error)));
        }
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_string();
        if target == "AWSOrganizationsV20161128.ListAccounts" {
            let this = self.clone();
            let caller = self.caller(&access_key);
            let forward = self.inner.call(request);
            return HttpConnectorFuture::new(async move {
                if this.in_organization(&endpoint, &caller, &region).await {
                    return forward.await;
                }
                Ok(typed_response(
                    400,
                    serde_json::json!({"__type": "AWSOrganizationsNotInUseException",
                           "Message": "Your account is not a member of an organization."})
                    .to_string(),
                    "application/x-amz-json-1.1",
                ))
            });
        }
        if target == "TrentService.Sign" || target == "TrentService.GetPublicKey" {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|b| b["Message"].as_str().map(str::to_string));
            let account = self.caller(&access_key);
            let forward = self.inner.call(request);
            return HttpConnectorFuture::new(async move {
                let response = forward.await?;
                if response.status().as_u16() != 200 {
                    return Ok(response);
                }
                let bytes = aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
                    .collect()
                    .await
                    .unwrap()
                    .into_bytes();
                let answer = with_own_signature(
                    &String::from_utf8_lossy(&bytes),
                    message.as_deref(),
                    &account,
                    &region,
                );
                Ok(typed_response(200, answer, "application/x-amz-json-1.1"))
            });
        }
        if target == "AmazonSSM.DescribeParameters" && body.contains("\"DataType\"") {
            let this = self.clone();
            let caller = self.caller(&access_key);
            return HttpConnectorFuture::new(async move {
                let json = this
                    .parameters_of_image_type(&endpoint, &caller, &region)
                    .await;
                Ok(typed_response(200, json, "application/x-amz-json-1.1"))
            });
        }
        if let Some((status, xml)) = self.canned(&body, &region) {
            return HttpConnectorFuture::ready(Ok(xml_response(status, xml)));
        }
        if self.slow_region.as_deref() == Some(region.as_str())
            && body.contains("Action=DescribeImages")
        {
            let forward = self.inner.call(request);
            return HttpConnectorFuture::new(async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                forward.await
            });
        }
        let this = self.clone();
        let caller = self.caller(&access_key);
        let assumed = form(&body)
            .into_iter()
            .find(|(k, _)| k == "RoleArn")
            .and_then(|(_, arn)| arn.split(':').nth(4).map(str::to_string));
        let lists_images = body.contains("Action=DescribeImages");
        HttpConnectorFuture::new(async move {
            if let Some(xml) = this.dynamic(endpoint, body, region, caller).await {
                return Ok(xml_response(200, xml));
            }
            let response = this.inner.call(request).await?;
            if assumed.is_none() && !lists_images {
                return Ok(response);
            }
            // Learn which account an AssumeRole session belongs to, or add
            // the copies' sources (the body streams: read it whole, then
            // hand it on).
            let status = response.status();
            let mut headers = response.headers().clone();
            let bytes = aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
                .collect()
                .await
                .unwrap()
                .into_bytes();
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(account) = assumed
                && let Some(key) = text
                    .split("<AccessKeyId>")
                    .nth(1)
                    .and_then(|t| t.split("</AccessKeyId>").next())
            {
                this.sessions
                    .lock()
                    .unwrap()
                    .insert(key.to_string(), account);
            }
            if lists_images {
                text = with_copy_sources(&text);
                headers.remove("content-length");
            }
            let mut rebuilt = Response::new(status, SdkBody::from(text));
            *rebuilt.headers_mut() = headers;
            Ok(rebuilt)
        })
    }
}

fn xml_response(status: u16, xml: String) -> Response {
    typed_response(status, xml, "text/xml;charset=UTF-8")
}

fn typed_response(status: u16, body: String, content_type: &'static str) -> Response {
    let mut response = Response::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", content_type);
    response
}

/// Creates a launch template whose first version launches `image`; returns its id.
pub async fn create_launch_template(
    client: &aws_sdk_ec2::Client,
    name: &str,
    image: &str,
) -> String {
    client
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(image)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .launch_template()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string()
}

/// Registers an EBS-backed AMI (one 8 GiB root volume) and returns its id.
pub async fn register_image(client: &aws_sdk_ec2::Client, name: &str) -> String {
    use aws_sdk_ec2::types as ec2;
    let id = client
        .register_image()
        .name(name)
        .root_device_name("/dev/xvda")
        .block_device_mappings(
            ec2::BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(ec2::EbsBlockDevice::builder().volume_size(8).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    remember_image(client, &id).await;
    id
}

/// Registers an AMI with tags.
pub async fn register(client: &aws_sdk_ec2::Client, name: &str, tags: &[(&str, &str)]) -> String {
    let id = register_image(client, name).await;
    if !tags.is_empty() {
        let mut request = client.create_tags().resources(&id);
        for (k, v) in tags {
            request = request.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
        }
        request.send().await.unwrap();
    }
    id
}

/// Runs one instance of `image` with a Name tag.
pub async fn run_instance(client: &aws_sdk_ec2::Client, image: &str, name: &str) -> String {
    client
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value(name)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string()
}

/// Creates an AMI from an instance (EC2 makes its snapshots with a
/// `Created by CreateImage(i-...) for ami-...` description) and returns its id.
pub async fn create_image(client: &aws_sdk_ec2::Client, instance: &str, name: &str) -> String {
    let id = client
        .create_image()
        .instance_id(instance)
        .name(name)
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    remember_image(client, &id).await;
    let source = client
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .image_id()
        .unwrap()
        .to_string();
    let region = client.config().region().unwrap().to_string();
    CREATED
        .lock()
        .unwrap()
        .insert(id.clone(), (source, region, instance.to_string()));
    id
}

/// Every request a [`Refusing`] client saw: (method, URI), in order.
pub type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Forwards to moto, but answers the requests `refuse` picks (method, URI)
/// with `status` and an AWS-shaped error body: how the delivery tests make
/// one S3 upload or one BatchImportFindings call fail the way AWS fails it
/// (moto enforces no IAM). Records every request it sees.
#[derive(Debug, Clone)]
pub struct Refusing {
    inner: SharedHttpClient,
    refuse: fn(&str, &str) -> bool,
    status: u16,
    content_type: &'static str,
    body: &'static str,
    seen: Seen,
    /// Send the refused request on and drop moto's answer (only the
    /// first time that request is seen): a write that happened, whose
    /// response was lost.
    lose_first_response: bool,
}

impl Refusing {
    pub fn client(
        refuse: fn(&str, &str) -> bool,
        status: u16,
        content_type: &'static str,
        body: &'static str,
    ) -> (SharedHttpClient, Seen) {
        let seen = Seen::default();
        let client = SharedHttpClient::new(Refusing {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            refuse,
            status,
            content_type,
            body,
            seen: seen.clone(),
            lose_first_response: false,
        });
        (client, seen)
    }

    /// Forwards everything, but the first time a request `lose` picks is
    /// sent, moto's answer is replaced by a 500 (the SDK then retries).
    pub fn losing_first_response(lose: fn(&str, &str) -> bool) -> (SharedHttpClient, Seen) {
        let seen = Seen::default();
        let client = SharedHttpClient::new(Refusing {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            refuse: lose,
            status: 500,
            content_type: "application/xml",
            body: "<Error><Code>InternalError</Code><Message>the response was lost</Message></Error>",
            seen: seen.clone(),
            lose_first_response: true,
        });
        (client, seen)
    }
}

impl HttpClient for Refusing {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RefusingConnector {
            inner: self.inner.http_connector(settings, components),
            refuse: self.refuse,
            status: self.status,
            content_type: self.content_type,
            body: self.body,
            seen: self.seen.clone(),
            lose_first_response: self.lose_first_response,
        })
    }
}

#[derive(Debug, Clone)]
struct RefusingConnector {
    inner: SharedHttpConnector,
    refuse: fn(&str, &str) -> bool,
    status: u16,
    content_type: &'static str,
    body: &'static str,
    seen: Seen,
    /// Send the refused request on and drop moto's answer (only the
    /// first time that request is seen): a write that happened, whose
    /// response was lost.
    lose_first_response: bool,
}

impl HttpConnector for RefusingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let this = (request.method().to_string(), request.uri().to_string());
        let first = {
            let mut seen = self.seen.lock().unwrap();
            let first = !seen.contains(&this);
            seen.push(this);
            first
        };
        if self.lose_first_response {
            if !(first && (self.refuse)(request.method(), request.uri())) {
                return self.inner.call(request);
            }
            let sent = self.inner.call(request);
            let lost = typed_response(self.status, self.body.to_string(), self.content_type);
            return HttpConnectorFuture::new(async move {
                sent.await?;
                Ok(lost)
            });
        }
        if (self.refuse)(request.method(), request.uri()) {
            return HttpConnectorFuture::ready(Ok(typed_response(
                self.status,
                self.body.to_string(),
                self.content_type,
            )));
        }
        self.inner.call(request)
    }
}
