//! `assignments` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub role_id: String,
    pub identity_id: String,
    pub identity_kind: String,
    /// Empty: the whole tenant.
    pub scope: String,
    pub is_immutable: bool,
    pub expire_time: Option<i64>,
    pub reason: String,
    pub status: String,
    pub create_time: i64,
    pub update_time: i64,
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
