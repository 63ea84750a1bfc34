//! Group commit: several writes of one tenant in one database transaction, each with its own
//! revision, change-log row and audit events, and one commit (one lock of the tenant's counter
//! row, one WAL flush) for all of them. Also the tail every commit shares: the change-log rows,
//! the audit rows and the notification, in as few statements as the engine allows.

use anyhow::Context as _;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait, Value,
};

use super::{Store, WriteTx, db_error, micros, one_parameter, rev_i64};
use crate::domain::{AuditEventId, AuditRecord, Caller, Change, Delta, Error, Revision, TenantId};

/// Most writes one group commit takes from a tenant's queue.
pub const MAX_BATCH: usize = 64;

/// Rows per multi-row INSERT, well under both engines' bound-parameter limits (13 columns).
pub(super) const ROWS_PER_INSERT: usize = 2_000;

/// Locks the tenant's counter row (creating it at 0) and reads its revision, without taking one:
/// the batch learns how many of its writes succeed before it moves the counter.
const LOCK_REVISION_SQL: &str = "INSERT INTO tenant_revisions (tenant_id, revision) VALUES (?, 0) \
     ON CONFLICT (tenant_id) DO UPDATE SET revision = tenant_revisions.revision \
     RETURNING revision";

/// Locks `tenant`'s counter row until the transaction ends and reads its revision.
pub(super) async fn lock_revision(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
) -> Result<Revision, Error> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            one_parameter(backend, LOCK_REVISION_SQL),
            [tenant.as_str().into()],
        ))
        .await
        .map_err(db_error)?
        .context("no revision returned")?;
    let revision: i64 = row.try_get("", "revision").map_err(db_error)?;
    Ok(Revision(
        u64::try_from(revision).context("negative revision")?,
    ))
}

/// A write run optimistically: no transaction yet, and the tenant revision of the index it
/// reads. Its first statement begins the transaction (and checks that revision under the lock);
/// a write that needs none is committed by one statement that holds only if the tenant is still
/// at that revision.
#[derive(Debug)]
pub(super) struct Deferred {
    pub db: DatabaseConnection,
    pub base: Revision,
}

/// One write that succeeded inside a batch, waiting for the batch's commit.
#[derive(Debug)]
pub(super) struct Kept {
    pub change: Change,
    pub caller: Caller,
    pub audits: Vec<AuditRecord>,
    /// Assignments the write staged and did not write yet (a write alone in its transaction).
    pub assignments: Vec<crate::domain::Assignment>,
}

/// An open group commit for one tenant. Writes run one after the other; when the batch holds
/// more than one, each runs inside its own savepoint so that a failed one leaves the others
/// intact.
#[derive(Debug)]
pub struct WriteBatch {
    /// `None` while the batch's only write holds the transaction itself.
    txn: Option<DatabaseTransaction>,
    tenant: TenantId,
    /// The tenant's revision after the writes kept so far.
    revision: Revision,
    /// The tenant's revision when the batch took the lock.
    base: Revision,
    /// A kept write changed roles: later writes must read roles from the database.
    roles_changed: bool,
    /// What the kept writes changed, so that later writes can read the index at `base` and
    /// account for them.
    earlier: std::sync::Arc<Vec<Delta>>,
    /// More than one write: each gets a savepoint.
    shared: bool,
    kept: Vec<Kept>,
    notifier: super::changes::Notifier,
    /// The batch's one write runs optimistically (`Store::begin_deferred`): here until that
    /// write begins a transaction.
    deferred: Option<DatabaseConnection>,
}

impl Store {
    /// Opens a group commit for `writes` writes of `tenant`: begins the transaction and locks the
    /// tenant's counter row until commit, so the tenant's revisions stay gapless and in commit
    /// order while other tenants' writes proceed.
    pub async fn begin_batch(&self, tenant: &TenantId, writes: usize) -> Result<WriteBatch, Error> {
        let txn = self.db.begin().await.map_err(db_error)?;
        let revision = lock_revision(&txn, tenant).await?;
        Ok(WriteBatch {
            txn: Some(txn),
            tenant: tenant.clone(),
            revision,
            base: revision,
            roles_changed: false,
            earlier: std::sync::Arc::default(),
            notifier: self.notifier.clone(),
            shared: writes > 1,
            kept: Vec::new(),
            deferred: None,
        })
    }

    /// Opens a batch of one write of `tenant` run optimistically against the index at `base`,
    /// the tenant revision it holds: nothing is sent to the database until the write needs it
    /// (`Deferred`). PostgreSQL only; the write must be run again through `begin_batch` when
    /// it turns out stale or its commit fails.
    pub fn begin_deferred(&self, tenant: &TenantId, base: Revision) -> WriteBatch {
        WriteBatch {
            txn: None,
            tenant: tenant.clone(),
            revision: base,
            base,
            roles_changed: false,
            earlier: std::sync::Arc::default(),
            notifier: self.notifier.clone(),
            shared: false,
            kept: Vec::new(),
            deferred: Some(self.db.clone()),
        }
    }
}

impl WriteBatch {
    /// Opens the next write of the batch, as the tenant's next revision.
    pub async fn begin_write(
        &mut self,
        caller: &Caller,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<WriteTx, Error> {
        debug_assert_eq!(caller.tenant, self.tenant);
        let (txn, deferred) = if let Some(db) = &self.deferred {
            let deferred = Deferred {
                db: db.clone(),
                base: self.base,
            };
            (tokio::sync::OnceCell::new(), Some(deferred))
        } else if self.shared {
            let outer = self.txn.as_ref().context("batch already finished")?;
            let savepoint = outer.begin().await.map_err(db_error)?;
            (tokio::sync::OnceCell::new_with(Some(savepoint)), None)
        } else {
            let txn = self.txn.take().context("batch already finished")?;
            (tokio::sync::OnceCell::new_with(Some(txn)), None)
        };
        Ok(WriteTx {
            txn,
            deferred,
            stale: Default::default(),
            staged: Default::default(),
            alone: !self.shared,
            revision: Revision(self.revision.0 + 1),
            roles_as_of: (!self.roles_changed).then_some(self.base),
            assignments_as_of: Some(self.base),
            earlier: self.earlier.clone(),
            notifier: self.notifier.clone(),
            now,
            caller: caller.clone(),
            deltas: Vec::new(),
            audits: Vec::new(),
            approved: false,
        })
    }

    /// Keeps a write that succeeded: it commits with the batch under the revision it was given,
    /// logged as `kind` on `target`.
    pub async fn keep(&mut self, tx: WriteTx, kind: &str, target: &str) -> Result<Revision, Error> {
        // Rows the write still stages are written by the tail statement.
        let (txn, _, kept) = tx.into_kept(kind, target);
        let deltas = &kept.change.deltas;
        self.roles_changed |= deltas.iter().any(Delta::changes_roles);
        // The write's own handle on `earlier` is gone with it, so this extends in place.
        std::sync::Arc::make_mut(&mut self.earlier).extend(deltas.iter().cloned());
        if self.shared {
            let txn = txn.context("a savepoint was not begun")?;
            txn.commit().await.map_err(db_error)?; // RELEASE SAVEPOINT
        } else {
            if txn.is_some() {
                // The deferred write began its transaction: it commits as any lone write.
                self.deferred = None;
            }
            self.txn = txn;
        }
        let revision = kept.change.revision;
        self.revision = revision;
        self.kept.push(kept);
        Ok(revision)
    }

    /// Undoes a write that failed; the batch's other writes are unaffected.
    pub async fn discard(&mut self, tx: WriteTx) -> Result<(), Error> {
        // Shared: ROLLBACK TO SAVEPOINT. Alone: the whole transaction, which kept nothing.
        // Deferred and never begun: nothing was sent.
        match tx.txn.into_inner() {
            Some(txn) => txn.rollback().await.map_err(db_error),
            None => Ok(()),
        }
    }

    /// Writes the kept writes' change-log rows and audit events, moves the tenant's counter to
    /// the last of them, wakes the other replicas and commits. Returns the committed changes in
    /// revision order (none when every write failed, and then nothing is committed).
    pub async fn commit(mut self) -> Result<Vec<Change>, Error> {
        if let Some(db) = self.deferred.take()
            && !self.kept.is_empty()
        {
            return self.commit_deferred(&db).await;
        }
        let Some(txn) = self.txn else {
            return Ok(Vec::new());
        };
        if self.kept.is_empty() {
            txn.rollback().await.map_err(db_error)?;
            return Ok(Vec::new());
        }
        write_tail(&txn, &self.tenant, &self.kept, Some(self.revision)).await?;
        txn.commit().await.map_err(db_error)?;
        self.notifier.committed(&self.tenant, self.revision);
        Ok(self.kept.into_iter().map(|k| k.change).collect())
    }
}

impl WriteBatch {
    /// Commits the deferred write that never needed a transaction: its rows, its change, its
    /// audit events and the counter in one statement, which fails (and changes nothing) unless
    /// the tenant is still at the revision the write read the index at.
    async fn commit_deferred(self, db: &DatabaseConnection) -> Result<Vec<Change>, Error> {
        let backend = db.get_database_backend();
        let audits: usize = self.kept.iter().map(|k| k.audits.len()).sum();
        let assignments: usize = self.kept.iter().map(|k| k.assignments.len()).sum();
        // Only PostgreSQL has data-modifying CTEs; more rows than one INSERT takes would need
        // a transaction. Either way the write runs again, locked.
        if backend != DbBackend::Postgres
            || audits > ROWS_PER_INSERT
            || assignments > ROWS_PER_INSERT
        {
            return Err(Error::conflict());
        }
        let mut sql = Sql::new(backend);
        let (revision, base, tenant) = (
            sql.param(rev_i64(self.revision)),
            sql.param(rev_i64(self.base)),
            sql.param(self.tenant.as_str()),
        );
        let mut ctes = vec![format!(
            "bump AS (UPDATE tenant_revisions SET revision = {revision} \
             WHERE tenant_id = {tenant} AND revision = {base} RETURNING 1)"
        )];
        let rows: Vec<Vec<Value>> = self
            .kept
            .iter()
            .flat_map(|k| k.assignments.iter().map(super::assignments::assignment_row))
            .collect();
        if !rows.is_empty() {
            ctes.push(sql.insert(super::assignments::ASSIGNMENT_COLUMNS, rows));
        }
        let changes = self
            .kept
            .iter()
            .map(|k| change_row(&k.change))
            .collect::<Result<Vec<_>, Error>>()?;
        ctes.push(sql.insert(CHANGES, changes));
        let audits: Vec<Vec<Value>> = self
            .kept
            .iter()
            .flat_map(|k| {
                k.audits
                    .iter()
                    .map(|record| audit_row(&k.caller, &k.change, record))
            })
            .collect();
        if !audits.is_empty() {
            ctes.push(sql.insert(AUDITS, audits));
        }
        let ctes: Vec<String> = ctes
            .into_iter()
            .enumerate()
            .map(|(i, part)| match i {
                0 => part,
                _ => format!("w{i} AS ({part})"),
            })
            .collect();
        // Every CTE runs whatever the final SELECT reads; the division makes the statement fail
        // whole (SQLSTATE 22012) when the counter was not at `base`, so nothing is kept.
        let text = format!(
            "WITH {} SELECT 1 / (SELECT count(*)::int FROM bump) AS kept",
            ctes.join(", ")
        );
        db.query_one_raw(Statement::from_sql_and_values(backend, text, sql.values))
            .await
            .map_err(db_error)?;
        self.notifier.committed(&self.tenant, self.revision);
        Ok(self.kept.into_iter().map(|k| k.change).collect())
    }
}

/// The end of every write: change-log rows, audit rows and the counter (when the write did not
/// take its revision up front). On PostgreSQL all of it is one statement; SQLite, which has no
/// data-modifying CTEs, gets one statement per table. The notification is sent after commit.
pub(super) async fn write_tail(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    kept: &[Kept],
    counter: Option<Revision>,
) -> Result<(), Error> {
    let backend = txn.get_database_backend();
    let mut audits = chunked(kept.iter().flat_map(|k| {
        k.audits
            .iter()
            .map(|record| audit_row(&k.caller, &k.change, record))
    }))
    .into_iter();
    let changes: Vec<Vec<Value>> = kept
        .iter()
        .map(|k| change_row(&k.change))
        .collect::<Result<_, Error>>()?;
    let mut assignments = chunked(
        kept.iter()
            .flat_map(|k| k.assignments.iter().map(super::assignments::assignment_row)),
    )
    .into_iter();

    if backend == DbBackend::Postgres {
        // One statement: the counter and the first rows as data-modifying CTEs.
        let mut sql = Sql::new(backend);
        let mut parts = Vec::new();
        // A write's staged assignments (fewer than ROWS_PER_INSERT: more were written as they
        // came), so the statement's parameters stay under PostgreSQL's 65,535.
        if let Some(first) = assignments.next() {
            parts.push(sql.insert(super::assignments::ASSIGNMENT_COLUMNS, first));
        }
        if let Some(revision) = counter {
            let (rev, t) = (sql.param(rev_i64(revision)), sql.param(tenant.as_str()));
            parts.push(format!(
                "UPDATE tenant_revisions SET revision = {rev} WHERE tenant_id = {t}"
            ));
        }
        // A batch logs at most `MAX_BATCH` changes; only audits can outgrow one statement.
        parts.push(sql.insert(CHANGES, changes));
        if let Some(first) = audits.next() {
            parts.push(sql.insert(AUDITS, first));
        }
        let main = parts.pop().unwrap_or_default();
        let ctes: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| format!("w{i} AS ({part})"))
            .collect();
        let text = if ctes.is_empty() {
            main
        } else {
            format!("WITH {} {main}", ctes.join(", "))
        };
        sql.run(txn, text).await?;
    } else {
        if let Some(revision) = counter {
            let mut sql = Sql::new(backend);
            let (rev, t) = (sql.param(rev_i64(revision)), sql.param(tenant.as_str()));
            let text =
                format!("UPDATE tenant_revisions SET revision = {rev} WHERE tenant_id = {t}");
            sql.run(txn, text).await?;
        }
        let mut sql = Sql::new(backend);
        let text = sql.insert(CHANGES, changes);
        sql.run(txn, text).await?;
    }
    for chunk in assignments {
        let mut sql = Sql::new(backend);
        let text = sql.insert(super::assignments::ASSIGNMENT_COLUMNS, chunk);
        sql.run(txn, text).await?;
    }
    for chunk in audits {
        let mut sql = Sql::new(backend);
        let text = sql.insert(AUDITS, chunk);
        sql.run(txn, text).await?;
    }
    Ok(())
}

const CHANGES: &str = "changes (tenant_id, revision, time, kind, target, deltas)";
const AUDITS: &str = "audit_events (id, tenant_id, revision, time, actor, rpc, target_kind, \
     target_id, before, after, request_id, trace_id, reason)";

fn change_row(c: &Change) -> Result<Vec<Value>, Error> {
    let deltas = serde_json::to_string(&c.deltas).context("serialising deltas")?;
    Ok(vec![
        c.tenant.as_str().into(),
        rev_i64(c.revision).into(),
        micros(c.time).into(),
        c.kind.as_str().into(),
        c.target.as_str().into(),
        deltas.into(),
    ])
}

fn audit_row(caller: &Caller, change: &Change, record: &AuditRecord) -> Vec<Value> {
    vec![
        AuditEventId::new().to_string().into(),
        caller.tenant.as_str().into(),
        rev_i64(change.revision).into(),
        micros(change.time).into(),
        caller.subject.as_str().into(),
        caller.rpc.as_str().into(),
        record.target_kind.into(),
        record.target_id.as_str().into(),
        record.before.as_ref().map(ToString::to_string).into(),
        record.after.as_ref().map(ToString::to_string).into(),
        caller.request_id.as_str().into(),
        caller.trace_id.as_str().into(),
        record.reason.as_str().into(),
    ]
}

/// `rows` split into runs of at most `ROWS_PER_INSERT`.
fn chunked(rows: impl Iterator<Item = Vec<Value>>) -> Vec<Vec<Vec<Value>>> {
    let mut chunks: Vec<Vec<Vec<Value>>> = Vec::new();
    for row in rows {
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < ROWS_PER_INSERT => chunk.push(row),
            _ => chunks.push(vec![row]),
        }
    }
    chunks
}

/// A statement with positional parameters in the engine's spelling (`$n` or `?`).
pub(super) struct Sql {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Sql {
    pub(super) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    fn param(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    /// `INSERT INTO {table} VALUES (..), (..)` for `rows`.
    pub(super) fn insert(&mut self, table: &str, rows: Vec<Vec<Value>>) -> String {
        let tuples: Vec<String> = rows
            .into_iter()
            .map(|row| {
                let params: Vec<String> = row.into_iter().map(|v| self.param(v)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        format!("INSERT INTO {table} VALUES {}", tuples.join(", "))
    }

    async fn run(self, txn: &DatabaseTransaction, text: String) -> Result<(), Error> {
        self.run_raw(txn, text).await.map_err(db_error)
    }

    /// `run`, with the driver's error for the caller to tell collisions apart.
    pub(super) async fn run_raw(
        self,
        txn: &DatabaseTransaction,
        text: String,
    ) -> Result<(), sea_orm::DbErr> {
        txn.execute_raw(Statement::from_sql_and_values(
            self.backend,
            text,
            self.values,
        ))
        .await
        .map(drop)
    }
}
