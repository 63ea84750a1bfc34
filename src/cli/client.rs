//! The connection to the server, and the token every call carries.

use std::time::Duration;

use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::exit::Failure;
use super::{ClientArgs, Output};
use crate::proto::pb;

pub(crate) struct Client {
    channel: Channel,
    authorization: Option<MetadataValue<Ascii>>,
    pub(crate) output: Option<Output>,
}

impl Client {
    /// Connects before the first call, so an unreachable server is reported as such (exit 5)
    /// rather than as whatever the first RPC makes of it.
    pub(crate) async fn connect(args: &ClientArgs) -> Result<Self, Failure> {
        let url = args.server.trim_end_matches('/');
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Failure::Usage(format!("--server {url}: {e}")))?
            .connect_timeout(Duration::from_secs(10));
        let endpoint = if url.starts_with("https://") {
            let tls = match &args.cacert {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|e| Failure::Usage(format!("--cacert {}: {e}", path.display())))?;
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                }
                None => ClientTlsConfig::new().with_webpki_roots(),
            };
            endpoint
                .tls_config(tls)
                .map_err(|e| Failure::Usage(format!("--cacert: {}", chain(&e))))?
        } else if url.starts_with("http://") {
            if args.cacert.is_some() {
                return Err(Failure::Usage(format!(
                    "--cacert is for an https:// server; {url} is plaintext"
                )));
            }
            endpoint
        } else {
            return Err(Failure::Usage(format!(
                "--server {url}: must start with http:// (plaintext) or https:// (TLS)"
            )));
        };
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Failure::Unreachable(format!("cannot reach {url}: {}", chain(&e))))?;
        let authorization = match args.token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| Failure::Usage("--token: not a valid token".into()))?,
            ),
        };
        Ok(Self {
            channel,
            authorization,
            output: args.output,
        })
    }

    /// A request carrying the token.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    pub(crate) fn roles(&self) -> pb::role_service_client::RoleServiceClient<Channel> {
        pb::role_service_client::RoleServiceClient::new(self.channel.clone())
    }

    pub(crate) fn permissions(
        &self,
    ) -> pb::permission_service_client::PermissionServiceClient<Channel> {
        pb::permission_service_client::PermissionServiceClient::new(self.channel.clone())
    }

    pub(crate) fn groups(&self) -> pb::group_service_client::GroupServiceClient<Channel> {
        pb::group_service_client::GroupServiceClient::new(self.channel.clone())
    }

    pub(crate) fn assignments(
        &self,
    ) -> pb::assignment_service_client::AssignmentServiceClient<Channel> {
        pb::assignment_service_client::AssignmentServiceClient::new(self.channel.clone())
    }

    pub(crate) fn change_requests(
        &self,
    ) -> pb::change_request_service_client::ChangeRequestServiceClient<Channel> {
        pb::change_request_service_client::ChangeRequestServiceClient::new(self.channel.clone())
    }

    pub(crate) fn authorization(
        &self,
    ) -> pb::authorization_service_client::AuthorizationServiceClient<Channel> {
        pb::authorization_service_client::AuthorizationServiceClient::new(self.channel.clone())
    }

    pub(crate) fn audit(&self) -> pb::audit_service_client::AuditServiceClient<Channel> {
        pb::audit_service_client::AuditServiceClient::new(self.channel.clone())
    }

    pub(crate) fn configuration(
        &self,
    ) -> pb::configuration_service_client::ConfigurationServiceClient<Channel> {
        pb::configuration_service_client::ConfigurationServiceClient::new(self.channel.clone())
    }
}

/// An error and its causes on one line (tonic's transport error alone says only "transport
/// error").
fn chain(err: &dyn std::error::Error) -> String {
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
