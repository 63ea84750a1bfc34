//! Permissions and roles: API rules 1, 2, 7, 8, 13, the error model and the audit trail.

use std::collections::HashSet;

use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

backend_tests! {
    async fn creating_a_role_returns_its_sorted_permissions_and_a_revision(app) {
        // Arrange
        app.create_permission("docs:write").await;
        app.create_permission("docs:read").await;
        // Act
        let role = app
            .roles()
            .create_role(authed(ADMIN, CreateRoleRequest { name: "editor".into(), permissions: vec![perm_name("docs:write"), perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        // Assert
        assert_eq!(role.permissions, vec!["docs:read", "docs:write"]);
        assert!(role.revision > 0);
        assert!(!role.etag.is_empty());
        assert_eq!(role.tenant_id, "default");
        assert!(uuid::Uuid::parse_str(&role.id).is_ok_and(|u| u.get_version_num() == 7));
    }

    async fn duplicate_names_are_already_exists(app) {
        app.create_permission("docs:read").await;
        let err = app.permissions().create_permission(authed(ADMIN, CreatePermissionRequest { name: "docs:read".into(), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS");
        app.create_role("editor", &[]).await;
        let err = app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "editor".into(), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS");
    }

    async fn invalid_names_and_malformed_ids_are_invalid_argument(app) {
        let cases = [("", "name"), ("has space", "name"), (":leading", "name")];
        for (name, field) in cases {
            let err = app.permissions().create_permission(authed(ADMIN, CreatePermissionRequest { name: name.into(), ..Default::default() })).await.unwrap_err();
            assert_invalid(&err, field);
        }
        for name in ["", " padded", "slash/not-allowed"] {
            let err = app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: name.into(), ..Default::default() })).await.unwrap_err();
            assert_invalid(&err, "name");
        }
        for id in ["nope", "01a20853-b035-7633-8df7", "{01a20853-b035-7633-8df7-8c3871e4fa41}"] {
            let err = app.roles().get_role(authed(ADMIN, GetRoleRequest { role: Some(role_id(id)), ..Default::default() })).await.unwrap_err();
            assert_invalid(&err, "role.id");
            let err = app.permissions().get_permission(authed(ADMIN, GetPermissionRequest { permission: Some(perm_id(id)) })).await.unwrap_err();
            assert_invalid(&err, "permission.id");
            let err = app.assignments().get_assignment(authed(ADMIN, GetAssignmentRequest { assignment_id: id.into() })).await.unwrap_err();
            assert_invalid(&err, "assignment_id");
        }
        let err = app.roles().get_role(authed(ADMIN, GetRoleRequest { role: None, ..Default::default() })).await.unwrap_err();
        assert_invalid(&err, "role");
        // A well-formed id that does not exist is NOT_FOUND.
        let err = app.roles().get_role(authed(ADMIN, GetRoleRequest { role: Some(role_id(&uuid::Uuid::now_v7().to_string())), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::NotFound, "NOT_FOUND");
    }

    async fn reserved_names_are_refused(app) {
        let err = app.permissions().create_permission(authed(ADMIN, CreatePermissionRequest { name: "warden:anything".into(), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "RESERVED_NAME");
    }

    async fn a_batch_add_with_no_entries_or_duplicates_is_invalid_and_changes_nothing(app) {
        // Arrange
        let role = app.create_role("editor", &["docs:read"]).await;
        // Act + Assert
        let empty = app.roles().add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(role_name("editor")), permissions: vec![], ..Default::default() })).await.unwrap_err();
        assert_invalid(&empty, "permissions");
        let dup = app
            .roles()
            .add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("docs:read"), perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap_err();
        assert_invalid(&dup, "permissions[1]");
        let empty_remove = app.roles().remove_permissions_from_role(authed(ADMIN, RemovePermissionsFromRoleRequest { role: Some(role_name("editor")), permissions: vec![], ..Default::default() })).await.unwrap_err();
        assert_invalid(&empty_remove, "permissions");
        assert_eq!(app.get_role("editor").await.revision, role.revision, "nothing changed");
    }

    async fn the_same_permission_by_id_and_by_name_is_a_duplicate(app) {
        let p = app.create_permission("docs:read").await;
        let role = app.create_role("editor", &[]).await;
        let err = app
            .roles()
            .add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_id(&p.id), perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(app.get_role("editor").await.revision, role.revision);
    }

    async fn a_batch_with_unknown_permissions_names_them_all_and_changes_nothing(app) {
        // Arrange
        let role = app.create_role("editor", &["docs:read"]).await;
        app.create_permission("docs:write").await;
        // Act
        let err = app
            .roles()
            .add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest {
                role: Some(role_name("editor")),
                permissions: vec![perm_name("docs:write"), perm_name("nope:one"), perm_name("nope:two")],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        // Assert
        assert_error(&err, Code::NotFound, "NOT_FOUND");
        let info = tonic_types::StatusExt::get_details_error_info(&err).unwrap();
        assert_eq!(info.metadata.get("missing").map(String::as_str), Some("nope:one,nope:two"));
        let after = app.get_role("editor").await;
        assert_eq!(after.permissions, vec!["docs:read"], "docs:write must not have been added");
        assert_eq!(after.revision, role.revision);
    }

    async fn adding_a_permission_the_role_has_succeeds(app) {
        app.create_role("editor", &["docs:read"]).await;
        let response = app
            .roles()
            .add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.role.unwrap().permissions, vec!["docs:read"]);
    }

    async fn removing_absent_permissions_succeeds(app) {
        // Arrange
        app.create_role("editor", &["docs:read", "docs:write"]).await;
        app.create_permission("docs:delete").await;
        // Act: docs:delete is not in the role.
        let response = app
            .roles()
            .remove_permissions_from_role(authed(ADMIN, RemovePermissionsFromRoleRequest {
                role: Some(role_name("editor")),
                permissions: vec![perm_name("docs:write"), perm_name("docs:delete")],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        // Assert
        let role = response.role.unwrap();
        assert_eq!(role.permissions, vec!["docs:read"]);
        assert_eq!(response.revision, role.revision);
    }

    async fn removing_one_permission_the_role_lacks_is_permission_not_in_role_unless_allowed(app) {
        // Arrange
        let role = app.create_role("editor", &["docs:read"]).await;
        app.create_permission("docs:write").await;
        let request = |allow_missing| authed(ADMIN, RemovePermissionFromRoleRequest { role: Some(role_name("editor")), permission: Some(perm_name("docs:write")), allow_missing, ..Default::default() });
        // Act + Assert
        let err = app.roles().remove_permission_from_role(request(false)).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "PERMISSION_NOT_IN_ROLE");
        let ok = app.roles().remove_permission_from_role(request(true)).await.unwrap().into_inner();
        assert_eq!(ok.role.unwrap().permissions, vec!["docs:read"]);
        // And the single removal of a granted permission returns the updated role.
        let removed = app
            .roles()
            .remove_permission_from_role(authed(ADMIN, RemovePermissionFromRoleRequest { role: Some(role_id(&role.id)), permission: Some(perm_name("docs:read")), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert!(removed.role.unwrap().permissions.is_empty());
        // Unknown role or permission: NOT_FOUND naming which.
        let err = app
            .roles()
            .remove_permission_from_role(authed(ADMIN, RemovePermissionFromRoleRequest { role: Some(role_name("editor")), permission: Some(perm_name("nope:x")), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::NotFound, "NOT_FOUND");
        assert!(err.message().contains("permission"), "{err:?}");
        let err = app
            .roles()
            .remove_permission_from_role(authed(ADMIN, RemovePermissionFromRoleRequest { role: Some(role_name("ghost")), permission: Some(perm_name("docs:read")), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::NotFound, "NOT_FOUND");
        assert!(err.message().contains("role"), "{err:?}");
    }

    async fn system_roles_are_immutable(app) {
        app.create_permission("docs:read").await;
        let admin = role_name("warden:admin");
        let err = app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(admin.clone()), force: true, ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "SYSTEM_ROLE_IMMUTABLE");
        let err = app.roles().add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(admin.clone()), permissions: vec![perm_name("docs:read")], ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "SYSTEM_ROLE_IMMUTABLE");
        let err = app.roles().remove_permissions_from_role(authed(ADMIN, RemovePermissionsFromRoleRequest { role: Some(role_name("warden:viewer")), permissions: vec![perm_name("warden:roles:read")], ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "SYSTEM_ROLE_IMMUTABLE");
        let err = app.roles().update_role(authed(ADMIN, UpdateRoleRequest { role: Some(admin), description: Some("mine".into()), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "SYSTEM_ROLE_IMMUTABLE");
        let err = app.permissions().delete_permission(authed(ADMIN, DeletePermissionRequest { permission: Some(perm_name("warden:roles:read")), force: true, ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "SYSTEM_PERMISSION_IMMUTABLE");
        let role = app.get_role("warden:admin").await;
        assert!(role.is_system);
        assert!(role.permissions.contains(&"warden:roles:escalate".to_owned()));
    }

    async fn deleting_a_granted_permission_needs_force_which_removes_it_from_roles(app) {
        // Arrange
        app.create_role("editor", &["docs:read", "docs:write"]).await;
        // Act + Assert: without force
        let err = app.permissions().delete_permission(authed(ADMIN, DeletePermissionRequest { permission: Some(perm_name("docs:write")), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "PERMISSION_IN_USE");
        assert_eq!(app.get_role("editor").await.permissions, vec!["docs:read", "docs:write"]);
        // With force
        let done = app.permissions().delete_permission(authed(ADMIN, DeletePermissionRequest { permission: Some(perm_name("docs:write")), force: true, ..Default::default() })).await.unwrap().into_inner();
        assert!(done.revision > 0);
        assert_eq!(app.get_role("editor").await.permissions, vec!["docs:read"]);
        let err = app.permissions().get_permission(authed(ADMIN, GetPermissionRequest { permission: Some(perm_name("docs:write")) })).await.unwrap_err();
        assert_error(&err, Code::NotFound, "NOT_FOUND");
    }

    async fn deleting_a_role_with_assignments_needs_force_which_revokes_them(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        let assignment = app.assign("editor", "alice").await;
        assert!(app.check("alice", "docs:read").await);
        // Act + Assert: without force
        let err = app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("editor")), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ROLE_IN_USE");
        assert!(app.check("alice", "docs:read").await, "nothing changed");
        // With force: the role and its assignment go, each audited.
        app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("editor")), force: true, ..Default::default() })).await.unwrap();
        assert!(!app.check("alice", "docs:read").await);
        let err = app.assignments().get_assignment(authed(ADMIN, GetAssignmentRequest { assignment_id: assignment.id.clone() })).await.unwrap_err();
        assert_error(&err, Code::NotFound, "NOT_FOUND");
        let events = app.audit_events().await;
        assert!(events.iter().any(|e| e.target_id == assignment.id && e.after.is_none() && e.rpc.ends_with("/DeleteRole")));
        // A role without assignments is deleted without force.
        app.create_role("viewer", &["docs:read"]).await;
        app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("viewer")), ..Default::default() })).await.unwrap();
    }

    async fn update_role_honours_the_etag(app) {
        let role = app.create_role("editor", &["docs:read"]).await;
        let stale = app
            .roles()
            .update_role(authed(ADMIN, UpdateRoleRequest { role: Some(role_name("editor")), description: Some("first".into()), etag: Some(role.etag.clone()), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stale.description, "first");
        let err = app
            .roles()
            .update_role(authed(ADMIN, UpdateRoleRequest { role: Some(role_name("editor")), description: Some("second".into()), etag: Some(role.etag), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::Aborted, "ETAG_MISMATCH");
        assert_eq!(app.get_role("editor").await.description, "first");
    }

    async fn pagination_walks_every_item_once(app) {
        // Arrange: 23 permissions (plus the 13 built-in ones).
        for i in 0..23 {
            app.create_permission(&format!("p:{i:02}")).await;
        }
        // Act
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = app
                .permissions()
                .list_permissions(authed(ADMIN, ListPermissionsRequest { page_size: 5, page_token: token, name_prefix: "p:".into() }))
                .await
                .unwrap()
                .into_inner();
            assert!(page.permissions.len() <= 5);
            seen.extend(page.permissions.into_iter().map(|p| p.name));
            pages += 1;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        // Assert
        let expected: Vec<String> = (0..23).map(|i| format!("p:{i:02}")).collect();
        assert_eq!(seen, expected, "no duplicates, no gaps, in name order");
        assert_eq!(pages, 5);
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 23);
        // A bad token, or one reused with other filters, is INVALID_ARGUMENT.
        let err = app.permissions().list_permissions(authed(ADMIN, ListPermissionsRequest { page_size: 5, page_token: "garbage".into(), ..Default::default() })).await.unwrap_err();
        assert_invalid(&err, "page_token");
        let first = app.permissions().list_permissions(authed(ADMIN, ListPermissionsRequest { page_size: 5, page_token: String::new(), name_prefix: "p:".into() })).await.unwrap().into_inner();
        let err = app.permissions().list_permissions(authed(ADMIN, ListPermissionsRequest { page_size: 5, page_token: first.next_page_token, name_prefix: "q".into() })).await.unwrap_err();
        assert_invalid(&err, "page_token");
        let err = app.permissions().list_permissions(authed(ADMIN, ListPermissionsRequest { page_size: -1, ..Default::default() })).await.unwrap_err();
        assert_invalid(&err, "page_size");
    }

    async fn every_mutation_writes_exactly_one_audit_event_with_its_revision(app) {
        // Arrange
        let before = app.audit_events().await.len();
        // Act
        let p = app.create_permission("docs:read").await;
        let role = app
            .roles()
            .create_role(authed(ADMIN, CreateRoleRequest { name: "editor".into(), permissions: vec![perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let removed = app
            .roles()
            .remove_permissions_from_role(authed(ADMIN, RemovePermissionsFromRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        // A failed mutation writes nothing.
        let _ = app.roles().add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("nope:x")], ..Default::default() })).await.unwrap_err();
        // Assert
        let events = app.audit_events().await;
        assert_eq!(events.len() - before, 3, "{events:#?}");
        let newest: Vec<_> = events.iter().take(3).collect();
        assert_eq!(newest[0].rpc, "/warden.v1.RoleService/RemovePermissionsFromRole");
        assert_eq!(newest[0].revision, removed.revision);
        assert_eq!(newest[0].target_id, role.id);
        assert!(newest[0].before.is_some() && newest[0].after.is_some());
        assert_eq!(newest[1].rpc, "/warden.v1.RoleService/CreateRole");
        assert_eq!(newest[1].revision, role.revision);
        assert_eq!(newest[2].target_id, p.id);
        assert_eq!(newest[2].actor, ADMIN);
        assert!(newest.iter().all(|e| !e.request_id.is_empty()));
        assert!(newest[0].revision > newest[1].revision && newest[1].revision > newest[2].revision);
    }

    async fn dry_run_changes_nothing_and_reports_the_impact(app) {
        // Arrange
        let role = app.create_role("editor", &["docs:read", "docs:write"]).await;
        app.assign("editor", "alice").await;
        app.assign("editor", "bob").await;
        let revision = app.get_role("editor").await.revision;
        // Act
        let preview = app
            .roles()
            .remove_permissions_from_role(authed(ADMIN, RemovePermissionsFromRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("docs:write")], dry_run: true, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        // Assert
        let impact = preview.impact.expect("impact on dry run");
        let mut who: Vec<(String, Vec<String>)> = impact.identities.into_iter().map(|i| (i.identity_id, i.lost)).collect();
        who.sort();
        assert_eq!(who, vec![("alice".into(), vec!["docs:write".into()]), ("bob".into(), vec!["docs:write".into()])]);
        let after = app.get_role("editor").await;
        assert_eq!(after.permissions, role.permissions);
        assert_eq!(after.revision, revision);
        assert!(app.check("alice", "docs:write").await);
    }
}

/// GetRole (answered from the index) and the role as the database holds it, compared field by
/// field; `None` when the database has no such role.
async fn role_as_stored(app: &TestApp, name: &str) -> Option<warden::domain::Role> {
    let store = warden::app::connect(&test_config(&app.db.url))
        .await
        .unwrap();
    let tenant = warden::domain::TenantId::parse("default").unwrap();
    let role = store
        .find_role(&tenant, &warden::domain::RoleRef::Name(name.to_owned()))
        .await
        .unwrap();
    store.close().await;
    role
}

fn assert_same_role(served: &Role, stored: &warden::domain::Role, step: &str) {
    let micros = |t: &Option<prost_types::Timestamp>| {
        let t = t.as_ref().expect("a timestamp");
        t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
    };
    assert_eq!(served.id, stored.id.to_string(), "{step}: id");
    assert_eq!(served.name, stored.name, "{step}: name");
    assert_eq!(
        served.description, stored.description,
        "{step}: description"
    );
    assert_eq!(served.is_system, stored.is_system, "{step}: is_system");
    assert_eq!(
        served.requires_approval, stored.requires_approval,
        "{step}: requires_approval"
    );
    assert_eq!(
        served.permissions, stored.permissions,
        "{step}: permissions"
    );
    assert_eq!(served.tenant_id, stored.tenant.as_str(), "{step}: tenant");
    assert_eq!(served.revision, stored.revision.0, "{step}: revision");
    assert_eq!(served.etag, stored.etag(), "{step}: etag");
    assert_eq!(
        micros(&served.create_time),
        stored.create_time.timestamp_micros(),
        "{step}: create_time"
    );
    assert_eq!(
        micros(&served.update_time),
        stored.update_time.timestamp_micros(),
        "{step}: update_time"
    );
}

backend_tests! {
    async fn get_role_answers_from_the_index_exactly_what_the_database_holds_after_every_kind_of_change(app) {
        // Arrange: a second replica on the same database, to read through after each change.
        let peer = spawn_on(std::sync::Arc::clone(&app.db), test_config, None).await;
        for p in ["docs:a", "docs:b", "docs:c"] {
            app.create_permission(p).await;
        }
        let created = app.create_role("editor", &["docs:a"]).await;
        let mut revision = created.revision;
        let compare = |step: &'static str, revision: u64| {
            let (app, peer) = (&app, &peer);
            async move {
                let stored = role_as_stored(app, "editor").await.expect("stored");
                assert_same_role(&app.get_role("editor").await, &stored, step);
                let on_peer = peer
                    .roles()
                    .get_role(authed(ADMIN, GetRoleRequest { role: Some(role_name("editor")), at_least_revision: revision }))
                    .await
                    .expect("the peer answers once it has the revision")
                    .into_inner();
                assert_same_role(&on_peer, &stored, step);
            }
        };
        compare("created", revision).await;

        // Act and assert, change by change.
        let update = |description: Option<&str>, requires_approval: Option<bool>| UpdateRoleRequest {
            role: Some(role_name("editor")),
            description: description.map(str::to_owned),
            requires_approval,
            ..Default::default()
        };
        revision = app.roles().update_role(authed(ADMIN, update(Some("edits docs"), None))).await.unwrap().into_inner().revision;
        compare("description updated", revision).await;
        revision = app.roles().update_role(authed(ADMIN, update(None, Some(true)))).await.unwrap().into_inner().revision;
        compare("approval flag updated", revision).await;
        revision = app.roles()
            .add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("docs:b"), perm_name("docs:c")], ..Default::default() }))
            .await.unwrap().into_inner().revision;
        compare("permissions added", revision).await;
        revision = app.roles()
            .remove_permissions_from_role(authed(ADMIN, RemovePermissionsFromRoleRequest { role: Some(role_name("editor")), permissions: vec![perm_name("docs:b")], ..Default::default() }))
            .await.unwrap().into_inner().revision;
        compare("permissions removed", revision).await;
        revision = app.roles()
            .remove_permission_from_role(authed(ADMIN, RemovePermissionFromRoleRequest { role: Some(role_name("editor")), permission: Some(perm_name("docs:c")), ..Default::default() }))
            .await.unwrap().into_inner().revision;
        compare("one permission removed", revision).await;
        revision = app.permissions()
            .delete_permission(authed(ADMIN, DeletePermissionRequest { permission: Some(perm_name("docs:a")), force: true, ..Default::default() }))
            .await.unwrap().into_inner().revision;
        compare("its last permission deleted", revision).await;
        revision = app.roles()
            .delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("editor")), ..Default::default() }))
            .await.unwrap().into_inner().revision;
        assert!(role_as_stored(&app, "editor").await.is_none());
        for (who, replica) in [("this replica", &app), ("the peer", &peer)] {
            let err = replica.roles()
                .get_role(authed(ADMIN, GetRoleRequest { role: Some(role_name("editor")), at_least_revision: revision }))
                .await
                .expect_err("deleted");
            assert_eq!(err.code(), Code::NotFound, "{who}: {err:?}");
        }
        peer.finish().await;
    }

    async fn get_role_waits_for_at_least_revision_and_refuses_a_revision_it_cannot_reach(app) {
        let role = app.create_role("reader", &[]).await;
        let err = app.roles()
            .get_role(authed(ADMIN, GetRoleRequest { role: Some(role_name("reader")), at_least_revision: role.revision + 1_000 }))
            .await
            .expect_err("not reached");
        assert_error(&err, Code::Unavailable, "UNAVAILABLE");
        let err = app.roles()
            .get_role(authed("nobody", GetRoleRequest { role: Some(role_name("reader")), at_least_revision: role.revision + 1_000 }))
            .await
            .expect_err("no right to read roles");
        assert_eq!(err.code(), Code::PermissionDenied, "refused before any wait: {err:?}");
    }
}
