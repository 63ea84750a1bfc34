//! AssignmentService and ChangeRequestService handlers.

use tonic::{Request, Response, Status};

use super::caller;
use super::commands::write;
use super::convert::{AllValid as _, domain_status, role_ref};
use crate::domain::{AssignmentId, ChangeRequestId, IdentityId};
use crate::proto::pb;
use crate::service::{
    ApproveChangeRequest, AssignRole, BatchAssignRoles, BatchRevokeAssignments,
    CancelChangeRequest, PageRequest, ProposeChange, RejectChangeRequest, RevokeAssignment,
    Service,
};

#[derive(Debug, Clone)]
pub struct AssignmentApi {
    pub(crate) service: Service,
}

#[tonic::async_trait]
impl pb::assignment_service_server::AssignmentService for AssignmentApi {
    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::AssignRoleResponse>, Status> {
        write::<AssignRole, _, _>(&self.service, request).await
    }

    async fn revoke_assignment(
        &self,
        request: Request<pb::RevokeAssignmentRequest>,
    ) -> Result<Response<pb::RevokeAssignmentResponse>, Status> {
        write::<RevokeAssignment, _, _>(&self.service, request).await
    }

    async fn batch_assign_roles(
        &self,
        request: Request<pb::BatchAssignRolesRequest>,
    ) -> Result<Response<pb::BatchAssignRolesResponse>, Status> {
        write::<BatchAssignRoles, _, _>(&self.service, request).await
    }

    async fn batch_revoke_assignments(
        &self,
        request: Request<pb::BatchRevokeAssignmentsRequest>,
    ) -> Result<Response<pb::BatchRevokeAssignmentsResponse>, Status> {
        write::<BatchRevokeAssignments, _, _>(&self.service, request).await
    }

    async fn get_assignment(
        &self,
        request: Request<pb::GetAssignmentRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let caller = caller(&request)?;
        let id = AssignmentId::parse("assignment_id", &request.get_ref().assignment_id)?;
        Ok(Response::new(
            self.service.get_assignment(&caller, id).await?.into(),
        ))
    }

    async fn list_assignments(
        &self,
        request: Request<pb::ListAssignmentsRequest>,
    ) -> Result<Response<pb::ListAssignmentsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let (role, who) = (
            req.role
                .as_ref()
                .filter(|r| r.r#ref.is_some())
                .map(|r| role_ref("role", Some(r)))
                .transpose(),
            Some(req.identity_id.as_str())
                .filter(|id| !id.is_empty())
                .map(|id| IdentityId::parse("identity_id", id))
                .transpose(),
        )
            .all_valid()?;
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self
            .service
            .list_assignments(&caller, role.as_ref(), who.as_ref(), &paging)
            .await?;
        Ok(Response::new(pb::ListAssignmentsResponse {
            assignments: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}

#[derive(Debug, Clone)]
pub struct ChangeRequestApi {
    pub(crate) service: Service,
}

#[tonic::async_trait]
impl pb::change_request_service_server::ChangeRequestService for ChangeRequestApi {
    async fn get_change_request(
        &self,
        request: Request<pb::GetChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let caller = caller(&request)?;
        let id = ChangeRequestId::parse("change_request_id", &request.get_ref().change_request_id)?;
        Ok(Response::new(
            self.service.get_change_request(&caller, id).await?.into(),
        ))
    }

    async fn list_change_requests(
        &self,
        request: Request<pb::ListChangeRequestsRequest>,
    ) -> Result<Response<pb::ListChangeRequestsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let status = pb::ChangeRequestStatus::try_from(req.status)
            .map_err(|_| crate::domain::Error::invalid("status", "is not a known status"))?;
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self
            .service
            .list_change_requests(&caller, domain_status(status), &paging)
            .await?;
        Ok(Response::new(pb::ListChangeRequestsResponse {
            change_requests: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn approve_change_request(
        &self,
        request: Request<pb::ApproveChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        write::<ApproveChangeRequest, _, _>(&self.service, request).await
    }

    async fn reject_change_request(
        &self,
        request: Request<pb::RejectChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        write::<RejectChangeRequest, _, _>(&self.service, request).await
    }

    async fn cancel_change_request(
        &self,
        request: Request<pb::CancelChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        write::<CancelChangeRequest, _, _>(&self.service, request).await
    }

    async fn propose_change(
        &self,
        request: Request<pb::ProposeChangeRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        write::<ProposeChange, _, _>(&self.service, request).await
    }
}
