//! The only translation from domain errors to gRPC statuses.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::domain::{Error, Reason};

/// A status the transport layers produce for a call no handler decided: shed, timed out, cut by
/// shutdown. Same shape as every other non-INVALID_ARGUMENT status: `ErrorInfo` with a reason.
fn edge(code: Code, reason: Reason, message: String) -> Status {
    let info = ErrorDetails::with_error_info(
        reason.as_str(),
        "warden",
        std::collections::HashMap::<String, String>::new(),
    );
    Status::with_error_details(code, message, info)
}

/// RESOURCE_EXHAUSTED: `limits.max_concurrent_rpcs` RPCs are already being handled.
pub(crate) fn overloaded() -> Status {
    edge(
        Code::ResourceExhausted,
        Reason::Overloaded,
        "the server is at its concurrent-RPC limit; retry with backoff".to_owned(),
    )
}

/// DEADLINE_EXCEEDED: the handler ran past `limits.rpc_timeout`.
pub(crate) fn timed_out(limit: std::time::Duration) -> Status {
    edge(
        Code::DeadlineExceeded,
        Reason::RpcTimeout,
        format!(
            "the RPC did not finish within the server's {} limit",
            humantime::format_duration(limit)
        ),
    )
}

/// UNAVAILABLE: the server is shutting down and ended this call; retry on another replica.
pub(crate) fn shutting_down() -> Status {
    edge(
        Code::Unavailable,
        Reason::ShuttingDown,
        "the server is shutting down; retry on another replica".to_owned(),
    )
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = code_of(&err);
        if let Error::Invalid(problems) = &err {
            let fields: Vec<FieldViolation> = problems
                .iter()
                .map(|p| FieldViolation::new(p.field.clone(), p.description.clone()))
                .collect();
            return Status::with_error_details(
                code,
                err.to_string(),
                ErrorDetails::with_bad_request(fields),
            );
        }
        if let Error::Unavailable { message } = &err {
            // Logged here, under the request's span; retried by the client.
            tracing::warn!(%message, "unavailable");
        }
        if let Error::Internal(cause) = &err {
            // The chain goes to the log, tagged with the current span; the caller learns nothing.
            tracing::error!(error = ?cause, "internal error");
            return Status::internal("internal error");
        }
        let mut details = ErrorDetails::with_error_info(
            err.reason().as_str(),
            "warden",
            err.metadata()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        if code == Code::Unavailable {
            // Clients' retry policies retry UNAVAILABLE; this says when.
            details.set_retry_info(Some(std::time::Duration::from_secs(1)));
        }
        Status::with_error_details(code, err.to_string(), details)
    }
}

fn code_of(err: &Error) -> Code {
    match err {
        Error::Invalid(_) => Code::InvalidArgument,
        Error::Internal(_) => Code::Internal,
        Error::NotFound { .. } => Code::NotFound,
        Error::AlreadyExists { .. } => Code::AlreadyExists,
        Error::Precondition { .. } => Code::FailedPrecondition,
        Error::Denied { .. } | Error::DeniedAt { .. } | Error::Forbidden { .. } => {
            Code::PermissionDenied
        }
        Error::Aborted { .. } => Code::Aborted,
        Error::Unavailable { .. } | Error::Stale { .. } => Code::Unavailable,
        Error::OutOfRange { .. } => Code::OutOfRange,
        Error::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        Error::InItem { error, .. } => code_of(error),
    }
}
