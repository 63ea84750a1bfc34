//! Change requests (API rule 6): the second-admin rule, atomic application with the FAILED
//! outcome when the world changed meanwhile, and expiry after the TTL.

use super::assignments::put_delta;
use super::paging::page;
use super::snapshot;
use super::{Applied, Command, PageRequest, Service, WriteOptions};
use crate::domain::builtin::perm;
use crate::domain::{
    Approval, Assignment, AssignmentId, AuditRecord, Caller, ChangeRequest, ChangeRequestId,
    ChangeRequestKind, ChangeRequestStatus, Delta, Error, IdentityId, IdentityKind, Page, Reason,
    Ref,
};
use crate::store::WriteTx;

/// ApproveChangeRequest, validated.
#[derive(Debug, Clone)]
pub struct ApproveChangeRequest {
    pub change_request: ChangeRequestId,
    pub comment: String,
}

/// RejectChangeRequest, validated.
#[derive(Debug, Clone)]
pub struct RejectChangeRequest {
    pub change_request: ChangeRequestId,
    pub comment: String,
}

/// CancelChangeRequest, validated.
#[derive(Debug, Clone)]
pub struct CancelChangeRequest {
    pub change_request: ChangeRequestId,
    pub comment: String,
}

/// Rule 6: a second admin applies the request atomically, or it ends FAILED with the reason
/// when the world changed meanwhile.
impl Command for ApproveChangeRequest {
    type Output = ChangeRequest;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::CHANGE_REQUESTS_APPROVE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<ChangeRequest>, Error> {
        let before = pending_request(tx, self.change_request).await?;
        if before.requester == caller.subject.as_str() {
            return Err(Error::Forbidden {
                reason: Reason::SelfApproval,
                message: "a change request must be approved by someone other than its requester"
                    .into(),
            });
        }
        service.ensure_approver(tx, caller, &before).await?;
        if before
            .approvals
            .iter()
            .any(|a| a.approver == caller.subject.as_str())
        {
            return Err(Error::precondition(
                Reason::AlreadyApproved,
                format!(
                    "{} already approved change request {}; it needs {} distinct approvers",
                    caller.subject,
                    before.id,
                    before.policy.quorum()
                ),
            ));
        }
        let mut after = before.clone();
        after.approvals.push(Approval {
            approver: caller.subject.to_string(),
            time: tx.now,
            comment: self.comment.clone(),
        });
        after.update_time = tx.now;
        after.revision = tx.revision;
        if after.approvals.len() < before.policy.quorum() as usize {
            // Short of the quorum: the approval is recorded and the request stays PENDING.
            return close_request(tx, &before, after, "change_request.approval_recorded").await;
        }
        after.decided_by = caller.subject.to_string();
        after.decision_comment = self.comment;
        // The quorum's approval stands in for the bypass at the approval gate.
        tx.mark_approved();
        match service.apply_request(tx, caller, &before).await {
            Ok(resulting) => {
                after.status = ChangeRequestStatus::Applied;
                after.resulting_assignment_id = resulting;
            }
            Err(e @ (Error::Denied { .. } | Error::DeniedAt { .. })) => return Err(e),
            Err(Error::Internal(e)) => return Err(Error::Internal(e)),
            Err(other) => {
                after.status = ChangeRequestStatus::Failed;
                after.failure_reason = other.to_string();
            }
        }
        close_request(tx, &before, after, "change_request.approved").await
    }
}

impl Command for RejectChangeRequest {
    type Output = ChangeRequest;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::CHANGE_REQUESTS_APPROVE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<ChangeRequest>, Error> {
        let before = pending_request(tx, self.change_request).await?;
        // The requester withdraws with Cancel; anyone else rejecting must be an approver.
        if before.requester != caller.subject.as_str() {
            service.ensure_approver(tx, caller, &before).await?;
        }
        let after = ChangeRequest {
            status: ChangeRequestStatus::Rejected,
            decided_by: caller.subject.to_string(),
            decision_comment: self.comment,
            update_time: tx.now,
            revision: tx.revision,
            ..before.clone()
        };
        close_request(tx, &before, after, "change_request.rejected").await
    }
}

impl Command for CancelChangeRequest {
    type Output = ChangeRequest;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::ASSIGNMENTS_WRITE]
    }

    async fn apply(
        self,
        _service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<ChangeRequest>, Error> {
        let before = pending_request(tx, self.change_request).await?;
        if before.requester != caller.subject.as_str() {
            return Err(Error::Forbidden {
                reason: Reason::NotRequester,
                message: "only the requester can cancel a change request".into(),
            });
        }
        let after = ChangeRequest {
            status: ChangeRequestStatus::Cancelled,
            decided_by: caller.subject.to_string(),
            decision_comment: self.comment,
            update_time: tx.now,
            revision: tx.revision,
            ..before.clone()
        };
        close_request(tx, &before, after, "change_request.cancelled").await
    }
}

async fn pending_request(tx: &WriteTx, id: ChangeRequestId) -> Result<ChangeRequest, Error> {
    let cr = tx
        .find_change_request(id)
        .await?
        .ok_or_else(|| Error::not_found("change request", id.to_string()))?;
    if cr.status != ChangeRequestStatus::Pending {
        return Err(Error::precondition(
            Reason::ChangeRequestNotPending,
            format!("change request {id} is {:?}, not pending", cr.status),
        )
        .with_meta("status", format!("{:?}", cr.status).to_uppercase()));
    }
    if tx.now >= cr.expire_time {
        return Err(Error::precondition(
            Reason::ChangeRequestExpired,
            format!(
                "change request {id} expired at {}",
                cr.expire_time.to_rfc3339()
            ),
        ));
    }
    Ok(cr)
}

/// Records the decision `after` on a still-pending `before`, with its audit event.
async fn close_request(
    tx: &mut WriteTx,
    before: &ChangeRequest,
    after: ChangeRequest,
    kind: &'static str,
) -> Result<Applied<ChangeRequest>, Error> {
    if !tx.decide_change_request(&after).await? {
        return Err(Error::precondition(
            Reason::ChangeRequestNotPending,
            format!("change request {} was decided meanwhile", before.id),
        ));
    }
    if before.kind == ChangeRequestKind::Assign && after.status != ChangeRequestStatus::Pending {
        tx.record(Delta::PendingGrantRemoved { id: before.id });
    }
    tx.audit(AuditRecord {
        target_kind: "change_request",
        target_id: after.id.to_string(),
        before: snapshot(before),
        after: snapshot(&after),
        reason: after.decision_comment.clone(),
    });
    Ok(Applied::new(kind, after.id, after))
}

impl Service {
    // ----- change requests -----

    /// PERMISSION_DENIED `NOT_AN_APPROVER` unless `caller` meets the request's policy: holds its
    /// approver permission and belongs to its approver group, when it names them.
    async fn ensure_approver(
        &self,
        tx: &WriteTx,
        caller: &Caller,
        cr: &ChangeRequest,
    ) -> Result<(), Error> {
        let who = caller.subject.as_str();
        if let Some(permission) = &cr.policy.approver_permission
            && !self
                .engine
                .missing(&caller.tenant, who, &[permission.as_str()], tx.now)
                .is_empty()
        {
            self.record_denied(caller, format!("not an approver: lacks {permission}"));
            return Err(Error::Forbidden {
                reason: Reason::NotAnApprover,
                message: format!(
                    "change request {} needs approvers holding {permission}",
                    cr.id
                ),
            });
        }
        if let Some(group) = cr.policy.approver_group
            && tx
                .existing_members(group, std::slice::from_ref(&caller.subject))
                .await?
                .is_empty()
        {
            self.record_denied(caller, format!("not an approver: not in group {group}"));
            return Err(Error::Forbidden {
                reason: Reason::NotAnApprover,
                message: format!(
                    "change request {} needs approvers from group {group}",
                    cr.id
                ),
            });
        }
        Ok(())
    }

    pub async fn get_change_request(
        &self,
        caller: &Caller,
        id: ChangeRequestId,
    ) -> Result<ChangeRequest, Error> {
        self.authorize(caller, perm::ASSIGNMENTS_READ)?;
        self.store
            .find_change_request(&caller.tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("change request", id.to_string()))
    }

    pub async fn list_change_requests(
        &self,
        caller: &Caller,
        status: Option<ChangeRequestStatus>,
        paging: &PageRequest,
    ) -> Result<Page<ChangeRequest>, Error> {
        self.authorize(caller, perm::ASSIGNMENTS_READ)?;
        let filters = format!("status={status:?}");
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self
            .store
            .list_change_requests(&caller.tenant, status, &query)
            .await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            |c| c.id.to_string(),
        ))
    }

    /// Marks PENDING requests past their TTL as EXPIRED; returns how many.
    pub async fn expire_overdue_requests(&self) -> Result<usize, Error> {
        let overdue = self.store.overdue_change_requests(self.now(), 100).await?;
        let mut expired = 0;
        for cr in overdue {
            let caller = system_caller(&cr)?;
            let mut tx = self.begin(&caller).await?;
            let after = ChangeRequest {
                status: ChangeRequestStatus::Expired,
                update_time: tx.now,
                revision: tx.revision,
                ..cr.clone()
            };
            // Not a request: no caller to authorize and no idempotency key, so the sweeper calls
            // `finish` itself instead of going through `write`.
            let closed = match close_request(&mut tx, &cr, after, "change_request.expired").await {
                Ok(done) => self
                    .finish(
                        tx,
                        WriteOptions::default(),
                        done.kind,
                        &done.target,
                        done.value,
                    )
                    .await
                    .map(drop),
                Err(e) => Err(e),
            };
            match closed {
                Ok(_) => expired += 1,
                // Decided meanwhile: nothing to expire.
                Err(Error::Precondition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Applies an approved request inside `tx`; any error but Denied/Internal becomes the
    /// FAILED reason.
    async fn apply_request(
        &self,
        tx: &mut WriteTx,
        approver: &Caller,
        cr: &ChangeRequest,
    ) -> Result<Option<AssignmentId>, Error> {
        if cr.kind == ChangeRequestKind::Change {
            self.apply_proposal(tx, approver, cr).await?;
            return Ok(None);
        }
        let identity = cr.identity.clone().ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "change request {} names no identity",
                cr.id
            ))
        })?;
        let role = tx.find_role(&Ref::Id(cr.role_id)).await?.ok_or_else(|| {
            Error::precondition(
                Reason::NotFound,
                format!("role '{}' was deleted", cr.role_name),
            )
        })?;
        // Escalation is checked against the approver, who is the one granting now, at the
        // scope the request would assign at.
        self.ensure_may_hold_out_at(tx, approver, &role, &cr.scope)
            .await?;
        match cr.kind {
            ChangeRequestKind::Assign => {
                if cr.assignment_expire_time.is_some_and(|t| t <= tx.now) {
                    return Err(Error::precondition(
                        Reason::ChangeRequestExpired,
                        "the requested assignment's expire_time has passed",
                    ));
                }
                if let Some(existing) = tx
                    .find_assignment_of(role.id, &identity.id, &cr.scope)
                    .await?
                {
                    if existing.expire_time.is_none_or(|t| tx.now < t) {
                        return Err(Error::precondition(
                            Reason::AlreadyExists,
                            format!(
                                "'{}' already holds role '{}' (assignment {})",
                                identity.id, role.name, existing.id
                            ),
                        ));
                    }
                    super::assignments::remove_expired(tx, &existing).await?;
                }
                if identity.kind == IdentityKind::Group {
                    self.ensure_group_exists(tx, &identity.id).await?;
                }
                // The id may have been assigned as another kind while the request waited.
                self.ensure_one_kind(tx, &identity).await?;
                let a = Assignment {
                    id: AssignmentId::new(),
                    tenant: cr.tenant.clone(),
                    role_id: role.id,
                    role_name: role.name.clone(),
                    identity: identity.clone(),
                    scope: cr.scope.clone(),
                    is_immutable: false,
                    expire_time: cr.assignment_expire_time,
                    reason: cr.reason.clone(),
                    create_time: tx.now,
                    update_time: tx.now,
                    revision: tx.revision,
                };
                tx.insert_assignment(&a).await?;
                tx.record(put_delta(&a));
                tx.audit(AuditRecord {
                    target_kind: "assignment",
                    target_id: a.id.to_string(),
                    before: None,
                    after: snapshot(&a),
                    reason: format!("change request {} approved", cr.id),
                });
                Ok(Some(a.id))
            }
            ChangeRequestKind::Change => {
                Err(Error::Internal(anyhow::anyhow!("a CHANGE applies above")))
            }
            ChangeRequestKind::Revoke => {
                let id = cr.assignment_id.ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("revoke request without assignment"))
                })?;
                let a = tx.find_assignment(id).await?.ok_or_else(|| {
                    Error::precondition(
                        Reason::NotFound,
                        format!("assignment {id} no longer exists"),
                    )
                })?;
                tx.delete_assignment(a.id).await?;
                tx.record(Delta::AssignmentRemoved { id: a.id });
                tx.audit(AuditRecord {
                    target_kind: "assignment",
                    target_id: a.id.to_string(),
                    before: snapshot(&a),
                    after: None,
                    reason: format!("change request {} approved", cr.id),
                });
                Ok(Some(a.id))
            }
        }
    }
}

fn system_caller(cr: &ChangeRequest) -> Result<Caller, Error> {
    Ok(Caller {
        subject: IdentityId::parse("actor", "warden:system")?,
        tenant: cr.tenant.clone(),
        request_id: format!("sweeper-{}", uuid::Uuid::now_v7()),
        rpc: "sweeper".into(),
        trace_id: String::new(),
    })
}
