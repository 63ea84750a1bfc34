//! Proof of propagation (API rule 16): every replica records the revision it has applied in each
//! tenant, with a heartbeat; replicas silent for longer than the liveness window drop out.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Service;
use crate::domain::builtin::perm;
use crate::domain::{Caller, Error, Revision, TenantId};
use crate::shutdown::{Phase, Shutdown};
use crate::store::ReplicaState;

/// Where a revision has reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagation {
    pub revision: Revision,
    pub applied: u32,
    pub total: u32,
    pub lagging: Vec<ReplicaState>,
}

/// This replica's identity and heartbeat cadence.
#[derive(Debug, Clone)]
pub struct ReplicaIdentity {
    pub id: String,
    pub started: DateTime<Utc>,
    pub heartbeat: Duration,
    /// A replica whose last heartbeat is older than this is dead.
    pub liveness: Duration,
}

impl Service {
    fn live_since(&self) -> DateTime<Utc> {
        Utc::now()
            - chrono::Duration::from_std(self.replica.liveness)
                .unwrap_or(chrono::Duration::seconds(10))
    }

    /// How many live replicas have applied the caller's tenant's `revision`, and which have not.
    pub async fn get_propagation(
        &self,
        caller: &Caller,
        revision: Revision,
    ) -> Result<Propagation, Error> {
        self.authorize(caller, perm::CHECKS_RUN)?;
        self.propagation(&caller.tenant, revision).await
    }

    async fn propagation(
        &self,
        tenant: &TenantId,
        revision: Revision,
    ) -> Result<Propagation, Error> {
        let live = self.store.live_replicas(tenant, self.live_since()).await?;
        let total = u32::try_from(live.len()).unwrap_or(u32::MAX);
        let lagging: Vec<ReplicaState> =
            live.into_iter().filter(|r| r.applied < revision).collect();
        let applied = total - u32::try_from(lagging.len()).unwrap_or(0);
        Ok(Propagation {
            revision,
            applied,
            total,
            lagging,
        })
    }

    /// Returns once every live replica has applied `revision`, or DEADLINE_EXCEEDED naming the
    /// laggards after `timeout`.
    pub(super) async fn wait_for_propagation(
        &self,
        tenant: &TenantId,
        revision: Revision,
        timeout: Duration,
    ) -> Result<(), Error> {
        // Our own applied revision is recorded right away rather than at the next heartbeat.
        self.report_applied().await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = self.propagation(tenant, revision).await?;
            if state.lagging.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let names: Vec<String> = state
                    .lagging
                    .iter()
                    .map(|r| format!("{}@{}", r.id, r.applied))
                    .collect();
                return Err(Error::DeadlineExceeded {
                    message: format!(
                        "revision {revision} not yet applied by: {}",
                        names.join(", ")
                    ),
                    metadata: [("lagging".to_owned(), names.join(","))]
                        .into_iter()
                        .collect(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Records the revisions this replica applied since it last reported, and its heartbeat,
    /// now. Called at start-up too (reporting every tenant), so a replica counts for
    /// propagation before it serves its first request. A failed report is retried whole.
    pub async fn report_applied(&self) -> Result<(), Error> {
        let moved = self.engine.take_moved();
        let reported = self
            .store
            .heartbeat(&self.replica.id, &moved, Utc::now(), self.replica.started)
            .await;
        if reported.is_err() {
            self.engine.restore_moved(moved);
        }
        reported
    }

    /// Heartbeats every `heartbeat` and whenever the applied revision moves (at most every
    /// 20 ms), until the server stops; then removes this replica's row.
    pub async fn run_heartbeat(self, shutdown: Shutdown) {
        let stopped = shutdown.reached(Phase::Stopped);
        tokio::pin!(stopped);
        let mut applied = self.engine.subscribe();
        let mut ticker = tokio::time::interval(self.replica.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let ticked = tokio::select! {
                () = &mut stopped => break,
                _ = ticker.tick() => true,
                changed = applied.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    false
                }
            };
            if let Err(e) = self.report_applied().await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
            // Housekeeping on the slow tick only, not on every write-driven report.
            if ticked {
                let stale = Utc::now() - chrono::Duration::hours(1);
                let _ = self.store.remove_replicas(None, stale).await;
            }
        }
        let _ = self
            .store
            .remove_replicas(Some(&self.replica.id), Utc::now())
            .await;
    }
}
