//! The local decision cache's cost: in-process Check latency (p50/p99/p99.9 over 1,000,000
//! decisions) and heap per assignment, against a Warden started in this process on SQLite.
//!
//! cargo run --release -p warden-client --example local_check_bench [ASSIGNMENTS]
//!
//! Heap is counted by a wrapping global allocator: the bytes live after the cache loaded minus
//! those live before (the server's own index is built before the first reading).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use warden::config::{AuthConfig, Config, DatabaseConfig};
use warden_client::pb;
use warden_client::{Client, LocalChecker, LocalOptions, TokenSource};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256";
const ISSUER: &str = "https://issuer.bench";
const AUDIENCE: &str = "warden";
const PERMISSIONS: usize = 50;
const ROLES: usize = 20;

fn role(name: String) -> pb::RoleRef {
    pb::RoleRef {
        r#ref: Some(pb::role_ref::Ref::Name(name)),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let assignments: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("warden-local-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        database: DatabaseConfig::at(&format!(
            "sqlite://{}?mode=rwc",
            dir.join("warden.db").display()
        )),
        auth: AuthConfig {
            hs256_secret: Some(SECRET.to_owned().into()),
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            ..AuthConfig::default()
        },
        bootstrap_admins: vec!["admin".into()],
        ..Config::default()
    };
    let app = warden::App::build(config).await.expect("the server starts");
    let addr = app.local_addr();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let token = warden::grpc::mint_hs256(
        SECRET,
        "admin",
        None,
        "tenant",
        Some(ISSUER),
        Some(AUDIENCE),
        Duration::from_secs(3600),
    )
    .unwrap();
    let client = Client::builder(format!("http://{addr}"))
        .token(TokenSource::Static(token))
        .connect()
        .await
        .unwrap();

    // A catalogue of 50 permissions in 20 roles of 5, and `assignments` users with one role
    // each, in batches of 1,000.
    for p in 0..PERMISSIONS {
        client
            .create_permission(pb::CreatePermissionRequest {
                name: format!("svc:perm{p}"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    for r in 0..ROLES {
        client
            .create_role(pb::CreateRoleRequest {
                name: format!("role{r}"),
                permissions: (0..5)
                    .map(|i| pb::PermissionRef {
                        r#ref: Some(pb::permission_ref::Ref::Name(format!(
                            "svc:perm{}",
                            (r * 5 + i) % PERMISSIONS
                        ))),
                    })
                    .collect(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let started = Instant::now();
    for batch in 0..assignments.div_ceil(1000) {
        let items = (batch * 1000..((batch + 1) * 1000).min(assignments))
            .map(|n| pb::AssignmentItem {
                role: Some(role(format!("role{}", n % ROLES))),
                identity: Some(pb::Identity {
                    id: format!("user-{n:07}"),
                    kind: pb::IdentityKind::User as i32,
                }),
                ..Default::default()
            })
            .collect();
        client
            .batch_assign_roles(pb::BatchAssignRolesRequest {
                items,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    eprintln!(
        "seeded {assignments} assignments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = LIVE.load(Ordering::SeqCst);
    let started = Instant::now();
    let checker = LocalChecker::start(client.clone(), LocalOptions::default())
        .await
        .expect("the cache loads");
    let load = started.elapsed();
    // Let the server free its snapshot buffers and the stream settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = LIVE.load(Ordering::SeqCst);
    // And the bootstrap admin's.
    assert_eq!(checker.assignment_count(), assignments + 1);

    // 1,000,000 decisions over random users and permissions (about 1 in 10 allowed), each
    // timed alone.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let queries: Vec<(String, String)> = (0..4096)
        .map(|_| {
            (
                format!("user-{:07}", next() as usize % assignments),
                format!("svc:perm{}", next() as usize % PERMISSIONS),
            )
        })
        .collect();
    let mut samples = Vec::with_capacity(1_000_000);
    let mut allowed = 0usize;
    for i in 0..1_000_000 {
        let (identity, permission) = &queries[i % queries.len()];
        let t = Instant::now();
        let decision = checker
            .check_local(identity, permission, "")
            .unwrap()
            .unwrap();
        samples.push(t.elapsed().as_nanos() as u64);
        allowed += decision.allowed as usize;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!("local check: assignments {assignments}, decisions 1000000, allowed {allowed}");
    println!(
        "local check latency ns: p50 {} p99 {} p99.9 {} max {}",
        at(0.50),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1]
    );
    println!(
        "local cache: load {:.2} s, heap {} bytes, {:.1} bytes per assignment",
        load.as_secs_f64(),
        after - before,
        (after - before) as f64 / assignments as f64
    );
    drop(checker);
    let _ = std::fs::remove_dir_all(&dir);
}
