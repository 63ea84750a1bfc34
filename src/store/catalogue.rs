//! Permissions, roles and the links between them.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::entity::{assignment, permission, role, role_permission};
use super::{
    PageQuery, Store, WriteTx, db_error, from_micros, is_unique_violation, micros, rev_from,
    rev_i64, stored_id,
};
use crate::domain::{
    Error, Permission, PermissionId, PermissionRef, Ref, Role, RoleId, RoleRef, RoleSummary,
    TenantId,
};

pub(super) fn to_permission(m: permission::Model) -> Result<Permission, Error> {
    Ok(Permission {
        id: stored_id(PermissionId::parse, &m.id)?,
        tenant: TenantId::parse(&m.tenant_id)?,
        name: m.name,
        description: m.description,
        is_system: m.is_system,
        create_time: from_micros(m.create_time),
        update_time: from_micros(m.update_time),
        revision: rev_from(m.revision),
    })
}

async fn find_permission(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    r: &PermissionRef,
) -> Result<Option<Permission>, Error> {
    let mut q = permission::Entity::find().filter(permission::Column::TenantId.eq(tenant.as_str()));
    q = match r {
        Ref::Id(id) => q.filter(permission::Column::Id.eq(id.to_string())),
        Ref::Name(name) => q.filter(permission::Column::Name.eq(name.as_str())),
    };
    q.one(conn)
        .await
        .map_err(db_error)?
        .map(to_permission)
        .transpose()
}

/// Resolves every ref; NOT_FOUND lists all unknown ones at once.
async fn resolve_permissions(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    refs: &[PermissionRef],
) -> Result<Vec<Permission>, Error> {
    let ids: Vec<String> = refs
        .iter()
        .filter_map(|r| {
            if let Ref::Id(id) = r {
                Some(id.to_string())
            } else {
                None
            }
        })
        .collect();
    let names: Vec<String> = refs
        .iter()
        .filter_map(|r| {
            if let Ref::Name(n) = r {
                Some(n.clone())
            } else {
                None
            }
        })
        .collect();
    let rows = permission::Entity::find()
        .filter(permission::Column::TenantId.eq(tenant.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(permission::Column::Id.is_in(ids))
                .add(permission::Column::Name.is_in(names)),
        )
        .all(conn)
        .await
        .map_err(db_error)?;
    let found: Vec<Permission> = rows
        .into_iter()
        .map(to_permission)
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(refs.len());
    let mut missing = Vec::new();
    for r in refs {
        let hit = found.iter().find(|p| match r {
            Ref::Id(id) => p.id == *id,
            Ref::Name(name) => p.name == *name,
        });
        match hit {
            Some(p) => out.push(p.clone()),
            None => missing.push(r.key()),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(Error::NotFound {
            kind: "permission",
            keys: missing,
        })
    }
}

async fn find_role(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    r: &RoleRef,
) -> Result<Option<Role>, Error> {
    let mut q = role::Entity::find().filter(role::Column::TenantId.eq(tenant.as_str()));
    q = match r {
        Ref::Id(id) => q.filter(role::Column::Id.eq(id.to_string())),
        Ref::Name(name) => q.filter(role::Column::Name.eq(name.as_str())),
    };
    let Some(row) = q.one(conn).await.map_err(db_error)? else {
        return Ok(None);
    };
    let mut roles = with_permissions(conn, vec![row]).await?;
    Ok(roles.pop())
}

/// Turns role rows into roles with their sorted permission names, in two more queries.
pub(super) async fn with_permissions(
    conn: &impl ConnectionTrait,
    rows: Vec<role::Model>,
) -> Result<Vec<Role>, Error> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let links = role_permission::Entity::find()
        .filter(role_permission::Column::RoleId.is_in(ids))
        .all(conn)
        .await
        .map_err(db_error)?;
    let mut perm_ids: Vec<&str> = links.iter().map(|l| l.permission_id.as_str()).collect();
    perm_ids.sort_unstable();
    perm_ids.dedup();
    let names: HashMap<String, String> = permission::Entity::find()
        .select_only()
        .column(permission::Column::Id)
        .column(permission::Column::Name)
        .filter(permission::Column::Id.is_in(perm_ids))
        .into_tuple::<(String, String)>()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
    let mut by_role: HashMap<String, Vec<String>> = HashMap::new();
    for link in &links {
        if let Some(name) = names.get(&link.permission_id) {
            by_role
                .entry(link.role_id.clone())
                .or_default()
                .push(name.clone());
        }
    }
    // Included roles are stored as ids; their names come in one more query, when any.
    let mut included: HashMap<String, Vec<RoleId>> = HashMap::new();
    for m in &rows {
        let ids: Option<Vec<RoleId>> = super::json_column(m.included_roles.as_deref())?;
        if let Some(ids) = ids.filter(|ids| !ids.is_empty()) {
            included.insert(m.id.clone(), ids);
        }
    }
    let included_names: HashMap<String, String> = if included.is_empty() {
        HashMap::new()
    } else {
        let ids: Vec<String> = included
            .values()
            .flatten()
            .map(ToString::to_string)
            .collect();
        role::Entity::find()
            .select_only()
            .column(role::Column::Id)
            .column(role::Column::Name)
            .filter(role::Column::Id.is_in(ids))
            .into_tuple::<(String, String)>()
            .all(conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .collect()
    };
    rows.into_iter()
        .map(|m| {
            let mut permissions = by_role.remove(&m.id).unwrap_or_default();
            permissions.sort();
            let included_roles = included
                .remove(&m.id)
                .unwrap_or_default()
                .into_iter()
                .map(|id| RoleSummary {
                    name: included_names
                        .get(&id.to_string())
                        .cloned()
                        .unwrap_or_default(),
                    id,
                })
                .collect();
            Ok(Role {
                included_roles,
                id: stored_id(RoleId::parse, &m.id)?,
                tenant: TenantId::parse(&m.tenant_id)?,
                name: m.name,
                description: m.description,
                is_system: m.is_system,
                requires_approval: m.requires_approval,
                approval_policy: super::json_column(m.approval_policy.as_deref())?,
                protected: m.protected,
                permissions,
                create_time: from_micros(m.create_time),
                update_time: from_micros(m.update_time),
                revision: rev_from(m.revision),
            })
        })
        .collect()
}

impl Store {
    pub async fn find_permission(
        &self,
        tenant: &TenantId,
        r: &PermissionRef,
    ) -> Result<Option<Permission>, Error> {
        find_permission(self.conn(), tenant, r).await
    }

    /// Permissions ordered by name, after `page.after`, optionally by name prefix.
    pub async fn list_permissions(
        &self,
        tenant: &TenantId,
        prefix: &str,
        page: &PageQuery,
    ) -> Result<Vec<Permission>, Error> {
        let mut q =
            permission::Entity::find().filter(permission::Column::TenantId.eq(tenant.as_str()));
        if !prefix.is_empty() {
            q = q.filter(super::literal_prefix(permission::Column::Name, prefix));
        }
        if let Some(after) = &page.after {
            q = q.filter(permission::Column::Name.gt(after.as_str()));
        }
        let rows = q
            .order_by_asc(permission::Column::Name)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter().map(to_permission).collect()
    }

    pub async fn find_role(&self, tenant: &TenantId, r: &RoleRef) -> Result<Option<Role>, Error> {
        find_role(self.conn(), tenant, r).await
    }

    /// Roles ordered by name, after `page.after`, optionally by name prefix.
    pub async fn list_roles(
        &self,
        tenant: &TenantId,
        prefix: &str,
        page: &PageQuery,
    ) -> Result<Vec<Role>, Error> {
        let mut q = role::Entity::find().filter(role::Column::TenantId.eq(tenant.as_str()));
        if !prefix.is_empty() {
            q = q.filter(super::literal_prefix(role::Column::Name, prefix));
        }
        if let Some(after) = &page.after {
            q = q.filter(role::Column::Name.gt(after.as_str()));
        }
        let rows = q
            .order_by_asc(role::Column::Name)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        with_permissions(self.conn(), rows).await
    }
}

impl WriteTx {
    pub async fn find_permission(&self, r: &PermissionRef) -> Result<Option<Permission>, Error> {
        find_permission(self.conn().await?, self.tenant(), r).await
    }

    pub async fn resolve_permissions(
        &self,
        refs: &[PermissionRef],
    ) -> Result<Vec<Permission>, Error> {
        resolve_permissions(self.conn().await?, self.tenant(), refs).await
    }

    pub async fn find_role(&self, r: &RoleRef) -> Result<Option<Role>, Error> {
        find_role(self.conn().await?, self.tenant(), r).await
    }

    pub async fn insert_permission(&self, p: &Permission) -> Result<(), Error> {
        permission::ActiveModel {
            id: Set(p.id.to_string()),
            tenant_id: Set(p.tenant.to_string()),
            name: Set(p.name.clone()),
            description: Set(p.description.clone()),
            is_system: Set(p.is_system),
            create_time: Set(micros(p.create_time)),
            update_time: Set(micros(p.update_time)),
            revision: Set(rev_i64(p.revision)),
        }
        .insert(self.conn().await?)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::AlreadyExists {
                    kind: "permission",
                    key: p.name.clone(),
                    existing_id: None,
                }
            } else {
                db_error(e)
            }
        })?;
        Ok(())
    }

    pub async fn update_permission(&self, p: &Permission) -> Result<(), Error> {
        permission::Entity::update_many()
            .col_expr(
                permission::Column::Description,
                Expr::value(p.description.clone()),
            )
            .col_expr(
                permission::Column::UpdateTime,
                Expr::value(micros(p.update_time)),
            )
            .col_expr(
                permission::Column::Revision,
                Expr::value(rev_i64(p.revision)),
            )
            .filter(permission::Column::Id.eq(p.id.to_string()))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn delete_permission(&self, id: PermissionId) -> Result<(), Error> {
        role_permission::Entity::delete_many()
            .filter(role_permission::Column::PermissionId.eq(id.to_string()))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        permission::Entity::delete_by_id(id.to_string())
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Roles that grant `permission`, with their permissions.
    pub async fn roles_granting(&self, permission: PermissionId) -> Result<Vec<Role>, Error> {
        let role_ids: Vec<String> = role_permission::Entity::find()
            .select_only()
            .column(role_permission::Column::RoleId)
            .filter(role_permission::Column::PermissionId.eq(permission.to_string()))
            .into_tuple()
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        let rows = role::Entity::find()
            .filter(role::Column::Id.is_in(role_ids))
            .order_by_asc(role::Column::Name)
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        with_permissions(self.conn().await?, rows).await
    }

    pub async fn insert_role(&self, r: &Role, permissions: &[PermissionId]) -> Result<(), Error> {
        role::ActiveModel {
            id: Set(r.id.to_string()),
            tenant_id: Set(r.tenant.to_string()),
            name: Set(r.name.clone()),
            description: Set(r.description.clone()),
            is_system: Set(r.is_system),
            requires_approval: Set(r.requires_approval),
            approval_policy: Set(super::to_json_column(r.approval_policy.as_ref())),
            protected: Set(r.protected),
            included_roles: Set(included_json(r)),
            create_time: Set(micros(r.create_time)),
            update_time: Set(micros(r.update_time)),
            revision: Set(rev_i64(r.revision)),
        }
        .insert(self.conn().await?)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::AlreadyExists {
                    kind: "role",
                    key: r.name.clone(),
                    existing_id: None,
                }
            } else {
                db_error(e)
            }
        })?;
        self.link_permissions(r.id, permissions).await
    }

    /// Adds links; ones that already exist are left as they are.
    pub async fn link_permissions(
        &self,
        role: RoleId,
        permissions: &[PermissionId],
    ) -> Result<(), Error> {
        // One statement per 500 links; links the role already has are left as they are.
        for chunk in permissions.chunks(500) {
            role_permission::Entity::insert_many(chunk.iter().map(|p| {
                role_permission::ActiveModel {
                    role_id: Set(role.to_string()),
                    permission_id: Set(p.to_string()),
                    tenant_id: Set(self.tenant().to_string()),
                }
            }))
            .on_conflict(
                OnConflict::columns([
                    role_permission::Column::RoleId,
                    role_permission::Column::PermissionId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(self.conn().await?)
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    pub async fn unlink_permissions(
        &self,
        role: RoleId,
        permissions: &[PermissionId],
    ) -> Result<(), Error> {
        let ids: Vec<String> = permissions.iter().map(ToString::to_string).collect();
        role_permission::Entity::delete_many()
            .filter(role_permission::Column::RoleId.eq(role.to_string()))
            .filter(role_permission::Column::PermissionId.is_in(ids))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// The ids of the permissions a role grants.
    pub async fn role_permission_ids(&self, role: RoleId) -> Result<Vec<PermissionId>, Error> {
        let ids: Vec<String> = role_permission::Entity::find()
            .select_only()
            .column(role_permission::Column::PermissionId)
            .filter(role_permission::Column::RoleId.eq(role.to_string()))
            .into_tuple()
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        ids.iter()
            .map(|id| stored_id(PermissionId::parse, id))
            .collect()
    }

    /// Stamps a role's description, approval flag, update time and revision.
    pub async fn update_role(&self, r: &Role) -> Result<(), Error> {
        role::Entity::update_many()
            .col_expr(
                role::Column::Description,
                Expr::value(r.description.clone()),
            )
            .col_expr(
                role::Column::RequiresApproval,
                Expr::value(r.requires_approval),
            )
            .col_expr(
                role::Column::ApprovalPolicy,
                Expr::value(super::to_json_column(r.approval_policy.as_ref())),
            )
            .col_expr(role::Column::Protected, Expr::value(r.protected))
            .col_expr(role::Column::IncludedRoles, Expr::value(included_json(r)))
            .col_expr(role::Column::UpdateTime, Expr::value(micros(r.update_time)))
            .col_expr(role::Column::Revision, Expr::value(rev_i64(r.revision)))
            .filter(role::Column::Id.eq(r.id.to_string()))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Every role of the tenant with the ids of the roles it includes (the inclusion graph, for
    /// cycle, depth and in-use checks; a tenant has few roles).
    pub async fn inclusion_graph(&self) -> Result<HashMap<RoleId, (String, Vec<RoleId>)>, Error> {
        let rows: Vec<(String, String, Option<String>)> = role::Entity::find()
            .select_only()
            .column(role::Column::Id)
            .column(role::Column::Name)
            .column(role::Column::IncludedRoles)
            .filter(role::Column::TenantId.eq(self.tenant().as_str()))
            .into_tuple()
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|(id, name, included)| {
                let included: Option<Vec<RoleId>> = super::json_column(included.as_deref())?;
                Ok((
                    stored_id(RoleId::parse, &id)?,
                    (name, included.unwrap_or_default()),
                ))
            })
            .collect()
    }

    pub async fn delete_role(&self, id: RoleId) -> Result<(), Error> {
        role_permission::Entity::delete_many()
            .filter(role_permission::Column::RoleId.eq(id.to_string()))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        role::Entity::delete_by_id(id.to_string())
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn count_assignments_of_role(&self, id: RoleId) -> Result<u64, Error> {
        assignment::Entity::find()
            .filter(assignment::Column::RoleId.eq(id.to_string()))
            .count(self.conn().await?)
            .await
            .map_err(db_error)
    }
}

/// A role's included role ids as stored: JSON, or null for none.
fn included_json(r: &Role) -> Option<String> {
    let ids: Vec<RoleId> = r.included_roles.iter().map(|i| i.id).collect();
    (!ids.is_empty())
        .then(|| serde_json::to_string(&ids).ok())
        .flatten()
}
