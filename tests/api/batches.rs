//! BatchAssignRoles and BatchRevokeAssignments: all or nothing, one revision, one audit event
//! per item, approval-gated items as change requests, dry runs, and replicas that agree after a
//! burst of batched writes.

use std::sync::Arc;

use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

fn item(role: &str, identity: &str) -> AssignmentItem {
    AssignmentItem {
        role: Some(role_name(role)),
        identity: Some(user(identity)),
        ..Default::default()
    }
}

fn assigned(results: &[AssignmentItemResult]) -> Vec<Assignment> {
    results
        .iter()
        .filter_map(|r| match &r.result {
            Some(assignment_item_result::Result::Assignment(a)) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn item_index(status: &tonic::Status) -> Option<String> {
    tonic_types::StatusExt::get_details_error_info(status)
        .and_then(|i| i.metadata.get("item_index").cloned())
}

backend_tests! {
    async fn a_batch_grants_every_item_at_one_revision_with_an_audit_event_each(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "payments".into(), requires_approval: true, ..Default::default() })).await.unwrap();
        let before = app.audit_events().await.len();
        // Act
        let response = app
            .assignments()
            .batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest {
                items: vec![item("editor", "alice"), item("payments", "carol"), item("editor", "bob")],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        // Assert: answers in request order; the gated item is a PENDING change request.
        assert_eq!(response.results.len(), 3);
        let made = assigned(&response.results);
        assert_eq!(made.iter().map(|a| a.identity.as_ref().unwrap().id.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(made.iter().all(|a| a.revision == response.revision), "{made:?}");
        match &response.results[1].result {
            Some(assignment_item_result::Result::ChangeRequest(cr)) => assert_eq!(cr.status, ChangeRequestStatus::Pending as i32),
            other => panic!("expected a change request, got {other:?}"),
        }
        assert!(app.check("alice", "docs:read").await);
        assert!(app.check("bob", "docs:read").await);
        let events = app.audit_events().await;
        assert_eq!(events.len() - before, 3);
        // Newest first: the batch's three.
        assert!(events[..3].iter().all(|e| e.revision == response.revision && e.rpc.ends_with("/BatchAssignRoles")));
        // The whole batch is one revision: the next write is the one after it.
        let next = app.assign("editor", "dave").await;
        assert_eq!(next.revision, response.revision + 1);
    }

    async fn a_failing_item_fails_the_batch_and_changes_nothing(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        app.assign("editor", "alice").await;
        let before = app.audit_events().await.len();
        // Act + Assert: an unknown role at index 1.
        let err = app
            .assignments()
            .batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest { items: vec![item("editor", "dave"), item("nope", "erin")], ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::NotFound, "NOT_FOUND");
        assert_eq!(item_index(&err).as_deref(), Some("1"));
        assert!(err.message().starts_with("items[1]: "), "{err:?}");
        // An identity already holding the role, and the same pair twice in one batch.
        for items in [vec![item("editor", "dave"), item("editor", "alice")], vec![item("editor", "dave"), item("editor", "dave")]] {
            let err = app.assignments().batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest { items, ..Default::default() })).await.unwrap_err();
            assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS");
            assert_eq!(item_index(&err).as_deref(), Some("1"));
        }
        assert!(!app.check("dave", "docs:read").await);
        assert_eq!(app.audit_events().await.len(), before);
    }

    async fn bad_items_are_named_by_their_path_and_batches_are_bounded(app) {
        let batch = |items: Vec<AssignmentItem>| BatchAssignRolesRequest { items, ..Default::default() };
        let err = app.assignments().batch_assign_roles(authed(ADMIN, batch(vec![]))).await.unwrap_err();
        assert_invalid(&err, "items");
        let mut bad = item("editor", "bob");
        bad.identity = None;
        let err = app.assignments().batch_assign_roles(authed(ADMIN, batch(vec![item("editor", "alice"), item("editor", "carol"), bad]))).await.unwrap_err();
        assert_invalid(&err, "items[2].identity");
        let many = (0..1001).map(|i| item("editor", &format!("u{i}"))).collect();
        let err = app.assignments().batch_assign_roles(authed(ADMIN, batch(many))).await.unwrap_err();
        assert_invalid(&err, "items");
        let err = app
            .assignments()
            .batch_revoke_assignments(authed(ADMIN, BatchRevokeAssignmentsRequest { items: vec![RevocationItem { assignment_id: "not-an-id".into(), ..Default::default() }], ..Default::default() }))
            .await
            .unwrap_err();
        assert_invalid(&err, "items[0].assignment_id");
    }

    async fn a_batch_cannot_hand_out_what_the_caller_lacks(app) {
        // Arrange: "manager" may write assignments but holds no docs permission.
        app.create_role("assigner", &["warden:assignments:write"]).await;
        app.assign("assigner", "manager").await;
        app.create_role("viewer", &[]).await;
        app.create_role("docs-admin", &["docs:delete"]).await;
        // Act
        let err = app
            .assignments()
            .batch_assign_roles(authed("manager", BatchAssignRolesRequest { items: vec![item("viewer", "a"), item("docs-admin", "b")], ..Default::default() }))
            .await
            .unwrap_err();
        // Assert
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert_eq!(item_index(&err).as_deref(), Some("1"));
        let list = app.assignments().list_assignments(authed(ADMIN, ListAssignmentsRequest { identity_id: "a".into(), ..Default::default() })).await.unwrap().into_inner();
        assert!(list.assignments.is_empty());
        // Forcing any item needs approvals:bypass.
        let mut forced = item("viewer", "a");
        forced.force = true;
        let err = app.assignments().batch_assign_roles(authed("manager", BatchAssignRolesRequest { items: vec![forced], ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
    }

    async fn a_dry_run_reports_the_whole_batchs_impact_and_changes_nothing(app) {
        app.create_role("editor", &["docs:read"]).await;
        app.create_role("writer", &["docs:write"]).await;
        let response = app
            .assignments()
            .batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest { items: vec![item("editor", "alice"), item("writer", "alice"), item("editor", "bob")], dry_run: true, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let impact = response.impact.expect("impact");
        let mut seen: Vec<(String, Vec<String>)> = impact.identities.iter().map(|i| (i.identity_id.clone(), { let mut g = i.gained.clone(); g.sort(); g })).collect();
        seen.sort();
        assert_eq!(seen, [("alice".to_owned(), vec!["docs:read".to_owned(), "docs:write".to_owned()]), ("bob".to_owned(), vec!["docs:read".to_owned()])]);
        assert!(!app.check("alice", "docs:read").await);
        // Not even reserved: the same batch commits for real afterwards.
        app.assignments().batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest { items: vec![item("editor", "alice")], ..Default::default() })).await.unwrap();
        assert!(app.check("alice", "docs:read").await);
    }

    async fn a_batch_revocation_takes_away_at_one_revision_and_files_requests_for_gated_roles(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "payments".into(), requires_approval: true, ..Default::default() })).await.unwrap();
        let a = app.assign("editor", "alice").await;
        let b = app.assign("editor", "bob").await;
        let p = app.assign("payments", "carol").await;
        let before = app.audit_events().await.len();
        let revoke = |id: &str| RevocationItem { assignment_id: id.into(), reason: "offboarding".into(), ..Default::default() };
        // Act
        let response = app
            .assignments()
            .batch_revoke_assignments(authed(ADMIN, BatchRevokeAssignmentsRequest { items: vec![revoke(&a.id), revoke(&p.id), revoke(&b.id)], ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        // Assert
        assert_eq!(assigned(&response.results).iter().map(|x| x.id.clone()).collect::<Vec<_>>(), [a.id.clone(), b.id.clone()]);
        assert!(matches!(response.results[1].result, Some(assignment_item_result::Result::ChangeRequest(_))));
        assert!(!app.check("alice", "docs:read").await);
        assert!(!app.check("bob", "docs:read").await);
        let events = app.audit_events().await;
        assert_eq!(events.len() - before, 3);
        // Revoking what is already gone fails the whole batch at its index.
        let c = app.assign("editor", "carl").await;
        let err = app
            .assignments()
            .batch_revoke_assignments(authed(ADMIN, BatchRevokeAssignmentsRequest { items: vec![revoke(&c.id), revoke(&a.id)], ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::NotFound, "NOT_FOUND");
        assert_eq!(item_index(&err).as_deref(), Some("1"));
        assert!(app.check("carl", "docs:read").await);
    }

    async fn a_batch_of_a_thousand_commits_whole(app) {
        app.create_role("editor", &["docs:read"]).await;
        let items: Vec<AssignmentItem> = (0..1000).map(|i| item("editor", &format!("user-{i}"))).collect();
        let response = app.assignments().batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest { items, ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(assigned(&response.results).len(), 1000);
        for i in [0, 499, 999] {
            assert!(app.check(&format!("user-{i}"), "docs:read").await);
        }
        let page = app.assignments().list_assignments(authed(ADMIN, ListAssignmentsRequest { role: Some(role_name("editor")), page_size: 1000, ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(page.assignments.len(), 1000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_after_a_burst_of_batched_writes() {
    // Arrange: two replicas on one PostgreSQL database.
    let db = Arc::new(TestDatabase::create(Backend::Postgres).await);
    let a = spawn_on(Arc::clone(&db), test_config, None).await;
    let mut b = spawn_on(db, test_config, None).await;
    a.create_role("editor", &["docs:read"]).await;
    a.create_role("writer", &["docs:write"]).await;
    // Act: 8 concurrent batches of 50 through replica A, then half of them revoked in batches.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let mut client = a.assignments();
        tasks.push(tokio::spawn(async move {
            let items = (0..50)
                .map(|i| {
                    item(
                        if i % 2 == 0 { "editor" } else { "writer" },
                        &format!("u{t}-{i}"),
                    )
                })
                .collect();
            client
                .batch_assign_roles(authed(
                    ADMIN,
                    BatchAssignRolesRequest {
                        items,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let mut made = Vec::new();
    for task in tasks {
        made.extend(assigned(&task.await.unwrap().results));
    }
    assert_eq!(made.len(), 400);
    let revoked: Vec<RevocationItem> = made
        .iter()
        .step_by(2)
        .map(|x| RevocationItem {
            assignment_id: x.id.clone(),
            ..Default::default()
        })
        .collect();
    let last = a
        .assignments()
        .batch_revoke_assignments(authed(
            ADMIN,
            BatchRevokeAssignmentsRequest {
                items: revoked,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // Assert: at the last revision both replicas give every answer the same way.
    for (i, x) in made.iter().enumerate() {
        let who = &x.identity.as_ref().unwrap().id;
        let permission = if x.role_name == "editor" {
            "docs:read"
        } else {
            "docs:write"
        };
        let mut answers = Vec::new();
        for app in [&a, &b] {
            let r = app
                .authz()
                .check(authed(ADMIN, check(who, permission, last.revision)))
                .await
                .unwrap()
                .into_inner();
            answers.push(r.allowed);
        }
        assert_eq!(answers, [i % 2 == 1; 2], "{who} {permission}");
    }
    b.shutdown().await;
    a.finish().await;
}
