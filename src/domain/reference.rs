//! How a request names a permission or a role: by id or by name.

use super::ids::{PermissionId, RoleId};

/// A permission or role named by its id or its name; the store resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ref<Id> {
    Id(Id),
    Name(String),
}

impl<Id: std::fmt::Display> Ref<Id> {
    /// The text a NOT_FOUND error names.
    pub fn key(&self) -> String {
        match self {
            Ref::Id(id) => id.to_string(),
            Ref::Name(name) => name.clone(),
        }
    }
}

pub type PermissionRef = Ref<PermissionId>;
pub type RoleRef = Ref<RoleId>;
