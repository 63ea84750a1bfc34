//! AuditService handlers.

use futures::StreamExt as _;
use tonic::{Request, Response, Status};

use super::caller;
use super::convert::{Problems, from_timestamp, timestamp, to_struct};
use crate::domain::AuditFilter;
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
        let since = crate::domain::Revision(request.get_ref().since_revision);
        let changes = self.service.watch_changes(&caller, since).await?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(changes).map(|item| {
            item.map(|change| pb::ChangeEvent {
                revision: change.revision.0,
                time: Some(timestamp(change.time)),
                tenant_id: change.tenant.to_string(),
                kind: change.kind,
                target: change.target,
                payload: Some(to_struct(serde_json::json!({ "deltas": change.deltas }))),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
