//! Command-line definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Roles, permissions and authorization checks over gRPC"
)]
pub struct Cli {
    /// TOML configuration file (flags > environment > file > defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (applies pending migrations first).
    Serve {
        /// Laptop mode: SQLite ./warden-dev.db, a random HS256 secret, `dev-admin` bootstrapped,
        /// and a ready token and grpcurl command printed.
        #[arg(long)]
        dev: bool,
        /// Do not apply migrations; refuse to start if the schema is behind.
        #[arg(long)]
        no_migrate: bool,
        /// gRPC listen address (overrides WARDEN_LISTEN_ADDR).
        #[arg(long, value_name = "ADDR")]
        listen_addr: Option<String>,
        /// Database URL (overrides WARDEN_DATABASE_URL).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Apply pending migrations and exit.
    Migrate {
        /// Database URL (overrides WARDEN_DATABASE_URL).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Mint an HS256 token with the configured secret (development and tests).
    Token {
        /// The token's subject.
        #[arg(long)]
        sub: String,
        /// The tenant claim; absent means the default tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Lifetime, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
}
