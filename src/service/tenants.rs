//! Tenants at run time (issue 11, item 4): callers of the platform tenant holding
//! `warden:tenants:*` create, read, list, disable and enable tenants. A tenant's creation is
//! one write in the new tenant's own revision sequence: its registry entry, Warden's catalogue
//! and its first admin's `warden:admin` assignment commit together, so its admin works the
//! moment the call returns (and on another replica as soon as that replica has the revision).
//! Disabling is a change in the tenant's log too: every replica's index then denies its Checks,
//! and the edge refuses its tokens.

use super::paging::page;
use super::snapshot;
use super::{Applied, Command, Outcome, PageRequest, Service, WriteOptions};
use crate::domain::builtin::perm;
use crate::domain::{
    AuditRecord, Caller, Delta, Error, IdentityId, Page, Reason, Revision, Tenant, TenantId,
};
use crate::store::WriteTx;

/// CreateTenant, validated.
#[derive(Debug, Clone)]
pub struct CreateTenant {
    pub tenant: TenantId,
    pub display_name: String,
    /// Gets `warden:admin` in the new tenant.
    pub admin: IdentityId,
}

/// DisableTenant / EnableTenant, validated.
#[derive(Debug, Clone)]
pub struct SetTenantDisabled {
    pub tenant: TenantId,
    pub disabled: bool,
}

impl Command for CreateTenant {
    type Output = Tenant;

    /// Authorized in the platform tenant by `Service::create_tenant`, not in the new one.
    fn permissions(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Tenant>, Error> {
        // A tenant that ever wrote (registered or only seen in tokens and data) has revisions.
        if tx.revision != Revision(1) || tx.find_own_tenant().await?.is_some() {
            return Err(Error::AlreadyExists {
                kind: "tenant",
                key: self.tenant.to_string(),
                existing_id: Some(self.tenant.to_string()),
            });
        }
        service
            .install_catalogue(tx, &[&self.admin], false, "first admin of a new tenant")
            .await?;
        let tenant = Tenant {
            id: self.tenant,
            display_name: self.display_name,
            disabled: false,
            created_by: caller.subject.to_string(),
            create_time: tx.now,
            update_time: tx.now,
            revision: tx.revision,
        };
        tx.insert_tenant(&tenant).await?;
        tx.audit(AuditRecord {
            target_kind: "tenant",
            target_id: tenant.id.to_string(),
            before: None,
            after: snapshot(&tenant),
            reason: String::new(),
        });
        Ok(Applied::new("tenant.created", tenant.id.clone(), tenant))
    }
}

impl Command for SetTenantDisabled {
    type Output = Tenant;

    /// Authorized in the platform tenant by `Service::set_tenant_disabled`.
    fn permissions(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        self,
        _service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Tenant>, Error> {
        let before = match tx.find_own_tenant().await? {
            Some(t) => Some(t),
            // Never written to: no such tenant.
            None if tx.revision == Revision(1) => {
                return Err(Error::not_found("tenant", self.tenant.to_string()));
            }
            // Known from its data only (older than the registry): registered now.
            None => None,
        };
        let after = Tenant {
            disabled: self.disabled,
            update_time: tx.now,
            revision: tx.revision,
            ..before.clone().unwrap_or_else(|| Tenant {
                id: self.tenant.clone(),
                display_name: self.tenant.to_string(),
                disabled: false,
                created_by: caller.subject.to_string(),
                create_time: tx.now,
                update_time: tx.now,
                revision: tx.revision,
            })
        };
        if before.is_some() {
            tx.update_tenant(&after).await?;
        } else {
            tx.insert_tenant(&after).await?;
        }
        tx.record(Delta::TenantState {
            disabled: self.disabled,
        });
        tx.audit(AuditRecord {
            target_kind: "tenant",
            target_id: after.id.to_string(),
            before: before.as_ref().and_then(snapshot),
            after: snapshot(&after),
            reason: String::new(),
        });
        let kind = if self.disabled {
            "tenant.disabled"
        } else {
            "tenant.enabled"
        };
        Ok(Applied::new(kind, after.id.clone(), after))
    }
}

impl Service {
    /// PERMISSION_DENIED unless `caller` is in the platform tenant and holds `permission` there.
    fn authorize_platform(&self, caller: &Caller, permission: &'static str) -> Result<(), Error> {
        if self.platform_tenant.as_ref() != Some(&caller.tenant) {
            self.record_denied(caller, "TenantService outside the platform tenant".into());
            return Err(Error::Forbidden {
                reason: Reason::PermissionDenied,
                message: "tenants are managed only by callers of the platform tenant \
                          (WARDEN_PLATFORM_TENANT)"
                    .into(),
            });
        }
        self.authorize(caller, permission)
    }

    /// The caller, acting on `tenant`: its writes go into that tenant's log and audit trail.
    fn acting_in(caller: &Caller, tenant: &TenantId) -> Caller {
        Caller {
            tenant: tenant.clone(),
            ..caller.clone()
        }
    }

    pub async fn create_tenant(
        &self,
        caller: &Caller,
        opts: WriteOptions,
        command: CreateTenant,
    ) -> Result<Outcome<Tenant>, Error> {
        self.authorize_platform(caller, perm::TENANTS_WRITE)?;
        let acting = Self::acting_in(caller, &command.tenant);
        self.write(&acting, opts, command).await
    }

    pub async fn set_tenant_disabled(
        &self,
        caller: &Caller,
        opts: WriteOptions,
        command: SetTenantDisabled,
    ) -> Result<Outcome<Tenant>, Error> {
        self.authorize_platform(caller, perm::TENANTS_WRITE)?;
        if self.platform_tenant.as_ref() == Some(&command.tenant) {
            return Err(Error::precondition(
                Reason::InvalidArgument,
                "the platform tenant cannot be disabled",
            ));
        }
        let acting = Self::acting_in(caller, &command.tenant);
        self.write(&acting, opts, command).await
    }

    pub async fn get_tenant(&self, caller: &Caller, id: &TenantId) -> Result<Tenant, Error> {
        self.authorize_platform(caller, perm::TENANTS_READ)?;
        self.store
            .find_tenant(id)
            .await?
            .ok_or_else(|| Error::not_found("tenant", id.to_string()))
    }

    pub async fn list_tenants(
        &self,
        caller: &Caller,
        paging: &PageRequest,
    ) -> Result<Page<Tenant>, Error> {
        self.authorize_platform(caller, perm::TENANTS_READ)?;
        let filters = self.bind_page(caller, "");
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self.store.list_tenants(&query).await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            |t| t.id.to_string(),
        ))
    }

    /// True when `tenant` is disabled on this replica (the edge refuses its tokens).
    pub fn tenant_disabled(&self, tenant: &TenantId) -> bool {
        self.engine.tenant_disabled(tenant)
    }
}
