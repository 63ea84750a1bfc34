//! AssignRole load for `benches/run.sh`'s writes section: N clients, each on its own HTTP/2
//! connection, each sending one AssignRole at a time (a new identity every call, no
//! idempotency key, no retries), for a fixed time after one second of warm-up. The client side
//! of a pgbench run, written so that it costs the machine little next to the server it measures.
//!
//! write_load --addr 127.0.0.1:50051 --tokens T1,T2 --clients 16 --duration 10
//!
//! Client i uses token i mod the number of tokens (its tenant). Before starting, each tenant gets
//! the permission `writes.read` and the role `writes.reader` (ALREADY_EXISTS is fine). Prints one
//! JSON line: `{"clients":N,"tenants":T,"ok":…,"errors":…,"per_s":…}`.

use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use warden_client::pb;

struct Args {
    addr: String,
    tokens: Vec<String>,
    clients: usize,
    duration: Duration,
}

fn args() -> anyhow::Result<Args> {
    let mut addr = None;
    let mut tokens = None;
    let mut clients = 1;
    let mut duration = Duration::from_secs(10);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => addr = Some(value),
            "--tokens" => tokens = Some(value.split(',').map(str::to_owned).collect()),
            "--clients" => clients = value.parse()?,
            "--duration" => duration = Duration::from_secs_f64(value.parse()?),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(Args {
        addr: addr.ok_or_else(|| anyhow::anyhow!("--addr is required"))?,
        tokens: tokens.ok_or_else(|| anyhow::anyhow!("--tokens is required"))?,
        clients,
        duration,
    })
}

fn authorized<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}"))?,
    );
    Ok(request)
}

async fn prepare(channel: Channel, token: &str) -> anyhow::Result<()> {
    let created = pb::permission_service_client::PermissionServiceClient::new(channel.clone())
        .create_permission(authorized(
            pb::CreatePermissionRequest {
                name: "writes.read".into(),
                ..Default::default()
            },
            token,
        )?)
        .await;
    allow_existing(created.map(drop))?;
    let created = pb::role_service_client::RoleServiceClient::new(channel)
        .create_role(authorized(
            pb::CreateRoleRequest {
                name: "writes.reader".into(),
                permissions: vec![pb::PermissionRef {
                    r#ref: Some(pb::permission_ref::Ref::Name("writes.read".into())),
                }],
                ..Default::default()
            },
            token,
        )?)
        .await;
    allow_existing(created.map(drop))
}

fn allow_existing(outcome: Result<(), tonic::Status>) -> anyhow::Result<()> {
    match outcome {
        Err(status) if status.code() != tonic::Code::AlreadyExists => Err(status.into()),
        _ => Ok(()),
    }
}

/// One client's (ok, errors) counted between `start` and `stop`.
async fn client(
    channel: Channel,
    token: String,
    prefix: String,
    start: Instant,
    stop: Instant,
) -> anyhow::Result<(u64, u64)> {
    let mut stub = pb::assignment_service_client::AssignmentServiceClient::new(channel);
    let (mut ok, mut errors) = (0, 0);
    for k in 0u64.. {
        if Instant::now() >= stop {
            break;
        }
        let request = authorized(
            pb::AssignRoleRequest {
                role: Some(pb::RoleRef {
                    r#ref: Some(pb::role_ref::Ref::Name("writes.reader".into())),
                }),
                identity: Some(pb::Identity {
                    id: format!("{prefix}-{k}"),
                    kind: pb::IdentityKind::User.into(),
                }),
                ..Default::default()
            },
            &token,
        )?;
        let succeeded = stub.assign_role(request).await.is_ok();
        let now = Instant::now();
        if now >= start && now < stop {
            if succeeded {
                ok += 1;
            } else {
                errors += 1;
            }
        }
    }
    Ok((ok, errors))
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    // One thread: the client should take as little of the machine as it can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let endpoint = Endpoint::from_shared(format!("http://{}", args.addr))?
            .timeout(Duration::from_secs(30));
        let setup = endpoint.connect().await?;
        for token in &args.tokens {
            prepare(setup.clone(), token).await?;
        }
        let run = format!(
            "w-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
        );
        let start = Instant::now() + Duration::from_secs(1);
        let stop = start + args.duration;
        let mut tasks = Vec::new();
        for i in 0..args.clients {
            // Each client its own connection, as each pgbench client has its own.
            let channel = endpoint.connect().await?;
            let token = args.tokens[i % args.tokens.len()].clone();
            tasks.push(tokio::spawn(client(
                channel,
                token,
                format!("{run}-{i}"),
                start,
                stop,
            )));
        }
        let (mut ok, mut errors) = (0, 0);
        for task in tasks {
            let (o, e) = task.await??;
            ok += o;
            errors += e;
        }
        println!(
            "{{\"clients\":{},\"tenants\":{},\"ok\":{ok},\"errors\":{errors},\"per_s\":{:.1}}}",
            args.clients,
            args.tokens.len(),
            ok as f64 / args.duration.as_secs_f64()
        );
        Ok(())
    })
}
