//! Scopes (issue 13): where in a tenant a grant applies, named like an AIP-122 resource.
//!
//! A scope is `collection/id` pairs, e.g. `departments/eng/projects/apollo`; the empty name is
//! the whole tenant. Warden stores no resources: the hierarchy is the name. A grant at scope S
//! applies to S and to every resource under it, by whole pairs (`departments/eng` covers
//! `departments/eng/projects/x`, never `departments/engineering`).

use std::fmt;
use std::sync::Arc;

use super::error::Error;

/// The most `collection/id` pairs a scope may have.
pub const MAX_SCOPE_PAIRS: usize = 8;
/// The longest scope, in bytes.
pub const MAX_SCOPE_BYTES: usize = 512;

/// A validated resource name (or the empty tenant scope). Segments are 1 or more of
/// `A-Z a-z 0-9 - _ . ~ @ :`, separated by `/`, in pairs. Shared text: a million assignments
/// over a hundred thousand scopes hold a hundred thousand names, each once (the index interns
/// the same allocation the loader read).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(Arc<str>);

impl Default for Scope {
    fn default() -> Self {
        Self::tenant()
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    /// Read back from Warden's own change log and store, where it was validated when written.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Ok(Self::from_validated(text.as_ref()))
    }
}

/// True for the characters a scope's segments may hold.
fn segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@' | b':')
}

impl Scope {
    /// The whole tenant.
    pub fn tenant() -> Self {
        // One shared empty name: most assignments are tenant-wide.
        static EMPTY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
        Self(Arc::clone(&EMPTY))
    }

    /// Validates `raw` as a scope; the problem is reported on `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        if raw.is_empty() {
            return Ok(Self::tenant());
        }
        let problem = if raw.len() > MAX_SCOPE_BYTES {
            Some(format!("must be at most {MAX_SCOPE_BYTES} bytes"))
        } else {
            let segments: Vec<&str> = raw.split('/').collect();
            if segments.iter().any(|s| s.is_empty()) {
                Some("has an empty segment (a leading, trailing or doubled '/')".to_owned())
            } else if !segments.len().is_multiple_of(2) {
                Some("must be collection/id pairs, e.g. departments/eng/projects/apollo".to_owned())
            } else if segments.len() > 2 * MAX_SCOPE_PAIRS {
                Some(format!(
                    "must have at most {MAX_SCOPE_PAIRS} collection/id pairs"
                ))
            } else if !segments.iter().all(|s| s.bytes().all(segment_byte)) {
                Some("segments may hold only letters, digits and - _ . ~ @ :".to_owned())
            } else {
                None
            }
        };
        match problem {
            None => Ok(Self(Arc::from(raw))),
            Some(description) => Err(Error::invalid(field, description)),
        }
    }

    /// A scope read back from Warden's own store or change log (validated when written).
    pub fn from_validated(raw: impl AsRef<str>) -> Self {
        match raw.as_ref() {
            "" => Self::tenant(),
            raw => Self(Arc::from(raw)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_tenant(&self) -> bool {
        self.0.is_empty()
    }

    /// True when a grant at this scope applies to `resource` (itself or anything under it).
    pub fn covers(&self, resource: &str) -> bool {
        covers(&self.0, resource)
    }
}

/// True when a grant at `scope` applies to `resource`: the tenant scope covers everything; any
/// other covers itself and the names that continue it past a `/` (so by whole pairs, both
/// being validated names).
pub fn covers(scope: &str, resource: &str) -> bool {
    scope.is_empty()
        || (resource.starts_with(scope)
            && (resource.len() == scope.len() || resource.as_bytes()[scope.len()] == b'/'))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_covers_itself_and_what_lies_under_it_by_whole_pairs() {
        let eng = Scope::parse("s", "departments/eng").unwrap();
        assert!(eng.covers("departments/eng"));
        assert!(eng.covers("departments/eng/projects/x"));
        assert!(!eng.covers("departments/engineering"));
        assert!(!eng.covers("departments/engineering/projects/x"));
        assert!(!eng.covers("departments"));
        assert!(!eng.covers(""));
        assert!(Scope::tenant().covers(""));
        assert!(Scope::tenant().covers("departments/eng"));
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        for bad in [
            "departments",
            "departments/eng/projects",
            "/departments/eng",
            "departments/eng/",
            "departments//eng/x",
            "departments/e ng",
            "departments/é",
            "departments/eng?x",
        ] {
            let err = Scope::parse("scope", bad).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{bad}: {err:?}");
        }
        let deep = (0..=MAX_SCOPE_PAIRS)
            .map(|i| format!("c{i}/i{i}"))
            .collect::<Vec<_>>()
            .join("/");
        assert!(Scope::parse("scope", &deep).is_err(), "9 pairs");
        let long = format!("a/{}", "x".repeat(MAX_SCOPE_BYTES));
        assert!(Scope::parse("scope", &long).is_err(), "over 512 bytes");
        let fine = "departments/eng-1/projects/apollo.v2/documents/42~draft/users/a@b:c";
        assert_eq!(Scope::parse("scope", fine).unwrap().as_str(), fine);
        assert!(Scope::parse("scope", "").unwrap().is_tenant());
    }
}
