//! Check's fast path (a branch inside src/grpc/edge): on the wire, in its errors, its request ids
//! and its metrics, it answers exactly as tonic's route answers every other unary RPC.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

use crate::helpers::*;

/// One unary RPC over raw HTTP/2 (no `authorization` when `token` is empty): the response
/// headers, the body bytes and the trailers.
pub(crate) async fn raw_unary(
    addr: SocketAddr,
    path: &str,
    token: &str,
    message: &impl prost::Message,
) -> (http::response::Parts, Vec<u8>, Option<http::HeaderMap>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if !token.is_empty() {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(()).unwrap();
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
    // Arrange: the edge answers Check itself; BatchCheck goes down tonic's route.
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
    // Arrange: the edge answers Check itself; its answers must look exactly like every other
    // RPC's.
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

/// The response of one raw call, reduced to what must not differ between two RPCs: the status,
/// the header and trailer names, the gRPC status and message, and the request id's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    http_status: u16,
    headers: Vec<String>,
    trailers: Vec<String>,
    grpc_status: String,
    grpc_message: String,
    request_id_is_uuid: bool,
    request_info_matches_header: bool,
}

fn shape(head: &http::response::Parts, trailers: Option<&http::HeaderMap>) -> Shape {
    use tonic_types::StatusExt as _;
    let names = |map: &http::HeaderMap| {
        let mut names: Vec<String> = map.keys().map(|k| k.as_str().to_owned()).collect();
        names.sort();
        names
    };
    // The status is in the trailers, or in the headers of a trailers-only response.
    let status_in = trailers
        .filter(|t| t.contains_key("grpc-status"))
        .unwrap_or(&head.headers);
    let request_id = head.headers["x-request-id"].to_str().unwrap().to_owned();
    let status = tonic::Status::from_header_map(status_in).expect("a grpc-status");
    let request_info_matches_header = status.code() == Code::Ok
        || status
            .get_details_request_info()
            .is_some_and(|info| info.request_id == request_id);
    Shape {
        http_status: head.status.as_u16(),
        headers: names(&head.headers),
        trailers: trailers.map(names).unwrap_or_default(),
        grpc_status: status_in["grpc-status"].to_str().unwrap().to_owned(),
        grpc_message: status.message().to_owned(),
        request_id_is_uuid: uuid::Uuid::parse_str(&request_id).is_ok(),
        request_info_matches_header,
    }
}

/// `name{labels}` summed over the lines of a Prometheus text that carry all of `labels`.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split_once('{').is_some_and(|(n, rest)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
        })
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn check_and_another_rpc_answer_the_same_calls_with_the_same_headers_trailers_and_metrics() {
    // Arrange: Check (the edge's fast path) and GetPermission (tonic's route) share the request
    // shape `{string, string}` closely enough to fail and succeed the same ways.
    let app = spawn_app(Backend::Sqlite).await;
    app.create_permission("docs:read").await;
    app.create_role("reader", &["docs:read"]).await;
    app.assign("reader", "carol").await;
    let admin = token_with(serde_json::json!({ "sub": ADMIN }));
    let bob = token_with(serde_json::json!({ "sub": "bob" }));
    let check_path = "/warden.v1.AuthorizationService/Check";
    let get_path = "/warden.v1.PermissionService/GetPermission";
    let ok_check = check("carol", "docs:read", 0);
    let ok_get = GetPermissionRequest {
        permission: Some(perm_name("docs:read")),
    };
    let bad_check = check("carol", "not a permission!", 0);
    let bad_get = GetPermissionRequest {
        permission: Some(perm_name("not a permission!")),
    };
    let denied_check = check("carol", "docs:read", 0);

    let before = crate::ops::scrape(app.metrics_addr).await;

    // Act: success, no token, a bad token, an invalid field, a caller without the right.
    let mut shapes = Vec::new();
    for (token, check_message, get_message) in [
        (admin.as_str(), &ok_check, &ok_get),
        ("", &ok_check, &ok_get),
        ("not-a-jwt", &ok_check, &ok_get),
        (admin.as_str(), &bad_check, &bad_get),
        (bob.as_str(), &denied_check, &ok_get),
    ] {
        let (check_head, _, check_trailers) =
            raw_unary(app.addr, check_path, token, check_message).await;
        let (get_head, _, get_trailers) = raw_unary(app.addr, get_path, token, get_message).await;
        shapes.push((
            shape(&check_head, check_trailers.as_ref()),
            shape(&get_head, get_trailers.as_ref()),
        ));
    }
    let text = crate::ops::scrape(app.metrics_addr).await;

    // Assert: the same shape, call by call; the messages of the last two name their own field
    // and permission.
    for (i, (check_shape, get_shape)) in shapes.iter().enumerate() {
        let (mut check_shape, mut get_shape) = (check_shape.clone(), get_shape.clone());
        if i >= 3 {
            check_shape.grpc_message.clear();
            get_shape.grpc_message.clear();
        }
        assert_eq!(check_shape, get_shape, "call {i}");
    }
    let codes: Vec<&str> = shapes.iter().map(|(c, _)| c.grpc_status.as_str()).collect();
    assert_eq!(codes, ["0", "16", "16", "3", "7"]);

    // Assert: the same series, counted the same way (the arrangement's calls left out).
    for (service, method) in [
        ("warden.v1.AuthorizationService", "Check"),
        ("warden.v1.PermissionService", "GetPermission"),
    ] {
        let labels = [
            ("grpc_service", service),
            ("grpc_method", method),
            ("grpc_type", "unary"),
        ];
        let of = |name: &str, extra: &[(&'static str, &'static str)]| {
            let mut all = labels.to_vec();
            all.extend_from_slice(extra);
            series(&text, name, &all) - series(&before, name, &all)
        };
        assert_eq!(
            of("grpc_server_started_total", &[]),
            5.0,
            "{method}: {text}"
        );
        assert_eq!(
            of("grpc_server_handling_seconds_count", &[]),
            5.0,
            "{method}"
        );
        assert_eq!(
            of("grpc_server_handled_total", &[("grpc_code", "OK")]),
            1.0,
            "{method}"
        );
        assert_eq!(
            of(
                "grpc_server_handled_total",
                &[("grpc_code", "UNAUTHENTICATED")]
            ),
            2.0,
            "{method}"
        );
        assert_eq!(
            of(
                "grpc_server_handled_total",
                &[("grpc_code", "INVALID_ARGUMENT")]
            ),
            1.0,
            "{method}"
        );
        assert_eq!(
            of(
                "grpc_server_handled_total",
                &[("grpc_code", "PERMISSION_DENIED")]
            ),
            1.0,
            "{method}"
        );
    }
    app.finish().await;
}
