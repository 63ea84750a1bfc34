//! gRPC-over-HTTP/2 details the tower layers share: the status code of a response (in its
//! headers for a trailers-only response, else in its trailers), the catalogue of methods this
//! server routes, and the status frame that ends a response early.

use std::collections::HashSet;
use std::sync::Arc;

use http::HeaderMap;
use prost::Message as _;
use tonic::{Code, Status};

/// The `grpc-status` in `headers`, if there is one.
pub(crate) fn status_code(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// The canonical upper-case name of `code`, as Prometheus labels and OpenTelemetry use it.
pub(crate) fn code_name(code: Code) -> &'static str {
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

/// The trailers that end a response with `status`.
pub(crate) fn trailers(status: &Status) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if status.add_header(&mut headers).is_err() {
        // Only a message that is not a valid header value fails; the code alone still ends the call.
        headers.insert("grpc-status", (status.code() as i32).into());
    }
    headers
}

/// Every method this server routes, as `pkg.Service/Method`, and which of them stream responses.
/// Read from the descriptor sets once; unknown paths are labelled `unknown` so that a client
/// cannot grow the metrics without bound.
#[derive(Debug)]
pub(crate) struct Methods {
    known: HashSet<String>,
    server_streaming: HashSet<String>,
}

impl Methods {
    pub(crate) fn from_descriptors(sets: &[&[u8]]) -> Arc<Self> {
        let mut known = HashSet::new();
        let mut server_streaming = HashSet::new();
        for bytes in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*bytes) else {
                continue;
            };
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    for method in &service.method {
                        let name = format!("{package}.{}/{}", service.name(), method.name());
                        if method.server_streaming() {
                            server_streaming.insert(name.clone());
                        }
                        known.insert(name);
                    }
                }
            }
        }
        Arc::new(Self {
            known,
            server_streaming,
        })
    }

    /// The metric label for `path` (`/pkg.Service/Method`).
    pub(crate) fn label<'a>(&self, path: &'a str) -> &'a str {
        let name = path.strip_prefix('/').unwrap_or(path);
        if self.known.contains(name) {
            name
        } else if name.starts_with("grpc.reflection.") {
            // Reflection's descriptors are not in our sets; its one method is well known.
            "grpc.reflection/ServerReflectionInfo"
        } else {
            "unknown"
        }
    }

    /// True for methods whose response is a stream that only ends when the server ends it.
    pub(crate) fn is_server_streaming(&self, path: &str) -> bool {
        self.server_streaming
            .contains(path.strip_prefix('/').unwrap_or(path))
    }
}
