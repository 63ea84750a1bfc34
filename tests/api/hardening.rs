//! Issue 11's details, each written as the attempt: errors a client can act on (INVALID_ARGUMENT
//! for an undecodable message, an ErrorInfo reason on every non-OK status), a literal
//! `namePrefix`, timestamps within protobuf's range.

use tonic::Code;
use tonic_types::StatusExt as _;

use crate::backend_tests;
use crate::check_route::raw_unary;
use crate::helpers::*;

/// A message whose field 1 is bytes, where CreateRole and Check expect a UTF-8 string.
#[derive(Clone, PartialEq, prost::Message)]
struct NotUtf8 {
    #[prost(bytes = "vec", tag = "1")]
    field: Vec<u8>,
}

fn status_of(trailers: &http::HeaderMap) -> tonic::Status {
    tonic::Status::from_header_map(trailers).expect("a grpc-status")
}

#[tokio::test]
async fn an_undecodable_message_is_invalid_argument_with_a_reason_on_both_routes() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = token_with(serde_json::json!({ "sub": ADMIN }));
    let garbage = NotUtf8 {
        field: vec![0xff, 0xfe, 0xfd],
    };
    // Check is answered by the edge's fast path, CreateRole by tonic's route.
    for path in [
        "/warden.v1.AuthorizationService/Check",
        "/warden.v1.RoleService/CreateRole",
    ] {
        let (head, _, trailers) = raw_unary(app.addr, path, &token, &garbage).await;
        let status = status_of(trailers.as_ref().unwrap_or(&head.headers));
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason).as_deref(),
            Some("INVALID_ARGUMENT"),
            "{path}"
        );
        assert!(
            !status.message().contains("utf"),
            "{path}: decoder internals leak: {}",
            status.message()
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn unauthenticated_calls_carry_an_error_info_reason() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut roles = app.roles();
    for token in ["", "not-a-jwt"] {
        let mut request = tonic::Request::new(ListRolesRequest::default());
        if !token.is_empty() {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let err = roles.list_roles(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(
            err.get_details_error_info().map(|i| i.reason).as_deref(),
            Some("UNAUTHENTICATED"),
            "{err:?}"
        );
        assert!(err.get_details_request_info().is_some());
    }
    app.finish().await;
}

#[tokio::test]
async fn an_oversized_token_is_unauthenticated_not_an_http_error() {
    let app = spawn_app(Backend::Sqlite).await;
    let huge = format!(
        "{}.{}.{}",
        "a".repeat(10_000),
        "b".repeat(10_000),
        "c".repeat(100)
    );
    let err = app
        .roles()
        .list_roles(with_token(&huge, ListRolesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("larger than 16 KiB"), "{err:?}");
    assert_eq!(
        err.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("UNAUTHENTICATED")
    );
    app.finish().await;
}

backend_tests! {
    async fn name_prefix_is_literal_and_case_sensitive(app) {
        // Arrange: names an SQL wildcard or a case-blind match would catch.
        for name in ["a_b", "axb", "abc", "A_B"] {
            app.create_role(name, &[]).await;
        }
        let names = |prefix: &str| {
            let mut roles = app.roles();
            let prefix = prefix.to_owned();
            async move {
                roles
                    .list_roles(authed(ADMIN, ListRolesRequest { name_prefix: prefix, ..Default::default() }))
                    .await
                    .unwrap()
                    .into_inner()
                    .roles
                    .into_iter()
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
            }
        };
        // Act + Assert
        assert_eq!(names("a_").await, ["a_b"]);
        assert_eq!(names("A").await, ["A_B"]);
        assert_eq!(names("ab").await, ["abc"]);
    }

    async fn a_timestamp_past_year_9999_is_refused(app) {
        app.create_role("editor", &["docs:read"]).await;
        let far = prost_types::Timestamp { seconds: 253_402_300_800, nanos: 0 }; // 10000-01-01
        let err = app
            .assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("eve")), expire_time: Some(far), ..Default::default() }))
            .await
            .unwrap_err();
        assert_invalid(&err, "expire_time");
        assert!(!app.check("eve", "docs:read").await);
        let bad_nanos = prost_types::Timestamp { seconds: 2_000_000_000, nanos: -1 };
        let err = app
            .assignments()
            .assign_role(authed(ADMIN, AssignRoleRequest { role: Some(role_name("editor")), identity: Some(user("eve")), expire_time: Some(bad_nanos), ..Default::default() }))
            .await
            .unwrap_err();
        assert_invalid(&err, "expire_time");
    }

    async fn a_page_token_only_continues_the_list_it_came_from(app) {
        // Arrange: a token from ListRoles in the default tenant.
        let token = app
            .roles()
            .list_roles(authed(ADMIN, ListRolesRequest { page_size: 1, ..Default::default() }))
            .await
            .unwrap()
            .into_inner()
            .next_page_token;
        assert!(!token.is_empty());
        // Act + Assert: another RPC, another tenant, other filters, an edited token.
        let err = app
            .permissions()
            .list_permissions(authed(ADMIN, ListPermissionsRequest { page_size: 1, page_token: token.clone(), ..Default::default() }))
            .await
            .unwrap_err();
        assert_invalid(&err, "page_token");
        let acme = app.tenant_token(ACME_ADMIN, "acme");
        let err = app
            .roles()
            .list_roles(with_token(&acme, ListRolesRequest { page_size: 1, page_token: token.clone(), ..Default::default() }))
            .await
            .unwrap_err();
        assert_invalid(&err, "page_token");
        let err = app
            .roles()
            .list_roles(authed(ADMIN, ListRolesRequest { page_size: 1, page_token: token.clone(), name_prefix: "warden".into() }))
            .await
            .unwrap_err();
        assert_invalid(&err, "page_token");
        let mut edited = token.clone();
        edited.insert(0, 'A');
        let err = app.roles().list_roles(authed(ADMIN, ListRolesRequest { page_size: 1, page_token: edited, ..Default::default() })).await.unwrap_err();
        assert_invalid(&err, "page_token");
        // The list it came from continues.
        app.roles().list_roles(authed(ADMIN, ListRolesRequest { page_size: 1, page_token: token, ..Default::default() })).await.unwrap();
    }
}
