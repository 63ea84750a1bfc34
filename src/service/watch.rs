//! WatchChanges (API rule 12): every change of the caller's tenant after one of its revisions, in
//! order, from the change log; then live, woken by the tenant's applied revision.

use tokio::sync::mpsc;

use super::Service;
use crate::domain::builtin::perm;
use crate::domain::{Caller, Change, Error, Revision};
use crate::shutdown::Phase;

const BATCH: u64 = 500;

/// Most deltas in one snapshot event: a tenant of a million assignments streams in parts well
/// under gRPC's default 4 MiB message limit.
const SNAPSHOT_PART: usize = 1_000;

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
        Ok(self.stream_after(tenant, since, Vec::new()))
    }

    /// The tenant's authorization state as changes (kind `snapshot`, the last `snapshot.complete`,
    /// at most `SNAPSHOT_PART` deltas each) at its current revision, then every change after it:
    /// what a local decision cache loads. Read under one lock of the index, so exact at that
    /// revision; the changes after it come from the log, so none is missed in between.
    pub async fn watch_changes_from_snapshot(
        &self,
        caller: &Caller,
    ) -> Result<mpsc::Receiver<Result<Change, Error>>, Error> {
        self.authorize(caller, perm::AUDIT_READ)?;
        let tenant = caller.tenant.clone();
        let (deltas, revision) = self.engine.read_tenant(&tenant, |index| {
            let mut deltas = Vec::new();
            if let Some(index) = index {
                // Writing into a Vec cannot fail.
                let _ = index.export(&mut |delta| {
                    deltas.push(delta);
                    Ok(())
                });
            }
            deltas
        });
        let time = chrono::Utc::now();
        let mut parts: Vec<Change> = deltas
            .chunks(SNAPSHOT_PART)
            .map(|chunk| Change {
                revision,
                tenant: tenant.clone(),
                time,
                kind: "snapshot".into(),
                target: format!("{} changes", chunk.len()),
                deltas: chunk.to_vec(),
            })
            .collect();
        match parts.last_mut() {
            Some(last) => last.kind = "snapshot.complete".into(),
            None => parts.push(Change {
                revision,
                tenant: tenant.clone(),
                time,
                kind: "snapshot.complete".into(),
                target: "0 changes".into(),
                deltas: Vec::new(),
            }),
        }
        Ok(self.stream_after(tenant, revision, parts))
    }

    /// Sends `first`, then the tenant's changes after `since` from the log, then each new one as
    /// it is applied, until the client goes away or the server drains.
    fn stream_after(
        &self,
        tenant: crate::domain::TenantId,
        since: Revision,
        first: Vec<Change>,
    ) -> mpsc::Receiver<Result<Change, Error>> {
        let (tx, rx) = mpsc::channel(64);
        let service = self.clone();
        tokio::spawn(async move {
            for change in first {
                if tx.send(Ok(change)).await.is_err() {
                    return;
                }
            }
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
        rx
    }
}
