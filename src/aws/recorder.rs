//! Every operation the scanner invokes, counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

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
