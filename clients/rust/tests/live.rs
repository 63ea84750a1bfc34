//! The client against a live Warden, on SQLite and on PostgreSQL (`WARDEN_TEST_DATABASE_URL`,
//! with the server's tests' default; a test fails, never skips, when it is unreachable): a write whose response is lost is retried and applied once, errors arrive typed,
//! and a check after a write through another replica sees the write.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use tonic::Code;
use tonic::body::Body;
use tower::{Service as _, ServiceExt as _};
use warden_client::pb::{self, ErrorReason};
use warden_client::{Client, TokenSource, Transport};

fn user(id: &str) -> pb::Identity {
    pb::Identity {
        id: id.into(),
        kind: pb::IdentityKind::User as i32,
    }
}

fn by_name(name: &str) -> pb::RoleRef {
    pb::RoleRef {
        r#ref: Some(pb::role_ref::Ref::Name(name.into())),
    }
}

async fn reader_role(client: &Client) {
    client
        .create_permission(pb::CreatePermissionRequest {
            name: "docs:read".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .create_role(pb::CreateRoleRequest {
            name: "reader".into(),
            permissions: vec![pb::PermissionRef {
                r#ref: Some(pb::permission_ref::Ref::Name("docs:read".into())),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Writes reach the server; the first AssignRole's answer is thrown away and replaced by
/// UNAVAILABLE, as if the connection broke after the commit.
async fn a_lost_response_is_retried_and_applied_once(url: String) {
    let server = serve(&url).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let lost = Arc::new(AtomicUsize::new(0));
    let seen = lost.clone();
    let transport = Transport::new(tower::service_fn(move |request: http::Request<Body>| {
        let mut channel = channel.clone();
        let seen = seen.clone();
        async move {
            let assign = request.uri().path() == "/warden.v1.AssignmentService/AssignRole";
            let response = channel.ready().await?.call(request).await?;
            // A unary answer's headers come once the handler returned, so the write committed.
            if assign && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                drop(response);
                return Ok(
                    tonic::Status::unavailable("connection reset after the commit")
                        .into_http::<Body>(),
                );
            }
            Ok::<_, warden_client::TransportError>(response)
        }
    }));
    let client = Client::builder("http://unused")
        .token(TokenSource::Static(token(ADMIN)))
        .backoff(Duration::from_millis(20))
        .with_transport(transport);
    reader_role(&client).await;
    let before = client.revision();

    let answer = client
        .assign_role(pb::AssignRoleRequest {
            role: Some(by_name("reader")),
            identity: Some(user("alice")),
            ..Default::default()
        })
        .await
        .expect("the retry is answered with the first attempt's response");
    assert_eq!(
        lost.load(Ordering::SeqCst),
        2,
        "the first answer was lost and the call sent once more"
    );
    let Some(pb::assign_role_response::Result::Assignment(assignment)) = answer.result else {
        panic!("an assignment: {answer:?}");
    };
    // Applied once: one assignment, one revision.
    let plain = client_for(&server).await;
    let listed = plain
        .assignments()
        .list_assignments(pb::ListAssignmentsRequest {
            identity_id: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.assignments.len(), 1);
    assert_eq!(listed.assignments[0].id, assignment.id);
    assert_eq!(answer.revision, before + 1, "the write took one revision");
    assert!(plain.check("alice", "docs:read").await.unwrap().allowed);
}

async fn client_for(server: &Server) -> Client {
    client(server, ADMIN).await
}

async fn errors_arrive_typed(url: String) {
    let server = serve(&url).await;
    let admin = client(&server, ADMIN).await;
    reader_role(&admin).await;
    // NOT_FOUND, with the metadata naming what is missing.
    let err = admin.get_role(by_name("nope")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    assert_eq!(err.reason(), Some(ErrorReason::NotFound));
    let warden_client::Error::Api {
        metadata,
        request_id,
        ..
    } = &err
    else {
        panic!()
    };
    assert_eq!(metadata.get("missing").map(String::as_str), Some("nope"));
    assert!(request_id.is_some());
    // ALREADY_EXISTS.
    let err = admin
        .create_role(pb::CreateRoleRequest {
            name: "reader".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some(ErrorReason::AlreadyExists));
    // INVALID_ARGUMENT names the field: an identity without a kind.
    let err = admin
        .assign_role(pb::AssignRoleRequest {
            role: Some(by_name("reader")),
            identity: Some(pb::Identity {
                id: "bob".into(),
                kind: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some(ErrorReason::InvalidArgument));
    let warden_client::Error::Api {
        field_violations, ..
    } = &err
    else {
        panic!()
    };
    assert!(
        field_violations.iter().any(|(f, _)| f == "identity.kind"),
        "{err:?}"
    );
    // PERMISSION_DENIED for a caller without the permission.
    let nobody = client(&server, "nobody").await;
    let err = nobody.get_role(by_name("reader")).await.unwrap_err();
    assert_eq!(err.reason(), Some(ErrorReason::PermissionDenied));
    assert!(!err.is_retryable());
    // UNAUTHENTICATED for a bad token, and a token source's failure is the client's own error.
    let forged = Client::builder(format!("http://{}", server.addr))
        .token(TokenSource::Static("not-a-token".into()))
        .connect()
        .await
        .unwrap();
    let err = forged.check("a", "docs:read").await.unwrap_err();
    assert_eq!(err.reason(), Some(ErrorReason::Unauthenticated));
    let broken = Client::builder(format!("http://{}", server.addr))
        .token(TokenSource::callback(|| Err("vault sealed".into())))
        .connect()
        .await
        .unwrap();
    let err = broken.check("a", "docs:read").await.unwrap_err();
    assert!(err.to_string().contains("vault sealed"), "{err}");
    // Every reason the contract lists is named by the enum the client matches on.
    for n in 1..=45 {
        let reason = ErrorReason::try_from(n).expect("a listed reason");
        assert_eq!(
            ErrorReason::from_str_name(reason.as_str_name()),
            Some(reason)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_never_double_apply_sqlite() {
    let db = Database::sqlite();
    a_lost_response_is_retried_and_applied_once(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_never_double_apply_postgres() {
    let db = Database::postgres();
    a_lost_response_is_retried_and_applied_once(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_arrive_typed_sqlite() {
    let db = Database::sqlite();
    errors_arrive_typed(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_arrive_typed_postgres() {
    let db = Database::postgres();
    errors_arrive_typed(db.url.clone()).await;
}

/// Two replicas on one PostgreSQL database: a write through the first, then a check through the
/// second by another client told the writer's revision, sees it at once (the server waits for
/// the revision instead of answering from an older index).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_through_another_replica_reads_the_write_postgres() {
    let db = Database::postgres();
    let first = serve(&db.url).await;
    let second = serve(&db.url).await;
    let writer = client(&first, ADMIN).await;
    let reader = client(&second, ADMIN).await;
    reader_role(&writer).await;
    for (i, who) in ["carol", "dave", "erin"].iter().enumerate() {
        writer
            .assign_role(pb::AssignRoleRequest {
                role: Some(by_name("reader")),
                identity: Some(user(who)),
                ..Default::default()
            })
            .await
            .unwrap();
        reader.observe_revision(writer.revision());
        let answer = reader.check(who, "docs:read").await.unwrap();
        assert!(
            answer.allowed,
            "write {i} not seen by the second replica: {answer:?}"
        );
        assert!(answer.revision >= writer.revision());
    }
}

/// The typed reason of a call that must have been refused.
fn reason<T>(
    result: std::result::Result<tonic::Response<T>, tonic::Status>,
) -> Option<ErrorReason> {
    let status = result.map(drop).expect_err("refused");
    warden_client::Error::from_status(&status).reason()
}

/// The reasons a caller's own requests can run into, each provoked on the live server and
/// arriving as the contract's enum (the others: overload, shutdown, staleness, rate limits,
/// are the server's state, not the request's; their names are checked above).
async fn request_reasons_arrive_typed(url: String) {
    let server = serve(&url).await;
    let admin = client(&server, ADMIN).await;
    reader_role(&admin).await;
    let permission = |name: &str| pb::PermissionRef {
        r#ref: Some(pb::permission_ref::Ref::Name(name.into())),
    };
    // A role that holds docs:read, assigned to alice.
    admin
        .assign_role(pb::AssignRoleRequest {
            role: Some(by_name("reader")),
            identity: Some(user("alice")),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut cases: Vec<(ErrorReason, Option<ErrorReason>)> = Vec::new();
    // RESERVED_NAME: the warden: prefix is the server's.
    let got = reason(
        admin
            .permissions()
            .create_permission(pb::CreatePermissionRequest {
                name: "warden:mine".into(),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::ReservedName, got));
    // PERMISSION_NOT_IN_ROLE
    admin
        .create_permission(pb::CreatePermissionRequest {
            name: "docs:write".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let got = reason(
        admin
            .roles()
            .remove_permission_from_role(pb::RemovePermissionFromRoleRequest {
                role: Some(by_name("reader")),
                permission: Some(permission("docs:write")),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::PermissionNotInRole, got));
    // ROLE_IN_USE: assigned, deleted without force.
    let got = reason(
        admin
            .roles()
            .delete_role(pb::DeleteRoleRequest {
                role: Some(by_name("reader")),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::RoleInUse, got));
    // PERMISSION_IN_USE: in a role, deleted without force.
    let got = reason(
        admin
            .permissions()
            .delete_permission(pb::DeletePermissionRequest {
                permission: Some(permission("docs:read")),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::PermissionInUse, got));
    // ETAG_MISMATCH
    let got = reason(
        admin
            .roles()
            .update_role(pb::UpdateRoleRequest {
                role: Some(by_name("reader")),
                description: Some("changed".into()),
                etag: Some("not-the-etag".into()),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::EtagMismatch, got));
    // ROLE_CYCLE: editor includes reader; reader may not include editor.
    admin
        .create_role(pb::CreateRoleRequest {
            name: "editor".into(),
            included_roles: vec![by_name("reader")],
            ..Default::default()
        })
        .await
        .unwrap();
    let got = reason(
        admin
            .roles()
            .update_role(pb::UpdateRoleRequest {
                role: Some(by_name("reader")),
                included_roles: Some(pb::RoleRefList {
                    roles: vec![by_name("editor")],
                }),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::RoleCycle, got));
    // IDENTITY_KIND_MISMATCH: alice holds a role as a USER.
    let got = reason(
        admin
            .assignments()
            .assign_role(pb::AssignRoleRequest {
                role: Some(by_name("editor")),
                identity: Some(pb::Identity {
                    id: "alice".into(),
                    kind: pb::IdentityKind::ServiceAccount as i32,
                }),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::IdentityKindMismatch, got));
    // IDEMPOTENCY_KEY_REUSED: one key, two different requests.
    let keyed = |name: &str| {
        let mut request = tonic::Request::new(pb::CreatePermissionRequest {
            name: name.into(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("idempotency-key", "key-reused-once".parse().unwrap());
        request
    };
    admin
        .permissions()
        .create_permission(keyed("docs:first"))
        .await
        .unwrap();
    let got = reason(
        admin
            .permissions()
            .create_permission(keyed("docs:second"))
            .await,
    );
    cases.push((ErrorReason::IdempotencyKeyReused, got));
    // APPROVAL_NOT_REQUIRED: proposing what needs no approval.
    let got = reason(
        admin
            .change_requests()
            .propose_change(pb::ProposeChangeRequest {
                change: Some(pb::propose_change_request::Change::DeleteRole(
                    pb::DeleteRoleRequest {
                        role: Some(by_name("editor")),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::ApprovalNotRequired, got));
    // UNAVAILABLE: a revision this replica cannot reach in time.
    let got = reason(
        admin
            .authorization()
            .check(pb::CheckRequest {
                identity_id: "alice".into(),
                permission: "docs:read".into(),
                at_least_revision: 1_000_000,
                ..Default::default()
            })
            .await,
    );
    cases.push((ErrorReason::Unavailable, got));
    let wrong: Vec<_> = cases
        .iter()
        .filter(|(want, got)| Some(*want) != *got)
        .collect();
    assert!(wrong.is_empty(), "expected, got: {wrong:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reasons_arrive_typed_sqlite() {
    let db = Database::sqlite();
    request_reasons_arrive_typed(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reasons_arrive_typed_postgres() {
    let db = Database::postgres();
    request_reasons_arrive_typed(db.url.clone()).await;
}
