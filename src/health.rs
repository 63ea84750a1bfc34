//! Readiness. `grpc.health.v1.Health` (`""` and every `warden.v1` service) and `/readyz` say
//! SERVING only while the database answers and the server is not draining. A probe task pings
//! the database every `database.ping_interval`. (The replication-lag gauges come from the
//! periodic catch-up, which reads every tenant's revision anyway.)

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::grpc::SERVICE_NAMES;
use crate::shutdown::{Phase, Shutdown};
use crate::store::Store;

/// The server's readiness, shared by the gRPC health service, `/readyz` and the drain.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    database_up: Arc<watch::Sender<bool>>,
    shutdown: Shutdown,
}

impl Health {
    /// A readiness that starts SERVING (`App::build` has just reached the database) and the
    /// gRPC health service reporting it.
    pub async fn new(
        shutdown: Shutdown,
    ) -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, server) = tonic_health::server::health_reporter();
        let health = Self {
            reporter,
            database_up: Arc::new(watch::Sender::new(true)),
            shutdown,
        };
        health.publish().await;
        (health, server)
    }

    /// True while `/readyz` and the gRPC health service say SERVING.
    pub fn is_serving(&self) -> bool {
        *self.database_up.borrow() && self.shutdown.phase() == Phase::Serving
    }

    /// Records whether the last database ping succeeded; logs transitions only.
    pub async fn set_database_up(&self, up: bool) {
        let changed = self.database_up.send_if_modified(|now| {
            let changed = *now != up;
            *now = up;
            changed
        });
        if changed {
            if up {
                tracing::info!("database reachable again; health SERVING");
            } else {
                tracing::warn!("database unreachable; health NOT_SERVING");
            }
            self.publish().await;
        }
    }

    /// Tells the gRPC health watchers NOT_SERVING for good, ahead of the drain: the open Watch
    /// streams carry it before the drain ends them. (`is_serving` follows the shutdown phase.)
    pub async fn announce_drain(&self) {
        self.publish_status(ServingStatus::NotServing).await;
    }

    async fn publish(&self) {
        let status = if self.is_serving() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.publish_status(status).await;
    }

    async fn publish_status(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for name in SERVICE_NAMES {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// Pings the database every `interval` (each ping bounded by `timeout`) until the server stops,
/// flipping `health`.
pub async fn watch_database(
    store: Store,
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
            Ok(Ok(())) => health.set_database_up(true).await,
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
