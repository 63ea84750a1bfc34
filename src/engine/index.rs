//! One tenant's authorization index: identity -> assignments (direct and through groups)
//! -> roles -> permission slots. Pure data, fed by deltas; no I/O, no locks.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::{
    AssignmentId, ChangeRequestId, Delta, IdentityId, IdentityKind, PermissionId, RoleId,
};

/// Permissions are interned to small integers so a role's set is a sorted `Vec<u32>`.
type Slot = u32;

#[derive(Debug, Clone)]
struct RoleEntry {
    name: Box<str>,
    slots: Vec<Slot>,
    permission_ids: Vec<PermissionId>,
}

#[derive(Debug, Clone)]
struct AssignmentEntry {
    role: RoleId,
    identity: IdentityId,
    kind: IdentityKind,
    expire_time: Option<DateTime<Utc>>,
}

impl AssignmentEntry {
    /// Grants nothing from `expire_time` on, exactly (API rule 10).
    fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.expire_time.is_none_or(|t| now < t)
    }
}

/// How one identity holds a role: the assignment, and the group it came through, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPath {
    pub assignment: AssignmentId,
    pub role: RoleId,
    pub role_name: String,
    pub group: Option<IdentityId>,
}

/// A decision and, when asked for, its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub allowed: bool,
    pub unknown_permission: bool,
    pub grants: Vec<GrantPath>,
    /// Roles that grant the permission (explain on deny).
    pub granting_roles: Vec<(RoleId, String)>,
    /// Expired assignments that would otherwise grant it.
    pub expired: Vec<GrantPath>,
    /// Pending change requests that would grant it.
    pub pending: Vec<ChangeRequestId>,
}

/// Someone who holds a permission and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub identity: IdentityId,
    pub kind: IdentityKind,
    pub role: RoleId,
    pub role_name: String,
    pub group: Option<IdentityId>,
}

#[derive(Debug, Clone, Default)]
pub struct TenantIndex {
    slot_by_name: HashMap<Box<str>, Slot>,
    slot_by_id: HashMap<PermissionId, Slot>,
    /// slot -> name; `None` once the permission is deleted (slots are reused).
    names: Vec<Option<Box<str>>>,
    free_slots: Vec<Slot>,
    roles: HashMap<RoleId, RoleEntry>,
    assignments: HashMap<AssignmentId, AssignmentEntry>,
    by_identity: HashMap<IdentityId, Vec<AssignmentId>>,
    /// member -> the groups (as identities) it belongs to.
    groups_of: HashMap<IdentityId, Vec<IdentityId>>,
    members: HashMap<IdentityId, HashSet<IdentityId>>,
    pending: HashMap<ChangeRequestId, (RoleId, IdentityId)>,
}

impl TenantIndex {
    pub fn apply(&mut self, delta: &Delta) {
        match delta {
            Delta::PermissionPut { id, name } => self.put_permission(*id, name),
            Delta::PermissionRemoved { id } => self.remove_permission(*id),
            Delta::RolePut {
                id,
                name,
                permissions,
            } => {
                let mut slots: Vec<Slot> = permissions
                    .iter()
                    .filter_map(|p| self.slot_by_id.get(p).copied())
                    .collect();
                slots.sort_unstable();
                slots.dedup();
                self.roles.insert(
                    *id,
                    RoleEntry {
                        name: name.as_str().into(),
                        slots,
                        permission_ids: permissions.clone(),
                    },
                );
            }
            Delta::RoleRemoved { id } => {
                self.roles.remove(id);
            }
            Delta::AssignmentPut {
                id,
                role,
                identity,
                kind,
                expire_time,
            } => {
                self.remove_assignment(*id);
                self.assignments.insert(
                    *id,
                    AssignmentEntry {
                        role: *role,
                        identity: identity.clone(),
                        kind: *kind,
                        expire_time: *expire_time,
                    },
                );
                self.by_identity
                    .entry(identity.clone())
                    .or_default()
                    .push(*id);
            }
            Delta::AssignmentRemoved { id } => self.remove_assignment(*id),
            Delta::GroupMembersAdded { group, members } => {
                let group = IdentityId::from(*group);
                let set = self.members.entry(group.clone()).or_default();
                for member in members {
                    if set.insert(member.clone()) {
                        self.groups_of
                            .entry(member.clone())
                            .or_default()
                            .push(group.clone());
                    }
                }
            }
            Delta::GroupMembersRemoved { group, members } => {
                let group = IdentityId::from(*group);
                self.remove_members(&group, members);
            }
            Delta::GroupRemoved { group } => {
                let group = IdentityId::from(*group);
                let members: Vec<IdentityId> = self
                    .members
                    .get(&group)
                    .map(|m| m.iter().cloned().collect())
                    .unwrap_or_default();
                self.remove_members(&group, &members);
                self.members.remove(&group);
            }
            Delta::PendingGrantPut { id, role, identity } => {
                self.pending.insert(*id, (*role, identity.clone()));
            }
            Delta::PendingGrantRemoved { id } => {
                self.pending.remove(id);
            }
        }
    }

    fn put_permission(&mut self, id: PermissionId, name: &str) {
        if let Some(&slot) = self.slot_by_id.get(&id) {
            // Names never change today, but keep the maps consistent if one ever does.
            if let Some(old) = self.names[slot as usize].replace(name.into()) {
                self.slot_by_name.remove(&old);
            }
            self.slot_by_name.insert(name.into(), slot);
            return;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.names[slot as usize] = Some(name.into());
                slot
            }
            None => {
                self.names.push(Some(name.into()));
                Slot::try_from(self.names.len() - 1)
                    .expect("fewer than 2^32 permissions per tenant")
            }
        };
        self.slot_by_id.insert(id, slot);
        self.slot_by_name.insert(name.into(), slot);
        // Roles that named this permission before it was known (replay order) pick it up now.
        for role in self.roles.values_mut() {
            if role.permission_ids.contains(&id) && !role.slots.contains(&slot) {
                role.slots.push(slot);
                role.slots.sort_unstable();
            }
        }
    }

    fn remove_permission(&mut self, id: PermissionId) {
        let Some(slot) = self.slot_by_id.remove(&id) else {
            return;
        };
        if let Some(name) = self.names[slot as usize].take() {
            self.slot_by_name.remove(&name);
        }
        for role in self.roles.values_mut() {
            role.slots.retain(|s| *s != slot);
            role.permission_ids.retain(|p| *p != id);
        }
        self.free_slots.push(slot);
    }

    fn remove_assignment(&mut self, id: AssignmentId) {
        if let Some(old) = self.assignments.remove(&id)
            && let Some(list) = self.by_identity.get_mut(&old.identity)
        {
            list.retain(|a| *a != id);
            if list.is_empty() {
                self.by_identity.remove(&old.identity);
            }
        }
    }

    fn remove_members(&mut self, group: &IdentityId, members: &[IdentityId]) {
        if let Some(set) = self.members.get_mut(group) {
            for member in members {
                if set.remove(member)
                    && let Some(groups) = self.groups_of.get_mut(member)
                {
                    groups.retain(|g| g != group);
                    if groups.is_empty() {
                        self.groups_of.remove(member);
                    }
                }
            }
        }
    }

    /// Every assignment that reaches `identity`: its own, then its groups'.
    fn reaching<'a>(
        &'a self,
        identity: &'a str,
    ) -> impl Iterator<
        Item = (
            &'a AssignmentId,
            &'a AssignmentEntry,
            Option<&'a IdentityId>,
        ),
    > + 'a {
        let direct = self
            .by_identity
            .get(identity)
            .into_iter()
            .flatten()
            .map(move |a| (a, None));
        let via_groups =
            self.groups_of
                .get(identity)
                .into_iter()
                .flatten()
                .flat_map(move |group| {
                    self.by_identity
                        .get(group)
                        .into_iter()
                        .flatten()
                        .map(move |a| (a, Some(group)))
                });
        direct
            .chain(via_groups)
            .filter_map(move |(id, group)| self.assignments.get(id).map(|entry| (id, entry, group)))
    }

    fn path(
        &self,
        id: &AssignmentId,
        entry: &AssignmentEntry,
        group: Option<&IdentityId>,
    ) -> GrantPath {
        GrantPath {
            assignment: *id,
            role: entry.role,
            role_name: self
                .roles
                .get(&entry.role)
                .map(|r| r.name.to_string())
                .unwrap_or_default(),
            group: group.cloned(),
        }
    }

    /// Is `permission` held by `identity` at `now`? The hot path: no allocation unless `explain`.
    pub fn check(
        &self,
        identity: &str,
        permission: &str,
        now: DateTime<Utc>,
        explain: bool,
    ) -> Decision {
        let Some(&slot) = self.slot_by_name.get(permission) else {
            return Decision {
                unknown_permission: true,
                ..Decision::default()
            };
        };
        let mut decision = Decision::default();
        for (id, entry, group) in self.reaching(identity) {
            let grants = self
                .roles
                .get(&entry.role)
                .is_some_and(|r| r.slots.binary_search(&slot).is_ok());
            if !grants {
                continue;
            }
            if entry.live_at(now) {
                decision.allowed = true;
                if !explain {
                    return decision;
                }
                decision.grants.push(self.path(id, entry, group));
            } else if explain {
                decision.expired.push(self.path(id, entry, group));
            }
        }
        if explain && !decision.allowed {
            let mut roles: Vec<(RoleId, String)> = self
                .roles
                .iter()
                .filter(|(_, r)| r.slots.binary_search(&slot).is_ok())
                .map(|(id, r)| (*id, r.name.to_string()))
                .collect();
            roles.sort_by(|a, b| a.1.cmp(&b.1));
            let reaches = |who: &IdentityId| {
                who.as_str() == identity
                    || self
                        .groups_of
                        .get(identity)
                        .is_some_and(|groups| groups.contains(who))
            };
            let mut pending: Vec<ChangeRequestId> = self
                .pending
                .iter()
                .filter(|(_, (role, who))| reaches(who) && roles.iter().any(|(r, _)| r == role))
                .map(|(id, _)| *id)
                .collect();
            pending.sort();
            decision.granting_roles = roles;
            decision.pending = pending;
        }
        decision
    }

    /// Which of `permissions` does `identity` lack at `now`?
    pub fn missing<'p>(
        &self,
        identity: &str,
        permissions: &[&'p str],
        now: DateTime<Utc>,
    ) -> Vec<&'p str> {
        // One check per permission: no allocation on the common path (the API's own
        // authorization runs this on every RPC, Check included).
        permissions
            .iter()
            .filter(|p| !self.check(identity, p, now, false).allowed)
            .copied()
            .collect()
    }

    /// Permission name -> the roles through which `identity` holds it, at `now`.
    pub fn effective_permissions(
        &self,
        identity: &str,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, Vec<(RoleId, String)>> {
        let mut out: BTreeMap<String, Vec<(RoleId, String)>> = BTreeMap::new();
        for (_, entry, _) in self.reaching(identity) {
            if !entry.live_at(now) {
                continue;
            }
            let Some(role) = self.roles.get(&entry.role) else {
                continue;
            };
            for slot in &role.slots {
                if let Some(Some(name)) = self.names.get(*slot as usize) {
                    let via = out.entry(name.to_string()).or_default();
                    if !via.iter().any(|(id, _)| *id == entry.role) {
                        via.push((entry.role, role.name.to_string()));
                    }
                }
            }
        }
        for via in out.values_mut() {
            via.sort_by(|a, b| a.1.cmp(&b.1));
        }
        out
    }

    /// Everyone who holds `permission` at `now`, sorted by identity then role; `None` when the
    /// permission is unknown. Group holders are expanded to their members.
    pub fn holders(&self, permission: &str, now: DateTime<Utc>) -> Option<Vec<Holder>> {
        let slot = *self.slot_by_name.get(permission)?;
        let mut out = Vec::new();
        for entry in self.assignments.values() {
            if !entry.live_at(now) {
                continue;
            }
            let Some(role) = self.roles.get(&entry.role) else {
                continue;
            };
            if role.slots.binary_search(&slot).is_err() {
                continue;
            }
            let holder = |identity: IdentityId, kind, group| Holder {
                identity,
                kind,
                role: entry.role,
                role_name: role.name.to_string(),
                group,
            };
            if entry.kind == IdentityKind::Group {
                for member in self.members.get(&entry.identity).into_iter().flatten() {
                    out.push(holder(
                        member.clone(),
                        IdentityKind::User,
                        Some(entry.identity.clone()),
                    ));
                }
            } else {
                out.push(holder(entry.identity.clone(), entry.kind, None));
            }
        }
        out.sort_by(|a, b| {
            (&a.identity, &a.role_name, &a.group).cmp(&(&b.identity, &b.role_name, &b.group))
        });
        Some(out)
    }

    /// Every identity that any assignment or group membership mentions (dry-run impact).
    pub fn identities_reached_by(&self, deltas: &[Delta]) -> HashSet<IdentityId> {
        let mut out = HashSet::new();
        let add_assignees = |entry_identity: &IdentityId, out: &mut HashSet<IdentityId>| {
            if let Some(members) = self.members.get(entry_identity) {
                out.extend(members.iter().cloned());
            }
            out.insert(entry_identity.clone());
        };
        for delta in deltas {
            match delta {
                Delta::RolePut { id, .. } | Delta::RoleRemoved { id } => {
                    for entry in self.assignments.values().filter(|a| a.role == *id) {
                        add_assignees(&entry.identity, &mut out);
                    }
                }
                Delta::PermissionRemoved { id } => {
                    if let Some(slot) = self.slot_by_id.get(id) {
                        for entry in self.assignments.values() {
                            if self
                                .roles
                                .get(&entry.role)
                                .is_some_and(|r| r.slots.contains(slot))
                            {
                                add_assignees(&entry.identity, &mut out);
                            }
                        }
                    }
                }
                Delta::AssignmentPut { identity, .. } => add_assignees(identity, &mut out),
                Delta::AssignmentRemoved { id } => {
                    if let Some(entry) = self.assignments.get(id) {
                        add_assignees(&entry.identity, &mut out);
                    }
                }
                Delta::GroupMembersAdded { members, .. }
                | Delta::GroupMembersRemoved { members, .. } => {
                    out.extend(members.iter().cloned());
                }
                Delta::GroupRemoved { group } => {
                    add_assignees(&IdentityId::from(*group), &mut out);
                }
                Delta::PermissionPut { .. }
                | Delta::PendingGrantPut { .. }
                | Delta::PendingGrantRemoved { .. } => {}
            }
        }
        out
    }

    /// Numbers for metrics and benchmarks.
    pub fn assignment_count(&self) -> usize {
        self.assignments.len()
    }
}
