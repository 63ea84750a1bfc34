//! ConfigurationService handlers: the document's wire form, validated with field paths.

use std::collections::HashSet;

use tonic::{Request, Response, Status};

use super::commands::write_options;
use super::convert::{approval_policy, from_timestamp, pb_approval_policy, pb_kind, timestamp};
use super::{caller, take_caller};
use crate::domain::configuration::{
    Configuration, ConfiguredAssignment, ConfiguredGroup, ConfiguredPermission, ConfiguredRole,
    Holder, PlanAction,
};
use crate::domain::names::{RESERVED_PREFIX, parse_description};
use crate::domain::{
    Error, FieldProblem, GroupName, IdentityId, IdentityKind, PermissionName, RoleName, Scope,
};
use crate::proto::pb;
use crate::service::{ApplyConfiguration, Service};

/// The most objects one document may hold, all kinds together.
const MAX_OBJECTS: usize = 20_000;

#[derive(Debug, Clone)]
pub struct ConfigurationApi {
    pub(crate) service: Service,
}

/// Collects every problem of a document, so one answer names them all (up to a bound).
#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn take<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(Error::Invalid(problems)) => {
                self.0.extend(problems);
                None
            }
            Err(other) => {
                self.0.push(FieldProblem::new("", other.to_string()));
                None
            }
        }
    }

    fn add(&mut self, field: String, description: &str) {
        self.0.push(FieldProblem::new(field, description));
    }
}

fn kind_of(field: &str, raw: i32) -> Result<IdentityKind, Error> {
    match pb::IdentityKind::try_from(raw) {
        Ok(pb::IdentityKind::User) => Ok(IdentityKind::User),
        Ok(pb::IdentityKind::ServiceAccount) => Ok(IdentityKind::ServiceAccount),
        Ok(pb::IdentityKind::Pat) => Ok(IdentityKind::Pat),
        Ok(pb::IdentityKind::Group) => Err(Error::invalid(
            field,
            "a group holder is named by `group`, not by identity_id",
        )),
        Ok(pb::IdentityKind::Unspecified) => Err(Error::invalid(
            field,
            "is required with identity_id: IDENTITY_KIND_USER, IDENTITY_KIND_SERVICE_ACCOUNT or IDENTITY_KIND_PAT",
        )),
        Err(_) => Err(Error::invalid(field, "is not a known identity kind")),
    }
}

/// The document, validated: names well formed and unique per kind, no `warden:` objects
/// (Warden's own catalogue is not configured), each assignment naming exactly one holder.
fn configuration(doc: pb::Configuration) -> Result<Configuration, Error> {
    let count = doc.permissions.len() + doc.roles.len() + doc.groups.len() + doc.assignments.len();
    if count > MAX_OBJECTS {
        return Err(Error::invalid(
            "configuration",
            format!("at most {MAX_OBJECTS} objects"),
        ));
    }
    let mut problems = Problems::default();
    let mut out = Configuration::default();
    let reserved = "names starting with 'warden:' are Warden's own and are not configured";
    let mut seen = HashSet::new();
    for (i, p) in doc.permissions.into_iter().enumerate() {
        let field = format!("configuration.permissions[{i}]");
        let name = problems.take(PermissionName::parse(&format!("{field}.name"), &p.name));
        let description = problems.take(parse_description(
            &format!("{field}.description"),
            &p.description,
        ));
        if p.name.starts_with(RESERVED_PREFIX) {
            problems.add(format!("{field}.name"), reserved);
        } else if !seen.insert(p.name.clone()) {
            problems.add(format!("{field}.name"), "is listed twice");
        }
        if let (Some(name), Some(description)) = (name, description) {
            out.permissions
                .push(ConfiguredPermission { name, description });
        }
    }
    seen.clear();
    for (i, r) in doc.roles.into_iter().enumerate() {
        let field = format!("configuration.roles[{i}]");
        let name = problems.take(RoleName::parse(&format!("{field}.name"), &r.name));
        let description = problems.take(parse_description(
            &format!("{field}.description"),
            &r.description,
        ));
        let policy = match &r.approval_policy {
            Some(p) => problems
                .take(approval_policy(&format!("{field}.approval_policy"), p))
                .map(Some),
            None => Some(None),
        };
        if r.name.starts_with(RESERVED_PREFIX) {
            problems.add(format!("{field}.name"), reserved);
        } else if !seen.insert(r.name.clone()) {
            problems.add(format!("{field}.name"), "is listed twice");
        }
        for (j, p) in r.permissions.iter().enumerate() {
            problems.take(PermissionName::parse(
                &format!("{field}.permissions[{j}]"),
                p,
            ));
        }
        for (j, inc) in r.included_roles.iter().enumerate() {
            problems.take(RoleName::parse(
                &format!("{field}.included_roles[{j}]"),
                inc,
            ));
        }
        if let (Some(name), Some(description), Some(policy)) = (name, description, policy) {
            let mut permissions = r.permissions;
            permissions.sort();
            permissions.dedup();
            let mut included_roles = r.included_roles;
            included_roles.sort();
            included_roles.dedup();
            out.roles.push(ConfiguredRole {
                name,
                description,
                permissions,
                included_roles,
                requires_approval: r.requires_approval || policy.is_some(),
                approval_policy: policy,
                protected: r.protected,
            });
        }
    }
    seen.clear();
    for (i, g) in doc.groups.into_iter().enumerate() {
        let field = format!("configuration.groups[{i}]");
        let name = problems.take(GroupName::parse(&format!("{field}.name"), &g.name));
        let description = problems.take(parse_description(
            &format!("{field}.description"),
            &g.description,
        ));
        if !seen.insert(g.name.clone()) {
            problems.add(format!("{field}.name"), "is listed twice");
        }
        let mut members = Vec::with_capacity(g.members.len());
        for (j, m) in g.members.iter().enumerate() {
            if let Some(id) = problems.take(IdentityId::parse(&format!("{field}.members[{j}]"), m))
            {
                members.push(id);
            }
        }
        members.sort();
        members.dedup();
        if let (Some(name), Some(description)) = (name, description) {
            out.groups.push(ConfiguredGroup {
                name,
                description,
                members,
            });
        }
    }
    let mut keys = HashSet::new();
    for (i, a) in doc.assignments.into_iter().enumerate() {
        let field = format!("configuration.assignments[{i}]");
        // System roles (`warden:admin`) may be assigned, though not configured.
        let role = problems.take(RoleName::parse(&format!("{field}.role"), &a.role));
        let scope = problems.take(Scope::parse(&format!("{field}.scope"), &a.scope));
        let holder = match (a.identity_id.is_empty(), a.group.is_empty()) {
            (false, true) => {
                let id = problems.take(IdentityId::parse(
                    &format!("{field}.identity_id"),
                    &a.identity_id,
                ));
                let kind =
                    problems.take(kind_of(&format!("{field}.identity_kind"), a.identity_kind));
                id.zip(kind).map(|(id, kind)| Holder::Identity { id, kind })
            }
            (true, false) => problems
                .take(GroupName::parse(&format!("{field}.group"), &a.group))
                .map(|g| Holder::Group(g.as_str().to_owned())),
            _ => {
                problems.add(
                    format!("{field}.identity_id"),
                    "set exactly one of identity_id and group",
                );
                None
            }
        };
        let expire_time = match &a.expire_time {
            Some(t) => problems
                .take(from_timestamp(&format!("{field}.expire_time"), t))
                .map(Some),
            None => Some(None),
        };
        let reason = problems.take(parse_description(&format!("{field}.reason"), &a.reason));
        if let (Some(_), Some(scope), Some(holder), Some(expire_time), Some(reason)) =
            (role, scope, holder, expire_time, reason)
        {
            let assignment = ConfiguredAssignment {
                role: a.role,
                holder,
                scope,
                expire_time,
                reason,
            };
            if !keys.insert(assignment.key()) {
                problems.add(
                    field.clone(),
                    "the same role, holder and scope is listed twice",
                );
            }
            out.assignments.push(assignment);
        }
    }
    if problems.0.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(problems.0))
    }
}

fn pb_configuration(doc: Configuration) -> pb::Configuration {
    pb::Configuration {
        permissions: doc
            .permissions
            .into_iter()
            .map(|p| pb::ConfiguredPermission {
                name: p.name.into_string(),
                description: p.description,
            })
            .collect(),
        roles: doc
            .roles
            .into_iter()
            .map(|r| pb::ConfiguredRole {
                name: r.name.into_string(),
                description: r.description,
                permissions: r.permissions,
                included_roles: r.included_roles,
                requires_approval: r.requires_approval,
                approval_policy: r.approval_policy.map(pb_approval_policy),
                protected: r.protected,
            })
            .collect(),
        groups: doc
            .groups
            .into_iter()
            .map(|g| pb::ConfiguredGroup {
                name: g.name.into_string(),
                description: g.description,
                members: g.members.into_iter().map(|m| m.to_string()).collect(),
            })
            .collect(),
        assignments: doc
            .assignments
            .into_iter()
            .map(|a| {
                let (identity_id, identity_kind, group) = match a.holder {
                    Holder::Identity { id, kind } => (id.to_string(), pb_kind(kind), String::new()),
                    Holder::Group(name) => (String::new(), 0, name),
                };
                pb::ConfiguredAssignment {
                    role: a.role,
                    identity_id,
                    identity_kind,
                    group,
                    scope: a.scope.to_string(),
                    expire_time: a.expire_time.map(timestamp),
                    reason: a.reason,
                }
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::configuration_service_server::ConfigurationService for ConfigurationApi {
    async fn apply_configuration(
        &self,
        mut request: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        let caller = take_caller(&mut request)?;
        let opts = write_options("ApplyConfiguration", &request)?;
        let req = request.into_inner();
        let doc = configuration(req.configuration.unwrap_or_default())?;
        let outcome = self
            .service
            .apply_configuration(
                &caller,
                opts,
                ApplyConfiguration {
                    configuration: doc,
                    prune: req.prune,
                },
            )
            .await?;
        let changed = !outcome.value.plan.is_empty();
        Ok(Response::new(pb::ApplyConfigurationResponse {
            plan: outcome
                .value
                .plan
                .into_iter()
                .map(|s| pb::PlanStep {
                    action: match s.action {
                        PlanAction::Create => pb::PlanAction::Create,
                        PlanAction::Update => pb::PlanAction::Update,
                        PlanAction::Delete => pb::PlanAction::Delete,
                    } as i32,
                    kind: s.kind,
                    name: s.name,
                    detail: s.detail,
                })
                .collect(),
            revision: outcome.revision.0,
            impact: outcome.impact.map(Into::into),
            change_requests: outcome
                .value
                .change_requests
                .into_iter()
                .map(Into::into)
                .collect(),
            changed,
        }))
    }

    async fn export_configuration(
        &self,
        request: Request<pb::ExportConfigurationRequest>,
    ) -> Result<Response<pb::Configuration>, Status> {
        let caller = caller(&request)?;
        let (doc, _) = self.service.export_configuration(&caller).await?;
        Ok(Response::new(pb_configuration(doc)))
    }
}
