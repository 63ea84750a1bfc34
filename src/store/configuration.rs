//! The whole of one tenant, read at once for configuration as code (ApplyConfiguration
//! compares it with a document; ExportConfiguration writes it as one).

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::assignments::to_assignment;
use super::catalogue::{to_permission, with_permissions};
use super::entity::{assignment, change_request, group, group_member, permission, role};
use super::{Store, WriteTx, db_error, from_micros, rev_from, stored_id};
use crate::domain::{
    Assignment, Error, Group, GroupId, IdentityId, Permission, Role, Scope, TenantId,
};

/// Everything a tenant holds, each list in name (or id) order.
#[derive(Debug, Clone, Default)]
pub struct TenantState {
    pub permissions: Vec<Permission>,
    pub roles: Vec<Role>,
    /// Each group with its members, sorted.
    pub groups: Vec<(Group, Vec<IdentityId>)>,
    pub assignments: Vec<Assignment>,
    /// Assignments waiting for approval: (role name, identity, scope) of each pending ASSIGN.
    pub pending: Vec<(String, IdentityId, Scope)>,
}

async fn tenant_state(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
) -> Result<TenantState, Error> {
    let permissions = permission::Entity::find()
        .filter(permission::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(permission::Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(to_permission)
        .collect::<Result<Vec<_>, _>>()?;
    let role_rows = role::Entity::find()
        .filter(role::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(role::Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?;
    let roles = with_permissions(conn, role_rows).await?;
    let names: HashMap<String, String> = roles
        .iter()
        .map(|r| (r.id.to_string(), r.name.clone()))
        .collect();
    let mut members: HashMap<String, Vec<IdentityId>> = HashMap::new();
    for m in group_member::Entity::find()
        .filter(group_member::Column::TenantId.eq(tenant.as_str()))
        .all(conn)
        .await
        .map_err(db_error)?
    {
        members
            .entry(m.group_id)
            .or_default()
            .push(IdentityId::parse("identity", &m.identity_id)?);
    }
    let groups = group::Entity::find()
        .filter(group::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(group::Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|m| {
            let mut of = members.remove(&m.id).unwrap_or_default();
            of.sort();
            let group = Group {
                id: stored_id(GroupId::parse, &m.id)?,
                tenant: TenantId::parse(&m.tenant_id)?,
                name: m.name,
                description: m.description,
                member_count: of.len() as u64,
                create_time: from_micros(m.create_time),
                update_time: from_micros(m.update_time),
                revision: rev_from(m.revision),
            };
            Ok((group, of))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let assignments = assignment::Entity::find()
        .filter(assignment::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(assignment::Column::Id)
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|m| {
            let name = names.get(&m.role_id).cloned().unwrap_or_default();
            to_assignment(m, name)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pending = change_request::Entity::find()
        .filter(change_request::Column::TenantId.eq(tenant.as_str()))
        .filter(change_request::Column::Status.eq("PENDING"))
        .filter(change_request::Column::Kind.eq("ASSIGN"))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|c| {
            Ok((
                c.role_name,
                IdentityId::parse("identity", &c.identity_id)?,
                Scope::from_validated(c.scope),
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(TenantState {
        permissions,
        roles,
        groups,
        assignments,
        pending,
    })
}

impl Store {
    pub async fn tenant_state(&self, tenant: &TenantId) -> Result<TenantState, Error> {
        tenant_state(self.conn(), tenant).await
    }
}

impl WriteTx {
    /// The tenant as this transaction sees it.
    pub async fn tenant_state(&self) -> Result<TenantState, Error> {
        tenant_state(self.conn().await?, self.tenant()).await
    }
}
