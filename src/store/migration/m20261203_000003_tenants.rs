//! Tenants at run time (issue 11): the registry TenantService reads and writes. A tenant that
//! only ever appeared in tokens and data (before this table) has no row until the bootstrap or
//! TenantService registers it; it is active.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .col(
                    ColumnDef::new(Tenants::Id)
                        .string_len(256)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Tenants::DisplayName).text().not_null())
                .col(ColumnDef::new(Tenants::Disabled).boolean().not_null())
                .col(ColumnDef::new(Tenants::CreatedBy).text().not_null())
                .col(ColumnDef::new(Tenants::CreateTime).big_integer().not_null())
                .col(ColumnDef::new(Tenants::UpdateTime).big_integer().not_null())
                .col(ColumnDef::new(Tenants::Revision).big_integer().not_null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Tenants::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    DisplayName,
    Disabled,
    CreatedBy,
    CreateTime,
    UpdateTime,
    Revision,
}
