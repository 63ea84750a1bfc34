//! Fair share between tenants (issue 14, item 5): a tenant over its share of RPCs in flight, or
//! over its writes per second, is refused with RESOURCE_EXHAUSTED `TENANT_RATE_LIMITED` and a
//! RetryInfo, while another tenant's calls in the same second succeed.

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;
use warden::config::Config;

use crate::helpers::*;

fn tight(url: &str) -> Config {
    let mut config = test_config(url);
    config.limits.per_tenant_concurrent_rpcs = 2;
    config.limits.per_tenant_writes_per_second = 2;
    config
}

fn assert_limited(err: &tonic::Status) {
    assert_error(err, Code::ResourceExhausted, "TENANT_RATE_LIMITED");
    assert!(
        err.get_details_retry_info().is_some(),
        "RetryInfo says when: {err:?}"
    );
}

async fn a_noisy_tenant_is_limited_and_the_others_are_not(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let app = spawn_on(db, tight, None).await;
    let token = app.tenant_token(ACME_ADMIN, "acme");

    // Two acme Checks wait in the handler (a revision acme will not reach within 2 s)...
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut client = app.authz();
        let request = with_token(&token, check(ACME_ADMIN, "warden:roles:read", 1_000_000));
        waiting.push(tokio::spawn(async move { client.check(request).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ... so a third is refused, while the default tenant's Check in the same second succeeds.
    let err = app
        .authz()
        .check(with_token(
            &token,
            check(ACME_ADMIN, "warden:roles:read", 0),
        ))
        .await
        .unwrap_err();
    assert_limited(&err);
    assert!(app.check(ADMIN, "warden:roles:read").await);
    for task in waiting {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(
            err.code(),
            Code::Unavailable,
            "the waiting Checks end as before: {err:?}"
        );
    }
    // Their share is back.
    assert!(
        app.authz()
            .check(with_token(
                &token,
                check(ACME_ADMIN, "warden:roles:read", 0)
            ))
            .await
            .unwrap()
            .into_inner()
            .allowed
    );

    // Two writes a second: the third at once is refused; the default tenant still writes.
    let create = |name: &str| CreatePermissionRequest {
        name: name.into(),
        ..Default::default()
    };
    app.permissions()
        .create_permission(with_token(&token, create("a:one")))
        .await
        .unwrap();
    app.permissions()
        .create_permission(with_token(&token, create("a:two")))
        .await
        .unwrap();
    let err = app
        .permissions()
        .create_permission(with_token(&token, create("a:three")))
        .await
        .unwrap_err();
    assert_limited(&err);
    app.permissions()
        .create_permission(authed(ADMIN, create("d:one")))
        .await
        .unwrap();
    // Reads are not writes.
    app.permissions()
        .get_permission(with_token(
            &token,
            GetPermissionRequest {
                permission: Some(perm_name("a:one")),
            },
        ))
        .await
        .unwrap();
    // A second later acme writes again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.permissions()
        .create_permission(with_token(&token, create("a:three")))
        .await
        .unwrap();
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_is_limited_and_the_others_are_not_sqlite() {
    a_noisy_tenant_is_limited_and_the_others_are_not(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_is_limited_and_the_others_are_not_postgres() {
    a_noisy_tenant_is_limited_and_the_others_are_not(Backend::Postgres).await;
}
