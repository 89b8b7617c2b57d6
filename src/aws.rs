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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_ec2::config::retry::RetryPartition;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

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

/// A failed call, reduced to what the inventory keeps: AWS's error code and
/// message (never request details, which could carry credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub code: String,
    pub message: String,
}

impl CallError {
    pub fn from_sdk<E>(
        error: &aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        match error {
            SdkError::ServiceError(context) => {
                let e = context.err();
                // A body without an error code (an HTML 500 page) still has a status.
                let status = format!("HTTP{}", context.raw().status().as_u16());
                CallError {
                    code: e.code().unwrap_or(&status).to_string(),
                    message: e
                        .message()
                        .map(str::to_string)
                        .unwrap_or_else(|| error_chain(e)),
                }
            }
            SdkError::TimeoutError(_) => CallError {
                code: "Timeout".to_string(),
                message: "the call did not complete within the operation timeout".to_string(),
            },
            SdkError::DispatchFailure(failure) => CallError {
                code: if failure.is_timeout() {
                    "Timeout"
                } else {
                    "DispatchFailure"
                }
                .to_string(),
                message: error_chain(error),
            },
            SdkError::ResponseError(_) => CallError {
                code: "InvalidResponse".to_string(),
                message: error_chain(error),
            },
            _ => CallError {
                code: "ClientError".to_string(),
                message: error_chain(error),
            },
        }
    }

    fn from_credentials(error: &aws_credential_types::provider::error::CredentialsError) -> Self {
        // The STS error's code sits in the source chain as text.
        let message = error_chain(error);
        let code = [
            "AccessDenied",
            "ExpiredToken",
            "InvalidClientTokenId",
            "RegionDisabled",
        ]
        .into_iter()
        .find(|c| message.contains(c))
        .unwrap_or("AssumeRoleFailed");
        CallError {
            code: code.to_string(),
            message,
        }
    }

    pub fn is_opt_in_required(&self) -> bool {
        self.code == "OptInRequired"
    }
}

/// An error and its sources on one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ").replace(['\n', '\r'], " ")
}

/// Counts per operation: calls (executions), attempts and throttled responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallCounts {
    pub calls: u64,
    pub attempts: u64,
    pub throttled: u64,
}

/// Records every operation the scanner invokes, as `service:Operation` with
/// IAM service prefixes, so a test can hold them against the shipped IAM
/// policy and `--stats` can print them.
#[derive(Debug, Clone, Default)]
pub struct CallRecorder {
    counts: Arc<Mutex<BTreeMap<String, CallCounts>>>,
}

impl CallRecorder {
    pub fn record(&self, service: &str, operation: &str) {
        self.bump(service, operation, |c| c.calls += 1);
    }

    fn bump(&self, service: &str, operation: &str, f: impl FnOnce(&mut CallCounts)) {
        let key = format!("{}:{operation}", iam_prefix(service));
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        f(counts.entry(key).or_default());
    }

    /// `service:Operation` -> counts, sorted.
    pub fn snapshot(&self) -> BTreeMap<String, CallCounts> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The IAM action prefix of an SDK service name (`Inspector2` -> `inspector2`,
/// `Auto Scaling` -> `autoscaling`).
fn iam_prefix(service: &str) -> String {
    service
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn metadata(cfg: &ConfigBag) -> Option<(String, String)> {
    cfg.load::<Metadata>()
        .map(|m| (m.service().to_string(), m.name().to_string()))
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "amiaudit::CallRecorder"
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The operation's metadata is not in the bag yet before execution.
        if let Some((service, operation)) = metadata(cfg) {
            self.record(&service, &operation);
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some((service, operation)) = metadata(cfg) {
            self.bump(&service, &operation, |c| c.attempts += 1);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(response) = context.response() else {
            return Ok(());
        };
        let status = response.status().as_u16();
        let error_type = response.headers().get("x-amzn-errortype").unwrap_or("");
        // EC2 answers RequestLimitExceeded with 503; JSON services name the
        // throttling exception in a header.
        if (status == 429 || status == 503 || error_type.starts_with("Throttling"))
            && let Some((service, operation)) = metadata(cfg)
        {
            self.bump(&service, &operation, |c| c.throttled += 1);
        }
        Ok(())
    }
}

/// EC2's request throttling, mirrored on our side: per account, region and
/// action a token bucket of `capacity` tokens refilled at
/// `refill_per_second` (the EC2 API reference, "Request throttling":
/// non-mutating actions 100 and 20). A call waits for its token instead of
/// being sent to fail: the SDK's adaptive retry mode discovers the limit by
/// failing, then slows the whole client (every action of the account-region)
/// and recovers slowly; measured in BENCHMARKS.md.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    pub capacity: f64,
    pub refill_per_second: f64,
}

impl Pacing {
    pub const EC2: Pacing = Pacing {
        capacity: 100.0,
        refill_per_second: 20.0,
    };

    /// The burst and rate `parse` accepts: one call up to a hundred times
    /// EC2's own bucket, and from one call in 100 s up to ten thousand a
    /// second. A rate nearer zero waits longer than a scan can
    /// (`1/1e-300` overflowed the wait and failed every region).
    pub const BURST_RANGE: std::ops::RangeInclusive<f64> = 1.0..=10_000.0;
    pub const RATE_RANGE: std::ops::RangeInclusive<f64> = 0.01..=10_000.0;

    /// `BURST/RATE` (a bucket of BURST calls refilled at RATE a second) or
    /// `off` (`Some(None)`); `None` for anything else, or a burst or rate
    /// outside [`Self::BURST_RANGE`] and [`Self::RATE_RANGE`].
    pub fn parse(text: &str) -> Option<Option<Pacing>> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Some(None);
        }
        let (burst, rate) = text.split_once('/')?;
        let capacity: f64 = burst.trim().parse().ok()?;
        let refill_per_second: f64 = rate.trim().parse().ok()?;
        let usable =
            Self::BURST_RANGE.contains(&capacity) && Self::RATE_RANGE.contains(&refill_per_second);
        usable.then_some(Some(Pacing {
            capacity,
            refill_per_second,
        }))
    }
}

/// The buckets of one account-region's EC2 client, by action.
#[derive(Debug)]
struct Pacer {
    pacing: Pacing,
    buckets: Mutex<BTreeMap<String, (f64, tokio::time::Instant)>>,
}

impl Pacer {
    /// Reserves a token for `action`: how long to wait before sending.
    /// Tokens may go negative: later callers queue behind earlier ones.
    fn reserve(&self, action: &str) -> Duration {
        let now = tokio::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry(action.to_string())
            .or_insert((self.pacing.capacity, now));
        let refilled =
            bucket.0 + now.duration_since(bucket.1).as_secs_f64() * self.pacing.refill_per_second;
        bucket.0 = refilled.min(self.pacing.capacity) - 1.0;
        bucket.1 = now;
        if bucket.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.0 / self.pacing.refill_per_second)
        }
    }
}

/// An HTTP client that sends each EC2 Query request once its action's
/// bucket holds a token.
#[derive(Debug, Clone)]
struct PacedClient {
    inner: SharedHttpClient,
    pacer: Arc<Pacer>,
}

impl aws_smithy_runtime_api::client::http::HttpClient for PacedClient {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: self.pacer.clone(),
        })
    }
}

#[derive(Debug, Clone)]
struct PacedConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    pacer: Arc<Pacer>,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for PacedConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        // EC2 is a Query API: the action is a form field of the body.
        let action = request
            .body()
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|body| body.split('&').find_map(|kv| kv.strip_prefix("Action=")))
            .unwrap_or("")
            .to_string();
        let wait = self.pacer.reserve(&action);
        let inner = self.inner.clone();
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            inner.call(request).await
        })
    }
}

/// `base`'s HTTP client, paced per action with `pacing` (None: unpaced).
fn paced_http_client(base: &SdkConfig, pacing: Option<Pacing>) -> Option<SharedHttpClient> {
    let pacing = pacing?;
    let inner = base.http_client()?;
    Some(SharedHttpClient::new(PacedClient {
        inner,
        pacer: Arc::new(Pacer {
            pacing,
            buckets: Mutex::new(BTreeMap::new()),
        }),
    }))
}

/// Retries of server errors (5xx, timeouts: not throttling) an
/// account-region may spend in all: an emulator or a region that answers
/// one call with HTTP 500 every time would otherwise cost its
/// account-region five backed-off retries per call. Throttling keeps its
/// retries (and is paced, see [`Pacing`]); a call given up is a scan error.
pub const SERVER_ERROR_RETRIES_PER_ACCOUNT_REGION: i64 = 2;

/// The account-region's budget of server-error retries, shared by its
/// clients: runs after the SDK's classifiers and forbids a server-error
/// retry once the budget is spent.
#[derive(Debug, Clone)]
pub struct ServerErrorBudget(Arc<std::sync::atomic::AtomicI64>);

impl ServerErrorBudget {
    pub fn new(retries: i64) -> Self {
        ServerErrorBudget(Arc::new(std::sync::atomic::AtomicI64::new(retries)))
    }
}

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry for ServerErrorBudget {
    fn classify_retry(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryAction;
        // A server error by its status: 500, 502, 504 and the like. 503 is
        // left alone: EC2 answers RequestLimitExceeded with it.
        let server_error = ctx
            .response()
            .map(|r| r.status().as_u16())
            .is_some_and(|s| s >= 500 && s != 503);
        if !server_error {
            return RetryAction::NoActionIndicated;
        }
        let left = self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if left > 0 {
            RetryAction::NoActionIndicated
        } else {
            RetryAction::RetryForbidden
        }
    }

    fn name(&self) -> &'static str {
        "amiaudit::ServerErrorBudget"
    }

    fn priority(
        &self,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
        // After every classifier the SDK installs (AWS error codes included).
        RetryClassifierPriority::run_after(RetryClassifierPriority::run_after(
            RetryClassifierPriority::transient_error_classifier(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::Pacing;

    #[test]
    fn pacing_is_burst_over_rate_or_off() {
        let paced = |capacity, refill_per_second| {
            Some(Some(Pacing {
                capacity,
                refill_per_second,
            }))
        };
        assert_eq!(Pacing::parse("100/20"), paced(100.0, 20.0));
        assert_eq!(Pacing::parse(" 400 / 2.5 "), paced(400.0, 2.5));
        assert_eq!(Pacing::parse("OFF"), Some(None));
        for bad in [
            "20", "0/20", "100/0", "100/-1", "100/inf", "NaN/1", "a/b", "100/20/1", "", "1/1e-300",
            "1/0.001", "1e9/20", "100/1e9",
        ] {
            assert_eq!(Pacing::parse(bad), None, "{bad}");
        }
    }
}
