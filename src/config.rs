//! One typed configuration: defaults < config file < environment < command-line flags.
//! `validate()` runs before anything binds or connects and names the offending setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

/// Every setting Warden reads. Field paths are the `WARDEN_` environment names
/// (`database.url` = `WARDEN_DATABASE__URL`, alias `WARDEN_DATABASE_URL`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    /// TLS (and client certificates) on the gRPC port; off unless a certificate is configured.
    pub tls: TlsConfig,
    pub default_tenant: String,
    /// The tenant whose callers (holding `warden:tenants:*`) manage tenants with TenantService;
    /// none: TenantService refuses every call.
    pub platform_tenant: Option<String>,
    /// Browser origins allowed to call over gRPC-Web (CORS); empty: gRPC-Web and CORS are off
    /// (HTTP/1.1 is always accepted, for HTTP/JSON). `*` allows any origin.
    #[serde(deserialize_with = "list_or_csv")]
    pub grpc_web_allowed_origins: Vec<String>,
    /// How long after the database became unreachable decisions are still answered from the
    /// index (measured from the last completed catch-up); zero: none.
    #[serde(with = "humantime_serde")]
    pub max_staleness: Duration,
    /// Where the replica keeps a copy of its index (`WARDEN_SNAPSHOT_PATH`), to start from when
    /// the database is unreachable at start; none (the default): no snapshot.
    pub snapshot_path: Option<std::path::PathBuf>,
    /// How often the snapshot is rewritten while the index moves.
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    #[serde(deserialize_with = "list_or_csv")]
    pub bootstrap_admins: Vec<String>,
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint spans are exported to (`OTEL_EXPORTER_OTLP_ENDPOINT`); none: no export.
    pub otlp_endpoint: Option<String>,
    /// Which RPC traces are exported: the standard `OTEL_TRACES_SAMPLER` (`always_on`,
    /// `always_off`, `traceidratio`, `parentbased_always_on` (default), `parentbased_always_off`,
    /// `parentbased_traceidratio`).
    pub otel_traces_sampler: Option<String>,
    /// The sampler's ratio (`OTEL_TRACES_SAMPLER_ARG`), 0 to 1; the environment's `0.01` reads
    /// as a number, a file may give a string.
    #[serde(deserialize_with = "string_or_number")]
    pub otel_traces_sampler_arg: Option<String>,
    pub limits: LimitsConfig,
    #[serde(with = "humantime_serde")]
    pub approval_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Longest a `Check` with `at_least_revision` waits for this replica to catch up.
    #[serde(with = "humantime_serde")]
    pub consistency_wait: Duration,
    /// How often the change log is polled even when notifications flow.
    #[serde(with = "humantime_serde")]
    pub catch_up_interval: Duration,
    /// The longest a mutation with `wait_for_propagation` waits for every live replica.
    #[serde(with = "humantime_serde")]
    pub propagation_wait: Duration,
    /// How often a replica records its applied revision.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A replica silent for longer than this no longer counts as live.
    #[serde(with = "humantime_serde")]
    pub replica_liveness: Duration,
    /// How often expiry and retention run.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// How long WatchChanges can reach back.
    #[serde(with = "humantime_serde")]
    pub change_retention: Duration,
    /// Set by `serve --dev`, never from files or the environment.
    #[serde(skip)]
    pub dev: bool,
    /// Set by `serve --no-migrate`.
    #[serde(skip)]
    pub skip_migrations: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How often health pings the database; health turns NOT_SERVING when a ping fails.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub hs256_secret: Option<SecretString>,
    #[serde(deserialize_with = "paths_or_csv")]
    pub public_key_files: Vec<PathBuf>,
    /// A JWKS file path, or an `https://` URL (fetched at start-up, on an unknown key id and
    /// every few minutes).
    pub jwks: Option<String>,
    /// Extra trusted roots (PEM) for fetching the JWKS or the discovery document, for an
    /// identity provider with a private CA.
    pub ca_file: Option<PathBuf>,
    /// An `https://` issuer alone is enough: with no other key configured, its keys are found
    /// by OpenID Connect discovery.
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub tenant_claim: String,
    pub leeway_seconds: u64,
    /// More identity providers trusted beside the one above, each with its own audience and
    /// tenant rule (`WARDEN_AUTH_ISSUERS`: one per line, `key=value` pairs; see `IssuerConfig`).
    #[serde(deserialize_with = "issuer_entries")]
    pub issuers: Vec<IssuerConfig>,
}

/// One more trusted identity provider. A token whose `iss` is `issuer` is verified with this
/// provider's keys (discovered from the issuer, or from `jwks`) and audience only, and its
/// tenant is `tenant` when set, else its `tenant_claim` claim, else the default tenant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// An `https://` issuer URL (its keys are found by OpenID Connect discovery).
    pub issuer: String,
    pub audience: String,
    /// A JWKS URL, instead of discovery.
    #[serde(default)]
    pub jwks: Option<String>,
    /// Extra trusted roots (PEM) for this provider.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The claim naming the tenant (none: the tenant is `tenant`, or the default tenant).
    #[serde(default)]
    pub tenant_claim: Option<String>,
    /// Every token of this provider is in this tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

impl IssuerConfig {
    /// One line of `WARDEN_AUTH_ISSUERS`: `issuer=URL audience=AUD [jwks=URL] [ca_file=PATH]
    /// [tenant_claim=CLAIM] [tenant=TENANT]`.
    fn parse_line(line: &str) -> Result<Self, String> {
        let mut issuer = None;
        let mut entry = Self {
            issuer: String::new(),
            audience: String::new(),
            jwks: None,
            ca_file: None,
            tenant_claim: None,
            tenant: None,
        };
        for pair in line.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let value = value.to_owned();
            match key {
                "issuer" => issuer = Some(value),
                "audience" => entry.audience = value,
                "jwks" => entry.jwks = Some(value),
                "ca_file" => entry.ca_file = Some(PathBuf::from(value)),
                "tenant_claim" => entry.tenant_claim = Some(value),
                "tenant" => entry.tenant = Some(value),
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        entry.issuer = issuer.ok_or("no issuer=")?;
        Ok(entry)
    }
}

/// Issuers come as a TOML array of tables, or as lines of `key=value` pairs (environment).
fn issuer_entries<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IssuerConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entries {
        Tables(Vec<IssuerConfig>),
        Lines(String),
    }
    match Entries::deserialize(d)? {
        Entries::Tables(v) => Ok(v),
        Entries::Lines(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| IssuerConfig::parse_line(l).map_err(serde::de::Error::custom))
            .collect(),
    }
}

/// TLS on the gRPC port. The files are PEM and are read again when they change, so a rotated
/// certificate (cert-manager renewing a Secret) is served to new connections without a restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain, leaf first; with `key_file`, turns TLS on.
    pub cert_file: Option<PathBuf>,
    /// The private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// CA certificates client certificates must chain to; set: clients may present one, and a
    /// verified one authenticates its caller (its SPIFFE ID) where no bearer token is sent.
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are compared with what is being served.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl TlsConfig {
    /// True when the gRPC port speaks TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_request_bytes: usize,
    /// RPCs handled at once across all connections; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_rpcs: usize,
    /// RPCs one tenant may have in handlers at once (0: no limit), so one tenant cannot take
    /// the whole of `max_concurrent_rpcs`.
    pub per_tenant_concurrent_rpcs: usize,
    /// Mutating RPCs one tenant may start per second (0: no limit).
    pub per_tenant_writes_per_second: u32,
    #[serde(with = "humantime_serde")]
    pub rpc_timeout: Duration,
    /// HTTP/2 PING interval, so dead peers behind proxies and half-open NAT entries are noticed;
    /// zero (the default) sends none. hyper reads the clock and takes a lock on every frame while
    /// PINGs are on, a cost on every Check; TCP keepalive (always on) finds dead peers for free.
    #[serde(with = "humantime_serde")]
    pub http2_keepalive_interval: Duration,
    /// How long an unanswered keepalive PING may wait before the connection is closed.
    #[serde(with = "humantime_serde")]
    pub http2_keepalive_timeout: Duration,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            default_tenant: "default".into(),
            platform_tenant: None,
            max_staleness: Duration::from_secs(30),
            snapshot_path: None,
            snapshot_interval: Duration::from_secs(30),
            grpc_web_allowed_origins: Vec::new(),
            bootstrap_admins: Vec::new(),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            otel_traces_sampler: None,
            otel_traces_sampler_arg: None,
            limits: LimitsConfig::default(),
            approval_ttl: Duration::from_secs(7 * 24 * 3600),
            shutdown_grace: Duration::from_secs(20),
            consistency_wait: Duration::from_secs(2),
            catch_up_interval: Duration::from_secs(1),
            propagation_wait: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(2),
            replica_liveness: Duration::from_secs(10),
            sweep_interval: Duration::from_secs(5),
            change_retention: Duration::from_secs(7 * 24 * 3600),
            dev: false,
            skip_migrations: false,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://warden.db?mode=rwc"),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(1),
        }
    }
}

impl DatabaseConfig {
    /// Defaults, at `url` (tests).
    pub fn at(url: &str) -> Self {
        Self {
            url: SecretString::from(url.to_owned()),
            ..Self::default()
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_key_files: Vec::new(),
            jwks: None,
            ca_file: None,
            issuer: None,
            audience: None,
            tenant_claim: "tenant".into(),
            leeway_seconds: 5,
            issuers: Vec::new(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            reload_interval: Duration::from_secs(5),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 4 * 1024 * 1024,
            max_concurrent_rpcs: 1024,
            per_tenant_concurrent_rpcs: 512,
            per_tenant_writes_per_second: 0,
            rpc_timeout: Duration::from_secs(10),
            http2_keepalive_interval: Duration::ZERO,
            http2_keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// The short environment names OPERATIONS.md documents, and the setting each one sets.
const ENV_ALIASES: [(&str, &str); 15] = [
    ("auth_issuers", "auth.issuers"),
    ("database_url", "database.url"),
    ("database_max_connections", "database.max_connections"),
    ("auth_hs256_secret", "auth.hs256_secret"),
    ("auth_public_key_files", "auth.public_key_files"),
    ("auth_jwks", "auth.jwks"),
    ("auth_ca_file", "auth.ca_file"),
    ("auth_issuer", "auth.issuer"),
    ("auth_audience", "auth.audience"),
    ("auth_tenant_claim", "auth.tenant_claim"),
    ("auth_leeway_seconds", "auth.leeway_seconds"),
    ("tls_cert_file", "tls.cert_file"),
    ("tls_key_file", "tls.key_file"),
    ("tls_client_ca_file", "tls.client_ca_file"),
    ("log_format", "log_format"),
];

/// Top-level settings and sections the environment may set. Anything else under `WARDEN_` is
/// ignored rather than fatal: Kubernetes injects `WARDEN_SERVICE_HOST` and friends for a
/// Service named `warden`.
const ENV_ROOTS: [&str; 24] = [
    "listen_addr",
    "metrics_addr",
    "database",
    "auth",
    "tls",
    "default_tenant",
    "platform_tenant",
    "max_staleness",
    "snapshot_path",
    "snapshot_interval",
    "grpc_web_allowed_origins",
    "bootstrap_admins",
    "log_format",
    "otlp_endpoint",
    "limits",
    "approval_ttl",
    "shutdown_grace",
    "consistency_wait",
    "catch_up_interval",
    "propagation_wait",
    "heartbeat_interval",
    "replica_liveness",
    "sweep_interval",
    "change_retention",
];

/// Values given on the command line; each overrides every other source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "database.url")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads defaults, then `file`, then `WARDEN_*`, then `overrides`.
    pub fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Self, String> {
        // Missing settings take `Default` through `#[serde(default)]`.
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("WARDEN_")
            .map(|key| {
                let lower = key.as_str().to_ascii_lowercase();
                ENV_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == lower)
                    .map_or_else(|| lower.replace("__", "."), |(_, path)| (*path).to_owned())
                    .into()
            })
            .filter(|key| {
                ENV_ROOTS.iter().any(|root| {
                    key.as_str() == *root || key.as_str().starts_with(&format!("{root}."))
                })
            });

        figment = figment.merge(env);
        // The OpenTelemetry standard name, as every OTel SDK reads it; it wins over
        // WARDEN_OTLP_ENDPOINT. Empty means unset (a chart may render it empty).
        figment = figment.merge(
            Env::raw()
                .only(&["OTEL_EXPORTER_OTLP_ENDPOINT"])
                .map(|_| "otlp_endpoint".into()),
        );
        figment = figment.merge(
            Env::raw()
                .only(&["OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"])
                .map(|key| key.as_str().to_ascii_lowercase().into()),
        );
        if let Some(addr) = &overrides.listen_addr {
            figment = figment.merge(("listen_addr", addr));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(("database.url", url));
        }
        let mut config: Config = figment.extract().map_err(|e| describe_figment_error(&e))?;
        config.otlp_endpoint = config.otlp_endpoint.filter(|e| !e.trim().is_empty());
        Ok(config)
    }

    /// The RPC trace sampler the standard variables name.
    pub fn sampler(&self) -> Result<crate::telemetry::Sampler, String> {
        crate::telemetry::Sampler::parse(
            self.otel_traces_sampler.as_deref(),
            self.otel_traces_sampler_arg.as_deref(),
        )
    }

    /// Refuses settings that cannot work, naming the setting; secrets are never echoed.
    pub fn validate(&self) -> Result<(), String> {
        self.sampler()?;
        use secrecy::ExposeSecret as _;
        let url = self.database.url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err("database.url (WARDEN_DATABASE_URL): must start with sqlite:, postgres:// or postgresql://".into());
        }
        if self.database.max_connections == 0 {
            return Err(
                "database.max_connections (WARDEN_DATABASE_MAX_CONNECTIONS): must be at least 1"
                    .into(),
            );
        }
        crate::domain::TenantId::parse(&self.default_tenant)
            .map_err(|_| "default_tenant (WARDEN_DEFAULT_TENANT): must be 1-64 letters, digits, '.', '_' or '-'".to_owned())?;
        if let Some(platform) = &self.platform_tenant {
            crate::domain::TenantId::parse(platform).map_err(|_| {
                "platform_tenant (WARDEN_PLATFORM_TENANT): must be 1-64 letters, digits, '.', '_' or '-'"
                    .to_owned()
            })?;
        }
        if self.auth.tenant_claim.is_empty() {
            return Err("auth.tenant_claim (WARDEN_AUTH_TENANT_CLAIM): must not be empty".into());
        }
        if let Some(secret) = &self.auth.hs256_secret
            && secret.expose_secret().len() < 32
        {
            return Err(
                "auth.hs256_secret (WARDEN_AUTH_HS256_SECRET): must be at least 32 bytes".into(),
            );
        }
        let has_keys = self.auth.hs256_secret.is_some()
            || !self.auth.public_key_files.is_empty()
            || self.auth.jwks.is_some()
            || self
                .auth
                .issuer
                .as_deref()
                .is_some_and(|i| i.starts_with("https://") || i.starts_with("http://"));
        if !self.dev {
            if !has_keys {
                return Err("auth: no key configured; set WARDEN_AUTH_HS256_SECRET, WARDEN_AUTH_PUBLIC_KEY_FILES or WARDEN_AUTH_JWKS (or run `warden serve --dev` on a laptop)".into());
            }
            if self.auth.issuer.as_deref().is_none_or(str::is_empty) {
                return Err("auth.issuer (WARDEN_AUTH_ISSUER): required outside --dev".into());
            }
            if self.auth.audience.as_deref().is_none_or(str::is_empty) {
                return Err("auth.audience (WARDEN_AUTH_AUDIENCE): required outside --dev".into());
            }
        }
        for (i, extra) in self.auth.issuers.iter().enumerate() {
            let at = format!("auth.issuers[{i}] (WARDEN_AUTH_ISSUERS)");
            if !extra.issuer.starts_with("https://") && extra.jwks.is_none() {
                return Err(format!(
                    "{at}: issuer must be an https:// URL (its keys are discovered), or give jwks="
                ));
            }
            if extra.audience.is_empty() {
                return Err(format!("{at}: audience is required"));
            }
            if Some(&extra.issuer) == self.auth.issuer.as_ref()
                || self.auth.issuers[..i]
                    .iter()
                    .any(|o| o.issuer == extra.issuer)
            {
                return Err(format!("{at}: issuer {} is configured twice", extra.issuer));
            }
            if let Some(t) = &extra.tenant {
                crate::domain::TenantId::parse(t)
                    .map_err(|_| format!("{at}: tenant {t:?} is not a tenant id"))?;
            }
        }
        self.validate_tls()?;
        self.validate_snapshot()?;
        let tenant =
            crate::domain::TenantId::parse(&self.default_tenant).map_err(|e| e.to_string())?;
        for admin in &self.bootstrap_admins {
            crate::service::BootstrapAdmin::parse(admin, &tenant)
                .map_err(|_| format!("bootstrap_admins (WARDEN_BOOTSTRAP_ADMINS): {admin:?} is not `subject` or `tenant/subject`"))?;
        }
        if self.limits.max_request_bytes < 1024 {
            return Err("limits.max_request_bytes (WARDEN_LIMITS__MAX_REQUEST_BYTES): must be at least 1024".into());
        }
        if self.limits.max_concurrent_rpcs == 0 {
            return Err("limits.max_concurrent_rpcs (WARDEN_LIMITS__MAX_CONCURRENT_RPCS): must be at least 1".into());
        }
        if self.limits.rpc_timeout.is_zero() {
            return Err("limits.rpc_timeout (WARDEN_LIMITS__RPC_TIMEOUT): must be positive".into());
        }
        if self.limits.http2_keepalive_timeout.is_zero() {
            return Err("limits.http2_keepalive_timeout (WARDEN_LIMITS__HTTP2_KEEPALIVE_TIMEOUT): must be positive".into());
        }
        if self.database.ping_interval.is_zero() {
            return Err(
                "database.ping_interval (WARDEN_DATABASE__PING_INTERVAL): must be positive".into(),
            );
        }
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err("otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): must be an http:// or https:// URL, e.g. http://otel-collector:4317".into());
        }
        if self.approval_ttl.is_zero() {
            return Err("approval_ttl (WARDEN_APPROVAL_TTL): must be positive".into());
        }
        Ok(())
    }
}

impl Config {
    /// The snapshot can be written where it is configured.
    fn validate_snapshot(&self) -> Result<(), String> {
        if self.snapshot_interval.is_zero() {
            return Err("snapshot_interval (WARDEN_SNAPSHOT_INTERVAL): must be positive".into());
        }
        if let Some(path) = &self.snapshot_path {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if path.as_os_str().is_empty() || path.is_dir() || dir.is_some_and(|d| !d.is_dir()) {
                return Err(format!(
                    "snapshot_path (WARDEN_SNAPSHOT_PATH): {} must be a file in an existing directory",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    /// The TLS settings fit together; the files themselves are read when the server is built.
    fn validate_tls(&self) -> Result<(), String> {
        let tls = &self.tls;
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => {
                return Err("tls.key_file (WARDEN_TLS_KEY_FILE): required with tls.cert_file (WARDEN_TLS_CERT_FILE); set both or neither".into());
            }
            (None, Some(_)) => {
                return Err("tls.cert_file (WARDEN_TLS_CERT_FILE): required with tls.key_file (WARDEN_TLS_KEY_FILE); set both or neither".into());
            }
            _ => {}
        }
        if tls.client_ca_file.is_some() && !tls.enabled() {
            return Err("tls.client_ca_file (WARDEN_TLS_CLIENT_CA_FILE): client certificates need TLS; set WARDEN_TLS_CERT_FILE and WARDEN_TLS_KEY_FILE too".into());
        }
        if tls.reload_interval.is_zero() {
            return Err(
                "tls.reload_interval (WARDEN_TLS__RELOAD_INTERVAL): must be positive".into(),
            );
        }
        Ok(())
    }
}

fn describe_figment_error(err: &figment::Error) -> String {
    let path = err.path.join(".");
    let env = if path.is_empty() {
        String::new()
    } else {
        format!(" (WARDEN_{})", path.to_ascii_uppercase().replace('.', "__"))
    };
    let setting = if path.is_empty() {
        "configuration".to_owned()
    } else {
        path
    };
    // figment's message may quote the value; for secrets only the kind of problem is shown.
    let detail = match &err.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown setting `{field}`"),
        figment::error::Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {actual}")
        }
        figment::error::Kind::Message(msg)
            if setting.contains("secret") || setting.contains("url") =>
        {
            let _ = msg;
            "invalid value".to_owned()
        }
        other => other.to_string(),
    };
    format!("{setting}{env}: {detail}")
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrCsv {
    List(Vec<String>),
    Csv(String),
}

impl ListOrCsv {
    fn items(self) -> Vec<String> {
        match self {
            ListOrCsv::List(v) => v,
            ListOrCsv::Csv(s) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// Lists come from TOML arrays or from comma-separated environment values.
fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(ListOrCsv::deserialize(d)?.items())
}

fn paths_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    Ok(ListOrCsv::deserialize(d)?
        .items()
        .into_iter()
        .map(PathBuf::from)
        .collect())
}

/// An optional setting kept as text whether it arrives as a string or as a number.
fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Text(String),
        Float(f64),
        Int(i64),
    }
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None => None,
        Some(Value::Text(text)) => Some(text),
        Some(Value::Float(number)) => Some(number.to_string()),
        Some(Value::Int(number)) => Some(number.to_string()),
    })
}
