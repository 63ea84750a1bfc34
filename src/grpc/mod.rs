//! The gRPC edge: the only module that sees proto types, `tonic::Status` and metadata.

mod assignments;
mod audit;
mod auth;
mod authorization;
mod commands;
mod convert;
mod edge;
mod groups;
mod jwks;
mod permissions;
mod roles;
mod status;
mod tenants;

use std::sync::Arc;

use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic::{Request, Status};
use tower::layer::util::{Identity, Stack};

use crate::config::LimitsConfig;

use crate::domain::Caller;
use crate::proto::{FILE_DESCRIPTOR_SET, pb};
use crate::service::Service;

pub use auth::{Verifier, mint_hs256};
pub use edge::{EdgeLayer, Tracing};

use crate::shutdown::Shutdown;

/// The one layer every RPC passes (see `edge`).
pub type Layers = Stack<EdgeLayer, Identity>;

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
    let router = Server::builder()
        // Room for headers well past the largest token accepted (`auth::MAX_TOKEN_BYTES`), so an
        // oversized token is answered UNAUTHENTICATED, not HTTP 431 (UNKNOWN to a gRPC client).
        .http2_max_header_list_size(Some(MAX_HEADER_LIST_BYTES))
        // Dead peers and stale NAT entries are found by PINGs (when configured) and by TCP
        // keepalive (app.rs), not by the next write failing.
        .http2_keepalive_interval(
            Some(limits.http2_keepalive_interval).filter(|interval| !interval.is_zero()),
        )
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
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
            pb::audit_service_server::AuditServiceServer::new(audit::AuditApi { service })
                .max_decoding_message_size(max),
        );
    Ok(router)
}
