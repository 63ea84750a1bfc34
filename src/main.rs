//! CLI dispatch only: parse, then serve, migrate, mint a token or run an admin command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use warden::cli::{Cli, Command, ServerCommand};
use warden::config::{Config, Overrides};
use warden::{App, telemetry};

// Every RPC allocates (h2 frames, headers, protobuf): under load glibc's malloc took about 15%
// of the server's CPU in a profile, mimalloc is the usual remedy for tokio/h2 servers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEV_DATABASE: &str = "sqlite://warden-dev.db?mode=rwc";
const DEV_ADMIN: &str = "dev-admin";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout and exit 0; a usage error exits 1, as the admin
        // commands' exit codes say (clap's own would be 2, which they use for NOT_FOUND).
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(warden::cli::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli.command {
        Command::Admin(command) => runtime.block_on(warden::cli::run(cli.client, command)),
        Command::Server(command) => match runtime.block_on(run(cli.config, command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    };
    // Connection tasks the drain already ended, and blocking database work, get a moment; the
    // process does not wait on anything past that.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn run(config_file: Option<PathBuf>, command: ServerCommand) -> anyhow::Result<()> {
    match command {
        ServerCommand::Serve {
            dev,
            no_migrate,
            listen_addr,
            database_url,
        } => {
            let overrides = Overrides {
                listen_addr,
                database_url,
            };
            let mut config =
                Config::load(config_file.as_deref(), &overrides).map_err(anyhow::Error::msg)?;
            config.skip_migrations = no_migrate;
            let telemetry = telemetry::init(config.log_format, config.otlp_endpoint.as_deref())?;
            if dev {
                prepare_dev(&mut config);
            }
            let app = App::build(config.clone()).await?;
            // Loading the index allocates several times its size in rows and intermediate
            // vectors, freed by now; mimalloc would keep those pages until this thread allocates
            // again, so an idle replica's RSS would depend on timing. Return them now.
            // SAFETY: mi_collect takes no pointers and may be called at any time.
            unsafe { libmimalloc_sys::mi_collect(true) };
            if dev {
                print_dev_banner(&config, app.local_addr())?;
            }
            let served = app.run_until(shutdown_signal()).await;
            // The last spans (the drain's included) leave before the process does.
            telemetry.shutdown().await;
            served
        }
        ServerCommand::Migrate { database_url } => {
            let overrides = Overrides {
                listen_addr: None,
                database_url,
            };
            let config =
                Config::load(config_file.as_deref(), &overrides).map_err(anyhow::Error::msg)?;
            let _telemetry = telemetry::init(config.log_format, None)?;
            let store = warden::app::connect(&config).await?;
            store
                .migrate()
                .await
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            store.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        ServerCommand::Token { sub, tenant, ttl } => {
            let config = Config::load(config_file.as_deref(), &Overrides::default())
                .map_err(anyhow::Error::msg)?;
            let secret = config
                .auth
                .hs256_secret
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("auth.hs256_secret (WARDEN_AUTH_HS256_SECRET) is not set; `warden token` signs with it"))?;
            let token = warden::grpc::mint_hs256(
                secret.expose_secret(),
                &sub,
                tenant.as_deref(),
                &config.auth.tenant_claim,
                config.auth.issuer.as_deref(),
                config.auth.audience.as_deref(),
                ttl,
            )
            .map_err(anyhow::Error::msg)?;
            println!("{token}");
            Ok(())
        }
        ServerCommand::Openapi => {
            print!("{}", warden::grpc::openapi_json()?);
            Ok(())
        }
    }
}

/// Dev mode: the dev database unless one is configured, a random secret unless one is
/// configured, and `dev-admin` bootstrapped.
fn prepare_dev(config: &mut Config) {
    config.dev = true;
    if config.database.url.expose_secret() == Config::default().database.url.expose_secret() {
        config.database.url = SecretString::from(DEV_DATABASE);
    }
    if config.auth.hs256_secret.is_none() {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        config.auth.hs256_secret = Some(SecretString::from(secret));
    }
    if !config.bootstrap_admins.iter().any(|a| a == DEV_ADMIN) {
        config.bootstrap_admins.push(DEV_ADMIN.to_owned());
    }
}

fn print_dev_banner(config: &Config, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let secret = config
        .auth
        .hs256_secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default();
    let token = warden::grpc::mint_hs256(
        &secret,
        DEV_ADMIN,
        None,
        &config.auth.tenant_claim,
        config.auth.issuer.as_deref(),
        config.auth.audience.as_deref(),
        std::time::Duration::from_secs(24 * 3600),
    )
    .map_err(anyhow::Error::msg)?;
    println!(
        "Warden dev server on {addr} (database: {}).",
        if config.database.url.expose_secret() == DEV_DATABASE {
            "./warden-dev.db"
        } else {
            "configured"
        }
    );
    println!("Admin token for `{DEV_ADMIN}` (valid 24h):\n\n{token}\n");
    println!("Try it:\n");
    // With TLS on, -insecure skips checking the server's certificate: fine on a laptop only.
    let transport = if config.tls.enabled() {
        println!(
            "(TLS is on: -insecure skips checking the certificate; use -cacert CA.pem with the CA that signed it)\n"
        );
        "-insecure"
    } else {
        "-plaintext"
    };
    println!(
        "grpcurl {transport} -H 'authorization: Bearer {token}' -d '{{\"name\": \"docs:read\", \"description\": \"Read documents\"}}' {addr} warden.v1.PermissionService/CreatePermission\n"
    );
    let (scheme, insecure) = if config.tls.enabled() {
        ("https", "-k ")
    } else {
        ("http", "")
    };
    println!(
        "or over HTTP/JSON (routes: {scheme}://{addr}/openapi.json):\n\ncurl {insecure}-H 'authorization: Bearer {token}' {scheme}://{addr}/v1/permissions\n"
    );
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
