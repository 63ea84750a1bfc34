//! Authentication: every RPC but health and reflection carries a valid bearer JWT, whose `sub`
//! and tenant claim become the `Caller`, or comes over a TLS connection whose client certificate
//! chained to the client CA and names the caller (`tls.rs`). The edge asks, `authenticate`
//! answers.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value};
use tonic::Status;

use crate::config::AuthConfig;
use crate::domain::{Caller, IdentityId, TenantId};

pub(crate) struct Key {
    pub(crate) algorithm: Algorithm,
    pub(crate) kid: Option<String>,
    key: DecodingKey,
}

/// Checks tokens against the configured keys, issuer, audience and clock leeway.
pub struct Verifier {
    /// The HS256 secret, public key files and JWKS file: fixed for the process.
    keys: Vec<Key>,
    /// A JWKS fetched from a URL, if configured.
    remote: Option<super::jwks::RemoteJwks>,
    issuer: Option<String>,
    audience: Option<String>,
    tenant_claim: String,
    default_tenant: TenantId,
    leeway: u64,
    /// Further identity providers (`auth.issuers`), chosen by a token's `iss`.
    others: Vec<OtherIssuer>,
    /// Tokens that verified, until they expire: services reuse one token for many calls, and
    /// the signature check would otherwise run on every Check. Keyed by the whole token, so only
    /// the exact bytes that verified can hit. (hashbrown's default hasher: a token is hashed on
    /// every call, and SipHash over a few hundred bytes shows in a Check profile.)
    verified: RwLock<HashMap<Box<str>, Verified>>,
}

/// A further trusted identity provider: only its keys verify its tokens, for its audience, and
/// its tenant rule places them.
struct OtherIssuer {
    issuer: String,
    audience: String,
    remote: super::jwks::RemoteJwks,
    tenant_claim: Option<String>,
    tenant: Option<TenantId>,
}

/// A verified token's caller and its `exp`.
#[derive(Debug, Clone)]
struct Verified {
    subject: IdentityId,
    tenant: TenantId,
    exp: i64,
}

/// Past this many live tokens the cache is emptied rather than grown.
const VERIFIED_CAPACITY: usize = 16_384;

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("verified", &self.verified.read().len())
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field(
                "others",
                &self.others.iter().map(|o| &o.issuer).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Verifier {
    /// Loads every configured key; an unreadable or unusable key names its setting.
    pub fn from_config(auth: &AuthConfig, default_tenant: TenantId) -> Result<Self, String> {
        let mut keys = Vec::new();
        if let Some(secret) = &auth.hs256_secret {
            keys.push(Key {
                algorithm: Algorithm::HS256,
                kid: None,
                key: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            });
        }
        for path in &auth.public_key_files {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "auth.public_key_files (WARDEN_AUTH_PUBLIC_KEY_FILES): cannot read {}: {e}",
                    path.display()
                )
            })?;
            keys.push(public_key(&pem).ok_or_else(|| {
                format!("auth.public_key_files (WARDEN_AUTH_PUBLIC_KEY_FILES): {} is not an RSA, EC P-256 or Ed25519 public key PEM", path.display())
            })?);
        }
        let ca_pem = auth
            .ca_file
            .as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|e| {
                    format!(
                        "auth.ca_file (WARDEN_AUTH_CA_FILE): cannot read {}: {e}",
                        path.display()
                    )
                })
            })
            .transpose()?;
        let mut remote = None;
        match auth.jwks.as_deref() {
            // The issuer alone: its keys are found by OpenID Connect discovery.
            None if keys.is_empty() && auth.issuer.as_deref().is_some_and(super::jwks::is_url) => {
                let issuer = auth.issuer.as_deref().unwrap_or_default();
                remote = Some(super::jwks::RemoteJwks::discover(
                    issuer,
                    ca_pem.as_deref(),
                )?);
            }
            None => {}
            Some(url) if super::jwks::is_url(url) => {
                remote = Some(super::jwks::RemoteJwks::with_ca(url, ca_pem.as_deref())?);
            }
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("auth.jwks (WARDEN_AUTH_JWKS): cannot read {path}: {e}")
                })?;
                let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                    format!("auth.jwks (WARDEN_AUTH_JWKS): not a JWKS document: {e}")
                })?;
                keys.extend(jwks_keys(&set, "auth.jwks (WARDEN_AUTH_JWKS)")?);
            }
        }
        let mut others = Vec::with_capacity(auth.issuers.len());
        for (i, other) in auth.issuers.iter().enumerate() {
            let at = format!("auth.issuers[{i}] (WARDEN_AUTH_ISSUERS)");
            let ca = other
                .ca_file
                .as_ref()
                .map(|path| {
                    std::fs::read(path)
                        .map_err(|e| format!("{at}: cannot read ca_file {}: {e}", path.display()))
                })
                .transpose()?;
            let remote = match &other.jwks {
                Some(url) => super::jwks::RemoteJwks::with_ca(url, ca.as_deref()),
                None => super::jwks::RemoteJwks::discover(&other.issuer, ca.as_deref()),
            }
            .map_err(|e| format!("{at}: {e}"))?;
            others.push(OtherIssuer {
                issuer: other.issuer.clone(),
                audience: other.audience.clone(),
                remote,
                tenant_claim: other.tenant_claim.clone(),
                tenant: other
                    .tenant
                    .as_deref()
                    .map(TenantId::parse)
                    .transpose()
                    .map_err(|_| format!("{at}: tenant is not a tenant id"))?,
            });
        }
        Ok(Self {
            keys,
            remote,
            others,
            issuer: auth.issuer.clone().filter(|s| !s.is_empty()),
            audience: auth.audience.clone().filter(|s| !s.is_empty()),
            tenant_claim: auth.tenant_claim.clone(),
            default_tenant,
            leeway: auth.leeway_seconds,
            verified: RwLock::new(HashMap::new()),
        })
    }

    /// The caller a token proves, or UNAUTHENTICATED saying what is wrong (never echoing keys).
    /// Waits only when the token names a key id a JWKS URL may have gained since its last fetch.
    pub async fn verify(&self, token: &str) -> Result<(IdentityId, TenantId), Status> {
        match self.verify_now(token) {
            Err(Unverified::UnknownKeyId(of)) => {
                let remote = match of {
                    Some(i) => self.others.get(i).map(|o| &o.remote),
                    None => self.remote.as_ref(),
                };
                // Boxed: the HTTP fetch's future would otherwise bloat every call's future.
                if let Some(remote) = remote
                    && Box::pin(remote.fetch_for_unknown_kid()).await
                {
                    // Tokens of a withdrawn key must not live on in the cache.
                    self.verified.write().clear();
                }
                self.verify_now(token).map_err(Unverified::into_status)
            }
            other => other.map_err(Unverified::into_status),
        }
    }

    /// Fetches the JWKS URL's keys, if one is configured (start-up: an error stops it).
    pub async fn load_remote_keys(&self) -> Result<(), String> {
        for (i, other) in self.others.iter().enumerate() {
            other
                .remote
                .fetch()
                .await
                .map_err(|e| format!("auth.issuers[{i}] ({}): {e}", other.issuer))?;
        }
        match &self.remote {
            Some(remote) if remote.is_discovery() => remote.fetch().await.map(drop).map_err(|e| {
                format!(
                    "{e}; with no key configured (WARDEN_AUTH_HS256_SECRET, \
                     WARDEN_AUTH_PUBLIC_KEY_FILES, WARDEN_AUTH_JWKS) the keys are discovered \
                     from WARDEN_AUTH_ISSUER"
                )
            }),
            Some(remote) => remote.fetch().await.map(drop),
            None => Ok(()),
        }
    }

    /// Fetches the JWKS URL's keys every `jwks::REFRESH_EVERY` until the task is dropped; a failed
    /// fetch keeps the keys and is logged.
    pub fn refresh_remote_keys(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.remote.is_none() && self.others.is_empty() {
            return None;
        }
        let verifier = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(super::jwks::REFRESH_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let remotes = verifier
                    .remote
                    .iter()
                    .chain(verifier.others.iter().map(|o| &o.remote));
                for remote in remotes {
                    match remote.fetch().await {
                        Ok(true) => verifier.verified.write().clear(),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot refresh the JWKS"),
                    }
                }
            }
        }))
    }

    /// `verify` without fetching keys.
    fn verify_now(&self, token: &str) -> Result<(IdentityId, TenantId), Unverified> {
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX / 4);
        // Same rule as the full check: expired once `exp` is more than the leeway in the past.
        if let Some(hit) = self.verified.read().get(token)
            && now <= hit.exp.saturating_add(leeway)
        {
            return Ok((hit.subject.clone(), hit.tenant.clone()));
        }
        let (subject, tenant, exp) = self.verify_signature(token)?;
        let mut cache = self.verified.write();
        if cache.len() >= VERIFIED_CAPACITY {
            cache.retain(|_, v| now <= v.exp.saturating_add(leeway));
            if cache.len() >= VERIFIED_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            token.into(),
            Verified {
                subject: subject.clone(),
                tenant: tenant.clone(),
                exp,
            },
        );
        Ok((subject, tenant))
    }

    fn verify_signature(&self, token: &str) -> Result<(IdentityId, TenantId, i64), Unverified> {
        // decode_header refuses `alg: none` and unknown algorithms outright.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Status::unauthenticated("malformed bearer token"))?;
        if !self.others.is_empty()
            && let Some(iss) = unverified_issuer(token)
            && let Some(at) = self.others.iter().position(|o| o.issuer == iss)
        {
            return self.verify_other(token, &header, at);
        }
        let remote = self.remote.as_ref().map(super::jwks::RemoteJwks::keys);
        // Only keys made for the header's algorithm are tried, so an RSA public key can never
        // be used as an HMAC secret (algorithm confusion).
        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .chain(remote.iter().flat_map(|keys| keys.iter()))
            .filter(|k| {
                k.algorithm == header.alg
                    && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
            })
            .collect();
        if candidates.is_empty() && header.kid.is_some() && remote.is_some() {
            return Err(Unverified::UnknownKeyId(None));
        }
        let mut last = Status::unauthenticated(
            "token is signed with an algorithm or key Warden does not accept",
        );
        for key in candidates {
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = self.leeway;
            validation.validate_nbf = true;
            validation.validate_exp = true;
            let mut required = vec!["exp", "sub"];
            match &self.issuer {
                Some(iss) => {
                    validation.set_issuer(&[iss]);
                    required.push("iss");
                }
                None => validation.iss = None,
            }
            match &self.audience {
                Some(aud) => {
                    validation.set_audience(&[aud]);
                    required.push("aud");
                }
                None => validation.validate_aud = false,
            }
            validation.set_required_spec_claims(&required);
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    let (subject, tenant) = self.caller_of(&data.claims)?;
                    let exp = data.claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
                    return Ok((subject, tenant, exp));
                }
                Err(e) => last = Status::unauthenticated(describe(&e)),
            }
        }
        Err(last.into())
    }

    fn caller_of(&self, claims: &Map<String, Value>) -> Result<(IdentityId, TenantId), Status> {
        self.caller_with_claim(claims, &self.tenant_claim)
    }

    /// A token of the further issuer `at`: its keys only, its audience required, its tenant
    /// rule.
    fn verify_other(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        at: usize,
    ) -> Result<(IdentityId, TenantId, i64), Unverified> {
        let other = &self.others[at];
        let keys = other.remote.keys();
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| {
                k.algorithm == header.alg
                    && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
            })
            .collect();
        if candidates.is_empty() && header.kid.is_some() {
            return Err(Unverified::UnknownKeyId(Some(at)));
        }
        let mut last = Status::unauthenticated(
            "token is signed with an algorithm or key Warden does not accept",
        );
        for key in candidates {
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = self.leeway;
            validation.validate_nbf = true;
            validation.validate_exp = true;
            validation.set_issuer(&[&other.issuer]);
            validation.set_audience(&[&other.audience]);
            validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    let (subject, mut tenant) = self.caller_with_claim(
                        &data.claims,
                        other.tenant_claim.as_deref().unwrap_or(""),
                    )?;
                    if let Some(fixed) = &other.tenant {
                        tenant = fixed.clone();
                    }
                    let exp = data.claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
                    return Ok((subject, tenant, exp));
                }
                Err(e) => last = Status::unauthenticated(describe(&e)),
            }
        }
        Err(last.into())
    }

    /// The token's subject, and its tenant from `claim` (empty: none, the default tenant). A
    /// present but malformed tenant claim is refused: falling back to the default tenant would
    /// hand a token meant for another tenant the default tenant's data.
    fn caller_with_claim(
        &self,
        claims: &Map<String, Value>,
        claim: &str,
    ) -> Result<(IdentityId, TenantId), Status> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| IdentityId::parse("sub", s).ok())
            .ok_or_else(|| {
                Status::unauthenticated("token `sub` must be 1-256 printable characters")
            })?;
        let tenant = match claims.get(claim).filter(|_| !claim.is_empty()) {
            None => self.default_tenant.clone(),
            Some(Value::String(t)) => TenantId::parse(t).map_err(|_| {
                Status::unauthenticated(format!("token claim `{claim}` is not a valid tenant id"))
            })?,
            Some(_) => {
                return Err(Status::unauthenticated(format!(
                    "token claim `{claim}` must be a string"
                )));
            }
        };
        Ok((subject, tenant))
    }
}

/// The `iss` a token claims, read without verifying anything: only to choose which provider's
/// keys verify it (the chosen provider's issuer is then required by the verification itself).
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Why a token did not verify.
#[derive(Debug)]
enum Unverified {
    /// It names a key id no configured key has; a JWKS URL may have gained it since (the
    /// primary provider's, or that of `auth.issuers[i]`).
    UnknownKeyId(Option<usize>),
    Refused(Status),
}

impl From<Status> for Unverified {
    fn from(status: Status) -> Self {
        Self::Refused(status)
    }
}

impl Unverified {
    fn into_status(self) -> Status {
        match self {
            Self::UnknownKeyId(_) => {
                Status::unauthenticated("token is signed with a key id Warden does not know")
            }
            Self::Refused(status) => status,
        }
    }
}

/// The asymmetric keys of a JWKS document; every key needs its `alg`.
pub(crate) fn jwks_keys(set: &JwkSet, setting: &str) -> Result<Vec<Key>, String> {
    set.keys
        .iter()
        .map(|jwk| {
            let algorithm = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok())
                .ok_or_else(|| format!("{setting}: every key needs an `alg`"))?;
            if matches!(
                algorithm,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            ) {
                return Err(format!(
                    "{setting}: symmetric keys are not accepted from a JWKS"
                ));
            }
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| format!("{setting}: unusable key: {e}"))?;
            Ok(Key {
                algorithm,
                kid: jwk.common.key_id.clone(),
                key,
            })
        })
        .collect()
}

fn describe(err: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "token has expired",
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf)",
        ErrorKind::InvalidIssuer => "token issuer is not accepted",
        ErrorKind::InvalidAudience => "token audience is not accepted",
        ErrorKind::InvalidSignature => "token signature does not verify",
        ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (exp, sub, iss, aud)",
        _ => "token is invalid",
    }
}

fn public_key(pem: &[u8]) -> Option<Key> {
    // Each constructor checks the PEM's key type, so at most one of them accepts it.
    let (algorithm, key) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        (Algorithm::RS256, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        (Algorithm::ES256, key)
    } else {
        (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem).ok()?)
    };
    Some(Key {
        algorithm,
        kid: None,
        key,
    })
}

/// Mints an HS256 token (`warden token`, `serve --dev`, tests).
pub fn mint_hs256(
    secret: &str,
    subject: &str,
    tenant: Option<&str>,
    tenant_claim: &str,
    issuer: Option<&str>,
    audience: Option<&str>,
    ttl: std::time::Duration,
) -> Result<String, String> {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert("sub".into(), subject.into());
    claims.insert("iat".into(), now.into());
    claims.insert("nbf".into(), now.into());
    claims.insert(
        "exp".into(),
        (now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2)).into(),
    );
    if let Some(t) = tenant {
        claims.insert(tenant_claim.into(), t.into());
    }
    if let Some(iss) = issuer {
        claims.insert("iss".into(), iss.into());
    }
    if let Some(aud) = audience {
        claims.insert("aud".into(), aud.into());
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// The largest bearer token accepted: a JWT with ordinary claims is well under 2 KiB.
pub(super) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The caller of a request to `path` with these headers and extensions, with its trace id: the
/// subject of its bearer token, verified; without a token, the identity its connection's client
/// certificate names, in the default tenant. A token wins over a certificate: a bad token is
/// refused even on a connection with a good certificate.
pub(super) async fn authenticate(
    verifier: &Verifier,
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
    path: &str,
    request_id: String,
) -> Result<Caller, Status> {
    let Some(header) = headers.get(http::header::AUTHORIZATION) else {
        let subject = match extensions.get::<super::ClientIdentity>() {
            Some(super::ClientIdentity::Verified(identity)) => identity.clone(),
            Some(super::ClientIdentity::Unusable(why)) => {
                return Err(Status::unauthenticated(format!(
                    "{why}; send `authorization: Bearer <token>` metadata instead"
                )));
            }
            Some(super::ClientIdentity::Anonymous) | None => {
                return Err(Status::unauthenticated(
                    "missing `authorization: Bearer <token>` metadata",
                ));
            }
        };
        return Ok(Caller {
            subject,
            tenant: verifier.default_tenant.clone(),
            request_id,
            rpc: path.to_owned(),
            trace_id: trace_id(headers),
        });
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Status::unauthenticated("authorization metadata must be `Bearer <token>`")
        })?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Status::unauthenticated(format!(
            "the bearer token is larger than {} KiB",
            MAX_TOKEN_BYTES / 1024
        )));
    }
    let (subject, tenant) = verifier.verify(token).await?;
    Ok(Caller {
        subject,
        tenant,
        request_id,
        rpc: path.to_owned(),
        trace_id: trace_id(headers),
    })
}

const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// The trace id of a W3C `traceparent` header, if one was sent.
fn trace_id(headers: &http::HeaderMap) -> String {
    headers
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        let auth = AuthConfig {
            hs256_secret: Some("unit-test-secret-with-at-least-32-bytes".to_owned().into()),
            leeway_seconds: 0,
            ..AuthConfig::default()
        };
        Verifier::from_config(&auth, TenantId::parse("default").unwrap()).unwrap()
    }

    fn token(exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"sub": "alice", "exp": now + exp_in});
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"unit-test-secret-with-at-least-32-bytes"),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_verified_token_is_served_from_the_cache_until_it_expires() {
        let v = verifier();
        let live = token(600);
        assert_eq!(v.verify(&live).await.unwrap().0.as_str(), "alice");
        assert_eq!(v.verified.read().len(), 1);
        // A cached entry past its exp is not trusted: the token is checked again and refused.
        let expired = token(-60);
        v.verified.write().insert(
            expired.as_str().into(),
            Verified {
                subject: IdentityId::parse("sub", "alice").unwrap(),
                tenant: TenantId::parse("default").unwrap(),
                exp: chrono::Utc::now().timestamp() - 60,
            },
        );
        assert_eq!(
            v.verify(&expired).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // A token differing in one byte of its signature never hits the cache.
        let mut forged = live.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            v.verify(&forged).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
}
