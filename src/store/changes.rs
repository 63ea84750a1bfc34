//! The change log (ordered by revision, gap-free) and PostgreSQL change notifications.

use std::pin::Pin;

use anyhow::Context as _;
use futures::Stream;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entity::change;
use super::{Store, db_error, from_micros, micros, rev_from, rev_i64};
use crate::domain::{Change, Delta, Error, Revision, TenantId};

/// The NOTIFY channel every commit signals with its revision.
pub const NOTIFY_CHANNEL: &str = "warden_changes";

pub(super) async fn insert_change(conn: &impl ConnectionTrait, c: &Change) -> Result<(), Error> {
    let deltas = serde_json::to_string(&c.deltas).context("serialising deltas")?;
    change::ActiveModel {
        revision: Set(rev_i64(c.revision)),
        tenant_id: Set(c.tenant.to_string()),
        time: Set(micros(c.time)),
        kind: Set(c.kind.clone()),
        target: Set(c.target.clone()),
        deltas: Set(deltas),
    }
    .insert(conn)
    .await
    .map_err(db_error)?;
    Ok(())
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

/// A stream of revisions announced by commits on any replica.
pub type Notifications = Pin<Box<dyn Stream<Item = Result<Revision, Error>> + Send>>;

impl Store {
    /// Up to `limit` changes after `after`, in revision order; optionally one tenant's only.
    pub async fn changes_after(
        &self,
        after: Revision,
        tenant: Option<&TenantId>,
        limit: u64,
    ) -> Result<Vec<Change>, Error> {
        let mut query = change::Entity::find().filter(change::Column::Revision.gt(rev_i64(after)));
        if let Some(tenant) = tenant {
            query = query.filter(change::Column::TenantId.eq(tenant.as_str()));
        }
        let rows = query
            .order_by_asc(change::Column::Revision)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter().map(to_change).collect()
    }

    /// The oldest revision still in the change log (0 when empty).
    pub async fn oldest_change(&self) -> Result<Revision, Error> {
        let row = change::Entity::find()
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
                    let revision = n.payload().parse::<u64>().map(Revision).map_err(|_| {
                        Error::Internal(anyhow::anyhow!("malformed notification payload"))
                    });
                    Some((revision, listener))
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
    /// Drops change-log rows older than `before`, always keeping the newest one so the log
    /// still says where it stands.
    pub async fn prune_changes(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, Error> {
        let newest = change::Entity::find()
            .order_by_desc(change::Column::Revision)
            .one(self.conn())
            .await
            .map_err(db_error)?;
        let Some(newest) = newest else { return Ok(0) };
        let result = change::Entity::delete_many()
            .filter(change::Column::Time.lt(micros(before)))
            .filter(change::Column::Revision.lt(newest.revision))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected)
    }
}
