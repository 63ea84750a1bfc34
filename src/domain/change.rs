//! What a committed write changed: the index deltas other replicas replay, and the audit records.
//!
//! Deltas are serialised into the change log (`changes` table), so their serde form is a stored
//! format: add variants and optional fields, never rename.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{
    AssignmentId, ChangeRequestId, GroupId, IdentityId, PermissionId, Revision, RoleId, TenantId,
};
use super::model::IdentityKind;
use super::scope::Scope;

/// One change to the authorization index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Delta {
    PermissionPut {
        id: PermissionId,
        name: String,
    },
    PermissionRemoved {
        id: PermissionId,
    },
    /// The role's complete, current permission set, and (since admin reads are answered from
    /// the index) the rest of its record. A `RolePut` without a record (written by an older
    /// release) leaves the role to be read from the database.
    RolePut {
        id: RoleId,
        name: String,
        permissions: Vec<PermissionId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<Box<RoleRecord>>,
        /// The roles this one includes (composite roles); it grants their permissions too.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        included: Vec<RoleId>,
    },
    RoleRemoved {
        id: RoleId,
    },
    AssignmentPut {
        id: AssignmentId,
        role: RoleId,
        identity: IdentityId,
        kind: IdentityKind,
        expire_time: Option<DateTime<Utc>>,
        /// Absent in changes written before scopes: the tenant.
        #[serde(default, skip_serializing_if = "Scope::is_tenant")]
        scope: Scope,
    },
    AssignmentRemoved {
        id: AssignmentId,
    },
    GroupMembersAdded {
        group: GroupId,
        members: Vec<IdentityId>,
    },
    GroupMembersRemoved {
        group: GroupId,
        members: Vec<IdentityId>,
    },
    GroupRemoved {
        group: GroupId,
    },
    /// A pending change request that would grant `role` to `identity` (explain on deny).
    PendingGrantPut {
        id: ChangeRequestId,
        role: RoleId,
        identity: IdentityId,
        #[serde(default, skip_serializing_if = "Scope::is_tenant")]
        scope: Scope,
    },
    PendingGrantRemoved {
        id: ChangeRequestId,
    },
    /// The tenant was disabled (every Check denies, its tokens are refused) or enabled again.
    TenantState {
        disabled: bool,
    },
}

impl Delta {
    /// True when the delta changes a role as a write reads it (its record or permissions).
    pub fn changes_roles(&self) -> bool {
        matches!(
            self,
            Delta::PermissionPut { .. }
                | Delta::PermissionRemoved { .. }
                | Delta::RolePut { .. }
                | Delta::RoleRemoved { .. }
        )
    }
}

/// What a role is besides its name and permissions, as `RolePut` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub description: String,
    pub is_system: bool,
    pub requires_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<super::model::ApprovalPolicy>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub revision: Revision,
}

impl RoleRecord {
    pub fn of(role: &super::model::Role) -> Box<Self> {
        Box::new(Self {
            description: role.description.clone(),
            is_system: role.is_system,
            requires_approval: role.requires_approval,
            approval_policy: role.approval_policy.clone(),
            protected: role.protected,
            create_time: role.create_time,
            update_time: role.update_time,
            revision: role.revision,
        })
    }
}

/// One committed transaction as the change log stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub revision: Revision,
    pub tenant: TenantId,
    pub time: DateTime<Utc>,
    /// e.g. `role.created`, `assignment.revoked`.
    pub kind: String,
    pub target: String,
    pub deltas: Vec<Delta>,
}

/// One audit event a mutation writes, before the store stamps revision, actor and time on it.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub target_kind: &'static str,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: String,
}
