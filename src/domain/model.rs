//! The records Warden keeps, as the service layer sees them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{
    AssignmentId, ChangeRequestId, GroupId, IdentityId, PermissionId, Revision, RoleId, TenantId,
};

pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Permission {
    pub id: PermissionId,
    pub tenant: TenantId,
    pub name: String,
    pub description: String,
    pub is_system: bool,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub revision: Revision,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub id: RoleId,
    pub tenant: TenantId,
    pub name: String,
    pub description: String,
    pub is_system: bool,
    pub requires_approval: bool,
    /// Who approves and how many, when `requires_approval` (none: the default policy).
    pub approval_policy: Option<ApprovalPolicy>,
    /// A tenant's own protected role: changed or deleted only with `warden:roles:protect`.
    pub protected: bool,
    /// Names of the granted permissions, sorted.
    pub permissions: Vec<String>,
    /// The roles this one includes (composite role): it grants their permissions too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_roles: Vec<RoleSummary>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub revision: Revision,
}

/// A role by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSummary {
    pub id: RoleId,
    pub name: String,
}

impl Role {
    /// Changes whenever the role does: its revision, which every change stamps.
    pub fn etag(&self) -> String {
        format!("r{}", self.revision.0)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdentityKind {
    #[default]
    User,
    ServiceAccount,
    Pat,
    Group,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::User => "USER",
            IdentityKind::ServiceAccount => "SERVICE_ACCOUNT",
            IdentityKind::Pat => "PAT",
            IdentityKind::Group => "GROUP",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "USER" => IdentityKind::User,
            "SERVICE_ACCOUNT" => IdentityKind::ServiceAccount,
            "PAT" => IdentityKind::Pat,
            "GROUP" => IdentityKind::Group,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub id: IdentityId,
    pub kind: IdentityKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub id: AssignmentId,
    pub tenant: TenantId,
    pub role_id: RoleId,
    pub role_name: String,
    pub identity: Identity,
    /// Where the role applies: this resource and everything under it (empty: the tenant).
    #[serde(default, skip_serializing_if = "super::Scope::is_tenant")]
    pub scope: super::Scope,
    pub is_immutable: bool,
    pub expire_time: Option<Timestamp>,
    pub reason: String,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub revision: Revision,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub tenant: TenantId,
    pub name: String,
    pub description: String,
    pub member_count: u64,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub revision: Revision,
}

impl Role {
    /// The approval policy in force: `None` when the role needs no approval.
    pub fn gate(&self) -> Option<ApprovalPolicy> {
        self.requires_approval
            .then(|| self.approval_policy.clone().unwrap_or_default())
    }

    /// True when changes of `kind` to this role's grants need a change request.
    pub fn gates(&self, kind: ApprovalKind) -> bool {
        self.gate().is_some_and(|p| p.covers(kind))
    }
}

/// A kind of change an approval policy may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalKind {
    /// Giving the role's permissions to someone (assignment, group membership).
    Assign,
    /// Taking them away (revocation, membership removal, deletion).
    Revoke,
    /// Changing what the role grants.
    Modify,
}

/// The most distinct approvers a policy may ask for.
pub const MAX_QUORUM: u32 = 10;

/// Dfns-shaped approval policy of a role: how many distinct approvers (the requester never
/// counting), who may approve, when a pending request is auto-rejected, and which changes need
/// it. Stored as JSON with the role and snapshotted into each change request it governs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub quorum: u32,
    /// Approvers must also hold this permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_permission: Option<String>,
    /// Approvers must be members of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_group: Option<GroupId>,
    /// A pending request expires (is auto-rejected) this many seconds after it was filed;
    /// `None`: the server's approval TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_seconds: Option<u64>,
    /// The changes that need approval; empty: every kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<ApprovalKind>,
}

impl Default for ApprovalPolicy {
    /// One approver holding `warden:change_requests:approve`, every kind of change.
    fn default() -> Self {
        Self {
            quorum: 1,
            approver_permission: None,
            approver_group: None,
            expire_after_seconds: None,
            kinds: Vec::new(),
        }
    }
}

impl ApprovalPolicy {
    pub fn covers(&self, kind: ApprovalKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// Distinct approvals needed to apply (at least one).
    pub fn quorum(&self) -> u32 {
        self.quorum.max(1)
    }
}

/// One approver's approval of a pending change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub time: Timestamp,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeRequestKind {
    Assign,
    Revoke,
    /// Any other change that touches gated grants (a role edit, a group membership...),
    /// proposed with ProposeChange and applied as proposed once approved.
    Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeRequestStatus {
    Pending,
    Applied,
    Rejected,
    Cancelled,
    Expired,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub id: ChangeRequestId,
    pub tenant: TenantId,
    pub kind: ChangeRequestKind,
    pub role_id: RoleId,
    pub role_name: String,
    /// Whom an ASSIGN or REVOKE concerns; none for a CHANGE.
    pub identity: Option<Identity>,
    pub assignment_expire_time: Option<Timestamp>,
    /// The scope of the assignment an ASSIGN would make (or a REVOKE takes away).
    #[serde(default, skip_serializing_if = "super::Scope::is_tenant")]
    pub scope: super::Scope,
    pub assignment_id: Option<AssignmentId>,
    pub reason: String,
    pub requester: String,
    pub status: ChangeRequestStatus,
    pub decided_by: String,
    pub decision_comment: String,
    pub failure_reason: String,
    pub resulting_assignment_id: Option<AssignmentId>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub expire_time: Timestamp,
    pub revision: Revision,
    /// The policy the request was filed under (the role's at the time).
    pub policy: ApprovalPolicy,
    /// Approvals so far; the request applies when they reach the policy's quorum.
    pub approvals: Vec<Approval>,
    /// For a CHANGE: the proposed change, as the service stores it.
    pub proposed_change: Option<serde_json::Value>,
}

/// A page of results and the opaque token of the next one (`None` at the end).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// What a dry run reports: per identity, the effective permissions it would gain or lose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub identities: Vec<IdentityImpact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityImpact {
    pub identity: IdentityId,
    /// Permissions gained or lost tenant-wide.
    pub gained: Vec<String>,
    pub lost: Vec<String>,
    /// Permissions gained or lost at a scope (where no wider grant still covers it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gained_scoped: Vec<ScopedPermission>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_scoped: Vec<ScopedPermission>,
}

/// A permission at a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedPermission {
    pub permission: String,
    pub scope: super::Scope,
}

/// One stored audit event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub revision: super::ids::Revision,
    pub time: Timestamp,
    pub actor: String,
    pub tenant: TenantId,
    pub rpc: String,
    pub target_kind: String,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: String,
    pub trace_id: String,
    pub reason: String,
}

/// ListAuditEvents' filters.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// A tenant registered with Warden (created at run time, or by the start-up bootstrap).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    /// A disabled tenant's tokens are refused and its Checks deny.
    pub disabled: bool,
    /// Who created it (`warden:system` for the bootstrap).
    pub created_by: String,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// The tenant's own revision of its last change.
    pub revision: Revision,
}
