//! GroupService handlers.

use tonic::{Request, Response, Status};

use super::caller;
use super::commands::write;
use crate::domain::GroupId;
use crate::proto::pb;
use crate::service::{
    AddGroupMembers, CreateGroup, DeleteGroup, PageRequest, RemoveGroupMembers, Service,
};

#[derive(Debug, Clone)]
pub struct GroupApi {
    pub(crate) service: Service,
}

#[tonic::async_trait]
impl pb::group_service_server::GroupService for GroupApi {
    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        write::<CreateGroup, _, _>(&self.service, request).await
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let caller = caller(&request)?;
        let id = GroupId::parse("group_id", &request.get_ref().group_id)?;
        Ok(Response::new(
            self.service.get_group(&caller, id).await?.into(),
        ))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self
            .service
            .list_groups(&caller, &req.name_prefix, &paging)
            .await?;
        Ok(Response::new(pb::ListGroupsResponse {
            groups: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        write::<DeleteGroup, _, _>(&self.service, request).await
    }

    async fn add_group_members(
        &self,
        request: Request<pb::AddGroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        write::<AddGroupMembers, _, _>(&self.service, request).await
    }

    async fn remove_group_members(
        &self,
        request: Request<pb::RemoveGroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        write::<RemoveGroupMembers, _, _>(&self.service, request).await
    }

    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let id = GroupId::parse("group_id", &req.group_id)?;
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self
            .service
            .list_group_members(&caller, id, &paging)
            .await?;
        Ok(Response::new(pb::ListGroupMembersResponse {
            identity_ids: page.items.into_iter().map(|i| i.to_string()).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}
