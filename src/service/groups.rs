//! Groups (API rule 9): a role assigned to a group is held by all its members.

use super::paging::page;
use super::snapshot;
use super::{Outcome, PageRequest, Service, WriteOptions};
use crate::domain::builtin::perm;
use crate::domain::{
    AuditRecord, Caller, Delta, Error, Group, GroupId, GroupName, IdentityId, Page, Reason,
};

impl Service {
    pub async fn create_group(
        &self,
        caller: &Caller,
        name: GroupName,
        description: String,
        opts: WriteOptions,
    ) -> Result<Outcome<Group>, Error> {
        self.authorize(caller, perm::GROUPS_WRITE)?;
        let mut tx = self.begin(caller).await?;
        let g = Group {
            id: GroupId::new(),
            tenant: caller.tenant.clone(),
            name: name.into_string(),
            description,
            member_count: 0,
            create_time: tx.now,
            update_time: tx.now,
            revision: tx.revision,
        };
        tx.insert_group(&g).await?;
        tx.audit(AuditRecord {
            target_kind: "group",
            target_id: g.id.to_string(),
            before: None,
            after: snapshot(&g),
            reason: String::new(),
        });
        let target = g.id.to_string();
        self.finish(tx, opts, "group.created", &target, g).await
    }

    pub async fn get_group(&self, caller: &Caller, id: GroupId) -> Result<Group, Error> {
        self.authorize(caller, perm::GROUPS_READ)?;
        self.store
            .find_group(&caller.tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))
    }

    pub async fn list_groups(
        &self,
        caller: &Caller,
        prefix: &str,
        paging: &PageRequest,
    ) -> Result<Page<Group>, Error> {
        self.authorize(caller, perm::GROUPS_READ)?;
        let filters = format!("prefix={prefix}");
        let query = paging.query(&filters)?;
        let rows = self
            .store
            .list_groups(&caller.tenant, prefix, &query)
            .await?;
        Ok(page(rows, &query, &filters, |g| g.name.clone()))
    }

    pub async fn list_group_members(
        &self,
        caller: &Caller,
        id: GroupId,
        paging: &PageRequest,
    ) -> Result<Page<IdentityId>, Error> {
        self.authorize(caller, perm::GROUPS_READ)?;
        self.store
            .find_group(&caller.tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        let filters = format!("group={id}");
        let query = paging.query(&filters)?;
        let rows = self.store.list_group_members(id, &query).await?;
        Ok(page(rows, &query, &filters, ToString::to_string))
    }

    /// Deleting a group that holds roles needs `force`, which revokes them in the same transaction.
    pub async fn delete_group(
        &self,
        caller: &Caller,
        id: GroupId,
        force: bool,
        opts: WriteOptions,
    ) -> Result<Outcome<Group>, Error> {
        self.authorize(caller, perm::GROUPS_WRITE)?;
        let mut tx = self.begin(caller).await?;
        let g = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        let held = tx.assignments_of_identity(&IdentityId::from(id)).await?;
        if !held.is_empty() && !force {
            return Err(Error::precondition(
                Reason::GroupInUse,
                format!(
                    "group '{}' holds {} role assignment(s); pass force to revoke them",
                    g.name,
                    held.len()
                ),
            )
            .with_meta("group", g.name.clone()));
        }
        if !held.is_empty() {
            self.authorize(caller, perm::ASSIGNMENTS_WRITE)?;
        }
        for a in held {
            tx.delete_assignment(a.id).await?;
            tx.record(Delta::AssignmentRemoved { id: a.id });
            tx.audit(AuditRecord {
                target_kind: "assignment",
                target_id: a.id.to_string(),
                before: snapshot(&a),
                after: None,
                reason: format!("group '{}' deleted", g.name),
            });
        }
        tx.delete_group(id).await?;
        tx.record(Delta::GroupRemoved { group: id });
        tx.audit(AuditRecord {
            target_kind: "group",
            target_id: id.to_string(),
            before: snapshot(&g),
            after: None,
            reason: String::new(),
        });
        let target = id.to_string();
        self.finish(tx, opts, "group.deleted", &target, g).await
    }

    /// Adds members; ones already in the group are left as they are.
    pub async fn add_group_members(
        &self,
        caller: &Caller,
        id: GroupId,
        members: Vec<IdentityId>,
        opts: WriteOptions,
    ) -> Result<Outcome<Group>, Error> {
        self.authorize(caller, perm::GROUPS_WRITE)?;
        let mut tx = self.begin(caller).await?;
        let before = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        // Joining a group hands out what the group holds: the same no-escalation rule as assigning.
        let held = tx.assignments_of_identity(&IdentityId::from(id)).await?;
        let mut granted: Vec<String> = Vec::new();
        for a in &held {
            if let Some(role) = tx.find_role(&crate::domain::Ref::Id(a.role_id)).await? {
                granted.extend(role.permissions);
            }
        }
        let names: Vec<&str> = granted.iter().map(String::as_str).collect();
        self.ensure_may_grant(caller, &names)?;
        let existing = tx.existing_members(id, &members).await?;
        let new: Vec<IdentityId> = members
            .into_iter()
            .filter(|m| !existing.contains(m))
            .collect();
        tx.insert_members(id, &new).await?;
        tx.touch_group(id).await?;
        let after = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        if !new.is_empty() {
            tx.record(Delta::GroupMembersAdded {
                group: id,
                members: new.clone(),
            });
        }
        tx.audit(AuditRecord {
            target_kind: "group",
            target_id: id.to_string(),
            before: snapshot(&before),
            after: snapshot(&serde_json::json!({"group": &after, "added": &new})),
            reason: String::new(),
        });
        let target = id.to_string();
        self.finish(tx, opts, "group.members_added", &target, after)
            .await
    }

    /// Removes members; absent ones are ignored (subtractive, like rule 1).
    pub async fn remove_group_members(
        &self,
        caller: &Caller,
        id: GroupId,
        members: Vec<IdentityId>,
        opts: WriteOptions,
    ) -> Result<Outcome<Group>, Error> {
        self.authorize(caller, perm::GROUPS_WRITE)?;
        let mut tx = self.begin(caller).await?;
        let before = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        let present = tx.existing_members(id, &members).await?;
        tx.delete_members(id, &present).await?;
        tx.touch_group(id).await?;
        let after = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        if !present.is_empty() {
            tx.record(Delta::GroupMembersRemoved {
                group: id,
                members: present.clone(),
            });
        }
        tx.audit(AuditRecord {
            target_kind: "group",
            target_id: id.to_string(),
            before: snapshot(&before),
            after: snapshot(&serde_json::json!({"group": &after, "removed": &present})),
            reason: String::new(),
        });
        let target = id.to_string();
        self.finish(tx, opts, "group.members_removed", &target, after)
            .await
    }
}
