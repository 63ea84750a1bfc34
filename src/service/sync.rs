//! Keeps the engine current, in revision order: this replica's own commits right away, other
//! replicas' through PostgreSQL notifications, and a periodic catch-up from the change log as
//! the safety net for anything a dropped LISTEN connection missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::Mutex;

use crate::domain::{Change, Error, Revision};
use crate::engine::Engine;
use crate::shutdown::{Phase, Shutdown};
use crate::store::Store;

const CATCH_UP_BATCH: u64 = 1000;

#[derive(Debug)]
pub struct Sync {
    store: Store,
    engine: Arc<Engine>,
    /// Serialises appliers so revisions are applied exactly once and in order.
    applying: Mutex<()>,
}

impl Sync {
    pub fn new(store: Store, engine: Arc<Engine>) -> Self {
        Self {
            store,
            engine,
            applying: Mutex::new(()),
        }
    }

    /// Makes this replica's own committed change visible before its RPC returns. If other
    /// revisions precede it unseen, they are read from the log first.
    pub async fn apply_own(&self, change: &Change) -> Result<(), Error> {
        let _guard = self.applying.lock().await;
        let applied = self.engine.applied_revision();
        if change.revision.0 == applied.0 + 1 {
            self.engine.apply(change);
        } else if change.revision > applied {
            self.catch_up_locked().await?;
        }
        Ok(())
    }

    /// Applies every logged change after the applied revision.
    pub async fn catch_up(&self) -> Result<Revision, Error> {
        let _guard = self.applying.lock().await;
        self.catch_up_locked().await
    }

    async fn catch_up_locked(&self) -> Result<Revision, Error> {
        loop {
            let applied = self.engine.applied_revision();
            let batch = self
                .store
                .changes_after(applied, None, CATCH_UP_BATCH)
                .await?;
            let full = batch.len() as u64 == CATCH_UP_BATCH;
            for change in &batch {
                // Revisions commit in order (the counter row is locked until commit), so a gap
                // means a commit not visible yet: stop and let the next round pick it up.
                if change.revision.0 != self.engine.applied_revision().0 + 1 {
                    return Ok(self.engine.applied_revision());
                }
                self.engine.apply(change);
            }
            if !full {
                return Ok(self.engine.applied_revision());
            }
        }
    }

    /// Runs until the server stops: listens for other replicas' commits and catches up every
    /// `interval` regardless.
    pub async fn run(self: Arc<Self>, interval: Duration, shutdown: Shutdown) {
        let stopped = shutdown.reached(Phase::Stopped);
        tokio::pin!(stopped);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut notifications = None;
        let mut listening = false;
        loop {
            if !listening {
                match self.store.listen().await {
                    Ok(stream) => {
                        notifications = stream;
                        listening = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for changes; relying on periodic catch-up")
                    }
                }
                // Whatever was committed while not listening is read from the log.
                if let Err(e) = self.catch_up().await {
                    tracing::warn!(error = %e, "catch-up failed");
                }
            }
            let next = async {
                match notifications.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut stopped => return,
                _ = ticker.tick() => {
                    if let Err(e) = self.catch_up().await {
                        tracing::warn!(error = %e, "periodic catch-up failed");
                    }
                }
                item = next => match item {
                    Some(Ok(revision)) => {
                        if revision > self.engine.applied_revision()
                            && let Err(e) = self.catch_up().await
                        {
                            tracing::warn!(error = %e, "catch-up after notification failed");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "change notifications interrupted; reconnecting");
                        notifications = None;
                        listening = false;
                    }
                    None => {
                        tracing::warn!("change notification connection closed; reconnecting");
                        notifications = None;
                        listening = false;
                    }
                },
            }
        }
    }
}
