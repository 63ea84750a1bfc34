//! `roles` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    pub is_system: bool,
    pub requires_approval: bool,
    /// `ApprovalPolicy` as JSON; null: the default policy.
    pub approval_policy: Option<String>,
    pub protected: bool,
    /// `Vec<RoleId>` as JSON: the roles this one includes; null: none.
    pub included_roles: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
