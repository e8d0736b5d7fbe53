//! Authentication on the HTTP front: who is calling.
//!
//! A request carries `Authorization: Bearer <token>`, where the token is a JWT from the configured
//! issuer (validated for signature, issuer, audience = `gateway.resource`, time and subject) or a
//! static API key (matched by its SHA-256 hash). Without `[auth]`, callers are the local
//! principal (and the configuration allows that only on loopback). Tokens in query strings are
//! refused. A refusal is a 401 whose `WWW-Authenticate` points at the protected resource metadata
//! (RFC 9728), so a client can find the authorization server.
//!
//! The token is used here and nowhere else: nothing from the client's `Authorization` header
//! reaches an upstream.

mod jwt;

pub use crate::error::GatewayError;
use jwt::{JwtValidator, TokenRefused};

use crate::config::{Config, is_scope_token};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_policy::{Authority, Principal};

/// The well-known path of protected resource metadata (RFC 9728).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// How long a validated token's principal is reused without validating it again.
const CACHE_FOR: Duration = Duration::from_secs(60);
/// Most validated tokens remembered.
const CACHE_ENTRIES: usize = 10_000;

/// A refused request: the status, the `WWW-Authenticate` challenge, and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// 400, 401 or 403.
    pub status: StatusCode,
    /// The `WWW-Authenticate` header value.
    pub challenge: String,
    /// What was refused and why.
    pub message: String,
    /// A fixed reason for metrics and the audit log: `query_token`, `malformed`, `missing`,
    /// `expired`, `audience`, `issuer`, `invalid` or `scope`.
    pub reason: &'static str,
}

struct Cached {
    principal: Arc<Principal>,
    until: Instant,
}

/// Authenticates HTTP requests.
pub struct Authenticator {
    jwt: Option<JwtValidator>,
    api_keys: HashMap<[u8; 32], Arc<Principal>>,
    /// `[admin.api_keys]`: operators' keys, never accepted at the MCP endpoint.
    operator_keys: HashMap<[u8; 32], Arc<Principal>>,
    local: Option<Arc<Principal>>,
    metadata_url: Option<String>,
    metadata: Option<Value>,
    required_scopes: Vec<String>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl Authenticator {
    /// The authenticator a validated configuration describes.
    pub fn from_config(config: &Config) -> Result<Authenticator, GatewayError> {
        let auth = &config.auth;
        let resource = config.gateway.resource.clone();
        let mut api_keys = HashMap::new();
        for (name, k) in &auth.api_keys {
            let hex = k.hash.strip_prefix("sha256:").unwrap_or_default();
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex, &mut digest)
                .map_err(|_| GatewayError::Config(format!("auth.api_keys.{name}.hash is not hex")))?;
            let mut p = Principal::new(name.clone(), k.class);
            p.authority = Authority::ApiKey;
            p.tenant = k.tenant.clone();
            p.roles = k.roles.clone();
            p.scopes = k.scopes.clone();
            api_keys.insert(digest, Arc::new(p));
        }
        let mut operator_keys = HashMap::new();
        for (name, k) in &config.admin.api_keys {
            let hex = k.hash.strip_prefix("sha256:").unwrap_or_default();
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex, &mut digest)
                .map_err(|_| GatewayError::Config(format!("admin.api_keys.{name}.hash is not hex")))?;
            let mut p = Principal::new(name.clone(), warden_policy::PrincipalClass::Admin);
            p.authority = Authority::ApiKey;
            operator_keys.insert(digest, Arc::new(p));
        }
        let (jwt, metadata_url, metadata, required_scopes) = match (&auth.oauth, &resource) {
            (Some(o), Some(resource)) => {
                let file = o.jwks_file.as_ref().map(|f| config.resolve(f));
                let egress = config.egress.policy().map_err(|e| GatewayError::Config(format!("egress.allow: {e}")))?;
                let validator = JwtValidator::new(o, resource, file, &egress)?;
                let servers = if o.authorization_servers.is_empty() {
                    vec![o.issuer.clone()]
                } else {
                    o.authorization_servers.clone()
                };
                let mut scopes = o.scopes_supported.clone();
                for s in &o.required_scopes {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
                let mut doc = json!({
                    "resource": resource,
                    "authorization_servers": servers,
                    "bearer_methods_supported": ["header"],
                    "resource_name": "Warden MCP gateway",
                });
                if !scopes.is_empty() {
                    doc["scopes_supported"] = json!(scopes);
                }
                (Some(validator), Some(metadata_url(resource)), Some(doc), o.required_scopes.clone())
            }
            _ => (None, None, None, vec![]),
        };
        let local = (!auth.is_configured()).then(|| Arc::new(config.gateway.local_principal.principal()));
        Ok(Authenticator {
            jwt,
            api_keys,
            operator_keys,
            local,
            metadata_url,
            metadata,
            required_scopes,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The principal an OpenID Connect ID token names, when it is the issuer's, for
    /// `client_id`, from the sign-in that sent `nonce`; otherwise why not.
    pub async fn identify(&self, id_token: &str, client_id: &str, nonce: &str) -> Result<Arc<Principal>, String> {
        let Some(jwt) = &self.jwt else { return Err("[auth.oauth] is not configured".into()) };
        jwt.validate_id_token(id_token, client_id, nonce).await.map(Arc::new).map_err(|r| r.0)
    }

    /// The operator an `[admin.api_keys]` key presented as a bearer token names, if it is one.
    /// Only the admin listener asks: these keys never reach a tool.
    pub fn operator_key(&self, headers: &HeaderMap) -> Option<Arc<Principal>> {
        let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, key) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
        self.operator_keys.get(&digest).cloned()
    }

    /// Loads signing keys (at start-up and on reload); a failure is logged, not fatal.
    pub async fn load_keys(&self) {
        if let Some(j) = &self.jwt {
            match j.load_keys().await {
                Ok(n) => tracing::info!(keys = n, "loaded the issuer's signing keys"),
                Err(e) => tracing::warn!("could not load the issuer's signing keys yet: {e}"),
            }
        }
    }

    /// The protected resource metadata document, when OAuth is configured.
    pub fn metadata(&self) -> Option<&Value> {
        self.metadata.as_ref()
    }

    /// The paths the metadata is served at: the well-known path, and the form suffixed with the
    /// resource's path.
    pub fn metadata_paths(&self) -> Vec<String> {
        let Some(url) = &self.metadata_url else { return vec![] };
        let mut paths = vec![METADATA_PATH.to_owned()];
        if let Some(i) = url.find(METADATA_PATH) {
            let own = &url[i..];
            if own != METADATA_PATH {
                paths.push(own.to_owned());
            }
        }
        paths
    }

    fn challenge(&self, error: Option<(&str, &str)>, scope: Option<&str>) -> String {
        let mut parts = Vec::new();
        if let Some(url) = &self.metadata_url {
            parts.push(format!("resource_metadata=\"{url}\""));
        } else {
            parts.push("realm=\"warden\"".to_owned());
        }
        if let Some((code, description)) = error {
            parts.push(format!("error=\"{code}\""));
            parts.push(format!("error_description=\"{}\"", description.replace(['"', '\\'], "'")));
        }
        // Only scope tokens go into the header, whatever asked for them: nothing can break out
        // of the quoted string.
        let scope: Vec<&str> = scope.unwrap_or_default().split(' ').filter(|s| is_scope_token(s)).collect();
        if !scope.is_empty() {
            parts.push(format!("scope=\"{}\"", scope.join(" ")));
        }
        format!("Bearer {}", parts.join(", "))
    }

    fn fail(
        &self,
        status: StatusCode,
        error: Option<(&str, &str)>,
        message: &str,
        reason: &'static str,
    ) -> AuthFailure {
        let scope = (!self.required_scopes.is_empty()).then(|| self.required_scopes.join(" "));
        AuthFailure { status, challenge: self.challenge(error, scope.as_deref()), message: message.to_owned(), reason }
    }

    /// The refusal of a request whose token lacks `scopes`.
    pub fn insufficient_scope(&self, scopes: &[String]) -> AuthFailure {
        let needed = scopes.join(" ");
        AuthFailure {
            status: StatusCode::FORBIDDEN,
            challenge: self
                .challenge(Some(("insufficient_scope", "the token lacks a scope this request needs")), Some(&needed)),
            message: format!("Forbidden: this request needs the scope(s) {needed}"),
            reason: "scope",
        }
    }

    /// Who is calling: the token's principal, or the local principal when no authentication is
    /// configured.
    pub async fn authenticate(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Arc<Principal>, AuthFailure> {
        let has_query_token = query.is_some_and(|q| {
            q.split('&').any(|pair| pair.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("access_token")))
        });
        if has_query_token {
            return Err(self.fail(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", "tokens in the query string are refused")),
                "Bad Request: tokens in the query string are refused; send Authorization: Bearer",
                "query_token",
            ));
        }
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(self.fail(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", "more than one Authorization header")),
                "Bad Request: more than one Authorization header",
                "malformed",
            ));
        }
        let Some(value) = first else {
            return match &self.local {
                Some(p) => Ok(p.clone()),
                None => Err(self.fail(
                    StatusCode::UNAUTHORIZED,
                    None,
                    "Unauthorized: a bearer token is required",
                    "missing",
                )),
            };
        };
        let invalid = |why: &str| {
            let reason = if why.contains("audience") {
                "audience"
            } else if why.contains("issuer") {
                "issuer"
            } else if why.contains("expired") {
                "expired"
            } else {
                "invalid"
            };
            self.fail(StatusCode::UNAUTHORIZED, Some(("invalid_token", why)), &format!("Unauthorized: {why}"), reason)
        };
        let token = bearer_of(value).ok_or_else(|| invalid("the Authorization header is not a bearer token"))?;
        let principal = self.principal_for(token).await.map_err(|r| invalid(&r.0))?;
        let missing: Vec<String> =
            self.required_scopes.iter().filter(|s| !principal.scopes.contains(s)).cloned().collect();
        if !missing.is_empty() {
            return Err(self.insufficient_scope(&missing));
        }
        Ok(principal)
    }

    async fn principal_for(&self, token: &str) -> Result<Arc<Principal>, TokenRefused> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(p) = self.api_keys.get(&digest) {
            return Ok(p.clone());
        }
        let Some(jwt) = &self.jwt else {
            return Err(TokenRefused("the token is not valid".into()));
        };
        let now = Instant::now();
        if let Some(c) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&digest).filter(|c| c.until > now) {
            return Ok(c.principal.clone());
        }
        let principal = Arc::new(jwt.validate(token).await?);
        // Reuse the principal only while the token stays valid, and not beyond the cache period;
        // a token whose expiry cannot be read here is validated afresh every time.
        let Some(exp) = token_exp(token) else { return Ok(principal) };
        let until = (now + CACHE_FOR).min(exp);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(digest, Cached { principal: principal.clone(), until });
        Ok(principal)
    }
}

/// The token of an `Authorization: Bearer` value.
fn bearer_of(value: &http::HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    Some(token.trim()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
}

/// The bearer token of a request [`Authenticator::authenticate`] accepted, for exchanges on the
/// caller's behalf.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    bearer_of(headers.get(http::header::AUTHORIZATION)?)
}

/// When a (validated) token expires, as an instant.
fn token_exp(token: &str) -> Option<Instant> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let exp = serde_json::from_slice::<Value>(&bytes).ok()?.get("exp")?.as_f64()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
    // Past (or absurdly far): no time left, or the cache period.
    let left = Duration::try_from_secs_f64(exp - now).unwrap_or(if exp > now { CACHE_FOR } else { Duration::ZERO });
    Some(Instant::now() + left)
}

/// The metadata URL for a resource URI: the well-known path inserted between its origin and
/// its path (RFC 9728 §3.1).
fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("https", resource));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let path = path.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    format!("{scheme}://{authority}{METADATA_PATH}{path}")
}

/// A new API key and its configuration hash.
pub fn new_api_key() -> (String, String) {
    use base64::Engine;
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random number generator");
    let key = format!("wdn_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())));
    (key, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_path() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8787/"),
            "http://127.0.0.1:8787/.well-known/oauth-protected-resource"
        );
    }

    fn config(text: &str) -> Config {
        Config::parse(text, "w.toml").unwrap()
    }

    #[tokio::test]
    async fn api_keys_are_matched_by_hash() {
        let (key, hash) = new_api_key();
        let c = config(&format!("[auth.api_keys.ci]\nhash = \"{hash}\"\ntenant = \"acme\"\nscopes = [\"mcp\"]\n"));
        let a = Authenticator::from_config(&c).unwrap();
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {key}").parse().unwrap());
        let p = a.authenticate(&h, None).await.unwrap();
        assert_eq!(
            (p.subject.as_str(), p.class, p.tenant.as_deref()),
            ("ci", warden_policy::PrincipalClass::Service, Some("acme"))
        );
        h.insert("authorization", format!("Bearer {key}x").parse().unwrap());
        let e = a.authenticate(&h, None).await.unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.challenge.contains("invalid_token"));
        let e = a.authenticate(&HeaderMap::new(), None).await.unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED, "configured auth has no local principal");
        let e = a.authenticate(&HeaderMap::new(), Some(format!("x=1&access_token={key}").as_str())).await.unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn without_auth_callers_are_the_local_principal() {
        let a = Authenticator::from_config(&config("")).unwrap();
        assert_eq!(a.authenticate(&HeaderMap::new(), None).await.unwrap().subject, "local");
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic eDp5".parse().unwrap());
        assert!(a.authenticate(&h, None).await.is_err(), "a credential that cannot be checked is refused, not ignored");
    }
}
