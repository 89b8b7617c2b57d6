//! Call helpers shared by the service modules: paging, bounded fan-out,
//! and SDK values as inventory cells.

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::result::SdkError;
use chrono::DateTime;
use futures_util::StreamExt;

use crate::aws::CallError;
use crate::inventory::Millis;

pub type CallResult<T> = Result<T, CallError>;

/// An SDK error, reduced to what the inventory keeps.
pub fn sdk<E>(e: SdkError<E, aws_smithy_runtime_api::http::Response>) -> CallError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    CallError::from_sdk(&e)
}

/// A request that could not be built (a builder refused its input).
pub fn invalid_request(e: impl std::fmt::Display) -> CallError {
    CallError {
        code: "InvalidRequest".to_string(),
        message: e.to_string(),
    }
}

/// One call per id, at most `limit` in flight, results in the order of `ids`.
pub async fn each_bounded<T, Call, Fut>(
    ids: impl IntoIterator<Item = String>,
    limit: usize,
    call: Call,
) -> Vec<(String, CallResult<T>)>
where
    Call: Fn(String) -> Fut,
    Fut: std::future::Future<Output = CallResult<T>>,
{
    futures_util::stream::iter(ids)
        .map(|id| {
            let pending = call(id.clone());
            async move { (id, pending.await) }
        })
        .buffered(limit.max(1))
        .collect()
        .await
}

/// Walks every page of a paginated call, keeping the items of each page.
pub async fn all_pages<Page, E, T>(
    mut pages: PaginationStream<Result<Page, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
    items: impl Fn(Page) -> Vec<T>,
) -> CallResult<Vec<T>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.extend(items(page.map_err(|e| CallError::from_sdk(&e))?));
    }
    Ok(out)
}

/// An EC2 timestamp string (ISO 8601) as milliseconds; None when absent or unreadable.
pub fn parse_time(text: Option<&str>) -> Option<Millis> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| Millis(t.timestamp_millis()))
}

pub fn smithy_time(t: Option<&aws_smithy_types::DateTime>) -> Option<Millis> {
    t.and_then(|t| t.to_millis().ok()).map(Millis)
}

pub fn text(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

pub fn enum_text<T: AsRef<str>>(e: Option<&T>) -> Option<String> {
    e.map(|e| e.as_ref().to_string())
}
