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
pub mod oauth;
pub mod vault;

use crate::guard::audit::Auditor;
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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    server: String,
    principal: String,
    scopes: Vec<String>,
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
    auditor: Arc<Auditor>,
}

impl Credentials {
    /// The credentials the configured servers obtain per caller.
    pub fn from_config(config: &crate::config::Config, auditor: Arc<Auditor>) -> Result<Credentials, String> {
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
            auditor,
        })
    }

    /// No server obtains credentials per caller (for tests of other parts).
    pub fn none(auditor: Arc<Auditor>) -> Credentials {
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

    /// Whether `principal` has authorized `server` (`None`), or the link to do so.
    pub async fn authorization(&self, principal: &Principal, server: &str) -> Result<Option<String>, RpcError> {
        match self.token(principal, server, None).await {
            Ok(_) => Ok(None),
            Err(e) if e.code == error::URL_ELICITATION_REQUIRED => Ok(e
                .data
                .as_ref()
                .and_then(|d| d.pointer("/elicitations/0/url"))
                .and_then(Value::as_str)
                .map(str::to_owned)),
            Err(e) => Err(e),
        }
    }

    /// Deletes the stored grants of `server` (of `user` only, when given); how many.
    pub async fn drop_grants(&self, server: &str, user: Option<&str>) -> u64 {
        let Some(store) = self.store.get() else { return 0 };
        store.delete(server, user).await.unwrap_or_else(|e| {
            tracing::error!("deleting upstream grants: {e}");
            0
        })
    }

    /// Where callers' grants are kept (set once, when the gateway opens its database).
    pub fn attach_store(&self, store: Arc<warden_store::UpstreamTokenStore>) {
        let _ = self.store.set(store);
    }

    /// Whether `principal` can be served by `server` now: its credential is at hand or obtained.
    /// Refused with the reason, or with the link to authorize the server, before any connection.
    pub async fn ready(&self, principal: &Principal, server: &str) -> Result<(), RpcError> {
        if !self.per_caller(server) {
            return Ok(());
        }
        self.token(principal, server, None).await.map(|_| ())
    }

    /// Keeps `token`, the validated OAuth token `principal` just presented, for exchanges on its
    /// behalf: the latest presented is the one used.
    pub fn offer_subject(&self, principal: &Principal, token: &str) {
        if self.exchangers.is_empty() {
            return;
        }
        let expires = claims(token)
            .and_then(|c| c.get("exp").and_then(Value::as_u64))
            .map(|exp| SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
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
        if let Some(held) = lock(&self.issued).get(&key).cloned()
            && held.fresh_until > Instant::now()
            && !self.is_revoked(server, &held)
        {
            return Ok(held);
        }
        let shown = |why: &str| {
            RpcError::new(
                error::UPSTREAM_CREDENTIAL,
                format!("Warden could not obtain a credential for server '{server}' on your behalf: {why}"),
            )
        };
        let subject = {
            let subjects = lock(&self.subjects);
            subjects.get(&key.principal).filter(|s| s.expires > SystemTime::now()).map(|s| s.token.clone())
        };
        let Some(subject) = subject else {
            let why = "it needs your OAuth access token, and none valid is at hand (an API key or a local \
                       caller cannot be exchanged; sign in again if your token expired)";
            self.audit(server, principal, "token_exchange", "DENY", &format!("not exchanged: {why}")).await;
            return Err(shown(why));
        };
        let issued_at = Utc::now();
        let started = Instant::now();
        let granted = match exchanger.exchange(subject.expose(), &key.scopes).await {
            Ok(g) => g,
            Err(r) => {
                tracing::warn!(server = %server, subject = %principal.subject, "token exchange failed: {}", r.logged);
                self.audit(server, principal, "token_exchange", "DENY", &format!("token exchange failed: {}", r.shown))
                    .await;
                return Err(shown(&r.shown));
            }
        };
        // Renewed a little before it expires: a quarter of its life, at most 30 s, early.
        let early = (granted.lifetime / 4).min(Duration::from_secs(30));
        let issued = Issued {
            id: token_id(&granted.token),
            token: Secret(granted.token.into()),
            subject: principal.subject.clone(),
            issued_at,
            fresh_until: started + granted.lifetime.saturating_sub(early),
        };
        let scope = granted.scope.unwrap_or_else(|| key.scopes.join(" "));
        self.audit(
            server,
            principal,
            "token_exchange",
            "ALLOW",
            &format!("token {} issued for scope {scope:?}, valid {} s", issued.id, granted.lifetime.as_secs()),
        )
        .await;
        // A revocation made while the exchange ran wins.
        if self.is_revoked(server, &issued) {
            return Err(shown("its credentials were revoked by an operator just now; try again"));
        }
        let mut held = lock(&self.issued);
        if held.len() >= MAX_HELD && !held.contains_key(&key) {
            let now = Instant::now();
            held.retain(|_, i| i.fresh_until > now);
            if held.len() >= MAX_HELD {
                held.clear();
            }
        }
        held.insert(key, issued.clone());
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

    /// The token `principal` granted for `server`: held, stored, or refreshed; without one, the
    /// link to grant it.
    async fn granted_token(
        &self,
        client: &oauth::OAuthClient,
        principal: &Principal,
        server: &str,
    ) -> Result<Issued, RpcError> {
        let key = Key { server: server.to_owned(), principal: principal.identity_key(), scopes: vec![] };
        if let Some(held) = lock(&self.issued).get(&key).cloned()
            && held.fresh_until > Instant::now()
            && !self.is_revoked(server, &held)
        {
            return Ok(held);
        }
        let failed = |why: &str| {
            RpcError::new(
                error::UPSTREAM_CREDENTIAL,
                format!("Warden could not use your authorization of server '{server}': {why}"),
            )
        };
        let (Some(store), Some(vault)) = (self.store.get(), &self.vault) else {
            return Err(failed("the gateway keeps no grants (no database is attached)"));
        };
        let binding = format!("{server}\u{0}{}", key.principal);
        let stored = store.get(server, &key.principal).await.map_err(|e| {
            tracing::error!("reading an upstream grant: {e}");
            failed("the grant store could not be read")
        })?;
        if let Some(row) = stored {
            let set = vault.open(&binding, &row.sealed).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            let usable = set.filter(|_| !self.revoked_at(server, &row.subject, row.issued_at));
            match usable {
                Some(set) => {
                    let now = Utc::now().timestamp();
                    let expires = set["expires_at"].as_i64().unwrap_or(0);
                    if let Some(access) = set["access_token"].as_str()
                        && expires - now > 5
                    {
                        let left = Duration::from_secs((expires - now) as u64);
                        let issued = Issued {
                            id: token_id(access),
                            token: Secret(access.into()),
                            subject: principal.subject.clone(),
                            issued_at: row.issued_at,
                            fresh_until: Instant::now() + left.saturating_sub((left / 4).min(Duration::from_secs(30))),
                        };
                        lock(&self.issued).insert(key, issued.clone());
                        return Ok(issued);
                    }
                    if let Some(refresh) = set["refresh_token"].as_str() {
                        match client.refresh(refresh).await {
                            Ok(mut granted) => {
                                granted.refresh = granted.refresh.or_else(|| Some(refresh.to_owned()));
                                let issued =
                                    self.keep_grant(server, principal, granted).await.map_err(|w| failed(&w))?;
                                self.audit(
                                    server,
                                    principal,
                                    "upstream_refreshed",
                                    "ALLOW",
                                    &format!("token {} refreshed", issued.id),
                                )
                                .await;
                                return Ok(issued);
                            }
                            Err(r) => {
                                tracing::warn!(server = %server, "refreshing a grant failed: {}", r.logged);
                                self.audit(server, principal, "upstream_refreshed", "DENY", &r.shown).await;
                            }
                        }
                    }
                }
                None => tracing::warn!(server = %server, "a stored grant is revoked or does not open; it is dropped"),
            }
            let _ = store.forget(server, &key.principal).await;
        }
        let link = self.flows.link(server, &Arc::new(principal.clone()), &self.origin);
        Err(RpcError::new(
            error::URL_ELICITATION_REQUIRED,
            format!(
                "server '{server}' needs your authorization: open the link to let Warden act for you there, then retry"
            ),
        )
        .with_data(serde_json::json!({ "elicitations": [{
            "mode": "url",
            "elicitationId": format!("warden-authorize-{server}"),
            "url": link,
            "message": format!("Authorize Warden to use '{server}' on your behalf"),
        }]})))
    }

    /// Seals and stores a grant of `principal` for `server`, and holds its access token.
    async fn keep_grant(
        &self,
        server: &str,
        principal: &Principal,
        granted: endpoint::Granted,
    ) -> Result<Issued, String> {
        let (Some(store), Some(vault)) = (self.store.get(), &self.vault) else {
            return Err("the gateway keeps no grants".into());
        };
        let key = Key { server: server.to_owned(), principal: principal.identity_key(), scopes: vec![] };
        let expires_at = Utc::now().timestamp() + granted.lifetime.as_secs() as i64;
        let set = serde_json::json!({
            "access_token": granted.token, "refresh_token": granted.refresh,
            "expires_at": expires_at, "scope": granted.scope,
        });
        let binding = format!("{server}\u{0}{}", key.principal);
        let sealed = vault.seal(&binding, set.to_string().as_bytes())?;
        let issued_at = store.put(server, &key.principal, &principal.subject, &sealed).await.map_err(|e| {
            tracing::error!("storing an upstream grant: {e}");
            "the grant could not be stored".to_owned()
        })?;
        let early = (granted.lifetime / 4).min(Duration::from_secs(30));
        let issued = Issued {
            id: token_id(&granted.token),
            token: Secret(granted.token.into()),
            subject: principal.subject.clone(),
            issued_at,
            fresh_until: Instant::now() + granted.lifetime.saturating_sub(early),
        };
        lock(&self.issued).insert(key, issued.clone());
        Ok(issued)
    }

    /// A browser opened consent link `id`; `cookie` is the value set on it. Where to send it.
    pub async fn open_flow(&self, id: &str, cookie: &str) -> Result<String, String> {
        match self.flows.open(id, cookie, &self.oauth).await {
            Ok((_, location)) => Ok(location),
            Err(refused) => {
                self.audit_refusal("authorization link refused", &refused).await;
                Err(refused.why)
            }
        }
    }

    async fn audit_refusal(&self, what: &str, refused: &oauth::CallbackRefused) {
        let reason = format!("{what}: {}", refused.why);
        match &refused.flow {
            Some((server, principal)) => self.audit(server, principal, "upstream_authorized", "DENY", &reason).await,
            None => {
                let nobody = Principal::new("unknown", warden_policy::PrincipalClass::User);
                self.audit("", &nobody, "upstream_authorized", "DENY", &reason).await;
            }
        }
    }

    /// The authorization server sent a browser back with `query`; `cookie` is the browser's.
    /// The server authorized, or why not (each audited).
    pub async fn finish_flow(&self, query: &HashMap<String, String>, cookie: Option<&str>) -> Result<String, String> {
        match self.flows.complete(query, cookie, &self.oauth).await {
            Ok(done) => {
                let issued = match self.keep_grant(&done.server, &done.principal, done.granted).await {
                    Ok(i) => i,
                    Err(why) => {
                        self.audit(&done.server, &done.principal, "upstream_authorized", "DENY", &why).await;
                        return Err(why);
                    }
                };
                let note = format!("authorized; token {} stored sealed", issued.id);
                self.audit(&done.server, &done.principal, "upstream_authorized", "ALLOW", &note).await;
                Ok(done.server)
            }
            Err(refused) => {
                self.audit_refusal("authorization response refused", &refused).await;
                Err(refused.why)
            }
        }
    }

    /// Forgets the token `principal` presents to `server` for `scopes` (the server refused it).
    pub fn forget(&self, principal: &Principal, server: &str, scopes: Option<&[String]>) {
        let Some(exchanger) = self.exchangers.get(server) else { return };
        let scopes = Self::scopes_for(scopes).unwrap_or_else(|| exchanger.scopes.clone());
        lock(&self.issued).remove(&Key { server: server.to_owned(), principal: principal.identity_key(), scopes });
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

    /// Every form of the tokens held for `server` (`None`: every server), for the guard that
    /// redacts a credential echoed back.
    pub fn held_secrets(&self, server: Option<&str>) -> Vec<String> {
        let held = lock(&self.issued);
        held.iter()
            .filter(|(k, _)| server.is_none_or(|s| s == k.server))
            .flat_map(|(_, i)| [format!("Bearer {}", i.token.expose()), i.token.expose().to_owned()])
            .collect()
    }

    /// Drops what has expired.
    pub fn tidy(&self) {
        let now = Instant::now();
        lock(&self.issued).retain(|_, i| i.fresh_until > now);
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
        let auditor = Arc::new(Auditor::new(Arc::new(crate::metrics::Metrics::new()), None, false));
        let c = Credentials::none(auditor);
        let t0 = Utc::now();
        let issue = |server: &str, who: &str, at: DateTime<Utc>| {
            let key = Key { server: server.into(), principal: who.into(), scopes: vec![] };
            let i = Issued {
                token: Secret(format!("{server}-{who}").into()),
                id: String::new(),
                subject: who.into(),
                issued_at: at,
                fresh_until: Instant::now() + Duration::from_secs(60),
            };
            lock(&c.issued).insert(key, i);
        };
        issue("s", "alice", t0);
        issue("s", "bob", t0);
        issue("t", "alice", t0);
        assert_eq!(c.revoke("s", Some("alice"), t0 + chrono::Duration::seconds(1)), 1);
        assert_eq!(c.held_secrets(Some("s")), vec!["Bearer s-bob".to_owned(), "s-bob".to_owned()]);
        assert_eq!(c.revoke("s", None, t0 + chrono::Duration::seconds(1)), 1);
        assert!(c.held_secrets(Some("s")).is_empty());
        assert_eq!(c.held_secrets(None).len(), 2, "another server's tokens stay");
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
