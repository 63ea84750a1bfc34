//! One SeaORM entity per table, written by hand to match the migrations.

pub mod assignment;
pub mod audit_event;
pub mod change;
pub mod change_request;
pub mod group;
pub mod group_member;
pub mod idempotency_key;
pub mod permission;
pub mod replica;
pub mod replica_tenant;
pub mod role;
pub mod role_permission;
pub mod tenant;
pub mod tenant_revision;
