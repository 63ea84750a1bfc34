//! The approval gate decided from a change's effect (issue 11): each bypass the adversarial run
//! found, written as the attack. The attacker holds roles, assignments, groups and permissions
//! write and `pay:send` itself, but not `warden:approvals:bypass`; role `payments` requires
//! approval and grants `pay:send`.

use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

const EVE: &str = "eve-admin";

async fn arrange(app: &TestApp) {
    app.create_permission("pay:send").await;
    app.create_permission("pay:view").await;
    app.roles()
        .create_role(authed(
            ADMIN,
            CreateRoleRequest {
                name: "payments".into(),
                permissions: vec![perm_name("pay:send")],
                requires_approval: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    app.create_role(
        "attacker-kit",
        &[
            "warden:roles:write",
            "warden:roles:read",
            "warden:assignments:write",
            "warden:groups:write",
            "warden:groups:read",
            "warden:permissions:write",
            "pay:send",
            "pay:view",
        ],
    )
    .await;
    app.assign("attacker-kit", EVE).await;
}

fn assert_gated(err: &tonic::Status) {
    assert_error(err, Code::FailedPrecondition, "APPROVAL_REQUIRED");
}

backend_tests! {
    async fn turning_approval_off_to_assign_freely_is_refused(app) {
        arrange(&app).await;
        let err = app
            .roles()
            .update_role(authed(EVE, UpdateRoleRequest { role: Some(role_name("payments")), requires_approval: Some(false), ..Default::default() }))
            .await
            .unwrap_err();
        assert_gated(&err);
        // The gate still stands: eve's assignment is a pending change request.
        let response = app
            .assignments()
            .assign_role(authed(EVE, AssignRoleRequest { role: Some(role_name("payments")), identity: Some(user("eve")), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert!(matches!(response.result, Some(assign_role_response::Result::ChangeRequest(_))));
        assert!(!app.check("eve", "pay:send").await);
    }

    async fn joining_a_group_that_holds_a_gated_role_is_refused(app) {
        arrange(&app).await;
        let group = app.groups().create_group(authed(ADMIN, CreateGroupRequest { name: "treasury".into(), ..Default::default() })).await.unwrap().into_inner();
        app.assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("payments")), identity: Some(Identity { id: group.id.clone(), kind: IdentityKind::Group as i32 }), force: true, ..Default::default() }))
            .await
            .unwrap();
        let add = |who: &str| GroupMembersRequest { group_id: group.id.clone(), identity_ids: vec![who.into()], ..Default::default() };
        let err = app.groups().add_group_members(authed(EVE, add("frank"))).await.unwrap_err();
        assert_gated(&err);
        assert!(!app.check("frank", "pay:send").await);
        // A holder of warden:approvals:bypass may.
        app.groups().add_group_members(authed(ADMIN, add("frank"))).await.unwrap();
        assert!(app.check("frank", "pay:send").await);
        // Removing him again takes a gated permission away: gated too.
        let err = app.groups().remove_group_members(authed(EVE, add("frank"))).await.unwrap_err();
        assert_gated(&err);
    }

    async fn forced_deletes_cannot_strip_gated_holders(app) {
        arrange(&app).await;
        app.assign("payments", "carol").await;
        let err = app.roles().delete_role(authed(EVE, DeleteRoleRequest { role: Some(role_name("payments")), force: true, ..Default::default() })).await.unwrap_err();
        assert_gated(&err);
        let err = app.permissions().delete_permission(authed(EVE, DeletePermissionRequest { permission: Some(perm_name("pay:send")), force: true, ..Default::default() })).await.unwrap_err();
        assert_gated(&err);
        assert!(app.check("carol", "pay:send").await);
    }

    async fn the_gate_is_on_the_permission_not_the_role(app) {
        arrange(&app).await;
        app.create_role("viewer", &["pay:view"]).await;
        app.assign("viewer", "dave").await;
        app.assign("payments", "carol").await;
        // A gated permission into an ungated role someone holds.
        let err = app.roles().add_permissions_to_role(authed(EVE, AddPermissionsToRoleRequest { role: Some(role_name("viewer")), permissions: vec![perm_name("pay:send")], ..Default::default() })).await.unwrap_err();
        assert_gated(&err);
        // An ungated copy of the gated role.
        let err = app.roles().create_role(authed(EVE, CreateRoleRequest { name: "payments-copy".into(), permissions: vec![perm_name("pay:send")], ..Default::default() })).await.unwrap_err();
        assert_gated(&err);
        // A new permission into the gated role, which its holders would receive.
        let err = app.roles().add_permissions_to_role(authed(EVE, AddPermissionsToRoleRequest { role: Some(role_name("payments")), permissions: vec![perm_name("pay:view")], ..Default::default() })).await.unwrap_err();
        assert_gated(&err);
        assert!(!app.check("dave", "pay:send").await);
        assert!(!app.check("carol", "pay:view").await);
        // Changes that touch no gated grant pass as before.
        app.roles().create_role(authed(EVE, CreateRoleRequest { name: "viewers-2".into(), permissions: vec![perm_name("pay:view")], ..Default::default() })).await.unwrap();
    }
}
