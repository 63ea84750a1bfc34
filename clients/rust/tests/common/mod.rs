//! What the client tests share: a database per test (SQLite, or PostgreSQL through
//! `WARDEN_TEST_DATABASE_URL`, failing rather than skipping when it is unreachable), a server
//! on an ephemeral port, and tokens.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use warden::config::{AuthConfig, Config, DatabaseConfig};
use warden_client::{Client, TokenSource};

pub const SECRET: &str = "client-test-secret-that-is-long-enough";
pub const ADMIN: &str = "admin";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "warden";

/// A database for one test: a fresh SQLite file, or a fresh PostgreSQL database.
pub struct Database {
    pub url: String,
    _dir: Option<tempdir::Dir>,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Database {
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("warden-client-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            url: format!("sqlite://{}?mode=rwc", dir.join("warden.db").display()),
            _dir: Some(tempdir::Dir(dir)),
        }
    }

    /// A new database next to the one `WARDEN_TEST_DATABASE_URL` names, made with psql.
    pub fn postgres() -> Self {
        // The server's tests' default; unreachable, the test fails rather than skips.
        let admin = std::env::var("WARDEN_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("warden_client_{}", uuid::Uuid::now_v7().simple());
        let status = std::process::Command::new("psql")
            .args([
                admin.as_str(),
                "-w",
                "-X",
                "-q",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .status()
            .expect("psql runs");
        assert!(status.success(), "CREATE DATABASE {name}");
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
        Self {
            url: format!("{base}/{name}"),
            _dir: None,
        }
    }
}

pub fn config(url: &str) -> Config {
    Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        database: DatabaseConfig::at(url),
        auth: AuthConfig {
            hs256_secret: Some(SECRET.to_owned().into()),
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            ..AuthConfig::default()
        },
        bootstrap_admins: vec![ADMIN.into()],
        catch_up_interval: Duration::from_millis(200),
        ..Config::default()
    }
}

/// A running server; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn serve(url: &str) -> Server {
    serve_with(config(url)).await
}

pub async fn serve_with(config: Config) -> Server {
    let app = warden::App::build(config).await.expect("the server starts");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Server { addr, _stop: stop }
}

pub fn token(sub: &str) -> String {
    warden::grpc::mint_hs256(
        SECRET,
        sub,
        None,
        "tenant",
        Some(ISSUER),
        Some(AUDIENCE),
        Duration::from_secs(600),
    )
    .unwrap()
}

pub async fn client(server: &Server, sub: &str) -> Client {
    Client::builder(format!("http://{}", server.addr))
        .token(TokenSource::Static(token(sub)))
        .backoff(Duration::from_millis(20))
        .connect()
        .await
        .unwrap()
}
