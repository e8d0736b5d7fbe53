//! `[auth]`: who may call the HTTP endpoint.

use super::ConfigDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use warden_policy::PrincipalClass;

/// `[auth]`. Without it, the HTTP endpoint serves the local principal, and only on a loopback
/// address.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// OAuth 2.1 bearer tokens (JWTs) from an authorization server.
    pub oauth: Option<OAuthSection>,
    /// Static API keys for service accounts, by name. Only their SHA-256 hashes are configured.
    pub api_keys: BTreeMap<String, ApiKeySection>,
}

impl AuthSection {
    /// Whether any way of authenticating is configured.
    pub fn is_configured(&self) -> bool {
        self.oauth.is_some() || !self.api_keys.is_empty()
    }
}

/// A JWT signature algorithm Warden accepts. Symmetric algorithms (HS256 and the like) are never
/// accepted: a resource server holding the secret could mint tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// `[auth.oauth]`: validation of bearer JWTs. The audience is always `gateway.resource`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthSection {
    /// The issuer (`iss`) tokens must carry, exactly.
    pub issuer: String,
    /// Where the issuer publishes its signing keys (JWKS). https, or http on a loopback address.
    pub jwks_url: Option<String>,
    /// A JWKS file instead of a URL (re-read on reload).
    pub jwks_file: Option<PathBuf>,
    /// Signature algorithms accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Clock skew tolerated on `exp` and `nbf` (at most 5 minutes).
    #[serde(default = "default_leeway")]
    pub leeway: ConfigDuration,
    /// Scopes every request needs. Missing ones get 403 `insufficient_scope`.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Scopes advertised in the protected resource metadata.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Authorization servers advertised in the protected resource metadata; defaults to the issuer.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// How long fetched keys are used before they are fetched again.
    #[serde(default = "default_jwks_ttl")]
    pub jwks_cache_ttl: ConfigDuration,
    /// Least time between fetches caused by a token naming an unknown key (`kid`).
    #[serde(default = "default_refetch")]
    pub jwks_refetch_interval: ConfigDuration,
    /// Claim holding the caller's tenant.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Claim holding the caller's roles or groups (an array or a space-separated string).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim holding the OAuth client id; `azp` is used when it is absent.
    #[serde(default = "default_client_id_claim")]
    pub client_id_claim: String,
    /// Subjects (`sub`) that are the admin class. Nothing in a token itself makes an admin.
    #[serde(default)]
    pub admin_subjects: Vec<String>,
    /// Subjects (`sub`) that are the service class.
    #[serde(default)]
    pub service_subjects: Vec<String>,
}

fn default_algorithms() -> Vec<JwtAlgorithm> {
    vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256, JwtAlgorithm::EdDSA]
}
fn default_leeway() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}
fn default_jwks_ttl() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(600))
}
fn default_refetch() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}
fn default_tenant_claim() -> String {
    "tenant".into()
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_client_id_claim() -> String {
    "client_id".into()
}

/// `[auth.api_keys.NAME]`: a static key for a service account, presented as `Authorization:
/// Bearer <key>`. Create one with `warden apikey new NAME`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    /// `sha256:` and the hex SHA-256 of the key.
    pub hash: String,
    /// The class of the principal; `service` by default.
    #[serde(default = "service")]
    pub class: PrincipalClass,
    /// Its tenant.
    pub tenant: Option<String>,
    /// Its roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Its scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn service() -> PrincipalClass {
    PrincipalClass::Service
}

impl AuthSection {
    pub(super) fn validate(&self, resource: Option<&str>) -> Result<(), (Vec<String>, String)> {
        let at = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        if let Some(o) = &self.oauth {
            if resource.is_none() {
                return Err((
                    at(&["gateway", "resource"]),
                    "is required with [auth.oauth]: tokens must be issued for this URI".into(),
                ));
            }
            if o.issuer.trim().is_empty() {
                return Err((at(&["auth", "oauth", "issuer"]), "must not be empty".into()));
            }
            match (&o.jwks_url, &o.jwks_file) {
                (Some(_), Some(_)) => {
                    return Err((at(&["auth", "oauth"]), "set jwks_url or jwks_file, not both".into()));
                }
                (None, None) => return Err((at(&["auth", "oauth"]), "set jwks_url or jwks_file".into())),
                _ => {}
            }
            if o.algorithms.is_empty() {
                return Err((at(&["auth", "oauth", "algorithms"]), "must name at least one algorithm".into()));
            }
            if o.leeway.0 > Duration::from_secs(300) {
                return Err((at(&["auth", "oauth", "leeway"]), "must be at most 5m".into()));
            }
            if o.jwks_refetch_interval.0 < Duration::from_secs(1) {
                return Err((at(&["auth", "oauth", "jwks_refetch_interval"]), "must be at least 1s".into()));
            }
            check_scopes(&o.required_scopes, at(&["auth", "oauth", "required_scopes"]))?;
            check_scopes(&o.scopes_supported, at(&["auth", "oauth", "scopes_supported"]))?;
            if let Some(s) = o.admin_subjects.iter().find(|s| o.service_subjects.contains(s)) {
                return Err((at(&["auth", "oauth", "admin_subjects"]), format!("{s:?} is also a service subject")));
            }
        }
        for (name, key) in &self.api_keys {
            let here = |k: &str| vec!["auth".to_owned(), "api_keys".to_owned(), name.clone(), k.to_owned()];
            let hex = key.hash.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err((here("hash"), "must be \"sha256:\" and 64 hex digits (see `warden apikey new`)".into()));
            }
            check_scopes(&key.scopes, here("scopes"))?;
        }
        let mut hashes: Vec<String> = self.api_keys.values().map(|k| k.hash.to_ascii_lowercase()).collect();
        hashes.sort();
        if hashes.windows(2).any(|w| w[0] == w[1]) {
            return Err((at(&["auth", "api_keys"]), "two API keys have the same hash".into()));
        }
        Ok(())
    }
}

/// Whether `s` is an OAuth scope token (RFC 6749 section 3.3: printable ASCII without space,
/// `"` or `\`), and so safe inside a `WWW-Authenticate` challenge.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Refuses a configured scope that is not a scope token.
pub(super) fn check_scopes<'a>(
    scopes: impl IntoIterator<Item = &'a String>,
    at: Vec<String>,
) -> Result<(), (Vec<String>, String)> {
    match scopes.into_iter().find(|s| !is_scope_token(s)) {
        Some(bad) => Err((at, format!("{bad:?} is not a scope: use printable ASCII without spaces, '\"' or '\\'"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_cannot_break_a_challenge() {
        assert!(is_scope_token("notes:write"));
        assert!(is_scope_token("https://api.example.com/read"));
        for bad in ["", "a b", "a\"b", "a\\b", "caf\u{e9}", "a\r\nb"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }
}
