//! Configuration as code (issue 16, item 4): ApplyConfiguration makes a tenant match a document
//! in one transaction and one revision; ExportConfiguration writes the tenant as one.
//!
//! Applying is planning, then running the plan's steps as the commands the matching RPCs run
//! (each authorized, checked and audited as that RPC would be) inside one write: the approval
//! gate, no escalation and delegated scopes judge the whole as they would judge each change,
//! and a failing step leaves nothing behind. A document the tenant already matches plans no
//! step and is answered without a write, so export then apply takes no revision.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::assignments::RoleCache;
use super::{
    AddGroupMembers, AddPermissionsToRole, Applied, AssignResult, AssignRole, Command, CreateGroup,
    CreatePermission, CreateRole, DeleteGroup, DeletePermission, DeleteRole, Outcome,
    RemoveGroupMembers, RemovePermissionsFromRole, RevokeAssignment, Service, UpdatePermission,
    UpdateRole, WriteOptions,
};
use crate::domain::builtin::perm;
use crate::domain::configuration::{
    Configuration, ConfiguredAssignment, ConfiguredGroup, ConfiguredPermission, ConfiguredRole,
    Holder, PlanAction, PlanStep,
};
use crate::domain::{
    Caller, ChangeRequest, Error, GroupId, Identity, IdentityKind, Ref, Revision, RoleName,
};
use crate::store::{TenantState, WriteTx};

/// What reading a whole tenant needs (planning reads it all, as export does).
const READS: &[&str] = &[
    perm::PERMISSIONS_READ,
    perm::ROLES_READ,
    perm::GROUPS_READ,
    perm::ASSIGNMENTS_READ,
];

/// ApplyConfiguration, validated.
#[derive(Debug, Clone)]
pub struct ApplyConfiguration {
    pub configuration: Configuration,
    /// Delete what the document does not list.
    pub prune: bool,
}

/// What applying did: the plan, and the change requests filed for gated assignments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigurationApplied {
    pub plan: Vec<PlanStep>,
    pub change_requests: Vec<ChangeRequest>,
}

/// One step of a plan: the command the matching RPC would run.
enum Step {
    CreatePermission(CreatePermission),
    UpdatePermission(UpdatePermission),
    DeletePermission(DeletePermission),
    CreateRole(CreateRole),
    UpdateRole(UpdateRole),
    AddPermissions(AddPermissionsToRole),
    RemovePermissions(RemovePermissionsFromRole),
    DeleteRole(DeleteRole),
    /// Created groups' ids are known only once made: steps name groups.
    CreateGroup(CreateGroup),
    AddMembers(String, Vec<crate::domain::IdentityId>),
    RemoveMembers(String, Vec<crate::domain::IdentityId>),
    DeleteGroup(String),
    Assign(ConfiguredAssignment),
    Revoke(RevokeAssignment),
}

fn step(
    action: PlanAction,
    kind: &str,
    name: impl Into<String>,
    detail: impl Into<String>,
) -> PlanStep {
    PlanStep {
        action,
        kind: kind.to_owned(),
        name: name.into(),
        detail: detail.into(),
    }
}

fn assignment_name(a: &ConfiguredAssignment) -> String {
    let who = match &a.holder {
        Holder::Identity { id, .. } => id.to_string(),
        Holder::Group(name) => format!("group {name}"),
    };
    if a.scope.is_tenant() {
        format!("{} -> {who}", a.role)
    } else {
        format!("{} -> {who} on {}", a.role, a.scope)
    }
}

fn set_diff(want: &[String], have: &[String]) -> (Vec<String>, Vec<String>) {
    let want: BTreeSet<&String> = want.iter().collect();
    let have: BTreeSet<&String> = have.iter().collect();
    (
        want.difference(&have).map(|s| (*s).clone()).collect(),
        have.difference(&want).map(|s| (*s).clone()).collect(),
    )
}

fn changes(added: &[String], removed: &[String]) -> String {
    added
        .iter()
        .map(|a| format!("+{a}"))
        .chain(removed.iter().map(|r| format!("-{r}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tenant's assignments keyed as a document keys them.
fn configured_assignments(
    state: &TenantState,
) -> Vec<(ConfiguredAssignment, crate::domain::Assignment)> {
    let group_names: HashMap<String, String> = state
        .groups
        .iter()
        .map(|(g, _)| (g.id.to_string(), g.name.clone()))
        .collect();
    state
        .assignments
        .iter()
        .map(|a| {
            let holder = match (a.identity.kind, group_names.get(a.identity.id.as_str())) {
                (IdentityKind::Group, Some(name)) => Holder::Group(name.clone()),
                _ => Holder::Identity {
                    id: a.identity.id.clone(),
                    kind: a.identity.kind,
                },
            };
            (
                ConfiguredAssignment {
                    role: a.role_name.clone(),
                    holder,
                    scope: a.scope.clone(),
                    expire_time: a.expire_time,
                    reason: a.reason.clone(),
                },
                a.clone(),
            )
        })
        .collect()
}

/// The steps that make `state` match `doc`, in the order they can run.
fn plan(state: &TenantState, doc: &Configuration, prune: bool) -> Vec<(PlanStep, Step)> {
    let mut steps = Vec::new();
    // Permissions.
    let permissions: HashMap<&str, _> = state
        .permissions
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    for p in &doc.permissions {
        match permissions.get(p.name.as_str()) {
            None => steps.push((
                step(PlanAction::Create, "permission", p.name.as_str(), ""),
                Step::CreatePermission(CreatePermission {
                    name: p.name.clone(),
                    description: p.description.clone(),
                }),
            )),
            Some(have) if have.description != p.description => steps.push((
                step(
                    PlanAction::Update,
                    "permission",
                    p.name.as_str(),
                    "description",
                ),
                Step::UpdatePermission(UpdatePermission {
                    permission: Ref::Name(p.name.to_string()),
                    description: p.description.clone(),
                }),
            )),
            Some(_) => {}
        }
    }
    // Roles: created without inclusions (they may include each other), then included.
    let roles: HashMap<&str, _> = state.roles.iter().map(|r| (r.name.as_str(), r)).collect();
    let names = |v: &[String]| -> Vec<crate::domain::PermissionRef> {
        v.iter().map(|n| Ref::Name(n.clone())).collect()
    };
    for r in &doc.roles {
        let Some(have) = roles.get(r.name.as_str()) else {
            steps.push((
                step(
                    PlanAction::Create,
                    "role",
                    r.name.as_str(),
                    changes(&r.permissions, &[]),
                ),
                Step::CreateRole(CreateRole {
                    name: r.name.clone(),
                    description: r.description.clone(),
                    permissions: names(&r.permissions),
                    requires_approval: r.requires_approval || r.approval_policy.is_some(),
                    approval_policy: r.approval_policy.clone(),
                    protected: r.protected,
                    included_roles: Vec::new(),
                }),
            ));
            continue;
        };
        let record_differs = have.description != r.description
            || have.requires_approval != r.requires_approval
            || (r.requires_approval && have.approval_policy != r.approval_policy)
            || have.protected != r.protected;
        if record_differs {
            steps.push((
                step(
                    PlanAction::Update,
                    "role",
                    r.name.as_str(),
                    "description, approval or protection",
                ),
                Step::UpdateRole(UpdateRole {
                    role: Ref::Name(r.name.to_string()),
                    description: Some(r.description.clone()),
                    requires_approval: Some(r.requires_approval),
                    approval_policy: r.approval_policy.clone().filter(|_| r.requires_approval),
                    protected: Some(r.protected),
                    included_roles: None,
                    etag: None,
                }),
            ));
        }
        let (added, removed) = set_diff(&r.permissions, &have.permissions);
        if !added.is_empty() {
            steps.push((
                step(
                    PlanAction::Update,
                    "role",
                    r.name.as_str(),
                    changes(&added, &[]),
                ),
                Step::AddPermissions(AddPermissionsToRole {
                    role: Ref::Name(r.name.to_string()),
                    permissions: names(&added),
                }),
            ));
        }
        if !removed.is_empty() {
            steps.push((
                step(
                    PlanAction::Update,
                    "role",
                    r.name.as_str(),
                    changes(&[], &removed),
                ),
                Step::RemovePermissions(RemovePermissionsFromRole {
                    role: Ref::Name(r.name.to_string()),
                    permissions: names(&removed),
                }),
            ));
        }
    }
    for r in &doc.roles {
        let have: Vec<String> = roles
            .get(r.name.as_str())
            .map(|h| h.included_roles.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        let (added, removed) = set_diff(&r.included_roles, &have);
        if !added.is_empty() || !removed.is_empty() {
            steps.push((
                step(
                    PlanAction::Update,
                    "role",
                    r.name.as_str(),
                    format!("includes {}", changes(&added, &removed)),
                ),
                Step::UpdateRole(UpdateRole {
                    role: Ref::Name(r.name.to_string()),
                    description: None,
                    requires_approval: None,
                    approval_policy: None,
                    protected: None,
                    included_roles: Some(
                        r.included_roles
                            .iter()
                            .map(|n| Ref::Name(n.clone()))
                            .collect(),
                    ),
                    etag: None,
                }),
            ));
        }
    }
    // Groups and their members.
    let groups: HashMap<&str, _> = state
        .groups
        .iter()
        .map(|(g, members)| (g.name.as_str(), members))
        .collect();
    for g in &doc.groups {
        let have: &[crate::domain::IdentityId] = match groups.get(g.name.as_str()) {
            Some(members) => members,
            None => {
                steps.push((
                    step(PlanAction::Create, "group", g.name.as_str(), ""),
                    Step::CreateGroup(CreateGroup {
                        name: g.name.clone(),
                        description: g.description.clone(),
                    }),
                ));
                &[]
            }
        };
        let want: Vec<String> = g.members.iter().map(ToString::to_string).collect();
        let have: Vec<String> = have.iter().map(ToString::to_string).collect();
        let (added, removed) = set_diff(&want, &have);
        let ids = |v: &[String]| -> Vec<crate::domain::IdentityId> {
            v.iter()
                .filter_map(|m| {
                    g.members
                        .iter()
                        .find(|x| x.as_str() == m)
                        .cloned()
                        .or_else(|| crate::domain::IdentityId::parse("member", m).ok())
                })
                .collect()
        };
        if !added.is_empty() {
            steps.push((
                step(
                    PlanAction::Update,
                    "membership",
                    g.name.as_str(),
                    changes(&added, &[]),
                ),
                Step::AddMembers(g.name.as_str().to_owned(), ids(&added)),
            ));
        }
        if !removed.is_empty() {
            steps.push((
                step(
                    PlanAction::Update,
                    "membership",
                    g.name.as_str(),
                    changes(&[], &removed),
                ),
                Step::RemoveMembers(g.name.as_str().to_owned(), ids(&removed)),
            ));
        }
    }
    // Assignments: those to drop first, then those to make (a changed expiry is both).
    let current = configured_assignments(state);
    let wanted: HashMap<_, &ConfiguredAssignment> =
        doc.assignments.iter().map(|a| (a.key(), a)).collect();
    for (have, a) in &current {
        let replaced = wanted
            .get(&have.key())
            .is_some_and(|want| want.expire_time != have.expire_time);
        let unlisted = !wanted.contains_key(&have.key());
        if (replaced || (prune && unlisted)) && !a.is_immutable {
            steps.push((
                step(
                    if replaced {
                        PlanAction::Update
                    } else {
                        PlanAction::Delete
                    },
                    "assignment",
                    assignment_name(have),
                    if replaced {
                        "expiry changes: revoked, then assigned"
                    } else {
                        ""
                    },
                ),
                Step::Revoke(RevokeAssignment {
                    assignment: a.id,
                    reason: "configuration applied".into(),
                    force: false,
                    of_role: None,
                }),
            ));
        }
    }
    let current_keys: HashMap<_, _> = current
        .iter()
        .map(|(c, a)| (c.key(), (c.expire_time, a.is_immutable)))
        .collect();
    // A group holder's id, for matching pending requests (which name identities).
    let group_ids: HashMap<&str, String> = state
        .groups
        .iter()
        .map(|(g, _)| (g.name.as_str(), g.id.to_string()))
        .collect();
    let awaiting_approval = |a: &ConfiguredAssignment| {
        let who = match &a.holder {
            Holder::Identity { id, .. } => Some(id.to_string()),
            Holder::Group(name) => group_ids.get(name.as_str()).cloned(),
        };
        who.is_some_and(|who| {
            state
                .pending
                .iter()
                .any(|(role, id, scope)| *role == a.role && id.as_str() == who && *scope == a.scope)
        })
    };
    for want in &doc.assignments {
        let needed = match current_keys.get(&want.key()) {
            // Already requested and waiting for approval: applying again files nothing.
            None if awaiting_approval(want) => false,
            None => true,
            Some((expire, immutable)) => *expire != want.expire_time && !immutable,
        };
        if needed {
            steps.push((
                step(PlanAction::Create, "assignment", assignment_name(want), ""),
                Step::Assign(want.clone()),
            ));
        }
    }
    if prune {
        let listed_groups: BTreeSet<&str> = doc.groups.iter().map(|g| g.name.as_str()).collect();
        for (g, _) in &state.groups {
            if !listed_groups.contains(g.name.as_str()) {
                steps.push((
                    step(PlanAction::Delete, "group", g.name.as_str(), ""),
                    Step::DeleteGroup(g.name.clone()),
                ));
            }
        }
        // Roles including others go first, so none is deleted from under an includer.
        let listed_roles: BTreeSet<&str> = doc.roles.iter().map(|r| r.name.as_str()).collect();
        let mut doomed: Vec<&crate::domain::Role> = state
            .roles
            .iter()
            .filter(|r| !r.is_system && !listed_roles.contains(r.name.as_str()))
            .collect();
        while !doomed.is_empty() {
            let included: BTreeSet<crate::domain::RoleId> = doomed
                .iter()
                .flat_map(|r| r.included_roles.iter().map(|i| i.id))
                .collect();
            let (now, later): (Vec<_>, Vec<_>) =
                doomed.into_iter().partition(|r| !included.contains(&r.id));
            if now.is_empty() {
                // A cycle cannot be stored; stop rather than loop.
                break;
            }
            for r in now {
                steps.push((
                    step(PlanAction::Delete, "role", r.name.as_str(), ""),
                    Step::DeleteRole(DeleteRole {
                        role: Ref::Id(r.id),
                        force: true,
                    }),
                ));
            }
            doomed = later;
        }
        let listed: BTreeSet<&str> = doc.permissions.iter().map(|p| p.name.as_str()).collect();
        for p in &state.permissions {
            if !p.is_system && !listed.contains(p.name.as_str()) {
                steps.push((
                    step(PlanAction::Delete, "permission", p.name.as_str(), ""),
                    Step::DeletePermission(DeletePermission {
                        permission: Ref::Id(p.id),
                        force: true,
                    }),
                ));
            }
        }
    }
    steps
}

/// Runs `command` inside `tx` as its own RPC would: authorized, checked, applied.
async fn run<C: Command>(
    service: &Service,
    caller: &Caller,
    tx: &mut WriteTx,
    command: C,
) -> Result<C::Output, Error> {
    for permission in command.permissions() {
        if command.scoped() {
            service.authorize_somewhere(caller, permission)?;
        } else {
            service.authorize(caller, permission)?;
        }
    }
    command.check(service)?;
    Ok(command.apply(service, caller, tx).await?.value)
}

impl Command for ApplyConfiguration {
    type Output = ConfigurationApplied;

    fn permissions(&self) -> &'static [&'static str] {
        READS
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<ConfigurationApplied>, Error> {
        let state = tx.tenant_state().await?;
        let steps = plan(&state, &self.configuration, self.prune);
        let mut group_ids: HashMap<String, GroupId> = state
            .groups
            .iter()
            .map(|(g, _)| (g.name.clone(), g.id))
            .collect();
        let group_id = |ids: &HashMap<String, GroupId>, name: &str| {
            ids.get(name)
                .copied()
                .ok_or_else(|| Error::not_found("group", name.to_owned()))
        };
        let mut out = ConfigurationApplied::default();
        // The roles as this write sees them, for the assignment steps: read at its start, then
        // each role step's result (no round trip per assignment for its role).
        let mut roles = RoleCache::default();
        for role in &state.roles {
            roles.put(role.clone());
        }
        for (described, step) in steps {
            match step {
                Step::CreatePermission(c) => drop(run(service, caller, tx, c).await?),
                Step::UpdatePermission(c) => drop(run(service, caller, tx, c).await?),
                Step::DeletePermission(c) => {
                    run(service, caller, tx, c).await?;
                    roles = RoleCache::default();
                }
                Step::CreateRole(c) => roles.put(run(service, caller, tx, c).await?),
                Step::UpdateRole(c) => roles.put(run(service, caller, tx, c).await?),
                Step::AddPermissions(c) => roles.put(run(service, caller, tx, c).await?),
                Step::RemovePermissions(c) => roles.put(run(service, caller, tx, c).await?),
                Step::DeleteRole(c) => {
                    run(service, caller, tx, c).await?;
                    roles = RoleCache::default();
                }
                Step::CreateGroup(c) => {
                    let made = run(service, caller, tx, c).await?;
                    group_ids.insert(made.name.clone(), made.id);
                }
                Step::AddMembers(group, members) => {
                    let group = group_id(&group_ids, &group)?;
                    drop(run(service, caller, tx, AddGroupMembers { group, members }).await?);
                }
                Step::RemoveMembers(group, members) => {
                    let group = group_id(&group_ids, &group)?;
                    drop(run(service, caller, tx, RemoveGroupMembers { group, members }).await?);
                }
                Step::DeleteGroup(name) => {
                    let group = group_id(&group_ids, &name)?;
                    drop(run(service, caller, tx, DeleteGroup { group, force: true }).await?);
                }
                Step::Revoke(c) => {
                    if let AssignResult::Pending(cr) = run(service, caller, tx, c).await? {
                        out.change_requests.push(*cr);
                    }
                }
                Step::Assign(a) => {
                    let identity = match a.holder {
                        Holder::Identity { id, kind } => Identity { id, kind },
                        Holder::Group(name) => Identity {
                            id: group_id(&group_ids, &name)?.into(),
                            kind: IdentityKind::Group,
                        },
                    };
                    let command = AssignRole {
                        role: Ref::Name(a.role),
                        identity,
                        scope: a.scope,
                        expire_time: a.expire_time,
                        reason: a.reason,
                        force: false,
                    };
                    let result = command.run_within(service, caller, tx, &mut roles).await?;
                    if let AssignResult::Pending(cr) = result {
                        out.change_requests.push(*cr);
                    }
                }
            }
            out.plan.push(described);
        }
        let count = out.plan.len();
        Ok(Applied::new(
            "configuration.applied",
            format!("{count} changes"),
            out,
        ))
    }
}

impl Service {
    /// ApplyConfiguration: planned first from the tenant as it is, so a document it already
    /// matches is answered without a write (and takes no revision); otherwise planned again and
    /// run inside one write.
    pub async fn apply_configuration(
        &self,
        caller: &Caller,
        opts: WriteOptions,
        command: ApplyConfiguration,
    ) -> Result<Outcome<ConfigurationApplied>, Error> {
        for permission in READS {
            self.authorize(caller, permission)?;
        }
        // A retry of an applied document answers as the first call did (the no-op check below
        // would otherwise answer it "unchanged").
        if let Some(key) = opts.idempotency.as_ref().filter(|_| !opts.dry_run)
            && let Some(first) = self.replay(caller, key).await?
        {
            return Ok(first);
        }
        let revision = self.engine.applied_revision(&caller.tenant);
        let state = self.store.tenant_state(&caller.tenant).await?;
        if plan(&state, &command.configuration, command.prune).is_empty() {
            return Ok(Outcome {
                value: ConfigurationApplied::default(),
                revision,
                impact: opts.dry_run.then(crate::domain::Impact::default),
            });
        }
        self.write(caller, opts, command).await
    }

    /// The tenant as a document: its own permissions and roles (not Warden's), its groups with
    /// their members, and every assignment (system roles' included), sorted.
    pub async fn export_configuration(
        &self,
        caller: &Caller,
    ) -> Result<(Configuration, Revision), Error> {
        for permission in READS {
            self.authorize(caller, permission)?;
        }
        let revision = self.engine.applied_revision(&caller.tenant);
        let state = self.store.tenant_state(&caller.tenant).await?;
        let mut doc = Configuration {
            permissions: state
                .permissions
                .iter()
                .filter(|p| !p.is_system)
                .filter_map(|p| {
                    Some(ConfiguredPermission {
                        name: crate::domain::PermissionName::parse("name", &p.name).ok()?,
                        description: p.description.clone(),
                    })
                })
                .collect(),
            roles: state
                .roles
                .iter()
                .filter(|r| !r.is_system)
                .filter_map(|r| {
                    let mut included: Vec<String> =
                        r.included_roles.iter().map(|i| i.name.clone()).collect();
                    included.sort();
                    Some(ConfiguredRole {
                        name: RoleName::parse("name", &r.name).ok()?,
                        description: r.description.clone(),
                        permissions: r.permissions.clone(),
                        included_roles: included,
                        requires_approval: r.requires_approval,
                        approval_policy: r.approval_policy.clone().filter(|_| r.requires_approval),
                        protected: r.protected,
                    })
                })
                .collect(),
            groups: state
                .groups
                .iter()
                .filter_map(|(g, members)| {
                    Some(ConfiguredGroup {
                        name: crate::domain::GroupName::parse("name", &g.name).ok()?,
                        description: g.description.clone(),
                        members: members.clone(),
                    })
                })
                .collect(),
            assignments: configured_assignments(&state)
                .into_iter()
                .map(|(a, _)| a)
                .collect(),
        };
        doc.assignments.sort_by_key(ConfiguredAssignment::key);
        Ok((doc, revision))
    }
}
