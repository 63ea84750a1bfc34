//! The tenant registry (TenantService and the bootstrap).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entity::tenant;
use super::{PageQuery, Store, WriteTx, db_error, from_micros, micros, rev_from, rev_i64};
use crate::domain::{Error, Tenant, TenantId};

fn to_tenant(m: tenant::Model) -> Result<Tenant, Error> {
    Ok(Tenant {
        id: TenantId::parse(&m.id)?,
        display_name: m.display_name,
        disabled: m.disabled,
        created_by: m.created_by,
        create_time: from_micros(m.create_time),
        update_time: from_micros(m.update_time),
        revision: rev_from(m.revision),
    })
}

fn row(t: &Tenant) -> tenant::ActiveModel {
    tenant::ActiveModel {
        id: Set(t.id.to_string()),
        display_name: Set(t.display_name.clone()),
        disabled: Set(t.disabled),
        created_by: Set(t.created_by.clone()),
        create_time: Set(micros(t.create_time)),
        update_time: Set(micros(t.update_time)),
        revision: Set(rev_i64(t.revision)),
    }
}

async fn find_tenant(conn: &impl ConnectionTrait, id: &TenantId) -> Result<Option<Tenant>, Error> {
    tenant::Entity::find_by_id(id.as_str())
        .one(conn)
        .await
        .map_err(db_error)?
        .map(to_tenant)
        .transpose()
}

impl Store {
    pub async fn find_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, Error> {
        find_tenant(self.conn(), id).await
    }

    /// Registered tenants ordered by id, after `page.after`.
    pub async fn list_tenants(&self, page: &PageQuery) -> Result<Vec<Tenant>, Error> {
        let mut q = tenant::Entity::find();
        if let Some(after) = &page.after {
            q = q.filter(tenant::Column::Id.gt(after.as_str()));
        }
        q.order_by_asc(tenant::Column::Id)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_tenant)
            .collect()
    }
}

impl WriteTx {
    /// The registry entry of this write's tenant.
    pub async fn find_own_tenant(&self) -> Result<Option<Tenant>, Error> {
        find_tenant(self.conn().await?, self.tenant()).await
    }

    pub async fn insert_tenant(&self, t: &Tenant) -> Result<(), Error> {
        row(t).insert(self.conn().await?).await.map_err(db_error)?;
        Ok(())
    }

    pub async fn update_tenant(&self, t: &Tenant) -> Result<(), Error> {
        row(t).update(self.conn().await?).await.map_err(db_error)?;
        Ok(())
    }
}
