//! RoleService handlers.

use tonic::{Request, Response, Status};

use super::convert::{Problems, permission_batch, permission_ref, role_ref};
use super::{caller, write_options};
use crate::domain::{Role, RoleName, names::parse_description};
use crate::proto::pb;
use crate::service::{Outcome, PageRequest, RoleChange, RoleUpdate, Service};

#[derive(Debug, Clone)]
pub struct RoleApi {
    pub(crate) service: Service,
}

fn role_response(outcome: Outcome<Role>) -> Response<pb::RoleResponse> {
    Response::new(pb::RoleResponse {
        role: Some(outcome.value.into()),
        revision: outcome.revision.0,
        impact: outcome.impact.map(Into::into),
    })
}

#[tonic::async_trait]
impl pb::role_service_server::RoleService for RoleApi {
    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let name = problems.take(RoleName::parse("name", &req.name));
        let description = problems.take(parse_description("description", &req.description));
        let permissions = problems.take(permission_batch("permissions", &req.permissions, true));
        problems.finish()?;
        let (Some(name), Some(description), Some(permissions)) = (name, description, permissions)
        else {
            return Err(Status::internal("internal error"));
        };
        let change = RoleChange {
            name,
            description,
            permissions,
            requires_approval: req.requires_approval,
        };
        Ok(Response::new(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.create_role(&caller, change, o)
                })
                .await?
                .value
                .into(),
        ))
    }

    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let caller = caller(&request)?;
        let r = role_ref("role", request.get_ref().role.as_ref())?;
        Ok(Response::new(
            self.service.get_role(&caller, &r).await?.into(),
        ))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self
            .service
            .list_roles(&caller, &req.name_prefix, &paging)
            .await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let r = problems.take(role_ref("role", req.role.as_ref()));
        let description = match &req.description {
            Some(d) => problems.take(parse_description("description", d)),
            None => None,
        };
        problems.finish()?;
        let Some(r) = r else {
            return Err(Status::internal("internal error"));
        };
        let update = RoleUpdate {
            description,
            requires_approval: req.requires_approval,
            etag: req.etag,
        };
        Ok(Response::new(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.update_role(&caller, &r, update, o)
                })
                .await?
                .value
                .into(),
        ))
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let r = role_ref("role", req.role.as_ref())?;
        let outcome = self
            .service
            .delete_role(&caller, &r, req.force, opts)
            .await?;
        Ok(Response::new(pb::DeleteRoleResponse {
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }))
    }

    async fn add_permissions_to_role(
        &self,
        request: Request<pb::AddPermissionsToRoleRequest>,
    ) -> Result<Response<pb::RoleResponse>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let r = problems.take(role_ref("role", req.role.as_ref()));
        let refs = problems.take(permission_batch("permissions", &req.permissions, false));
        problems.finish()?;
        let (Some(r), Some(refs)) = (r, refs) else {
            return Err(Status::internal("internal error"));
        };
        Ok(role_response(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.add_permissions_to_role(&caller, &r, &refs, o)
                })
                .await?,
        ))
    }

    async fn remove_permissions_from_role(
        &self,
        request: Request<pb::RemovePermissionsFromRoleRequest>,
    ) -> Result<Response<pb::RoleResponse>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let r = problems.take(role_ref("role", req.role.as_ref()));
        let refs = problems.take(permission_batch("permissions", &req.permissions, false));
        problems.finish()?;
        let (Some(r), Some(refs)) = (r, refs) else {
            return Err(Status::internal("internal error"));
        };
        Ok(role_response(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service
                        .remove_permissions_from_role(&caller, &r, &refs, o)
                })
                .await?,
        ))
    }

    async fn remove_permission_from_role(
        &self,
        request: Request<pb::RemovePermissionFromRoleRequest>,
    ) -> Result<Response<pb::RoleResponse>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let r = problems.take(role_ref("role", req.role.as_ref()));
        let p = problems.take(permission_ref("permission", req.permission.as_ref()));
        problems.finish()?;
        let (Some(r), Some(p)) = (r, p) else {
            return Err(Status::internal("internal error"));
        };
        Ok(role_response(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service
                        .remove_permission_from_role(&caller, &r, &p, req.allow_missing, o)
                })
                .await?,
        ))
    }
}
