//! gRPC-Web for browser dashboards (issue 15, item 2): with `WARDEN_GRPC_WEB_ALLOWED_ORIGINS`
//! set, a browser-shaped HTTP/1.1 gRPC-Web call reaches the same handlers through the same edge
//! (authentication included), and CORS answers only the listed origins.

use std::sync::Arc;

use prost::Message as _;
use warden::config::Config;

use crate::helpers::*;

const DASHBOARD: &str = "https://dash.example";

fn with_dashboard(url: &str) -> Config {
    let mut config = test_config(url);
    config.grpc_web_allowed_origins = vec![DASHBOARD.into()];
    config
}

/// A gRPC-Web call of Check over HTTP/1.1: the response's headers, message and trailers.
async fn web_check(
    app: &TestApp,
    token: Option<&str>,
    origin: &str,
    request: &CheckRequest,
) -> (reqwest::header::HeaderMap, Option<CheckResponse>, String) {
    let message = request.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    let mut call = client
        .post(format!(
            "http://{}/warden.v1.AuthorizationService/Check",
            app.addr
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", origin)
        .body(body);
    if let Some(token) = token {
        call = call.header("authorization", format!("Bearer {token}"));
    }
    let response = call.send().await.expect("the server answers HTTP/1.1");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    // Frames: flag (0x00 message, 0x80 trailers), big-endian length, payload.
    let (mut message, mut trailers, mut at) = (None, String::new(), 0);
    while at + 5 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        let payload = &bytes[at + 5..at + 5 + len];
        if bytes[at] & 0x80 == 0 {
            message = Some(CheckResponse::decode(payload).unwrap());
        } else {
            trailers = String::from_utf8_lossy(payload).to_lowercase();
        }
        at += 5 + len;
    }
    // A trailers-only error answer carries the status in the headers instead.
    if trailers.is_empty()
        && let Some(status) = headers.get("grpc-status")
    {
        trailers = format!("grpc-status:{}", status.to_str().unwrap());
    }
    (headers, message, trailers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_checks_over_grpc_web_from_an_allowed_origin() {
    let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let app = spawn_on(db, with_dashboard, None).await;
    app.create_role("reader", &["docs:read"]).await;
    app.assign("reader", "alice").await;
    let token = app.tenant_token(ADMIN, "default");

    // A Check over gRPC-Web, answered by the same handler.
    let (headers, answer, trailers) = web_check(
        &app,
        Some(&token),
        DASHBOARD,
        &check("alice", "docs:read", 0),
    )
    .await;
    assert!(answer.expect("a CheckResponse").allowed);
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    assert_eq!(
        headers.get("access-control-allow-origin").unwrap(),
        DASHBOARD
    );
    assert!(
        headers.get("x-request-id").is_some(),
        "the edge's request id: {headers:?}"
    );

    // The edge's rules apply: no token, UNAUTHENTICATED (16).
    let (_, answer, trailers) =
        web_check(&app, None, DASHBOARD, &check("alice", "docs:read", 0)).await;
    assert!(answer.is_none());
    assert!(trailers.contains("grpc-status:16"), "{trailers:?}");

    // Another origin gets no CORS grant (the browser would not let the page read the answer).
    let (headers, _, _) = web_check(
        &app,
        Some(&token),
        "https://evil.example",
        &check("alice", "docs:read", 0),
    )
    .await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );

    // The browser's preflight is answered for the listed origin.
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/warden.v1.AuthorizationService/Check", app.addr),
        )
        .header("origin", DASHBOARD)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,x-grpc-web",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{preflight:?}");
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        DASHBOARD
    );

    // Plain gRPC on the same port is unchanged.
    assert!(app.check("alice", "docs:read").await);
    app.finish().await;
}
