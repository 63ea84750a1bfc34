//! The audit trail: reading it, and recording refused requests (which change nothing, so they
//! are not part of any write).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entity::audit_event;
use super::{PageQuery, Store, db_error, from_micros, micros, rev_from, rev_i64};
use crate::domain::{AuditEvent, AuditEventId, AuditFilter, Caller, Error, Revision, TenantId};

impl Store {
    /// Records that `caller` was refused: target kind `denied_request`, the refusal as the
    /// reason, at the tenant revision the refusal was decided at.
    pub async fn record_denied(
        &self,
        caller: &Caller,
        revision: Revision,
        time: chrono::DateTime<chrono::Utc>,
        reason: String,
    ) -> Result<(), Error> {
        audit_event::ActiveModel {
            id: Set(AuditEventId::new().to_string()),
            tenant_id: Set(caller.tenant.to_string()),
            revision: Set(rev_i64(revision)),
            time: Set(micros(time)),
            actor: Set(caller.subject.to_string()),
            rpc: Set(caller.rpc.clone()),
            target_kind: Set("denied_request".to_owned()),
            target_id: Set(String::new()),
            before: Set(None),
            after: Set(None),
            request_id: Set(caller.request_id.clone()),
            trace_id: Set(caller.trace_id.clone()),
            reason: Set(reason),
        }
        .insert(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// One tenant's events, newest first (ids are time-ordered), after `page.after`.
    pub async fn list_audit_events(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        page: &PageQuery,
    ) -> Result<Vec<AuditEvent>, Error> {
        let mut q =
            audit_event::Entity::find().filter(audit_event::Column::TenantId.eq(tenant.as_str()));
        if let Some(actor) = &filter.actor {
            q = q.filter(audit_event::Column::Actor.eq(actor.as_str()));
        }
        if let Some(target) = &filter.target_id {
            q = q.filter(audit_event::Column::TargetId.eq(target.as_str()));
        }
        if let Some(since) = filter.since {
            q = q.filter(audit_event::Column::Time.gte(micros(since)));
        }
        if let Some(until) = filter.until {
            q = q.filter(audit_event::Column::Time.lt(micros(until)));
        }
        if let Some(after) = &page.after {
            q = q.filter(audit_event::Column::Id.lt(after.as_str()));
        }
        let rows = q
            .order_by_desc(audit_event::Column::Id)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|m| {
                let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
                Ok(AuditEvent {
                    id: m.id,
                    revision: rev_from(m.revision),
                    time: from_micros(m.time),
                    actor: m.actor,
                    tenant: TenantId::parse(&m.tenant_id)?,
                    rpc: m.rpc,
                    target_kind: m.target_kind,
                    target_id: m.target_id,
                    before: parse(m.before),
                    after: parse(m.after),
                    request_id: m.request_id,
                    trace_id: m.trace_id,
                    reason: m.reason,
                })
            })
            .collect()
    }
}
