//! Replica heartbeats: each running replica records the revision it has applied in each
//! tenant, so writers can prove propagation (API rule 16).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use std::collections::HashMap;

use super::entity::{replica, replica_tenant};
use super::{Store, db_error, micros, rev_from, rev_i64};
use crate::domain::{Error, Revision, TenantId};

/// One live replica and what it has applied in the tenant asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub id: String,
    pub applied: Revision,
}

impl Store {
    /// Upserts this replica's heartbeat and the revisions it has applied in `applied`'s
    /// tenants (those that moved since the last heartbeat).
    pub async fn heartbeat(
        &self,
        id: &str,
        applied: &[(TenantId, Revision)],
        now: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(), Error> {
        // Many rows per statement: a replica starting with 10 k tenants reports them all.
        for chunk in applied.chunks(500) {
            replica_tenant::Entity::insert_many(chunk.iter().map(|(tenant, revision)| {
                replica_tenant::ActiveModel {
                    replica_id: Set(id.to_owned()),
                    tenant_id: Set(tenant.to_string()),
                    applied_revision: Set(rev_i64(*revision)),
                }
            }))
            .on_conflict(
                OnConflict::columns([
                    replica_tenant::Column::ReplicaId,
                    replica_tenant::Column::TenantId,
                ])
                .update_column(replica_tenant::Column::AppliedRevision)
                .to_owned(),
            )
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        }
        replica::Entity::insert(replica::ActiveModel {
            id: Set(id.to_owned()),
            applied_revision: Set(0),
            heartbeat_time: Set(micros(now)),
            start_time: Set(micros(started)),
        })
        .on_conflict(
            OnConflict::column(replica::Column::Id)
                .update_column(replica::Column::HeartbeatTime)
                .to_owned(),
        )
        .exec(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Replicas whose heartbeat is newer than `since`, by id, with what each has applied in
    /// `tenant` (0 if it reported nothing for it yet).
    pub async fn live_replicas(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<ReplicaState>, Error> {
        let rows = replica::Entity::find()
            .filter(replica::Column::HeartbeatTime.gte(micros(since)))
            .order_by_asc(replica::Column::Id)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let applied: HashMap<String, i64> = replica_tenant::Entity::find()
            .filter(replica_tenant::Column::TenantId.eq(tenant.as_str()))
            .all(self.conn())
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|r| (r.replica_id, r.applied_revision))
            .collect();
        Ok(rows
            .into_iter()
            .map(|r| ReplicaState {
                applied: rev_from(applied.get(&r.id).copied().unwrap_or(0)),
                id: r.id,
            })
            .collect())
    }

    /// Forgets this replica (clean shutdown) or replicas silent since `before`.
    pub async fn remove_replicas(
        &self,
        id: Option<&str>,
        before: DateTime<Utc>,
    ) -> Result<(), Error> {
        let gone: Vec<String> = match id {
            Some(id) => vec![id.to_owned()],
            None => replica::Entity::find()
                .filter(replica::Column::HeartbeatTime.lt(micros(before)))
                .all(self.conn())
                .await
                .map_err(db_error)?
                .into_iter()
                .map(|r| r.id)
                .collect(),
        };
        if gone.is_empty() {
            return Ok(());
        }
        replica_tenant::Entity::delete_many()
            .filter(replica_tenant::Column::ReplicaId.is_in(gone.clone()))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        replica::Entity::delete_many()
            .filter(replica::Column::Id.is_in(gone))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
