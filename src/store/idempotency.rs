//! Idempotency keys: the first response to a keyed request, kept for replays.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entity::idempotency_key;
use super::{Store, WriteTx, db_error, from_micros, is_unique_violation, micros};
use crate::domain::{Caller, Error};

/// A stored first response.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub request_hash: String,
    pub response: Vec<u8>,
    pub create_time: DateTime<Utc>,
}

impl Store {
    pub async fn find_idempotency_key(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<Option<StoredResponse>, Error> {
        let row = idempotency_key::Entity::find_by_id((
            caller.tenant.to_string(),
            caller.subject.to_string(),
            key.to_owned(),
        ))
        .one(self.conn())
        .await
        .map_err(db_error)?;
        Ok(row.map(|r| StoredResponse {
            request_hash: r.request_hash,
            response: r.response,
            create_time: from_micros(r.create_time),
        }))
    }

    /// Drops keys older than `before` (retention).
    pub async fn prune_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreateTime.lt(micros(before)))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected)
    }
}

impl WriteTx {
    /// Records the response of this write under `key`, replacing a key older than `stale_before`.
    /// A live key already there (a concurrent retry won) is ALREADY_EXISTS of kind
    /// "idempotency key", and this write rolls back.
    pub async fn insert_idempotency_key(
        &self,
        key: &str,
        rpc: &str,
        request_hash: &str,
        response: Vec<u8>,
        stale_before: DateTime<Utc>,
    ) -> Result<(), Error> {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::TenantId.eq(self.caller.tenant.as_str()))
            .filter(idempotency_key::Column::Caller.eq(self.caller.subject.as_str()))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(idempotency_key::Column::CreateTime.lt(micros(stale_before)))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        idempotency_key::ActiveModel {
            tenant_id: Set(self.caller.tenant.to_string()),
            caller: Set(self.caller.subject.to_string()),
            key: Set(key.to_owned()),
            rpc: Set(rpc.to_owned()),
            request_hash: Set(request_hash.to_owned()),
            response: Set(response),
            create_time: Set(micros(self.now)),
        }
        .insert(self.conn().await?)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::AlreadyExists {
                    kind: "idempotency key",
                    key: key.to_owned(),
                    existing_id: None,
                }
            } else {
                db_error(e)
            }
        })?;
        Ok(())
    }
}
