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
        let by_id = app.roles().get_role(with_token(&acme, GetRoleRequest { role: Some(role_id(&role.id)), ..Default::default() })).await.unwrap_err();
        assert_error(&by_id, Code::NotFound, "NOT_FOUND");
        let by_name = app.roles().get_role(with_token(&acme, GetRoleRequest { role: Some(role_name("editor")), ..Default::default() })).await.unwrap_err();
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

mod public_keys {
    use std::path::PathBuf;
    use std::sync::Arc;

    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;
    use tonic::Code;

    use crate::helpers::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn claims() -> serde_json::Value {
        json!({"sub": ADMIN, "iss": ISSUER, "aud": AUDIENCE, "exp": chrono::Utc::now().timestamp() + 600})
    }

    fn signed(alg: Algorithm, key: EncodingKey) -> String {
        jsonwebtoken::encode(&Header::new(alg), &claims(), &key).unwrap()
    }

    async fn status_of(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
        app.roles()
            .list_roles(with_token(token, ListRolesRequest::default()))
            .await
            .map(|_| ())
    }

    /// RS256, ES256 and EdDSA keys verify their own tokens; an HS256 token "signed" with a public
    /// key's bytes (algorithm confusion) and tokens signed by other keys are refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn public_keys_verify_and_algorithm_confusion_is_refused() {
        // Arrange: no HS256 secret at all, three public keys.
        let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
        let app = spawn_on(
            db,
            |url| {
                let mut config = test_config(url);
                config.auth.hs256_secret = None;
                config.auth.public_key_files = vec![
                    fixture("rsa-public.pem"),
                    fixture("ec-public.pem"),
                    fixture("ed25519-public.pem"),
                ];
                config
            },
            None,
        )
        .await;
        let read = |name: &str| std::fs::read(fixture(name)).unwrap();

        // Act + Assert
        for (alg, key) in [
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(&read("rsa-private.pem")).unwrap(),
            ),
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(&read("ec-private.pem")).unwrap(),
            ),
            (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(&read("ed25519-private.pem")).unwrap(),
            ),
        ] {
            status_of(&app, &signed(alg, key))
                .await
                .unwrap_or_else(|e| panic!("{alg:?} token refused: {e:?}"));
        }
        for public in ["rsa-public.pem", "ec-public.pem", "ed25519-public.pem"] {
            let confused = signed(Algorithm::HS256, EncodingKey::from_secret(&read(public)));
            let err = status_of(&app, &confused).await.unwrap_err();
            assert_eq!(
                err.code(),
                Code::Unauthenticated,
                "HS256 with {public} as secret"
            );
        }
        let hs = signed(
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET.as_bytes()),
        );
        assert_eq!(
            status_of(&app, &hs).await.unwrap_err().code(),
            Code::Unauthenticated,
            "no HS256 key is configured"
        );
        app.finish().await;
    }

    /// A JWKS file: the key is chosen by `kid`; an unknown `kid` is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_jwks_file_verifies_tokens_by_kid() {
        use base64::Engine as _;
        // Arrange: the Ed25519 public key as a JWK (its raw 32 bytes end the SPKI DER).
        let pem = std::fs::read_to_string(fixture("ed25519-public.pem")).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "kid": "k1", "use": "sig"}]}).to_string()).unwrap();
        let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
        let path = jwks.clone();
        let app = spawn_on(
            db,
            move |url| {
                let mut config = test_config(url);
                config.auth.hs256_secret = None;
                config.auth.jwks = Some(path.display().to_string());
                config
            },
            None,
        )
        .await;
        let key = EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519-private.pem")).unwrap())
            .unwrap();
        let with_kid = |kid: &str| {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(kid.into());
            jsonwebtoken::encode(&header, &claims(), &key).unwrap()
        };
        // Act + Assert
        status_of(&app, &with_kid("k1"))
            .await
            .expect("kid k1 verifies");
        let err = status_of(&app, &with_kid("other")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        app.finish().await;
    }

    /// The raw bytes at the end of a public key's SPKI DER (Ed25519: 32; P-256: 0x04 || x || y).
    fn spki_tail(name: &str, len: usize) -> Vec<u8> {
        use base64::Engine as _;
        let pem = std::fs::read_to_string(fixture(name)).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        der[der.len() - len..].to_vec()
    }

    /// A JWKS URL: keys are fetched at start-up; a token naming a key id the set gained since
    /// makes Warden fetch it again; a forged key id right after does not cause another fetch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_jwks_url_is_fetched_again_for_an_unknown_key_id_at_most_every_few_seconds() {
        use base64::Engine as _;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        // Arrange: an identity provider serving a JWKS that only holds the Ed25519 key k1.
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&spki_tail("ed25519-public.pem", 32)), "alg": "EdDSA", "kid": "k1", "use": "sig"});
        let point = spki_tail("ec-public.pem", 65);
        let ec = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]), "alg": "ES256", "kid": "k2", "use": "sig"});
        let document = Arc::new(parking_lot::Mutex::new(
            json!({"keys": [ed.clone()]}).to_string(),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let idp = {
            let (document, fetches) = (Arc::clone(&document), Arc::clone(&fetches));
            axum::Router::new().route(
                "/jwks.json",
                axum::routing::get(move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let body = document.lock().clone();
                    async move { body }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, idp).await.unwrap() });
        let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
        let app = spawn_on(
            db,
            move |db_url| {
                let mut config = test_config(db_url);
                config.auth.hs256_secret = None;
                config.auth.jwks = Some(url);
                config
            },
            None,
        )
        .await;
        let sign = |alg: Algorithm, kid: &str, key: &EncodingKey| {
            let mut header = Header::new(alg);
            header.kid = Some(kid.into());
            jsonwebtoken::encode(&header, &claims(), key).unwrap()
        };
        let ed_key =
            EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519-private.pem")).unwrap())
                .unwrap();
        let ec_key =
            EncodingKey::from_ec_pem(&std::fs::read(fixture("ec-private.pem")).unwrap()).unwrap();
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "fetched once at start-up"
        );

        // Act + Assert: k1 verifies from the start-up fetch.
        status_of(&app, &sign(Algorithm::EdDSA, "k1", &ed_key))
            .await
            .expect("k1 verifies");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // The provider rotates in k2: the first k2 token makes Warden fetch, and verifies.
        *document.lock() = json!({"keys": [ed, ec]}).to_string();
        status_of(&app, &sign(Algorithm::ES256, "k2", &ec_key))
            .await
            .expect("k2 verifies after a fetch");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // A key id nobody has: refused, and no third fetch so soon after the second.
        let err = status_of(&app, &sign(Algorithm::ES256, "forged", &ec_key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // A k2 token signed by the wrong key is still refused.
        let err = status_of(&app, &sign(Algorithm::EdDSA, "k2", &ed_key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        app.finish().await;
    }

    /// A JWKS URL that cannot be fetched at start-up stops the start, naming the setting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_jwks_url_stops_the_start() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        drop(listener);
        let db = TestDatabase::create(Backend::Sqlite).await;
        let mut config = test_config(&db.url);
        config.auth.jwks = Some(url);
        let err = warden::App::build(config)
            .await
            .expect_err("no keys, no start");
        assert!(
            err.to_string().contains("auth.jwks (WARDEN_AUTH_JWKS)"),
            "{err:#}"
        );
        db.drop_database().await;
    }
}
