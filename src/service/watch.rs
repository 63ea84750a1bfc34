//! WatchChanges (API rule 12): every change of the caller's tenant after one of its revisions, in
//! order, from the change log; then live, woken by the tenant's applied revision.

use tokio::sync::mpsc;

use super::Service;
use crate::domain::builtin::perm;
use crate::domain::{Caller, Change, Error, Revision};
use crate::shutdown::Phase;

const BATCH: u64 = 500;

impl Service {
    /// A channel of changes after `since`; OUT_OF_RANGE when the log no longer reaches back.
    pub async fn watch_changes(
        &self,
        caller: &Caller,
        since: Revision,
    ) -> Result<mpsc::Receiver<Result<Change, Error>>, Error> {
        self.authorize(caller, perm::AUDIT_READ)?;
        let tenant = caller.tenant.clone();
        let oldest = self.store.oldest_change(&tenant).await?;
        let current = self.engine.applied_revision(&tenant);
        let gone = if oldest.0 == 0 {
            since < current
        } else {
            since.0 + 1 < oldest.0
        };
        if gone {
            return Err(Error::OutOfRange {
                message: format!(
                    "revision {since} is older than the change log's retention; the oldest retained is {oldest}"
                ),
            });
        }
        if since > current
            && !self
                .engine
                .wait_for(&tenant, since, self.settings.consistency_wait)
                .await
        {
            return Err(Error::Unavailable {
                message: format!("revision {since} is ahead of this replica"),
            });
        }
        let (tx, rx) = mpsc::channel(64);
        let service = self.clone();
        tokio::spawn(async move {
            let mut applied = service.engine.subscribe_tenant(&tenant);
            let draining = service.shutdown.reached(Phase::Draining);
            tokio::pin!(draining);
            let mut last = since;
            loop {
                // Read everything committed so far, then wait for the index to move on.
                loop {
                    let batch = match service.store.changes_after(&tenant, last, BATCH).await {
                        Ok(batch) => batch,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let full = batch.len() as u64 == BATCH;
                    for change in batch {
                        last = change.revision;
                        if tx.send(Ok(change)).await.is_err() {
                            return; // the client went away
                        }
                    }
                    if !full {
                        break;
                    }
                }
                tokio::select! {
                    () = &mut draining => return,
                    _ = tx.closed() => return,
                    changed = applied.changed() => if changed.is_err() { return },
                }
            }
        });
        Ok(rx)
    }
}
