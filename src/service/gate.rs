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
use crate::domain::{Caller, Delta, Error, GroupId, IdentityId, PermissionId, Reason, RoleId};
use crate::engine::TenantIndex;
use crate::store::WriteTx;

/// A role as the gate sees it: gated or not, and what it grants.
#[derive(Clone)]
struct RoleView {
    gated: bool,
    permissions: HashSet<PermissionId>,
}

impl Service {
    /// Refuses the write in `tx` when it touches gated grants and `caller` holds no bypass.
    pub(super) async fn enforce_approval_gate(
        &self,
        caller: &Caller,
        tx: &WriteTx,
    ) -> Result<(), Error> {
        if tx.deltas().is_empty() {
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
fn gated_effect(index: &TenantIndex, tx: &WriteTx) -> Option<String> {
    let earlier = tx.pending().count() - tx.deltas().len();
    let mut gated = index.gated_permissions();
    let mut roles: HashMap<RoleId, Option<RoleView>> = HashMap::new();
    let view = |roles: &mut HashMap<RoleId, Option<RoleView>>, id: RoleId| {
        roles
            .entry(id)
            .or_insert_with(|| {
                index.role_gate(id).map(|(gated, permissions)| RoleView {
                    gated,
                    permissions: permissions.into_iter().collect(),
                })
            })
            .clone()
    };
    let grants_gated = |role: &RoleView, gated: &HashSet<PermissionId>| {
        role.permissions.iter().any(|p| gated.contains(p))
    };
    let group_touches = |group: &GroupId,
                         roles: &mut HashMap<RoleId, Option<RoleView>>,
                         gated: &HashSet<PermissionId>| {
        index
            .direct_roles(&IdentityId::from(*group).to_string())
            .into_iter()
            .any(|r| view(roles, r).is_some_and(|v| grants_gated(&v, gated)))
    };
    for (at, delta) in tx.pending().enumerate() {
        let finding: Option<&str> = match delta {
            Delta::PermissionRemoved { id } if gated.contains(id) => {
                Some("deletes a permission an approval-gated role grants")
            }
            Delta::RolePut {
                id,
                permissions,
                record,
                ..
            } => {
                let before = view(&mut roles, *id);
                let was_gated = before.as_ref().is_some_and(|b| b.gated);
                let before_permissions = before.map(|b| b.permissions).unwrap_or_default();
                let after = RoleView {
                    gated: record.as_ref().map_or(was_gated, |r| r.requires_approval),
                    permissions: permissions.iter().copied().collect(),
                };
                let changed_gated = after
                    .permissions
                    .symmetric_difference(&before_permissions)
                    .any(|p| gated.contains(p));
                let finding = if was_gated && !after.gated {
                    Some("stops a role requiring approval")
                } else if was_gated && after.permissions != before_permissions {
                    Some("changes what an approval-gated role grants")
                } else if !after.gated && changed_gated {
                    Some(
                        "puts a permission an approval-gated role grants into (or takes it out \
                         of) a role that does not require approval",
                    )
                } else {
                    None
                };
                if after.gated {
                    gated.extend(after.permissions.iter().copied());
                }
                roles.insert(*id, Some(after));
                finding
            }
            Delta::RoleRemoved { id } => {
                let touches =
                    view(&mut roles, *id).is_some_and(|v| v.gated || grants_gated(&v, &gated));
                roles.insert(*id, None);
                touches.then_some("deletes a role granting permissions that need approval")
            }
            // A gated role's own assignments are decided by AssignRole and RevokeAssignment
            // (change request or force); an ungated role granting gated permissions is not.
            Delta::AssignmentPut { role, .. } => view(&mut roles, *role)
                .is_some_and(|v| !v.gated && grants_gated(&v, &gated))
                .then_some("assigns a role granting permissions that need approval"),
            Delta::AssignmentRemoved { id } => index
                .assignment_role(*id)
                .and_then(|role| view(&mut roles, role))
                .is_some_and(|v| !v.gated && grants_gated(&v, &gated))
                .then_some("revokes a role granting permissions that need approval"),
            Delta::GroupMembersAdded { group, .. } | Delta::GroupMembersRemoved { group, .. } => {
                group_touches(group, &mut roles, &gated).then_some(
                    "changes the members of a group holding permissions that need approval",
                )
            }
            Delta::GroupRemoved { group } => group_touches(group, &mut roles, &gated)
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
