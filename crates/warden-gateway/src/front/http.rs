//! The Streamable HTTP front at the MCP endpoint, serving both protocol eras.
//!
//! A request is modern when its `MCP-Protocol-Version` header names 2026-07-28 or later (or names a
//! version Warden does not know and carries no session); it is then validated header against body
//! and served statelessly. Otherwise it is legacy: `initialize` opens a session, every other
//! message must present the session id, GET opens the session's stream and DELETE ends it.
//!
//! Every answer is JSON unless the call produces messages before its result, in which case it
//! becomes an SSE stream of those messages and then the result.

use super::guard::OriginGuard;
use super::sse_body::{CallFuture, event_stream};
use crate::authenticate::AuthFailure;
use crate::client::{ClientContext, Outbound};
use crate::gateway::{Gateway, unsupported_version};
use crate::session::{Session, SessionError};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_policy::Principal;
use warden_protocol::{Era, Id, Kind, Message, ProtocolVersion, RpcError, error, header_value, meta, methods};

/// Shared state of the HTTP front.
pub struct HttpFront {
    gateway: Arc<Gateway>,
    guard: OriginGuard,
}

/// The MCP router: the endpoint at `path`, the protected resource metadata when OAuth is
/// configured, and 404 elsewhere.
pub fn router(gateway: Arc<Gateway>, path: &str, guard: OriginGuard) -> Router {
    let metadata_paths = gateway.authenticator.metadata_paths();
    let consent = gateway
        .credentials
        .has_oauth()
        .then(|| super::consent::routes(gateway.clone(), guard.clone(), gateway.credentials.secure_origin()));
    let front = Arc::new(HttpFront { gateway, guard });
    let mut router = Router::new().route(path, axum::routing::any(endpoint));
    for p in metadata_paths {
        router = router.route(&p, axum::routing::get(protected_resource_metadata));
    }
    let router = router.with_state(front);
    match consent {
        Some(c) => router.merge(c),
        None => router,
    }
}

/// RFC 9728 protected resource metadata: where to get a token for this gateway. Public, so any
/// origin may read it.
async fn protected_resource_metadata(State(front): State<Arc<HttpFront>>, headers: HeaderMap) -> Response {
    if let Err(why) = front.guard.check_host(&headers) {
        return rpc_error(StatusCode::FORBIDDEN, None, &RpcError::invalid_request(why));
    }
    let Some(doc) = front.gateway.authenticator.metadata() else {
        return Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty()).unwrap_or_default();
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::CACHE_CONTROL, "max-age=300")
        .body(Body::from(doc.to_string()))
        .unwrap_or_default()
}

fn auth_failure(f: &AuthFailure) -> Response {
    let code = match f.status {
        StatusCode::FORBIDDEN => error::INSUFFICIENT_SCOPE,
        StatusCode::UNAUTHORIZED => error::UNAUTHENTICATED,
        _ => error::INVALID_REQUEST,
    };
    let mut resp = rpc_error(f.status, None, &RpcError::new(code, f.message.clone()));
    if let Ok(v) = HeaderValue::from_str(&f.challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

async fn endpoint(State(front): State<Arc<HttpFront>>, request: Request) -> Response {
    if let Err(why) = front.guard.check(request.headers()) {
        return rpc_error(StatusCode::FORBIDDEN, None, &RpcError::invalid_request(why));
    }
    let principal = match front.gateway.authenticator.authenticate(request.headers(), request.uri().query()).await {
        Ok(p) => p,
        Err(f) => {
            tracing::info!(status = f.status.as_u16(), "refused an unauthenticated request: {}", f.message);
            let failure =
                crate::guard::audit::AuthFailure { reason: f.reason, message: &f.message, subject: None, method: None };
            front.gateway.auditor.auth_failure(failure).await;
            return auth_failure(&f);
        }
    };
    // A caller whose token a server's credential is exchanged from: the token is kept for that.
    if principal.authority == warden_policy::Authority::OAuth
        && let Some(token) = crate::authenticate::bearer_token(request.headers())
    {
        front.gateway.credentials.offer_subject(&principal, token);
    }
    match *request.method() {
        Method::POST => post(&front, principal, request).await,
        Method::GET => get(&front, principal, request.headers()).await,
        Method::DELETE => delete(&front, principal, request.headers()).await,
        _ => method_not_allowed(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What the client can read back.
#[derive(Debug, Clone, Copy)]
struct Accepts {
    json: bool,
    sse: bool,
}

fn accepts(headers: &HeaderMap) -> Accepts {
    let Some(accept) = header_str(headers, "accept") else { return Accepts { json: true, sse: true } };
    let a = accept.to_ascii_lowercase();
    let any = a.contains("*/*");
    Accepts { json: any || a.contains("application/json"), sse: any || a.contains("text/event-stream") }
}

async fn post(front: &Arc<HttpFront>, principal: Arc<Principal>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let is_json = header_str(&headers, "content-type")
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            &RpcError::invalid_request("Content-Type must be application/json"),
        );
    }
    let limits = front.gateway.settings.limits;
    let read = within(front.gateway.settings.body_read_timeout, axum::body::to_bytes(body, limits.max_frame_bytes));
    let bytes = match read.await {
        Ok(Ok(b)) => b,
        Err(_) => {
            let e = RpcError::invalid_request("the request body did not arrive in time");
            return rpc_error(StatusCode::REQUEST_TIMEOUT, None, &e);
        }
        Ok(Err(_)) => {
            let e = RpcError::new(
                error::TOO_LARGE,
                format!("request body exceeds the limit of {} bytes", limits.max_frame_bytes),
            );
            return rpc_error(StatusCode::PAYLOAD_TOO_LARGE, None, &e);
        }
    };
    let msg = match Message::parse(&bytes, &limits) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, e.id.as_ref(), &e.error),
    };
    if is_modern(&headers, &msg) {
        modern(front, principal, &headers, msg).await
    } else {
        legacy(front, principal, &headers, msg).await
    }
}

fn is_modern(headers: &HeaderMap, msg: &Message) -> bool {
    match header_str(headers, VERSION_HEADER) {
        Some(v) => match ProtocolVersion::parse(v) {
            Some(known) => known.era() == Era::Modern,
            None => headers.get(SESSION_HEADER).is_none() && msg.method() != Some("initialize"),
        },
        None => {
            headers.get(SESSION_HEADER).is_none() && msg.meta().is_some_and(|m| m.contains_key(meta::PROTOCOL_VERSION))
        }
    }
}

async fn legacy(front: &Arc<HttpFront>, principal: Arc<Principal>, headers: &HeaderMap, msg: Message) -> Response {
    let gw = &front.gateway;
    let session_id = header_str(headers, SESSION_HEADER);
    if msg.method() == Some("initialize") {
        if session_id.is_some() {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                msg.id(),
                &RpcError::invalid_request("Bad Request: initialize must not carry a session id"),
            );
        }
        let Some(id) = msg.id().cloned() else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                &RpcError::invalid_request("initialize must be a request"),
            );
        };
        let (version, capabilities, client_info) = match Gateway::negotiate(msg.params()) {
            Ok(x) => x,
            Err(e) => return rpc_error(StatusCode::BAD_REQUEST, Some(&id), &e),
        };
        if version < ProtocolVersion::V2025_03_26 {
            let e = unsupported_version(version.as_str());
            return rpc_error(StatusCode::BAD_REQUEST, Some(&id), &e);
        }
        let session = match gw.hub.sessions.open(principal, version, capabilities, client_info).await {
            Ok(s) => s,
            Err(e) => return session_unavailable(Some(&id), e),
        };
        tracing::info!(session = %&session.id[..8], version = %version, "session started");
        if let Err(e) = gw.auditor.initialized(&Gateway::session_context(&session), id.raw()).await {
            // Never handed out: ended here; a record left in the shared state expires unused.
            let _ = gw.hub.sessions.end(&session.id).await;
            gw.hub.sessions.remove(&session.id);
            return rpc_error(StatusCode::INTERNAL_SERVER_ERROR, Some(&id), &e);
        }
        let reply = Message::response(id, gw.initialize_result(version).await);
        let mut resp = json_response(StatusCode::OK, &reply);
        if let Ok(v) = HeaderValue::from_str(&session.id) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        return resp;
    }
    let Some(session_id) = session_id else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            msg.id(),
            &RpcError::invalid_request("Bad Request: Mcp-Session-Id header is required"),
        );
    };
    let session = match gw.hub.sessions.find(session_id, &principal).await {
        Ok(s) => s,
        Err(SessionError::NotFound) => {
            audit_session_refusal(gw, &principal, msg.method()).await;
            return session_not_found(msg.id());
        }
        Err(e) => return session_unavailable(msg.id(), e),
    };
    if let Some(v) = header_str(headers, VERSION_HEADER)
        && v != session.version.as_str()
    {
        let e = RpcError::invalid_request(format!(
            "Bad Request: MCP-Protocol-Version {} does not match the session's",
            shown_header(v)
        ));
        return rpc_error(StatusCode::BAD_REQUEST, msg.id(), &e);
    }
    // The session was bound to this caller; the request's own principal (with the scopes and
    // roles of the token presented now) is the one authorized.
    let mut ctx = Gateway::session_context(&session);
    ctx.principal = principal;
    match msg.kind() {
        Kind::Notification => {
            gw.client_notification(&ctx, &msg).await;
            accepted()
        }
        Kind::Response | Kind::Error => {
            if !session.peer.answer(msg) {
                tracing::debug!(session = %&session.id[..8], "dropped an answer to a request that is not pending");
            }
            accepted()
        }
        Kind::Request => {
            let Some(id) = msg.id().cloned() else { return accepted() };
            let Some(cancel) = session.begin(id.key()) else {
                let e = RpcError::invalid_request("a request with this id is already in flight");
                return rpc_error(StatusCode::BAD_REQUEST, Some(&id), &e);
            };
            respond(front.clone(), ctx, msg, accepts(headers), cancel, Some(session)).await
        }
    }
}

async fn modern(front: &Arc<HttpFront>, principal: Arc<Principal>, headers: &HeaderMap, msg: Message) -> Response {
    let gw = &front.gateway;
    let id = msg.id().cloned();
    let mismatch = |why: String| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            id.as_ref(),
            &RpcError::new(error::HEADER_MISMATCH, format!("Header mismatch: {why}")),
        )
    };
    // A header sent twice could be read either way by whatever sits in front: refuse it.
    let repeated =
        headers.keys().filter(|n| n.as_str().starts_with("mcp-")).find(|n| headers.get_all(*n).iter().nth(1).is_some());
    if let Some(name) = repeated {
        return mismatch(format!("the {name} header is sent more than once"));
    }
    let Some(header_version) = header_str(headers, VERSION_HEADER) else {
        return mismatch("the MCP-Protocol-Version header is missing".into());
    };
    let body_version = msg.meta().and_then(|m| m.get(meta::PROTOCOL_VERSION)).and_then(Value::as_str);
    if let Some(b) = body_version
        && b != header_version
    {
        return mismatch(format!(
            "MCP-Protocol-Version {} does not match the body's {}",
            shown_header(header_version),
            shown_header(b)
        ));
    }
    match msg.kind() {
        Kind::Response | Kind::Error => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                &RpcError::invalid_request("responses are not accepted in protocol 2026-07-28"),
            );
        }
        Kind::Notification => return accepted(),
        Kind::Request => {}
    }
    let method = msg.method().unwrap_or_default();
    match header_str(headers, "mcp-method") {
        None => return mismatch("the Mcp-Method header is missing".into()),
        Some(m) if m != method => {
            return mismatch(format!("Mcp-Method {} does not match the body's method", shown_header(m)));
        }
        Some(_) => {}
    }
    if let Some(param) = methods::lookup(method).and_then(|m| m.name_param) {
        let body_name = msg.param_str(param);
        let header_name = match headers.get("mcp-name").map(|v| header_value::decode(v.as_bytes())) {
            None => return mismatch("the Mcp-Name header is missing".into()),
            Some(Err(e)) => return mismatch(format!("Mcp-Name: {e}")),
            Some(Ok(v)) => v,
        };
        if body_name != Some(header_name.as_str()) {
            return mismatch(format!("Mcp-Name does not match params.{param}"));
        }
    }
    let mut ctx = match gw.modern_context(principal, &msg) {
        Ok(c) => c,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, id.as_ref(), &e),
    };
    let mut params = Vec::new();
    for (name, value) in headers {
        if let Some(rest) = name.as_str().strip_prefix("mcp-param-") {
            match header_value::decode(value.as_bytes()) {
                Ok(v) => params.push((format!("mcp-param-{rest}"), v)),
                Err(e) => return mismatch(format!("{name}: {e}")),
            }
        }
    }
    ctx.header_params = Some(params);
    if method == "subscriptions/listen" {
        return listen(front.clone(), ctx, msg).await;
    }
    respond(front.clone(), ctx, msg, accepts(headers), CancellationToken::new(), None).await
}

/// Serves a request: JSON when the result comes first, SSE when messages come before it.
///
/// The call runs in this response's own task: if the client goes away, the response (and with
/// it the call) is dropped, and the upstream request is abandoned.
async fn respond(
    front: Arc<HttpFront>,
    ctx: ClientContext,
    msg: Message,
    accepts: Accepts,
    cancel: CancellationToken,
    session: Option<Arc<Session>>,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let peer = session.as_ref().map(|s| s.peer.clone());
    let in_flight = InFlightEntry { session, id: msg.id().map(Id::key) };
    let gw = front.gateway.clone();
    let era = ctx.era();
    let mut call: CallFuture = Box::pin(async move {
        let _entry = in_flight;
        let out = Outbound::new(Some(tx), peer);
        gw.handle(&ctx, msg, &out, &cancel).await
    });
    // The first thing the call produces decides the response type.
    let first = tokio::select! {
        biased;
        Some(m) = rx.recv(), if accepts.sse => m,
        reply = &mut call => {
            // Messages the call sent in the same step it finished in go out before its answer.
            let mut queued = Vec::new();
            while let Ok(m) = rx.try_recv() {
                queued.push(m);
            }
            if let Some(scope) = missing_scope(&reply) {
                // Step-up: the client learns, the way OAuth clients expect, which scope to ask for.
                let mut resp = json_response(StatusCode::FORBIDDEN, &reply);
                if let Ok(v) = HeaderValue::from_str(&front.gateway.authenticator.insufficient_scope(&[scope]).challenge) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return resp;
            }
            return if accepts.sse && (!queued.is_empty() || !accepts.json) {
                queued.push(reply);
                sse_response(event_stream(queued, None, None))
            } else {
                json_response(status_for(era, &reply), &reply)
            };
        }
    };
    sse_response(event_stream(vec![first], Some(rx), Some(call)))
}

/// Drops a half-opened listen stream's subscriptions if its request is abandoned.
struct UndoListen(Option<(Arc<Gateway>, u64)>);

impl Drop for UndoListen {
    fn drop(&mut self) {
        if let Some((gw, id)) = self.0.take() {
            tokio::spawn(async move { gw.drop_listener(id).await });
        }
    }
}

/// Removes a legacy request from its session's in-flight set however the call ends.
struct InFlightEntry {
    session: Option<Arc<Session>>,
    id: Option<warden_protocol::IdKey>,
}

impl Drop for InFlightEntry {
    fn drop(&mut self) {
        if let (Some(s), Some(id)) = (&self.session, &self.id) {
            s.end(id);
        }
    }
}

async fn listen(front: Arc<HttpFront>, ctx: ClientContext, msg: Message) -> Response {
    let (tx, rx) = mpsc::channel::<Message>(256);
    let gw = front.gateway.clone();
    let listener_id = gw.hub.next_listener_id();
    // If the client leaves while subscriptions are being made, undo them.
    let mut undo = UndoListen(Some((gw.clone(), listener_id)));
    let opened = gw.open_listener(&ctx, &msg, tx, listener_id).await;
    undo.0 = None;
    let (listener, ack) = match opened {
        Ok(x) => x,
        Err(e) => {
            gw.drop_listener(listener_id).await;
            return rpc_error(StatusCode::OK, msg.id(), &e);
        }
    };
    let on_close = async move { gw.close_listener(&listener).await };
    sse_response(super::sse_body::listen_stream(ack, rx, Box::pin(on_close)))
}

async fn get(front: &Arc<HttpFront>, principal: Arc<Principal>, headers: &HeaderMap) -> Response {
    let Some(session_id) = header_str(headers, SESSION_HEADER) else {
        return method_not_allowed();
    };
    if !accepts(headers).sse {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            &RpcError::invalid_request("Not Acceptable: GET needs Accept: text/event-stream"),
        );
    }
    let session = match front.gateway.hub.sessions.find(session_id, &principal).await {
        Ok(s) => s,
        Err(SessionError::NotFound) => {
            audit_session_refusal(&front.gateway, &principal, Some("GET")).await;
            return session_not_found(None);
        }
        Err(e) => return session_unavailable(None, e),
    };
    let (tx, rx) = mpsc::channel::<Message>(256);
    if !session.attach_stream(tx) {
        return rpc_error(
            StatusCode::CONFLICT,
            None,
            &RpcError::invalid_request("Conflict: this session already has an open stream"),
        );
    }
    sse_response(super::sse_body::session_stream(rx, session.closed.clone()))
}

async fn delete(front: &Arc<HttpFront>, principal: Arc<Principal>, headers: &HeaderMap) -> Response {
    let Some(session_id) = header_str(headers, SESSION_HEADER) else {
        return method_not_allowed();
    };
    let gw = &front.gateway;
    match gw.hub.sessions.find(session_id, &principal).await {
        Ok(_) => {}
        Err(SessionError::NotFound) => {
            audit_session_refusal(gw, &principal, Some("DELETE")).await;
            return session_not_found(None);
        }
        Err(e) => return session_unavailable(None, e),
    }
    match gw.hub.sessions.end(session_id).await {
        Ok(Some(s)) => {
            tracing::info!(session = %&s.id[..8], "session ended by the client");
            gw.end_session(&s, true).await;
        }
        Ok(None) => {}
        Err(e) => return session_unavailable(None, e),
    }
    Response::builder().status(StatusCode::OK).body(Body::empty()).unwrap_or_default()
}

/// Records a session id that was unknown, expired, or another principal's (a replay attempt
/// looks exactly like this).
async fn audit_session_refusal(gw: &Gateway, principal: &Principal, method: Option<&str>) {
    let failure = crate::guard::audit::AuthFailure {
        reason: "session",
        message: "unknown or expired session, or another principal's",
        subject: Some(&principal.subject),
        method,
    };
    gw.auditor.auth_failure(failure).await;
}

/// The scope an answer says the token lacks.
fn missing_scope(reply: &Message) -> Option<String> {
    let e = reply.rpc_error().filter(|e| e.code == error::INSUFFICIENT_SCOPE)?;
    e.data.as_ref()?.get("scope")?.as_str().map(str::to_owned)
}

/// HTTP status for an error answer: the 2026-07-28 transport gives some errors their own status.
fn status_for(era: Era, reply: &Message) -> StatusCode {
    if era != Era::Modern {
        return StatusCode::OK;
    }
    match reply.rpc_error().map(|e| e.code) {
        Some(error::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(
            error::HEADER_MISMATCH | error::MISSING_REQUIRED_CLIENT_CAPABILITY | error::UNSUPPORTED_PROTOCOL_VERSION,
        ) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// `fut`'s output if it is ready at once or within `limit`. A body that arrived with its head (the
/// common case) is read without arming a timer.
async fn within<F: std::future::Future>(limit: std::time::Duration, fut: F) -> Result<F::Output, ()> {
    let mut fut = std::pin::pin!(fut);
    if let Some(out) = futures::FutureExt::now_or_never(fut.as_mut()) {
        return Ok(out);
    }
    tokio::time::timeout(limit, fut).await.map_err(|_| ())
}

fn shown_header(v: &str) -> String {
    crate::names::shown(v)
}

fn json_response(status: StatusCode, msg: &Message) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(msg.to_vec()))
        .unwrap_or_default()
}

fn rpc_error(status: StatusCode, id: Option<&Id>, e: &RpcError) -> Response {
    json_response(status, &Message::error_response(id.cloned(), e))
}

fn accepted() -> Response {
    Response::builder().status(StatusCode::ACCEPTED).body(Body::empty()).unwrap_or_default()
}

/// A session that could not be opened or looked up: too many here, or the shared state away.
fn session_unavailable(id: Option<&Id>, e: SessionError) -> Response {
    let message = match e {
        SessionError::Unavailable => "Warden cannot reach the shared state that holds sessions; retry shortly",
        _ => "too many sessions; try again later",
    };
    rpc_error(StatusCode::SERVICE_UNAVAILABLE, id, &RpcError::new(error::UPSTREAM_UNAVAILABLE, message))
}

fn session_not_found(id: Option<&Id>) -> Response {
    rpc_error(StatusCode::NOT_FOUND, id, &RpcError::new(error::UPSTREAM_CLOSED, "Session not found"))
}

fn method_not_allowed() -> Response {
    let mut r = rpc_error(StatusCode::METHOD_NOT_ALLOWED, None, &RpcError::invalid_request("Method not allowed"));
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE"));
    r
}

fn sse_response(
    stream: impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache, no-transform")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}
