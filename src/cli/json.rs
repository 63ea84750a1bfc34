//! The messages the CLI prints, as JSON in protobuf's JSON mapping (lowerCamelCase names, enum
//! names, RFC 3339 times, `"3600s"` durations), every field present. 64-bit integers are
//! printed as numbers, which `jq` compares and protobuf JSON parsers accept.
//!
//! prost's types do not derive serde; these few shapes are converted by hand.

use prost_types::value::Kind;
use serde_json::{Map, Value, json};

use warden_client::pb;

/// A message printed with `-o json`.
pub(crate) trait ToJson {
    fn to_json(&self) -> Value;
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
}

impl ToJson for prost_types::Timestamp {
    fn to_json(&self) -> Value {
        json!(rfc3339(self))
    }
}

impl ToJson for prost_types::Duration {
    fn to_json(&self) -> Value {
        if self.nanos == 0 {
            json!(format!("{}s", self.seconds))
        } else {
            json!(format!("{}.{:09}s", self.seconds, self.nanos))
        }
    }
}

/// A timestamp in RFC 3339 (UTC, fractional seconds only when there are any).
pub(crate) fn rfc3339(t: &prost_types::Timestamp) -> String {
    let nanos = u32::try_from(t.nanos).unwrap_or(0);
    chrono::DateTime::from_timestamp(t.seconds, nanos).map_or_else(
        || format!("{}s", t.seconds),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

/// An enum's name, or its number when this build does not know it.
fn name<E>(raw: i32, to_name: impl Fn(&E) -> &'static str) -> Value
where
    E: TryFrom<i32>,
{
    E::try_from(raw).map_or_else(|_| json!(raw), |e| json!(to_name(&e)))
}

impl ToJson for prost_types::Struct {
    fn to_json(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<Map<_, _>>(),
        )
    }
}

impl ToJson for prost_types::Value {
    fn to_json(&self) -> Value {
        match &self.kind {
            None | Some(Kind::NullValue(_)) => Value::Null,
            Some(Kind::NumberValue(n)) => json!(n),
            Some(Kind::StringValue(s)) => json!(s),
            Some(Kind::BoolValue(b)) => json!(b),
            Some(Kind::StructValue(s)) => s.to_json(),
            Some(Kind::ListValue(l)) => l.values.to_json(),
        }
    }
}

impl ToJson for pb::Permission {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "isSystem": self.is_system,
            "tenantId": self.tenant_id,
            "createTime": self.create_time.to_json(),
            "updateTime": self.update_time.to_json(),
            "revision": self.revision,
        })
    }
}

impl ToJson for pb::RoleSummary {
    fn to_json(&self) -> Value {
        json!({ "id": self.id, "name": self.name })
    }
}

impl ToJson for pb::ApprovalPolicy {
    fn to_json(&self) -> Value {
        json!({
            "quorum": self.quorum,
            "approverPermission": self.approver_permission,
            "approverGroupId": self.approver_group_id,
            "expireAfter": self.expire_after.to_json(),
            "kinds": self.kinds.iter().map(|k| name(*k, pb::ApprovalKind::as_str_name)).collect::<Vec<_>>(),
        })
    }
}

impl ToJson for pb::Role {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "isSystem": self.is_system,
            "requiresApproval": self.requires_approval,
            "permissions": self.permissions,
            "tenantId": self.tenant_id,
            "createTime": self.create_time.to_json(),
            "updateTime": self.update_time.to_json(),
            "revision": self.revision,
            "etag": self.etag,
            "approvalPolicy": self.approval_policy.to_json(),
            "protected": self.protected,
            "includedRoles": self.included_roles.to_json(),
        })
    }
}

impl ToJson for pb::Group {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "memberCount": self.member_count,
            "tenantId": self.tenant_id,
            "createTime": self.create_time.to_json(),
            "updateTime": self.update_time.to_json(),
            "revision": self.revision,
            "impact": self.impact.to_json(),
        })
    }
}

impl ToJson for pb::Identity {
    fn to_json(&self) -> Value {
        json!({ "id": self.id, "kind": name(self.kind, pb::IdentityKind::as_str_name) })
    }
}

impl ToJson for pb::Assignment {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "roleId": self.role_id,
            "roleName": self.role_name,
            "identity": self.identity.to_json(),
            "isImmutable": self.is_immutable,
            "expireTime": self.expire_time.to_json(),
            "reason": self.reason,
            "tenantId": self.tenant_id,
            "createTime": self.create_time.to_json(),
            "updateTime": self.update_time.to_json(),
            "revision": self.revision,
            "scope": self.scope,
        })
    }
}

impl ToJson for pb::Approval {
    fn to_json(&self) -> Value {
        json!({ "approver": self.approver, "time": self.time.to_json(), "comment": self.comment })
    }
}

impl ToJson for pb::ChangeRequest {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "kind": name(self.kind, pb::ChangeRequestKind::as_str_name),
            "role": self.role.to_json(),
            "identity": self.identity.to_json(),
            "assignmentExpireTime": self.assignment_expire_time.to_json(),
            "assignmentId": self.assignment_id,
            "reason": self.reason,
            "requester": self.requester,
            "status": name(self.status, pb::ChangeRequestStatus::as_str_name),
            "decidedBy": self.decided_by,
            "decisionComment": self.decision_comment,
            "failureReason": self.failure_reason,
            "resultingAssignmentId": self.resulting_assignment_id,
            "tenantId": self.tenant_id,
            "createTime": self.create_time.to_json(),
            "updateTime": self.update_time.to_json(),
            "expireTime": self.expire_time.to_json(),
            "revision": self.revision,
            "policy": self.policy.to_json(),
            "approvals": self.approvals.to_json(),
            "proposedChange": self.proposed_change,
            "scope": self.scope,
        })
    }
}

impl ToJson for pb::ScopedPermission {
    fn to_json(&self) -> Value {
        json!({ "permission": self.permission, "scope": self.scope })
    }
}

impl ToJson for pb::IdentityImpact {
    fn to_json(&self) -> Value {
        json!({
            "identityId": self.identity_id,
            "gained": self.gained,
            "lost": self.lost,
            "gainedScoped": self.gained_scoped.to_json(),
            "lostScoped": self.lost_scoped.to_json(),
        })
    }
}

impl ToJson for pb::Impact {
    fn to_json(&self) -> Value {
        json!({ "identities": self.identities.to_json() })
    }
}

impl ToJson for pb::Grant {
    fn to_json(&self) -> Value {
        json!({
            "assignmentId": self.assignment_id,
            "role": self.role.to_json(),
            "groupId": self.group_id,
            "scope": self.scope,
            "inclusionPath": self.inclusion_path.to_json(),
        })
    }
}

impl ToJson for pb::CheckResponse {
    fn to_json(&self) -> Value {
        json!({
            "allowed": self.allowed,
            "revision": self.revision,
            "reason": name(self.reason, pb::CheckReason::as_str_name),
            "grants": self.grants.to_json(),
            "grantingRoles": self.granting_roles.to_json(),
            "expiredGrants": self.expired_grants.to_json(),
            "pendingChangeRequestIds": self.pending_change_request_ids,
            "heldElsewhere": self.held_elsewhere.to_json(),
        })
    }
}

impl ToJson for pb::PlanStep {
    fn to_json(&self) -> Value {
        json!({
            "action": name(self.action, pb::PlanAction::as_str_name),
            "kind": self.kind,
            "name": self.name,
            "detail": self.detail,
        })
    }
}

impl ToJson for pb::ApplyConfigurationResponse {
    fn to_json(&self) -> Value {
        json!({
            "plan": self.plan.to_json(),
            "revision": self.revision,
            "impact": self.impact.to_json(),
            "changeRequests": self.change_requests.to_json(),
            "changed": self.changed,
        })
    }
}

impl ToJson for pb::ChangeEvent {
    fn to_json(&self) -> Value {
        json!({
            "revision": self.revision,
            "time": self.time.to_json(),
            "tenantId": self.tenant_id,
            "kind": name(self.kind, pb::ChangeKind::as_str_name),
            "target": self.target,
            "changes": self
                .changes
                .iter()
                .map(|c| {
                    use prost::Message as _;
                    crate::grpc::proto_json("warden.v1.IndexChange", &c.encode_to_vec())
                        .unwrap_or(Value::Null)
                })
                .collect::<Vec<_>>(),
        })
    }
}

impl ToJson for pb::DeleteRoleResponse {
    fn to_json(&self) -> Value {
        json!({ "revision": self.revision, "impact": self.impact.to_json() })
    }
}

impl ToJson for pb::DeletePermissionResponse {
    fn to_json(&self) -> Value {
        json!({ "revision": self.revision, "impact": self.impact.to_json() })
    }
}

impl ToJson for pb::AssignRoleResponse {
    fn to_json(&self) -> Value {
        let mut value = json!({ "revision": self.revision, "impact": self.impact.to_json() });
        match &self.result {
            Some(pb::assign_role_response::Result::Assignment(a)) => {
                value["assignment"] = a.to_json();
            }
            Some(pb::assign_role_response::Result::ChangeRequest(cr)) => {
                value["changeRequest"] = cr.to_json();
            }
            None => {}
        }
        value
    }
}

impl ToJson for pb::RevokeAssignmentResponse {
    fn to_json(&self) -> Value {
        let mut value = json!({ "revision": self.revision, "impact": self.impact.to_json() });
        match &self.result {
            Some(pb::revoke_assignment_response::Result::Assignment(a)) => {
                value["assignment"] = a.to_json();
            }
            Some(pb::revoke_assignment_response::Result::ChangeRequest(cr)) => {
                value["changeRequest"] = cr.to_json();
            }
            None => {}
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_durations_and_enums_take_their_protobuf_json_form() {
        let cr = pb::ChangeRequest {
            status: pb::ChangeRequestStatus::Pending as i32,
            expire_time: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
            policy: Some(pb::ApprovalPolicy {
                expire_after: Some(prost_types::Duration {
                    seconds: 86_400,
                    nanos: 0,
                }),
                kinds: vec![pb::ApprovalKind::Assign as i32],
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = cr.to_json();
        assert_eq!(value["status"], "CHANGE_REQUEST_STATUS_PENDING");
        assert_eq!(value["expireTime"], "2026-01-01T00:00:00Z");
        assert_eq!(value["policy"]["expireAfter"], "86400s");
        assert_eq!(value["policy"]["kinds"], json!(["APPROVAL_KIND_ASSIGN"]));
        assert_eq!(value["role"], Value::Null);
    }
}
