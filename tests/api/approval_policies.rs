//! Approval policies (issue 11, item 2): quorum of distinct approvers, approvers limited to a
//! group or to holders of a permission, expiry that auto-rejects, the kinds of change a policy
//! covers, and a request that fails at apply time because the world changed.

use chrono::{Duration, Utc};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

/// Three approvers in group `treasury`, one approver outside it; role `payments` needs two of
/// the group. Approvers hold what the role grants (they are the ones granting it).
async fn arrange_quorum(app: &TestApp) -> (Group, Role) {
    app.create_role(
        "approver-kit",
        &[
            "warden:change_requests:approve",
            "pay:send",
            "warden:assignments:read",
        ],
    )
    .await;
    for who in ["a1", "a2", "a3", "outsider"] {
        app.assign("approver-kit", who).await;
    }
    let group = app
        .groups()
        .create_group(authed(
            ADMIN,
            CreateGroupRequest {
                name: "treasury".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    app.groups()
        .add_group_members(authed(
            ADMIN,
            AddGroupMembersRequest {
                group_id: group.id.clone(),
                identity_ids: vec!["a1".into(), "a2".into(), "a3".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let role = app
        .roles()
        .create_role(authed(
            ADMIN,
            CreateRoleRequest {
                name: "payments".into(),
                permissions: vec![perm_name("pay:send")],
                approval_policy: Some(ApprovalPolicy {
                    quorum: 2,
                    approver_group_id: group.id.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (group, role)
}

async fn approve(app: &TestApp, who: &str, id: &str) -> Result<ChangeRequest, tonic::Status> {
    app.change_requests()
        .approve_change_request(authed(
            who,
            ApproveChangeRequestRequest {
                change_request_id: id.into(),
                comment: format!("ok from {who}"),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

backend_tests! {
    async fn two_of_three_approvers_from_the_group_apply_the_request(app) {
        let (group, role) = arrange_quorum(&app).await;
        assert!(role.requires_approval);
        let policy = role.approval_policy.clone().expect("the role shows its policy");
        assert_eq!((policy.quorum, policy.approver_group_id.as_str()), (2, group.id.as_str()));
        let cr = app.request_assignment("payments", "eve").await;
        assert_eq!(cr.policy.as_ref().map(|p| p.quorum), Some(2));

        // An approver outside the group is refused, and so is the requester.
        let err = approve(&app, "outsider", &cr.id).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "NOT_AN_APPROVER");
        let err = approve(&app, ADMIN, &cr.id).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "SELF_APPROVAL");

        // One approval is recorded and grants nothing yet; the same approver cannot count twice.
        let first = approve(&app, "a1", &cr.id).await.unwrap();
        assert_eq!(first.status, ChangeRequestStatus::Pending as i32);
        assert_eq!(first.approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>(), ["a1"]);
        assert!(!app.check("eve", "pay:send").await);
        let err = approve(&app, "a1", &cr.id).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ALREADY_APPROVED");

        // The second distinct approver reaches the quorum: applied, atomically.
        let second = approve(&app, "a2", &cr.id).await.unwrap();
        assert_eq!(second.status, ChangeRequestStatus::Applied as i32);
        assert_eq!(second.approvals.len(), 2);
        assert_eq!(second.decided_by, "a2");
        assert!(app.check("eve", "pay:send").await);

        // Each approval is audited.
        let recorded = app
            .audit_events()
            .await
            .into_iter()
            .filter(|e| e.target_id == cr.id)
            .count();
        assert!(recorded >= 3, "filed, approval recorded, applied: {recorded}");
    }

    async fn a_request_fails_at_apply_time_when_the_world_changed(app) {
        arrange_quorum(&app).await;
        let cr = app.request_assignment("payments", "eve").await;
        approve(&app, "a1", &cr.id).await.unwrap();
        // Meanwhile eve got the role another way (a bypass holder forced it).
        app.assign("payments", "eve").await;
        let done = approve(&app, "a2", &cr.id).await.unwrap();
        assert_eq!(done.status, ChangeRequestStatus::Failed as i32);
        assert!(done.failure_reason.contains("already holds"), "{}", done.failure_reason);
    }

    async fn a_rejection_by_one_approver_ends_the_request(app) {
        arrange_quorum(&app).await;
        let cr = app.request_assignment("payments", "eve").await;
        approve(&app, "a1", &cr.id).await.unwrap();
        let err = app
            .change_requests()
            .reject_change_request(authed("outsider", RejectChangeRequestRequest { change_request_id: cr.id.clone(), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "NOT_AN_APPROVER");
        let rejected = app
            .change_requests()
            .reject_change_request(authed("a3", RejectChangeRequestRequest { change_request_id: cr.id.clone(), comment: "no".into(), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rejected.status, ChangeRequestStatus::Rejected as i32);
        let err = approve(&app, "a2", &cr.id).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "CHANGE_REQUEST_NOT_PENDING");
        assert!(!app.check("eve", "pay:send").await);
    }

    async fn approvers_may_be_limited_to_holders_of_a_permission(app) {
        app.create_permission("treasury:approve").await;
        app.create_role("approver-kit", &["warden:change_requests:approve", "pay:send"]).await;
        app.create_role("treasurer", &["treasury:approve"]).await;
        app.assign("approver-kit", "plain").await;
        app.assign("approver-kit", "treasurer-1").await;
        app.assign("treasurer", "treasurer-1").await;
        app.roles()
            .create_role(authed(ADMIN, CreateRoleRequest {
                name: "payments".into(),
                permissions: vec![perm_name("pay:send")],
                approval_policy: Some(ApprovalPolicy { approver_permission: "treasury:approve".into(), ..Default::default() }),
                ..Default::default()
            }))
            .await
            .unwrap();
        let cr = app.request_assignment("payments", "eve").await;
        let err = approve(&app, "plain", &cr.id).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "NOT_AN_APPROVER");
        let done = approve(&app, "treasurer-1", &cr.id).await.unwrap();
        assert_eq!(done.status, ChangeRequestStatus::Applied as i32);
        assert!(app.check("eve", "pay:send").await);
    }

    async fn a_policy_covering_assign_only_lets_revocation_through(app) {
        app.create_permission("pay:send").await;
        app.roles()
            .create_role(authed(ADMIN, CreateRoleRequest {
                name: "payments".into(),
                permissions: vec![perm_name("pay:send")],
                approval_policy: Some(ApprovalPolicy { kinds: vec![ApprovalKind::Assign as i32], ..Default::default() }),
                ..Default::default()
            }))
            .await
            .unwrap();
        let cr = app.request_assignment("payments", "eve").await;
        let done = approve(&app, ADMIN2, &cr.id).await.unwrap();
        let id = done.resulting_assignment_id;
        let revoked = app
            .assignments()
            .revoke_assignment(authed(ADMIN, RevokeAssignmentRequest { assignment_id: id, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert!(matches!(revoked.result, Some(revoke_assignment_response::Result::Assignment(_))), "{revoked:?}");
        assert!(!app.check("eve", "pay:send").await);
    }

    async fn bad_policies_are_refused_with_the_field(app) {
        let create = |policy: ApprovalPolicy| CreateRoleRequest { name: "payments".into(), approval_policy: Some(policy), ..Default::default() };
        let err = app.roles().create_role(authed(ADMIN, create(ApprovalPolicy { quorum: 11, ..Default::default() }))).await.unwrap_err();
        assert_invalid(&err, "approval_policy.quorum");
        let err = app.roles().create_role(authed(ADMIN, create(ApprovalPolicy { expire_after: Some(prost_types::Duration { seconds: 0, nanos: 0 }), ..Default::default() }))).await.unwrap_err();
        assert_invalid(&err, "approval_policy.expire_after");
        let err = app.roles().create_role(authed(ADMIN, create(ApprovalPolicy { kinds: vec![0], ..Default::default() }))).await.unwrap_err();
        assert_invalid(&err, "approval_policy.kinds[0]");
        let err = app.roles().create_role(authed(ADMIN, create(ApprovalPolicy { approver_group_id: uuid::Uuid::now_v7().to_string(), ..Default::default() }))).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        let err = app
            .roles()
            .update_role(authed(ADMIN, UpdateRoleRequest { role: Some(role_name("warden:admin")), requires_approval: Some(false), approval_policy: Some(ApprovalPolicy::default()), ..Default::default() }))
            .await
            .unwrap_err();
        assert_invalid(&err, "approval_policy");
    }

    async fn weakening_a_policy_or_recruiting_approvers_needs_approval(app) {
        let (group, _) = arrange_quorum(&app).await;
        app.create_role("eve-kit", &["warden:roles:write", "warden:groups:write", "warden:assignments:write", "pay:send"]).await;
        app.assign("eve-kit", "eve").await;
        // Quorum 2 -> 1: refused without bypass.
        let err = app
            .roles()
            .update_role(authed("eve", UpdateRoleRequest { role: Some(role_name("payments")), approval_policy: Some(ApprovalPolicy { quorum: 1, approver_group_id: group.id.clone(), ..Default::default() }), ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "APPROVAL_REQUIRED");
        // Adding an accomplice to the approver group: refused.
        let err = app
            .groups()
            .add_group_members(authed("eve", AddGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec!["mallory".into()], ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "APPROVAL_REQUIRED");
        // A look-alike role with a friendlier policy: putting pay:send in it is refused.
        let err = app
            .roles()
            .create_role(authed("eve", CreateRoleRequest {
                name: "payments-lite".into(),
                permissions: vec![perm_name("pay:send")],
                approval_policy: Some(ApprovalPolicy { quorum: 1, ..Default::default() }),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "APPROVAL_REQUIRED");
        let role = app.get_role("payments").await;
        assert_eq!(role.approval_policy.map(|p| p.quorum), Some(2));
    }
}

async fn a_policy_expiry_auto_rejects_the_request(backend: Backend) {
    // Arrange: the policy leaves a request pending for one hour (the server's TTL is 7 days).
    let app = spawn_with_clock(backend, Utc::now()).await;
    let clock = app.clock.clone().unwrap();
    app.create_permission("pay:send").await;
    app.roles()
        .create_role(authed(
            ADMIN,
            CreateRoleRequest {
                name: "payments".into(),
                permissions: vec![perm_name("pay:send")],
                approval_policy: Some(ApprovalPolicy {
                    expire_after: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let cr = app.request_assignment("payments", "eve").await;
    let filed = cr.create_time.unwrap().seconds;
    assert_eq!(cr.expire_time.unwrap().seconds - filed, 3600);

    // Act: an hour later the sweeper runs.
    clock.advance(Duration::hours(1));
    app.service
        .sweep(warden::service::Retention {
            changes: std::time::Duration::from_secs(3600),
        })
        .await
        .unwrap();

    // Assert
    let after = app
        .change_requests()
        .get_change_request(authed(
            ADMIN,
            GetChangeRequestRequest {
                change_request_id: cr.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.status, ChangeRequestStatus::Expired as i32);
    let err = approve(&app, ADMIN2, &cr.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(!app.check("eve", "pay:send").await);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_expiry_auto_rejects_the_request_sqlite() {
    a_policy_expiry_auto_rejects_the_request(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_expiry_auto_rejects_the_request_postgres() {
    a_policy_expiry_auto_rejects_the_request(Backend::Postgres).await;
}

/// Role `payments` (gated, granting pay:send) held by group `treasury`; eve administers roles,
/// groups and assignments without bypass and holds pay:send herself.
async fn arrange_proposals(app: &TestApp) -> Group {
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
        "eve-kit",
        &[
            "warden:roles:write",
            "warden:groups:write",
            "warden:assignments:write",
            "warden:assignments:read",
            "pay:send",
            "pay:view",
        ],
    )
    .await;
    app.assign("eve-kit", "eve").await;
    let group = app
        .groups()
        .create_group(authed(
            ADMIN,
            CreateGroupRequest {
                name: "treasury".into(),
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
                role: Some(role_name("payments")),
                identity: Some(Identity {
                    id: group.id.clone(),
                    kind: IdentityKind::Group as i32,
                }),
                force: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    group
}

async fn propose(
    app: &TestApp,
    who: &str,
    change: propose_change_request::Change,
) -> Result<ChangeRequest, tonic::Status> {
    app.change_requests()
        .propose_change(authed(
            who,
            ProposeChangeRequest {
                change: Some(change),
                reason: "needed".into(),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

backend_tests! {
    async fn a_refused_group_membership_goes_through_a_change_request(app) {
        let group = arrange_proposals(&app).await;
        let members = AddGroupMembersRequest { group_id: group.id.clone(), identity_ids: vec!["frank".into()], ..Default::default() };
        let err = app.groups().add_group_members(authed("eve", members.clone())).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "APPROVAL_REQUIRED");

        let cr = propose(&app, "eve", propose_change_request::Change::AddGroupMembers(members)).await.unwrap();
        assert_eq!(cr.kind, ChangeRequestKind::Change as i32);
        assert_eq!(cr.status, ChangeRequestStatus::Pending as i32);
        assert_eq!(cr.role.as_ref().map(|r| r.name.as_str()), Some("payments"));
        assert!(cr.proposed_change.contains("AddGroupMembers"), "{}", cr.proposed_change);
        assert!(cr.identity.is_none());
        // Nothing changed yet.
        assert!(!app.check("frank", "pay:send").await);
        let done = approve(&app, ADMIN2, &cr.id).await.unwrap();
        assert_eq!(done.status, ChangeRequestStatus::Applied as i32, "{}", done.failure_reason);
        assert!(app.check("frank", "pay:send").await);
    }

    async fn a_proposed_policy_change_needs_the_current_quorum(app) {
        app.create_role("approver-kit", &["warden:change_requests:approve", "pay:send"]).await;
        for who in ["a1", "a2"] {
            app.assign("approver-kit", who).await;
        }
        app.roles()
            .create_role(authed(ADMIN, CreateRoleRequest {
                name: "payments".into(),
                permissions: vec![perm_name("pay:send")],
                approval_policy: Some(ApprovalPolicy { quorum: 2, ..Default::default() }),
                ..Default::default()
            }))
            .await
            .unwrap();
        let cr = propose(&app, ADMIN, propose_change_request::Change::UpdateRole(UpdateRoleRequest {
            role: Some(role_name("payments")),
            requires_approval: Some(false),
            ..Default::default()
        }))
        .await
        .unwrap();
        assert_eq!(cr.policy.as_ref().map(|p| p.quorum), Some(2));
        let first = approve(&app, "a1", &cr.id).await.unwrap();
        assert_eq!(first.status, ChangeRequestStatus::Pending as i32);
        assert!(app.get_role("payments").await.requires_approval);
        let done = approve(&app, "a2", &cr.id).await.unwrap();
        assert_eq!(done.status, ChangeRequestStatus::Applied as i32, "{}", done.failure_reason);
        assert!(!app.get_role("payments").await.requires_approval);
    }

    async fn a_proposal_fails_when_the_world_changed_before_approval(app) {
        arrange_proposals(&app).await;
        app.create_role("viewer", &["pay:view"]).await;
        let cr = propose(&app, "eve", propose_change_request::Change::AddPermissionsToRole(AddPermissionsToRoleRequest {
            role: Some(role_name("viewer")),
            permissions: vec![perm_name("pay:send")],
            ..Default::default()
        }))
        .await
        .unwrap();
        app.roles().delete_role(authed(ADMIN, DeleteRoleRequest { role: Some(role_name("viewer")), ..Default::default() })).await.unwrap();
        let done = approve(&app, ADMIN2, &cr.id).await.unwrap();
        assert_eq!(done.status, ChangeRequestStatus::Failed as i32);
        assert!(done.failure_reason.contains("viewer"), "{}", done.failure_reason);
    }

    async fn proposals_are_validated_and_authorized_like_the_change(app) {
        arrange_proposals(&app).await;
        // Nothing gated: make it directly.
        let err = propose(&app, "eve", propose_change_request::Change::CreateRole(CreateRoleRequest { name: "plain".into(), permissions: vec![perm_name("pay:view")], ..Default::default() })).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "APPROVAL_NOT_REQUIRED");
        // The change's own field problems, named inside the proposal.
        let err = propose(&app, "eve", propose_change_request::Change::UpdateRole(UpdateRoleRequest::default())).await.unwrap_err();
        assert_invalid(&err, "update_role.role");
        let err = app.change_requests().propose_change(authed("eve", ProposeChangeRequest::default())).await.unwrap_err();
        assert_invalid(&err, "change");
        // Proposing needs what making the change needs.
        app.create_role("groups-only", &["warden:groups:write"]).await;
        app.assign("groups-only", "gus").await;
        let err = propose(&app, "gus", propose_change_request::Change::DeleteRole(DeleteRoleRequest { role: Some(role_name("payments")), force: true, ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        // The change's own errors surface when it is proposed.
        let err = propose(&app, "eve", propose_change_request::Change::DeleteRole(DeleteRoleRequest { role: Some(role_name("no-such-role")), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        // Nothing was filed along the way.
        let pending = app
            .change_requests()
            .list_change_requests(authed(ADMIN, ListChangeRequestsRequest { status: ChangeRequestStatus::Pending as i32, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert!(pending.change_requests.is_empty(), "{:?}", pending.change_requests);
    }
}

backend_tests! {
    async fn assigning_an_ungated_role_that_grants_a_gated_permission_files_a_change_request(app) {
        // `legacy` granted pay:send before `payments` (gated, quorum 2) was made.
        app.create_role("approver-kit", &["warden:change_requests:approve", "pay:send"]).await;
        for who in ["a1", "a2"] {
            app.assign("approver-kit", who).await;
        }
        app.create_role("legacy", &["pay:send"]).await;
        app.roles()
            .create_role(authed(ADMIN, CreateRoleRequest {
                name: "payments".into(),
                permissions: vec![perm_name("pay:send")],
                approval_policy: Some(ApprovalPolicy { quorum: 2, ..Default::default() }),
                ..Default::default()
            }))
            .await
            .unwrap();
        // Assigning `legacy` is a change request under payments' policy, not a way around it.
        let cr = app.request_assignment("legacy", "eve").await;
        assert_eq!(cr.role.as_ref().map(|r| r.name.as_str()), Some("legacy"));
        assert_eq!(cr.policy.as_ref().map(|p| p.quorum), Some(2));
        assert_eq!(approve(&app, "a1", &cr.id).await.unwrap().status, ChangeRequestStatus::Pending as i32);
        assert!(!app.check("eve", "pay:send").await);
        assert_eq!(approve(&app, "a2", &cr.id).await.unwrap().status, ChangeRequestStatus::Applied as i32);
        assert!(app.check("eve", "pay:send").await);
    }
}
