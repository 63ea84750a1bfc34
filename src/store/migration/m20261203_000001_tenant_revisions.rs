//! Revisions per tenant (issue 17): each tenant gets its own gapless revision sequence, so
//! writes of different tenants never queue on one counter row, and no tenant can read another's
//! write volume off its own revision numbers.
//!
//! Existing data keeps its numbers: every tenant found in the data starts its own sequence where
//! the global counter stood at migration time (G), so every revision it was ever given, and every
//! `at_least_revision` a client still holds, stays at or below its new revision. Tenants created
//! afterwards start at 1. The global counter row is kept, frozen at G.
//!
//! The change log's key becomes (tenant, revision), since two tenants now share numbers; replica
//! heartbeats record the revision applied per tenant.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Every table that carries `tenant_id`: a tenant present in any of them gets a sequence.
const TENANT_TABLES: [&str; 9] = [
    "changes",
    "permissions",
    "roles",
    "assignments",
    "groups",
    "group_members",
    "change_requests",
    "audit_events",
    "idempotency_keys",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TenantRevisions::Table)
                .col(
                    ColumnDef::new(TenantRevisions::TenantId)
                        .string_len(256)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(TenantRevisions::Revision)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        let tenants = TENANT_TABLES
            .iter()
            .map(|t| format!("SELECT tenant_id FROM {t}"))
            .collect::<Vec<_>>()
            .join(" UNION ");
        let db = m.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO tenant_revisions (tenant_id, revision) \
             SELECT t.tenant_id, (SELECT revision FROM revision_counter WHERE id = 1) \
             FROM ({tenants}) t"
        ))
        .await?;

        // The change log, re-keyed by (tenant, revision): the old table set aside, the new one
        // created under its name, the rows copied, the old one (and its tenant index, now the
        // key) dropped.
        m.rename_table(
            Table::rename()
                .table(Changes::Table, Alias::new("changes_global"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Changes::Table)
                .col(ColumnDef::new(Changes::TenantId).string_len(256).not_null())
                .col(ColumnDef::new(Changes::Revision).big_integer().not_null())
                .col(ColumnDef::new(Changes::Time).big_integer().not_null())
                .col(ColumnDef::new(Changes::Kind).string_len(64).not_null())
                .col(ColumnDef::new(Changes::Target).string_len(256).not_null())
                .col(ColumnDef::new(Changes::Deltas).text().not_null())
                .primary_key(
                    Index::create()
                        .col(Changes::TenantId)
                        .col(Changes::Revision),
                )
                .to_owned(),
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO changes (tenant_id, revision, time, kind, target, deltas) \
             SELECT tenant_id, revision, time, kind, target, deltas FROM changes_global",
        )
        .await?;
        m.drop_table(Table::drop().table(Alias::new("changes_global")).to_owned())
            .await?;
        // Pruning finds old rows by time.
        m.create_index(
            Index::create()
                .name("ix_changes_time")
                .table(Changes::Table)
                .col(Changes::Time)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ReplicaTenants::Table)
                .col(
                    ColumnDef::new(ReplicaTenants::ReplicaId)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ReplicaTenants::TenantId)
                        .string_len(256)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ReplicaTenants::AppliedRevision)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(ReplicaTenants::ReplicaId)
                        .col(ReplicaTenants::TenantId),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Per-tenant numbers cannot be folded back into one global order.
        let _ = m;
        Err(DbErr::Migration(
            "revisions per tenant cannot be reverted; restore a backup taken before the upgrade"
                .to_owned(),
        ))
    }
}

#[derive(DeriveIden)]
enum TenantRevisions {
    Table,
    TenantId,
    Revision,
}

#[derive(DeriveIden)]
enum Changes {
    Table,
    TenantId,
    Revision,
    Time,
    Kind,
    Target,
    Deltas,
}

#[derive(DeriveIden)]
enum ReplicaTenants {
    Table,
    ReplicaId,
    TenantId,
    AppliedRevision,
}
