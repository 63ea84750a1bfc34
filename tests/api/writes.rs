//! Idempotency keys (rule 14), impact previews (rule 15), explain (rules 11, 17) and WatchChanges.

use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::backend_tests;
use crate::helpers::*;

fn keyed<T>(key: &str, message: T) -> tonic::Request<T> {
    let mut request = authed(ADMIN, message);
    request
        .metadata_mut()
        .insert("idempotency-key", MetadataValue::try_from(key).unwrap());
    request
}

backend_tests! {
    async fn a_retry_with_the_same_key_returns_the_first_response_and_writes_once(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        let before = app.audit_events().await.len();
        let request = || AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("alice")), ..Default::default() };
        // Act
        let first = app.assignments().assign_role(keyed("key-1", request())).await.unwrap().into_inner();
        let retry = app.assignments().assign_role(keyed("key-1", request())).await.unwrap().into_inner();
        // Assert
        assert_eq!(first, retry);
        assert_eq!(app.audit_events().await.len() - before, 1);
        // The same key with another body is refused.
        let other = AssignRoleRequest { identity: Some(user("bob")), ..request() };
        let err = app.assignments().assign_role(keyed("key-1", other)).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED");
        // Without a key, the repeat is an ordinary duplicate.
        let err = app.assignments().assign_role(authed(ADMIN, request())).await.unwrap_err();
        assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS");
        // A malformed key is refused.
        let err = app.assignments().assign_role(keyed(&"k".repeat(129), request())).await.unwrap_err();
        assert_invalid(&err, "idempotency-key");
    }

    async fn dry_runs_of_assignments_and_memberships_report_exactly_who_changes(app) {
        // Arrange
        app.create_role("editor", &["docs:read", "docs:write"]).await;
        app.create_role("reader", &["docs:read"]).await;
        app.assign("reader", "alice").await;
        let group = app.groups().create_group(authed(ADMIN, CreateGroupRequest { name: "team".into(), ..Default::default() })).await.unwrap().into_inner();
        app.assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(Identity { id: group.id.clone(), kind: IdentityKind::Group as i32 }), ..Default::default() }))
            .await
            .unwrap();
        let revision = app.authz().check(authed(ADMIN, CheckRequest { identity_id: "x".into(), permission: "docs:read".into(), ..Default::default() })).await.unwrap().into_inner().revision;

        // Act + Assert: assigning editor to alice would only add docs:write (she reads already).
        let preview = app
            .assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("alice")), dry_run: true, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let impact = preview.impact.unwrap();
        assert_eq!(impact.identities, vec![IdentityImpact { identity_id: "alice".into(), gained: vec!["docs:write".into()], lost: vec![], ..Default::default() }]);
        // Adding bob and alice to the group: bob gains both, alice only docs:write.
        let preview = app
            .groups()
            .add_group_members(authed(ADMIN, AddGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec!["bob".into(), "alice".into()], dry_run: true, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let mut who = preview.impact.unwrap().identities;
        who.sort_by(|a, b| a.identity_id.cmp(&b.identity_id));
        assert_eq!(who, vec![
            IdentityImpact { identity_id: "alice".into(), gained: vec!["docs:write".into()], lost: vec![], ..Default::default() },
            IdentityImpact { identity_id: "bob".into(), gained: vec!["docs:read".into(), "docs:write".into()], lost: vec![], ..Default::default() },
        ]);
        // Revoking alice's reader role would take docs:read away.
        let list = app.assignments().list_assignments(authed(ADMIN, ListAssignmentsRequest { identity_id: "alice".into(), ..Default::default() })).await.unwrap().into_inner();
        let preview = app
            .assignments()
            .revoke_assignment(authed(ADMIN, RevokeAssignmentRequest { assignment_id: list.assignments[0].id.clone(), dry_run: true, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(preview.impact.unwrap().identities, vec![IdentityImpact { identity_id: "alice".into(), gained: vec![], lost: vec!["docs:read".into()], ..Default::default() }]);
        // Nothing changed.
        let after = app.authz().check(authed(ADMIN, CheckRequest { identity_id: "x".into(), permission: "docs:read".into(), ..Default::default() })).await.unwrap().into_inner().revision;
        assert_eq!(after, revision);
        assert!(app.check("alice", "docs:read").await);
        assert!(!app.check("alice", "docs:write").await);
        assert!(!app.check("bob", "docs:read").await);
        assert_eq!(app.groups().get_group(authed(ADMIN, GetGroupRequest { group_id: group.id })).await.unwrap().into_inner().member_count, 0);
    }

    async fn explain_names_the_grant_path_or_what_is_missing(app) {
        // Arrange
        let editor = app.create_role("editor", &["docs:read"]).await;
        app.create_role("other", &["docs:read"]).await;
        app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "gated".into(), permissions: vec![perm_name("docs:read")], requires_approval: true, ..Default::default() })).await.unwrap();
        let group = app.groups().create_group(authed(ADMIN, CreateGroupRequest { name: "team".into(), ..Default::default() })).await.unwrap().into_inner();
        app.groups().add_group_members(authed(ADMIN, AddGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec!["alice".into()], ..Default::default() })).await.unwrap();
        let via_group = app
            .assignments()
            // docs:read is gated (by `gated`): the admin assigns with its bypass.
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(Identity { id: group.id.clone(), kind: IdentityKind::Group as i32 }), force: true, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        let Some(assign_role_response::Result::Assignment(via_group)) = via_group.result else { panic!() };
        let pending = app.request_assignment("gated", "bob").await;
        let explain = |who: &str| authed(ADMIN, CheckRequest { identity_id: who.into(), permission: "docs:read".into(), explain: true, ..Default::default() });

        // Act + Assert: allow names assignment, role and group.
        let allowed = app.authz().check(explain("alice")).await.unwrap().into_inner();
        assert!(allowed.allowed);
        assert_eq!(allowed.reason, CheckReason::Granted as i32);
        assert_eq!(allowed.grants.len(), 1);
        assert_eq!(allowed.grants[0].assignment_id, via_group.id);
        assert_eq!(allowed.grants[0].role.as_ref().unwrap().id, editor.id);
        assert_eq!(allowed.grants[0].group_id, group.id);
        // Deny names the roles that would grant, and the pending request.
        let denied = app.authz().check(explain("bob")).await.unwrap().into_inner();
        assert!(!denied.allowed);
        assert_eq!(denied.reason, CheckReason::NoGrant as i32);
        let names: Vec<String> = denied.granting_roles.iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, vec!["editor", "gated", "other"]);
        assert_eq!(denied.pending_change_request_ids, vec![pending.id.clone()]);
        // A replica that builds its index from the database explains the same; a request that
        // is no longer pending is not named.
        let withdrawn = app.request_assignment("gated", "carol").await;
        app.change_requests().cancel_change_request(authed(ADMIN, CancelChangeRequestRequest { change_request_id: withdrawn.id, ..Default::default() })).await.unwrap();
        let mut fresh = spawn_on(std::sync::Arc::clone(&app.db), test_config, None).await;
        let again = fresh.authz().check(explain("alice")).await.unwrap().into_inner();
        assert_eq!(again.grants, allowed.grants);
        let again = fresh.authz().check(explain("bob")).await.unwrap().into_inner();
        assert_eq!((again.granting_roles, again.pending_change_request_ids), (denied.granting_roles.clone(), vec![pending.id]));
        let carol = fresh.authz().check(explain("carol")).await.unwrap().into_inner();
        assert!(!carol.allowed);
        assert!(carol.pending_change_request_ids.is_empty(), "{carol:?}");
        fresh.shutdown().await;
        // An unknown permission is a denial with its own reason, not an error.
        let unknown = app.authz().check(authed(ADMIN, CheckRequest { identity_id: "alice".into(), permission: "nope:x".into(), ..Default::default() })).await.unwrap().into_inner();
        assert!(!unknown.allowed);
        assert_eq!(unknown.reason, CheckReason::UnknownPermission as i32);
        // Checking oneself needs no permission; checking others does.
        let me = app.authz().check(authed("bob", CheckRequest { identity_id: "bob".into(), permission: "docs:read".into(), ..Default::default() })).await.unwrap().into_inner();
        assert!(!me.allowed);
        let err = app.authz().check(authed("bob", CheckRequest { identity_id: "alice".into(), permission: "docs:read".into(), ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
    }

    async fn batch_check_answers_in_order_and_bounds_its_size(app) {
        app.create_role("editor", &["docs:read"]).await;
        app.assign("editor", "alice").await;
        let item = |who: &str, p: &str| CheckRequest { identity_id: who.into(), permission: p.into(), ..Default::default() };
        let results = app
            .authz()
            .batch_check(authed(ADMIN, BatchCheckRequest { items: vec![item("alice", "docs:read"), item("bob", "docs:read"), item("alice", "nope:x")] }))
            .await
            .unwrap()
            .into_inner()
            .results;
        assert_eq!(results.iter().map(|r| r.allowed).collect::<Vec<_>>(), vec![true, false, false]);
        assert_eq!(results[2].reason, CheckReason::UnknownPermission as i32);
        let err = app.authz().batch_check(authed(ADMIN, BatchCheckRequest { items: vec![item("a", "b"); 1001] })).await.unwrap_err();
        assert_invalid(&err, "items");
        let err = app.authz().batch_check(authed(ADMIN, BatchCheckRequest { items: vec![] })).await.unwrap_err();
        assert_invalid(&err, "items");
    }

    async fn watch_streams_every_change_in_order_and_resumes(app) {
        // Arrange
        let start = app.authz().check(authed(ADMIN, CheckRequest { identity_id: "x".into(), permission: "x".into(), ..Default::default() })).await.unwrap().into_inner().revision;
        app.create_permission("a:1").await;
        let mut stream = app.audit().watch_changes(authed(ADMIN, WatchChangesRequest { since_revision: start, ..Default::default() })).await.unwrap().into_inner();
        // Act: changes before and after subscribing.
        app.create_permission("a:2").await;
        app.create_role("r", &["a:1"]).await;
        // Assert
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message()).await.expect("event in time").unwrap().unwrap();
            seen.push(event);
        }
        assert_eq!(seen.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![start + 1, start + 2, start + 3]);
        assert_eq!(seen.iter().map(|e| e.kind()).collect::<Vec<_>>(), vec![ChangeKind::PermissionCreated, ChangeKind::PermissionCreated, ChangeKind::RoleCreated]);
        assert!(seen.iter().all(|e| e.tenant_id == "default" && !e.changes.is_empty()));
        // Resuming after the second event yields the third first.
        let mut resumed = app.audit().watch_changes(authed(ADMIN, WatchChangesRequest { since_revision: start + 2, ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(resumed.message().await.unwrap().unwrap().revision, start + 3);
        // Another tenant sees none of it.
        let acme = app.tenant_token(ACME_ADMIN, "acme");
        let mut theirs = app.audit().watch_changes(with_token(&acme, WatchChangesRequest { since_revision: start, ..Default::default() })).await.unwrap().into_inner();
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(300), theirs.message()).await;
        assert!(nothing.is_err(), "acme must not see the default tenant's changes: {nothing:?}");
    }

    async fn watch_from_before_retention_is_out_of_range(app) {
        for i in 0..3 {
            app.create_permission(&format!("p:{i}")).await;
        }
        // Retention of zero prunes all but the newest change.
        app.service.sweep(warden::service::Retention { changes: std::time::Duration::ZERO }).await.unwrap();
        let err = app.audit().watch_changes(authed(ADMIN, WatchChangesRequest { since_revision: 1, ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::OutOfRange, "REVISION_OUT_OF_RANGE");
    }
}

mod audit_filters {
    use crate::backend_tests;
    use crate::helpers::*;

    backend_tests! {
        async fn audit_events_filter_by_actor_target_and_time(app) {
            // Arrange: two actors, two targets.
            app.create_role("writer", &["warden:permissions:write", "warden:permissions:read"]).await;
            app.assign("writer", "bob").await;
            let mine = app.create_permission("a:1").await;
            let between = chrono::Utc::now();
            let bobs = app.permissions().create_permission(authed("bob", CreatePermissionRequest { name: "b:1".into(), ..Default::default() })).await.unwrap().into_inner();
            let audit = app.audit();
            let list = |f: ListAuditEventsRequest| {
                let mut audit = audit.clone();
                async move { audit.list_audit_events(authed(ADMIN, f)).await.unwrap().into_inner().events }
            };
            // Act + Assert
            let by_bob = list(ListAuditEventsRequest { actor: "bob".into(), ..Default::default() }).await;
            assert_eq!(by_bob.len(), 1);
            assert_eq!(by_bob[0].target_id, bobs.id);
            let on_mine = list(ListAuditEventsRequest { target_id: mine.id.clone(), ..Default::default() }).await;
            assert_eq!(on_mine.len(), 1);
            assert_eq!(on_mine[0].actor, ADMIN);
            let ts = prost_types::Timestamp { seconds: between.timestamp(), nanos: between.timestamp_subsec_nanos() as i32 };
            let since = list(ListAuditEventsRequest { since_time: Some(ts), ..Default::default() }).await;
            assert_eq!(since.iter().map(|e| e.target_id.clone()).collect::<Vec<_>>(), vec![bobs.id.clone()]);
            let until = list(ListAuditEventsRequest { until_time: Some(ts), page_size: 1000, ..Default::default() }).await;
            assert!(until.iter().any(|e| e.target_id == mine.id) && until.iter().all(|e| e.target_id != bobs.id));
            // Reading the trail needs warden:audit:read.
            let err = app.audit().list_audit_events(authed("bob", ListAuditEventsRequest::default())).await.unwrap_err();
            assert_error(&err, tonic::Code::PermissionDenied, "PERMISSION_DENIED");
        }
    }
}
