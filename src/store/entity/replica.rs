//! `replicas` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "replicas")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Unused since revisions are per tenant (`replica_tenants`); always 0, kept so an older
    /// binary reading the table during a rolling upgrade still finds it.
    pub applied_revision: i64,
    pub heartbeat_time: i64,
    pub start_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
