//! Group commit per tenant. A tenant's writes serialize on its revision counter anyway, so
//! instead of queueing on the database lock one transaction at a time, they queue here: the
//! first write of an idle tenant starts a writer task, which takes every write waiting for that
//! tenant (up to `MAX_BATCH`), runs them one after the other in one transaction (each in its own
//! savepoint, with its own revision, audit events and answer) and commits once. Writes arriving
//! meanwhile form the next batch. A lone write costs what it did before; a crowd shares the lock
//! and the WAL flush.
//!
//! A lone write whose command offers a copy (`Command::copy`) is first run optimistically on
//! PostgreSQL: against the index at the tenant revision it holds, with no transaction, the lock
//! or a round trip until it needs one, and committed by one statement that only holds if the
//! tenant is still at that revision. Anything else (the revision moved, the write failed, it
//! needed the database) runs it again the usual way, locked, so its answer is the one a
//! locked run gives.
//!
//! The task is spawned, not run by the first caller, so a client that disconnects cannot abandon
//! the other callers' writes half-way.

use std::collections::{HashMap, VecDeque};

use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tracing::Instrument as _;

use super::pipeline::{Applied, Command};
use super::{Service, WriteOptions};
use crate::domain::{Caller, Error, Revision, TenantId};
use crate::store::{MAX_BATCH, WriteTx};

/// What a queued write reports once its batch is settled: its value and revision.
type Reply<T> = Result<(T, Revision), Error>;

/// The tenants with a writer task running, and the writes waiting for each.
#[derive(Default)]
pub(super) struct Writers {
    queues: parking_lot::Mutex<HashMap<TenantId, VecDeque<Box<dyn QueuedWrite>>>>,
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("busy_tenants", &self.queues.lock().len())
            .finish()
    }
}

impl Service {
    /// Queues `command` behind the tenant's other writes and waits until its batch commits (and
    /// this replica's index shows it). Its errors are its own: another write of the batch
    /// failing does not fail it.
    pub(super) async fn submit<C: Command + 'static>(
        &self,
        caller: &Caller,
        opts: &WriteOptions,
        command: C,
    ) -> Result<(C::Output, Revision), Error> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            command,
            attempt: None,
            caller: caller.clone(),
            opts: opts.clone(),
            reply,
            span: tracing::Span::current(),
        });
        let start = {
            let mut queues = self.writers.queues.lock();
            match queues.get_mut(&caller.tenant) {
                Some(queue) => {
                    queue.push_back(job);
                    false
                }
                None => {
                    queues.insert(caller.tenant.clone(), VecDeque::from([job as Box<_>]));
                    true
                }
            }
        };
        if start {
            tokio::spawn(self.clone().drain(caller.tenant.clone()));
        }
        answer.await.map_err(|_| {
            Error::Internal(anyhow::anyhow!(
                "the tenant's writer stopped before answering"
            ))
        })?
    }

    /// The writer task: commits the tenant's queued writes batch by batch until none wait.
    async fn drain(self, tenant: TenantId) {
        let mut running = Running {
            writers: &self.writers,
            tenant: &tenant,
            done: false,
        };
        loop {
            let batch: Vec<Box<dyn QueuedWrite>> = {
                let mut queues = self.writers.queues.lock();
                let Some(queue) = queues.get_mut(&tenant) else {
                    break;
                };
                if queue.is_empty() {
                    queues.remove(&tenant);
                    break;
                }
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            self.commit_batch(&tenant, batch).await;
        }
        running.done = true;
    }

    async fn commit_batch(&self, tenant: &TenantId, mut writes: Vec<Box<dyn QueuedWrite>>) {
        if self.store.is_postgres()
            && let [write] = writes.as_mut_slice()
            && write.prepare_attempt()
        {
            match self.commit_optimistic(tenant, writes.remove(0)).await {
                None => return,
                Some(write) => writes.push(write),
            }
        }
        let mut settled: Vec<(Box<dyn Settle>, bool)> = Vec::with_capacity(writes.len());
        let mut waiting = writes.into_iter();
        let committed = async {
            let mut batch = self.store.begin_batch(tenant, waiting.len()).await?;
            for write in waiting.by_ref() {
                let caller = write.caller().clone();
                let mut tx = batch.begin_write(&caller, self.now()).await?;
                let (applied, settle) = write.run(self, &mut tx).await;
                match applied {
                    Some((kind, target)) => {
                        batch.keep(tx, kind, &target).await?;
                        settled.push((settle, true));
                    }
                    None => {
                        batch.discard(tx).await?;
                        settled.push((settle, false));
                    }
                }
            }
            batch.commit().await
        }
        .await;
        match committed {
            Ok(changes) => {
                for change in &changes {
                    // The write is durable; a failed catch-up is retried by the periodic one
                    // and must not make a committed write look failed.
                    if let Err(e) = self.sync.apply_own(change).await {
                        tracing::warn!(error = %e, tenant = %tenant, "applying own commit failed");
                    }
                }
                let mut revisions = changes.iter().map(|c| c.revision);
                for (settle, kept) in settled {
                    let revision = if kept { revisions.next() } else { None };
                    settle.settle(Ok(revision.unwrap_or_default()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, tenant = %tenant, "group commit failed");
                for (settle, _) in settled {
                    settle.settle(Err(retell(&e)));
                }
                for write in waiting {
                    write.refuse(retell(&e));
                }
            }
        }
    }
}

impl Service {
    /// Runs `write`'s copy against the index and commits it in one statement if the tenant is
    /// still at the index's revision. Gives the write back, unanswered, when it must run again
    /// locked.
    async fn commit_optimistic(
        &self,
        tenant: &TenantId,
        write: Box<dyn QueuedWrite>,
    ) -> Option<Box<dyn QueuedWrite>> {
        let base = self.engine.applied_revision(tenant);
        let mut batch = self.store.begin_deferred(tenant, base);
        let caller = write.caller().clone();
        let mut tx = match batch.begin_write(&caller, self.now()).await {
            Ok(tx) => tx,
            Err(_) => return Some(write),
        };
        let (applied, settle) = write.run(self, &mut tx).await;
        let committed = match applied {
            Some((kind, target)) if !tx.is_stale() => match batch.keep(tx, kind, &target).await {
                Ok(_) => batch.commit().await.ok(),
                Err(_) => None,
            },
            // A failure may come from an index behind the database: only a locked run says.
            _ => {
                let _ = batch.discard(tx).await;
                None
            }
        };
        let Some(changes) = committed else {
            return settle.retry();
        };
        for change in &changes {
            if let Err(e) = self.sync.apply_own(change).await {
                tracing::warn!(error = %e, tenant = %tenant, "applying own commit failed");
            }
        }
        let revision = changes.last().map(|c| c.revision).unwrap_or_default();
        settle.settle(Ok(revision));
        None
    }
}

/// A batch's failure, told to each of its writes.
fn retell(e: &Error) -> Error {
    match e {
        Error::Aborted { .. } => Error::conflict(),
        Error::Unavailable { message } => Error::Unavailable {
            message: message.clone(),
        },
        other => Error::Internal(anyhow::anyhow!("group commit failed: {other}")),
    }
}

/// Clears the tenant's queue if its writer task ends without draining it (a panic), so the
/// tenant's next write starts a new task; the writes still queued get an error.
struct Running<'a> {
    writers: &'a Writers,
    tenant: &'a TenantId,
    done: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.writers.queues.lock().remove(self.tenant);
        }
    }
}

/// A queued write with its command's types erased, so one queue holds every kind of write.
trait QueuedWrite: Send {
    fn caller(&self) -> &Caller;

    /// Applies the write inside `tx`. Returns the change-log entry when it succeeded (`None`
    /// when it failed and must be rolled back) and what answers its caller once the batch is
    /// settled; failures are answered then too, so that a retry of the same idempotency key
    /// finds the committed response.
    fn run<'a>(self: Box<Self>, service: &'a Service, tx: &'a mut WriteTx) -> BoxFuture<'a, Ran>;

    /// Answers without running: the batch failed before reaching this write.
    fn refuse(self: Box<Self>, error: Error);

    /// Readies an optimistic run (`run` will apply a copy and keep the write for a second,
    /// locked run); false when the command offers no copy.
    fn prepare_attempt(&mut self) -> bool;
}

/// What running one write gave: its change-log entry (`kind`, `target`) when it succeeded, and
/// how to answer it once the batch is settled.
type Ran = (Option<(&'static str, String)>, Box<dyn Settle>);

/// Answers one write once its batch committed (with its revision) or failed.
trait Settle: Send {
    fn settle(self: Box<Self>, committed: Result<Revision, Error>);

    /// The write back, unanswered, after an optimistic run that must be run again locked.
    fn retry(self: Box<Self>) -> Option<Box<dyn QueuedWrite>>;
}

struct Job<C: Command> {
    command: C,
    /// The copy an optimistic run applies, `command` kept for a locked run after it.
    attempt: Option<C>,
    caller: Caller,
    opts: WriteOptions,
    reply: oneshot::Sender<Reply<C::Output>>,
    /// The request's span: what the write logs is logged under its request id.
    span: tracing::Span,
}

struct Answer<C: Command> {
    result: Result<C::Output, Error>,
    reply: ReplyTo<C>,
}

/// Whom an answer goes to: the caller, or, after an optimistic run, the write itself, which
/// answers its caller or runs again.
enum ReplyTo<C: Command> {
    Caller(oneshot::Sender<Reply<C::Output>>),
    Job(Box<Job<C>>),
}

impl<C: Command + 'static> QueuedWrite for Job<C> {
    fn caller(&self) -> &Caller {
        &self.caller
    }

    fn run<'a>(self: Box<Self>, service: &'a Service, tx: &'a mut WriteTx) -> BoxFuture<'a, Ran> {
        let span = self.span.clone();
        Box::pin(
            async move {
                let mut job = self;
                let (command, caller, opts, reply) = match job.attempt.take() {
                    Some(copy) => (
                        copy,
                        job.caller.clone(),
                        job.opts.clone(),
                        ReplyTo::Job(job),
                    ),
                    None => {
                        let Job {
                            command,
                            caller,
                            opts,
                            reply,
                            ..
                        } = *job;
                        (command, caller, opts, ReplyTo::Caller(reply))
                    }
                };
                let applied = async {
                    let Applied {
                        value,
                        kind,
                        target,
                    } = command.apply(service, &caller, tx).await?;
                    service.enforce_approval_gate(&caller, tx).await?;
                    if let Some(key) = &opts.idempotency {
                        service.remember(tx, tx.rpc(), key, &value).await?;
                    }
                    // Sharing a group commit, its staged rows are written now, so that a
                    // collision fails this write, not the batch.
                    tx.flush_staged_if_shared().await?;
                    Ok::<_, Error>((value, kind, target))
                }
                .await;
                match applied {
                    Ok((value, kind, target)) => (
                        Some((kind, target)),
                        Box::new(Answer {
                            result: Ok(value),
                            reply,
                        }) as Box<dyn Settle>,
                    ),
                    Err(e) => (
                        None,
                        Box::new(Answer::<C> {
                            result: Err(e),
                            reply,
                        }) as Box<dyn Settle>,
                    ),
                }
            }
            .instrument(span),
        )
    }

    fn refuse(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }

    fn prepare_attempt(&mut self) -> bool {
        self.attempt = self.command.copy();
        self.attempt.is_some()
    }
}

impl<C: Command + 'static> Settle for Answer<C> {
    fn settle(self: Box<Self>, committed: Result<Revision, Error>) {
        let answer = match (self.result, committed) {
            (Ok(value), Ok(revision)) => Ok((value, revision)),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        };
        let reply = match self.reply {
            ReplyTo::Caller(reply) => reply,
            ReplyTo::Job(job) => job.reply,
        };
        // The caller may have gone away; its write stands.
        let _ = reply.send(answer);
    }

    fn retry(self: Box<Self>) -> Option<Box<dyn QueuedWrite>> {
        match self.reply {
            ReplyTo::Job(job) => Some(job),
            // Not an optimistic run (never asked to retry): a conflict the client may retry.
            ReplyTo::Caller(reply) => {
                let _ = reply.send(Err(Error::conflict()));
                None
            }
        }
    }
}
