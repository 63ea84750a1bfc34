//! Permission and role use-cases (API rules 1, 2, 7, 8, 13 and no escalation).

use std::collections::{HashMap, HashSet};

use super::paging::page;
use super::snapshot;
use super::{Applied, Command, PageRequest, Service};
use crate::domain::builtin::perm;
use crate::domain::{
    ApprovalPolicy, AuditRecord, Caller, Delta, Error, Page, Permission, PermissionId,
    PermissionName, PermissionRef, Reason, Ref, Revision, Role, RoleId, RoleName, RoleRecord,
    RoleRef, RoleSummary, Scope,
};
use crate::engine::MAX_INCLUSION_DEPTH;
use crate::engine::RoleLookup;
use crate::store::WriteTx;

/// CreatePermission, validated.
#[derive(Debug, Clone)]
pub struct CreatePermission {
    pub name: PermissionName,
    pub description: String,
}

/// UpdatePermission, validated.
#[derive(Debug, Clone)]
pub struct UpdatePermission {
    pub permission: PermissionRef,
    pub description: String,
}

/// DeletePermission, validated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeletePermission {
    pub permission: PermissionRef,
    pub force: bool,
}

/// CreateRole, validated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreateRole {
    pub name: RoleName,
    pub description: String,
    pub permissions: Vec<PermissionRef>,
    pub requires_approval: bool,
    /// Set only with `requires_approval`.
    pub approval_policy: Option<ApprovalPolicy>,
    /// Needs `warden:roles:protect`.
    #[serde(default)]
    pub protected: bool,
    /// Roles to include (composite role).
    #[serde(default)]
    pub included_roles: Vec<RoleRef>,
}

/// UpdateRole, validated; `None` leaves a field as it is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UpdateRole {
    pub role: RoleRef,
    pub description: Option<String>,
    /// `Some(false)` also drops the policy.
    pub requires_approval: Option<bool>,
    /// Replaces the policy (and comes with `requires_approval: Some(true)`).
    pub approval_policy: Option<ApprovalPolicy>,
    /// Marks or unmarks the role protected; needs `warden:roles:protect`.
    #[serde(default)]
    pub protected: Option<bool>,
    /// Replaces the included roles when set.
    #[serde(default)]
    pub included_roles: Option<Vec<RoleRef>>,
    pub etag: Option<String>,
}

/// DeleteRole, validated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeleteRole {
    pub role: RoleRef,
    pub force: bool,
}

/// AddPermissionsToRole, validated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AddPermissionsToRole {
    pub role: RoleRef,
    pub permissions: Vec<PermissionRef>,
}

/// RemovePermissionsFromRole, validated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RemovePermissionsFromRole {
    pub role: RoleRef,
    pub permissions: Vec<PermissionRef>,
}

/// RemovePermissionFromRole, validated.
#[derive(Debug, Clone)]
pub struct RemovePermissionFromRole {
    pub role: RoleRef,
    pub permission: PermissionRef,
    pub allow_missing: bool,
}

/// A policy's approver permission and group must exist in the tenant.
async fn ensure_policy_refs(tx: &WriteTx, policy: Option<&ApprovalPolicy>) -> Result<(), Error> {
    let Some(policy) = policy else {
        return Ok(());
    };
    if let Some(name) = &policy.approver_permission
        && tx
            .find_permission(&Ref::Name(name.clone()))
            .await?
            .is_none()
    {
        return Err(Error::not_found("permission", name.clone()));
    }
    if let Some(group) = policy.approver_group
        && tx.find_group(group).await?.is_none()
    {
        return Err(Error::not_found("group", group.to_string()));
    }
    Ok(())
}

fn system_role_immutable(role: &Role) -> Error {
    Error::precondition(
        Reason::SystemRoleImmutable,
        format!("system role '{}' cannot be changed", role.name),
    )
    .with_meta("role", role.name.clone())
}

/// Refuses the same permission named twice (by id and name, say) once refs are resolved.
fn ensure_distinct(field: &str, permissions: &[Permission]) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for p in permissions {
        if !seen.insert(p.id) {
            return Err(Error::invalid(
                field,
                format!("lists permission '{}' more than once", p.name),
            ));
        }
    }
    Ok(())
}
// ----- permissions -----

impl Command for CreatePermission {
    type Output = Permission;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::PERMISSIONS_WRITE]
    }

    fn check(&self, _service: &Service) -> Result<(), Error> {
        if self.name.is_reserved() {
            return Err(Error::precondition(
                Reason::ReservedName,
                "names starting with 'warden:' are reserved for Warden's own permissions",
            )
            .with_meta("name", self.name.as_str()));
        }
        Ok(())
    }

    async fn apply(
        self,
        _service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Permission>, Error> {
        let p = Permission {
            id: PermissionId::new(),
            tenant: caller.tenant.clone(),
            name: self.name.into_string(),
            description: self.description,
            is_system: false,
            create_time: tx.now,
            update_time: tx.now,
            revision: tx.revision,
        };
        tx.insert_permission(&p).await?;
        tx.record(Delta::PermissionPut {
            id: p.id,
            name: p.name.clone(),
        });
        tx.audit(AuditRecord {
            target_kind: "permission",
            target_id: p.id.to_string(),
            before: None,
            after: snapshot(&p),
            reason: String::new(),
        });
        Ok(Applied::new("permission.created", p.id, p))
    }
}

impl Command for UpdatePermission {
    type Output = Permission;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::PERMISSIONS_WRITE]
    }

    async fn apply(
        self,
        _service: &Service,
        _caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Permission>, Error> {
        let before = tx
            .find_permission(&self.permission)
            .await?
            .ok_or_else(|| Error::not_found("permission", self.permission.key()))?;
        if before.is_system {
            return Err(Error::precondition(
                Reason::SystemPermissionImmutable,
                format!("system permission '{}' cannot be changed", before.name),
            )
            .with_meta("permission", before.name.clone()));
        }
        let after = Permission {
            description: self.description,
            update_time: tx.now,
            revision: tx.revision,
            ..before.clone()
        };
        tx.update_permission(&after).await?;
        tx.audit(AuditRecord {
            target_kind: "permission",
            target_id: after.id.to_string(),
            before: snapshot(&before),
            after: snapshot(&after),
            reason: String::new(),
        });
        Ok(Applied::new("permission.updated", after.id, after))
    }
}

/// Rule 8: a permission some role grants is deleted only with `force`, which takes it out of
/// those roles in the same transaction (each role change audited).
impl Command for DeletePermission {
    type Output = ();

    /// Forcing edits roles, so it needs what editing a role needs.
    fn permissions(&self) -> &'static [&'static str] {
        if self.force {
            &[perm::PERMISSIONS_WRITE, perm::ROLES_WRITE]
        } else {
            &[perm::PERMISSIONS_WRITE]
        }
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<()>, Error> {
        let p = tx
            .find_permission(&self.permission)
            .await?
            .ok_or_else(|| Error::not_found("permission", self.permission.key()))?;
        if p.is_system {
            return Err(Error::precondition(
                Reason::SystemPermissionImmutable,
                format!("system permission '{}' cannot be deleted", p.name),
            )
            .with_meta("permission", p.name.clone()));
        }
        let roles = tx.roles_granting(p.id).await?;
        if !roles.is_empty() && !self.force {
            let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::precondition(
                Reason::PermissionInUse,
                format!(
                    "permission '{}' is granted by {} role(s); pass force to remove it from them",
                    p.name,
                    roles.len()
                ),
            )
            .with_meta("roles", names.join(",")));
        }
        if !roles.is_empty() {
            // Taking a permission away from its holders is granting in reverse: only for a
            // caller that could have granted it.
            service.ensure_may_grant(caller, &[p.name.as_str()])?;
        }
        for role in roles {
            if role.is_system {
                return Err(system_role_immutable(&role));
            }
            ensure_may_change(service, caller, &role)?;
            let after = service.stamp_role(tx, &role, |r| r.permissions.retain(|n| *n != p.name));
            tx.update_role(&after).await?;
            tx.audit(AuditRecord {
                target_kind: "role",
                target_id: role.id.to_string(),
                before: snapshot(&role),
                after: snapshot(&after),
                reason: format!("permission '{}' deleted", p.name),
            });
            let remaining: Vec<PermissionId> = tx
                .role_permission_ids(role.id)
                .await?
                .into_iter()
                .filter(|id| *id != p.id)
                .collect();
            tx.record(Delta::RolePut {
                id: role.id,
                name: role.name.clone(),
                permissions: remaining,
                record: Some(RoleRecord::of(&after)),
                included: after.included_roles.iter().map(|r| r.id).collect(),
            });
        }
        tx.delete_permission(p.id).await?;
        tx.record(Delta::PermissionRemoved { id: p.id });
        tx.audit(AuditRecord {
            target_kind: "permission",
            target_id: p.id.to_string(),
            before: snapshot(&p),
            after: None,
            reason: String::new(),
        });
        Ok(Applied::new("permission.deleted", p.id, ()))
    }
}

// ----- roles -----

impl Command for CreateRole {
    type Output = Role;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::ROLES_WRITE]
    }

    fn check(&self, _service: &Service) -> Result<(), Error> {
        if self.name.is_reserved() {
            return Err(Error::precondition(
                Reason::ReservedName,
                "names starting with 'warden:' are reserved for system roles",
            )
            .with_meta("name", self.name.as_str()));
        }
        Ok(())
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Role>, Error> {
        let permissions = tx.resolve_permissions(&self.permissions).await?;
        ensure_distinct("permissions", &permissions)?;
        let names: Vec<&str> = permissions.iter().map(|p| p.name.as_str()).collect();
        service.ensure_may_grant(caller, &names)?;
        ensure_policy_refs(tx, self.approval_policy.as_ref()).await?;
        if self.protected {
            service.authorize(caller, perm::ROLES_PROTECT)?;
        }
        let mut sorted: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        sorted.sort();
        let id = RoleId::new();
        let included_roles =
            resolve_inclusions(service, caller, tx, id, &self.included_roles).await?;
        let role = Role {
            id,
            tenant: caller.tenant.clone(),
            name: self.name.into_string(),
            description: self.description,
            is_system: false,
            requires_approval: self.requires_approval,
            approval_policy: self.approval_policy,
            protected: self.protected,
            permissions: sorted,
            included_roles,
            create_time: tx.now,
            update_time: tx.now,
            revision: tx.revision,
        };
        let ids: Vec<PermissionId> = permissions.iter().map(|p| p.id).collect();
        tx.insert_role(&role, &ids).await?;
        tx.record(Delta::RolePut {
            id: role.id,
            name: role.name.clone(),
            permissions: ids,
            record: Some(RoleRecord::of(&role)),
            included: role.included_roles.iter().map(|r| r.id).collect(),
        });
        tx.audit(AuditRecord {
            target_kind: "role",
            target_id: role.id.to_string(),
            before: None,
            after: snapshot(&role),
            reason: String::new(),
        });
        Ok(Applied::new("role.created", role.id, role))
    }
}

impl Command for UpdateRole {
    type Output = Role;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::ROLES_WRITE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Role>, Error> {
        let before = tx
            .find_role(&self.role)
            .await?
            .ok_or_else(|| Error::not_found("role", self.role.key()))?;
        if before.is_system {
            return Err(system_role_immutable(&before));
        }
        ensure_may_change(service, caller, &before)?;
        if self.protected.is_some_and(|p| p != before.protected) {
            service.authorize(caller, perm::ROLES_PROTECT)?;
        }
        if let Some(etag) = &self.etag
            && *etag != before.etag()
        {
            return Err(Error::Aborted {
                reason: Reason::EtagMismatch,
                message: format!("role '{}' changed since etag {etag} was read", before.name),
            });
        }
        // Changing a description or approval flag grants nothing, but the caller must still be
        // able to grant what the role grants: otherwise it could weaken approval on a role above it.
        let names: Vec<&str> = before.permissions.iter().map(String::as_str).collect();
        service.ensure_may_grant(caller, &names)?;
        ensure_policy_refs(tx, self.approval_policy.as_ref()).await?;
        let included = match &self.included_roles {
            Some(refs) => Some(resolve_inclusions(service, caller, tx, before.id, refs).await?),
            None => None,
        };
        let after = service.stamp_role(tx, &before, |role| {
            if let Some(included) = included {
                role.included_roles = included;
            }
            if let Some(d) = self.description {
                role.description = d;
            }
            if let Some(a) = self.requires_approval {
                role.requires_approval = a;
                if !a {
                    role.approval_policy = None;
                }
            }
            if let Some(policy) = self.approval_policy {
                role.approval_policy = Some(policy);
            }
            if let Some(protected) = self.protected {
                role.protected = protected;
            }
        });
        tx.update_role(&after).await?;
        // Grants nothing new, but the index answers GetRole too: it gets the new record.
        let permissions = tx.role_permission_ids(after.id).await?;
        tx.record(Delta::RolePut {
            id: after.id,
            name: after.name.clone(),
            permissions,
            record: Some(RoleRecord::of(&after)),
            included: after.included_roles.iter().map(|r| r.id).collect(),
        });
        tx.audit(AuditRecord {
            target_kind: "role",
            target_id: after.id.to_string(),
            before: snapshot(&before),
            after: snapshot(&after),
            reason: String::new(),
        });
        Ok(Applied::new("role.updated", after.id, after))
    }
}

/// Rule 8: a role with assignments is deleted only with `force`, which revokes them first in
/// the same transaction (each revocation audited).
impl Command for DeleteRole {
    type Output = ();

    /// Forcing revokes assignments, so it needs what revoking needs.
    fn permissions(&self) -> &'static [&'static str] {
        if self.force {
            &[perm::ROLES_WRITE, perm::ASSIGNMENTS_WRITE]
        } else {
            &[perm::ROLES_WRITE]
        }
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<()>, Error> {
        let role = tx
            .find_role(&self.role)
            .await?
            .ok_or_else(|| Error::not_found("role", self.role.key()))?;
        if role.is_system {
            return Err(system_role_immutable(&role));
        }
        ensure_may_change(service, caller, &role)?;
        let mut includers: Vec<String> = tx
            .inclusion_graph()
            .await?
            .into_values()
            .filter(|(_, inc)| inc.contains(&role.id))
            .map(|(name, _)| name)
            .collect();
        if !includers.is_empty() {
            includers.sort();
            return Err(Error::precondition(
                Reason::RoleInUse,
                format!(
                    "role '{}' is included by {}; remove it from them first",
                    role.name,
                    includers.join(", ")
                ),
            )
            .with_meta("role", role.name.clone())
            .with_meta("included_by", includers.join(",")));
        }
        let assignments = tx.assignments_of_role(role.id).await?;
        if !assignments.is_empty() && !self.force {
            return Err(Error::precondition(
                Reason::RoleInUse,
                format!(
                    "role '{}' has {} assignment(s); pass force to revoke them",
                    role.name,
                    assignments.len()
                ),
            )
            .with_meta("role", role.name.clone())
            .with_meta("assignments", assignments.len().to_string()));
        }
        if !assignments.is_empty() {
            // Revoking every holder at once is revoking each: the caller must hold what the
            // role grants, as RevokeAssignment requires.
            service
                .ensure_may_hold_out_at(tx, caller, &role, &Scope::tenant())
                .await?;
        }
        for a in assignments {
            if a.is_immutable {
                return Err(Error::precondition(
                    Reason::AssignmentImmutable,
                    format!("assignment {} is immutable", a.id),
                )
                .with_meta("assignment_id", a.id.to_string()));
            }
            tx.delete_assignment(a.id).await?;
            tx.record(Delta::AssignmentRemoved { id: a.id });
            tx.audit(AuditRecord {
                target_kind: "assignment",
                target_id: a.id.to_string(),
                before: snapshot(&a),
                after: None,
                reason: format!("role '{}' deleted", role.name),
            });
        }
        tx.delete_role(role.id).await?;
        tx.record(Delta::RoleRemoved { id: role.id });
        tx.audit(AuditRecord {
            target_kind: "role",
            target_id: role.id.to_string(),
            before: snapshot(&role),
            after: None,
            reason: String::new(),
        });
        Ok(Applied::new("role.deleted", role.id, ()))
    }
}

/// Rule 1: atomic; every unknown ref reported; adding a permission the role has succeeds.
impl Command for AddPermissionsToRole {
    type Output = Role;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::ROLES_WRITE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Role>, Error> {
        let role = mutable_role(service, caller, tx, &self.role).await?;
        let permissions = tx.resolve_permissions(&self.permissions).await?;
        ensure_distinct("permissions", &permissions)?;
        let names: Vec<&str> = permissions.iter().map(|p| p.name.as_str()).collect();
        service.ensure_may_grant(caller, &names)?;
        let ids: Vec<PermissionId> = permissions.iter().map(|p| p.id).collect();
        tx.link_permissions(role.id, &ids).await?;
        let after = service.stamp_role(tx, &role, |role| {
            role.permissions
                .extend(names.iter().map(|n| (*n).to_owned()));
            role.permissions.sort();
            role.permissions.dedup();
        });
        save_role_permissions(tx, &role, &after).await?;
        Ok(Applied::new("role.permissions_added", after.id, after))
    }
}

/// Rule 1: atomic and subtractive; removing a permission the role lacks succeeds.
impl Command for RemovePermissionsFromRole {
    type Output = Role;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::ROLES_WRITE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Role>, Error> {
        let role = mutable_role(service, caller, tx, &self.role).await?;
        let permissions = tx.resolve_permissions(&self.permissions).await?;
        ensure_distinct("permissions", &permissions)?;
        service
            .remove_resolved(tx, caller, role, &permissions)
            .await
    }
}

/// Rule 2: PERMISSION_NOT_IN_ROLE unless `allow_missing`.
impl Command for RemovePermissionFromRole {
    type Output = Role;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::ROLES_WRITE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Role>, Error> {
        let role = mutable_role(service, caller, tx, &self.role).await?;
        let permission = tx
            .find_permission(&self.permission)
            .await?
            .ok_or_else(|| Error::not_found("permission", self.permission.key()))?;
        if !self.allow_missing && !role.permissions.contains(&permission.name) {
            return Err(Error::precondition(
                Reason::PermissionNotInRole,
                format!("role '{}' does not grant '{}'", role.name, permission.name),
            )
            .with_meta("role", role.name.clone())
            .with_meta("permission", permission.name.clone()));
        }
        service
            .remove_resolved(tx, caller, role, &[permission])
            .await
    }
}

async fn mutable_role(
    service: &Service,
    caller: &Caller,
    tx: &WriteTx,
    r: &RoleRef,
) -> Result<Role, Error> {
    let role = tx
        .find_role(r)
        .await?
        .ok_or_else(|| Error::not_found("role", r.key()))?;
    if role.is_system {
        return Err(system_role_immutable(&role));
    }
    ensure_may_change(service, caller, &role)?;
    Ok(role)
}

/// A tenant's protected role is changed or deleted only by holders of `warden:roles:protect`.
/// Resolves `refs` as the roles `role` would include, and checks the rules of composite roles:
/// the roles exist, appear once and are not `role` itself; the inclusion graph stays acyclic
/// (FAILED_PRECONDITION `ROLE_CYCLE`) and at most `MAX_INCLUSION_DEPTH` levels deep, counted
/// over every chain through `role` (`ROLE_INCLUSION_TOO_DEEP`); and no escalation: the caller
/// holds every permission the included roles grant.
async fn resolve_inclusions(
    service: &Service,
    caller: &Caller,
    tx: &WriteTx,
    role: RoleId,
    refs: &[RoleRef],
) -> Result<Vec<RoleSummary>, Error> {
    // Including nothing makes no cycle, adds no level and grants nothing more: no need to read
    // the tenant's whole inclusion graph (a configuration creates a thousand such roles).
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let mut included: Vec<Role> = Vec::with_capacity(refs.len());
    for (i, r) in refs.iter().enumerate() {
        let found = tx
            .find_role(r)
            .await?
            .ok_or_else(|| Error::not_found("role", r.key()))?;
        if found.id == role {
            return Err(Error::precondition(
                Reason::RoleCycle,
                format!("role '{}' cannot include itself", found.name),
            )
            .with_meta("role", found.name));
        }
        if included.iter().any(|x| x.id == found.id) {
            return Err(Error::invalid(
                format!("included_roles[{i}]"),
                format!("role '{}' is listed twice", found.name),
            ));
        }
        included.push(found);
    }
    let mut graph = tx.inclusion_graph().await?;
    graph.entry(role).or_default().1 = included.iter().map(|r| r.id).collect();
    let name_of = |id: &RoleId, graph: &HashMap<RoleId, (String, Vec<RoleId>)>| {
        graph.get(id).map(|(n, _)| n.clone()).unwrap_or_default()
    };
    // A cycle through `role`: `role` reachable from what it includes.
    let mut seen: HashSet<RoleId> = HashSet::new();
    let mut stack: Vec<RoleId> = graph[&role].1.clone();
    while let Some(at) = stack.pop() {
        if at == role {
            return Err(Error::precondition(
                Reason::RoleCycle,
                format!(
                    "including these roles would make role '{}' include itself",
                    name_of(&role, &graph)
                ),
            )
            .with_meta("role", name_of(&role, &graph)));
        }
        if seen.insert(at) {
            stack.extend(
                graph
                    .get(&at)
                    .map(|(_, inc)| inc.clone())
                    .unwrap_or_default(),
            );
        }
    }
    // Levels below `role` plus levels above it (roles including it), now that it is acyclic.
    fn below(at: RoleId, graph: &HashMap<RoleId, (String, Vec<RoleId>)>, limit: usize) -> usize {
        if limit == 0 {
            return 0;
        }
        graph
            .get(&at)
            .map(|(_, inc)| {
                inc.iter()
                    .map(|r| 1 + below(*r, graph, limit - 1))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }
    fn above(at: RoleId, graph: &HashMap<RoleId, (String, Vec<RoleId>)>, limit: usize) -> usize {
        if limit == 0 {
            return 0;
        }
        graph
            .iter()
            .filter(|(_, (_, inc))| inc.contains(&at))
            .map(|(id, _)| 1 + above(*id, graph, limit - 1))
            .max()
            .unwrap_or(0)
    }
    let cap = MAX_INCLUSION_DEPTH + 1;
    let depth = below(role, &graph, cap) + above(role, &graph, cap);
    if depth > MAX_INCLUSION_DEPTH {
        return Err(Error::precondition(
            Reason::RoleInclusionTooDeep,
            format!(
                "role inclusions may be at most {MAX_INCLUSION_DEPTH} levels deep; this would make {depth}"
            ),
        )
        .with_meta("role", name_of(&role, &graph)));
    }
    // No escalation: the caller must hold what every included role grants, through its own
    // inclusions too.
    let mut names: Vec<String> = Vec::new();
    let mut visited: HashSet<RoleId> = HashSet::new();
    let mut pending: Vec<RoleId> = included.iter().map(|r| r.id).collect();
    for r in &included {
        names.extend(r.permissions.iter().cloned());
        visited.insert(r.id);
    }
    let mut next: Vec<RoleId> = pending
        .drain(..)
        .flat_map(|r| {
            graph
                .get(&r)
                .map(|(_, inc)| inc.clone())
                .unwrap_or_default()
        })
        .collect();
    while let Some(r) = next.pop() {
        if !visited.insert(r) {
            continue;
        }
        if let Some(found) = tx.find_role(&Ref::Id(r)).await? {
            names.extend(found.permissions);
        }
        next.extend(
            graph
                .get(&r)
                .map(|(_, inc)| inc.clone())
                .unwrap_or_default(),
        );
    }
    names.sort();
    names.dedup();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    service.ensure_may_grant(caller, &refs)?;
    Ok(included
        .into_iter()
        .map(|r| RoleSummary {
            id: r.id,
            name: r.name,
        })
        .collect())
}

fn ensure_may_change(service: &Service, caller: &Caller, role: &Role) -> Result<(), Error> {
    if role.protected {
        service.authorize(caller, perm::ROLES_PROTECT)
    } else {
        Ok(())
    }
}

async fn save_role_permissions(tx: &mut WriteTx, before: &Role, after: &Role) -> Result<(), Error> {
    tx.update_role(after).await?;
    let ids = tx.role_permission_ids(after.id).await?;
    tx.record(Delta::RolePut {
        id: after.id,
        name: after.name.clone(),
        permissions: ids,
        record: Some(RoleRecord::of(after)),
        included: after.included_roles.iter().map(|r| r.id).collect(),
    });
    tx.audit(AuditRecord {
        target_kind: "role",
        target_id: after.id.to_string(),
        before: snapshot(before),
        after: snapshot(after),
        reason: String::new(),
    });
    Ok(())
}

impl Service {
    pub async fn get_permission(
        &self,
        caller: &Caller,
        r: &PermissionRef,
    ) -> Result<Permission, Error> {
        self.authorize(caller, perm::PERMISSIONS_READ)?;
        self.store
            .find_permission(&caller.tenant, r)
            .await?
            .ok_or_else(|| Error::not_found("permission", r.key()))
    }

    pub async fn list_permissions(
        &self,
        caller: &Caller,
        prefix: &str,
        paging: &PageRequest,
    ) -> Result<Page<Permission>, Error> {
        self.authorize(caller, perm::PERMISSIONS_READ)?;
        let filters = format!("prefix={prefix}");
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self
            .store
            .list_permissions(&caller.tenant, prefix, &query)
            .await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            |p| p.name.clone(),
        ))
    }

    /// Answered from the index, as this replica knows the role once it has applied
    /// `at_least_revision`; the database is read only for a role the index holds no record of.
    pub async fn get_role(
        &self,
        caller: &Caller,
        r: &RoleRef,
        at_least_revision: Revision,
    ) -> Result<Role, Error> {
        self.authorize(caller, perm::ROLES_READ)?;
        self.ensure_revision(&caller.tenant, at_least_revision)
            .await?;
        match self.engine.role(&caller.tenant, r).0 {
            RoleLookup::Found(role) => Ok(*role),
            RoleLookup::Absent => Err(Error::not_found("role", r.key())),
            RoleLookup::NotIndexed => self
                .store
                .find_role(&caller.tenant, r)
                .await?
                .ok_or_else(|| Error::not_found("role", r.key())),
        }
    }

    pub async fn list_roles(
        &self,
        caller: &Caller,
        prefix: &str,
        paging: &PageRequest,
    ) -> Result<Page<Role>, Error> {
        self.authorize(caller, perm::ROLES_READ)?;
        let filters = format!("prefix={prefix}");
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self
            .store
            .list_roles(&caller.tenant, prefix, &query)
            .await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            |r| r.name.clone(),
        ))
    }

    /// Removes `permissions` from `role`. Removing what the role grants takes it from every
    /// holder, so (as adding does) it needs the caller to hold each permission it takes away.
    async fn remove_resolved(
        &self,
        tx: &mut WriteTx,
        caller: &Caller,
        role: Role,
        permissions: &[Permission],
    ) -> Result<Applied<Role>, Error> {
        let removed: Vec<&str> = permissions
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| role.permissions.iter().any(|n| n == name))
            .collect();
        self.ensure_may_grant(caller, &removed)?;
        let ids: Vec<PermissionId> = permissions.iter().map(|p| p.id).collect();
        tx.unlink_permissions(role.id, &ids).await?;
        let after = self.stamp_role(tx, &role, |r| {
            r.permissions
                .retain(|n| !permissions.iter().any(|p| p.name == *n))
        });
        save_role_permissions(tx, &role, &after).await?;
        Ok(Applied::new("role.permissions_removed", after.id, after))
    }

    /// A copy of `role` changed by `edit` and stamped with this write's time and revision.
    fn stamp_role(&self, tx: &WriteTx, role: &Role, edit: impl FnOnce(&mut Role)) -> Role {
        let mut after = role.clone();
        edit(&mut after);
        after.update_time = tx.now;
        after.revision = tx.revision;
        after
    }
}
