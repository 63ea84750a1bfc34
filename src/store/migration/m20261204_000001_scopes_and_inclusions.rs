//! Scopes and composite roles (issue 13): an assignment's scope (empty: the tenant, which every
//! existing assignment keeps), the scope a change request would assign at, and the roles a role
//! includes (JSON array of role ids; null: none). One identity may now hold a role at several
//! scopes, so the uniqueness of (role, identity) becomes that of (role, identity, scope).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Assignments::Table)
                .add_column(
                    ColumnDef::new(Assignments::Scope)
                        .string_len(512)
                        .not_null()
                        .default(""),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ChangeRequests::Table)
                .add_column(
                    ColumnDef::new(ChangeRequests::Scope)
                        .string_len(512)
                        .not_null()
                        .default(""),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .add_column(ColumnDef::new(Roles::IncludedRoles).text().null())
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("ux_assignments_role_identity")
                .table(Assignments::Table)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_assignments_role_identity_scope")
                .table(Assignments::Table)
                .col(Assignments::TenantId)
                .col(Assignments::RoleId)
                .col(Assignments::IdentityId)
                .col(Assignments::Scope)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ux_assignments_role_identity_scope")
                .table(Assignments::Table)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_assignments_role_identity")
                .table(Assignments::Table)
                .col(Assignments::TenantId)
                .col(Assignments::RoleId)
                .col(Assignments::IdentityId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .drop_column(Roles::IncludedRoles)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ChangeRequests::Table)
                .drop_column(ChangeRequests::Scope)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Assignments::Table)
                .drop_column(Assignments::Scope)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Assignments {
    Table,
    TenantId,
    RoleId,
    IdentityId,
    Scope,
}

#[derive(DeriveIden)]
enum ChangeRequests {
    Table,
    Scope,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    IncludedRoles,
}
