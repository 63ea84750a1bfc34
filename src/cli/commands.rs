//! The admin commands other than apply and export: one RPC each (lists page through to the
//! end), printed as a table or as the message.

use serde_json::json;

use super::args::{
    AssignmentsCommand, CheckArgs, DecideArgs, GroupsCommand, Kind, PermissionsCommand,
    RolesCommand, WatchArgs,
};
use super::client::Client;
use super::exit::{Failure, Outcome};
use super::json::{ToJson, rfc3339};
use super::output::{Output, cell, fields, line, out, structured, table};
use warden_client::pb;

/// Lists ask for the server's largest page.
const PAGE: i32 = 1000;

/// Prints a message: `-o json|yaml` as the message, otherwise as `human` renders it.
fn show(
    client: &Client,
    value: serde_json::Value,
    human: impl FnOnce() -> String,
) -> Result<Outcome, Failure> {
    match client.output {
        Some(format @ (Output::Json | Output::Yaml)) => structured(format, &value)?,
        Some(Output::Table) | None => {
            out(&human());
        }
    }
    Ok(Outcome::Done)
}

fn role_name(name: &str) -> pb::RoleRef {
    pb::RoleRef {
        r#ref: Some(pb::role_ref::Ref::Name(name.to_owned())),
    }
}

fn permission_name(name: &str) -> pb::PermissionRef {
    pb::PermissionRef {
        r#ref: Some(pb::permission_ref::Ref::Name(name.to_owned())),
    }
}

// ----- roles ---------------------------------------------------------------------------------

pub(crate) async fn roles(client: &Client, command: RolesCommand) -> Result<Outcome, Failure> {
    let mut api = client.roles();
    match command {
        RolesCommand::List => {
            let mut roles = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = api
                    .list_roles(client.request(pb::ListRolesRequest {
                        page_size: PAGE,
                        page_token,
                        name_prefix: String::new(),
                    }))
                    .await?
                    .into_inner();
                roles.extend(page.roles);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            show(client, json!({ "roles": roles.to_json() }), || {
                let rows: Vec<Vec<String>> = roles
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            cell(&abbreviated(&r.permissions)),
                            cell(&names(&r.included_roles)),
                            cell(&role_flags(r)),
                        ]
                    })
                    .collect();
                table(&["NAME", "PERMISSIONS", "INCLUDES", "FLAGS"], &rows)
            })
        }
        RolesCommand::Get { name } => {
            let role = api
                .get_role(client.request(pb::GetRoleRequest {
                    role: Some(role_name(&name)),
                    at_least_revision: 0,
                }))
                .await?
                .into_inner();
            show(client, role.to_json(), || role_fields(&role))
        }
        RolesCommand::Create {
            name,
            permissions,
            includes,
            description,
            requires_approval,
        } => {
            let role = api
                .create_role(client.request(pb::CreateRoleRequest {
                    name,
                    description,
                    permissions: permissions.iter().map(|p| permission_name(p)).collect(),
                    requires_approval,
                    included_roles: includes.iter().map(|r| role_name(r)).collect(),
                    ..Default::default()
                }))
                .await?
                .into_inner();
            show(client, role.to_json(), || role_fields(&role))
        }
        RolesCommand::Delete { name, force } => {
            let deleted = api
                .delete_role(client.request(pb::DeleteRoleRequest {
                    role: Some(role_name(&name)),
                    force,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            show(client, deleted.to_json(), || {
                format!("deleted role {name} (revision {})\n", deleted.revision)
            })
        }
    }
}

fn names(roles: &[pb::RoleSummary]) -> String {
    roles
        .iter()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A list that keeps a table readable: the first names up to about 60 characters, then how
/// many more (`roles get` shows them all).
fn abbreviated(items: &[String]) -> String {
    const WIDTH: usize = 60;
    let mut text = String::new();
    for (i, item) in items.iter().enumerate() {
        if !text.is_empty() && text.len() + item.len() + 1 > WIDTH {
            return format!("{text},… (+{} more)", items.len() - i);
        }
        if !text.is_empty() {
            text.push(',');
        }
        text.push_str(item);
    }
    text
}

fn role_flags(role: &pb::Role) -> String {
    let mut flags = Vec::new();
    if role.is_system {
        flags.push("system".to_owned());
    }
    if role.protected {
        flags.push("protected".to_owned());
    }
    if role.requires_approval {
        let quorum = role.approval_policy.as_ref().map_or(1, |p| p.quorum.max(1));
        flags.push(format!("approval({quorum})"));
    }
    flags.join(",")
}

fn role_fields(role: &pb::Role) -> String {
    fields(&[
        ("name", role.name.clone()),
        ("id", role.id.clone()),
        ("description", role.description.clone()),
        ("permissions", role.permissions.join(", ")),
        ("includes", names(&role.included_roles).replace(',', ", ")),
        ("flags", role_flags(role)),
        (
            "approval",
            role.approval_policy
                .as_ref()
                .filter(|_| role.requires_approval)
                .map(policy_text)
                .unwrap_or_default(),
        ),
        ("revision", role.revision.to_string()),
    ])
}

fn policy_text(policy: &pb::ApprovalPolicy) -> String {
    let mut parts = vec![format!("quorum {}", policy.quorum.max(1))];
    if !policy.approver_group_id.is_empty() {
        parts.push(format!("approvers in group {}", policy.approver_group_id));
    }
    if !policy.approver_permission.is_empty() {
        parts.push(format!("approvers hold {}", policy.approver_permission));
    }
    if let Some(after) = &policy.expire_after {
        parts.push(format!("expires after {}s", after.seconds));
    }
    if !policy.kinds.is_empty() {
        let kinds: Vec<&str> = policy
            .kinds
            .iter()
            .map(|k| match pb::ApprovalKind::try_from(*k) {
                Ok(pb::ApprovalKind::Assign) => "assign",
                Ok(pb::ApprovalKind::Revoke) => "revoke",
                Ok(pb::ApprovalKind::Modify) => "modify",
                Ok(pb::ApprovalKind::Unspecified) | Err(_) => "?",
            })
            .collect();
        parts.push(format!("for {}", kinds.join(", ")));
    }
    parts.join(", ")
}

// ----- permissions ---------------------------------------------------------------------------

pub(crate) async fn permissions(
    client: &Client,
    command: PermissionsCommand,
) -> Result<Outcome, Failure> {
    let mut api = client.permissions();
    match command {
        PermissionsCommand::List => {
            let mut permissions = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = api
                    .list_permissions(client.request(pb::ListPermissionsRequest {
                        page_size: PAGE,
                        page_token,
                        name_prefix: String::new(),
                    }))
                    .await?
                    .into_inner();
                permissions.extend(page.permissions);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            show(
                client,
                json!({ "permissions": permissions.to_json() }),
                || {
                    let rows: Vec<Vec<String>> = permissions
                        .iter()
                        .map(|p| {
                            vec![
                                p.name.clone(),
                                if p.is_system { "system" } else { "-" }.to_owned(),
                                cell(&p.description),
                            ]
                        })
                        .collect();
                    table(&["NAME", "FLAGS", "DESCRIPTION"], &rows)
                },
            )
        }
        PermissionsCommand::Get { name } => {
            let permission = api
                .get_permission(client.request(pb::GetPermissionRequest {
                    permission: Some(permission_name(&name)),
                }))
                .await?
                .into_inner();
            show(client, permission.to_json(), || {
                permission_fields(&permission)
            })
        }
        PermissionsCommand::Create { name, description } => {
            let permission = api
                .create_permission(client.request(pb::CreatePermissionRequest {
                    name,
                    description,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            show(client, permission.to_json(), || {
                permission_fields(&permission)
            })
        }
        PermissionsCommand::Delete { name, force } => {
            let deleted = api
                .delete_permission(client.request(pb::DeletePermissionRequest {
                    permission: Some(permission_name(&name)),
                    force,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            show(client, deleted.to_json(), || {
                format!(
                    "deleted permission {name} (revision {})\n",
                    deleted.revision
                )
            })
        }
    }
}

fn permission_fields(permission: &pb::Permission) -> String {
    fields(&[
        ("name", permission.name.clone()),
        ("id", permission.id.clone()),
        ("description", permission.description.clone()),
        (
            "flags",
            if permission.is_system { "system" } else { "" }.to_owned(),
        ),
        ("revision", permission.revision.to_string()),
    ])
}

// ----- groups --------------------------------------------------------------------------------

pub(crate) async fn groups(client: &Client, command: GroupsCommand) -> Result<Outcome, Failure> {
    let mut api = client.groups();
    let group = match command {
        GroupsCommand::List => {
            let mut groups = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = api
                    .list_groups(client.request(pb::ListGroupsRequest {
                        page_size: PAGE,
                        page_token,
                        name_prefix: String::new(),
                    }))
                    .await?
                    .into_inner();
                groups.extend(page.groups);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            return show(client, json!({ "groups": groups.to_json() }), || {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.id.clone(),
                            g.name.clone(),
                            g.member_count.to_string(),
                            cell(&g.description),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "MEMBERS", "DESCRIPTION"], &rows)
            });
        }
        GroupsCommand::Create { name, description } => api
            .create_group(client.request(pb::CreateGroupRequest {
                name,
                description,
                ..Default::default()
            }))
            .await?
            .into_inner(),
        GroupsCommand::Delete { id, force } => {
            let group = api
                .delete_group(client.request(pb::DeleteGroupRequest {
                    group_id: id,
                    force,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            return show(client, group.to_json(), || {
                format!("deleted group {} ({})\n", group.name, group.id)
            });
        }
        GroupsCommand::AddMembers { id, members } => api
            .add_group_members(client.request(pb::AddGroupMembersRequest {
                group_id: id,
                identity_ids: members,
                ..Default::default()
            }))
            .await?
            .into_inner(),
        GroupsCommand::RemoveMembers { id, members } => api
            .remove_group_members(client.request(pb::RemoveGroupMembersRequest {
                group_id: id,
                identity_ids: members,
                ..Default::default()
            }))
            .await?
            .into_inner(),
    };
    show(client, group.to_json(), || {
        fields(&[
            ("id", group.id.clone()),
            ("name", group.name.clone()),
            ("description", group.description.clone()),
            ("members", group.member_count.to_string()),
            ("revision", group.revision.to_string()),
        ])
    })
}

// ----- assignments ---------------------------------------------------------------------------

pub(crate) async fn assignments(
    client: &Client,
    command: AssignmentsCommand,
) -> Result<Outcome, Failure> {
    let mut api = client.assignments();
    match command {
        AssignmentsCommand::List { role, identity } => {
            let mut assignments = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = api
                    .list_assignments(client.request(pb::ListAssignmentsRequest {
                        page_size: PAGE,
                        page_token,
                        role: role.as_deref().map(role_name),
                        identity_id: identity.clone().unwrap_or_default(),
                    }))
                    .await?
                    .into_inner();
                assignments.extend(page.assignments);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            show(
                client,
                json!({ "assignments": assignments.to_json() }),
                || {
                    let rows: Vec<Vec<String>> = assignments
                        .iter()
                        .map(|a| {
                            vec![
                                a.id.clone(),
                                a.role_name.clone(),
                                identity_text(a.identity.as_ref()),
                                cell(&a.scope),
                                a.expire_time
                                    .as_ref()
                                    .map_or_else(|| "-".to_owned(), rfc3339),
                                cell(&a.reason),
                            ]
                        })
                        .collect();
                    table(
                        &["ID", "ROLE", "IDENTITY", "SCOPE", "EXPIRES", "REASON"],
                        &rows,
                    )
                },
            )
        }
        AssignmentsCommand::Assign {
            role,
            identity,
            kind,
            scope,
            expire,
            reason,
        } => {
            let kind = match kind {
                Kind::User => pb::IdentityKind::User,
                Kind::ServiceAccount => pb::IdentityKind::ServiceAccount,
                Kind::Pat => pb::IdentityKind::Pat,
                Kind::Group => pb::IdentityKind::Group,
            };
            let response = api
                .assign_role(client.request(pb::AssignRoleRequest {
                    role: Some(role_name(&role)),
                    identity: Some(pb::Identity {
                        id: identity,
                        kind: kind as i32,
                    }),
                    expire_time: expire.map(|t| prost_types::Timestamp {
                        seconds: t.timestamp(),
                        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
                    }),
                    reason,
                    scope,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            show(client, response.to_json(), || match &response.result {
                Some(pb::assign_role_response::Result::Assignment(a)) => {
                    assignment_fields(a, response.revision)
                }
                Some(pb::assign_role_response::Result::ChangeRequest(cr)) => format!(
                    "role {role} requires approval: change request {} is {}\n",
                    cr.id,
                    status_name(cr.status)
                ),
                None => format!("done (revision {})\n", response.revision),
            })
        }
        AssignmentsCommand::Revoke { id, reason } => {
            let response = api
                .revoke_assignment(client.request(pb::RevokeAssignmentRequest {
                    assignment_id: id.clone(),
                    reason,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            show(client, response.to_json(), || match &response.result {
                Some(pb::revoke_assignment_response::Result::ChangeRequest(cr)) => format!(
                    "revoking needs approval: change request {} is {}\n",
                    cr.id,
                    status_name(cr.status)
                ),
                Some(pb::revoke_assignment_response::Result::Assignment(_)) | None => {
                    format!("revoked assignment {id} (revision {})\n", response.revision)
                }
            })
        }
    }
}

fn identity_text(identity: Option<&pb::Identity>) -> String {
    let Some(identity) = identity else {
        return "-".to_owned();
    };
    match pb::IdentityKind::try_from(identity.kind) {
        Ok(pb::IdentityKind::User) => identity.id.clone(),
        Ok(pb::IdentityKind::ServiceAccount) => format!("{} (service account)", identity.id),
        Ok(pb::IdentityKind::Pat) => format!("{} (pat)", identity.id),
        Ok(pb::IdentityKind::Group) => format!("group {}", identity.id),
        Ok(pb::IdentityKind::Unspecified) | Err(_) => {
            format!("{} (kind {})", identity.id, identity.kind)
        }
    }
}

fn assignment_fields(a: &pb::Assignment, revision: u64) -> String {
    fields(&[
        ("assignment", a.id.clone()),
        ("role", a.role_name.clone()),
        ("identity", identity_text(a.identity.as_ref())),
        ("scope", a.scope.clone()),
        (
            "expires",
            a.expire_time.as_ref().map(rfc3339).unwrap_or_default(),
        ),
        ("reason", a.reason.clone()),
        ("revision", revision.to_string()),
    ])
}

fn status_name(raw: i32) -> String {
    pb::ChangeRequestStatus::try_from(raw)
        .map_or_else(|_| raw.to_string(), |s| s.as_str_name().to_owned())
}

// ----- check ---------------------------------------------------------------------------------

pub(crate) async fn check(client: &Client, args: CheckArgs) -> Result<Outcome, Failure> {
    let answer = client
        .authorization()
        .check(client.request(pb::CheckRequest {
            identity_id: args.identity.clone(),
            permission: args.permission.clone(),
            at_least_revision: 0,
            explain: args.explain,
            resource: args.resource.clone(),
        }))
        .await?
        .into_inner();
    show(client, answer.to_json(), || check_text(&answer))?;
    Ok(if answer.allowed {
        Outcome::Done
    } else {
        Outcome::Denied
    })
}

fn check_text(answer: &pb::CheckResponse) -> String {
    let mut text = if answer.allowed {
        format!("allowed (revision {})\n", answer.revision)
    } else {
        let reason = pb::CheckReason::try_from(answer.reason).map_or_else(
            |_| answer.reason.to_string(),
            |r| r.as_str_name().to_owned(),
        );
        format!("denied: {reason} (revision {})\n", answer.revision)
    };
    for grant in &answer.grants {
        text.push_str(&format!("  granted by {}\n", grant_text(grant)));
    }
    if !answer.granting_roles.is_empty() {
        text.push_str(&format!(
            "  roles that grant it: {}\n",
            names(&answer.granting_roles).replace(',', ", ")
        ));
    }
    for grant in &answer.expired_grants {
        text.push_str(&format!("  expired: {}\n", grant_text(grant)));
    }
    for grant in &answer.held_elsewhere {
        text.push_str(&format!("  held elsewhere: {}\n", grant_text(grant)));
    }
    for id in &answer.pending_change_request_ids {
        text.push_str(&format!("  pending change request: {id}\n"));
    }
    text
}

/// `role editor (assignment 0190…) through group G on departments/eng via reader`.
fn grant_text(grant: &pb::Grant) -> String {
    let role = grant.role.as_ref().map_or("?", |r| r.name.as_str());
    let mut text = format!("role {role} (assignment {})", grant.assignment_id);
    if !grant.group_id.is_empty() {
        text.push_str(&format!(" through group {}", grant.group_id));
    }
    if !grant.scope.is_empty() {
        text.push_str(&format!(" on {}", grant.scope));
    }
    if !grant.inclusion_path.is_empty() {
        text.push_str(&format!(
            " via {}",
            grant
                .inclusion_path
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(" -> ")
        ));
    }
    text
}

// ----- approve / reject ----------------------------------------------------------------------

pub(crate) async fn decide(
    client: &Client,
    args: DecideArgs,
    approve: bool,
) -> Result<Outcome, Failure> {
    let mut api = client.change_requests();
    let cr = if approve {
        api.approve_change_request(client.request(pb::ApproveChangeRequestRequest {
            change_request_id: args.change_request,
            comment: args.comment,
            ..Default::default()
        }))
        .await?
    } else {
        api.reject_change_request(client.request(pb::RejectChangeRequestRequest {
            change_request_id: args.change_request,
            comment: args.comment,
            ..Default::default()
        }))
        .await?
    }
    .into_inner();
    show(client, cr.to_json(), || {
        let quorum = cr.policy.as_ref().map_or(1, |p| p.quorum.max(1));
        fields(&[
            ("change request", cr.id.clone()),
            ("status", status_name(cr.status)),
            ("approvals", format!("{} of {quorum}", cr.approvals.len())),
            ("failure", cr.failure_reason.clone()),
            ("assignment", cr.resulting_assignment_id.clone()),
        ])
    })
}

// ----- watch ---------------------------------------------------------------------------------

pub(crate) async fn watch(client: &Client, args: WatchArgs) -> Result<Outcome, Failure> {
    let since = match args.from {
        Some(revision) => revision,
        None => current_revision(client).await?,
    };
    let mut stream = client
        .audit()
        .watch_changes(client.request(pb::WatchChangesRequest {
            since_revision: since,
            ..Default::default()
        }))
        .await?
        .into_inner();
    while let Some(event) = stream.message().await? {
        let text = match client.output {
            Some(Output::Json) => serde_json::to_string(&event.to_json()).unwrap_or_default(),
            Some(Output::Yaml) => format!(
                "---\n{}",
                yaml_serde::to_string(&event.to_json()).unwrap_or_default()
            )
            .trim_end()
            .to_owned(),
            Some(Output::Table) | None => format!(
                "{}  {}  {}  {}",
                event.revision,
                event.time.as_ref().map(rfc3339).unwrap_or_default(),
                event.kind,
                event.target
            ),
        };
        // A closed pipe (`| head -1`) means the reader is done.
        if !line(&text) {
            break;
        }
    }
    Ok(Outcome::Done)
}

/// The tenant's latest revision: that of its newest audit event (every change is audited in
/// its own transaction, and a refused request at the revision it was refused at), so watching
/// from it shows only what happens from now on.
async fn current_revision(client: &Client) -> Result<u64, Failure> {
    let newest = client
        .audit()
        .list_audit_events(client.request(pb::ListAuditEventsRequest {
            page_size: 1,
            ..Default::default()
        }))
        .await?
        .into_inner();
    Ok(newest.events.first().map_or(0, |e| e.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_abbreviated_in_tables() {
        let many: Vec<String> = (0..20).map(|i| format!("warden:perm:{i:02}")).collect();
        let text = abbreviated(&many);
        assert!(text.starts_with("warden:perm:00,warden:perm:01,"), "{text}");
        assert!(text.ends_with("… (+16 more)"), "{text}");
        assert_eq!(abbreviated(&many[..2]), "warden:perm:00,warden:perm:01");
    }

    #[test]
    fn an_explained_check_names_each_grant() {
        let answer = pb::CheckResponse {
            allowed: true,
            revision: 7,
            reason: pb::CheckReason::Granted as i32,
            grants: vec![pb::Grant {
                assignment_id: "a1".into(),
                role: Some(pb::RoleSummary {
                    id: "r".into(),
                    name: "head-of-eng".into(),
                }),
                scope: "departments/eng".into(),
                inclusion_path: vec![pb::RoleSummary {
                    id: "d".into(),
                    name: "department-manager".into(),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            check_text(&answer),
            "allowed (revision 7)\n  granted by role head-of-eng (assignment a1) on departments/eng via department-manager\n"
        );
    }
}
