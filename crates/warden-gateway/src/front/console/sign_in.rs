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
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_policy::{Authority, Principal, PrincipalClass};

/// Where the identity provider sends the browser back.
pub const CALLBACK: &str = "/console/auth/callback";
/// The cookie binding a sign-in to the browser that started it.
const FLOW_COOKIE: &str = "warden-console-signin";
/// How long a sign-in may take.
const FLOW_LIFETIME: Duration = Duration::from_secs(600);
/// Most sign-ins in progress at once.
const MAX_FLOWS: usize = 1_000;
/// Failed API-key sign-ins allowed per minute, for the whole console.
const KEY_FAILURES_PER_MINUTE: u32 = 10;

/// One sign-in in progress, by its `state`.
struct Flow {
    browser: String,
    verifier: String,
    nonce: String,
    started: Instant,
}

/// The console's client at the issuer.
pub struct SignIn {
    client: OAuthClient,
    client_id: String,
    flows: Mutex<HashMap<String, Flow>>,
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
        Ok(Some(SignIn { client, client_id: c.client_id.clone(), flows: Mutex::new(HashMap::new()) }))
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

/// Back to the console's sign-in panel, saying why (the page shows it as text).
fn back_with(why: &str) -> Response {
    let q: String = url::form_urlencoded::byte_serialize(why.as_bytes()).collect();
    redirect(&format!("/console/?error={q}"))
}

impl Console {
    /// Records a sign-in and opens the session, or refuses a principal that is not an admin.
    async fn admit(&self, principal: Arc<Principal>, via: &'static str) -> Result<(String, Operator), String> {
        let who = principal.subject.clone();
        if principal.class != PrincipalClass::Admin {
            let _ = self
                .gateway
                .auditor
                .operator_action("console_sign_in", "DENY", &who, &format!("{via}: not an admin"))
                .await;
            tracing::warn!(subject = %who, "refused a console sign-in by a principal that is not an admin");
            return Err("only admin principals may use the console".into());
        }
        // A sign-in the audit log cannot record does not happen.
        self.gateway
            .auditor
            .operator_action("console_sign_in", "ALLOW", &who, via)
            .await
            .map_err(|e| format!("the audit log did not record the sign-in ({})", e.message))?;
        Ok(self.sessions.open(principal, via))
    }

    fn flow_cookie(&self, value: Option<&str>) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        let age = if value.is_some() { FLOW_LIFETIME.as_secs() } else { 0 };
        format!(
            "{FLOW_COOKIE}={}; Path=/console/auth; HttpOnly; SameSite=Lax; Max-Age={age}{secure}",
            value.unwrap_or("")
        )
    }
}

async fn start(State(c): ConsoleState, headers: HeaderMap) -> Response {
    if let Err(r) = c.check_host(&headers) {
        return r.into_response();
    }
    let Some(s) = &c.sign_in else { return back_with("single sign-on is not configured") };
    let d = match s.client.discover().await {
        Ok(d) => d,
        Err(r) => {
            tracing::warn!("console sign-in: {}", r.logged);
            return back_with(&format!("sign-in is unavailable: {}", r.shown));
        }
    };
    let (state, browser, verifier, nonce) = (random_token(), random_token(), random_token(), random_token());
    let location = s.client.authorization_url_with(&d, &state, &verifier, &[("nonce", &nonce)]);
    {
        let mut flows = s.flows.lock().unwrap_or_else(|p| p.into_inner());
        flows.retain(|_, f| f.started.elapsed() < FLOW_LIFETIME);
        if flows.len() >= MAX_FLOWS {
            return back_with("too many sign-ins are in progress; try again in a few minutes");
        }
        flows.insert(state, Flow { browser: browser.clone(), verifier, nonce, started: Instant::now() });
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::SET_COOKIE, c.flow_cookie(Some(&browser)))
        .body(Body::empty())
        .unwrap_or_default()
}

async fn callback(State(c): ConsoleState, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    if let Err(r) = c.check_host(&headers) {
        return r.into_response();
    }
    let Some(s) = &c.sign_in else { return back_with("single sign-on is not configured") };
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let state = q.get("state").cloned().unwrap_or_default();
    // A state is good once, and only in the browser that started it.
    let flow = s.flows.lock().unwrap_or_else(|p| p.into_inner()).remove(&state);
    let Some(flow) = flow.filter(|f| f.started.elapsed() < FLOW_LIFETIME) else {
        return back_with("this sign-in is unknown, used or expired: start again");
    };
    if cookie(&headers, FLOW_COOKIE).as_deref() != Some(flow.browser.as_str()) {
        return back_with("this sign-in was started in another browser: start again");
    }
    if q.contains_key("error") {
        return back_with("the identity provider refused the sign-in");
    }
    let d = match s.client.discover().await {
        Ok(d) => d,
        Err(r) => return back_with(&format!("sign-in is unavailable: {}", r.shown)),
    };
    match q.get("iss") {
        Some(iss) if iss != &d.issuer => return back_with("the response names another issuer"),
        None if d.iss_required() => return back_with("the response does not name its issuer"),
        _ => {}
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else { return back_with("the response has no code") };
    let granted = match s.client.redeem(&d, code, &flow.verifier).await {
        Ok(g) => g,
        Err(r) => {
            tracing::warn!("console sign-in: {}", r.logged);
            return back_with(&format!("sign-in failed: {}", r.shown));
        }
    };
    let Some(id_token) = granted.id_token else { return back_with("the identity provider sent no ID token") };
    let principal = match c.gateway.authenticator.identify(&id_token, &s.client_id, &flow.nonce).await {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!("console sign-in refused: {why}");
            return back_with(&format!("sign-in refused: {why}"));
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
        Err(why) => back_with(&why),
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
    let failures = &c.key_failures;
    {
        let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.0.elapsed() > Duration::from_secs(60) {
            *f = (Instant::now(), 0);
        }
        if f.1 >= KEY_FAILURES_PER_MINUTE {
            return problem(StatusCode::TOO_MANY_REQUESTS, "too many failed sign-ins: wait a minute");
        }
    }
    let fail = |status: StatusCode, why: &str| {
        failures.lock().unwrap_or_else(|p| p.into_inner()).1 += 1;
        problem(status, why)
    };
    let mut h = HeaderMap::new();
    let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {}", body.key.trim())) else {
        return fail(StatusCode::UNAUTHORIZED, "that is not an API key");
    };
    h.insert(header::AUTHORIZATION, value);
    let principal = match c.gateway.authenticator.operator_key(&h) {
        Some(p) => p,
        None => match c.gateway.authenticator.authenticate(&h, None).await {
            Ok(p) if p.authority == Authority::ApiKey => p,
            _ => return fail(StatusCode::UNAUTHORIZED, "that is not an API key of this gateway"),
        },
    };
    match c.admit(principal, "api_key").await {
        Ok((token, operator)) => {
            let mut out = described(&operator);
            out["signIn"] = offered(&c);
            ([(header::SET_COOKIE, c.session_cookie(Some(&token)))], Json(out)).into_response()
        }
        Err(why) => fail(StatusCode::FORBIDDEN, &why),
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
    let _ =
        c.gateway.auditor.operator_action("console_sign_out", "ALLOW", &operator.principal.subject, operator.via).await;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::SET_COOKIE, c.session_cookie(None))
        .body(Body::empty())
        .unwrap_or_default()
}
