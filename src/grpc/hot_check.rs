//! `AuthorizationService/Check` served straight off HTTP/2, in front of the tonic stack.
//!
//! Check is what every other service calls on its hot path, so it skips what the generic route
//! costs per call: five boxed layers cloning the stack under them, tonic's streaming codec with
//! its 8 KiB buffers each way, and a request-extension map for the caller. The RPC is the same:
//! the same token verification, request id, span, concurrency permit, timeout, shutdown cut,
//! metrics, handler code (`authorization::check_item`, `Service::check`, `response`) and status
//! mapping, so a client cannot tell which route answered. Anything unusual (a compressed
//! request) goes down the generic route, which answers it as it answers every other RPC.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method};
use http_body::{Body as _, Frame};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prost::Message as _;
use tokio::sync::{Semaphore, watch};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::drain::{Phase, reached};
use super::metrics::{MethodHandles, Observed};
use super::trace::{self, REQUEST_ID};
use super::{auth, authorization, status};
use crate::proto::pb;
use crate::service;

/// The one path this route answers.
pub(crate) const CHECK_PATH: &str = "/warden.v1.AuthorizationService/Check";
/// gRPC's length-prefixed message header: compressed flag and big-endian length.
const FRAME_HEADER: usize = 5;

/// What the Check route shares with the rest of the server.
pub(crate) struct HotCheckConfig {
    pub service: service::Service,
    pub verifier: Arc<auth::Verifier>,
    /// The server-wide concurrency permits (the same semaphore the limit layer uses).
    pub permits: Arc<Semaphore>,
    pub rpc_timeout: Duration,
    pub max_request_bytes: usize,
    pub phase: watch::Receiver<Phase>,
    pub metrics: Arc<MethodHandles>,
}

#[derive(Clone)]
pub struct HotCheckLayer {
    shared: Arc<Shared>,
}

struct Shared {
    config: HotCheckConfig,
    propagator: TraceContextPropagator,
}

impl HotCheckLayer {
    pub(crate) fn new(config: HotCheckConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                propagator: TraceContextPropagator::new(),
            }),
        }
    }
}

impl std::fmt::Debug for HotCheckLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotCheckLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for HotCheckLayer {
    type Service = HotCheckService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HotCheckService {
            shared: Arc::clone(&self.shared),
            rest: Arc::new(inner),
        }
    }
}

/// Answers Check itself and hands every other request to the stack under it. Cloned for every
/// request (hyper's service glue does), so it holds two `Arc`s and the stack is cloned only for
/// the requests that go down it.
pub struct HotCheckService<S> {
    shared: Arc<Shared>,
    rest: Arc<S>,
}

impl<S> Clone for HotCheckService<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            rest: Arc::clone(&self.rest),
        }
    }
}

impl<S> std::fmt::Debug for HotCheckService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotCheckService").finish_non_exhaustive()
    }
}

impl<S> Service<http::Request<Body>> for HotCheckService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is asked of the stack's own clone, right before a request goes down it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if is_plain_check(&req) {
            let shared = Arc::clone(&self.shared);
            return Box::pin(async move { Ok(shared.serve(req).await) });
        }
        let mut rest = S::clone(&self.rest);
        Box::pin(async move {
            poll_fn(|cx| rest.poll_ready(cx)).await?;
            rest.call(req).await
        })
    }
}

/// A POST to Check whose message is not compressed (no `grpc-encoding`, or `identity`).
fn is_plain_check<B>(req: &http::Request<B>) -> bool {
    req.method() == Method::POST
        && req.uri().path() == CHECK_PATH
        && req
            .headers()
            .get("grpc-encoding")
            .is_none_or(|e| e.as_bytes() == b"identity")
}

impl Shared {
    async fn serve(&self, req: http::Request<Body>) -> http::Response<Body> {
        let config = &self.config;
        let (mut parts, body) = req.into_parts();
        // A successful Check writes no log line and no audit event, so an id the server made up
        // would name nothing: one is made up only for a span that is recorded, or for an error.
        let span = trace::rpc_span(CHECK_PATH, None);
        let mut request_id = trace::client_request_id(&parts.headers).map(str::to_owned);
        if !span.is_disabled() {
            let id = request_id.get_or_insert_with(trace::new_request_id);
            span.record("request_id", id.as_str());
            trace::link(&self.propagator, &span, &mut parts.headers);
        }
        let mut observed = Observed::start(Arc::clone(&config.metrics));

        let outcome = match config.permits.try_acquire() {
            Err(_) => Err(status::overloaded()),
            Ok(_permit) => {
                let caller_request_id = request_id.clone().unwrap_or_default();
                let answer = self.answer(&parts.headers, body, caller_request_id);
                if span.is_disabled() {
                    self.first_poll_then_bounded(pin!(answer)).await
                } else {
                    let answer = tracing::Instrument::instrument(answer, span.clone());
                    self.first_poll_then_bounded(pin!(answer)).await
                }
            }
        };

        let code = match &outcome {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        trace::finish(&span, code);
        observed.finish(code);
        let mut response = match outcome {
            Ok(message) => {
                let mut response = http::Response::new(Body::new(Unary::new(message)));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                response
            }
            // A trailers-only response, content type included.
            Err(status) => {
                let id = request_id.get_or_insert_with(trace::new_request_id);
                let mut response = status.into_http::<Body>();
                trace::add_request_info(response.headers_mut(), id);
                response
            }
        };
        if let Some(value) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        response
    }

    /// Most Checks are answered on the first poll: the timer and the shutdown watch are armed
    /// only for one that waits (for its body, or for a revision).
    async fn first_poll_then_bounded(
        &self,
        mut answer: Pin<&mut impl Future<Output = Result<Bytes, Status>>>,
    ) -> Result<Bytes, Status> {
        match poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => Box::pin(self.bounded(answer)).await,
        }
    }

    /// The rest of an answer that had to wait: within the RPC timeout, and cut when shutdown's
    /// grace period is over, as the generic route's layers do.
    async fn bounded(
        &self,
        answer: Pin<&mut impl Future<Output = Result<Bytes, Status>>>,
    ) -> Result<Bytes, Status> {
        let config = &self.config;
        tokio::select! {
            biased;
            outcome = answer => outcome,
            () = reached(config.phase.clone(), Phase::Closing) => Err(status::shutting_down()),
            () = tokio::time::sleep(config.rpc_timeout) => Err(status::timed_out(config.rpc_timeout)),
        }
    }

    /// Authenticates, reads and decodes the request, runs the Check and encodes its response
    /// as one length-prefixed message.
    async fn answer(
        &self,
        headers: &HeaderMap,
        body: Body,
        request_id: String,
    ) -> Result<Bytes, Status> {
        let config = &self.config;
        let caller = auth::authenticate(&config.verifier, headers, CHECK_PATH, request_id).await?;
        let message = read_message(body, config.max_request_bytes).await?;
        let request = pb::CheckRequest::decode(message)
            .map_err(|e| Status::internal(format!("failed to decode the CheckRequest: {e}")))?;
        let item = authorization::check_item("", &request)?;
        let (decision, revision) = config.service.check(&caller, &item).await?;
        authorization::count(&decision);
        let reply = authorization::response(decision, revision);
        let len = reply.encoded_len();
        let mut frame = BytesMut::with_capacity(FRAME_HEADER + len);
        frame.put_u8(0);
        frame.put_u32(u32::try_from(len).map_err(|_| Status::internal("response too large"))?);
        reply
            .encode(&mut frame)
            .map_err(|_| Status::internal("response encoding failed"))?;
        Ok(frame.freeze())
    }
}

/// The one message of a unary request body, without its 5-byte header; the same refusals as
/// tonic's decoder (INTERNAL for a malformed frame, OUT_OF_RANGE past `limit`).
async fn read_message(mut body: Body, limit: usize) -> Result<Bytes, Status> {
    let mut first: Option<Bytes> = None;
    let mut more = BytesMut::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else {
            continue; // request trailers carry nothing for Check
        };
        let held = first.as_ref().map_or(0, Bytes::len) + more.len();
        if held + data.len() > FRAME_HEADER + limit {
            return Err(too_large(held + data.len() - FRAME_HEADER, limit));
        }
        match &first {
            None => first = Some(data),
            Some(_) => more.extend_from_slice(&data),
        }
    }
    let mut buf = match first {
        None => return Err(Status::internal("Missing request message.")),
        Some(first) if more.is_empty() => first,
        Some(first) => {
            let mut joined = BytesMut::with_capacity(first.len() + more.len());
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&more);
            joined.freeze()
        }
    };
    if buf.len() < FRAME_HEADER {
        return Err(Status::internal(
            "protocol error: truncated gRPC message header",
        ));
    }
    match buf.get_u8() {
        0 => {}
        1 => {
            return Err(Status::internal(
                "protocol error: received message with compressed-flag but no grpc-encoding was specified",
            ));
        }
        flag => {
            return Err(Status::internal(format!(
                "protocol error: received message with invalid compression flag: {flag} (valid flags are 0 and 1)"
            )));
        }
    }
    let len = buf.get_u32() as usize;
    if len > limit {
        return Err(too_large(len, limit));
    }
    match buf.len().cmp(&len) {
        std::cmp::Ordering::Equal => Ok(buf),
        std::cmp::Ordering::Less => Err(Status::internal(
            "protocol error: the request ended inside its message",
        )),
        std::cmp::Ordering::Greater => Err(Status::internal(
            "protocol error: a unary request carries more than one message",
        )),
    }
}

fn too_large(len: usize, limit: usize) -> Status {
    Status::out_of_range(format!(
        "Error, decoded message length too large: found {len} bytes, the limit is: {limit} bytes"
    ))
}

/// A unary gRPC response body: one DATA frame, then the `grpc-status: 0` trailers.
struct Unary {
    message: Option<Bytes>,
    done: bool,
}

impl Unary {
    fn new(message: Bytes) -> Self {
        Self {
            message: Some(message),
            done: false,
        }
    }
}

impl http_body::Body for Unary {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        self.done = true;
        let mut trailers = HeaderMap::with_capacity(1);
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    // No exact `size_hint`: hyper would turn it into a `content-length` and end the stream after
    // the data, dropping the trailers that carry the status.
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request body delivered in the given DATA frames.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }

    fn body(chunks: &[&[u8]]) -> Body {
        Body::new(Chunks(
            chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect(),
        ))
    }

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    async fn read(chunks: &[&[u8]], limit: usize) -> Result<Bytes, Status> {
        read_message(body(chunks), limit).await
    }

    #[tokio::test]
    async fn a_message_is_read_whole_or_from_several_data_frames() {
        let frame = framed(0, b"hello world");
        assert_eq!(read(&[&frame], 64).await.unwrap(), &b"hello world"[..]);
        let (a, rest) = frame.split_at(3);
        let (b, c) = rest.split_at(6);
        assert_eq!(read(&[a, b, c], 64).await.unwrap(), &b"hello world"[..]);
        assert_eq!(read(&[&framed(0, b"")], 64).await.unwrap(), &b""[..]);
    }

    #[tokio::test]
    async fn malformed_frames_are_refused_as_tonic_refuses_them() {
        let cases: [(&[u8], Code); 5] = [
            (&[], Code::Internal),                   // no message at all
            (&[0, 0, 0], Code::Internal),            // a header cut short
            (&framed(1, b"x"), Code::Internal),      // compressed without grpc-encoding
            (&framed(7, b"x"), Code::Internal),      // not a flag
            (&framed(0, b"x")[..5], Code::Internal), // ends inside the message
        ];
        for (bytes, code) in cases {
            let err = read(&[bytes], 64).await.unwrap_err();
            assert_eq!(err.code(), code, "{bytes:?}: {err:?}");
        }
        let mut two = framed(0, b"a");
        two.extend_from_slice(&framed(0, b"b"));
        assert_eq!(read(&[&two], 64).await.unwrap_err().code(), Code::Internal);
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_out_of_range_before_it_is_all_read() {
        // Declared too large.
        let big = framed(0, &[b'x'; 65]);
        assert_eq!(
            read(&[&big], 64).await.unwrap_err().code(),
            Code::OutOfRange
        );
        // A header claiming little, then more bytes than the limit allows: refused as they come.
        let mut lying = framed(0, b"x");
        lying.extend_from_slice(&[b'y'; 100]);
        let err = read(&[&lying[..10], &lying[10..]], 64).await.unwrap_err();
        assert_eq!(err.code(), Code::OutOfRange);
    }

    #[test]
    fn only_an_uncompressed_post_to_check_takes_this_route() {
        let request = |method: Method, path: &str, encoding: Option<&str>| {
            let mut builder = http::Request::builder().method(method).uri(path);
            if let Some(e) = encoding {
                builder = builder.header("grpc-encoding", e);
            }
            builder.body(()).unwrap()
        };
        assert!(is_plain_check(&request(Method::POST, CHECK_PATH, None)));
        assert!(is_plain_check(&request(
            Method::POST,
            CHECK_PATH,
            Some("identity")
        )));
        assert!(!is_plain_check(&request(
            Method::POST,
            CHECK_PATH,
            Some("gzip")
        )));
        assert!(!is_plain_check(&request(Method::GET, CHECK_PATH, None)));
        assert!(!is_plain_check(&request(
            Method::POST,
            "/warden.v1.AuthorizationService/BatchCheck",
            None
        )));
    }
}
