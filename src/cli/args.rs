//! The admin subcommands' arguments.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

/// Subcommands that call a running server.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List, show, create and delete roles.
    #[command(subcommand)]
    Roles(RolesCommand),
    /// List, show, create and delete permissions.
    #[command(subcommand)]
    Permissions(PermissionsCommand),
    /// List, create and delete groups, and change their members.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// List, make and revoke role assignments.
    #[command(subcommand)]
    Assignments(AssignmentsCommand),
    /// May IDENTITY use PERMISSION? Exits 0 when allowed, 7 when denied.
    Check(CheckArgs),
    /// Approve a pending change request.
    Approve(DecideArgs),
    /// Reject a pending change request.
    Reject(DecideArgs),
    /// Print the tenant's changes as they are made, one line each (JSON lines with -o json).
    Watch(WatchArgs),
    /// Make the tenant match a configuration file (YAML, or JSON by the .json extension).
    Apply(ApplyArgs),
    /// Print the tenant as a configuration file that `apply -f` accepts (YAML, or -o json).
    Export,
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Every role, system roles included.
    List,
    /// One role, by name.
    Get { name: String },
    /// A new role granting these permissions (and what the included roles grant).
    Create {
        name: String,
        /// A permission the role grants (repeat, or comma-separate).
        #[arg(long = "permission", short = 'p', value_name = "PERMISSION", num_args = 1.., value_delimiter = ',')]
        permissions: Vec<String>,
        /// A role this one includes (repeat, or comma-separate).
        #[arg(long = "include", value_name = "ROLE", num_args = 1.., value_delimiter = ',')]
        includes: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Assigning or revoking it files a change request another admin approves.
        #[arg(long)]
        requires_approval: bool,
    },
    /// Delete a role; --force also revokes its assignments.
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PermissionsCommand {
    /// Every permission, Warden's own `warden:*` included.
    List,
    /// One permission, by name.
    Get { name: String },
    /// A new permission.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a permission; --force also removes it from the roles granting it.
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Every group, with its id and member count.
    List,
    /// A new group (prints its id, which the other group commands take).
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a group by id; --force also revokes its assignments and drops its members.
    Delete {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// Add identities to a group.
    AddMembers {
        id: String,
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
    },
    /// Remove identities from a group.
    RemoveMembers {
        id: String,
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AssignmentsCommand {
    /// Assignments, optionally of one role or to one identity.
    List {
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        #[arg(long, value_name = "IDENTITY")]
        identity: Option<String>,
    },
    /// Give IDENTITY the role ROLE; a role requiring approval files a change request instead.
    Assign {
        role: String,
        identity: String,
        /// What IDENTITY is; for a group, IDENTITY is the group's id.
        #[arg(long, value_enum, default_value_t = Kind::User)]
        kind: Kind,
        /// An AIP-122 resource name: the role applies there and under it (default: the tenant).
        #[arg(long, default_value = "", value_name = "SCOPE")]
        scope: String,
        /// When the assignment stops granting, RFC 3339 (e.g. 2026-12-31T00:00:00Z).
        #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
        expire: Option<DateTime<Utc>>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Revoke an assignment by id.
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// The kind of identity an assignment is made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Kind {
    User,
    ServiceAccount,
    Pat,
    Group,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    pub identity: String,
    pub permission: String,
    /// The resource asked about (AIP-122 name); default: tenant-wide grants only.
    #[arg(long, default_value = "", value_name = "RESOURCE")]
    pub resource: String,
    /// Say which grants allow it, or on a denial what would.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The change request's id.
    #[arg(value_name = "CR")]
    pub change_request: String,
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Print the changes after this revision first (default: only changes from now on).
    #[arg(long, value_name = "REVISION")]
    pub from: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The configuration file; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Print what applying would change, and who would gain or lose what; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Also delete what the file does not list (never system roles, permissions or bootstrap
    /// assignments).
    #[arg(long)]
    pub prune: bool,
}

fn rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-12-31T00:00:00Z"))
}
