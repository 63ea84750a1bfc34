//! Identity providers (issue 14, item 4): with only `WARDEN_AUTH_ISSUER` set, Warden finds the
//! keys by OpenID Connect discovery, over HTTPS, trusting a private CA from
//! `WARDEN_AUTH_CA_FILE`; a Kubernetes ServiceAccount-shaped token works as a caller; a rotated
//! key (new `kid`) is picked up; a token for another audience is refused.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tonic::Code;

use crate::helpers::*;

const SERVICE_ACCOUNT: &str = "system:serviceaccount:payments:api";

/// An OpenID provider on https://localhost:PORT, its certificate signed by a CA of its own.
struct Provider {
    issuer: String,
    ca_pem: String,
    jwks: Arc<Mutex<String>>,
}

impl Provider {
    async fn start() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let jwks = Arc::new(Mutex::new(String::from(r#"{"keys":[]}"#)));
        let (served_issuer, served_jwks) = (issuer.clone(), Arc::clone(&jwks));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let (issuer, jwks) = (served_issuer.clone(), Arc::clone(&served_jwks));
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let path = String::from_utf8_lossy(&request)
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_owned();
                    let (status, body) = match path.as_str() {
                        "/.well-known/openid-configuration" => (
                            "200 OK",
                            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")})
                                .to_string(),
                        ),
                        "/keys" => ("200 OK", jwks.lock().clone()),
                        _ => ("404 Not Found", "{}".to_owned()),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            issuer,
            ca_pem: ca.pem(),
            jwks,
        }
    }

    /// Publishes exactly these signing keys.
    fn publish(&self, keys: &[&SigningKey]) {
        let keys: Vec<_> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.jwks.lock() = json!({ "keys": keys }).to_string();
    }
}

/// An ES256 key with its id and public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

impl SigningKey {
    fn new(kid: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let point = key.public_key_raw(); // 0x04 || x || y
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap(),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            }),
        }
    }

    fn token(&self, issuer: &str, audience: &str, sub: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let now = chrono::Utc::now().timestamp();
        let claims =
            json!({ "iss": issuer, "aud": audience, "sub": sub, "iat": now, "exp": now + 600 });
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_discovered_from_the_issuer_over_a_private_ca_and_rotate() {
    // Arrange: a provider with key k1; Warden given only the issuer, audience and CA file.
    let provider = Provider::start().await;
    let k1 = SigningKey::new("k1");
    provider.publish(&[&k1]);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &provider.ca_pem).unwrap();
    let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let issuer = provider.issuer.clone();
    let app = spawn_on(
        Arc::clone(&db),
        move |url| {
            let mut config = test_config(url);
            config.auth.hs256_secret = None;
            config.auth.issuer = Some(issuer);
            config.auth.audience = Some("warden".into());
            config.auth.ca_file = Some(ca_file);
            config.bootstrap_admins = vec![SERVICE_ACCOUNT.into()];
            config
        },
        None,
    )
    .await;
    let roles = |token: String| {
        let mut client = app.roles();
        async move {
            client
                .list_roles(with_token(&token, ListRolesRequest::default()))
                .await
        }
    };

    // Act + Assert: a ServiceAccount-shaped token signed with the discovered key works.
    roles(k1.token(&provider.issuer, "warden", SERVICE_ACCOUNT))
        .await
        .unwrap();
    // Another audience is refused.
    let err = roles(k1.token(&provider.issuer, "someone-else", SERVICE_ACCOUNT))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // The provider rotates to k2: a token naming the new kid makes Warden fetch the keys again.
    let k2 = SigningKey::new("k2");
    provider.publish(&[&k2]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    roles(k2.token(&provider.issuer, "warden", SERVICE_ACCOUNT))
        .await
        .unwrap();
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_private_ca_the_provider_is_not_trusted() {
    let provider = Provider::start().await;
    provider.publish(&[&SigningKey::new("k1")]);
    let db = TestDatabase::create(Backend::Sqlite).await;
    let mut config = test_config(&db.url);
    config.auth.hs256_secret = None;
    config.auth.issuer = Some(provider.issuer.clone());
    config.auth.audience = Some("warden".into());
    let Err(err) = warden::App::build(config).await else {
        panic!("start-up must fail when the provider cannot be trusted");
    };
    assert!(
        format!("{err:#}").contains("openid-configuration"),
        "{err:#}"
    );
}

/// Several issuers at once (`auth.issuers`): each provider's tokens are verified with its own
/// keys and audience only, and placed in a tenant by its own rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_issuers_each_with_its_audience_and_tenant_rule() {
    // Arrange: provider A puts tenants in an `org` claim; provider B's tokens are all in `acme`.
    let (a, b) = (Provider::start().await, Provider::start().await);
    let (ka, kb) = (SigningKey::new("ka"), SigningKey::new("kb"));
    a.publish(&[&ka]);
    b.publish(&[&kb]);
    let dir = tempfile::tempdir().unwrap();
    let (ca_a, ca_b) = (dir.path().join("a.pem"), dir.path().join("b.pem"));
    std::fs::write(&ca_a, &a.ca_pem).unwrap();
    std::fs::write(&ca_b, &b.ca_pem).unwrap();
    let db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let lines = format!(
        "issuer={} audience=warden-a ca_file={} tenant_claim=org\n\
         # B: a cluster's ServiceAccount issuer, one tenant\n\
         issuer={} audience=warden-b ca_file={} tenant=acme\n",
        a.issuer,
        ca_a.display(),
        b.issuer,
        ca_b.display()
    );
    let app = spawn_on(
        Arc::clone(&db),
        move |url| {
            let mut config = test_config(url);
            // The lines as the environment gives them, through the real parser.
            let parsed: warden::config::AuthConfig = figment::Figment::new()
                .merge(("issuers", lines))
                .extract()
                .unwrap();
            config.auth.issuers = parsed.issuers;
            config
                .bootstrap_admins
                .extend(["globex/alice".to_owned(), format!("acme/{SERVICE_ACCOUNT}")]);
            config
        },
        None,
    )
    .await;
    let roles = |token: String| {
        let mut client = app.roles();
        async move {
            client
                .list_roles(with_token(&token, ListRolesRequest::default()))
                .await
        }
    };
    let signed = |key: &SigningKey, issuer: &str, audience: &str, claims: serde_json::Value| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        let now = chrono::Utc::now().timestamp();
        let mut all = json!({ "iss": issuer, "aud": audience, "iat": now, "exp": now + 600 });
        all.as_object_mut()
            .unwrap()
            .extend(claims.as_object().unwrap().clone());
        jsonwebtoken::encode(&header, &all, &key.encoding).unwrap()
    };

    // Act + Assert: A's token names its tenant in `org`: alice is globex's admin.
    roles(signed(
        &ka,
        &a.issuer,
        "warden-a",
        json!({"sub": "alice", "org": "globex"}),
    ))
    .await
    .unwrap();
    // In another org she is nobody there.
    let err = roles(signed(
        &ka,
        &a.issuer,
        "warden-a",
        json!({"sub": "alice", "org": "initech"}),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // B's tokens are in acme whatever they claim.
    roles(signed(
        &kb,
        &b.issuer,
        "warden-b",
        json!({"sub": SERVICE_ACCOUNT, "org": "globex"}),
    ))
    .await
    .unwrap();
    // Each provider's audience only.
    let err = roles(signed(
        &kb,
        &b.issuer,
        "warden-a",
        json!({"sub": SERVICE_ACCOUNT}),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // A's key cannot sign for B's issuer, nor B's for A's.
    let err = roles(signed(
        &ka,
        &b.issuer,
        "warden-b",
        json!({"sub": SERVICE_ACCOUNT}),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = roles(signed(
        &kb,
        &a.issuer,
        "warden-a",
        json!({"sub": "alice", "org": "globex"}),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // The primary configuration (HS256 here) still works beside them.
    app.roles()
        .list_roles(authed(ADMIN, ListRolesRequest::default()))
        .await
        .unwrap();
    app.finish().await;
}
