//! Idempotent writes (API rule 14): a retry with the same key, caller and body within 24 h gets
//! the first response and changes nothing; the same key with another body is refused.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Outcome, Service};
use crate::domain::{Caller, Error, Reason};

/// How long a key is remembered.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// A request's `idempotency-key` and a hash of its method and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored<T> {
    value: T,
    revision: crate::domain::Revision,
}

impl Service {
    /// The stored outcome of an earlier identical request, if one is remembered.
    pub(super) async fn replay<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        key: &IdempotencyKey,
    ) -> Result<Option<Outcome<T>>, Error> {
        let Some(stored) = self.store.find_idempotency_key(caller, &key.key).await? else {
            return Ok(None);
        };
        if stored.create_time + IDEMPOTENCY_WINDOW <= self.now() {
            return Ok(None);
        }
        if stored.request_hash != key.request_hash {
            return Err(Error::precondition(
                Reason::IdempotencyKeyReused,
                "this idempotency-key was used for a different request",
            )
            .with_meta("idempotency_key", key.key.clone()));
        }
        let stored: Stored<T> = serde_json::from_slice(&stored.response).map_err(|e| {
            Error::Internal(anyhow::Error::new(e).context("corrupt stored idempotent response"))
        })?;
        Ok(Some(Outcome {
            value: stored.value,
            revision: stored.revision,
            impact: None,
        }))
    }

    /// Called by `finish` inside the write's transaction, so the response is kept exactly when
    /// the write commits.
    pub(super) async fn remember(
        &self,
        tx: &crate::store::WriteTx,
        rpc: &str,
        key: &IdempotencyKey,
        value: &impl Serialize,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(&Stored {
            value,
            revision: tx.revision,
        })
        .map_err(|e| {
            Error::Internal(anyhow::Error::new(e).context("serialising idempotent response"))
        })?;
        tx.insert_idempotency_key(
            &key.key,
            rpc,
            &key.request_hash,
            bytes,
            tx.now - IDEMPOTENCY_WINDOW,
        )
        .await
    }
}
