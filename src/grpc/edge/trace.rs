//! Request ids, spans and sampling at the edge.
//!
//! Every response carries an `x-request-id` (the client's sane one, else a fresh UUIDv7) and
//! every error status a `google.rpc.RequestInfo` naming it. A span is made only where something
//! will use it: for every RPC that may log (its lines carry the request id), and for the quiet
//! decision RPCs (Check, BatchCheck, which log nothing when they succeed) only when an exporter
//! is installed and the sampler keeps the trace. So with export off a successful Check creates no
//! span and formats nothing.
//!
//! Sampling is decided here, once per RPC, by the standard `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` (parent-based by default): before any span exists, so an unsampled
//! Check costs nothing. The SDK's own sampler is `ParentBased(AlwaysOn)` (telemetry.rs) and
//! follows the decision through the parent the span is given here.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::methods::Method;
use crate::telemetry::Sampler;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the edge knows about tracing: whether spans are exported, and how they are sampled.
#[derive(Debug, Clone, Default)]
pub struct Tracing {
    /// An OpenTelemetry exporter is installed (telemetry.rs).
    pub exporting: bool,
    pub sampler: Sampler,
    propagator: TraceContextPropagator,
}

impl Tracing {
    pub fn new(exporting: bool, sampler: Sampler) -> Self {
        Self {
            exporting,
            sampler,
            propagator: TraceContextPropagator::new(),
        }
    }

    /// The span of one call to `method`, if anything will use it. Its parent carries the
    /// sampling decision to the SDK, and its own context is written into `headers` so that
    /// `Caller::trace_id` names this trace even when the client sent none.
    pub(super) fn span(
        &self,
        method: &Method,
        request_id: &str,
        headers: &mut HeaderMap,
    ) -> Option<tracing::Span> {
        if !self.exporting {
            // Only log lines can use a span: the quiet RPCs write none when they succeed.
            return (!method.quiet).then(|| log_span(method, request_id));
        }
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let remote = parent.span().span_context().clone();
        let remote = remote.is_valid().then_some(remote);
        let keep = self.sampler.keeps(remote.as_ref());
        if !keep && method.quiet {
            return None;
        }
        let span = rpc_span(method, request_id);
        if span.is_disabled() {
            return Some(span);
        }
        // The decision travels as the parent's sampled flag: kept with the client's trace id when
        // there is one, else under a fresh one (a kept root simply has no parent).
        let flags = if keep {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let parent_context = match remote {
            Some(r) if r.is_sampled() == keep => Some(parent),
            Some(r) => Some(opentelemetry::Context::new().with_remote_span_context(
                SpanContext::new(
                    r.trace_id(),
                    r.span_id(),
                    flags,
                    true,
                    r.trace_state().clone(),
                ),
            )),
            None if keep => None,
            None => Some(
                opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                    TraceId::from_bytes(rand::random()),
                    SpanId::from_bytes(rand::random()),
                    flags,
                    true,
                    TraceState::default(),
                )),
            ),
        };
        if let Some(context) = parent_context {
            // Fails only when no OpenTelemetry layer is installed: then there is nothing to link.
            let _ = span.set_parent(context);
        }
        let context = span.context();
        if context.span().span_context().is_valid() {
            self.propagator
                .inject_context(&context, &mut HeaderInjector(headers));
        }
        Some(span)
    }
}

/// The span of one exported RPC, with the OpenTelemetry semantic conventions' fields; the status
/// is recorded by `finish`.
fn rpc_span(method: &Method, request_id: &str) -> tracing::Span {
    let (service, name) = method.names();
    tracing::info_span!(
        "rpc",
        otel.name = %method.path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = name,
        rpc.grpc.status_code = tracing::field::Empty,
        request_id,
    )
}

/// The span of one RPC when nothing is exported: what a log line needs (which RPC, which request)
/// and nothing more, because the log layer formats every field of a span when it is made.
fn log_span(method: &Method, request_id: &str) -> tracing::Span {
    tracing::info_span!("rpc", rpc = &*method.path, request_id)
}

/// Records the outcome on an exported span (a log span has no such fields: nothing is recorded).
pub(super) fn finish(span: &tracing::Span, code: Code) {
    span.record("rpc.grpc.status_code", code as i32);
    if code != Code::Ok {
        span.record("otel.status_code", "ERROR");
    }
}

/// The client's `x-request-id`, if it sent a sane one (1-128 visible ASCII characters).
pub(super) fn client_request_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// A request id made up by the server: a UUIDv7, so ids sort by time.
pub(super) fn new_request_id() -> String {
    // Encoded straight into one exact allocation (`to_string` goes through the formatter).
    let mut text = uuid::Uuid::encode_buffer();
    String::from(&*uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text))
}

/// The request id as a header value (both ids above are valid header values), marked never to
/// be indexed by HPACK: each id is sent once, so entering it in the connection's header table
/// would only evict the entries that do repeat (`content-type`, `grpc-status`), at both ends.
pub(super) fn header_value(request_id: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(request_id).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Completes the error status in `headers` (or trailers), keeping its code, message and other
/// details: adds `RequestInfo { request_id }` (only known here), an `ErrorInfo` with a reason
/// where the status has none (tonic's own statuses, UNAUTHENTICATED, INTERNAL), so that every
/// non-OK status carries one, and answers a request message that does not decode as
/// INVALID_ARGUMENT (tonic says INTERNAL, which clients would retry or page someone about).
pub(super) fn add_request_info(headers: &mut HeaderMap, request_id: &str) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if status.code() == Code::Ok {
        return;
    }
    let (code, message) =
        if status.code() == Code::Internal && status.message().starts_with("failed to decode") {
            (
                Code::InvalidArgument,
                "the request message does not decode as the method's protobuf message type",
            )
        } else {
            (status.code(), status.message())
        };
    let mut details = status.get_error_details();
    details.set_request_info(request_id, "");
    if details.error_info().is_none() {
        details.set_error_info(
            crate::grpc::status::code_reason(code).as_str_name(),
            "warden",
            std::collections::HashMap::<String, String>::new(),
        );
    }
    let completed = Status::with_error_details(code, message, details);
    let mut fresh = HeaderMap::new();
    if completed.add_header(&mut fresh).is_err() {
        return;
    }
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
        if let Some(value) = fresh.remove(name) {
            headers.insert(name, value);
        }
    }
}

// The two adapters opentelemetry-http would provide, without the extra dependency.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
