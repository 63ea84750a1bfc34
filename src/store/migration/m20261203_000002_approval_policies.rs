//! Approval policies (issue 11): a role's policy (quorum, approvers, expiry, kinds) as JSON, and
//! on each change request the policy it was filed under, the approvals so far and, for requests
//! of kind CHANGE, the proposed change. All nullable: existing rows read as the default policy
//! (one approver) with no approvals, which is what they were filed under.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .add_column(ColumnDef::new(Roles::ApprovalPolicy).text().null())
                .to_owned(),
        )
        .await?;
        for column in [
            ChangeRequests::Policy,
            ChangeRequests::Approvals,
            ChangeRequests::ProposedChange,
        ] {
            m.alter_table(
                Table::alter()
                    .table(ChangeRequests::Table)
                    .add_column(ColumnDef::new(column).text().null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ChangeRequests::Policy,
            ChangeRequests::Approvals,
            ChangeRequests::ProposedChange,
        ] {
            m.alter_table(
                Table::alter()
                    .table(ChangeRequests::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .drop_column(Roles::ApprovalPolicy)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    ApprovalPolicy,
}

#[derive(DeriveIden)]
enum ChangeRequests {
    Table,
    Policy,
    Approvals,
    ProposedChange,
}
