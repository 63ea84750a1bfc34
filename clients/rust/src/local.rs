//! `LocalChecker`: Check and BatchCheck answered in-process from a copy of the tenant's
//! authorization index, kept exact by WatchChanges.
//!
//! The index is the server's own code (`src/engine/index.rs`, compiled into this crate), fed the
//! same changes in the same order, so a local answer is the answer the server gives at the same
//! revision. It loads with a snapshot-first WatchChanges, then applies each change as it
//! commits; when the stream breaks it resumes after its revision, and when the change log no
//! longer reaches back that far (OUT_OF_RANGE) it loads a new snapshot and swaps it in whole.
//!
//! The caller's token needs `warden:audit:read` (the stream carries the tenant's whole
//! authorization state). Explanations (`explain`) are the server's: such checks are sent to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::domain::{
    AssignmentId, ChangeRequestId, Delta, GroupId, IdentityId, IdentityKind, PermissionId,
    PermissionName, RoleId, Scope,
};
use crate::index::TenantIndex;
use crate::pb::{self, index_change::Change as Ic};
use crate::{Client, Error, Result};

/// How a [`LocalChecker`] behaves.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// How long a check asking for a revision the cache has not applied yet waits for it before
    /// it is sent to the server (default 100 ms).
    pub wait: Duration,
    /// The first delay before reconnecting a broken stream, doubled up to 5 s (default 100 ms).
    pub backoff: Duration,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            wait: Duration::from_millis(100),
            backoff: Duration::from_millis(100),
        }
    }
}

/// One locally answered decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDecision {
    pub allowed: bool,
    /// Why, as the server's CheckResponse says it (without `explain`).
    pub reason: pb::CheckReason,
    /// The revision the decision was evaluated at.
    pub revision: u64,
}

/// Counters of the cache's life, for metrics and tests.
#[derive(Debug, Default)]
struct Counters {
    /// Snapshots loaded (the first load included).
    loads: AtomicU64,
    /// Streams resumed after their revision.
    resumes: AtomicU64,
}

struct Shared {
    index: RwLock<TenantIndex>,
    /// The revision `index` is exact at; 0 until the first snapshot is in.
    applied: watch::Sender<u64>,
    /// False while a change the cache cannot apply (from a newer server) leaves it inexact:
    /// every check goes to the server until a snapshot it understands is loaded.
    exact: AtomicBool,
    counters: Counters,
}

/// A local decision cache of the caller's tenant. Cheap to clone; the following task stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct LocalChecker {
    shared: Arc<Shared>,
    client: Client,
    options: LocalOptions,
    _follower: Arc<Follower>,
}

impl std::fmt::Debug for LocalChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChecker")
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

/// Aborts the following task when dropped.
struct Follower(tokio::task::JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LocalChecker {
    /// Loads the tenant of `client`'s token and follows its changes; returns once the first
    /// snapshot is in (or with the error that kept it out, e.g. PERMISSION_DENIED).
    pub async fn start(client: Client, options: LocalOptions) -> Result<Self> {
        let (applied, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            index: RwLock::new(TenantIndex::default()),
            applied,
            exact: AtomicBool::new(true),
            counters: Counters::default(),
        });
        // The first snapshot is read here, so that a refusal reaches the caller.
        let stream = open(&client, None).await?;
        let task = tokio::spawn(follow(
            shared.clone(),
            client.clone(),
            options.backoff,
            stream,
        ));
        let checker = Self {
            shared,
            client,
            options,
            _follower: Arc::new(Follower(task)),
        };
        let mut applied = checker.shared.applied.subscribe();
        applied
            .wait_for(|revision| *revision > 0)
            .await
            .map_err(|_| Error::Config("the local cache stopped before it loaded".into()))?;
        Ok(checker)
    }

    /// The revision the cache is exact at.
    pub fn revision(&self) -> u64 {
        *self.shared.applied.borrow()
    }

    /// How many snapshots were loaded (1 after start; more after the change log's history was
    /// gone when the stream resumed).
    pub fn loads(&self) -> u64 {
        self.shared.counters.loads.load(Ordering::Relaxed)
    }

    /// How many times the stream was resumed after its revision.
    pub fn resumes(&self) -> u64 {
        self.shared.counters.resumes.load(Ordering::Relaxed)
    }

    /// May `identity` use `permission` on `resource` (empty: the tenant), at the cache's
    /// current revision? Answered in-process; the input is validated as the server does
    /// (INVALID_ARGUMENT with the field). `None` when the cache is not exact (see
    /// [`LocalChecker::check`], which then asks the server).
    pub fn check_local(
        &self,
        identity: &str,
        permission: &str,
        resource: &str,
    ) -> Result<Option<LocalDecision>> {
        validate(identity, permission, resource)?;
        Ok(self.decide(identity, permission, resource, Utc::now()))
    }

    fn decide(
        &self,
        identity: &str,
        permission: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> Option<LocalDecision> {
        self.with_index(|index, revision| {
            let decision = index.check(identity, permission, resource, now, false);
            LocalDecision::new(decision.allowed, decision.unknown_permission, revision)
        })
    }

    /// `read` of the index and the revision it is exact at, together; `None` when the cache is
    /// not exact.
    fn with_index<T>(&self, read: impl FnOnce(&TenantIndex, u64) -> T) -> Option<T> {
        if !self.shared.exact.load(Ordering::Acquire) {
            return None;
        }
        let index = self.shared.index.read();
        // Read under the lock: the writer moves the revision while it holds it.
        let revision = *self.shared.applied.borrow();
        Some(read(&index, revision))
    }

    /// Check as the server answers it: in-process when the cache has applied
    /// `at_least_revision` (0: any) or reaches it within the configured wait; otherwise, and
    /// for `explain`, the server answers.
    pub async fn check(&self, request: pb::CheckRequest) -> Result<pb::CheckResponse> {
        validate(&request.identity_id, &request.permission, &request.resource)?;
        if !request.explain && self.reached(request.at_least_revision).await {
            let local = self.decide(
                &request.identity_id,
                &request.permission,
                &request.resource,
                Utc::now(),
            );
            if let Some(local) = local {
                return Ok(local.into());
            }
        }
        self.client.check_request(request).await
    }

    /// BatchCheck as the server answers it: every item at one revision, in-process when the
    /// cache has reached the highest `at_least_revision` among them and none asks to explain.
    pub async fn batch_check(
        &self,
        items: Vec<pb::CheckRequest>,
    ) -> Result<pb::BatchCheckResponse> {
        for (at, item) in items.iter().enumerate() {
            validate(&item.identity_id, &item.permission, &item.resource)
                .map_err(|e| e.with_field_prefix(&format!("items[{at}].")))?;
        }
        let wanted = items.iter().map(|i| i.at_least_revision).max().unwrap_or(0);
        let local = !items.is_empty()
            && items.len() <= 1000
            && !items.iter().any(|i| i.explain)
            && self.reached(wanted).await;
        if local {
            let now = Utc::now();
            let results = self.with_index(|index, revision| {
                items
                    .iter()
                    .map(|item| {
                        let d = index.check(
                            &item.identity_id,
                            &item.permission,
                            &item.resource,
                            now,
                            false,
                        );
                        LocalDecision::new(d.allowed, d.unknown_permission, revision).into()
                    })
                    .collect()
            });
            if let Some(results) = results {
                return Ok(pb::BatchCheckResponse { results });
            }
        }
        self.client.batch_check(items).await
    }

    /// True once the cache has applied `revision`, waiting for it at most the configured time.
    async fn reached(&self, revision: u64) -> bool {
        self.wait_for_revision(revision, self.options.wait).await
    }

    /// Waits until the cache has applied `revision` (a write's, say), at most `timeout`; true
    /// when it has.
    pub async fn wait_for_revision(&self, revision: u64, timeout: Duration) -> bool {
        let mut applied = self.shared.applied.subscribe();
        if *applied.borrow() >= revision {
            return true;
        }
        tokio::time::timeout(timeout, applied.wait_for(|applied| *applied >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// How many assignments the cache holds.
    pub fn assignment_count(&self) -> usize {
        self.shared.index.read().assignment_count()
    }
}

impl LocalDecision {
    fn new(allowed: bool, unknown_permission: bool, revision: u64) -> Self {
        let reason = if allowed {
            pb::CheckReason::Granted
        } else if unknown_permission {
            pb::CheckReason::UnknownPermission
        } else {
            pb::CheckReason::NoGrant
        };
        Self {
            allowed,
            reason,
            revision,
        }
    }
}

impl From<LocalDecision> for pb::CheckResponse {
    fn from(d: LocalDecision) -> Self {
        pb::CheckResponse {
            allowed: d.allowed,
            revision: d.revision,
            reason: d.reason as i32,
            ..Default::default()
        }
    }
}

/// The server's validation of a Check's fields, with its field names.
fn validate(identity: &str, permission: &str, resource: &str) -> Result<()> {
    let mut violations = Vec::new();
    let mut note = |result: std::result::Result<(), crate::domain::Error>| {
        if let Err(crate::domain::Error::Invalid(problems)) = result {
            violations.extend(problems.into_iter().map(|p| (p.field, p.description)));
        }
    };
    note(IdentityId::parse("identity_id", identity).map(drop));
    note(PermissionName::parse("permission", permission).map(drop));
    note(Scope::parse("resource", resource).map(drop));
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(violations))
    }
}

type Changes = tonic::Streaming<pb::ChangeEvent>;

/// Opens WatchChanges: after `since`, or from a snapshot when `None`. Boxed with its `Send`
/// spelled out: inferred inside the spawned follower, tonic's boxed transport errors trip the
/// compiler's higher-ranked lifetime check.
fn open(
    client: &Client,
    since: Option<u64>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Changes>> + Send>> {
    let request = pb::WatchChangesRequest {
        since_revision: since.unwrap_or(0),
        snapshot: since.is_none(),
    };
    let mut audit = client.audit();
    Box::pin(async move {
        audit
            .watch_changes(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| Error::from_status(&status))
    })
}

/// Follows the tenant's changes for as long as the checker lives.
async fn follow(shared: Arc<Shared>, client: Client, first_backoff: Duration, first: Changes) {
    let mut stream = Some(first);
    let mut backoff = first_backoff;
    // A snapshot being received, swapped in whole at its last part.
    let mut loading: Option<TenantIndex> = None;
    // True when the next stream must start from a snapshot: nothing loaded yet, a snapshot
    // broke off, or the change log no longer reaches back to the applied revision.
    let mut need_snapshot = true;
    loop {
        let Some(mut changes) = stream.take() else {
            let since = (!need_snapshot).then(|| *shared.applied.borrow());
            match open(&client, since).await {
                Ok(opened) => {
                    if since.is_some() {
                        shared.counters.resumes.fetch_add(1, Ordering::Relaxed);
                    }
                    stream = Some(opened);
                }
                // History is gone: load a snapshot, at once.
                Err(e) if e.reason() == Some(pb::ErrorReason::RevisionOutOfRange) => {
                    need_snapshot = true;
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        };
        loop {
            match changes.message().await {
                Ok(Some(event)) => {
                    backoff = first_backoff;
                    if apply_event(&shared, &mut loading, event) {
                        need_snapshot = false;
                    }
                }
                Err(status) if status.code() == tonic::Code::OutOfRange => {
                    need_snapshot = true;
                    break;
                }
                // The server ended the stream (it drains) or it broke: resume after the
                // revision applied, or start an unfinished snapshot again.
                Ok(None) | Err(_) => {
                    if loading.take().is_some() {
                        need_snapshot = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    break;
                }
            }
        }
    }
}

/// Applies one event: a snapshot part to the index being loaded, a change to the live one.
/// True when it completed a snapshot.
fn apply_event(shared: &Shared, loading: &mut Option<TenantIndex>, event: pb::ChangeEvent) -> bool {
    let kind = pb::ChangeKind::try_from(event.kind).unwrap_or(pb::ChangeKind::Unspecified);
    let mut understood = true;
    let deltas: Vec<Delta> = event
        .changes
        .into_iter()
        .filter_map(|change| {
            let delta = delta_of(change);
            understood &= delta.is_some();
            delta
        })
        .collect();
    match kind {
        pb::ChangeKind::Snapshot | pb::ChangeKind::SnapshotComplete => {
            let index = loading.get_or_insert_with(TenantIndex::default);
            for delta in &deltas {
                index.apply(delta);
            }
            if !understood {
                shared.exact.store(false, Ordering::Release);
            }
            if kind == pb::ChangeKind::SnapshotComplete {
                let mut loaded = loading.take().unwrap_or_default();
                loaded.shrink_to_fit();
                let mut live = shared.index.write();
                *live = loaded;
                shared.exact.store(understood, Ordering::Release);
                // Moved under the write lock: readers see the index and its revision together.
                // At least 1, so that an empty tenant counts as loaded.
                shared.applied.send_replace(event.revision.max(1));
                shared.counters.loads.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            false
        }
        _ => {
            if loading.is_some() || event.revision <= *shared.applied.borrow() {
                return false; // mid-snapshot (cannot happen in order) or already applied
            }
            let mut live = shared.index.write();
            for delta in &deltas {
                live.apply(delta);
            }
            if !understood {
                shared.exact.store(false, Ordering::Release);
            }
            shared.applied.send_replace(event.revision);
            false
        }
    }
}

fn time(t: Option<prost_types::Timestamp>) -> Option<Option<DateTime<Utc>>> {
    match t {
        None => Some(None),
        Some(t) => {
            let nanos = u32::try_from(t.nanos).ok()?;
            Some(Some(DateTime::from_timestamp(t.seconds, nanos)?))
        }
    }
}

fn identity_kind(kind: i32) -> Option<IdentityKind> {
    Some(match pb::IdentityKind::try_from(kind).ok()? {
        pb::IdentityKind::User => IdentityKind::User,
        pb::IdentityKind::ServiceAccount => IdentityKind::ServiceAccount,
        pb::IdentityKind::Pat => IdentityKind::Pat,
        pb::IdentityKind::Group => IdentityKind::Group,
        pb::IdentityKind::Unspecified => return None,
    })
}

fn ids<T>(raw: &[String], parse: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    raw.iter().map(|s| parse(s)).collect()
}

fn permission_id(raw: &str) -> Option<PermissionId> {
    PermissionId::parse("id", raw).ok()
}

fn role_id(raw: &str) -> Option<RoleId> {
    RoleId::parse("id", raw).ok()
}

fn identity(raw: &str) -> Option<IdentityId> {
    IdentityId::parse("id", raw).ok()
}

/// The contract's IndexChange as the index's delta; `None` for one this client cannot read
/// (a kind from a newer server, or a malformed id).
fn delta_of(change: pb::IndexChange) -> Option<Delta> {
    Some(match change.change? {
        Ic::PermissionPut(p) => Delta::PermissionPut {
            id: permission_id(&p.id)?,
            name: p.name,
        },
        Ic::PermissionRemoved(p) => Delta::PermissionRemoved {
            id: permission_id(&p.id)?,
        },
        Ic::RolePut(r) => Delta::RolePut {
            id: role_id(&r.id)?,
            name: r.name,
            permissions: ids(&r.permission_ids, permission_id)?,
            record: None,
            included: ids(&r.included_role_ids, role_id)?,
        },
        Ic::RoleRemoved(r) => Delta::RoleRemoved {
            id: role_id(&r.id)?,
        },
        Ic::AssignmentPut(a) => {
            let who = a.identity?;
            Delta::AssignmentPut {
                id: AssignmentId::parse("id", &a.id).ok()?,
                role: role_id(&a.role_id)?,
                identity: identity(&who.id)?,
                kind: identity_kind(who.kind)?,
                expire_time: time(a.expire_time)?,
                scope: Scope::parse("scope", &a.scope).ok()?,
            }
        }
        Ic::AssignmentRemoved(a) => Delta::AssignmentRemoved {
            id: AssignmentId::parse("id", &a.id).ok()?,
        },
        Ic::GroupMembersAdded(g) => Delta::GroupMembersAdded {
            group: GroupId::parse("group", &g.group_id).ok()?,
            members: ids(&g.identity_ids, identity)?,
        },
        Ic::GroupMembersRemoved(g) => Delta::GroupMembersRemoved {
            group: GroupId::parse("group", &g.group_id).ok()?,
            members: ids(&g.identity_ids, identity)?,
        },
        Ic::GroupRemoved(g) => Delta::GroupRemoved {
            group: GroupId::parse("group", &g.group_id).ok()?,
        },
        Ic::PendingGrantPut(p) => Delta::PendingGrantPut {
            id: ChangeRequestId::parse("id", &p.change_request_id).ok()?,
            role: role_id(&p.role_id)?,
            identity: identity(&p.identity_id)?,
            scope: Scope::parse("scope", &p.scope).ok()?,
        },
        Ic::PendingGrantRemoved(p) => Delta::PendingGrantRemoved {
            id: ChangeRequestId::parse("id", &p.change_request_id).ok()?,
        },
        Ic::TenantState(t) => Delta::TenantState {
            disabled: t.disabled,
        },
    })
}
