//! Groups (API rule 9): a role assigned to a group is held by all its members.

use super::paging::page;
use super::snapshot;
use super::{Applied, Command, PageRequest, Service};
use crate::domain::builtin::perm;
use crate::domain::{
    AuditRecord, Caller, Delta, Error, Group, GroupId, GroupName, IdentityId, Page, Reason, Ref,
};
use crate::store::WriteTx;

impl Service {
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
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self
            .store
            .list_groups(&caller.tenant, prefix, &query)
            .await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            |g| g.name.clone(),
        ))
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
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self.store.list_group_members(id, &query).await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            ToString::to_string,
        ))
    }
}

/// CreateGroup, validated.
#[derive(Debug, Clone)]
pub struct CreateGroup {
    pub name: GroupName,
    pub description: String,
}

/// DeleteGroup, validated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeleteGroup {
    pub group: GroupId,
    pub force: bool,
}

/// AddGroupMembers, validated: no identity twice.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AddGroupMembers {
    pub group: GroupId,
    pub members: Vec<IdentityId>,
}

/// RemoveGroupMembers, validated: no identity twice.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RemoveGroupMembers {
    pub group: GroupId,
    pub members: Vec<IdentityId>,
}

impl Command for CreateGroup {
    type Output = Group;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::GROUPS_WRITE]
    }

    async fn apply(
        self,
        _service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Group>, Error> {
        let g = Group {
            id: GroupId::new(),
            tenant: caller.tenant.clone(),
            name: self.name.into_string(),
            description: self.description,
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
        Ok(Applied::new("group.created", g.id, g))
    }
}

/// Deleting a group that holds roles needs `force`, which revokes them in the same transaction.
impl Command for DeleteGroup {
    type Output = Group;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::GROUPS_WRITE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Group>, Error> {
        let id = self.group;
        let g = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        let held = tx.assignments_of_identity(&IdentityId::from(id)).await?;
        if !held.is_empty() && !self.force {
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
        // Revoking what the group holds is an assignment write too; only known once it is read.
        if !held.is_empty() {
            service.authorize(caller, perm::ASSIGNMENTS_WRITE)?;
            ensure_may_hand_out(service, caller, tx, id).await?;
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
        Ok(Applied::new("group.deleted", id, g))
    }
}

/// Adds members; ones already in the group are left as they are.
impl Command for AddGroupMembers {
    type Output = Group;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::GROUPS_WRITE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Group>, Error> {
        let id = self.group;
        let before = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        // Joining a group hands out what the group holds.
        ensure_may_hand_out(service, caller, tx, id).await?;
        let existing = tx.existing_members(id, &self.members).await?;
        let new: Vec<IdentityId> = self
            .members
            .into_iter()
            .filter(|m| !existing.contains(m))
            .collect();
        tx.insert_members(id, &new).await?;
        tx.touch_group(id).await?;
        // What `touch_group` wrote, without reading the group back.
        let after = Group {
            member_count: before.member_count + new.len() as u64,
            update_time: tx.now,
            revision: tx.revision,
            ..before.clone()
        };
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
        Ok(Applied::new("group.members_added", id, after))
    }
}

/// Removes members; absent ones are ignored (subtractive, like rule 1).
impl Command for RemoveGroupMembers {
    type Output = Group;

    fn permissions(&self) -> &'static [&'static str] {
        &[perm::GROUPS_WRITE]
    }

    async fn apply(
        self,
        service: &Service,
        caller: &Caller,
        tx: &mut WriteTx,
    ) -> Result<Applied<Group>, Error> {
        let id = self.group;
        let before = tx
            .find_group(id)
            .await?
            .ok_or_else(|| Error::not_found("group", id.to_string()))?;
        let present = tx.existing_members(id, &self.members).await?;
        // Leaving takes away what the group holds: held to the same rule as revoking.
        if !present.is_empty() {
            ensure_may_hand_out(service, caller, tx, id).await?;
        }
        tx.delete_members(id, &present).await?;
        tx.touch_group(id).await?;
        let after = Group {
            member_count: before.member_count.saturating_sub(present.len() as u64),
            update_time: tx.now,
            revision: tx.revision,
            ..before.clone()
        };
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
        Ok(Applied::new("group.members_removed", id, after))
    }
}

/// No escalation for memberships: joining or leaving group `id` gives or takes away what it
/// holds, so the caller must hold every permission of each role the group holds (through the
/// roles it includes too), at the scope the group holds it.
async fn ensure_may_hand_out(
    service: &Service,
    caller: &Caller,
    tx: &WriteTx,
    id: GroupId,
) -> Result<(), Error> {
    for a in tx.assignments_of_identity(&IdentityId::from(id)).await? {
        if let Some(role) = tx.find_role(&Ref::Id(a.role_id)).await? {
            let granted = super::assignments::permissions_granted_by(tx, &role).await?;
            let names: Vec<&str> = granted.iter().map(String::as_str).collect();
            service.ensure_may_grant_at(caller, &names, &a.scope)?;
        }
    }
    Ok(())
}
