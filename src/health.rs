//! Readiness, per service (issue 14). `grpc.health.v1.Health` says, for `""` and the admin
//! services, SERVING while the database answers and the server is not draining; for
//! `warden.v1.AuthorizationService`, SERVING while decisions may be answered (the database
//! answers, or it stopped less than `WARDEN_MAX_STALENESS` after the last completed catch-up);
//! for `liveness`, SERVING as long as the process answers at all (it never depends on the
//! database). `/readyz` follows AuthorizationService. A probe task pings the database every
//! `database.ping_interval`; when the database comes back, the replica catches up from the
//! change log before it says so.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::engine::Freshness;
use crate::grpc::SERVICE_NAMES;
use crate::service::Sync;
use crate::shutdown::{Phase, Shutdown};
use crate::store::Store;

/// The decision service, which stays up through a database outage for a while.
const DECISIONS: &str = "warden.v1.AuthorizationService";
/// Answers SERVING while the process runs: for liveness probes.
pub const LIVENESS: &str = "liveness";

/// The server's readiness, shared by the gRPC health service, `/readyz` and the drain.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    freshness: Arc<Freshness>,
    /// What was last published: (database services, decisions).
    published: Arc<watch::Sender<(bool, bool)>>,
    shutdown: Shutdown,
}

impl Health {
    /// A readiness that starts SERVING (`App::build` has just reached the database) and the
    /// gRPC health service reporting it.
    pub async fn new(
        shutdown: Shutdown,
        freshness: Arc<Freshness>,
    ) -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, server) = tonic_health::server::health_reporter();
        let health = Self {
            reporter,
            freshness,
            published: Arc::new(watch::Sender::new((true, true))),
            shutdown,
        };
        health
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        health.publish_all(true, true).await;
        (health, server)
    }

    /// True while decisions are answered (`/readyz`, AuthorizationService).
    pub fn is_serving(&self) -> bool {
        self.shutdown.phase() == Phase::Serving
            && self.freshness.too_stale(chrono::Utc::now()).is_none()
    }

    /// Records whether the last database ping succeeded, and republishes what changed; logs the
    /// transitions (the database, and decisions entering and leaving degraded mode).
    pub async fn set_database_up(&self, up: bool) {
        if self.freshness.set_database_up(up) {
            if up {
                tracing::info!("database reachable again and caught up; health SERVING");
            } else {
                tracing::warn!(
                    "database unreachable; admin services NOT_SERVING, decisions answered from the index while it is fresh enough"
                );
            }
        }
        self.refresh().await;
    }

    /// Publishes the per-service statuses if they changed (staleness moves with the clock).
    pub async fn refresh(&self) {
        let staleness = self.freshness.staleness(chrono::Utc::now());
        crate::admin::record_staleness(staleness);
        let serving = self.shutdown.phase() == Phase::Serving;
        let database = serving && self.freshness.database_up();
        let decisions = self.is_serving();
        let before = *self.published.borrow();
        if before == (database, decisions) {
            return;
        }
        if before.1 && !decisions && serving {
            tracing::error!(
                staleness_s = staleness.as_secs_f64(),
                "index too stale to answer decisions; AuthorizationService NOT_SERVING, Checks fail closed"
            );
        } else if !before.1 && decisions {
            tracing::info!("decisions answered again; AuthorizationService SERVING");
        }
        self.published.send_replace((database, decisions));
        self.publish_all(database, decisions).await;
    }

    /// Tells the gRPC health watchers NOT_SERVING for good, ahead of the drain: the open Watch
    /// streams carry it before the drain ends them. (`is_serving` follows the shutdown phase.)
    pub async fn announce_drain(&self) {
        self.publish_all(false, false).await;
    }

    async fn publish_all(&self, database: bool, decisions: bool) {
        let status = |up: bool| {
            if up {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        // The services first and "" last: whoever sees "" change sees the rest changed too.
        for name in SERVICE_NAMES {
            let up = if name == DECISIONS {
                decisions
            } else {
                database
            };
            self.reporter.set_service_status(name, status(up)).await;
        }
        self.reporter.set_service_status("", status(database)).await;
    }
}

/// Pings the database every `interval` (each ping bounded by `timeout`) until the server stops,
/// flipping `health`.
pub async fn watch_database(
    store: Store,
    sync: Arc<Sync>,
    health: Health,
    interval: Duration,
    timeout: Duration,
    shutdown: Shutdown,
) {
    let stopped = shutdown.reached(Phase::Stopped);
    tokio::pin!(stopped);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            _ = ticker.tick() => {}
        }
        match tokio::time::timeout(timeout, store.ping()).await {
            Ok(Ok(())) if health.freshness.database_up() => health.refresh().await,
            // Back: catch up from the change log before saying so, so nothing is skipped.
            Ok(Ok(())) => match tokio::time::timeout(timeout, sync.catch_up()).await {
                Ok(Ok(_)) => health.set_database_up(true).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "catch-up after reconnection failed"),
                Err(_) => tracing::debug!("catch-up after reconnection timed out"),
            },
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "database ping failed");
                health.set_database_up(false).await;
            }
            Err(_) => {
                tracing::debug!(?timeout, "database ping timed out");
                health.set_database_up(false).await;
            }
        }
    }
}
