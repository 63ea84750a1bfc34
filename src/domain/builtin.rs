//! Warden's own catalogue: the `warden:*` permissions and the system roles built from them.

/// Permissions Warden checks on its own API.
pub mod perm {
    pub const PERMISSIONS_READ: &str = "warden:permissions:read";
    pub const PERMISSIONS_WRITE: &str = "warden:permissions:write";
    pub const ROLES_READ: &str = "warden:roles:read";
    pub const ROLES_WRITE: &str = "warden:roles:write";
    pub const ASSIGNMENTS_READ: &str = "warden:assignments:read";
    pub const ASSIGNMENTS_WRITE: &str = "warden:assignments:write";
    pub const GROUPS_READ: &str = "warden:groups:read";
    pub const GROUPS_WRITE: &str = "warden:groups:write";
    pub const CHECKS_RUN: &str = "warden:checks:run";
    pub const AUDIT_READ: &str = "warden:audit:read";
    pub const CHANGE_REQUESTS_APPROVE: &str = "warden:change_requests:approve";
    pub const APPROVALS_BYPASS: &str = "warden:approvals:bypass";
    pub const ROLES_ESCALATE: &str = "warden:roles:escalate";
    pub const ROLES_PROTECT: &str = "warden:roles:protect";
    /// Only in the platform tenant (`WARDEN_PLATFORM_TENANT`): TenantService.
    pub const TENANTS_READ: &str = "warden:tenants:read";
    pub const TENANTS_WRITE: &str = "warden:tenants:write";
}

/// Every built-in permission with its description.
pub const PERMISSIONS: [(&str, &str); 16] = [
    (perm::PERMISSIONS_READ, "Read the permission catalogue"),
    (
        perm::PERMISSIONS_WRITE,
        "Create, update and delete permissions",
    ),
    (perm::ROLES_READ, "Read roles"),
    (perm::ROLES_WRITE, "Create, update and delete roles"),
    (
        perm::ASSIGNMENTS_READ,
        "Read assignments and change requests",
    ),
    (perm::ASSIGNMENTS_WRITE, "Assign and revoke roles"),
    (perm::GROUPS_READ, "Read groups and their members"),
    (
        perm::GROUPS_WRITE,
        "Create and delete groups, change members",
    ),
    (perm::CHECKS_RUN, "Check other identities' permissions"),
    (perm::AUDIT_READ, "Read the audit trail and watch changes"),
    (
        perm::CHANGE_REQUESTS_APPROVE,
        "Approve or reject change requests",
    ),
    (
        perm::APPROVALS_BYPASS,
        "Assign or revoke approval-gated roles without approval (force)",
    ),
    (
        perm::ROLES_ESCALATE,
        "Grant permissions the caller does not hold itself",
    ),
    (
        perm::ROLES_PROTECT,
        "Mark roles protected, and change or delete protected roles",
    ),
    (
        perm::TENANTS_READ,
        "Read tenants (in the platform tenant only)",
    ),
    (
        perm::TENANTS_WRITE,
        "Create, disable and enable tenants (in the platform tenant only)",
    ),
];

pub const ADMIN_ROLE: &str = "warden:admin";
pub const VIEWER_ROLE: &str = "warden:viewer";
pub const CHECKER_ROLE: &str = "warden:checker";
pub const APPROVER_ROLE: &str = "warden:approver";

/// A system role: its name, description and permissions.
#[derive(Debug, Clone, Copy)]
pub struct SystemRole {
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: &'static [&'static str],
}

pub const ROLES: [SystemRole; 4] = [
    SystemRole {
        name: ADMIN_ROLE,
        description: "Every warden:* permission",
        permissions: &[
            perm::PERMISSIONS_READ,
            perm::PERMISSIONS_WRITE,
            perm::ROLES_READ,
            perm::ROLES_WRITE,
            perm::ASSIGNMENTS_READ,
            perm::ASSIGNMENTS_WRITE,
            perm::GROUPS_READ,
            perm::GROUPS_WRITE,
            perm::CHECKS_RUN,
            perm::AUDIT_READ,
            perm::CHANGE_REQUESTS_APPROVE,
            perm::APPROVALS_BYPASS,
            perm::ROLES_ESCALATE,
            perm::ROLES_PROTECT,
            perm::TENANTS_READ,
            perm::TENANTS_WRITE,
        ],
    },
    SystemRole {
        name: VIEWER_ROLE,
        description: "Read everything, change nothing",
        permissions: &[
            perm::PERMISSIONS_READ,
            perm::ROLES_READ,
            perm::ASSIGNMENTS_READ,
            perm::GROUPS_READ,
            perm::AUDIT_READ,
        ],
    },
    SystemRole {
        name: CHECKER_ROLE,
        description: "Check any identity's permissions",
        permissions: &[perm::CHECKS_RUN],
    },
    SystemRole {
        name: APPROVER_ROLE,
        description: "Approve or reject change requests",
        permissions: &[
            perm::CHANGE_REQUESTS_APPROVE,
            perm::ASSIGNMENTS_READ,
            perm::ROLES_READ,
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_holds_every_builtin_permission_and_roles_use_only_builtins() {
        let admin = ROLES.iter().find(|r| r.name == ADMIN_ROLE).unwrap();
        for (name, _) in PERMISSIONS {
            assert!(admin.permissions.contains(&name), "admin lacks {name}");
        }
        for role in ROLES {
            for p in role.permissions {
                assert!(
                    PERMISSIONS.iter().any(|(n, _)| n == p),
                    "{} grants unknown {p}",
                    role.name
                );
            }
        }
    }
}
