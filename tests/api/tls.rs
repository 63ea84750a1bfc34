//! TLS and mTLS on the gRPC port (issue 14, item 3): with `WARDEN_TLS_CERT_FILE` and
//! `WARDEN_TLS_KEY_FILE` the port speaks only TLS; a renewed certificate is served to new
//! connections without a restart (and a bad one is not); with `WARDEN_TLS_CLIENT_CA_FILE` a
//! client certificate must chain to that CA, and a verified one names its caller (its SPIFFE ID)
//! where no bearer token is sent. Certificates are made here with rcgen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, Ia5String, IsCa, KeyPair,
    SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use warden::config::Config;

use crate::helpers::*;

const BILLING: &str = "spiffe://example.org/ns/prod/sa/billing";

/// A certificate authority of the test's own.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, as PEM.
struct Issued {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `localhost` with this serial number.
    fn server(&self, serial: u64) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate naming `sans`.
    fn client(&self, sans: Vec<SanType>) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

fn uri(text: &str) -> SanType {
    SanType::URI(Ia5String::try_from(text).unwrap())
}

fn dns(text: &str) -> SanType {
    SanType::DnsName(Ia5String::try_from(text).unwrap())
}

/// The server's files: `cert.pem`, `key.pem` and `client-ca.pem` in a directory of their own.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(server: &Issued, client_ca: &Ca) -> Self {
        let files = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        files.write(server);
        std::fs::write(files.path("client-ca.pem"), client_ca.pem()).unwrap();
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces the certificate and key as cert-manager would: each file at once.
    fn write(&self, server: &Issued) {
        for (name, text) in [("cert.pem", &server.cert), ("key.pem", &server.key)] {
            let staged = self.path(&format!(".{name}.new"));
            std::fs::write(&staged, text).unwrap();
            std::fs::rename(&staged, self.path(name)).unwrap();
        }
    }

    /// The test configuration with TLS from these files, client certificates from the client
    /// CA if `mtls`, and a watcher quick enough for a test.
    fn config(&self, mtls: bool) -> impl FnOnce(&str) -> Config + use<> {
        let (cert, key, ca) = (
            self.path("cert.pem"),
            self.path("key.pem"),
            self.path("client-ca.pem"),
        );
        move |url| {
            let mut config = test_config(url);
            config.tls.cert_file = Some(cert);
            config.tls.key_file = Some(key);
            config.tls.client_ca_file = mtls.then_some(ca);
            config.tls.reload_interval = Duration::from_millis(100);
            config
        }
    }
}

/// A TLS channel to `app` trusting `server_ca`, presenting `client` if given.
async fn tls_channel(
    app: &TestApp,
    server_ca: &Ca,
    client: Option<&Issued>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(server_ca.pem()))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert, &client.key));
    }
    Endpoint::from_shared(format!("https://{}", app.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(tls)?
        .connect()
        .await
}

/// A raw TLS client of `app` trusting `server_ca`, presenting `client` if given.
fn raw_client(server_ca: &Ca, client: Option<&Issued>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server_ca.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        Some(client) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(client.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(client.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// The certificate a new TLS connection to `app` is shown (DER).
async fn served_certificate(app: &TestApp, server_ca: &Ca) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let stream = raw_client(server_ca, None)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the handshake succeeds");
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// What the server first says on a new TLS connection presenting `client`: its HTTP/2 settings
/// (bytes read) once it accepted the connection, or the error that ended it.
async fn first_words(app: &TestApp, server_ca: &Ca, client: &Issued) -> Result<usize, String> {
    use tokio::io::AsyncReadExt as _;
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // The client's side of a TLS 1.3 handshake ends before the server has judged its
    // certificate: the verdict comes with the server's first record.
    let mut stream = raw_client(server_ca, Some(client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    // The port also speaks HTTP/1.1 (HTTP/JSON, gRPC-Web), so the server waits for the
    // client's first bytes to tell the protocol: an HTTP/2 client opens with its preface.
    use tokio::io::AsyncWriteExt as _;
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the server answers within 5 s")
        .map_err(|e| e.to_string())
}

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|r| r.into_inner().status)
}

fn authz(channel: &Channel) -> authorization_service_client::AuthorizationServiceClient<Channel> {
    authorization_service_client::AuthorizationServiceClient::new(channel.clone())
}

/// A server with TLS (and client certificates if `mtls`) on a fresh SQLite database; its
/// `channel` is a TLS channel without a client certificate.
async fn spawn_tls(backend: Backend, files: &Files, server_ca: &Ca, mtls: bool) -> TestApp {
    let db = Arc::new(TestDatabase::create(backend).await);
    let mut app = spawn_on(db, files.config(mtls), None).await;
    app.channel = tls_channel(&app, server_ca, None)
        .await
        .expect("a client trusting the CA connects");
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_ca_is_served_over_tls_and_plaintext_is_refused() {
    // Arrange
    let server_ca = Ca::new("server CA");
    let files = Files::new(&server_ca.server(1), &Ca::new("client CA"));
    let app = spawn_tls(Backend::Sqlite, &files, &server_ca, false).await;

    // Act
    let serving = health(app.channel.clone()).await;
    let checked = authz(&app.channel)
        .check(authed(ADMIN, check("alice", "docs:read", 0)))
        .await;
    let plaintext = match Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
    {
        Ok(channel) => health(channel).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let other_ca = Ca::new("someone else's CA");
    let untrusting = tls_channel(&app, &other_ca, None).await;

    // Assert
    assert_eq!(serving.expect("health over TLS"), 1, "SERVING");
    assert!(
        !checked
            .expect("Check over TLS with a token")
            .into_inner()
            .allowed,
        "alice holds nothing"
    );
    assert!(
        plaintext.is_err(),
        "plaintext HTTP/2 is refused: {plaintext:?}"
    );
    assert!(
        untrusting.is_err(),
        "a client not trusting the server's CA does not connect"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_to_new_connections_and_a_bad_one_is_not() {
    // Arrange
    let server_ca = Ca::new("server CA");
    let (first, second) = (server_ca.server(1), server_ca.server(2));
    let files = Files::new(&first, &Ca::new("client CA"));
    let app = spawn_tls(Backend::Sqlite, &files, &server_ca, false).await;
    assert_eq!(served_certificate(&app, &server_ca).await, first.der);
    let open = app.channel.clone();
    health(open.clone())
        .await
        .expect("the first connection works");

    // Act: cert-manager renews the certificate.
    files.write(&second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while served_certificate(&app, &server_ca).await != second.der {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate is not served after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert: the connection opened before goes on; new ones see serial 2.
    health(open)
        .await
        .expect("the connection opened before the renewal still works");
    let renewed = x509_serial(&served_certificate(&app, &server_ca).await);
    assert_eq!(renewed, vec![2], "the new certificate's serial number");

    // Act: a broken renewal (a key that is not PEM, then a key of another certificate).
    std::fs::write(files.path("key.pem"), "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_garbage = served_certificate(&app, &server_ca).await;
    std::fs::write(files.path("key.pem"), server_ca.server(3).key).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_mismatch = served_certificate(&app, &server_ca).await;

    // Assert: the last good certificate is still served.
    assert_eq!(
        after_garbage, second.der,
        "a key that is not PEM is not used"
    );
    assert_eq!(
        after_mismatch, second.der,
        "a key not matching the certificate is not used"
    );
    health(app.channel.clone())
        .await
        .expect("new connections still work");
    app.finish().await;
}

/// The serial number of a certificate (DER), without leading zero bytes.
fn x509_serial(der: &[u8]) -> Vec<u8> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let bytes = cert.tbs_certificate.serial_number.as_bytes();
    bytes.iter().copied().skip_while(|b| *b == 0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused_in_the_handshake() {
    // Arrange
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let files = Files::new(&server_ca.server(1), &client_ca);
    let app = spawn_tls(Backend::Sqlite, &files, &server_ca, true).await;
    let stranger = Ca::new("a stranger's CA").client(vec![uri(BILLING)]);

    let trusted = client_ca.client(vec![uri(BILLING)]);

    // Act
    let refused = first_words(&app, &server_ca, &stranger).await;
    let accepted = first_words(&app, &server_ca, &trusted).await;
    let stranger_call = match tls_channel(&app, &server_ca, Some(&stranger)).await {
        Ok(channel) => health(channel).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let without_certificate = health(app.channel.clone()).await;

    // Assert
    let refused = refused.expect_err("a certificate from another CA is refused");
    assert!(
        refused.contains("UnknownCA"),
        "the server refuses it with an unknown-CA alert: {refused}"
    );
    assert!(
        accepted.expect("a certificate from the client CA is accepted") > 0,
        "the server's HTTP/2 settings follow the handshake"
    );
    assert!(
        stranger_call.is_err(),
        "a gRPC client with that certificate gets nothing: {stranger_call:?}"
    );
    assert_eq!(
        without_certificate.expect("a client without a certificate still connects"),
        1
    );
    app.finish().await;
}

/// A SPIFFE client certificate authenticates its caller without a token; a token wins over it.
async fn a_spiffe_certificate_authenticates_its_caller(backend: Backend) {
    // Arrange
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let files = Files::new(&server_ca.server(1), &client_ca);
    let app = spawn_tls(backend, &files, &server_ca, true).await;
    app.create_role("billing-reader", &["billing:read", "billing:write"])
        .await;
    app.assign("billing-reader", BILLING).await;
    let svid = client_ca.client(vec![
        dns("billing.prod.svc"),
        uri("https://example.org/not-an-identity"),
        uri(BILLING),
    ]);
    let billing = tls_channel(&app, &server_ca, Some(&svid))
        .await
        .expect("a certificate from the client CA is accepted");
    let by_dns = tls_channel(
        &app,
        &server_ca,
        Some(&client_ca.client(vec![dns("reports.prod.svc")])),
    )
    .await
    .unwrap();
    let unnamed = tls_channel(
        &app,
        &server_ca,
        Some(&client_ca.client(vec![uri("https://example.org/x")])),
    )
    .await
    .unwrap();

    // Act: no bearer token anywhere but in the last two calls.
    let own = authz(&billing)
        .check(check(BILLING, "billing:read", 0))
        .await;
    let someone_else = authz(&billing)
        .check(check("alice", "billing:read", 0))
        .await;
    let by_dns_own = authz(&by_dns)
        .check(check("reports.prod.svc", "billing:read", 0))
        .await;
    let unnamed_own = authz(&unnamed).check(check("x", "billing:read", 0)).await;
    let no_certificate = authz(&app.channel)
        .check(check(BILLING, "billing:read", 0))
        .await;
    let token_wins = authz(&billing)
        .check(authed(ADMIN, check("alice", "billing:read", 0)))
        .await;
    let bad_token = authz(&billing)
        .check(with_token("not.a.jwt", check(BILLING, "billing:read", 0)))
        .await;

    // Assert
    assert!(
        own.expect("the SPIFFE ID checks itself")
            .into_inner()
            .allowed,
        "{BILLING} holds billing:read through its role"
    );
    let denied = someone_else.expect_err("checking another identity needs warden:checks:run");
    assert_error(&denied, Code::PermissionDenied, "PERMISSION_DENIED");
    assert!(
        !by_dns_own
            .expect("a certificate without a SPIFFE ID names its DNS name")
            .into_inner()
            .allowed
    );
    let unnamed_err = unnamed_own.expect_err("a certificate naming no identity");
    assert_eq!(unnamed_err.code(), Code::Unauthenticated);
    assert!(
        unnamed_err.message().contains("no SPIFFE ID"),
        "{unnamed_err:?}"
    );
    assert_eq!(
        no_certificate.expect_err("no token, no certificate").code(),
        Code::Unauthenticated
    );
    assert!(
        !token_wins
            .expect("the admin's token wins over the certificate")
            .into_inner()
            .allowed
    );
    assert_eq!(
        bad_token.expect_err("a bad token is refused").code(),
        Code::Unauthenticated,
        "a bad token does not fall back to the certificate"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spiffe_certificate_authenticates_its_caller_sqlite() {
    a_spiffe_certificate_authenticates_its_caller(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spiffe_certificate_authenticates_its_caller_postgres() {
    a_spiffe_certificate_authenticates_its_caller(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_stops_on_tls_settings_that_cannot_work_and_names_them() {
    // Arrange
    let ca = Ca::new("server CA");
    let (good, other) = (ca.server(1), ca.server(2));
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cert = file("cert.pem", &good.cert);
    let key = file("key.pem", &good.key);
    let other_key = file("other-key.pem", &other.key);
    let garbage = file("garbage.pem", "not PEM at all");
    let missing = dir.path().join("missing.pem");
    type Case<'a> = (
        &'a str,
        Option<&'a Path>,
        Option<&'a Path>,
        Option<&'a Path>,
        &'a str,
    );
    let cases: [Case<'_>; 7] = [
        (
            "a certificate without a key",
            Some(&cert),
            None,
            None,
            "tls.key_file (WARDEN_TLS_KEY_FILE)",
        ),
        (
            "a key without a certificate",
            None,
            Some(&key),
            None,
            "tls.cert_file (WARDEN_TLS_CERT_FILE)",
        ),
        (
            "a client CA without TLS",
            None,
            None,
            Some(&cert),
            "tls.client_ca_file (WARDEN_TLS_CLIENT_CA_FILE)",
        ),
        (
            "a missing certificate file",
            Some(&missing),
            Some(&key),
            None,
            "tls.cert_file (WARDEN_TLS_CERT_FILE): cannot read",
        ),
        (
            "a certificate file holding a key",
            Some(&key),
            Some(&key),
            None,
            "tls.cert_file (WARDEN_TLS_CERT_FILE)",
        ),
        (
            "a key of another certificate",
            Some(&cert),
            Some(&other_key),
            None,
            "tls.key_file (WARDEN_TLS_KEY_FILE)",
        ),
        (
            "a client CA that is not PEM",
            Some(&cert),
            Some(&key),
            Some(&garbage),
            "tls.client_ca_file (WARDEN_TLS_CLIENT_CA_FILE)",
        ),
    ];
    for (description, cert_file, key_file, client_ca_file, setting) in cases {
        let mut config = test_config(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("warden.db").display()
        ));
        config.tls.cert_file = cert_file.map(Path::to_owned);
        config.tls.key_file = key_file.map(Path::to_owned);
        config.tls.client_ca_file = client_ca_file.map(Path::to_owned);

        // Act
        let err = warden::App::build(config).await.expect_err(description);

        // Assert
        let message = format!("{err:#}");
        assert!(
            message.contains(setting),
            "{description}: the error names {setting}: {message}"
        );
    }
}
