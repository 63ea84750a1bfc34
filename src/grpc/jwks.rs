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
    /// An empty set for `url`: HTTPS, or plain HTTP to a loopback address only (keys fetched in
    /// clear text could be swapped by anyone on the path).
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("{SETTING}: not a URL: {e}"))?;
        let loopback = url.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "{SETTING}: a JWKS URL must be https:// (plain http only to a loopback address)"
                ));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("{SETTING}: cannot build the HTTP client: {e}"))?;
        Ok(Self {
            url,
            client,
            keys: RwLock::new(Arc::from(Vec::new())),
            document: RwLock::new(None),
            unknown_kid_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The keys of the last successful fetch.
    pub(crate) fn keys(&self) -> Arc<[Key]> {
        Arc::clone(&self.keys.read())
    }

    /// Fetches the set and replaces the keys; true if they changed. On failure the keys stay.
    pub(crate) async fn fetch(&self) -> Result<bool, String> {
        let set = self.download().await?;
        let keys = jwks_keys(&set, SETTING)?;
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
        let fail = |e: &dyn std::fmt::Display| format!("{SETTING}: cannot fetch {}: {e}", self.url);
        let mut response = self
            .client
            .get(self.url.clone())
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
        serde_json::from_slice(&body).map_err(|e| fail(&format_args!("not a JWKS document: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(RemoteJwks::new("https://idp.example.com/.well-known/jwks.json").is_ok());
        assert!(RemoteJwks::new("http://127.0.0.1:8080/jwks").is_ok());
        assert!(RemoteJwks::new("http://localhost/jwks").is_ok());
        assert!(RemoteJwks::new("http://[::1]/jwks").is_ok());
        for bad in [
            "http://idp.example.com/jwks",
            "ftp://127.0.0.1/jwks",
            "https://",
        ] {
            assert!(RemoteJwks::new(bad).is_err(), "{bad} was accepted");
        }
    }
}
