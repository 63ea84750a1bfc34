//! Proto <-> domain conversions. Field problems are collected into INVALID_ARGUMENT.

use chrono::{DateTime, Utc};

use crate::domain::{
    Error, FieldProblem, Permission, PermissionId, PermissionName, PermissionRef, Ref, Role,
    RoleId, RoleRef,
};
use crate::proto::pb;

pub(crate) fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Collects every field problem of one request before failing.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldProblem>);

impl Problems {
    /// Keeps the problems of a failed parse (any other error becomes a problem of `request`).
    pub(crate) fn add(&mut self, err: Error) {
        match err {
            Error::Invalid(mut p) => self.0.append(&mut p),
            other => self.0.push(FieldProblem::new("request", other.to_string())),
        }
    }

    /// The value of a successful parse; the problems of a failed one are kept.
    pub(crate) fn take<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        result.map_err(|err| self.add(err)).ok()
    }

    pub(crate) fn push(&mut self, field: &str, description: &str) {
        self.0.push(FieldProblem::new(field, description));
    }

    /// Ok when nothing was wrong.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}

/// A tuple of field parses: all the values, or one INVALID_ARGUMENT listing every problem.
pub(crate) trait AllValid {
    type Values;

    fn all_valid(self) -> Result<Self::Values, Error>;
}

macro_rules! all_valid {
    ($($value:ident: $ty:ident),+) => {
        impl<$($ty),+> AllValid for ($(Result<$ty, Error>,)+) {
            type Values = ($($ty,)+);

            fn all_valid(self) -> Result<Self::Values, Error> {
                match self {
                    ($(Ok($value),)+) => Ok(($($value,)+)),
                    ($($value,)+) => {
                        let mut problems = Problems::default();
                        $(
                            if let Err(err) = $value {
                                problems.add(err);
                            }
                        )+
                        Err(Error::Invalid(problems.0))
                    }
                }
            }
        }
    };
}

all_valid!(a: A, b: B);
all_valid!(a: A, b: B, c: C);
all_valid!(a: A, b: B, c: C, d: D);
all_valid!(a: A, b: B, c: C, d: D, e: E);

pub(crate) fn permission_ref(
    field: &str,
    r: Option<&pb::PermissionRef>,
) -> Result<PermissionRef, Error> {
    match r.and_then(|r| r.r#ref.as_ref()) {
        Some(pb::permission_ref::Ref::Id(id)) => {
            PermissionId::parse(&format!("{field}.id"), id).map(Ref::Id)
        }
        Some(pb::permission_ref::Ref::Name(name)) => {
            PermissionName::parse(&format!("{field}.name"), name)
                .map(|n| Ref::Name(n.into_string()))
        }
        None => Err(Error::invalid(field, "is required: give `id` or `name`")),
    }
}

pub(crate) fn role_ref(field: &str, r: Option<&pb::RoleRef>) -> Result<RoleRef, Error> {
    match r.and_then(|r| r.r#ref.as_ref()) {
        Some(pb::role_ref::Ref::Id(id)) => RoleId::parse(&format!("{field}.id"), id).map(Ref::Id),
        Some(pb::role_ref::Ref::Name(name)) => {
            crate::domain::RoleName::parse(&format!("{field}.name"), name)
                .map(|n| Ref::Name(n.into_string()))
        }
        None => Err(Error::invalid(field, "is required: give `id` or `name`")),
    }
}

/// A batch of permission refs: non-empty, each valid, no entry twice.
pub(crate) fn permission_batch(
    field: &str,
    refs: &[pb::PermissionRef],
    allow_empty: bool,
) -> Result<Vec<PermissionRef>, Error> {
    let mut problems = Problems::default();
    if refs.is_empty() && !allow_empty {
        problems.push(field, "must list at least one permission");
    }
    if refs.len() > 1000 {
        problems.push(field, "must list at most 1000 permissions");
    }
    let mut out: Vec<PermissionRef> = Vec::with_capacity(refs.len());
    for (i, r) in refs.iter().enumerate() {
        if let Some(parsed) = problems.take(permission_ref(&format!("{field}[{i}]"), Some(r))) {
            if out.contains(&parsed) {
                problems.push(&format!("{field}[{i}]"), "duplicates an earlier entry");
            } else {
                out.push(parsed);
            }
        }
    }
    problems.finish()?;
    Ok(out)
}

impl From<Permission> for pb::Permission {
    fn from(p: Permission) -> Self {
        pb::Permission {
            id: p.id.to_string(),
            name: p.name,
            description: p.description,
            is_system: p.is_system,
            tenant_id: p.tenant.to_string(),
            create_time: Some(timestamp(p.create_time)),
            update_time: Some(timestamp(p.update_time)),
            revision: p.revision.0,
        }
    }
}

impl From<Role> for pb::Role {
    fn from(r: Role) -> Self {
        let etag = r.etag();
        let approval_policy = r.gate().map(pb_approval_policy);
        pb::Role {
            id: r.id.to_string(),
            name: r.name,
            description: r.description,
            is_system: r.is_system,
            requires_approval: r.requires_approval,
            permissions: r.permissions,
            tenant_id: r.tenant.to_string(),
            create_time: Some(timestamp(r.create_time)),
            update_time: Some(timestamp(r.update_time)),
            revision: r.revision.0,
            etag,
            approval_policy,
            protected: r.protected,
            included_roles: r
                .included_roles
                .into_iter()
                .map(|i| pb::RoleSummary {
                    id: i.id.to_string(),
                    name: i.name,
                })
                .collect(),
        }
    }
}

impl From<crate::domain::Impact> for pb::Impact {
    fn from(i: crate::domain::Impact) -> Self {
        pb::Impact {
            identities: i
                .identities
                .into_iter()
                .map(|x| pb::IdentityImpact {
                    identity_id: x.identity.to_string(),
                    gained: x.gained,
                    lost: x.lost,
                    gained_scoped: x.gained_scoped.into_iter().map(pb_scoped).collect(),
                    lost_scoped: x.lost_scoped.into_iter().map(pb_scoped).collect(),
                })
                .collect(),
        }
    }
}

fn pb_scoped(p: crate::domain::ScopedPermission) -> pb::ScopedPermission {
    pb::ScopedPermission {
        permission: p.permission,
        scope: p.scope.to_string(),
    }
}

pub(crate) fn from_timestamp(
    field: &str,
    t: &prost_types::Timestamp,
) -> Result<DateTime<Utc>, Error> {
    // google.protobuf.Timestamp's own range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(
            field,
            "must be a valid timestamp between years 1 and 9999",
        ));
    }
    DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
}

pub(crate) fn identity(
    field: &str,
    i: Option<&pb::Identity>,
) -> Result<crate::domain::Identity, Error> {
    use crate::domain::{Identity, IdentityId, IdentityKind};
    let i = i.ok_or_else(|| Error::invalid(field, "is required"))?;
    let kind = match pb::IdentityKind::try_from(i.kind) {
        Ok(pb::IdentityKind::User) => IdentityKind::User,
        Ok(pb::IdentityKind::ServiceAccount) => IdentityKind::ServiceAccount,
        Ok(pb::IdentityKind::Pat) => IdentityKind::Pat,
        Ok(pb::IdentityKind::Group) => IdentityKind::Group,
        Ok(pb::IdentityKind::Unspecified) => {
            return Err(Error::invalid(
                format!("{field}.kind"),
                "is required: IDENTITY_KIND_USER, IDENTITY_KIND_SERVICE_ACCOUNT, IDENTITY_KIND_PAT or IDENTITY_KIND_GROUP",
            ));
        }
        Err(_) => {
            return Err(Error::invalid(
                format!("{field}.kind"),
                "is not a known identity kind",
            ));
        }
    };
    if kind == IdentityKind::Group {
        crate::domain::GroupId::parse(&format!("{field}.id"), &i.id)?;
    }
    Ok(Identity {
        id: IdentityId::parse(&format!("{field}.id"), &i.id)?,
        kind,
    })
}

pub(crate) fn pb_kind(k: crate::domain::IdentityKind) -> i32 {
    use crate::domain::IdentityKind;
    (match k {
        IdentityKind::User => pb::IdentityKind::User,
        IdentityKind::ServiceAccount => pb::IdentityKind::ServiceAccount,
        IdentityKind::Pat => pb::IdentityKind::Pat,
        IdentityKind::Group => pb::IdentityKind::Group,
    }) as i32
}

pub(crate) fn pb_identity(i: crate::domain::Identity) -> pb::Identity {
    pb::Identity {
        id: i.id.to_string(),
        kind: pb_kind(i.kind),
    }
}

impl From<crate::domain::Assignment> for pb::Assignment {
    fn from(a: crate::domain::Assignment) -> Self {
        pb::Assignment {
            id: a.id.to_string(),
            role_id: a.role_id.to_string(),
            role_name: a.role_name,
            identity: Some(pb_identity(a.identity)),
            is_immutable: a.is_immutable,
            expire_time: a.expire_time.map(timestamp),
            reason: a.reason,
            tenant_id: a.tenant.to_string(),
            create_time: Some(timestamp(a.create_time)),
            update_time: Some(timestamp(a.update_time)),
            revision: a.revision.0,
            scope: a.scope.to_string(),
        }
    }
}

pub(crate) fn pb_status(s: crate::domain::ChangeRequestStatus) -> pb::ChangeRequestStatus {
    use crate::domain::ChangeRequestStatus as S;
    match s {
        S::Pending => pb::ChangeRequestStatus::Pending,
        S::Applied => pb::ChangeRequestStatus::Applied,
        S::Rejected => pb::ChangeRequestStatus::Rejected,
        S::Cancelled => pb::ChangeRequestStatus::Cancelled,
        S::Expired => pb::ChangeRequestStatus::Expired,
        S::Failed => pb::ChangeRequestStatus::Failed,
    }
}

pub(crate) fn domain_status(
    s: pb::ChangeRequestStatus,
) -> Option<crate::domain::ChangeRequestStatus> {
    use crate::domain::ChangeRequestStatus as S;
    Some(match s {
        pb::ChangeRequestStatus::Unspecified => return None,
        pb::ChangeRequestStatus::Pending => S::Pending,
        pb::ChangeRequestStatus::Applied => S::Applied,
        pb::ChangeRequestStatus::Rejected => S::Rejected,
        pb::ChangeRequestStatus::Cancelled => S::Cancelled,
        pb::ChangeRequestStatus::Expired => S::Expired,
        pb::ChangeRequestStatus::Failed => S::Failed,
    })
}

impl From<crate::domain::ChangeRequest> for pb::ChangeRequest {
    fn from(c: crate::domain::ChangeRequest) -> Self {
        pb::ChangeRequest {
            id: c.id.to_string(),
            kind: match c.kind {
                crate::domain::ChangeRequestKind::Assign => pb::ChangeRequestKind::Assign,
                crate::domain::ChangeRequestKind::Revoke => pb::ChangeRequestKind::Revoke,
                crate::domain::ChangeRequestKind::Change => pb::ChangeRequestKind::Change,
            } as i32,
            role: Some(pb::RoleSummary {
                id: c.role_id.to_string(),
                name: c.role_name,
            }),
            identity: c.identity.map(pb_identity),
            assignment_expire_time: c.assignment_expire_time.map(timestamp),
            assignment_id: c.assignment_id.map(|a| a.to_string()).unwrap_or_default(),
            reason: c.reason,
            requester: c.requester,
            status: pb_status(c.status) as i32,
            decided_by: c.decided_by,
            decision_comment: c.decision_comment,
            failure_reason: c.failure_reason,
            resulting_assignment_id: c
                .resulting_assignment_id
                .map(|a| a.to_string())
                .unwrap_or_default(),
            tenant_id: c.tenant.to_string(),
            create_time: Some(timestamp(c.create_time)),
            update_time: Some(timestamp(c.update_time)),
            expire_time: Some(timestamp(c.expire_time)),
            revision: c.revision.0,
            policy: Some(pb_approval_policy(c.policy)),
            proposed_change: c.proposed_change.map(|v| v.to_string()).unwrap_or_default(),
            scope: c.scope.to_string(),
            approvals: c
                .approvals
                .into_iter()
                .map(|a| pb::Approval {
                    approver: a.approver,
                    time: Some(timestamp(a.time)),
                    comment: a.comment,
                })
                .collect(),
        }
    }
}

impl From<crate::domain::Group> for pb::Group {
    fn from(g: crate::domain::Group) -> Self {
        pb::Group {
            id: g.id.to_string(),
            name: g.name,
            description: g.description,
            member_count: g.member_count,
            tenant_id: g.tenant.to_string(),
            create_time: Some(timestamp(g.create_time)),
            update_time: Some(timestamp(g.update_time)),
            revision: g.revision.0,
            impact: None,
        }
    }
}

/// JSON -> `google.protobuf.Struct` (objects only; anything else is wrapped as `{"value": …}`).
pub(crate) fn to_struct(value: serde_json::Value) -> prost_types::Struct {
    match value {
        serde_json::Value::Object(map) => prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        },
        other => prost_types::Struct {
            fields: [("value".to_owned(), to_value(other))]
                .into_iter()
                .collect(),
        },
    }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        obj @ serde_json::Value::Object(_) => Kind::StructValue(to_struct(obj)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Identity ids of a member batch: non-empty, valid, no duplicates.
pub(crate) fn member_batch(
    field: &str,
    ids: &[String],
) -> Result<Vec<crate::domain::IdentityId>, Error> {
    let mut problems = Problems::default();
    if ids.is_empty() {
        problems.push(field, "must list at least one identity");
    }
    if ids.len() > 1000 {
        problems.push(field, "must list at most 1000 identities");
    }
    let mut out: Vec<crate::domain::IdentityId> = Vec::with_capacity(ids.len());
    for (i, raw) in ids.iter().enumerate() {
        if let Some(id) = problems.take(crate::domain::IdentityId::parse(
            &format!("{field}[{i}]"),
            raw,
        )) {
            if out.contains(&id) {
                problems.push(&format!("{field}[{i}]"), "duplicates an earlier entry");
            } else {
                out.push(id);
            }
        }
    }
    problems.finish()?;
    Ok(out)
}

/// The shortest and longest time a policy may leave a request pending (whole seconds).
const POLICY_EXPIRY_RANGE: std::ops::RangeInclusive<i64> = 1..=365 * 24 * 3600;

/// An approval policy from the wire, every problem named under `field`.
pub(crate) fn approval_policy(
    field: &str,
    p: &pb::ApprovalPolicy,
) -> Result<crate::domain::ApprovalPolicy, Error> {
    use crate::domain::{ApprovalKind, GroupId, MAX_QUORUM};
    let mut problems = Problems::default();
    if p.quorum > MAX_QUORUM {
        problems.add(Error::invalid(
            format!("{field}.quorum"),
            format!("at most {MAX_QUORUM} approvers"),
        ));
    }
    let approver_permission = (!p.approver_permission.is_empty())
        .then(|| {
            problems.take(PermissionName::parse(
                &format!("{field}.approver_permission"),
                &p.approver_permission,
            ))
        })
        .flatten()
        .map(|name| name.as_str().to_owned());
    let approver_group = (!p.approver_group_id.is_empty())
        .then(|| {
            problems.take(GroupId::parse(
                &format!("{field}.approver_group_id"),
                &p.approver_group_id,
            ))
        })
        .flatten();
    let expire_after_seconds = match &p.expire_after {
        None => None,
        Some(d) if d.nanos == 0 && POLICY_EXPIRY_RANGE.contains(&d.seconds) => {
            u64::try_from(d.seconds).ok()
        }
        Some(_) => {
            problems.add(Error::invalid(
                format!("{field}.expire_after"),
                "whole seconds, from 1 second to 365 days",
            ));
            None
        }
    };
    let mut kinds = Vec::new();
    for (i, k) in p.kinds.iter().enumerate() {
        let kind = match pb::ApprovalKind::try_from(*k) {
            Ok(pb::ApprovalKind::Assign) => ApprovalKind::Assign,
            Ok(pb::ApprovalKind::Revoke) => ApprovalKind::Revoke,
            Ok(pb::ApprovalKind::Modify) => ApprovalKind::Modify,
            _ => {
                problems.add(Error::invalid(
                    format!("{field}.kinds[{i}]"),
                    "must be APPROVAL_KIND_ASSIGN, _REVOKE or _MODIFY",
                ));
                continue;
            }
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    problems.finish()?;
    Ok(crate::domain::ApprovalPolicy {
        quorum: p.quorum.max(1),
        approver_permission,
        approver_group,
        expire_after_seconds,
        kinds,
    })
}

pub(crate) fn pb_approval_policy(p: crate::domain::ApprovalPolicy) -> pb::ApprovalPolicy {
    use crate::domain::ApprovalKind;
    pb::ApprovalPolicy {
        quorum: p.quorum(),
        approver_permission: p.approver_permission.unwrap_or_default(),
        approver_group_id: p.approver_group.map(|g| g.to_string()).unwrap_or_default(),
        expire_after: p.expire_after_seconds.map(|s| prost_types::Duration {
            seconds: i64::try_from(s).unwrap_or(i64::MAX),
            nanos: 0,
        }),
        kinds: p
            .kinds
            .into_iter()
            .map(|k| match k {
                ApprovalKind::Assign => pb::ApprovalKind::Assign,
                ApprovalKind::Revoke => pb::ApprovalKind::Revoke,
                ApprovalKind::Modify => pb::ApprovalKind::Modify,
            } as i32)
            .collect(),
    }
}
