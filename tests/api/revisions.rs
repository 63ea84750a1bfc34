//! Revisions per tenant (issue 17): each tenant's own gapless sequence, nothing about one tenant's
//! writes visible in another's numbers, Watch per tenant, and existing data carried over by the
//! migration.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};
use sea_orm_migration::MigratorTrait;

use crate::backend_tests;
use crate::helpers::*;

const ACME: &str = "acme";
const ADMIN_TENANT: &str = "default";

/// Creates a permission in `tenant` as its bootstrap admin; returns the revision it committed.
async fn create_in(app: &TestApp, tenant: &str, name: &str) -> u64 {
    let request = CreatePermissionRequest {
        name: name.into(),
        ..Default::default()
    };
    let request = if tenant == ACME {
        with_token(&app.tenant_token(ACME_ADMIN, ACME), request)
    } else {
        authed(ADMIN, request)
    };
    app.permissions()
        .create_permission(request)
        .await
        .unwrap_or_else(|e| panic!("create {name} in {tenant}: {e}"))
        .into_inner()
        .revision
}

/// The revision a self-Check in `tenant` is answered at: the tenant's applied revision.
async fn revision_of(app: &TestApp, tenant: &str, subject: &str) -> u64 {
    let request = check(subject, "nothing:here", 0);
    let request = if tenant == ADMIN_TENANT {
        authed(subject, request)
    } else {
        with_token(&app.tenant_token(subject, tenant), request)
    };
    app.authz()
        .check(request)
        .await
        .unwrap()
        .into_inner()
        .revision
}

/// Ten writes in each of two tenants at once; returns each tenant's revisions, sorted.
async fn concurrent_writes(app: &TestApp, tag: &str) -> (Vec<u64>, Vec<u64>) {
    let writes = |tenant: &'static str| {
        futures::future::join_all((0..10).map(move |i| async move {
            create_in(app, tenant, &format!("{tag}:{tenant}{i}")).await
        }))
    };
    let (mut default_writes, mut acme_writes) =
        futures::future::join(writes(ADMIN_TENANT), writes(ACME)).await;
    default_writes.sort_unstable();
    acme_writes.sort_unstable();
    (default_writes, acme_writes)
}

/// The next event of a WatchChanges stream, within 10 s.
async fn next_event(watch: &mut tonic::Streaming<ChangeEvent>) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("in time")
        .unwrap()
        .expect("an event")
}

backend_tests! {
    async fn two_tenants_writing_concurrently_each_get_gapless_revisions(app) {
        // Arrange
        let default_base = revision_of(&app, ADMIN_TENANT, ADMIN).await;
        let acme_base = revision_of(&app, ACME, ACME_ADMIN).await;

        // Act
        let (default_revisions, acme_revisions) = concurrent_writes(&app, "gapless").await;

        // Assert: each tenant's ten writes took exactly its next ten revisions.
        assert_eq!(
            default_revisions,
            ((default_base + 1)..=(default_base + 10)).collect::<Vec<_>>()
        );
        assert_eq!(
            acme_revisions,
            ((acme_base + 1)..=(acme_base + 10)).collect::<Vec<_>>()
        );
        assert_eq!(revision_of(&app, ADMIN_TENANT, ADMIN).await, default_base + 10);
        assert_eq!(revision_of(&app, ACME, ACME_ADMIN).await, acme_base + 10);
    }

    async fn a_tenant_cannot_learn_another_tenants_write_volume(app) {
        // Arrange: acme writes once and watches its own changes.
        let first = create_in(&app, ACME, "volume:first").await;
        let mut watch = app
            .audit()
            .watch_changes(with_token(
                &app.tenant_token(ACME_ADMIN, ACME),
                WatchChangesRequest { since_revision: first, ..Default::default() },
            ))
            .await
            .unwrap()
            .into_inner();

        // Act: the other tenant writes 25 times, then acme once more.
        for i in 0..25 {
            create_in(&app, ADMIN_TENANT, &format!("volume:other{i}")).await;
        }
        let acme_seen = revision_of(&app, ACME, ACME_ADMIN).await;
        let second = create_in(&app, ACME, "volume:second").await;

        // Assert: nothing acme receives moved with the other tenant's writes.
        assert_eq!(acme_seen, first, "acme's Check revision ignores other tenants");
        assert_eq!(second, first + 1, "acme's next write takes its next revision");
        let event = next_event(&mut watch).await;
        assert_eq!((event.revision, event.tenant_id.as_str()), (second, ACME));
        // The replica reports acme's revision with its next heartbeat.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let status = app
                .authz()
                .get_propagation(with_token(
                    &app.tenant_token(ACME_ADMIN, ACME),
                    GetPropagationRequest { revision: second },
                ))
                .await
                .unwrap()
                .into_inner();
            if status.replicas_total == 1 && status.replicas_applied == 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "acme's revision {second} never reported applied: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn watch_resumes_per_tenant_and_skips_nothing_with_interleaved_writes(app) {
        // Arrange
        let base = revision_of(&app, ACME, ACME_ADMIN).await;
        let token = app.tenant_token(ACME_ADMIN, ACME);
        let mut watch = app
            .audit()
            .watch_changes(with_token(&token, WatchChangesRequest { since_revision: base, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();

        // Act: both tenants write at once.
        concurrent_writes(&app, "watch").await;

        // Assert: acme's ten changes, in order, nothing of the other tenant's.
        let mut seen = Vec::new();
        while seen.len() < 10 {
            let event = next_event(&mut watch).await;
            assert_eq!(event.tenant_id, ACME);
            seen.push(event.revision);
        }
        assert_eq!(seen, ((base + 1)..=(base + 10)).collect::<Vec<_>>());
        // A client resuming from the middle gets exactly the rest.
        let mut resumed = app
            .audit()
            .watch_changes(with_token(&token, WatchChangesRequest { since_revision: base + 5, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let mut rest = Vec::new();
        while rest.len() < 5 {
            let event = next_event(&mut resumed).await;
            rest.push(event.revision);
        }
        assert_eq!(rest, ((base + 6)..=(base + 10)).collect::<Vec<_>>());
    }

    async fn a_snapshot_watch_rebuilds_the_tenant_then_follows_it(app) {
        // Arrange: a role, two assignments, one of them revoked.
        app.create_role("snap-reader", &["snap:read"]).await;
        app.assign("snap-reader", "alice").await;
        let gone = app.assign("snap-reader", "bob").await;
        app.assignments()
            .revoke_assignment(authed(ADMIN, RevokeAssignmentRequest {
                assignment_id: gone.id.clone(),
                ..Default::default()
            }))
            .await
            .unwrap();
        let at = revision_of(&app, ADMIN_TENANT, ADMIN).await;

        // Act
        let mut watch = app
            .audit()
            .watch_changes(authed(ADMIN, WatchChangesRequest { snapshot: true, since_revision: 1 }))
            .await
            .unwrap()
            .into_inner();
        let mut parts = Vec::new();
        loop {
            let event = next_event(&mut watch).await;
            let kind = event.kind();
            parts.push(event);
            if kind == ChangeKind::SnapshotComplete {
                break;
            }
            assert_eq!(kind, ChangeKind::Snapshot);
        }
        let write = create_in(&app, ADMIN_TENANT, "snap:after").await;
        let next = next_event(&mut watch).await;

        // Assert: every part at the current revision, holding the live state only.
        assert!(parts.iter().all(|p| p.revision == at), "{parts:?}");
        let changes: Vec<_> = parts.iter().flat_map(|p| p.changes.iter()).collect();
        let assigned: Vec<&str> = changes
            .iter()
            .filter_map(|c| match &c.change {
                Some(index_change::Change::AssignmentPut(a)) => {
                    a.identity.as_ref().map(|i| i.id.as_str())
                }
                _ => None,
            })
            .collect();
        assert!(assigned.contains(&"alice"), "{assigned:?}");
        assert!(!assigned.contains(&"bob"), "a revoked assignment is not in the snapshot");
        assert!(changes.iter().any(|c| matches!(&c.change,
            Some(index_change::Change::RolePut(r)) if r.name == "snap-reader")));
        // Then the changes after it, none skipped.
        assert_eq!((next.revision, next.kind()), (write, ChangeKind::PermissionCreated));
        assert_eq!(write, at + 1);
    }
}

/// A database written by the global-revision schema: its tenants continue from the global
/// counter (so every revision a client holds stays reachable), its change log still serves
/// Watch, and a tenant that never wrote starts at 0.
async fn existing_revisions_carry_over_to_per_tenant_sequences(backend: Backend) {
    // Arrange: the first schema only, with history up to global revision 41.
    let db = Arc::new(TestDatabase::create(backend).await);
    {
        let conn = Database::connect(&db.url).await.unwrap();
        warden::store::migration::Migrator::up(&conn, Some(1))
            .await
            .unwrap();
        let now = chrono::Utc::now().timestamp_micros();
        let id = uuid::Uuid::now_v7();
        for sql in [
            "UPDATE revision_counter SET revision = 41 WHERE id = 1".to_owned(),
            format!(
                "INSERT INTO permissions (id, tenant_id, name, description, is_system, create_time, update_time, revision) \
                 VALUES ('{id}', 'acme', 'legacy:read', '', false, {now}, {now}, 40)"
            ),
            format!(
                "INSERT INTO changes (revision, tenant_id, time, kind, target, deltas) \
                 VALUES (40, 'acme', {now}, 'permission.created', '{id}', \
                 '[{{\"op\":\"permission_put\",\"id\":\"{id}\",\"name\":\"legacy:read\"}}]')"
            ),
            format!(
                "INSERT INTO changes (revision, tenant_id, time, kind, target, deltas) \
                 VALUES (41, 'default', {now}, 'noop', '', '[]')"
            ),
        ] {
            conn.execute_unprepared(&sql).await.unwrap();
        }
        conn.close().await.unwrap();
    }

    // Act: the server migrates and starts.
    let app = spawn_on(Arc::clone(&db), test_config, None).await;

    // Assert
    let acme = revision_of(&app, ACME, ACME_ADMIN).await;
    assert!(
        acme >= 41,
        "acme continues from the global counter, at {acme}"
    );
    assert!(revision_of(&app, ADMIN_TENANT, ADMIN).await >= 41);
    assert_eq!(revision_of(&app, "fresh", "someone").await, 0);
    assert_eq!(create_in(&app, ACME, "new:one").await, acme + 1);
    let mut watch = app
        .audit()
        .watch_changes(with_token(
            &app.tenant_token(ACME_ADMIN, ACME),
            WatchChangesRequest {
                since_revision: 39,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let event = next_event(&mut watch).await;
    assert_eq!(
        (event.revision, event.kind()),
        (40, ChangeKind::PermissionCreated)
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_revisions_carry_over_sqlite() {
    existing_revisions_carry_over_to_per_tenant_sequences(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_revisions_carry_over_postgres() {
    existing_revisions_carry_over_to_per_tenant_sequences(Backend::Postgres).await;
}
