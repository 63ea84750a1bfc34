//! Proto <-> domain conversions. Field problems are collected into INVALID_ARGUMENT.

use chrono::{DateTime, Utc};

use crate::domain::{Error, FieldProblem, Permission, PermissionId, PermissionName, Role, RoleId};
use crate::proto::pb;
use crate::store::{PermissionRef, Ref, RoleRef};

pub(crate) fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// Collects every field problem of one request before failing.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldProblem>);

impl Problems {
    pub(crate) fn take<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(Error::Invalid(mut p)) => {
                self.0.append(&mut p);
                None
            }
            Err(other) => {
                self.0.push(FieldProblem::new("request", other.to_string()));
                None
            }
        }
    }

    pub(crate) fn push(&mut self, field: &str, description: &str) {
        self.0.push(FieldProblem::new(field, description));
    }

    /// Ok when nothing was wrong.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::Invalid(self.0)) }
    }
}

pub(crate) fn permission_ref(field: &str, r: Option<&pb::PermissionRef>) -> Result<PermissionRef, Error> {
    match r.and_then(|r| r.r#ref.as_ref()) {
        Some(pb::permission_ref::Ref::Id(id)) => PermissionId::parse(&format!("{field}.id"), id).map(Ref::Id),
        Some(pb::permission_ref::Ref::Name(name)) => {
            PermissionName::parse(&format!("{field}.name"), name).map(|n| Ref::Name(n.into_string()))
        }
        None => Err(Error::invalid(field, "is required: give `id` or `name`")),
    }
}

pub(crate) fn role_ref(field: &str, r: Option<&pb::RoleRef>) -> Result<RoleRef, Error> {
    match r.and_then(|r| r.r#ref.as_ref()) {
        Some(pb::role_ref::Ref::Id(id)) => RoleId::parse(&format!("{field}.id"), id).map(Ref::Id),
        Some(pb::role_ref::Ref::Name(name)) => {
            crate::domain::RoleName::parse(&format!("{field}.name"), name).map(|n| Ref::Name(n.into_string()))
        }
        None => Err(Error::invalid(field, "is required: give `id` or `name`")),
    }
}

/// A batch of permission refs: non-empty, each valid, no entry twice.
pub(crate) fn permission_batch(field: &str, refs: &[pb::PermissionRef], allow_empty: bool) -> Result<Vec<PermissionRef>, Error> {
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
        }
    }
}

impl From<crate::domain::Impact> for pb::Impact {
    fn from(i: crate::domain::Impact) -> Self {
        pb::Impact {
            identities: i
                .identities
                .into_iter()
                .map(|x| pb::IdentityImpact { identity_id: x.identity.to_string(), gained: x.gained, lost: x.lost })
                .collect(),
        }
    }
}
