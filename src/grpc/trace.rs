//! Request identity as a tower layer: a request id (the client's sane `x-request-id`, else a fresh
//! UUIDv7) and a span per RPC whose parent is the client's W3C `traceparent`. The handler, its
//! log lines and its response stream run inside the span, so every line of a request carries its
//! request id; error statuses leave with a `google.rpc.RequestInfo` naming it, and every response
//! carries an `x-request-id` header.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use http_body::{Frame, SizeHint};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::body::Body;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::wire;

pub(super) const REQUEST_ID: &str = "x-request-id";

/// The layer that opens the per-RPC span and assigns the request id.
#[derive(Debug, Clone, Default)]
pub struct TraceLayer {
    propagator: TraceContextPropagator,
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            propagator: self.propagator.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
    propagator: TraceContextPropagator,
}

impl<S, B> Service<http::Request<B>> for TraceService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);

        let (mut parts, body) = req.into_parts();
        let (span, request_id, id_header) =
            open(&self.propagator, parts.uri.path(), &mut parts.headers);
        let req = http::Request::from_parts(parts, body);
        let future = inner.call(req).instrument(span.clone());
        Box::pin(async move {
            let mut response = future.await?;
            if let Some(value) = id_header {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            if let Some(code) = wire::status_code(response.headers()) {
                // Trailers-only: the whole outcome is in the headers.
                finish(&span, code);
                add_request_info(response.headers_mut(), &request_id);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(TracedBody {
                    inner: body,
                    span,
                    request_id,
                })
            }))
        })
    }
}

/// Settles the request id of an RPC to `path` and opens its span: the id is written back into
/// `headers` (later layers put it on the `Caller`) and returned with its header value; the span's
/// parent is the client's `traceparent`, and the span's own context is injected into `headers` so
/// that `Caller::trace_id` names this trace even when the client sent none.
fn open(
    propagator: &TraceContextPropagator,
    path: &str,
    headers: &mut HeaderMap,
) -> (tracing::Span, String, Option<HeaderValue>) {
    let request_id = request_id(headers);
    let id_header = HeaderValue::from_str(&request_id).ok();
    if let Some(value) = &id_header {
        headers.insert(REQUEST_ID, value.clone());
    }
    let span = rpc_span(path, Some(&request_id));
    link(propagator, &span, headers);
    (span, request_id, id_header)
}

/// The span of one RPC to `path`; its `request_id` is recorded later when not known yet.
pub(super) fn rpc_span(path: &str, request_id: Option<&str>) -> tracing::Span {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""));
    let span = tracing::info_span!(
        "rpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    if let Some(id) = request_id {
        span.record("request_id", id);
    }
    span
}

/// Makes the client's `traceparent` the span's parent and hands the span's own context on in
/// `headers`, so that `Caller::trace_id` names this trace even when the client sent none.
pub(super) fn link(
    propagator: &TraceContextPropagator,
    span: &tracing::Span,
    headers: &mut HeaderMap,
) {
    if span.is_disabled() {
        return;
    }
    let parent = propagator.extract(&HeaderExtractor(headers));
    // Fails only when no OpenTelemetry layer is installed: then there is nothing to link.
    let _ = span.set_parent(parent);
    let context = span.context();
    if context.span().span_context().is_valid() {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// The client's `x-request-id` when it is sane, else a fresh UUIDv7.
pub(super) fn request_id(headers: &HeaderMap) -> String {
    client_request_id(headers).map_or_else(new_request_id, str::to_owned)
}

/// The client's `x-request-id`, if it sent a sane one (1-128 visible ASCII characters).
pub(super) fn client_request_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// A request id made up by the server: a UUIDv7, so ids sort by time.
pub(super) fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(super) fn finish(span: &tracing::Span, code: Code) {
    span.record("rpc.grpc.status_code", code as i32);
    if code != Code::Ok {
        span.record("otel.status_code", "ERROR");
    }
}

/// Adds `RequestInfo { request_id }` to the error status in `headers` (or trailers), keeping its
/// code, message and other details. Statuses are built in one place each (`status.rs`, `auth.rs`,
/// the limit layers); the request id is only known here, so it is added here.
pub(super) fn add_request_info(headers: &mut HeaderMap, request_id: &str) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if status.code() == Code::Ok {
        return;
    }
    let mut details = status.get_error_details();
    details.set_request_info(request_id, "");
    let with_id = Status::with_error_details(status.code(), status.message(), details);
    let mut fresh = HeaderMap::new();
    if with_id.add_header(&mut fresh).is_err() {
        return;
    }
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
        if let Some(value) = fresh.remove(name) {
            headers.insert(name, value);
        }
    }
}

/// A response body polled inside the RPC's span, whose trailers get the request id and close the
/// span's status.
struct TracedBody {
    inner: Body,
    span: tracing::Span,
    request_id: String,
}

impl http_body::Body for TracedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        match frame.into_trailers() {
            Ok(mut trailers) => {
                if let Some(code) = wire::status_code(&trailers) {
                    finish(&this.span, code);
                    add_request_info(&mut trailers, &this.request_id);
                }
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Err(frame) => Poll::Ready(Some(Ok(frame))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
