//! The approval gate, decided once for every write from its effect (issue 11): a change that
//! would give or take away a permission some approval-gated role grants, or loosen the gating
//! itself, needs `warden:approvals:bypass`, whichever RPC asks for it. AssignRole and
//! RevokeAssignment of a gated role file a change request instead (and approving one applies
//! it); every other way to the same effect is refused with FAILED_PRECONDITION
//! `APPROVAL_REQUIRED` naming what it would do. Future RPCs are covered by construction: the
//! gate reads the write's index deltas, not the request.
//!
//! "Gated" is derived: a permission is gated when any role requiring approval grants it, so it
//! is gated wherever it appears (an ungated role holding it included).

use std::collections::{HashMap, HashSet};

use super::Service;
use crate::domain::builtin::perm;
use crate::domain::{
    ApprovalKind, ApprovalPolicy, Caller, Delta, Error, GroupId, IdentityId, PermissionId, Reason,
    RoleId,
};
use crate::engine::TenantIndex;
use crate::store::WriteTx;

/// A role as the gate sees it: its approval policy (if gated) and what it grants.
#[derive(Clone)]
struct RoleView {
    policy: Option<ApprovalPolicy>,
    permissions: HashSet<PermissionId>,
}

impl RoleView {
    fn covers(&self, kind: ApprovalKind) -> bool {
        self.policy.as_ref().is_some_and(|p| p.covers(kind))
    }

    fn grants_any(&self, gated: &HashSet<PermissionId>) -> bool {
        self.permissions.iter().any(|p| gated.contains(p))
    }
}

impl Service {
    /// Refuses the write in `tx` when it touches gated grants and `caller` holds no bypass.
    pub(super) async fn enforce_approval_gate(
        &self,
        caller: &Caller,
        tx: &WriteTx,
    ) -> Result<(), Error> {
        // An approved change request is the approval.
        if tx.deltas().is_empty() || tx.is_approved() {
            return Ok(());
        }
        let bypass = self
            .engine
            .missing(
                &caller.tenant,
                caller.subject.as_str(),
                &[perm::APPROVALS_BYPASS],
                tx.now,
            )
            .is_empty();
        if bypass {
            return Ok(());
        }
        // The gate reads the index at the revision the write builds on.
        if let Some(base) = tx.assignments_as_of()
            && self.engine.applied_revision(tx.tenant()) < base
        {
            self.sync.catch_up_tenant(tx.tenant()).await?;
        }
        let (found, _) = self.engine.read_tenant(tx.tenant(), |index| {
            index.and_then(|index| gated_effect(index, tx))
        });
        match found {
            Some(what) => Err(Error::precondition(
                Reason::ApprovalRequired,
                format!(
                    "this change {what}, which needs approval: assign or revoke the gated role \
                     through a change request, or have a holder of {} make it",
                    perm::APPROVALS_BYPASS
                ),
            )),
            None => Ok(()),
        }
    }
}

/// What the write's own changes do to gated grants, if anything. The batch's earlier writes'
/// changes (not in the index yet) are played first, to see the tenant as this write does, and
/// are not judged: they are their callers'.
///
/// A permission is gated for granting when a role whose policy covers ASSIGN grants it, and for
/// taking away when one whose policy covers REVOKE does, wherever else it appears.
fn gated_effect(index: &TenantIndex, tx: &WriteTx) -> Option<String> {
    let earlier = tx.pending().count() - tx.deltas().len();
    let mut grant_gated = index.gated_permissions(ApprovalKind::Assign);
    let mut revoke_gated = index.gated_permissions(ApprovalKind::Revoke);
    // Who may approve is guarded like what approval guards: becoming an approver (holding a
    // policy's approver permission, joining its approver group) needs approval too.
    let policies = index.approval_policies();
    let approver_groups: HashSet<GroupId> =
        policies.iter().filter_map(|p| p.approver_group).collect();
    let approver_permissions: HashSet<&str> = policies
        .iter()
        .filter_map(|p| p.approver_permission.as_deref())
        .collect();
    grant_gated.extend(index.permission_ids_named(&approver_permissions));
    let mut roles: HashMap<RoleId, Option<RoleView>> = HashMap::new();
    let view = |roles: &mut HashMap<RoleId, Option<RoleView>>, id: RoleId| {
        roles
            .entry(id)
            .or_insert_with(|| {
                index.role_gate(id).map(|(policy, permissions)| RoleView {
                    policy,
                    permissions: permissions.into_iter().collect(),
                })
            })
            .clone()
    };
    let group_grants_any = |group: &GroupId,
                            roles: &mut HashMap<RoleId, Option<RoleView>>,
                            gated: &HashSet<PermissionId>| {
        index
            .direct_roles(&IdentityId::from(*group).to_string())
            .into_iter()
            .any(|r| view(roles, r).is_some_and(|v| v.grants_any(gated)))
    };
    for (at, delta) in tx.pending().enumerate() {
        let finding: Option<&str> = match delta {
            Delta::PermissionRemoved { id } if revoke_gated.contains(id) => {
                Some("deletes a permission an approval-gated role grants")
            }
            Delta::RolePut {
                id,
                permissions,
                record,
                ..
            } => {
                let before = view(&mut roles, *id);
                let before_policy = before.as_ref().and_then(|b| b.policy.clone());
                let before_permissions = before.map(|b| b.permissions).unwrap_or_default();
                let after = RoleView {
                    policy: match record {
                        Some(r) => r
                            .requires_approval
                            .then(|| r.approval_policy.clone().unwrap_or_default()),
                        None => before_policy.clone(),
                    },
                    permissions: permissions.iter().copied().collect(),
                };
                let modified = after.permissions != before_permissions;
                let adds_gated = after
                    .permissions
                    .difference(&before_permissions)
                    .any(|p| grant_gated.contains(p));
                let removes_gated = before_permissions
                    .difference(&after.permissions)
                    .any(|p| revoke_gated.contains(p));
                let finding = if before_policy.is_some() && after.policy != before_policy {
                    Some("changes the approval policy of a role requiring approval")
                } else if before_policy
                    .as_ref()
                    .is_some_and(|p| p.covers(ApprovalKind::Modify))
                    && modified
                {
                    Some("changes what an approval-gated role grants")
                } else if adds_gated {
                    // Into any role, gated or not: another role's policy might be weaker.
                    Some("puts a permission an approval-gated role grants into another role")
                } else if removes_gated {
                    Some("takes a permission an approval-gated role grants out of a role")
                } else {
                    None
                };
                if after.covers(ApprovalKind::Assign) {
                    grant_gated.extend(after.permissions.iter().copied());
                }
                if after.covers(ApprovalKind::Revoke) {
                    revoke_gated.extend(after.permissions.iter().copied());
                }
                roles.insert(*id, Some(after));
                finding
            }
            Delta::RoleRemoved { id } => {
                let touches = view(&mut roles, *id)
                    .is_some_and(|v| v.covers(ApprovalKind::Revoke) || v.grants_any(&revoke_gated));
                roles.insert(*id, None);
                touches.then_some("deletes a role granting permissions that need approval")
            }
            // AssignRole and RevokeAssignment file change requests for a gated role's own
            // assignments; what reaches here unapproved is refused.
            Delta::AssignmentPut { role, .. } => view(&mut roles, *role)
                .is_some_and(|v| v.grants_any(&grant_gated))
                .then_some("assigns a role granting permissions that need approval"),
            Delta::AssignmentRemoved { id } => index
                .assignment_role(*id)
                .and_then(|role| view(&mut roles, role))
                .is_some_and(|v| v.grants_any(&revoke_gated))
                .then_some("revokes a role granting permissions that need approval"),
            Delta::GroupMembersAdded { group, .. } if approver_groups.contains(group) => {
                Some("adds members to a group that approves change requests")
            }
            Delta::GroupMembersAdded { group, .. } => {
                group_grants_any(group, &mut roles, &grant_gated)
                    .then_some("adds members to a group holding permissions that need approval")
            }
            Delta::GroupMembersRemoved { group, .. } => {
                group_grants_any(group, &mut roles, &revoke_gated).then_some(
                    "removes members from a group holding permissions that need approval",
                )
            }
            Delta::GroupRemoved { group } => group_grants_any(group, &mut roles, &revoke_gated)
                .then_some("deletes a group holding permissions that need approval"),
            _ => None,
        };
        if at >= earlier
            && let Some(finding) = finding
        {
            return Some(finding.to_owned());
        }
    }
    None
}
