//! The approval gate decided from a change's effect (issue 11): each bypass the adversarial run
//! found, written as the attack. The attacker holds roles, assignments, groups and permissions
//! write and `pay:send` itself, but not `warden:approvals:bypass`; role `payments` requires
//! approval and grants `pay:send`.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
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
        let add = |who: &str| AddGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec![who.into()], ..Default::default() };
        let err = app.groups().add_group_members(authed(EVE, add("frank"))).await.unwrap_err();
        assert_gated(&err);
        assert!(!app.check("frank", "pay:send").await);
        // A holder of warden:approvals:bypass may.
        app.groups().add_group_members(authed(ADMIN, add("frank"))).await.unwrap();
        assert!(app.check("frank", "pay:send").await);
        // Removing him again takes a gated permission away: gated too.
        let remove = RemoveGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec!["frank".into()], ..Default::default() };
        let err = app.groups().remove_group_members(authed(EVE, remove)).await.unwrap_err();
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

/// Identities the random admin acts on; none of them may ever hold `pay:send`.
const PEOPLE: [&str; 4] = ["u1", "u2", "u3", "u4"];

/// One random admin call by EVE (no bypass); its error, if any, is ignored: refusals are the
/// point.
async fn random_call(app: &TestApp, rng: &mut SmallRng, groups: &[String], step: usize) {
    let roles = ["payments", "r1", "r2", &format!("made-{}", step % 3)];
    let perms = ["pay:send", "p1", "p2"];
    let pick_role = role_name(roles[rng.random_range(0..roles.len())]);
    let pick_perm = perm_name(perms[rng.random_range(0..perms.len())]);
    let who = PEOPLE[rng.random_range(0..PEOPLE.len())];
    let group = groups[rng.random_range(0..groups.len())].clone();
    match rng.random_range(0..11) {
        0 => {
            let target = if rng.random_bool(0.3) {
                Identity {
                    id: group,
                    kind: IdentityKind::Group as i32,
                }
            } else {
                user(who)
            };
            let _ = app
                .assignments()
                .assign_role(authed(
                    EVE,
                    AssignRoleRequest {
                        role: Some(pick_role),
                        identity: Some(target),
                        force: rng.random_bool(0.2),
                        ..Default::default()
                    },
                ))
                .await;
        }
        1 => {
            let held = app
                .assignments()
                .list_assignments(authed(
                    ADMIN,
                    ListAssignmentsRequest {
                        identity_id: who.into(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .assignments;
            if let Some(a) = held.first() {
                let _ = app
                    .assignments()
                    .revoke_assignment(authed(
                        EVE,
                        RevokeAssignmentRequest {
                            assignment_id: a.id.clone(),
                            force: rng.random_bool(0.2),
                            ..Default::default()
                        },
                    ))
                    .await;
            }
        }
        2 => {
            let _ = app
                .roles()
                .add_permissions_to_role(authed(
                    EVE,
                    AddPermissionsToRoleRequest {
                        role: Some(pick_role),
                        permissions: vec![pick_perm],
                        ..Default::default()
                    },
                ))
                .await;
        }
        3 => {
            let _ = app
                .roles()
                .remove_permissions_from_role(authed(
                    EVE,
                    RemovePermissionsFromRoleRequest {
                        role: Some(pick_role),
                        permissions: vec![pick_perm],
                        ..Default::default()
                    },
                ))
                .await;
        }
        4 => {
            let _ = app
                .roles()
                .update_role(authed(
                    EVE,
                    UpdateRoleRequest {
                        role: Some(pick_role),
                        requires_approval: Some(rng.random_bool(0.5)),
                        ..Default::default()
                    },
                ))
                .await;
        }
        5 => {
            let name = format!("made-{}", step % 3);
            let _ = app
                .roles()
                .create_role(authed(
                    EVE,
                    CreateRoleRequest {
                        name,
                        permissions: vec![pick_perm],
                        requires_approval: rng.random_bool(0.3),
                        ..Default::default()
                    },
                ))
                .await;
        }
        6 => {
            let _ = app
                .roles()
                .delete_role(authed(
                    EVE,
                    DeleteRoleRequest {
                        role: Some(pick_role),
                        force: rng.random_bool(0.5),
                        ..Default::default()
                    },
                ))
                .await;
        }
        7 => {
            let _ = app
                .groups()
                .add_group_members(authed(
                    EVE,
                    AddGroupMembersRequest {
                        group_id: group,
                        identity_ids: vec![who.into()],
                        ..Default::default()
                    },
                ))
                .await;
        }
        8 => {
            let _ = app
                .groups()
                .remove_group_members(authed(
                    EVE,
                    RemoveGroupMembersRequest {
                        group_id: group,
                        identity_ids: vec![who.into()],
                        ..Default::default()
                    },
                ))
                .await;
        }
        9 => {
            let _ = app
                .permissions()
                .delete_permission(authed(
                    EVE,
                    DeletePermissionRequest {
                        permission: Some(pick_perm),
                        force: rng.random_bool(0.5),
                        ..Default::default()
                    },
                ))
                .await;
        }
        _ => {
            let items = (0..rng.random_range(1..4))
                .map(|_| AssignmentItem {
                    role: Some(role_name(roles[rng.random_range(0..roles.len())])),
                    identity: Some(user(PEOPLE[rng.random_range(0..PEOPLE.len())])),
                    ..Default::default()
                })
                .collect();
            let _ = app
                .assignments()
                .batch_assign_roles(authed(
                    EVE,
                    BatchAssignRolesRequest {
                        items,
                        ..Default::default()
                    },
                ))
                .await;
        }
    }
}

backend_tests! {
    async fn random_admin_calls_without_bypass_never_grant_a_gated_permission(app) {
        // Arrange: the gated payments role held by a group, ungated roles, and a random admin
        // holding every write permission and pay:send, but not approvals:bypass.
        arrange(&app).await;
        app.create_role("r1", &["p1"]).await;
        app.create_role("r2", &["p2"]).await;
        let mut groups = Vec::new();
        for name in ["g1", "g2"] {
            groups.push(app.groups().create_group(authed(ADMIN, CreateGroupRequest { name: name.into(), ..Default::default() })).await.unwrap().into_inner().id);
        }
        app.assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("payments")), identity: Some(Identity { id: groups[0].clone(), kind: IdentityKind::Group as i32 }), force: true, ..Default::default() }))
            .await
            .unwrap();
        let mut rng = SmallRng::seed_from_u64(0x009a_7e11);
        // Act + Assert: 2,000 calls; after each, nobody in PEOPLE holds pay:send (no change
        // request is ever approved here, so none may).
        for step in 0..2000 {
            random_call(&app, &mut rng, &groups, step).await;
            for who in PEOPLE {
                assert!(!app.check(who, "pay:send").await, "step {step}: {who} holds pay:send");
            }
        }
        // The gate stood on the approval flag throughout.
        assert!(app.get_role("payments").await.requires_approval);
    }
}
