//! Tenants at run time (issue 11, item 4): the platform tenant's callers create tenants whose
//! first admin works at once, on this replica and on another; a disabled tenant's tokens are
//! refused everywhere; nobody else manages tenants.

use std::sync::Arc;

use tonic::Code;
use warden::config::Config;

use crate::helpers::*;

const ROOT: &str = PLATFORM_ROOT;

/// The tests' configuration names the platform tenant and its root admin.
fn platform_config(url: &str) -> Config {
    test_config(url)
}

fn as_tenant<T>(app: &TestApp, tenant: &str, sub: &str, message: T) -> tonic::Request<T> {
    with_token(&app.tenant_token(sub, tenant), message)
}

fn create(tenant: &str, admin: &str) -> CreateTenantRequest {
    CreateTenantRequest {
        tenant_id: tenant.into(),
        display_name: format!("{tenant} Inc."),
        admin_identity_id: admin.into(),
        ..Default::default()
    }
}

fn tenants(app: &TestApp) -> tenant_service_client::TenantServiceClient<tonic::transport::Channel> {
    tenant_service_client::TenantServiceClient::new(app.channel.clone())
}

async fn a_created_tenant_works_at_once_on_another_replica_and_a_disabled_one_is_refused(
    backend: Backend,
) {
    // Arrange: two replicas on one database.
    let db = Arc::new(TestDatabase::create(backend).await);
    let a = spawn_on(Arc::clone(&db), platform_config, None).await;
    let mut b = spawn_on(Arc::clone(&db), platform_config, None).await;

    // Act: the platform's root creates globex on replica A.
    let tenant = tenants(&a)
        .create_tenant(as_tenant(&a, "platform", ROOT, create("globex", "gadmin")))
        .await
        .unwrap()
        .into_inner();

    // Assert: globex's admin works at once on A, and on B from the returned revision.
    assert_eq!(
        (
            tenant.id.as_str(),
            tenant.disabled,
            tenant.created_by.as_str()
        ),
        ("globex", false, ROOT)
    );
    a.permissions()
        .create_permission(as_tenant(
            &a,
            "globex",
            "gadmin",
            CreatePermissionRequest {
                name: "widgets:make".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let at_b = b
        .authz()
        .check(as_tenant(
            &b,
            "globex",
            "gadmin",
            CheckRequest {
                identity_id: "gadmin".into(),
                permission: "warden:roles:write".into(),
                at_least_revision: tenant.revision,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(at_b.allowed, "globex's admin is an admin on replica B");
    // Its data is its own: the default tenant's admin sees none of it.
    let err = a
        .permissions()
        .get_permission(authed(
            ADMIN,
            GetPermissionRequest {
                permission: Some(perm_name("widgets:make")),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Disable it on B: refused on both replicas.
    let disabled = tenants(&b)
        .disable_tenant(as_tenant(
            &b,
            "platform",
            ROOT,
            DisableTenantRequest {
                tenant_id: "globex".into(),
                wait_for_propagation: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(disabled.disabled);
    for app in [&a, &b] {
        let mut refused = false;
        for _ in 0..100 {
            let result = app
                .roles()
                .list_roles(as_tenant(
                    app,
                    "globex",
                    "gadmin",
                    ListRolesRequest::default(),
                ))
                .await;
            if let Err(err) = result {
                assert_error(&err, Code::Unauthenticated, "TENANT_DISABLED");
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            refused,
            "a disabled tenant's token is refused on every replica"
        );
    }
    // Other tenants are untouched.
    assert!(a.check(ADMIN, "warden:roles:write").await);

    // Enabled again, and still disabled-then-enabled after a restart of B (from the database).
    tenants(&a)
        .enable_tenant(as_tenant(
            &a,
            "platform",
            ROOT,
            EnableTenantRequest {
                tenant_id: "globex".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    tenants(&a)
        .disable_tenant(as_tenant(
            &a,
            "platform",
            ROOT,
            DisableTenantRequest {
                tenant_id: "globex".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    b.shutdown().await;
    let mut c = spawn_on(Arc::clone(&db), platform_config, None).await;
    let err = c
        .roles()
        .list_roles(as_tenant(
            &c,
            "globex",
            "gadmin",
            ListRolesRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::Unauthenticated, "TENANT_DISABLED");
    c.shutdown().await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_tenant_works_at_once_on_another_replica_and_a_disabled_one_is_refused_sqlite() {
    a_created_tenant_works_at_once_on_another_replica_and_a_disabled_one_is_refused(
        Backend::Sqlite,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_tenant_works_at_once_on_another_replica_and_a_disabled_one_is_refused_postgres()
{
    a_created_tenant_works_at_once_on_another_replica_and_a_disabled_one_is_refused(
        Backend::Postgres,
    )
    .await;
}

async fn only_the_platform_manages_tenants(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let app = spawn_on(db, platform_config, None).await;
    // A tenant admin elsewhere, even holding every warden:* permission there, is refused.
    let err = tenants(&app)
        .create_tenant(authed(ADMIN, create("evil", ADMIN)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = tenants(&app)
        .list_tenants(authed(ADMIN, ListTenantsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A platform caller without warden:tenants:write is refused.
    let err = tenants(&app)
        .create_tenant(as_tenant(
            &app,
            "platform",
            "intern",
            create("evil", "intern"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A tenant that exists (registered, or only holding data) cannot be created again.
    let err = tenants(&app)
        .create_tenant(as_tenant(&app, "platform", ROOT, create("acme", "mallory")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(!app.check("mallory", "warden:roles:write").await);
    tenants(&app)
        .create_tenant(as_tenant(
            &app,
            "platform",
            ROOT,
            create("initech", "iadmin"),
        ))
        .await
        .unwrap();
    let err = tenants(&app)
        .create_tenant(as_tenant(
            &app,
            "platform",
            ROOT,
            create("initech", "other"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    // Bad input names its field.
    let err = tenants(&app)
        .create_tenant(as_tenant(&app, "platform", ROOT, create("no spaces!", "")))
        .await
        .unwrap_err();
    assert_invalid(&err, "tenant_id");
    assert_invalid(&err, "admin_identity_id");
    // The platform cannot disable itself; an unknown tenant is NOT_FOUND.
    let err = tenants(&app)
        .disable_tenant(as_tenant(
            &app,
            "platform",
            ROOT,
            DisableTenantRequest {
                tenant_id: "platform".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = tenants(&app)
        .disable_tenant(as_tenant(
            &app,
            "platform",
            ROOT,
            DisableTenantRequest {
                tenant_id: "nobody".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Every registered tenant is listed: the bootstrap's and the created one.
    let listed = tenants(&app)
        .list_tenants(as_tenant(
            &app,
            "platform",
            ROOT,
            ListTenantsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["acme", "default", "initech", "platform"]);
    let got = tenants(&app)
        .get_tenant(as_tenant(
            &app,
            "platform",
            ROOT,
            GetTenantRequest {
                tenant_id: "initech".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.display_name, "initech Inc.");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_platform_manages_tenants_sqlite() {
    only_the_platform_manages_tenants(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_platform_manages_tenants_postgres() {
    only_the_platform_manages_tenants(Backend::Postgres).await;
}
