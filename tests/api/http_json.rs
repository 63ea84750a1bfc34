//! HTTP/JSON (issue 15, item 1): the seeds' routes with a real HTTP client, on the gRPC port,
//! answered by the same handlers through the same edge. Dfns assign/approve/revoke, CompanyFlow
//! single removal, Heimdall removal by names, Guardhouse batch removal; status codes from the
//! gRPC code and ErrorInfo reason; the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

/// One HTTP/1.1 call as `sub` (no token when `sub` is empty): status, headers and JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    sub: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    let mut request = client.request(method, format!("http://{}{path}", app.addr));
    if !sub.is_empty() {
        request = request.bearer_auth(app.tenant_token(sub, "default"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers HTTP/1.1");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

/// The ErrorInfo reason of a `google.rpc.Status` body.
fn reason(body: &Value) -> String {
    body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .map(|d| d["reason"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

backend_tests! {
    async fn the_dfns_flow_assigns_files_approves_and_revokes_over_http(app) {
        let reader = app.create_role("reader", &["docs:read"]).await;
        app.create_permission("payments:send").await;
        app.roles()
            .create_role(authed(ADMIN, CreateRoleRequest { name: "payments".into(), permissions: vec![perm_name("payments:send")], requires_approval: true, ..Default::default() }))
            .await
            .unwrap();

        // Assign by the role's id: 200 with the assignment.
        let (status, headers, body) = call(&app, Method::POST, &format!("/v1/roles/{}/assignments", reader.id), ADMIN,
            Some(json!({ "identity": { "id": "alice", "kind": "IDENTITY_KIND_USER" }, "reason": "onboarding" }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(headers.get("x-request-id").is_some(), "the edge's request id: {headers:?}");
        let assignment = &body["assignment"];
        assert_eq!(assignment["roleId"], reader.id.as_str());
        assert_eq!(assignment["identity"]["kind"], "IDENTITY_KIND_USER");
        assert!(body["revision"].as_str().is_some_and(|r| r.parse::<u64>().unwrap() > 0), "{body}");
        let assignment_id = assignment["id"].as_str().unwrap().to_owned();

        // The decision is the same over HTTP.
        let (status, _, body) = call(&app, Method::POST, "/v1/check", ADMIN,
            Some(json!({ "identityId": "alice", "permission": "docs:read" }))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["allowed"], true);
        assert_eq!(body["reason"], "CHECK_REASON_GRANTED");

        // An approval-gated role (by name): 202 with the pending change request.
        let (status, _, body) = call(&app, Method::POST, "/v1/roles/payments/assignments", ADMIN,
            Some(json!({ "identity": { "id": "bob", "kind": "IDENTITY_KIND_USER" } }))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["changeRequest"]["status"], "CHANGE_REQUEST_STATUS_PENDING");
        let request_id = body["changeRequest"]["id"].as_str().unwrap().to_owned();
        assert!(!app.check("bob", "payments:send").await);

        // Approved by another administrator: applied, and bob holds it.
        let (status, _, body) = call(&app, Method::POST, &format!("/v1/changeRequests/{request_id}:approve"), ADMIN2,
            Some(json!({ "comment": "ok" }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "CHANGE_REQUEST_STATUS_APPLIED");
        assert!(app.check("bob", "payments:send").await);

        // Revoke under another role's path: NOT_FOUND, nothing revoked.
        let (status, _, body) = call(&app, Method::DELETE, &format!("/v1/roles/payments/assignments/{assignment_id}"), ADMIN, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(reason(&body), "NOT_FOUND");
        assert!(app.check("alice", "docs:read").await);
        // Revoke under its role (Dfns's DELETE …/assignments/{assignmentId}): 200.
        let (status, _, body) = call(&app, Method::DELETE, &format!("/v1/roles/{}/assignments/{assignment_id}", reader.id), ADMIN, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["assignment"]["id"], assignment_id.as_str());
        assert!(!app.check("alice", "docs:read").await);
    }

    async fn http_errors_are_google_rpc_status_bodies_with_the_matching_http_status(app) {
        app.create_role("editor", &["docs:write"]).await;
        // No token: 401, UNAUTHENTICATED.
        let (status, _, body) = call(&app, Method::GET, "/v1/roles/editor", "", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], 16);
        assert_eq!(reason(&body), "UNAUTHENTICATED");
        // A caller without the permission: 403.
        let (status, _, body) = call(&app, Method::GET, "/v1/roles/editor", "nobody", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(reason(&body), "PERMISSION_DENIED");
        // An omitted identity kind is refused, naming the field: 400 with BadRequest.
        let (status, _, body) = call(&app, Method::POST, "/v1/roles/editor/assignments", ADMIN,
            Some(json!({ "identity": { "id": "carol" } }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains("identity.kind"), "{body}");
        // Not JSON, and a field the message does not have: 400.
        let client = reqwest::Client::new();
        let response = client.post(format!("http://{}/v1/check", app.addr))
            .bearer_auth(app.tenant_token(ADMIN, "default")).header("content-type", "application/json")
            .body("{not json").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let (status, _, body) = call(&app, Method::POST, "/v1/check", ADMIN,
            Some(json!({ "identityId": "a", "permission": "docs:write", "bogus": 1 }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // Already exists: 409.
        let (status, _, body) = call(&app, Method::POST, "/v1/roles", ADMIN, Some(json!({ "name": "editor" }))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(reason(&body), "ALREADY_EXISTS");
        // A stale etag: 412.
        let (status, _, body) = call(&app, Method::PATCH, "/v1/roles/editor", ADMIN,
            Some(json!({ "description": "x", "etag": "W/\"0\"" }))).await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
        assert_eq!(reason(&body), "ETAG_MISMATCH");
        // No such route: 404; a route without this method: 405 naming the allowed ones.
        let (status, _, _) = call(&app, Method::GET, "/v1/nothing", ADMIN, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, headers, _) = call(&app, Method::PUT, "/v1/roles/editor", ADMIN, None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let allow = headers.get("allow").unwrap().to_str().unwrap().to_owned();
        assert!(allow.contains("GET") && allow.contains("PATCH") && allow.contains("DELETE"), "{allow}");
        // Query parameters are typed by the field they name.
        let (status, _, body) = call(&app, Method::GET, "/v1/roles?page_size=x", ADMIN, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _, body) = call(&app, Method::GET, "/v1/roles?pageSize=1&name_prefix=edit", ADMIN, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["roles"].as_array().unwrap().len(), 1);
        assert_eq!(body["roles"][0]["name"], "editor");
    }

    async fn companyflow_heimdall_and_guardhouse_removals_work_as_their_documents_show(app) {
        let read = app.create_permission("docs:read").await;
        let write = app.create_permission("docs:write").await;
        let share = app.create_permission("docs:share").await;
        let role = app.create_role("editor", &["docs:read", "docs:write", "docs:share"]).await;

        // CompanyFlow: DELETE /roles/{role_id}/permissions/{permission_id} answers the updated role.
        let (status, _, body) = call(&app, Method::DELETE, &format!("/v1/roles/{}/permissions/{}", role.id, share.id), ADMIN, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["role"]["id"], role.id.as_str());
        assert_eq!(body["role"]["permissions"], json!(["docs:read", "docs:write"]));
        // An unknown role: 404; a permission the role lacks: the PERMISSION_NOT_IN_ROLE conflict.
        let (status, _, body) = call(&app, Method::DELETE, &format!("/v1/roles/{}/permissions/{}", uuid::Uuid::now_v7(), read.id), ADMIN, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, _, body) = call(&app, Method::DELETE, &format!("/v1/roles/{}/permissions/{}", role.id, share.id), ADMIN, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(reason(&body), "PERMISSION_NOT_IN_ROLE");

        // Heimdall: DELETE /roles/{role_name}/actions/{action_name}, here by names.
        let (status, _, body) = call(&app, Method::DELETE, "/v1/roles/editor/permissions/docs:write", ADMIN, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["role"]["permissions"], json!(["docs:read"]));

        // Guardhouse: DELETE /roles/{roleId}/permissions with a list. Empty: 400.
        let path = format!("/v1/roles/{}/permissions", role.id);
        let (status, _, body) = call(&app, Method::DELETE, &path, ADMIN, Some(json!({ "permissions": [] }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // The same id twice: 400.
        let (status, _, body) = call(&app, Method::DELETE, &path, ADMIN,
            Some(json!({ "permissions": [{ "id": read.id }, { "id": read.id }] }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // An unknown id: refused, and nothing changed (docs:read is still there).
        let (status, _, body) = call(&app, Method::DELETE, &path, ADMIN,
            Some(json!({ "permissions": [{ "id": read.id }, { "id": uuid::Uuid::now_v7().to_string() }] }))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(app.get_role("editor").await.permissions, vec!["docs:read"]);
        // Ids the role does not hold succeed, and the held one goes.
        let (status, _, body) = call(&app, Method::DELETE, &path, ADMIN,
            Some(json!({ "permissions": [{ "id": read.id }, { "id": write.id }, { "id": share.id }] }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["role"]["permissions"], json!([]));
    }

    async fn http_writes_replay_by_idempotency_key_and_watch_streams_json_lines(app) {
        app.create_role("reader", &["docs:read"]).await;
        let assign = || async {
            let client = reqwest::Client::new();
            let response = client.post(format!("http://{}/v1/roles/reader/assignments", app.addr))
                .bearer_auth(app.tenant_token(ADMIN, "default"))
                .header("idempotency-key", "http-retry-1")
                .json(&json!({ "identity": { "id": "dana", "kind": "IDENTITY_KIND_USER" } }))
                .send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        };
        let first = assign().await;
        let again = assign().await;
        assert_eq!(first["assignment"]["id"], again["assignment"]["id"]);
        assert_eq!(first["revision"], again["revision"]);

        // WatchChanges: one JSON object per line, typed changes.
        let client = reqwest::Client::new();
        let mut response = client.get(format!("http://{}/v1/changes?since_revision=0", app.addr))
            .bearer_auth(app.tenant_token(ADMIN, "default")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/x-ndjson");
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !text.contains("CHANGE_KIND_ASSIGNMENT_CREATED") {
            let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("the stream answers").unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let created = events.iter().find(|e| e["result"]["kind"] == "CHANGE_KIND_ASSIGNMENT_CREATED").unwrap();
        let change = &created["result"]["changes"][0]["assignmentPut"];
        assert_eq!(change["identity"]["id"], "dana");
        assert_eq!(change["identity"]["kind"], "IDENTITY_KIND_USER");
        let role_created = events.iter().find(|e| e["result"]["kind"] == "CHANGE_KIND_ROLE_CREATED").unwrap();
        assert_eq!(role_created["result"]["changes"][0]["rolePut"]["name"], "reader");

        // The OpenAPI document is served, and needs no token.
        let (status, _, body) = call(&app, Method::GET, "/openapi.json", "", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["openapi"], "3.0.3");
        assert!(body["paths"]["/v1/roles/{role}/assignments"]["post"]["responses"]["202"].is_object());
    }
}
