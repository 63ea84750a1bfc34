//! Assignments: who holds which role.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};

use super::entity::{assignment, role};
use super::{
    WriteTx, db_error, from_micros, is_unique_violation, micros, rev_from, rev_i64, stored_id,
};
use crate::domain::{
    Assignment, AssignmentId, Error, Identity, IdentityId, IdentityKind, RoleId, Scope, TenantId,
};

/// How an ALREADY_EXISTS names an assignment: role -> identity, and where, when scoped.
pub fn assignment_key(role: &str, identity: &IdentityId, scope: &Scope) -> String {
    if scope.is_tenant() {
        format!("{role} -> {identity}")
    } else {
        format!("{role} -> {identity} on {scope}")
    }
}

pub(super) const ACTIVE: &str = "ACTIVE";

pub(super) const ASSIGNMENT_COLUMNS: &str = "assignments (id, tenant_id, role_id, identity_id, \
     identity_kind, scope, is_immutable, expire_time, reason, status, create_time, update_time, \
     revision)";

pub(super) fn assignment_row(a: &Assignment) -> Vec<sea_orm::Value> {
    vec![
        a.id.to_string().into(),
        a.tenant.as_str().into(),
        a.role_id.to_string().into(),
        a.identity.id.as_str().into(),
        a.identity.kind.as_str().into(),
        a.scope.as_str().into(),
        a.is_immutable.into(),
        a.expire_time.map(micros).into(),
        a.reason.as_str().into(),
        ACTIVE.into(),
        micros(a.create_time).into(),
        micros(a.update_time).into(),
        rev_i64(a.revision).into(),
    ]
}

pub(super) fn to_assignment(m: assignment::Model, role_name: String) -> Result<Assignment, Error> {
    Ok(Assignment {
        id: stored_id(AssignmentId::parse, &m.id)?,
        tenant: TenantId::parse(&m.tenant_id)?,
        role_id: stored_id(RoleId::parse, &m.role_id)?,
        role_name,
        identity: Identity {
            id: IdentityId::parse("identity", &m.identity_id)?,
            kind: IdentityKind::parse(&m.identity_kind).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "corrupt identity kind {:?}",
                    m.identity_kind
                ))
            })?,
        },
        scope: Scope::from_validated(m.scope),
        is_immutable: m.is_immutable,
        expire_time: m.expire_time.map(from_micros),
        reason: m.reason,
        create_time: from_micros(m.create_time),
        update_time: from_micros(m.update_time),
        revision: rev_from(m.revision),
    })
}

async fn role_name(conn: &impl ConnectionTrait, role_id: &str) -> Result<String, Error> {
    Ok(role::Entity::find_by_id(role_id.to_owned())
        .one(conn)
        .await
        .map_err(db_error)?
        .map(|r| r.name)
        .unwrap_or_default())
}

impl WriteTx {
    /// Inserts an assignment: staged, and written with the others this write stages before its
    /// next statement or at its end (`flush_staged`), where a collision is ALREADY_EXISTS with
    /// the existing id.
    pub async fn insert_assignment(&self, a: &Assignment) -> Result<(), Error> {
        let full = {
            let mut staged = self.staged.lock();
            staged.push(a.clone());
            staged.len() >= super::batch::ROWS_PER_INSERT
        };
        if full {
            self.flush_staged().await?;
        }
        Ok(())
    }

    /// The open transaction, with every staged assignment written: what each statement of a
    /// write runs on, so that none of them misses an assignment the write made.
    pub(super) async fn conn(&self) -> Result<&DatabaseTransaction, Error> {
        self.flush_staged().await?;
        self.begun().await
    }

    /// Writes the staged assignments now, unless this write is alone in its transaction (then
    /// its commit's tail statement writes them): what a write sharing a group commit calls
    /// before it is kept, so that a collision fails it alone.
    pub async fn flush_staged_if_shared(&self) -> Result<(), Error> {
        if self.alone {
            return Ok(());
        }
        self.flush_staged().await
    }

    /// Writes the staged assignments, in multi-row INSERTs.
    pub async fn flush_staged(&self) -> Result<(), Error> {
        let staged = std::mem::take(&mut *self.staged.lock());
        if staged.is_empty() {
            return Ok(());
        }
        let txn = self.begun().await?;
        let backend = txn.get_database_backend();
        for chunk in staged.chunks(super::batch::ROWS_PER_INSERT) {
            let rows = chunk.iter().map(assignment_row).collect();
            let mut sql = super::batch::Sql::new(backend);
            let text = sql.insert(ASSIGNMENT_COLUMNS, rows);
            match sql.run_raw(txn, text).await {
                Ok(()) => {}
                Err(e) if is_unique_violation(&e) => return Err(self.collision(txn, chunk).await),
                Err(e) => return Err(db_error(e)),
            }
        }
        Ok(())
    }

    /// ALREADY_EXISTS for the first of `chunk` that another write committed meanwhile.
    async fn collision(&self, txn: &DatabaseTransaction, chunk: &[Assignment]) -> Error {
        for a in chunk {
            // A failed statement aborts a PostgreSQL transaction: the write is lost anyway, so
            // the lookup may fail too, and then the answer is a plain conflict.
            let found = assignment_of(txn, self.tenant(), a.role_id, &a.identity.id, &a.scope);
            match found.await {
                Ok(Some(existing)) if existing.id != a.id => {
                    return Error::AlreadyExists {
                        kind: "assignment",
                        key: assignment_key(&a.role_name, &a.identity.id, &a.scope),
                        existing_id: Some(existing.id.to_string()),
                    };
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Error::conflict()
    }

    /// The kind `identity` holds its assignments as, if it holds any.
    pub async fn identity_kind_of(
        &self,
        identity: &IdentityId,
    ) -> Result<Option<IdentityKind>, Error> {
        let row = assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(self.tenant().as_str()))
            .filter(assignment::Column::IdentityId.eq(identity.as_str()))
            .one(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(row.and_then(|m| IdentityKind::parse(&m.identity_kind)))
    }

    /// The assignment of `role` to `identity` at `scope`, if any.
    pub async fn find_assignment_of(
        &self,
        role: RoleId,
        identity: &IdentityId,
        scope: &Scope,
    ) -> Result<Option<Assignment>, Error> {
        assignment_of(self.conn().await?, self.tenant(), role, identity, scope).await
    }

    /// Every assignment of `role`, oldest first.
    pub async fn assignments_of_role(&self, role: RoleId) -> Result<Vec<Assignment>, Error> {
        let name = role_name(self.conn().await?, &role.to_string()).await?;
        let rows = assignment::Entity::find()
            .filter(assignment::Column::RoleId.eq(role.to_string()))
            .order_by_asc(assignment::Column::Id)
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|m| to_assignment(m, name.clone()))
            .collect()
    }

    pub async fn delete_assignment(&self, id: AssignmentId) -> Result<(), Error> {
        assignment::Entity::delete_by_id(id.to_string())
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

async fn assignment_of(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    role: RoleId,
    identity: &IdentityId,
    scope: &Scope,
) -> Result<Option<Assignment>, Error> {
    let row = assignment::Entity::find()
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .filter(assignment::Column::RoleId.eq(role.to_string()))
        .filter(assignment::Column::IdentityId.eq(identity.as_str()))
        .filter(assignment::Column::Scope.eq(scope.as_str()))
        .one(conn)
        .await
        .map_err(db_error)?;
    with_role_name(conn, row).await
}

/// A stored assignment with its role's name, if there is one.
async fn with_role_name(
    conn: &impl ConnectionTrait,
    row: Option<assignment::Model>,
) -> Result<Option<Assignment>, Error> {
    match row {
        Some(m) => {
            let name = role_name(conn, &m.role_id).await?;
            to_assignment(m, name).map(Some)
        }
        None => Ok(None),
    }
}

async fn role_names(
    conn: &impl ConnectionTrait,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, Error> {
    use sea_orm::QuerySelect;
    let rows: Vec<(String, String)> = role::Entity::find()
        .select_only()
        .column(role::Column::Id)
        .column(role::Column::Name)
        .filter(role::Column::Id.is_in(ids.to_vec()))
        .into_tuple()
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(rows.into_iter().collect())
}

async fn find_assignment(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    id: AssignmentId,
) -> Result<Option<Assignment>, Error> {
    let row = assignment::Entity::find_by_id(id.to_string())
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .one(conn)
        .await
        .map_err(db_error)?;
    with_role_name(conn, row).await
}

impl super::Store {
    pub async fn find_assignment(
        &self,
        tenant: &TenantId,
        id: AssignmentId,
    ) -> Result<Option<Assignment>, Error> {
        find_assignment(self.conn(), tenant, id).await
    }

    /// Assignments ordered by id (time-ordered), optionally of one role and/or one identity,
    /// and (`within`) only those at or under one of the given scopes.
    pub async fn list_assignments(
        &self,
        tenant: &TenantId,
        role: Option<RoleId>,
        identity: Option<&IdentityId>,
        within: Option<&[Scope]>,
        page: &super::PageQuery,
    ) -> Result<Vec<Assignment>, Error> {
        use sea_orm::{Condition, QuerySelect};
        let mut q =
            assignment::Entity::find().filter(assignment::Column::TenantId.eq(tenant.as_str()));
        // A tenant-wide scope among them filters nothing.
        if let Some(scopes) = within.filter(|s| !s.iter().any(Scope::is_tenant)) {
            let mut any = Condition::any();
            for scope in scopes {
                // The scope itself, or a name continuing it past a '/' (whole pairs). Scope
                // characters include no LIKE wildcard but '_', which is escaped.
                let escaped = scope.as_str().replace('_', "\\_");
                any = any.add(assignment::Column::Scope.eq(scope.as_str())).add(
                    assignment::Column::Scope.like(
                        sea_orm::sea_query::LikeExpr::new(format!("{escaped}/%")).escape('\\'),
                    ),
                );
            }
            q = q.filter(any);
        }
        if let Some(role) = role {
            q = q.filter(assignment::Column::RoleId.eq(role.to_string()));
        }
        if let Some(identity) = identity {
            q = q.filter(assignment::Column::IdentityId.eq(identity.as_str()));
        }
        if let Some(after) = &page.after {
            q = q.filter(assignment::Column::Id.gt(after.as_str()));
        }
        let rows = q
            .order_by_asc(assignment::Column::Id)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = rows.iter().map(|r| r.role_id.clone()).collect();
        let names = role_names(self.conn(), &ids).await?;
        rows.into_iter()
            .map(|m| {
                let name = names.get(&m.role_id).cloned().unwrap_or_default();
                to_assignment(m, name)
            })
            .collect()
    }
}

impl WriteTx {
    pub async fn find_assignment(&self, id: AssignmentId) -> Result<Option<Assignment>, Error> {
        find_assignment(self.conn().await?, self.tenant(), id).await
    }
}

impl super::Store {
    /// ACTIVE assignments whose expire_time has passed, across tenants.
    pub async fn overdue_assignments(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> Result<Vec<Assignment>, Error> {
        use sea_orm::QuerySelect;
        let rows = assignment::Entity::find()
            .filter(assignment::Column::Status.eq(ACTIVE))
            .filter(assignment::Column::ExpireTime.lte(micros(now)))
            .order_by_asc(assignment::Column::ExpireTime)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = rows.iter().map(|r| r.role_id.clone()).collect();
        let names = role_names(self.conn(), &ids).await?;
        rows.into_iter()
            .map(|m| {
                let name = names.get(&m.role_id).cloned().unwrap_or_default();
                to_assignment(m, name)
            })
            .collect()
    }
}

impl WriteTx {
    /// Marks an assignment EXPIRED; false if it is gone or already marked.
    pub async fn mark_assignment_expired(&self, id: AssignmentId) -> Result<bool, Error> {
        use sea_orm::sea_query::Expr;
        let result = assignment::Entity::update_many()
            .col_expr(assignment::Column::Status, Expr::value("EXPIRED"))
            .col_expr(
                assignment::Column::UpdateTime,
                Expr::value(micros(self.now)),
            )
            .col_expr(
                assignment::Column::Revision,
                Expr::value(rev_i64(self.revision)),
            )
            .filter(assignment::Column::Id.eq(id.to_string()))
            .filter(assignment::Column::Status.eq(ACTIVE))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected == 1)
    }
}
