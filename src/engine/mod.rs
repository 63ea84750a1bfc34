//! The in-memory authorization index and the decisions made from it. Never touches the database:
//! it is fed committed changes, in revision order, by `service::sync`.

mod disk;
mod freshness;
mod index;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::domain::scope::covers;
use crate::domain::{
    Change, Delta, IdentityId, IdentityImpact, Impact, Revision, RoleId, RoleRef, Scope,
    ScopedPermission, TenantId,
};

pub use disk::{LocalSnapshot, Written, keep_snapshot, read_snapshot};
pub use freshness::Freshness;
pub use index::{Decision, GrantPath, Holder, MAX_INCLUSION_DEPTH, RoleLookup, TenantIndex};

/// How big the index is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub tenants: usize,
    pub assignments: usize,
}

/// One tenant's index and the tenant revision it is exact at.
#[derive(Debug)]
struct TenantSlot {
    index: RwLock<TenantIndex>,
    /// The applied revision as readers see it: a plain atomic load on the hot path, where the
    /// watch's lock would be a write to a shared cache line on every Check.
    applied_now: AtomicU64,
    /// The same revision for those who wait for it to move.
    applied: watch::Sender<Revision>,
    /// The index's disabled flag, for the edge to read on every call without the index's lock.
    disabled: AtomicBool,
}

impl TenantSlot {
    fn new(index: TenantIndex, revision: Revision) -> Self {
        Self {
            disabled: AtomicBool::new(index.is_disabled()),
            index: RwLock::new(index),
            applied_now: AtomicU64::new(revision.0),
            applied: watch::Sender::new(revision),
        }
    }

    fn revision(&self) -> Revision {
        Revision(self.applied_now.load(Ordering::Acquire))
    }
}

/// A tenant, the revision its content is exact at, and that content.
type TenantContent<T> = (TenantId, Revision, T);

/// One tenant's index, built from the deltas of a snapshot or a reload.
fn index_of(deltas: &[Delta]) -> TenantIndex {
    let mut index = TenantIndex::default();
    for delta in deltas {
        index.apply(delta);
    }
    index.shrink_to_fit();
    index
}

/// Builds each tenant's index from its deltas, on up to as many threads as there are cores: a
/// cold start with a million assignments is the load from the database and this. Tenants are
/// independent; each thread takes the biggest tenant left to the least loaded worker's share.
fn build_indexes(
    tenants: Vec<(TenantId, Revision, Vec<Delta>)>,
) -> Vec<(TenantId, Revision, TenantIndex)> {
    fn build(
        share: Vec<(TenantId, Revision, Vec<Delta>)>,
    ) -> Vec<(TenantId, Revision, TenantIndex)> {
        share
            .into_iter()
            .map(|(tenant, revision, deltas)| (tenant, revision, index_of(&deltas)))
            .collect()
    }
    let total: usize = tenants.iter().map(|t| t.2.len()).sum();
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(8)
        .min(tenants.len());
    // Small loads are not worth a thread.
    if workers < 2 || total < 100_000 {
        return build(tenants);
    }
    let mut tenants = tenants;
    tenants.sort_by_key(|t| std::cmp::Reverse(t.2.len()));
    let mut shares: Vec<(usize, Vec<TenantContent<Vec<Delta>>>)> =
        (0..workers).map(|_| (0, Vec::new())).collect();
    for tenant in tenants {
        let lightest = shares
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("at least two shares");
        lightest.0 += tenant.2.len();
        lightest.1.push(tenant);
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = shares
            .into_iter()
            .map(|(_, share)| scope.spawn(move || build(share)))
            .collect();
        running
            .into_iter()
            .flat_map(|worker| worker.join().expect("an index build panicked"))
            .collect()
    })
}

/// Every tenant's index, each with the revision of that tenant applied so far. Revisions are
/// per tenant: the engine never orders one tenant's changes against another's.
#[derive(Debug)]
pub struct Engine {
    tenants: RwLock<HashMap<TenantId, Arc<TenantSlot>>>,
    /// Tenants whose revision moved since `take_moved` last ran, for the heartbeat.
    moved: Mutex<HashMap<TenantId, Revision>>,
    /// Counts applied changes, so the heartbeat can wake when any tenant moves.
    applied_changes: watch::Sender<u64>,
}

impl Engine {
    /// An index built from a snapshot: each tenant's content and the revision it is exact at.
    pub fn from_snapshot(tenants: Vec<(TenantId, Revision, Vec<Delta>)>) -> Self {
        let mut map = HashMap::with_capacity(tenants.len());
        let mut moved = HashMap::with_capacity(tenants.len());
        for (tenant, revision, index) in build_indexes(tenants) {
            // Every tenant is reported by the first heartbeat.
            moved.insert(tenant.clone(), revision);
            map.insert(tenant, Arc::new(TenantSlot::new(index, revision)));
        }
        Self {
            tenants: RwLock::new(map),
            moved: Mutex::new(moved),
            applied_changes: watch::Sender::new(0),
        }
    }

    /// The tenant's revision every answer about it currently includes (0: nothing applied).
    pub fn applied_revision(&self, tenant: &TenantId) -> Revision {
        self.tenant(tenant)
            .map_or(Revision(0), |slot| slot.revision())
    }

    /// Every tenant's applied revision.
    pub fn applied_revisions(&self) -> Vec<(TenantId, Revision)> {
        self.tenants
            .read()
            .iter()
            .map(|(tenant, slot)| (tenant.clone(), slot.revision()))
            .collect()
    }

    /// The tenants whose revision moved since the last call, with their revision now.
    pub fn take_moved(&self) -> Vec<(TenantId, Revision)> {
        std::mem::take(&mut *self.moved.lock())
            .into_iter()
            .collect()
    }

    /// Puts back what `take_moved` returned when reporting it failed; a tenant that moved again
    /// in between keeps its newer revision.
    pub fn restore_moved(&self, moved: Vec<(TenantId, Revision)>) {
        let mut pending = self.moved.lock();
        for (tenant, revision) in moved {
            let at = pending.entry(tenant).or_insert(revision);
            *at = (*at).max(revision);
        }
    }

    /// Index sizes, for metrics. Takes each tenant's read lock briefly.
    pub fn stats(&self) -> IndexStats {
        let tenants = self.tenants.read();
        IndexStats {
            tenants: tenants.len(),
            assignments: tenants
                .values()
                .map(|slot| slot.index.read().assignment_count())
                .sum(),
        }
    }

    /// Applies one committed change. The caller guarantees each tenant's revision order (see
    /// `service::sync`).
    pub fn apply(&self, change: &Change) {
        let slot = self.tenant_or_insert(&change.tenant);
        {
            let mut index = slot.index.write();
            for delta in &change.deltas {
                index.apply(delta);
            }
            slot.disabled.store(index.is_disabled(), Ordering::Release);
            // Published before the tenant's write lock is released, so a reader holding the
            // read lock reads a revision its view is exact at (see `read_tenant`).
            slot.applied.send_if_modified(|applied| {
                let newer = change.revision > *applied;
                if newer {
                    *applied = change.revision;
                    slot.applied_now.store(change.revision.0, Ordering::Release);
                }
                newer
            });
        }
        self.moved
            .lock()
            .insert(change.tenant.clone(), slot.revision());
        self.applied_changes.send_modify(|n| *n += 1);
    }

    /// Replaces the tenant's index with one built from `deltas`, exact at `revision` (a reload
    /// from the database). The revision is published as it is, even below the one before: the
    /// database is the truth.
    pub fn replace_tenant(&self, tenant: &TenantId, revision: Revision, deltas: &[Delta]) {
        let fresh = index_of(deltas);
        let slot = self.tenant_or_insert(tenant);
        {
            let mut index = slot.index.write();
            *index = fresh;
            slot.disabled.store(index.is_disabled(), Ordering::Release);
            slot.applied.send_if_modified(|applied| {
                let moved = *applied != revision;
                *applied = revision;
                slot.applied_now.store(revision.0, Ordering::Release);
                moved
            });
        }
        self.moved.lock().insert(tenant.clone(), revision);
        self.applied_changes.send_modify(|n| *n += 1);
    }

    /// A receiver that wakes whenever any tenant applies a change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied_changes.subscribe()
    }

    /// A receiver of the tenant's applied revision.
    pub fn subscribe_tenant(&self, tenant: &TenantId) -> watch::Receiver<Revision> {
        self.tenant_or_insert(tenant).applied.subscribe()
    }

    /// Waits until the tenant's `revision` is applied; false when `timeout` passes first.
    pub async fn wait_for(&self, tenant: &TenantId, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.subscribe_tenant(tenant);
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn tenant(&self, tenant: &TenantId) -> Option<Arc<TenantSlot>> {
        self.tenants.read().get(tenant).cloned()
    }

    fn tenant_or_insert(&self, tenant: &TenantId) -> Arc<TenantSlot> {
        if let Some(slot) = self.tenant(tenant) {
            return slot;
        }
        self.tenants
            .write()
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(TenantSlot::new(TenantIndex::default(), Revision(0))))
            .clone()
    }

    /// Runs `read` on the tenant's index (`None`: the tenant has none yet) and returns the
    /// tenant revision that view is exact at: every change at or below it is in the view, none
    /// above. With the read lock held no change to the tenant is half-applied, and each one
    /// published its revision before releasing the write lock, so the revision read then is
    /// exact. A tenant without an index is exact at revision 0.
    pub fn read_tenant<T>(
        &self,
        tenant: &TenantId,
        read: impl FnOnce(Option<&TenantIndex>) -> T,
    ) -> (T, Revision) {
        match self.tenant(tenant) {
            Some(slot) => {
                let index = slot.index.read();
                let revision = slot.revision();
                (read(Some(&index)), revision)
            }
            None => (read(None), Revision(0)),
        }
    }

    /// True when `tenant` is disabled (its tokens are refused, its Checks deny).
    pub fn tenant_disabled(&self, tenant: &TenantId) -> bool {
        self.tenant(tenant)
            .is_some_and(|slot| slot.disabled.load(Ordering::Acquire))
    }

    /// The role `r` names as this replica knows it, and the revision that answer is exact at.
    pub fn role(&self, tenant: &TenantId, r: &RoleRef) -> (RoleLookup, Revision) {
        self.read_tenant(tenant, |index| match index {
            Some(index) => index.role(tenant, r),
            None => RoleLookup::Absent,
        })
    }

    /// Whether `identity` holds `role` at `scope` by a direct assignment (expired or not), and
    /// the tenant revision the answer is at.
    pub fn has_assignment(
        &self,
        tenant: &TenantId,
        role: RoleId,
        identity: &str,
        scope: &str,
    ) -> (bool, Revision) {
        self.read_tenant(tenant, |index| {
            index.is_some_and(|index| index.has_assignment(role, identity, scope))
        })
    }

    /// The kind `identity` holds its assignments as (if any), and the tenant revision.
    pub fn identity_kind(
        &self,
        tenant: &TenantId,
        identity: &str,
    ) -> (Option<crate::domain::IdentityKind>, Revision) {
        self.read_tenant(tenant, |index| {
            index.and_then(|i| i.identity_kind(identity))
        })
    }

    /// Decides one permission for one identity on one resource (empty: the tenant).
    pub fn check(
        &self,
        tenant: &TenantId,
        identity: &str,
        permission: &str,
        resource: &str,
        now: DateTime<Utc>,
        explain: bool,
    ) -> Decision {
        match self.tenant(tenant) {
            Some(slot) => slot
                .index
                .read()
                .check(identity, permission, resource, now, explain),
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
        resource: &str,
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
                && !index.check(asker, needed, "", now, false).allowed
            {
                return None;
            }
            Some(index.check(identity, permission, resource, now, explain))
        })
    }

    /// Many decisions in one tenant under one lock, in order (BatchCheck), and the revision they
    /// are exact at.
    pub fn check_many(
        &self,
        tenant: &TenantId,
        queries: &[(&str, &str, &str, bool)],
        now: DateTime<Utc>,
    ) -> (Vec<Decision>, Revision) {
        self.read_tenant(tenant, |index| match index {
            Some(index) => queries
                .iter()
                .map(|(identity, permission, resource, explain)| {
                    index.check(identity, permission, resource, now, *explain)
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

    /// The subset of `permissions` that `identity` does not hold tenant-wide.
    pub fn missing<'p>(
        &self,
        tenant: &TenantId,
        identity: &str,
        permissions: &[&'p str],
        now: DateTime<Utc>,
    ) -> Vec<&'p str> {
        self.missing_at(tenant, identity, permissions, "", now)
    }

    /// The subset of `permissions` that `identity` does not hold on `resource`.
    pub fn missing_at<'p>(
        &self,
        tenant: &TenantId,
        identity: &str,
        permissions: &[&'p str],
        resource: &str,
        now: DateTime<Utc>,
    ) -> Vec<&'p str> {
        match self.tenant(tenant) {
            Some(slot) => slot
                .index
                .read()
                .missing(identity, permissions, resource, now),
            None => permissions.to_vec(),
        }
    }

    /// True when `identity` holds `permission` at some scope of the tenant.
    pub fn holds_anywhere(
        &self,
        tenant: &TenantId,
        identity: &str,
        permission: &str,
        now: DateTime<Utc>,
    ) -> bool {
        self.tenant(tenant)
            .is_some_and(|slot| slot.index.read().holds_anywhere(identity, permission, now))
    }

    /// The first `limit` scopes after `after`, at or under `under`, where `identity` holds
    /// `permission` (`None`: no such permission), and the revision that is exact at.
    #[allow(clippy::too_many_arguments)]
    pub fn granted_scopes(
        &self,
        tenant: &TenantId,
        identity: &str,
        permission: &str,
        under: &str,
        after: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> (Option<Vec<String>>, Revision) {
        self.read_tenant(tenant, |index| {
            index.and_then(|i| i.granted_scopes(identity, permission, under, after, limit, now))
        })
    }

    /// The identity's effective permissions on `resource` and the revision they are exact at.
    pub fn effective_permissions(
        &self,
        tenant: &TenantId,
        identity: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> (BTreeMap<String, Vec<(RoleId, String)>>, Revision) {
        self.read_tenant(tenant, |index| {
            index
                .map(|i| i.effective_permissions(identity, resource, now))
                .unwrap_or_default()
        })
    }

    /// Who holds `permission` on `resource` (`None`: no such permission) and the revision that
    /// is exact at.
    pub fn holders(
        &self,
        tenant: &TenantId,
        permission: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> (Option<Vec<Holder>>, Revision) {
        self.read_tenant(tenant, |index| {
            index.and_then(|i| i.holders(permission, resource, now))
        })
    }

    /// What `deltas` would change in every affected identity's effective permissions, computed
    /// on a copy of the tenant's index; nothing is applied.
    pub fn impact(&self, tenant: &TenantId, deltas: &[Delta], now: DateTime<Utc>) -> Impact {
        let before = self
            .tenant(tenant)
            .map(|slot| slot.index.read().clone())
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
            let old = before.held_at(identity.as_str(), now);
            let new = after.held_at(identity.as_str(), now);
            // A grant counts where it changes what the identity may do: a scoped grant under
            // another that still covers it changes nothing.
            let changed = |from: &BTreeSet<(String, String)>, to: &BTreeSet<(String, String)>| {
                let mut tenant_wide = Vec::new();
                let mut scoped = Vec::new();
                for (permission, scope) in from.difference(to) {
                    let still_covered = to.iter().any(|(p, s)| p == permission && covers(s, scope));
                    if still_covered {
                        continue;
                    }
                    if scope.is_empty() {
                        tenant_wide.push(permission.clone());
                    } else {
                        scoped.push(ScopedPermission {
                            permission: permission.clone(),
                            scope: Scope::from_validated(scope.as_str()),
                        });
                    }
                }
                (tenant_wide, scoped)
            };
            let (gained, gained_scoped) = changed(&new, &old);
            let (lost, lost_scoped) = changed(&old, &new);
            if !gained.is_empty()
                || !lost.is_empty()
                || !gained_scoped.is_empty()
                || !lost_scoped.is_empty()
            {
                impact.identities.push(IdentityImpact {
                    identity,
                    gained,
                    lost,
                    gained_scoped,
                    lost_scoped,
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
    /// thread asks: every answer must be the state at exactly the tenant revision it reports.
    /// (Reading the revision outside the tenant's lock reports one below a revoke it already
    /// reflects.)
    #[test]
    fn every_answer_is_exact_at_the_revision_it_reports() {
        let (tenant, other) = (TenantId::parse("t").unwrap(), TenantId::parse("o").unwrap());
        let (p, r, a) = (PermissionId::new(), RoleId::new(), AssignmentId::new());
        let engine = Arc::new(Engine::from_snapshot(vec![(
            tenant.clone(),
            Revision(1),
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
                    included: Vec::new(),
                },
            ],
        )]));
        const ROUNDS: u64 = 20_000;
        // The tenant's revision 2k+2 grants and 2k+3 revokes, with a change to another tenant
        // (its own revision k+1) in between: allowed exactly at even revisions from 2 up.
        let allowed_at = |revision: u64| revision >= 2 && revision.is_multiple_of(2);
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
                        scope: Scope::tenant(),
                    };
                    engine.apply(&change(2 * k + 2, &tenant, vec![grant]));
                    let elsewhere = Delta::PermissionPut {
                        id: PermissionId::new(),
                        name: format!("p{k}"),
                    };
                    engine.apply(&change(k + 1, &other, vec![elsewhere]));
                    let revoke = Delta::AssignmentRemoved { id: a };
                    engine.apply(&change(2 * k + 3, &tenant, vec![revoke]));
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
                "",
                Utc::now(),
                false,
            );
            let allowed = decision.expect("no asker permission needed").allowed;
            answers += 1;
            if allowed != allowed_at(revision.0) && wrong.len() < 5 {
                wrong.push((allowed, revision.0));
            }
            let (many, at) =
                engine.check_many(&tenant, &[("alice", "docs:read", "", false)], Utc::now());
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

    #[test]
    fn each_tenant_has_its_own_revision_and_reports_only_its_moves() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let engine = Engine::from_snapshot(vec![(a.clone(), Revision(7), Vec::new())]);
        assert_eq!(engine.take_moved(), vec![(a.clone(), Revision(7))]);
        assert!(engine.take_moved().is_empty());
        engine.apply(&change(1, &b, Vec::new()));
        engine.apply(&change(2, &b, Vec::new()));
        assert_eq!(engine.applied_revision(&a), Revision(7));
        assert_eq!(engine.applied_revision(&b), Revision(2));
        assert_eq!(engine.take_moved(), vec![(b.clone(), Revision(2))]);
        let mut all = engine.applied_revisions();
        all.sort();
        assert_eq!(all, vec![(a, Revision(7)), (b, Revision(2))]);
    }

    #[tokio::test]
    async fn a_wait_for_one_tenant_is_not_satisfied_by_another() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let engine = Arc::new(Engine::from_snapshot(Vec::new()));
        engine.apply(&change(5, &b, Vec::new()));
        assert!(
            !engine
                .wait_for(&a, Revision(1), Duration::from_millis(20))
                .await
        );
        let waiter = {
            let engine = Arc::clone(&engine);
            let a = a.clone();
            tokio::spawn(async move {
                engine
                    .wait_for(&a, Revision(1), Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        engine.apply(&change(1, &a, Vec::new()));
        assert!(waiter.await.unwrap());
    }
}
