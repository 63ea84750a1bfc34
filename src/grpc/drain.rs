//! Shutdown as a tower layer. When draining starts, open response streams (WatchChanges, health
//! Watch) end with UNAVAILABLE `SHUTTING_DOWN`, so their clients reconnect elsewhere instead of
//! holding the server up; unary RPCs keep running. When the grace period is over, whatever is
//! still running ends the same way. Every call then has sent its status, so HTTP/2 connections
//! close after their GOAWAY even if the client would keep them open forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as _, Frame, SizeHint};
use tokio::sync::watch;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use super::status;
use super::wire::{self, Methods};

/// Where shutdown is; only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// SIGTERM received: streams end, in-flight unary RPCs finish.
    Draining,
    /// The grace period is over: everything still running ends.
    Closing,
}

#[derive(Debug, Clone)]
pub struct DrainLayer {
    phase: watch::Receiver<Phase>,
    methods: Arc<Methods>,
}

impl DrainLayer {
    pub(crate) fn new(phase: watch::Receiver<Phase>, methods: Arc<Methods>) -> Self {
        Self { phase, methods }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = DrainService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DrainService {
            inner,
            phase: self.phase.clone(),
            methods: Arc::clone(&self.methods),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DrainService<S> {
    inner: S,
    phase: watch::Receiver<Phase>,
    methods: Arc<Methods>,
}

/// Resolves once shutdown reaches `phase` (or its sender is gone, which means the same).
pub(super) async fn reached(mut rx: watch::Receiver<Phase>, phase: Phase) {
    let _ = rx.wait_for(|p| *p >= phase).await;
}

impl<S, B> Service<http::Request<B>> for DrainService<S>
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
        let close_body_at = if self.methods.is_server_streaming(req.uri().path()) {
            Phase::Draining
        } else {
            Phase::Closing
        };
        let phase = self.phase.clone();
        let future = inner.call(req);
        Box::pin(async move {
            let response = tokio::select! {
                biased;
                result = future => result?,
                () = reached(phase.clone(), Phase::Closing) => {
                    return Ok(status::shutting_down().into_http());
                }
            };
            // A unary response is produced whole by the handler; only streams are cut at the
            // drain. Not wrapping unary bodies also keeps the phase watch (one shared lock) off
            // the Check path.
            if close_body_at == Phase::Closing
                || wire::status_code(response.headers()).is_some()
                || response.body().is_end_stream()
            {
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(DrainBody {
                    inner: body,
                    closed: Some(Box::pin(reached(phase, close_body_at))),
                    ended: false,
                    handed_after_close: 0,
                })
            }))
        })
    }
}

/// Messages a closing stream may still hand over if they are ready at once (a health Watch's
/// NOT_SERVING, say); bounded so that a stream always ready cannot hold the close off.
const READY_AFTER_CLOSE: u8 = 16;

/// A response body that ends with UNAVAILABLE once shutdown reaches its phase.
struct DrainBody {
    inner: Body,
    /// Resolves when this body must end; `None` once it has.
    closed: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ended: bool,
    handed_after_close: u8,
}

impl DrainBody {
    /// Counts one more message handed over after the close; false once the budget is spent.
    fn ready_after_close(&mut self) -> bool {
        self.handed_after_close += 1;
        self.handed_after_close <= READY_AFTER_CLOSE
    }
}

impl http_body::Body for DrainBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(closed) = this.closed.as_mut()
            && closed.as_mut().poll(cx).is_ready()
        {
            this.closed = None;
        }
        let closing = this.closed.is_none();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => this.ended = true,
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => this.ended = true,
            Poll::Ready(Some(Ok(_))) if closing && this.ready_after_close() => {}
            Poll::Ready(Some(Ok(_))) if !closing => {}
            Poll::Ready(Some(Ok(_))) | Poll::Pending => {
                if closing {
                    this.ended = true;
                    // Messages are whole frames, so ending between two of them leaves a valid
                    // stream; a frame polled but not handed over here is dropped with the stream.
                    return Poll::Ready(Some(Ok(Frame::trailers(wire::trailers(
                        &status::shutting_down(),
                    )))));
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
