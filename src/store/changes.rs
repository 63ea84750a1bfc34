//! The change log (per tenant, ordered by revision, gap-free) and PostgreSQL change
//! notifications.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context as _;
use futures::Stream;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use tokio::sync::mpsc;

use super::entity::change;
use super::{Store, db_error, from_micros, micros, one_parameter, rev_from, rev_i64};
use crate::domain::{Change, Delta, Error, Revision, TenantId};

/// The NOTIFY channel every commit signals on, with its tenant and revision.
pub const NOTIFY_CHANNEL: &str = "warden_changes";

/// `"{revision} {tenant} {origin}"`: a tenant id never contains a space; `origin` tells the
/// process that committed (so it can skip its own commits, already applied).
pub(super) fn notification_payload(tenant: &TenantId, revision: Revision, origin: &str) -> String {
    format!("{revision} {tenant} {origin}")
}

/// How long the sender waits after a commit for others to announce with it.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(2);

/// Announces commits to the other replicas, after they commit and coalesced per tenant.
/// NOTIFY inside a write's transaction would take PostgreSQL's cluster-wide notification lock
/// through the commit's WAL flush, serialising every notifying commit (measured with pgbench at
/// 16 clients: half the transactions per second). A notification lost to a crash between commit
/// and send only delays the other replicas until their periodic catch-up.
#[derive(Debug, Clone)]
pub(super) struct Notifier {
    origin: Arc<str>,
    /// `None` on SQLite: one process owns the file and has nobody to tell.
    queue: Option<mpsc::UnboundedSender<(TenantId, Revision)>>,
}

impl Notifier {
    /// Starts the sender task on PostgreSQL.
    pub(super) fn start(db: &DatabaseConnection) -> Self {
        let origin: Arc<str> = uuid::Uuid::now_v7().simple().to_string().into();
        let queue = (db.get_database_backend() == DbBackend::Postgres).then(|| {
            let (queue, pending) = mpsc::unbounded_channel();
            tokio::spawn(send_notifications(db.clone(), origin.clone(), pending));
            queue
        });
        Self { origin, queue }
    }

    pub(super) fn origin(&self) -> &Arc<str> {
        &self.origin
    }

    /// Queues the announcement that `tenant` committed up to `revision`.
    pub(super) fn committed(&self, tenant: &TenantId, revision: Revision) {
        if let Some(queue) = &self.queue {
            // Closed only when the task ended with the runtime: nobody left to tell.
            let _ = queue.send((tenant.clone(), revision));
        }
    }
}

/// The sender task: takes everything queued, keeps each tenant's newest revision and sends
/// them in one statement; ends when every `Notifier` is dropped.
async fn send_notifications(
    db: DatabaseConnection,
    origin: Arc<str>,
    mut pending: mpsc::UnboundedReceiver<(TenantId, Revision)>,
) {
    let mut newest: HashMap<TenantId, Revision> = HashMap::new();
    while let Some((tenant, revision)) = pending.recv().await {
        newest.insert(tenant, revision);
        // A moment for the commits right behind this one to join it: under load one statement
        // then announces many commits (each NOTIFY takes the cluster-wide notification lock).
        tokio::time::sleep(COALESCE).await;
        while let Ok((tenant, revision)) = pending.try_recv() {
            let at = newest.entry(tenant).or_default();
            *at = (*at).max(revision);
        }
        let mut values: Vec<sea_orm::Value> = vec![NOTIFY_CHANNEL.into()];
        let mut calls = Vec::with_capacity(newest.len());
        for (tenant, revision) in newest.drain() {
            values.push(notification_payload(&tenant, revision, &origin).into());
            calls.push(format!("pg_notify($1, ${})", values.len()));
        }
        let sql = format!("SELECT {}", calls.join(", "));
        if let Err(e) = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await
        {
            tracing::warn!(error = %e, "sending change notifications failed; replicas catch up periodically");
        }
    }
}

/// Tenant, revision and origin (absent in payloads of releases before origins).
fn parse_notification(payload: &str) -> Option<(TenantId, Revision, Option<&str>)> {
    let mut parts = payload.splitn(3, ' ');
    let revision = Revision(parts.next()?.parse().ok()?);
    let tenant = TenantId::parse(parts.next()?).ok()?;
    Some((tenant, revision, parts.next()))
}

fn to_change(row: change::Model) -> Result<Change, Error> {
    let deltas: Vec<Delta> = serde_json::from_str(&row.deltas)
        .with_context(|| format!("corrupt deltas at revision {}", row.revision))?;
    Ok(Change {
        revision: rev_from(row.revision),
        tenant: TenantId::parse(&row.tenant_id)
            .map_err(|_| anyhow::anyhow!("corrupt tenant in change log"))?,
        time: from_micros(row.time),
        kind: row.kind,
        target: row.target,
        deltas,
    })
}

/// A stream of (tenant, revision) announced by commits on any replica.
pub type Notifications = Pin<Box<dyn Stream<Item = Result<(TenantId, Revision), Error>> + Send>>;

impl Store {
    /// Up to `limit` of the tenant's changes after `after`, in revision order.
    pub async fn changes_after(
        &self,
        tenant: &TenantId,
        after: Revision,
        limit: u64,
    ) -> Result<Vec<Change>, Error> {
        let rows = change::Entity::find()
            .filter(change::Column::TenantId.eq(tenant.as_str()))
            .filter(change::Column::Revision.gt(rev_i64(after)))
            .order_by_asc(change::Column::Revision)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter().map(to_change).collect()
    }

    /// The tenant's oldest revision still in the change log (0 when it has none).
    pub async fn oldest_change(&self, tenant: &TenantId) -> Result<Revision, Error> {
        let row = change::Entity::find()
            .filter(change::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(change::Column::Revision)
            .one(self.conn())
            .await
            .map_err(db_error)?;
        Ok(row.map_or(Revision(0), |r| rev_from(r.revision)))
    }

    /// Subscribes to other replicas' commits (PostgreSQL LISTEN); `None` on SQLite, where one
    /// process owns the file and sees all its own writes.
    pub async fn listen(&self) -> Result<Option<Notifications>, Error> {
        if !self.is_postgres() {
            return Ok(None);
        }
        let pool = self.conn().get_postgres_connection_pool();
        let mut listener = PgListener::connect_with(pool).await.map_err(|e| {
            Error::Internal(anyhow::Error::new(e).context("LISTEN connection failed"))
        })?;
        listener
            .listen(NOTIFY_CHANNEL)
            .await
            .map_err(|e| Error::Internal(anyhow::Error::new(e).context("LISTEN failed")))?;
        let origin = self.notifier.origin().clone();
        let stream = futures::stream::unfold(listener, move |mut listener| {
            let origin = origin.clone();
            async move {
                loop {
                    // `try_recv` returns Ok(None) when the connection dropped: end the stream so
                    // the caller catches up from the log and listens again, rather than silently
                    // reconnecting.
                    let announced = match listener.try_recv().await {
                        Ok(Some(n)) => match parse_notification(n.payload()) {
                            // This process's own commit: applied before its RPC answered.
                            Some((_, _, Some(from))) if from == &*origin => continue,
                            Some((tenant, revision, _)) => Ok((tenant, revision)),
                            None => Err(Error::Internal(anyhow::anyhow!(
                                "malformed notification payload"
                            ))),
                        },
                        Ok(None) => return None,
                        Err(e) => Err(Error::Internal(
                            anyhow::Error::new(e).context("LISTEN stream failed"),
                        )),
                    };
                    return Some((announced, listener));
                }
            }
        });
        Ok(Some(Box::pin(stream)))
    }
}

impl Store {
    /// Drops change-log rows older than `before`, always keeping each tenant's newest one so
    /// the log still says where every tenant stands.
    pub async fn prune_changes(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, Error> {
        let backend = self.conn().get_database_backend();
        let sql = "DELETE FROM changes WHERE time < ? AND revision < \
                   (SELECT MAX(newest.revision) FROM changes newest \
                    WHERE newest.tenant_id = changes.tenant_id)";
        let result = self
            .conn()
            .execute_raw(Statement::from_sql_and_values(
                backend,
                one_parameter(backend, sql),
                [micros(before).into()],
            ))
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_names_its_tenant_and_revision() {
        let tenant = TenantId::parse("acme-1.eu_west").unwrap();
        let payload = notification_payload(&tenant, Revision(42), "0190-origin");
        assert_eq!(
            parse_notification(&payload),
            Some((tenant.clone(), Revision(42), Some("0190-origin")))
        );
        // An older release's payload has no origin.
        assert_eq!(
            parse_notification("42 acme-1.eu_west"),
            Some((tenant, Revision(42), None))
        );
        assert_eq!(parse_notification("42"), None);
        assert_eq!(parse_notification("x acme"), None);
        assert_eq!(parse_notification("42 bad,tenant"), None);
    }
}
