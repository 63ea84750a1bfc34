//! Scopes (issue 13, items 1-3): a role granted on one part of a tenant, decisions on one
//! resource, and administration delegated on a scope.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tonic::{Code, Status};

use crate::backend_tests;
use crate::helpers::*;

const ENG: &str = "departments/eng";
const ENGINEERING: &str = "departments/engineering";
const SALES: &str = "departments/sales";
const APOLLO: &str = "departments/eng/projects/apollo";
const DOC: &str = "departments/eng/projects/apollo/documents/42";

async fn assign_at(
    app: &TestApp,
    by: &str,
    role: &str,
    identity: Identity,
    scope: &str,
) -> Result<AssignRoleResponse, Status> {
    app.assignments()
        .assign_role(authed(
            by,
            AssignRoleRequest {
                role: Some(role_name(role)),
                identity: Some(identity),
                scope: scope.into(),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn assignment(r: AssignRoleResponse) -> Assignment {
    match r.result {
        Some(assign_role_response::Result::Assignment(a)) => a,
        other => panic!("expected an assignment, got {other:?}"),
    }
}

async fn check_on(
    app: &TestApp,
    identity: &str,
    permission: &str,
    resource: &str,
) -> CheckResponse {
    app.authz()
        .check(authed(
            ADMIN,
            CheckRequest {
                identity_id: identity.into(),
                permission: permission.into(),
                resource: resource.into(),
                explain: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn allowed_on(app: &TestApp, identity: &str, permission: &str, resource: &str) -> bool {
    check_on(app, identity, permission, resource).await.allowed
}

async fn granted_scopes(
    app: &TestApp,
    identity: &str,
    permission: &str,
    under: &str,
) -> Vec<String> {
    app.authz()
        .list_granted_scopes(authed(
            ADMIN,
            ListGrantedScopesRequest {
                identity_id: identity.into(),
                permission: permission.into(),
                under: under.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .scopes
}

backend_tests! {
    async fn a_grant_covers_its_resource_and_what_lies_under_it_by_whole_pairs(app) {
        app.create_role("editor", &["docs:write"]).await;
        let at_eng = assignment(assign_at(&app, ADMIN, "editor", user("alice"), ENG).await.unwrap());
        assert_eq!(at_eng.scope, ENG);
        for (resource, allowed) in [
            (ENG, true),
            (APOLLO, true),
            (DOC, true),
            (ENGINEERING, false),
            ("departments/engineering/projects/apollo", false),
            (SALES, false),
            ("", false),
        ] {
            assert_eq!(allowed_on(&app, "alice", "docs:write", resource).await, allowed, "{resource:?}");
        }
        // Explain names the grant's scope, and on a denial where the permission is held instead.
        let yes = check_on(&app, "alice", "docs:write", DOC).await;
        assert_eq!(yes.grants.len(), 1);
        assert_eq!(yes.grants[0].scope, ENG);
        let no = check_on(&app, "alice", "docs:write", SALES).await;
        assert!(!no.allowed);
        assert_eq!(no.held_elsewhere.iter().map(|g| g.scope.as_str()).collect::<Vec<_>>(), [ENG]);
        // The same role at a second scope is a second assignment; at the same scope, a duplicate.
        assign_at(&app, ADMIN, "editor", user("alice"), SALES).await.unwrap();
        assert!(allowed_on(&app, "alice", "docs:write", SALES).await);
        let dup = assign_at(&app, ADMIN, "editor", user("alice"), ENG).await.unwrap_err();
        assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
        // A tenant-wide grant covers every resource, as before scopes.
        app.assign("editor", "bob").await;
        assert!(allowed_on(&app, "bob", "docs:write", DOC).await);
        assert!(allowed_on(&app, "bob", "docs:write", "").await);
    }

    async fn bad_scope_and_resource_names_are_refused_with_the_field(app) {
        app.create_role("editor", &["docs:write"]).await;
        for bad in ["departments", "departments/eng/", "/departments/eng", "departments//eng/x", "departments/e ng"] {
            let err = assign_at(&app, ADMIN, "editor", user("alice"), bad).await.unwrap_err();
            assert_invalid(&err, "scope");
        }
        let err = app.authz().check(authed(ADMIN, CheckRequest { identity_id: "alice".into(), permission: "docs:write".into(), resource: "a/b/c".into(), ..Default::default() })).await.unwrap_err();
        assert_invalid(&err, "resource");
        let too_deep = (0..9).map(|i| format!("c{i}/i{i}")).collect::<Vec<_>>().join("/");
        let err = assign_at(&app, ADMIN, "editor", user("alice"), &too_deep).await.unwrap_err();
        assert_invalid(&err, "scope");
        let err = app.assignments().batch_assign_roles(authed(ADMIN, BatchAssignRolesRequest {
            items: vec![AssignmentItem { role: Some(role_name("editor")), identity: Some(user("alice")), scope: "x".into(), ..Default::default() }],
            ..Default::default()
        })).await.unwrap_err();
        assert_invalid(&err, "items[0].scope");
    }

    async fn a_group_holds_a_role_at_a_scope_for_its_members(app) {
        app.create_role("editor", &["docs:write"]).await;
        let group = app.groups().create_group(authed(ADMIN, CreateGroupRequest { name: "eng-team".into(), ..Default::default() })).await.unwrap().into_inner();
        app.groups().add_group_members(authed(ADMIN, AddGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec!["bob".into()], ..Default::default() })).await.unwrap();
        assign_at(&app, ADMIN, "editor", Identity { id: group.id.clone(), kind: IdentityKind::Group as i32 }, ENG).await.unwrap();
        assert!(allowed_on(&app, "bob", "docs:write", APOLLO).await);
        assert!(!allowed_on(&app, "bob", "docs:write", SALES).await);
        assert!(!allowed_on(&app, "bob", "docs:write", "").await);
        let holders = app.authz().list_permission_holders(authed(ADMIN, ListPermissionHoldersRequest { permission: "docs:write".into(), resource: APOLLO.into(), ..Default::default() })).await.unwrap().into_inner();
        let seen: Vec<(&str, &str, &str)> = holders.identities.iter().map(|h| (h.identity.as_ref().unwrap().id.as_str(), h.group_id.as_str(), h.scope.as_str())).collect();
        assert_eq!(seen, [("bob", group.id.as_str(), ENG)]);
        let tenant_wide = app.authz().list_permission_holders(authed(ADMIN, ListPermissionHoldersRequest { permission: "docs:write".into(), ..Default::default() })).await.unwrap().into_inner();
        assert!(tenant_wide.identities.is_empty(), "a scoped grant is not a tenant-wide one");
    }

    async fn delegated_admins_act_only_inside_their_scope_and_without_escalation(app) {
        app.create_role("reader", &["docs:read"]).await;
        app.create_role("editor", &["docs:write"]).await;
        app.create_role("dept-admin", &["warden:assignments:write", "warden:assignments:read", "docs:read"]).await;
        assign_at(&app, ADMIN, "dept-admin", user("dana"), ENG).await.unwrap();
        let bobs = app.assign("reader", "bob").await;
        let elsewhere = assignment(assign_at(&app, ADMIN, "reader", user("carol"), ENGINEERING).await.unwrap());

        // Inside its scope: yes.
        let alices = assignment(assign_at(&app, "dana", "reader", user("alice"), APOLLO).await.unwrap());
        // Outside it, or tenant-wide: no, naming the scope.
        for scope in [SALES, ENGINEERING, ""] {
            let err = assign_at(&app, "dana", "reader", user("erin"), scope).await.unwrap_err();
            assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        }
        let err = assign_at(&app, "dana", "reader", user("erin"), SALES).await.unwrap_err();
        assert!(err.message().contains(SALES), "{err:?}");
        // Inside it, a role granting what dana lacks there: escalation, refused.
        let err = assign_at(&app, "dana", "editor", user("erin"), APOLLO).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        assert!(err.message().contains("docs:write"), "{err:?}");
        // Revoking: only what lies inside its scope.
        let err = app.assignments().revoke_assignment(authed("dana", RevokeAssignmentRequest { assignment_id: bobs.id.clone(), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        // Reading: only what lies inside its scope; the rest does not exist for it.
        let listed = app.assignments().list_assignments(authed("dana", ListAssignmentsRequest { page_size: 100, ..Default::default() })).await.unwrap().into_inner();
        let mut scopes: Vec<&str> = listed.assignments.iter().map(|a| a.scope.as_str()).collect();
        scopes.sort_unstable();
        assert_eq!(scopes, [ENG, APOLLO], "{listed:?}");
        let err = app.assignments().get_assignment(authed("dana", GetAssignmentRequest { assignment_id: elsewhere.id.clone() })).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        app.assignments().get_assignment(authed("dana", GetAssignmentRequest { assignment_id: alices.id.clone() })).await.unwrap();
        // Tenant-wide administration stays tenant-wide.
        let err = app.roles().create_role(authed("dana", CreateRoleRequest { name: "mine".into(), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        app.assignments().revoke_assignment(authed("dana", RevokeAssignmentRequest { assignment_id: alices.id.clone(), ..Default::default() })).await.unwrap();
        assert!(!allowed_on(&app, "alice", "docs:read", APOLLO).await);
    }

    async fn list_granted_scopes_answers_which_departments_alice_may_manage(app) {
        app.create_role("manager", &["dept:manage"]).await;
        for scope in [ENG, SALES, APOLLO] {
            assign_at(&app, ADMIN, "manager", user("alice"), scope).await.unwrap();
        }
        assert_eq!(granted_scopes(&app, "alice", "dept:manage", "").await, [ENG, APOLLO, SALES]);
        assert_eq!(granted_scopes(&app, "alice", "dept:manage", ENG).await, [ENG, APOLLO]);
        // Under a resource an ancestor grant covers: that resource, whole.
        assert_eq!(granted_scopes(&app, "alice", "dept:manage", DOC).await, [DOC]);
        assert!(granted_scopes(&app, "alice", "dept:manage", ENGINEERING).await.is_empty());
        // A tenant-wide holder holds it on the whole tenant: "".
        app.assign("manager", "root-ops").await;
        assert_eq!(granted_scopes(&app, "root-ops", "dept:manage", "").await, [""]);
        // Paged.
        let first = app.authz().list_granted_scopes(authed(ADMIN, ListGrantedScopesRequest { identity_id: "alice".into(), permission: "dept:manage".into(), page_size: 2, ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(first.scopes, [ENG, APOLLO]);
        let rest = app.authz().list_granted_scopes(authed(ADMIN, ListGrantedScopesRequest { identity_id: "alice".into(), permission: "dept:manage".into(), page_size: 2, page_token: first.next_page_token.clone(), ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(rest.scopes, [SALES]);
        assert!(rest.next_page_token.is_empty());
        let err = app.authz().list_granted_scopes(authed(ADMIN, ListGrantedScopesRequest { identity_id: "alice".into(), permission: "no:such".into(), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        // Asking about someone else needs warden:checks:run, as Check does.
        let err = app.authz().list_granted_scopes(authed("alice", ListGrantedScopesRequest { identity_id: "bob".into(), permission: "dept:manage".into(), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    }

    async fn effective_permissions_and_dry_runs_answer_for_a_scope(app) {
        app.create_role("editor", &["docs:write"]).await;
        app.create_role("reader", &["docs:read"]).await;
        app.assign("reader", "alice").await;
        let preview = app.assignments().assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("alice")), scope: ENG.into(), dry_run: true, ..Default::default() })).await.unwrap().into_inner();
        let impact = preview.impact.expect("dry-run impact");
        assert_eq!(impact.identities.len(), 1);
        assert!(impact.identities[0].gained.is_empty(), "nothing tenant-wide: {impact:?}");
        assert_eq!(impact.identities[0].gained_scoped, [ScopedPermission { permission: "docs:write".into(), scope: ENG.into() }]);
        let made = assign_at(&app, ADMIN, "editor", user("alice"), ENG).await.unwrap();
        let effective = |resource: &'static str| {
            let mut authz = app.authz();
            async move {
                authz.list_effective_permissions(authed(ADMIN, ListEffectivePermissionsRequest { identity_id: "alice".into(), resource: resource.into(), at_least_revision: made.revision, ..Default::default() })).await.unwrap().into_inner().permissions.into_iter().map(|p| p.name).collect::<Vec<_>>()
            }
        };
        assert_eq!(effective(APOLLO).await, ["docs:read", "docs:write"]);
        assert_eq!(effective(SALES).await, ["docs:read"]);
        assert_eq!(effective("").await, ["docs:read"]);
        // A grant under a wider one changes nothing a dry run would report.
        app.assign("editor", "bob").await;
        let preview = app.assignments().assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("bob")), scope: ENG.into(), dry_run: true, ..Default::default() })).await.unwrap().into_inner();
        assert!(preview.impact.unwrap().identities.is_empty());
    }

    async fn an_approved_scoped_request_assigns_at_its_scope(app) {
        app.create_role("payer", &["pay:run"]).await;
        app.roles().update_role(authed(ADMIN, UpdateRoleRequest { role: Some(role_name("payer")), requires_approval: Some(true), ..Default::default() })).await.unwrap();
        let filed = assign_at(&app, ADMIN, "payer", user("alice"), ENG).await.unwrap();
        let Some(assign_role_response::Result::ChangeRequest(cr)) = filed.result else { panic!("pending: {filed:?}") };
        assert_eq!(cr.scope, ENG);
        // A second request for the same scope is a duplicate; another scope is another request.
        let dup = assign_at(&app, ADMIN, "payer", user("alice"), ENG).await.unwrap_err();
        assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
        assign_at(&app, ADMIN, "payer", user("alice"), SALES).await.unwrap();
        let pending = check_on(&app, "alice", "pay:run", APOLLO).await;
        assert_eq!(pending.pending_change_request_ids, std::slice::from_ref(&cr.id));
        assert!(check_on(&app, "alice", "pay:run", ENGINEERING).await.pending_change_request_ids.is_empty());
        let approved = app.change_requests().approve_change_request(authed(ADMIN2, ApproveChangeRequestRequest { change_request_id: cr.id.clone(), ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(approved.status, ChangeRequestStatus::Applied as i32, "{approved:?}");
        let made = app.assignments().get_assignment(authed(ADMIN, GetAssignmentRequest { assignment_id: approved.resulting_assignment_id.clone() })).await.unwrap().into_inner();
        assert_eq!(made.scope, ENG);
        assert!(allowed_on(&app, "alice", "pay:run", APOLLO).await);
        assert!(!allowed_on(&app, "alice", "pay:run", SALES).await);
    }
}

/// An ancestor grant revoked, and one level's grant expired while another level still grants.
async fn revoked_and_expired_levels(backend: Backend) {
    let start = Utc::now();
    let app = spawn_with_clock(backend, start).await;
    let clock = app.clock.clone().unwrap();
    app.create_role("editor", &["docs:write"]).await;
    let at_eng = assignment(
        assign_at(&app, ADMIN, "editor", user("alice"), ENG)
            .await
            .unwrap(),
    );
    let expires = start + Duration::hours(1);
    app.assignments()
        .assign_role(authed(
            ADMIN,
            AssignRoleRequest {
                role: Some(role_name("editor")),
                identity: Some(user("alice")),
                scope: APOLLO.into(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: expires.timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert!(allowed_on(&app, "alice", "docs:write", DOC).await);
    // The project-level grant expires; the department-level one still grants.
    clock.set(expires + Duration::seconds(1));
    let still = check_on(&app, "alice", "docs:write", DOC).await;
    assert!(still.allowed);
    assert_eq!(
        still
            .grants
            .iter()
            .map(|g| g.scope.as_str())
            .collect::<Vec<_>>(),
        [ENG]
    );
    // The ancestor grant revoked: nothing grants, and explain shows the expired level.
    app.assignments()
        .revoke_assignment(authed(
            ADMIN,
            RevokeAssignmentRequest {
                assignment_id: at_eng.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let gone = check_on(&app, "alice", "docs:write", DOC).await;
    assert!(!gone.allowed);
    assert_eq!(
        gone.expired_grants
            .iter()
            .map(|g| g.scope.as_str())
            .collect::<Vec<_>>(),
        [APOLLO]
    );
    assert!(!allowed_on(&app, "alice", "docs:write", ENG).await);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_levels_sqlite() {
    revoked_and_expired_levels(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_levels_postgres() {
    revoked_and_expired_levels(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_on_scoped_decisions() {
    let db = Arc::new(TestDatabase::create(Backend::Postgres).await);
    let a = spawn_on(Arc::clone(&db), test_config, None).await;
    let b = spawn_on(db, test_config, None).await;
    a.create_role("editor", &["docs:write"]).await;
    let made = assign_at(&a, ADMIN, "editor", user("alice"), ENG)
        .await
        .unwrap();
    for (resource, allowed) in [(APOLLO, true), (ENGINEERING, false), ("", false)] {
        let on_b = b
            .authz()
            .check(authed(
                ADMIN,
                CheckRequest {
                    identity_id: "alice".into(),
                    permission: "docs:write".into(),
                    resource: resource.into(),
                    at_least_revision: made.revision,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(on_b.allowed, allowed, "{resource:?} on replica B");
    }
    let scopes = b
        .authz()
        .list_granted_scopes(authed(
            ADMIN,
            ListGrantedScopesRequest {
                identity_id: "alice".into(),
                permission: "docs:write".into(),
                at_least_revision: made.revision,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scopes.scopes, [ENG]);
    a.finish().await;
    b.finish().await;
}
