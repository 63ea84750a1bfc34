//! Mutating RPCs at the edge: the write options a request carries, its conversion into a
//! service `Command` (every field problem in one INVALID_ARGUMENT), and the conversion of the
//! `Outcome` back into the wire response. Handlers call `write` and nothing else.

use sha2::{Digest as _, Sha256};
use tonic::{Request, Response, Status};

use super::caller;
use super::convert::{
    AllValid as _, approval_policy, from_timestamp, identity, member_batch, permission_batch,
    permission_ref, role_ref,
};
use crate::domain::names::parse_description;
use crate::domain::{
    AssignmentId, ChangeRequest, ChangeRequestId, Error, FieldProblem, GroupId, GroupName,
    Permission, PermissionName, Role, RoleName, RoleRef, Scope,
};
use crate::proto::pb;
use crate::service::{
    AddGroupMembers, AddPermissionsToRole, ApproveChangeRequest, AssignResult, AssignRole,
    BatchAssignRoles, BatchRevokeAssignments, CancelChangeRequest, Command, CreateGroup,
    CreatePermission, CreateRole, DeleteGroup, DeletePermission, DeleteRole, IdempotencyKey,
    MAX_BATCH_ITEMS, Outcome, ProposeChange, ProposedChange, RejectChangeRequest,
    RemoveGroupMembers, RemovePermissionFromRole, RemovePermissionsFromRole, RevokeAssignment,
    Service, UpdatePermission, UpdateRole, WriteOptions,
};

/// Runs one mutating RPC: caller, write options, command, `Service::write`, response.
pub(super) async fn write<C, R, P>(
    service: &Service,
    request: Request<R>,
) -> Result<Response<P>, Status>
where
    R: WriteRequest,
    C: Command + TryFrom<R, Error = Error>,
    P: From<Outcome<C::Output>>,
{
    let caller = caller(&request)?;
    let options = write_options(&caller.rpc, &request)?;
    let command = C::try_from(request.into_inner())?;
    Ok(Response::new(
        service.write(&caller, options, command).await?.into(),
    ))
}

/// A mutating request: its body is hashed for idempotency, and it carries the write flags.
pub(super) trait WriteRequest: prost::Message {
    fn dry_run(&self) -> bool;
    fn wait_for_propagation(&self) -> bool;
}

macro_rules! write_requests {
    ($($request:ty),+ $(,)?) => {
        $(
            impl WriteRequest for $request {
                fn dry_run(&self) -> bool {
                    self.dry_run
                }
                fn wait_for_propagation(&self) -> bool {
                    self.wait_for_propagation
                }
            }
        )+
    };
}

write_requests!(
    pb::CreatePermissionRequest,
    pb::UpdatePermissionRequest,
    pb::DeletePermissionRequest,
    pb::CreateRoleRequest,
    pb::UpdateRoleRequest,
    pb::DeleteRoleRequest,
    pb::AddPermissionsToRoleRequest,
    pb::RemovePermissionsFromRoleRequest,
    pb::RemovePermissionFromRoleRequest,
    pb::AssignRoleRequest,
    pb::RevokeAssignmentRequest,
    pb::BatchAssignRolesRequest,
    pb::BatchRevokeAssignmentsRequest,
    pb::ApproveChangeRequestRequest,
    pb::RejectChangeRequestRequest,
    pb::CancelChangeRequestRequest,
    pb::CreateGroupRequest,
    pb::DeleteGroupRequest,
    pb::AddGroupMembersRequest,
    pb::RemoveGroupMembersRequest,
    pb::ProposeChangeRequest,
    pb::CreateTenantRequest,
    pb::DisableTenantRequest,
    pb::EnableTenantRequest,
    pb::ApplyConfigurationRequest,
);

/// The write options of a mutating request: its flags and, when it sent an `idempotency-key`
/// (1-128 printable ASCII), that key with a hash of the method and the encoded body.
pub(super) fn write_options<R: WriteRequest>(
    rpc: &str,
    request: &Request<R>,
) -> Result<WriteOptions, Status> {
    let body = request.get_ref();
    let idempotency = match request.metadata().get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|k| {
                    !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| (0x20..0x7f).contains(&b))
                })
                .ok_or_else(|| {
                    Status::from(Error::invalid(
                        "idempotency-key",
                        "must be 1-128 printable ASCII characters",
                    ))
                })?;
            let mut hasher = Sha256::new();
            hasher.update(rpc.as_bytes());
            hasher.update([0]);
            hasher.update(body.encode_to_vec());
            let request_hash = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Some(IdempotencyKey {
                key: key.to_owned(),
                request_hash,
            })
        }
    };
    Ok(WriteOptions {
        dry_run: body.dry_run(),
        wait_for_propagation: body.wait_for_propagation(),
        idempotency,
    })
}

// ----- requests -> commands -----

impl TryFrom<pb::CreatePermissionRequest> for CreatePermission {
    type Error = Error;

    fn try_from(req: pb::CreatePermissionRequest) -> Result<Self, Error> {
        let (name, description) = (
            PermissionName::parse("name", &req.name),
            parse_description("description", &req.description),
        )
            .all_valid()?;
        Ok(Self { name, description })
    }
}

impl TryFrom<pb::UpdatePermissionRequest> for UpdatePermission {
    type Error = Error;

    fn try_from(req: pb::UpdatePermissionRequest) -> Result<Self, Error> {
        let (permission, description) = (
            permission_ref("permission", req.permission.as_ref()),
            parse_description("description", &req.description),
        )
            .all_valid()?;
        Ok(Self {
            permission,
            description,
        })
    }
}

impl TryFrom<pb::DeletePermissionRequest> for DeletePermission {
    type Error = Error;

    fn try_from(req: pb::DeletePermissionRequest) -> Result<Self, Error> {
        Ok(Self {
            permission: permission_ref("permission", req.permission.as_ref())?,
            force: req.force,
        })
    }
}

impl TryFrom<pb::CreateRoleRequest> for CreateRole {
    type Error = Error;

    fn try_from(req: pb::CreateRoleRequest) -> Result<Self, Error> {
        let (name, description, permissions, approval_policy) = (
            RoleName::parse("name", &req.name),
            parse_description("description", &req.description),
            permission_batch("permissions", &req.permissions, true),
            req.approval_policy
                .as_ref()
                .map(|p| approval_policy("approval_policy", p))
                .transpose(),
        )
            .all_valid()?;
        let included_roles = role_refs("included_roles", &req.included_roles)?;
        Ok(Self {
            name,
            description,
            permissions,
            requires_approval: req.requires_approval || approval_policy.is_some(),
            approval_policy,
            protected: req.protected,
            included_roles,
        })
    }
}

impl TryFrom<pb::UpdateRoleRequest> for UpdateRole {
    type Error = Error;

    fn try_from(req: pb::UpdateRoleRequest) -> Result<Self, Error> {
        let (role, description, approval_policy) = (
            role_ref("role", req.role.as_ref()),
            req.description
                .as_deref()
                .map(|d| parse_description("description", d))
                .transpose(),
            req.approval_policy
                .as_ref()
                .map(|p| approval_policy("approval_policy", p))
                .transpose(),
        )
            .all_valid()?;
        if approval_policy.is_some() && req.requires_approval == Some(false) {
            return Err(Error::invalid(
                "approval_policy",
                "a policy needs requires_approval; leave requires_approval unset or true",
            ));
        }
        Ok(Self {
            role,
            description,
            requires_approval: approval_policy
                .as_ref()
                .map(|_| true)
                .or(req.requires_approval),
            approval_policy,
            protected: req.protected,
            included_roles: req
                .included_roles
                .as_ref()
                .map(|list| role_refs("included_roles.roles", &list.roles))
                .transpose()?,
            etag: req.etag,
        })
    }
}

impl TryFrom<pb::DeleteRoleRequest> for DeleteRole {
    type Error = Error;

    fn try_from(req: pb::DeleteRoleRequest) -> Result<Self, Error> {
        Ok(Self {
            role: role_ref("role", req.role.as_ref())?,
            force: req.force,
        })
    }
}

impl TryFrom<pb::AddPermissionsToRoleRequest> for AddPermissionsToRole {
    type Error = Error;

    fn try_from(req: pb::AddPermissionsToRoleRequest) -> Result<Self, Error> {
        let (role, permissions) = (
            role_ref("role", req.role.as_ref()),
            permission_batch("permissions", &req.permissions, false),
        )
            .all_valid()?;
        Ok(Self { role, permissions })
    }
}

impl TryFrom<pb::RemovePermissionsFromRoleRequest> for RemovePermissionsFromRole {
    type Error = Error;

    fn try_from(req: pb::RemovePermissionsFromRoleRequest) -> Result<Self, Error> {
        let (role, permissions) = (
            role_ref("role", req.role.as_ref()),
            permission_batch("permissions", &req.permissions, false),
        )
            .all_valid()?;
        Ok(Self { role, permissions })
    }
}

impl TryFrom<pb::RemovePermissionFromRoleRequest> for RemovePermissionFromRole {
    type Error = Error;

    fn try_from(req: pb::RemovePermissionFromRoleRequest) -> Result<Self, Error> {
        let (role, permission) = (
            role_ref("role", req.role.as_ref()),
            permission_ref("permission", req.permission.as_ref()),
        )
            .all_valid()?;
        Ok(Self {
            role,
            permission,
            allow_missing: req.allow_missing,
        })
    }
}

impl TryFrom<pb::AssignRoleRequest> for AssignRole {
    type Error = Error;

    fn try_from(req: pb::AssignRoleRequest) -> Result<Self, Error> {
        assignment(
            "",
            req.role.as_ref(),
            req.identity.as_ref(),
            req.expire_time.as_ref(),
            &req.reason,
            req.force,
            &req.scope,
        )
    }
}

/// The most roles one role may include directly.
const MAX_INCLUDED_ROLES: usize = 32;

/// A list of role references (a composite role's included roles).
fn role_refs(field: &str, refs: &[pb::RoleRef]) -> Result<Vec<RoleRef>, Error> {
    if refs.len() > MAX_INCLUDED_ROLES {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_INCLUDED_ROLES} roles"),
        ));
    }
    refs.iter()
        .enumerate()
        .map(|(i, r)| role_ref(&format!("{field}[{i}]"), Some(r)))
        .collect()
}

/// AssignRole's fields, alone or as a batch item (`prefix` is `items[i].` then).
#[allow(clippy::too_many_arguments)]
fn assignment(
    prefix: &str,
    role: Option<&pb::RoleRef>,
    who: Option<&pb::Identity>,
    expire_time: Option<&prost_types::Timestamp>,
    reason: &str,
    force: bool,
    scope: &str,
) -> Result<AssignRole, Error> {
    let (role, identity, expire_time, reason, scope) = (
        role_ref(&format!("{prefix}role"), role),
        identity(&format!("{prefix}identity"), who),
        expire_time
            .map(|t| from_timestamp(&format!("{prefix}expire_time"), t))
            .transpose(),
        parse_description(&format!("{prefix}reason"), reason),
        Scope::parse(&format!("{prefix}scope"), scope),
    )
        .all_valid()?;
    Ok(AssignRole {
        role,
        identity,
        scope,
        expire_time,
        reason,
        force,
    })
}

impl TryFrom<pb::RevokeAssignmentRequest> for RevokeAssignment {
    type Error = Error;

    fn try_from(req: pb::RevokeAssignmentRequest) -> Result<Self, Error> {
        let of_role = req
            .role
            .as_ref()
            .map(|r| role_ref("role", Some(r)))
            .transpose();
        let (mut revocation, of_role) = (
            revocation("", &req.assignment_id, &req.reason, req.force),
            of_role,
        )
            .all_valid()?;
        revocation.of_role = of_role;
        Ok(revocation)
    }
}

fn revocation(
    prefix: &str,
    assignment_id: &str,
    reason: &str,
    force: bool,
) -> Result<RevokeAssignment, Error> {
    let (assignment, reason) = (
        AssignmentId::parse(&format!("{prefix}assignment_id"), assignment_id),
        parse_description(&format!("{prefix}reason"), reason),
    )
        .all_valid()?;
    Ok(RevokeAssignment {
        assignment,
        reason,
        force,
        of_role: None,
    })
}

/// Parses every item of a batch, reporting every problem of every item at once.
fn batch_items<I, T>(
    items: &[I],
    parse: impl Fn(&str, &I) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let mut problems = Vec::new();
    if items.is_empty() {
        problems.push(FieldProblem::new("items", "must list at least one item"));
    }
    if items.len() > MAX_BATCH_ITEMS {
        problems.push(FieldProblem::new(
            "items",
            format!("must list at most {MAX_BATCH_ITEMS} items"),
        ));
    }
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate().take(MAX_BATCH_ITEMS) {
        match parse(&format!("items[{index}]."), item) {
            Ok(value) => parsed.push(value),
            Err(Error::Invalid(mut found)) => problems.append(&mut found),
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(Error::Invalid(problems))
    }
}

impl TryFrom<pb::BatchAssignRolesRequest> for BatchAssignRoles {
    type Error = Error;

    fn try_from(req: pb::BatchAssignRolesRequest) -> Result<Self, Error> {
        let items = batch_items(&req.items, |prefix, item: &pb::AssignmentItem| {
            assignment(
                prefix,
                item.role.as_ref(),
                item.identity.as_ref(),
                item.expire_time.as_ref(),
                &item.reason,
                item.force,
                &item.scope,
            )
        })?;
        Ok(Self { items })
    }
}

impl TryFrom<pb::BatchRevokeAssignmentsRequest> for BatchRevokeAssignments {
    type Error = Error;

    fn try_from(req: pb::BatchRevokeAssignmentsRequest) -> Result<Self, Error> {
        let items = batch_items(&req.items, |prefix, item: &pb::RevocationItem| {
            revocation(prefix, &item.assignment_id, &item.reason, item.force)
        })?;
        Ok(Self { items })
    }
}

impl TryFrom<pb::ProposeChangeRequest> for ProposeChange {
    type Error = Error;

    fn try_from(req: pb::ProposeChangeRequest) -> Result<Self, Error> {
        use pb::propose_change_request::Change as C;
        /// The change's own field problems, named under its oneof field.
        fn within<T, P>(
            field: &str,
            r: Result<T, Error>,
            wrap: impl FnOnce(T) -> P,
        ) -> Result<P, Error> {
            r.map(wrap).map_err(|e| match e {
                Error::Invalid(problems) => Error::Invalid(
                    problems
                        .into_iter()
                        .map(|p| FieldProblem::new(format!("{field}.{}", p.field), p.description))
                        .collect(),
                ),
                other => other,
            })
        }
        let change = match req.change {
            None => Err(Error::invalid("change", "name the change to propose")),
            Some(C::CreateRole(r)) => {
                within("create_role", r.try_into(), ProposedChange::CreateRole)
            }
            Some(C::UpdateRole(r)) => {
                within("update_role", r.try_into(), ProposedChange::UpdateRole)
            }
            Some(C::DeleteRole(r)) => {
                within("delete_role", r.try_into(), ProposedChange::DeleteRole)
            }
            Some(C::AddPermissionsToRole(r)) => within(
                "add_permissions_to_role",
                r.try_into(),
                ProposedChange::AddPermissionsToRole,
            ),
            Some(C::RemovePermissionsFromRole(r)) => within(
                "remove_permissions_from_role",
                r.try_into(),
                ProposedChange::RemovePermissionsFromRole,
            ),
            Some(C::DeletePermission(r)) => within(
                "delete_permission",
                r.try_into(),
                ProposedChange::DeletePermission,
            ),
            Some(C::AddGroupMembers(r)) => within(
                "add_group_members",
                r.try_into(),
                ProposedChange::AddGroupMembers,
            ),
            Some(C::RemoveGroupMembers(r)) => within(
                "remove_group_members",
                r.try_into(),
                ProposedChange::RemoveGroupMembers,
            ),
            Some(C::DeleteGroup(r)) => {
                within("delete_group", r.try_into(), ProposedChange::DeleteGroup)
            }
        };
        let (change, reason) = (change, parse_description("reason", &req.reason)).all_valid()?;
        Ok(Self { change, reason })
    }
}

/// Approve, reject and cancel take the same fields: the change request and a comment.
fn decision(change_request_id: &str, comment: &str) -> Result<(ChangeRequestId, String), Error> {
    (
        ChangeRequestId::parse("change_request_id", change_request_id),
        parse_description("comment", comment),
    )
        .all_valid()
}

macro_rules! decisions {
    ($($request:ty => $command:ident),+ $(,)?) => {
        $(
            impl TryFrom<$request> for $command {
                type Error = Error;

                fn try_from(req: $request) -> Result<Self, Error> {
                    let (change_request, comment) =
                        decision(&req.change_request_id, &req.comment)?;
                    Ok(Self {
                        change_request,
                        comment,
                    })
                }
            }
        )+
    };
}

decisions!(
    pb::ApproveChangeRequestRequest => ApproveChangeRequest,
    pb::RejectChangeRequestRequest => RejectChangeRequest,
    pb::CancelChangeRequestRequest => CancelChangeRequest,
);

impl TryFrom<pb::CreateGroupRequest> for CreateGroup {
    type Error = Error;

    fn try_from(req: pb::CreateGroupRequest) -> Result<Self, Error> {
        let (name, description) = (
            GroupName::parse("name", &req.name),
            parse_description("description", &req.description),
        )
            .all_valid()?;
        Ok(Self { name, description })
    }
}

impl TryFrom<pb::DeleteGroupRequest> for DeleteGroup {
    type Error = Error;

    fn try_from(req: pb::DeleteGroupRequest) -> Result<Self, Error> {
        Ok(Self {
            group: GroupId::parse("group_id", &req.group_id)?,
            force: req.force,
        })
    }
}

/// Add and remove take the same fields: the group and the identities.
fn members(
    group_id: &str,
    identity_ids: &[String],
) -> Result<(GroupId, Vec<crate::domain::IdentityId>), Error> {
    (
        GroupId::parse("group_id", group_id),
        member_batch("identity_ids", identity_ids),
    )
        .all_valid()
}

impl TryFrom<pb::AddGroupMembersRequest> for AddGroupMembers {
    type Error = Error;

    fn try_from(req: pb::AddGroupMembersRequest) -> Result<Self, Error> {
        let (group, members) = members(&req.group_id, &req.identity_ids)?;
        Ok(Self { group, members })
    }
}

impl TryFrom<pb::RemoveGroupMembersRequest> for RemoveGroupMembers {
    type Error = Error;

    fn try_from(req: pb::RemoveGroupMembersRequest) -> Result<Self, Error> {
        let (group, members) = members(&req.group_id, &req.identity_ids)?;
        Ok(Self { group, members })
    }
}

// ----- outcomes -> responses -----

impl From<Outcome<Permission>> for pb::Permission {
    fn from(outcome: Outcome<Permission>) -> Self {
        outcome.value.into()
    }
}

impl From<Outcome<()>> for pb::DeletePermissionResponse {
    fn from(outcome: Outcome<()>) -> Self {
        Self {
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }
    }
}

impl From<Outcome<Role>> for pb::Role {
    fn from(outcome: Outcome<Role>) -> Self {
        outcome.value.into()
    }
}

impl From<Outcome<()>> for pb::DeleteRoleResponse {
    fn from(outcome: Outcome<()>) -> Self {
        Self {
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }
    }
}

impl From<Outcome<Role>> for pb::RoleResponse {
    fn from(outcome: Outcome<Role>) -> Self {
        Self {
            role: Some(outcome.value.into()),
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }
    }
}

impl From<Outcome<AssignResult>> for pb::AssignRoleResponse {
    fn from(outcome: Outcome<AssignResult>) -> Self {
        use pb::assign_role_response::Result;
        Self {
            result: Some(match outcome.value {
                AssignResult::Assignment(a) => Result::Assignment(a.into()),
                AssignResult::Pending(c) => Result::ChangeRequest((*c).into()),
            }),
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }
    }
}

impl From<Outcome<AssignResult>> for pb::RevokeAssignmentResponse {
    fn from(outcome: Outcome<AssignResult>) -> Self {
        use pb::revoke_assignment_response::Result;
        Self {
            result: Some(match outcome.value {
                AssignResult::Assignment(a) => Result::Assignment(a.into()),
                AssignResult::Pending(c) => Result::ChangeRequest((*c).into()),
            }),
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }
    }
}

impl From<AssignResult> for pb::AssignmentItemResult {
    fn from(result: AssignResult) -> Self {
        use pb::assignment_item_result::Result;
        Self {
            result: Some(match result {
                AssignResult::Assignment(a) => Result::Assignment(a.into()),
                AssignResult::Pending(c) => Result::ChangeRequest((*c).into()),
            }),
        }
    }
}

impl From<Outcome<Vec<AssignResult>>> for pb::BatchAssignRolesResponse {
    fn from(outcome: Outcome<Vec<AssignResult>>) -> Self {
        Self {
            results: outcome.value.into_iter().map(Into::into).collect(),
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }
    }
}

impl From<Outcome<Vec<AssignResult>>> for pb::BatchRevokeAssignmentsResponse {
    fn from(outcome: Outcome<Vec<AssignResult>>) -> Self {
        Self {
            results: outcome.value.into_iter().map(Into::into).collect(),
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
        }
    }
}

impl From<Outcome<ChangeRequest>> for pb::ChangeRequest {
    fn from(outcome: Outcome<ChangeRequest>) -> Self {
        outcome.value.into()
    }
}

impl From<Outcome<crate::domain::Group>> for pb::Group {
    fn from(outcome: Outcome<crate::domain::Group>) -> Self {
        let mut group: pb::Group = outcome.value.into();
        group.impact = outcome.impact.map(Into::into);
        group
    }
}
