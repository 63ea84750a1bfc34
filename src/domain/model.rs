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
    /// Names of the granted permissions, sorted.
    pub permissions: Vec<String>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub revision: Revision,
}

impl Role {
    /// Changes whenever the role does: its revision, which every change stamps.
    pub fn etag(&self) -> String {
        format!("r{}", self.revision.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeRequestKind {
    Assign,
    Revoke,
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
    pub identity: Identity,
    pub assignment_expire_time: Option<Timestamp>,
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
    pub gained: Vec<String>,
    pub lost: Vec<String>,
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
