//! Check's fast path on the wire: the one length-prefixed message of a unary request, read
//! without tonic's streaming codec (and its 8 KiB buffers each way), with the same refusals as
//! tonic's decoder, and the message of the answer framed for the response body.

use std::future::poll_fn;
use std::pin::Pin;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use http_body::Body as _;
use tonic::Status;
use tonic::body::Body;

/// gRPC's length-prefixed message header: compressed flag and big-endian length.
const FRAME_HEADER: usize = 5;

/// `message` as one uncompressed length-prefixed gRPC message.
pub(super) fn encode(message: &impl prost::Message) -> Result<Bytes, Status> {
    let len = message.encoded_len();
    let mut frame = BytesMut::with_capacity(FRAME_HEADER + len);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(len).map_err(|_| Status::internal("response too large"))?);
    message
        .encode(&mut frame)
        .map_err(|_| Status::internal("response encoding failed"))?;
    Ok(frame.freeze())
}

/// The one message of a unary request body, without its 5-byte header; the same refusals as
/// tonic's decoder (INTERNAL for a malformed frame, OUT_OF_RANGE past `limit`).
pub(super) async fn read_message(mut body: Body, limit: usize) -> Result<Bytes, Status> {
    let mut first: Option<Bytes> = None;
    let mut more = BytesMut::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        // A request body that breaks off means the client went away (reset the stream or
        // dropped the connection): it will never read an answer.
        let frame = frame.map_err(|e| {
            Status::cancelled(format!(
                "the request ended before its message: {}",
                e.message()
            ))
        })?;
        let Ok(data) = frame.into_data() else {
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

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use http_body::Frame;
    use tonic::Code;

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
}
