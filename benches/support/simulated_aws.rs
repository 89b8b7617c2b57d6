//! A simulated AWS for the scan benchmark: an SDK HTTP client that answers
//! every call the scanner makes, in AWS's wire formats, after a fixed
//! latency, for an organization of any size. No sockets: what is measured is
//! the scanner's scheduling and the SDK's own work per call.
//!
//! Accounts are `100000000000 + i` (the first is the management account);
//! AssumeRole hands out the access key `ASIA<account id>`, so each later
//! request names its account in its SigV4 credential scope.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;

pub const MANAGEMENT: u64 = 100_000_000_000;

pub const REGIONS: [&str; 17] = [
    "us-east-1",
    "eu-west-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-central-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
];

/// The organization and how slow AWS is.
#[derive(Debug, Clone)]
pub struct SimulatedOrg {
    pub accounts: usize,
    pub regions: usize,
    /// Images in each account's first two regions.
    pub images: usize,
    /// Images of the one image-factory account-region (account 1, first region).
    pub factory_images: usize,
    /// Snapshots backing no image (backups, exports) in every account-region
    /// that has images.
    pub loose_snapshots: usize,
    pub latency: Duration,
    /// EC2's request throttling, when on: a token bucket per account,
    /// region and action.
    pub throttle: Option<TokenBuckets>,
}

/// (account, region, action) -> (tokens, when last refilled).
type Buckets = HashMap<(String, String, String), (f64, std::time::Instant)>;

/// EC2's token buckets (the EC2 API reference, "Request throttling"): each
/// account has, per region and per action, a bucket of `capacity` tokens
/// refilled at `refill_per_second`; a call takes one token, and a call
/// that finds the bucket empty is answered 503 `RequestLimitExceeded`.
/// Non-mutating actions (Describe*, Get*): 100 tokens, 20 per second.
/// Written apart from the scanner's own pacing (`amiaudit::aws::Pacing`)
/// on purpose: the oracle must not share the code it judges.
#[derive(Debug, Clone)]
pub struct TokenBuckets {
    pub capacity: f64,
    pub refill_per_second: f64,
    state: Arc<Mutex<Buckets>>,
    throttled: Arc<std::sync::atomic::AtomicU64>,
}

impl TokenBuckets {
    pub fn new(capacity: f64, refill_per_second: f64) -> Self {
        TokenBuckets {
            capacity,
            refill_per_second,
            state: Arc::default(),
            throttled: Arc::default(),
        }
    }

    /// Takes a token for (account, region, action); false when there is none.
    fn take(&self, account: &str, region: &str, action: &str) -> bool {
        let now = std::time::Instant::now();
        let mut state = self.state.lock().unwrap();
        let bucket = state
            .entry((account.to_string(), region.to_string(), action.to_string()))
            .or_insert((self.capacity, now));
        let refilled =
            bucket.0 + now.duration_since(bucket.1).as_secs_f64() * self.refill_per_second;
        bucket.0 = refilled.min(self.capacity);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            self.throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
    }

    /// Calls answered RequestLimitExceeded so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl SimulatedOrg {
    pub fn account_id(i: usize) -> String {
        (MANAGEMENT + i as u64).to_string()
    }

    pub fn images_in(&self, account: &str, region: &str) -> usize {
        let index = REGIONS
            .iter()
            .position(|r| *r == region)
            .unwrap_or(usize::MAX);
        if account == Self::account_id(1) && index == 0 {
            self.factory_images
        } else if index < 2 {
            self.images
        } else {
            0
        }
    }

    pub fn client(self) -> SharedHttpClient {
        SharedHttpClient::new(SimulatedClient(Arc::new(self)))
    }
}

#[derive(Debug, Clone)]
struct SimulatedClient(Arc<SimulatedOrg>);

impl HttpClient for SimulatedClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for SimulatedClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let org = self.0.clone();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap_or_default();
        let scope: Vec<String> = request
            .headers()
            .get("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .map(|c| {
                c.split(',')
                    .next()
                    .unwrap_or("")
                    .split('/')
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let key = scope.first().cloned().unwrap_or_default();
        let region = scope.get(2).cloned().unwrap_or_default();
        let service = scope.get(3).cloned().unwrap_or_default();
        let account = key
            .strip_prefix("ASIA")
            .map(str::to_string)
            .unwrap_or_else(|| SimulatedOrg::account_id(0));
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or("")
            .to_string();
        let path = request.uri().to_string();
        if std::env::var_os("SIM_DEBUG").is_some() {
            eprintln!("{} {path} {service} {target}", request.method());
        }
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(org.latency).await;
            if service == "ec2"
                && let Some(buckets) = &org.throttle
                && !buckets.take(&account, &region, action(&body))
            {
                let mut response = Response::new(
                    StatusCode::try_from(503u16).unwrap(),
                    SdkBody::from(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>1</RequestID></Response>",
                    ),
                );
                response.headers_mut().insert("content-type", "text/xml");
                return Ok(response);
            }
            let (content_type, text) =
                answer(&org, &service, &account, &region, &body, &target, &path);
            let mut response =
                Response::new(StatusCode::try_from(200u16).unwrap(), SdkBody::from(text));
            response.headers_mut().insert("content-type", content_type);
            Ok(response)
        })
    }
}

fn action(body: &str) -> &str {
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("")
}

fn param<'a>(body: &'a str, name: &str) -> &'a str {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .unwrap_or("")
}

fn xml(action: &str, namespace: &str, inner: &str) -> (&'static str, String) {
    (
        "text/xml",
        format!(
            "<{action}Response xmlns=\"{namespace}\">{inner}<requestId>1</requestId></{action}Response>"
        ),
    )
}

fn sts(action: &str, inner: &str) -> (&'static str, String) {
    (
        "text/xml",
        format!(
            "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>{inner}</{action}Result><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

const EC2: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

fn answer(
    org: &SimulatedOrg,
    service: &str,
    account: &str,
    region: &str,
    body: &str,
    target: &str,
    path: &str,
) -> (&'static str, String) {
    match service {
        "sts" => match action(body) {
            "AssumeRole" => {
                let role = param(body, "RoleArn").replace("%3A", ":");
                let id = role.split(':').nth(4).unwrap_or("0").to_string();
                sts(
                    "AssumeRole",
                    &format!(
                        "<Credentials><AccessKeyId>ASIA{id}</AccessKeyId><SecretAccessKey>simulated</SecretAccessKey><SessionToken>simulated</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROASIM:amiaudit</AssumedRoleId><Arn>arn:aws:sts::{id}:assumed-role/OrganizationAccountAccessRole/amiaudit</Arn></AssumedRoleUser>"
                    ),
                )
            }
            _ => sts(
                "GetCallerIdentity",
                &format!(
                    "<Arn>arn:aws:iam::{account}:user/auditor</Arn><UserId>AIDASIM</UserId><Account>{account}</Account>"
                ),
            ),
        },
        "organizations" => {
            let accounts = || {
                (0..org.accounts)
                    .map(|i| {
                        let id = SimulatedOrg::account_id(i);
                        format!(
                            "{{\"Id\":\"{id}\",\"Name\":\"acct-{i}\",\"Email\":\"aws+{i}@sim.example\",\"State\":\"ACTIVE\",\"Status\":\"ACTIVE\",\"JoinedTimestamp\":1700000000}}"
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let json = match target.rsplit('.').next().unwrap_or("") {
                "DescribeOrganization" => format!(
                    "{{\"Organization\":{{\"Id\":\"o-simulated\",\"Arn\":\"arn:aws:organizations::{MANAGEMENT}:organization/o-simulated\",\"MasterAccountId\":\"{MANAGEMENT}\",\"FeatureSet\":\"ALL\"}}}}"
                ),
                "ListRoots" => "{\"Roots\":[{\"Id\":\"r-sim\",\"Name\":\"Root\"}]}".to_string(),
                "ListOrganizationalUnitsForParent" => "{\"OrganizationalUnits\":[]}".to_string(),
                _ => format!("{{\"Accounts\":[{}]}}", accounts()),
            };
            ("application/x-amz-json-1.1", json)
        }
        "kms" => (
            "application/x-amz-json-1.1",
            format!(
                "{{\"KeyMetadata\":{{\"KeyId\":\"k\",\"Arn\":\"arn:aws:kms:{region}:{account}:key/k\",\"AWSAccountId\":\"{account}\",\"KeyManager\":\"CUSTOMER\",\"Enabled\":true}}}}"
            ),
        ),
        "inspector2" => {
            let json = if path.contains("/status/batch/get") {
                format!(
                    "{{\"accounts\":[{{\"accountId\":\"{account}\",\"state\":{{\"status\":\"ENABLED\"}},\"resourceState\":{{\"ec2\":{{\"status\":\"ENABLED\"}},\"ecr\":{{\"status\":\"DISABLED\"}}}}}}],\"failedAccounts\":[]}}"
                )
            } else {
                "{\"findings\":[]}".to_string()
            };
            ("application/json", json)
        }
        "imagebuilder" => (
            "application/json",
            imagebuilder(account, region, path, body),
        ),
        // No Recycle Bin rule anywhere: one listing per resource type.
        "rbin" => ("application/json", "{\"Rules\":[]}".to_string()),
        // No Auto Scaling group and no AMI parameter anywhere: one listing each.
        "autoscaling" => (
            "text/xml",
            "<DescribeAutoScalingGroupsResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>".to_string(),
        ),
        "ssm" => (
            "application/x-amz-json-1.1",
            "{\"Parameters\":[]}".to_string(),
        ),
        _ => ec2(org, account, region, body),
    }
}

/// EC2 Image Builder: five pipelines in the factory's account-region (each
/// with one build, a recipe, a distribution and an infrastructure
/// configuration) and one lifecycle policy; no pipelines anywhere else.
fn imagebuilder(account: &str, region: &str, path: &str, body: &str) -> String {
    let factory = account == SimulatedOrg::account_id(1) && region == REGIONS[0];
    let arn =
        |kind: &str, name: &str| format!("arn:aws:imagebuilder:{region}:{account}:{kind}/{name}");
    let names = ["base", "web", "data", "eks", "win"];
    let operation = path
        .split("://")
        .nth(1)
        .and_then(|p| p.split_once('/'))
        .map_or("", |(_, p)| p.split('?').next().unwrap_or(""));
    match operation {
        "ListImagePipelines" if factory => {
            let items: Vec<String> = names
                .iter()
                .map(|n| {
                    format!(
                        "{{\"arn\":\"{}\",\"name\":\"{n}\",\"status\":\"ENABLED\",\"schedule\":{{\"scheduleExpression\":\"cron(0 6 ? * mon *)\"}},\"imageTestsConfiguration\":{{\"imageTestsEnabled\":true}},\"imageScanningConfiguration\":{{\"imageScanningEnabled\":true}},\"consecutiveFailures\":0,\"imageRecipeArn\":\"{}\",\"infrastructureConfigurationArn\":\"{}\",\"distributionConfigurationArn\":\"{}\"}}",
                        arn("image-pipeline", n),
                        arn("image-recipe", &format!("{n}/1.0.0")),
                        arn("infrastructure-configuration", n),
                        arn("distribution-configuration", n)
                    )
                })
                .collect();
            format!("{{\"imagePipelineList\":[{}]}}", items.join(","))
        }
        "ListImagePipelines" => "{\"imagePipelineList\":[]}".to_string(),
        "ListImagePipelineImages" => format!(
            "{{\"imageSummaryList\":[{{\"arn\":\"{}\",\"version\":\"1.0.0\",\"state\":{{\"status\":\"AVAILABLE\"}},\"dateCreated\":\"2026-10-01T00:00:00.000Z\",\"outputResources\":{{\"amis\":[{{\"region\":\"{region}\",\"image\":\"ami-{account}00000\"}}]}}}}]}}",
            // One build per pipeline: the pipeline's name is the ARN's last part.
            arn(
                "image",
                &format!(
                    "{}/1.0.0/1",
                    body.rsplit('/')
                        .next()
                        .unwrap_or("base")
                        .trim_end_matches(['"', '}'])
                )
            )
        ),
        "GetImageRecipe" => format!(
            "{{\"imageRecipe\":{{\"arn\":\"{}\",\"name\":\"base\",\"version\":\"1.0.0\",\"parentImage\":\"ssm:/aws/service/ami\",\"blockDeviceMappings\":[{{\"deviceName\":\"/dev/xvda\",\"ebs\":{{\"encrypted\":true}}}}]}}}}",
            arn("image-recipe", "base/1.0.0")
        ),
        "GetDistributionConfiguration" => format!(
            "{{\"distributionConfiguration\":{{\"arn\":\"{}\",\"timeoutMinutes\":360,\"distributions\":[{{\"region\":\"{region}\",\"amiDistributionConfiguration\":{{\"kmsKeyId\":\"k\",\"launchPermission\":{{\"organizationArns\":[\"arn:aws:organizations::{MANAGEMENT}:organization/o-simulated\"]}}}}}}]}}}}",
            arn("distribution-configuration", "base")
        ),
        "GetInfrastructureConfiguration" => format!(
            "{{\"infrastructureConfiguration\":{{\"arn\":\"{}\",\"instanceMetadataOptions\":{{\"httpTokens\":\"required\"}}}}}}",
            arn("infrastructure-configuration", "base")
        ),
        "ListLifecyclePolicies" => format!(
            "{{\"lifecyclePolicySummaryList\":[{{\"arn\":\"{}\",\"status\":\"ENABLED\",\"resourceType\":\"AMI_IMAGE\"}}]}}",
            arn("lifecycle-policy", "retire")
        ),
        _ => format!(
            "{{\"lifecyclePolicy\":{{\"arn\":\"{}\",\"status\":\"ENABLED\",\"resourceType\":\"AMI_IMAGE\",\"policyDetails\":[{{\"action\":{{\"type\":\"DELETE\"}},\"filter\":{{\"type\":\"AGE\",\"value\":90,\"unit\":\"DAYS\"}}}}],\"resourceSelection\":{{\"recipes\":[{{\"name\":\"base\",\"semanticVersion\":\"x.x.x\"}}]}}}}}}",
            arn("lifecycle-policy", "retire")
        ),
    }
}

/// The Amazon Linux AMI of a region that every simulated image is built on.
fn base_image(region: &str) -> String {
    format!("ami-0base{}", region.replace('-', ""))
}

fn ec2(org: &SimulatedOrg, account: &str, region: &str, body: &str) -> (&'static str, String) {
    let action = action(body);
    let images = org.images_in(account, region);
    let inner = match action {
        "DescribeRegions" => {
            let items: String = REGIONS[..org.regions]
                .iter()
                .map(|r| format!("<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>"))
                .collect();
            format!("<regionInfo>{items}</regionInfo>")
        }
        // By id (a filter instead of Owner=self): the region's Amazon base
        // every image is built on, a root with its alias; nothing else
        // foreign is visible.
        "DescribeImages" if !body.contains("Owner.1=self") => {
            let base = base_image(region);
            if body.contains(&base) {
                format!(
                    "<imagesSet><item><imageId>{base}</imageId><imageOwnerId>137112412989</imageOwnerId><imageOwnerAlias>amazon</imageOwnerAlias><imageState>available</imageState><name>al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64</name><creationDate>2026-09-01T00:00:00.000Z</creationDate></item></imagesSet>"
                )
            } else {
                "<imagesSet/>".to_string()
            }
        }
        "DescribeImages" => {
            let items: String = (0..images)
                .map(|i| format!(
                    "<item><imageId>ami-{account}{i:05}</imageId><imageLocation>x</imageLocation><imageState>available</imageState><imageOwnerId>{account}</imageOwnerId><creationDate>2026-10-01T00:00:00.000Z</creationDate><isPublic>false</isPublic><architecture>x86_64</architecture><imageType>machine</imageType><name>web-golden-2026100{}-v{i}</name><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName><blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>snap-{account}{i:05}</snapshotId><volumeSize>8</volumeSize><deleteOnTermination>true</deleteOnTermination><volumeType>gp3</volumeType><encrypted>true</encrypted><kmsKeyId>arn:aws:kms:{region}:{account}:key/k</kmsKeyId></ebs></item></blockDeviceMapping><virtualizationType>hvm</virtualizationType><tagSet><item><key>Owner</key><value>platform</value></item></tagSet><hypervisor>xen</hypervisor><imdsSupport>v2.0</imdsSupport><sourceImageId>{}</sourceImageId><sourceImageRegion>{region}</sourceImageRegion><sourceInstanceId>i-{account}{i:05}</sourceInstanceId></item>",
                    i % 10,
                    base_image(region)
                ))
                .collect();
            format!("<imagesSet>{items}</imagesSet>")
        }
        // Nothing here is public.
        "DescribeSnapshots" if body.contains("RestorableBy.1=all") => "<snapshotSet/>".to_string(),
        "DescribeSnapshots" => {
            let loose = if images > 0 { org.loose_snapshots } else { 0 };
            let items: String = (0..images + loose)
                .map(|i| format!("<item><snapshotId>snap-{account}{i:05}</snapshotId><volumeId>vol-1</volumeId><status>completed</status><startTime>2026-10-01T00:00:00.000Z</startTime><progress>100%</progress><ownerId>{account}</ownerId><volumeSize>8</volumeSize><encrypted>true</encrypted></item>"))
                .collect();
            format!("<snapshotSet>{items}</snapshotSet>")
        }
        "DescribeInstances" => "<reservationSet/>".to_string(),
        "DescribeLaunchTemplateVersions" => "<launchTemplateVersionSet/>".to_string(),
        "GetEbsEncryptionByDefault" => {
            "<ebsEncryptionByDefault>true</ebsEncryptionByDefault>".to_string()
        }
        "GetEbsDefaultKmsKeyId" => "<kmsKeyId>alias/aws/ebs</kmsKeyId>".to_string(),
        "GetImageBlockPublicAccessState" => {
            "<imageBlockPublicAccessState>block-new-sharing</imageBlockPublicAccessState>"
                .to_string()
        }
        "GetSnapshotBlockPublicAccessState" => "<state>block-all-sharing</state>".to_string(),
        "GetAllowedImagesSettings" => "<state>enabled</state>".to_string(),
        "GetInstanceMetadataDefaults" => {
            "<accountLevel><httpTokens>required</httpTokens></accountLevel>".to_string()
        }
        // Its images are built from instances of the region's base, a
        // root: asked only of copies (there are none), the chain is the AMI
        // alone.
        "GetImageAncestry" => format!(
            "<imageAncestryEntrySet><item><imageId>{}</imageId><creationDate>2026-10-01T00:00:00.000Z</creationDate></item></imageAncestryEntrySet>",
            param(body, "ImageId")
        ),
        // Its instances and templates name no AMI of its own: nothing
        // references them (an empty set, as EC2 answers then).
        "DescribeImageReferences" => "<imageReferenceSet/>".to_string(),
        // No usage report was ever made (an empty set, as EC2 answers).
        "DescribeImageUsageReports" => "<imageUsageReportSet/>".to_string(),
        "DescribeImageAttribute" => format!(
            "<imageId>{}</imageId><launchPermission><item><userId>{MANAGEMENT}</userId></item></launchPermission>",
            param(body, "ImageId")
        ),
        "DescribeSnapshotAttribute" => format!(
            "<snapshotId>{}</snapshotId><createVolumePermission/>",
            param(body, "SnapshotId")
        ),
        other => {
            panic!("the simulated AWS does not know ec2:{other} ({account} {region}: {body:.200})")
        }
    };
    xml(action, EC2, &inner)
}
