//! Check's own route (src/grpc/hot_check.rs): on the wire, in its errors and its request ids, it
//! answers exactly as the generic route answers every other unary RPC.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

use crate::helpers::*;

/// One unary RPC over raw HTTP/2: the response headers, the body bytes and the trailers.
async fn raw_unary(
    addr: SocketAddr,
    path: &str,
    token: &str,
    message: &impl prost::Message,
) -> (http::response::Parts, Vec<u8>, Option<http::HeaderMap>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    let encoded = message.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&encoded);
    send.send_data(frame.into(), true).unwrap();
    let (parts, mut body) = response.await.unwrap().into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap();
    (parts, data, trailers)
}

#[tokio::test]
async fn check_answers_on_the_wire_like_every_other_unary_rpc() {
    // Arrange: Check has its own route (hot_check.rs); BatchCheck goes through tonic's.
    let app = spawn_app(Backend::Sqlite).await;
    app.create_permission("docs:read").await;
    app.create_role("reader", &["docs:read"]).await;
    app.assign("reader", "carol").await;
    let token = token_with(serde_json::json!({ "sub": ADMIN }));
    let item = check("carol", "docs:read", 0);

    // Act
    let (check_head, check_body, check_trailers) = raw_unary(
        app.addr,
        "/warden.v1.AuthorizationService/Check",
        &token,
        &item,
    )
    .await;
    let (batch_head, _, batch_trailers) = raw_unary(
        app.addr,
        "/warden.v1.AuthorizationService/BatchCheck",
        &token,
        &BatchCheckRequest { items: vec![item] },
    )
    .await;

    // Assert: status 200, gRPC content type, no content-length, one uncompressed message,
    // and the status in trailers, as tonic answers.
    for head in [&check_head, &batch_head] {
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["content-type"], "application/grpc");
        assert!(!head.headers.contains_key("content-length"), "{head:?}");
    }
    for trailers in [&check_trailers, &batch_trailers] {
        let trailers = trailers.as_ref().expect("trailers end the response");
        assert_eq!(trailers["grpc-status"], "0");
    }
    assert_eq!(check_body[0], 0, "not compressed");
    let len = u32::from_be_bytes(check_body[1..5].try_into().unwrap()) as usize;
    assert_eq!(check_body.len(), 5 + len, "exactly one message");
    let answer = <CheckResponse as prost::Message>::decode(&check_body[5..]).unwrap();
    assert!(answer.allowed);
    app.finish().await;
}

#[tokio::test]
async fn check_errors_carry_a_request_id_and_a_successful_check_echoes_the_clients() {
    // Arrange: Check is served by its own route (hot_check.rs); its answers must look exactly
    // like every other RPC's.
    let app = spawn_app(Backend::Sqlite).await;
    app.create_permission("docs:read").await;
    app.create_role("reader", &["docs:read"]).await;
    app.assign("reader", "carol").await;
    let with_id = |mut request: Request<CheckRequest>, id: &'static str| {
        request
            .metadata_mut()
            .insert("x-request-id", MetadataValue::from_static(id));
        request
    };

    // Act
    let unauthenticated = app
        .authz()
        .check(with_id(
            Request::new(check("carol", "docs:read", 0)),
            "req-7",
        ))
        .await
        .expect_err("no token");
    let invalid = app
        .authz()
        .check(authed(ADMIN, check("", "docs:read", 0)))
        .await
        .expect_err("empty identity");
    let denied = app
        .authz()
        .check(authed("carol", check("dave", "docs:read", 0)))
        .await
        .expect_err("carol may not check others");
    let allowed = app
        .authz()
        .check(with_id(
            authed(ADMIN, check("carol", "docs:read", 0)),
            "req-8",
        ))
        .await
        .expect("allowed");

    // Assert
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    assert_request_id(&unauthenticated, "req-7");
    assert_invalid(&invalid, "identity_id");
    assert_error(&denied, Code::PermissionDenied, "PERMISSION_DENIED");
    assert_generated_request_id(&invalid);
    assert_generated_request_id(&denied);
    assert!(allowed.get_ref().allowed);
    assert_eq!(allowed.metadata().get("x-request-id").unwrap(), "req-8");
    app.finish().await;
}
