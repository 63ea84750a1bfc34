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

/// Gated permissions, each with a role whose approval changing it needs.
type Gated = HashMap<PermissionId, RoleId>;

/// What a write does to gated grants: the first thing found, in words, and every gated role
/// whose approval it needs.
#[derive(Debug, Default)]
pub(super) struct GatedEffect {
    pub what: Option<String>,
    pub roles: Vec<RoleId>,
}

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

    /// The roles whose approval a change of this role's grants needs, by `gated`.
    fn gating<'a>(&'a self, gated: &'a Gated) -> impl Iterator<Item = RoleId> + 'a {
        self.permissions
            .iter()
            .filter_map(|p| gated.get(p).copied())
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
        match self.gated_effect(tx).await?.what {
            Some(what) => Err(Error::precondition(
                Reason::ApprovalRequired,
                format!(
                    "this change {what}, which needs approval: propose it with ProposeChange \
                     (AssignRole and RevokeAssignment file their own change requests), or have \
                     a holder of {} make it",
                    perm::APPROVALS_BYPASS
                ),
            )),
            None => Ok(()),
        }
    }

    /// What the write in `tx` does to gated grants, read from the index at the revision the
    /// write builds on.
    pub(super) async fn gated_effect(&self, tx: &WriteTx) -> Result<GatedEffect, Error> {
        if let Some(base) = tx.assignments_as_of()
            && self.engine.applied_revision(tx.tenant()) < base
        {
            self.sync.catch_up_tenant(tx.tenant()).await?;
        }
        let (effect, _) = self.engine.read_tenant(tx.tenant(), |index| {
            index
                .map(|index| effect_on_gated(index, tx))
                .unwrap_or_default()
        });
        Ok(effect)
    }
}

/// What the write's own changes do to gated grants. The batch's earlier writes' changes (not in
/// the index yet) are played first, to see the tenant as this write does, and are not judged:
/// they are their callers'.
///
/// A permission is gated for granting when a role whose policy covers ASSIGN grants it, and for
/// taking away when one whose policy covers REVOKE does, wherever else it appears.
fn effect_on_gated(index: &TenantIndex, tx: &WriteTx) -> GatedEffect {
    let earlier = tx.pending().count() - tx.deltas().len();
    let mut grant_gated = index.gated_permissions(ApprovalKind::Assign);
    let mut revoke_gated = index.gated_permissions(ApprovalKind::Revoke);
    // Who may approve is guarded like what approval guards: becoming an approver (holding a
    // policy's approver permission, joining its approver group) needs that role's approval.
    let policies = index.approval_policies();
    let approver_groups: HashMap<GroupId, RoleId> = policies
        .iter()
        .filter_map(|(role, p)| Some((p.approver_group?, *role)))
        .collect();
    let approver_permissions: HashMap<&str, RoleId> = policies
        .iter()
        .filter_map(|(role, p)| Some((p.approver_permission.as_deref()?, *role)))
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
    let group_gating =
        |group: &GroupId, roles: &mut HashMap<RoleId, Option<RoleView>>, gated: &Gated| {
            index
                .direct_roles(&IdentityId::from(*group).to_string())
                .into_iter()
                .filter_map(|r| view(roles, r))
                .flat_map(|v| v.gating(gated).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
    let mut effect = GatedEffect::default();
    for (at, delta) in tx.pending().enumerate() {
        let (what, gating): (&str, Vec<RoleId>) = match delta {
            Delta::PermissionRemoved { id } => (
                "deletes a permission an approval-gated role grants",
                revoke_gated.get(id).copied().into_iter().collect(),
            ),
            Delta::RolePut {
                id,
                permissions,
                record,
                included,
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
                    // What it grants through the roles it includes counts as its own.
                    permissions: permissions
                        .iter()
                        .copied()
                        .chain(
                            included
                                .iter()
                                .flat_map(|r| index.role_grants(*r).unwrap_or_default()),
                        )
                        .collect(),
                };
                // Roles including this one change what they grant with it.
                let includers_gated: Vec<RoleId> = if after.permissions == before_permissions {
                    Vec::new()
                } else {
                    index
                        .including(*id)
                        .into_iter()
                        .filter(|r| {
                            index.role_gate(r.id).is_some_and(|(policy, _)| {
                                policy.is_some_and(|p| p.covers(ApprovalKind::Modify))
                            })
                        })
                        .map(|r| r.id)
                        .collect()
                };
                let added: Vec<RoleId> = after
                    .permissions
                    .difference(&before_permissions)
                    .filter_map(|p| grant_gated.get(p).copied())
                    .collect();
                let removed: Vec<RoleId> = before_permissions
                    .difference(&after.permissions)
                    .filter_map(|p| revoke_gated.get(p).copied())
                    .collect();
                let found = if before_policy.is_some() && after.policy != before_policy {
                    (
                        "changes the approval policy of a role requiring approval",
                        vec![*id],
                    )
                } else if before_policy
                    .as_ref()
                    .is_some_and(|p| p.covers(ApprovalKind::Modify))
                    && after.permissions != before_permissions
                {
                    ("changes what an approval-gated role grants", vec![*id])
                } else if !includers_gated.is_empty() {
                    (
                        "changes what an approval-gated role grants through a role it includes",
                        includers_gated,
                    )
                } else if !added.is_empty() {
                    // Into any role, gated or not: another role's policy might be weaker.
                    (
                        "puts a permission an approval-gated role grants into another role",
                        added,
                    )
                } else {
                    (
                        "takes a permission an approval-gated role grants out of a role",
                        removed,
                    )
                };
                if after.covers(ApprovalKind::Assign) {
                    grant_gated.extend(after.permissions.iter().map(|p| (*p, *id)));
                }
                if after.covers(ApprovalKind::Revoke) {
                    revoke_gated.extend(after.permissions.iter().map(|p| (*p, *id)));
                }
                roles.insert(*id, Some(after));
                found
            }
            Delta::RoleRemoved { id } => {
                let gating = view(&mut roles, *id)
                    .map(|v| {
                        let own = v.covers(ApprovalKind::Revoke).then_some(*id);
                        own.into_iter().chain(v.gating(&revoke_gated)).collect()
                    })
                    .unwrap_or_default();
                roles.insert(*id, None);
                (
                    "deletes a role granting permissions that need approval",
                    gating,
                )
            }
            // AssignRole and RevokeAssignment file change requests for a gated role's own
            // assignments; what reaches here unapproved is refused.
            Delta::AssignmentPut { role, .. } => (
                "assigns a role granting permissions that need approval",
                view(&mut roles, *role)
                    .map(|v| v.gating(&grant_gated).collect())
                    .unwrap_or_default(),
            ),
            Delta::AssignmentRemoved { id } => (
                "revokes a role granting permissions that need approval",
                index
                    .assignment_role(*id)
                    .and_then(|role| view(&mut roles, role))
                    .map(|v| v.gating(&revoke_gated).collect())
                    .unwrap_or_default(),
            ),
            Delta::GroupMembersAdded { group, .. } => match approver_groups.get(group) {
                Some(role) => (
                    "adds members to a group that approves change requests",
                    vec![*role],
                ),
                None => (
                    "adds members to a group holding permissions that need approval",
                    group_gating(group, &mut roles, &grant_gated),
                ),
            },
            Delta::GroupMembersRemoved { group, .. } => (
                "removes members from a group holding permissions that need approval",
                group_gating(group, &mut roles, &revoke_gated),
            ),
            Delta::GroupRemoved { group } => (
                "deletes a group holding permissions that need approval",
                group_gating(group, &mut roles, &revoke_gated),
            ),
            _ => ("", Vec::new()),
        };
        if at >= earlier && !gating.is_empty() {
            effect.what.get_or_insert_with(|| what.to_owned());
            for role in gating {
                if !effect.roles.contains(&role) {
                    effect.roles.push(role);
                }
            }
        }
    }
    effect
}
