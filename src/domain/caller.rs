//! Who is calling, as established by authentication.

use super::ids::{IdentityId, TenantId};

/// The authenticated subject and its tenant; every service method takes one.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: IdentityId,
    pub tenant: TenantId,
    /// Correlates the audit trail and logs with this request.
    pub request_id: String,
    /// The full gRPC method, recorded in audit events.
    pub rpc: String,
    /// W3C trace id of the request, when there is one.
    pub trace_id: String,
}
