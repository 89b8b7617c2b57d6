//! AWS SDK plumbing shared by `discover` and `collect`.
//!
//! Owns: the one base `SdkConfig` (credential chain, home region, endpoint,
//! one shared HTTP client, timeouts, standard retry), EC2 request pacing
//! per account, region and action ([`Pacing`]), per-account credentials
//! (AssumeRole with its own identity cache), per-account-region clients with
//! their own retry partition (EC2 throttles per account and region, so one
//! account's throttling must not slow the others), error classification,
//! and the [`CallRecorder`] interceptor that counts every operation invoked.
//!
//! **Invariant:** credentials never leave the SDK's providers: nothing here
//! formats, logs or stores a key or session token. Errors carry only AWS
//! error codes and messages.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_ec2::config::retry::RetryPartition;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

mod errors;
mod pacing;
mod recorder;

pub use errors::CallError;
use pacing::paced_http_client;
pub use pacing::{Pacing, SERVER_ERROR_RETRIES_PER_ACCOUNT_REGION, ServerErrorBudget};
pub use recorder::{CallCounts, CallRecorder};

/// How to reach AWS: the settings every client is built from.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Named profile of the shared config files.
    pub profile: Option<String>,
    /// Home region: STS, Organizations and DescribeRegions calls go here.
    pub region: Option<String>,
    /// Every call goes to this endpoint (emulators); `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
    /// Attempts per call, first included, with exponential backoff between.
    pub max_attempts: u32,
    /// EC2 request pacing per account, region and action (None: unpaced).
    pub pacing: Option<Pacing>,
    /// Limit for one whole operation, retries included.
    pub operation_timeout: Duration,
    /// A custom HTTP client (tests and benchmarks); [`https_client`] otherwise.
    pub http_client: Option<SharedHttpClient>,
    /// Fixed caller credentials (tests and benchmarks); the standard chain otherwise.
    pub credentials: Option<SharedCredentialsProvider>,
}

impl Connection {
    pub fn new() -> Self {
        Connection {
            max_attempts: 6,
            pacing: Some(Pacing::EC2),
            operation_timeout: Duration::from_secs(60),
            ..Default::default()
        }
    }
}

/// The home region when nothing configures one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Loads the base configuration from the standard credential chain.
pub async fn base_config(connection: &Connection) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        // Standard, not adaptive: adaptive's client-side rate limiter slows
        // every action of the client after one throttle and recovers
        // slowly; EC2's limit is paced per action instead (`Pacing`).
        .retry_config(RetryConfig::standard().with_max_attempts(connection.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(30))
                .operation_timeout(connection.operation_timeout)
                .build(),
        );
    if let Some(profile) = &connection.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &connection.region {
        // Given up front, so the region chain (which may ask IMDS) never runs.
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &connection.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let client = connection.http_client.clone().unwrap_or_else(https_client);
    loader = loader.http_client(client);
    if let Some(credentials) = &connection.credentials {
        loader = loader.credentials_provider(credentials.clone());
    }
    let config = loader.load().await;
    if config.region().is_some() {
        return config;
    }
    config
        .into_builder()
        .region(Region::new(DEFAULT_REGION))
        .build()
}

/// The HTTPS client every AWS call goes through: hyper 1 and rustls on ring
/// with the system's root certificates, honouring `HTTPS_PROXY`/`NO_PROXY`,
/// as the SDK's `default-https-client` (rustls on aws-lc, a C library that
/// alone took a fresh machine's build 40 s of CPU) would.
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = aws_smithy_http_client::ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Credentials for one account: its own provider and identity cache, cloned
/// into every regional client of that account.
#[derive(Clone, Debug)]
pub struct AccountCredentials {
    pub account_id: String,
    provider: SharedCredentialsProvider,
    cache: aws_sdk_ec2::config::SharedIdentityCache,
}

impl AccountCredentials {
    /// The caller's own credentials (the caller's account is scanned with them).
    pub fn own(base: &SdkConfig, account_id: &str) -> Option<Self> {
        let provider = base.credentials_provider()?;
        Some(AccountCredentials {
            account_id: account_id.to_string(),
            provider,
            cache: aws_sdk_ec2::config::IdentityCache::lazy().build(),
        })
    }

    /// Assumes `role_arn` and fetches the first credentials now: a denied
    /// AssumeRole would otherwise only surface later as a dispatch failure
    /// without an error code on the first EC2 call.
    pub async fn assume(
        base: &SdkConfig,
        account_id: &str,
        role_arn: &str,
        external_id: Option<&str>,
        session_name: &str,
        recorder: &CallRecorder,
    ) -> Result<Self, CallError> {
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .configure(base)
            .session_name(session_name);
        if let Some(id) = external_id {
            builder = builder.external_id(id);
        }
        let provider = builder.build().await;
        // The provider's own STS client does not carry our interceptor.
        recorder.record("sts", "AssumeRole");
        if let Err(error) = provider.provide_credentials().await {
            return Err(CallError::from_credentials(&error));
        }
        Ok(AccountCredentials {
            account_id: account_id.to_string(),
            provider: SharedCredentialsProvider::new(provider),
            cache: aws_sdk_ec2::config::IdentityCache::lazy().build(),
        })
    }
}

/// The service clients for one account-region.
#[derive(Clone, Debug)]
pub struct RegionClients {
    pub ec2: aws_sdk_ec2::Client,
    pub inspector: aws_sdk_inspector2::Client,
    pub kms: aws_sdk_kms::Client,
    pub imagebuilder: aws_sdk_imagebuilder::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub rbin: aws_sdk_rbin::Client,
}

/// Builds one service config with the account's credentials, the region,
/// a retry partition of its own, the account-region's server-error retry
/// budget, and the recorder.
macro_rules! service_config {
    ($krate:ident, $base:expr, $creds:expr, $region:expr, $recorder:expr, $budget:expr) => {
        $krate::config::Builder::from($base)
            .retry_classifier($budget.clone())
            .region(Region::new($region.to_string()))
            .credentials_provider($creds.provider.clone())
            .identity_cache($creds.cache.clone())
            .retry_partition(RetryPartition::new(format!(
                "{}-{}-{}",
                stringify!($krate),
                $creds.account_id,
                $region
            )))
            .interceptor($recorder.clone())
            .build()
    };
}

impl RegionClients {
    pub fn new(
        base: &SdkConfig,
        credentials: &AccountCredentials,
        region: &str,
        recorder: &CallRecorder,
        pacing: Option<Pacing>,
    ) -> Self {
        let budget = ServerErrorBudget::new(SERVER_ERROR_RETRIES_PER_ACCOUNT_REGION);
        RegionClients {
            ec2: {
                let mut config =
                    service_config!(aws_sdk_ec2, base, credentials, region, recorder, budget)
                        .to_builder();
                if let Some(paced) = paced_http_client(base, pacing) {
                    config = config.http_client(paced);
                }
                aws_sdk_ec2::Client::from_conf(config.build())
            },
            inspector: aws_sdk_inspector2::Client::from_conf(service_config!(
                aws_sdk_inspector2,
                base,
                credentials,
                region,
                recorder,
                budget
            )),
            kms: aws_sdk_kms::Client::from_conf(service_config!(
                aws_sdk_kms,
                base,
                credentials,
                region,
                recorder,
                budget
            )),
            imagebuilder: aws_sdk_imagebuilder::Client::from_conf(service_config!(
                aws_sdk_imagebuilder,
                base,
                credentials,
                region,
                recorder,
                budget
            )),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(service_config!(
                aws_sdk_autoscaling,
                base,
                credentials,
                region,
                recorder,
                budget
            )),
            ssm: aws_sdk_ssm::Client::from_conf(service_config!(
                aws_sdk_ssm,
                base,
                credentials,
                region,
                recorder,
                budget
            )),
            rbin: aws_sdk_rbin::Client::from_conf(service_config!(
                aws_sdk_rbin,
                base,
                credentials,
                region,
                recorder,
                budget
            )),
        }
    }
}

/// Clients that use the caller's own credentials in the home region.
pub fn sts_client(base: &SdkConfig, recorder: &CallRecorder) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::config::Builder::from(base)
        .interceptor(recorder.clone())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

pub fn organizations_client(
    base: &SdkConfig,
    recorder: &CallRecorder,
) -> aws_sdk_organizations::Client {
    let config = aws_sdk_organizations::config::Builder::from(base)
        .interceptor(recorder.clone())
        .build();
    aws_sdk_organizations::Client::from_conf(config)
}

/// An EC2 client for `account` in the home region (DescribeRegions).
pub fn home_ec2_client(
    base: &SdkConfig,
    credentials: &AccountCredentials,
    recorder: &CallRecorder,
) -> aws_sdk_ec2::Client {
    let region = base
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    // Discovery's client: its own budget (it is one account-region's worth).
    let budget = ServerErrorBudget::new(SERVER_ERROR_RETRIES_PER_ACCOUNT_REGION);
    aws_sdk_ec2::Client::from_conf(service_config!(
        aws_sdk_ec2,
        base,
        credentials,
        region,
        recorder,
        budget
    ))
}
