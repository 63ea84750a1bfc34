//! The whole first schema: catalogue, assignments, groups, change requests, the change log and
//! revision counter, the audit trail, idempotency keys and replica heartbeats.
//!
//! Ids are canonical UUID text and times are Unix microseconds (BIGINT), so SQLite and
//! PostgreSQL store and compare them identically. Every record carries `tenant_id`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(36)
        .not_null()
        .primary_key()
        .to_owned()
}
fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().to_owned()
}
fn key(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(256).not_null().to_owned()
}
fn big(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}
fn big_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().to_owned()
}
fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}
fn ref_id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(36).not_null().to_owned()
}
fn ref_id_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(36).null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(RevisionCounter::Table)
                .col(
                    ColumnDef::new(RevisionCounter::Id)
                        .integer()
                        .not_null()
                        .primary_key(),
                )
                .col(big(RevisionCounter::Revision))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(RevisionCounter::Table)
                .columns([RevisionCounter::Id, RevisionCounter::Revision])
                .values_panic([1.into(), 0.into()])
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Permissions::Table)
                .col(id(Permissions::Id))
                .col(key(Permissions::TenantId))
                .col(key(Permissions::Name))
                .col(text(Permissions::Description))
                .col(flag(Permissions::IsSystem))
                .col(big(Permissions::CreateTime))
                .col(big(Permissions::UpdateTime))
                .col(big(Permissions::Revision))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "ux_permissions_tenant_name",
            Permissions::Table,
            [Permissions::TenantId, Permissions::Name],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Roles::Table)
                .col(id(Roles::Id))
                .col(key(Roles::TenantId))
                .col(key(Roles::Name))
                .col(text(Roles::Description))
                .col(flag(Roles::IsSystem))
                .col(flag(Roles::RequiresApproval))
                .col(big(Roles::CreateTime))
                .col(big(Roles::UpdateTime))
                .col(big(Roles::Revision))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "ux_roles_tenant_name",
            Roles::Table,
            [Roles::TenantId, Roles::Name],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RolePermissions::Table)
                .col(ref_id(RolePermissions::RoleId))
                .col(ref_id(RolePermissions::PermissionId))
                .col(key(RolePermissions::TenantId))
                .primary_key(
                    Index::create()
                        .col(RolePermissions::RoleId)
                        .col(RolePermissions::PermissionId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(RolePermissions::Table, RolePermissions::RoleId)
                        .to(Roles::Table, Roles::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(RolePermissions::Table, RolePermissions::PermissionId)
                        .to(Permissions::Table, Permissions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_role_permissions_permission",
            RolePermissions::Table,
            [RolePermissions::PermissionId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Assignments::Table)
                .col(id(Assignments::Id))
                .col(key(Assignments::TenantId))
                .col(ref_id(Assignments::RoleId))
                .col(key(Assignments::IdentityId))
                .col(
                    ColumnDef::new(Assignments::IdentityKind)
                        .string_len(32)
                        .not_null(),
                )
                .col(flag(Assignments::IsImmutable))
                .col(big_null(Assignments::ExpireTime))
                .col(text(Assignments::Reason))
                // ACTIVE, or EXPIRED once the sweeper has seen its expire_time pass.
                .col(
                    ColumnDef::new(Assignments::Status)
                        .string_len(16)
                        .not_null()
                        .default("ACTIVE"),
                )
                .col(big(Assignments::CreateTime))
                .col(big(Assignments::UpdateTime))
                .col(big(Assignments::Revision))
                // Restrict: a role with assignments is deleted only by `force`, which revokes them
                // (and audits each) first.
                .foreign_key(
                    ForeignKey::create()
                        .from(Assignments::Table, Assignments::RoleId)
                        .to(Roles::Table, Roles::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "ux_assignments_role_identity",
            Assignments::Table,
            [
                Assignments::TenantId,
                Assignments::RoleId,
                Assignments::IdentityId,
            ],
        )
        .await?;
        index(
            m,
            "ix_assignments_identity",
            Assignments::Table,
            [Assignments::TenantId, Assignments::IdentityId],
        )
        .await?;
        index(
            m,
            "ix_assignments_role",
            Assignments::Table,
            [Assignments::RoleId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Groups::Table)
                .col(id(Groups::Id))
                .col(key(Groups::TenantId))
                .col(key(Groups::Name))
                .col(text(Groups::Description))
                .col(big(Groups::CreateTime))
                .col(big(Groups::UpdateTime))
                .col(big(Groups::Revision))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "ux_groups_tenant_name",
            Groups::Table,
            [Groups::TenantId, Groups::Name],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(GroupMembers::Table)
                .col(ref_id(GroupMembers::GroupId))
                .col(key(GroupMembers::IdentityId))
                .col(key(GroupMembers::TenantId))
                .primary_key(
                    Index::create()
                        .col(GroupMembers::GroupId)
                        .col(GroupMembers::IdentityId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(GroupMembers::Table, GroupMembers::GroupId)
                        .to(Groups::Table, Groups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_group_members_identity",
            GroupMembers::Table,
            [GroupMembers::TenantId, GroupMembers::IdentityId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ChangeRequests::Table)
                .col(id(ChangeRequests::Id))
                .col(key(ChangeRequests::TenantId))
                .col(
                    ColumnDef::new(ChangeRequests::Kind)
                        .string_len(16)
                        .not_null(),
                )
                // No foreign key: a request outlives a deleted role and then ends FAILED.
                .col(ref_id(ChangeRequests::RoleId))
                .col(key(ChangeRequests::RoleName))
                .col(key(ChangeRequests::IdentityId))
                .col(
                    ColumnDef::new(ChangeRequests::IdentityKind)
                        .string_len(32)
                        .not_null(),
                )
                .col(big_null(ChangeRequests::AssignmentExpireTime))
                .col(ref_id_null(ChangeRequests::AssignmentId))
                .col(text(ChangeRequests::Reason))
                .col(key(ChangeRequests::Requester))
                .col(
                    ColumnDef::new(ChangeRequests::Status)
                        .string_len(16)
                        .not_null(),
                )
                .col(text(ChangeRequests::DecidedBy))
                .col(text(ChangeRequests::DecisionComment))
                .col(text(ChangeRequests::FailureReason))
                .col(ref_id_null(ChangeRequests::ResultingAssignmentId))
                .col(big(ChangeRequests::CreateTime))
                .col(big(ChangeRequests::UpdateTime))
                .col(big(ChangeRequests::ExpireTime))
                .col(big(ChangeRequests::Revision))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_change_requests_status",
            ChangeRequests::Table,
            [ChangeRequests::TenantId, ChangeRequests::Status],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(id(AuditEvents::Id))
                .col(key(AuditEvents::TenantId))
                .col(big(AuditEvents::Revision))
                .col(big(AuditEvents::Time))
                .col(key(AuditEvents::Actor))
                .col(key(AuditEvents::Rpc))
                .col(
                    ColumnDef::new(AuditEvents::TargetKind)
                        .string_len(32)
                        .not_null(),
                )
                .col(key(AuditEvents::TargetId))
                .col(ColumnDef::new(AuditEvents::Before).text().null())
                .col(ColumnDef::new(AuditEvents::After).text().null())
                .col(key(AuditEvents::RequestId))
                .col(key(AuditEvents::TraceId))
                .col(text(AuditEvents::Reason))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_audit_events_tenant_id",
            AuditEvents::Table,
            [AuditEvents::TenantId, AuditEvents::Id],
        )
        .await?;
        index(
            m,
            "ix_audit_events_target",
            AuditEvents::Table,
            [AuditEvents::TenantId, AuditEvents::TargetId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Changes::Table)
                .col(
                    ColumnDef::new(Changes::Revision)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(key(Changes::TenantId))
                .col(big(Changes::Time))
                .col(ColumnDef::new(Changes::Kind).string_len(64).not_null())
                .col(key(Changes::Target))
                .col(text(Changes::Deltas))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_changes_tenant_revision",
            Changes::Table,
            [Changes::TenantId, Changes::Revision],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(key(IdempotencyKeys::TenantId))
                .col(key(IdempotencyKeys::Caller))
                .col(
                    ColumnDef::new(IdempotencyKeys::Key)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyKeys::Rpc)
                        .string_len(256)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyKeys::RequestHash)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyKeys::Response)
                        .binary()
                        .not_null(),
                )
                .col(big(IdempotencyKeys::CreateTime))
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::TenantId)
                        .col(IdempotencyKeys::Caller)
                        .col(IdempotencyKeys::Key),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Replicas::Table)
                .col(
                    ColumnDef::new(Replicas::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(big(Replicas::AppliedRevision))
                .col(big(Replicas::HeartbeatTime))
                .col(big(Replicas::StartTime))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Replicas::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            Changes::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            ChangeRequests::Table.into_iden(),
            GroupMembers::Table.into_iden(),
            Groups::Table.into_iden(),
            Assignments::Table.into_iden(),
            RolePermissions::Table.into_iden(),
            Roles::Table.into_iden(),
            Permissions::Table.into_iden(),
            RevisionCounter::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

async fn unique<T, C, const N: usize>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: [C; N],
) -> Result<(), DbErr>
where
    T: IntoIden,
    C: IntoIden,
{
    let mut stmt = Index::create().name(name).table(table).unique().to_owned();
    for col in cols {
        stmt.col(col);
    }
    m.create_index(stmt).await
}

async fn index<T, C, const N: usize>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: [C; N],
) -> Result<(), DbErr>
where
    T: IntoIden,
    C: IntoIden,
{
    let mut stmt = Index::create().name(name).table(table).to_owned();
    for col in cols {
        stmt.col(col);
    }
    m.create_index(stmt).await
}

#[derive(DeriveIden)]
enum RevisionCounter {
    Table,
    Id,
    Revision,
}

#[derive(DeriveIden)]
enum Permissions {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    IsSystem,
    CreateTime,
    UpdateTime,
    Revision,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    IsSystem,
    RequiresApproval,
    CreateTime,
    UpdateTime,
    Revision,
}

#[derive(DeriveIden)]
enum RolePermissions {
    Table,
    RoleId,
    PermissionId,
    TenantId,
}

#[derive(DeriveIden)]
enum Assignments {
    Table,
    Id,
    TenantId,
    RoleId,
    IdentityId,
    IdentityKind,
    IsImmutable,
    ExpireTime,
    Reason,
    Status,
    CreateTime,
    UpdateTime,
    Revision,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    CreateTime,
    UpdateTime,
    Revision,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    GroupId,
    IdentityId,
    TenantId,
}

#[derive(DeriveIden)]
enum ChangeRequests {
    Table,
    Id,
    TenantId,
    Kind,
    RoleId,
    RoleName,
    IdentityId,
    IdentityKind,
    AssignmentExpireTime,
    AssignmentId,
    Reason,
    Requester,
    Status,
    DecidedBy,
    DecisionComment,
    FailureReason,
    ResultingAssignmentId,
    CreateTime,
    UpdateTime,
    ExpireTime,
    Revision,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    TenantId,
    Revision,
    Time,
    Actor,
    Rpc,
    TargetKind,
    TargetId,
    Before,
    After,
    RequestId,
    TraceId,
    Reason,
}

#[derive(DeriveIden)]
enum Changes {
    Table,
    Revision,
    TenantId,
    Time,
    Kind,
    Target,
    Deltas,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    TenantId,
    Caller,
    Key,
    Rpc,
    RequestHash,
    Response,
    CreateTime,
}

#[derive(DeriveIden)]
enum Replicas {
    Table,
    Id,
    AppliedRevision,
    HeartbeatTime,
    StartTime,
}
