//! RPC metrics as a tower layer: every RPC is counted by method and gRPC code and timed until the
//! last byte of its response, including the ones the layers inside refuse (unauthenticated,
//! shed, timed out). Names are declared in `crate::admin`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as _, Frame, SizeHint};
use metrics::{Counter, Gauge, Histogram};
use parking_lot::RwLock;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::wire::{self, Methods};
use crate::admin::{RPC_DURATION, RPCS_IN_FLIGHT, RPCS_TOTAL};

#[derive(Debug, Clone)]
pub struct MetricsLayer {
    methods: Arc<Methods>,
    handles: Arc<HandleCache>,
}

impl MetricsLayer {
    pub(crate) fn new(methods: Arc<Methods>) -> Self {
        Self {
            methods,
            handles: Arc::default(),
        }
    }

    /// The registered handles of one method label (the Check route records through them).
    pub(crate) fn handles(&self, label: &str) -> Arc<MethodHandles> {
        self.handles.get(label)
    }
}

/// Registered metric handles per method label, so the hot path does one map lookup instead of
/// building and hashing label sets four times per RPC.
#[derive(Debug, Default)]
struct HandleCache(RwLock<HashMap<String, Arc<MethodHandles>>>);

pub(crate) struct MethodHandles {
    method: String,
    in_flight: Gauge,
    /// Counter and histogram per gRPC code (0-16), registered on first use.
    by_code: [OnceLock<(Counter, Histogram)>; 17],
}

impl std::fmt::Debug for MethodHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodHandles")
            .field("method", &self.method)
            .finish()
    }
}

impl HandleCache {
    fn get(&self, method: &str) -> Arc<MethodHandles> {
        if let Some(found) = self.0.read().get(method) {
            return Arc::clone(found);
        }
        let method = method.to_owned();
        let mut map = self.0.write();
        Arc::clone(map.entry(method.clone()).or_insert_with(|| {
            Arc::new(MethodHandles {
                in_flight: metrics::gauge!(RPCS_IN_FLIGHT, "method" => method.clone()),
                method,
                by_code: std::array::from_fn(|_| OnceLock::new()),
            })
        }))
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            methods: Arc::clone(&self.methods),
            handles: Arc::clone(&self.handles),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    methods: Arc<Methods>,
    handles: Arc<HandleCache>,
}

impl<S, B> Service<http::Request<B>> for MetricsService<S>
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
        let mut call = Observed::start(self.handles.get(self.methods.label(req.uri().path())));
        let future = inner.call(req);
        Box::pin(async move {
            let response = match future.await {
                Ok(response) => response,
                Err(e) => {
                    call.finish(Code::Unknown);
                    return Err(e);
                }
            };
            if let Some(code) = wire::status_code(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            if response.body().is_end_stream() {
                // No frames at all, so no status either.
                call.finish(Code::Unknown);
                return Ok(response);
            }
            Ok(response.map(|body| Body::new(MeteredBody { inner: body, call })))
        })
    }
}

/// One RPC being measured; recorded exactly once, when its outcome is known or it is dropped.
pub(crate) struct Observed {
    handles: Arc<MethodHandles>,
    start: Instant,
    done: bool,
}

impl Observed {
    /// Starts measuring one RPC of the method `handles` belong to.
    pub(crate) fn start(handles: Arc<MethodHandles>) -> Self {
        handles.in_flight.increment(1.0);
        Self {
            handles,
            start: Instant::now(),
            done: false,
        }
    }

    pub(crate) fn finish(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        let handles = &self.handles;
        handles.in_flight.decrement(1.0);
        let (total, duration) = handles.by_code[(code as usize).min(16)].get_or_init(|| {
            let name = wire::code_name(code);
            (
                metrics::counter!(RPCS_TOTAL, "method" => handles.method.clone(), "code" => name),
                metrics::histogram!(RPC_DURATION, "method" => handles.method.clone(), "code" => name),
            )
        });
        duration.record(self.start.elapsed().as_secs_f64());
        total.increment(1);
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // The response was abandoned before its status went out: the client went away.
        self.finish(Code::Cancelled);
    }
}

struct MeteredBody {
    inner: Body,
    call: Observed,
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(wire::status_code) {
                    this.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => this.call.finish(status.code()),
            // A body that ends without trailers carries no status: not a well-formed gRPC reply.
            Poll::Ready(None) => this.call.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
