//! Decisions (API rules 3, 11, 17): answered from the in-memory index, never the database.

use std::collections::BTreeMap;

use super::paging::page;
use super::{PageRequest, Service};
use crate::domain::builtin::perm;
use crate::domain::{
    Caller, Error, IdentityId, Page, PermissionName, Revision, RoleId, Scope, TenantId,
};
use crate::engine::{Decision, Holder};

/// One Check, validated.
#[derive(Debug, Clone)]
pub struct CheckItem {
    pub identity: IdentityId,
    pub permission: PermissionName,
    /// The resource asked about (the tenant when empty).
    pub resource: Scope,
    pub at_least_revision: Revision,
    pub explain: bool,
}

impl Service {
    /// Checking oneself needs nothing; checking others needs `warden:checks:run`.
    fn authorize_check(&self, caller: &Caller, identity: &IdentityId) -> Result<(), Error> {
        if *identity == caller.subject {
            Ok(())
        } else {
            self.authorize(caller, perm::CHECKS_RUN)
        }
    }

    /// Decisions are answered from the index while the database answers, and for at most
    /// `WARDEN_MAX_STALENESS` after it stopped; then UNAVAILABLE `STALE_INDEX` (fail closed).
    fn ensure_fresh(&self) -> Result<(), Error> {
        let freshness = self.sync.freshness();
        if freshness.database_up() {
            return Ok(());
        }
        match freshness.too_stale(chrono::Utc::now()) {
            None => Ok(()),
            Some(stale_for) => Err(Error::Stale { stale_for }),
        }
    }

    /// Waits (bounded) until this replica has applied the tenant's `revision`; UNAVAILABLE
    /// rather than a stale answer.
    pub(super) async fn ensure_revision(
        &self,
        tenant: &TenantId,
        revision: Revision,
    ) -> Result<(), Error> {
        if revision <= self.engine.applied_revision(tenant) {
            return Ok(());
        }
        if self
            .engine
            .wait_for(tenant, revision, self.settings.consistency_wait)
            .await
        {
            Ok(())
        } else {
            Err(Error::Unavailable {
                message: format!(
                    "this replica has applied revision {} and could not reach {revision} in time; retry or use another replica",
                    self.engine.applied_revision(tenant)
                ),
            })
        }
    }

    /// Returns the decision and the revision it was evaluated at.
    pub async fn check(
        &self,
        caller: &Caller,
        item: &CheckItem,
    ) -> Result<(Decision, Revision), Error> {
        self.ensure_fresh()?;
        if let Some(answer) = self.check_applied(caller, item)? {
            return Ok(answer);
        }
        // Behind `at_least_revision`: the wait is boxed so that the future of the usual,
        // immediate answer stays small (the Check route polls it in place on every call).
        Box::pin(self.ensure_revision(&caller.tenant, item.at_least_revision)).await?;
        self.check_applied(caller, item)?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("applied revision went backwards")))
    }

    /// `check` without waiting: `None` if this replica has not applied `at_least_revision` yet.
    fn check_applied(
        &self,
        caller: &Caller,
        item: &CheckItem,
    ) -> Result<Option<(Decision, Revision)>, Error> {
        // One clock read, one index lookup for both decisions: the caller's right to ask, and
        // the answer.
        let now = self.now();
        let needs = (item.identity != caller.subject).then_some(perm::CHECKS_RUN);
        // The revision comes from the same read as the decision.
        let (decision, revision) = self.engine.check_asked_by(
            &caller.tenant,
            caller.subject.as_str(),
            needs,
            item.identity.as_str(),
            item.permission.as_str(),
            item.resource.as_str(),
            now,
            item.explain,
        );
        // An unauthorized caller is refused now, even when it would otherwise wait.
        let decision = decision.ok_or_else(|| Error::Denied {
            missing: vec![perm::CHECKS_RUN.to_owned()],
        })?;
        if revision < item.at_least_revision {
            return Ok(None);
        }
        Ok(Some((decision, revision)))
    }

    /// Up to 1000 checks, answered in order at one revision.
    pub async fn batch_check(
        &self,
        caller: &Caller,
        items: &[CheckItem],
    ) -> Result<(Vec<Decision>, Revision), Error> {
        self.ensure_fresh()?;
        // One authorization for the batch: `warden:checks:run` if any item is about someone else.
        if let Some(other) = items.iter().find(|i| i.identity != caller.subject) {
            self.authorize_check(caller, &other.identity)?;
        }
        let wanted = items
            .iter()
            .map(|i| i.at_least_revision)
            .max()
            .unwrap_or_default();
        self.ensure_revision(&caller.tenant, wanted).await?;
        let now = self.now();
        let queries: Vec<(&str, &str, &str, bool)> = items
            .iter()
            .map(|i| {
                (
                    i.identity.as_str(),
                    i.permission.as_str(),
                    i.resource.as_str(),
                    i.explain,
                )
            })
            .collect();
        Ok(self.engine.check_many(&caller.tenant, &queries, now))
    }

    /// The identity's effective permissions on `resource` with the roles granting each, by name.
    pub async fn list_effective_permissions(
        &self,
        caller: &Caller,
        identity: &IdentityId,
        resource: &Scope,
        at_least: Revision,
        paging: &PageRequest,
    ) -> Result<(Page<(String, Vec<(RoleId, String)>)>, Revision), Error> {
        self.ensure_fresh()?;
        self.authorize_check(caller, identity)?;
        self.ensure_revision(&caller.tenant, at_least).await?;
        let filters = format!("identity={identity};resource={resource}");
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let (all, revision): (BTreeMap<String, Vec<(RoleId, String)>>, _) =
            self.engine.effective_permissions(
                &caller.tenant,
                identity.as_str(),
                resource.as_str(),
                self.now(),
            );
        let rows: Vec<(String, Vec<(RoleId, String)>)> = match &query.after {
            Some(after) => all.into_iter().filter(|(name, _)| name > after).collect(),
            None => all.into_iter().collect(),
        };
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let rows: Vec<_> = rows.into_iter().take(limit).collect();
        Ok((
            page(
                rows,
                &query,
                &filters,
                &self.settings.page_token_key,
                |(name, _)| name.clone(),
            ),
            revision,
        ))
    }

    /// Who holds `permission` on `resource` (rule 11's "who can"), through grants at it or
    /// above it, groups expanded to their members.
    pub async fn list_permission_holders(
        &self,
        caller: &Caller,
        permission: &PermissionName,
        resource: &Scope,
        at_least: Revision,
        paging: &PageRequest,
    ) -> Result<(Page<Holder>, Revision), Error> {
        self.ensure_fresh()?;
        self.authorize(caller, perm::CHECKS_RUN)?;
        self.ensure_revision(&caller.tenant, at_least).await?;
        let filters = format!("permission={permission};resource={resource}");
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let key = |h: &Holder| {
            format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}",
                h.identity,
                h.role_name,
                h.group.as_ref().map(IdentityId::as_str).unwrap_or_default(),
                h.scope
            )
        };
        let (all, revision) = self.engine.holders(
            &caller.tenant,
            permission.as_str(),
            resource.as_str(),
            self.now(),
        );
        let all = all.unwrap_or_default();
        let rows: Vec<Holder> = match &query.after {
            Some(after) => all.into_iter().filter(|h| key(h) > *after).collect(),
            None => all,
        };
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let rows: Vec<Holder> = rows.into_iter().take(limit).collect();
        Ok((
            page(rows, &query, &filters, &self.settings.page_token_key, key),
            revision,
        ))
    }

    /// The scopes at or under `under` where `identity` holds `permission` ("which departments
    /// may alice manage"), sorted, paged by scope name. NOT_FOUND for an unknown permission.
    pub async fn list_granted_scopes(
        &self,
        caller: &Caller,
        identity: &IdentityId,
        permission: &PermissionName,
        under: &Scope,
        at_least: Revision,
        paging: &PageRequest,
    ) -> Result<(Page<String>, Revision), Error> {
        self.ensure_fresh()?;
        self.authorize_check(caller, identity)?;
        self.ensure_revision(&caller.tenant, at_least).await?;
        let filters = format!("identity={identity};permission={permission};under={under}");
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let (rows, revision) = self.engine.granted_scopes(
            &caller.tenant,
            identity.as_str(),
            permission.as_str(),
            under.as_str(),
            query.after.as_deref(),
            limit,
            self.now(),
        );
        let rows = rows.ok_or_else(|| Error::not_found("permission", permission.to_string()))?;
        Ok((
            page(
                rows,
                &query,
                &filters,
                &self.settings.page_token_key,
                Clone::clone,
            ),
            revision,
        ))
    }
}
