//! PermissionService handlers: caller, convert, call, convert back.

use tonic::{Request, Response, Status};

use super::caller;
use super::commands::write;
use super::convert::permission_ref;
use crate::proto::pb;
use crate::service::{CreatePermission, DeletePermission, PageRequest, Service, UpdatePermission};

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
        write::<CreatePermission, _, _>(&self.service, request).await
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
        write::<UpdatePermission, _, _>(&self.service, request).await
    }

    async fn delete_permission(
        &self,
        request: Request<pb::DeletePermissionRequest>,
    ) -> Result<Response<pb::DeletePermissionResponse>, Status> {
        write::<DeletePermission, _, _>(&self.service, request).await
    }
}
