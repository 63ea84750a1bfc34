//! AssignmentService and ChangeRequestService handlers.

use tonic::{Request, Response, Status};

use super::convert::{Problems, domain_status, from_timestamp, identity, role_ref};
use super::{caller, write_options};
use crate::domain::{AssignmentId, ChangeRequestId, IdentityId};
use crate::proto::pb;
use crate::service::{AssignRequest, AssignResult, Outcome, PageRequest, Service};

#[derive(Debug, Clone)]
pub struct AssignmentApi {
    pub(crate) service: Service,
}

fn reason(field: &str, raw: &str) -> Result<String, crate::domain::Error> {
    crate::domain::names::parse_description(field, raw)
}

#[tonic::async_trait]
impl pb::assignment_service_server::AssignmentService for AssignmentApi {
    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::AssignRoleResponse>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let role = problems.take(role_ref("role", req.role.as_ref()));
        let who = problems.take(identity("identity", req.identity.as_ref()));
        let expire_time = match &req.expire_time {
            Some(t) => problems.take(from_timestamp("expire_time", t)),
            None => None,
        };
        let why = problems.take(reason("reason", &req.reason));
        problems.finish()?;
        let (Some(role), Some(identity), Some(reason)) = (role, who, why) else {
            return Err(Status::internal("internal error"));
        };
        let outcome = self
            .service
            .idempotent(&caller, opts, |o| {
                self.service.assign_role(
                    &caller,
                    AssignRequest {
                        role,
                        identity,
                        expire_time,
                        reason,
                        force: req.force,
                    },
                    o,
                )
            })
            .await?;
        Ok(Response::new(assign_response(outcome)))
    }

    async fn revoke_assignment(
        &self,
        request: Request<pb::RevokeAssignmentRequest>,
    ) -> Result<Response<pb::RevokeAssignmentResponse>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let id = problems.take(AssignmentId::parse("assignment_id", &req.assignment_id));
        let why = problems.take(reason("reason", &req.reason));
        problems.finish()?;
        let (Some(id), Some(why)) = (id, why) else {
            return Err(Status::internal("internal error"));
        };
        let outcome = self
            .service
            .idempotent(&caller, opts, |o| {
                self.service
                    .revoke_assignment(&caller, id, why, req.force, o)
            })
            .await?;
        let result = Some(match outcome.value {
            AssignResult::Assignment(a) => {
                pb::revoke_assignment_response::Result::Assignment(a.into())
            }
            AssignResult::Pending(c) => {
                pb::revoke_assignment_response::Result::ChangeRequest(c.into())
            }
        });
        Ok(Response::new(pb::RevokeAssignmentResponse {
            result,
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }))
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
        let mut problems = Problems::default();
        let role = match &req.role {
            Some(r) if r.r#ref.is_some() => problems.take(role_ref("role", Some(r))),
            _ => None,
        };
        let who = if req.identity_id.is_empty() {
            None
        } else {
            problems.take(IdentityId::parse("identity_id", &req.identity_id))
        };
        problems.finish()?;
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

fn assign_response(outcome: Outcome<AssignResult>) -> pb::AssignRoleResponse {
    let result = Some(match outcome.value {
        AssignResult::Assignment(a) => pb::assign_role_response::Result::Assignment(a.into()),
        AssignResult::Pending(c) => pb::assign_role_response::Result::ChangeRequest(c.into()),
    });
    pb::AssignRoleResponse {
        result,
        revision: outcome.revision.0,
        impact: outcome.impact.map(Into::into),
    }
}

#[derive(Debug, Clone)]
pub struct ChangeRequestApi {
    pub(crate) service: Service,
}

fn decision(
    req: &pb::DecideChangeRequestRequest,
) -> Result<(ChangeRequestId, String), crate::domain::Error> {
    let id = ChangeRequestId::parse("change_request_id", &req.change_request_id)?;
    let comment = reason("comment", &req.comment)?;
    Ok((id, comment))
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
        request: Request<pb::DecideChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let (id, comment) = decision(request.get_ref())?;
        Ok(Response::new(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.approve_change_request(&caller, id, comment, o)
                })
                .await?
                .value
                .into(),
        ))
    }

    async fn reject_change_request(
        &self,
        request: Request<pb::DecideChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let (id, comment) = decision(request.get_ref())?;
        Ok(Response::new(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.reject_change_request(&caller, id, comment, o)
                })
                .await?
                .value
                .into(),
        ))
    }

    async fn cancel_change_request(
        &self,
        request: Request<pb::DecideChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let (id, comment) = decision(request.get_ref())?;
        Ok(Response::new(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.cancel_change_request(&caller, id, comment, o)
                })
                .await?
                .value
                .into(),
        ))
    }
}
