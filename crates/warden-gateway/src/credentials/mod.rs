//! Upstream identity: the credentials Warden obtains for each caller to present to a server,
//! so that the server sees who acted and holds nothing broader than that caller's grant.
//!
//! A server with `credential = { token_exchange = { ... } }` gets, on every request, a token the
//! authorization server issued for the caller the connection serves (RFC 8693), audience-bound
//! to that server (RFC 8707), with the scopes the tool called needs. Tokens are:
//! - obtained only from the caller's own validated token (the HTTP front offers each OAuth
//!   caller's token here; an API key or the local principal has none, and is refused);
//! - kept per (caller, server, scopes) in memory until shortly before they expire, never written,
//!   never logged, and never shown to a client (an echo is redacted by the injected-credential
//!   guard, which searches for every token held);
//! - recorded in the audit log by their `jti` or a hash prefix, in a `token_exchange` row when
//!   issued and on each call that used one;
//! - dropped by revocation (`warden credentials revoke`, `warden contain`): a token issued before a
//!   revocation is never used again, here or on another gateway sharing the store.
//!
//! A server with `credential = { oauth = { ... } }` needs each caller's own authorization (see
//! [`oauth`]): a caller without one is refused with a URL elicitation naming a link; once
//! granted, the caller's tokens are sealed ([`vault`]) and stored per server and caller, used for
//! that caller only, refreshed when they expire, and revocable the same way.

pub mod endpoint;
pub mod exchange;
mod grants;
pub mod oauth;
pub mod vault;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use warden_policy::Principal;
use warden_protocol::{RpcError, error};

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// The secret itself, to send.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

/// A caller's token, as last presented.
struct Subject {
    token: Secret,
    expires: SystemTime,
}

/// A token obtained for a caller.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The token.
    pub token: Secret,
    /// How the audit log names it: `jti:...` or `sha256:...` (a prefix).
    pub id: String,
    subject: String,
    issued_at: DateTime<Utc>,
    fresh_until: Instant,
}

impl Issued {
    /// `token`, issued to `subject` with authority since `issued_at`, valid for `lifetime`
    /// from now: renewed a quarter of its life (at most 30 s) early.
    fn new(token: String, subject: &str, issued_at: DateTime<Utc>, lifetime: Duration) -> Issued {
        let early = (lifetime / 4).min(Duration::from_secs(30));
        Issued {
            id: token_id(&token),
            token: Secret(token.into()),
            subject: subject.to_owned(),
            issued_at,
            fresh_until: Instant::now() + lifetime.saturating_sub(early),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    server: String,
    principal: String,
    scopes: Vec<String>,
}

/// Where credential events are recorded (the audit log).
#[async_trait::async_trait]
pub trait CredentialAudit: Send + Sync {
    /// Records `event` (`token_exchange`, `upstream_authorized`, `upstream_refreshed`) of
    /// `server` for `principal`; `reason` names tokens by their id only.
    async fn credential(&self, event: &str, server: &str, principal: &Principal, decision: &str, reason: &str);
}

/// Most callers' tokens and issued tokens held; past it the expired ones go, then all.
const MAX_HELD: usize = 10_000;

/// Upstream credentials obtained per caller.
pub struct Credentials {
    exchangers: HashMap<String, exchange::Exchanger>,
    oauth: HashMap<String, oauth::OAuthClient>,
    flows: oauth::Flows,
    vault: Option<vault::Vault>,
    store: std::sync::OnceLock<Arc<warden_store::UpstreamTokenStore>>,
    /// The gateway's public origin, where consent links point.
    origin: String,
    subjects: Mutex<HashMap<String, Subject>>,
    issued: Mutex<HashMap<Key, Issued>>,
    /// `(server, subject)` (`""`: every caller) → tokens issued at or before this are not used.
    revoked: Mutex<HashMap<(String, String), DateTime<Utc>>>,
    /// Every token given out, by server, until it expires at its server (whether or not it is
    /// still held): what a server echoing one back has replaced.
    echoes: Mutex<HashMap<String, (String, Instant)>>,
    /// Grants a server refused (HTTP 401): refreshed before they are used again.
    stale: Mutex<std::collections::HashSet<Key>>,
    /// Warden's client at its own issuer, with which consent links are signed in.
    sign_in: Option<oauth::OAuthClient>,
    auditor: Arc<dyn CredentialAudit>,
}

impl Credentials {
    /// The credentials the configured servers obtain per caller.
    pub fn from_config(
        config: &crate::config::Config,
        auditor: Arc<dyn CredentialAudit>,
    ) -> Result<Credentials, String> {
        let egress = config.egress.policy()?;
        let mut exchangers = HashMap::new();
        for (name, s) in &config.servers {
            let (Some(x), Some(url)) = (s.credential.as_ref().and_then(|c| c.token_exchange.as_ref()), &s.url) else {
                continue;
            };
            let e = exchange::Exchanger::new(x, url, &config.base_dir, &egress)
                .map_err(|why| format!("server '{name}': token_exchange: {why}"))?;
            exchangers.insert(name.clone(), e);
        }
        let redirect = config.credentials.redirect_uri(config.gateway.resource.as_deref());
        let mut clients = HashMap::new();
        for (name, s) in &config.servers {
            let (Some(o), Some(url)) = (s.credential.as_ref().and_then(|c| c.oauth.as_ref()), &s.url) else {
                continue;
            };
            let redirect = redirect.clone().ok_or("[credentials] redirect_uri is needed")?;
            clients.insert(name.clone(), oauth::OAuthClient::new(o, url, redirect, &config.base_dir, egress.clone()));
        }
        let sign_in = match (&config.credentials.sign_in, &config.auth.oauth, &config.gateway.resource) {
            (Some(c), Some(o), Some(resource)) if !clients.is_empty() => {
                let section = crate::config::OAuthClientSection {
                    client_id: c.client_id.clone(),
                    client_secret_env: c.client_secret_env.clone(),
                    client_secret_file: c.client_secret_file.clone(),
                    authorization_server: Some(o.issuer.clone()),
                    scopes: vec![],
                };
                let back = config.credentials.signed_in_uri(Some(resource)).ok_or("no sign-in redirect URI")?;
                Some(oauth::OAuthClient::new(&section, resource, back, &config.base_dir, egress.clone()))
            }
            _ => None,
        };
        let vault = if clients.is_empty() {
            None
        } else {
            Some(
                vault::Vault::from_config(&config.credentials, &config.base_dir)
                    .map_err(|why| format!("[credentials]: {why}"))?,
            )
        };
        let origin = redirect
            .and_then(|r| reqwest::Url::parse(&r).ok())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Ok(Credentials {
            exchangers,
            oauth: clients,
            flows: oauth::Flows::default(),
            vault,
            store: std::sync::OnceLock::new(),
            origin,
            subjects: Mutex::default(),
            issued: Mutex::default(),
            revoked: Mutex::default(),
            echoes: Mutex::default(),
            stale: Mutex::default(),
            sign_in,
            auditor,
        })
    }

    /// No server obtains credentials per caller (for tests of other parts).
    pub fn none(auditor: Arc<dyn CredentialAudit>) -> Credentials {
        Credentials {
            exchangers: HashMap::new(),
            oauth: HashMap::new(),
            flows: oauth::Flows::default(),
            vault: None,
            store: std::sync::OnceLock::new(),
            origin: String::new(),
            subjects: Mutex::default(),
            issued: Mutex::default(),
            revoked: Mutex::default(),
            echoes: Mutex::default(),
            stale: Mutex::default(),
            sign_in: None,
            auditor,
        }
    }

    /// Whether `server`'s credential is obtained per caller.
    pub fn per_caller(&self, server: &str) -> bool {
        self.exchangers.contains_key(server) || self.oauth.contains_key(server)
    }

    /// Whether any server's credential is obtained per caller.
    pub fn any(&self) -> bool {
        !self.exchangers.is_empty() || !self.oauth.is_empty()
    }

    /// Whether any server needs its callers' own authorization (the consent routes are served).
    pub fn has_oauth(&self) -> bool {
        !self.oauth.is_empty()
    }

    /// Whether consent links are https (their cookie is then `Secure`).
    pub fn secure_origin(&self) -> bool {
        self.origin.starts_with("https://")
    }

    /// Whether `server` needs its callers' own authorization.
    pub fn has_oauth_for(&self, server: &str) -> bool {
        self.oauth.contains_key(server)
    }

    /// Where callers' grants are kept (set once, when the gateway opens its database).
    pub fn attach_store(&self, store: Arc<warden_store::UpstreamTokenStore>) {
        let _ = self.store.set(store);
    }

    /// Whether `principal` can be served by `server` now: its credential is at hand or obtained.
    /// Refused with the reason, or with the link to authorize the server, before any connection.
    pub async fn ready(&self, principal: &Principal, server: &str) -> Result<(), RpcError> {
        if self.oauth.contains_key(server) {
            return self.token(principal, server, None).await.map(|_| ());
        }
        // An exchange needs the caller's own token; the exchange itself is left to the request
        // (with the scopes it needs).
        if self.exchangers.contains_key(server) && self.subject_of(principal).is_none() {
            return Err(no_subject(server));
        }
        Ok(())
    }

    fn subject_of(&self, principal: &Principal) -> Option<Secret> {
        let subjects = lock(&self.subjects);
        subjects.get(&principal.identity_key()).filter(|s| s.expires > SystemTime::now()).map(|s| s.token.clone())
    }

    /// Holds `issued` for `key` (and remembers it for echoes until it expires).
    fn hold(&self, key: Key, issued: &Issued, lifetime: Duration) {
        {
            let mut echoes = lock(&self.echoes);
            let now = Instant::now();
            if echoes.len() >= MAX_HELD {
                echoes.retain(|_, (_, until)| *until > now);
                if echoes.len() >= MAX_HELD {
                    echoes.clear();
                }
            }
            echoes.insert(issued.token.expose().to_owned(), (key.server.clone(), now + lifetime));
        }
        let mut held = lock(&self.issued);
        if held.len() >= MAX_HELD && !held.contains_key(&key) {
            let now = Instant::now();
            held.retain(|_, i| i.fresh_until > now);
            if held.len() >= MAX_HELD {
                held.clear();
            }
        }
        lock(&self.stale).remove(&key);
        held.insert(key, issued.clone());
    }

    /// The token held for `key`, while fresh and not revoked.
    fn held(&self, key: &Key) -> Option<Issued> {
        let held = lock(&self.issued).get(key).cloned()?;
        (held.fresh_until > Instant::now() && !self.is_revoked(&key.server, &held)).then_some(held)
    }

    /// Keeps `token`, the validated OAuth token `principal` just presented, for exchanges on its
    /// behalf: the latest presented is the one used.
    pub fn offer_subject(&self, principal: &Principal, token: &str) {
        if self.exchangers.is_empty() {
            return;
        }
        let expires = claims(token)
            .and_then(|c| c.get("exp").and_then(Value::as_u64))
            .and_then(|exp| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp)))
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(60));
        let key = principal.identity_key();
        let mut subjects = lock(&self.subjects);
        if subjects.get(&key).is_some_and(|s| s.token.expose() == token) {
            return;
        }
        if subjects.len() >= MAX_HELD && !subjects.contains_key(&key) {
            let now = SystemTime::now();
            subjects.retain(|_, s| s.expires > now);
            if subjects.len() >= MAX_HELD {
                subjects.clear();
            }
        }
        subjects.insert(key, Subject { token: Secret(token.into()), expires });
    }

    /// The scopes a request asks for: a tool's own `scopes` when it names some, else the
    /// server's (`None`).
    pub fn scopes_for(tool_scopes: Option<&[String]>) -> Option<Vec<String>> {
        tool_scopes.filter(|s| !s.is_empty()).map(|s| {
            let mut s = s.to_vec();
            s.sort();
            s.dedup();
            s
        })
    }

    /// The token `principal` presents to `server` for a request needing `scopes` (`None`: the
    /// server's): the one held while fresh and not revoked, or a new exchange.
    pub async fn token(
        &self,
        principal: &Principal,
        server: &str,
        scopes: Option<&[String]>,
    ) -> Result<Issued, RpcError> {
        if let Some(client) = self.oauth.get(server) {
            return self.granted_token(client, principal, server).await;
        }
        let Some(exchanger) = self.exchangers.get(server) else {
            return Err(RpcError::internal("this server's credential is not obtained per caller"));
        };
        let scopes = Self::scopes_for(scopes).unwrap_or_else(|| exchanger.scopes.clone());
        let key = Key { server: server.to_owned(), principal: principal.identity_key(), scopes };
        if let Some(held) = self.held(&key) {
            return Ok(held);
        }
        let shown = |why: &str| {
            RpcError::new(
                error::UPSTREAM_CREDENTIAL,
                format!("Warden could not obtain a credential for server '{server}' on your behalf: {why}"),
            )
        };
        let Some(subject) = self.subject_of(principal) else {
            let e = no_subject(server);
            self.audit(server, principal, "token_exchange", "DENY", &e.message).await;
            return Err(e);
        };
        let issued_at = Utc::now();
        let granted = match exchanger.exchange(subject.expose(), &key.scopes).await {
            Ok(g) => g,
            Err(r) => {
                tracing::warn!(server = %server, subject = %principal.subject, "token exchange failed: {}", r.logged);
                self.audit(server, principal, "token_exchange", "DENY", &format!("token exchange failed: {}", r.shown))
                    .await;
                return Err(shown(&r.shown));
            }
        };
        let lifetime = granted.lifetime;
        let issued = Issued::new(granted.token, &principal.subject, issued_at, lifetime);
        let scope = granted.scope.unwrap_or_else(|| key.scopes.join(" "));
        let note = format!("token {} issued for scope {scope:?}, valid {} s", issued.id, lifetime.as_secs());
        self.audit(server, principal, "token_exchange", "ALLOW", &note).await;
        // A revocation made while the exchange ran wins.
        if self.is_revoked(server, &issued) {
            return Err(shown("its credentials were revoked by an operator just now; try again"));
        }
        self.hold(key, &issued, lifetime);
        Ok(issued)
    }

    fn is_revoked(&self, server: &str, issued: &Issued) -> bool {
        self.revoked_at(server, &issued.subject, issued.issued_at)
    }

    fn revoked_at(&self, server: &str, subject: &str, issued_at: DateTime<Utc>) -> bool {
        let revoked = lock(&self.revoked);
        [String::new(), subject.to_owned()]
            .into_iter()
            .filter_map(|who| revoked.get(&(server.to_owned(), who)))
            .any(|at| issued_at <= *at)
    }

    /// Forgets the token `principal` presents to `server` for `scopes`: the server refused it. A
    /// caller's grant is refreshed before it is used again.
    pub fn forget(&self, principal: &Principal, server: &str, scopes: Option<&[String]>) {
        let scopes = match self.exchangers.get(server) {
            Some(exchanger) => Self::scopes_for(scopes).unwrap_or_else(|| exchanger.scopes.clone()),
            None if self.oauth.contains_key(server) => vec![],
            None => return,
        };
        let key = Key { server: server.to_owned(), principal: principal.identity_key(), scopes };
        lock(&self.issued).remove(&key);
        if self.oauth.contains_key(server) {
            lock(&self.stale).insert(key);
        }
    }

    /// Applies a revocation: tokens for `server` issued to `subject` (`None`: to anyone) at or
    /// before `at` are dropped and never used again. How many were held.
    pub fn revoke(&self, server: &str, subject: Option<&str>, at: DateTime<Utc>) -> usize {
        let who = subject.unwrap_or_default().to_owned();
        {
            let mut revoked = lock(&self.revoked);
            let entry = revoked.entry((server.to_owned(), who)).or_insert(at);
            if *entry < at {
                *entry = at;
            }
        }
        let mut held = lock(&self.issued);
        let before = held.len();
        held.retain(|k, i| !(k.server == server && subject.is_none_or(|s| s == i.subject) && i.issued_at <= at));
        before - held.len()
    }

    /// Every form of the tokens given out for `server` (`None`: every server) and not yet
    /// expired, held or not, for the guard that redacts a credential echoed back.
    pub fn held_secrets(&self, server: Option<&str>) -> Vec<String> {
        let now = Instant::now();
        let echoes = lock(&self.echoes);
        echoes
            .iter()
            .filter(|(_, (s, until))| *until > now && server.is_none_or(|x| x == s))
            .flat_map(|(token, _)| [format!("Bearer {token}"), token.clone()])
            .collect()
    }

    /// Drops what has expired.
    pub fn tidy(&self) {
        let now = Instant::now();
        lock(&self.issued).retain(|_, i| i.fresh_until > now);
        lock(&self.echoes).retain(|_, (_, until)| *until > now);
        let wall = SystemTime::now();
        lock(&self.subjects).retain(|_, s| s.expires > wall);
    }

    /// The provider of the credential of each request on a connection serving `principal`.
    pub fn provider(
        self: &Arc<Self>,
        server: &str,
        principal: Option<Arc<Principal>>,
    ) -> Option<warden_upstream::Provided> {
        self.per_caller(server).then(|| {
            warden_upstream::Provided(Arc::new(ForCaller {
                credentials: self.clone(),
                server: server.to_owned(),
                principal,
            }))
        })
    }

    async fn audit(&self, server: &str, principal: &Principal, event: &str, decision: &str, reason: &str) {
        self.auditor.credential(event, server, principal, decision, reason).await;
    }
}

/// The credentials of the connections that serve one caller.
struct ForCaller {
    credentials: Arc<Credentials>,
    server: String,
    principal: Option<Arc<Principal>>,
}

#[async_trait::async_trait]
impl warden_upstream::CredentialProvider for ForCaller {
    async fn header(&self, scopes: Option<&[String]>) -> Result<String, String> {
        let Some(p) = &self.principal else {
            return Err("the connection serves no single caller, and this server's credential is per caller".into());
        };
        let issued = self.credentials.token(p, &self.server, scopes).await.map_err(|e| e.message)?;
        Ok(format!("Bearer {}", issued.token.expose()))
    }

    fn refused(&self, scopes: Option<&[String]>) {
        if let Some(p) = &self.principal {
            self.credentials.forget(p, &self.server, scopes);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The refusal of a caller who has no OAuth token to exchange.
fn no_subject(server: &str) -> RpcError {
    RpcError::new(
        error::UPSTREAM_CREDENTIAL,
        format!(
            "Warden could not obtain a credential for server '{server}' on your behalf: it needs your OAuth access \
             token, and none valid is at hand (an API key or a local caller cannot be exchanged; sign in again if \
             your token expired)"
        ),
    )
}

/// A JWT's claims, read without checking (a label or an expiry of a token validated elsewhere).
fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// How the audit log names a token: its `jti` when it is a JWT with a short printable one, else a
/// prefix of its SHA-256.
pub fn token_id(token: &str) -> String {
    let jti = claims(token).and_then(|c| c.get("jti").and_then(Value::as_str).map(str::to_owned));
    match jti.filter(|j| !j.is_empty() && j.len() <= 64 && j.bytes().all(|b| b.is_ascii_graphic())) {
        Some(j) => format!("jti:{j}"),
        None => format!("sha256:{}", &hex::encode(Sha256::digest(token.as_bytes()))[..16]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_named_by_jti_or_hash_never_by_value() {
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!("{}.{}.sig", b64("{}"), b64(r#"{"jti":"abc-1"}"#));
        assert_eq!(token_id(&jwt), "jti:abc-1");
        let opaque = token_id("opaque-token-value");
        assert!(opaque.starts_with("sha256:") && !opaque.contains("opaque"), "{opaque}");
        let hostile = format!("{}.{}.sig", b64("{}"), b64(r#"{"jti":"a b\n"}"#));
        assert!(token_id(&hostile).starts_with("sha256:"));
        assert_eq!(format!("{:?}", Secret("s3cret".into())), "[secret]");
    }

    #[test]
    fn a_revocation_drops_tokens_issued_before_it_for_that_server_and_caller() {
        struct Nowhere;
        #[async_trait::async_trait]
        impl CredentialAudit for Nowhere {
            async fn credential(&self, _: &str, _: &str, _: &Principal, _: &str, _: &str) {}
        }
        let c = Credentials::none(Arc::new(Nowhere));
        let t0 = Utc::now();
        let issue = |server: &str, who: &str, at: DateTime<Utc>| {
            let key = Key { server: server.into(), principal: who.into(), scopes: vec![] };
            let i = Issued::new(format!("{server}-{who}"), who, at, Duration::from_secs(60));
            c.hold(key, &i, Duration::from_secs(60));
        };
        issue("s", "alice", t0);
        issue("s", "bob", t0);
        issue("t", "alice", t0);
        let held =
            |server: &str, who: &str| c.held(&Key { server: server.into(), principal: who.into(), scopes: vec![] });
        assert_eq!(c.revoke("s", Some("alice"), t0 + chrono::Duration::seconds(1)), 1);
        assert!(held("s", "alice").is_none() && held("s", "bob").is_some());
        assert_eq!(c.revoke("s", None, t0 + chrono::Duration::seconds(1)), 1);
        assert!(held("s", "bob").is_none());
        assert!(held("t", "alice").is_some(), "another server's tokens stay");
        // Revoked tokens are still searched for in what servers send back until they expire.
        let mut echoed = c.held_secrets(Some("s"));
        echoed.sort();
        assert_eq!(echoed, ["Bearer s-alice", "Bearer s-bob", "s-alice", "s-bob"]);
        let later = Issued {
            token: Secret("x".into()),
            id: String::new(),
            subject: "bob".into(),
            issued_at: t0 + chrono::Duration::seconds(2),
            fresh_until: Instant::now(),
        };
        assert!(!c.is_revoked("s", &later), "a token issued after the revocation is good");
    }
}
