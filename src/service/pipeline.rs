//! The one write pipeline. Every mutating use-case is a `Command`; `Service::write` runs it
//! through authorize -> idempotency replay -> checks -> begin -> apply -> approval gate (from
//! the change's effect, `gate.rs`) -> finish (audit and
//! change log, commit, publish to the index, or the dry-run impact; the response remembered
//! under its idempotency key). A command's `apply` only sees the open transaction, so no write
//! can skip a step. Knows nothing of tonic.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Outcome, Service, WriteOptions};
use crate::domain::{Caller, Error};
use crate::store::WriteTx;

/// What a command did inside its transaction: the value the caller gets back, and the
/// change-log entry (`kind`, `target`) the commit writes beside the audit events.
#[derive(Debug)]
pub struct Applied<T> {
    pub value: T,
    pub kind: &'static str,
    pub target: String,
}

impl<T> Applied<T> {
    pub(super) fn new(kind: &'static str, target: impl ToString, value: T) -> Self {
        Self {
            value,
            kind,
            target: target.to_string(),
        }
    }
}

/// A validated mutating request (built by the edge from the wire request).
pub trait Command: Send + 'static {
    /// What the write answers; kept as JSON so a retry with the same idempotency key gets it back.
    type Output: Serialize + DeserializeOwned + Send + Sync;

    /// The permissions the caller must hold, checked in order before anything is read; the
    /// first one missing is PERMISSION_DENIED.
    fn permissions(&self) -> &'static [&'static str];

    /// True for writes judged where they apply (assignments at a scope): the pipeline then
    /// asks only that the caller hold each permission at some scope, and `apply` checks it at
    /// the write's own scope (`Service::authorize_at`). False: tenant-wide, checked here.
    fn scoped(&self) -> bool {
        false
    }

    /// Rules on the request alone (reserved names, an expiry in the past), checked once a
    /// replay missed and before the transaction opens. None by default.
    fn check(&self, _service: &Service) -> Result<(), Error> {
        Ok(())
    }

    /// A copy to run optimistically (`writer.rs`): a lone write that reads nothing but the
    /// index is then committed by one statement, and run again, locked, if the tenant's
    /// revision moved meanwhile or it failed. `None` (the default): always run locked. Worth
    /// it for small, frequent writes that usually read only the index (assignments).
    fn copy(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// The change: reads, writes, index deltas and audit records, all inside `tx`. It cannot
    /// commit; `write` does that (or rolls back on a dry run or an error).
    fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> impl Future<Output = Result<Applied<Self::Output>, Error>> + Send;
}

impl Service {
    /// Runs `command` for `caller`: the only way a mutating RPC changes anything.
    /// Fails with the command's own errors, PERMISSION_DENIED, or, for a reused idempotency key
    /// with another body, FAILED_PRECONDITION `IDEMPOTENCY_KEY_REUSED`.
    pub async fn write<C: Command + 'static>(
        &self,
        caller: &Caller,
        opts: WriteOptions,
        command: C,
    ) -> Result<Outcome<C::Output>, Error> {
        // Known down (the health probe's last ping failed): fail fast, not after a timeout.
        if !self.sync.freshness().database_up() {
            return Err(Error::Unavailable {
                message: "the database is unreachable; retry with backoff".into(),
            });
        }
        for permission in command.permissions() {
            if command.scoped() {
                self.authorize_somewhere(caller, permission)?;
            } else {
                self.authorize(caller, permission)?;
            }
        }
        // A dry run changes nothing, so it is neither replayed nor remembered.
        let Some(key) = opts.idempotency.clone().filter(|_| !opts.dry_run) else {
            return self.run(caller, opts, command).await;
        };
        if let Some(replay) = self.replay(caller, &key).await? {
            return Ok(replay);
        }
        match self.run(caller, opts, command).await {
            // A concurrent request with the same key committed first; ours rolled back.
            Err(Error::AlreadyExists {
                kind: "idempotency key",
                ..
            }) => self.replay(caller, &key).await?.ok_or_else(Error::conflict),
            // Failing because a concurrent twin already did the work (ALREADY_EXISTS, NOT_FOUND
            // of what it deleted): the twin's answer is this request's answer. Failures are
            // answered after their batch commits, so a twin in the same batch is visible.
            Err(e) => match self.replay(caller, &key).await {
                Ok(Some(first)) => Ok(first),
                _ => Err(e),
            },
            ok => ok,
        }
    }

    async fn run<C: Command + 'static>(
        &self,
        caller: &Caller,
        opts: WriteOptions,
        command: C,
    ) -> Result<Outcome<C::Output>, Error> {
        command.check(self)?;
        if opts.dry_run {
            // Rolled back, so it needs no place in the tenant's queue.
            let mut tx = self.begin(caller).await?;
            let Applied {
                value,
                kind,
                target,
            } = command.apply(self, caller, &mut tx).await?;
            self.enforce_approval_gate(caller, &tx).await?;
            return self.finish(tx, opts, kind, &target, value).await;
        }
        let (value, revision) = self.submit(caller, &opts, command).await?;
        if opts.wait_for_propagation {
            self.wait_for_propagation(&caller.tenant, revision, self.settings.propagation_wait)
                .await?;
        }
        Ok(Outcome {
            value,
            revision,
            impact: None,
        })
    }
}
