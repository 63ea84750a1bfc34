//! Schema migrations, in order. A merged migration is never edited; add a new one.

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_schema;
mod m20261203_000001_tenant_revisions;
mod m20261203_000002_approval_policies;
mod m20261203_000003_tenants;
mod m20261203_000004_protected_roles;
mod m20261204_000001_scopes_and_inclusions;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_schema::Migration),
            Box::new(m20261203_000001_tenant_revisions::Migration),
            Box::new(m20261203_000002_approval_policies::Migration),
            Box::new(m20261203_000003_tenants::Migration),
            Box::new(m20261203_000004_protected_roles::Migration),
            Box::new(m20261204_000001_scopes_and_inclusions::Migration),
        ]
    }
}
