//! The gRPC edge: the only module that sees proto types, `tonic::Status` and metadata.

mod assignments;
mod audit;
mod auth;
mod authorization;
mod commands;
mod configuration;
mod convert;
mod edge;
mod groups;
mod json;
mod jwks;
mod permissions;
mod roles;
mod status;
mod tenants;
mod tls;

use std::sync::Arc;

use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic::{Request, Status};
use tower::layer::util::{Identity, Stack};
use tower::util::{Either, option_layer};

use crate::config::LimitsConfig;

use crate::domain::Caller;
use crate::proto::{FILE_DESCRIPTOR_SET, pb};
use crate::service::Service;

pub use auth::{Verifier, mint_hs256};
pub use edge::{EdgeLayer, Tracing};
pub use json::{JsonLayer, openapi_json, proto_json};
pub use status::code_name;
pub use tls::{ClientIdentity, Tls, TlsConnection, TlsIncoming};

use crate::shutdown::Shutdown;

/// The one layer every RPC passes (see `edge`).
/// Outermost first: CORS and gRPC-Web (when browser origins are configured) turn a browser's
/// call into plain gRPC, and the HTTP/JSON side turns a JSON request into the gRPC call its
/// route names, before the edge sees it, so every rule of the edge applies to them too.
pub type Layers = Stack<
    EdgeLayer,
    Stack<
        JsonLayer,
        Stack<
            Either<tonic_web::GrpcWebLayer, Identity>,
            Stack<Either<tower_http::cors::CorsLayer, Identity>, Identity>,
        >,
    >,
>;

/// Every `warden.v1` service name, for health reporting.
pub const SERVICE_NAMES: [&str; 8] = [
    "warden.v1.PermissionService",
    "warden.v1.RoleService",
    "warden.v1.AssignmentService",
    "warden.v1.ChangeRequestService",
    "warden.v1.GroupService",
    "warden.v1.AuthorizationService",
    "warden.v1.AuditService",
    "warden.v1.TenantService",
];

/// The caller the edge established. Missing only on the open paths (health, reflection).
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// Like `caller`, but moves the caller out of the request instead of cloning it (hot path).
fn take_caller<T>(request: &mut Request<T>) -> Result<Caller, Status> {
    request
        .extensions_mut()
        .remove::<Caller>()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// Builds the server: the edge, the warden services, health and reflection v1 + v1alpha.
pub fn router(
    service: Service,
    verifier: Arc<Verifier>,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    limits: &LimitsConfig,
    grpc_web_origins: &[String],
    shutdown: Shutdown,
    tracing: Tracing,
) -> Result<Router<Layers>, anyhow::Error> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // grpcurl 1.8 speaks only v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
    let max = limits.max_request_bytes;
    let edge = EdgeLayer::new(edge::EdgeConfig {
        service: service.clone(),
        verifier,
        shutdown,
        tracing,
        max_concurrent_rpcs: limits.max_concurrent_rpcs,
        per_tenant_concurrent_rpcs: limits.per_tenant_concurrent_rpcs,
        per_tenant_writes_per_second: limits.per_tenant_writes_per_second,
        rpc_timeout: limits.rpc_timeout,
        max_request_bytes: max,
        descriptors: vec![FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET],
    });
    let grpc_web = !grpc_web_origins.is_empty();
    let cors = grpc_web
        .then(|| browser_cors(grpc_web_origins))
        .transpose()?;
    // JSON bodies are larger than the protobuf they become.
    let json = JsonLayer::new(json::Gateway::new(
        FILE_DESCRIPTOR_SET,
        max.saturating_mul(4),
    )?);
    let router = Server::builder()
        // HTTP/JSON (curl) and gRPC-Web from browsers arrive over HTTP/1.1 too.
        .accept_http1(true)
        // Room for headers well past the largest token accepted (`auth::MAX_TOKEN_BYTES`), so an
        // oversized token is answered UNAUTHENTICATED, not HTTP 431 (UNKNOWN to a gRPC client).
        .http2_max_header_list_size(Some(MAX_HEADER_LIST_BYTES))
        // Dead peers and stale NAT entries are found by PINGs (when configured) and by TCP
        // keepalive (app.rs), not by the next write failing.
        .http2_keepalive_interval(
            Some(limits.http2_keepalive_interval).filter(|interval| !interval.is_zero()),
        )
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        .layer(option_layer(cors))
        .layer(option_layer(grpc_web.then(tonic_web::GrpcWebLayer::new)))
        .layer(json)
        .layer(edge)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            pb::permission_service_server::PermissionServiceServer::new(
                permissions::PermissionApi {
                    service: service.clone(),
                },
            )
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::role_service_server::RoleServiceServer::new(roles::RoleApi {
                service: service.clone(),
            })
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::assignment_service_server::AssignmentServiceServer::new(
                assignments::AssignmentApi {
                    service: service.clone(),
                },
            )
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::change_request_service_server::ChangeRequestServiceServer::new(
                assignments::ChangeRequestApi {
                    service: service.clone(),
                },
            )
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::group_service_server::GroupServiceServer::new(groups::GroupApi {
                service: service.clone(),
            })
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::authorization_service_server::AuthorizationServiceServer::new(
                authorization::AuthorizationApi {
                    service: service.clone(),
                },
            )
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::tenant_service_server::TenantServiceServer::new(tenants::TenantApi {
                service: service.clone(),
            })
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::configuration_service_server::ConfigurationServiceServer::new(
                configuration::ConfigurationApi {
                    service: service.clone(),
                },
            )
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::audit_service_server::AuditServiceServer::new(audit::AuditApi { service })
                .max_decoding_message_size(max),
        );
    Ok(router)
}

/// CORS for gRPC-Web callers from `origins` (`*`: any): POST with the headers gRPC-Web sends,
/// and the gRPC status headers readable by the page.
fn browser_cors(origins: &[String]) -> Result<tower_http::cors::CorsLayer, anyhow::Error> {
    use http::{HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o).map_err(|_| {
                    anyhow::anyhow!("grpc_web_allowed_origins: {o:?} is not an origin")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    let header = HeaderName::from_static;
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header("content-type"),
            header("authorization"),
            header("x-grpc-web"),
            header("x-user-agent"),
            header("grpc-timeout"),
            header("idempotency-key"),
            header("x-request-id"),
            header("traceparent"),
        ])
        .expose_headers([
            header("grpc-status"),
            header("grpc-message"),
            header("grpc-status-details-bin"),
            header("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600)))
}
