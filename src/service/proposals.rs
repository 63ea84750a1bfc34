//! ProposeChange (issue 11): any change the approval gate would refuse goes through a change
//! request of kind CHANGE instead. The proposal is played in a savepoint to learn, from its
//! effect, which gated roles' approval it needs (the gate's own reading of the index deltas),
//! then undone; the request is filed under the strictest of those roles' policies, and
//! approving it to its quorum runs the same command again, as the approver, in the approval's
//! transaction, where the world may have changed (then the request ends FAILED with the reason).

use serde::{Deserialize, Serialize};

use super::snapshot;
use super::{
    AddGroupMembers, AddPermissionsToRole, Applied, Command, CreateRole, DeleteGroup,
    DeletePermission, DeleteRole, RemoveGroupMembers, RemovePermissionsFromRole, Service,
    UpdateRole,
};
use crate::domain::{
    AuditRecord, Caller, ChangeRequest, ChangeRequestKind, Error, Reason, Ref, Role,
};
use crate::store::WriteTx;

/// A change that may be proposed for approval: the writes whose effect the gate judges.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "rpc")]
pub enum ProposedChange {
    CreateRole(CreateRole),
    UpdateRole(UpdateRole),
    DeleteRole(DeleteRole),
    AddPermissionsToRole(AddPermissionsToRole),
    RemovePermissionsFromRole(RemovePermissionsFromRole),
    DeletePermission(DeletePermission),
    AddGroupMembers(AddGroupMembers),
    RemoveGroupMembers(RemoveGroupMembers),
    DeleteGroup(DeleteGroup),
}

/// Runs `$body` with `$command` bound to the proposed command, whatever its type.
macro_rules! each_change {
    ($change:expr, $command:ident => $body:expr) => {
        match $change {
            ProposedChange::CreateRole($command) => $body,
            ProposedChange::UpdateRole($command) => $body,
            ProposedChange::DeleteRole($command) => $body,
            ProposedChange::AddPermissionsToRole($command) => $body,
            ProposedChange::RemovePermissionsFromRole($command) => $body,
            ProposedChange::DeletePermission($command) => $body,
            ProposedChange::AddGroupMembers($command) => $body,
            ProposedChange::RemoveGroupMembers($command) => $body,
            ProposedChange::DeleteGroup($command) => $body,
        }
    };
}

impl ProposedChange {
    /// What proposing it needs: what making it directly needs.
    fn permissions(&self) -> &'static [&'static str] {
        each_change!(self, c => c.permissions())
    }

    fn check(&self, service: &Service) -> Result<(), Error> {
        each_change!(self, c => c.check(service))
    }

    /// Makes the change inside `tx` as `caller`, dropping its answer.
    pub(super) async fn apply_in(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<(), Error> {
        each_change!(self, c => c.apply(service, caller, tx).await.map(drop))
    }
}

/// ProposeChange, validated.
#[derive(Debug, Clone)]
pub struct ProposeChange {
    pub change: ProposedChange,
    pub reason: String,
}

impl Command for ProposeChange {
    type Output = ChangeRequest;

    fn permissions(&self) -> &'static [&'static str] {
        self.change.permissions()
    }

    fn check(&self, service: &Service) -> Result<(), Error> {
        self.change.check(service)
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<ChangeRequest>, Error> {
        // Play it to see its effect (its own errors are the requester's to fix now), then undo.
        let trial = tx.begin_trial().await?;
        let played = self.change.clone().apply_in(service, caller, tx).await;
        let effect = match played {
            Ok(()) => service.gated_effect(tx).await,
            Err(e) => Err(e),
        };
        tx.end_trial(trial).await?;
        let effect = effect?;
        // The strictest policy among the gated roles whose approval it needs.
        let mut strictest = None;
        for id in effect.roles {
            let role = tx
                .find_role(&Ref::Id(id))
                .await?
                .ok_or_else(|| Error::not_found("role", id.to_string()))?;
            let quorum = role.gate().map(|p| p.quorum()).unwrap_or(0);
            if strictest
                .as_ref()
                .is_none_or(|(q, _): &(u32, Role)| quorum > *q)
            {
                strictest = Some((quorum, role));
            }
        }
        let Some((_, role)) = strictest else {
            return Err(Error::precondition(
                Reason::ApprovalNotRequired,
                "this change touches nothing that needs approval: make it directly",
            ));
        };
        let mut cr = service.new_request(
            tx,
            caller,
            ChangeRequestKind::Change,
            &role,
            None,
            None,
            None,
            self.reason,
        );
        cr.proposed_change = serde_json::to_value(&self.change).ok();
        tx.insert_change_request(&cr).await?;
        tx.audit(AuditRecord {
            target_kind: "change_request",
            target_id: cr.id.to_string(),
            before: None,
            after: snapshot(&cr),
            reason: cr.reason.clone(),
        });
        Ok(Applied::new("change_request.filed", cr.id, cr))
    }
}

impl Service {
    /// Applies an approved CHANGE request's proposal inside `tx`, as `approver`.
    pub(super) async fn apply_proposal(
        &self,
        tx: &mut WriteTx,
        approver: &Caller,
        cr: &ChangeRequest,
    ) -> Result<(), Error> {
        let change: ProposedChange = cr
            .proposed_change
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "change request {} holds no readable proposal",
                    cr.id
                ))
            })?;
        change.apply_in(self, approver, tx).await
    }
}
