//! Tenant-defined protected roles (issue 13, item 5): a role a tenant marks `protected` is
//! changed or deleted only by holders of `warden:roles:protect`. Existing roles are not.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .add_column(
                    ColumnDef::new(Roles::Protected)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .drop_column(Roles::Protected)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Protected,
}
