//! The in-memory authorization index and the decisions made from it. Never touches the database:
//! it is fed committed changes, in revision order, by `service::sync`.

mod index;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::domain::{
    Change, Delta, IdentityId, IdentityImpact, Impact, Revision, RoleId, RoleRef, TenantId,
};

pub use index::{Decision, GrantPath, Holder, RoleLookup, TenantIndex};

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
    /// The applied revision as readers see it: a plain atomic load on the hot path, where the
    /// watch's lock would be a write to a shared cache line on every Check.
    applied_now: AtomicU64,
    /// The same revision for those who wait for it to move.
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
            applied_now: AtomicU64::new(revision.0),
            applied: watch::Sender::new(revision),
        }
    }

    /// The revision every answer currently includes.
    pub fn applied_revision(&self) -> Revision {
        Revision(self.applied_now.load(Ordering::Acquire))
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
        let publish = || {
            self.applied.send_if_modified(|applied| {
                let newer = change.revision > *applied;
                if newer {
                    *applied = change.revision;
                    self.applied_now.store(change.revision.0, Ordering::Release);
                }
                newer
            })
        };
        if change.deltas.is_empty() {
            publish();
            return;
        }
        let index = self.tenant_or_insert(&change.tenant);
        let mut index = index.write();
        for delta in &change.deltas {
            index.apply(delta);
        }
        // Published before the tenant's write lock is released, so a reader holding the read
        // lock reads a revision its view is exact at (see `read_tenant`).
        publish();
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

    /// Runs `read` on the tenant's index (`None`: the tenant has none yet) and returns the
    /// revision that view is exact at: every change at or below it is in the view, none above.
    /// With the read lock held no change to the tenant is half-applied, and each one published
    /// its revision before releasing the write lock, so the revision read then is exact. A
    /// tenant without an index reads it first instead: a change to the tenant at or below it
    /// would have created the index before the revision was published.
    fn read_tenant<T>(
        &self,
        tenant: &TenantId,
        read: impl FnOnce(Option<&TenantIndex>) -> T,
    ) -> (T, Revision) {
        let before = self.applied_revision();
        match self.tenant(tenant) {
            Some(index) => {
                let index = index.read();
                let revision = self.applied_revision();
                (read(Some(&index)), revision)
            }
            None => (read(None), before),
        }
    }

    /// The role `r` names as this replica knows it, and the revision that answer is exact at.
    pub fn role(&self, tenant: &TenantId, r: &RoleRef) -> (RoleLookup, Revision) {
        self.read_tenant(tenant, |index| match index {
            Some(index) => index.role(tenant, r),
            None => RoleLookup::Absent,
        })
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
    /// decided under one lookup and one read lock, so from one state of the index, returned with
    /// the revision that state is exact at. `None` when the asker lacks it.
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
    ) -> (Option<Decision>, Revision) {
        self.read_tenant(tenant, |index| {
            let Some(index) = index else {
                return asker_needs.is_none().then(|| Decision {
                    unknown_permission: true,
                    ..Decision::default()
                });
            };
            if let Some(needed) = asker_needs
                && !index.check(asker, needed, now, false).allowed
            {
                return None;
            }
            Some(index.check(identity, permission, now, explain))
        })
    }

    /// Many decisions in one tenant under one lock, in order (BatchCheck), and the revision they
    /// are exact at.
    pub fn check_many(
        &self,
        tenant: &TenantId,
        queries: &[(&str, &str, bool)],
        now: DateTime<Utc>,
    ) -> (Vec<Decision>, Revision) {
        self.read_tenant(tenant, |index| match index {
            Some(index) => queries
                .iter()
                .map(|(identity, permission, explain)| {
                    index.check(identity, permission, now, *explain)
                })
                .collect(),
            None => queries
                .iter()
                .map(|_| Decision {
                    unknown_permission: true,
                    ..Decision::default()
                })
                .collect(),
        })
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

    /// The identity's effective permissions and the revision they are exact at.
    pub fn effective_permissions(
        &self,
        tenant: &TenantId,
        identity: &str,
        now: DateTime<Utc>,
    ) -> (BTreeMap<String, Vec<(RoleId, String)>>, Revision) {
        self.read_tenant(tenant, |index| {
            index
                .map(|i| i.effective_permissions(identity, now))
                .unwrap_or_default()
        })
    }

    /// Who holds `permission` (`None`: no such permission) and the revision that is exact at.
    pub fn holders(
        &self,
        tenant: &TenantId,
        permission: &str,
        now: DateTime<Utc>,
    ) -> (Option<Vec<Holder>>, Revision) {
        self.read_tenant(tenant, |index| {
            index.and_then(|i| i.holders(permission, now))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssignmentId, IdentityKind, PermissionId};

    fn change(revision: u64, tenant: &TenantId, deltas: Vec<Delta>) -> Change {
        Change {
            revision: Revision(revision),
            tenant: tenant.clone(),
            time: Utc::now(),
            kind: "test".into(),
            target: String::new(),
            deltas,
        }
    }

    /// A grant toggled on and off, with changes to another tenant in between, while another
    /// thread asks: every answer must be the state at exactly the revision it reports. (Reading
    /// the revision outside the tenant's lock reports one below a revoke it already reflects.)
    #[test]
    fn every_answer_is_exact_at_the_revision_it_reports() {
        let (tenant, other) = (TenantId::parse("t").unwrap(), TenantId::parse("o").unwrap());
        let (p, r, a) = (PermissionId::new(), RoleId::new(), AssignmentId::new());
        let engine = Arc::new(Engine::from_snapshot(
            Revision(1),
            vec![(
                tenant.clone(),
                vec![
                    Delta::PermissionPut {
                        id: p,
                        name: "docs:read".into(),
                    },
                    Delta::RolePut {
                        id: r,
                        name: "reader".into(),
                        permissions: vec![p],
                        record: None,
                    },
                ],
            )],
        ));
        const ROUNDS: u64 = 20_000;
        // Revision 3k+2 grants, 3k+3 changes the other tenant, 3k+4 revokes: allowed exactly at
        // revisions whose remainder mod 3 is 2 or 0, from 2 up.
        let allowed_at = |revision: u64| revision >= 2 && revision % 3 != 1;
        let writer = {
            let engine = Arc::clone(&engine);
            let (tenant, other) = (tenant.clone(), other.clone());
            std::thread::spawn(move || {
                for k in 0..ROUNDS {
                    let grant = Delta::AssignmentPut {
                        id: a,
                        role: r,
                        identity: IdentityId::parse("id", "alice").unwrap(),
                        kind: IdentityKind::User,
                        expire_time: None,
                    };
                    engine.apply(&change(3 * k + 2, &tenant, vec![grant]));
                    let elsewhere = Delta::PermissionPut {
                        id: PermissionId::new(),
                        name: format!("p{k}"),
                    };
                    engine.apply(&change(3 * k + 3, &other, vec![elsewhere]));
                    let revoke = Delta::AssignmentRemoved { id: a };
                    engine.apply(&change(3 * k + 4, &tenant, vec![revoke]));
                }
            })
        };
        let mut wrong = Vec::new();
        let mut answers = 0u64;
        while !writer.is_finished() || answers == 0 {
            let (decision, revision) = engine.check_asked_by(
                &tenant,
                "alice",
                None,
                "alice",
                "docs:read",
                Utc::now(),
                false,
            );
            let allowed = decision.expect("no asker permission needed").allowed;
            answers += 1;
            if allowed != allowed_at(revision.0) && wrong.len() < 5 {
                wrong.push((allowed, revision.0));
            }
            let (many, at) =
                engine.check_many(&tenant, &[("alice", "docs:read", false)], Utc::now());
            if many[0].allowed != allowed_at(at.0) && wrong.len() < 5 {
                wrong.push((many[0].allowed, at.0));
            }
        }
        writer.join().unwrap();
        assert!(
            wrong.is_empty(),
            "answers not exact at their revision (allowed, revision): {wrong:?} of {answers}"
        );
    }
}
