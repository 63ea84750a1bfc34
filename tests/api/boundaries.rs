//! Admin boundaries (issue 11), each written as the attack: a caller with the API permission for
//! a kind of change, but not the grants the change takes away, must not take them away; forced
//! deletes need what their side effects need; an id names one identity.

use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

const MALLORY: &str = "mallory";

/// Gives MALLORY exactly `permissions` (API permissions and plain ones).
async fn mallory_holds(app: &TestApp, permissions: &[&str]) {
    app.create_role("mallory-kit", permissions).await;
    app.assign("mallory-kit", MALLORY).await;
}

fn missing(err: &tonic::Status) -> String {
    tonic_types::StatusExt::get_details_error_info(err)
        .and_then(|i| i.metadata.get("missing_permissions").cloned())
        .unwrap_or_default()
}

backend_tests! {
    async fn removing_a_permission_the_caller_lacks_from_a_role_is_denied(app) {
        // Arrange: mallory may edit roles but does not hold docs:write.
        mallory_holds(&app, &["warden:roles:write", "warden:roles:read", "docs:read"]).await;
        app.create_role("editor", &["docs:read", "docs:write"]).await;
        app.assign("editor", "alice").await;
        // Act: both removal RPCs.
        let err = app
            .roles()
            .remove_permissions_from_role(authed(MALLORY, RemovePermissionsFromRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("docs:write")], ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert_eq!(missing(&err), "docs:write");
        let err = app
            .roles()
            .remove_permission_from_role(authed(MALLORY, RemovePermissionFromRoleRequest { role: Some(role_name("editor")), permission: Some(perm_name("docs:write")), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        // Assert: alice keeps it; what mallory does hold it may remove.
        assert!(app.check("alice", "docs:write").await);
        app.roles()
            .remove_permission_from_role(authed(MALLORY, RemovePermissionFromRoleRequest { role: Some(role_name("editor")), permission: Some(perm_name("docs:read")), ..Default::default() }))
            .await
            .unwrap();
        assert!(!app.check("alice", "docs:read").await);
    }

    async fn force_deleting_a_role_needs_its_grants_and_the_assignment_permission(app) {
        // Arrange
        app.create_role("vault", &["secret:x"]).await;
        app.assign("vault", "alice").await;
        mallory_holds(&app, &["warden:roles:write", "warden:roles:read"]).await;
        // Act + Assert: revoking every holder needs warden:assignments:write ...
        let delete = || DeleteRoleRequest { role: Some(role_name("vault")), force: true, ..Default::default() };
        let err = app.roles().delete_role(authed(MALLORY, delete())).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert_eq!(missing(&err), "warden:assignments:write");
        // ... and, with it, holding what the role grants.
        app.create_role("assigner", &["warden:assignments:write"]).await;
        app.assign("assigner", MALLORY).await;
        let err = app.roles().delete_role(authed(MALLORY, delete())).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert_eq!(missing(&err), "secret:x");
        assert!(app.check("alice", "secret:x").await);
        // A role nobody holds takes nothing away: deleting it needs no more than roles:write.
        app.create_role("unused", &["secret:x"]).await;
        app.roles().delete_role(authed(MALLORY, DeleteRoleRequest { role: Some(role_name("unused")), ..Default::default() })).await.unwrap();
    }

    async fn force_deleting_a_permission_needs_roles_write_and_the_permission(app) {
        // Arrange
        app.create_role("vault", &["secret:x"]).await;
        app.assign("vault", "alice").await;
        mallory_holds(&app, &["warden:permissions:write"]).await;
        let delete = || DeletePermissionRequest { permission: Some(perm_name("secret:x")), force: true, ..Default::default() };
        // Act + Assert
        let err = app.permissions().delete_permission(authed(MALLORY, delete())).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert_eq!(missing(&err), "warden:roles:write");
        app.create_role("role-writer", &["warden:roles:write"]).await;
        app.assign("role-writer", MALLORY).await;
        let err = app.permissions().delete_permission(authed(MALLORY, delete())).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert_eq!(missing(&err), "secret:x");
        assert!(app.check("alice", "secret:x").await);
    }

    async fn an_id_names_one_identity_whatever_kind_is_asked(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        app.create_role("writer", &["docs:write"]).await;
        app.assign("editor", "alice").await;
        let as_service_account = |role: &str, id: &str| AssignRoleRequest {
            role: Some(role_name(role)),
            identity: Some(Identity { id: id.into(), kind: IdentityKind::ServiceAccount as i32 }),
            ..Default::default()
        };
        // Act + Assert: alice is a USER; the same id as a SERVICE_ACCOUNT is refused.
        let err = app.assignments().assign_role(authed(ADMIN, as_service_account("writer", "alice"))).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "IDENTITY_KIND_MISMATCH");
        assert!(!app.check("alice", "docs:write").await);
        // Within one batch too.
        let items = vec![
            AssignmentItem { role: Some(role_name("editor")), identity: Some(user("bob")), ..Default::default() },
            AssignmentItem { role: Some(role_name("writer")), identity: Some(Identity { id: "bob".into(), kind: IdentityKind::ServiceAccount as i32 }), ..Default::default() },
        ];
        let err = app.assignments().batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest { items, ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "IDENTITY_KIND_MISMATCH");
        // The same kind is fine.
        app.assign("writer", "alice").await;
        assert!(app.check("alice", "docs:write").await);
    }

    async fn refused_requests_are_audited_and_a_flood_is_rate_limited(app) {
        // Act: mallory, who holds nothing, tries to create a role.
        let err = app
            .roles()
            .create_role(authed(MALLORY, CreateRoleRequest { name: "mine".into(), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        let request_id = tonic_types::StatusExt::get_details_request_info(&err).unwrap().request_id;
        // Assert: the refusal is in the audit trail (recorded in the background).
        let denied = || async {
            app.audit()
                .list_audit_events(authed(ADMIN, ListAuditEventsRequest { actor: MALLORY.into(), page_size: 100, ..Default::default() }))
                .await
                .unwrap()
                .into_inner()
                .events
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let events = loop {
            let events = denied().await;
            if !events.is_empty() || std::time::Instant::now() > deadline {
                break events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!((e.target_kind.as_str(), e.request_id.as_str()), ("denied_request", request_id.as_str()));
        assert!(e.rpc.ends_with("/CreateRole") && e.reason.contains("warden:roles:write"), "{e:?}");
        // A flood of refusals records at most 10 per minute, then says it stopped.
        for _ in 0..30 {
            app.roles().create_role(authed(MALLORY, CreateRoleRequest { name: "mine".into(), ..Default::default() })).await.unwrap_err();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let events = loop {
            let events = denied().await;
            if events.len() >= 11 || std::time::Instant::now() > deadline {
                break events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        // Records still on their way would show here too.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(denied().await.len(), events.len());
        assert_eq!(events.len(), 11, "{events:?}");
        assert_eq!(events.iter().filter(|e| e.reason.contains("not recorded")).count(), 1);
    }

    async fn an_approval_fails_when_the_id_became_another_kind_meanwhile(app) {
        // Arrange: a pending request for kim as a USER, then kim assigned as a SERVICE_ACCOUNT.
        app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "payments".into(), requires_approval: true, ..Default::default() })).await.unwrap();
        app.create_role("editor", &["docs:read"]).await;
        let cr = app.request_assignment("payments", "kim").await;
        app.assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(Identity { id: "kim".into(), kind: IdentityKind::ServiceAccount as i32 }), ..Default::default() }))
            .await
            .unwrap();
        // Act
        let decided = app
            .change_requests()
            .approve_change_request(authed(ADMIN2, ApproveChangeRequestRequest { change_request_id: cr.id, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        // Assert
        assert_eq!(decided.status, ChangeRequestStatus::Failed as i32, "{decided:?}");
        assert!(decided.failure_reason.contains("SERVICE_ACCOUNT"), "{decided:?}");
    }
}
