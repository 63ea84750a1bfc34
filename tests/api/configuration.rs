//! Configuration as code (issue 16, item 4): ApplyConfiguration makes a tenant match a document
//! in one transaction and one revision, ExportConfiguration gives it back, and export then apply
//! changes nothing.

use tonic::Code;
use tonic_types::StatusExt as _;

use crate::backend_tests;
use crate::helpers::*;

fn permission(name: &str) -> ConfiguredPermission {
    ConfiguredPermission {
        name: name.into(),
        description: format!("{name}, as configured"),
    }
}

fn role(name: &str, permissions: &[&str], included: &[&str]) -> ConfiguredRole {
    ConfiguredRole {
        name: name.into(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        included_roles: included.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    }
}

fn to_user(role: &str, identity: &str, scope: &str) -> ConfiguredAssignment {
    ConfiguredAssignment {
        role: role.into(),
        identity_id: identity.into(),
        identity_kind: IdentityKind::User as i32,
        scope: scope.into(),
        ..Default::default()
    }
}

fn to_group(role: &str, group: &str) -> ConfiguredAssignment {
    ConfiguredAssignment {
        role: role.into(),
        group: group.into(),
        ..Default::default()
    }
}

/// A small company: readers and editors (editor includes reader), a team, and their grants.
fn company() -> Configuration {
    Configuration {
        permissions: vec![permission("docs:read"), permission("docs:write")],
        roles: vec![
            role("reader", &["docs:read"], &[]),
            role("editor", &["docs:write"], &["reader"]),
        ],
        groups: vec![ConfiguredGroup {
            name: "writers".into(),
            members: vec!["bob".into(), "carol".into()],
            ..Default::default()
        }],
        assignments: vec![
            to_user("editor", "alice", "departments/eng"),
            to_group("reader", "writers"),
        ],
    }
}

async fn apply(
    app: &TestApp,
    by: &str,
    doc: Configuration,
    prune: bool,
    dry_run: bool,
) -> Result<ApplyConfigurationResponse, tonic::Status> {
    app.configuration()
        .apply_configuration(authed(
            by,
            ApplyConfigurationRequest {
                configuration: Some(doc),
                prune,
                dry_run,
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn export(app: &TestApp) -> Configuration {
    app.configuration()
        .export_configuration(authed(ADMIN, ExportConfigurationRequest {}))
        .await
        .unwrap()
        .into_inner()
}

async fn on(app: &TestApp, identity: &str, permission: &str, resource: &str) -> bool {
    app.authz()
        .check(authed(
            ADMIN,
            CheckRequest {
                identity_id: identity.into(),
                permission: permission.into(),
                resource: resource.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .allowed
}

fn steps(r: &ApplyConfigurationResponse) -> Vec<(i32, String, String)> {
    r.plan
        .iter()
        .map(|s| (s.action, s.kind.clone(), s.name.clone()))
        .collect()
}

backend_tests! {
    async fn a_document_is_applied_in_one_revision_and_export_then_apply_changes_nothing(app) {
        let base = app.create_permission("unrelated").await;
        let applied = apply(&app, ADMIN, company(), false, false).await.unwrap();
        assert!(applied.changed);
        let create = PlanAction::Create as i32;
        assert!(steps(&applied).contains(&(create, "role".into(), "editor".into())));
        assert!(steps(&applied).contains(&(create, "assignment".into(), "editor -> alice on departments/eng".into())));
        // One revision for the whole: every change audited at it.
        let at_it = app.audit_events().await.into_iter().filter(|e| e.revision == applied.revision).count();
        assert!(at_it >= applied.plan.len(), "an audit event per change: {at_it} for {} steps", applied.plan.len());
        assert_eq!(applied.revision, base.revision + 1, "the whole document is one revision");
        // The decisions follow: alice edits in eng (and reads, through the inclusion); the team reads.
        assert!(on(&app, "alice", "docs:write", "departments/eng/projects/x").await);
        assert!(on(&app, "alice", "docs:read", "departments/eng").await);
        assert!(!on(&app, "alice", "docs:write", "departments/sales").await);
        assert!(on(&app, "carol", "docs:read", "").await);

        // Export gives the document back; applying it changes nothing and takes no revision.
        let exported = export(&app).await;
        assert_eq!(exported.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["editor", "reader"]);
        assert_eq!(exported.roles[0].included_roles, ["reader"]);
        assert!(exported.assignments.iter().any(|a| a.role == "reader" && a.group == "writers"));
        assert!(exported.assignments.iter().any(|a| a.role == "warden:admin" && a.identity_id == ADMIN), "system roles' assignments are exported");
        let again = apply(&app, ADMIN, exported.clone(), true, false).await.unwrap();
        assert!(!again.changed, "{:?}", again.plan);
        assert!(again.plan.is_empty());
        assert_eq!(again.revision, applied.revision);
        // So is the original document, applied twice.
        let twice = apply(&app, ADMIN, company(), false, false).await.unwrap();
        assert!(!twice.changed, "{:?}", twice.plan);
    }

    async fn a_plan_changes_nothing_and_reports_who_gains_what(app) {
        let plan = apply(&app, ADMIN, company(), false, true).await.unwrap();
        assert!(!plan.plan.is_empty());
        let impact = plan.impact.expect("a dry run reports the impact");
        let carol = impact.identities.iter().find(|i| i.identity_id == "carol").expect("carol gains");
        assert_eq!(carol.gained, ["docs:read"]);
        let alice = impact.identities.iter().find(|i| i.identity_id == "alice").expect("alice gains");
        assert!(alice.gained_scoped.iter().any(|g| g.permission == "docs:write" && g.scope == "departments/eng"), "{alice:?}");
        let err = app.roles().get_role(authed(ADMIN, GetRoleRequest { role: Some(role_name("editor")), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "nothing was created: {err:?}");
    }

    async fn changes_and_prune_make_the_tenant_match_exactly(app) {
        apply(&app, ADMIN, company(), false, false).await.unwrap();
        app.create_role("legacy", &["legacy:x"]).await;
        app.assign("legacy", "dave").await;
        // editor no longer includes reader but gains docs:read itself; carol leaves the team;
        // alice moves from eng to sales.
        let mut doc = company();
        doc.roles[1] = role("editor", &["docs:read", "docs:write"], &[]);
        doc.groups[0].members = vec!["bob".into()];
        doc.assignments[0] = to_user("editor", "alice", "departments/sales");
        let kept = apply(&app, ADMIN, doc.clone(), false, false).await.unwrap();
        assert!(kept.changed);
        assert!(on(&app, "alice", "docs:write", "departments/sales").await);
        assert!(on(&app, "alice", "docs:write", "departments/eng").await, "without prune, the eng grant stays");
        assert!(!on(&app, "carol", "docs:read", "").await);
        assert!(on(&app, "dave", "legacy:x", "").await, "without prune, unlisted objects stay");
        let pruned = apply(&app, ADMIN, doc, true, false).await.unwrap();
        let delete = PlanAction::Delete as i32;
        assert!(steps(&pruned).contains(&(delete, "role".into(), "legacy".into())), "{:?}", pruned.plan);
        assert!(steps(&pruned).contains(&(delete, "permission".into(), "legacy:x".into())));
        assert!(!on(&app, "alice", "docs:write", "departments/eng").await);
        assert!(on(&app, "alice", "docs:write", "departments/sales").await);
        let err = app.roles().get_role(authed(ADMIN, GetRoleRequest { role: Some(role_name("legacy")), ..Default::default() })).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        // The bootstrap admin's immutable grant survives any prune.
        assert!(app.check(ADMIN, "warden:roles:write").await);
    }

    async fn a_failing_change_leaves_nothing_behind(app) {
        // An unknown permission in the last role: the permissions before it are not created.
        let mut doc = company();
        doc.roles.push(role("broken", &["no:such"], &[]));
        let err = apply(&app, ADMIN, doc, false, false).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(export(&app).await.permissions.is_empty(), "nothing was created");
        // Escalation: a caller that may write roles and permissions but lacks docs:write.
        app.create_role("catalogue-admin", &["warden:permissions:write", "warden:permissions:read", "warden:roles:write", "warden:roles:read", "warden:groups:read", "warden:groups:write", "warden:assignments:read", "warden:assignments:write", "docs:read"]).await;
        app.assign("catalogue-admin", "eve").await;
        let err = apply(&app, "eve", company(), false, false).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("docs:write"), "{err:?}");
        let exported = export(&app).await;
        assert_eq!(exported.permissions.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["docs:read"], "only what existed before");
        assert!(!exported.roles.iter().any(|r| r.name == "editor"));
        // A cycle in the document is refused the same way.
        let mut doc = company();
        doc.roles[0] = role("reader", &["docs:read"], &["editor"]);
        let err = apply(&app, ADMIN, doc, false, false).await.unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "ROLE_CYCLE");
    }

    async fn a_gated_role_is_assigned_through_a_change_request(app) {
        let mut doc = company();
        doc.roles.push(ConfiguredRole { requires_approval: true, ..role("payer", &["pay:run"], &[]) });
        doc.permissions.push(permission("pay:run"));
        doc.assignments.push(to_user("payer", "frank", ""));
        let applied = apply(&app, ADMIN, doc.clone(), false, false).await.unwrap();
        assert_eq!(applied.change_requests.len(), 1);
        assert_eq!(applied.change_requests[0].status, ChangeRequestStatus::Pending as i32);
        assert!(!on(&app, "frank", "pay:run", "").await);
        // Applying again finds the request pending: nothing more to do, nothing filed twice.
        let again = apply(&app, ADMIN, doc, false, false).await.unwrap();
        assert!(!again.changed, "{:?}", again.plan);
    }

    async fn a_malformed_document_names_every_bad_field(app) {
        let doc = Configuration {
            permissions: vec![permission("docs:read"), permission("docs:read"), permission("warden:mine")],
            roles: vec![role("bad name!", &[], &[])],
            assignments: vec![
                ConfiguredAssignment { role: "reader".into(), ..Default::default() },
                ConfiguredAssignment { role: "reader".into(), identity_id: "a".into(), scope: "x".into(), ..Default::default() },
            ],
            ..Default::default()
        };
        let err = apply(&app, ADMIN, doc, false, false).await.unwrap_err();
        for field in [
            "configuration.permissions[1].name",
            "configuration.permissions[2].name",
            "configuration.roles[0].name",
            "configuration.assignments[0].identity_id",
            "configuration.assignments[1].scope",
        ] {
            assert_invalid(&err, field);
        }
        // Thousands of problems: the first ones are named, the count is said, and the status
        // still fits the client's header limit (the connection survives).
        let many = Configuration {
            permissions: (0..3000).map(|_| permission("docs:read")).collect(),
            ..Default::default()
        };
        let err = apply(&app, ADMIN, many, false, false).await.unwrap_err();
        assert_invalid(&err, "configuration.permissions[1].name");
        let shown = err.get_details_bad_request().unwrap().field_violations.len();
        assert!((1..=50).contains(&shown), "{shown} violations");
        assert!(err.message().contains("2999 problems"), "{}", err.message());
        assert!(err.message().len() <= 2048, "{} bytes", err.message().len());
        assert!(apply(&app, ADMIN, Configuration::default(), false, true).await.is_ok(), "the channel still works");
        // Reading the tenant is needed to apply or export.
        let err = app.configuration().export_configuration(authed("nobody", ExportConfigurationRequest {})).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
}
