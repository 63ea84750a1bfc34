//! Tenant-defined protected roles (issue 13, item 5): a role the tenant marks `protected` is
//! changed or deleted only by holders of `warden:roles:protect`, as system roles are by nobody.

use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

/// A role admin with everything it needs to edit `payroll`, except `warden:roles:protect`.
const EVE: &str = "eve";

async fn arrange(app: &TestApp) {
    app.create_permission("pay:run").await;
    app.create_permission("pay:view").await;
    app.roles()
        .create_role(authed(
            ADMIN,
            CreateRoleRequest {
                name: "payroll".into(),
                permissions: vec![perm_name("pay:run")],
                protected: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    app.create_role(
        "eve-kit",
        &[
            "warden:roles:write",
            "warden:roles:read",
            "warden:permissions:write",
            "pay:run",
            "pay:view",
        ],
    )
    .await;
    app.assign("eve-kit", EVE).await;
}

fn assert_needs_protect(err: &tonic::Status) {
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("warden:roles:protect"), "{err:?}");
}

backend_tests! {
    async fn a_protected_role_is_changed_only_by_holders_of_roles_protect(app) {
        arrange(&app).await;
        assert!(app.get_role("payroll").await.protected);
        let payroll = || Some(role_name("payroll"));
        // Every change, by a role admin without warden:roles:protect: refused.
        let err = app.roles().update_role(authed(EVE, UpdateRoleRequest { role: payroll(), description: Some("mine".into()), ..Default::default() })).await.unwrap_err();
        assert_needs_protect(&err);
        let err = app.roles().update_role(authed(EVE, UpdateRoleRequest { role: payroll(), protected: Some(false), ..Default::default() })).await.unwrap_err();
        assert_needs_protect(&err);
        let err = app.roles().add_permissions_to_role(authed(EVE, AddPermissionsToRoleRequest { role: payroll(), permissions: vec![perm_name("pay:view")], ..Default::default() })).await.unwrap_err();
        assert_needs_protect(&err);
        let err = app.roles().remove_permission_from_role(authed(EVE, RemovePermissionFromRoleRequest { role: payroll(), permission: Some(perm_name("pay:run")), ..Default::default() })).await.unwrap_err();
        assert_needs_protect(&err);
        let err = app.roles().delete_role(authed(EVE, DeleteRoleRequest { role: payroll(), ..Default::default() })).await.unwrap_err();
        assert_needs_protect(&err);
        let err = app.permissions().delete_permission(authed(EVE, DeletePermissionRequest { permission: Some(perm_name("pay:run")), force: true, ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        // Nor may it mark a role of its own protected.
        let err = app.roles().create_role(authed(EVE, CreateRoleRequest { name: "mine".into(), protected: true, ..Default::default() })).await.unwrap_err();
        assert_needs_protect(&err);
        let role = app.get_role("payroll").await;
        assert_eq!((role.protected, role.permissions.clone()), (true, vec!["pay:run".to_owned()]));

        // A holder of warden:roles:protect (the tenant admin) may, and may lift the protection.
        app.roles().add_permissions_to_role(authed(ADMIN, AddPermissionsToRoleRequest { role: payroll(), permissions: vec![perm_name("pay:view")], ..Default::default() })).await.unwrap();
        let lifted = app.roles().update_role(authed(ADMIN, UpdateRoleRequest { role: payroll(), protected: Some(false), ..Default::default() })).await.unwrap().into_inner();
        assert!(!lifted.protected);
        // Then it is an ordinary role again.
        app.roles().update_role(authed(EVE, UpdateRoleRequest { role: payroll(), description: Some("now eve's".into()), ..Default::default() })).await.unwrap();
    }
}
