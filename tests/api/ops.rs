//! Running Warden in production (OPERATIONS.md): health that follows the database, draining on
//! SIGTERM, limits, metrics and traces. Metrics and the tracing subscriber are process-global;
//! these tests rely on nextest running each test in its own process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;

use crate::backend_tests;
use crate::helpers::*;

// ----- small clients: admin HTTP, metrics text, health -----

/// `GET path` over HTTP/1.1; the status code and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("admin listener accepts");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a complete HTTP response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    (code, body.to_owned())
}

/// The value of the series `name{labels}` in Prometheus text, labels in any order.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, found) = match series.split_once('{') {
                Some((n, rest)) => {
                    let pairs = rest.strip_suffix('}')?;
                    let found: BTreeMap<&str, &str> = pairs
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .filter_map(|p| p.split_once('=').map(|(k, v)| (k, v.trim_matches('"'))))
                        .collect();
                    (n, found)
                }
                None => (series, BTreeMap::new()),
            };
            (series_name == name && found == wanted)
                .then(|| value.parse().ok())
                .flatten()
        })
}

pub(crate) async fn scrape(metrics_addr: SocketAddr) -> String {
    let (code, body) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(code, 200, "/metrics answers 200");
    body
}

/// The labels of the unary RPC `pkg.Service/Method` in the `grpc_server_*` series, `extra` added.
fn rpc_labels<'a>(method: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let (service, name) = method.split_once('/').expect("pkg.Service/Method");
    let mut labels = vec![
        ("grpc_service", service),
        ("grpc_method", name),
        ("grpc_type", "unary"),
    ];
    labels.extend_from_slice(extra);
    labels
}

/// `grpc_server_handled_total` of the unary RPC `method` with `code`.
fn handled(text: &str, method: &str, code: &str) -> Option<f64> {
    metric(
        text,
        "grpc_server_handled_total",
        &rpc_labels(method, &[("grpc_code", code)]),
    )
}

/// Calls of `method` started and not handled yet: `grpc_server_started_total` minus every code's
/// `grpc_server_handled_total`.
fn in_flight(text: &str, method: &str) -> f64 {
    const CODES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    let started =
        metric(text, "grpc_server_started_total", &rpc_labels(method, &[])).unwrap_or(0.0);
    started
        - CODES
            .iter()
            .filter_map(|code| handled(text, method, code))
            .sum::<f64>()
}

/// Polls `/metrics` until `method` has `count` RPCs in flight (a request has reached its handler).
async fn wait_in_flight(metrics_addr: SocketAddr, method: &str, count: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(metrics_addr).await;
        #[allow(clippy::float_cmp)]
        if in_flight(&text, method) == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{method} never had {count} RPCs in flight:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn health_of(channel: &Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health answers");
    ServingStatus::try_from(response.into_inner().status).unwrap()
}

/// Polls gRPC health for `service` until it reports `want`.
async fn wait_health(channel: &Channel, service: &str, want: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = health_of(channel, service).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health of {service:?} stayed {now:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- health follows the database -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_postgres_is_unreachable_and_serving_again_when_it_returns() {
    // Arrange: Warden reaches its PostgreSQL database only through a proxy the test controls.
    let db = Arc::new(TestDatabase::create(Backend::Postgres).await);
    let (_, target) = through(&db.url, "127.0.0.1:1".parse().unwrap());
    let mut proxy = Proxy::start(&target).await;
    let proxy_addr = proxy.addr;
    let app = spawn_on(
        Arc::clone(&db),
        move |url| {
            let mut config = test_config(&through(url, proxy_addr).0);
            config.database.ping_interval = Duration::from_millis(100);
            config.database.connect_timeout = Duration::from_secs(1);
            // No staleness allowance: decisions fail fast with the database too (the
            // allowance itself is tested in outage.rs).
            config.max_staleness = Duration::ZERO;
            config
        },
        None,
    )
    .await;
    assert_eq!(health_of(&app.channel, "").await, ServingStatus::Serving);
    assert_eq!(http_get(app.metrics_addr, "/readyz").await.0, 200);

    // Act: the database goes away.
    proxy.stop().await;

    // Assert: the server and every warden.v1 service say NOT_SERVING; the process is alive.
    // (Checked right after "": with no allowance, decisions flip on the same ping.)
    wait_health(&app.channel, "", ServingStatus::NotServing).await;
    for service in [
        "warden.v1.RoleService",
        "warden.v1.AuthorizationService",
        "warden.v1.AuditService",
    ] {
        assert_eq!(
            health_of(&app.channel, service).await,
            ServingStatus::NotServing,
            "{service}"
        );
    }
    assert_eq!(
        http_get(app.metrics_addr, "/readyz").await.0,
        503,
        "/readyz follows gRPC health"
    );
    assert_eq!(
        http_get(app.metrics_addr, "/healthz").await.0,
        200,
        "/healthz: the process is alive"
    );

    // Act: the database comes back.
    proxy.restart().await;

    // Assert: SERVING again, and writes work.
    wait_health(&app.channel, "", ServingStatus::Serving).await;
    assert_eq!(
        health_of(&app.channel, "warden.v1.RoleService").await,
        ServingStatus::Serving
    );
    assert_eq!(http_get(app.metrics_addr, "/readyz").await.0, 200);
    app.create_permission("docs:read").await;
    app.finish().await;
}

// ----- SIGTERM, against the real binary -----

struct Server {
    child: Child,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    /// Every JSON log line so far.
    log: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

/// Starts `warden serve` on ephemeral ports and reads both addresses from its JSON log.
fn start_binary(url: &str, env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .args(["serve", "--listen-addr", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_DATABASE_URL", url)
        .env("WARDEN_AUTH_HS256_SECRET", SECRET)
        .env("WARDEN_AUTH_ISSUER", ISSUER)
        .env("WARDEN_AUTH_AUDIENCE", AUDIENCE)
        .env("WARDEN_BOOTSTRAP_ADMINS", ADMIN)
        .env("WARDEN_METRICS_ADDR", "127.0.0.1:0")
        .env("WARDEN_LOG_FORMAT", "json");
    for (key, value) in env {
        command.env(key, value);
    }
    if let Ok(filter) = std::env::var("RUST_LOG") {
        command.env("RUST_LOG", filter);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warden starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (addr, metrics_addr) = loop {
        let line = lines.next().expect("warden exited before serving").unwrap();
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if json["fields"]["message"] == "warden serving" {
            let field = |name: &str| {
                json["fields"][name]
                    .as_str()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap()
            };
            break (field("addr"), field("metrics_addr"));
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    let echo = std::env::var_os("TEST_LOG").is_some();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if echo {
                eprintln!("warden: {line}");
            }
            if let Ok(json) = serde_json::from_str(&line) {
                kept.lock().unwrap().push(json);
            }
        }
    });
    Server {
        child,
        addr,
        metrics_addr,
        log,
    }
}

fn send_sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM");
}

/// Waits for the process to exit, polling; fails after `limit`.
async fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("warden did not exit within {limit:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn sigterm_lets_in_flight_rpcs_finish_and_closes_streams_within_the_grace_period(
    backend: Backend,
) {
    // Arrange: a second replica (in-process) to write through once the first is draining, the
    // real binary, a client connection that stays open throughout, an open server stream and an
    // RPC in flight that can only finish once a new revision arrives.
    let db = Arc::new(TestDatabase::create(backend).await);
    let peer = spawn_on(Arc::clone(&db), test_config, None).await;
    let grace = Duration::from_secs(5);
    let mut server = start_binary(
        &db.url,
        &[
            ("WARDEN_SHUTDOWN_GRACE", "5s"),
            ("WARDEN_CONSISTENCY_WAIT", "30s"),
            ("WARDEN_CATCH_UP_INTERVAL", "100ms"),
        ],
    );
    let channel = connect(server.addr).await;
    let mut authz = authorization_service_client::AuthorizationServiceClient::new(channel.clone());
    let now = authz
        .check(authed(ADMIN, check("carol", "docs:read", 0)))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health watch opens")
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let in_flight = tokio::spawn(async move {
        authz
            .check(authed(ADMIN, check("carol", "docs:read", now + 1)))
            .await
    });
    wait_in_flight(
        server.metrics_addr,
        "warden.v1.AuthorizationService/Check",
        1.0,
    )
    .await;

    // Act
    let signalled = Instant::now();
    send_sigterm(&server.child);

    // Assert: readiness drops at once and the open stream is told, then closed.
    let deadline = Instant::now() + Duration::from_secs(3);
    while http_get(server.metrics_addr, "/readyz").await.0 != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz still 200 while draining"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut seen = Vec::new();
    let end = loop {
        match watch.message().await {
            Ok(Some(update)) => seen.push(update.status),
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    assert_eq!(
        seen,
        vec![ServingStatus::NotServing as i32],
        "the stream saw NOT_SERVING before it closed; ended with {end:?}"
    );
    let end = end.expect("the server ends the stream with a status");
    assert_error(&end, Code::Unavailable, "SHUTTING_DOWN");

    // Assert: the in-flight RPC still finishes normally once its revision is committed elsewhere.
    peer.create_permission("docs:read").await;
    let answered = in_flight
        .await
        .unwrap()
        .expect("the in-flight Check finishes")
        .into_inner();
    assert!(
        answered.revision > now,
        "answered at {} (wanted > {now})",
        answered.revision
    );

    // Assert: exit 0 within the grace period, although the client still holds its connection.
    let status = exit_within(&mut server.child, grace + Duration::from_secs(5)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(
        signalled.elapsed() < grace,
        "exited {:?} after SIGTERM; grace is {grace:?}",
        signalled.elapsed()
    );
    drop(channel);
    peer.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_rpcs_finish_and_closes_streams_within_the_grace_period_sqlite() {
    sigterm_lets_in_flight_rpcs_finish_and_closes_streams_within_the_grace_period(Backend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_rpcs_finish_and_closes_streams_within_the_grace_period_postgres() {
    sigterm_lets_in_flight_rpcs_finish_and_closes_streams_within_the_grace_period(
        Backend::Postgres,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_rpcs_still_running_at_the_end_of_the_grace_period_and_exits_0() {
    // Arrange: an RPC that would wait far longer than the grace period.
    let db = TestDatabase::create(Backend::Sqlite).await;
    let grace = Duration::from_secs(1);
    let mut server = start_binary(
        &db.url,
        &[
            ("WARDEN_SHUTDOWN_GRACE", "1s"),
            ("WARDEN_CONSISTENCY_WAIT", "60s"),
            ("WARDEN_LIMITS__RPC_TIMEOUT", "60s"),
        ],
    );
    let channel = connect(server.addr).await;
    let mut authz = authorization_service_client::AuthorizationServiceClient::new(channel.clone());
    let stuck = tokio::spawn(async move {
        authz
            .check(authed(ADMIN, check("carol", "docs:read", 1_000_000)))
            .await
    });
    wait_in_flight(
        server.metrics_addr,
        "warden.v1.AuthorizationService/Check",
        1.0,
    )
    .await;

    // Act
    let signalled = Instant::now();
    send_sigterm(&server.child);

    // Assert: the RPC is ended with a status the client can act on, and the process exits 0
    // right after the grace period (plus the one second the last statuses get to leave).
    let err = stuck.await.unwrap().expect_err("the stuck Check is ended");
    assert_error(&err, Code::Unavailable, "SHUTTING_DOWN");
    let status = exit_within(&mut server.child, Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?}");
    let took = signalled.elapsed();
    assert!(
        took >= grace,
        "the RPC was given the grace period ({took:?})"
    );
    assert!(
        took < grace + Duration::from_secs(3),
        "exited {took:?} after SIGTERM; grace is {grace:?}"
    );
    drop(channel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_with_retry_info_leaks_nothing_and_is_logged_under_the_request_id()
 {
    // Arrange: the real binary, JSON logs, a database it reaches through a proxy.
    let db = TestDatabase::create(Backend::Postgres).await;
    let (_, target) = through(&db.url, "127.0.0.1:1".parse().unwrap());
    let mut proxy = Proxy::start(&target).await;
    let mut server = start_binary(
        &through(&db.url, proxy.addr).0,
        &[
            ("WARDEN_DATABASE__CONNECT_TIMEOUT", "1s"),
            ("WARDEN_SHUTDOWN_GRACE", "2s"),
        ],
    );
    let channel = connect(server.addr).await;
    proxy.stop().await;

    // Act
    let mut request = authed(
        ADMIN,
        CreatePermissionRequest {
            name: "docs:read".into(),
            ..Default::default()
        },
    );
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("req-internal-7"));
    let err = permission_service_client::PermissionServiceClient::new(channel.clone())
        .create_permission(request)
        .await
        .expect_err("the database is gone");

    // Assert: a status clients' retry policies retry, saying when, and nothing internal; the
    // id the log line carries.
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(
        err.message(),
        "the database is unreachable; retry with backoff"
    );
    assert!(err.get_details_retry_info().is_some(), "{err:?}");
    assert_eq!(
        err.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("UNAVAILABLE")
    );
    assert_eq!(
        err.get_details_request_info()
            .expect("RequestInfo")
            .request_id,
        "req-internal-7"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let logged = server.log.lock().unwrap().iter().any(|line| {
            line["level"] == "WARN"
                && line["span"]["request_id"] == "req-internal-7"
                && line["span"]["name"] == "rpc"
        });
        if logged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no WARN line under request id req-internal-7"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.restart().await;
    send_sigterm(&server.child);
    assert!(
        exit_within(&mut server.child, Duration::from_secs(10))
            .await
            .success()
    );
    drop(channel);
    db.drop_database().await;
}

// ----- limits -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_cleanly_and_the_server_keeps_serving() {
    // Arrange
    let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let app = spawn_on(
        db,
        |url| {
            let mut config = test_config(url);
            config.limits.max_request_bytes = 1024;
            config
        },
        None,
    )
    .await;

    // Act
    let huge = CreatePermissionRequest {
        name: "docs:read".into(),
        description: "x".repeat(4096),
        ..Default::default()
    };
    let err = app
        .permissions()
        .create_permission(authed(ADMIN, huge))
        .await
        .expect_err("refused");

    // Assert: tonic reports a too-large message as OUT_OF_RANGE; nothing internal leaks.
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "unexpected status: {err:?}"
    );
    assert!(
        err.message().contains("too large"),
        "says what is wrong: {}",
        err.message()
    );
    assert!(
        err.get_details_request_info().is_some(),
        "carries the request id: {err:?}"
    );
    let created = app
        .permissions()
        .create_permission(authed(
            ADMIN,
            CreatePermissionRequest {
                name: "docs:read".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("a normal request on the same connection still works");
    assert_eq!(created.into_inner().name, "docs:read");
    assert_eq!(health_of(&app.channel, "").await, ServingStatus::Serving);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_with_resource_exhausted_within_milliseconds_and_health_still_answers() {
    // Arrange: room for one RPC, taken by a Check waiting for a revision that never comes.
    let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let app = spawn_on(
        db,
        |url| {
            let mut config = test_config(url);
            config.limits.max_concurrent_rpcs = 1;
            config.consistency_wait = Duration::from_secs(2);
            config
        },
        None,
    )
    .await;
    let mut slow_client = app.authz();
    let slow = tokio::spawn(async move {
        slow_client
            .check(authed(ADMIN, check("carol", "docs:read", 1_000_000)))
            .await
    });
    wait_in_flight(
        app.metrics_addr,
        "warden.v1.AuthorizationService/Check",
        1.0,
    )
    .await;

    // Act
    let started = Instant::now();
    let err = app
        .authz()
        .check(authed(ADMIN, check("carol", "docs:read", 0)))
        .await
        .expect_err("shed");
    let took = started.elapsed();

    // Assert: refused at once, not queued; probes are not shed.
    assert_error(&err, Code::ResourceExhausted, "OVERLOADED");
    assert!(took < Duration::from_millis(500), "shedding took {took:?}");
    assert_eq!(health_of(&app.channel, "").await, ServingStatus::Serving);
    let text = scrape(app.metrics_addr).await;
    assert_eq!(
        handled(
            &text,
            "warden.v1.AuthorizationService/Check",
            "RESOURCE_EXHAUSTED"
        ),
        Some(1.0),
        "shed calls are counted:\n{text}"
    );

    // Assert: once the slow RPC is over, there is room again.
    let slow = slow
        .await
        .unwrap()
        .expect_err("the slow Check gives up after consistency_wait");
    assert_error(&slow, Code::Unavailable, "UNAVAILABLE");
    app.authz()
        .check(authed(ADMIN, check("carol", "docs:read", 0)))
        .await
        .expect("capacity is back");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_running_past_the_rpc_timeout_ends_with_deadline_exceeded() {
    // Arrange
    let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let app = spawn_on(
        db,
        |url| {
            let mut config = test_config(url);
            config.limits.rpc_timeout = Duration::from_millis(200);
            config.consistency_wait = Duration::from_secs(30);
            config
        },
        None,
    )
    .await;

    // Act
    let err = app
        .authz()
        .check(authed(ADMIN, check("carol", "docs:read", 1_000_000)))
        .await
        .expect_err("timed out");

    // Assert
    assert_error(&err, Code::DeadlineExceeded, "RPC_TIMEOUT");
    app.authz()
        .check(authed(ADMIN, check("carol", "docs:read", 0)))
        .await
        .expect("the server is fine afterwards");
    app.finish().await;
}

#[test]
fn bad_limits_are_refused_naming_the_setting() {
    type Spoil = fn(&mut warden::Config);
    let table: [(&str, Spoil); 4] = [
        (
            "limits.max_concurrent_rpcs (WARDEN_LIMITS__MAX_CONCURRENT_RPCS)",
            |c| c.limits.max_concurrent_rpcs = 0,
        ),
        (
            "limits.http2_keepalive_timeout (WARDEN_LIMITS__HTTP2_KEEPALIVE_TIMEOUT)",
            |c| c.limits.http2_keepalive_timeout = Duration::ZERO,
        ),
        (
            "database.ping_interval (WARDEN_DATABASE__PING_INTERVAL)",
            |c| c.database.ping_interval = Duration::ZERO,
        ),
        ("otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)", |c| {
            c.otlp_endpoint = Some("collector:4317".into())
        }),
    ];
    for (setting, spoil) in table {
        let mut config = test_config("sqlite://unused.db");
        config.validate().expect("the test config is valid");
        spoil(&mut config);
        let err = config.validate().expect_err(setting);
        assert!(err.starts_with(setting), "{setting}: got {err:?}");
    }
}

// ----- request ids, metrics, admin endpoints -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_carry_the_request_id_and_keep_their_error_info() {
    // Arrange
    let app = spawn_app(Backend::Sqlite).await;

    // Act: refused by the auth layer, with the client's own request id.
    let mut request = Request::new(ListPermissionsRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("req-42"));
    let unauthenticated = app
        .permissions()
        .list_permissions(request)
        .await
        .expect_err("no token");
    // Act: a domain error, with a request id the server makes up.
    let not_found = app
        .permissions()
        .get_permission(authed(
            ADMIN,
            GetPermissionRequest {
                permission: Some(perm_name("nope:read")),
            },
        ))
        .await
        .expect_err("absent");

    // Assert
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    assert_request_id(&unauthenticated, "req-42");
    assert_error(&not_found, Code::NotFound, "NOT_FOUND");
    assert_generated_request_id(&not_found);
    app.finish().await;
}

backend_tests! {
    async fn metrics_show_rpcs_by_method_and_code_check_decisions_and_gauges(app) {
        // Arrange
        let permissions = || app.permissions();
        let create = |name: &str| authed(ADMIN, CreatePermissionRequest { name: name.into(), ..Default::default() });
        permissions().create_permission(create("docs:read")).await.unwrap();
        permissions().create_permission(create("docs:write")).await.unwrap();
        permissions().create_permission(create("docs:read")).await.expect_err("duplicate");
        permissions().list_permissions(Request::new(ListPermissionsRequest::default())).await.expect_err("no token");
        app.roles()
            .create_role(authed(ADMIN, CreateRoleRequest { name: "reader".into(), permissions: vec![perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap();
        app.assign("reader", "alice").await;
        assert!(app.check("alice", "docs:read").await);
        assert!(!app.check("bob", "docs:read").await);
        assert!(!app.check("alice", "nope:read").await);

        // Act
        let text = scrape(app.metrics_addr).await;

        // Assert
        let rpcs = |method: &str, code: &str| handled(&text, method, code);
        assert_eq!(rpcs("warden.v1.PermissionService/CreatePermission", "OK"), Some(2.0), "{text}");
        assert_eq!(rpcs("warden.v1.PermissionService/CreatePermission", "ALREADY_EXISTS"), Some(1.0), "{text}");
        assert_eq!(rpcs("warden.v1.PermissionService/ListPermissions", "UNAUTHENTICATED"), Some(1.0), "{text}");
        assert_eq!(rpcs("warden.v1.AuthorizationService/Check", "OK"), Some(3.0), "{text}");
        assert_eq!(
            metric(&text, "grpc_server_started_total", &rpc_labels("warden.v1.PermissionService/CreatePermission", &[])),
            Some(3.0),
            "every call counted as started: {text}"
        );
        assert_eq!(
            metric(&text, "grpc_server_handling_seconds_count", &rpc_labels("warden.v1.PermissionService/CreatePermission", &[])),
            Some(3.0),
            "a latency histogram: {text}"
        );
        assert!(text.contains("grpc_server_handling_seconds_bucket{"), "histogram buckets: {text}");
        let decisions = |result: &str| metric(&text, "warden_check_decisions_total", &[("result", result)]);
        assert_eq!(decisions("allowed"), Some(1.0), "{text}");
        assert_eq!(decisions("denied"), Some(1.0), "{text}");
        assert_eq!(decisions("unknown_permission"), Some(1.0), "{text}");
        assert!(metric(&text, "warden_index_assignments", &[]).unwrap() >= 1.0, "{text}");
        assert!(metric(&text, "warden_index_tenants", &[]).unwrap() >= 1.0, "{text}");
        assert!(metric(&text, "warden_applied_revision", &[]).unwrap() >= 1.0, "{text}");
        assert_eq!(metric(&text, "warden_db_pool_max_connections", &[]), Some(10.0), "{text}");
        assert!(metric(&text, "warden_db_pool_connections", &[]).unwrap() >= 1.0, "{text}");
        assert_eq!(metric(&text, "warden_up", &[]), Some(1.0), "{text}");
    }

    async fn healthz_and_readyz_answer(app) {
        // Act
        let healthz = http_get(app.metrics_addr, "/healthz").await;
        let readyz = http_get(app.metrics_addr, "/readyz").await;
        let missing = http_get(app.metrics_addr, "/nope").await;

        // Assert
        assert_eq!(healthz.0, 200);
        assert_eq!(readyz.0, 200);
        assert_eq!(missing.0, 404);
    }
}

// ----- traces -----

/// An OTLP/gRPC trace receiver on an ephemeral port, handing every export to the test.
struct Receiver(
    mpsc::UnboundedSender<
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    >,
);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Receiver
{
    async fn export(
        &self,
        request: Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        Response<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse>,
        Status,
    > {
        let _ = self.0.send(request.into_inner());
        Ok(Response::new(Default::default()))
    }
}

type Exports = mpsc::UnboundedReceiver<
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
>;

/// Starts a receiver; its endpoint URL and what it receives.
async fn otlp_receiver() -> (String, Exports) {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, exported) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (endpoint, exported)
}

/// Waits for an exported span named `name`.
async fn exported_span(
    exported: &mut Exports,
    name: &str,
) -> opentelemetry_proto::tonic::trace::v1::Span {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let batch = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            exported.recv(),
        )
        .await
        .unwrap_or_else(|_| panic!("no span {name} was exported"))
        .expect("receiver open");
        let found = batch
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .find(|s| s.name == name);
        if let Some(span) = found {
            return span;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_traceparent_becomes_the_parent_of_the_server_span() {
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

    // Arrange: a receiver, and this process's subscriber exporting to it.
    let (endpoint, mut exported) = otlp_receiver().await;
    let telemetry = warden::telemetry::init(warden::config::LogFormat::Text, Some(&endpoint))
        .expect("the first subscriber in this test process");
    let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let with_export = |url: &str| warden::Config {
        otlp_endpoint: Some(endpoint.clone()),
        ..test_config(url)
    };
    let app = spawn_on(db, with_export, None).await;
    let trace_id = uuid::Uuid::now_v7().simple().to_string();
    let parent_span_id = format!("{:016x}", rand::random::<u64>() | 1);

    // Act
    let mut request = authed(ADMIN, check("carol", "docs:read", 0));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_span_id}-01")
            .parse()
            .unwrap(),
    );
    app.authz().check(request).await.expect("check");
    telemetry.flush().await;

    // Assert: the exported server span belongs to the client's trace, under the client's span.
    let decode = |hex: &str| {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    let span = exported_span(&mut exported, "warden.v1.AuthorizationService/Check").await;
    assert_eq!(span.trace_id, decode(&trace_id), "same trace as the client");
    assert_eq!(
        span.parent_span_id,
        decode(&parent_span_id),
        "child of the client's span"
    );
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert!(
        span.attributes.iter().any(|a| a.key == "request_id"),
        "the span names its request id: {:?}",
        span.attributes
    );

    // Act: a client whose trace is not sampled (flags 00) calls Check, then GetPermission.
    let unsampled = uuid::Uuid::now_v7().simple().to_string();
    let traceparent = format!("00-{unsampled}-{parent_span_id}-00");
    let mut request = authed(ADMIN, check("carol", "docs:read", 0));
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    app.authz().check(request).await.expect("check");
    let mut request = authed(
        ADMIN,
        GetPermissionRequest {
            permission: Some(perm_name("warden:checks:run")),
        },
    );
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    app.permissions()
        .get_permission(request)
        .await
        .expect("get");
    telemetry.flush().await;

    // Assert: the default sampler (parent-based) follows the client: nothing of that trace is
    // exported.
    let mut leaked = Vec::new();
    while let Ok(batch) = exported.try_recv() {
        leaked.extend(
            batch
                .resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans)
                .filter(|s| s.trace_id == decode(&unsampled))
                .map(|s| s.name),
        );
    }
    assert!(
        leaked.is_empty(),
        "spans of an unsampled trace were exported: {leaked:?}"
    );
    app.finish().await;
    telemetry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_spans_to_otel_exporter_otlp_endpoint_and_flushes_them_on_sigterm() {
    // Arrange: the standard OpenTelemetry variable points the real binary at the receiver.
    let (endpoint, mut exported) = otlp_receiver().await;
    let db = TestDatabase::create(Backend::Sqlite).await;
    let mut server = start_binary(
        &db.url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("WARDEN_SHUTDOWN_GRACE", "2s"),
        ],
    );
    let channel = connect(server.addr).await;
    permission_service_client::PermissionServiceClient::new(channel.clone())
        .list_permissions(authed(ADMIN, ListPermissionsRequest::default()))
        .await
        .expect("list");

    // Act: stop it before the batch exporter's own schedule (5 s) would send anything.
    send_sigterm(&server.child);
    let status = exit_within(&mut server.child, Duration::from_secs(10)).await;

    // Assert: the span left with the shutdown flush.
    assert!(status.success(), "exit status {status:?}");
    let span = exported_span(&mut exported, "warden.v1.PermissionService/ListPermissions").await;
    assert_eq!(span.trace_id.len(), 16, "a root span with a fresh trace id");
    drop(channel);
}
