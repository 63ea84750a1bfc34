//! TLS on the gRPC port (rustls with ring): the certificate, its key and the client CA come from
//! PEM files, read again every `tls.reload_interval`, so a renewed certificate reaches new
//! connections without a restart while open connections keep the one they started with. With a
//! client CA, a client may present a certificate, which must chain to it; the identity a verified
//! certificate names travels with every request of its connection for the edge to authenticate
//! by (`auth.rs`). Knows nothing of RPCs, tokens or the database.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpIncoming};

use crate::config::TlsConfig;
use crate::domain::IdentityId;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const CERT: &str = "tls.cert_file (WARDEN_TLS_CERT_FILE)";
const KEY: &str = "tls.key_file (WARDEN_TLS_KEY_FILE)";
const CLIENT_CA: &str = "tls.client_ca_file (WARDEN_TLS_CLIENT_CA_FILE)";

/// The configured files.
#[derive(Debug, Clone)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

/// What the files held when they were read.
#[derive(PartialEq, Eq)]
struct Pem {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The gRPC port's TLS: what new handshakes use, and the files it comes from.
pub struct Tls {
    files: Files,
    reload_interval: Duration,
    alpn: Vec<Vec<u8>>,
    /// The configuration new handshakes take; replaced whole when the files change, so the
    /// certificate, its key and the client CA always come from one reading.
    current: RwLock<Arc<ServerConfig>>,
    /// The files' contents at the last reading, served or refused: a bad file is reported once,
    /// not on every tick, and the next change is tried again.
    seen: Mutex<Pem>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .field("reload_interval", &self.reload_interval)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks the configured files (start-up: an error names the setting and stops
    /// it). `http1`: HTTP/1.1 is offered beside HTTP/2 (gRPC-Web).
    pub fn load(config: &TlsConfig, http1: bool) -> Result<Arc<Self>, String> {
        let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
            return Err(format!("{CERT} and {KEY}: set both to turn TLS on"));
        };
        let files = Files {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: config.client_ca_file.clone(),
        };
        // gRPC clients (grpc-go, grpcurl) insist on negotiating h2.
        let mut alpn = vec![b"h2".to_vec()];
        if http1 {
            alpn.push(b"http/1.1".to_vec());
        }
        let pem = read(&files)?;
        let server = server_config(&pem, &files, &alpn)?;
        tracing::info!(
            certificate = %describe(&pem.cert),
            client_certificates = files.client_ca.is_some(),
            "TLS on the gRPC port"
        );
        Ok(Arc::new(Self {
            files,
            reload_interval: config.reload_interval,
            alpn,
            current: RwLock::new(Arc::new(server)),
            seen: Mutex::new(pem),
        }))
    }

    /// Reads the files again; when they changed and make a working configuration, new
    /// handshakes use it. `Ok(true)`: replaced; `Ok(false)`: nothing new; `Err`: the files
    /// changed but cannot be used, and the configuration in use stays.
    pub fn reload(&self) -> Result<bool, String> {
        let pem = read(&self.files)?;
        let mut seen = self.seen.lock();
        if *seen == pem {
            return Ok(false);
        }
        let outcome = server_config(&pem, &self.files, &self.alpn);
        let certificate = describe(&pem.cert);
        *seen = pem;
        drop(seen);
        *self.current.write() = Arc::new(outcome?);
        tracing::info!(%certificate, "TLS certificate reloaded; new connections use it");
        Ok(true)
    }

    /// Compares the files with what is served every `tls.reload_interval` until the task is
    /// dropped; a change that cannot be used is logged and the configuration in use stays.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(tls.reload_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            // The last problem reported: a file that stays missing is reported once.
            let mut reported: Option<String> = None;
            loop {
                ticks.tick().await;
                let reader = Arc::clone(&tls);
                // File reads block; keep them off the workers that serve calls.
                let problem = match tokio::task::spawn_blocking(move || reader.reload()).await {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e),
                    Err(e) => Some(format!("TLS reload failed: {e}")),
                };
                if let Some(problem) = &problem
                    && reported.as_ref() != Some(problem)
                {
                    tracing::error!(
                        error = %problem,
                        "cannot use the changed TLS files; still serving the previous certificate"
                    );
                }
                reported = problem;
            }
        })
    }

    /// The connections of `tcp` once their handshakes have completed.
    pub fn incoming(self: &Arc<Self>, tcp: TcpIncoming) -> TlsIncoming {
        TlsIncoming {
            tcp,
            tls: Arc::clone(self),
            handshakes: JoinSet::new(),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read()))
    }
}

fn read(files: &Files) -> Result<Pem, String> {
    let read = |setting: &str, path: &Path| {
        std::fs::read(path).map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))
    };
    Ok(Pem {
        cert: read(CERT, &files.cert)?,
        key: read(KEY, &files.key)?,
        client_ca: files
            .client_ca
            .as_deref()
            .map(|path| read(CLIENT_CA, path))
            .transpose()?,
    })
}

/// A rustls configuration from the files' contents; an error names the setting at fault.
fn server_config(pem: &Pem, files: &Files, alpn: &[Vec<u8>]) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&pem.cert, CERT, &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| {
        format!(
            "{KEY}: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            files.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match (&pem.client_ca, &files.client_ca) {
        (Some(ca), Some(path)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, CLIENT_CA, path)? {
                roots.add(cert).map_err(|e| {
                    format!(
                        "{CLIENT_CA}: {} holds an unusable CA certificate: {e}",
                        path.display()
                    )
                })?;
            }
            // A client without a certificate still connects (and authenticates with a bearer
            // token); one that presents a certificate is refused in the handshake unless it
            // chains to these roots.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("{CLIENT_CA}: {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "{KEY}: the key in {} cannot serve the certificate in {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

/// Every certificate of a PEM file; at least one.
fn certificates(
    pem: &[u8],
    setting: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{setting}: {} is not valid PEM: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{setting}: {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(chain)
}

/// The first certificate of a PEM file, for the log: its serial number and expiry.
fn describe(pem: &[u8]) -> String {
    use x509_cert::der::Decode as _;
    let Some(Ok(leaf)) = CertificateDer::pem_slice_iter(pem).next() else {
        return "unreadable".to_owned();
    };
    match x509_cert::Certificate::from_der(&leaf) {
        Ok(cert) => {
            let tbs = &cert.tbs_certificate;
            let expires = tbs.validity.not_after.to_unix_duration().as_secs();
            let expires = i64::try_from(expires)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map_or_else(|| "?".to_owned(), |t| t.to_rfc3339());
            format!("serial {}, expires {expires}", tbs.serial_number)
        }
        Err(_) => "unparsable".to_owned(),
    }
}

/// What a TLS connection's client proved with its certificate. tonic puts it in the extensions
/// of every request of the connection (`Connected`), where the edge reads it.
#[derive(Debug, Clone)]
pub enum ClientIdentity {
    /// No certificate: none was asked for (no client CA), or the client sent none.
    Anonymous,
    /// A certificate that chains to the client CA and names this identity.
    Verified(IdentityId),
    /// A certificate that chains to the client CA but names no identity Warden can use: why.
    Unusable(&'static str),
}

impl ClientIdentity {
    /// The identity a verified client certificate (DER) names: its SPIFFE ID, the `spiffe://`
    /// URI SAN of an X.509-SVID (there must be only one), or, without one, its first DNS SAN.
    /// Other URIs, IP addresses and the subject's CN are not read.
    pub(crate) fn of_certificate(der: &[u8]) -> Self {
        use x509_cert::der::Decode as _;
        use x509_cert::ext::pkix::SubjectAltName;
        use x509_cert::ext::pkix::name::GeneralName;

        let Ok(cert) = x509_cert::Certificate::from_der(der) else {
            return Self::Unusable("the client certificate cannot be parsed");
        };
        let Ok(Some((_, SubjectAltName(names)))) = cert.tbs_certificate.get::<SubjectAltName>()
        else {
            return Self::Unusable(
                "the client certificate has no subject alternative name (SPIFFE ID or DNS name)",
            );
        };
        let mut spiffe = names.iter().filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri)
                if uri.as_str().starts_with("spiffe://") =>
            {
                Some(uri.as_str())
            }
            _ => None,
        });
        let chosen = match (spiffe.next(), spiffe.next()) {
            (Some(_), Some(_)) => {
                return Self::Unusable("the client certificate names more than one SPIFFE ID");
            }
            (Some(id), None) if !is_spiffe_id(id) => {
                return Self::Unusable("the client certificate's SPIFFE ID is malformed");
            }
            (Some(id), None) => id,
            (None, _) => match names.iter().find_map(|name| match name {
                GeneralName::DnsName(dns) => Some(dns.as_str()),
                _ => None,
            }) {
                Some(dns) => dns,
                None => {
                    return Self::Unusable(
                        "the client certificate names no SPIFFE ID (URI SAN) or DNS name",
                    );
                }
            },
        };
        match IdentityId::parse("client certificate", chosen) {
            Ok(id) => Self::Verified(id),
            Err(_) => Self::Unusable(
                "the client certificate's identity is not 1-256 printable characters",
            ),
        }
    }
}

/// `spiffe://trust-domain/path` as the SPIFFE ID standard spells it: a lower-case trust domain of
/// letters, digits, `.`, `-` and `_`, and a path of non-empty segments other than `.` and `..`
/// with letters, digits, `.`, `-` and `_` (no query, fragment, port or user info).
fn is_spiffe_id(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("spiffe://") else {
        return false;
    };
    let (domain, path) = rest
        .split_once('/')
        .map_or((rest, None), |(d, p)| (d, Some(p)));
    let domain_ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let path_ok = path.is_none_or(|path| {
        path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
    });
    domain_ok && path_ok
}

/// A connection of the gRPC port once its TLS handshake completed.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    client: ClientIdentity,
}

impl std::fmt::Debug for TlsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnection")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Connected for TlsConnection {
    type ConnectInfo = ClientIdentity;

    fn connect_info(&self) -> ClientIdentity {
        self.client.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The gRPC port's connections, each yielded once its handshake has completed. Handshakes run
/// in tasks of their own, so a slow or silent client holds up no one else's; dropping the stream
/// (the drain) closes the listener and abandons the handshakes still under way.
pub struct TlsIncoming {
    tcp: TcpIncoming,
    tls: Arc<Tls>,
    handshakes: JoinSet<Option<TlsConnection>>,
}

impl std::fmt::Debug for TlsIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIncoming")
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl TlsIncoming {
    fn start_handshake(&mut self, tcp: TcpStream) {
        // The configuration of the moment: a reload applies from the next handshake on.
        let acceptor = self.tls.acceptor();
        self.handshakes.spawn(async move {
            let peer = tcp.peer_addr().ok();
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    // Plaintext on the TLS port, an untrusted client certificate, no common
                    // protocol: the client hears a TLS alert or a closed connection.
                    tracing::debug!(?peer, error = %e, "TLS handshake refused");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(?peer, "TLS handshake timed out");
                    return None;
                }
            };
            // The verifier has checked the chain by now; only the identity is left to read.
            let client = match stream.get_ref().1.peer_certificates() {
                Some([leaf, ..]) => ClientIdentity::of_certificate(leaf),
                _ => ClientIdentity::Anonymous,
            };
            Some(TlsConnection { stream, client })
        });
    }
}

impl Stream for TlsIncoming {
    type Item = Result<TlsConnection, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Take every connection waiting; tonic's accept loop treats errors as its own do.
        loop {
            match Pin::new(&mut this.tcp).poll_next(cx) {
                Poll::Ready(Some(Ok(tcp))) => this.start_handshake(tcp),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(connection)))) => {
                    return Poll::Ready(Some(Ok(connection)));
                }
                // Refused (logged above), or its task panicked: nothing to serve.
                Poll::Ready(Some(Ok(None) | Err(_))) => {}
                // No handshake under way: the listener's waker is registered.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate naming `sans` (the identity is read after verification, so
    /// who signed it does not matter here).
    fn certificate(sans: &[rcgen::SanType]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans.to_vec();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cn-is-never-read");
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(text: &str) -> rcgen::SanType {
        rcgen::SanType::URI(text.try_into().unwrap())
    }

    fn dns(text: &str) -> rcgen::SanType {
        rcgen::SanType::DnsName(text.try_into().unwrap())
    }

    #[test]
    fn a_certificate_names_its_spiffe_id_else_its_first_dns_name() {
        let named =
            |sans: &[rcgen::SanType]| match ClientIdentity::of_certificate(&certificate(sans)) {
                ClientIdentity::Verified(id) => Ok(id.as_str().to_owned()),
                ClientIdentity::Unusable(why) => Err(why),
                ClientIdentity::Anonymous => Err("anonymous"),
            };
        let spiffe = "spiffe://example.org/ns/prod/sa/billing";
        assert_eq!(
            named(&[
                dns("billing.prod.svc"),
                uri("https://example.org/x"),
                uri(spiffe)
            ]),
            Ok(spiffe.to_owned()),
            "the SPIFFE ID wins over DNS names and other URIs"
        );
        assert_eq!(
            named(&[
                uri("https://example.org/x"),
                dns("a.prod.svc"),
                dns("b.prod.svc")
            ]),
            Ok("a.prod.svc".to_owned()),
            "without a SPIFFE ID, the first DNS name"
        );
        let refused = [
            (
                vec![uri(spiffe), uri("spiffe://example.org/other")],
                "more than one SPIFFE ID",
            ),
            (
                vec![uri("spiffe://Example.org/x"), dns("a.prod.svc")],
                "malformed",
            ),
            (vec![uri("https://example.org/x")], "no SPIFFE ID"),
            (vec![], "no subject alternative name"),
        ];
        for (sans, why) in refused {
            let outcome = named(&sans);
            assert!(
                outcome.as_ref().is_err_and(|e| e.contains(why)),
                "{sans:?}: refused because of {why}, got {outcome:?}"
            );
        }
    }

    #[test]
    fn spiffe_ids_are_read_as_the_standard_spells_them() {
        for good in [
            "spiffe://example.org/ns/prod/sa/billing",
            "spiffe://example.org",
            "spiffe://prod.example-1_x/a.b/c-d_e",
        ] {
            assert!(is_spiffe_id(good), "{good} is a SPIFFE ID");
        }
        for bad in [
            "spiffe://",
            "spiffe://Example.org/a",
            "spiffe://example.org/",
            "spiffe://example.org//a",
            "spiffe://example.org/a/../b",
            "spiffe://example.org/a?b",
            "spiffe://example.org:8443/a",
            "spiffe://user@example.org/a",
            "https://example.org/a",
        ] {
            assert!(!is_spiffe_id(bad), "{bad} is not a SPIFFE ID");
        }
    }
}
