//! The admin HTTP listener on `metrics_addr`: `/metrics` (Prometheus text), `/healthz` (the
//! process answers) and `/readyz` (200 only while decisions are answered: AuthorizationService's
//! gRPC health). Metric names are
//! declared in `crate::metric_names`; recording happens where the facts are (the edge, `Check`,
//! the health probe).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::health::Health;
use crate::metric_names::{
    APPLIED_REVISION, CHECK_DECISIONS, DATABASE_REVISION, DB_POOL_CONNECTIONS, DB_POOL_IDLE,
    DB_POOL_MAX, INDEX_ASSIGNMENTS, INDEX_STALENESS, INDEX_TENANTS, REPLICATION_LAG, RPC_BUCKETS,
    RPC_HANDLING_SECONDS, RPCS_HANDLED, RPCS_STARTED, UP,
};
use crate::store::Store;

/// The process-wide Prometheus recorder (the `metrics` facade has one global recorder).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(RPC_HANDLING_SECONDS.to_owned()), &RPC_BUCKETS)
            .expect("bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows only gauges");
        }
        describe();
        handle
    })
}

/// Installs the recorder; idempotent. Called by `App::build` before anything records.
pub fn install() {
    let _ = handle();
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(RPCS_STARTED, "RPCs started, by service, method and type");
    describe_counter!(
        RPCS_HANDLED,
        "RPCs finished, by service, method, type and gRPC code"
    );
    describe_histogram!(
        RPC_HANDLING_SECONDS,
        Unit::Seconds,
        "RPC duration until the last byte of the response, by service, method and type"
    );
    describe_counter!(CHECK_DECISIONS, "Check decisions, by result");
    describe_gauge!(INDEX_TENANTS, "Tenants in the in-memory index");
    describe_gauge!(INDEX_ASSIGNMENTS, "Assignments in the in-memory index");
    describe_gauge!(APPLIED_REVISION, "Newest revision this replica has applied");
    describe_gauge!(
        DATABASE_REVISION,
        "Newest committed revision in the database, sampled by the health ping"
    );
    describe_gauge!(
        REPLICATION_LAG,
        "Committed revisions this replica has not applied yet, sampled by the health ping"
    );
    describe_gauge!(
        INDEX_STALENESS,
        "Seconds since the index was last known current, while the database is unreachable (0 while it answers)"
    );
    describe_gauge!(DB_POOL_CONNECTIONS, "Open database connections");
    describe_gauge!(DB_POOL_IDLE, "Idle database connections");
    describe_gauge!(DB_POOL_MAX, "Database pool ceiling");
    describe_gauge!(UP, "1 while gRPC health is SERVING, else 0");
}

/// Records the applied revision and, when known, the database's newest and the lag between them.
/// How stale the index is (zero while the database answers), sampled by the health ping.
pub fn record_staleness(staleness: std::time::Duration) {
    metrics::gauge!(INDEX_STALENESS).set(staleness.as_secs_f64());
}

pub fn record_revisions(applied: u64, latest: Option<u64>) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(APPLIED_REVISION).set(applied as f64);
    if let Some(latest) = latest {
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!(DATABASE_REVISION).set(latest as f64);
            metrics::gauge!(REPLICATION_LAG).set(latest.saturating_sub(applied) as f64);
        }
    }
}

/// What the admin routes read.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub engine: Arc<Engine>,
    pub store: Store,
    pub health: Health,
}

impl AdminState {
    /// Gauges that are cheapest to read at scrape time rather than to keep current.
    #[allow(clippy::cast_precision_loss)]
    fn refresh_gauges(&self) {
        let index = self.engine.stats();
        metrics::gauge!(INDEX_TENANTS).set(index.tenants as f64);
        metrics::gauge!(INDEX_ASSIGNMENTS).set(index.assignments as f64);
        let applied: u64 = self
            .engine
            .applied_revisions()
            .iter()
            .map(|(_, r)| r.0)
            .sum();
        metrics::gauge!(APPLIED_REVISION).set(applied as f64);
        let pool = self.store.pool_stats();
        metrics::gauge!(DB_POOL_CONNECTIONS).set(f64::from(pool.size));
        metrics::gauge!(DB_POOL_IDLE).set(f64::from(pool.idle));
        metrics::gauge!(DB_POOL_MAX).set(f64::from(pool.max));
        metrics::gauge!(UP).set(if self.health.is_serving() { 1.0 } else { 0.0 });
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    state.refresh_gauges();
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.health.is_serving() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Serves the admin routes on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    // Histograms buffer samples until upkeep; scrapes run it too, but a server nobody scrapes
    // must not grow without bound.
    let upkeep = tokio::spawn(async {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
            handle().run_upkeep();
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
    upkeep.abort();
    result
}
