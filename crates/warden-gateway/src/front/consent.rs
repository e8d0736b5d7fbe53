//! The pages a caller's browser visits to authorize Warden at a server's authorization server:
//! `/oauth/start/{link}` (from the link in a URL elicitation), which sends it to sign in at the
//! gateway's own issuer; `/oauth/signed-in`, where the sign-in must name the caller the link was
//! made for, and which sends it on to the server's authorization server; and `/oauth/callback`,
//! where that server sends it back. They answer with redirects or small pages that load nothing,
//! keep no referrer (the URLs carry codes) and are never cached.

use super::guard::OriginGuard;
use crate::config::{CALLBACK_PATH, SIGNED_IN_PATH, START_PATH};
use crate::credentials::oauth::{cookie_name, random_token};
use crate::gateway::Gateway;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use std::collections::HashMap;
use std::sync::Arc;

struct Consent {
    gateway: Arc<Gateway>,
    guard: OriginGuard,
    /// Whether the cookie is `Secure` (the callback is https).
    secure: bool,
}

/// The consent routes, when a server needs its callers' own authorization.
pub fn routes(gateway: Arc<Gateway>, guard: OriginGuard, secure: bool) -> Router {
    let state = Arc::new(Consent { gateway, guard, secure });
    Router::new()
        .route(&format!("{START_PATH}/{{link}}"), axum::routing::get(start))
        .route(SIGNED_IN_PATH, axum::routing::get(signed_in))
        .route(CALLBACK_PATH, axum::routing::get(callback))
        .with_state(state)
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1><p>{x}</p></body></html>",
        t = escape(title),
        x = escape(text)
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("referrer-policy", "no-referrer")
        .header("content-security-policy", "default-src 'none'")
        .header("x-frame-options", "DENY")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut r = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .header("referrer-policy", "no-referrer");
    if let Some(c) = cookie {
        r = r.header(header::SET_COOKIE, c);
    }
    r.body(Body::empty()).unwrap_or_default()
}

/// The query of a request, and its cookies, by name.
fn read(query: Option<String>, headers: &HeaderMap) -> (HashMap<String, String>, HashMap<String, String>) {
    let query = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (query, cookies)
}

async fn start(State(c): State<Arc<Consent>>, Path(link): Path<String>, headers: HeaderMap) -> Response {
    if let Err(why) = c.guard.check_host(&headers) {
        return page(StatusCode::FORBIDDEN, "Refused", why);
    }
    let cookie = random_token();
    match c.gateway.credentials.open_flow(&link, &cookie).await {
        Ok(location) => {
            let secure = if c.secure { "; Secure" } else { "" };
            let name = cookie_name(&link);
            redirect(
                &location,
                Some(format!("{name}={cookie}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=600{secure}")),
            )
        }
        Err(why) => page(StatusCode::BAD_REQUEST, "Authorization not started", &why),
    }
}

async fn signed_in(State(c): State<Arc<Consent>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    if let Err(why) = c.guard.check_host(&headers) {
        return page(StatusCode::FORBIDDEN, "Refused", why);
    }
    let (query, cookies) = read(query, &headers);
    let authenticator = c.gateway.authenticator.clone();
    // The sign-in's token is validated as any caller's token is (issuer, audience, signature).
    let identify = async move |token: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, http::HeaderValue::from_str(&format!("Bearer {token}")).ok()?);
        authenticator.authenticate(&h, None).await.ok()
    };
    match c.gateway.credentials.signed_in_flow(&query, &cookies, identify).await {
        Ok(location) => redirect(&location, None),
        Err(why) => page(StatusCode::BAD_REQUEST, "Authorization refused", &why),
    }
}

async fn callback(State(c): State<Arc<Consent>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    if let Err(why) = c.guard.check_host(&headers) {
        return page(StatusCode::FORBIDDEN, "Refused", why);
    }
    let (query, cookies) = read(query, &headers);
    match c.gateway.credentials.finish_flow(&query, &cookies).await {
        Ok(server) => page(
            StatusCode::OK,
            "Warden is authorized",
            &format!("Warden may now use {server} on your behalf. You can close this window and retry."),
        ),
        Err(why) => page(StatusCode::BAD_REQUEST, "Authorization refused", &why),
    }
}
