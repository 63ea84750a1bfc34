//! Reading the audit trail.

use super::paging::page;
use super::{PageRequest, Service};
use crate::domain::builtin::perm;
use crate::domain::{AuditEvent, Caller, Error, Page};

pub use crate::domain::AuditFilter;

impl Service {
    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        filter: &AuditFilter,
        paging: &PageRequest,
    ) -> Result<Page<AuditEvent>, Error> {
        self.authorize(caller, perm::AUDIT_READ)?;
        let filters = format!("{filter:?}");
        let filters = self.bind_page(caller, &filters);
        let query = paging.query(&filters, &self.settings.page_token_key)?;
        let rows = self
            .store
            .list_audit_events(&caller.tenant, filter, &query)
            .await?;
        Ok(page(
            rows,
            &query,
            &filters,
            &self.settings.page_token_key,
            |e| e.id.clone(),
        ))
    }
}
