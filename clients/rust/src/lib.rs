//! A Rust client for Warden.
//!
//! - The generated types and service clients are re-exported as [`pb`].
//! - [`Client`] is built from an address (`http://` plaintext, `https://` TLS with the public
//!   roots or your CA) and a [`TokenSource`]; every call carries the bearer token.
//! - Its write methods send an `idempotency-key` made once per call and retry the call under that
//!   key when the server is unavailable, over a limit or lost a race: a write whose response was
//!   lost is answered from the first attempt, never applied twice.
//! - Errors are [`Error`], with the contract's [`pb::ErrorReason`] and the details decoded.
//! - The client keeps the highest revision its calls reported, and its checks ask for at least
//!   that revision, so a check after a write sees the write on any replica (read-your-writes).
//!
//! For an RPC without a method here, the service clients ([`Client::roles`] …) carry the token.

// `Error::Api` carries the decoded status details by value, like tonic's own `Status`; errors
// are the rare path of a network call, and callers match on the fields.
#![allow(clippy::result_large_err)]

mod error;
mod local;
mod token;

// The server's domain types and authorization index, compiled from its own source so that the
// local cache decides exactly as the server does. Private: the index is not this crate's API.
#[path = "../../../src/domain/mod.rs"]
#[allow(dead_code, unused_imports, clippy::all)]
mod domain;
#[path = "../../../src/engine/index.rs"]
#[allow(dead_code, unused_imports, clippy::all)]
mod index;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tonic::body::Body;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

pub use error::{Error, Result};
pub use local::{LocalChecker, LocalDecision, LocalOptions};
pub use token::{FileToken, TokenSource};

/// The contract's generated types and client stubs.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("warden.v1");
}

/// What the client sends its HTTP/2 requests through: a tonic `Channel`, or any service in
/// front of one (a test's fault injector, a tracing layer).
pub type Transport =
    tower::util::BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A transport's failure. A named type rather than a boxed error in the service's signature:
/// with `Box<dyn Error>` there, the futures of calls cannot be proven `Send` (a rustc
/// higher-ranked lifetime limitation), and a client could not be used from `tokio::spawn`.
#[derive(Debug)]
pub struct TransportError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<tonic::transport::Error> for TransportError {
    fn from(e: tonic::transport::Error) -> Self {
        Self(Box::new(e))
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for TransportError {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self(e)
    }
}

/// A service client that adds the bearer token to each call.
pub type Authed = InterceptedService<Transport, Auth>;

/// How a [`Client`] is made.
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    token: Option<TokenSource>,
    ca_pem: Option<Vec<u8>>,
    max_attempts: u32,
    backoff: Duration,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
}

impl ClientBuilder {
    /// The bearer token's source.
    pub fn token(mut self, token: TokenSource) -> Self {
        self.token = Some(token);
        self
    }

    /// Trust this CA (PEM) for an `https://` address instead of the public web roots.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// How many times a call is tried in all (default 4; 1 disables retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first retry's delay, doubled for each next one (default 100 ms), unless the server
    /// says when (RetryInfo).
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// A deadline for each attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long connecting may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let mut endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|e| Error::Config(format!("{}: {e}", self.url)))?;
        if let Some(timeout) = self.timeout {
            endpoint = endpoint.timeout(timeout);
        }
        if let Some(timeout) = self.connect_timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        if self.url.starts_with("https://") {
            let tls = match &self.ca_pem {
                Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                None => ClientTlsConfig::new().with_webpki_roots(),
            };
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        } else if !self.url.starts_with("http://") {
            return Err(Error::Config(format!(
                "{}: the address must start with http:// or https://",
                self.url
            )));
        }
        Ok(endpoint)
    }

    /// Connects now.
    pub async fn connect(self) -> Result<Client> {
        let channel = self.endpoint()?.connect().await.map_err(|e| Error::Api {
            code: tonic::Code::Unavailable,
            reason: None,
            reason_text: None,
            message: format!("cannot reach {}: {}", self.url, causes(&e)),
            metadata: Default::default(),
            field_violations: Vec::new(),
            retry_after: None,
            request_id: None,
        })?;
        Ok(
            self.with_transport(Transport::new(tower::ServiceExt::map_err(
                channel,
                |e: tonic::transport::Error| TransportError::from(e),
            ))),
        )
    }

    /// Connects on the first call.
    pub fn connect_lazy(self) -> Result<Client> {
        let channel = self.endpoint()?.connect_lazy();
        Ok(
            self.with_transport(Transport::new(tower::ServiceExt::map_err(
                channel,
                |e: tonic::transport::Error| TransportError::from(e),
            ))),
        )
    }

    /// A client over `transport` (the address is not used).
    pub fn with_transport(self, transport: Transport) -> Client {
        Client {
            transport,
            auth: Auth {
                token: self.token.map(Arc::new),
            },
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            revision: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Adds `authorization: Bearer …` from the token source.
#[derive(Clone, Debug)]
pub struct Auth {
    token: Option<Arc<TokenSource>>,
}

impl tonic::service::Interceptor for Auth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(source) = &self.token {
            let token = source
                .token()
                .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
            let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
                tonic::Status::unauthenticated("the token is not a valid header value")
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// An error and its causes on one line (tonic's transport error alone says only "transport
/// error").
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// A connection to Warden (cheap to clone; clones share the connection and the kept revision).
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    auth: Auth,
    max_attempts: u32,
    backoff: Duration,
    revision: Arc<AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

macro_rules! services {
    ($($(#[$doc:meta])* $name:ident => $module:ident :: $client:ident),+ $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> pb::$module::$client<Authed> {
                pb::$module::$client::with_interceptor(self.transport.clone(), self.auth.clone())
            }
        )+
    };
}

impl Client {
    /// A client of the server at `url` (`http://host:port` or `https://host:port`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            ca_pem: None,
            max_attempts: 4,
            backoff: Duration::from_millis(100),
            timeout: None,
            connect_timeout: None,
        }
    }

    services! {
        /// PermissionService, authenticated.
        permissions => permission_service_client::PermissionServiceClient,
        /// RoleService, authenticated.
        roles => role_service_client::RoleServiceClient,
        /// AssignmentService, authenticated.
        assignments => assignment_service_client::AssignmentServiceClient,
        /// ChangeRequestService, authenticated.
        change_requests => change_request_service_client::ChangeRequestServiceClient,
        /// GroupService, authenticated.
        groups => group_service_client::GroupServiceClient,
        /// AuthorizationService, authenticated.
        authorization => authorization_service_client::AuthorizationServiceClient,
        /// AuditService, authenticated.
        audit => audit_service_client::AuditServiceClient,
        /// TenantService, authenticated.
        tenants => tenant_service_client::TenantServiceClient,
        /// ConfigurationService, authenticated.
        configuration => configuration_service_client::ConfigurationServiceClient,
    }

    /// The highest revision this client's calls reported: its checks ask for at least this one.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Records a revision seen elsewhere (another client's write), so the next check waits
    /// for it.
    pub fn observe_revision(&self, revision: u64) {
        self.revision.fetch_max(revision, Ordering::AcqRel);
    }

    /// Runs `call` until it succeeds, fails for good, or `max_attempts` are used. A write gets one
    /// idempotency key for all its attempts.
    async fn run<Req, Resp, F, Fut>(&self, message: Req, write: bool, mut call: F) -> Result<Resp>
    where
        Req: Clone,
        F: FnMut(tonic::Request<Req>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let key = write.then(|| uuid::Uuid::now_v7().to_string());
        let mut attempt = 0;
        loop {
            let mut request = tonic::Request::new(message.clone());
            if let Some(key) = &key {
                let value = MetadataValue::try_from(key.as_str())
                    .map_err(|_| Error::Config("idempotency key".into()))?;
                request.metadata_mut().insert("idempotency-key", value);
            }
            let error = match call(request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => Error::from_status(&status),
            };
            attempt += 1;
            if !error.is_retryable() || attempt >= self.max_attempts {
                return Err(error);
            }
            let delay = error
                .retry_after()
                .unwrap_or(self.backoff * 2u32.saturating_pow(attempt - 1));
            tokio::time::sleep(delay).await;
        }
    }

    fn kept<T>(&self, revision: u64, value: T) -> T {
        self.observe_revision(revision);
        value
    }

    /// Check: may `identity` use `permission`? Asked at least at the client's revision.
    pub async fn check(&self, identity: &str, permission: &str) -> Result<pb::CheckResponse> {
        self.check_request(pb::CheckRequest {
            identity_id: identity.to_owned(),
            permission: permission.to_owned(),
            ..Default::default()
        })
        .await
    }

    /// Check with every field; `at_least_revision` 0 becomes the client's revision.
    pub async fn check_request(&self, mut request: pb::CheckRequest) -> Result<pb::CheckResponse> {
        if request.at_least_revision == 0 {
            request.at_least_revision = self.revision();
        }
        let api = self.authorization();
        let answer = self
            .run(request, false, |r| {
                let mut api = api.clone();
                async move { api.check(r).await }
            })
            .await?;
        Ok(self.kept(answer.revision, answer))
    }

    /// BatchCheck; items' `at_least_revision` 0 become the client's revision.
    pub async fn batch_check(
        &self,
        mut items: Vec<pb::CheckRequest>,
    ) -> Result<pb::BatchCheckResponse> {
        let revision = self.revision();
        for item in &mut items {
            if item.at_least_revision == 0 {
                item.at_least_revision = revision;
            }
        }
        let api = self.authorization();
        self.run(pb::BatchCheckRequest { items }, false, |r| {
            let mut api = api.clone();
            async move { api.batch_check(r).await }
        })
        .await
    }

    /// GetRole, at least at the client's revision.
    pub async fn get_role(&self, role: pb::RoleRef) -> Result<pb::Role> {
        let api = self.roles();
        let request = pb::GetRoleRequest {
            role: Some(role),
            at_least_revision: self.revision(),
        };
        self.run(request, false, |r| {
            let mut api = api.clone();
            async move { api.get_role(r).await }
        })
        .await
    }

    /// CreatePermission (retried safely).
    pub async fn create_permission(
        &self,
        request: pb::CreatePermissionRequest,
    ) -> Result<pb::Permission> {
        let api = self.permissions();
        let answer = self
            .run(request, true, |r| {
                let mut api = api.clone();
                async move { api.create_permission(r).await }
            })
            .await?;
        Ok(self.kept(answer.revision, answer))
    }

    /// CreateRole (retried safely).
    pub async fn create_role(&self, request: pb::CreateRoleRequest) -> Result<pb::Role> {
        let api = self.roles();
        let answer = self
            .run(request, true, |r| {
                let mut api = api.clone();
                async move { api.create_role(r).await }
            })
            .await?;
        Ok(self.kept(answer.revision, answer))
    }

    /// AssignRole (retried safely): the assignment, or the change request when the role needs
    /// approval.
    pub async fn assign_role(
        &self,
        request: pb::AssignRoleRequest,
    ) -> Result<pb::AssignRoleResponse> {
        let api = self.assignments();
        let answer = self
            .run(request, true, |r| {
                let mut api = api.clone();
                async move { api.assign_role(r).await }
            })
            .await?;
        Ok(self.kept(answer.revision, answer))
    }

    /// RevokeAssignment (retried safely).
    pub async fn revoke_assignment(
        &self,
        request: pb::RevokeAssignmentRequest,
    ) -> Result<pb::RevokeAssignmentResponse> {
        let api = self.assignments();
        let answer = self
            .run(request, true, |r| {
                let mut api = api.clone();
                async move { api.revoke_assignment(r).await }
            })
            .await?;
        Ok(self.kept(answer.revision, answer))
    }

    /// BatchAssignRoles (retried safely; all or nothing).
    pub async fn batch_assign_roles(
        &self,
        request: pb::BatchAssignRolesRequest,
    ) -> Result<pb::BatchAssignRolesResponse> {
        let api = self.assignments();
        let answer = self
            .run(request, true, |r| {
                let mut api = api.clone();
                async move { api.batch_assign_roles(r).await }
            })
            .await?;
        Ok(self.kept(answer.revision, answer))
    }

    /// ApproveChangeRequest (retried safely).
    pub async fn approve_change_request(
        &self,
        request: pb::ApproveChangeRequestRequest,
    ) -> Result<pb::ChangeRequest> {
        let api = self.change_requests();
        let answer = self
            .run(request, true, |r| {
                let mut api = api.clone();
                async move { api.approve_change_request(r).await }
            })
            .await?;
        Ok(self.kept(answer.revision, answer))
    }
}
