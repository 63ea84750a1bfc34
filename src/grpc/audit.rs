//! AuditService handlers.

use futures::StreamExt as _;
use tonic::{Request, Response, Status};

use super::caller;
use super::convert::{Problems, from_timestamp, pb_kind, timestamp, to_struct};
use crate::domain::{AuditFilter, Delta};
use crate::proto::pb;
use crate::service::{PageRequest, Service};

#[derive(Debug, Clone)]
pub struct AuditApi {
    pub(crate) service: Service,
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditApi {
    type WatchChangesStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ChangeEvent, Status>> + Send>>;

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let since = req
            .since_time
            .as_ref()
            .and_then(|t| problems.take(from_timestamp("since_time", t)));
        let until = req
            .until_time
            .as_ref()
            .and_then(|t| problems.take(from_timestamp("until_time", t)));
        problems.finish()?;
        let filter = AuditFilter {
            actor: Some(req.actor).filter(|s| !s.is_empty()),
            target_id: Some(req.target_id).filter(|s| !s.is_empty()),
            since,
            until,
        };
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self
            .service
            .list_audit_events(&caller, &filter, &paging)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page
                .items
                .into_iter()
                .map(|e| pb::AuditEvent {
                    id: e.id,
                    revision: e.revision.0,
                    time: Some(timestamp(e.time)),
                    actor: e.actor,
                    tenant_id: e.tenant.to_string(),
                    rpc: e.rpc,
                    target_kind: e.target_kind,
                    target_id: e.target_id,
                    before: e.before.map(to_struct),
                    after: e.after.map(to_struct),
                    request_id: e.request_id,
                    trace_id: e.trace_id,
                    reason: e.reason,
                })
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn watch_changes(
        &self,
        request: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        let caller = caller(&request)?;
        let changes = if request.get_ref().snapshot {
            self.service.watch_changes_from_snapshot(&caller).await?
        } else {
            let since = crate::domain::Revision(request.get_ref().since_revision);
            self.service.watch_changes(&caller, since).await?
        };
        let stream = tokio_stream::wrappers::ReceiverStream::new(changes).map(|item| {
            item.map(|change| pb::ChangeEvent {
                revision: change.revision.0,
                time: Some(timestamp(change.time)),
                tenant_id: change.tenant.to_string(),
                kind: change_kind(&change.kind) as i32,
                target: change.target,
                changes: change.deltas.into_iter().map(index_change).collect(),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// `role.created` → `CHANGE_KIND_ROLE_CREATED`; a kind this contract does not list (written by
/// a newer replica) is UNSPECIFIED, its `changes` still exact.
fn change_kind(kind: &str) -> pb::ChangeKind {
    let name = format!(
        "CHANGE_KIND_{}",
        kind.replace('.', "_").to_ascii_uppercase()
    );
    pb::ChangeKind::from_str_name(&name).unwrap_or(pb::ChangeKind::Unspecified)
}

/// One index delta as the contract types it.
fn index_change(delta: Delta) -> pb::IndexChange {
    use pb::index_change::{self as ic, Change};
    let change = match delta {
        Delta::PermissionPut { id, name } => Change::PermissionPut(ic::PermissionPut {
            id: id.to_string(),
            name,
        }),
        Delta::PermissionRemoved { id } => {
            Change::PermissionRemoved(ic::PermissionRemoved { id: id.to_string() })
        }
        Delta::RolePut {
            id,
            name,
            permissions,
            included,
            ..
        } => Change::RolePut(ic::RolePut {
            id: id.to_string(),
            name,
            permission_ids: permissions.iter().map(ToString::to_string).collect(),
            included_role_ids: included.iter().map(ToString::to_string).collect(),
        }),
        Delta::RoleRemoved { id } => Change::RoleRemoved(ic::RoleRemoved { id: id.to_string() }),
        Delta::AssignmentPut {
            id,
            role,
            identity,
            kind,
            expire_time,
            scope,
        } => Change::AssignmentPut(ic::AssignmentPut {
            id: id.to_string(),
            role_id: role.to_string(),
            identity: Some(pb::Identity {
                id: identity.to_string(),
                kind: pb_kind(kind),
            }),
            expire_time: expire_time.map(timestamp),
            scope: scope.to_string(),
        }),
        Delta::AssignmentRemoved { id } => {
            Change::AssignmentRemoved(ic::AssignmentRemoved { id: id.to_string() })
        }
        Delta::GroupMembersAdded { group, members } => {
            Change::GroupMembersAdded(ic::GroupMembers {
                group_id: group.to_string(),
                identity_ids: members.iter().map(ToString::to_string).collect(),
            })
        }
        Delta::GroupMembersRemoved { group, members } => {
            Change::GroupMembersRemoved(ic::GroupMembers {
                group_id: group.to_string(),
                identity_ids: members.iter().map(ToString::to_string).collect(),
            })
        }
        Delta::GroupRemoved { group } => Change::GroupRemoved(ic::GroupRemoved {
            group_id: group.to_string(),
        }),
        Delta::PendingGrantPut {
            id,
            role,
            identity,
            scope,
        } => Change::PendingGrantPut(ic::PendingGrantPut {
            change_request_id: id.to_string(),
            role_id: role.to_string(),
            identity_id: identity.to_string(),
            scope: scope.to_string(),
        }),
        Delta::PendingGrantRemoved { id } => Change::PendingGrantRemoved(ic::PendingGrantRemoved {
            change_request_id: id.to_string(),
        }),
        Delta::TenantState { disabled } => Change::TenantState(ic::TenantState { disabled }),
    };
    pb::IndexChange {
        change: Some(change),
    }
}
