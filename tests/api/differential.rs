//! A differential test: thousands of random operations through the API, and after every few
//! of them Check, ListEffectivePermissions and ListPermissionHolders compared with a plain
//! reference evaluator written here. A fixed seed makes any disagreement reproducible.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use warden::domain::ManualClock;

use crate::helpers::*;

const PERMS: [&str; 10] = [
    "a:read", "a:write", "b:read", "b:write", "c:x", "c:y", "d:1", "d:2", "e", "f",
];
const ROLES: [&str; 6] = ["r1", "r2", "r3", "r4", "r5", "r6"];
const USERS: [&str; 8] = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];

type RoleAndIdentity = (String, String);

/// The reference: sets and maps, evaluated the obvious way.
#[derive(Default)]
struct Model {
    perms: BTreeSet<String>,
    roles: BTreeMap<String, BTreeSet<String>>,
    /// (role, identity) -> (assignment id, expire)
    assignments: BTreeMap<RoleAndIdentity, (String, Option<DateTime<Utc>>)>,
    /// group name -> (id, members)
    groups: BTreeMap<String, (String, BTreeSet<String>)>,
}

impl Model {
    fn live(expire: &Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        expire.is_none_or(|t| now < t)
    }

    /// (permission -> roles) for a user, directly and through groups.
    fn effective(&self, user: &str, now: DateTime<Utc>) -> BTreeMap<String, BTreeSet<String>> {
        let mut holders: Vec<String> = vec![user.to_owned()];
        holders.extend(
            self.groups
                .values()
                .filter(|(_, m)| m.contains(user))
                .map(|(id, _)| id.clone()),
        );
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for ((role, who), (_, expire)) in &self.assignments {
            if holders.contains(who) && Self::live(expire, now) {
                for p in &self.roles[role] {
                    out.entry(p.clone()).or_default().insert(role.clone());
                }
            }
        }
        out
    }

    /// (identity, role, group id or "") for every holder of `perm`.
    fn holders(&self, perm: &str, now: DateTime<Utc>) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for ((role, who), (_, expire)) in &self.assignments {
            if !Self::live(expire, now) || !self.roles[role].contains(perm) {
                continue;
            }
            match self.groups.values().find(|(id, _)| id == who) {
                Some((gid, members)) => out.extend(
                    members
                        .iter()
                        .map(|m| (m.clone(), role.clone(), gid.clone())),
                ),
                None => out.push((who.clone(), role.clone(), String::new())),
            }
        }
        out.sort();
        out
    }
}

async fn random_operations_agree_with_the_reference(backend: Backend, operations: usize) {
    let start = Utc::now();
    let app = spawn_with_clock(backend, start).await;
    let clock = app.clock.clone().unwrap();
    let mut now = start;
    let mut rng = SmallRng::seed_from_u64(0x5eed_0f3a_7d00);
    let mut model = Model::default();
    let mut disagreements = Vec::new();
    let mut checks = 0usize;
    let mut fresh_replicas = 0;

    for step in 0..operations {
        // A skipped operation still reaches the comparisons below.
        'operation: {
            match rng.random_range(0..100) {
                0..=9 => {
                    let p = PERMS[rng.random_range(0..PERMS.len())];
                    if model.perms.insert(p.to_owned()) {
                        app.create_permission(p).await;
                    }
                }
                10..=17 => {
                    let r = ROLES[rng.random_range(0..ROLES.len())];
                    if !model.roles.contains_key(r) {
                        let chosen: BTreeSet<String> = model
                            .perms
                            .iter()
                            .filter(|_| rng.random_bool(0.3))
                            .cloned()
                            .collect();
                        app.roles()
                            .create_role(authed(
                                ADMIN,
                                CreateRoleRequest {
                                    name: r.into(),
                                    permissions: chosen.iter().map(|p| perm_name(p)).collect(),
                                    ..Default::default()
                                },
                            ))
                            .await
                            .unwrap();
                        model.roles.insert(r.to_owned(), chosen);
                    }
                }
                18..=29 if !model.roles.is_empty() && !model.perms.is_empty() => {
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
                30..=49 if !model.roles.is_empty() => {
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
                    let live = model
                        .assignments
                        .get(&(r.clone(), who.clone()))
                        .is_some_and(|(_, e)| Model::live(e, now));
                    if live {
                        break 'operation;
                    }
                    let expire = rng
                        .random_bool(0.3)
                        .then(|| now + Duration::minutes(rng.random_range(1..120)));
                    let response = app
                        .assignments()
                        .assign_role(authed(
                            ADMIN,
                            AssignRoleRequest {
                                role: Some(role_name(&r)),
                                identity: Some(identity),
                                expire_time: expire.map(|t| prost_types::Timestamp {
                                    seconds: t.timestamp(),
                                    nanos: t.timestamp_subsec_nanos() as i32,
                                }),
                                ..Default::default()
                            },
                        ))
                        .await
                        .unwrap()
                        .into_inner();
                    let Some(assign_role_response::Result::Assignment(a)) = response.result else {
                        panic!("assignment expected")
                    };
                    // Timestamps travel with nanosecond precision but are stored in microseconds.
                    let stored = expire.map(|t| {
                        DateTime::<Utc>::from_timestamp_micros(t.timestamp_micros()).unwrap()
                    });
                    model.assignments.insert((r, who), (a.id, stored));
                }
                50..=59 if !model.assignments.is_empty() => {
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
                60..=64 => {
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
                65..=79 if !model.groups.is_empty() => {
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
                    let request = GroupMembersRequest {
                        group_id: gid.clone(),
                        identity_ids: members.clone(),
                        ..Default::default()
                    };
                    if rng.random_bool(0.6) {
                        app.groups()
                            .add_group_members(authed(ADMIN, request))
                            .await
                            .unwrap();
                        set.extend(members);
                    } else {
                        app.groups()
                            .remove_group_members(authed(ADMIN, request))
                            .await
                            .unwrap();
                        set.retain(|m| !members.contains(m));
                    }
                }
                80..=84 if !model.perms.is_empty() => {
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
                85..=87 if !model.roles.is_empty() => {
                    let r = model
                        .roles
                        .keys()
                        .nth(rng.random_range(0..model.roles.len()))
                        .unwrap()
                        .clone();
                    app.roles()
                        .delete_role(authed(
                            ADMIN,
                            DeleteRoleRequest {
                                role: Some(role_name(&r)),
                                force: true,
                                ..Default::default()
                            },
                        ))
                        .await
                        .unwrap();
                    model.roles.remove(&r);
                    model.assignments.retain(|(role, _), _| *role != r);
                }
                88..=95 => {
                    now += Duration::minutes(rng.random_range(1..30));
                    clock.set(now);
                }
                _ => {}
            }
        }

        if step % 40 == 39 || step + 1 == operations {
            compare(&app, &model, now, step, &mut checks, &mut disagreements).await;
        }
        if step % (operations / 4) == operations / 4 - 1 {
            // A replica started now builds its index from the database, not from the changes
            // it watched being made: its answers must agree with the reference too.
            let db = Arc::clone(&app.db);
            let mut fresh = spawn_on(db, test_config, Some(ManualClock::new(now))).await;
            compare(&fresh, &model, now, step, &mut checks, &mut disagreements).await;
            fresh.shutdown().await;
            fresh_replicas += 1;
        }
    }
    println!(
        "{operations} random operations, {checks} checks ({fresh_replicas} fresh replicas \
         among those asked): {} disagreements",
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(5)]
    );
    app.finish().await;
}

/// Check (every user x every permission, in one batch), ListEffectivePermissions per user and
/// ListPermissionHolders per permission on `app`, against the reference at `now`.
async fn compare(
    app: &TestApp,
    model: &Model,
    now: DateTime<Utc>,
    step: usize,
    checks: &mut usize,
    disagreements: &mut Vec<String>,
) {
    // Check: every user x every permission name, in one batch.
    let items: Vec<CheckRequest> = USERS
        .iter()
        .flat_map(|u| {
            PERMS.iter().map(move |p| CheckRequest {
                identity_id: (*u).into(),
                permission: (*p).into(),
                ..Default::default()
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
    for (item, result) in items.iter().zip(results) {
        let expected = model
            .effective(&item.identity_id, now)
            .contains_key(&item.permission);
        *checks += 1;
        if result.allowed != expected {
            disagreements.push(format!(
                "step {step}: Check({}, {}) = {} but the reference says {expected}",
                item.identity_id, item.permission, result.allowed
            ));
        }
    }
    // ListEffectivePermissions per user.
    for u in USERS {
        let got = app
            .authz()
            .list_effective_permissions(authed(
                ADMIN,
                ListEffectivePermissionsRequest {
                    identity_id: u.into(),
                    page_size: 1000,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let got: BTreeMap<String, BTreeSet<String>> = got
            .permissions
            .into_iter()
            .map(|p| (p.name, p.roles.into_iter().map(|r| r.name).collect()))
            .collect();
        let expected = model.effective(u, now);
        if got != expected {
            disagreements.push(format!(
                "step {step}: effective({u}) = {got:?}, reference {expected:?}"
            ));
        }
    }
    // ListPermissionHolders per permission.
    for p in PERMS {
        let got = app
            .authz()
            .list_permission_holders(authed(
                ADMIN,
                ListPermissionHoldersRequest {
                    permission: p.into(),
                    page_size: 1000,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let mut got: Vec<(String, String, String)> = got
            .identities
            .into_iter()
            .map(|h| (h.identity.unwrap().id, h.role.unwrap().name, h.group_id))
            .collect();
        got.sort();
        let expected = model.holders(p, now);
        if got != expected {
            disagreements.push(format!(
                "step {step}: holders({p}) = {got:?}, reference {expected:?}"
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_agree_with_the_reference_sqlite() {
    random_operations_agree_with_the_reference(Backend::Sqlite, 3000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_agree_with_the_reference_postgres() {
    random_operations_agree_with_the_reference(Backend::Postgres, 2000).await;
}
