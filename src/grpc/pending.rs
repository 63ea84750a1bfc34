//! Services whose issues have not landed yet: every RPC answers UNIMPLEMENTED, so clients
//! generated from the full contract get a clear answer instead of a transport error.

use tonic::{Request, Response, Status};

use crate::proto::pb;

/// Stands in for each service that is declared in the protos but not built yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotYetImplemented;

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not implemented yet"))
}

#[tonic::async_trait]
impl pb::assignment_service_server::AssignmentService for NotYetImplemented {
    async fn assign_role(&self, _request: Request<pb::AssignRoleRequest>) -> Result<Response<pb::AssignRoleResponse>, Status> {
        Err(unimplemented("AssignmentService.AssignRole"))
    }

    async fn revoke_assignment(&self, _request: Request<pb::RevokeAssignmentRequest>) -> Result<Response<pb::RevokeAssignmentResponse>, Status> {
        Err(unimplemented("AssignmentService.RevokeAssignment"))
    }

    async fn get_assignment(&self, _request: Request<pb::GetAssignmentRequest>) -> Result<Response<pb::Assignment>, Status> {
        Err(unimplemented("AssignmentService.GetAssignment"))
    }

    async fn list_assignments(&self, _request: Request<pb::ListAssignmentsRequest>) -> Result<Response<pb::ListAssignmentsResponse>, Status> {
        Err(unimplemented("AssignmentService.ListAssignments"))
    }
}

#[tonic::async_trait]
impl pb::change_request_service_server::ChangeRequestService for NotYetImplemented {
    async fn get_change_request(&self, _request: Request<pb::GetChangeRequestRequest>) -> Result<Response<pb::ChangeRequest>, Status> {
        Err(unimplemented("ChangeRequestService.GetChangeRequest"))
    }

    async fn list_change_requests(&self, _request: Request<pb::ListChangeRequestsRequest>) -> Result<Response<pb::ListChangeRequestsResponse>, Status> {
        Err(unimplemented("ChangeRequestService.ListChangeRequests"))
    }

    async fn approve_change_request(&self, _request: Request<pb::DecideChangeRequestRequest>) -> Result<Response<pb::ChangeRequest>, Status> {
        Err(unimplemented("ChangeRequestService.ApproveChangeRequest"))
    }

    async fn reject_change_request(&self, _request: Request<pb::DecideChangeRequestRequest>) -> Result<Response<pb::ChangeRequest>, Status> {
        Err(unimplemented("ChangeRequestService.RejectChangeRequest"))
    }

    async fn cancel_change_request(&self, _request: Request<pb::DecideChangeRequestRequest>) -> Result<Response<pb::ChangeRequest>, Status> {
        Err(unimplemented("ChangeRequestService.CancelChangeRequest"))
    }
}

#[tonic::async_trait]
impl pb::group_service_server::GroupService for NotYetImplemented {
    async fn create_group(&self, _request: Request<pb::CreateGroupRequest>) -> Result<Response<pb::Group>, Status> {
        Err(unimplemented("GroupService.CreateGroup"))
    }

    async fn get_group(&self, _request: Request<pb::GetGroupRequest>) -> Result<Response<pb::Group>, Status> {
        Err(unimplemented("GroupService.GetGroup"))
    }

    async fn list_groups(&self, _request: Request<pb::ListGroupsRequest>) -> Result<Response<pb::ListGroupsResponse>, Status> {
        Err(unimplemented("GroupService.ListGroups"))
    }

    async fn delete_group(&self, _request: Request<pb::DeleteGroupRequest>) -> Result<Response<pb::Group>, Status> {
        Err(unimplemented("GroupService.DeleteGroup"))
    }

    async fn add_group_members(&self, _request: Request<pb::GroupMembersRequest>) -> Result<Response<pb::Group>, Status> {
        Err(unimplemented("GroupService.AddGroupMembers"))
    }

    async fn remove_group_members(&self, _request: Request<pb::GroupMembersRequest>) -> Result<Response<pb::Group>, Status> {
        Err(unimplemented("GroupService.RemoveGroupMembers"))
    }

    async fn list_group_members(&self, _request: Request<pb::ListGroupMembersRequest>) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        Err(unimplemented("GroupService.ListGroupMembers"))
    }
}

#[tonic::async_trait]
impl pb::authorization_service_server::AuthorizationService for NotYetImplemented {
    async fn check(&self, _request: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        Err(unimplemented("AuthorizationService.Check"))
    }

    async fn batch_check(&self, _request: Request<pb::BatchCheckRequest>) -> Result<Response<pb::BatchCheckResponse>, Status> {
        Err(unimplemented("AuthorizationService.BatchCheck"))
    }

    async fn list_effective_permissions(&self, _request: Request<pb::ListEffectivePermissionsRequest>) -> Result<Response<pb::ListEffectivePermissionsResponse>, Status> {
        Err(unimplemented("AuthorizationService.ListEffectivePermissions"))
    }

    async fn list_permission_holders(&self, _request: Request<pb::ListPermissionHoldersRequest>) -> Result<Response<pb::ListPermissionHoldersResponse>, Status> {
        Err(unimplemented("AuthorizationService.ListPermissionHolders"))
    }

    async fn get_propagation(&self, _request: Request<pb::GetPropagationRequest>) -> Result<Response<pb::GetPropagationResponse>, Status> {
        Err(unimplemented("AuthorizationService.GetPropagation"))
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for NotYetImplemented {
    type WatchChangesStream = futures::stream::Empty<Result<pb::ChangeEvent, Status>>;

    async fn watch_changes(&self, _request: Request<pb::WatchChangesRequest>) -> Result<Response<Self::WatchChangesStream>, Status> {
        Err(unimplemented("AuditService.WatchChanges"))
    }

    async fn list_audit_events(&self, _request: Request<pb::ListAuditEventsRequest>) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        Err(unimplemented("AuditService.ListAuditEvents"))
    }
}
