//! The configuration file: the `Configuration` message's fields in snake_case, as YAML or JSON
//! (schema: docs/warden-config.schema.json). Its own serde types, so the file format is
//! written down here and not whatever the generated code happens to be: unknown keys are
//! errors, defaults are left out when printed, and times and durations read as people write
//! them (`2026-12-31T00:00:00Z`, `7d`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use warden_client::pb;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
    /// Editors' schema hint; ignored.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Permission>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignments: Vec<Assignment>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Permission {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Role {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<ApprovalPolicy>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub protected: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalPolicy {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quorum: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub approver_permission: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub approver_group_id: String,
    /// Whole seconds, written as `90s`, `12h`, `7d`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub expire_after: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<ApprovalKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApprovalKind {
    #[serde(alias = "APPROVAL_KIND_ASSIGN")]
    Assign,
    #[serde(alias = "APPROVAL_KIND_REVOKE")]
    Revoke,
    #[serde(alias = "APPROVAL_KIND_MODIFY")]
    Modify,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assignment {
    pub role: String,
    /// The identity holding the role; or leave it out and name a `group` of the document.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_id: String,
    #[serde(default, skip_serializing_if = "IdentityKind::is_user")]
    pub identity_kind: IdentityKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IdentityKind {
    #[default]
    #[serde(alias = "USER")]
    User,
    #[serde(alias = "SERVICE_ACCOUNT")]
    ServiceAccount,
    #[serde(alias = "PAT")]
    Pat,
}

impl IdentityKind {
    fn is_user(&self) -> bool {
        *self == IdentityKind::User
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The file's format, by its name: JSON for `.json`, YAML otherwise (a superset of JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Json,
}

impl Document {
    pub(crate) fn parse(text: &str, format: Format) -> Result<Self, String> {
        match format {
            Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
            // An empty file is an empty document (with --prune: delete everything).
            Format::Yaml if text.trim().is_empty() => Ok(Self::default()),
            Format::Yaml => yaml_serde::from_str(text).map_err(|e| e.to_string()),
        }
    }

    pub(crate) fn print(&self, format: Format) -> Result<String, String> {
        match format {
            Format::Json => serde_json::to_string_pretty(self)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| e.to_string()),
            Format::Yaml => yaml_serde::to_string(self).map_err(|e| e.to_string()),
        }
    }

    /// The message the server takes; a field that cannot be sent is named.
    pub(crate) fn into_pb(self) -> Result<pb::Configuration, String> {
        let roles = self
            .roles
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let approval_policy = r
                    .approval_policy
                    .map(|p| p.into_pb())
                    .transpose()
                    .map_err(|e| format!("roles[{i}].approval_policy.expire_after: {e}"))?;
                Ok(pb::ConfiguredRole {
                    name: r.name,
                    description: r.description,
                    permissions: r.permissions,
                    included_roles: r.included_roles,
                    requires_approval: r.requires_approval,
                    approval_policy,
                    protected: r.protected,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(pb::Configuration {
            permissions: self
                .permissions
                .into_iter()
                .map(|p| pb::ConfiguredPermission {
                    name: p.name,
                    description: p.description,
                })
                .collect(),
            roles,
            groups: self
                .groups
                .into_iter()
                .map(|g| pb::ConfiguredGroup {
                    name: g.name,
                    description: g.description,
                    members: g.members,
                })
                .collect(),
            assignments: self
                .assignments
                .into_iter()
                .map(|a| pb::ConfiguredAssignment {
                    role: a.role,
                    identity_id: a.identity_id,
                    identity_kind: match a.identity_kind {
                        IdentityKind::User => pb::IdentityKind::User,
                        IdentityKind::ServiceAccount => pb::IdentityKind::ServiceAccount,
                        IdentityKind::Pat => pb::IdentityKind::Pat,
                    } as i32,
                    group: a.group,
                    scope: a.scope,
                    expire_time: a.expire_time.map(|t| prost_types::Timestamp {
                        seconds: t.timestamp(),
                        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
                    }),
                    reason: a.reason,
                })
                .collect(),
        })
    }

    /// The server's document in the file's form; a value this build cannot name is an error
    /// (printing it some other way would not apply back as a no-op).
    pub(crate) fn from_pb(doc: pb::Configuration) -> Result<Self, String> {
        let assignments = doc
            .assignments
            .into_iter()
            .map(|a| {
                let identity_kind = match pb::IdentityKind::try_from(a.identity_kind) {
                    // A group holder has no identity kind; the file leaves it out.
                    Ok(pb::IdentityKind::Unspecified) if !a.group.is_empty() => {
                        IdentityKind::default()
                    }
                    Ok(pb::IdentityKind::User) => IdentityKind::User,
                    Ok(pb::IdentityKind::ServiceAccount) => IdentityKind::ServiceAccount,
                    Ok(pb::IdentityKind::Pat) => IdentityKind::Pat,
                    Ok(pb::IdentityKind::Group | pb::IdentityKind::Unspecified) | Err(_) => {
                        return Err(format!(
                            "assignment of {} has identity kind {}, which the file format cannot hold",
                            a.role, a.identity_kind
                        ));
                    }
                };
                let expire_time = a
                    .expire_time
                    .map(|t| {
                        DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
                            .ok_or_else(|| format!("assignment of {}: expire_time out of range", a.role))
                    })
                    .transpose()?;
                Ok(Assignment {
                    role: a.role,
                    identity_id: a.identity_id,
                    identity_kind,
                    group: a.group,
                    scope: a.scope,
                    expire_time,
                    reason: a.reason,
                })
            })
            .collect::<Result<_, String>>()?;
        let roles = doc
            .roles
            .into_iter()
            .map(|r| {
                let approval_policy = r
                    .approval_policy
                    .map(|p| ApprovalPolicy::from_pb(&r.name, p))
                    .transpose()?;
                Ok(Role {
                    name: r.name,
                    description: r.description,
                    permissions: r.permissions,
                    included_roles: r.included_roles,
                    requires_approval: r.requires_approval,
                    approval_policy,
                    protected: r.protected,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            schema: None,
            permissions: doc
                .permissions
                .into_iter()
                .map(|p| Permission {
                    name: p.name,
                    description: p.description,
                })
                .collect(),
            roles,
            groups: doc
                .groups
                .into_iter()
                .map(|g| Group {
                    name: g.name,
                    description: g.description,
                    members: g.members,
                })
                .collect(),
            assignments,
        })
    }
}

impl ApprovalPolicy {
    fn into_pb(self) -> Result<pb::ApprovalPolicy, String> {
        let expire_after = self
            .expire_after
            .map(|d| {
                Ok::<_, String>(prost_types::Duration {
                    seconds: i64::try_from(d.as_secs()).map_err(|_| "too long".to_owned())?,
                    nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
                })
            })
            .transpose()?;
        Ok(pb::ApprovalPolicy {
            quorum: self.quorum,
            approver_permission: self.approver_permission,
            approver_group_id: self.approver_group_id,
            expire_after,
            kinds: self
                .kinds
                .into_iter()
                .map(|k| {
                    let kind = match k {
                        ApprovalKind::Assign => pb::ApprovalKind::Assign,
                        ApprovalKind::Revoke => pb::ApprovalKind::Revoke,
                        ApprovalKind::Modify => pb::ApprovalKind::Modify,
                    };
                    kind as i32
                })
                .collect(),
        })
    }

    fn from_pb(role: &str, p: pb::ApprovalPolicy) -> Result<Self, String> {
        let expire_after = p
            .expire_after
            .map(|d| {
                let seconds = u64::try_from(d.seconds).ok();
                let nanos = u32::try_from(d.nanos).ok();
                seconds
                    .zip(nanos)
                    .map(|(s, n)| Duration::new(s, n))
                    .ok_or_else(|| format!("role {role}: negative approval expiry"))
            })
            .transpose()?;
        let kinds = p
            .kinds
            .into_iter()
            .map(|k| match pb::ApprovalKind::try_from(k) {
                Ok(pb::ApprovalKind::Assign) => Ok(ApprovalKind::Assign),
                Ok(pb::ApprovalKind::Revoke) => Ok(ApprovalKind::Revoke),
                Ok(pb::ApprovalKind::Modify) => Ok(ApprovalKind::Modify),
                Ok(pb::ApprovalKind::Unspecified) | Err(_) => Err(format!(
                    "role {role}: approval kind {k}, which the file format cannot hold"
                )),
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            quorum: p.quorum,
            approver_permission: p.approver_permission,
            approver_group_id: p.approver_group_id,
            expire_after,
            kinds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
permissions:
  - name: docs:read
    description: Read documents
  - name: docs:write
roles:
  - name: reader
    permissions: [docs:read]
  - name: editor
    permissions: [docs:write]
    included_roles: [reader]
    approval_policy:
      quorum: 2
      expire_after: 7d
      kinds: [assign, APPROVAL_KIND_REVOKE]
groups:
  - name: writers
    members: [bob, carol]
assignments:
  - role: editor
    identity_id: alice
    scope: departments/eng
    expire_time: 2026-12-31T00:00:00Z
  - role: reader
    group: writers
  - role: reader
    identity_id: ci-bot
    identity_kind: service_account
"#;

    #[test]
    fn the_file_maps_to_the_message_and_back_unchanged() {
        let doc = Document::parse(EXAMPLE, Format::Yaml).unwrap();
        let message = doc.clone().into_pb().unwrap();
        let policy = message.roles[1].approval_policy.as_ref().unwrap();
        assert_eq!(policy.quorum, 2);
        assert_eq!(policy.expire_after.unwrap().seconds, 7 * 86_400);
        assert_eq!(
            policy.kinds,
            [
                pb::ApprovalKind::Assign as i32,
                pb::ApprovalKind::Revoke as i32
            ]
        );
        assert_eq!(
            message.assignments[0].expire_time.unwrap().seconds,
            1_798_675_200
        );
        assert_eq!(
            message.assignments[2].identity_kind,
            pb::IdentityKind::ServiceAccount as i32
        );
        let back = Document::from_pb(message).unwrap();
        assert_eq!(back, doc);
        // Printed and read again, in both formats, it is the same document.
        for format in [Format::Yaml, Format::Json] {
            let text = back.print(format).unwrap();
            assert_eq!(Document::parse(&text, format).unwrap(), doc, "{text}");
        }
    }

    /// docs/warden-config.schema.json names exactly the keys these types read and print.
    #[test]
    fn the_json_schema_describes_every_field() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/warden-config.schema.json")).unwrap();
        let keys = |value: &serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let full = Document::parse(EXAMPLE, Format::Yaml).unwrap();
        let mut role = full.roles[1].clone();
        role.description = "d".into();
        role.requires_approval = true;
        role.protected = true;
        let policy = role.approval_policy.as_mut().unwrap();
        policy.approver_permission = "p".into();
        policy.approver_group_id = "g".into();
        let mut assignment = full.assignments[0].clone();
        assignment.identity_kind = IdentityKind::Pat;
        assignment.group = "g".into();
        assignment.reason = "r".into();
        let mut group = full.groups[0].clone();
        group.description = "d".into();
        let document = Document {
            schema: Some("s".into()),
            ..full.clone()
        };
        let cases = [
            (
                serde_json::to_value(&document).unwrap(),
                &schema["properties"],
            ),
            (
                serde_json::to_value(&full.permissions[0]).unwrap(),
                &schema["$defs"]["permission"]["properties"],
            ),
            (
                serde_json::to_value(&role).unwrap(),
                &schema["$defs"]["role"]["properties"],
            ),
            (
                serde_json::to_value(&role.approval_policy).unwrap(),
                &schema["$defs"]["approvalPolicy"]["properties"],
            ),
            (
                serde_json::to_value(&group).unwrap(),
                &schema["$defs"]["group"]["properties"],
            ),
            (
                serde_json::to_value(&assignment).unwrap(),
                &schema["$defs"]["assignment"]["properties"],
            ),
        ];
        for (printed, described) in cases {
            assert_eq!(keys(&printed), keys(described));
        }
    }

    #[test]
    fn unknown_keys_and_kinds_are_refused_with_their_place() {
        let err = Document::parse("roles:\n  - name: r\n    permission: [x]\n", Format::Yaml)
            .unwrap_err();
        assert!(err.contains("permission"), "{err}");
        let err = Document::parse(
            "assignments:\n  - role: r\n    identity_id: g\n    identity_kind: group\n",
            Format::Yaml,
        )
        .unwrap_err();
        assert!(err.contains("group"), "{err}");
        assert_eq!(
            Document::parse("", Format::Yaml).unwrap(),
            Document::default()
        );
    }
}
