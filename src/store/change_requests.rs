//! Change requests: assignments and revocations waiting for a second admin.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entity::change_request;
use super::{
    PageQuery, Store, WriteTx, db_error, from_micros, micros, rev_from, rev_i64, stored_id,
};
use crate::domain::{
    AssignmentId, ChangeRequest, ChangeRequestId, ChangeRequestKind, ChangeRequestStatus, Error,
    Identity, IdentityId, IdentityKind, RoleId, Scope, TenantId,
};

fn kind_str(k: ChangeRequestKind) -> &'static str {
    match k {
        ChangeRequestKind::Assign => "ASSIGN",
        ChangeRequestKind::Revoke => "REVOKE",
        ChangeRequestKind::Change => "CHANGE",
    }
}

pub(crate) fn status_str(s: ChangeRequestStatus) -> &'static str {
    match s {
        ChangeRequestStatus::Pending => "PENDING",
        ChangeRequestStatus::Applied => "APPLIED",
        ChangeRequestStatus::Rejected => "REJECTED",
        ChangeRequestStatus::Cancelled => "CANCELLED",
        ChangeRequestStatus::Expired => "EXPIRED",
        ChangeRequestStatus::Failed => "FAILED",
    }
}

fn parse_status(s: &str) -> Result<ChangeRequestStatus, Error> {
    Ok(match s {
        "PENDING" => ChangeRequestStatus::Pending,
        "APPLIED" => ChangeRequestStatus::Applied,
        "REJECTED" => ChangeRequestStatus::Rejected,
        "CANCELLED" => ChangeRequestStatus::Cancelled,
        "EXPIRED" => ChangeRequestStatus::Expired,
        "FAILED" => ChangeRequestStatus::Failed,
        other => {
            return Err(Error::Internal(anyhow::anyhow!(
                "corrupt change request status {other:?}"
            )));
        }
    })
}

fn to_change_request(m: change_request::Model) -> Result<ChangeRequest, Error> {
    Ok(ChangeRequest {
        id: stored_id(ChangeRequestId::parse, &m.id)?,
        tenant: TenantId::parse(&m.tenant_id)?,
        kind: match m.kind.as_str() {
            "REVOKE" => ChangeRequestKind::Revoke,
            "CHANGE" => ChangeRequestKind::Change,
            _ => ChangeRequestKind::Assign,
        },
        role_id: stored_id(RoleId::parse, &m.role_id)?,
        role_name: m.role_name,
        identity: if m.identity_id.is_empty() {
            None
        } else {
            Some(Identity {
                id: IdentityId::parse("identity", &m.identity_id)?,
                kind: IdentityKind::parse(&m.identity_kind).unwrap_or_default(),
            })
        },
        assignment_expire_time: m.assignment_expire_time.map(from_micros),
        scope: Scope::from_validated(m.scope),
        assignment_id: m
            .assignment_id
            .as_deref()
            .map(|id| stored_id(AssignmentId::parse, id))
            .transpose()?,
        reason: m.reason,
        requester: m.requester,
        status: parse_status(&m.status)?,
        decided_by: m.decided_by,
        decision_comment: m.decision_comment,
        failure_reason: m.failure_reason,
        resulting_assignment_id: m
            .resulting_assignment_id
            .as_deref()
            .map(|id| stored_id(AssignmentId::parse, id))
            .transpose()?,
        create_time: from_micros(m.create_time),
        update_time: from_micros(m.update_time),
        expire_time: from_micros(m.expire_time),
        revision: rev_from(m.revision),
        policy: super::json_column(m.policy.as_deref())?.unwrap_or_default(),
        approvals: super::json_column(m.approvals.as_deref())?.unwrap_or_default(),
        proposed_change: super::json_column(m.proposed_change.as_deref())?,
    })
}

async fn find(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    id: ChangeRequestId,
) -> Result<Option<ChangeRequest>, Error> {
    change_request::Entity::find_by_id(id.to_string())
        .filter(change_request::Column::TenantId.eq(tenant.as_str()))
        .one(conn)
        .await
        .map_err(db_error)?
        .map(to_change_request)
        .transpose()
}

impl Store {
    pub async fn find_change_request(
        &self,
        tenant: &TenantId,
        id: ChangeRequestId,
    ) -> Result<Option<ChangeRequest>, Error> {
        find(self.conn(), tenant, id).await
    }

    /// Newest first would need a descending key; ids are time-ordered, so oldest first by id.
    pub async fn list_change_requests(
        &self,
        tenant: &TenantId,
        status: Option<ChangeRequestStatus>,
        page: &PageQuery,
    ) -> Result<Vec<ChangeRequest>, Error> {
        let mut q = change_request::Entity::find()
            .filter(change_request::Column::TenantId.eq(tenant.as_str()));
        if let Some(status) = status {
            q = q.filter(change_request::Column::Status.eq(status_str(status)));
        }
        if let Some(after) = &page.after {
            q = q.filter(change_request::Column::Id.gt(after.as_str()));
        }
        let rows = q
            .order_by_asc(change_request::Column::Id)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter().map(to_change_request).collect()
    }

    /// Pending requests whose TTL has passed, across tenants (the sweeper expires them).
    pub async fn overdue_change_requests(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> Result<Vec<ChangeRequest>, Error> {
        let rows = change_request::Entity::find()
            .filter(change_request::Column::Status.eq("PENDING"))
            .filter(change_request::Column::ExpireTime.lte(micros(now)))
            .order_by_asc(change_request::Column::ExpireTime)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter().map(to_change_request).collect()
    }
}

impl WriteTx {
    pub async fn find_change_request(
        &self,
        id: ChangeRequestId,
    ) -> Result<Option<ChangeRequest>, Error> {
        find(self.conn().await?, self.tenant(), id).await
    }

    pub async fn insert_change_request(&self, c: &ChangeRequest) -> Result<(), Error> {
        change_request::ActiveModel {
            id: Set(c.id.to_string()),
            tenant_id: Set(c.tenant.to_string()),
            kind: Set(kind_str(c.kind).to_owned()),
            role_id: Set(c.role_id.to_string()),
            role_name: Set(c.role_name.clone()),
            identity_id: Set(c
                .identity
                .as_ref()
                .map(|i| i.id.to_string())
                .unwrap_or_default()),
            identity_kind: Set(c
                .identity
                .as_ref()
                .map(|i| i.kind.as_str().to_owned())
                .unwrap_or_default()),
            assignment_expire_time: Set(c.assignment_expire_time.map(micros)),
            assignment_id: Set(c.assignment_id.map(|a| a.to_string())),
            scope: Set(c.scope.as_str().to_owned()),
            reason: Set(c.reason.clone()),
            requester: Set(c.requester.clone()),
            status: Set(status_str(c.status).to_owned()),
            decided_by: Set(c.decided_by.clone()),
            decision_comment: Set(c.decision_comment.clone()),
            failure_reason: Set(c.failure_reason.clone()),
            resulting_assignment_id: Set(c.resulting_assignment_id.map(|a| a.to_string())),
            create_time: Set(micros(c.create_time)),
            update_time: Set(micros(c.update_time)),
            expire_time: Set(micros(c.expire_time)),
            revision: Set(rev_i64(c.revision)),
            policy: Set(super::to_json_column(Some(&c.policy))),
            approvals: Set(super::to_json_column(Some(&c.approvals))),
            proposed_change: Set(super::to_json_column(c.proposed_change.as_ref())),
        }
        .insert(self.conn().await?)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Records a decision, but only on a request still PENDING: false when another decision
    /// won the race, so a request is never decided twice.
    pub async fn decide_change_request(&self, c: &ChangeRequest) -> Result<bool, Error> {
        let result = change_request::Entity::update_many()
            .col_expr(
                change_request::Column::Status,
                Expr::value(status_str(c.status)),
            )
            .col_expr(
                change_request::Column::DecidedBy,
                Expr::value(c.decided_by.clone()),
            )
            .col_expr(
                change_request::Column::DecisionComment,
                Expr::value(c.decision_comment.clone()),
            )
            .col_expr(
                change_request::Column::FailureReason,
                Expr::value(c.failure_reason.clone()),
            )
            .col_expr(
                change_request::Column::ResultingAssignmentId,
                Expr::value(c.resulting_assignment_id.map(|a| a.to_string())),
            )
            .col_expr(
                change_request::Column::UpdateTime,
                Expr::value(micros(c.update_time)),
            )
            .col_expr(
                change_request::Column::Revision,
                Expr::value(rev_i64(c.revision)),
            )
            .col_expr(
                change_request::Column::Approvals,
                Expr::value(super::to_json_column(Some(&c.approvals))),
            )
            .filter(change_request::Column::Id.eq(c.id.to_string()))
            .filter(change_request::Column::Status.eq("PENDING"))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected == 1)
    }

    /// The pending request of the same kind for the same role and identity, if any.
    pub async fn pending_request_for(
        &self,
        kind: ChangeRequestKind,
        role: RoleId,
        identity: &IdentityId,
        scope: &Scope,
    ) -> Result<Option<ChangeRequest>, Error> {
        change_request::Entity::find()
            .filter(change_request::Column::Scope.eq(scope.as_str()))
            .filter(change_request::Column::TenantId.eq(self.tenant().as_str()))
            .filter(change_request::Column::Status.eq("PENDING"))
            .filter(change_request::Column::Kind.eq(kind_str(kind)))
            .filter(change_request::Column::RoleId.eq(role.to_string()))
            .filter(change_request::Column::IdentityId.eq(identity.as_str()))
            .one(self.conn().await?)
            .await
            .map_err(db_error)?
            .map(to_change_request)
            .transpose()
    }
}
