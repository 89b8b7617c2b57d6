//! Delivery: where a finished audit goes besides a local directory. An S3
//! evidence store ([`s3`]) and AWS Security Hub ([`security_hub`]).
//!
//! **Boundary.** This is the only room that makes calls to AWS that are not
//! List/Get/Describe: `s3:PutObject` to the one bucket the user names and
//! `securityhub:BatchImportFindings`, each only when asked for
//! (`--out s3://...`, `--security-hub`, `amiaudit export`). Their IAM
//! statements live apart from the scanner's (`deploy/evidence-bucket-policy.json`),
//! and the test that holds the scanner to `deploy/iam-policy.json` never
//! sees them. Everything here runs after `evidence`: it moves files that
//! are already complete and hashed, and never changes one.

pub mod kms;
pub mod s3;
pub mod security_hub;

use crate::error::{Error, Result};

/// A place an audit is read from or written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(std::path::PathBuf),
    S3(s3::S3Location),
}

impl Default for Location {
    fn default() -> Self {
        Location::Local(std::path::PathBuf::new())
    }
}

impl Location {
    /// `s3://bucket/prefix/` or a local path ([`local_path`]). Anything
    /// else that looks like a URL (`s3:/b/p/`, `https://...`) is refused,
    /// never written as a local directory named `s3:`.
    pub fn parse(text: &str) -> Result<Location> {
        if text
            .get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("s3://"))
        {
            return s3::S3Location::parse(text).map(Location::S3);
        }
        if url_scheme(text).is_some() {
            return Err(Error::input(format!(
                "`{}` looks like a URL but is not s3://BUCKET/PREFIX/, the only one amiaudit reads and writes (write ./{} for a local name with a colon)",
                text.escape_debug(),
                text.escape_debug()
            )));
        }
        local_path(text).map(Location::Local)
    }
}

/// A path given for a local file or directory, refused when it cannot
/// mean one: empty, with whitespace around it (` s3://b/` would be a
/// directory named ` s3:`), or looking like a URL (`s3://b/p/` where only
/// a local directory is written).
pub fn local_path(text: &str) -> Result<std::path::PathBuf> {
    let shown = text.escape_debug();
    if text.is_empty() {
        return Err(Error::input("an empty path is not a location"));
    }
    if text.trim() != text {
        return Err(Error::input(format!(
            "`{shown}` begins or ends with whitespace; write the path without it"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() || crate::text::is_bidi_control(c) || crate::text::is_invisible(c))
    {
        return Err(Error::input(format!(
            "`{shown}` holds a control or invisible character; write the path without it"
        )));
    }
    match url_scheme(text) {
        Some(scheme) if scheme.eq_ignore_ascii_case("s3") => Err(Error::input(format!(
            "`{shown}`: this takes a local path; s3:// locations are for audit --out, --baseline, verify, diff and export"
        ))),
        Some(scheme) => Err(Error::input(format!(
            "`{shown}` looks like a URL ({scheme}:); this takes a local path (write ./{shown} for a local name with a colon)"
        ))),
        None => Ok(text.into()),
    }
}

/// The scheme of a text that starts like a URL: two or more letters,
/// digits, `+`, `-` or `.`, the first a letter, then `:` (RFC 3986; one
/// letter is a Windows drive, `C:`).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (starts && scheme.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
        .then_some(scheme)
}

/// Runs one delivery task to completion on a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// `AccessDenied: Access Denied` from an SDK error: the AWS code and
/// message, or the error's own text when AWS sent none (a connection
/// failure). Never a credential.
pub fn sdk_error_text<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => format!("{code} (HTTP {})", e.raw().status().as_u16()),
                _ => format!("HTTP {}", e.raw().status().as_u16()),
            }
        }
        other => {
            // The source chain says what went wrong (timeout, refused, DNS).
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}
