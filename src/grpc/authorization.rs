//! AuthorizationService handlers: Check and BatchCheck go straight to the index.

use tonic::{Request, Response, Status};

use super::convert::Problems;
use super::{caller, take_caller};
use crate::domain::{Error, IdentityId, PermissionName, Revision, Scope};
use crate::engine::{Decision, GrantPath};
use crate::proto::pb;
use crate::service::{CheckItem, PageRequest, Service};

/// The most items one BatchCheck may carry.
const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct AuthorizationApi {
    pub(crate) service: Service,
}

pub(super) fn check_item(prefix: &str, req: &pb::CheckRequest) -> Result<CheckItem, Error> {
    // Field names are only built when there is a prefix (the single Check is the hot path).
    let field = |name: &'static str| {
        if prefix.is_empty() {
            std::borrow::Cow::Borrowed(name)
        } else {
            std::borrow::Cow::Owned(format!("{prefix}{name}"))
        }
    };
    let mut problems = Problems::default();
    let identity = problems.take(IdentityId::parse(&field("identity_id"), &req.identity_id));
    let permission = problems.take(PermissionName::parse(&field("permission"), &req.permission));
    let resource = problems.take(Scope::parse(&field("resource"), &req.resource));
    problems.finish()?;
    match (identity, permission, resource) {
        (Some(identity), Some(permission), Some(resource)) => Ok(CheckItem {
            identity,
            permission,
            resource,
            at_least_revision: Revision(req.at_least_revision),
            explain: req.explain,
        }),
        _ => Err(Error::invalid(prefix, "is invalid")),
    }
}

fn grant(g: GrantPath) -> pb::Grant {
    pb::Grant {
        assignment_id: g.assignment.to_string(),
        role: Some(pb::RoleSummary {
            id: g.role.to_string(),
            name: g.role_name,
        }),
        group_id: g.group.map(|id| id.to_string()).unwrap_or_default(),
        scope: g.scope.to_string(),
        inclusion_path: g.inclusion.into_iter().map(summary).collect(),
    }
}

fn summary(r: crate::domain::RoleSummary) -> pb::RoleSummary {
    pb::RoleSummary {
        id: r.id.to_string(),
        name: r.name,
    }
}

/// Counts one decision in `warden_check_decisions_total`. The three handles are registered once
/// (after the recorder is installed at start-up), not looked up per Check.
pub(super) fn count(d: &Decision) {
    static DECISIONS: std::sync::OnceLock<[metrics::Counter; 3]> = std::sync::OnceLock::new();
    let [allowed, unknown, denied] = DECISIONS.get_or_init(|| {
        ["allowed", "unknown_permission", "denied"].map(
            |result| metrics::counter!(crate::metric_names::CHECK_DECISIONS, "result" => result),
        )
    });
    let counter = if d.allowed {
        allowed
    } else if d.unknown_permission {
        unknown
    } else {
        denied
    };
    counter.increment(1);
}

pub(super) fn response(d: Decision, revision: Revision) -> pb::CheckResponse {
    let reason = if d.allowed {
        pb::CheckReason::Granted
    } else if d.unknown_permission {
        pb::CheckReason::UnknownPermission
    } else {
        pb::CheckReason::NoGrant
    };
    pb::CheckResponse {
        allowed: d.allowed,
        revision: revision.0,
        reason: reason as i32,
        grants: d.grants.into_iter().map(grant).collect(),
        granting_roles: d
            .granting_roles
            .into_iter()
            .map(|(id, name)| pb::RoleSummary {
                id: id.to_string(),
                name,
            })
            .collect(),
        expired_grants: d.expired.into_iter().map(grant).collect(),
        pending_change_request_ids: d.pending.into_iter().map(|id| id.to_string()).collect(),
        held_elsewhere: d.elsewhere.into_iter().map(grant).collect(),
    }
}

#[tonic::async_trait]
impl pb::authorization_service_server::AuthorizationService for AuthorizationApi {
    async fn check(
        &self,
        mut request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        let caller = take_caller(&mut request)?;
        let item = check_item("", request.get_ref())?;
        let (decision, revision) = self.service.check(&caller, &item).await?;
        count(&decision);
        Ok(Response::new(response(decision, revision)))
    }

    async fn batch_check(
        &self,
        mut request: Request<pb::BatchCheckRequest>,
    ) -> Result<Response<pb::BatchCheckResponse>, Status> {
        let caller = take_caller(&mut request)?;
        let req = request.into_inner();
        if req.items.is_empty() || req.items.len() > MAX_BATCH {
            return Err(Error::invalid("items", "must hold 1 to 1000 checks").into());
        }
        let items = req
            .items
            .iter()
            .enumerate()
            // Field names are only built for an item that is wrong (the batch is a hot path).
            .map(|(i, item)| {
                check_item("", item).or_else(|_| check_item(&format!("items[{i}]."), item))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (decisions, revision) = self.service.batch_check(&caller, &items).await?;
        decisions.iter().for_each(count);
        Ok(Response::new(pb::BatchCheckResponse {
            results: decisions
                .into_iter()
                .map(|d| response(d, revision))
                .collect(),
        }))
    }

    async fn list_effective_permissions(
        &self,
        request: Request<pb::ListEffectivePermissionsRequest>,
    ) -> Result<Response<pb::ListEffectivePermissionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let identity = problems.take(IdentityId::parse("identity_id", &req.identity_id));
        let resource = problems.take(Scope::parse("resource", &req.resource));
        problems.finish()?;
        let (Some(identity), Some(resource)) = (identity, resource) else {
            return Err(Error::invalid("", "is invalid").into());
        };
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let (page, revision) = self
            .service
            .list_effective_permissions(
                &caller,
                &identity,
                &resource,
                Revision(req.at_least_revision),
                &paging,
            )
            .await?;
        Ok(Response::new(pb::ListEffectivePermissionsResponse {
            permissions: page
                .items
                .into_iter()
                .map(|(name, roles)| pb::EffectivePermission {
                    name,
                    roles: roles
                        .into_iter()
                        .map(|(id, name)| pb::RoleSummary {
                            id: id.to_string(),
                            name,
                        })
                        .collect(),
                })
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
            revision: revision.0,
        }))
    }

    async fn list_permission_holders(
        &self,
        request: Request<pb::ListPermissionHoldersRequest>,
    ) -> Result<Response<pb::ListPermissionHoldersResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let permission = problems.take(PermissionName::parse("permission", &req.permission));
        let resource = problems.take(Scope::parse("resource", &req.resource));
        problems.finish()?;
        let (Some(permission), Some(resource)) = (permission, resource) else {
            return Err(Error::invalid("", "is invalid").into());
        };
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let (page, revision) = self
            .service
            .list_permission_holders(
                &caller,
                &permission,
                &resource,
                Revision(req.at_least_revision),
                &paging,
            )
            .await?;
        Ok(Response::new(pb::ListPermissionHoldersResponse {
            identities: page
                .items
                .into_iter()
                .map(|h| pb::PermissionHolder {
                    identity: Some(super::convert::pb_identity(crate::domain::Identity {
                        id: h.identity,
                        kind: h.kind,
                    })),
                    role: Some(pb::RoleSummary {
                        id: h.role.to_string(),
                        name: h.role_name,
                    }),
                    group_id: h.group.map(|g| g.to_string()).unwrap_or_default(),
                    scope: h.scope.to_string(),
                })
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
            revision: revision.0,
        }))
    }

    async fn list_granted_scopes(
        &self,
        request: Request<pb::ListGrantedScopesRequest>,
    ) -> Result<Response<pb::ListGrantedScopesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut problems = Problems::default();
        let identity = problems.take(IdentityId::parse("identity_id", &req.identity_id));
        let permission = problems.take(PermissionName::parse("permission", &req.permission));
        let under = problems.take(Scope::parse("under", &req.under));
        problems.finish()?;
        let (Some(identity), Some(permission), Some(under)) = (identity, permission, under) else {
            return Err(Error::invalid("", "is invalid").into());
        };
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let (page, revision) = self
            .service
            .list_granted_scopes(
                &caller,
                &identity,
                &permission,
                &under,
                Revision(req.at_least_revision),
                &paging,
            )
            .await?;
        Ok(Response::new(pb::ListGrantedScopesResponse {
            scopes: page.items,
            next_page_token: page.next_page_token.unwrap_or_default(),
            revision: revision.0,
        }))
    }

    async fn get_propagation(
        &self,
        request: Request<pb::GetPropagationRequest>,
    ) -> Result<Response<pb::GetPropagationResponse>, Status> {
        let caller = caller(&request)?;
        let state = self
            .service
            .get_propagation(&caller, Revision(request.get_ref().revision))
            .await?;
        Ok(Response::new(pb::GetPropagationResponse {
            revision: state.revision.0,
            replicas_applied: state.applied,
            replicas_total: state.total,
            lagging: state
                .lagging
                .into_iter()
                .map(|r| pb::LaggingReplica {
                    replica_id: r.id,
                    applied_revision: r.applied.0,
                })
                .collect(),
        }))
    }
}
