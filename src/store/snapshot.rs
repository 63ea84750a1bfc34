//! The consistent snapshot the index is built from at start-up.

use std::collections::HashMap;

use futures::TryStreamExt as _;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement,
};

use super::entity::{assignment, change_request, group_member, permission, role_permission};
use super::{Store, db_error, from_micros, rev_from, stored_id};
use crate::domain::{
    AssignmentId, ChangeRequestId, Delta, Error, GroupId, IdentityId, IdentityKind, PermissionId,
    Revision, RoleId, TenantId,
};

impl Store {
    /// Every tenant's index content as deltas, and the revision they are exact at. Read in one
    /// snapshot transaction, so no commit is half-seen.
    pub async fn load_snapshot(&self) -> Result<(Revision, Vec<(TenantId, Vec<Delta>)>), Error> {
        let txn = self.begin_snapshot().await?;
        let backend: DbBackend = txn.get_database_backend();
        let row = txn
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT revision FROM revision_counter WHERE id = 1",
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("revision counter row is missing")))?;
        let revision = rev_from(row.try_get::<i64>("", "revision").map_err(db_error)?);

        // Every table is streamed row by row into deltas: a million assignments must not sit in
        // memory twice more (driver rows, then decoded tuples) on top of the index being built.
        let mut tenants = ByTenant::default();
        {
            let mut rows = permission::Entity::find()
                .stream(&txn)
                .await
                .map_err(db_error)?;
            while let Some(p) = rows.try_next().await.map_err(db_error)? {
                tenants.push(
                    p.tenant_id,
                    Delta::PermissionPut {
                        id: stored_id(PermissionId::parse, &p.id)?,
                        name: p.name,
                    },
                );
            }
        }
        let mut links: HashMap<String, Vec<PermissionId>> = HashMap::new();
        {
            let mut rows = role_permission::Entity::find()
                .stream(&txn)
                .await
                .map_err(db_error)?;
            while let Some(l) = rows.try_next().await.map_err(db_error)? {
                links
                    .entry(l.role_id)
                    .or_default()
                    .push(stored_id(PermissionId::parse, &l.permission_id)?);
            }
        }
        {
            let mut rows = super::entity::role::Entity::find()
                .stream(&txn)
                .await
                .map_err(db_error)?;
            while let Some(r) = rows.try_next().await.map_err(db_error)? {
                let permissions = links.remove(&r.id).unwrap_or_default();
                tenants.push(
                    r.tenant_id,
                    Delta::RolePut {
                        id: stored_id(RoleId::parse, &r.id)?,
                        name: r.name,
                        permissions,
                    },
                );
            }
        }
        let mut members: HashMap<(String, String), Vec<IdentityId>> = HashMap::new();
        {
            let mut rows = group_member::Entity::find()
                .stream(&txn)
                .await
                .map_err(db_error)?;
            while let Some(m) = rows.try_next().await.map_err(db_error)? {
                members
                    .entry((m.tenant_id, m.group_id))
                    .or_default()
                    .push(IdentityId::parse("member", &m.identity_id)?);
            }
        }
        for ((tenant, group), list) in members {
            tenants.push(
                tenant,
                Delta::GroupMembersAdded {
                    group: stored_id(GroupId::parse, &group)?,
                    members: list,
                },
            );
        }
        {
            // Only the columns the index needs: a million rows must load in a few seconds.
            let mut rows = assignment::Entity::find()
                .select_only()
                .column(assignment::Column::TenantId)
                .column(assignment::Column::Id)
                .column(assignment::Column::RoleId)
                .column(assignment::Column::IdentityId)
                .column(assignment::Column::IdentityKind)
                .column(assignment::Column::ExpireTime)
                .into_tuple::<(String, String, String, String, String, Option<i64>)>()
                .stream(&txn)
                .await
                .map_err(db_error)?;
            while let Some((tenant, id, role, identity, kind, expire)) =
                rows.try_next().await.map_err(db_error)?
            {
                tenants.push(
                    tenant,
                    Delta::AssignmentPut {
                        id: stored_id(AssignmentId::parse, &id)?,
                        role: stored_id(RoleId::parse, &role)?,
                        identity: IdentityId::parse("identity", &identity)?,
                        kind: IdentityKind::parse(&kind).unwrap_or_default(),
                        expire_time: expire.map(from_micros),
                    },
                );
            }
        }
        {
            // Decided requests are history: only the pending grants matter to the index.
            let mut rows = change_request::Entity::find()
                .filter(change_request::Column::Status.eq("PENDING"))
                .filter(change_request::Column::Kind.eq("ASSIGN"))
                .stream(&txn)
                .await
                .map_err(db_error)?;
            while let Some(c) = rows.try_next().await.map_err(db_error)? {
                tenants.push(
                    c.tenant_id,
                    Delta::PendingGrantPut {
                        id: stored_id(ChangeRequestId::parse, &c.id)?,
                        role: stored_id(RoleId::parse, &c.role_id)?,
                        identity: IdentityId::parse("identity", &c.identity_id)?,
                    },
                );
            }
        }
        txn.commit().await.map_err(db_error)?;
        let tenants = tenants
            .lists
            .into_iter()
            .map(|(t, d)| Ok((TenantId::parse(&t)?, d)))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((revision, tenants))
    }
}

/// Deltas grouped by tenant, in the order tenants first appear. Rows of different tenants come
/// interleaved, so every row costs a lookup: a hash map with hashbrown's fast hasher (a
/// `BTreeMap` of names spent 4 % of the load's CPU comparing strings).
#[derive(Default)]
struct ByTenant {
    lists: Vec<(String, Vec<Delta>)>,
    positions: hashbrown::HashMap<String, usize>,
}

impl ByTenant {
    fn push(&mut self, tenant: String, delta: Delta) {
        let at = match self.positions.get(tenant.as_str()) {
            Some(&at) => at,
            None => {
                self.positions.insert(tenant.clone(), self.lists.len());
                self.lists.push((tenant, Vec::new()));
                self.lists.len() - 1
            }
        };
        self.lists[at].1.push(delta);
    }
}
