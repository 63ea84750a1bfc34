//! GroupService handlers.

use tonic::{Request, Response, Status};

use super::convert::{Problems, member_batch};
use super::{caller, write_options};
use crate::domain::{GroupId, GroupName, names::parse_description};
use crate::proto::pb;
use crate::service::{Outcome, PageRequest, Service};

#[derive(Debug, Clone)]
pub struct GroupApi {
    pub(crate) service: Service,
}

fn group_response(outcome: Outcome<crate::domain::Group>) -> Response<pb::Group> {
    let mut group: pb::Group = outcome.value.into();
    group.impact = outcome.impact.map(Into::into);
    Response::new(group)
}

#[tonic::async_trait]
impl pb::group_service_server::GroupService for GroupApi {
    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let name = problems.take(GroupName::parse("name", &req.name));
        let description = problems.take(parse_description("description", &req.description));
        problems.finish()?;
        let (Some(name), Some(description)) = (name, description) else {
            return Err(Status::internal("internal error"));
        };
        Ok(group_response(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.create_group(&caller, name, description, o)
                })
                .await?,
        ))
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
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let id = GroupId::parse("group_id", &req.group_id)?;
        Ok(group_response(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.delete_group(&caller, id, req.force, o)
                })
                .await?,
        ))
    }

    async fn add_group_members(
        &self,
        request: Request<pb::GroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let id = problems.take(GroupId::parse("group_id", &req.group_id));
        let members = problems.take(member_batch("identity_ids", &req.identity_ids));
        problems.finish()?;
        let (Some(id), Some(members)) = (id, members) else {
            return Err(Status::internal("internal error"));
        };
        Ok(group_response(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.add_group_members(&caller, id, members, o)
                })
                .await?,
        ))
    }

    async fn remove_group_members(
        &self,
        request: Request<pb::GroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let caller = caller(&request)?;
        let opts = write_options(&caller, &request, |r| (r.dry_run, r.wait_for_propagation))?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let id = problems.take(GroupId::parse("group_id", &req.group_id));
        let members = problems.take(member_batch("identity_ids", &req.identity_ids));
        problems.finish()?;
        let (Some(id), Some(members)) = (id, members) else {
            return Err(Status::internal("internal error"));
        };
        Ok(group_response(
            self.service
                .idempotent(&caller, opts, |o| {
                    self.service.remove_group_members(&caller, id, members, o)
                })
                .await?,
        ))
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
