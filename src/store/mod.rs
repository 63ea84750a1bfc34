//! Storage: the only module that imports `sea_orm`. Returns domain types and domain `Error`s;
//! owns transactions, the revision counter, the change log and the audit trail.

pub mod entity;
pub mod migration;

mod assignments;
mod audit;
mod batch;
mod catalogue;
mod change_requests;
mod changes;
mod configuration;
mod groups;
mod idempotency;
mod replicas;
mod snapshot;
mod tenants;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, IsolationLevel, SqlErr, Statement, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{Assignment, AuditRecord, Caller, Change, Delta, Error, Revision, TenantId};

pub use assignments::assignment_key;
pub use batch::{MAX_BATCH, WriteBatch};
pub use changes::NOTIFY_CHANNEL;
pub use configuration::TenantState;
pub use idempotency::StoredResponse;
pub use replicas::ReplicaState;
pub use snapshot::TenantSnapshot;

/// The database, shared by every request.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Announces this process's commits to the other replicas.
    notifier: changes::Notifier,
}

/// A snapshot of the connection pool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Connection settings, taken from `Config` by `app`.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: SecretString,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl Store {
    /// Opens the pool. SQLite gets WAL, foreign keys and a busy timeout so that concurrent
    /// writers queue instead of failing.
    pub async fn connect(options: &StoreOptions) -> Result<Self, Error> {
        Self::open(options, false).await
    }

    /// A store whose connections are made when first used: for a replica that starts from its
    /// local snapshot while the database is unreachable.
    pub async fn connect_lazy(options: &StoreOptions) -> Result<Self, Error> {
        Self::open(options, true).await
    }

    async fn open(options: &StoreOptions, lazy: bool) -> Result<Self, Error> {
        let mut opts = ConnectOptions::new(options.url.expose_secret().to_owned());
        opts.connect_lazy(lazy);
        opts.max_connections(options.max_connections)
            .min_connections(1)
            .connect_timeout(options.connect_timeout)
            .acquire_timeout(options.connect_timeout)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sqlx_sqlite_journal_wal())
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .synchronous(sqlx_sqlite_sync_normal())
            });
        let db = Database::connect(opts).await.map_err(|e| {
            Error::Internal(anyhow::Error::new(e).context("cannot connect to the database"))
        })?;
        let notifier = changes::Notifier::start(&db);
        Ok(Self { db, notifier })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), Error> {
        migration::Migrator::up(&self.db, None)
            .await
            .map_err(|e| Error::Internal(anyhow::Error::new(e).context("migrations failed")))
    }

    /// True when the schema has migrations that are not applied yet.
    pub async fn has_pending_migrations(&self) -> Result<bool, Error> {
        let pending = migration::Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(db_error)?;
        Ok(!pending.is_empty())
    }

    pub fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// A cheap round trip, for health.
    pub async fn ping(&self) -> Result<(), Error> {
        self.db.ping().await.map_err(db_error)
    }

    /// Every tenant's newest committed revision: what the periodic catch-up compares the index
    /// with. One row per tenant that ever wrote.
    pub async fn tenant_revisions(&self) -> Result<Vec<(TenantId, Revision)>, Error> {
        let rows = entity::tenant_revision::Entity::find()
            .all(&self.db)
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|r| {
                let tenant = TenantId::parse(&r.tenant_id)
                    .map_err(|_| anyhow::anyhow!("corrupt tenant in tenant_revisions"))?;
                Ok((tenant, rev_from(r.revision)))
            })
            .collect()
    }

    /// Connections the pool holds now, how many of them are idle, and its ceiling.
    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle, max) = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        };
        PoolStats {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }

    /// Starts a write: opens a transaction and takes the tenant's next revision. The tenant's
    /// counter row stays locked until commit, so the tenant's revisions commit in order and its
    /// change log has no gaps; other tenants' writes do not wait for it.
    pub async fn begin_write(&self, caller: &Caller, now: DateTime<Utc>) -> Result<WriteTx, Error> {
        let txn = self.db.begin().await.map_err(db_error)?;
        let backend = txn.get_database_backend();
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                one_parameter(backend, NEXT_REVISION_SQL),
                [caller.tenant.as_str().into()],
            ))
            .await
            .map_err(db_error)?
            .context("no revision returned")?;
        let revision: i64 = row.try_get("", "revision").map_err(db_error)?;
        let revision = Revision(u64::try_from(revision).context("negative revision")?);
        Ok(WriteTx {
            staged: Default::default(),
            alone: true,
            txn: tokio::sync::OnceCell::new_with(Some(txn)),
            deferred: None,
            stale: AtomicBool::new(false),
            revision,
            roles_as_of: Some(Revision(revision.0.saturating_sub(1))),
            assignments_as_of: Some(Revision(revision.0.saturating_sub(1))),
            earlier: std::sync::Arc::default(),
            notifier: self.notifier.clone(),
            now,
            caller: caller.clone(),
            deltas: Vec::new(),
            audits: Vec::new(),
            approved: false,
        })
    }

    /// A read-only snapshot transaction (REPEATABLE READ on PostgreSQL).
    async fn begin_snapshot(&self) -> Result<DatabaseTransaction, Error> {
        if !self.is_postgres() {
            // A SQLite read transaction in WAL mode is already a snapshot.
            return self.db.begin().await.map_err(db_error);
        }
        self.db
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
            .map_err(db_error)
    }

    fn conn(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// Takes a tenant's next revision, creating its sequence at 1 on its first write.
const NEXT_REVISION_SQL: &str = "INSERT INTO tenant_revisions (tenant_id, revision) VALUES (?, 1) \
     ON CONFLICT (tenant_id) DO UPDATE SET revision = tenant_revisions.revision + 1 \
     RETURNING revision";

/// SQL written once for both engines with a single `?` parameter: PostgreSQL spells it `$1`.
pub(crate) fn one_parameter(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Postgres => sql.replace('?', "$1"),
        _ => sql.to_owned(),
    }
}

fn sqlx_sqlite_journal_wal() -> sea_orm::sqlx::sqlite::SqliteJournalMode {
    sea_orm::sqlx::sqlite::SqliteJournalMode::Wal
}

fn sqlx_sqlite_sync_normal() -> sea_orm::sqlx::sqlite::SqliteSynchronous {
    // WAL + NORMAL is durable across application crashes; only an OS crash may lose the last
    // transactions, which is SQLite's documented trade-off for the embedded default.
    sea_orm::sqlx::sqlite::SqliteSynchronous::Normal
}

/// Where a trial started (`WriteTx::begin_trial`).
#[derive(Debug)]
pub struct Trial {
    deltas: usize,
    audits: usize,
}

/// One open write. Dropping it without `commit` rolls everything back (dry runs do exactly that).
#[derive(Debug)]
pub struct WriteTx {
    /// Reach it through `conn()`, which first writes the staged assignments. Empty until the
    /// first statement of a write run optimistically (`deferred`).
    txn: tokio::sync::OnceCell<DatabaseTransaction>,
    /// Set for a write run optimistically: how its transaction begins if it needs one.
    deferred: Option<batch::Deferred>,
    /// The optimistic write found, on beginning its transaction, that the tenant's revision
    /// had moved past the index it read: it must run again, locked (`is_stale`).
    stale: AtomicBool,
    /// Assignments inserted but not written yet: a write that makes many (a configuration,
    /// a batch) sends them as multi-row INSERTs, before its next statement or at its end.
    staged: parking_lot::Mutex<Vec<Assignment>>,
    /// True when this write is its transaction's only one: what it stages when it ends is
    /// written by the commit's tail statement, one round trip fewer. A write sharing a group
    /// commit writes its rows before it is kept, so that a collision fails it alone.
    alone: bool,
    /// The revision this write will commit as.
    pub revision: Revision,
    /// The tenant revision whose roles this write sees (none when an earlier write of its batch
    /// changed roles): an index at exactly this revision may answer role reads.
    roles_as_of: Option<Revision>,
    /// The same for assignments; what earlier writes of the batch changed is in `earlier`.
    assignments_as_of: Option<Revision>,
    /// The changes of the batch's writes before this one (not in the index yet).
    earlier: std::sync::Arc<Vec<Delta>>,
    /// Announces the commit to the other replicas.
    notifier: changes::Notifier,
    /// The instant every record of this write is stamped with.
    pub now: DateTime<Utc>,
    caller: Caller,
    deltas: Vec<Delta>,
    audits: Vec<AuditRecord>,
    /// Set by an approved change request applying: its approval stands in for the bypass.
    approved: bool,
}

impl WriteTx {
    /// Marks this write as an approved change request's application (the approval gate lets it
    /// through).
    pub fn mark_approved(&mut self) {
        self.approved = true;
    }

    pub fn is_approved(&self) -> bool {
        self.approved
    }

    /// Starts playing changes that `end_trial` will undo (a savepoint, and the deltas and audit
    /// records collected so far).
    pub async fn begin_trial(&mut self) -> Result<Trial, Error> {
        self.conn()
            .await?
            .execute_unprepared("SAVEPOINT warden_trial")
            .await
            .map_err(db_error)?;
        Ok(Trial {
            deltas: self.deltas.len(),
            audits: self.audits.len(),
        })
    }

    /// Undoes everything since `begin_trial`.
    pub async fn end_trial(&mut self, trial: Trial) -> Result<(), Error> {
        // What the trial staged is undone with it.
        self.staged.lock().clear();
        let txn = self.begun().await?;
        txn.execute_unprepared("ROLLBACK TO SAVEPOINT warden_trial")
            .await
            .map_err(db_error)?;
        txn.execute_unprepared("RELEASE SAVEPOINT warden_trial")
            .await
            .map_err(db_error)?;
        self.deltas.truncate(trial.deltas);
        self.audits.truncate(trial.audits);
        Ok(())
    }

    pub fn tenant(&self) -> &TenantId {
        &self.caller.tenant
    }

    /// The RPC this write serves.
    pub fn rpc(&self) -> &str {
        &self.caller.rpc
    }

    /// The tenant revision at which the in-memory index holds the roles this write would read,
    /// if there is one.
    pub fn roles_as_of(&self) -> Option<Revision> {
        // This write's own role changes are not in the index either.
        self.roles_as_of
            .filter(|_| !self.deltas.iter().any(Delta::changes_roles))
    }

    /// The tenant revision at which the in-memory index holds the assignments this write
    /// would read, before the changes of `pending`.
    pub fn assignments_as_of(&self) -> Option<Revision> {
        self.assignments_as_of
    }

    /// The changes made since that revision and not in the index: the batch's earlier writes'
    /// and this write's own, in order.
    pub fn pending(&self) -> impl Iterator<Item = &Delta> {
        self.earlier.iter().chain(self.deltas.iter())
    }

    /// Notes an index change this write makes.
    pub fn record(&mut self, delta: Delta) {
        self.deltas.push(delta);
    }

    /// Notes one audit event this write makes.
    pub fn audit(&mut self, record: AuditRecord) {
        self.audits.push(record);
    }

    pub fn deltas(&self) -> &[Delta] {
        &self.deltas
    }

    /// True when this write, run optimistically, read an index the database had moved past:
    /// its outcome stands for nothing, and it must run again, locked.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// The write's transaction, begun now if the write was deferred: then the tenant's counter
    /// is locked and must still be at the revision the write read the index at.
    async fn begun(&self) -> Result<&DatabaseTransaction, Error> {
        self.txn
            .get_or_try_init(|| async {
                let deferred = self
                    .deferred
                    .as_ref()
                    .context("the write has no transaction")?;
                let txn = deferred.db.begin().await.map_err(db_error)?;
                let locked = batch::lock_revision(&txn, self.tenant()).await?;
                if locked != deferred.base {
                    self.stale.store(true, Ordering::Relaxed);
                    // Dropping the transaction rolls it back.
                    return Err(Error::conflict());
                }
                Ok(txn)
            })
            .await
    }

    /// The transaction if one was begun, the notifier, and the write as its commit logs it
    /// (`kind` on `target`).
    fn into_kept(
        self,
        kind: &str,
        target: &str,
    ) -> (Option<DatabaseTransaction>, changes::Notifier, batch::Kept) {
        let WriteTx {
            txn,
            revision,
            now,
            caller,
            deltas,
            audits,
            notifier,
            staged,
            ..
        } = self;
        let change = Change {
            revision,
            tenant: caller.tenant.clone(),
            time: now,
            kind: kind.to_owned(),
            target: target.to_owned(),
            deltas,
        };
        (
            txn.into_inner(),
            notifier,
            batch::Kept {
                change,
                caller,
                audits,
                assignments: staged.into_inner(),
            },
        )
    }

    /// Writes the change-log row and the audit events, commits, and has the other replicas
    /// told. Returns the committed change.
    pub async fn commit(self, kind: &str, target: &str) -> Result<Change, Error> {
        // What is still staged is written by the tail statement.
        let (txn, notifier, kept) = self.into_kept(kind, target);
        let txn = txn.context("the write has no transaction")?;
        let revision = kept.change.revision;
        let kept = [kept];
        // The revision was taken by `begin_write`: the counter is already where it belongs.
        batch::write_tail(&txn, &kept[0].change.tenant, &kept, None).await?;
        txn.commit().await.map_err(db_error)?;
        notifier.committed(&kept[0].change.tenant, revision);
        let [kept] = kept;
        Ok(kept.change)
    }
}

/// Driver messages stop here; clients see a domain error or "internal error".
pub(crate) fn db_error(err: DbErr) -> Error {
    if is_retryable(&err) {
        return Error::conflict();
    }
    if is_unreachable(&err) {
        tracing::debug!(error = %err, "database unreachable");
        return Error::Unavailable {
            message: "the database is unreachable; retry with backoff".into(),
        };
    }
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_) | SqlErr::ForeignKeyConstraintViolation(_)) => {
            Error::conflict()
        }
        _ => Error::Internal(anyhow::Error::new(err).context("database call failed")),
    }
}

/// Serialization failures, deadlocks (PostgreSQL 40001/40P01) and SQLite lock contention.
fn is_retryable(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("40001")
        || text.contains("40P01")
        || text.contains("could not serialize")
        || text.contains("deadlock detected")
        || text.contains("database is locked")
}

/// No connection to be had, or the one in use broke: the request may succeed on a retry.
fn is_unreachable(err: &DbErr) -> bool {
    if matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return true;
    }
    let text = err.to_string().to_ascii_lowercase();
    [
        "pool timed out",
        "pooltimedout",
        "pool closed",
        "connection refused",
        "connection reset",
        "broken pipe",
        "error communicating with database",
        "unexpected end of file",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// True when `err` is a unique-constraint violation, so the caller can name what collided.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

pub(crate) fn rev_i64(r: Revision) -> i64 {
    i64::try_from(r.0).unwrap_or(i64::MAX)
}

pub(crate) fn rev_from(r: i64) -> Revision {
    Revision(u64::try_from(r).unwrap_or_default())
}

/// Parses an id the store wrote itself; a bad one means a corrupt row, not bad input.
pub(crate) fn stored_id<T>(
    parse: fn(&str, &str) -> Result<T, Error>,
    raw: &str,
) -> Result<T, Error> {
    parse("stored id", raw)
        .map_err(|_| Error::Internal(anyhow::anyhow!("corrupt id in database: {raw:?}")))
}

/// `column` starts with `prefix`, taken literally and case-sensitively on both engines (LIKE
/// would read `%` and `_` as wildcards, and SQLite's LIKE ignores case).
pub(crate) fn literal_prefix<C>(column: C, prefix: &str) -> sea_orm::sea_query::Expr
where
    C: sea_orm::sea_query::IntoColumnRef,
{
    use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Func};
    // int4: PostgreSQL has no substr(text, int, bigint).
    let chars = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    Expr::expr(
        Func::cust(Alias::new("substr"))
            .arg(Expr::col(column))
            .arg(1i32)
            .arg(chars),
    )
    .eq(prefix)
}

/// Keyset pagination: the last key of the previous page, and how many to return.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: u64,
}

/// A nullable JSON text column as a value (null: `None`). Unreadable JSON is corruption.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
) -> Result<Option<T>, Error> {
    text.map(|t| {
        serde_json::from_str(t)
            .map_err(|e| Error::Internal(anyhow::anyhow!("corrupt stored JSON column: {e}")))
    })
    .transpose()
}

/// The stored form of an optional value kept as JSON text.
pub(crate) fn to_json_column<T: serde::Serialize>(value: Option<&T>) -> Option<String> {
    value.and_then(|v| serde_json::to_string(v).ok())
}
