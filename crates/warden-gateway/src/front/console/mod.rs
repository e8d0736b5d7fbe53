//! The operator console: the approvals inbox, reviews of held definitions and quarantined
//! results, the inventory with containment, the audit log and the detection gates, in a
//! browser, served under `/console` on the admin listener.
//!
//! | route | what |
//! |---|---|
//! | `GET /console/`, `/console/assets/*` | the page and its script and styles, embedded in the binary |
//! | `GET /console/auth/start`, `/console/auth/callback` | OpenID Connect sign-in (code + PKCE + nonce) |
//! | `POST /console/auth/key`, `/console/auth/logout` | break-glass sign-in with an admin API key; sign-out |
//! | `GET /console/api/session` | who is signed in, and the CSRF token |
//! | `GET /console/api/events` | server-sent events: what changed |
//! | `/console/api/approvals…`, `/reviews`, `/pins…`, `/quarantine…` | the inbox and the reviews |
//! | `/console/api/inventory`, `/servers/{name}/contain`, `…/release` | servers and tools, containment |
//! | `/console/api/audit…`, `/chain`, `/gates` | the audit log, its chain, the gates |
//!
//! Who may use it: an admin-class principal, by the same rules as the admin API, signed in
//! through the configured issuer or with an admin API key. The session is an opaque cookie
//! (HttpOnly, SameSite=Lax, Secure and `__Host-` on https); every state change also needs the
//! session's CSRF token in a header, a JSON body, and no cross-site `Origin` or
//! `Sec-Fetch-Site`. The `Host` header must name the console (DNS rebinding). Every response
//! carries a Content-Security-Policy without inline script, and the page builds what it shows
//! from text, never from markup.

mod api;
mod audit_view;
mod events;
mod reviews;
mod session;
mod sign_in;

use crate::config::Config;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use warden_store::{AuditReader, PinStore, QuarantineStore};

pub use session::Operator;

/// The Content-Security-Policy of every console response: the page's own script and styles,
/// requests to its own origin, nothing inline, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console of one gateway.
pub struct Console {
    gateway: Arc<Gateway>,
    /// `scheme://host[:port]` operators reach it at.
    origin: String,
    /// `Host` values accepted.
    hosts: Vec<String>,
    /// Whether the origin is https (cookies are `Secure`).
    secure: bool,
    sessions: session::Sessions,
    sign_in: Option<sign_in::SignIn>,
    api_key_sign_in: bool,
    pins: PinStore,
    quarantine: QuarantineStore,
    reader: AuditReader,
    gates: Vec<warden_store::gates::Gate>,
    /// The configuration it was opened with (servers, tools, approvals).
    config: Arc<Config>,
    /// Woken when this gateway changes something the console shows.
    changed: tokio::sync::Notify,
    /// Keys the audit chain's checkpoints must verify under (the configured signing key's).
    trusted_keys: Vec<String>,
    chain_status: audit_view::Reused,
    gate_readings: audit_view::Reused,
    /// Live streams open, per session (by the digest of its cookie).
    streams: std::sync::Mutex<std::collections::HashMap<[u8; 32], usize>>,
    /// What operators said deciding here, by approval id, until the log's rows are readable.
    said: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Failed API-key sign-ins in the current minute.
    key_failures: std::sync::Mutex<(std::time::Instant, u32)>,
}

impl Console {
    /// The console for `config`, served by the admin listener bound at `bound`; `None` when it is
    /// turned off. Opens its own read handles on the gateway's database.
    pub async fn open(
        config: &Config,
        gateway: Arc<Gateway>,
        bound: SocketAddr,
        gates: Vec<warden_store::gates::Gate>,
    ) -> Result<Option<Arc<Console>>, GatewayError> {
        let listen = bound.to_string();
        let Some(origin) = config.console.origin(Some(&listen)) else {
            if config.console.enabled {
                tracing::warn!(
                    "the operator console is not served: the admin listener is not on a loopback address; \
                     set [console] public_url to its https origin"
                );
            }
            return Ok(None);
        };
        let url = crate::guard::audit::audit_url(config)?;
        let open = |what: &str, e: warden_store::StoreError| GatewayError::Config(format!("the console's {what}: {e}"));
        let pins = PinStore::open(&url).await.map_err(|e| open("pin store", e))?;
        let quarantine = QuarantineStore::open(&url).await.map_err(|e| open("quarantine", e))?;
        let reader = AuditReader::open(&url).await.map_err(|e| open("audit reader", e))?;
        let parsed = url::Url::parse(&origin).map_err(|_| GatewayError::Config("console.public_url".into()))?;
        let mut hosts = vec![parsed.authority().to_ascii_lowercase(), listen.to_ascii_lowercase()];
        if bound.ip().is_loopback() {
            hosts.push(format!("localhost:{}", bound.port()));
        }
        let sign_in = sign_in::SignIn::of(config, &origin)?;
        let trusted_keys = match &config.audit.signing_key {
            Some(k) => vec![warden_store::public_key_of(&config.resolve(k)).map_err(|e| open("signing key", e))?],
            None => vec![],
        };
        Ok(Some(Arc::new(Console {
            gateway,
            secure: parsed.scheme() == "https",
            origin,
            hosts,
            sessions: session::Sessions::new(config.console.session_lifetime.0),
            sign_in,
            api_key_sign_in: config.console.api_key_sign_in,
            pins,
            quarantine,
            reader,
            gates,
            config: Arc::new(config.clone()),
            changed: tokio::sync::Notify::new(),
            key_failures: std::sync::Mutex::new((std::time::Instant::now(), 0)),
            trusted_keys,
            said: std::sync::Mutex::new(std::collections::HashMap::new()),
            streams: std::sync::Mutex::new(std::collections::HashMap::new()),
            chain_status: audit_view::Reused::new(),
            gate_readings: audit_view::Reused::new(),
        })))
    }

    /// The console's origin, for links.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Tells open event streams that something changed now, rather than at their next look.
    fn touch(&self) {
        self.changed.notify_waiters();
    }

    fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase);
        match host {
            Some(h) if self.hosts.contains(&h) => Ok(()),
            _ => Err(Refusal(StatusCode::FORBIDDEN, "this Host is not the console's".into())),
        }
    }
}

/// The console's routes, under `/console`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/console", axum::routing::get(|| async { redirect("/console/") }))
        .route("/console/", axum::routing::get(index))
        .route("/console/assets/{name}", axum::routing::get(asset))
        .merge(sign_in::routes())
        .merge(api::routes())
        .merge(reviews::routes())
        .merge(audit_view::routes())
        .route("/console/api/events", axum::routing::get(events::stream))
        .with_state(console)
        .layer(axum::middleware::map_response(secure_headers))
}

type ConsoleState = axum::extract::State<Arc<Console>>;

/// The headers every console response carries.
async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    r
}

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");
const ICON: &str = include_str!("assets/icon.svg");

async fn index(axum::extract::State(c): ConsoleState, headers: HeaderMap) -> Response {
    if let Err(r) = c.check_host(&headers) {
        return r.into_response();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

async fn asset(
    axum::extract::State(c): ConsoleState,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    if let Err(r) = c.check_host(&headers) {
        return r.into_response();
    }
    let (kind, body) = match name.as_str() {
        "console.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "console.css" => ("text/css; charset=utf-8", STYLE),
        "icon.svg" => ("image/svg+xml", ICON),
        _ => return problem(StatusCode::NOT_FOUND, "no such asset"),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A request refused before it is served: the status, and what to tell the page.
pub struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        problem(self.0, &self.1)
    }
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn redirect(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .unwrap_or_default()
}

fn store_problem(e: impl std::fmt::Display) -> Response {
    tracing::error!("the console could not read the store: {e}");
    problem(StatusCode::SERVICE_UNAVAILABLE, "the store could not be read")
}
