//! Token keys from a JWKS URL (API.md: "a JWKS (file or URL, cached, refreshed on unknown
//! `kid`)"): fetched at start-up, again when a token names a key id the set lacks (at most once
//! per `UNKNOWN_KID_REFETCH`, so forged ids cannot turn Warden into a load generator against the
//! identity provider), and every `REFRESH_EVERY` so that a withdrawn key stops verifying.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use parking_lot::RwLock;

use super::auth::{Key, jwks_keys};

/// The least time between two fetches caused by unknown key ids.
pub(crate) const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);
/// How often the set is fetched anyway.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// A JWKS document larger than this is refused (real ones are a few KiB).
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const SETTING: &str = "auth.jwks (WARDEN_AUTH_JWKS)";

pub(crate) struct RemoteJwks {
    url: reqwest::Url,
    /// Set when `url` is an OpenID provider's discovery document rather than the JWKS itself:
    /// the issuer it must name. The JWKS URL is read from it on every fetch.
    discover_issuer: Option<String>,
    client: reqwest::Client,
    keys: RwLock<Arc<[Key]>>,
    /// The document the keys came from, to tell whether a fetch changed anything.
    document: RwLock<Option<JwkSet>>,
    /// Serialises fetches; when the last fetch for an unknown key id started.
    unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url.as_str())
            .field("keys", &self.keys.read().len())
            .finish()
    }
}

/// Whether `setting` names a URL rather than a file.
pub(crate) fn is_url(setting: &str) -> bool {
    setting.starts_with("https://") || setting.starts_with("http://")
}

impl RemoteJwks {
    /// Keys found through OpenID Connect discovery: `{issuer}/.well-known/openid-configuration`
    /// names the JWKS URL. `ca_pem`: extra trusted roots (a private CA), PEM.
    pub(crate) fn discover(issuer: &str, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let base = issuer.trim_end_matches('/');
        let url = checked_url(
            &format!("{base}/.well-known/openid-configuration"),
            "auth.issuer (WARDEN_AUTH_ISSUER)",
        )?;
        Self::build(url, Some(issuer.to_owned()), ca_pem)
    }

    /// An empty set for the JWKS at `url` (HTTPS, or plain HTTP to a loopback address only),
    /// fetched trusting the public roots and `ca_pem`'s.
    pub(crate) fn with_ca(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        Self::build(checked_url(url, SETTING)?, None, ca_pem)
    }

    fn build(
        url: reqwest::Url,
        discover_issuer: Option<String>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3));
        if let Some(pem) = ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                format!("auth.ca_file (WARDEN_AUTH_CA_FILE): not PEM certificates: {e}")
            })?;
            if roots.is_empty() {
                return Err(
                    "auth.ca_file (WARDEN_AUTH_CA_FILE): no certificate in the file".into(),
                );
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("{SETTING}: cannot build the HTTP client: {e}"))?;
        Ok(Self {
            url,
            discover_issuer,
            client,
            keys: RwLock::new(Arc::from(Vec::new())),
            document: RwLock::new(None),
            unknown_kid_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// True when the keys are found through the issuer's discovery document.
    pub(crate) fn is_discovery(&self) -> bool {
        self.discover_issuer.is_some()
    }

    /// The setting errors name.
    fn setting(&self) -> &'static str {
        if self.is_discovery() {
            "auth.issuer (WARDEN_AUTH_ISSUER)"
        } else {
            SETTING
        }
    }

    /// The keys of the last successful fetch.
    pub(crate) fn keys(&self) -> Arc<[Key]> {
        Arc::clone(&self.keys.read())
    }

    /// Fetches the set and replaces the keys; true if they changed. On failure the keys stay.
    pub(crate) async fn fetch(&self) -> Result<bool, String> {
        let set = self.download().await?;
        let keys = jwks_keys(&set, self.setting())?;
        let mut document = self.document.write();
        if document.as_ref() == Some(&set) {
            return Ok(false);
        }
        *self.keys.write() = Arc::from(keys);
        *document = Some(set);
        Ok(true)
    }

    /// A fetch because a token named an unknown key id, unless one ran in the last
    /// `UNKNOWN_KID_REFETCH`; true if the keys changed. Concurrent callers wait for one fetch.
    pub(crate) async fn fetch_for_unknown_kid(&self) -> bool {
        let mut last = self.unknown_kid_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFETCH) {
            return false;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the JWKS for an unknown key id");
                false
            }
        }
    }

    async fn download(&self) -> Result<JwkSet, String> {
        let url = match &self.discover_issuer {
            None => self.url.clone(),
            Some(issuer) => self.jwks_uri(issuer).await?,
        };
        let body = self.get(&url).await?;
        serde_json::from_slice(&body).map_err(|e| {
            format!(
                "{}: cannot fetch {url}: not a JWKS document: {e}",
                self.setting()
            )
        })
    }

    /// The JWKS URL the provider's discovery document names; it must name `issuer` exactly
    /// (OpenID Connect Discovery 1.0, section 4.3).
    async fn jwks_uri(&self, issuer: &str) -> Result<reqwest::Url, String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let body = self.get(&self.url).await?;
        let found: Discovery = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "auth.issuer (WARDEN_AUTH_ISSUER): {} is not an OpenID provider configuration: {e}",
                self.url
            )
        })?;
        if found.issuer != issuer {
            return Err(format!(
                "auth.issuer (WARDEN_AUTH_ISSUER): the provider says its issuer is {:?}, not {issuer:?}",
                found.issuer
            ));
        }
        checked_url(
            &found.jwks_uri,
            "jwks_uri of the OpenID provider configuration",
        )
    }

    /// The body of a GET of `url`, at most `MAX_DOCUMENT_BYTES`.
    async fn get(&self, url: &reqwest::Url) -> Result<Vec<u8>, String> {
        let setting = self.setting();
        let fail = |e: &dyn std::fmt::Display| format!("{setting}: cannot fetch {url}: {e}");
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(&e))?;
        if !response.status().is_success() {
            return Err(fail(&format_args!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(&e))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(fail(&"the document is larger than 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// `url` parsed, if it is HTTPS (or plain HTTP to a loopback address only: keys fetched in clear
/// text could be swapped by anyone on the path).
fn checked_url(url: &str, setting: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(url).map_err(|e| format!("{setting}: not a URL: {e}"))?;
    let loopback = url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{setting}: must be https:// (plain http only to a loopback address)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(RemoteJwks::with_ca("https://idp.example.com/.well-known/jwks.json", None).is_ok());
        assert!(RemoteJwks::with_ca("http://127.0.0.1:8080/jwks", None).is_ok());
        assert!(RemoteJwks::with_ca("http://localhost/jwks", None).is_ok());
        assert!(RemoteJwks::with_ca("http://[::1]/jwks", None).is_ok());
        for bad in [
            "http://idp.example.com/jwks",
            "ftp://127.0.0.1/jwks",
            "https://",
        ] {
            assert!(
                RemoteJwks::with_ca(bad, None).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
