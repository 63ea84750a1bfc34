//! One tenant's authorization index: identity -> assignments (direct and through groups)
//! -> roles -> permission slots. Pure data, fed by deltas; no I/O, no locks.
//!
//! Laid out for a million assignments in a few hundred megabytes at most: permissions, roles
//! and identities are interned to `u32`s, identity names live in one text arena, and each
//! identity's assignments form an intrusive list through a slab, so an assignment costs a slab
//! entry, an id-map entry and (when its identity is new) a few bytes of name.

use std::collections::{BTreeMap, BTreeSet, HashMap as StdHashMap, HashSet as StdHashSet};
use std::hash::BuildHasher;

use chrono::{DateTime, Utc};
// hashbrown's maps hash with foldhash: std's SipHash over permission names was a visible part of
// Check's cost. What the index hands out stays std's.
use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};

use crate::domain::scope::covers;
use crate::domain::{
    ApprovalKind, ApprovalPolicy, AssignmentId, ChangeRequestId, Delta, GroupId, IdentityId,
    IdentityKind, PermissionId, Role, RoleId, RoleRecord, RoleRef, RoleSummary, Scope, TenantId,
};

/// The most levels of inclusion a composite role may have (write-time rule; the index stops
/// there too, so a cycle that slipped in cannot loop).
pub const MAX_INCLUSION_DEPTH: usize = 8;

/// Permissions are interned to small integers so a role's set is a sorted `Vec<u32>`.
type Slot = u32;

/// "No entry" in the `u32` links.
const NONE: u32 = u32::MAX;

/// The interned empty scope: the whole tenant.
const TENANT_SCOPE: u32 = 0;

#[derive(Debug, Clone)]
struct RoleEntry {
    id: RoleId,
    name: Box<str>,
    /// What the role grants, its included roles' permissions with it (flattened here, so a
    /// composite role costs Check nothing).
    slots: Vec<Slot>,
    /// What the role itself grants.
    own_slots: Vec<Slot>,
    permission_ids: Vec<PermissionId>,
    /// The roles it includes directly.
    included: Vec<RoleId>,
    /// The rest of the role, for GetRole; `None` when the last `RolePut` carried none (an older
    /// release wrote it): that role is then read from the database.
    record: Option<Box<RoleRecord>>,
    /// Deleted roles keep their slot (assignments never outlive them) but grant nothing.
    removed: bool,
}

/// The approval policy in force on a role, as its record says.
fn gate_of(entry: &RoleEntry) -> Option<ApprovalPolicy> {
    let record = entry.record.as_ref()?;
    record
        .requires_approval
        .then(|| record.approval_policy.clone().unwrap_or_default())
}

/// True when the role's approval policy covers `kind` (without copying the policy).
fn gate_covers(entry: &RoleEntry, kind: ApprovalKind) -> bool {
    entry.record.as_ref().is_some_and(|record| {
        record.requires_approval
            && record
                .approval_policy
                .as_ref()
                .is_none_or(|p| p.covers(kind))
    })
}

/// A role looked up in the index.
#[derive(Debug, Clone)]
pub enum RoleLookup {
    Found(Box<Role>),
    /// No such role at this revision.
    Absent,
    /// The role exists but the index lacks its record: read it from the database.
    NotIndexed,
}

/// 36 bytes: the expiry of the few assignments that have one lives in a side map, and scopes
/// are interned.
#[derive(Debug, Clone)]
struct AssignmentEntry {
    id: AssignmentId,
    role: u32,
    /// Interned scope; `TENANT_SCOPE` for tenant-wide grants.
    scope: u32,
    /// `NONE` marks a free slab entry.
    identity: u32,
    /// The identity's next assignment.
    next: u32,
    kind: IdentityKind,
    expires: bool,
}

#[derive(Debug, Clone)]
struct IdentityEntry {
    name_at: u32,
    name_len: u32,
    /// Head of the identity's assignment list.
    first: u32,
    /// Assignments plus group memberships (as member or as group) that keep it interned.
    refs: u32,
}

/// How one identity holds a role: the assignment, and the group it came through, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPath {
    pub assignment: AssignmentId,
    pub role: RoleId,
    pub role_name: String,
    pub group: Option<IdentityId>,
    /// Where the assignment applies.
    pub scope: Scope,
    /// When the assigned role grants the permission through included roles: that chain, from
    /// the role it includes down to the one granting the permission itself.
    pub inclusion: Vec<RoleSummary>,
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
    /// Live grants of the permission at scopes that do not cover the resource asked about
    /// (explain on deny: "holds it on departments/sales, not on departments/eng").
    pub elsewhere: Vec<GrantPath>,
}

/// Someone who holds a permission and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub identity: IdentityId,
    pub kind: IdentityKind,
    pub role: RoleId,
    pub role_name: String,
    pub group: Option<IdentityId>,
    /// Where it holds it: this scope and everything under it.
    pub scope: Scope,
}

/// Interned scope names, reference-counted by the assignments at them. The names are the
/// deltas' own shared text: interning allocates no string.
#[derive(Debug, Clone)]
struct Scopes {
    names: Vec<Scope>,
    refs: Vec<u32>,
    ix: HashMap<Scope, u32>,
    free: Vec<u32>,
}

impl Default for Scopes {
    fn default() -> Self {
        Self {
            names: vec![Scope::tenant()],
            refs: vec![0],
            ix: HashMap::new(),
            free: Vec::new(),
        }
    }
}

impl Scopes {
    fn intern(&mut self, scope: &Scope) -> u32 {
        if scope.is_tenant() {
            return TENANT_SCOPE;
        }
        let at = match self.ix.get(scope) {
            Some(&at) => at,
            None => {
                let at = match self.free.pop() {
                    Some(at) => {
                        self.names[at as usize] = scope.clone();
                        at
                    }
                    None => {
                        self.names.push(scope.clone());
                        self.refs.push(0);
                        u32::try_from(self.names.len() - 1).expect("fewer than 2^32 scopes")
                    }
                };
                self.ix.insert(scope.clone(), at);
                at
            }
        };
        self.refs[at as usize] += 1;
        at
    }

    fn release(&mut self, at: u32) {
        if at == TENANT_SCOPE {
            return;
        }
        let refs = &mut self.refs[at as usize];
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            let name = std::mem::take(&mut self.names[at as usize]);
            self.ix.remove(&name);
            self.free.push(at);
        }
    }

    fn name(&self, at: u32) -> &str {
        self.names[at as usize].as_str()
    }

    fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.refs.shrink_to_fit();
        self.ix.shrink_to_fit();
    }
}

#[derive(Debug, Clone, Default)]
pub struct TenantIndex {
    /// A disabled tenant grants nothing (TenantService).
    disabled: bool,
    slot_by_name: HashMap<Box<str>, Slot>,
    slot_by_id: HashMap<PermissionId, Slot>,
    /// slot -> name; `None` once the permission is deleted (slots are reused).
    names: Vec<Option<Box<str>>>,
    free_slots: Vec<Slot>,

    roles: Vec<RoleEntry>,
    role_ix: HashMap<RoleId, u32>,

    /// Identity names, back to back; `garbage` counts the bytes of forgotten ones.
    arena: String,
    garbage: usize,
    identity_table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    identities: Vec<IdentityEntry>,
    free_identities: Vec<u32>,

    assignments: Vec<AssignmentEntry>,
    /// slab index -> expiry in Unix microseconds, for assignments that expire.
    expiries: HashMap<u32, i64>,
    assignment_ix: HashMap<AssignmentId, u32>,
    free_assignments: Vec<u32>,
    scopes: Scopes,

    /// group (identity) -> members (identities), and member -> groups.
    members: HashMap<u32, HashSet<u32>>,
    groups_of: HashMap<u32, Vec<u32>>,
    pending: HashMap<ChangeRequestId, (RoleId, IdentityId, Scope)>,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
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
                record,
                included,
            } => {
                let mut slots: Vec<Slot> = permissions
                    .iter()
                    .filter_map(|p| self.slot_by_id.get(p).copied())
                    .collect();
                slots.sort_unstable();
                slots.dedup();
                let ix = self.role_slot(*id);
                let role = &mut self.roles[ix as usize];
                role.name = name.as_str().into();
                role.own_slots.clone_from(&slots);
                role.slots = slots;
                role.permission_ids.clone_from(permissions);
                role.included.clone_from(included);
                role.record.clone_from(record);
                role.removed = false;
                self.flatten_inclusions();
            }
            Delta::RoleRemoved { id } => {
                if let Some(ix) = self.role_ix.remove(id) {
                    let role = &mut self.roles[ix as usize];
                    role.removed = true;
                    role.slots = Vec::new();
                    role.own_slots = Vec::new();
                    role.permission_ids = Vec::new();
                    role.included = Vec::new();
                    role.record = None;
                    self.flatten_inclusions();
                }
            }
            Delta::AssignmentPut {
                id,
                role,
                identity,
                kind,
                expire_time,
                scope,
            } => {
                self.remove_assignment(*id);
                let role = self.role_slot(*role);
                let who = self.intern(identity.as_str());
                let scope = self.scopes.intern(scope);
                let entry = AssignmentEntry {
                    id: *id,
                    role,
                    scope,
                    identity: who,
                    next: self.identities[who as usize].first,
                    kind: *kind,
                    expires: expire_time.is_some(),
                };
                let at = match self.free_assignments.pop() {
                    Some(at) => {
                        self.assignments[at as usize] = entry;
                        at
                    }
                    None => {
                        self.assignments.push(entry);
                        u32::try_from(self.assignments.len() - 1)
                            .expect("fewer than 2^32 assignments")
                    }
                };
                if let Some(t) = expire_time {
                    self.expiries.insert(at, micros(*t));
                }
                let person = &mut self.identities[who as usize];
                person.first = at;
                person.refs += 1;
                self.assignment_ix.insert(*id, at);
            }
            Delta::AssignmentRemoved { id } => self.remove_assignment(*id),
            Delta::GroupMembersAdded { group, members } => {
                let group = self.intern_group(*group);
                // Held while members are added, so it cannot be forgotten half-way.
                self.identities[group as usize].refs += 1;
                for member in members {
                    let m = self.intern(member.as_str());
                    if self.members.entry(group).or_default().insert(m) {
                        self.groups_of.entry(m).or_default().push(group);
                        self.identities[m as usize].refs += 1;
                        self.identities[group as usize].refs += 1;
                    }
                }
                self.release(group);
            }
            Delta::GroupMembersRemoved { group, members } => {
                let Some(group) = self.find_identity(&IdentityId::from(*group).to_string()) else {
                    return;
                };
                let found: Vec<u32> = members
                    .iter()
                    .filter_map(|m| self.find_identity(m.as_str()))
                    .collect();
                self.remove_members(group, &found);
            }
            Delta::GroupRemoved { group } => {
                let Some(group) = self.find_identity(&IdentityId::from(*group).to_string()) else {
                    return;
                };
                let all: Vec<u32> = self
                    .members
                    .get(&group)
                    .map(|m| m.iter().copied().collect())
                    .unwrap_or_default();
                self.remove_members(group, &all);
                self.members.remove(&group);
            }
            Delta::PendingGrantPut {
                id,
                role,
                identity,
                scope,
            } => {
                self.pending
                    .insert(*id, (*role, identity.clone(), scope.clone()));
            }
            Delta::PendingGrantRemoved { id } => {
                self.pending.remove(id);
            }
            Delta::TenantState { disabled } => self.disabled = *disabled,
        }
    }

    /// True when the tenant is disabled: every decision denies.
    pub fn is_disabled(&self) -> bool {
        self.disabled
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
        let mut picked_up = false;
        for role in &mut self.roles {
            if role.permission_ids.contains(&id) && !role.own_slots.contains(&slot) {
                role.own_slots.push(slot);
                role.own_slots.sort_unstable();
                role.slots.push(slot);
                role.slots.sort_unstable();
                role.slots.dedup();
                picked_up = true;
            }
        }
        if picked_up {
            self.flatten_inclusions();
        }
    }

    fn remove_permission(&mut self, id: PermissionId) {
        let Some(slot) = self.slot_by_id.remove(&id) else {
            return;
        };
        if let Some(name) = self.names[slot as usize].take() {
            self.slot_by_name.remove(&name);
        }
        for role in &mut self.roles {
            role.slots.retain(|s| *s != slot);
            role.own_slots.retain(|s| *s != slot);
            role.permission_ids.retain(|p| *p != id);
        }
        self.free_slots.push(slot);
    }

    /// Recomputes what each composite role grants: its own permissions and, transitively,
    /// those of the roles it includes (at most `MAX_INCLUSION_DEPTH` levels; a cycle, refused
    /// when written, cannot loop here). Roles are few per tenant; this runs on role changes only.
    fn flatten_inclusions(&mut self) {
        if self.roles.iter().all(|r| r.included.is_empty()) {
            return;
        }
        for at in 0..self.roles.len() {
            if self.roles[at].included.is_empty() {
                continue;
            }
            let mut slots = self.roles[at].own_slots.clone();
            for included in self.closure(at) {
                slots.extend_from_slice(&self.roles[included as usize].own_slots);
            }
            slots.sort_unstable();
            slots.dedup();
            self.roles[at].slots = slots;
        }
    }

    /// The roles `at` includes, directly or not (itself excluded), each once.
    fn closure(&self, at: usize) -> Vec<u32> {
        let mut seen: Vec<u32> = Vec::new();
        let mut level: Vec<u32> = vec![u32::try_from(at).unwrap_or(NONE)];
        for _ in 0..MAX_INCLUSION_DEPTH {
            let mut next = Vec::new();
            for &r in &level {
                for id in &self.roles[r as usize].included {
                    if let Some(&ix) = self.role_ix.get(id)
                        && ix as usize != at
                        && !seen.contains(&ix)
                    {
                        seen.push(ix);
                        next.push(ix);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        seen
    }

    /// The inclusion chain by which role `at` grants `slot` when it does not grant it itself:
    /// from the role it includes down to the one granting it (breadth first: the shortest).
    fn inclusion_path(&self, at: u32, slot: Slot) -> Vec<RoleSummary> {
        if self.roles[at as usize]
            .own_slots
            .binary_search(&slot)
            .is_ok()
        {
            return Vec::new();
        }
        let mut paths: Vec<Vec<u32>> = vec![vec![at]];
        for _ in 0..MAX_INCLUSION_DEPTH {
            let mut next = Vec::new();
            for path in &paths {
                let last = *path.last().unwrap_or(&at);
                for id in &self.roles[last as usize].included {
                    let Some(&ix) = self.role_ix.get(id) else {
                        continue;
                    };
                    if path.contains(&ix) {
                        continue;
                    }
                    let mut longer = path.clone();
                    longer.push(ix);
                    if self.roles[ix as usize]
                        .own_slots
                        .binary_search(&slot)
                        .is_ok()
                    {
                        return longer[1..].iter().map(|&r| self.summary(r)).collect();
                    }
                    next.push(longer);
                }
            }
            if next.is_empty() {
                break;
            }
            paths = next;
        }
        Vec::new()
    }

    fn summary(&self, at: u32) -> RoleSummary {
        let role = &self.roles[at as usize];
        RoleSummary {
            id: role.id,
            name: role.name.to_string(),
        }
    }

    /// The roles whose grants include `role`'s (itself, and every role including it).
    fn roles_reaching(&self, role: u32) -> Vec<u32> {
        let mut out = vec![role];
        for at in 0..self.roles.len() {
            if !self.roles[at].included.is_empty() && self.closure(at).contains(&role) {
                out.push(u32::try_from(at).unwrap_or(NONE));
            }
        }
        out
    }

    /// The roles `role` includes, directly or not; `None` when the index lacks the role.
    pub fn included_closure(&self, role: RoleId) -> Option<Vec<RoleId>> {
        let &ix = self.role_ix.get(&role)?;
        Some(
            self.closure(ix as usize)
                .into_iter()
                .map(|r| self.roles[r as usize].id)
                .collect(),
        )
    }

    /// The roles that include `role`, directly or not.
    pub fn including(&self, role: RoleId) -> Vec<RoleSummary> {
        let Some(&ix) = self.role_ix.get(&role) else {
            return Vec::new();
        };
        self.roles_reaching(ix)
            .into_iter()
            .skip(1)
            .filter(|&r| !self.roles[r as usize].removed)
            .map(|r| self.summary(r))
            .collect()
    }

    /// The role's slot, creating an empty one for a role not seen yet.
    fn role_slot(&mut self, id: RoleId) -> u32 {
        if let Some(&ix) = self.role_ix.get(&id) {
            return ix;
        }
        self.roles.push(RoleEntry {
            id,
            name: "".into(),
            slots: Vec::new(),
            own_slots: Vec::new(),
            permission_ids: Vec::new(),
            included: Vec::new(),
            record: None,
            removed: false,
        });
        let ix = u32::try_from(self.roles.len() - 1).expect("fewer than 2^32 roles");
        self.role_ix.insert(id, ix);
        ix
    }

    /// The role `r` names, whole, as GetRole answers it. A tenant has few roles, so a name is
    /// found by a scan rather than a second map kept current.
    pub fn role(&self, tenant: &TenantId, r: &RoleRef) -> RoleLookup {
        let entry = match r {
            RoleRef::Id(id) => self
                .role_ix
                .get(id)
                .map(|&ix| &self.roles[ix as usize])
                .filter(|e| !e.removed),
            RoleRef::Name(name) => self
                .roles
                .iter()
                .find(|e| !e.removed && *e.name == **name && self.role_ix.contains_key(&e.id)),
        };
        let Some(entry) = entry else {
            return RoleLookup::Absent;
        };
        let Some(record) = &entry.record else {
            return RoleLookup::NotIndexed;
        };
        let mut permissions: Vec<String> = entry
            .permission_ids
            .iter()
            .filter_map(|id| self.slot_by_id.get(id))
            .filter_map(|&slot| self.names[slot as usize].as_deref())
            .map(str::to_owned)
            .collect();
        permissions.sort();
        permissions.dedup();
        RoleLookup::Found(Box::new(Role {
            id: entry.id,
            tenant: tenant.clone(),
            name: entry.name.to_string(),
            description: record.description.clone(),
            is_system: record.is_system,
            requires_approval: record.requires_approval,
            approval_policy: record.approval_policy.clone(),
            protected: record.protected,
            permissions,
            included_roles: entry
                .included
                .iter()
                .map(|id| match self.role_ix.get(id) {
                    Some(&ix) => self.summary(ix),
                    None => RoleSummary {
                        id: *id,
                        name: String::new(),
                    },
                })
                .collect(),
            create_time: record.create_time,
            update_time: record.update_time,
            revision: record.revision,
        }))
    }

    /// The approval policy in force on `role` (none when it needs no approval) and the
    /// permissions it grants; `None` for a role the index does not hold (or holds as deleted).
    pub fn role_gate(&self, role: RoleId) -> Option<(Option<ApprovalPolicy>, Vec<PermissionId>)> {
        let ix = *self.role_ix.get(&role)?;
        let entry = &self.roles[ix as usize];
        (!entry.removed).then(|| (gate_of(entry), self.granted_ids(ix)))
    }

    /// The permissions role `at` grants, through its inclusions too.
    fn granted_ids(&self, at: u32) -> Vec<PermissionId> {
        let entry = &self.roles[at as usize];
        if entry.included.is_empty() {
            return entry.permission_ids.clone();
        }
        let mut ids = entry.permission_ids.clone();
        for r in self.closure(at as usize) {
            ids.extend_from_slice(&self.roles[r as usize].permission_ids);
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The names of the permissions `role` itself grants.
    pub fn permission_names_of(&self, role: RoleId) -> Vec<String> {
        let Some(&ix) = self.role_ix.get(&role) else {
            return Vec::new();
        };
        self.roles[ix as usize]
            .own_slots
            .iter()
            .filter_map(|&slot| self.names[slot as usize].as_deref())
            .map(str::to_owned)
            .collect()
    }

    /// The permissions role `role` grants (inclusions flattened), for writes judging it.
    pub fn role_grants(&self, role: RoleId) -> Option<Vec<PermissionId>> {
        let ix = *self.role_ix.get(&role)?;
        (!self.roles[ix as usize].removed).then(|| self.granted_ids(ix))
    }

    /// Every permission some role grants whose approval policy covers `kind`, with one such
    /// role (the one whose approval a change of it needs).
    pub fn gated_permissions(&self, kind: ApprovalKind) -> StdHashMap<PermissionId, RoleId> {
        (0u32..)
            .zip(&self.roles)
            .filter(|(_, r)| !r.removed && gate_covers(r, kind))
            .flat_map(|(at, r)| self.granted_ids(at).into_iter().map(move |p| (p, r.id)))
            .collect()
    }

    /// The policies, covering `kind`, of the other roles that grant a permission `role` grants.
    pub fn policies_gating(&self, role: RoleId, kind: ApprovalKind) -> Vec<ApprovalPolicy> {
        let Some(&ix) = self.role_ix.get(&role) else {
            return Vec::new();
        };
        let granted = self.granted_ids(ix);
        (0u32..)
            .zip(&self.roles)
            .filter(|(_, r)| !r.removed && r.id != role && gate_covers(r, kind))
            .filter(|(at, _)| self.granted_ids(*at).iter().any(|p| granted.contains(p)))
            .filter_map(|(_, r)| gate_of(r))
            .collect()
    }

    /// Every role requiring approval, with its policy.
    pub fn approval_policies(&self) -> Vec<(RoleId, ApprovalPolicy)> {
        self.roles
            .iter()
            .filter(|r| !r.removed)
            .filter_map(|r| Some((r.id, gate_of(r)?)))
            .collect()
    }

    /// The ids of the permissions named in `names` that the index holds, with each name's value.
    pub fn permission_ids_named<V: Copy>(
        &self,
        names: &StdHashMap<&str, V>,
    ) -> StdHashMap<PermissionId, V> {
        self.slot_by_id
            .iter()
            .filter_map(|(id, slot)| {
                let name = self.names[*slot as usize].as_deref()?;
                Some((*id, *names.get(name)?))
            })
            .collect()
    }

    /// The roles `identity` holds by direct assignment (a group's own assignments).
    pub fn direct_roles(&self, identity: &str) -> Vec<RoleId> {
        let Some(who) = self.find_identity(identity) else {
            return Vec::new();
        };
        let mut roles = Vec::new();
        let mut at = self.identities[who as usize].first;
        while at != NONE {
            let entry = &self.assignments[at as usize];
            roles.push(self.roles[entry.role as usize].id);
            at = entry.next;
        }
        roles
    }

    /// The role an assignment grants.
    pub fn assignment_role(&self, id: AssignmentId) -> Option<RoleId> {
        let at = *self.assignment_ix.get(&id)?;
        Some(self.roles[self.assignments[at as usize].role as usize].id)
    }

    /// The kind `identity` was assigned as, if it holds any assignment.
    pub fn identity_kind(&self, identity: &str) -> Option<IdentityKind> {
        let who = self.find_identity(identity)?;
        let first = self.identities[who as usize].first;
        (first != NONE).then(|| self.assignments[first as usize].kind)
    }

    /// True when `identity` holds `role` at `scope` by a direct assignment, expired or not.
    pub fn has_assignment(&self, role: RoleId, identity: &str, scope: &str) -> bool {
        let (Some(&role), Some(who)) = (self.role_ix.get(&role), self.find_identity(identity))
        else {
            return false;
        };
        let mut at = self.identities[who as usize].first;
        while at != NONE {
            let entry = &self.assignments[at as usize];
            if entry.role == role && self.scopes.name(entry.scope) == scope {
                return true;
            }
            at = entry.next;
        }
        false
    }

    fn name_of(&self, ix: u32) -> &str {
        let e = &self.identities[ix as usize];
        &self.arena[e.name_at as usize..(e.name_at + e.name_len) as usize]
    }

    fn find_identity(&self, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.identity_table
            .find(hash, |&ix| self.name_of(ix) == name)
            .copied()
    }

    /// The identity's index, interning it (with no references yet) if new.
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(ix) = self.find_identity(name) {
            return ix;
        }
        let name_at = u32::try_from(self.arena.len()).expect("identity arena under 4 GiB");
        self.arena.push_str(name);
        let entry = IdentityEntry {
            name_at,
            name_len: u32::try_from(name.len()).expect("short identity"),
            first: NONE,
            refs: 0,
        };
        let ix = match self.free_identities.pop() {
            Some(ix) => {
                self.identities[ix as usize] = entry;
                ix
            }
            None => {
                self.identities.push(entry);
                u32::try_from(self.identities.len() - 1).expect("fewer than 2^32 identities")
            }
        };
        let hash = self.hasher.hash_one(name);
        let Self {
            identity_table,
            identities,
            arena,
            hasher,
            ..
        } = self;
        identity_table.insert_unique(hash, ix, |&other| {
            let e = &identities[other as usize];
            hasher.hash_one(&arena[e.name_at as usize..(e.name_at + e.name_len) as usize])
        });
        ix
    }

    fn intern_group(&mut self, group: GroupId) -> u32 {
        self.intern(&IdentityId::from(group).to_string())
    }

    /// Drops one reference; forgets the identity when none remain.
    fn release(&mut self, ix: u32) {
        let entry = &mut self.identities[ix as usize];
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs > 0 || entry.first != NONE {
            return;
        }
        let name = self.name_of(ix).to_owned();
        let hash = self.hasher.hash_one(name.as_str());
        if let Ok(found) = self.identity_table.find_entry(hash, |&other| other == ix) {
            found.remove();
        }
        self.garbage += name.len();
        self.free_identities.push(ix);
        self.compact_arena();
    }

    /// Rewrites the arena once most of it is names of forgotten identities.
    fn compact_arena(&mut self) {
        if self.garbage < 64 * 1024 || self.garbage * 2 < self.arena.len() {
            return;
        }
        let free: HashSet<u32> = self.free_identities.iter().copied().collect();
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        for (ix, e) in self.identities.iter_mut().enumerate() {
            if free.contains(&u32::try_from(ix).unwrap_or(NONE)) {
                e.name_len = 0;
                e.name_at = 0;
                continue;
            }
            let start = arena.len();
            arena.push_str(&self.arena[e.name_at as usize..(e.name_at + e.name_len) as usize]);
            e.name_at = u32::try_from(start).expect("identity arena under 4 GiB");
        }
        self.arena = arena;
        self.garbage = 0;
    }

    fn remove_assignment(&mut self, id: AssignmentId) {
        let Some(at) = self.assignment_ix.remove(&id) else {
            return;
        };
        let who = self.assignments[at as usize].identity;
        let next = self.assignments[at as usize].next;
        // Unlink from the identity's list.
        if self.identities[who as usize].first == at {
            self.identities[who as usize].first = next;
        } else {
            let mut cursor = self.identities[who as usize].first;
            while cursor != NONE {
                if self.assignments[cursor as usize].next == at {
                    self.assignments[cursor as usize].next = next;
                    break;
                }
                cursor = self.assignments[cursor as usize].next;
            }
        }
        let scope = std::mem::replace(&mut self.assignments[at as usize].scope, TENANT_SCOPE);
        self.scopes.release(scope);
        self.assignments[at as usize].identity = NONE;
        self.assignments[at as usize].next = NONE;
        if self.assignments[at as usize].expires {
            self.expiries.remove(&at);
            self.assignments[at as usize].expires = false;
        }
        self.free_assignments.push(at);
        self.release(who);
    }

    fn remove_members(&mut self, group: u32, members: &[u32]) {
        for &m in members {
            let removed = self
                .members
                .get_mut(&group)
                .is_some_and(|set| set.remove(&m));
            if !removed {
                continue;
            }
            if let Some(groups) = self.groups_of.get_mut(&m) {
                groups.retain(|g| *g != group);
                if groups.is_empty() {
                    self.groups_of.remove(&m);
                }
            }
            self.release(m);
            self.release(group);
        }
        if self.members.get(&group).is_some_and(HashSet::is_empty) {
            self.members.remove(&group);
        }
    }

    /// Every live-or-expired assignment that reaches identity `ix`: its own, then its groups'.
    fn reaching(
        &self,
        ix: Option<u32>,
        mut visit: impl FnMut(u32, &AssignmentEntry, Option<u32>) -> bool,
    ) {
        let Some(ix) = ix else { return };
        let mut walk = |head: u32, group: Option<u32>| {
            let mut cursor = head;
            while cursor != NONE {
                let entry = &self.assignments[cursor as usize];
                if !visit(cursor, entry, group) {
                    return false;
                }
                cursor = entry.next;
            }
            true
        };
        if !walk(self.identities[ix as usize].first, None) {
            return;
        }
        for &group in self.groups_of.get(&ix).into_iter().flatten() {
            if !walk(self.identities[group as usize].first, Some(group)) {
                return;
            }
        }
    }

    /// Grants nothing from its expiry on, exactly (API rule 10).
    fn live_at(&self, at: u32, entry: &AssignmentEntry, now: i64) -> bool {
        !entry.expires || self.expiries.get(&at).is_none_or(|expire| now < *expire)
    }

    fn grants(&self, entry: &AssignmentEntry, slot: Slot) -> bool {
        let role = &self.roles[entry.role as usize];
        !role.removed && role.slots.binary_search(&slot).is_ok()
    }

    fn path(&self, entry: &AssignmentEntry, group: Option<u32>, slot: Slot) -> GrantPath {
        let role = &self.roles[entry.role as usize];
        GrantPath {
            assignment: entry.id,
            role: role.id,
            role_name: role.name.to_string(),
            group: group.map(|g| IdentityId::from_validated(self.name_of(g))),
            scope: Scope::from_validated(self.scopes.name(entry.scope)),
            inclusion: self.inclusion_path(entry.role, slot),
        }
    }

    /// True when the assignment's scope covers `resource` (a tenant-wide one covers all).
    fn applies_to(&self, entry: &AssignmentEntry, resource: &str) -> bool {
        entry.scope == TENANT_SCOPE || covers(self.scopes.name(entry.scope), resource)
    }

    /// Is `permission` held by `identity` on `resource` (empty: the tenant) at `now`? The hot
    /// path: no allocation unless `explain`.
    pub fn check(
        &self,
        identity: &str,
        permission: &str,
        resource: &str,
        now: DateTime<Utc>,
        explain: bool,
    ) -> Decision {
        if self.disabled {
            return Decision::default();
        }
        let Some(&slot) = self.slot_by_name.get(permission) else {
            return Decision {
                unknown_permission: true,
                ..Decision::default()
            };
        };
        let now = micros(now);
        let who = self.find_identity(identity);
        let mut decision = Decision::default();
        self.reaching(who, |at, entry, group| {
            if !self.grants(entry, slot) {
                return true;
            }
            let live = self.live_at(at, entry, now);
            if !self.applies_to(entry, resource) {
                if explain && live {
                    decision.elsewhere.push(self.path(entry, group, slot));
                }
                return true;
            }
            if live {
                decision.allowed = true;
                if !explain {
                    return false;
                }
                decision.grants.push(self.path(entry, group, slot));
            } else if explain {
                decision.expired.push(self.path(entry, group, slot));
            }
            true
        });
        if explain && !decision.allowed {
            let mut roles: Vec<(RoleId, String)> = self
                .roles
                .iter()
                .filter(|r| !r.removed && r.slots.binary_search(&slot).is_ok())
                .map(|r| (r.id, r.name.to_string()))
                .collect();
            roles.sort_by(|a, b| a.1.cmp(&b.1));
            let groups: Vec<&str> = who
                .and_then(|ix| self.groups_of.get(&ix))
                .into_iter()
                .flatten()
                .map(|g| self.name_of(*g))
                .collect();
            let reaches =
                |who: &IdentityId| who.as_str() == identity || groups.contains(&who.as_str());
            let mut pending: Vec<ChangeRequestId> = self
                .pending
                .iter()
                .filter(|(_, (role, who, scope))| {
                    reaches(who) && scope.covers(resource) && roles.iter().any(|(r, _)| r == role)
                })
                .map(|(id, _)| *id)
                .collect();
            pending.sort();
            decision.granting_roles = roles;
            decision.pending = pending;
            decision
                .elsewhere
                .sort_by(|a, b| (&a.scope, &a.role_name).cmp(&(&b.scope, &b.role_name)));
        } else {
            decision.elsewhere.clear();
        }
        decision
    }

    /// Which of `permissions` does `identity` lack on `resource` (empty: the tenant) at `now`?
    pub fn missing<'p>(
        &self,
        identity: &str,
        permissions: &[&'p str],
        resource: &str,
        now: DateTime<Utc>,
    ) -> Vec<&'p str> {
        // One check per permission: no allocation on the common path (the API's own
        // authorization runs this on every RPC, Check included).
        permissions
            .iter()
            .filter(|p| !self.check(identity, p, resource, now, false).allowed)
            .copied()
            .collect()
    }

    /// True when `identity` holds `permission` anywhere (at any scope) at `now`.
    pub fn holds_anywhere(&self, identity: &str, permission: &str, now: DateTime<Utc>) -> bool {
        if self.disabled {
            return false;
        }
        let Some(&slot) = self.slot_by_name.get(permission) else {
            return false;
        };
        let now = micros(now);
        let mut held = false;
        self.reaching(self.find_identity(identity), |at, entry, _| {
            held = self.grants(entry, slot) && self.live_at(at, entry, now);
            !held
        });
        held
    }

    /// The first `limit` scopes after `after` (if any), at or under `under`, where `identity`
    /// holds `permission` at `now`, sorted, each once: every scope of a grant inside `under`,
    /// and `under` itself when a grant at or above it covers it whole. `None` when the
    /// permission is unknown.
    pub fn granted_scopes(
        &self,
        identity: &str,
        permission: &str,
        under: &str,
        after: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Option<Vec<String>> {
        let slot = *self.slot_by_name.get(permission)?;
        if self.disabled || limit == 0 {
            return Some(Vec::new());
        }
        let now = micros(now);
        let mut out: Vec<&str> = Vec::new();
        self.reaching(self.find_identity(identity), |at, entry, _| {
            if self.grants(entry, slot) && self.live_at(at, entry, now) {
                let scope = self.scopes.name(entry.scope);
                let found = if covers(under, scope) {
                    scope
                } else if covers(scope, under) {
                    under
                } else {
                    return true;
                };
                if after.is_none_or(|after| found > after) {
                    out.push(found);
                }
            }
            true
        });
        Some(first_distinct(out, limit))
    }

    /// Permission name -> the roles through which `identity` holds it on `resource` (empty:
    /// the tenant), at `now`.
    pub fn effective_permissions(
        &self,
        identity: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, Vec<(RoleId, String)>> {
        let now = micros(now);
        let mut out: BTreeMap<String, Vec<(RoleId, String)>> = BTreeMap::new();
        if self.disabled {
            return out;
        }
        self.reaching(self.find_identity(identity), |at, entry, _| {
            let role = &self.roles[entry.role as usize];
            if !self.live_at(at, entry, now) || role.removed || !self.applies_to(entry, resource) {
                return true;
            }
            for slot in &role.slots {
                if let Some(Some(name)) = self.names.get(*slot as usize) {
                    let via = out.entry(name.to_string()).or_default();
                    if !via.iter().any(|(id, _)| *id == role.id) {
                        via.push((role.id, role.name.to_string()));
                    }
                }
            }
            true
        });
        for via in out.values_mut() {
            via.sort_by(|a, b| a.1.cmp(&b.1));
        }
        out
    }

    /// Every (permission, scope) `identity` holds a live grant of at `now` (dry-run impact).
    pub fn held_at(&self, identity: &str, now: DateTime<Utc>) -> BTreeSet<(String, String)> {
        let now = micros(now);
        let mut out = BTreeSet::new();
        if self.disabled {
            return out;
        }
        self.reaching(self.find_identity(identity), |at, entry, _| {
            let role = &self.roles[entry.role as usize];
            if role.removed || !self.live_at(at, entry, now) {
                return true;
            }
            for slot in &role.slots {
                if let Some(Some(name)) = self.names.get(*slot as usize) {
                    out.insert((name.to_string(), self.scopes.name(entry.scope).to_owned()));
                }
            }
            true
        });
        out
    }

    /// Everyone who holds `permission` on `resource` (empty: tenant-wide holders only) at
    /// `now`, sorted by identity, role, group then scope; `None` when the permission is
    /// unknown. Group holders are expanded to their members.
    pub fn holders(
        &self,
        permission: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> Option<Vec<Holder>> {
        let slot = *self.slot_by_name.get(permission)?;
        if self.disabled {
            return Some(Vec::new());
        }
        let now = micros(now);
        let mut out = Vec::new();
        for (at, entry) in (0u32..).zip(&self.assignments) {
            if entry.identity == NONE
                || !self.live_at(at, entry, now)
                || !self.grants(entry, slot)
                || !self.applies_to(entry, resource)
            {
                continue;
            }
            let role = &self.roles[entry.role as usize];
            let scope = Scope::from_validated(self.scopes.name(entry.scope));
            let holder = |identity: IdentityId, kind, group| Holder {
                identity,
                kind,
                role: role.id,
                role_name: role.name.to_string(),
                group,
                scope: scope.clone(),
            };
            let name = IdentityId::from_validated(self.name_of(entry.identity));
            if entry.kind == IdentityKind::Group {
                for member in self.members.get(&entry.identity).into_iter().flatten() {
                    let member = IdentityId::from_validated(self.name_of(*member));
                    out.push(holder(member, IdentityKind::User, Some(name.clone())));
                }
            } else {
                out.push(holder(name, entry.kind, None));
            }
        }
        out.sort_by(|a, b| {
            (&a.identity, &a.role_name, &a.group, &a.scope).cmp(&(
                &b.identity,
                &b.role_name,
                &b.group,
                &b.scope,
            ))
        });
        Some(out)
    }

    /// Every identity whose access `deltas` may change (dry-run impact).
    pub fn identities_reached_by(&self, deltas: &[Delta]) -> StdHashSet<IdentityId> {
        let mut out = StdHashSet::new();
        let add_assignees = |who: u32, out: &mut StdHashSet<IdentityId>| {
            for member in self.members.get(&who).into_iter().flatten() {
                out.insert(IdentityId::from_validated(self.name_of(*member)));
            }
            out.insert(IdentityId::from_validated(self.name_of(who)));
        };
        let live = || self.assignments.iter().filter(|a| a.identity != NONE);
        for delta in deltas {
            match delta {
                Delta::RolePut { id, .. } | Delta::RoleRemoved { id } => {
                    if let Some(&ix) = self.role_ix.get(id) {
                        let reached = self.roles_reaching(ix);
                        for entry in live().filter(|a| reached.contains(&a.role)) {
                            add_assignees(entry.identity, &mut out);
                        }
                    }
                }
                Delta::PermissionRemoved { id } => {
                    if let Some(&slot) = self.slot_by_id.get(id) {
                        for entry in live().filter(|a| self.grants(a, slot)) {
                            add_assignees(entry.identity, &mut out);
                        }
                    }
                }
                Delta::AssignmentPut { identity, .. } => {
                    out.insert(identity.clone());
                    if let Some(ix) = self.find_identity(identity.as_str()) {
                        add_assignees(ix, &mut out);
                    }
                }
                Delta::AssignmentRemoved { id } => {
                    if let Some(&at) = self.assignment_ix.get(id) {
                        add_assignees(self.assignments[at as usize].identity, &mut out);
                    }
                }
                Delta::GroupMembersAdded { members, .. }
                | Delta::GroupMembersRemoved { members, .. } => {
                    out.extend(members.iter().cloned());
                }
                Delta::GroupRemoved { group } => {
                    if let Some(ix) = self.find_identity(&IdentityId::from(*group).to_string()) {
                        add_assignees(ix, &mut out);
                    }
                }
                Delta::PermissionPut { .. }
                | Delta::PendingGrantPut { .. }
                | Delta::PendingGrantRemoved { .. }
                | Delta::TenantState { .. } => {}
            }
        }
        out
    }

    /// Gives back spare capacity once a snapshot is loaded.
    pub fn shrink_to_fit(&mut self) {
        self.scopes.shrink_to_fit();
        self.assignments.shrink_to_fit();
        self.identities.shrink_to_fit();
        self.arena.shrink_to_fit();
        self.assignment_ix.shrink_to_fit();
        self.identity_table.shrink_to_fit(|&ix| {
            let e = &self.identities[ix as usize];
            self.hasher
                .hash_one(&self.arena[e.name_at as usize..(e.name_at + e.name_len) as usize])
        });
    }

    /// Numbers for metrics and benchmarks.
    pub fn assignment_count(&self) -> usize {
        self.assignment_ix.len()
    }

    /// The index as the deltas that rebuild it, in the order a load from the database feeds
    /// them (permissions, roles, group members, assignments, pending grants, tenant state), for
    /// the local snapshot. Applying them to an empty index gives the same answers as this one.
    pub fn export(
        &self,
        emit: &mut dyn FnMut(Delta) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut permissions: Vec<(PermissionId, Slot)> = self
            .slot_by_id
            .iter()
            .map(|(id, slot)| (*id, *slot))
            .collect();
        permissions.sort_unstable_by_key(|(_, slot)| *slot);
        for (id, slot) in permissions {
            if let Some(Some(name)) = self.names.get(slot as usize) {
                emit(Delta::PermissionPut {
                    id,
                    name: name.to_string(),
                })?;
            }
        }
        for role in self.roles.iter().filter(|r| !r.removed) {
            emit(Delta::RolePut {
                id: role.id,
                name: role.name.to_string(),
                permissions: role.permission_ids.clone(),
                record: role.record.clone(),
                included: role.included.clone(),
            })?;
        }
        for (&group, members) in &self.members {
            let Ok(group) = GroupId::parse("group", self.name_of(group)) else {
                continue;
            };
            let mut list: Vec<IdentityId> = Vec::with_capacity(members.len());
            for &member in members {
                // Names in the index were validated when they came in.
                if let Ok(member) = IdentityId::parse("member", self.name_of(member)) {
                    list.push(member);
                }
            }
            list.sort_unstable();
            emit(Delta::GroupMembersAdded {
                group,
                members: list,
            })?;
        }
        for (at, entry) in self.assignments.iter().enumerate() {
            if entry.identity == NONE {
                continue;
            }
            let role = &self.roles[entry.role as usize];
            let Ok(identity) = IdentityId::parse("identity", self.name_of(entry.identity)) else {
                continue;
            };
            if role.removed {
                continue;
            }
            let expire_time = u32::try_from(at)
                .ok()
                .and_then(|at| self.expiries.get(&at))
                .and_then(|micros| DateTime::from_timestamp_micros(*micros));
            emit(Delta::AssignmentPut {
                id: entry.id,
                role: role.id,
                identity,
                kind: entry.kind,
                expire_time,
                scope: self.scopes.names[entry.scope as usize].clone(),
            })?;
        }
        for (id, (role, identity, scope)) in &self.pending {
            emit(Delta::PendingGrantPut {
                id: *id,
                role: *role,
                identity: identity.clone(),
                scope: scope.clone(),
            })?;
        }
        if self.disabled {
            emit(Delta::TenantState { disabled: true })?;
        }
        Ok(())
    }
}

/// The `limit` smallest distinct names of `names`, sorted. A page of a large listing selects
/// its page before sorting (linear, then `limit log limit`), so each page of an identity with
/// 10,000 grants costs about the same, and only the page is copied out.
fn first_distinct(mut names: Vec<&str>, limit: usize) -> Vec<String> {
    if names.len() > limit {
        names.select_nth_unstable(limit);
        let mut head: Vec<&str> = names[..limit].to_vec();
        head.sort_unstable();
        head.dedup();
        if head.len() == limit {
            return head.into_iter().map(str::to_owned).collect();
        }
        // Duplicates (one scope reached through several roles) took places in the page: the
        // rare case pays a full sort.
    }
    names.sort_unstable();
    names.dedup();
    names.truncate(limit);
    names.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {

    /// Every kind of content, for the export round trip.
    fn populated(now: DateTime<Utc>) -> (TenantIndex, GroupId) {
        let mut index = TenantIndex::default();
        let (read, write, gone) = (
            PermissionId::new(),
            PermissionId::new(),
            PermissionId::new(),
        );
        for (id, name) in [(read, "docs:read"), (write, "docs:write"), (gone, "old:x")] {
            index.apply(&Delta::PermissionPut {
                id,
                name: name.into(),
            });
        }
        index.apply(&Delta::PermissionRemoved { id: gone });
        let (reader, editor, removed) = (RoleId::new(), RoleId::new(), RoleId::new());
        index.apply(&Delta::RolePut {
            id: reader,
            name: "reader".into(),
            permissions: vec![read],
            record: None,
            included: Vec::new(),
        });
        index.apply(&Delta::RolePut {
            id: editor,
            name: "editor".into(),
            permissions: vec![write],
            record: None,
            included: vec![reader],
        });
        index.apply(&Delta::RolePut {
            id: removed,
            name: "gone".into(),
            permissions: vec![read],
            record: None,
            included: Vec::new(),
        });
        index.apply(&Delta::RoleRemoved { id: removed });
        let group = GroupId::new();
        index.apply(&Delta::GroupMembersAdded {
            group,
            members: vec![ident("gina"), ident("hal")],
        });
        let put = |role, who: &str, kind, expire_time, scope: &str| Delta::AssignmentPut {
            id: AssignmentId::new(),
            role,
            identity: ident(who),
            kind,
            expire_time,
            scope: Scope::parse("scope", scope).unwrap(),
        };
        index.apply(&put(editor, "alice", IdentityKind::User, None, ""));
        index.apply(&put(
            reader,
            "bob",
            IdentityKind::User,
            None,
            "departments/eng",
        ));
        index.apply(&put(
            reader,
            "carol",
            IdentityKind::User,
            Some(now + chrono::Duration::hours(1)),
            "",
        ));
        index.apply(&put(
            reader,
            "dave",
            IdentityKind::User,
            Some(now - chrono::Duration::hours(1)),
            "",
        ));
        index.apply(&put(
            editor,
            &IdentityId::from(group).to_string(),
            IdentityKind::Group,
            None,
            "departments/ops",
        ));
        let revoked = AssignmentId::new();
        index.apply(&Delta::AssignmentPut {
            id: revoked,
            role: reader,
            identity: ident("erin"),
            kind: IdentityKind::User,
            expire_time: None,
            scope: Scope::tenant(),
        });
        index.apply(&Delta::AssignmentRemoved { id: revoked });
        index.apply(&Delta::PendingGrantPut {
            id: ChangeRequestId::new(),
            role: editor,
            identity: ident("frank"),
            scope: Scope::parse("scope", "departments/eng").unwrap(),
        });
        (index, group)
    }

    fn exported(index: &TenantIndex) -> Vec<String> {
        let mut out = Vec::new();
        index
            .export(&mut |delta| {
                out.push(serde_json::to_string(&delta).unwrap());
                Ok(())
            })
            .unwrap();
        out.sort();
        out
    }

    #[test]
    fn an_exported_index_rebuilds_one_that_answers_the_same() {
        // Arrange
        let now = Utc::now();
        let (index, group) = populated(now);
        let deltas = exported(&index);

        // Act
        let mut rebuilt = TenantIndex::default();
        for line in &deltas {
            rebuilt.apply(&serde_json::from_str::<Delta>(line).unwrap());
        }

        // Assert: the same content, and the same answers.
        assert_eq!(exported(&rebuilt), deltas);
        assert!(
            !deltas
                .iter()
                .any(|d| d.contains("old:x") || d.contains("\"gone\""))
        );
        let members = IdentityId::from(group).to_string();
        for who in [
            "alice",
            "bob",
            "carol",
            "dave",
            "erin",
            "frank",
            "gina",
            "hal",
            members.as_str(),
        ] {
            for perm in ["docs:read", "docs:write", "old:x"] {
                for resource in [
                    "",
                    "departments/eng/x",
                    "departments/ops",
                    "departments/sales",
                ] {
                    let (a, b) = (
                        index.check(who, perm, resource, now, true),
                        rebuilt.check(who, perm, resource, now, true),
                    );
                    assert_eq!(a.allowed, b.allowed, "{who} {perm} {resource}");
                    assert_eq!(a.pending.len(), b.pending.len(), "{who} {perm} {resource}");
                    assert_eq!(a.expired.len(), b.expired.len(), "{who} {perm} {resource}");
                }
            }
            assert_eq!(index.held_at(who, now), rebuilt.held_at(who, now), "{who}");
        }
        assert!(
            rebuilt
                .check("gina", "docs:read", "departments/ops/a", now, false)
                .allowed
        );
        assert!(rebuilt.check("carol", "docs:read", "", now, false).allowed);
        assert!(!rebuilt.check("dave", "docs:read", "", now, false).allowed);
        assert!(!rebuilt.check("erin", "docs:read", "", now, false).allowed);
        assert_eq!(rebuilt.assignment_count(), index.assignment_count());
    }

    #[test]
    fn first_distinct_pages_past_duplicates() {
        let names = vec!["c", "a", "b", "a", "d", "b", "e"];
        assert_eq!(super::first_distinct(names.clone(), 2), ["a", "b"]);
        assert_eq!(
            super::first_distinct(names.clone(), 4),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            super::first_distinct(names.clone(), 10),
            ["a", "b", "c", "d", "e"]
        );
        let distinct: Vec<&str> = vec!["z", "y", "x", "w"];
        assert_eq!(super::first_distinct(distinct, 3), ["w", "x", "y"]);
    }

    use super::*;

    fn ident(s: &str) -> IdentityId {
        IdentityId::parse("id", s).unwrap()
    }

    #[test]
    fn a_disabled_tenant_grants_nothing_until_enabled_again() {
        // Arrange: alice holds docs:read.
        let mut index = TenantIndex::default();
        let (p, r) = (PermissionId::new(), RoleId::new());
        let now = Utc::now();
        index.apply(&Delta::PermissionPut {
            id: p,
            name: "docs:read".into(),
        });
        index.apply(&Delta::RolePut {
            id: r,
            name: "reader".into(),
            permissions: vec![p],
            record: None,
            included: Vec::new(),
        });
        index.apply(&Delta::AssignmentPut {
            id: AssignmentId::new(),
            role: r,
            identity: IdentityId::parse("identity", "alice").unwrap(),
            kind: IdentityKind::User,
            expire_time: None,
            scope: Scope::tenant(),
        });
        assert!(index.check("alice", "docs:read", "", now, false).allowed);

        // Act, assert
        index.apply(&Delta::TenantState { disabled: true });
        assert!(!index.check("alice", "docs:read", "", now, false).allowed);
        assert_eq!(
            index.missing("alice", &["docs:read"], "", now),
            ["docs:read"]
        );
        assert!(index.effective_permissions("alice", "", now).is_empty());
        index.apply(&Delta::TenantState { disabled: false });
        assert!(index.check("alice", "docs:read", "", now, false).allowed);
    }

    #[test]
    fn a_role_is_found_by_id_or_name_whole_and_one_without_a_record_is_left_to_the_database() {
        // Arrange
        let mut index = TenantIndex::default();
        let tenant = TenantId::parse("t").unwrap();
        let (p, q, r) = (PermissionId::new(), PermissionId::new(), RoleId::new());
        let now = Utc::now();
        let record = RoleRecord {
            description: "reads".into(),
            is_system: false,
            requires_approval: true,
            approval_policy: None,
            protected: false,
            create_time: now,
            update_time: now,
            revision: crate::domain::Revision(7),
        };
        for (id, name) in [(p, "docs:write"), (q, "docs:read")] {
            index.apply(&Delta::PermissionPut {
                id,
                name: name.into(),
            });
        }
        let put = |record: Option<Box<RoleRecord>>| Delta::RolePut {
            id: r,
            name: "reader".into(),
            permissions: vec![p, q],
            record,
            included: Vec::new(),
        };
        index.apply(&put(Some(Box::new(record.clone()))));

        // Act
        let by_id = index.role(&tenant, &RoleRef::Id(r));
        let by_name = index.role(&tenant, &RoleRef::Name("reader".into()));
        let other = index.role(&tenant, &RoleRef::Name("readers".into()));

        // Assert
        for found in [by_id, by_name] {
            let RoleLookup::Found(role) = found else {
                panic!("found: {found:?}");
            };
            assert_eq!(role.id, r);
            assert_eq!(
                role.permissions,
                ["docs:read", "docs:write"],
                "names, sorted"
            );
            assert_eq!(role.description, "reads");
            assert!(role.requires_approval);
            assert_eq!(role.revision, crate::domain::Revision(7));
        }
        assert!(matches!(other, RoleLookup::Absent));
        // An older release's RolePut carries no record: the database answers for that role.
        index.apply(&put(None));
        assert!(matches!(
            index.role(&tenant, &RoleRef::Id(r)),
            RoleLookup::NotIndexed
        ));
        index.apply(&Delta::RoleRemoved { id: r });
        assert!(matches!(
            index.role(&tenant, &RoleRef::Name("reader".into())),
            RoleLookup::Absent
        ));
    }

    #[test]
    fn assignments_grant_through_roles_and_groups_and_are_forgotten_cleanly() {
        // Arrange
        let mut index = TenantIndex::default();
        let (p, r, g) = (PermissionId::new(), RoleId::new(), GroupId::new());
        let (a1, a2) = (AssignmentId::new(), AssignmentId::new());
        let now = Utc::now();
        index.apply(&Delta::PermissionPut {
            id: p,
            name: "docs:read".into(),
        });
        index.apply(&Delta::RolePut {
            id: r,
            name: "reader".into(),
            permissions: vec![p],
            record: None,
            included: Vec::new(),
        });
        index.apply(&Delta::AssignmentPut {
            id: a1,
            role: r,
            identity: ident("alice"),
            kind: IdentityKind::User,
            expire_time: None,
            scope: Scope::tenant(),
        });
        index.apply(&Delta::GroupMembersAdded {
            group: g,
            members: vec![ident("bob"), ident("carol")],
        });
        index.apply(&Delta::AssignmentPut {
            id: a2,
            role: r,
            identity: IdentityId::from(g),
            kind: IdentityKind::Group,
            expire_time: Some(now + chrono::Duration::hours(1)),
            scope: Scope::tenant(),
        });
        // Act + Assert
        for who in ["alice", "bob", "carol"] {
            assert!(
                index.check(who, "docs:read", "", now, false).allowed,
                "{who}"
            );
        }
        assert!(
            !index
                .check(
                    "bob",
                    "docs:read",
                    "",
                    now + chrono::Duration::hours(1),
                    false
                )
                .allowed,
            "expired at its instant"
        );
        assert!(!index.check("dave", "docs:read", "", now, false).allowed);
        assert!(
            index
                .check("alice", "nope", "", now, false)
                .unknown_permission
        );
        index.apply(&Delta::GroupMembersRemoved {
            group: g,
            members: vec![ident("bob")],
        });
        assert!(!index.check("bob", "docs:read", "", now, false).allowed);
        index.apply(&Delta::AssignmentRemoved { id: a1 });
        assert!(!index.check("alice", "docs:read", "", now, false).allowed);
        assert!(
            index.find_identity("alice").is_none(),
            "an identity with nothing left is forgotten"
        );
        index.apply(&Delta::GroupRemoved { group: g });
        index.apply(&Delta::AssignmentRemoved { id: a2 });
        assert!(index.find_identity("carol").is_none());
        assert_eq!(index.assignment_count(), 0);
    }

    #[test]
    fn slots_and_names_are_reused_and_the_arena_compacts() {
        let mut index = TenantIndex::default();
        let (p, r) = (PermissionId::new(), RoleId::new());
        index.apply(&Delta::PermissionPut {
            id: p,
            name: "x".into(),
        });
        index.apply(&Delta::RolePut {
            id: r,
            name: "r".into(),
            permissions: vec![p],
            record: None,
            included: Vec::new(),
        });
        let now = Utc::now();
        for round in 0..3 {
            let ids: Vec<AssignmentId> = (0..5000).map(|_| AssignmentId::new()).collect();
            for (i, id) in ids.iter().enumerate() {
                let who = ident(&format!("user-{round}-{i:05}-padding-to-grow-the-arena"));
                index.apply(&Delta::AssignmentPut {
                    id: *id,
                    role: r,
                    identity: who,
                    kind: IdentityKind::User,
                    expire_time: None,
                    scope: Scope::tenant(),
                });
            }
            assert!(
                index
                    .check(
                        &format!("user-{round}-04999-padding-to-grow-the-arena"),
                        "x",
                        "",
                        now,
                        false
                    )
                    .allowed
            );
            for id in &ids {
                index.apply(&Delta::AssignmentRemoved { id: *id });
            }
        }
        assert_eq!(index.assignments.len(), 5000, "slab entries are reused");
        assert!(
            index.arena.len() < 5000 * 60,
            "the arena was compacted: {} bytes",
            index.arena.len()
        );
        let who = ident("late");
        index.apply(&Delta::AssignmentPut {
            id: AssignmentId::new(),
            role: r,
            identity: who,
            kind: IdentityKind::User,
            expire_time: None,
            scope: Scope::tenant(),
        });
        assert!(index.check("late", "x", "", now, false).allowed);
    }
}
