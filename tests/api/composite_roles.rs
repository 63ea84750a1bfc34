//! Composite roles (issue 13, item 4): a role includes roles and grants the transitive union of
//! their permissions; cycles and chains deeper than 8 are refused, inclusion cannot escalate,
//! and explain, dry runs and deletion account for it.

use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

async fn include(
    app: &TestApp,
    by: &str,
    role: &str,
    included: &[&str],
) -> Result<Role, tonic::Status> {
    app.roles()
        .update_role(authed(
            by,
            UpdateRoleRequest {
                role: Some(role_name(role)),
                included_roles: Some(RoleRefList {
                    roles: included.iter().map(|r| role_name(r)).collect(),
                }),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// r1 -> r2 -> r3 -> r4, each granting its own permission p1..p4.
async fn chain(app: &TestApp) {
    for i in 1..=4 {
        app.create_role(&format!("r{i}"), &[&format!("p{i}")]).await;
    }
    include(app, ADMIN, "r3", &["r4"]).await.unwrap();
    include(app, ADMIN, "r2", &["r3"]).await.unwrap();
    include(app, ADMIN, "r1", &["r2"]).await.unwrap();
}

backend_tests! {
    async fn a_four_deep_chain_grants_everything_below_and_explains_the_path(app) {
        chain(&app).await;
        app.assign("r1", "alice").await;
        for p in ["p1", "p2", "p3", "p4"] {
            assert!(app.check("alice", p).await, "{p}");
        }
        let r1 = app.get_role("r1").await;
        assert_eq!(r1.permissions, ["p1"], "its own permissions");
        assert_eq!(r1.included_roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r2"]);
        let explained = app.authz().check(authed(ADMIN, CheckRequest { identity_id: "alice".into(), permission: "p4".into(), explain: true, ..Default::default() })).await.unwrap().into_inner();
        assert!(explained.allowed);
        let grant = &explained.grants[0];
        assert_eq!(grant.role.as_ref().unwrap().name, "r1");
        assert_eq!(grant.inclusion_path.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r2", "r3", "r4"]);
        let effective = app.authz().list_effective_permissions(authed(ADMIN, ListEffectivePermissionsRequest { identity_id: "alice".into(), ..Default::default() })).await.unwrap().into_inner();
        let names: Vec<&str> = effective.permissions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["p1", "p2", "p3", "p4"]);
        assert!(effective.permissions.iter().all(|p| p.roles.iter().map(|r| r.name.as_str()).eq(["r1"])));
        // Holders of p4 include alice through r1.
        let holders = app.authz().list_permission_holders(authed(ADMIN, ListPermissionHoldersRequest { permission: "p4".into(), ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(holders.identities.iter().map(|h| (h.identity.as_ref().unwrap().id.as_str(), h.role.as_ref().unwrap().name.as_str())).collect::<Vec<_>>(), [("alice", "r1")]);
        // A permission added to the bottom of the chain reaches alice at once.
        app.create_permission("p5").await;
        app.roles().add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: Some(role_name("r4")), permissions: vec![perm_name("p5")], ..Default::default() })).await.unwrap();
        assert!(app.check("alice", "p5").await);
    }

    async fn cycles_and_chains_deeper_than_eight_are_refused(app) {
        chain(&app).await;
        let err = include(&app, ADMIN, "r4", &["r1"]).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ROLE_CYCLE");
        let err = include(&app, ADMIN, "r2", &["r2"]).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ROLE_CYCLE");
        let err = app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "twice".into(), included_roles: vec![role_name("r1"), role_name("r1")], ..Default::default() })).await.unwrap_err();
        assert_invalid(&err, "included_roles[1]");
        let err = app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "ghost".into(), included_roles: vec![role_name("nope")], ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        // Nothing changed: r4 includes nothing.
        assert!(app.get_role("r4").await.included_roles.is_empty());
        // r1..r4 is 3 levels; five more roles on top make 8, a sixth would make 9.
        let mut below = "r1".to_owned();
        for i in 0..5 {
            let name = format!("top{i}");
            app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: name.clone(), included_roles: vec![role_name(&below)], ..Default::default() })).await.unwrap();
            below = name;
        }
        let err = app.roles().create_role(authed(ADMIN, CreateRoleRequest { name: "top5".into(), included_roles: vec![role_name(&below)], ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ROLE_INCLUSION_TOO_DEEP");
        // Lengthening the chain from below counts the levels above too.
        app.create_role("r5", &["p5"]).await;
        let err = include(&app, ADMIN, "r4", &["r5"]).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ROLE_INCLUSION_TOO_DEEP");
    }

    async fn removing_from_an_included_role_shows_who_loses_it_through_the_includers(app) {
        chain(&app).await;
        app.assign("r1", "alice").await;
        app.assign("r3", "bob").await;
        app.assign("r4", "carol").await;
        let preview = app.roles().remove_permission_from_role(authed(ADMIN, RemovePermissionFromRoleRequest { role: Some(role_name("r4")), permission: Some(perm_name("p4")), dry_run: true, ..Default::default() })).await.unwrap().into_inner();
        let mut losers: Vec<(String, Vec<String>)> = preview.impact.unwrap().identities.into_iter().map(|i| (i.identity_id, i.lost)).collect();
        losers.sort();
        let p4 = || vec!["p4".to_owned()];
        assert_eq!(losers, [("alice".to_owned(), p4()), ("bob".to_owned(), p4()), ("carol".to_owned(), p4())]);
        // Dropping an inclusion: those holding the includer lose what only it brought.
        include(&app, ADMIN, "r2", &[]).await.unwrap();
        assert!(app.check("alice", "p2").await);
        assert!(!app.check("alice", "p3").await);
        assert!(app.check("bob", "p4").await, "bob holds r3 itself");
    }

    async fn including_a_role_or_assigning_a_composite_one_cannot_escalate(app) {
        chain(&app).await;
        // A role admin holding p1..p3 but not p4.
        app.create_role("kit", &["warden:roles:write", "warden:roles:read", "warden:assignments:write", "p1", "p2", "p3"]).await;
        app.assign("kit", "eve").await;
        let err = app.roles().create_role(authed("eve", CreateRoleRequest { name: "mine".into(), included_roles: vec![role_name("r3")], ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("p4"), "names what it lacks through the inclusion: {err:?}");
        let err = app.assignments().assign_role(authed("eve", AssignRoleRequest { role: Some(role_name("r1")), identity: Some(user("mallory")), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("p4"), "{err:?}");
        // Including only what it holds, it may.
        app.create_role("r5", &["p2"]).await;
        let mine = app.roles().create_role(authed("eve", CreateRoleRequest { name: "mine".into(), permissions: vec![perm_name("p1")], included_roles: vec![role_name("r5")], ..Default::default() })).await.unwrap().into_inner();
        assert_eq!(mine.included_roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r5"]);
    }

    async fn a_role_another_includes_is_not_deleted_from_under_it(app) {
        chain(&app).await;
        let err = app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("r4")), force: true, ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ROLE_IN_USE");
        assert!(err.message().contains("r3"), "{err:?}");
        include(&app, ADMIN, "r3", &[]).await.unwrap();
        app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("r4")), ..Default::default() })).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_a_group_that_holds_a_composite_role_cannot_escalate() {
    let app = spawn_app(Backend::Sqlite).await;
    chain(&app).await;
    let group = app
        .groups()
        .create_group(authed(
            ADMIN,
            CreateGroupRequest {
                name: "chain-holders".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    app.assignments()
        .assign_role(authed(
            ADMIN,
            AssignRoleRequest {
                role: Some(role_name("r3")),
                identity: Some(Identity {
                    id: group.id.clone(),
                    kind: IdentityKind::Group as i32,
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    // A group admin holding r3's own permission but not p4, which r3 grants through r4.
    app.create_role(
        "group-admin",
        &["warden:groups:write", "warden:groups:read", "p3"],
    )
    .await;
    app.assign("group-admin", "gus").await;
    let err = app
        .groups()
        .add_group_members(authed(
            "gus",
            AddGroupMembersRequest {
                group_id: group.id.clone(),
                identity_ids: vec!["gus".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("p4"), "{err:?}");
    // Taking away is held to the same rule: removing a member, or deleting the group.
    app.groups()
        .add_group_members(authed(
            ADMIN,
            AddGroupMembersRequest {
                group_id: group.id.clone(),
                identity_ids: vec!["hal".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let err = app
        .groups()
        .remove_group_members(authed(
            "gus",
            RemoveGroupMembersRequest {
                group_id: group.id.clone(),
                identity_ids: vec!["hal".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(app.check("hal", "p4").await, "hal is still a member");
    app.finish().await;
}
