//! The consistent snapshot the index is built from at start-up.

use std::collections::HashMap;

use futures::{Stream, TryStreamExt as _};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::entity::{
    assignment, change_request, group_member, permission, role_permission, tenant_revision,
};
use super::{Store, db_error, from_micros, rev_from, stored_id};
use crate::domain::{
    AssignmentId, ChangeRequestId, Delta, Error, GroupId, IdentityId, IdentityKind, PermissionId,
    Revision, RoleId, RoleRecord, Scope, TenantId,
};

impl Store {
    /// Every tenant's index content as deltas, with the tenant's revision they are exact at.
    /// Read in one snapshot transaction, so no commit is half-seen.
    pub async fn load_snapshot(&self) -> Result<Vec<TenantSnapshot>, Error> {
        let txn = self.begin_snapshot().await?;
        let revisions: HashMap<String, Revision> = tenant_revision::Entity::find()
            .all(&txn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|r| (r.tenant_id, rev_from(r.revision)))
            .collect();
        // Every table is streamed row by row into deltas: a million assignments must not sit in
        // memory twice more (driver rows, then decoded tuples) on top of the index being built.
        let mut tenants = ByTenant::default();
        for_each_row(permission::Entity::find().stream(&txn), |p| {
            tenants.push(
                p.tenant_id,
                Delta::PermissionPut {
                    id: stored_id(PermissionId::parse, &p.id)?,
                    name: p.name,
                },
            );
            Ok(())
        })
        .await?;
        let mut links: HashMap<String, Vec<PermissionId>> = HashMap::new();
        for_each_row(role_permission::Entity::find().stream(&txn), |l| {
            links
                .entry(l.role_id)
                .or_default()
                .push(stored_id(PermissionId::parse, &l.permission_id)?);
            Ok(())
        })
        .await?;
        for_each_row(super::entity::role::Entity::find().stream(&txn), |r| {
            let permissions = links.remove(&r.id).unwrap_or_default();
            tenants.push(
                r.tenant_id,
                Delta::RolePut {
                    id: stored_id(RoleId::parse, &r.id)?,
                    name: r.name,
                    permissions,
                    record: Some(Box::new(RoleRecord {
                        description: r.description,
                        is_system: r.is_system,
                        requires_approval: r.requires_approval,
                        approval_policy: super::json_column(r.approval_policy.as_deref())?,
                        protected: r.protected,
                        create_time: from_micros(r.create_time),
                        update_time: from_micros(r.update_time),
                        revision: rev_from(r.revision),
                    })),
                    included: super::json_column(r.included_roles.as_deref())?.unwrap_or_default(),
                },
            );
            Ok(())
        })
        .await?;
        let mut members: HashMap<(String, String), Vec<IdentityId>> = HashMap::new();
        for_each_row(group_member::Entity::find().stream(&txn), |m| {
            members
                .entry((m.tenant_id, m.group_id))
                .or_default()
                .push(IdentityId::parse("member", &m.identity_id)?);
            Ok(())
        })
        .await?;
        for ((tenant, group), list) in members {
            tenants.push(
                tenant,
                Delta::GroupMembersAdded {
                    group: stored_id(GroupId::parse, &group)?,
                    members: list,
                },
            );
        }
        // Each distinct scope is read into one shared name, which the index keeps: a million
        // assignments over a hundred thousand scopes hold a hundred thousand names.
        let mut scopes: hashbrown::HashMap<String, Scope> = hashbrown::HashMap::new();
        let mut share = |scope: String| -> Scope {
            if scope.is_empty() {
                return Scope::tenant();
            }
            scopes
                .entry(scope)
                .or_insert_with_key(|name| Scope::from_validated(name))
                .clone()
        };
        // Only the columns the index needs: a million rows must load in a few seconds.
        let assignments = assignment::Entity::find()
            .select_only()
            .column(assignment::Column::TenantId)
            .column(assignment::Column::Id)
            .column(assignment::Column::RoleId)
            .column(assignment::Column::IdentityId)
            .column(assignment::Column::IdentityKind)
            .column(assignment::Column::ExpireTime)
            .column(assignment::Column::Scope)
            .into_tuple::<(String, String, String, String, String, Option<i64>, String)>();
        for_each_row(
            assignments.stream(&txn),
            |(tenant, id, role, identity, kind, expire, scope)| {
                tenants.push(
                    tenant,
                    Delta::AssignmentPut {
                        id: stored_id(AssignmentId::parse, &id)?,
                        role: stored_id(RoleId::parse, &role)?,
                        identity: IdentityId::parse("identity", &identity)?,
                        kind: IdentityKind::parse(&kind).unwrap_or_default(),
                        expire_time: expire.map(from_micros),
                        scope: share(scope),
                    },
                );
                Ok(())
            },
        )
        .await?;
        // Decided requests are history: only the pending grants matter to the index.
        let pending = change_request::Entity::find()
            .filter(change_request::Column::Status.eq("PENDING"))
            .filter(change_request::Column::Kind.eq("ASSIGN"));
        for_each_row(pending.stream(&txn), |c| {
            tenants.push(
                c.tenant_id,
                Delta::PendingGrantPut {
                    id: stored_id(ChangeRequestId::parse, &c.id)?,
                    role: stored_id(RoleId::parse, &c.role_id)?,
                    identity: IdentityId::parse("identity", &c.identity_id)?,
                    scope: Scope::from_validated(c.scope),
                },
            );
            Ok(())
        })
        .await?;
        let disabled = super::entity::tenant::Entity::find()
            .filter(super::entity::tenant::Column::Disabled.eq(true));
        for_each_row(disabled.stream(&txn), |t| {
            tenants.push(t.id, Delta::TenantState { disabled: true });
            Ok(())
        })
        .await?;
        txn.commit().await.map_err(db_error)?;
        // A tenant that wrote but holds nothing now still has a revision to report.
        for tenant in revisions.keys() {
            if !tenants.positions.contains_key(tenant.as_str()) {
                tenants
                    .positions
                    .insert(tenant.clone(), tenants.lists.len());
                tenants.lists.push((tenant.clone(), Vec::new()));
            }
        }
        tenants
            .lists
            .into_iter()
            .map(|(t, deltas)| {
                Ok(TenantSnapshot {
                    revision: revisions.get(&t).copied().unwrap_or_default(),
                    tenant: TenantId::parse(&t)?,
                    deltas,
                })
            })
            .collect()
    }
}

/// One tenant's index content and the tenant revision it is exact at.
#[derive(Debug)]
pub struct TenantSnapshot {
    pub tenant: TenantId,
    pub revision: Revision,
    pub deltas: Vec<Delta>,
}

/// Feeds the rows of a streamed query to `each` one at a time, so none is held after it is used.
async fn for_each_row<T, S>(
    rows: impl Future<Output = Result<S, DbErr>>,
    mut each: impl FnMut(T) -> Result<(), Error>,
) -> Result<(), Error>
where
    S: Stream<Item = Result<T, DbErr>> + Unpin,
{
    let mut rows = rows.await.map_err(db_error)?;
    while let Some(row) = rows.try_next().await.map_err(db_error)? {
        each(row)?;
    }
    Ok(())
}

/// Deltas grouped by tenant, in the order tenants first appear. Rows of different tenants come
/// interleaved, so each costs a lookup: hashbrown's hasher (a `BTreeMap` of names spent 4 % of
/// the load's CPU comparing strings). The order is kept on purpose: the index is built tenant by
/// tenant in it, freeing each tenant's deltas as it goes. Built in a hash map's order instead,
/// a start with 1 M assignments peaked at 254 MiB rather than 191 (measured; most likely because
/// frees in allocation order empty whole allocator pages for the index to reuse).
#[derive(Default)]
struct ByTenant {
    lists: Vec<(String, Vec<Delta>)>,
    positions: hashbrown::HashMap<String, usize>,
}

impl ByTenant {
    fn push(&mut self, tenant: String, delta: Delta) {
        self.list(tenant).push(delta);
    }

    /// The tenant's deltas, an empty list appended in order if it has none yet.
    fn list(&mut self, tenant: String) -> &mut Vec<Delta> {
        let at = match self.positions.get(tenant.as_str()) {
            Some(&at) => at,
            None => {
                self.positions.insert(tenant.clone(), self.lists.len());
                self.lists.push((tenant, Vec::new()));
                self.lists.len() - 1
            }
        };
        &mut self.lists[at].1
    }
}
