//! The change log (per tenant, ordered by revision, gap-free) and PostgreSQL change
//! notifications.

use std::pin::Pin;

use anyhow::Context as _;
use futures::Stream;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use super::entity::change;
use super::{Store, db_error, from_micros, micros, one_parameter, rev_from, rev_i64};
use crate::domain::{Change, Delta, Error, Revision, TenantId};

/// The NOTIFY channel every commit signals on, with its tenant and revision.
pub const NOTIFY_CHANNEL: &str = "warden_changes";

/// `"{revision} {tenant}"`: a tenant id never contains a space.
pub(super) fn notification_payload(tenant: &TenantId, revision: Revision) -> String {
    format!("{revision} {tenant}")
}

fn parse_notification(payload: &str) -> Option<(TenantId, Revision)> {
    let (revision, tenant) = payload.split_once(' ')?;
    Some((
        TenantId::parse(tenant).ok()?,
        Revision(revision.parse().ok()?),
    ))
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
        let stream = futures::stream::unfold(listener, |mut listener| async move {
            // `try_recv` returns Ok(None) when the connection dropped: end the stream so the
            // caller catches up from the log and listens again, rather than silently reconnecting.
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let announced = parse_notification(n.payload()).ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("malformed notification payload"))
                    });
                    Some((announced, listener))
                }
                Ok(None) => None,
                Err(e) => Some((
                    Err(Error::Internal(
                        anyhow::Error::new(e).context("LISTEN stream failed"),
                    )),
                    listener,
                )),
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
        let payload = notification_payload(&tenant, Revision(42));
        assert_eq!(parse_notification(&payload), Some((tenant, Revision(42))));
        assert_eq!(parse_notification("42"), None);
        assert_eq!(parse_notification("x acme"), None);
        assert_eq!(parse_notification("42 bad tenant"), None);
    }
}
