//! The connection to the server, and the token every call carries: the Rust client crate's
//! `Client` (TLS with `--cacert` or the public roots, the bearer token on every call), so the
//! CLI speaks to Warden exactly as a service using `warden-client` does.

use std::time::Duration;

use tonic::Request;
use warden_client::{Authed, TokenSource, pb};

use super::exit::Failure;
use super::{ClientArgs, Output};

pub(crate) struct Client {
    inner: warden_client::Client,
    pub(crate) output: Option<Output>,
}

impl Client {
    /// Connects before the first call, so an unreachable server is reported as such (exit 5)
    /// rather than as whatever the first RPC makes of it.
    pub(crate) async fn connect(args: &ClientArgs) -> Result<Self, Failure> {
        let url = args.server.trim_end_matches('/');
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(Failure::Usage(format!(
                "--server {url}: must start with http:// (plaintext) or https:// (TLS)"
            )));
        }
        let mut builder = warden_client::Client::builder(url)
            .connect_timeout(Duration::from_secs(10))
            // One attempt: the CLI reports what happened; a script decides whether to retry.
            .max_attempts(1);
        match &args.cacert {
            Some(path) if url.starts_with("https://") => {
                let pem = std::fs::read(path)
                    .map_err(|e| Failure::Usage(format!("--cacert {}: {e}", path.display())))?;
                builder = builder.ca_certificate(pem);
            }
            Some(_) => {
                return Err(Failure::Usage(format!(
                    "--cacert is for an https:// server; {url} is plaintext"
                )));
            }
            None => {}
        }
        match args.token.as_deref().map(str::trim) {
            None | Some("") => {}
            Some(token) => {
                if tonic::metadata::MetadataValue::try_from(format!("Bearer {token}")).is_err() {
                    return Err(Failure::Usage("--token: not a valid token".into()));
                }
                builder = builder.token(TokenSource::Static(token.to_owned()));
            }
        }
        let inner = builder.connect().await.map_err(|e| match e {
            warden_client::Error::Config(message) => Failure::Usage(message),
            warden_client::Error::Api { message, .. } => Failure::Unreachable(message),
            other => Failure::Unreachable(other.to_string()),
        })?;
        Ok(Self {
            inner,
            output: args.output,
        })
    }

    /// A request; the client adds the token.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        Request::new(message)
    }

    pub(crate) fn roles(&self) -> pb::role_service_client::RoleServiceClient<Authed> {
        self.inner.roles()
    }

    pub(crate) fn permissions(
        &self,
    ) -> pb::permission_service_client::PermissionServiceClient<Authed> {
        self.inner.permissions()
    }

    pub(crate) fn groups(&self) -> pb::group_service_client::GroupServiceClient<Authed> {
        self.inner.groups()
    }

    pub(crate) fn assignments(
        &self,
    ) -> pb::assignment_service_client::AssignmentServiceClient<Authed> {
        self.inner.assignments()
    }

    pub(crate) fn change_requests(
        &self,
    ) -> pb::change_request_service_client::ChangeRequestServiceClient<Authed> {
        self.inner.change_requests()
    }

    pub(crate) fn authorization(
        &self,
    ) -> pb::authorization_service_client::AuthorizationServiceClient<Authed> {
        self.inner.authorization()
    }

    pub(crate) fn audit(&self) -> pb::audit_service_client::AuditServiceClient<Authed> {
        self.inner.audit()
    }

    pub(crate) fn configuration(
        &self,
    ) -> pb::configuration_service_client::ConfigurationServiceClient<Authed> {
        self.inner.configuration()
    }
}
