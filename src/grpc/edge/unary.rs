//! The fast path of every unary Warden RPC: its one message read off the HTTP/2 body and decoded
//! here, the handler called directly, and its answer framed here, without tonic's router and
//! streaming codec (their per-call boxes and 8 KiB buffers). The handlers are the same trait
//! methods tonic's routes call, given the same request (metadata from the headers, the `Caller`
//! and the connection's data in the extensions), so both routes answer alike; a compressed call
//! still goes down tonic's route, which decompresses it.

use bytes::Bytes;
use futures::future::BoxFuture;
use prost::Message;
use tonic::{Request, Response, Status};

use super::frame;
use crate::grpc::assignments::{AssignmentApi, ChangeRequestApi};
use crate::grpc::audit::AuditApi;
use crate::grpc::authorization::AuthorizationApi;
use crate::grpc::configuration::ConfigurationApi;
use crate::grpc::groups::GroupApi;
use crate::grpc::permissions::PermissionApi;
use crate::grpc::roles::RoleApi;
use crate::grpc::tenants::TenantApi;
use crate::proto::pb;
use crate::service::Service;

/// One unary RPC: the request carries the message still encoded; the answer, the response
/// message framed for the body, with the handler's metadata.
pub(super) type Route =
    for<'a> fn(&'a Handlers, Request<Bytes>) -> BoxFuture<'a, Result<Response<Bytes>, Status>>;

/// The handlers tonic's routes wrap, held once by the edge.
pub(crate) struct Handlers {
    permissions: PermissionApi,
    roles: RoleApi,
    assignments: AssignmentApi,
    change_requests: ChangeRequestApi,
    groups: GroupApi,
    authorization: AuthorizationApi,
    tenants: TenantApi,
    configuration: ConfigurationApi,
    audit: AuditApi,
}

impl Handlers {
    pub(crate) fn new(service: &Service) -> Self {
        Self {
            permissions: PermissionApi {
                service: service.clone(),
            },
            roles: RoleApi {
                service: service.clone(),
            },
            assignments: AssignmentApi {
                service: service.clone(),
            },
            change_requests: ChangeRequestApi {
                service: service.clone(),
            },
            groups: GroupApi {
                service: service.clone(),
            },
            authorization: AuthorizationApi {
                service: service.clone(),
            },
            tenants: TenantApi {
                service: service.clone(),
            },
            configuration: ConfigurationApi {
                service: service.clone(),
            },
            audit: AuditApi {
                service: service.clone(),
            },
        }
    }
}

/// The request message, decoded as tonic's codec decodes it (a malformed message is INTERNAL).
fn decode<M: Message + Default>(request: Request<Bytes>) -> Result<Request<M>, Status> {
    let (metadata, extensions, bytes) = request.into_parts();
    let message = M::decode(bytes).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Request::from_parts(metadata, extensions, message))
}

/// The response message framed for the body.
fn encode<M: Message>(response: Response<M>) -> Result<Response<Bytes>, Status> {
    let (metadata, message, extensions) = response.into_parts();
    Ok(Response::from_parts(
        metadata,
        frame::encode(&message)?,
        extensions,
    ))
}

/// `routes()`: each unary method's path and the function that calls its handler.
macro_rules! unary_routes {
    ($($service:literal, $api:ident: $handler:path {
        $($method:literal => $call:ident,)*
    })*) => {
        pub(super) fn routes() -> Vec<(&'static str, Route)> {
            vec![$($(
                (concat!("/warden.v1.", $service, "/", $method), {
                    fn route(
                        handlers: &Handlers,
                        request: Request<Bytes>,
                    ) -> BoxFuture<'_, Result<Response<Bytes>, Status>> {
                        Box::pin(async move {
                            let request = decode(request)?;
                            encode(<_ as $handler>::$call(&handlers.$api, request).await?)
                        })
                    }
                    route as Route
                }),
            )*)*]
        }
    };
}

unary_routes! {
    "PermissionService", permissions: pb::permission_service_server::PermissionService {
        "CreatePermission" => create_permission,
        "GetPermission" => get_permission,
        "ListPermissions" => list_permissions,
        "UpdatePermission" => update_permission,
        "DeletePermission" => delete_permission,
    }
    "RoleService", roles: pb::role_service_server::RoleService {
        "CreateRole" => create_role,
        "GetRole" => get_role,
        "ListRoles" => list_roles,
        "UpdateRole" => update_role,
        "DeleteRole" => delete_role,
        "AddPermissionsToRole" => add_permissions_to_role,
        "RemovePermissionsFromRole" => remove_permissions_from_role,
        "RemovePermissionFromRole" => remove_permission_from_role,
    }
    "AssignmentService", assignments: pb::assignment_service_server::AssignmentService {
        "AssignRole" => assign_role,
        "RevokeAssignment" => revoke_assignment,
        "GetAssignment" => get_assignment,
        "ListAssignments" => list_assignments,
        "BatchAssignRoles" => batch_assign_roles,
        "BatchRevokeAssignments" => batch_revoke_assignments,
    }
    "ChangeRequestService", change_requests: pb::change_request_service_server::ChangeRequestService {
        "GetChangeRequest" => get_change_request,
        "ListChangeRequests" => list_change_requests,
        "ApproveChangeRequest" => approve_change_request,
        "RejectChangeRequest" => reject_change_request,
        "CancelChangeRequest" => cancel_change_request,
        "ProposeChange" => propose_change,
    }
    "GroupService", groups: pb::group_service_server::GroupService {
        "CreateGroup" => create_group,
        "GetGroup" => get_group,
        "ListGroups" => list_groups,
        "DeleteGroup" => delete_group,
        "AddGroupMembers" => add_group_members,
        "RemoveGroupMembers" => remove_group_members,
        "ListGroupMembers" => list_group_members,
    }
    "AuthorizationService", authorization: pb::authorization_service_server::AuthorizationService {
        "Check" => check,
        "BatchCheck" => batch_check,
        "ListEffectivePermissions" => list_effective_permissions,
        "ListPermissionHolders" => list_permission_holders,
        "GetPropagation" => get_propagation,
        "ListGrantedScopes" => list_granted_scopes,
    }
    "TenantService", tenants: pb::tenant_service_server::TenantService {
        "CreateTenant" => create_tenant,
        "GetTenant" => get_tenant,
        "ListTenants" => list_tenants,
        "DisableTenant" => disable_tenant,
        "EnableTenant" => enable_tenant,
    }
    "ConfigurationService", configuration: pb::configuration_service_server::ConfigurationService {
        "ApplyConfiguration" => apply_configuration,
        "ExportConfiguration" => export_configuration,
    }
    "AuditService", audit: pb::audit_service_server::AuditService {
        "ListAuditEvents" => list_audit_events,
    }
}
