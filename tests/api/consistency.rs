//! Two replicas on one PostgreSQL database (API rules 3 and 16): read-after-write through
//! `at_least_revision`, proof of propagation, in-order application when commits interleave,
//! and convergence after lost notifications.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tonic::Code;

use crate::helpers::*;

async fn two_replicas() -> (TestApp, TestApp) {
    let db = Arc::new(TestDatabase::create(Backend::Postgres).await);
    let a = spawn_on(Arc::clone(&db), test_config, None).await;
    let b = spawn_on(db, test_config, None).await;
    (a, b)
}

async fn finish_both(mut a: TestApp, b: TestApp) {
    a.shutdown().await;
    b.finish().await;
}

fn check_at(identity: &str, permission: &str, revision: u64) -> CheckRequest {
    CheckRequest {
        identity_id: identity.into(),
        permission: permission.into(),
        at_least_revision: revision,
        explain: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_is_never_allowed_on_the_other_at_its_revision() {
    // Arrange
    let (a, b) = two_replicas().await;
    a.create_role("editor", &["docs:read"]).await;
    const ROUNDS: usize = 1000;
    let mut stale_allows = 0;
    let mut missed_grants = 0;
    let started = Instant::now();

    // Act: assign and revoke on A; check on B at each returned revision.
    for _ in 0..ROUNDS {
        let assigned = a.assign("editor", "alice").await;
        let granted = b
            .authz()
            .check(authed(
                ADMIN,
                check_at("alice", "docs:read", assigned.revision),
            ))
            .await
            .unwrap()
            .into_inner();
        if !granted.allowed {
            missed_grants += 1;
        }
        assert!(granted.revision >= assigned.revision);
        let revoked = a
            .assignments()
            .revoke_assignment(authed(
                ADMIN,
                RevokeAssignmentRequest {
                    assignment_id: assigned.id,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let denied = b
            .authz()
            .check(authed(
                ADMIN,
                check_at("alice", "docs:read", revoked.revision),
            ))
            .await
            .unwrap()
            .into_inner();
        if denied.allowed {
            stale_allows += 1;
        }
    }

    // Assert
    println!(
        "{ROUNDS} assign/revoke rounds across replicas in {:?}",
        started.elapsed()
    );
    assert_eq!(
        stale_allows, 0,
        "a revoked grant was allowed at the revocation's revision"
    );
    assert_eq!(missed_grants, 0, "a grant was missing at its revision");
    finish_both(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_propagation_returns_once_every_replica_has_the_revision() {
    // Arrange
    let (a, b) = two_replicas().await;
    // Act
    let p = a
        .permissions()
        .create_permission(authed(
            ADMIN,
            CreatePermissionRequest {
                name: "docs:read".into(),
                wait_for_propagation: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // Assert: both replicas report the revision, and B answers at it without waiting.
    let state = b
        .authz()
        .get_propagation(authed(
            ADMIN,
            GetPropagationRequest {
                revision: p.revision,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (state.replicas_applied, state.replicas_total),
        (2, 2),
        "{state:?}"
    );
    assert!(state.lagging.is_empty());
    let ahead = b
        .authz()
        .get_propagation(authed(
            ADMIN,
            GetPropagationRequest {
                revision: p.revision + 1000,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ahead.replicas_applied, 0);
    assert_eq!(ahead.lagging.len(), 2);
    // A revision no replica can reach in time is UNAVAILABLE, never a stale answer.
    let err = b
        .authz()
        .check(authed(
            ADMIN,
            check_at("alice", "docs:read", p.revision + 1000),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    finish_both(a, b).await;
}

/// A writer holding revision N commits after a writer that started later: the log, the index
/// and WatchChanges still see N before N+1, with nothing skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_commits_are_applied_and_watched_in_revision_order() {
    // Arrange
    let (a, b) = two_replicas().await;
    let start = a
        .authz()
        .check(authed(ADMIN, check_at("x", "x", 0)))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let mut watch = b
        .audit()
        .watch_changes(authed(
            ADMIN,
            WatchChangesRequest {
                since_revision: start,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let raw = Database::connect(&a.db.url).await.unwrap();
    let slow = raw.begin().await.unwrap();

    // Act 1: the slow writer takes the tenant's revision N and holds it.
    use sea_orm::TransactionTrait as _;
    let row = slow
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "UPDATE tenant_revisions SET revision = revision + 1 WHERE tenant_id = 'default' RETURNING revision",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "revision").unwrap();
    // Act 2: a fast writer starts meanwhile through the API; it must not commit N+1 first.
    let fast = {
        let mut client = a.permissions();
        tokio::spawn(async move {
            client
                .create_permission(authed(
                    ADMIN,
                    CreatePermissionRequest {
                        name: "fast:one".into(),
                        ..Default::default()
                    },
                ))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !fast.is_finished(),
        "the later writer waits for revision N to commit"
    );
    // Act 3: the slow writer records a permission of its own at N and commits.
    let perm_id = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now().timestamp_micros();
    slow.execute_unprepared(&format!(
        "INSERT INTO permissions (id, tenant_id, name, description, is_system, create_time, update_time, revision) VALUES ('{perm_id}', 'default', 'slow:one', '', false, {now}, {now}, {n})"
    ))
    .await
    .unwrap();
    let deltas = format!(r#"[{{"op":"permission_put","id":"{perm_id}","name":"slow:one"}}]"#);
    slow.execute_unprepared(&format!(
        "INSERT INTO changes (revision, tenant_id, time, kind, target, deltas) VALUES ({n}, 'default', {now}, 'permission.created', '{perm_id}', '{deltas}')"
    ))
    .await
    .unwrap();
    slow.execute_unprepared(&format!(
        "SELECT pg_notify('warden_changes', '{n} default')"
    ))
    .await
    .unwrap();
    slow.commit().await.unwrap();
    let fast = fast.await.unwrap().unwrap().into_inner();

    // Assert
    assert_eq!(fast.revision, n as u64 + 1);
    let mut revisions = Vec::new();
    while revisions.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        revisions.push(event.revision);
    }
    assert_eq!(
        revisions,
        vec![n as u64, n as u64 + 1],
        "watched in order, none skipped"
    );
    for replica in [&a, &b] {
        let check = |p: &str| {
            authed(
                ADMIN,
                CheckRequest {
                    identity_id: "x".into(),
                    permission: p.into(),
                    at_least_revision: n as u64 + 1,
                    explain: false,
                    ..Default::default()
                },
            )
        };
        for p in ["slow:one", "fast:one"] {
            let r = replica.authz().check(check(p)).await.unwrap().into_inner();
            assert_ne!(
                r.reason,
                CheckReason::UnknownPermission as i32,
                "{p} known to the index"
            );
        }
    }
    raw.close().await.ok();
    finish_both(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listen_connection_dies_converges_from_the_log() {
    // Arrange: 100 assignments that B sees.
    let (a, b) = two_replicas().await;
    a.create_role("editor", &["docs:read"]).await;
    let mut assignments = Vec::new();
    for i in 0..100 {
        assignments.push(a.assign("editor", &format!("user-{i}")).await);
    }
    let last = assignments.last().unwrap().revision;
    assert!(
        b.authz()
            .check(authed(ADMIN, check_at("user-99", "docs:read", last)))
            .await
            .unwrap()
            .into_inner()
            .allowed
    );

    // Act: kill every LISTEN connection on the database, then revoke all 100 on A.
    let db_name = a.db.url.rsplit('/').next().unwrap().to_owned();
    let admin = Database::connect(&postgres_admin_url()).await.unwrap();
    let killed = admin
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = '{db_name}' AND query ILIKE 'LISTEN%'"),
        ))
        .await
        .unwrap();
    assert!(!killed.is_empty(), "found the LISTEN connections");
    for x in &assignments {
        a.assignments()
            .revoke_assignment(authed(
                ADMIN,
                RevokeAssignmentRequest {
                    assignment_id: x.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
    let revoked_at = Instant::now();

    // Assert: B converges without anyone passing a revision, and denies all 100.
    let deadline = revoked_at + Duration::from_secs(20);
    loop {
        let items = (0..100)
            .map(|i| check_at(&format!("user-{i}"), "docs:read", 0))
            .collect();
        let results = b
            .authz()
            .batch_check(authed(ADMIN, BatchCheckRequest { items }))
            .await
            .unwrap()
            .into_inner()
            .results;
        if results.iter().all(|r| !r.allowed) {
            break;
        }
        assert!(Instant::now() < deadline, "B did not converge within 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "replica B denied all 100 revocations {:?} after the last one committed (LISTEN killed)",
        revoked_at.elapsed()
    );
    admin.close().await.ok();
    finish_both(a, b).await;
}

/// Writes of one tenant racing on two replicas (each replica's index lags the other's
/// commits, so lone writes tried against the index turn stale and run again locked): every
/// write commits exactly once, the duplicates are ALREADY_EXISTS, the tenant's revisions stay
/// gapless, and both replicas end up agreeing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_racing_on_two_replicas_commit_once_with_gapless_revisions() {
    // Arrange
    let (a, b) = two_replicas().await;
    let base = a.create_role("editor", &["docs:read"]).await.revision;
    const DISTINCT: usize = 30;
    const SAME: usize = 10;

    // Act: 30 distinct identities and 10 times one more, alternating replicas, all at once.
    let mut tasks = Vec::new();
    for i in 0..DISTINCT + SAME {
        let mut client = if i % 2 == 0 {
            a.assignments()
        } else {
            b.assignments()
        };
        let identity = if i < DISTINCT {
            format!("u{i}")
        } else {
            "shared".to_owned()
        };
        tasks.push(tokio::spawn(async move {
            let request = AssignRoleRequest {
                role: Some(role_name("editor")),
                identity: Some(user(&identity)),
                ..Default::default()
            };
            (identity, client.assign_role(authed(ADMIN, request)).await)
        }));
    }
    let mut revisions = Vec::new();
    let (mut shared_created, mut shared_exists) = (0, 0);
    for task in tasks {
        let (identity, outcome) = task.await.unwrap();
        match outcome {
            Ok(response) => {
                revisions.push(response.into_inner().revision);
                if identity == "shared" {
                    shared_created += 1;
                }
            }
            Err(e) if e.code() == Code::AlreadyExists && identity == "shared" => {
                shared_exists += 1;
            }
            Err(e) => panic!("assigning {identity}: {e:?}"),
        }
    }

    // Assert
    assert_eq!((shared_created, shared_exists), (1, SAME - 1));
    revisions.sort_unstable();
    let committed = (DISTINCT + 1) as u64;
    assert_eq!(
        revisions,
        ((base + 1)..=(base + committed)).collect::<Vec<_>>(),
        "each committed write has its own revision, with no gap"
    );
    for replica in [&a, &b] {
        for identity in (0..DISTINCT)
            .map(|i| format!("u{i}"))
            .chain(["shared".into()])
        {
            let answer = replica
                .authz()
                .check(authed(
                    ADMIN,
                    check_at(&identity, "docs:read", base + committed),
                ))
                .await
                .unwrap()
                .into_inner();
            assert!(answer.allowed, "{identity} allowed on both replicas");
        }
    }
    let listed = a
        .assignments()
        .list_assignments(authed(
            ADMIN,
            ListAssignmentsRequest {
                role: Some(role_name("editor")),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.assignments.len(), DISTINCT + 1);
    finish_both(a, b).await;
}
