//! The harness: a real server on an ephemeral port against a fresh database, and real clients.

use std::sync::{Arc, Once};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;
use warden::config::{AuthConfig, Config, DatabaseConfig};
use warden::domain::{Clock, ManualClock, SystemClock};
use warden::proto::pb;

pub use warden::proto::pb::*;

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "warden-tests";
/// Bootstrapped as `warden:admin` in the default tenant.
pub const ADMIN: &str = "admin";
/// A second admin, for approvals.
pub const ADMIN2: &str = "admin2";
/// Bootstrapped as `warden:admin` in tenant `acme`.
pub const ACME_ADMIN: &str = "acme-admin";
/// The platform tenant (TenantService) and its bootstrap admin.
pub const PLATFORM: &str = "platform";
pub const PLATFORM_ROOT: &str = "root";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each body once per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await;
                    $body
                    $app.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await;
                    $body
                    $app.finish().await;
                }
            }
        )*
    };
}

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = warden::telemetry::init(warden::config::LogFormat::Text, None);
        }
    });
}

/// The PostgreSQL server tests create their databases on. Never skipped: without it, fail.
pub fn postgres_admin_url() -> String {
    std::env::var("WARDEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database: a temporary SQLite file, or a new PostgreSQL database.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("warden.db").display()
                );
                Self {
                    url,
                    name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("warden_test_{}", uuid::Uuid::now_v7().simple());
                let conn = Database::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable: {e}"));
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .expect("URL with a database path");
                Self {
                    url: format!("{base}/{name}"),
                    name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    /// Drops a PostgreSQL test database (best effort).
    pub async fn drop_database(&self) {
        if let Some(name) = &self.name
            && let Ok(conn) = Database::connect(&postgres_admin_url()).await
        {
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            conn.close().await.ok();
        }
    }
}

pub fn test_config(url: &str) -> Config {
    Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        database: DatabaseConfig::at(url),
        auth: AuthConfig {
            hs256_secret: Some(SECRET.to_owned().into()),
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            ..AuthConfig::default()
        },
        bootstrap_admins: vec![
            ADMIN.into(),
            ADMIN2.into(),
            format!("acme/{ACME_ADMIN}"),
            format!("{PLATFORM}/{PLATFORM_ROOT}"),
        ],
        platform_tenant: Some(PLATFORM.into()),
        catch_up_interval: Duration::from_millis(200),
        ..Config::default()
    }
}

/// One running server and what a test needs to talk to it.
pub struct TestApp {
    /// The gRPC address.
    pub addr: std::net::SocketAddr,
    /// The admin HTTP address: `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: std::net::SocketAddr,
    pub channel: Channel,
    pub db: Arc<TestDatabase>,
    pub clock: Option<ManualClock>,
    /// The use-case layer behind the API, for driving upkeep (sweeps) directly.
    pub service: warden::service::Service,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let db = Arc::new(TestDatabase::create(backend).await);
    spawn_on(db, test_config, None).await
}

/// A server whose clock the test moves by hand, starting at `start`.
pub async fn spawn_with_clock(backend: Backend, start: chrono::DateTime<chrono::Utc>) -> TestApp {
    let db = Arc::new(TestDatabase::create(backend).await);
    spawn_on(db, test_config, Some(ManualClock::new(start))).await
}

/// Starts a server on an existing database, with a config tweak and an optional manual clock.
pub async fn spawn_on(
    db: Arc<TestDatabase>,
    config: impl FnOnce(&str) -> Config,
    clock: Option<ManualClock>,
) -> TestApp {
    init_tracing();
    let config = config(&db.url);
    let tls = config.tls.enabled();
    let clock_dyn: Arc<dyn Clock> = match &clock {
        Some(c) => Arc::new(c.clone()),
        None => Arc::new(SystemClock),
    };
    let app = warden::App::build_with_clock(config, clock_dyn)
        .await
        .expect("app builds, migrations run, index loads");
    let addr = app.local_addr();
    let service = app.service().clone();
    let metrics_addr = app.metrics_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        stopped.await.ok();
    }));
    // The listener is bound before spawning, so connecting cannot race the server. A TLS server
    // is not reached over plain HTTP/2: its tests put a TLS channel in `channel` themselves.
    let endpoint = Channel::from_shared(format!("http://{addr}")).unwrap();
    let channel = if tls {
        endpoint.connect_lazy()
    } else {
        endpoint.connect().await.expect("connects")
    };
    TestApp {
        addr,
        metrics_addr,
        channel,
        db,
        clock,
        service,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// Stops the server and drops its database.
    pub async fn finish(mut self) {
        self.shutdown().await;
        self.db.drop_database().await;
    }

    /// Stops the server, keeping the database.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server exits cleanly");
        }
    }

    pub fn tenant_token(&self, sub: &str, tenant: &str) -> String {
        token_with(json!({ "sub": sub, "tenant": tenant }))
    }

    pub fn permissions(&self) -> permission_service_client::PermissionServiceClient<Channel> {
        permission_service_client::PermissionServiceClient::new(self.channel.clone())
    }
    pub fn roles(&self) -> role_service_client::RoleServiceClient<Channel> {
        role_service_client::RoleServiceClient::new(self.channel.clone())
    }
    pub fn assignments(&self) -> assignment_service_client::AssignmentServiceClient<Channel> {
        assignment_service_client::AssignmentServiceClient::new(self.channel.clone())
    }
    pub fn change_requests(
        &self,
    ) -> change_request_service_client::ChangeRequestServiceClient<Channel> {
        change_request_service_client::ChangeRequestServiceClient::new(self.channel.clone())
    }
    pub fn groups(&self) -> group_service_client::GroupServiceClient<Channel> {
        group_service_client::GroupServiceClient::new(self.channel.clone())
    }
    pub fn authz(&self) -> authorization_service_client::AuthorizationServiceClient<Channel> {
        authorization_service_client::AuthorizationServiceClient::new(self.channel.clone())
    }
    pub fn configuration(
        &self,
    ) -> configuration_service_client::ConfigurationServiceClient<Channel> {
        configuration_service_client::ConfigurationServiceClient::new(self.channel.clone())
    }
    pub fn audit(&self) -> audit_service_client::AuditServiceClient<Channel> {
        audit_service_client::AuditServiceClient::new(self.channel.clone())
    }

    // ----- shortcuts used by many tests (as ADMIN unless said otherwise) -----

    pub async fn create_permission(&self, name: &str) -> pb::Permission {
        self.permissions()
            .create_permission(authed(
                ADMIN,
                CreatePermissionRequest {
                    name: name.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("create permission {name}: {e}"))
            .into_inner()
    }

    pub async fn create_role(&self, name: &str, permissions: &[&str]) -> pb::Role {
        for p in permissions {
            if self
                .permissions()
                .get_permission(authed(
                    ADMIN,
                    GetPermissionRequest {
                        permission: Some(perm_name(p)),
                    },
                ))
                .await
                .is_err()
            {
                self.create_permission(p).await;
            }
        }
        self.roles()
            .create_role(authed(
                ADMIN,
                CreateRoleRequest {
                    name: name.into(),
                    permissions: permissions.iter().map(|p| perm_name(p)).collect(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("create role {name}: {e}"))
            .into_inner()
    }

    pub async fn assign(&self, role: &str, identity: &str) -> pb::Assignment {
        let response = self
            .assignments()
            .assign_role(authed(
                ADMIN,
                AssignRoleRequest {
                    role: Some(role_name(role)),
                    identity: Some(user(identity)),
                    force: true,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("assign {role} to {identity}: {e}"))
            .into_inner();
        match response.result {
            Some(assign_role_response::Result::Assignment(a)) => a,
            other => panic!("expected an assignment, got {other:?}"),
        }
    }

    /// Asks (as ADMIN) for a role that requires approval: the pending change request.
    pub async fn request_assignment(&self, role: &str, identity: &str) -> pb::ChangeRequest {
        let response = self
            .assignments()
            .assign_role(authed(
                ADMIN,
                AssignRoleRequest {
                    role: Some(role_name(role)),
                    identity: Some(user(identity)),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("request {role} for {identity}: {e}"))
            .into_inner();
        match response.result {
            Some(assign_role_response::Result::ChangeRequest(c)) => c,
            other => panic!("expected a change request, got {other:?}"),
        }
    }

    pub async fn check(&self, identity: &str, permission: &str) -> bool {
        self.authz()
            .check(authed(
                ADMIN,
                CheckRequest {
                    identity_id: identity.into(),
                    permission: permission.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("check")
            .into_inner()
            .allowed
    }

    pub async fn get_role(&self, name: &str) -> pb::Role {
        self.roles()
            .get_role(authed(
                ADMIN,
                GetRoleRequest {
                    role: Some(role_name(name)),
                    ..Default::default()
                },
            ))
            .await
            .expect("get role")
            .into_inner()
    }

    /// Audit events of the default tenant, newest first.
    pub async fn audit_events(&self) -> Vec<pb::AuditEvent> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .audit()
                .list_audit_events(authed(
                    ADMIN,
                    ListAuditEventsRequest {
                        page_size: 1000,
                        page_token: token,
                        ..Default::default()
                    },
                ))
                .await
                .expect("list audit events")
                .into_inner();
            all.extend(page.events);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }
}

/// Signs claims with the test secret; `iss`, `aud`, `exp` filled in unless given.
pub fn token_with(claims: Value) -> String {
    let mut claims = claims.as_object().cloned().unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    claims.entry("iss").or_insert(json!(ISSUER));
    claims.entry("aud").or_insert(json!(AUDIENCE));
    claims.entry("exp").or_insert(json!(now + 600));
    sign(&Value::Object(claims), SECRET)
}

pub fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A request carrying a bearer token for `sub` in the default tenant.
pub fn authed<T>(sub: &str, message: T) -> Request<T> {
    with_token(&token_with(json!({ "sub": sub })), message)
}

pub fn with_token<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

pub fn perm_name(name: &str) -> pb::PermissionRef {
    pb::PermissionRef {
        r#ref: Some(permission_ref::Ref::Name(name.into())),
    }
}

pub fn perm_id(id: &str) -> pb::PermissionRef {
    pb::PermissionRef {
        r#ref: Some(permission_ref::Ref::Id(id.into())),
    }
}

pub fn role_name(name: &str) -> pb::RoleRef {
    pb::RoleRef {
        r#ref: Some(role_ref::Ref::Name(name.into())),
    }
}

pub fn role_id(id: &str) -> pb::RoleRef {
    pb::RoleRef {
        r#ref: Some(role_ref::Ref::Id(id.into())),
    }
}

pub fn user(id: &str) -> pb::Identity {
    pb::Identity {
        id: id.into(),
        kind: IdentityKind::User as i32,
    }
}

/// Asserts the code and the `ErrorInfo.reason`.
#[track_caller]
pub fn assert_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "unexpected reason in {status:?}");
    assert_eq!(info.domain, "warden");
}

/// Asserts INVALID_ARGUMENT with a violation on `field`.
#[track_caller]
pub fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "unexpected status: {status:?}"
    );
    let bad = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    assert!(
        bad.field_violations.iter().any(|v| v.field == field),
        "no violation on {field:?} in {:?}",
        bad.field_violations
    );
}

/// A Check of `identity` for `permission`, optionally at a revision.
pub fn check(identity: &str, permission: &str, at_least_revision: u64) -> CheckRequest {
    CheckRequest {
        identity_id: identity.into(),
        permission: permission.into(),
        at_least_revision,
        ..Default::default()
    }
}

/// `status` names `id` in its `RequestInfo` and in its `x-request-id` header.
pub fn assert_request_id(status: &Status, id: &str) {
    let info = status.get_details_request_info().expect("RequestInfo");
    assert_eq!(info.request_id, id);
    assert_eq!(status.metadata().get("x-request-id").unwrap(), id);
}

/// `status` carries a request id the server made up (a UUID), the same in both places.
pub fn assert_generated_request_id(status: &Status) {
    let id = status
        .get_details_request_info()
        .expect("RequestInfo")
        .request_id;
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "a generated request id: {id:?}"
    );
    assert_request_id(status, &id);
}

/// A TCP proxy the test can stop (closing its port and every connection through it) and restart
/// on the same port: a database that goes away and comes back.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut proxy = Self {
            addr,
            target: target.to_owned(),
            task: None,
        };
        proxy.task = Some(tokio::spawn(Self::forward(listener, proxy.target.clone())));
        proxy
    }

    async fn forward(listener: tokio::net::TcpListener, target: String) {
        // Dropped with this task, which aborts every connection task in it.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let target = target.clone();
            connections.spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    }

    /// Closes the port and drops every connection.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens on the same port again.
    pub async fn restart(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "cannot rebind {}: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.task = Some(tokio::spawn(Self::forward(listener, self.target.clone())));
    }
}

/// `url` with its `host:port` replaced by `addr`; also returns the original `host:port`.
pub fn through(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, rest) = rest.rsplit_once('@').map_or(("", rest), |(c, r)| (c, r));
    let (host_port, path) = rest.split_once('/').unwrap();
    let at = if credentials.is_empty() {
        String::new()
    } else {
        format!("{credentials}@")
    };
    (
        format!("{scheme}://{at}{addr}/{path}"),
        host_port.to_owned(),
    )
}
