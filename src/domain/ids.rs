//! Identifiers: UUIDv7 newtypes for server-generated records, validated strings for the rest.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the canonical hyphenated form; anything else is INVALID_ARGUMENT on `field`.
            pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
                parse_uuid(raw).map(Self).ok_or_else(|| {
                    Error::invalid(field, concat!("must be a ", $kind, " id (canonical UUID)"))
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

fn parse_uuid(raw: &str) -> Option<Uuid> {
    // Only the canonical 36-character form (either case): at that length the parser accepts
    // nothing but hex groups with hyphens at 8, 13, 18 and 23, so braces, URNs and simple hex
    // are refused and one record never has two spellings. No allocation: the index load parses
    // two of these per assignment.
    if raw.len() != 36 {
        return None;
    }
    Uuid::try_parse(raw).ok()
}

uuid_id!(PermissionId, "permission");
uuid_id!(RoleId, "role");
uuid_id!(AssignmentId, "assignment");
uuid_id!(GroupId, "group");
uuid_id!(ChangeRequestId, "change request");
uuid_id!(AuditEventId, "audit event");

/// An isolated namespace; every record belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// 1-64 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.as_bytes()[0].is_ascii_alphanumeric()
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(raw.into()))
        } else {
            Err(Error::invalid(
                "tenant",
                "must be 1-64 characters of letters, digits, '.', '_' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who holds roles: a user or service subject, a token id, or a group's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdentityId(Arc<str>);

impl IdentityId {
    /// 1-256 printable ASCII characters without spaces (JWT subjects, emails, UUIDs).
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let ok = !raw.is_empty() && raw.len() <= 256 && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.into()))
        } else {
            Err(Error::invalid(
                field,
                "must be 1-256 printable ASCII characters without spaces",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds an id from text that was validated on its way in (the index stores names as
    /// plain text to keep them compact).
    pub fn from_validated(raw: &str) -> Self {
        Self(raw.into())
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A monotonically increasing number; every committed change gets a larger one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Revision(pub u64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::borrow::Borrow<str> for IdentityId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<GroupId> for IdentityId {
    /// A group is itself an identity that roles are assigned to, named by its id.
    fn from(group: GroupId) -> Self {
        Self(group.to_string().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_parse() {
        let id = RoleId::new().to_string();
        assert!(RoleId::parse("role", &id).is_ok());
        assert!(RoleId::parse("role", &id.to_uppercase()).is_ok());
        for bad in [
            "",
            "nope",
            &id.replace('-', ""),
            &format!("{{{id}}}"),
            &format!("urn:uuid:{id}"),
            &format!("{}-{}", &id[..7], &id[8..]), // a hyphen moved: 36 characters still
            &id.replacen('-', "g", 1),
            &format!("{}g", &id[..35]),
            &format!("+{}", &id[1..]),
        ] {
            assert!(
                RoleId::parse("role", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn tenants_and_identities_are_validated() {
        assert!(TenantId::parse("acme-1.eu_west").is_ok());
        for bad in ["", "-acme", "a b", &"x".repeat(65), "ünï"] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(IdentityId::parse("id", "alice@example.com").is_ok());
        assert!(IdentityId::parse("id", "has space").is_err());
        assert!(IdentityId::parse("id", "").is_err());
    }
}
