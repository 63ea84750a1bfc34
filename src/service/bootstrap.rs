//! Start-up bootstrap: each configured admin's tenant gets Warden's own catalogue (the
//! `warden:*` permissions and the system roles), and the admin an immutable `warden:admin`.

use std::collections::BTreeMap;

use super::Service;
use crate::domain::{
    Assignment, AssignmentId, AuditRecord, Caller, Delta, Error, Identity, IdentityId,
    IdentityKind, Permission, PermissionId, Ref, Role, RoleId, RoleRecord, Scope, Tenant, TenantId,
    builtin,
};
use crate::store::WriteTx;

/// One `WARDEN_BOOTSTRAP_ADMINS` entry: `subject` or `tenant/subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapAdmin {
    pub tenant: TenantId,
    pub subject: IdentityId,
}

impl BootstrapAdmin {
    pub fn parse(raw: &str, default_tenant: &TenantId) -> Result<Self, Error> {
        let (tenant, subject) = match raw.split_once('/') {
            Some((t, s)) => (TenantId::parse(t)?, s),
            None => (default_tenant.clone(), raw),
        };
        Ok(Self {
            tenant,
            subject: IdentityId::parse("bootstrap_admins", subject)?,
        })
    }
}

/// The subject recorded as the actor of bootstrap changes.
const SYSTEM_ACTOR: &str = "warden:system";

impl Service {
    /// Idempotent: changes nothing (and takes no revision) when everything is in place.
    pub async fn bootstrap(&self, admins: &[BootstrapAdmin]) -> Result<(), Error> {
        let mut by_tenant: BTreeMap<&TenantId, Vec<&IdentityId>> = BTreeMap::new();
        for admin in admins {
            by_tenant
                .entry(&admin.tenant)
                .or_default()
                .push(&admin.subject);
        }
        for (tenant, subjects) in by_tenant {
            // Two replicas starting together may race; the loser retries and finds it done.
            let mut attempt = 0;
            loop {
                match self.bootstrap_tenant(tenant, &subjects).await {
                    Err(Error::Aborted { .. } | Error::AlreadyExists { .. }) if attempt < 3 => {
                        attempt += 1
                    }
                    other => break other?,
                }
            }
        }
        Ok(())
    }

    async fn bootstrap_tenant(
        &self,
        tenant: &TenantId,
        subjects: &[&IdentityId],
    ) -> Result<(), Error> {
        let caller = Caller {
            subject: IdentityId::parse("actor", SYSTEM_ACTOR)?,
            tenant: tenant.clone(),
            request_id: format!("bootstrap-{}", uuid::Uuid::now_v7()),
            rpc: "bootstrap".into(),
            trace_id: String::new(),
        };
        let mut tx = self.begin(&caller).await?;
        self.install_catalogue(&mut tx, subjects, true, "bootstrap admin")
            .await?;
        let registering = tx.find_own_tenant().await?.is_none();
        if registering {
            let t = Tenant {
                id: tenant.clone(),
                display_name: tenant.to_string(),
                disabled: false,
                created_by: SYSTEM_ACTOR.to_owned(),
                create_time: tx.now,
                update_time: tx.now,
                revision: tx.revision,
            };
            tx.insert_tenant(&t).await?;
            tx.audit(AuditRecord {
                target_kind: "tenant",
                target_id: t.id.to_string(),
                before: None,
                after: serde_json::to_value(&t).ok(),
                reason: "bootstrap".into(),
            });
        }
        if tx.deltas().is_empty() && !registering {
            return Ok(()); // nothing to do: roll back, no revision used
        }
        let change = tx.commit("bootstrap", tenant.as_str()).await?;
        self.sync.apply_own(&change).await
    }

    /// Puts Warden's own catalogue into `tx`'s tenant (what is missing of it: the `warden:*`
    /// permissions, the system roles, and permissions added to a system role by a newer release)
    /// and `warden:admin` for each of `admins` that lacks it.
    pub(super) async fn install_catalogue(
        &self,
        tx: &mut WriteTx,
        admins: &[&IdentityId],
        immutable: bool,
        reason: &str,
    ) -> Result<(), Error> {
        let tenant = tx.tenant().clone();
        let mut permission_ids = BTreeMap::new();
        for (name, description) in builtin::PERMISSIONS {
            let id = match tx.find_permission(&Ref::Name(name.to_owned())).await? {
                Some(p) => p.id,
                None => {
                    let p = Permission {
                        id: PermissionId::new(),
                        tenant: tenant.clone(),
                        name: name.to_owned(),
                        description: description.to_owned(),
                        is_system: true,
                        create_time: tx.now,
                        update_time: tx.now,
                        revision: tx.revision,
                    };
                    tx.insert_permission(&p).await?;
                    tx.record(Delta::PermissionPut {
                        id: p.id,
                        name: p.name.clone(),
                    });
                    tx.audit(AuditRecord {
                        target_kind: "permission",
                        target_id: p.id.to_string(),
                        before: None,
                        after: serde_json::to_value(&p).ok(),
                        reason: "bootstrap".into(),
                    });
                    p.id
                }
            };
            permission_ids.insert(name, id);
        }
        let mut admin_role = None;
        for system in builtin::ROLES {
            let role = match tx.find_role(&Ref::Name(system.name.to_owned())).await? {
                // A newer release may grant a system role more: link what it lacks.
                Some(mut role)
                    if system
                        .permissions
                        .iter()
                        .any(|p| !role.permissions.iter().any(|have| have == p)) =>
                {
                    let missing: Vec<PermissionId> = system
                        .permissions
                        .iter()
                        .filter(|p| !role.permissions.iter().any(|have| have == *p))
                        .map(|p| permission_ids[p])
                        .collect();
                    tx.link_permissions(role.id, &missing).await?;
                    role.permissions = system.permissions.iter().map(|p| (*p).to_owned()).collect();
                    role.permissions.sort();
                    let ids = tx.role_permission_ids(role.id).await?;
                    tx.record(Delta::RolePut {
                        id: role.id,
                        name: role.name.clone(),
                        permissions: ids,
                        record: Some(RoleRecord::of(&role)),
                        included: role.included_roles.iter().map(|r| r.id).collect(),
                    });
                    role
                }
                Some(role) => role,
                None => {
                    let ids: Vec<PermissionId> = system
                        .permissions
                        .iter()
                        .map(|p| permission_ids[p])
                        .collect();
                    let mut names: Vec<String> =
                        system.permissions.iter().map(|p| (*p).to_owned()).collect();
                    names.sort();
                    let role = Role {
                        id: RoleId::new(),
                        tenant: tenant.clone(),
                        name: system.name.to_owned(),
                        description: system.description.to_owned(),
                        is_system: true,
                        requires_approval: false,
                        approval_policy: None,
                        protected: false,
                        permissions: names,
                        included_roles: Vec::new(),
                        create_time: tx.now,
                        update_time: tx.now,
                        revision: tx.revision,
                    };
                    tx.insert_role(&role, &ids).await?;
                    tx.record(Delta::RolePut {
                        id: role.id,
                        name: role.name.clone(),
                        permissions: ids,
                        record: Some(RoleRecord::of(&role)),
                        included: role.included_roles.iter().map(|r| r.id).collect(),
                    });
                    tx.audit(AuditRecord {
                        target_kind: "role",
                        target_id: role.id.to_string(),
                        before: None,
                        after: serde_json::to_value(&role).ok(),
                        reason: "bootstrap".into(),
                    });
                    role
                }
            };
            if system.name == builtin::ADMIN_ROLE {
                admin_role = Some(role);
            }
        }
        let admin_role =
            admin_role.ok_or_else(|| Error::Internal(anyhow::anyhow!("no admin system role")))?;
        for subject in admins {
            if tx
                .find_assignment_of(admin_role.id, subject, &Scope::tenant())
                .await?
                .is_some()
            {
                continue;
            }
            let a = Assignment {
                id: AssignmentId::new(),
                tenant: tenant.clone(),
                role_id: admin_role.id,
                role_name: admin_role.name.clone(),
                identity: Identity {
                    id: (*subject).clone(),
                    kind: IdentityKind::User,
                },
                scope: Scope::tenant(),
                is_immutable: immutable,
                expire_time: None,
                reason: reason.into(),
                create_time: tx.now,
                update_time: tx.now,
                revision: tx.revision,
            };
            tx.insert_assignment(&a).await?;
            tx.record(Delta::AssignmentPut {
                id: a.id,
                role: a.role_id,
                identity: a.identity.id.clone(),
                kind: a.identity.kind,
                expire_time: None,
                scope: Scope::tenant(),
            });
            tx.audit(AuditRecord {
                target_kind: "assignment",
                target_id: a.id.to_string(),
                before: None,
                after: serde_json::to_value(&a).ok(),
                reason: "bootstrap".into(),
            });
        }
        Ok(())
    }
}
