//! `change_requests` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub role_id: String,
    pub role_name: String,
    pub identity_id: String,
    pub identity_kind: String,
    pub assignment_expire_time: Option<i64>,
    pub assignment_id: Option<String>,
    pub scope: String,
    pub reason: String,
    pub requester: String,
    pub status: String,
    pub decided_by: String,
    pub decision_comment: String,
    pub failure_reason: String,
    pub resulting_assignment_id: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
    pub expire_time: i64,
    pub revision: i64,
    /// `ApprovalPolicy` as JSON; null (rows of older releases): the default policy.
    pub policy: Option<String>,
    /// `Vec<Approval>` as JSON; null: none yet.
    pub approvals: Option<String>,
    /// A proposed change of any other kind (kind CHANGE), as JSON.
    pub proposed_change: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
