//! Assignments (API rules 4, 5, 10 and no escalation): Dfns's assign and revoke, filing a
//! change request when the role requires approval.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::paging::page;
use super::snapshot;
use super::{Applied, Command, PageRequest, Service};
use crate::domain::builtin::perm;
use crate::domain::{
    ApprovalKind, ApprovalPolicy, Assignment, AssignmentId, AuditRecord, Caller, ChangeRequest,
    ChangeRequestId, ChangeRequestKind, ChangeRequestStatus, Delta, Error, Identity, IdentityId,
    IdentityKind, Page, Reason, Ref, Role, RoleRef, Scope,
};
use crate::engine::RoleLookup;
use crate::store::WriteTx;
use crate::store::assignment_key;

/// AssignRole, validated.
#[derive(Debug, Clone)]
pub struct AssignRole {
    pub role: RoleRef,
    pub identity: Identity,
    /// Where the role applies (the tenant when empty).
    pub scope: Scope,
    pub expire_time: Option<DateTime<Utc>>,
    pub reason: String,
    pub force: bool,
}

/// Dfns's 200 or 202.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum AssignResult {
    Assignment(Assignment),
    Pending(Box<ChangeRequest>),
}

/// RevokeAssignment, validated.
#[derive(Debug, Clone)]
pub struct RevokeAssignment {
    pub assignment: AssignmentId,
    pub reason: String,
    pub force: bool,
    /// When set, the assignment must be of this role, else it is NOT_FOUND (a route such as
    /// `/v1/roles/{role}/assignments/{id}` names both).
    pub of_role: Option<RoleRef>,
}

/// Removes an expired assignment that a new one of the same role replaces.
pub(super) async fn remove_expired(tx: &mut WriteTx, expired: &Assignment) -> Result<(), Error> {
    tx.delete_assignment(expired.id).await?;
    tx.record(Delta::AssignmentRemoved { id: expired.id });
    tx.audit(AuditRecord {
        target_kind: "assignment",
        target_id: expired.id.to_string(),
        before: snapshot(expired),
        after: None,
        reason: "replaced after expiry".into(),
    });
    Ok(())
}

pub(super) fn put_delta(a: &Assignment) -> Delta {
    Delta::AssignmentPut {
        id: a.id,
        role: a.role_id,
        identity: a.identity.id.clone(),
        kind: a.identity.kind,
        expire_time: a.expire_time,
        scope: a.scope.clone(),
    }
}

impl Command for AssignRole {
    type Output = AssignResult;

    fn permissions(&self) -> &'static [&'static str] {
        if self.force {
            &[perm::ASSIGNMENTS_WRITE, perm::APPROVALS_BYPASS]
        } else {
            &[perm::ASSIGNMENTS_WRITE]
        }
    }

    fn scoped(&self) -> bool {
        true
    }

    fn check(&self, service: &Service) -> Result<(), Error> {
        self.check_item(service)
    }

    fn copy(&self) -> Option<Self> {
        Some(self.clone())
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<AssignResult>, Error> {
        self.assign(service, caller, tx, &mut RoleCache::default())
            .await
    }
}

/// The roles a write has read so far, and what each grants with its inclusions: a batch (or a
/// configuration) naming one role a thousand times reads it once. Valid while the write changes
/// no role (assignments never do; ApplyConfiguration makes its role changes first).
#[derive(Default)]
pub(super) struct RoleCache {
    roles: HashMap<RoleRef, Role>,
    granted: HashMap<crate::domain::RoleId, Vec<String>>,
}

impl RoleCache {
    /// Notes `role` as the write now sees it (a configuration's own role changes, and the roles
    /// it read at its start); forgets what any role grants, which may have changed with it.
    pub(super) fn put(&mut self, role: Role) {
        self.granted.clear();
        self.roles.insert(RoleRef::Id(role.id), role.clone());
        self.roles.insert(RoleRef::Name(role.name.clone()), role);
    }

    /// What `role` grants, its included roles' permissions with it.
    async fn granted(&mut self, tx: &WriteTx, role: &Role) -> Result<&[String], Error> {
        if let std::collections::hash_map::Entry::Vacant(entry) = self.granted.entry(role.id) {
            entry.insert(permissions_granted_by(tx, role).await?);
        }
        Ok(self
            .granted
            .get(&role.id)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    /// The role from the index when it is at exactly the revision the write sees (no round
    /// trip), else from the database.
    async fn get(&mut self, service: &Service, tx: &WriteTx, r: &RoleRef) -> Result<Role, Error> {
        if let Some(role) = self.roles.get(r) {
            return Ok(role.clone());
        }
        let indexed = match tx.roles_as_of() {
            Some(at) => match service.engine.role(tx.tenant(), r) {
                (RoleLookup::Found(role), revision) if revision == at => Some(Some(*role)),
                (RoleLookup::Absent, revision) if revision == at => Some(None),
                _ => None,
            },
            None => None,
        };
        let found = match indexed {
            Some(found) => found,
            None => tx.find_role(r).await?,
        };
        let role = found.ok_or_else(|| Error::not_found("role", r.key()))?;
        self.roles.insert(r.clone(), role.clone());
        Ok(role)
    }
}

impl AssignRole {
    /// The command run inside a larger write (ApplyConfiguration) as its own RPC would run it,
    /// authorized and checked, sharing that write's role reads.
    pub(super) async fn run_within(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
        roles: &mut RoleCache,
    ) -> Result<AssignResult, Error> {
        for permission in self.permissions() {
            service.authorize_somewhere(caller, permission)?;
        }
        self.check_item(service)?;
        Ok(self.assign(service, caller, tx, roles).await?.value)
    }

    fn check_item(&self, service: &Service) -> Result<(), Error> {
        if self.expire_time.is_some_and(|t| t <= service.now()) {
            return Err(Error::invalid("expire_time", "must be in the future"));
        }
        Ok(())
    }

    /// One assignment (or change request) inside `tx`: AssignRole's whole effect, shared with
    /// BatchAssignRoles.
    async fn assign(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
        roles: &mut RoleCache,
    ) -> Result<Applied<AssignResult>, Error> {
        // Delegated administration: the write is judged where it applies.
        service.authorize_at(caller, perm::ASSIGNMENTS_WRITE, &self.scope)?;
        if self.force {
            service.authorize_at(caller, perm::APPROVALS_BYPASS, &self.scope)?;
        }
        let role = roles.get(service, tx, &self.role).await?;
        let granted: Vec<&str> = roles
            .granted(tx, &role)
            .await?
            .iter()
            .map(String::as_str)
            .collect();
        service.ensure_may_grant_at(caller, &granted, &self.scope)?;
        if self.identity.kind == IdentityKind::Group {
            service.ensure_group_exists(tx, &self.identity.id).await?;
        }
        service.ensure_one_kind(tx, &self.identity).await?;
        // The index at the write's own revision knows when there is nothing to look for,
        // unless a pending change (an earlier write of the batch, or item of this one) assigned
        // the pair.
        let surely_new = tx.assignments_as_of().is_some_and(|at| {
            !tx.pending().any(|d| {
                matches!(d, Delta::AssignmentPut { role: r, identity, scope, .. }
                    if *r == role.id && *identity == self.identity.id && *scope == self.scope)
            }) && service.engine.has_assignment(
                tx.tenant(),
                role.id,
                self.identity.id.as_str(),
                self.scope.as_str(),
            ) == (false, at)
        });
        let existing = if surely_new {
            None
        } else {
            tx.find_assignment_of(role.id, &self.identity.id, &self.scope)
                .await?
        };
        if let Some(existing) = &existing
            && existing.expire_time.is_none_or(|t| tx.now < t)
        {
            return Err(Error::AlreadyExists {
                kind: "assignment",
                key: assignment_key(&role.name, &self.identity.id, &self.scope),
                existing_id: Some(existing.id.to_string()),
            });
        }
        let needs_approval = if self.force {
            None
        } else {
            service.approval_needed(tx, &role, ApprovalKind::Assign)
        };
        if let Some(policy) = needs_approval {
            if let Some(pending) = tx
                .pending_request_for(
                    ChangeRequestKind::Assign,
                    role.id,
                    &self.identity.id,
                    &self.scope,
                )
                .await?
            {
                return Err(Error::AlreadyExists {
                    kind: "change request",
                    key: assignment_key(&role.name, &self.identity.id, &self.scope),
                    existing_id: Some(pending.id.to_string()),
                });
            }
            let identity = self.identity.id.clone();
            let mut cr = service.new_request(
                tx,
                caller,
                ChangeRequestKind::Assign,
                &role,
                Some(self.identity),
                self.expire_time,
                None,
                self.reason,
            );
            cr.policy = policy;
            cr.scope = self.scope.clone();
            tx.insert_change_request(&cr).await?;
            tx.record(Delta::PendingGrantPut {
                id: cr.id,
                role: role.id,
                identity,
                scope: self.scope,
            });
            tx.audit(AuditRecord {
                target_kind: "change_request",
                target_id: cr.id.to_string(),
                before: None,
                after: snapshot(&cr),
                reason: cr.reason.clone(),
            });
            return Ok(Applied::new(
                "change_request.filed",
                cr.id,
                AssignResult::Pending(Box::new(cr)),
            ));
        }
        if let Some(expired) = existing {
            remove_expired(tx, &expired).await?;
        }
        let a = Assignment {
            id: AssignmentId::new(),
            tenant: caller.tenant.clone(),
            role_id: role.id,
            role_name: role.name.clone(),
            identity: self.identity,
            scope: self.scope,
            is_immutable: false,
            expire_time: self.expire_time,
            reason: self.reason,
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
            reason: a.reason.clone(),
        });
        Ok(Applied::new(
            "assignment.created",
            a.id,
            AssignResult::Assignment(a),
        ))
    }
}

impl Command for RevokeAssignment {
    type Output = AssignResult;

    fn permissions(&self) -> &'static [&'static str] {
        if self.force {
            &[perm::ASSIGNMENTS_WRITE, perm::APPROVALS_BYPASS]
        } else {
            &[perm::ASSIGNMENTS_WRITE]
        }
    }

    fn scoped(&self) -> bool {
        true
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<AssignResult>, Error> {
        self.revoke(service, caller, tx, &mut RoleCache::default())
            .await
    }
}

impl RevokeAssignment {
    /// One revocation (or change request) inside `tx`, shared with BatchRevokeAssignments.
    async fn revoke(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
        roles: &mut RoleCache,
    ) -> Result<Applied<AssignResult>, Error> {
        let RevokeAssignment {
            assignment: id,
            reason,
            force,
            of_role,
        } = self;
        let a = tx
            .find_assignment(id)
            .await?
            .ok_or_else(|| Error::not_found("assignment", id.to_string()))?;
        if let Some(wanted) = &of_role {
            let matches = match wanted {
                Ref::Id(role) => *role == a.role_id,
                Ref::Name(name) => {
                    roles
                        .get(service, tx, &Ref::Id(a.role_id))
                        .await?
                        .name
                        .as_str()
                        == name
                }
            };
            if !matches {
                return Err(Error::not_found("assignment", id.to_string()));
            }
        }
        if a.is_immutable {
            return Err(Error::precondition(
                Reason::AssignmentImmutable,
                format!("assignment {id} is immutable"),
            )
            .with_meta("assignment_id", id.to_string()));
        }
        service.authorize_at(caller, perm::ASSIGNMENTS_WRITE, &a.scope)?;
        if force {
            service.authorize_at(caller, perm::APPROVALS_BYPASS, &a.scope)?;
        }
        let role = roles.get(service, tx, &Ref::Id(a.role_id)).await?;
        service
            .ensure_may_hold_out_at(tx, caller, &role, &a.scope)
            .await?;
        let needs_approval = if force {
            None
        } else {
            service.approval_needed(tx, &role, ApprovalKind::Revoke)
        };
        if let Some(policy) = needs_approval {
            if let Some(pending) = tx
                .pending_request_for(ChangeRequestKind::Revoke, role.id, &a.identity.id, &a.scope)
                .await?
            {
                return Err(Error::AlreadyExists {
                    kind: "change request",
                    key: format!("revoke {id}"),
                    existing_id: Some(pending.id.to_string()),
                });
            }
            let mut cr = service.new_request(
                tx,
                caller,
                ChangeRequestKind::Revoke,
                &role,
                Some(a.identity.clone()),
                None,
                Some(a.id),
                reason,
            );
            cr.policy = policy;
            cr.scope = a.scope.clone();
            tx.insert_change_request(&cr).await?;
            tx.audit(AuditRecord {
                target_kind: "change_request",
                target_id: cr.id.to_string(),
                before: None,
                after: snapshot(&cr),
                reason: cr.reason.clone(),
            });
            return Ok(Applied::new(
                "change_request.filed",
                cr.id,
                AssignResult::Pending(Box::new(cr)),
            ));
        }
        tx.delete_assignment(a.id).await?;
        tx.record(Delta::AssignmentRemoved { id: a.id });
        tx.audit(AuditRecord {
            target_kind: "assignment",
            target_id: a.id.to_string(),
            before: snapshot(&a),
            after: None,
            reason,
        });
        Ok(Applied::new(
            "assignment.revoked",
            a.id,
            AssignResult::Assignment(a),
        ))
    }
}

/// The most items one batch write takes.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// BatchAssignRoles, validated: up to `MAX_BATCH_ITEMS` assignments, all or nothing, as one
/// revision with one audit event per item.
#[derive(Debug, Clone)]
pub struct BatchAssignRoles {
    pub items: Vec<AssignRole>,
}

/// BatchRevokeAssignments, validated.
#[derive(Debug, Clone)]
pub struct BatchRevokeAssignments {
    pub items: Vec<RevokeAssignment>,
}

/// One item of a batch write: AssignRole's or RevokeAssignment's whole effect.
trait BatchItem: Send {
    fn apply_item(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
        roles: &mut RoleCache,
    ) -> impl std::future::Future<Output = Result<Applied<AssignResult>, Error>> + Send;
}

impl BatchItem for AssignRole {
    async fn apply_item(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
        roles: &mut RoleCache,
    ) -> Result<Applied<AssignResult>, Error> {
        self.assign(service, caller, tx, roles).await
    }
}

impl BatchItem for RevokeAssignment {
    async fn apply_item(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
        roles: &mut RoleCache,
    ) -> Result<Applied<AssignResult>, Error> {
        self.revoke(service, caller, tx, roles).await
    }
}

/// Applies `items` in order inside `tx`, all or nothing, as one change-log entry of `kind`; a
/// failing item fails the batch, named by its index.
async fn apply_each<I: BatchItem>(
    items: Vec<I>,
    kind: &'static str,
    service: &Service,
    caller: &Caller,
    tx: &mut WriteTx,
) -> Result<Applied<Vec<AssignResult>>, Error> {
    let count = items.len();
    let mut roles = RoleCache::default();
    let mut results = Vec::with_capacity(count);
    for (index, item) in items.into_iter().enumerate() {
        let applied = item
            .apply_item(service, caller, tx, &mut roles)
            .await
            .map_err(|e| e.in_item(index))?;
        results.push(applied.value);
    }
    Ok(Applied::new(kind, format!("{count} items"), results))
}

/// What a batch needs: `assignments:write`, and `approvals:bypass` when any item forces.
fn batch_permissions(forced: bool) -> &'static [&'static str] {
    if forced {
        &[perm::ASSIGNMENTS_WRITE, perm::APPROVALS_BYPASS]
    } else {
        &[perm::ASSIGNMENTS_WRITE]
    }
}

impl Command for BatchAssignRoles {
    type Output = Vec<AssignResult>;

    fn permissions(&self) -> &'static [&'static str] {
        batch_permissions(self.items.iter().any(|i| i.force))
    }

    fn scoped(&self) -> bool {
        true
    }

    fn check(&self, service: &Service) -> Result<(), Error> {
        for (index, item) in self.items.iter().enumerate() {
            item.check_item(service).map_err(|e| e.in_item(index))?;
        }
        Ok(())
    }

    fn copy(&self) -> Option<Self> {
        Some(self.clone())
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Vec<AssignResult>>, Error> {
        apply_each(
            self.items,
            "assignments.batch_assigned",
            service,
            caller,
            tx,
        )
        .await
    }
}

impl Command for BatchRevokeAssignments {
    type Output = Vec<AssignResult>;

    fn permissions(&self) -> &'static [&'static str] {
        batch_permissions(self.items.iter().any(|i| i.force))
    }

    fn scoped(&self) -> bool {
        true
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Vec<AssignResult>>, Error> {
        apply_each(self.items, "assignments.batch_revoked", service, caller, tx).await
    }
}

impl Service {
    pub async fn get_assignment(
        &self,
        caller: &Caller,
        id: AssignmentId,
    ) -> Result<Assignment, Error> {
        self.authorize_somewhere(caller, perm::ASSIGNMENTS_READ)?;
        let not_found = || Error::not_found("assignment", id.to_string());
        let a = self
            .store
            .find_assignment(&caller.tenant, id)
            .await?
            .ok_or_else(not_found)?;
        // A delegated admin sees only what lies in its scopes, and learns nothing of the rest.
        self.authorize_at(caller, perm::ASSIGNMENTS_READ, &a.scope)
            .map_err(|_| not_found())?;
        Ok(a)
    }

    pub async fn list_assignments(
        &self,
        caller: &Caller,
        role: Option<&RoleRef>,
        identity: Option<&IdentityId>,
        paging: &PageRequest,
    ) -> Result<Page<Assignment>, Error> {
        self.authorize_somewhere(caller, perm::ASSIGNMENTS_READ)?;
        // Only what the caller may read: everything with a tenant-wide grant, else what lies
        // at or under the scopes it holds `assignments:read` at.
        let (readable, _) = self.engine.granted_scopes(
            &caller.tenant,
            caller.subject.as_str(),
            perm::ASSIGNMENTS_READ,
            "",
            None,
            usize::MAX,
            self.now(),
        );
        let readable: Option<Vec<Scope>> = readable
            .filter(|scopes| !scopes.iter().any(String::is_empty))
            .map(|scopes| scopes.into_iter().map(Scope::from_validated).collect());
        let role_id = match role {
            Some(r) => Some(
                self.store
                    .find_role(&caller.tenant, r)
                    .await?
                    .ok_or_else(|| Error::not_found("role", r.key()))?
                    .id,
            ),
            None => None,
        };
        // The readable scopes are part of the page's binding: a token is not valid for a
        // caller whose reach changed.
        let filters = format!(
            "role={};identity={};within={}",
            role_id.map(|r| r.to_string()).unwrap_or_default(),
            identity.map(IdentityId::as_str).unwrap_or_default(),
            readable
                .as_ref()
                .map(|s| s.iter().map(Scope::as_str).collect::<Vec<_>>().join(","))
                .unwrap_or_default()
        );
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self
            .store
            .list_assignments(
                &caller.tenant,
                role_id,
                identity,
                readable.as_deref(),
                &query,
            )
            .await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            |a| a.id.to_string(),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_request(
        &self,
        tx: &WriteTx,
        caller: &Caller,
        kind: ChangeRequestKind,
        role: &Role,
        identity: Option<Identity>,
        expire: Option<DateTime<Utc>>,
        assignment: Option<AssignmentId>,
        reason: String,
    ) -> ChangeRequest {
        let policy = role.gate().unwrap_or_default();
        let ttl = match policy.expire_after_seconds {
            Some(seconds) => {
                chrono::Duration::seconds(i64::try_from(seconds.min(366 * 86_400)).unwrap_or(0))
            }
            None => chrono::Duration::from_std(self.settings.approval_ttl)
                .unwrap_or(chrono::Duration::days(7)),
        };
        ChangeRequest {
            id: ChangeRequestId::new(),
            tenant: caller.tenant.clone(),
            kind,
            role_id: role.id,
            role_name: role.name.clone(),
            identity,
            assignment_expire_time: expire,
            scope: Scope::tenant(),
            assignment_id: assignment,
            reason,
            requester: caller.subject.to_string(),
            status: ChangeRequestStatus::Pending,
            decided_by: String::new(),
            decision_comment: String::new(),
            failure_reason: String::new(),
            resulting_assignment_id: None,
            create_time: tx.now,
            update_time: tx.now,
            expire_time: tx.now + ttl,
            revision: tx.revision,
            policy,
            approvals: Vec::new(),
            proposed_change: None,
        }
    }

    /// The approval policy giving (or taking away) `role` needs, if any: the strictest (highest
    /// quorum) of its own, when it covers `kind`, and those of the roles whose policy gates a
    /// permission it grants. Read from the index; where it lags the write, the approval gate
    /// after the write still refuses what this missed.
    pub(super) fn approval_needed(
        &self,
        tx: &WriteTx,
        role: &Role,
        kind: ApprovalKind,
    ) -> Option<ApprovalPolicy> {
        let own = role.gate().filter(|p| p.covers(kind));
        let (others, _) = self.engine.read_tenant(tx.tenant(), |index| {
            index.map_or_else(Vec::new, |index| index.policies_gating(role.id, kind))
        });
        own.into_iter()
            .chain(others)
            .max_by_key(ApprovalPolicy::quorum)
    }

    /// No escalation for assignments: handing out (or taking away) a role at `scope` needs
    /// every permission it grants (through its included roles too) there, even when assigning
    /// it to oneself.
    pub(super) async fn ensure_may_hold_out_at(
        &self,
        tx: &WriteTx,
        caller: &Caller,
        role: &Role,
        scope: &Scope,
    ) -> Result<(), Error> {
        let granted = permissions_granted_by(tx, role).await?;
        let names: Vec<&str> = granted.iter().map(String::as_str).collect();
        self.ensure_may_grant_at(caller, &names, scope)
    }

    /// An id names one identity: one assigned as a USER cannot be assigned as a
    /// SERVICE_ACCOUNT (FAILED_PRECONDITION `IDENTITY_KIND_MISMATCH`), or decisions about "alice"
    /// would mix two principals.
    pub(super) async fn ensure_one_kind(&self, tx: &WriteTx, who: &Identity) -> Result<(), Error> {
        let pending = tx.pending().find_map(|d| match d {
            Delta::AssignmentPut { identity, kind, .. } if *identity == who.id => Some(*kind),
            _ => None,
        });
        // A pending removal may have taken the identity's last assignment: ask the database.
        let removals_pending = tx
            .pending()
            .any(|d| matches!(d, Delta::AssignmentRemoved { .. }));
        let (indexed, revision) = self.engine.identity_kind(tx.tenant(), who.id.as_str());
        let held_as = if removals_pending || tx.assignments_as_of() != Some(revision) {
            tx.identity_kind_of(&who.id).await?
        } else {
            pending.or(indexed)
        };
        match held_as {
            Some(kind) if kind != who.kind => Err(Error::precondition(
                Reason::IdentityKindMismatch,
                format!(
                    "identity '{}' is a {}, not a {}",
                    who.id,
                    kind.as_str(),
                    who.kind.as_str()
                ),
            )
            .with_meta("identity_id", who.id.to_string())
            .with_meta("kind", kind.as_str())),
            _ => Ok(()),
        }
    }

    pub(super) async fn ensure_group_exists(
        &self,
        tx: &WriteTx,
        id: &IdentityId,
    ) -> Result<(), Error> {
        let group = crate::domain::GroupId::parse("identity.id", id.as_str())?;
        if tx.find_group(group).await?.is_none() {
            return Err(Error::not_found("group", id.to_string()));
        }
        Ok(())
    }
}

/// The names of every permission `role` grants, its included roles' (transitively) with its
/// own, as the write's transaction sees them (not the index, which may lag another replica's
/// change to an included role).
pub(super) async fn permissions_granted_by(
    tx: &WriteTx,
    role: &Role,
) -> Result<Vec<String>, Error> {
    let mut names = role.permissions.clone();
    if role.included_roles.is_empty() {
        return Ok(names);
    }
    let graph = tx.inclusion_graph().await?;
    let mut seen: std::collections::HashSet<crate::domain::RoleId> =
        std::collections::HashSet::from([role.id]);
    let mut next: Vec<crate::domain::RoleId> = role.included_roles.iter().map(|r| r.id).collect();
    while let Some(r) = next.pop() {
        if !seen.insert(r) {
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
    Ok(names)
}
