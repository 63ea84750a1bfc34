//! The one error type every layer returns. No transport or storage types here.

use std::collections::BTreeMap;
use std::fmt;

/// One problem with one request field, reported as a `BadRequest` field violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub description: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Machine-readable reasons carried in `ErrorInfo.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Conflict,
    EtagMismatch,
    PermissionNotInRole,
    SystemRoleImmutable,
    SystemPermissionImmutable,
    ReservedName,
    PermissionInUse,
    RoleInUse,
    /// A composite role would include itself, directly or not.
    RoleCycle,
    /// A composite role's inclusions would be more than 8 levels deep.
    RoleInclusionTooDeep,
    GroupInUse,
    AssignmentImmutable,
    /// The change touches grants of an approval-gated role and the caller cannot bypass approval.
    ApprovalRequired,
    /// The identity id is already held as another kind (a USER cannot also be a SERVICE_ACCOUNT).
    IdentityKindMismatch,
    IdempotencyKeyReused,
    ChangeRequestNotPending,
    ChangeRequestExpired,
    NotRequester,
    SelfApproval,
    /// The caller's tenant is disabled.
    TenantDisabled,
    /// Decisions fail closed: the index is older than `WARDEN_MAX_STALENESS` allows.
    StaleIndex,
    /// The caller's tenant is over its share of the server (concurrent RPCs or writes/s).
    TenantRateLimited,
    /// ProposeChange of a change that needs no approval.
    ApprovalNotRequired,
    /// The caller already approved this change request.
    AlreadyApproved,
    /// The caller may not approve under the request's policy (approver permission or group).
    NotAnApprover,
    Unavailable,
    RevisionOutOfRange,
    /// The server is at its concurrent-RPC limit; retry with backoff.
    Overloaded,
    /// The RPC ran past the server's `limits.rpc_timeout`.
    RpcTimeout,
    /// The server is draining for shutdown; retry on another replica.
    ShuttingDown,
    Internal,
}

impl Reason {
    /// The SCREAMING_SNAKE code clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidArgument => "INVALID_ARGUMENT",
            Reason::NotFound => "NOT_FOUND",
            Reason::AlreadyExists => "ALREADY_EXISTS",
            Reason::PermissionDenied => "PERMISSION_DENIED",
            Reason::Conflict => "CONFLICT",
            Reason::EtagMismatch => "ETAG_MISMATCH",
            Reason::PermissionNotInRole => "PERMISSION_NOT_IN_ROLE",
            Reason::SystemRoleImmutable => "SYSTEM_ROLE_IMMUTABLE",
            Reason::SystemPermissionImmutable => "SYSTEM_PERMISSION_IMMUTABLE",
            Reason::ReservedName => "RESERVED_NAME",
            Reason::PermissionInUse => "PERMISSION_IN_USE",
            Reason::RoleInUse => "ROLE_IN_USE",
            Reason::RoleCycle => "ROLE_CYCLE",
            Reason::RoleInclusionTooDeep => "ROLE_INCLUSION_TOO_DEEP",
            Reason::GroupInUse => "GROUP_IN_USE",
            Reason::AssignmentImmutable => "ASSIGNMENT_IMMUTABLE",
            Reason::ApprovalRequired => "APPROVAL_REQUIRED",
            Reason::IdentityKindMismatch => "IDENTITY_KIND_MISMATCH",
            Reason::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Reason::ChangeRequestNotPending => "CHANGE_REQUEST_NOT_PENDING",
            Reason::ChangeRequestExpired => "CHANGE_REQUEST_EXPIRED",
            Reason::NotRequester => "NOT_REQUESTER",
            Reason::SelfApproval => "SELF_APPROVAL",
            Reason::AlreadyApproved => "ALREADY_APPROVED",
            Reason::ApprovalNotRequired => "APPROVAL_NOT_REQUIRED",
            Reason::TenantDisabled => "TENANT_DISABLED",
            Reason::TenantRateLimited => "TENANT_RATE_LIMITED",
            Reason::StaleIndex => "STALE_INDEX",
            Reason::NotAnApprover => "NOT_AN_APPROVER",
            Reason::Unavailable => "UNAVAILABLE",
            Reason::RevisionOutOfRange => "REVISION_OUT_OF_RANGE",
            Reason::Overloaded => "OVERLOADED",
            Reason::RpcTimeout => "RPC_TIMEOUT",
            Reason::ShuttingDown => "SHUTTING_DOWN",
            Reason::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("request is invalid: {}", describe(.0))]
    Invalid(Vec<FieldProblem>),
    /// One or more referenced records do not exist; `keys` lists every missing one.
    #[error("{kind} not found: {}", .keys.join(", "))]
    NotFound {
        kind: &'static str,
        keys: Vec<String>,
    },
    #[error("{kind} '{key}' already exists")]
    AlreadyExists {
        kind: &'static str,
        key: String,
        existing_id: Option<String>,
    },
    #[error("{message}")]
    Precondition {
        reason: Reason,
        message: String,
        metadata: BTreeMap<String, String>,
    },
    #[error("caller lacks: {}", .missing.join(", "))]
    Denied { missing: Vec<String> },
    /// PERMISSION_DENIED: the caller lacks these permissions at this scope (delegated
    /// administration judges a scoped write where it applies).
    #[error("caller lacks {} on {}", .missing.join(", "), if .scope.is_empty() { "the whole tenant" } else { .scope.as_str() })]
    DeniedAt { missing: Vec<String>, scope: String },
    /// PERMISSION_DENIED for a rule rather than a missing permission (self-approval, say).
    #[error("{message}")]
    Forbidden { reason: Reason, message: String },
    /// Optimistic concurrency failed (etag) or a concurrent change won.
    #[error("{message}")]
    Aborted { reason: Reason, message: String },
    /// The database has been unreachable for longer than decisions may be answered from the
    /// index without it (`WARDEN_MAX_STALENESS`).
    #[error("the index may be {}s stale (the database is unreachable); failing closed", stale_for.as_secs())]
    Stale { stale_for: std::time::Duration },
    #[error("{message}")]
    Unavailable { message: String },
    #[error("{message}")]
    OutOfRange { message: String },
    #[error("{message}")]
    DeadlineExceeded {
        message: String,
        metadata: BTreeMap<String, String>,
    },
    /// One item of a batch write failed, so the batch changed nothing.
    #[error("items[{index}]: {error}")]
    InItem { index: usize, error: Box<Error> },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn describe(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldProblem::new(field, description)])
    }

    pub fn not_found(kind: &'static str, key: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            keys: vec![key.into()],
        }
    }

    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        Error::Precondition {
            reason,
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// Adds one `ErrorInfo.metadata` entry to a precondition failure.
    pub fn with_meta(mut self, key: &str, value: impl Into<String>) -> Self {
        if let Error::Precondition { metadata, .. } | Error::DeadlineExceeded { metadata, .. } =
            &mut self
        {
            metadata.insert(key.to_owned(), value.into());
        }
        self
    }

    pub fn conflict() -> Self {
        Error::Aborted {
            reason: Reason::Conflict,
            message: "a concurrent change won; retry".into(),
        }
    }

    /// Names the batch item this error belongs to: field violations get the item's path,
    /// every other error the item's index (`ErrorInfo.metadata.item_index`). Internal errors
    /// stay as they are: the caller learns nothing of them either way.
    pub fn in_item(self, index: usize) -> Self {
        match self {
            Error::Invalid(problems) => Error::Invalid(
                problems
                    .into_iter()
                    .map(|p| {
                        FieldProblem::new(format!("items[{index}].{}", p.field), p.description)
                    })
                    .collect(),
            ),
            Error::Internal(_) | Error::InItem { .. } => self,
            other => Error::InItem {
                index,
                error: Box::new(other),
            },
        }
    }

    /// The `ErrorInfo.reason` for this error.
    pub fn reason(&self) -> Reason {
        match self {
            Error::Invalid(_) => Reason::InvalidArgument,
            Error::NotFound { .. } => Reason::NotFound,
            Error::AlreadyExists { .. } => Reason::AlreadyExists,
            Error::Precondition { reason, .. }
            | Error::Aborted { reason, .. }
            | Error::Forbidden { reason, .. } => *reason,
            Error::Denied { .. } | Error::DeniedAt { .. } => Reason::PermissionDenied,
            Error::Unavailable { .. } | Error::DeadlineExceeded { .. } => Reason::Unavailable,
            Error::Stale { .. } => Reason::StaleIndex,
            Error::OutOfRange { .. } => Reason::RevisionOutOfRange,
            Error::InItem { error, .. } => error.reason(),
            Error::Internal(_) => Reason::Internal,
        }
    }

    /// The `ErrorInfo.metadata` for this error: what collided, what is missing.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut meta = BTreeMap::new();
        match self {
            Error::NotFound { kind, keys } => {
                meta.insert("kind".into(), (*kind).into());
                meta.insert("missing".into(), keys.join(","));
            }
            Error::AlreadyExists {
                kind,
                key,
                existing_id,
            } => {
                meta.insert("kind".into(), (*kind).into());
                meta.insert("key".into(), key.clone());
                if let Some(id) = existing_id {
                    meta.insert("existing_id".into(), id.clone());
                }
            }
            Error::Precondition { metadata, .. } | Error::DeadlineExceeded { metadata, .. } => {
                meta.clone_from(metadata);
            }
            Error::Stale { stale_for } => {
                meta.insert("stale_seconds".into(), stale_for.as_secs().to_string());
            }
            Error::Denied { missing } => {
                meta.insert("missing_permissions".into(), missing.join(","));
            }
            Error::DeniedAt { missing, scope } => {
                meta.insert("missing_permissions".into(), missing.join(","));
                meta.insert("scope".into(), scope.clone());
            }
            Error::InItem { index, error } => {
                meta = error.metadata();
                meta.insert("item_index".into(), index.to_string());
            }
            Error::Invalid(_)
            | Error::Forbidden { .. }
            | Error::Aborted { .. }
            | Error::Unavailable { .. }
            | Error::OutOfRange { .. }
            | Error::Internal(_) => {}
        }
        meta
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
