//! Warden as an OAuth client of a server that requires its own authorization (MCP authorization,
//! 2025-11-25 and 2026-07-28), one grant per caller.
//!
//! - **Discovery**: the authorization server is the pinned `authorization_server`, or the one the
//!   server's protected resource metadata (RFC 9728) names (whose `resource` must be the server's
//!   URL). Its metadata (RFC 8414) must name itself as `issuer`, support PKCE with S256, and give
//!   an authorization endpoint a browser may be sent to (https; http only on loopback) and a token
//!   endpoint Warden may reach. Every document is fetched through the egress guard, without
//!   following redirects.
//! - **Consent**: a caller without a grant gets a link to Warden (`/oauth/start/{flow}`), valid
//!   once and for ten minutes. Opening it binds the browser (an HttpOnly cookie) to the flow and
//!   sends it to the authorization endpoint with PKCE (S256), a `state`, the exact redirect URI
//!   and the `resource` (RFC 8707).
//! - **Callback**: `/oauth/callback` accepts a `state` only once, only from the browser that
//!   opened its link, and only with the issuer's `iss` (RFC 9207) when it sends one (it must when
//!   its metadata says so). The code is redeemed with the verifier; the tokens are sealed and
//!   stored for that caller and server alone.

use super::endpoint::{Granted, Refused, SecretSource, TIMEOUT, read_capped, refused, token_request};
use crate::config::{OAuthClientSection, START_PATH, browser_url};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_policy::Principal;

/// How long discovered metadata is used before it is fetched again.
const METADATA_FOR: Duration = Duration::from_secs(300);

/// How long a consent link and its flow stay valid.
pub const FLOW_LIFETIME: Duration = Duration::from_secs(600);

/// Most flows pending at once.
const MAX_FLOWS: usize = 10_000;

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The authorization server's issuer identifier.
    pub issuer: String,
    authorization_endpoint: reqwest::Url,
    token_endpoint: reqwest::Url,
    /// Whether it says it sends `iss` with every authorization response (RFC 9207).
    iss_required: bool,
}

impl Discovered {
    /// Whether every authorization response must carry `iss` (RFC 9207).
    pub fn iss_required(&self) -> bool {
        self.iss_required
    }
}

/// Warden's client at one server's authorization server.
pub struct OAuthClient {
    resource: String,
    client_id: String,
    secret: Option<SecretSource>,
    pinned: Option<String>,
    scopes: Vec<String>,
    redirect_uri: String,
    egress: warden_upstream::egress::Policy,
    discovered: Mutex<Option<(Instant, Arc<Discovered>)>>,
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    B64URL.encode(bytes)
}

/// The well-known URL of `url` with `name` inserted before its path (RFC 8414 §3, RFC 9728 §3).
fn well_known(url: &reqwest::Url, name: &str) -> String {
    let path = url.path().trim_end_matches('/');
    format!("{}/.well-known/{name}{path}", url.origin().ascii_serialization())
}

impl OAuthClient {
    /// The client of a server at `server_url`, from its validated section.
    pub fn new(
        o: &OAuthClientSection,
        server_url: &str,
        redirect_uri: String,
        base_dir: &std::path::Path,
        egress: warden_upstream::egress::Policy,
    ) -> OAuthClient {
        OAuthClient {
            resource: server_url.to_owned(),
            client_id: o.client_id.clone(),
            secret: SecretSource::of(o.client_secret_env.as_ref(), o.client_secret_file.as_ref(), base_dir),
            pinned: o.authorization_server.clone(),
            scopes: o.scopes.clone(),
            redirect_uri,
            egress,
            discovered: Mutex::new(None),
        }
    }

    /// A JSON document at `url`, fetched through the egress guard without following redirects.
    async fn fetch(&self, url: &str, what: &str) -> Result<Value, Refused> {
        let client = self
            .egress
            .client(url)
            .map_err(|e| refused(format!("the {what} URL is refused by the egress guard"), format!("{url}: {e}")))?
            .timeout(TIMEOUT)
            .build()
            .map_err(|_| refused("the HTTP client could not be built", "client"))?;
        let resp = client.get(url).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(|e| {
            let why = warden_upstream::egress::refusal(&e).unwrap_or_else(|| e.to_string());
            refused(format!("the {what} could not be fetched"), format!("{url}: {why}"))
        })?;
        let status = resp.status();
        if !status.is_success() {
            let shown = if status.is_redirection() {
                format!("the {what} answered with a redirect, which is not followed")
            } else {
                format!("the {what} was not found (HTTP {})", status.as_u16())
            };
            return Err(refused(shown, format!("{url}: HTTP {}", status.as_u16())));
        }
        let body = read_capped(resp).await.map_err(|why| refused(format!("the {what} could not be read"), why))?;
        serde_json::from_slice(&body).map_err(|_| refused(format!("the {what} is not JSON"), url.to_owned()))
    }

    /// The authorization server and its endpoints, discovered (or as last discovered).
    pub async fn discover(&self) -> Result<Arc<Discovered>, Refused> {
        if let Some((at, d)) = self.discovered.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && at.elapsed() < METADATA_FOR
        {
            return Ok(d.clone());
        }
        let issuer = match &self.pinned {
            Some(i) => i.clone(),
            None => self.issuer_from_resource_metadata().await?,
        };
        let issuer_url = self.egress.check_url(&issuer).map_err(|e| {
            refused("the authorization server is refused by the egress guard", format!("{issuer}: {e}"))
        })?;
        let mut metadata = None;
        let mut last = None;
        for url in [
            well_known(&issuer_url, "oauth-authorization-server"),
            format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
        ] {
            match self.fetch(&url, "authorization server metadata").await {
                Ok(m) => {
                    metadata = Some(m);
                    break;
                }
                Err(r) => last = Some(r),
            }
        }
        let Some(m) = metadata else {
            return Err(last.unwrap_or_else(|| refused("no authorization server metadata", "none")));
        };
        let d = Arc::new(self.check_metadata(&issuer, &m)?);
        *self.discovered.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), d.clone()));
        Ok(d)
    }

    async fn issuer_from_resource_metadata(&self) -> Result<String, Refused> {
        let resource = reqwest::Url::parse(&self.resource)
            .map_err(|_| refused("the server's URL is not valid", self.resource.clone()))?;
        let prm = self.fetch(&well_known(&resource, "oauth-protected-resource"), "protected resource metadata").await?;
        let named = prm.get("resource").and_then(Value::as_str).unwrap_or_default();
        if named.trim_end_matches('/') != self.resource.trim_end_matches('/') {
            return Err(refused(
                "the server's protected resource metadata names another resource",
                format!("{named:?} is not {:?}", self.resource),
            ));
        }
        let servers: Vec<&str> = prm
            .get("authorization_servers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match servers.as_slice() {
            [one] => {
                let u = reqwest::Url::parse(one).map_err(|_| {
                    refused("the authorization server the server names is not a URL", (*one).to_owned())
                })?;
                browser_url(&u).map_err(|why| {
                    refused(format!("the authorization server the server names is refused: {why}"), (*one).to_owned())
                })?;
                Ok((*one).to_owned())
            }
            [] => Err(refused("the server's protected resource metadata names no authorization server", "")),
            _ => Err(refused(
                "the server names several authorization servers; pin one with authorization_server",
                servers.join(" "),
            )),
        }
    }

    fn check_metadata(&self, issuer: &str, m: &Value) -> Result<Discovered, Refused> {
        let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let bad =
            |why: String| refused(format!("the authorization server's metadata is refused: {why}"), issuer.to_owned());
        if text("issuer") != issuer {
            return Err(bad("it names another issuer".into()));
        }
        let auth = reqwest::Url::parse(&text("authorization_endpoint"))
            .map_err(|_| bad("its authorization_endpoint is not a URL".into()))?;
        browser_url(&auth).map_err(|why| bad(format!("its authorization_endpoint: {why}")))?;
        let token = self.egress.check_url(&text("token_endpoint")).map_err(|why| {
            refused(
                "the authorization server's metadata is refused: its token_endpoint is refused by the egress guard \
                 (the gateway's log says why)",
                format!("{issuer}: token_endpoint: {why}"),
            )
        })?;
        let s256 = m
            .get("code_challenge_methods_supported")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "S256"));
        if !s256 {
            return Err(bad("it does not support PKCE with S256".into()));
        }
        let iss_required = m.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true));
        Ok(Discovered { issuer: issuer.to_owned(), authorization_endpoint: auth, token_endpoint: token, iss_required })
    }

    /// Where to send the browser for an authorization with `state` and PKCE `verifier`.
    fn authorization_url(&self, d: &Discovered, state: &str, verifier: &str) -> String {
        self.authorization_url_with(d, state, verifier, &[])
    }

    /// The authorization endpoint URL for a browser, with `extra` parameters (an OpenID
    /// Connect `nonce`).
    pub fn authorization_url_with(
        &self,
        d: &Discovered,
        state: &str,
        verifier: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = d.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", state)
                .append_pair("resource", &self.resource);
            if !self.scopes.is_empty() {
                q.append_pair("scope", &self.scopes.join(" "));
            }
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    fn token_client(&self, d: &Discovered) -> Result<reqwest::Client, Refused> {
        self.egress
            .client(d.token_endpoint.as_str())
            .map_err(|e| refused("the token endpoint is refused by the egress guard", e))?
            .timeout(TIMEOUT)
            .build()
            .map_err(|_| refused("the HTTP client could not be built", "client"))
    }

    /// Redeems `code` with PKCE `verifier`.
    pub async fn redeem(&self, d: &Discovered, code: &str, verifier: &str) -> Result<Granted, Refused> {
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("code_verifier", verifier.to_owned()),
            ("resource", self.resource.clone()),
        ];
        let client = self.token_client(d)?;
        token_request(&client, &d.token_endpoint, &self.client_id, self.secret.as_ref(), form, None).await
    }

    /// A new access token from `refresh`.
    pub async fn refresh(&self, refresh: &str) -> Result<Granted, Refused> {
        let d = self.discover().await?;
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.to_owned()),
            ("resource", self.resource.clone()),
        ];
        if !self.scopes.is_empty() {
            form.push(("scope", self.scopes.join(" ")));
        }
        let client = self.token_client(&d)?;
        token_request(&client, &d.token_endpoint, &self.client_id, self.secret.as_ref(), form, None).await
    }
}

/// One caller's authorization of one server, from the link to the callback.
pub struct Flow {
    /// The server.
    pub server: String,
    /// The caller.
    pub principal: Arc<Principal>,
    link: String,
    created: Instant,
    /// The sign-in at the gateway's issuer in progress: its state and PKCE verifier.
    sign_in: Option<(String, String)>,
    /// SHA-256 of the cookie of the browser that last opened the link.
    binding: Option<[u8; 32]>,
    /// Set once the browser signed in as the flow's caller: the server's authorization server
    /// (fixed then, used at the callback), its state and PKCE verifier.
    verified: Option<(Arc<Discovered>, String, String)>,
}

/// The flows pending, by link id.
#[derive(Default)]
pub struct Flows {
    by_link: Mutex<HashMap<String, Flow>>,
}

/// What the callback found.
pub struct Completed {
    /// The server authorized.
    pub server: String,
    /// The caller who authorized it.
    pub principal: Arc<Principal>,
    /// The tokens.
    pub granted: Granted,
    /// When the grant's authority began (before the code was redeemed): a revocation after it
    /// leaves the grant standing, one before it does not.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Why a step was refused: the page's and audit row's reason, and the flow's server and caller
/// when the request named a flow.
pub struct FlowRefused {
    /// What the page and the audit row say.
    pub why: String,
    /// The flow's server and caller.
    pub flow: Option<(String, Arc<Principal>)>,
}

fn refusal(why: &str, flow: Option<&Flow>) -> FlowRefused {
    FlowRefused { why: why.to_owned(), flow: flow.map(|f| (f.server.clone(), f.principal.clone())) }
}

/// Most flows one caller may have pending; a new one replaces its oldest.
const FLOWS_PER_CALLER: usize = 4;

/// The name of the cookie binding a browser to the flow of link `link`.
pub fn cookie_name(link: &str) -> String {
    format!("warden_oauth_{}", &link[..link.len().min(16)])
}

/// Whether `cookies` hold the one `flow` was bound to.
fn bound(flow: &Flow, cookies: &HashMap<String, String>) -> bool {
    let cookie = cookies.get(&cookie_name(&flow.link));
    flow.binding.zip(cookie).is_some_and(|(b, c)| constant_eq(&b, &Sha256::digest(c.as_bytes())))
}

/// The `iss` of an authorization response checked against `d` (RFC 9207).
fn check_iss(query: &HashMap<String, String>, d: &Discovered) -> Result<(), &'static str> {
    match query.get("iss") {
        Some(iss) if iss != &d.issuer => Err("the response's iss is not the issuer"),
        None if d.iss_required => Err("the response has no iss, which its issuer sends"),
        _ => Ok(()),
    }
}

/// The code of an authorization response, or why there is none.
fn code_of(query: &HashMap<String, String>) -> Result<&str, String> {
    if let Some(e) = query.get("error") {
        let code: String = e.chars().filter(|c| c.is_ascii_lowercase() || *c == '_').take(40).collect();
        return Err(format!("the authorization server answered {code}"));
    }
    query.get("code").map(String::as_str).filter(|c| !c.is_empty()).ok_or_else(|| "the response has no code".into())
}

impl Flows {
    /// The link for `principal` to authorize `server`: the pending one if it has one not yet
    /// signed in, or a new one. `origin` is the gateway's public origin.
    pub fn link(&self, server: &str, principal: &Arc<Principal>, origin: &str) -> String {
        let mut flows = self.by_link.lock().unwrap_or_else(|p| p.into_inner());
        flows.retain(|_, f| f.created.elapsed() < FLOW_LIFETIME);
        let key = principal.identity_key();
        let mine: Vec<(Instant, String, bool)> = flows
            .iter()
            .filter(|(_, f)| f.principal.identity_key() == key)
            .map(|(id, f)| (f.created, id.clone(), f.server == server && f.verified.is_none()))
            .collect();
        if let Some((_, id, _)) = mine.iter().find(|(_, _, reusable)| *reusable) {
            return format!("{origin}{START_PATH}/{id}");
        }
        // A caller cannot crowd out others: its oldest flow goes first, then the oldest of all.
        if mine.len() >= FLOWS_PER_CALLER
            && let Some((_, oldest, _)) = mine.iter().min_by_key(|(created, _, _)| *created)
        {
            flows.remove(oldest);
        }
        if flows.len() >= MAX_FLOWS
            && let Some(oldest) = flows.iter().min_by_key(|(_, f)| f.created).map(|(id, _)| id.clone())
        {
            flows.remove(&oldest);
        }
        let id = random_token();
        flows.insert(
            id.clone(),
            Flow {
                server: server.to_owned(),
                principal: principal.clone(),
                link: id.clone(),
                created: Instant::now(),
                sign_in: None,
                binding: None,
                verified: None,
            },
        );
        format!("{origin}{START_PATH}/{id}")
    }

    /// A browser opened link `id` with cookie `cookie` (its value, set on this answer): the flow
    /// is bound to this browser and the browser sent to sign in at the gateway's own issuer
    /// (`sign_in`), so that only the caller the link was made for can go on. A link may be
    /// opened again (a preview bot does not use it up) until someone has signed in on it.
    pub async fn open(&self, id: &str, cookie: &str, sign_in: &OAuthClient) -> Result<String, FlowRefused> {
        {
            let flows = self.by_link.lock().unwrap_or_else(|p| p.into_inner());
            match flows.get(id) {
                None => {
                    return Err(refusal(
                        "this link is not known (it may have expired, or the gateway restarted)",
                        None,
                    ));
                }
                Some(f) if f.created.elapsed() >= FLOW_LIFETIME => {
                    return Err(refusal("this link has expired", Some(f)));
                }
                Some(f) if f.verified.is_some() => return Err(refusal("this link was already used", Some(f))),
                Some(_) => {}
            }
        }
        let d = sign_in.discover().await.map_err(|r| {
            tracing::warn!("the gateway's issuer could not be discovered for sign-in: {}", r.logged);
            FlowRefused { why: format!("sign-in is not available: {}", r.shown), flow: None }
        })?;
        let mut flows = self.by_link.lock().unwrap_or_else(|p| p.into_inner());
        let flow = flows
            .get_mut(id)
            .filter(|f| f.verified.is_none())
            .ok_or_else(|| refusal("this link was already used", None))?;
        let (state, verifier) = (random_token(), random_token());
        let location = sign_in.authorization_url(&d, &state, &verifier);
        flow.sign_in = Some((state, verifier));
        flow.binding = Some(Sha256::digest(cookie.as_bytes()).into());
        Ok(location)
    }

    /// The browser signed in at the gateway's issuer: the token it got is checked by `identify`
    /// (the gateway's own validation), and must name the flow's caller. Then the browser is sent
    /// to the server's authorization server.
    pub async fn signed_in(
        &self,
        query: &HashMap<String, String>,
        cookies: &HashMap<String, String>,
        sign_in: &OAuthClient,
        clients: &HashMap<String, OAuthClient>,
        identify: impl AsyncFnOnce(&str) -> Option<Arc<Principal>>,
    ) -> Result<String, FlowRefused> {
        let state = query.get("state").map(String::as_str).unwrap_or_default();
        let (id, verifier, server, principal) = {
            let mut flows = self.by_link.lock().unwrap_or_else(|p| p.into_inner());
            let found = flows.iter_mut().find(|(_, f)| {
                f.sign_in
                    .as_ref()
                    .is_some_and(|(s, _)| !state.is_empty() && constant_eq(s.as_bytes(), state.as_bytes()))
            });
            let Some((id, f)) = found else { return Err(refusal("unknown or already used sign-in state", None)) };
            if !bound(f, cookies) {
                return Err(refusal("the sign-in belongs to another browser", Some(f)));
            }
            let (_, verifier) = f.sign_in.take().expect("found by it");
            (id.clone(), verifier, f.server.clone(), f.principal.clone())
        };
        let flow_of = || Some((server.clone(), principal.clone()));
        let fail = |why: &str| {
            self.by_link.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            FlowRefused { why: why.to_owned(), flow: flow_of() }
        };
        let d = sign_in.discover().await.map_err(|r| fail(&format!("sign-in failed: {}", r.shown)))?;
        check_iss(query, &d).map_err(|why| fail(&format!("sign-in refused: {why}")))?;
        let code = code_of(query).map_err(|why| fail(&format!("sign-in refused: {why}")))?;
        let granted = sign_in.redeem(&d, code, &verifier).await.map_err(|r| {
            tracing::warn!("redeeming a sign-in code failed: {}", r.logged);
            fail(&format!("sign-in failed: {}", r.shown))
        })?;
        let Some(who) = identify(&granted.token).await else {
            return Err(fail("the sign-in's token is not valid for this gateway"));
        };
        let same =
            who.subject == principal.subject && who.tenant == principal.tenant && who.authority == principal.authority;
        if !same {
            return Err(fail("this link was made for another user: only the user who asked for it can use it"));
        }
        let client = clients.get(&server).ok_or_else(|| fail("the server no longer authorizes this way"))?;
        let upstream = client.discover().await.map_err(|r| {
            tracing::warn!(server = %server, "authorization server discovery failed: {}", r.logged);
            fail(&r.shown)
        })?;
        let (state, verifier) = (random_token(), random_token());
        let location = client.authorization_url(&upstream, &state, &verifier);
        let mut flows = self.by_link.lock().unwrap_or_else(|p| p.into_inner());
        let flow = flows.get_mut(&id).ok_or_else(|| refusal("the link expired meanwhile", None))?;
        flow.verified = Some((upstream, state, verifier));
        Ok(location)
    }

    /// The callback: the flow of `state`, signed in and bound to this browser, is ended
    /// (whatever follows) and its code redeemed at the authorization server fixed at sign-in.
    pub async fn complete(
        &self,
        query: &HashMap<String, String>,
        cookies: &HashMap<String, String>,
        clients: &HashMap<String, OAuthClient>,
    ) -> Result<Completed, FlowRefused> {
        let state = query.get("state").map(String::as_str).unwrap_or_default();
        let flow = {
            let mut flows = self.by_link.lock().unwrap_or_else(|p| p.into_inner());
            let id = flows
                .iter()
                .find(|(_, f)| {
                    f.verified
                        .as_ref()
                        .is_some_and(|(_, s, _)| !state.is_empty() && constant_eq(s.as_bytes(), state.as_bytes()))
                })
                .map(|(id, _)| id.clone());
            let Some(id) = id else { return Err(refusal("unknown or already used state", None)) };
            let f = &flows[&id];
            if !bound(f, cookies) {
                // Not this browser's flow: it stays for the browser that opened the link.
                return Err(refusal("the state belongs to another browser's authorization", Some(f)));
            }
            flows.remove(&id).expect("found above")
        };
        if flow.created.elapsed() >= FLOW_LIFETIME {
            return Err(refusal("the authorization took too long", Some(&flow)));
        }
        let Some((d, _, verifier)) = &flow.verified else { return Err(refusal("not signed in", Some(&flow))) };
        check_iss(query, d).map_err(|why| refusal(why, Some(&flow)))?;
        let code = code_of(query).map_err(|why| refusal(&why, Some(&flow)))?;
        let client = clients.get(&flow.server).ok_or_else(|| refusal("the server is not configured", Some(&flow)))?;
        let since = chrono::Utc::now();
        let granted = client.redeem(d, code, verifier).await.map_err(|r| {
            tracing::warn!(server = %flow.server, "redeeming an authorization code failed: {}", r.logged);
            refusal(&format!("the code was not redeemed: {}", r.shown), Some(&flow))
        })?;
        Ok(Completed { server: flow.server, principal: flow.principal, granted, since })
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_insert_the_name_before_the_path() {
        let u = reqwest::Url::parse("https://as.example/tenant/1").unwrap();
        assert_eq!(
            well_known(&u, "oauth-authorization-server"),
            "https://as.example/.well-known/oauth-authorization-server/tenant/1"
        );
        let root = reqwest::Url::parse("https://as.example/").unwrap();
        assert_eq!(
            well_known(&root, "oauth-protected-resource"),
            "https://as.example/.well-known/oauth-protected-resource"
        );
    }
}
