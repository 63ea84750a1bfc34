//! Expiry (API rule 10) and change-request TTLs, on a clock the test moves: no sleeps.

use chrono::{Duration, Utc};
use prost_types::Timestamp;
use tonic::Code;

use crate::helpers::*;

fn ts(t: chrono::DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

async fn an_expiring_assignment_stops_granting_at_its_instant(backend: Backend) {
    // Arrange
    let start = Utc::now();
    let app = spawn_with_clock(backend, start).await;
    let clock = app.clock.clone().unwrap();
    app.create_role("editor", &["docs:read"]).await;
    let expire = start + Duration::hours(1);
    let a = app
        .assignments()
        .assign_role(authed(
            ADMIN,
            AssignRoleRequest {
                role: Some(role_name("editor")),
                identity: Some(user("alice")),
                expire_time: Some(ts(expire)),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(assign_role_response::Result::Assignment(a)) = a.result else {
        panic!("assignment expected")
    };

    // Act + Assert: granted up to the last microsecond, denied from the instant on.
    assert!(app.check("alice", "docs:read").await);
    clock.set(expire - Duration::microseconds(1));
    assert!(
        app.check("alice", "docs:read").await,
        "one microsecond before expiry"
    );
    clock.set(expire);
    assert!(
        !app.check("alice", "docs:read").await,
        "at the expiry instant"
    );
    let explained = app
        .authz()
        .check(authed(
            ADMIN,
            CheckRequest {
                identity_id: "alice".into(),
                permission: "docs:read".into(),
                explain: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(explained.expired_grants.len(), 1);
    assert_eq!(explained.expired_grants[0].assignment_id, a.id);

    // The sweeper records and audits it; the identity may then be assigned the role again.
    assert_eq!(
        app.service
            .sweep(warden::service::Retention {
                changes: std::time::Duration::from_secs(3600)
            })
            .await
            .unwrap(),
        1
    );
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.target_id == a.id && e.reason == "expired")
    );
    app.assign("editor", "alice").await;
    assert!(app.check("alice", "docs:read").await);
    app.finish().await;
}

async fn an_expired_change_request_cannot_be_approved(backend: Backend) {
    // Arrange: the default TTL is 7 days.
    let start = Utc::now();
    let app = spawn_with_clock(backend, start).await;
    let clock = app.clock.clone().unwrap();
    app.roles()
        .create_role(authed(
            ADMIN,
            CreateRoleRequest {
                name: "payments".into(),
                requires_approval: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let response = app
        .assignments()
        .assign_role(authed(
            ADMIN,
            AssignRoleRequest {
                role: Some(role_name("payments")),
                identity: Some(user("carol")),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(assign_role_response::Result::ChangeRequest(cr)) = response.result else {
        panic!("change request expected")
    };

    // Act
    clock.advance(Duration::days(7));
    let err = app
        .change_requests()
        .approve_change_request(authed(
            ADMIN2,
            ApproveChangeRequestRequest {
                change_request_id: cr.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();

    // Assert
    assert_error(&err, Code::FailedPrecondition, "CHANGE_REQUEST_EXPIRED");
    app.service
        .sweep(warden::service::Retention {
            changes: std::time::Duration::from_secs(3600),
        })
        .await
        .unwrap();
    let after = app
        .change_requests()
        .get_change_request(authed(
            ADMIN,
            GetChangeRequestRequest {
                change_request_id: cr.id,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.status, ChangeRequestStatus::Expired as i32);
    assert!(!app.check("carol", "anything:at-all").await);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_assignment_stops_granting_at_its_instant_sqlite() {
    an_expiring_assignment_stops_granting_at_its_instant(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_assignment_stops_granting_at_its_instant_postgres() {
    an_expiring_assignment_stops_granting_at_its_instant(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_change_request_cannot_be_approved_sqlite() {
    an_expired_change_request_cannot_be_approved(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_change_request_cannot_be_approved_postgres() {
    an_expired_change_request_cannot_be_approved(Backend::Postgres).await;
}
