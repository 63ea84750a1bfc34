//! Validated names of permissions, roles and groups.

use std::fmt;

use super::error::Error;

/// Names starting with this prefix belong to Warden's own catalogue.
pub const RESERVED_PREFIX: &str = "warden:";

/// `^[A-Za-z0-9][A-Za-z0-9_.:/-]*$`, 1-128 characters, case-sensitive.
// Serialized (inside a proposed change) as the plain string, read back from Warden's own store.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PermissionName(String);

impl PermissionName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let bytes = raw.as_bytes();
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && bytes[0].is_ascii_alphanumeric()
            && bytes.iter().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-')
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::invalid(
                field,
                "must be 1-128 characters matching ^[A-Za-z0-9][A-Za-z0-9_.:/-]*$",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PermissionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 1-64 characters: letters, digits, space and `_ . : -`; no leading or trailing space.
// Serialized (inside a proposed change) as the plain string, read back from Warden's own store.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        parse_label(field, raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Same alphabet as role names.
// Serialized (inside a proposed change) as the plain string, read back from Warden's own store.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        parse_label(field, raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

fn parse_label(field: &str, raw: &str) -> Result<String, Error> {
    let ok = !raw.is_empty()
        && raw.chars().count() <= 64
        && !raw.starts_with(' ')
        && !raw.ends_with(' ')
        && raw
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '-'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Error::invalid(
            field,
            "must be 1-64 characters of letters, digits, space and _ . : - without leading or trailing space",
        ))
    }
}

/// Descriptions are free text, bounded so that one request cannot bloat every list response.
pub fn parse_description(field: &str, raw: &str) -> Result<String, Error> {
    if raw.chars().count() > 1024
        || raw
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(
            field,
            "must be at most 1024 characters without control characters",
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_follow_the_contract() {
        for good in [
            "employees:read",
            "Permissions:Assign",
            "a",
            "docs/v1.read-all_x",
            &"p".repeat(128),
        ] {
            assert!(
                PermissionName::parse("name", good).is_ok(),
                "{good:?} must parse"
            );
        }
        for bad in ["", ":read", "-x", "has space", "é", &"p".repeat(129)] {
            assert!(
                PermissionName::parse("name", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn role_names_follow_the_contract() {
        for good in ["editor", "Team Lead", "ops.oncall:eu-1", &"r".repeat(64)] {
            assert!(RoleName::parse("name", good).is_ok(), "{good:?} must parse");
        }
        for bad in ["", " lead", "lead ", "a/b", "a\tb", &"r".repeat(65)] {
            assert!(
                RoleName::parse("name", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }
}
