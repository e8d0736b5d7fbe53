//! Signing operators in and out: OpenID Connect (authorization code, PKCE S256, `state` bound
//! to the browser by a cookie, `nonce` bound to the ID token, `iss` checked when sent) at the
//! gateway's issuer, or an admin API key for break-glass. Either way the operator must be the
//! admin class by the rules the admin API applies, and every sign-in, refused or not, is
//! audited.

use super::session::{Operator, cookie};
use super::{Console, ConsoleState, problem, redirect};
use crate::config::{Config, OAuthClientSection};
use crate::credentials::oauth::{OAuthClient, random_token};
use crate::error::GatewayError;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_policy::{Authority, Principal, PrincipalClass};

/// Where the identity provider sends the browser back.
pub const CALLBACK: &str = "/console/auth/callback";
/// The cookie carrying a sign-in in progress, sealed, in the browser that started it.
const FLOW_COOKIE: &str = "warden-console-signin";
/// The same on https, bound to this origin.
const FLOW_COOKIE_HOST: &str = "__Host-warden-console-signin";
/// How long a sign-in may take.
const FLOW_LIFETIME: Duration = Duration::from_secs(600);
/// Most finished sign-ins remembered, so that none is used twice.
const MAX_USED: usize = 10_000;
/// Failed API-key sign-ins allowed per minute, for the whole console.
const KEY_FAILURES_PER_MINUTE: u32 = 10;

/// One sign-in in progress. It lives in the browser that started it, in a cookie sealed with a
/// key of this process: nothing is kept here until the browser comes back, so starting
/// sign-ins costs the console nothing.
#[derive(serde::Serialize, serde::Deserialize)]
struct Flow {
    state: String,
    verifier: String,
    nonce: String,
    started: i64,
}

/// The console's client at the issuer.
pub struct SignIn {
    client: OAuthClient,
    client_id: String,
    seal: ring::hmac::Key,
    /// States of sign-ins that came back, with when they started: each is good once, for as
    /// long as its cookie is.
    used: Mutex<HashMap<String, i64>>,
}

impl SignIn {
    fn sealed(&self, flow: &Flow) -> String {
        let body = B64.encode(serde_json::to_vec(flow).unwrap_or_default());
        let tag = ring::hmac::sign(&self.seal, body.as_bytes());
        format!("{body}.{}", B64.encode(tag.as_ref()))
    }

    fn opened(&self, cookie: &str) -> Option<Flow> {
        let (body, tag) = cookie.split_once('.')?;
        ring::hmac::verify(&self.seal, body.as_bytes(), &B64.decode(tag).ok()?).ok()?;
        let flow: Flow = serde_json::from_slice(&B64.decode(body).ok()?).ok()?;
        let age = chrono::Utc::now().timestamp() - flow.started;
        (0..FLOW_LIFETIME.as_secs() as i64).contains(&age).then_some(flow)
    }

    /// Whether the sign-in `flow` comes back for the first time (and from now on, never again).
    /// Entries last as long as the cookie could, by the same clock.
    fn first_use(&self, flow: &Flow) -> bool {
        let now = chrono::Utc::now().timestamp();
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, started| now - *started < FLOW_LIFETIME.as_secs() as i64);
        if used.len() >= MAX_USED
            && let Some(oldest) = used.iter().min_by_key(|(_, started)| **started).map(|(k, _)| k.clone())
        {
            used.remove(&oldest);
        }
        used.insert(flow.state.clone(), flow.started).is_none()
    }
}

impl SignIn {
    /// The sign-in `[console] sign_in` describes, returning to `origin`.
    pub fn of(config: &Config, origin: &str) -> Result<Option<SignIn>, GatewayError> {
        let (Some(c), Some(o)) = (&config.console.sign_in, &config.auth.oauth) else { return Ok(None) };
        let egress = config.egress.policy().map_err(|e| GatewayError::Config(format!("egress.allow: {e}")))?;
        let section = OAuthClientSection {
            client_id: c.client_id.clone(),
            client_secret_env: c.client_secret_env.clone(),
            client_secret_file: c.client_secret_file.clone(),
            authorization_server: Some(o.issuer.clone()),
            scopes: vec!["openid".to_owned()],
        };
        // The resource asked for is the gateway's: an access token, if the issuer binds one, is
        // for Warden and nothing else.
        let resource = config.gateway.resource.clone().unwrap_or_else(|| origin.to_owned());
        let client = OAuthClient::new(&section, &resource, format!("{origin}{CALLBACK}"), &config.base_dir, egress);
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        Ok(Some(SignIn {
            client,
            client_id: c.client_id.clone(),
            seal: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            used: Mutex::new(HashMap::new()),
        }))
    }
}

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/console/auth/start", axum::routing::get(start))
        .route(CALLBACK, axum::routing::get(callback))
        .route("/console/auth/key", axum::routing::post(with_key))
        .route("/console/auth/logout", axum::routing::post(logout))
        .route("/console/api/session", axum::routing::get(session))
}

/// What ways of signing in are offered.
fn offered(c: &Console) -> Value {
    json!({ "oidc": c.sign_in.is_some(), "apiKey": c.api_key_sign_in })
}

fn described(o: &Operator) -> Value {
    json!({
        "subject": o.principal.subject,
        "tenant": o.principal.tenant,
        "class": "admin",
        "via": o.via,
        "csrf": o.csrf,
        "expiresAt": o.expires_at.to_rfc3339(),
    })
}

async fn session(State(c): ConsoleState, headers: HeaderMap) -> Response {
    match c.reader(&headers) {
        Ok(o) => {
            let mut body = described(&o);
            body["signIn"] = offered(&c);
            Json(body).into_response()
        }
        Err(r) if r.0 == StatusCode::UNAUTHORIZED => {
            (StatusCode::UNAUTHORIZED, Json(json!({ "error": "sign in to use the console", "signIn": offered(&c) })))
                .into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// Back to the console's sign-in panel with why, as a code the page turns into its own words.
fn back_with(code: &'static str) -> Response {
    redirect(&format!("/console/?error={code}"))
}

impl Console {
    /// Records a sign-in and opens the session, or refuses a principal that is not an admin
    /// (`not-admin`), or one the audit log cannot record (`not-recorded`).
    async fn admit(&self, principal: Arc<Principal>, via: &'static str) -> Result<(String, Operator), &'static str> {
        let who = principal.subject.clone();
        if principal.class != PrincipalClass::Admin {
            self.refused_sign_in(&who, via, "not an admin").await;
            tracing::warn!(subject = %who, "refused a console sign-in by a principal that is not an admin");
            return Err("not-admin");
        }
        // A sign-in the audit log cannot record does not happen.
        if let Err(e) = self.gateway.auditor.operator_action("console_sign_in", "ALLOW", &who, via).await {
            tracing::error!("a console sign-in was refused: the audit log did not record it: {}", e.message);
            return Err("not-recorded");
        }
        Ok(self.sessions.open(principal, via))
    }

    /// Records a refused sign-in; `who` is whoever it claimed or was found to be.
    async fn refused_sign_in(&self, who: &str, via: &str, why: &str) {
        let _ = self.gateway.auditor.operator_action("console_sign_in", "DENY", who, &format!("{via}: {why}")).await;
    }

    fn flow_cookie_name(&self) -> &'static str {
        if self.secure { FLOW_COOKIE_HOST } else { FLOW_COOKIE }
    }

    fn flow_cookie(&self, value: Option<&str>) -> String {
        let age = if value.is_some() { FLOW_LIFETIME.as_secs() } else { 0 };
        let (path, secure) = if self.secure { ("/", "; Secure") } else { ("/console/auth", "") };
        format!(
            "{}={}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={age}{secure}",
            self.flow_cookie_name(),
            value.unwrap_or("")
        )
    }

    /// Sign-in runs on the console's own origin: its cookies and the identity provider's
    /// redirect must name the same host. Another name it answers to is sent there first.
    fn canonical(&self, headers: &HeaderMap, path: &str) -> Option<Response> {
        // Behind a proxy (a public URL) the Host it forwards is its own business.
        if self.config.console.public_url.is_some() {
            return None;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        let own = url::Url::parse(&self.origin).ok()?.authority().to_ascii_lowercase();
        (host != own).then(|| redirect(&format!("{}{path}", self.origin)))
    }
}

async fn start(State(c): ConsoleState, headers: HeaderMap) -> Response {
    if let Err(r) = c.check_host(&headers) {
        return r.into_response();
    }
    if let Some(moved) = c.canonical(&headers, "/console/auth/start") {
        return moved;
    }
    let Some(s) = &c.sign_in else { return back_with("not-configured") };
    let d = match s.client.discover().await {
        Ok(d) => d,
        Err(r) => {
            tracing::warn!("console sign-in: {}", r.logged);
            return back_with("unavailable");
        }
    };
    let flow = Flow {
        state: random_token(),
        verifier: random_token(),
        nonce: random_token(),
        started: chrono::Utc::now().timestamp(),
    };
    let location = s.client.authorization_url_with(&d, &flow.state, &flow.verifier, &[("nonce", &flow.nonce)]);
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::SET_COOKIE, c.flow_cookie(Some(&s.sealed(&flow))))
        .body(Body::empty())
        .unwrap_or_default()
}

async fn callback(State(c): ConsoleState, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    if let Err(r) = c.check_host(&headers) {
        return r.into_response();
    }
    let Some(s) = &c.sign_in else { return back_with("not-configured") };
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let state = q.get("state").cloned().unwrap_or_default();
    // The sign-in must come back to the browser that started it, within its time, once.
    let Some(flow) = cookie(&headers, c.flow_cookie_name()).and_then(|v| s.opened(&v)) else {
        return back_with("other-browser");
    };
    if flow.state != state {
        return back_with("other-browser");
    }
    if !s.first_use(&flow) {
        return back_with("unknown-flow");
    }
    if q.contains_key("error") {
        return back_with("provider-refused");
    }
    let d = match s.client.discover().await {
        Ok(d) => d,
        Err(_) => return back_with("unavailable"),
    };
    match q.get("iss") {
        Some(iss) if iss != &d.issuer => return back_with("wrong-issuer"),
        None if d.iss_required() => return back_with("no-issuer"),
        _ => {}
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else { return back_with("no-code") };
    let granted = match s.client.redeem(&d, code, &flow.verifier).await {
        Ok(g) => g,
        Err(r) => {
            tracing::warn!("console sign-in: {}", r.logged);
            c.refused_sign_in("unknown", "oidc", &r.shown).await;
            return back_with("provider-refused");
        }
    };
    let Some(id_token) = granted.id_token else { return back_with("no-id-token") };
    let principal = match c.gateway.authenticator.identify(&id_token, &s.client_id, &flow.nonce).await {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!("console sign-in refused: {why}");
            c.refused_sign_in("unknown", "oidc", &why).await;
            return back_with("token-refused");
        }
    };
    match c.admit(principal, "oidc").await {
        Ok((token, _)) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, "/console/")
            .header(header::SET_COOKIE, c.session_cookie(Some(&token)))
            .header(header::SET_COOKIE, c.flow_cookie(None))
            .body(Body::empty())
            .unwrap_or_default(),
        Err(code) => back_with(code),
    }
}

#[derive(serde::Deserialize)]
struct KeyBody {
    key: String,
}

/// Break-glass: an API key whose principal is the admin class opens a session. Failures are
/// limited for the whole console, so keys cannot be guessed through it.
async fn with_key(State(c): ConsoleState, headers: HeaderMap, body: Option<Json<KeyBody>>) -> Response {
    if let Err(r) = c.same_origin(&headers) {
        return r.into_response();
    }
    if !c.api_key_sign_in {
        return problem(StatusCode::FORBIDDEN, "API-key sign-in is turned off ([console] api_key_sign_in)");
    }
    let Some(Json(body)) = body else { return problem(StatusCode::BAD_REQUEST, "send {\"key\": \"...\"}") };
    // A right key always signs in; wrong ones are limited (and audited), so guessing through
    // the panel is slow and a flood of wrong keys locks nobody out.
    let mut h = HeaderMap::new();
    let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {}", body.key.trim())) else {
        return problem(StatusCode::UNAUTHORIZED, "that is not an API key");
    };
    h.insert(header::AUTHORIZATION, value);
    let found = match c.gateway.authenticator.operator_key(&h) {
        Some(p) => Some(p),
        None => match c.gateway.authenticator.authenticate(&h, None).await {
            Ok(p) if p.authority == Authority::ApiKey => Some(p),
            _ => None,
        },
    };
    let Some(principal) = found else {
        let over = {
            let mut f = c.key_failures.lock().unwrap_or_else(|p| p.into_inner());
            if f.0.elapsed() > Duration::from_secs(60) {
                *f = (Instant::now(), 0);
            }
            f.1 += 1;
            f.1 > KEY_FAILURES_PER_MINUTE
        };
        if over {
            return problem(StatusCode::TOO_MANY_REQUESTS, "too many failed sign-ins: wait a minute");
        }
        c.refused_sign_in("unknown", "api_key", "not a key of this gateway").await;
        return problem(StatusCode::UNAUTHORIZED, "that is not an API key of this gateway");
    };
    match c.admit(principal, "api_key").await {
        Ok((token, operator)) => {
            let mut out = described(&operator);
            out["signIn"] = offered(&c);
            ([(header::SET_COOKIE, c.session_cookie(Some(&token)))], Json(out)).into_response()
        }
        Err("not-recorded") => {
            problem(StatusCode::SERVICE_UNAVAILABLE, "the sign-in could not be recorded, so it did not happen")
        }
        Err(_) => problem(StatusCode::FORBIDDEN, "only admin principals may use the console"),
    }
}

async fn logout(State(c): ConsoleState, headers: HeaderMap) -> Response {
    let operator = match c.writer(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if let Some(token) = cookie(&headers, c.cookie_name()) {
        c.sessions.close(&token);
    }
    // Its live streams look again now, and end.
    c.touch();
    let _ =
        c.gateway.auditor.operator_action("console_sign_out", "ALLOW", &operator.principal.subject, operator.via).await;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::SET_COOKIE, c.session_cookie(None))
        .body(Body::empty())
        .unwrap_or_default()
}
