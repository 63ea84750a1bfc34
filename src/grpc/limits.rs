//! Server-wide limits as a tower layer: at most `limits.max_concurrent_rpcs` RPCs are handled at
//! once across all connections, and one more is refused at once with RESOURCE_EXHAUSTED rather
//! than queued (a queue only turns overload into timeouts for everyone); each handler gets at
//! most `limits.rpc_timeout`, then DEADLINE_EXCEEDED. Health checks are exempt from both, so an
//! overloaded replica still answers its probes.
//!
//! tower's `ConcurrencyLimit` + `LoadShed` would do the shedding, but they take the permit in
//! `poll_ready`, which cannot see the request path (so cannot exempt health) and report
//! overload as an error that tonic turns into a bare status; a semaphore's `try_acquire` here
//! is the same mechanism, with both decided per request.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tonic::body::Body;
use tower::{Layer, Service};

use super::status;

const EXEMPT_PREFIX: &str = "/grpc.health.v1.Health/";

#[derive(Debug, Clone)]
pub struct LimitLayer {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl LimitLayer {
    pub fn new(max_concurrent: usize, timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            timeout,
        }
    }

    /// The server-wide permits, for the Check route that bypasses this layer.
    pub(crate) fn permits(&self) -> Arc<Semaphore> {
        Arc::clone(&self.permits)
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitService {
            inner,
            permits: Arc::clone(&self.permits),
            timeout: self.timeout,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LimitService<S> {
    inner: S,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl<S, B> Service<http::Request<B>> for LimitService<S>
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
        if req.uri().path().starts_with(EXEMPT_PREFIX) {
            return Box::pin(inner.call(req));
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return Box::pin(async { Ok(status::overloaded().into_http()) });
        };
        let timeout = self.timeout;
        let future = inner.call(req);
        Box::pin(async move {
            // Held until the handler has produced its response; a stream's messages flow after.
            let _permit = permit;
            match tokio::time::timeout(timeout, future).await {
                Ok(result) => result,
                Err(_) => Ok(status::timed_out(timeout).into_http()),
            }
        })
    }
}
