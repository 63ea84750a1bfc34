//! Nothing lost: a real `warden serve` process stopped with SIGTERM and started again shows
//! every change it committed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::helpers::*;

struct Server {
    child: Child,
    addr: String,
}

/// Starts the built binary on an ephemeral port and reads the bound address from its log.
fn start(url: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--listen-addr", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_DATABASE_URL", url)
        .env("WARDEN_AUTH_HS256_SECRET", SECRET)
        .env("WARDEN_AUTH_ISSUER", ISSUER)
        .env("WARDEN_AUTH_AUDIENCE", AUDIENCE)
        .env("WARDEN_BOOTSTRAP_ADMINS", ADMIN)
        .env("WARDEN_METRICS_ADDR", "127.0.0.1:0")
        .env("WARDEN_LOG_FORMAT", "json")
        .env("WARDEN_SHUTDOWN_GRACE", "5s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warden starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        assert!(
            Instant::now() < deadline,
            "warden did not report its address"
        );
        let line = lines.next().expect("warden exited before serving").unwrap();
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if json["fields"]["message"] == "warden serving" {
            break json["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

fn sigterm(server: &mut Server) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "warden did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn committed_changes_survive_a_sigterm_restart(backend: Backend) {
    // Arrange
    let db = TestDatabase::create(backend).await;
    let mut server = start(&db.url);
    let ch = channel(&server.addr).await;
    let mut permissions = permission_service_client::PermissionServiceClient::new(ch.clone());
    let mut roles = role_service_client::RoleServiceClient::new(ch.clone());
    for i in 0..10 {
        permissions
            .create_permission(authed(
                ADMIN,
                CreatePermissionRequest {
                    name: format!("p:{i}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
    let role = roles
        .create_role(authed(
            ADMIN,
            CreateRoleRequest {
                name: "editor".into(),
                permissions: vec![perm_name("p:1"), perm_name("p:2")],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let removed = roles
        .remove_permission_from_role(authed(
            ADMIN,
            RemovePermissionFromRoleRequest {
                role: Some(role_name("editor")),
                permission: Some(perm_name("p:2")),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // Act
    let status = sigterm(&mut server);
    assert!(status.success(), "exit status {status:?}");
    let restarted = start(&db.url);
    let ch = channel(&restarted.addr).await;

    // Assert
    let mut roles = role_service_client::RoleServiceClient::new(ch.clone());
    let after = roles
        .get_role(authed(
            ADMIN,
            GetRoleRequest {
                role: Some(role_id(&role.id)),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.permissions, vec!["p:1"]);
    assert_eq!(after.revision, removed.revision);
    let listed = permission_service_client::PermissionServiceClient::new(ch)
        .list_permissions(authed(
            ADMIN,
            ListPermissionsRequest {
                name_prefix: "p:".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.permissions.len(), 10);
    let mut restarted = restarted;
    assert!(sigterm(&mut restarted).success());
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_changes_survive_a_sigterm_restart_sqlite() {
    committed_changes_survive_a_sigterm_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_changes_survive_a_sigterm_restart_postgres() {
    committed_changes_survive_a_sigterm_restart(Backend::Postgres).await;
}
