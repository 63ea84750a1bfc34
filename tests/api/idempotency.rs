//! Rule 14 for every mutating RPC: sent twice with the same `idempotency-key` and body, the
//! second call answers exactly the first response and changes nothing (same revision, no new
//! audit event), whatever the RPC. Deletes included: a replayed DeleteRole is not NOT_FOUND.

use prost::Message as _;
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

use crate::backend_tests;
use crate::helpers::*;

/// Every mutating RPC, as the table's cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    ApplyConfiguration,
    CreatePermission,
    UpdatePermission,
    DeletePermission,
    CreateRole,
    UpdateRole,
    DeleteRole,
    AddPermissionsToRole,
    RemovePermissionsFromRole,
    RemovePermissionFromRole,
    AssignRole,
    RevokeAssignment,
    BatchAssignRoles,
    BatchRevokeAssignments,
    ApproveChangeRequest,
    RejectChangeRequest,
    CancelChangeRequest,
    ProposeChange,
    CreateTenant,
    DisableTenant,
    EnableTenant,
    CreateGroup,
    DeleteGroup,
    AddGroupMembers,
    RemoveGroupMembers,
}

const EVERY_WRITE: [Write; 25] = [
    Write::ApplyConfiguration,
    Write::CreatePermission,
    Write::UpdatePermission,
    Write::DeletePermission,
    Write::CreateRole,
    Write::UpdateRole,
    Write::DeleteRole,
    Write::AddPermissionsToRole,
    Write::RemovePermissionsFromRole,
    Write::RemovePermissionFromRole,
    Write::AssignRole,
    Write::RevokeAssignment,
    Write::BatchAssignRoles,
    Write::BatchRevokeAssignments,
    Write::ApproveChangeRequest,
    Write::RejectChangeRequest,
    Write::CancelChangeRequest,
    Write::ProposeChange,
    Write::CreateTenant,
    Write::DisableTenant,
    Write::EnableTenant,
    Write::CreateGroup,
    Write::DeleteGroup,
    Write::AddGroupMembers,
    Write::RemoveGroupMembers,
];

/// The records the cases act on, each case on its own so the table's order does not matter.
struct Fixtures {
    revoke_assignment_id: String,
    batch_revoke_ids: Vec<String>,
    approve_id: String,
    reject_id: String,
    cancel_id: String,
    group_to_delete: String,
    group_to_grow: String,
    group_to_shrink: String,
}

fn keyed_as<T>(sub: &str, key: &str, message: T) -> Request<T> {
    let mut request = authed(sub, message);
    request
        .metadata_mut()
        .insert("idempotency-key", MetadataValue::try_from(key).unwrap());
    request
}

async fn create_group(app: &TestApp, name: &str) -> String {
    let request = CreateGroupRequest {
        name: name.into(),
        ..Default::default()
    };
    app.groups()
        .create_group(authed(ADMIN, request))
        .await
        .unwrap_or_else(|e| panic!("create group {name}: {e}"))
        .into_inner()
        .id
}

async fn arrange(app: &TestApp) -> Fixtures {
    app.create_permission("idem:update").await;
    app.create_permission("idem:delete").await;
    app.create_role("idem-update", &["idem:read"]).await;
    app.create_role("idem-delete", &["idem:read"]).await;
    app.create_role("idem-add", &["idem:read"]).await;
    app.create_role("idem-remove-many", &["idem:read", "idem:extra"])
        .await;
    app.create_role("idem-remove-one", &["idem:read", "idem:extra"])
        .await;
    app.create_role("idem-assign", &["idem:read"]).await;
    app.create_role("idem-revoke", &["idem:read"]).await;
    let revoke_assignment_id = app.assign("idem-revoke", "bob").await.id;
    let batch_revoke_ids = vec![
        app.assign("idem-revoke", "batch-1").await.id,
        app.assign("idem-revoke", "batch-2").await.id,
    ];
    let gated = CreateRoleRequest {
        name: "idem-gated".into(),
        permissions: vec![perm_name("idem:read")],
        requires_approval: true,
        ..Default::default()
    };
    app.roles().create_role(authed(ADMIN, gated)).await.unwrap();
    let approve_id = app.request_assignment("idem-gated", "carol").await.id;
    let reject_id = app.request_assignment("idem-gated", "dave").await.id;
    let cancel_id = app.request_assignment("idem-gated", "erin").await.id;
    let group_to_delete = create_group(app, "idem-delete").await;
    let group_to_grow = create_group(app, "idem-grow").await;
    let group_to_shrink = create_group(app, "idem-shrink").await;
    let members = AddGroupMembersRequest {
        group_id: group_to_shrink.clone(),
        identity_ids: vec!["frank".into(), "grace".into()],
        ..Default::default()
    };
    app.groups()
        .add_group_members(authed(ADMIN, members))
        .await
        .unwrap();
    Fixtures {
        revoke_assignment_id,
        batch_revoke_ids,
        approve_id,
        reject_id,
        cancel_id,
        group_to_delete,
        group_to_grow,
        group_to_shrink,
    }
}

fn tenants(app: &TestApp) -> tenant_service_client::TenantServiceClient<tonic::transport::Channel> {
    tenant_service_client::TenantServiceClient::new(app.channel.clone())
}

/// `message` from the platform tenant's root, under idempotency key `key`.
fn platform_keyed<T>(app: &TestApp, key: &str, message: T) -> Request<T> {
    let mut request = with_token(&app.tenant_token(PLATFORM_ROOT, PLATFORM), message);
    request
        .metadata_mut()
        .insert("idempotency-key", MetadataValue::try_from(key).unwrap());
    request
}

/// An approve, reject or cancel request (they take the same fields).
fn decide<R: Default + DecisionFields>(id: &str) -> R {
    let mut request = R::default();
    request.set(id.into(), "idempotent decision".into());
    request
}

trait DecisionFields {
    fn set(&mut self, change_request_id: String, comment: String);
}

macro_rules! decision_fields {
    ($($t:ty),+) => {
        $(impl DecisionFields for $t {
            fn set(&mut self, change_request_id: String, comment: String) {
                self.change_request_id = change_request_id;
                self.comment = comment;
            }
        })+
    };
}

decision_fields!(
    ApproveChangeRequestRequest,
    RejectChangeRequestRequest,
    CancelChangeRequestRequest
);

/// Sends `write` once under `key`; its response as text (each RPC answers its own type).
async fn send(app: &TestApp, f: &Fixtures, write: Write, key: &str) -> Result<String, Status> {
    let text = |r: &dyn std::fmt::Debug| format!("{r:?}");
    Ok(match write {
        Write::CreatePermission => {
            let request = CreatePermissionRequest {
                name: "idem:create".into(),
                description: "made once".into(),
                ..Default::default()
            };
            text(
                &app.permissions()
                    .create_permission(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::UpdatePermission => {
            let request = UpdatePermissionRequest {
                permission: Some(perm_name("idem:update")),
                description: "updated once".into(),
                ..Default::default()
            };
            text(
                &app.permissions()
                    .update_permission(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::DeletePermission => {
            let request = DeletePermissionRequest {
                permission: Some(perm_name("idem:delete")),
                ..Default::default()
            };
            text(
                &app.permissions()
                    .delete_permission(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::CreateRole => {
            let request = CreateRoleRequest {
                name: "idem-create".into(),
                permissions: vec![perm_name("idem:read")],
                ..Default::default()
            };
            text(
                &app.roles()
                    .create_role(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::UpdateRole => {
            let request = UpdateRoleRequest {
                role: Some(role_name("idem-update")),
                description: Some("updated once".into()),
                ..Default::default()
            };
            text(
                &app.roles()
                    .update_role(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::DeleteRole => {
            let request = DeleteRoleRequest {
                role: Some(role_name("idem-delete")),
                ..Default::default()
            };
            text(
                &app.roles()
                    .delete_role(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::AddPermissionsToRole => {
            let request = AddPermissionsToRoleRequest {
                role: Some(role_name("idem-add")),
                permissions: vec![perm_name("idem:extra")],
                ..Default::default()
            };
            text(
                &app.roles()
                    .add_permissions_to_role(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::RemovePermissionsFromRole => {
            let request = RemovePermissionsFromRoleRequest {
                role: Some(role_name("idem-remove-many")),
                permissions: vec![perm_name("idem:extra")],
                ..Default::default()
            };
            text(
                &app.roles()
                    .remove_permissions_from_role(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::RemovePermissionFromRole => {
            let request = RemovePermissionFromRoleRequest {
                role: Some(role_name("idem-remove-one")),
                permission: Some(perm_name("idem:extra")),
                ..Default::default()
            };
            text(
                &app.roles()
                    .remove_permission_from_role(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::AssignRole => {
            let request = AssignRoleRequest {
                role: Some(role_name("idem-assign")),
                identity: Some(user("alice")),
                ..Default::default()
            };
            text(
                &app.assignments()
                    .assign_role(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::RevokeAssignment => {
            let request = RevokeAssignmentRequest {
                assignment_id: f.revoke_assignment_id.clone(),
                ..Default::default()
            };
            text(
                &app.assignments()
                    .revoke_assignment(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::BatchAssignRoles => {
            let item = |who: &str| AssignmentItem {
                role: Some(role_name("idem-assign")),
                identity: Some(user(who)),
                ..Default::default()
            };
            let request = BatchAssignRolesRequest {
                items: vec![item("batch-a"), item("batch-b")],
                ..Default::default()
            };
            text(
                &app.assignments()
                    .batch_assign_roles(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::BatchRevokeAssignments => {
            let request = BatchRevokeAssignmentsRequest {
                items: f
                    .batch_revoke_ids
                    .iter()
                    .map(|id| RevocationItem {
                        assignment_id: id.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            text(
                &app.assignments()
                    .batch_revoke_assignments(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        // ADMIN filed the requests; a second admin decides them.
        Write::ApproveChangeRequest => {
            let request = keyed_as(
                ADMIN2,
                key,
                decide::<ApproveChangeRequestRequest>(&f.approve_id),
            );
            text(
                &app.change_requests()
                    .approve_change_request(request)
                    .await?
                    .into_inner(),
            )
        }
        Write::RejectChangeRequest => {
            let request = keyed_as(
                ADMIN2,
                key,
                decide::<RejectChangeRequestRequest>(&f.reject_id),
            );
            text(
                &app.change_requests()
                    .reject_change_request(request)
                    .await?
                    .into_inner(),
            )
        }
        Write::CancelChangeRequest => {
            let request = keyed_as(
                ADMIN,
                key,
                decide::<CancelChangeRequestRequest>(&f.cancel_id),
            );
            text(
                &app.change_requests()
                    .cancel_change_request(request)
                    .await?
                    .into_inner(),
            )
        }
        // Dropping the gated role's approval needs approval: filed as a CHANGE request.
        Write::ProposeChange => {
            let request = ProposeChangeRequest {
                change: Some(propose_change_request::Change::UpdateRole(
                    UpdateRoleRequest {
                        role: Some(role_name("idem-gated")),
                        requires_approval: Some(false),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            };
            text(
                &app.change_requests()
                    .propose_change(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        // A retry that ran again would be ALREADY_EXISTS, or answer a later revision.
        Write::CreateTenant => {
            let request = CreateTenantRequest {
                tenant_id: "idem-tenant".into(),
                admin_identity_id: "idem-admin".into(),
                ..Default::default()
            };
            text(
                &tenants(app)
                    .create_tenant(platform_keyed(app, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::DisableTenant => {
            let request = DisableTenantRequest {
                tenant_id: "acme".into(),
                ..Default::default()
            };
            text(
                &tenants(app)
                    .disable_tenant(platform_keyed(app, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::EnableTenant => {
            let request = EnableTenantRequest {
                tenant_id: "acme".into(),
                ..Default::default()
            };
            text(
                &tenants(app)
                    .enable_tenant(platform_keyed(app, key, request))
                    .await?
                    .into_inner(),
            )
        }
        // A retry that ran again would plan nothing and answer `changed: false`.
        Write::ApplyConfiguration => {
            let request = ApplyConfigurationRequest {
                configuration: Some(Configuration {
                    permissions: vec![ConfiguredPermission {
                        name: "idem:configured".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            };
            text(
                &app.configuration()
                    .apply_configuration(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::CreateGroup => {
            let request = CreateGroupRequest {
                name: "idem-create".into(),
                ..Default::default()
            };
            text(
                &app.groups()
                    .create_group(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::DeleteGroup => {
            let request = DeleteGroupRequest {
                group_id: f.group_to_delete.clone(),
                ..Default::default()
            };
            text(
                &app.groups()
                    .delete_group(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::AddGroupMembers => {
            let request = AddGroupMembersRequest {
                group_id: f.group_to_grow.clone(),
                identity_ids: vec!["heidi".into()],
                ..Default::default()
            };
            text(
                &app.groups()
                    .add_group_members(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
        Write::RemoveGroupMembers => {
            let request = RemoveGroupMembersRequest {
                group_id: f.group_to_shrink.clone(),
                identity_ids: vec!["frank".into()],
                ..Default::default()
            };
            text(
                &app.groups()
                    .remove_group_members(keyed_as(ADMIN, key, request))
                    .await?
                    .into_inner(),
            )
        }
    })
}

/// The revision this replica has applied.
async fn revision(app: &TestApp) -> u64 {
    app.authz()
        .check(authed(ADMIN, check("nobody", "idem:read", 0)))
        .await
        .expect("check")
        .into_inner()
        .revision
}

#[test]
fn the_table_lists_every_mutating_rpc() {
    let set = prost_types::FileDescriptorSet::decode(warden::proto::FILE_DESCRIPTOR_SET).unwrap();
    let reads = ["Get", "List", "Watch", "Check", "BatchCheck", "Export"];
    let mut mutating: Vec<String> = set
        .file
        .iter()
        .flat_map(|file| &file.service)
        .flat_map(|service| &service.method)
        .filter_map(|method| method.name.clone())
        .filter(|name| !reads.iter().any(|read| name.starts_with(read)))
        .collect();
    mutating.sort();
    let mut table: Vec<String> = EVERY_WRITE.iter().map(|w| format!("{w:?}")).collect();
    table.sort();
    assert_eq!(table, mutating, "one idempotency case per mutating RPC");
}

backend_tests! {
    async fn every_write_replays_its_first_response_for_the_same_key_and_body(app) {
        // Arrange
        let fixtures = arrange(&app).await;

        for write in EVERY_WRITE {
            let key = format!("idem-{write:?}");

            // Act
            let first = send(&app, &fixtures, write, &key)
                .await
                .unwrap_or_else(|e| panic!("{write:?}: the first call fails: {e:?}"));
            let revision_after_first = revision(&app).await;
            let audit_after_first = app.audit_events().await.len();
            let retry = send(&app, &fixtures, write, &key)
                .await
                .unwrap_or_else(|e| panic!("{write:?}: the retry fails instead of replaying: {e:?}"));

            // Assert
            assert_eq!(retry, first, "{write:?}: the retry answers the first response");
            assert_eq!(revision(&app).await, revision_after_first, "{write:?}: the retry commits nothing");
            assert_eq!(app.audit_events().await.len(), audit_after_first, "{write:?}: the retry audits nothing");
        }
    }

    async fn concurrent_calls_sharing_a_key_all_get_the_first_response(app) {
        // Arrange
        app.create_role("editor", &["docs:read"]).await;
        let before = app.audit_events().await.len();
        // Act: eight retries in flight at once, as an impatient client sends them.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let mut client = app.assignments();
            tasks.push(tokio::spawn(async move {
                let request = AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("alice")), ..Default::default() };
                client.assign_role(keyed_as(ADMIN, "one-key", request)).await.map(|r| format!("{:?}", r.into_inner()))
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap().unwrap_or_else(|e| panic!("a twin failed instead of replaying: {e:?}")));
        }
        // Assert: one write, one answer.
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
        assert_eq!(app.audit_events().await.len() - before, 1);
    }
}
