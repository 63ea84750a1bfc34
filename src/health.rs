//! Readiness. `grpc.health.v1.Health` (`""` and every `warden.v1` service) and `/readyz` say
//! SERVING only while the database answers and the server is not draining. A probe task pings
//! the database every `database.ping_interval`; that ping also reads the newest committed
//! revision, which gives the replication-lag gauge for free.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::engine::Engine;
use crate::grpc::SERVICE_NAMES;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    database_up: bool,
    draining: bool,
}

impl State {
    fn serving(self) -> bool {
        self.database_up && !self.draining
    }
}

/// The server's readiness, shared by the gRPC health service, `/readyz` and the drain.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    state: Arc<watch::Sender<State>>,
}

impl Health {
    /// A readiness that starts SERVING (`App::build` has just reached the database) and the
    /// gRPC health service reporting it.
    pub async fn new() -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, server) = tonic_health::server::health_reporter();
        let health = Self {
            reporter,
            state: Arc::new(watch::Sender::new(State {
                database_up: true,
                draining: false,
            })),
        };
        health.publish().await;
        (health, server)
    }

    /// True while `/readyz` and the gRPC health service say SERVING.
    pub fn is_serving(&self) -> bool {
        self.state.borrow().serving()
    }

    /// Records whether the last database ping succeeded; logs transitions only.
    pub async fn set_database_up(&self, up: bool) {
        let changed = self.state.send_if_modified(|s| {
            let changed = s.database_up != up;
            s.database_up = up;
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

    /// NOT_SERVING for good: the server is shutting down.
    pub async fn start_draining(&self) {
        self.state.send_modify(|s| s.draining = true);
        self.publish().await;
    }

    async fn publish(&self) {
        let status = if self.is_serving() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for name in SERVICE_NAMES {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// Pings the database every `interval` (each ping bounded by `timeout`) until `stop` turns true,
/// flipping `health` and updating the revision gauges.
pub async fn watch_database(
    store: Store,
    engine: Arc<Engine>,
    health: Health,
    interval: Duration,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = ticker.tick() => {}
        }
        match tokio::time::timeout(timeout, store.latest_revision()).await {
            Ok(Ok(latest)) => {
                health.set_database_up(true).await;
                let applied = engine.applied_revision();
                crate::admin::record_revisions(applied.0, Some(latest.0));
            }
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
