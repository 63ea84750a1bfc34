//! Staying up when the database goes away (issue 14, item 1): the TCP proxy between one replica
//! and PostgreSQL is stopped. Decisions keep being answered from the index for the staleness
//! window and then fail closed; writes fail fast; health is per service; when the proxy comes
//! back, a revocation made meanwhile on another replica is applied before the replica answers
//! again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;

use crate::helpers::*;

async fn health(app: &TestApp, service: &str) -> ServingStatus {
    let response = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health answers");
    ServingStatus::try_from(response.into_inner().status).unwrap()
}

async fn check_on(app: &TestApp, identity: &str) -> Result<bool, tonic::Status> {
    app.authz()
        .check(authed(ADMIN, check(identity, "docs:read", 0)))
        .await
        .map(|r| r.into_inner().allowed)
}

/// Polls `probe` every 50 ms for up to `limit` until it returns Some.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    mut probe: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(found) = probe().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_outlive_a_database_outage_for_the_staleness_window_then_fail_closed() {
    // Arrange: replica A reaches PostgreSQL through the proxy, replica B directly.
    let db = Arc::new(TestDatabase::create(Backend::Postgres).await);
    let (_, target) = through(&db.url, "127.0.0.1:1".parse().unwrap());
    let mut proxy = Proxy::start(&target).await;
    let via_proxy = through(&db.url, proxy.addr).0;
    let staleness = Duration::from_secs(3);
    let a = spawn_on(
        Arc::clone(&db),
        move |_| {
            let mut config = test_config(&via_proxy);
            config.max_staleness = staleness;
            config.database.ping_interval = Duration::from_millis(200);
            config.database.connect_timeout = Duration::from_secs(1);
            config
        },
        None,
    )
    .await;
    let mut b = spawn_on(Arc::clone(&db), test_config, None).await;
    b.create_role("reader", &["docs:read"]).await;
    let grant = b.assign("reader", "alice").await;
    let seen = eventually(Duration::from_secs(5), || async {
        check_on(&a, "alice").await.ok().filter(|allowed| *allowed)
    })
    .await;
    assert!(seen.is_some(), "A has alice's grant before the outage");

    // Act: the database goes away for A.
    proxy.stop().await;
    let cut_at = Instant::now();

    // Assert: writes on A fail fast with UNAVAILABLE and a RetryInfo.
    let refused = eventually(Duration::from_secs(3), || async {
        let write = a
            .permissions()
            .create_permission(authed(
                ADMIN,
                CreatePermissionRequest {
                    name: "x:y".into(),
                    ..Default::default()
                },
            ))
            .await;
        write.err().filter(|e| e.code() == Code::Unavailable)
    })
    .await
    .expect("writes are refused while the database is away");
    let write_refused_after = cut_at.elapsed();
    assert!(
        write_refused_after < Duration::from_secs(2),
        "{write_refused_after:?}"
    );
    assert!(refused.get_details_retry_info().is_some(), "{refused:?}");
    // Health per service: the admin services follow the database (from the next ping),
    // decisions and liveness stay.
    let down = eventually(Duration::from_secs(2), || async {
        (health(&a, "").await == ServingStatus::NotServing).then_some(())
    })
    .await;
    assert!(down.is_some(), "\"\" follows the database");
    assert_eq!(
        health(&a, "warden.v1.RoleService").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health(&a, "warden.v1.AuthorizationService").await,
        ServingStatus::Serving
    );
    assert_eq!(health(&a, "liveness").await, ServingStatus::Serving);
    // Known down: a write is refused at once, not after a connection timeout.
    let started = Instant::now();
    let err = a
        .permissions()
        .create_permission(authed(
            ADMIN,
            CreatePermissionRequest {
                name: "x:z".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    // Decisions are still answered from the index, correctly.
    assert!(check_on(&a, "alice").await.unwrap());
    assert!(!check_on(&a, "bob").await.unwrap());

    // Meanwhile B revokes alice's grant.
    b.assignments()
        .revoke_assignment(authed(
            ADMIN,
            RevokeAssignmentRequest {
                assignment_id: grant.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    // Past the window, A fails closed.
    tokio::time::sleep((staleness + Duration::from_millis(500)).saturating_sub(cut_at.elapsed()))
        .await;
    let err = check_on(&a, "alice").await.unwrap_err();
    assert_error(&err, Code::Unavailable, "STALE_INDEX");
    let closed = eventually(Duration::from_secs(2), || async {
        (health(&a, "warden.v1.AuthorizationService").await == ServingStatus::NotServing)
            .then_some(())
    })
    .await;
    assert!(
        closed.is_some(),
        "AuthorizationService NOT_SERVING past the window"
    );
    assert_eq!(health(&a, "liveness").await, ServingStatus::Serving);

    // The database comes back: A catches up before it answers, so its first answer is the
    // revocation's.
    proxy.restart().await;
    let restored_at = Instant::now();
    let first = eventually(Duration::from_secs(10), || async {
        check_on(&a, "alice").await.ok()
    })
    .await
    .expect("A answers again once the database is back");
    let recovered = restored_at.elapsed();
    assert!(
        !first,
        "the revocation made during the outage is applied before A answers"
    );
    println!("recovered {recovered:?} after the database came back");
    assert!(
        recovered < Duration::from_secs(2),
        "time to recover: {recovered:?}"
    );
    let up = eventually(Duration::from_secs(2), || async {
        (health(&a, "").await == ServingStatus::Serving).then_some(())
    })
    .await;
    assert!(
        up.is_some(),
        "\"\" SERVING again once the replica caught up"
    );
    b.shutdown().await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_during_an_outage_serves_from_its_snapshot_and_without_one_does_not_start()
 {
    // Arrange: replica A reaches PostgreSQL through the proxy and keeps a snapshot; B writes
    // directly.
    let db = Arc::new(TestDatabase::create(Backend::Postgres).await);
    let (_, target) = through(&db.url, "127.0.0.1:1".parse().unwrap());
    let mut proxy = Proxy::start(&target).await;
    let via_proxy = through(&db.url, proxy.addr).0;
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("index.snapshot");
    let staleness = Duration::from_secs(4);
    let replica_a = {
        let (via_proxy, snapshot) = (via_proxy.clone(), snapshot.clone());
        move |with_snapshot: bool| {
            let mut config = test_config(&via_proxy);
            config.max_staleness = staleness;
            config.database.ping_interval = Duration::from_millis(200);
            config.database.connect_timeout = Duration::from_millis(500);
            config.snapshot_path = with_snapshot.then(|| snapshot.clone());
            config.snapshot_interval = Duration::from_millis(200);
            config
        }
    };
    let mut a = spawn_on(
        Arc::clone(&db),
        {
            let replica_a = replica_a.clone();
            move |_| replica_a(true)
        },
        None,
    )
    .await;
    let mut b = spawn_on(Arc::clone(&db), test_config, None).await;
    b.create_role("reader", &["docs:read"]).await;
    let grant = b.assign("reader", "alice").await;
    let in_snapshot = eventually(Duration::from_secs(5), || async {
        let allowed = check_on(&a, "alice").await.ok().filter(|allowed| *allowed);
        let written = std::fs::read_to_string(&snapshot).is_ok_and(|s| s.contains(&grant.id));
        (allowed.is_some() && written).then_some(())
    })
    .await;
    assert!(
        in_snapshot.is_some(),
        "A has alice's grant, in memory and on disk"
    );

    // Act: the database goes away for A, and A restarts.
    proxy.stop().await;
    let cut_at = Instant::now();
    a.shutdown().await;

    // Assert: without a snapshot a replica cannot start while the database is away.
    let refused = warden::App::build(replica_a(false)).await;
    let err = refused.expect_err("no database and no snapshot: start-up fails");
    assert!(
        format!("{err:#}").contains("WARDEN_DATABASE_URL"),
        "names the setting: {err:#}"
    );

    // With its snapshot it starts and answers decisions, while the admin services say the
    // database is away and writes are refused.
    let a = spawn_on(Arc::clone(&db), move |_| replica_a(true), None).await;
    assert!(check_on(&a, "alice").await.unwrap(), "the snapshot's grant");
    assert!(!check_on(&a, "bob").await.unwrap());
    assert_eq!(
        health(&a, "warden.v1.AuthorizationService").await,
        ServingStatus::Serving
    );
    assert_eq!(health(&a, "").await, ServingStatus::NotServing);
    assert_eq!(
        health(&a, "warden.v1.RoleService").await,
        ServingStatus::NotServing
    );
    let err = a
        .permissions()
        .create_permission(authed(
            ADMIN,
            CreatePermissionRequest {
                name: "x:y".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    // Meanwhile B revokes alice's grant.
    b.assignments()
        .revoke_assignment(authed(
            ADMIN,
            RevokeAssignmentRequest {
                assignment_id: grant.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    // ... writes once more, and the change log is pruned down to each tenant's newest change:
    // catching up from the log could not reach the revocation; A must reload.
    b.create_role("auditor", &["audit:read"]).await;
    b.service
        .sweep(warden::service::Retention {
            changes: Duration::ZERO,
        })
        .await
        .unwrap();

    // The allowance runs from when the snapshot was known current (before the cut), not from
    // the restart: past it, A fails closed.
    tokio::time::sleep((staleness + Duration::from_millis(500)).saturating_sub(cut_at.elapsed()))
        .await;
    let err = check_on(&a, "alice").await.unwrap_err();
    assert_error(&err, Code::Unavailable, "STALE_INDEX");

    // The database comes back: A reloads from it before it answers, so its first answer is the
    // revocation's, and it takes writes again.
    proxy.restart().await;
    let restored_at = Instant::now();
    let first = eventually(Duration::from_secs(10), || async {
        check_on(&a, "alice").await.ok()
    })
    .await
    .expect("A answers again once the database is back");
    let recovered = restored_at.elapsed();
    assert!(!first, "the revocation made during the outage is applied");
    println!("restarted from its snapshot: recovered {recovered:?} after the database came back");
    assert!(
        recovered < Duration::from_secs(2),
        "time to recover: {recovered:?}"
    );
    let up = eventually(Duration::from_secs(5), || async {
        (health(&a, "").await == ServingStatus::Serving).then_some(())
    })
    .await;
    assert!(up.is_some(), "\"\" SERVING once reloaded");
    a.permissions()
        .create_permission(authed(
            ADMIN,
            CreatePermissionRequest {
                name: "x:y".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("writes work on the lazily connected store");
    b.shutdown().await;
    a.finish().await;
}
