//! The edge's one response body, and the record of one call it closes.
//!
//! A call is recorded exactly once, when its status goes out (in the trailers, or in the headers
//! of a trailers-only response) or, if the client goes away first, as CANCELLED: the metrics
//! count and time it until the last byte, its span gets the status, and an error status gets the
//! request id. A response stream ends with UNAVAILABLE `SHUTTING_DOWN` once draining starts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tonic::{Code, Status};

use super::methods::Method;
use super::trace;
use crate::grpc::status;

/// One call from its arrival to its status.
pub(super) struct Call {
    pub(super) method: Arc<Method>,
    pub(super) span: Option<tracing::Span>,
    pub(super) request_id: String,
    start: Instant,
    done: bool,
}

impl Call {
    /// Starts recording a call to `method`: it counts as started from here on.
    pub(super) fn start(
        method: Arc<Method>,
        span: Option<tracing::Span>,
        request_id: String,
    ) -> Self {
        method.started();
        Self {
            method,
            span,
            request_id,
            start: Instant::now(),
            done: false,
        }
    }

    /// Records the call's outcome; later calls do nothing.
    pub(super) fn finish(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        self.method.handled(code, self.start.elapsed());
        match &self.span {
            Some(span) => trace::finish(span, code),
            // A call without a span has no log context: a server failure is still logged with
            // what names it. (UNKNOWN is left out: it is what a transport error becomes.)
            None if matches!(code, Code::Internal | Code::DataLoss) => {
                tracing::error!(
                    rpc = &*self.method.path,
                    request_id = %self.request_id,
                    code = ?code,
                    "rpc failed"
                );
            }
            None => {}
        }
    }

    /// Records the status in `headers` (trailers, or a trailers-only response's headers) and
    /// names the request id in it if it is an error.
    pub(super) fn finish_with(&mut self, headers: &mut HeaderMap) {
        let code = headers
            .get(&super::GRPC_STATUS)
            .map_or(Code::Unknown, |v| Code::from_bytes(v.as_bytes()));
        self.finish(code);
        if code != Code::Ok {
            trace::add_request_info(headers, &self.request_id);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The response was abandoned before its status went out: the client went away.
        self.finish(Code::Cancelled);
    }
}

/// Messages a closing stream may still hand over if they are ready at once (a health Watch's
/// NOT_SERVING, say); bounded so that a stream always ready cannot hold the close off.
const READY_AFTER_CLOSE: u8 = 16;

/// What the body carries.
enum Content {
    /// A message the edge answered itself (Check), then `grpc-status: 0`.
    Message(Option<Bytes>),
    /// A handler's body.
    Handler(Body),
}

/// A response stream's end at shutdown.
pub(super) struct Drain {
    /// Resolves when the stream must end; `None` once it has.
    closed: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    handed_after_close: u8,
}

impl Drain {
    pub(super) fn at(closed: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            closed: Some(Box::pin(closed)),
            handed_after_close: 0,
        }
    }

    /// True once the stream must end.
    fn closing(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(closed) = self.closed.as_mut()
            && closed.as_mut().poll(cx).is_ready()
        {
            self.closed = None;
        }
        self.closed.is_none()
    }

    /// Counts one more message handed over after the close; false once the budget is spent.
    fn ready_after_close(&mut self) -> bool {
        self.handed_after_close += 1;
        self.handed_after_close <= READY_AFTER_CLOSE
    }
}

pub(super) struct EdgeBody {
    content: Content,
    call: Call,
    drain: Option<Drain>,
    ended: bool,
}

impl EdgeBody {
    /// One message the edge encoded, then the OK status.
    pub(super) fn message(message: Bytes, call: Call) -> Self {
        Self {
            content: Content::Message(Some(message)),
            call,
            drain: None,
            ended: false,
        }
    }

    /// A handler's body; `drain` ends it at shutdown.
    pub(super) fn handler(body: Body, call: Call, drain: Option<Drain>) -> Self {
        Self {
            content: Content::Handler(body),
            call,
            drain,
            ended: false,
        }
    }

    /// Ends the stream with `status` in place of whatever comes next.
    fn end_with(&mut self, status: &Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.ended = true;
        let mut trailers = HeaderMap::new();
        if status.add_header(&mut trailers).is_err() {
            // Only a message that is not a valid header value fails; the code alone still ends
            // the call.
            trailers.insert(super::GRPC_STATUS, (status.code() as i32).into());
        }
        self.call.finish_with(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl http_body::Body for EdgeBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let closing = this.drain.as_mut().is_some_and(|d| d.closing(cx));
        let polled = match &mut this.content {
            Content::Message(message) => match message.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => {
                    let mut trailers = HeaderMap::with_capacity(1);
                    trailers.insert(super::GRPC_STATUS, HeaderValue::from_static("0"));
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
            },
            Content::Handler(body) => {
                let _entered = this.call.span.as_ref().map(tracing::Span::enter);
                Pin::new(body).poll_frame(cx)
            }
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    this.ended = true;
                    this.call.finish_with(&mut trailers);
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(data) => {
                    if closing && !this.drain.as_mut().is_some_and(Drain::ready_after_close) {
                        // Messages are whole frames, so ending between two of them leaves a
                        // valid stream; the frame polled but not handed over is dropped.
                        return this.end_with(&status::shutting_down());
                    }
                    Poll::Ready(Some(Ok(data)))
                }
            },
            Poll::Ready(Some(Err(status))) => {
                this.ended = true;
                this.call.finish(status.code());
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => {
                // A body that ends without trailers carries no status: not a well-formed reply.
                this.ended = true;
                this.call.finish(Code::Unknown);
                Poll::Ready(None)
            }
            Poll::Pending if closing => this.end_with(&status::shutting_down()),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match &self.content {
            // No exact hint for the edge's own message: hyper would turn it into a
            // `content-length` and end the stream after the data, dropping the trailers that
            // carry the status.
            Content::Message(_) => SizeHint::default(),
            Content::Handler(body) => body.size_hint(),
        }
    }
}
