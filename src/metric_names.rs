//! Every metric name Warden exports, in one place (the edge, the decision handlers, the health
//! probe and `/metrics` all record or describe through these). The `grpc_server_*` names and
//! labels are the ones the gRPC ecosystem's dashboards and alerts already use
//! (go-grpc-middleware's Prometheus provider); `deploy/` holds Warden's own.

/// Counter: RPCs started, by `grpc_service`, `grpc_method`, `grpc_type`.
pub const RPCS_STARTED: &str = "grpc_server_started_total";
/// Counter: RPCs finished, by `grpc_service`, `grpc_method`, `grpc_type` and `grpc_code`
/// (including the ones refused as unauthenticated, shed, timed out or cut by shutdown).
pub const RPCS_HANDLED: &str = "grpc_server_handled_total";
/// Histogram: seconds from the request's arrival to the last byte of its response, by
/// `grpc_service`, `grpc_method`, `grpc_type`.
pub const RPC_HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
/// Counter: `Check` and `BatchCheck` decisions, by `result` (allowed, denied, unknown_permission).
pub const CHECK_DECISIONS: &str = "warden_check_decisions_total";

/// Gauge: tenants in the in-memory index.
pub const INDEX_TENANTS: &str = "warden_index_tenants";
/// Gauge: assignments in the in-memory index.
pub const INDEX_ASSIGNMENTS: &str = "warden_index_assignments";
/// Gauge: the revisions this replica has applied, summed over tenants (revisions are per tenant,
/// so the sum counts changes and only ever grows).
pub const APPLIED_REVISION: &str = "warden_applied_revision";
/// Gauge: the tenants' newest committed revisions in the database, summed, sampled by the
/// periodic catch-up.
pub const DATABASE_REVISION: &str = "warden_database_revision";
/// Gauge: committed revisions this replica had not applied yet, summed over tenants, sampled by
/// the periodic catch-up before it applies them.
pub const REPLICATION_LAG: &str = "warden_replication_lag_revisions";
/// Seconds since the index was last known current while the database is unreachable; 0 while
/// it answers. Past `WARDEN_MAX_STALENESS`, decisions fail closed.
pub const INDEX_STALENESS: &str = "warden_index_staleness_seconds";
/// Gauges: the database pool.
pub const DB_POOL_CONNECTIONS: &str = "warden_db_pool_connections";
pub const DB_POOL_IDLE: &str = "warden_db_pool_idle_connections";
pub const DB_POOL_MAX: &str = "warden_db_pool_max_connections";
/// Gauge: 1 while gRPC health is SERVING (database reachable, not draining), else 0.
pub const UP: &str = "warden_up";

/// Buckets of `grpc_server_handling_seconds`: 100 µs (a Check) to 5 s (a slow write).
pub const RPC_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
