//! Wires configuration, storage, the index, the services and the server together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::domain::{Clock, SystemClock, TenantId};
use crate::engine::{Engine, Freshness};
use crate::grpc::{self, Tls, Tracing, Verifier};
use crate::health::{self, Health};
use crate::service::{BootstrapAdmin, ReplicaIdentity, Retention, Service, Settings, Sync};
use crate::shutdown::{Phase, Shutdown};
use crate::store::{Store, StoreOptions, TenantSnapshot};

/// Once the grace period is over and every call has been ended, how long the connections get to
/// deliver those last statuses before they are dropped.
const LAST_WRITES: Duration = Duration::from_secs(1);

/// A built server: migrated, index loaded, listeners bound, not yet serving.
#[derive(Debug)]
pub struct App {
    config: Config,
    listener: TcpListener,
    admin_listener: TcpListener,
    store: Store,
    engine: Arc<Engine>,
    service: Service,
    sync: Arc<Sync>,
    verifier: Arc<Verifier>,
    /// TLS on the gRPC port, when configured.
    tls: Option<Arc<Tls>>,
    shutdown: Shutdown,
    tracing: Tracing,
}

/// Opens the store described by `config`.
pub async fn connect(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&store_options(config))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("database.url (WARDEN_DATABASE_URL)")
}

fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
        connect_timeout: config.database.connect_timeout,
    }
}

/// Why the index could not be loaded from the database.
enum Unreachable {
    /// The database does not answer: a local snapshot may stand in.
    Database(anyhow::Error),
    /// It answers, and something else is wrong: start-up stops.
    No(anyhow::Error),
}

/// Connects, migrates (or checks the schema is current) and reads the index's content.
async fn load_from_database(config: &Config) -> Result<(Store, Vec<TenantSnapshot>), Unreachable> {
    let store = connect(config).await.map_err(Unreachable::Database)?;
    let loaded = async {
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
        store
            .load_snapshot()
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }
    .await;
    match loaded {
        Ok(snapshot) => Ok((store, snapshot)),
        // Gone while starting: as unreachable as never there.
        Err(e) if store.ping().await.is_err() => Err(Unreachable::Database(e)),
        Err(e) => Err(Unreachable::No(e)),
    }
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
        // Before the database: a missing or bad certificate file stops start-up at once.
        let tls = config
            .tls
            .enabled()
            // HTTP/1.1 is offered beside HTTP/2 for HTTP/JSON (curl) and gRPC-Web.
            .then(|| Tls::load(&config.tls, true))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        // A JWKS URL's keys are needed before the first call can be verified.
        verifier
            .load_remote_keys()
            .await
            .map_err(anyhow::Error::msg)?;
        let admins = config
            .bootstrap_admins
            .iter()
            .map(|a| BootstrapAdmin::parse(a, &default_tenant))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("bootstrap_admins: {e}"))?;

        let tracing = Tracing::new(
            config.otlp_endpoint.is_some(),
            config.sampler().map_err(anyhow::Error::msg)?,
        );
        let shutdown = Shutdown::new();
        let (store, engine, freshness, from_local) = match load_from_database(&config).await {
            Ok((store, snapshot)) => {
                let engine = Engine::from_snapshot(
                    snapshot
                        .into_iter()
                        .map(|t| (t.tenant, t.revision, t.deltas))
                        .collect(),
                );
                // Just loaded from the database: current now.
                let freshness = Freshness::new(config.max_staleness, chrono::Utc::now());
                (store, engine, freshness, false)
            }
            Err(Unreachable::Database(cause)) => match config.snapshot_path.as_deref() {
                Some(path) if path.exists() => {
                    let local = crate::engine::read_snapshot(path).map_err(|e| {
                        anyhow::anyhow!(
                            "the database is unreachable ({cause:#}) and the local snapshot cannot be read: {e}"
                        )
                    })?;
                    tracing::warn!(
                        error = format!("{cause:#}"),
                        path = %path.display(),
                        known_current_at = %local.current_at,
                        "database unreachable at start; answering decisions from the local snapshot within the staleness allowance"
                    );
                    let store = Store::connect_lazy(&store_options(&config))
                        .await
                        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
                    let freshness =
                        Freshness::from_snapshot(config.max_staleness, local.current_at);
                    (store, Engine::from_snapshot(local.tenants), freshness, true)
                }
                _ => return Err(cause),
            },
            Err(Unreachable::No(e)) => return Err(e),
        };
        let engine = Arc::new(engine);
        admin::install();
        let freshness = Arc::new(freshness);
        let sync = Arc::new(Sync::new(store.clone(), Arc::clone(&engine), freshness));
        if from_local {
            // The change log may no longer reach back to the snapshot: the first catch-up
            // reloads every tenant from the database instead.
            sync.reload_on_next_catch_up().await;
        }
        let settings = Settings {
            consistency_wait: config.consistency_wait,
            approval_ttl: config.approval_ttl,
            propagation_wait: config.propagation_wait,
            page_token_key: {
                use secrecy::ExposeSecret as _;
                match &config.auth.hs256_secret {
                    Some(secret) => {
                        crate::service::page_token_key(&[secret.expose_secret().as_bytes()])
                    }
                    None => crate::service::page_token_key(&[config
                        .database
                        .url
                        .expose_secret()
                        .as_bytes()]),
                }
            },
        };
        let replica = ReplicaIdentity {
            id: replica_id(),
            started: chrono::Utc::now(),
            heartbeat: config.heartbeat_interval,
            liveness: config.replica_liveness,
        };
        let service = Service::new(
            store.clone(),
            Arc::clone(&engine),
            Arc::clone(&sync),
            clock,
            settings,
            replica,
            shutdown.clone(),
        )
        .with_platform_tenant(
            config
                .platform_tenant
                .as_deref()
                .map(crate::domain::TenantId::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("platform_tenant: {e}"))?,
        );
        // A replica started from its snapshot has no database to write to yet: the admins were
        // bootstrapped by whoever wrote the data it holds, and the heartbeat registers it later.
        if !from_local {
            service
                .bootstrap(&admins)
                .await
                .map_err(|e| anyhow::anyhow!("bootstrap failed: {e:#}"))?;
            service
                .report_applied()
                .await
                .map_err(|e| anyhow::anyhow!("replica registration failed: {e:#}"))?;
        }

        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| {
                format!(
                    "listen_addr (WARDEN_LISTEN_ADDR): cannot bind {}",
                    config.listen_addr
                )
            })?;
        let admin_listener = TcpListener::bind(config.metrics_addr)
            .await
            .with_context(|| {
                format!(
                    "metrics_addr (WARDEN_METRICS_ADDR): cannot bind {}",
                    config.metrics_addr
                )
            })?;
        Ok(Self {
            config,
            listener,
            admin_listener,
            store,
            engine,
            service,
            sync,
            verifier,
            tls,
            shutdown,
            tracing,
        })
    }

    /// The bound admin HTTP address (`/metrics`, `/healthz`, `/readyz`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .expect("a bound listener has an address")
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

    /// Serves until `shutdown_requested` resolves, then drains as OPERATIONS.md says: health turns
    /// NOT_SERVING, the listener closes and connections get GOAWAY, open response streams end with
    /// UNAVAILABLE, in-flight RPCs get up to `shutdown_grace` to finish, and whatever still runs
    /// then is ended too. Returns once every connection is closed, at most `shutdown_grace` plus
    /// a second after `shutdown_requested` resolved.
    pub async fn run_until(
        self,
        shutdown_requested: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let (health, health_server) =
            Health::new(shutdown.clone(), Arc::clone(self.sync.freshness())).await;
        // Started from the local snapshot: the admin services are not serving yet.
        health.refresh().await;
        let router = grpc::router(
            self.service.clone(),
            Arc::clone(&self.verifier),
            health_server,
            &self.config.limits,
            &self.config.grpc_web_allowed_origins,
            shutdown.clone(),
            self.tracing.clone(),
        )?;

        let background = [
            tokio::spawn(
                Arc::clone(&self.sync).run(self.config.catch_up_interval, shutdown.clone()),
            ),
            tokio::spawn(self.service.clone().run_heartbeat(shutdown.clone())),
            tokio::spawn(self.service.clone().run_sweeper(
                self.config.sweep_interval,
                Retention {
                    changes: self.config.change_retention,
                },
                shutdown.clone(),
            )),
            tokio::spawn(health::watch_database(
                self.store.clone(),
                Arc::clone(&self.sync),
                health.clone(),
                self.config.database.ping_interval,
                self.config.database.connect_timeout,
                shutdown.clone(),
            )),
        ];
        let snapshot_task = self.config.snapshot_path.clone().map(|path| {
            tokio::spawn(crate::engine::keep_snapshot(
                Arc::clone(&self.engine),
                Arc::clone(self.sync.freshness()),
                path,
                self.config.snapshot_interval,
                shutdown.clone(),
            ))
        });
        let jwks_task = self.verifier.refresh_remote_keys();
        let tls_task = self.tls.as_ref().map(Tls::watch);
        let addr = self.local_addr();
        let metrics_addr = self.metrics_addr();
        let admin_state = AdminState {
            engine: Arc::clone(&self.engine),
            store: self.store.clone(),
            health: health.clone(),
        };
        let admin_task = tokio::spawn(admin::serve(
            self.admin_listener,
            admin_state,
            shutdown.reached(Phase::Stopped),
        ));

        let grace = self.config.shutdown_grace;
        let phases = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown_requested.await;
                tracing::info!(?grace, "shutdown requested; draining");
                // Health watchers hear NOT_SERVING before the drain ends their streams.
                health.announce_drain().await;
                shutdown.advance(Phase::Draining);
                tokio::time::sleep(grace).await;
                tracing::warn!("grace period over; ending the RPCs still running");
                shutdown.advance(Phase::Closing);
            })
        };

        // TCP keepalive probes an idle connection after a minute: a dead peer is found without
        // HTTP/2 PINGs, at no cost per request.
        let incoming = TcpIncoming::from(self.listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(std::time::Duration::from_secs(60)));
        tracing::info!(%addr, %metrics_addr, tls = self.tls.is_some(), "warden serving");
        let drained = shutdown.reached(Phase::Draining);
        let serve = match &self.tls {
            Some(tls) => futures::future::Either::Left(
                router.serve_with_incoming_shutdown(tls.incoming(incoming), drained),
            ),
            None => futures::future::Either::Right(
                router.serve_with_incoming_shutdown(incoming, drained),
            ),
        };
        // Once Closing has ended every call, connections close on their own; the bound only
        // guards against a peer that stops reading.
        let closed = shutdown.reached(Phase::Closing);
        let result = tokio::select! {
            r = serve => r.map_err(anyhow::Error::from),
            () = async {
                closed.await;
                tokio::time::sleep(LAST_WRITES).await;
            } => {
                tracing::warn!("connections still open after the grace period; dropping them");
                Ok(())
            }
        };
        phases.abort();
        for task in [jwks_task, tls_task].into_iter().flatten() {
            task.abort();
        }
        shutdown.advance(Phase::Stopped);
        for task in background {
            let _ = task.await;
        }
        // The last write of the snapshot, with the index as the server stopped.
        if let Some(task) = snapshot_task {
            let _ = task.await;
        }
        if let Ok(Err(e)) = admin_task.await {
            tracing::warn!(error = %e, "admin HTTP server failed");
        }
        self.store.close().await;
        tracing::info!("warden stopped");
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
