//! The pages a caller's browser visits to authorize Warden at a server's authorization server:
//! `/oauth/start/{link}` (from the link in a URL elicitation) and `/oauth/callback` (where the
//! authorization server sends it back). Both answer small pages that load nothing, keep no
//! referrer (the callback's URL carries the code) and are never cached.

use super::guard::OriginGuard;
use crate::config::{CALLBACK_PATH, START_PATH};
use crate::gateway::Gateway;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use std::collections::HashMap;
use std::sync::Arc;

/// The cookie binding a browser to the flow it started.
const COOKIE: &str = "warden_oauth";

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

async fn start(State(c): State<Arc<Consent>>, Path(link): Path<String>, headers: HeaderMap) -> Response {
    if let Err(why) = c.guard.check_host(&headers) {
        return page(StatusCode::FORBIDDEN, "Refused", why);
    }
    let cookie = {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        hex::encode(bytes)
    };
    match c.gateway.credentials.open_flow(&link, &cookie).await {
        Ok(location) => {
            let secure = if c.secure { "; Secure" } else { "" };
            Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, location)
                .header(
                    header::SET_COOKIE,
                    format!("{COOKIE}={cookie}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=600{secure}"),
                )
                .header(header::CACHE_CONTROL, "no-store")
                .header("referrer-policy", "no-referrer")
                .body(Body::empty())
                .unwrap_or_default()
        }
        Err(why) => page(StatusCode::BAD_REQUEST, "Authorization not started", &why),
    }
}

async fn callback(State(c): State<Arc<Consent>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    if let Err(why) = c.guard.check_host(&headers) {
        return page(StatusCode::FORBIDDEN, "Refused", why);
    }
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned());
    match c.gateway.credentials.finish_flow(&query, cookie.as_deref()).await {
        Ok(server) => page(
            StatusCode::OK,
            "Warden is authorized",
            &format!("Warden may now use {server} on your behalf. You can close this window and retry."),
        ),
        Err(why) => page(StatusCode::BAD_REQUEST, "Authorization refused", &why),
    }
}
