//! A failed call, as the inventory keeps it.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

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

    pub(super) fn from_credentials(
        error: &aws_credential_types::provider::error::CredentialsError,
    ) -> Self {
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
