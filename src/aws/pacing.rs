//! EC2's request limits, kept on our side: pacing and the retry budget.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

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
pub(super) fn paced_http_client(
    base: &SdkConfig,
    pacing: Option<Pacing>,
) -> Option<SharedHttpClient> {
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
    use super::*;

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
