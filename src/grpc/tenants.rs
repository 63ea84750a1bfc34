//! TenantService handlers.

use tonic::{Request, Response, Status};

use super::caller;
use super::commands::write_options;
use super::convert::{AllValid as _, timestamp};
use crate::domain::names::parse_description;
use crate::domain::{Error, IdentityId, Tenant, TenantId};
use crate::proto::pb;
use crate::service::{CreateTenant, PageRequest, Service, SetTenantDisabled};

#[derive(Debug, Clone)]
pub struct TenantApi {
    pub(crate) service: Service,
}

fn tenant_id(raw: &str) -> Result<TenantId, Error> {
    TenantId::parse(raw).map_err(|_| {
        Error::invalid(
            "tenant_id",
            "must be 1-64 characters of letters, digits, '.', '_' or '-'",
        )
    })
}

impl From<Tenant> for pb::Tenant {
    fn from(t: Tenant) -> Self {
        pb::Tenant {
            id: t.id.to_string(),
            display_name: t.display_name,
            disabled: t.disabled,
            created_by: t.created_by,
            create_time: Some(timestamp(t.create_time)),
            update_time: Some(timestamp(t.update_time)),
            revision: t.revision.0,
        }
    }
}

impl TryFrom<pb::CreateTenantRequest> for CreateTenant {
    type Error = Error;

    fn try_from(req: pb::CreateTenantRequest) -> Result<Self, Error> {
        let (tenant, display_name, admin) = (
            tenant_id(&req.tenant_id),
            parse_description("display_name", &req.display_name),
            IdentityId::parse("admin_identity_id", &req.admin_identity_id),
        )
            .all_valid()?;
        Ok(Self {
            display_name: if display_name.is_empty() {
                tenant.to_string()
            } else {
                display_name
            },
            tenant,
            admin,
        })
    }
}

#[tonic::async_trait]
impl pb::tenant_service_server::TenantService for TenantApi {
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let caller = caller(&request)?;
        let options = write_options(&caller.rpc, &request)?;
        let command = CreateTenant::try_from(request.into_inner())?;
        let outcome = self
            .service
            .create_tenant(&caller, options, command)
            .await?;
        Ok(Response::new(outcome.value.into()))
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let caller = caller(&request)?;
        let id = tenant_id(&request.get_ref().tenant_id)?;
        Ok(Response::new(
            self.service.get_tenant(&caller, &id).await?.into(),
        ))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let paging = PageRequest {
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let page = self.service.list_tenants(&caller, &paging).await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn disable_tenant(
        &self,
        request: Request<pb::DisableTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        self.set_state(request, true).await
    }

    async fn enable_tenant(
        &self,
        request: Request<pb::EnableTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        self.set_state(request, false).await
    }
}

impl TenantApi {
    async fn set_state<R: TenantState>(
        &self,
        request: Request<R>,
        disabled: bool,
    ) -> Result<Response<pb::Tenant>, Status> {
        let caller = caller(&request)?;
        let options = write_options(&caller.rpc, &request)?;
        let command = SetTenantDisabled {
            tenant: tenant_id(request.get_ref().tenant_id())?,
            disabled,
        };
        let outcome = self
            .service
            .set_tenant_disabled(&caller, options, command)
            .await?;
        Ok(Response::new(outcome.value.into()))
    }
}

/// DisableTenant and EnableTenant take the same fields.
trait TenantState: super::commands::WriteRequest {
    fn tenant_id(&self) -> &str;
}

impl TenantState for pb::DisableTenantRequest {
    fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
}

impl TenantState for pb::EnableTenantRequest {
    fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
}
