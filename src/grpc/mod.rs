//! The gRPC edge: the only module that sees proto types, `tonic::Status` and metadata.

mod assignments;
mod audit;
mod auth;
mod authorization;
mod commands;
mod convert;
mod drain;
mod groups;
mod hot_check;
mod jwks;
mod limits;
mod metrics;
mod permissions;
mod roles;
mod status;
mod trace;
mod wire;

use std::sync::Arc;

use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic::{Request, Status};
use tower::layer::util::{Identity, Stack};

use crate::config::LimitsConfig;

use crate::domain::Caller;
use crate::proto::{FILE_DESCRIPTOR_SET, pb};
use crate::service::Service;

pub use auth::{AuthLayer, Verifier, mint_hs256};
pub use drain::{DrainLayer, Phase};
pub use hot_check::HotCheckLayer;
pub use limits::LimitLayer;
pub use metrics::MetricsLayer;
pub use trace::TraceLayer;

/// The tower layers every RPC passes, outermost first (see `router`).
pub type Layers = Stack<
    AuthLayer,
    Stack<
        LimitLayer,
        Stack<DrainLayer, Stack<MetricsLayer, Stack<TraceLayer, Stack<HotCheckLayer, Identity>>>>,
    >,
>;

/// Every `warden.v1` service name, for health reporting.
pub const SERVICE_NAMES: [&str; 7] = [
    "warden.v1.PermissionService",
    "warden.v1.RoleService",
    "warden.v1.AssignmentService",
    "warden.v1.ChangeRequestService",
    "warden.v1.GroupService",
    "warden.v1.AuthorizationService",
    "warden.v1.AuditService",
];

/// The caller the auth layer established. Missing only if a route skipped the layer.
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

/// Builds the server: layers, the warden services, health and reflection v1 + v1alpha.
/// `phase` is the shutdown state `App::run_until` advances.
pub fn router(
    service: Service,
    verifier: Arc<Verifier>,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    limits: &LimitsConfig,
    phase: watch::Receiver<Phase>,
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
    let methods = wire::Methods::from_descriptors(&[
        FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ]);
    let max = limits.max_request_bytes;
    let metrics = MetricsLayer::new(Arc::clone(&methods));
    let limit = LimitLayer::new(limits.max_concurrent_rpcs, limits.rpc_timeout);
    let hot_check = HotCheckLayer::new(hot_check::HotCheckConfig {
        service: service.clone(),
        verifier: Arc::clone(&verifier),
        permits: limit.permits(),
        rpc_timeout: limits.rpc_timeout,
        max_request_bytes: max,
        phase: phase.clone(),
        metrics: metrics.handles(methods.label(hot_check::CHECK_PATH)),
    });
    let router = Server::builder()
        // Dead peers and stale NAT entries are found by PINGs (when configured) and by TCP
        // keepalive (app.rs), not by the next write failing.
        .http2_keepalive_interval(
            Some(limits.http2_keepalive_interval).filter(|interval| !interval.is_zero()),
        )
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        // Check, the hot path, is answered before the generic layers (same behaviour, less
        // per-call machinery: see hot_check.rs).
        .layer(hot_check)
        // Outermost: the request id and the span exist before anything can refuse the call, so
        // even a refusal is logged, traced and answered with its request id.
        .layer(TraceLayer::default())
        // Outside every layer that refuses calls (drain, limits, auth), so shed, timed-out and
        // unauthenticated calls are counted too.
        .layer(metrics)
        // Outside the limits: a call cut at shutdown must also release its concurrency permit,
        // and the drain must see streams however they were admitted.
        .layer(DrainLayer::new(phase, Arc::clone(&methods)))
        // Before auth: shedding must cost less than verifying a token, or overload feeds on itself.
        .layer(limit)
        // Auth runs innermost, right before the services, and lets health and reflection through.
        .layer(AuthLayer::new(verifier))
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
            pb::audit_service_server::AuditServiceServer::new(audit::AuditApi { service })
                .max_decoding_message_size(max),
        );
    Ok(router)
}
