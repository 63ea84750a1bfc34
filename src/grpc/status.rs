//! The only translation from domain errors to gRPC statuses.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::domain::{Error, Reason};
use crate::proto::pb;

/// The `google.rpc.ErrorInfo` every Warden error carries: its reason named by the contract's
/// `ErrorReason` enum, domain `warden`.
pub(crate) fn error_info(
    reason: pb::ErrorReason,
    metadata: std::collections::HashMap<String, String>,
) -> ErrorDetails {
    ErrorDetails::with_error_info(reason.as_str_name(), "warden", metadata)
}

/// The contract's name for a domain reason. Exhaustive both ways: a new domain reason does not
/// compile until the proto lists it (`tests` check the spellings agree).
pub(crate) fn error_reason(reason: Reason) -> pb::ErrorReason {
    use pb::ErrorReason as E;
    match reason {
        Reason::InvalidArgument => E::InvalidArgument,
        Reason::NotFound => E::NotFound,
        Reason::AlreadyExists => E::AlreadyExists,
        Reason::PermissionDenied => E::PermissionDenied,
        Reason::Conflict => E::Conflict,
        Reason::EtagMismatch => E::EtagMismatch,
        Reason::PermissionNotInRole => E::PermissionNotInRole,
        Reason::SystemRoleImmutable => E::SystemRoleImmutable,
        Reason::SystemPermissionImmutable => E::SystemPermissionImmutable,
        Reason::ReservedName => E::ReservedName,
        Reason::PermissionInUse => E::PermissionInUse,
        Reason::RoleInUse => E::RoleInUse,
        Reason::RoleCycle => E::RoleCycle,
        Reason::RoleInclusionTooDeep => E::RoleInclusionTooDeep,
        Reason::GroupInUse => E::GroupInUse,
        Reason::AssignmentImmutable => E::AssignmentImmutable,
        Reason::ApprovalRequired => E::ApprovalRequired,
        Reason::IdentityKindMismatch => E::IdentityKindMismatch,
        Reason::IdempotencyKeyReused => E::IdempotencyKeyReused,
        Reason::ChangeRequestNotPending => E::ChangeRequestNotPending,
        Reason::ChangeRequestExpired => E::ChangeRequestExpired,
        Reason::NotRequester => E::NotRequester,
        Reason::SelfApproval => E::SelfApproval,
        Reason::TenantDisabled => E::TenantDisabled,
        Reason::StaleIndex => E::StaleIndex,
        Reason::TenantRateLimited => E::TenantRateLimited,
        Reason::ApprovalNotRequired => E::ApprovalNotRequired,
        Reason::AlreadyApproved => E::AlreadyApproved,
        Reason::NotAnApprover => E::NotAnApprover,
        Reason::Unavailable => E::Unavailable,
        Reason::RevisionOutOfRange => E::RevisionOutOfRange,
        Reason::Overloaded => E::Overloaded,
        Reason::RpcTimeout => E::RpcTimeout,
        Reason::ShuttingDown => E::ShuttingDown,
        Reason::Internal => E::Internal,
    }
}

/// The reason of a status no handler gave one (an unknown method, a token refused before any
/// handler ran): its code's name.
pub(crate) fn code_reason(code: Code) -> pb::ErrorReason {
    use pb::ErrorReason as E;
    match code {
        Code::Ok => E::Unspecified,
        Code::Cancelled => E::Cancelled,
        Code::Unknown => E::Unknown,
        Code::InvalidArgument => E::InvalidArgument,
        Code::DeadlineExceeded => E::DeadlineExceeded,
        Code::NotFound => E::NotFound,
        Code::AlreadyExists => E::AlreadyExists,
        Code::PermissionDenied => E::PermissionDenied,
        Code::ResourceExhausted => E::ResourceExhausted,
        Code::FailedPrecondition => E::FailedPrecondition,
        Code::Aborted => E::Aborted,
        Code::OutOfRange => E::OutOfRange,
        Code::Unimplemented => E::Unimplemented,
        Code::Internal => E::Internal,
        Code::Unavailable => E::Unavailable,
        Code::DataLoss => E::DataLoss,
        Code::Unauthenticated => E::Unauthenticated,
    }
}

/// A status the transport layers produce for a call no handler decided: shed, timed out, cut by
/// shutdown. Same shape as every other non-INVALID_ARGUMENT status: `ErrorInfo` with a reason.
fn edge(code: Code, reason: Reason, message: String) -> Status {
    let info = error_info(error_reason(reason), Default::default());
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

/// A status travels in one HTTP/2 header block, which clients cap (16 KiB by default in
/// Go's and Rust's, the whole connection failing with COMPRESSION_ERROR beyond it). A document
/// of thousands of objects can have thousands of problems: the status names the first ones
/// and says how many there are.
const MAX_VIOLATIONS: usize = 50;
/// The longest `grpc-message`, and the longest ErrorInfo metadata value, in bytes.
const MAX_MESSAGE_BYTES: usize = 2048;
const MAX_METADATA_BYTES: usize = 1024;

/// `text` cut at a character boundary to at most `max` bytes, marked when cut.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut at = max.saturating_sub(3);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
    text
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = code_of(&err);
        if let Error::Invalid(problems) = &err {
            let shown = &problems[..problems.len().min(MAX_VIOLATIONS)];
            let fields: Vec<FieldViolation> = shown
                .iter()
                .map(|p| FieldViolation::new(p.field.clone(), p.description.clone()))
                .collect();
            let message = if shown.len() < problems.len() {
                let listed: Vec<String> = shown
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.description))
                    .collect();
                format!(
                    "request is invalid ({} problems, the first {} listed): {}",
                    problems.len(),
                    shown.len(),
                    listed.join("; ")
                )
            } else {
                err.to_string()
            };
            return Status::with_error_details(
                code,
                bounded(message, MAX_MESSAGE_BYTES),
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
        let mut details = error_info(
            error_reason(err.reason()),
            err.metadata()
                .into_iter()
                .map(|(k, v)| (k, bounded(v, MAX_METADATA_BYTES)))
                .collect(),
        );
        if code == Code::Unavailable {
            // Clients' retry policies retry UNAVAILABLE; this says when.
            details.set_retry_info(Some(std::time::Duration::from_secs(1)));
        }
        Status::with_error_details(code, bounded(err.to_string(), MAX_MESSAGE_BYTES), details)
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

/// The canonical upper-case name of `code` (`NOT_FOUND`), as Prometheus labels, OpenTelemetry,
/// grpcurl and the CLI's error lines spell it.
pub fn code_name(code: Code) -> &'static str {
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
