//! Replica heartbeats: each running replica records the revision it has applied, so writers
//! can prove propagation (API rule 16).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::entity::replica;
use super::{Store, db_error, micros, rev_from, rev_i64};
use crate::domain::{Error, Revision};

/// One live replica and what it has applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub id: String,
    pub applied: Revision,
}

impl Store {
    /// Upserts this replica's applied revision and heartbeat.
    pub async fn heartbeat(
        &self,
        id: &str,
        applied: Revision,
        now: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(), Error> {
        replica::Entity::insert(replica::ActiveModel {
            id: Set(id.to_owned()),
            applied_revision: Set(rev_i64(applied)),
            heartbeat_time: Set(micros(now)),
            start_time: Set(micros(started)),
        })
        .on_conflict(
            OnConflict::column(replica::Column::Id)
                .update_columns([
                    replica::Column::AppliedRevision,
                    replica::Column::HeartbeatTime,
                ])
                .to_owned(),
        )
        .exec(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Replicas whose heartbeat is newer than `since`, by id.
    pub async fn live_replicas(&self, since: DateTime<Utc>) -> Result<Vec<ReplicaState>, Error> {
        let rows = replica::Entity::find()
            .filter(replica::Column::HeartbeatTime.gte(micros(since)))
            .order_by_asc(replica::Column::Id)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| ReplicaState {
                id: r.id,
                applied: rev_from(r.applied_revision),
            })
            .collect())
    }

    /// Forgets this replica (clean shutdown) or replicas silent since `before`.
    pub async fn remove_replicas(
        &self,
        id: Option<&str>,
        before: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut q = replica::Entity::delete_many();
        q = match id {
            Some(id) => q.filter(replica::Column::Id.eq(id)),
            None => q.filter(replica::Column::HeartbeatTime.lt(micros(before))),
        };
        q.exec(self.conn()).await.map_err(db_error)?;
        Ok(())
    }
}
