//! The local decision cache against a live Warden, on SQLite and on PostgreSQL: a differential
//! test (5,000 random writes; after each, the cache and the server answer the same questions
//! at the same revision), a stream cut mid-way, and a history gap, both recovered.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use tonic::body::Body;
use tower::{Service as _, ServiceExt as _};
use warden_client::pb::{self, ErrorReason};
use warden_client::{Client, LocalChecker, LocalOptions, TokenSource, Transport};

/// splitmix64: a seeded, dependency-free source of test choices (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

const PERMISSIONS: [&str; 6] = [
    "docs:read",
    "docs:write",
    "docs:delete",
    "billing:read",
    "billing:write",
    "admin:all",
];
const ROLES: [&str; 6] = ["r0", "r1", "r2", "r3", "r4", "r5"];
const USERS: [&str; 8] = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
const SCOPES: [&str; 5] = [
    "",
    "departments/eng",
    "departments/eng/projects/apollo",
    "departments/sales",
    "departments/eng/projects/gemini",
];
const GROUPS: [&str; 2] = ["g0", "g1"];

fn perm(name: &str) -> pb::PermissionRef {
    pb::PermissionRef {
        r#ref: Some(pb::permission_ref::Ref::Name(name.into())),
    }
}

fn role(name: &str) -> pb::RoleRef {
    pb::RoleRef {
        r#ref: Some(pb::role_ref::Ref::Name(name.into())),
    }
}

/// The world the random writes act on: ids learned from the server's answers.
#[derive(Default)]
struct World {
    assignments: Vec<String>,
    groups: Vec<String>,
}

/// One random write; errors (a role in use, a duplicate) are part of the game and change
/// nothing, so they are ignored.
async fn random_write(admin: &Client, rng: &mut Rng, world: &mut World) {
    let future = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 3600 * 24,
        nanos: 0,
    };
    match rng.below(100) {
        0..=7 => {
            let name = *rng.pick(&PERMISSIONS).unwrap();
            let _ = admin
                .permissions()
                .create_permission(pb::CreatePermissionRequest {
                    name: name.into(),
                    ..Default::default()
                })
                .await;
        }
        8..=9 => {
            let name = *rng.pick(&PERMISSIONS).unwrap();
            let _ = admin
                .permissions()
                .delete_permission(pb::DeletePermissionRequest {
                    permission: Some(perm(name)),
                    force: true,
                    ..Default::default()
                })
                .await;
        }
        10..=19 => {
            let name = *rng.pick(&ROLES).unwrap();
            let permissions = (0..rng.below(3))
                .map(|_| perm(rng.pick(&PERMISSIONS).unwrap()))
                .collect();
            let included_roles = (0..rng.below(2))
                .map(|_| role(rng.pick(&ROLES).unwrap()))
                .collect();
            let _ = admin
                .roles()
                .create_role(pb::CreateRoleRequest {
                    name: name.into(),
                    permissions,
                    included_roles,
                    ..Default::default()
                })
                .await;
        }
        20..=21 => {
            let _ = admin
                .roles()
                .delete_role(pb::DeleteRoleRequest {
                    role: Some(role(rng.pick(&ROLES).unwrap())),
                    force: true,
                    ..Default::default()
                })
                .await;
        }
        22..=31 => {
            let _ = admin
                .roles()
                .add_permissions_to_role(pb::AddPermissionsToRoleRequest {
                    role: Some(role(rng.pick(&ROLES).unwrap())),
                    permissions: vec![perm(rng.pick(&PERMISSIONS).unwrap())],
                    ..Default::default()
                })
                .await;
        }
        32..=37 => {
            let _ = admin
                .roles()
                .remove_permission_from_role(pb::RemovePermissionFromRoleRequest {
                    role: Some(role(rng.pick(&ROLES).unwrap())),
                    permission: Some(perm(rng.pick(&PERMISSIONS).unwrap())),
                    ..Default::default()
                })
                .await;
        }
        38..=65 => {
            let to_group = rng.below(5) == 0 && !world.groups.is_empty();
            let identity = if to_group {
                pb::Identity {
                    id: rng.pick(&world.groups).unwrap().clone(),
                    kind: pb::IdentityKind::Group as i32,
                }
            } else {
                pb::Identity {
                    id: (*rng.pick(&USERS).unwrap()).into(),
                    kind: pb::IdentityKind::User as i32,
                }
            };
            let expires = rng.below(4) == 0;
            let answer = admin
                .assignments()
                .assign_role(pb::AssignRoleRequest {
                    role: Some(role(rng.pick(&ROLES).unwrap())),
                    identity: Some(identity),
                    scope: (*rng.pick(&SCOPES).unwrap()).into(),
                    expire_time: expires.then_some(future),
                    ..Default::default()
                })
                .await;
            if let Ok(answer) = answer
                && let Some(pb::assign_role_response::Result::Assignment(a)) =
                    answer.into_inner().result
            {
                world.assignments.push(a.id);
            }
        }
        66..=79 => {
            if world.assignments.is_empty() {
                return;
            }
            let at = rng.below(world.assignments.len());
            let id = world.assignments.swap_remove(at);
            let _ = admin
                .assignments()
                .revoke_assignment(pb::RevokeAssignmentRequest {
                    assignment_id: id,
                    ..Default::default()
                })
                .await;
        }
        80..=83 => {
            let name = *rng.pick(&GROUPS).unwrap();
            if let Ok(group) = admin
                .groups()
                .create_group(pb::CreateGroupRequest {
                    name: name.into(),
                    ..Default::default()
                })
                .await
            {
                world.groups.push(group.into_inner().id);
            }
        }
        84..=93 => {
            let Some(group) = rng.pick(&world.groups).cloned() else {
                return;
            };
            let members = (0..1 + rng.below(3))
                .map(|_| (*rng.pick(&USERS).unwrap()).to_owned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if rng.below(3) == 0 {
                let _ = admin
                    .groups()
                    .remove_group_members(pb::RemoveGroupMembersRequest {
                        group_id: group,
                        identity_ids: members,
                        ..Default::default()
                    })
                    .await;
            } else {
                let _ = admin
                    .groups()
                    .add_group_members(pb::AddGroupMembersRequest {
                        group_id: group,
                        identity_ids: members,
                        ..Default::default()
                    })
                    .await;
            }
        }
        _ => {
            if world.groups.is_empty() {
                return;
            }
            let at = rng.below(world.groups.len());
            let group = world.groups.swap_remove(at);
            let _ = admin
                .groups()
                .delete_group(pb::DeleteGroupRequest {
                    group_id: group,
                    force: true,
                    ..Default::default()
                })
                .await;
        }
    }
}

/// Questions about every user and permission at a few resources (and one unknown permission).
fn questions(rng: &mut Rng) -> Vec<pb::CheckRequest> {
    let mut items = Vec::new();
    for _ in 0..12 {
        items.push(pb::CheckRequest {
            identity_id: (*rng.pick(&USERS).unwrap()).into(),
            permission: (*rng.pick(&PERMISSIONS).unwrap()).into(),
            resource: (*rng.pick(&SCOPES).unwrap()).into(),
            ..Default::default()
        });
    }
    items.push(pb::CheckRequest {
        identity_id: "u0".into(),
        permission: "never:created".into(),
        ..Default::default()
    });
    items
}

/// The server's answers and the cache's, at the server's current revision; panics on any
/// difference.
async fn compare(admin: &Client, checker: &LocalChecker, rng: &mut Rng, step: usize) -> u64 {
    let items = questions(rng);
    let server = admin
        .authorization()
        .batch_check(pb::BatchCheckRequest {
            items: items.clone(),
        })
        .await
        .expect("BatchCheck")
        .into_inner()
        .results;
    let revision = server[0].revision;
    assert!(
        checker
            .wait_for_revision(revision, Duration::from_secs(10))
            .await,
        "step {step}: the cache reaches revision {revision} (it has {})",
        checker.revision()
    );
    for (item, answer) in items.iter().zip(&server) {
        let local = checker
            .check_local(&item.identity_id, &item.permission, &item.resource)
            .expect("valid")
            .expect("the cache is exact");
        assert_eq!(
            local.revision, revision,
            "step {step}: one writer, one revision"
        );
        assert_eq!(
            (local.allowed, local.reason as i32),
            (answer.allowed, answer.reason),
            "step {step}, revision {revision}: {item:?}"
        );
    }
    revision
}

async fn admin_of(server: &Server) -> Client {
    client(server, ADMIN).await
}

/// 5,000 random writes; after each, 13 questions answered by both at one revision.
async fn the_cache_agrees_with_the_server(url: String) {
    let server = serve(&url).await;
    let admin = admin_of(&server).await;
    let checker = LocalChecker::start(admin.clone(), LocalOptions::default())
        .await
        .expect("the cache loads");
    let seed = std::env::var("WARDEN_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
    eprintln!("seed {seed} (WARDEN_DIFF_SEED)");
    let mut rng = Rng(seed);
    let mut world = World::default();
    let mut revisions = std::collections::BTreeSet::new();
    for step in 0..5_000 {
        random_write(&admin, &mut rng, &mut world).await;
        revisions.insert(compare(&admin, &checker, &mut rng, step).await);
    }
    // The writes did move the tenant: most of them committed.
    assert!(revisions.len() > 2_000, "{} revisions", revisions.len());
    assert_eq!(checker.loads(), 1);
    // A check asked at a revision the cache has is answered locally; one ahead of both waits,
    // then goes to the server (which refuses what it cannot reach).
    let at = checker.revision();
    let answer = checker
        .check(pb::CheckRequest {
            identity_id: "u1".into(),
            permission: "docs:read".into(),
            at_least_revision: at,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(answer.revision, at);
    let err = checker
        .check(pb::CheckRequest {
            identity_id: "u1".into(),
            permission: "docs:read".into(),
            at_least_revision: at + 1_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unavailable));
    // Input is validated as the server does.
    let err = checker
        .check_local("u1", "Not A Permission", "")
        .unwrap_err();
    assert_eq!(err.reason(), Some(ErrorReason::InvalidArgument));
}

/// A response body that fails after `frames` data frames, or at once when `cut` is set.
struct Cut {
    inner: Body,
    frames: usize,
    cut: Arc<AtomicBool>,
}

impl http_body::Body for Cut {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        if self.frames == 0 || self.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Some(Err(tonic::Status::unavailable("connection cut"))));
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && frame.is_data()
        {
            self.frames -= 1;
        }
        polled
    }
}

/// A transport whose WatchChanges streams break: the first `cut_first` after a few frames, and
/// every one while `blocked` is set (new ones refused as UNAVAILABLE).
fn faulty(
    server: &Server,
    cut_first: usize,
    blocked: Arc<AtomicBool>,
    watches: Arc<AtomicUsize>,
) -> Transport {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect_lazy();
    Transport::new(tower::service_fn(move |request: http::Request<Body>| {
        let mut channel = channel.clone();
        let blocked = blocked.clone();
        let watches = watches.clone();
        async move {
            let watch = request.uri().path() == "/warden.v1.AuditService/WatchChanges";
            if watch && blocked.load(Ordering::SeqCst) {
                return Ok(tonic::Status::unavailable("blocked").into_http::<Body>());
            }
            let response = channel.ready().await?.call(request).await?;
            if !watch {
                return Ok(response);
            }
            let n = watches.fetch_add(1, Ordering::SeqCst);
            let frames = if n < cut_first { 3 } else { usize::MAX };
            Ok::<_, warden_client::TransportError>(response.map(|inner| {
                Body::new(Cut {
                    inner,
                    frames,
                    cut: blocked,
                })
            }))
        }
    }))
}

/// Streams cut after three frames (twice) and a stretch with no stream at all while the change
/// log is pruned past the cache: it resumes, then reloads, and agrees throughout.
async fn the_cache_recovers_from_cuts_and_gaps(url: String) {
    let mut config = config(&url);
    config.change_retention = Duration::from_secs(2);
    config.sweep_interval = Duration::from_millis(100);
    let server = serve_with(config).await;
    let admin = admin_of(&server).await;
    let blocked = Arc::new(AtomicBool::new(false));
    let watches = Arc::new(AtomicUsize::new(0));
    let following = Client::builder("http://unused")
        .token(TokenSource::Static(token(ADMIN)))
        .backoff(Duration::from_millis(20))
        .with_transport(faulty(&server, 2, blocked.clone(), watches.clone()));
    let options = LocalOptions {
        backoff: Duration::from_millis(20),
        ..LocalOptions::default()
    };
    let checker = LocalChecker::start(following, options).await.unwrap();
    let mut rng = Rng(7);
    let mut world = World::default();
    // Cuts: the first two streams break after three frames; the cache resumes each time.
    for step in 0..200 {
        random_write(&admin, &mut rng, &mut world).await;
        compare(&admin, &checker, &mut rng, step).await;
    }
    assert!(
        checker.resumes() >= 1,
        "resumed {} times",
        checker.resumes()
    );
    assert!(watches.load(Ordering::SeqCst) >= 3);
    assert_eq!(checker.loads(), 1);

    // A gap: no stream while writes happen and the log is pruned past the cache's revision.
    blocked.store(true, Ordering::SeqCst);
    let stale = checker.revision();
    for _ in 0..30 {
        random_write(&admin, &mut rng, &mut world).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(checker.revision() <= stale + 1, "the cache was cut off");
    blocked.store(false, Ordering::SeqCst);
    for step in 200..400 {
        random_write(&admin, &mut rng, &mut world).await;
        compare(&admin, &checker, &mut rng, step).await;
    }
    assert_eq!(checker.loads(), 2, "history was gone: one more snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_agrees_with_the_server_sqlite() {
    let db = Database::sqlite();
    the_cache_agrees_with_the_server(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_agrees_with_the_server_postgres() {
    let db = Database::postgres();
    the_cache_agrees_with_the_server(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_recovers_from_cuts_and_gaps_sqlite() {
    let db = Database::sqlite();
    the_cache_recovers_from_cuts_and_gaps(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_recovers_from_cuts_and_gaps_postgres() {
    let db = Database::postgres();
    the_cache_recovers_from_cuts_and_gaps(db.url.clone()).await;
}
