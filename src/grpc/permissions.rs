//! PermissionService handlers: caller, convert, call, convert back.

use tonic::{Request, Response, Status};

use super::convert::{Problems, permission_ref};
use super::{caller, write_options};
use crate::domain::{PermissionName, names::parse_description};
use crate::proto::pb;
use crate::service::{PageRequest, Service};

#[derive(Debug, Clone)]
pub struct PermissionApi {
    pub(crate) service: Service,
}

#[tonic::async_trait]
impl pb::permission_service_server::PermissionService for PermissionApi {
    async fn create_permission(
        &self,
        request: Request<pb::CreatePermissionRequest>,
    ) -> Result<Response<pb::Permission>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let name = problems.take(PermissionName::parse("name", &req.name));
        let description = problems.take(parse_description("description", &req.description));
        problems.finish()?;
        let (Some(name), Some(description)) = (name, description) else {
            return Err(Status::internal("internal error"));
        };
        let outcome = self
            .service
            .idempotent(&caller, opts, |o| {
                self.service
                    .create_permission(&caller, name, description, o)
            })
            .await?;
        Ok(Response::new(outcome.value.into()))
    }

    async fn get_permission(
        &self,
        request: Request<pb::GetPermissionRequest>,
    ) -> Result<Response<pb::Permission>, Status> {
        let caller = caller(&request)?;
        let r = permission_ref("permission", request.get_ref().permission.as_ref())?;
        Ok(Response::new(
            self.service.get_permission(&caller, &r).await?.into(),
        ))
    }

    async fn list_permissions(
        &self,
        request: Request<pb::ListPermissionsRequest>,
    ) -> Result<Response<pb::ListPermissionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self
            .service
            .list_permissions(&caller, &req.name_prefix, &paging)
            .await?;
        Ok(Response::new(pb::ListPermissionsResponse {
            permissions: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn update_permission(
        &self,
        request: Request<pb::UpdatePermissionRequest>,
    ) -> Result<Response<pb::Permission>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let r = problems.take(permission_ref("permission", req.permission.as_ref()));
        let description = problems.take(parse_description("description", &req.description));
        problems.finish()?;
        let (Some(r), Some(description)) = (r, description) else {
            return Err(Status::internal("internal error"));
        };
        let outcome = self
            .service
            .idempotent(&caller, opts, |o| {
                self.service.update_permission(&caller, &r, description, o)
            })
            .await?;
        Ok(Response::new(outcome.value.into()))
    }

    async fn delete_permission(
        &self,
        request: Request<pb::DeletePermissionRequest>,
    ) -> Result<Response<pb::DeletePermissionResponse>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let r = permission_ref("permission", req.permission.as_ref())?;
        let outcome = self
            .service
            .idempotent(&caller, opts, |o| {
                self.service.delete_permission(&caller, &r, req.force, o)
            })
            .await?;
        Ok(Response::new(pb::DeletePermissionResponse {
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }))
    }
}
