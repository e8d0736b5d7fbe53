//! Bearer JWTs from an OAuth 2.1 authorization server: signature, issuer, audience, time, and the
//! claims that make a principal.
//!
//! Keys come from a JWKS URL (cached; refetched when stale, or when a token names a key not seen
//! yet, at most once per `jwks_refetch_interval`) or a JWKS file. Only asymmetric algorithms are
//! accepted, and only the algorithms a key is for: a token cannot pick HS256 and have the public
//! key used as an HMAC secret, and `alg: none` does not parse.

use crate::config::{JwtAlgorithm, OAuthSection};
use crate::error::GatewayError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use warden_policy::{Authority, Principal, PrincipalClass};

/// Largest token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Most roles or scopes taken from a token, and the longest one.
const MAX_LIST: usize = 128;
const MAX_CLAIM_CHARS: usize = 512;

/// Why a token was refused. The text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRefused(pub String);

struct KeyEntry {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

struct KeySet {
    keys: Vec<KeyEntry>,
    fetched: Option<Instant>,
}

enum KeySource {
    Url { url: String, client: reqwest::Client },
    File(PathBuf),
}

/// Validates bearer JWTs for one issuer and audience.
pub struct JwtValidator {
    issuer: String,
    audience: String,
    allowed: Vec<Algorithm>,
    leeway: u64,
    source: KeySource,
    keys: RwLock<Arc<KeySet>>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
    ttl: Duration,
    refetch_interval: Duration,
    tenant_claim: String,
    roles_claim: String,
    client_id_claim: String,
    admin_subjects: Vec<String>,
    service_subjects: Vec<String>,
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

fn key_algorithm(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

impl JwtValidator {
    /// A validator for `audience` (the gateway's resource URI). Relative `jwks_file` paths are
    /// resolved by the caller.
    /// The JWKS URL is fetched through `egress`, the policy of the gateway's own connections.
    pub fn new(
        o: &OAuthSection,
        audience: &str,
        jwks_file: Option<PathBuf>,
        egress: &warden_upstream::egress::Policy,
    ) -> Result<JwtValidator, GatewayError> {
        let source = match (&o.jwks_url, jwks_file) {
            (Some(url), _) => KeySource::Url {
                url: url.clone(),
                client: egress
                    .client(url)
                    .map_err(|why| GatewayError::Keys(format!("the JWKS URL is refused by the egress guard: {why}")))?
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| GatewayError::Keys(format!("the HTTP client for the JWKS could not be built: {e}")))?,
            },
            (None, Some(path)) => KeySource::File(path),
            (None, None) => return Err(GatewayError::Config("auth.oauth: set jwks_url or jwks_file".into())),
        };
        Ok(JwtValidator {
            issuer: o.issuer.clone(),
            audience: audience.to_owned(),
            allowed: o.algorithms.iter().map(|a| algorithm(*a)).collect(),
            leeway: o.leeway.0.as_secs(),
            source,
            keys: RwLock::new(Arc::new(KeySet { keys: vec![], fetched: None })),
            refresh: tokio::sync::Mutex::new(None),
            ttl: o.jwks_cache_ttl.0,
            refetch_interval: o.jwks_refetch_interval.0,
            tenant_claim: o.tenant_claim.clone(),
            roles_claim: o.roles_claim.clone(),
            client_id_claim: o.client_id_claim.clone(),
            admin_subjects: o.admin_subjects.clone(),
            service_subjects: o.service_subjects.clone(),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Loads the keys now (at start-up, and on reload). Errors are reported, and the keys held
    /// so far stay in use.
    pub async fn load_keys(&self) -> Result<usize, GatewayError> {
        let mut last = self.refresh.lock().await;
        self.fetch_locked(&mut last).await
    }

    async fn fetch_locked(&self, last: &mut Option<Instant>) -> Result<usize, GatewayError> {
        *last = Some(Instant::now());
        let text = match &self.source {
            KeySource::Url { url, client } => fetch(client, url).await.map_err(GatewayError::Keys)?,
            KeySource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| GatewayError::Keys(format!("the JWKS file cannot be read ({})", e.kind())))?,
        };
        let keys = parse_jwks(&text, &self.allowed).map_err(GatewayError::Keys)?;
        let n = keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(KeySet { keys, fetched: Some(Instant::now()) });
        Ok(n)
    }

    /// Refetches the keys if they are stale (or, for an unknown key id, if the last fetch was
    /// longer ago than the refetch interval). Concurrent callers share one fetch.
    async fn refresh(&self, unknown_kid: bool) {
        let mut last = self.refresh.lock().await;
        let set = self.current();
        let stale = set.fetched.is_none_or(|t| t.elapsed() >= self.ttl);
        let may_refetch = last.is_none_or(|t| t.elapsed() >= self.refetch_interval);
        if (stale || unknown_kid) && may_refetch {
            match self.fetch_locked(&mut last).await {
                Ok(n) => tracing::info!(keys = n, "fetched the issuer's signing keys"),
                Err(e) => tracing::warn!("could not fetch the issuer's signing keys: {e}"),
            }
        }
    }

    /// Validates a token and returns its principal.
    pub async fn validate(&self, token: &str) -> Result<Principal, TokenRefused> {
        let claims = self.verify(token, &self.audience).await?;
        self.principal(&claims)
    }

    /// Validates an OpenID Connect ID token issued to `client_id` for the sign-in that sent
    /// `nonce` (OpenID Connect Core 3.1.3.7), and returns its principal: the same subject rules
    /// make an admin as for bearer tokens.
    pub async fn validate_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<Principal, TokenRefused> {
        let claims = self.verify(token, client_id).await?;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(TokenRefused("the ID token is not for this sign-in (nonce)".into()));
        }
        // An authorized party, when named, must be this client; several audiences need one.
        let azp = claims.get("azp");
        let several = matches!(claims.get("aud"), Some(Value::Array(a)) if a.len() > 1);
        if (azp.is_some() || several) && azp.and_then(Value::as_str) != Some(client_id) {
            return Err(TokenRefused("the ID token was issued to another client (azp)".into()));
        }
        self.principal(&claims)
    }

    /// The claims of a token signed by the issuer for `audience`, valid now.
    async fn verify(&self, token: &str, audience: &str) -> Result<Map<String, Value>, TokenRefused> {
        let refuse = |s: &str| TokenRefused(s.to_owned());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse("the token is too large"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("the token's header is not valid"))?;
        if !self.allowed.contains(&header.alg) {
            return Err(refuse("the token's signature algorithm is not accepted"));
        }
        if self.current().fetched.is_none_or(|t| t.elapsed() >= self.ttl) {
            self.refresh(false).await;
        }
        let mut set = self.current();
        let mut entry = find_key(&set, header.kid.as_deref(), header.alg);
        if entry.is_none() && header.kid.is_some() {
            self.refresh(true).await;
            set = self.current();
            entry = find_key(&set, header.kid.as_deref(), header.alg);
        }
        let Some(entry) = entry else {
            return Err(refuse(if header.kid.is_some() {
                "the token is signed with a key the issuer does not publish"
            } else {
                "the token names no key (kid) and no single key fits it"
            }));
        };
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &entry.key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            refuse(match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::ImmatureSignature => "the token is not valid yet",
                K::InvalidAudience => "the token is not for this resource (audience)",
                K::InvalidIssuer => "the token is from another issuer",
                K::InvalidSignature => "the token's signature does not verify",
                K::MissingRequiredClaim(_) => "the token lacks a required claim (exp, iss, aud, sub)",
                K::InvalidAlgorithm => "the token's algorithm does not fit its key",
                _ => "the token is not valid",
            })
        })?;
        Ok(data.claims)
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, TokenRefused> {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.chars().count() <= MAX_CLAIM_CHARS)
                .map(str::to_owned)
        };
        let subject = text(claims.get("sub")).ok_or_else(|| TokenRefused("the token's subject is not valid".into()))?;
        let class = if self.admin_subjects.contains(&subject) {
            PrincipalClass::Admin
        } else if self.service_subjects.contains(&subject) {
            PrincipalClass::Service
        } else {
            PrincipalClass::User
        };
        let mut p = Principal::new(subject, class);
        p.authority = Authority::OAuth;
        p.tenant = text(claims.get(&self.tenant_claim));
        p.client_id = text(claims.get(&self.client_id_claim)).or_else(|| text(claims.get("azp")));
        p.roles = list(claims.get(&self.roles_claim));
        p.scopes = list(claims.get("scope"));
        if p.scopes.is_empty() {
            p.scopes = list(claims.get("scp"));
        }
        Ok(p)
    }
}

fn find_key<'a>(set: &'a KeySet, kid: Option<&str>, alg: Algorithm) -> Option<&'a KeyEntry> {
    let fits = |k: &&KeyEntry| k.algorithms.contains(&alg);
    match kid {
        Some(kid) => set.keys.iter().filter(fits).find(|k| k.kid.as_deref() == Some(kid)),
        None => {
            let mut candidates = set.keys.iter().filter(fits);
            let only = candidates.next();
            if candidates.next().is_some() { None } else { only }
        }
    }
}

/// A claim holding a list: an array of strings or a space-separated string.
fn list(v: Option<&Value>) -> Vec<String> {
    let items: Vec<String> = match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => vec![],
    };
    items.into_iter().filter(|s| !s.is_empty() && s.chars().count() <= MAX_CLAIM_CHARS).take(MAX_LIST).collect()
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let mut resp = client.get(url).send().await.map_err(|e| match warden_upstream::egress::refusal(&e) {
        Some(why) => format!("the JWKS request was {why}"),
        None => format!("the JWKS request failed: {e}"),
    })?;
    if !resp.status().is_success() {
        return Err(format!("the JWKS URL answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading the JWKS failed: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err("the JWKS is too large".into());
        }
    }
    String::from_utf8(body).map_err(|_| "the JWKS is not UTF-8".into())
}

/// Reads the signing keys of a JWKS document that fit the allowed algorithms. Keys of other
/// kinds (encryption keys, symmetric keys, unknown types) are skipped.
fn parse_jwks(text: &str, allowed: &[Algorithm]) -> Result<Vec<KeyEntry>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|_| "the JWKS is not JSON".to_owned())?;
    let keys = doc.get("keys").and_then(Value::as_array).ok_or("the JWKS has no keys array")?;
    let mut out = Vec::new();
    for raw in keys.iter().take(256) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let family: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => {
                vec![
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                ]
            }
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => continue,
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => continue,
        };
        let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
            Some(a) => key_algorithm(a).filter(|a| family.contains(a)).into_iter().collect(),
            None => family,
        };
        let algorithms: Vec<Algorithm> = algorithms.into_iter().filter(|a| allowed.contains(a)).collect();
        if algorithms.is_empty() {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        out.push(KeyEntry { kid: jwk.common.key_id.clone(), key, algorithms });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_claims_are_bounded() {
        assert_eq!(list(Some(&json!("a b  c"))), vec!["a", "b", "c"]);
        assert_eq!(list(Some(&json!(["a", 1, "b"]))), vec!["a", "b"]);
        assert_eq!(list(Some(&json!({"a": 1}))), Vec::<String>::new());
        assert_eq!(list(Some(&Value::String("x ".repeat(1000)))).len(), MAX_LIST);
    }

    #[test]
    fn symmetric_and_unknown_keys_are_skipped() {
        let jwks = json!({ "keys": [
            { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" },
            { "kty": "weird", "kid": "x" },
            { "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed" },
            { "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "enc", "use": "enc" },
        ]});
        let keys = parse_jwks(&jwks.to_string(), &[Algorithm::EdDSA, Algorithm::RS256]).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ed"));
        assert!(parse_jwks(&jwks.to_string(), &[Algorithm::RS256]).unwrap().is_empty(), "only allowed algorithms");
        assert!(parse_jwks("{}", &[Algorithm::RS256]).is_err());
    }
}
