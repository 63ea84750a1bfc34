//! Wires configuration, storage, the index, the services and the server together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::Config;
use crate::domain::{Clock, SystemClock, TenantId};
use crate::engine::Engine;
use crate::grpc::{self, SERVICE_NAMES, Verifier};
use crate::service::{BootstrapAdmin, ReplicaIdentity, Retention, Service, Settings, Sync};
use crate::store::{Store, StoreOptions};

/// A built server: migrated, index loaded, listener bound, not yet serving.
#[derive(Debug)]
pub struct App {
    config: Config,
    listener: TcpListener,
    store: Store,
    service: Service,
    sync: Arc<Sync>,
    verifier: Arc<Verifier>,
}

/// Opens the store described by `config`.
pub async fn connect(config: &Config) -> anyhow::Result<Store> {
    let options = StoreOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
        connect_timeout: config.database.connect_timeout,
    };
    Store::connect(&options)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("database.url (WARDEN_DATABASE_URL)")
}

impl App {
    /// Builds with the wall clock.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Validates, connects, migrates (unless told not to), loads the index, bootstraps the
    /// admins and binds the listener.
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let default_tenant =
            TenantId::parse(&config.default_tenant).map_err(|e| anyhow::anyhow!("{e}"))?;
        let verifier = Arc::new(
            Verifier::from_config(&config.auth, default_tenant.clone())
                .map_err(anyhow::Error::msg)?,
        );
        let admins = config
            .bootstrap_admins
            .iter()
            .map(|a| BootstrapAdmin::parse(a, &default_tenant))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("bootstrap_admins: {e}"))?;

        let store = connect(&config).await?;
        if config.skip_migrations {
            if store
                .has_pending_migrations()
                .await
                .map_err(|e| anyhow::anyhow!("{e:#}"))?
            {
                anyhow::bail!(
                    "the database schema is behind this version; run `warden migrate` first"
                );
            }
        } else {
            store
                .migrate()
                .await
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        }
        let (revision, tenants) = store
            .load_snapshot()
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let engine = Arc::new(Engine::from_snapshot(revision, tenants));
        let sync = Arc::new(Sync::new(store.clone(), Arc::clone(&engine)));
        let settings = Settings {
            consistency_wait: config.consistency_wait,
            approval_ttl: config.approval_ttl,
            propagation_wait: config.propagation_wait,
        };
        let replica = ReplicaIdentity {
            id: replica_id(),
            started: chrono::Utc::now(),
            heartbeat: config.heartbeat_interval,
            liveness: config.replica_liveness,
        };
        let service = Service::new(
            store.clone(),
            engine,
            Arc::clone(&sync),
            clock,
            settings,
            replica,
        );
        service
            .bootstrap(&admins)
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap failed: {e:#}"))?;
        service
            .report_applied()
            .await
            .map_err(|e| anyhow::anyhow!("replica registration failed: {e:#}"))?;

        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| {
                format!(
                    "listen_addr (WARDEN_LISTEN_ADDR): cannot bind {}",
                    config.listen_addr
                )
            })?;
        Ok(Self {
            config,
            listener,
            store,
            service,
            sync,
            verifier,
        })
    }

    /// The bound gRPC address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The use-case layer, for tests that need to reach behind the API.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Serves until `shutdown` resolves, then drains: health flips to NOT_SERVING, new RPCs are
    /// refused, in-flight ones get up to `shutdown_grace` to finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        set_health(&reporter, ServingStatus::Serving).await;
        let router = grpc::router(
            self.service.clone(),
            Arc::clone(&self.verifier),
            health,
            &self.config.limits,
        )?;

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let background = [
            tokio::spawn(
                Arc::clone(&self.sync).run(self.config.catch_up_interval, stop_rx.clone()),
            ),
            tokio::spawn(self.service.clone().run_heartbeat(stop_rx.clone())),
            tokio::spawn(self.service.clone().run_sweeper(
                self.config.sweep_interval,
                Retention {
                    changes: self.config.change_retention,
                },
                stop_rx,
            )),
        ];

        let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
        let grace = self.config.shutdown_grace;
        let drain_reporter = reporter.clone();
        let drain_service = self.service.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested; draining");
            set_health(&drain_reporter, ServingStatus::NotServing).await;
            drain_service.start_draining();
            let _ = drain_tx.send(true);
        });
        let draining = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|d| *d).await;
        };

        let addr = self.local_addr();
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        tracing::info!(%addr, "warden serving");
        let serve = router.serve_with_incoming_shutdown(incoming, draining(drain_rx.clone()));
        // The drain is bounded: once the grace period after the signal is over, whatever is
        // still open (a long WatchChanges stream, say) is cut.
        let result = tokio::select! {
            r = serve => r.map_err(anyhow::Error::from),
            () = async {
                draining(drain_rx).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("grace period over; closing remaining connections");
                Ok(())
            }
        };
        let _ = stop_tx.send(true);
        for task in background {
            let _ = task.await;
        }
        self.store.close().await;
        result
    }
}

/// A replica id that is unique and still says which host it runs on.
fn replica_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "warden".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!(
        "{host}-{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}
