//! Use-cases: the API's own authorization, the no-escalation rule, transactions and keeping the
//! index current. Knows the store and the engine, never tonic.

mod assignments;
mod audit;
mod authorization;
mod bootstrap;
mod catalogue;
mod change_requests;
mod configuration;
mod denials;
mod gate;
mod groups;
mod idempotency;
mod maintenance;
mod paging;
mod pipeline;
mod propagation;
mod proposals;
mod sync;
mod tenants;
mod watch;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::builtin::perm;
use crate::domain::{Caller, Change, Clock, Error, Impact, Revision, Scope, TenantId};
use crate::engine::Engine;
use crate::shutdown::Shutdown;
use crate::store::{Store, WriteTx};

pub use assignments::{
    AssignResult, AssignRole, BatchAssignRoles, BatchRevokeAssignments, MAX_BATCH_ITEMS,
    RevokeAssignment,
};
pub use audit::AuditFilter;
pub use authorization::CheckItem;
pub use bootstrap::BootstrapAdmin;
pub use catalogue::{
    AddPermissionsToRole, CreatePermission, CreateRole, DeletePermission, DeleteRole,
    RemovePermissionFromRole, RemovePermissionsFromRole, UpdatePermission, UpdateRole,
};
pub use change_requests::{ApproveChangeRequest, CancelChangeRequest, RejectChangeRequest};
pub use configuration::{ApplyConfiguration, ConfigurationApplied};
pub use groups::{AddGroupMembers, CreateGroup, DeleteGroup, RemoveGroupMembers};
pub use idempotency::{IDEMPOTENCY_WINDOW, IdempotencyKey};
pub use maintenance::Retention;
pub use paging::{PageRequest, page_token_key};
pub use pipeline::{Applied, Command};
pub use propagation::{Propagation, ReplicaIdentity};
pub use proposals::{ProposeChange, ProposedChange};
pub use sync::Sync;
pub use tenants::{CreateTenant, SetTenantDisabled};

/// A record as JSON for the audit trail's before/after.
fn snapshot<T: serde::Serialize>(value: &T) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

/// Options every mutating request carries.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Validate and compute the impact, change nothing.
    pub dry_run: bool,
    pub wait_for_propagation: bool,
    /// Rule 14: the request's idempotency key, if it sent one.
    pub idempotency: Option<IdempotencyKey>,
}

/// The result of a mutation that may take access away or grant it.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub value: T,
    pub revision: Revision,
    /// Set on dry runs.
    pub impact: Option<Impact>,
}

/// Every use-case, shared by all handlers.
#[derive(Debug, Clone)]
pub struct Service {
    store: Store,
    engine: Arc<Engine>,
    sync: Arc<Sync>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    replica: Arc<ReplicaIdentity>,
    /// Open streams end when draining starts.
    shutdown: Shutdown,
    /// Each tenant's queue of writes waiting for a group commit.
    writers: Arc<writer::Writers>,
    /// Rate limit of refused requests recorded per actor.
    denials: Arc<denials::DenialLimiter>,
    /// Whose callers manage tenants (TenantService); none: nobody.
    platform_tenant: Option<TenantId>,
}

/// The tunables the use-cases read.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long `at_least_revision` may wait for this replica to catch up.
    pub consistency_wait: Duration,
    /// How long a change request stays PENDING.
    pub approval_ttl: Duration,
    /// The longest `wait_for_propagation` waits.
    pub propagation_wait: Duration,
    /// Signs page tokens; the same on every replica (`paging::page_token_key`).
    pub page_token_key: [u8; 32],
}

impl Service {
    pub fn new(
        store: Store,
        engine: Arc<Engine>,
        sync: Arc<Sync>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        replica: ReplicaIdentity,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            store,
            engine,
            sync,
            clock,
            settings,
            replica: Arc::new(replica),
            shutdown,
            writers: Arc::default(),
            denials: Arc::default(),
            platform_tenant: None,
        }
    }

    /// Names the platform tenant, whose callers may use TenantService.
    #[must_use]
    pub fn with_platform_tenant(mut self, tenant: Option<TenantId>) -> Self {
        self.platform_tenant = tenant;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// PERMISSION_DENIED unless the caller holds `permission` in its own tenant right now.
    fn authorize(&self, caller: &Caller, permission: &'static str) -> Result<(), Error> {
        let missing = self.engine.missing(
            &caller.tenant,
            caller.subject.as_str(),
            &[permission],
            self.now(),
        );
        if missing.is_empty() {
            Ok(())
        } else {
            self.record_denied(caller, format!("lacks {permission}"));
            Err(Error::Denied {
                missing: vec![permission.to_owned()],
            })
        }
    }

    /// PERMISSION_DENIED unless the caller holds `permission` at `scope` (delegated
    /// administration: a grant at a scope covers writes at or under it).
    fn authorize_at(
        &self,
        caller: &Caller,
        permission: &'static str,
        scope: &Scope,
    ) -> Result<(), Error> {
        if scope.is_tenant() {
            return self.authorize(caller, permission);
        }
        let missing = self.engine.missing_at(
            &caller.tenant,
            caller.subject.as_str(),
            &[permission],
            scope.as_str(),
            self.now(),
        );
        if missing.is_empty() {
            Ok(())
        } else {
            self.record_denied(caller, format!("lacks {permission} on {scope}"));
            Err(Error::DeniedAt {
                missing: vec![permission.to_owned()],
                scope: scope.to_string(),
            })
        }
    }

    /// PERMISSION_DENIED unless the caller holds `permission` at some scope: the pipeline's
    /// first check of a scoped write, which then judges it where it applies (`authorize_at`).
    fn authorize_somewhere(&self, caller: &Caller, permission: &'static str) -> Result<(), Error> {
        if self.engine.holds_anywhere(
            &caller.tenant,
            caller.subject.as_str(),
            permission,
            self.now(),
        ) {
            Ok(())
        } else {
            self.record_denied(caller, format!("lacks {permission}"));
            Err(Error::Denied {
                missing: vec![permission.to_owned()],
            })
        }
    }

    /// No escalation (as in Kubernetes RBAC): granting a permission through a role needs the
    /// caller to hold it, unless it holds `warden:roles:escalate`.
    fn ensure_may_grant(&self, caller: &Caller, permissions: &[&str]) -> Result<(), Error> {
        self.ensure_may_grant_at(caller, permissions, &Scope::tenant())
    }

    /// No escalation judged at `scope`: the caller must hold each permission there (or
    /// `warden:roles:escalate` there).
    fn ensure_may_grant_at(
        &self,
        caller: &Caller,
        permissions: &[&str],
        scope: &Scope,
    ) -> Result<(), Error> {
        let now = self.now();
        let who = caller.subject.as_str();
        let at = scope.as_str();
        if self
            .engine
            .missing_at(&caller.tenant, who, &[perm::ROLES_ESCALATE], at, now)
            .is_empty()
        {
            return Ok(());
        }
        let mut missing: Vec<String> = self
            .engine
            .missing_at(&caller.tenant, who, permissions, at, now)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        missing.dedup();
        let whole = if scope.is_tenant() {
            String::new()
        } else {
            format!(" on {scope}")
        };
        self.record_denied(
            caller,
            format!(
                "would grant or take away what it lacks{whole}: {}",
                missing.join(", ")
            ),
        );
        if scope.is_tenant() {
            Err(Error::Denied { missing })
        } else {
            Err(Error::DeniedAt {
                missing,
                scope: scope.to_string(),
            })
        }
    }

    async fn begin(&self, caller: &Caller) -> Result<WriteTx, Error> {
        self.store.begin_write(caller, self.now()).await
    }

    /// Commits `tx` with its change-log entry and audit events and makes the change visible to
    /// this replica's index before returning; on a dry run, rolls back and reports the impact
    /// instead. Only `write` (and the expiry sweeper) call it.
    async fn finish<T: serde::Serialize>(
        &self,
        tx: WriteTx,
        opts: WriteOptions,
        kind: &str,
        target: &str,
        value: T,
    ) -> Result<Outcome<T>, Error> {
        if let Some(key) = &opts.idempotency
            && !opts.dry_run
        {
            self.remember(&tx, tx.rpc(), key, &value).await?;
        }
        if opts.dry_run {
            let impact = self.engine.impact(tx.tenant(), tx.deltas(), tx.now);
            let revision = self.engine.applied_revision(tx.tenant());
            drop(tx);
            return Ok(Outcome {
                value,
                revision,
                impact: Some(impact),
            });
        }
        let change: Change = tx.commit(kind, target).await?;
        self.sync.apply_own(&change).await?;
        if opts.wait_for_propagation {
            self.wait_for_propagation(
                &change.tenant,
                change.revision,
                self.settings.propagation_wait,
            )
            .await?;
        }
        Ok(Outcome {
            value,
            revision: change.revision,
            impact: None,
        })
    }
}
