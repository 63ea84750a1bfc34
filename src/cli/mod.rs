//! Command-line definitions, and the admin commands: a gRPC client of a running server.
//!
//! `serve`, `migrate` and `token` run in-process (main.rs); every other subcommand talks to a
//! server over the public API (`--server`), as grpcurl would, so it needs nothing but a token.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod args;
mod client;
mod commands;
mod configuration;
mod document;
mod exit;
mod json;
mod output;

pub use args::AdminCommand;
pub use exit::{USAGE, run};
pub use output::Output;

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
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How the admin commands reach a server, and how they print.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Client options (admin commands)")]
pub struct ClientArgs {
    /// The server: http://HOST:PORT (plaintext) or https://HOST:PORT (TLS).
    #[arg(
        long,
        global = true,
        env = "WARDEN_SERVER",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    pub server: String,
    /// CA certificate(s), PEM, that an https:// server's certificate must chain to (default:
    /// the public web roots).
    #[arg(long, global = true, env = "WARDEN_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Bearer token sent with every call (`warden token`, or your identity provider's).
    #[arg(
        long,
        global = true,
        env = "WARDEN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Output: table (default), json (the messages in protobuf's JSON form) or yaml; `export`
    /// prints yaml unless json is asked for.
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<Output>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Server(ServerCommand),
    #[command(flatten)]
    Admin(AdminCommand),
}

/// Subcommands that run in this process: the server itself, and its upkeep.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
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
    /// Print the OpenAPI 3 document of the HTTP/JSON API (what the server serves at
    /// /openapi.json; openapi.json in the repository is this output).
    Openapi,
}
