//! The edge: one tower service every RPC passes, with one `call`, one boxed future and one body
//! wrapper. Its rules run in a fixed order, each for a reason:
//!
//! 1. **Request id and span**, first, so that even a refusal is logged, traced and answered with
//!    its request id (`trace.rs` says when a span is made at all).
//! 2. **Metrics**, before anything can refuse the call, so shed, timed-out, cut and
//!    unauthenticated calls are counted too, and timed until the last byte of the response.
//! 3. **Shutdown**: a call still running when the grace period ends is cut with UNAVAILABLE, and
//!    a response stream ends when draining starts (`body.rs`). Outside the limits, so a cut call
//!    also gives its concurrency permit back.
//! 4. **Shedding and timeout**: at most `limits.max_concurrent_rpcs` calls at once, one more is
//!    refused at once with RESOURCE_EXHAUSTED rather than queued (a queue only turns overload
//!    into timeouts for everyone); each handler gets `limits.rpc_timeout`. Before auth, because
//!    shedding must cost less than verifying a token, or overload feeds on itself. Health is
//!    exempt from both, so an overloaded replica still answers its probes.
//! 5. **Auth**: the bearer token (or, without one, a verified client certificate) becomes the
//!    `Caller`; health and reflection need none.
//! 6. **Route**: Check is answered here, straight off the HTTP/2 body (no streaming codec, no
//!    extensions map), by the same handler code tonic's route would run; everything else, and
//!    a compressed Check, goes down tonic's routes with the `Caller` in the extensions.
//!
//! Because Check is a branch at step 6, it passes every rule above by construction.

mod body;
mod fairness;
mod frame;
mod methods;
mod trace;

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::Method as HttpMethod;
use http::request::Parts;
use prost::Message as _;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument as _;

use self::body::{Call, Drain, EdgeBody};
use self::fairness::TenantShares;
use self::methods::Methods;
pub use self::trace::Tracing;
use super::{auth, authorization, status};
use crate::domain::Caller;
use crate::proto::pb;
use crate::shutdown::{Phase, Shutdown};

/// What the edge enforces and whom it answers with.
pub(crate) struct EdgeConfig {
    pub service: crate::service::Service,
    pub verifier: Arc<auth::Verifier>,
    pub shutdown: Shutdown,
    pub tracing: Tracing,
    pub max_concurrent_rpcs: usize,
    pub per_tenant_concurrent_rpcs: usize,
    pub per_tenant_writes_per_second: u32,
    pub rpc_timeout: Duration,
    pub max_request_bytes: usize,
    /// Encoded `FileDescriptorSet`s of every routed service.
    pub descriptors: Vec<&'static [u8]>,
}

/// Puts the edge in front of tonic's routes.
#[derive(Clone)]
pub struct EdgeLayer {
    shared: Arc<Shared>,
}

impl EdgeLayer {
    pub(crate) fn new(config: EdgeConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                methods: Methods::from_descriptors(&config.descriptors),
                permits: Semaphore::new(config.max_concurrent_rpcs),
                tenants: TenantShares::new(
                    config.per_tenant_concurrent_rpcs,
                    config.per_tenant_writes_per_second,
                ),
                config,
            }),
        }
    }
}

impl std::fmt::Debug for EdgeLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, routes: S) -> Self::Service {
        Edge {
            shared: Arc::clone(&self.shared),
            routes: Arc::new(routes),
        }
    }
}

struct Shared {
    config: EdgeConfig,
    methods: Methods,
    /// The server-wide concurrency permits.
    permits: Semaphore,
    /// Each tenant's share of them, and its write rate.
    tenants: TenantShares,
}

/// The edge service. hyper clones it for every request, so it holds two `Arc`s; tonic's routes
/// are cloned only for the calls that go down them.
pub struct Edge<S> {
    shared: Arc<Shared>,
    routes: Arc<S>,
}

impl<S> Clone for Edge<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            routes: Arc::clone(&self.routes),
        }
    }
}

impl<S> std::fmt::Debug for Edge<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").finish_non_exhaustive()
    }
}

impl<S> Service<http::Request<Body>> for Edge<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is asked of the routes' own clone, right before a call goes down them.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let routes = Arc::clone(&self.routes);
        Box::pin(async move { Ok(shared.serve(request, routes).await) })
    }
}

/// What a handler produced.
enum Reply {
    /// The message of a call the edge answered itself, framed.
    Message(bytes::Bytes),
    /// tonic's response.
    Response(http::Response<Body>),
}

impl Shared {
    async fn serve<S>(&self, request: http::Request<Body>, routes: Arc<S>) -> http::Response<Body>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone,
    {
        let (mut parts, body) = request.into_parts();
        let method = Arc::clone(self.methods.get(parts.uri.path()));

        // 1. Request id and span.
        let request_id = trace::client_request_id(&parts.headers)
            .map_or_else(trace::new_request_id, str::to_owned);
        let span = self
            .config
            .tracing
            .span(&method, &request_id, &mut parts.headers);

        // 2. Metrics: counted from here, whatever happens to the call.
        let call = Call::start(method, span, request_id);

        // 4. Shedding (3, shutdown, bounds the handler below and the body after it).
        let permit = if call.method.unlimited {
            None
        } else {
            match self.permits.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => return self.respond(call, Err(status::overloaded())),
            }
        };
        // 5. and 6., bounded by 3. and 4.
        let outcome = {
            let handler = self.handle(&call, parts, body, routes);
            match &call.span {
                Some(span) => {
                    self.bounded(&call, pin!(handler.instrument(span.clone())))
                        .await
                }
                None => self.bounded(&call, pin!(handler)).await,
            }
        };
        // Held until the handler has produced its response; a stream's messages flow after.
        drop(permit);
        self.respond(call, outcome)
    }

    /// Runs the handler within the RPC timeout (health has none) and until the grace period
    /// ends. Most calls are answered on their first poll: the timer and the shutdown watch are
    /// armed only for one that has to wait.
    async fn bounded(
        &self,
        call: &Call,
        mut handler: Pin<&mut impl Future<Output = Result<Reply, Status>>>,
    ) -> Result<Reply, Status> {
        if let Poll::Ready(outcome) = poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx))).await {
            return outcome;
        }
        // Boxed: the usual call's future stays small.
        Box::pin(async move {
            let closing = self.config.shutdown.reached(Phase::Closing);
            let timeout = self.config.rpc_timeout;
            if call.method.unlimited {
                tokio::select! {
                    biased;
                    outcome = handler => outcome,
                    () = closing => Err(status::shutting_down()),
                }
            } else {
                tokio::select! {
                    biased;
                    outcome = handler => outcome,
                    () = closing => Err(status::shutting_down()),
                    () = tokio::time::sleep(timeout) => Err(status::timed_out(timeout)),
                }
            }
        })
        .await
    }

    /// Authenticates the call, then routes it.
    async fn handle<S>(
        &self,
        call: &Call,
        mut parts: Parts,
        body: Body,
        routes: Arc<S>,
    ) -> Result<Reply, Status>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone,
    {
        // 5. Auth.
        let caller = if call.method.open {
            None
        } else {
            Some(
                auth::authenticate(
                    &self.config.verifier,
                    &parts.headers,
                    &parts.extensions,
                    parts.uri.path(),
                    call.request_id.clone(),
                )
                .await?,
            )
        };
        // A disabled tenant's tokens are refused (TenantService), on every RPC.
        if let Some(caller) = &caller
            && self.config.service.tenant_disabled(&caller.tenant)
        {
            return Err(<Status as tonic_types::StatusExt>::with_error_details(
                tonic::Code::Unauthenticated,
                "the token's tenant is disabled",
                status::error_info(pb::ErrorReason::TenantDisabled, Default::default()),
            ));
        }
        // Each tenant's share (the server-wide one was taken in 4.), held like that one.
        let _share = match &caller {
            Some(caller) if !call.method.unlimited => {
                self.tenants.admit(&caller.tenant, call.method.mutating)?
            }
            _ => None,
        };
        // 6. Route.
        if let Some(caller) = caller {
            if call.method.check && is_uncompressed_post(&parts) {
                return self.check(&caller, body).await.map(Reply::Message);
            }
            parts.extensions.insert(caller);
        }
        let mut routes = S::clone(&routes);
        let request = http::Request::from_parts(parts, body);
        let response = match poll_fn(|cx| routes.poll_ready(cx)).await {
            Ok(()) => routes.call(request).await,
            Err(never) => match never {},
        };
        match response {
            Ok(response) => Ok(Reply::Response(response)),
            Err(never) => match never {},
        }
    }

    /// Check's fast path: the same handler code as tonic's route (`authorization.rs`), without
    /// the streaming codec.
    async fn check(&self, caller: &Caller, body: Body) -> Result<bytes::Bytes, Status> {
        let message = frame::read_message(body, self.config.max_request_bytes).await?;
        let request = pb::CheckRequest::decode(message)
            .map_err(|e| Status::internal(format!("failed to decode the CheckRequest: {e}")))?;
        let item = authorization::check_item("", &request)?;
        let (decision, revision) = self.config.service.check(caller, &item).await?;
        authorization::count(&decision);
        frame::encode(&authorization::response(decision, revision))
    }

    /// The response to `call`: its status recorded now if it is already known, else by the body
    /// when it goes out; every response carries the request id.
    fn respond(&self, mut call: Call, outcome: Result<Reply, Status>) -> http::Response<Body> {
        let id = trace::header_value(&call.request_id);
        let mut response = match outcome {
            Ok(Reply::Message(message)) => {
                let mut response = http::Response::new(Body::new(EdgeBody::message(message, call)));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/grpc"),
                );
                response
            }
            Ok(Reply::Response(mut response)) => {
                if response.headers().contains_key(&GRPC_STATUS) {
                    // Trailers-only: the whole outcome is in the headers.
                    call.finish_with(response.headers_mut());
                    response
                } else {
                    let drain = call
                        .method
                        .kind
                        .streams_responses()
                        .then(|| Drain::at(self.config.shutdown.reached(Phase::Draining)));
                    response.map(|body| Body::new(EdgeBody::handler(body, call, drain)))
                }
            }
            Err(status) => {
                // A trailers-only response, content type included.
                let mut response = status.into_http::<Body>();
                call.finish_with(response.headers_mut());
                response
            }
        };
        if let Some(id) = id {
            response.headers_mut().insert(trace::REQUEST_ID, id);
        }
        response
    }
}

// Header names as constants: a `&str` name is parsed and validated again on every lookup, which
// showed in Check's profile.
const GRPC_ENCODING: http::HeaderName = http::HeaderName::from_static("grpc-encoding");
const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// A POST whose message is not compressed (no `grpc-encoding`, or `identity`): what the fast
/// path decodes; anything else goes down tonic's route, which answers it as it answers every RPC.
fn is_uncompressed_post(parts: &Parts) -> bool {
    parts.method == HttpMethod::POST
        && parts
            .headers
            .get(&GRPC_ENCODING)
            .is_none_or(|e| e.as_bytes() == b"identity")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_uncompressed_post_takes_the_fast_path() {
        let parts = |method: HttpMethod, encoding: Option<&str>| {
            let mut builder = http::Request::builder()
                .method(method)
                .uri(methods::CHECK_PATH);
            if let Some(e) = encoding {
                builder = builder.header("grpc-encoding", e);
            }
            builder.body(()).unwrap().into_parts().0
        };
        assert!(is_uncompressed_post(&parts(HttpMethod::POST, None)));
        assert!(is_uncompressed_post(&parts(
            HttpMethod::POST,
            Some("identity")
        )));
        assert!(!is_uncompressed_post(&parts(
            HttpMethod::POST,
            Some("gzip")
        )));
        assert!(!is_uncompressed_post(&parts(HttpMethod::GET, None)));
    }
}
