//! Keeps the engine current, each tenant in its own revision order: this replica's own commits
//! right away, other replicas' through PostgreSQL notifications, and a periodic catch-up from
//! the change log as the safety net for anything a dropped LISTEN connection missed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::Mutex;

use crate::domain::{Change, Error, TenantId};
use crate::engine::{Engine, Freshness};
use crate::shutdown::{Phase, Shutdown};
use crate::store::Store;

const CATCH_UP_BATCH: u64 = 1000;

#[derive(Debug)]
pub struct Sync {
    store: Store,
    engine: Arc<Engine>,
    /// One lock per tenant serialises its appliers, so each of its revisions is applied exactly
    /// once and in order; tenants apply independently.
    applying: parking_lot::Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
    /// Advanced by every completed catch-up.
    freshness: Arc<Freshness>,
    /// Set when the index came from the local snapshot: the next catch-up reloads every tenant
    /// from the database, since the change log may no longer reach back that far.
    reload: Mutex<bool>,
}

impl Sync {
    pub fn new(store: Store, engine: Arc<Engine>, freshness: Arc<Freshness>) -> Self {
        Self {
            store,
            engine,
            applying: parking_lot::Mutex::new(HashMap::new()),
            freshness,
            reload: Mutex::new(false),
        }
    }

    /// Makes the next catch-up a full reload from the database.
    pub async fn reload_on_next_catch_up(&self) {
        *self.reload.lock().await = true;
    }

    /// Replaces every tenant's index with the database's content, each under its applier lock
    /// (so no change is applied to the old content meanwhile). Tenants the database no longer
    /// has are emptied.
    async fn reload(&self) -> Result<(), Error> {
        let snapshot = self.store.load_snapshot().await?;
        let mut gone: std::collections::HashSet<TenantId> = self
            .engine
            .applied_revisions()
            .into_iter()
            .map(|(tenant, _)| tenant)
            .collect();
        for tenant in snapshot {
            gone.remove(&tenant.tenant);
            let lock = self.tenant_lock(&tenant.tenant);
            let _guard = lock.lock().await;
            self.engine
                .replace_tenant(&tenant.tenant, tenant.revision, &tenant.deltas);
        }
        for tenant in gone {
            let lock = self.tenant_lock(&tenant);
            let _guard = lock.lock().await;
            self.engine
                .replace_tenant(&tenant, crate::domain::Revision(0), &[]);
        }
        Ok(())
    }

    /// How current the index is known to be.
    pub fn freshness(&self) -> &Arc<Freshness> {
        &self.freshness
    }

    fn tenant_lock(&self, tenant: &TenantId) -> Arc<Mutex<()>> {
        self.applying
            .lock()
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    /// Makes this replica's own committed change visible before its RPC returns. If other
    /// revisions of the tenant precede it unseen, they are read from the log first.
    pub async fn apply_own(&self, change: &Change) -> Result<(), Error> {
        let lock = self.tenant_lock(&change.tenant);
        let _guard = lock.lock().await;
        let applied = self.engine.applied_revision(&change.tenant);
        if change.revision.0 == applied.0 + 1 {
            self.engine.apply(change);
        } else if change.revision > applied {
            self.catch_up_tenant_locked(&change.tenant).await?;
        }
        Ok(())
    }

    /// Applies every logged change of `tenant` after its applied revision.
    pub async fn catch_up_tenant(&self, tenant: &TenantId) -> Result<(), Error> {
        let lock = self.tenant_lock(tenant);
        let _guard = lock.lock().await;
        self.catch_up_tenant_locked(tenant).await
    }

    async fn catch_up_tenant_locked(&self, tenant: &TenantId) -> Result<(), Error> {
        loop {
            let applied = self.engine.applied_revision(tenant);
            let batch = self
                .store
                .changes_after(tenant, applied, CATCH_UP_BATCH)
                .await?;
            let full = batch.len() as u64 == CATCH_UP_BATCH;
            for change in &batch {
                // A tenant's revisions commit in order (its counter row is locked until
                // commit), so a gap means a commit not visible yet: stop and let the next round
                // pick it up.
                if change.revision.0 != self.engine.applied_revision(tenant).0 + 1 {
                    return Ok(());
                }
                self.engine.apply(change);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Brings every tenant up to the revision the database holds for it. Returns how many
    /// revisions, summed over tenants, this replica was behind before it started (the
    /// replication lag) and the database's sum, for the metrics.
    pub async fn catch_up(&self) -> Result<(u64, u64), Error> {
        // Everything committed before this instant is in the index once the loop completes.
        let started = chrono::Utc::now();
        {
            // Held through the reload, so a catch-up racing it (the reconnection's and the
            // periodic one) waits instead of reporting current an index that is not reloaded
            // yet; a failed reload stays pending for the next one.
            let mut pending = self.reload.lock().await;
            if *pending {
                self.reload().await?;
                *pending = false;
                tracing::info!(
                    "index reloaded from the database after starting from the local snapshot"
                );
            }
        }
        let latest = self.store.tenant_revisions().await?;
        let mut behind = 0u64;
        let mut total = 0u64;
        for (tenant, revision) in latest {
            total = total.saturating_add(revision.0);
            let applied = self.engine.applied_revision(&tenant);
            if revision > applied {
                behind = behind.saturating_add(revision.0 - applied.0);
                self.catch_up_tenant(&tenant).await?;
            }
        }
        self.freshness.mark_current(started);
        Ok((behind, total))
    }

    /// `catch_up`, recording the lag it found; failures are logged.
    async fn catch_up_logged(&self, what: &str) {
        match self.catch_up().await {
            Ok((behind, total)) => {
                crate::admin::record_revisions(total.saturating_sub(behind), Some(total))
            }
            Err(e) => tracing::warn!(error = %e, "{what} failed"),
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
                self.catch_up_logged("catch-up").await;
            }
            let next = async {
                match notifications.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut stopped => return,
                _ = ticker.tick() => self.catch_up_logged("periodic catch-up").await,
                item = next => match item {
                    Some(Ok((tenant, revision))) => {
                        if revision > self.engine.applied_revision(&tenant)
                            && let Err(e) = self.catch_up_tenant(&tenant).await
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
