//! A differential test: thousands of random operations through the API, and after every few
//! of them Check, ListEffectivePermissions, ListPermissionHolders and ListGrantedScopes, on
//! resources of a small hierarchy, compared with a plain reference evaluator written here. A
//! fixed seed makes any disagreement reproducible.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use warden::domain::ManualClock;

use crate::helpers::*;

const PERMS: [&str; 10] = [
    "a:read", "a:write", "b:read", "b:write", "c:x", "c:y", "d:1", "d:2", "e", "f",
];
const ROLES: [&str; 6] = ["r1", "r2", "r3", "r4", "r5", "r6"];
const USERS: [&str; 8] = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
/// Never granted anything, nor a member of any group: every question about it must deny.
const CANARY: &str = "canary";
/// Where assignments are made: the tenant, nested scopes, and `departments/engineering`, which
/// `departments/eng` must not cover (pairs are whole).
const SCOPES: [&str; 6] = [
    "",
    "departments/eng",
    "departments/engineering",
    "departments/eng/projects/a",
    "departments/eng/projects/a/documents/1",
    "departments/sales",
];
/// What is asked about: every scope, and names under them (or under none) that no assignment
/// names, so that only coverage from above can grant them.
const RESOURCES: [&str; 10] = [
    "",
    "departments/eng",
    "departments/engineering",
    "departments/eng/projects/a",
    "departments/eng/projects/a/documents/1",
    "departments/sales",
    "departments/eng/projects/a/documents/2",
    "departments/eng/projects/b",
    "departments/engineering/projects/a",
    "regions/eu",
];

/// (role, identity, scope): what makes an assignment unique.
type Grant = (String, String, String);
/// (identity, role, group id or "", scope): one row of ListPermissionHolders.
type Holder = (String, String, String, String);

/// The documented rule, written out here rather than borrowed from the server: the tenant
/// scope covers everything; another covers itself and the names continuing it past a '/'.
fn covers(scope: &str, resource: &str) -> bool {
    scope.is_empty()
        || resource
            .strip_prefix(scope)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The reference: sets and maps, evaluated the obvious way.
#[derive(Default)]
struct Model {
    perms: BTreeSet<String>,
    /// role -> the permissions it grants itself
    roles: BTreeMap<String, BTreeSet<String>>,
    /// role -> the roles it includes directly
    includes: BTreeMap<String, BTreeSet<String>>,
    /// (role, identity, scope) -> (assignment id, expire)
    assignments: BTreeMap<Grant, (String, Option<DateTime<Utc>>)>,
    /// group name -> (id, members)
    groups: BTreeMap<String, (String, BTreeSet<String>)>,
}

impl Model {
    fn live(expire: &Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        expire.is_none_or(|t| now < t)
    }

    /// The roles `role` includes, directly or not. Walked with a visited set, so that a cycle
    /// the server wrongly accepted is reported rather than looped on.
    fn included(&self, role: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = self.includes.get(role).into_iter().flatten().collect();
        while let Some(r) = stack.pop() {
            if seen.insert(r.clone()) {
                stack.extend(self.includes.get(r).into_iter().flatten());
            }
        }
        seen
    }

    /// role -> everything it grants, its own permissions and its included roles'.
    fn grants(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        self.roles
            .keys()
            .map(|role| {
                let mut all: BTreeSet<&str> = self.roles[role].iter().map(String::as_str).collect();
                for r in self.included(role) {
                    all.extend(self.roles[&r].iter().map(String::as_str));
                }
                (role.as_str(), all)
            })
            .collect()
    }

    /// Live assignments at `now` reaching `user` (its own and its groups'), with what each
    /// role grants.
    fn reaching<'m>(
        &'m self,
        user: &str,
        grants: &'m BTreeMap<&'m str, BTreeSet<&'m str>>,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&'m Grant, &'m BTreeSet<&'m str>)> {
        let mut holders: Vec<String> = vec![user.to_owned()];
        holders.extend(
            self.groups
                .values()
                .filter(|(_, m)| m.contains(user))
                .map(|(id, _)| id.clone()),
        );
        self.assignments
            .iter()
            .filter(move |((_, who, _), (_, expire))| {
                holders.contains(who) && Self::live(expire, now)
            })
            .map(|(grant, _)| (grant, &grants[grant.0.as_str()]))
    }

    /// (permission -> roles assigned) for a user on `resource`, directly and through groups:
    /// the role named is the one assigned, not the included one granting the permission.
    fn effective(
        &self,
        user: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, BTreeSet<String>> {
        let grants = self.grants();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for ((role, _, scope), perms) in self.reaching(user, &grants, now) {
            if covers(scope, resource) {
                for p in perms {
                    out.entry((*p).to_owned()).or_default().insert(role.clone());
                }
            }
        }
        out
    }

    /// Every holder of `perm` on `resource`, sorted.
    fn holders(&self, perm: &str, resource: &str, now: DateTime<Utc>) -> Vec<Holder> {
        let grants = self.grants();
        let mut out = Vec::new();
        for ((role, who, scope), (_, expire)) in &self.assignments {
            if !Self::live(expire, now)
                || !grants[role.as_str()].contains(perm)
                || !covers(scope, resource)
            {
                continue;
            }
            match self.groups.values().find(|(id, _)| id == who) {
                Some((gid, members)) => out.extend(
                    members
                        .iter()
                        .map(|m| (m.clone(), role.clone(), gid.clone(), scope.clone())),
                ),
                None => out.push((who.clone(), role.clone(), String::new(), scope.clone())),
            }
        }
        out.sort();
        out
    }

    /// ListGrantedScopes as documented: every grant scope inside `under`, and `under` itself
    /// when a grant above it covers it.
    fn granted_scopes(
        &self,
        user: &str,
        perm: &str,
        under: &str,
        now: DateTime<Utc>,
    ) -> BTreeSet<String> {
        let grants = self.grants();
        let mut out = BTreeSet::new();
        for ((_, _, scope), perms) in self.reaching(user, &grants, now) {
            if !perms.contains(perm) {
                continue;
            }
            if covers(under, scope) {
                out.insert(scope.clone());
            } else if covers(scope, under) {
                out.insert(under.to_owned());
            }
        }
        out
    }
}

const ACCEPTED: &str = "accepted";

/// How a write ended, in the terms the reference predicts: "accepted", or the code and reason.
fn outcome<T>(result: &Result<T, Status>) -> String {
    match result {
        Ok(_) => ACCEPTED.to_owned(),
        Err(status) => refused(
            status.code(),
            &status
                .get_details_error_info()
                .map(|i| i.reason)
                .unwrap_or_default(),
        ),
    }
}

/// A refusal, as `outcome` describes it.
fn refused(code: Code, reason: &str) -> String {
    format!("{code:?} {reason}")
}

/// Notes a write whose outcome the reference did not predict. True when the server accepted
/// it: the reference then follows the server, so later comparisons still mean something.
fn accepted<T>(
    result: &Result<T, Status>,
    predicted: &str,
    step: usize,
    what: &str,
    disagreements: &mut Vec<String>,
) -> bool {
    let got = outcome(result);
    if got != predicted {
        disagreements.push(format!(
            "step {step}: {what}: {got} but the reference says {predicted}"
        ));
    }
    result.is_ok()
}

async fn random_operations_agree_with_the_reference(backend: Backend, operations: usize) {
    let start = Utc::now();
    let app = spawn_with_clock(backend, start).await;
    let clock = app.clock.clone().unwrap();
    let mut now = start;
    let mut rng = SmallRng::seed_from_u64(0x5eed_0f3a_7d00);
    // The comparisons draw from their own stream, so the operations stay those of the seed
    // whatever the comparisons ask.
    let mut pick = SmallRng::seed_from_u64(0x5eed_0f3a_7d01);
    let mut model = Model::default();
    let mut disagreements = Vec::new();
    let mut checks = 0usize;
    let mut fresh_replicas = 0;
    let mut refusals = 0usize;

    for step in 0..operations {
        // A skipped operation still reaches the comparisons below.
        'operation: {
            match rng.random_range(0..100) {
                0..=7 => {
                    let p = PERMS[rng.random_range(0..PERMS.len())];
                    if model.perms.insert(p.to_owned()) {
                        app.create_permission(p).await;
                    }
                }
                8..=14 => {
                    let r = ROLES[rng.random_range(0..ROLES.len())];
                    if !model.roles.contains_key(r) {
                        let chosen: BTreeSet<String> = model
                            .perms
                            .iter()
                            .filter(|_| rng.random_bool(0.3))
                            .cloned()
                            .collect();
                        // Sometimes born composite; a new role cannot close a cycle.
                        let included: BTreeSet<String> = model
                            .roles
                            .keys()
                            .filter(|_| rng.random_bool(0.1))
                            .cloned()
                            .collect();
                        app.roles()
                            .create_role(authed(
                                ADMIN,
                                CreateRoleRequest {
                                    name: r.into(),
                                    permissions: chosen.iter().map(|p| perm_name(p)).collect(),
                                    included_roles: included.iter().map(|r| role_name(r)).collect(),
                                    ..Default::default()
                                },
                            ))
                            .await
                            .unwrap();
                        model.roles.insert(r.to_owned(), chosen);
                        model.includes.insert(r.to_owned(), included);
                    }
                }
                15..=25 if !model.roles.is_empty() && !model.perms.is_empty() => {
                    let r = model
                        .roles
                        .keys()
                        .nth(rng.random_range(0..model.roles.len()))
                        .unwrap()
                        .clone();
                    let chosen: Vec<String> = model
                        .perms
                        .iter()
                        .filter(|_| rng.random_bool(0.3))
                        .cloned()
                        .collect();
                    if chosen.is_empty() {
                        break 'operation;
                    }
                    let refs = chosen.iter().map(|p| perm_name(p)).collect();
                    if rng.random_bool(0.5) {
                        app.roles()
                            .add_permissions_to_role(authed(
                                ADMIN,
                                AddPermissionsToRoleRequest {
                                    role: Some(role_name(&r)),
                                    permissions: refs,
                                    ..Default::default()
                                },
                            ))
                            .await
                            .unwrap();
                        model.roles.get_mut(&r).unwrap().extend(chosen);
                    } else {
                        app.roles()
                            .remove_permissions_from_role(authed(
                                ADMIN,
                                RemovePermissionsFromRoleRequest {
                                    role: Some(role_name(&r)),
                                    permissions: refs,
                                    ..Default::default()
                                },
                            ))
                            .await
                            .unwrap();
                        model
                            .roles
                            .get_mut(&r)
                            .unwrap()
                            .retain(|p| !chosen.contains(p));
                    }
                }
                26..=50 if !model.roles.is_empty() => {
                    let r = model
                        .roles
                        .keys()
                        .nth(rng.random_range(0..model.roles.len()))
                        .unwrap()
                        .clone();
                    let (who, identity) = if rng.random_bool(0.25) && !model.groups.is_empty() {
                        let (gid, _) = model
                            .groups
                            .values()
                            .nth(rng.random_range(0..model.groups.len()))
                            .unwrap();
                        (
                            gid.clone(),
                            Identity {
                                id: gid.clone(),
                                kind: IdentityKind::Group as i32,
                            },
                        )
                    } else {
                        let u = USERS[rng.random_range(0..USERS.len())];
                        (u.to_owned(), user(u))
                    };
                    // Tenant-wide as often as all the other scopes together.
                    let scope = if rng.random_bool(0.5) {
                        ""
                    } else {
                        SCOPES[rng.random_range(1..SCOPES.len())]
                    };
                    let key = (r.clone(), who.clone(), scope.to_owned());
                    // The same role at another scope is another assignment; at the same scope,
                    // while live, it is refused.
                    let live = model
                        .assignments
                        .get(&key)
                        .is_some_and(|(_, e)| Model::live(e, now));
                    let expire = rng
                        .random_bool(0.3)
                        .then(|| now + Duration::minutes(rng.random_range(1..120)));
                    let result = app
                        .assignments()
                        .assign_role(authed(
                            ADMIN,
                            AssignRoleRequest {
                                role: Some(role_name(&r)),
                                identity: Some(identity),
                                scope: scope.into(),
                                expire_time: expire.map(|t| prost_types::Timestamp {
                                    seconds: t.timestamp(),
                                    nanos: t.timestamp_subsec_nanos() as i32,
                                }),
                                ..Default::default()
                            },
                        ))
                        .await;
                    let predicted = if live {
                        refused(Code::AlreadyExists, "ALREADY_EXISTS")
                    } else {
                        ACCEPTED.to_owned()
                    };
                    let what = format!("AssignRole({r}, {who}, {scope:?})");
                    if !accepted(&result, &predicted, step, &what, &mut disagreements) {
                        refusals += 1;
                        break 'operation;
                    }
                    let Some(assign_role_response::Result::Assignment(a)) =
                        result.unwrap().into_inner().result
                    else {
                        panic!("assignment expected")
                    };
                    // Timestamps travel with nanosecond precision but are stored in microseconds.
                    let stored = expire.map(|t| {
                        DateTime::<Utc>::from_timestamp_micros(t.timestamp_micros()).unwrap()
                    });
                    model.assignments.insert(key, (a.id, stored));
                }
                51..=58 if !model.assignments.is_empty() => {
                    let key = model
                        .assignments
                        .keys()
                        .nth(rng.random_range(0..model.assignments.len()))
                        .unwrap()
                        .clone();
                    let (id, _) = model.assignments.remove(&key).unwrap();
                    app.assignments()
                        .revoke_assignment(authed(
                            ADMIN,
                            RevokeAssignmentRequest {
                                assignment_id: id,
                                ..Default::default()
                            },
                        ))
                        .await
                        .unwrap();
                }
                59..=62 => {
                    let g = GROUPS[rng.random_range(0..GROUPS.len())];
                    if !model.groups.contains_key(g) {
                        let group = app
                            .groups()
                            .create_group(authed(
                                ADMIN,
                                CreateGroupRequest {
                                    name: g.into(),
                                    ..Default::default()
                                },
                            ))
                            .await
                            .unwrap()
                            .into_inner();
                        model
                            .groups
                            .insert(g.to_owned(), (group.id, BTreeSet::new()));
                    }
                }
                63..=73 if !model.groups.is_empty() => {
                    let g = model
                        .groups
                        .keys()
                        .nth(rng.random_range(0..model.groups.len()))
                        .unwrap()
                        .clone();
                    let members: Vec<String> = USERS
                        .iter()
                        .filter(|_| rng.random_bool(0.3))
                        .map(|u| (*u).to_owned())
                        .collect();
                    if members.is_empty() {
                        break 'operation;
                    }
                    let (gid, set) = model.groups.get_mut(&g).unwrap();
                    if rng.random_bool(0.6) {
                        let request = AddGroupMembersRequest {
                            group_id: gid.clone(),
                            identity_ids: members.clone(),
                            ..Default::default()
                        };
                        app.groups()
                            .add_group_members(authed(ADMIN, request))
                            .await
                            .unwrap();
                        set.extend(members);
                    } else {
                        let request = RemoveGroupMembersRequest {
                            group_id: gid.clone(),
                            identity_ids: members.clone(),
                            ..Default::default()
                        };
                        app.groups()
                            .remove_group_members(authed(ADMIN, request))
                            .await
                            .unwrap();
                        set.retain(|m| !members.contains(m));
                    }
                }
                74..=76 if !model.perms.is_empty() => {
                    let p = model
                        .perms
                        .iter()
                        .nth(rng.random_range(0..model.perms.len()))
                        .unwrap()
                        .clone();
                    app.permissions()
                        .delete_permission(authed(
                            ADMIN,
                            DeletePermissionRequest {
                                permission: Some(perm_name(&p)),
                                force: true,
                                ..Default::default()
                            },
                        ))
                        .await
                        .unwrap();
                    model.perms.remove(&p);
                    for perms in model.roles.values_mut() {
                        perms.remove(&p);
                    }
                }
                77..=78 if !model.roles.is_empty() => {
                    let r = model
                        .roles
                        .keys()
                        .nth(rng.random_range(0..model.roles.len()))
                        .unwrap()
                        .clone();
                    // Force revokes its assignments, but nothing removes it from the roles
                    // including it.
                    let in_use = model.includes.values().any(|inc| inc.contains(&r));
                    let result = app
                        .roles()
                        .delete_role(authed(
                            ADMIN,
                            DeleteRoleRequest {
                                role: Some(role_name(&r)),
                                force: true,
                                ..Default::default()
                            },
                        ))
                        .await;
                    let predicted = if in_use {
                        refused(Code::FailedPrecondition, "ROLE_IN_USE")
                    } else {
                        ACCEPTED.to_owned()
                    };
                    let what = format!("DeleteRole({r})");
                    if !accepted(&result, &predicted, step, &what, &mut disagreements) {
                        refusals += 1;
                        break 'operation;
                    }
                    model.roles.remove(&r);
                    model.includes.remove(&r);
                    for inc in model.includes.values_mut() {
                        inc.remove(&r);
                    }
                    model.assignments.retain(|(role, _, _), _| *role != r);
                }
                79..=87 if !model.roles.is_empty() => {
                    let r = model
                        .roles
                        .keys()
                        .nth(rng.random_range(0..model.roles.len()))
                        .unwrap()
                        .clone();
                    // Up to two roles, replacing the list (none empties it); `r` itself may be
                    // among them, a cycle of one.
                    let mut chosen: Vec<String> = Vec::new();
                    for _ in 0..rng.random_range(0..=2) {
                        let c = model
                            .roles
                            .keys()
                            .nth(rng.random_range(0..model.roles.len()))
                            .unwrap();
                        if !chosen.contains(c) {
                            chosen.push(c.clone());
                        }
                    }
                    // Six roles make at most five levels, so ROLE_INCLUSION_TOO_DEEP cannot
                    // arise here; cycles can.
                    let cycle = chosen
                        .iter()
                        .any(|c| *c == r || model.included(c).contains(&r));
                    let result = app
                        .roles()
                        .update_role(authed(
                            ADMIN,
                            UpdateRoleRequest {
                                role: Some(role_name(&r)),
                                included_roles: Some(RoleRefList {
                                    roles: chosen.iter().map(|c| role_name(c)).collect(),
                                }),
                                ..Default::default()
                            },
                        ))
                        .await;
                    let predicted = if cycle {
                        refused(Code::FailedPrecondition, "ROLE_CYCLE")
                    } else {
                        ACCEPTED.to_owned()
                    };
                    let what = format!("UpdateRole({r}, included_roles: {chosen:?})");
                    if !accepted(&result, &predicted, step, &what, &mut disagreements) {
                        refusals += 1;
                        break 'operation;
                    }
                    model.includes.insert(r, chosen.into_iter().collect());
                }
                88..=95 => {
                    now += Duration::minutes(rng.random_range(1..30));
                    clock.set(now);
                }
                _ => {}
            }
        }

        if step % 40 == 39 || step + 1 == operations {
            compare(
                &app,
                &model,
                now,
                step,
                &mut pick,
                &mut checks,
                &mut disagreements,
            )
            .await;
        }
        if step % (operations / 4) == operations / 4 - 1 {
            // A replica started now builds its index from the database, not from the changes
            // it watched being made: its answers must agree with the reference too.
            let db = Arc::clone(&app.db);
            let mut fresh = spawn_on(db, test_config, Some(ManualClock::new(now))).await;
            compare(
                &fresh,
                &model,
                now,
                step,
                &mut pick,
                &mut checks,
                &mut disagreements,
            )
            .await;
            fresh.shutdown().await;
            fresh_replicas += 1;
        }
    }
    let summary = format!(
        "{operations} random operations ({refusals} of them refused), {checks} answers compared \
         ({fresh_replicas} fresh replicas among those asked): {} disagreements",
        disagreements.len()
    );
    println!("{summary}");
    assert!(
        disagreements.is_empty(),
        "{summary}, first: {:#?}",
        &disagreements[..disagreements.len().min(5)]
    );
    app.finish().await;
}

/// On `app`, against the reference at `now`: Check of every user (and the canary) x every
/// permission x every resource, in one batch; ListEffectivePermissions of every user on a few
/// resources; ListPermissionHolders of every permission on a few resources; ListGrantedScopes
/// for a few (identity, permission, under), read in small pages.
async fn compare(
    app: &TestApp,
    model: &Model,
    now: DateTime<Utc>,
    step: usize,
    pick: &mut SmallRng,
    checks: &mut usize,
    disagreements: &mut Vec<String>,
) {
    let everyone: Vec<&str> = USERS.iter().copied().chain([CANARY]).collect();
    // Check: every identity x permission x resource, in one batch (at most 1000 items).
    let items: Vec<CheckRequest> = everyone
        .iter()
        .flat_map(|u| {
            RESOURCES.iter().flat_map(move |r| {
                PERMS.iter().map(move |p| CheckRequest {
                    identity_id: (*u).into(),
                    permission: (*p).into(),
                    resource: (*r).into(),
                    ..Default::default()
                })
            })
        })
        .collect();
    let results = app
        .authz()
        .batch_check(authed(
            ADMIN,
            BatchCheckRequest {
                items: items.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        results.len(),
        items.len(),
        "step {step}: one result per item"
    );
    let mut effective: BTreeMap<(&str, &str), BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (item, result) in items.iter().zip(results) {
        let (u, r) = (item.identity_id.as_str(), item.resource.as_str());
        *checks += 1;
        if u == CANARY {
            // Asserted on its own, not through the reference: it holds nothing, whatever the
            // reference says.
            if result.allowed {
                disagreements.push(format!(
                    "step {step}: the canary was allowed {} on {r:?}",
                    item.permission
                ));
            }
            continue;
        }
        let expected = effective
            .entry((u, r))
            .or_insert_with(|| model.effective(u, r, now))
            .contains_key(&item.permission);
        if result.allowed != expected {
            disagreements.push(format!(
                "step {step}: Check({u}, {}, {r:?}) = {} but the reference says {expected}",
                item.permission, result.allowed
            ));
        }
    }
    // ListEffectivePermissions: every identity, on two resources each.
    for u in &everyone {
        for _ in 0..2 {
            let r = RESOURCES[pick.random_range(0..RESOURCES.len())];
            let got = app
                .authz()
                .list_effective_permissions(authed(
                    ADMIN,
                    ListEffectivePermissionsRequest {
                        identity_id: (*u).into(),
                        resource: r.into(),
                        page_size: 1000,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            *checks += 1;
            // Lists, not sets, so that a permission or role listed twice shows.
            let got: Vec<(String, Vec<String>)> = got
                .permissions
                .into_iter()
                .map(|p| (p.name, p.roles.into_iter().map(|r| r.name).collect()))
                .collect();
            let expected: Vec<(String, Vec<String>)> = model
                .effective(u, r, now)
                .into_iter()
                .map(|(p, roles)| (p, roles.into_iter().collect()))
                .collect();
            if got != expected {
                disagreements.push(format!(
                    "step {step}: effective({u}, {r:?}) = {got:?}, reference {expected:?}"
                ));
            }
        }
    }
    // ListPermissionHolders: every permission, on two resources each, every page (small ones,
    // so that paging is exercised).
    for p in PERMS {
        for _ in 0..2 {
            let r = RESOURCES[pick.random_range(0..RESOURCES.len())];
            let mut got: Vec<Holder> = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = app
                    .authz()
                    .list_permission_holders(authed(
                        ADMIN,
                        ListPermissionHoldersRequest {
                            permission: p.into(),
                            resource: r.into(),
                            page_size: 25,
                            page_token,
                            ..Default::default()
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                got.extend(page.identities.into_iter().map(|h| {
                    (
                        h.identity.unwrap().id,
                        h.role.unwrap().name,
                        h.group_id,
                        h.scope,
                    )
                }));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            got.sort();
            *checks += 1;
            let expected = model.holders(p, r, now);
            if got.iter().any(|h| h.0 == CANARY) {
                disagreements.push(format!("step {step}: the canary holds {p} on {r:?}"));
            }
            if got != expected {
                disagreements.push(format!(
                    "step {step}: holders({p}, {r:?}) = {got:?}, reference {expected:?}"
                ));
            }
        }
    }
    // ListGrantedScopes: ten triples, in pages of two so that paging is exercised too. Most
    // follow a grant the reference knows of (random triples are mostly empty); the first asks
    // about the canary. An unknown permission is NOT_FOUND.
    let grants = model.grants();
    for i in 0..10 {
        let mut u = USERS[pick.random_range(0..USERS.len())];
        let mut p = PERMS[pick.random_range(0..PERMS.len())];
        let under = RESOURCES[pick.random_range(0..RESOURCES.len())];
        if i == 0 {
            u = CANARY;
        } else if i < 8
            && let Some(((role, who, _), _)) = model
                .assignments
                .iter()
                .nth(pick.random_range(0..model.assignments.len().max(1)))
        {
            let granted: Vec<&str> = grants[role.as_str()].iter().copied().collect();
            let members: Vec<&str> = match model.groups.values().find(|(id, _)| id == who) {
                Some((_, members)) => members.iter().map(String::as_str).collect(),
                None => vec![who.as_str()],
            };
            if !granted.is_empty() && !members.is_empty() {
                u = members[pick.random_range(0..members.len())];
                p = granted[pick.random_range(0..granted.len())];
            }
        }
        let mut got: Vec<String> = Vec::new();
        let mut page_token = String::new();
        let mut unknown = false;
        loop {
            let page = app
                .authz()
                .list_granted_scopes(authed(
                    ADMIN,
                    ListGrantedScopesRequest {
                        identity_id: u.into(),
                        permission: p.into(),
                        under: under.into(),
                        page_size: 2,
                        page_token,
                        ..Default::default()
                    },
                ))
                .await;
            let page = match page {
                Ok(page) => page.into_inner(),
                Err(status) if status.code() == Code::NotFound => {
                    unknown = true;
                    break;
                }
                Err(status) => panic!("step {step}: ListGrantedScopes: {status:?}"),
            };
            got.extend(page.scopes);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        *checks += 1;
        // NOT_FOUND exactly when the reference knows no such permission.
        if unknown == model.perms.contains(p) {
            disagreements.push(format!(
                "step {step}: granted_scopes({u}, {p}, {under:?}) unknown = {unknown}, \
                 the reference knows {:?}",
                model.perms
            ));
            continue;
        }
        if u == CANARY && !got.is_empty() {
            disagreements.push(format!(
                "step {step}: the canary holds {p} at {got:?} under {under:?}"
            ));
        }
        let expected: Vec<String> = model.granted_scopes(u, p, under, now).into_iter().collect();
        if got != expected {
            disagreements.push(format!(
                "step {step}: granted_scopes({u}, {p}, {under:?}) = {got:?}, reference \
                 {expected:?}"
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_agree_with_the_reference_sqlite() {
    random_operations_agree_with_the_reference(Backend::Sqlite, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_agree_with_the_reference_postgres() {
    random_operations_agree_with_the_reference(Backend::Postgres, 5000).await;
}
