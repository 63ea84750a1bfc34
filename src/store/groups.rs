//! Groups and their members.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::entity::{assignment, group, group_member};
use super::{
    PageQuery, Store, WriteTx, db_error, from_micros, is_unique_violation, micros, rev_from,
    rev_i64, stored_id,
};
use crate::domain::{Error, Group, GroupId, IdentityId, TenantId};

async fn to_group(conn: &impl ConnectionTrait, m: group::Model) -> Result<Group, Error> {
    let member_count = group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(m.id.as_str()))
        .count(conn)
        .await
        .map_err(db_error)?;
    Ok(Group {
        id: stored_id(GroupId::parse, &m.id)?,
        tenant: TenantId::parse(&m.tenant_id)?,
        name: m.name,
        description: m.description,
        member_count,
        create_time: from_micros(m.create_time),
        update_time: from_micros(m.update_time),
        revision: rev_from(m.revision),
    })
}

async fn find_group(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    id: GroupId,
) -> Result<Option<Group>, Error> {
    let row = group::Entity::find_by_id(id.to_string())
        .filter(group::Column::TenantId.eq(tenant.as_str()))
        .one(conn)
        .await
        .map_err(db_error)?;
    match row {
        Some(m) => to_group(conn, m).await.map(Some),
        None => Ok(None),
    }
}

impl Store {
    pub async fn find_group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, Error> {
        find_group(self.conn(), tenant, id).await
    }

    pub async fn list_groups(
        &self,
        tenant: &TenantId,
        prefix: &str,
        page: &PageQuery,
    ) -> Result<Vec<Group>, Error> {
        let mut q = group::Entity::find().filter(group::Column::TenantId.eq(tenant.as_str()));
        if !prefix.is_empty() {
            q = q.filter(super::literal_prefix(group::Column::Name, prefix));
        }
        if let Some(after) = &page.after {
            q = q.filter(group::Column::Name.gt(after.as_str()));
        }
        let rows = q
            .order_by_asc(group::Column::Name)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for m in rows {
            out.push(to_group(self.conn(), m).await?);
        }
        Ok(out)
    }

    pub async fn list_group_members(
        &self,
        group: GroupId,
        page: &PageQuery,
    ) -> Result<Vec<IdentityId>, Error> {
        let mut q = group_member::Entity::find()
            .filter(group_member::Column::GroupId.eq(group.to_string()));
        if let Some(after) = &page.after {
            q = q.filter(group_member::Column::IdentityId.gt(after.as_str()));
        }
        let rows = q
            .order_by_asc(group_member::Column::IdentityId)
            .limit(page.limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|m| IdentityId::parse("member", &m.identity_id))
            .collect()
    }
}

impl WriteTx {
    pub async fn find_group(&self, id: GroupId) -> Result<Option<Group>, Error> {
        find_group(self.conn().await?, self.tenant(), id).await
    }

    pub async fn insert_group(&self, g: &Group) -> Result<(), Error> {
        group::ActiveModel {
            id: Set(g.id.to_string()),
            tenant_id: Set(g.tenant.to_string()),
            name: Set(g.name.clone()),
            description: Set(g.description.clone()),
            create_time: Set(micros(g.create_time)),
            update_time: Set(micros(g.update_time)),
            revision: Set(rev_i64(g.revision)),
        }
        .insert(self.conn().await?)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::AlreadyExists {
                    kind: "group",
                    key: g.name.clone(),
                    existing_id: None,
                }
            } else {
                db_error(e)
            }
        })?;
        Ok(())
    }

    pub async fn touch_group(&self, id: GroupId) -> Result<(), Error> {
        group::Entity::update_many()
            .col_expr(group::Column::UpdateTime, Expr::value(micros(self.now)))
            .col_expr(group::Column::Revision, Expr::value(rev_i64(self.revision)))
            .filter(group::Column::Id.eq(id.to_string()))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Which of `members` are already in the group.
    pub async fn existing_members(
        &self,
        group: GroupId,
        members: &[IdentityId],
    ) -> Result<Vec<IdentityId>, Error> {
        let ids: Vec<&str> = members.iter().map(IdentityId::as_str).collect();
        let rows: Vec<String> = group_member::Entity::find()
            .select_only()
            .column(group_member::Column::IdentityId)
            .filter(group_member::Column::GroupId.eq(group.to_string()))
            .filter(group_member::Column::IdentityId.is_in(ids))
            .into_tuple()
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|m| IdentityId::parse("member", m))
            .collect()
    }

    pub async fn insert_members(
        &self,
        group: GroupId,
        members: &[IdentityId],
    ) -> Result<(), Error> {
        // One statement per 500 members (the caller passes only new ones).
        for chunk in members.chunks(500) {
            group_member::Entity::insert_many(chunk.iter().map(|m| group_member::ActiveModel {
                group_id: Set(group.to_string()),
                identity_id: Set(m.to_string()),
                tenant_id: Set(self.tenant().to_string()),
            }))
            .exec_without_returning(self.conn().await?)
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    pub async fn delete_members(
        &self,
        group: GroupId,
        members: &[IdentityId],
    ) -> Result<(), Error> {
        let ids: Vec<&str> = members.iter().map(IdentityId::as_str).collect();
        group_member::Entity::delete_many()
            .filter(group_member::Column::GroupId.eq(group.to_string()))
            .filter(group_member::Column::IdentityId.is_in(ids))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn all_members(&self, group: GroupId) -> Result<Vec<IdentityId>, Error> {
        let rows: Vec<String> = group_member::Entity::find()
            .select_only()
            .column(group_member::Column::IdentityId)
            .filter(group_member::Column::GroupId.eq(group.to_string()))
            .into_tuple()
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|m| IdentityId::parse("member", m))
            .collect()
    }

    /// Assignments held by the group itself.
    pub async fn assignments_of_identity(
        &self,
        identity: &IdentityId,
    ) -> Result<Vec<crate::domain::Assignment>, Error> {
        let rows = assignment::Entity::find()
            .filter(assignment::Column::TenantId.eq(self.tenant().as_str()))
            .filter(assignment::Column::IdentityId.eq(identity.as_str()))
            .all(self.conn().await?)
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|m| super::assignments::to_assignment(m, String::new()))
            .collect()
    }

    pub async fn delete_group(&self, id: GroupId) -> Result<(), Error> {
        group_member::Entity::delete_many()
            .filter(group_member::Column::GroupId.eq(id.to_string()))
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        group::Entity::delete_by_id(id.to_string())
            .exec(self.conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
