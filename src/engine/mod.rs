//! The in-memory authorization index and the decisions made from it. Never touches the database:
//! it is fed committed changes, in revision order, by `service::sync`.

mod index;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::domain::{
    Change, Delta, IdentityId, IdentityImpact, Impact, Revision, RoleId, TenantId,
};

pub use index::{Decision, GrantPath, Holder, TenantIndex};

/// How big the index is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub tenants: usize,
    pub assignments: usize,
}

/// Every tenant's index plus the revision applied so far.
#[derive(Debug)]
pub struct Engine {
    tenants: RwLock<HashMap<TenantId, Arc<RwLock<TenantIndex>>>>,
    applied: watch::Sender<Revision>,
}

impl Engine {
    /// An index built from a snapshot taken at `revision`.
    pub fn from_snapshot(revision: Revision, tenants: Vec<(TenantId, Vec<Delta>)>) -> Self {
        let mut map = HashMap::with_capacity(tenants.len());
        for (tenant, deltas) in tenants {
            let mut index = TenantIndex::default();
            for delta in &deltas {
                index.apply(delta);
            }
            index.shrink_to_fit();
            map.insert(tenant, Arc::new(RwLock::new(index)));
        }
        Self {
            tenants: RwLock::new(map),
            applied: watch::Sender::new(revision),
        }
    }

    /// The revision every answer currently includes.
    pub fn applied_revision(&self) -> Revision {
        *self.applied.borrow()
    }

    /// Index sizes, for metrics. Takes each tenant's read lock briefly.
    pub fn stats(&self) -> IndexStats {
        let tenants = self.tenants.read();
        IndexStats {
            tenants: tenants.len(),
            assignments: tenants.values().map(|i| i.read().assignment_count()).sum(),
        }
    }

    /// Applies one committed change. The caller guarantees revision order (see `service::sync`).
    pub fn apply(&self, change: &Change) {
        if !change.deltas.is_empty() {
            let index = self.tenant_or_insert(&change.tenant);
            let mut index = index.write();
            for delta in &change.deltas {
                index.apply(delta);
            }
        }
        self.applied.send_if_modified(|applied| {
            let newer = change.revision > *applied;
            if newer {
                *applied = change.revision;
            }
            newer
        });
    }

    /// A receiver that wakes whenever the applied revision moves.
    pub fn subscribe(&self) -> watch::Receiver<Revision> {
        self.applied.subscribe()
    }

    /// Waits until `revision` is applied; false when `timeout` passes first.
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn tenant(&self, tenant: &TenantId) -> Option<Arc<RwLock<TenantIndex>>> {
        self.tenants.read().get(tenant).cloned()
    }

    fn tenant_or_insert(&self, tenant: &TenantId) -> Arc<RwLock<TenantIndex>> {
        if let Some(index) = self.tenant(tenant) {
            return index;
        }
        self.tenants
            .write()
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    /// Decides one permission for one identity; the `Check` hot path.
    pub fn check(
        &self,
        tenant: &TenantId,
        identity: &str,
        permission: &str,
        now: DateTime<Utc>,
        explain: bool,
    ) -> Decision {
        match self.tenant(tenant) {
            Some(index) => index.read().check(identity, permission, now, explain),
            None => Decision {
                unknown_permission: true,
                ..Decision::default()
            },
        }
    }

    /// `check`, asked by `asker`, who must itself hold `asker_needs` (if any) in the tenant: both
    /// decided under one lookup and one read lock, so from one state of the index. `None` when
    /// the asker lacks it.
    #[allow(clippy::too_many_arguments)]
    pub fn check_asked_by(
        &self,
        tenant: &TenantId,
        asker: &str,
        asker_needs: Option<&str>,
        identity: &str,
        permission: &str,
        now: DateTime<Utc>,
        explain: bool,
    ) -> Option<Decision> {
        let Some(index) = self.tenant(tenant) else {
            return asker_needs.is_none().then(|| Decision {
                unknown_permission: true,
                ..Decision::default()
            });
        };
        let index = index.read();
        if let Some(needed) = asker_needs
            && !index.check(asker, needed, now, false).allowed
        {
            return None;
        }
        Some(index.check(identity, permission, now, explain))
    }

    /// Many decisions in one tenant under one lock, in order (BatchCheck).
    pub fn check_many(
        &self,
        tenant: &TenantId,
        queries: &[(&str, &str, bool)],
        now: DateTime<Utc>,
    ) -> Vec<Decision> {
        match self.tenant(tenant) {
            Some(index) => {
                let index = index.read();
                queries
                    .iter()
                    .map(|(identity, permission, explain)| {
                        index.check(identity, permission, now, *explain)
                    })
                    .collect()
            }
            None => queries
                .iter()
                .map(|_| Decision {
                    unknown_permission: true,
                    ..Decision::default()
                })
                .collect(),
        }
    }

    /// The subset of `permissions` that `identity` does not hold.
    pub fn missing<'p>(
        &self,
        tenant: &TenantId,
        identity: &str,
        permissions: &[&'p str],
        now: DateTime<Utc>,
    ) -> Vec<&'p str> {
        match self.tenant(tenant) {
            Some(index) => index.read().missing(identity, permissions, now),
            None => permissions.to_vec(),
        }
    }

    pub fn effective_permissions(
        &self,
        tenant: &TenantId,
        identity: &str,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, Vec<(RoleId, String)>> {
        self.tenant(tenant)
            .map(|i| i.read().effective_permissions(identity, now))
            .unwrap_or_default()
    }

    pub fn holders(
        &self,
        tenant: &TenantId,
        permission: &str,
        now: DateTime<Utc>,
    ) -> Option<Vec<Holder>> {
        self.tenant(tenant)
            .and_then(|i| i.read().holders(permission, now))
    }

    /// What `deltas` would change in every affected identity's effective permissions, computed
    /// on a copy of the tenant's index; nothing is applied.
    pub fn impact(&self, tenant: &TenantId, deltas: &[Delta], now: DateTime<Utc>) -> Impact {
        let before = self
            .tenant(tenant)
            .map(|i| i.read().clone())
            .unwrap_or_default();
        let mut after = before.clone();
        let mut identities: Vec<IdentityId> =
            before.identities_reached_by(deltas).into_iter().collect();
        for delta in deltas {
            after.apply(delta);
        }
        identities.extend(after.identities_reached_by(deltas));
        identities.sort();
        identities.dedup();
        let mut impact = Impact::default();
        for identity in identities {
            let old = before.effective_permissions(identity.as_str(), now);
            let new = after.effective_permissions(identity.as_str(), now);
            let gained: Vec<String> = new
                .keys()
                .filter(|p| !old.contains_key(*p))
                .cloned()
                .collect();
            let lost: Vec<String> = old
                .keys()
                .filter(|p| !new.contains_key(*p))
                .cloned()
                .collect();
            if !gained.is_empty() || !lost.is_empty() {
                impact.identities.push(IdentityImpact {
                    identity,
                    gained,
                    lost,
                });
            }
        }
        impact
    }
}
