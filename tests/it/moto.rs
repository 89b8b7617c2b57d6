//! moto server for the scanner tests: started per test on a free loopback
//! port, seeded through the AWS SDK, plus an HTTP client wrapper that
//! answers the few calls moto does not implement (in AWS's wire format) and
//! denies AssumeRole into one account.
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;

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

/// Wraps the SDK's HTTP client: answers what moto lacks, denies AssumeRole
/// into `denied_account`, forwards the rest to moto.
#[derive(Debug, Clone)]
pub struct MotoGaps {
    inner: SharedHttpClient,
    denied_account: String,
    /// EC2 calls to this region hang for a minute (for the interruption test).
    slow_region: Option<String>,
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
        })
    }
}

#[derive(Debug)]
struct GapConnector {
    inner: SharedHttpConnector,
    denied_account: String,
    slow_region: Option<String>,
}

/// The Get* settings moto does not implement, per region, so the test can
/// tell that each answer reached the right account-region row.
pub fn settings_for(region: &str) -> (&'static str, &'static str, &'static str) {
    match region {
        "eu-west-1" => ("block-new-sharing", "block-all-sharing", "enabled"),
        _ => ("unblocked", "unblocked", "disabled"),
    }
}

fn ec2_xml(action: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>5a3c2b1e-0000-4000-8000-000000000000</requestId>{inner}</{action}Response>"
    )
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
            _ => return None,
        })
    }
}

impl HttpConnector for GapConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap_or_default();
        // The SigV4 credential scope names the region: .../20261123/eu-west-1/ec2/aws4_request
        let region = request
            .headers()
            .get("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(2))
            .unwrap_or("us-east-1")
            .to_string();
        match self.canned(&body, &region) {
            Some((status, xml)) => {
                let mut response = Response::new(
                    StatusCode::try_from(status).expect("valid status"),
                    SdkBody::from(xml),
                );
                response
                    .headers_mut()
                    .insert("content-type", "text/xml;charset=UTF-8");
                HttpConnectorFuture::ready(Ok(response))
            }
            None if self.slow_region.as_deref() == Some(region.as_str())
                && body.contains("Action=DescribeImages") =>
            {
                let forward = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    forward.await
                })
            }
            None => self.inner.call(request),
        }
    }
}

/// Registers an EBS-backed AMI (one 8 GiB root volume) and returns its id.
pub async fn register_image(client: &aws_sdk_ec2::Client, name: &str) -> String {
    use aws_sdk_ec2::types as ec2;
    client
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
        .to_string()
}
