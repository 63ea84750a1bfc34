//! Background upkeep: expiry of assignments and change requests, and retention of the change
//! log and idempotency keys. Decisions never wait for it: the index honours expire_time itself.

use std::time::Duration;

use super::Service;
use crate::domain::{AuditRecord, Caller, Error, IdentityId, TenantId};
use crate::service::IDEMPOTENCY_WINDOW;
use crate::shutdown::{Phase, Shutdown};

/// How long the change log keeps history for WatchChanges.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub changes: Duration,
}

fn system_caller(tenant: &TenantId, rpc: &str) -> Result<Caller, Error> {
    Ok(Caller {
        subject: IdentityId::parse("actor", "warden:system")?,
        tenant: tenant.clone(),
        request_id: format!("{rpc}-{}", uuid::Uuid::now_v7()),
        rpc: rpc.into(),
        trace_id: String::new(),
    })
}

impl Service {
    /// One pass of upkeep; returns how many records it changed.
    pub async fn sweep(&self, retention: Retention) -> Result<usize, Error> {
        let mut changed = self.expire_overdue_requests().await?;
        changed += self.mark_expired_assignments().await?;
        let now = self.now();
        let keep =
            chrono::Duration::from_std(retention.changes).unwrap_or(chrono::Duration::days(7));
        self.store.prune_changes(now - keep).await?;
        self.store
            .prune_idempotency_keys(now - IDEMPOTENCY_WINDOW)
            .await?;
        Ok(changed)
    }

    /// Records (and audits) that assignments reached their expire_time. They stopped granting
    /// at that instant already; this makes it visible in the data and the audit trail.
    async fn mark_expired_assignments(&self) -> Result<usize, Error> {
        let overdue = self.store.overdue_assignments(self.now(), 100).await?;
        let mut marked = 0;
        for a in overdue {
            let caller = system_caller(&a.tenant, "sweeper")?;
            let mut tx = self.begin(&caller).await?;
            if !tx.mark_assignment_expired(a.id).await? {
                continue;
            }
            tx.audit(AuditRecord {
                target_kind: "assignment",
                target_id: a.id.to_string(),
                before: serde_json::to_value(&a).ok(),
                after: None,
                reason: "expired".into(),
            });
            let change = tx.commit("assignment.expired", &a.id.to_string()).await?;
            self.sync.apply_own(&change).await?;
            marked += 1;
        }
        Ok(marked)
    }

    /// Runs `sweep` every `interval` until the server stops.
    pub async fn run_sweeper(self, interval: Duration, retention: Retention, shutdown: Shutdown) {
        let stopped = shutdown.reached(Phase::Stopped);
        tokio::pin!(stopped);
        // The first pass one interval after start, not at once: decisions honour expire_time
        // themselves, and a pass racing start-up (or a test driving `sweep` itself) helps no one.
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = ticker.tick() => {
                    if let Err(e) = self.sweep(retention).await {
                        tracing::warn!(error = %e, "sweep failed");
                    }
                }
            }
        }
    }
}
