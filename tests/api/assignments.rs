//! Assignments, approvals and the no-escalation rule (API rules 4, 5, 6 and the API's own
//! authorization).

use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

backend_tests! {
    async fn an_assignment_grants_and_a_revocation_takes_away(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        assert!(!app.check("alice", "docs:read").await);
        // Act
        let a = app.assign("editor", "alice").await;
        // Assert
        assert!(app.check("alice", "docs:read").await);
        let revoked = app.assignments().revoke_assignment(authed(ADMIN, RevokeAssignmentRequest { assignment_id: a.id.clone(), ..Default::default() })).await.unwrap().into_inner();
        assert!(revoked.revision > a.revision);
        assert!(!app.check("alice", "docs:read").await);
    }

    async fn assigning_a_held_role_is_already_exists_with_the_existing_id(app) {
        app.create_role("editor", &["docs:read"]).await;
        let a = app.assign("editor", "alice").await;
        let err = app
            .assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("alice")), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS");
        let info = tonic_types::StatusExt::get_details_error_info(&err).unwrap();
        assert_eq!(info.metadata.get("existing_id"), Some(&a.id));
    }

    async fn bootstrap_assignments_are_immutable(app) {
        let list = app
            .assignments()
            .list_assignments(authed(ADMIN, ListAssignmentsRequest { identity_id: ADMIN.into(), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let admin = list.assignments.iter().find(|a| a.role_name == "warden:admin").expect("bootstrap assignment");
        assert!(admin.is_immutable);
        let err = app.assignments().revoke_assignment(authed(ADMIN2, RevokeAssignmentRequest { assignment_id: admin.id.clone(), force: true, ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ASSIGNMENT_IMMUTABLE");
    }

    async fn a_caller_cannot_create_or_assign_a_role_granting_what_it_lacks(app) {
        // Arrange: "manager" may write roles and assignments but holds no docs permission.
        app.create_role("role-writer", &["warden:roles:write", "warden:roles:read", "warden:assignments:write"]).await;
        app.assign("role-writer", "manager").await;
        app.create_role("docs-admin", &["docs:read", "docs:delete"]).await;
        // Act + Assert: creating a role with docs:delete is escalation.
        let err = app
            .roles()
            .create_role(authed("manager", CreateRoleRequest { name: "mine".into(), permissions: vec![perm_name("docs:delete")], ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert!(err.message().contains("docs:delete"), "{err:?}");
        // Assigning a role that grants it, even to itself, is escalation too.
        for who in ["manager", "someone"] {
            let err = app
                .assignments()
                .assign_role(authed("manager", AssignRoleRequest { role: Some(role_name("docs-admin")), identity: Some(user(who)), ..Default::default() }))
                .await
                .unwrap_err();
            assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
            let info = tonic_types::StatusExt::get_details_error_info(&err).unwrap();
            assert_eq!(info.metadata.get("missing_permissions").map(String::as_str), Some("docs:delete,docs:read"));
        }
        assert!(!app.check("manager", "docs:delete").await);
        // Adding a permission it lacks to an existing role is escalation as well.
        app.create_role("empty", &[]).await;
        let err = app
            .roles()
            .add_permissions_to_role(authed("manager", AddPermissionsToRoleRequest { role: Some(role_name("empty")), permissions: vec![perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        // A role within its own permissions is fine.
        app.roles()
            .create_role(authed("manager", CreateRoleRequest { name: "readers-of-roles".into(), permissions: vec![perm_name("warden:roles:read")], ..Default::default() }))
            .await
            .expect("no escalation");
    }

    async fn an_approval_gated_role_files_a_change_request_that_a_second_admin_applies(app) {
        // Arrange
        app.roles()
            .create_role(authed(ADMIN, CreateRoleRequest { name: "payments".into(), requires_approval: true, ..Default::default() }))
            .await
            .unwrap();
        // Act: Dfns's 202
        let response = app
            .assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("payments")), identity: Some(user("carol")), reason: "on call".into(), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let Some(assign_role_response::Result::ChangeRequest(cr)) = response.result else { panic!("expected a change request: {response:?}") };
        assert_eq!(cr.status, ChangeRequestStatus::Pending as i32);
        // Self-approval is denied.
        let err = app.change_requests().approve_change_request(authed(ADMIN, ApproveChangeRequestRequest { change_request_id: cr.id.clone(), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "SELF_APPROVAL");
        // A second admin applies it.
        let approved = app
            .change_requests()
            .approve_change_request(authed(ADMIN2, ApproveChangeRequestRequest { change_request_id: cr.id.clone(), comment: "ok".into(), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(approved.status, ChangeRequestStatus::Applied as i32);
        assert!(!approved.resulting_assignment_id.is_empty());
        assert_eq!(approved.decided_by, ADMIN2);
        let a = app.assignments().get_assignment(authed(ADMIN, GetAssignmentRequest { assignment_id: approved.resulting_assignment_id })).await.unwrap().into_inner();
        assert_eq!(a.identity.unwrap().id, "carol");
        // A decided request cannot be decided again.
        let err = app.change_requests().reject_change_request(authed(ADMIN2, RejectChangeRequestRequest { change_request_id: cr.id, ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "CHANGE_REQUEST_NOT_PENDING");
    }

    async fn an_approved_request_whose_role_was_deleted_ends_failed(app) {
        app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "payments".into(), requires_approval: true, ..Default::default() })).await.unwrap();
        let response = app
            .assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("payments")), identity: Some(user("carol")), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let Some(assign_role_response::Result::ChangeRequest(cr)) = response.result else { panic!("expected a change request") };
        app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("payments")), ..Default::default() })).await.unwrap();
        let decided = app
            .change_requests()
            .approve_change_request(authed(ADMIN2, ApproveChangeRequestRequest { change_request_id: cr.id, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decided.status, ChangeRequestStatus::Failed as i32);
        assert!(decided.failure_reason.contains("deleted"), "{decided:?}");
        assert!(!app.check("carol", "warden:roles:read").await);
    }

    async fn force_needs_the_bypass_permission(app) {
        app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "payments".into(), requires_approval: true, ..Default::default() })).await.unwrap();
        app.create_role("assigner", &["warden:assignments:write"]).await;
        app.assign("assigner", "dave").await;
        let err = app
            .assignments()
            .assign_role(authed("dave", AssignRoleRequest { role: Some(role_name("payments")), identity: Some(user("erin")), force: true, ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        // The admin holds warden:approvals:bypass: force assigns directly (Dfns 200).
        let response = app
            .assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("payments")), identity: Some(user("erin")), force: true, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert!(matches!(response.result, Some(assign_role_response::Result::Assignment(_))));
    }

    async fn a_role_assigned_to_a_group_is_held_by_its_members(app) {
        app.create_role("editor", &["docs:read"]).await;
        let group = app.groups().create_group(authed(ADMIN, CreateGroupRequest { name: "writers".into(), ..Default::default() })).await.unwrap().into_inner();
        app.groups()
            .add_group_members(authed(ADMIN, AddGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec!["alice".into(), "bob".into()], ..Default::default() }))
            .await
            .unwrap();
        app.assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(Identity { id: group.id.clone(), kind: IdentityKind::Group as i32 }), ..Default::default() }))
            .await
            .unwrap();
        assert!(app.check("alice", "docs:read").await);
        assert!(app.check("bob", "docs:read").await);
        app.groups()
            .remove_group_members(authed(ADMIN, RemoveGroupMembersRequest { group_id: group.id, identity_ids: vec!["bob".into()], ..Default::default() }))
            .await
            .unwrap();
        assert!(!app.check("bob", "docs:read").await);
        assert!(app.check("alice", "docs:read").await);
    }

    async fn concurrent_identical_assignments_create_exactly_one(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        let before = app.audit_events().await.len();
        // Act: 20 clients at once.
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let mut client = app.assignments();
            tasks.push(tokio::spawn(async move {
                client.assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("alice")), ..Default::default() })).await
            }));
        }
        let mut created = 0;
        let mut exists = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => created += 1,
                Err(e) if e.code() == Code::AlreadyExists => exists += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        // Assert
        assert_eq!((created, exists), (1, 19));
        let list = app.assignments().list_assignments(authed(ADMIN, ListAssignmentsRequest { identity_id: "alice".into(), ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(list.assignments.len(), 1);
        assert_eq!(app.audit_events().await.len() - before, 1);
    }
}
