//! Configuration as code (issue 16): one tenant as a declarative document, and the plan of
//! what applying one changes.

use serde::{Deserialize, Serialize};

use super::model::{ApprovalPolicy, IdentityKind, Timestamp};
use super::names::{GroupName, PermissionName, RoleName};
use super::{IdentityId, Scope};

/// A tenant's permissions, roles, groups and assignments, every object by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    pub permissions: Vec<ConfiguredPermission>,
    pub roles: Vec<ConfiguredRole>,
    pub groups: Vec<ConfiguredGroup>,
    pub assignments: Vec<ConfiguredAssignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredPermission {
    pub name: PermissionName,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredRole {
    pub name: RoleName,
    pub description: String,
    /// Permission names, sorted.
    pub permissions: Vec<String>,
    /// Included role names, sorted.
    pub included_roles: Vec<String>,
    pub requires_approval: bool,
    pub approval_policy: Option<ApprovalPolicy>,
    pub protected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredGroup {
    pub name: GroupName,
    pub description: String,
    /// Sorted.
    pub members: Vec<IdentityId>,
}

/// Who holds a configured assignment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Holder {
    Identity {
        id: IdentityId,
        kind: IdentityKind,
    },
    /// A group of the document (or the tenant), by name.
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredAssignment {
    pub role: String,
    pub holder: Holder,
    pub scope: Scope,
    pub expire_time: Option<Timestamp>,
    pub reason: String,
}

impl ConfiguredAssignment {
    /// What identifies an assignment in a document: role, holder and scope.
    pub fn key(&self) -> (String, Holder, Scope) {
        (self.role.clone(), self.holder.clone(), self.scope.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanAction {
    Create,
    Update,
    Delete,
}

/// One change applying a document makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    pub action: PlanAction,
    /// permission, role, group, membership or assignment.
    pub kind: String,
    pub name: String,
    pub detail: String,
}
