//! Authentication: every bad token is UNAUTHENTICATED; health and reflection need none.

use serde_json::json;
use tonic::Code;
use tonic::Request;

use crate::backend_tests;
use crate::helpers::*;

fn list_roles_request(token: Option<&str>) -> Request<ListRolesRequest> {
    match token {
        Some(t) => with_token(t, ListRolesRequest::default()),
        None => Request::new(ListRolesRequest::default()),
    }
}

backend_tests! {
    async fn every_bad_token_is_unauthenticated(app) {
        // Arrange
        let now = chrono::Utc::now().timestamp();
        let rsa_style_none = {
            // alg "none": header {"alg":"none"}, no signature.
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!("{}.{}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#), b64.encode(json!({"sub": ADMIN, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}).to_string()))
        };
        let cases: Vec<(&str, Option<String>)> = vec![
            ("missing", None),
            ("garbage", Some("not-a-jwt".into())),
            ("expired", Some(token_with(json!({"sub": ADMIN, "exp": now - 60})))),
            ("not yet valid", Some(token_with(json!({"sub": ADMIN, "nbf": now + 600})))),
            ("wrong key", Some(sign(&json!({"sub": ADMIN, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}), "another-secret-of-at-least-32-bytes!!"))),
            ("wrong audience", Some(token_with(json!({"sub": ADMIN, "aud": "someone-else"})))),
            ("wrong issuer", Some(token_with(json!({"sub": ADMIN, "iss": "https://evil.test"})))),
            ("no audience", Some(sign(&json!({"sub": ADMIN, "iss": ISSUER, "exp": now + 600}), SECRET))),
            ("no exp", Some(sign(&json!({"sub": ADMIN, "iss": ISSUER, "aud": AUDIENCE}), SECRET))),
            ("alg none", Some(rsa_style_none)),
            ("tenant claim not a string", Some(token_with(json!({"sub": ADMIN, "tenant": 42})))),
            ("tenant claim empty", Some(token_with(json!({"sub": ADMIN, "tenant": ""})))),
            ("no subject", Some(token_with(json!({"iss": ISSUER})))),
        ];

        for (description, token) in cases {
            // Act
            let err = app.roles().list_roles(list_roles_request(token.as_deref())).await.unwrap_err();
            // Assert
            assert_eq!(err.code(), Code::Unauthenticated, "{description}: {err:?}");
        }
    }

    async fn a_valid_token_within_leeway_is_accepted(app) {
        // Arrange: expired 2 s ago, within the default 5 s leeway.
        let token = token_with(json!({"sub": ADMIN, "exp": chrono::Utc::now().timestamp() - 2}));
        // Act
        let result = app.roles().list_roles(with_token(&token, ListRolesRequest::default())).await;
        // Assert
        assert!(result.is_ok(), "{result:?}");
    }

    async fn health_and_reflection_need_no_token(app) {
        // Act
        let health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone())
            .check(tonic_health::pb::HealthCheckRequest { service: "warden.v1.RoleService".into() })
            .await
            .expect("health without a token");
        // Assert
        assert_eq!(health.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    }

    async fn a_caller_without_the_permission_is_denied(app) {
        // Act: "nobody" authenticates fine but holds no role.
        let err = app.roles().list_roles(authed("nobody", ListRolesRequest::default())).await.unwrap_err();
        // Assert
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        let info = tonic_types::StatusExt::get_details_error_info(&err).unwrap();
        assert_eq!(info.metadata.get("missing_permissions").map(String::as_str), Some("warden:roles:read"));
    }

    async fn another_tenants_roles_are_invisible_and_untouchable(app) {
        // Arrange: a role in the default tenant.
        let role = app.create_role("editor", &["docs:read"]).await;
        let acme = app.tenant_token(ACME_ADMIN, "acme");

        // Act + Assert: acme's admin cannot see it by id or name, nor in lists, nor change it.
        let by_id = app.roles().get_role(with_token(&acme, GetRoleRequest { role: Some(role_id(&role.id)) })).await.unwrap_err();
        assert_error(&by_id, Code::NotFound, "NOT_FOUND");
        let by_name = app.roles().get_role(with_token(&acme, GetRoleRequest { role: Some(role_name("editor")) })).await.unwrap_err();
        assert_error(&by_name, Code::NotFound, "NOT_FOUND");
        let listed = app.roles().list_roles(with_token(&acme, ListRolesRequest::default())).await.unwrap().into_inner();
        assert!(listed.roles.iter().all(|r| r.id != role.id && r.tenant_id == "acme"), "{listed:?}");
        let delete = app.roles().delete_role(with_token(&acme, DeleteRoleRequest { role: Some(role_id(&role.id)), force: true, ..Default::default() })).await.unwrap_err();
        assert_error(&delete, Code::NotFound, "NOT_FOUND");
        let remove = app
            .roles()
            .remove_permissions_from_role(with_token(&acme, RemovePermissionsFromRoleRequest { role: Some(role_id(&role.id)), permissions: vec![perm_name("docs:read")], ..Default::default() }))
            .await
            .unwrap_err();
        assert_error(&remove, Code::NotFound, "NOT_FOUND");
        assert_eq!(app.get_role("editor").await.permissions, vec!["docs:read"]);

        // And the default tenant's admin holds nothing in acme.
        let err = app.roles().list_roles(with_token(&app.tenant_token(ADMIN, "acme"), ListRolesRequest::default())).await.unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
    }
}
