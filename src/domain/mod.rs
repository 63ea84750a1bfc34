//! Domain types, validation rules and the one `Error`. Knows nothing of tonic or SeaORM.
//!
//! Depends on std, uuid, chrono, serde (the change log's stored form), thiserror and anyhow.

pub mod builtin;
pub mod caller;
pub mod change;
pub mod clock;
pub mod configuration;
pub mod error;
pub mod ids;
pub mod model;
pub mod names;
pub mod reference;
pub mod scope;

pub use caller::Caller;
pub use change::{AuditRecord, Change, Delta, RoleRecord};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, FieldProblem, Reason, Result};
pub use ids::*;
pub use model::*;
pub use names::{GroupName, PermissionName, RoleName};
pub use reference::{PermissionRef, Ref, RoleRef};
pub use scope::Scope;
