//! Warden's errors, typed: the ErrorInfo reason as the contract's `ErrorReason` enum, with the
//! field violations, metadata, retry delay and request id the status carries.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;

use crate::pb::ErrorReason;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a call to Warden can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Warden (or something between) answered with a non-OK status.
    #[error("{} ({}): {message}", code_name(*code), reason_text.as_deref().unwrap_or("no reason"))]
    Api {
        code: Code,
        /// The ErrorInfo reason, when it is one this client knows.
        reason: Option<ErrorReason>,
        /// The ErrorInfo reason as sent (a newer server may send one `reason` cannot name);
        /// None when the status carried no ErrorInfo (it did not come from Warden).
        reason_text: Option<String>,
        message: String,
        /// ErrorInfo metadata, e.g. `missing` for NOT_FOUND and PERMISSION_DENIED.
        metadata: HashMap<String, String>,
        /// BadRequest field violations (INVALID_ARGUMENT): field path and description.
        field_violations: Vec<(String, String)>,
        /// RetryInfo: when the server says to try again.
        retry_after: Option<Duration>,
        /// RequestInfo: the server's request id, for its logs.
        request_id: Option<String>,
    },
    /// The token source failed (an unreadable file, a callback error).
    #[error("token: {0}")]
    Token(String),
    /// The client was configured wrongly (a bad URL, an unreadable CA).
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// The error of a failed call.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let info = details.error_info();
        let reason_text = info.map(|i| i.reason.clone());
        Error::Api {
            code: status.code(),
            reason: reason_text
                .as_deref()
                .and_then(ErrorReason::from_str_name)
                .filter(|r| *r != ErrorReason::Unspecified),
            reason_text,
            message: status.message().to_owned(),
            metadata: info.map(|i| i.metadata.clone()).unwrap_or_default(),
            field_violations: details
                .bad_request()
                .map(|b| {
                    b.field_violations
                        .iter()
                        .map(|v| (v.field.clone(), v.description.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            retry_after: details.retry_info().and_then(|r| r.retry_delay),
            request_id: details.request_info().map(|r| r.request_id.clone()),
        }
    }

    /// INVALID_ARGUMENT for input refused before it is sent, shaped as the server's would be.
    pub(crate) fn invalid(field_violations: Vec<(String, String)>) -> Self {
        let message = field_violations
            .iter()
            .map(|(field, description)| format!("{field}: {description}"))
            .collect::<Vec<_>>()
            .join("; ");
        Error::Api {
            code: Code::InvalidArgument,
            reason: Some(ErrorReason::InvalidArgument),
            reason_text: Some(ErrorReason::InvalidArgument.as_str_name().to_owned()),
            message,
            metadata: HashMap::new(),
            field_violations,
            retry_after: None,
            request_id: None,
        }
    }

    /// The same error with each field violation's path under `prefix` (`items[3].`).
    pub(crate) fn with_field_prefix(mut self, prefix: &str) -> Self {
        if let Error::Api {
            field_violations, ..
        } = &mut self
        {
            for (field, _) in field_violations.iter_mut() {
                field.insert_str(0, prefix);
            }
        }
        self
    }

    /// The gRPC code, for an API error.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The typed reason, for an API error from Warden.
    pub fn reason(&self) -> Option<ErrorReason> {
        match self {
            Error::Api { reason, .. } => *reason,
            _ => None,
        }
    }

    /// True when trying the same call again may succeed: the server was unavailable, over a
    /// limit, or lost a race. Writes are retried under their idempotency key, so a retry of a
    /// write that did commit answers its first response instead of applying it twice.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { code, reason, .. } => match code {
                Code::Unavailable => true,
                Code::ResourceExhausted => matches!(
                    reason,
                    Some(ErrorReason::Overloaded | ErrorReason::TenantRateLimited)
                ),
                Code::Aborted => *reason == Some(ErrorReason::Conflict),
                _ => false,
            },
            _ => false,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
