//! RoleService handlers.

use tonic::{Request, Response, Status};

use super::caller;
use super::commands::write;
use super::convert::role_ref;
use crate::domain::Revision;
use crate::proto::pb;
use crate::service::{
    AddPermissionsToRole, CreateRole, DeleteRole, PageRequest, RemovePermissionFromRole,
    RemovePermissionsFromRole, Service, UpdateRole,
};

#[derive(Debug, Clone)]
pub struct RoleApi {
    pub(crate) service: Service,
}

#[tonic::async_trait]
impl pb::role_service_server::RoleService for RoleApi {
    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        write::<CreateRole, _, _>(&self.service, request).await
    }

    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let caller = caller(&request)?;
        let r = role_ref("role", request.get_ref().role.as_ref())?;
        let at_least = Revision(request.get_ref().at_least_revision);
        Ok(Response::new(
            self.service.get_role(&caller, &r, at_least).await?.into(),
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
        write::<UpdateRole, _, _>(&self.service, request).await
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        write::<DeleteRole, _, _>(&self.service, request).await
    }

    async fn add_permissions_to_role(
        &self,
        request: Request<pb::AddPermissionsToRoleRequest>,
    ) -> Result<Response<pb::RoleResponse>, Status> {
        write::<AddPermissionsToRole, _, _>(&self.service, request).await
    }

    async fn remove_permissions_from_role(
        &self,
        request: Request<pb::RemovePermissionsFromRoleRequest>,
    ) -> Result<Response<pb::RoleResponse>, Status> {
        write::<RemovePermissionsFromRole, _, _>(&self.service, request).await
    }

    async fn remove_permission_from_role(
        &self,
        request: Request<pb::RemovePermissionFromRoleRequest>,
    ) -> Result<Response<pb::RoleResponse>, Status> {
        write::<RemovePermissionFromRole, _, _>(&self.service, request).await
    }
}
