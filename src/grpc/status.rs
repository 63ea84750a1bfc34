//! The only translation from domain errors to gRPC statuses.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::domain::Error;

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = match &err {
            Error::Invalid(problems) => {
                let fields: Vec<FieldViolation> = problems
                    .iter()
                    .map(|p| FieldViolation::new(p.field.clone(), p.description.clone()))
                    .collect();
                return Status::with_error_details(
                    Code::InvalidArgument,
                    err.to_string(),
                    ErrorDetails::with_bad_request(fields),
                );
            }
            Error::Internal(cause) => {
                // The chain goes to the log, tagged with the current span; the caller learns nothing.
                tracing::error!(error = ?cause, "internal error");
                return Status::internal("internal error");
            }
            Error::NotFound { .. } => Code::NotFound,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::Precondition { .. } => Code::FailedPrecondition,
            Error::Denied { .. } | Error::Forbidden { .. } => Code::PermissionDenied,
            Error::Aborted { .. } => Code::Aborted,
            Error::Unavailable { .. } => Code::Unavailable,
            Error::OutOfRange { .. } => Code::OutOfRange,
            Error::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        };
        let info = ErrorDetails::with_error_info(
            err.reason().as_str(),
            "warden",
            err.metadata()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        Status::with_error_details(code, err.to_string(), info)
    }
}
