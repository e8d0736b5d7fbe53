//! The demo server on Streamable HTTP, both eras, at `/mcp`.

use super::{ClientRequests, Demo, Peer, initialize_result, listen_ack, shape_modern};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_protocol::{Id, Kind, Limits, Message, ProtocolVersion, RpcError, meta, sse};

struct DemoHttp {
    demo: Demo,
    sessions: Mutex<HashMap<String, Arc<ClientRequests>>>,
}

/// The demo server's router.
pub fn router(page_size: usize) -> Router {
    let state = DemoHttp { demo: Demo::with_page_size(page_size), sessions: Mutex::new(HashMap::new()) };
    Router::new().route("/mcp", axum::routing::any(endpoint)).with_state(Arc::new(state))
}

fn json_response(status: StatusCode, msg: &Message) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(msg.to_vec()))
        .unwrap_or_default()
}

fn status(code: StatusCode) -> Response {
    Response::builder().status(code).body(Body::empty()).unwrap_or_default()
}

async fn endpoint(State(state): State<Arc<DemoHttp>>, request: Request) -> Response {
    let session_id = request.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let header_modern = request
        .headers()
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .and_then(ProtocolVersion::parse)
        .is_some_and(|v| v.era() == warden_protocol::Era::Modern);
    match *request.method() {
        Method::POST => {}
        Method::DELETE => {
            return match session_id.and_then(|s| state.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&s)) {
                Some(_) => status(StatusCode::OK),
                None => status(StatusCode::NOT_FOUND),
            };
        }
        _ => return status(StatusCode::METHOD_NOT_ALLOWED),
    }
    let limits = Limits::default();
    let Ok(body) = axum::body::to_bytes(request.into_body(), limits.max_frame_bytes).await else {
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let msg = match Message::parse(&body, &limits) {
        Ok(m) => m,
        Err(e) => return json_response(StatusCode::BAD_REQUEST, &Message::error_response(e.id, &e.error)),
    };
    let modern = header_modern || msg.meta().is_some_and(|m| m.contains_key(meta::PROTOCOL_VERSION));
    if modern {
        return match msg.kind() {
            Kind::Request if msg.method() == Some("subscriptions/listen") => listen(&state, &msg),
            Kind::Request => serve_call(state, msg, true, None).await,
            _ => status(StatusCode::ACCEPTED),
        };
    }
    if msg.method() == Some("initialize") {
        let id = format!("{:032x}", rand::random::<u128>());
        state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), Arc::new(ClientRequests::default()));
        let reply =
            Message::response(msg.id().cloned().unwrap_or_else(|| Id::number(0)), initialize_result(msg.params()));
        let mut r = json_response(StatusCode::OK, &reply);
        if let Ok(v) = HeaderValue::from_str(&id) {
            r.headers_mut().insert("mcp-session-id", v);
        }
        return r;
    }
    let Some(session) =
        session_id.and_then(|s| state.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&s).cloned())
    else {
        return json_response(
            StatusCode::NOT_FOUND,
            &Message::error_response(msg.id().cloned(), &RpcError::new(-32001, "Session not found")),
        );
    };
    match msg.kind() {
        Kind::Request => serve_call(state, msg, false, Some(session)).await,
        Kind::Response | Kind::Error => {
            if let Some(w) =
                msg.id().and_then(|id| session.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id.key()))
            {
                let _ = w.send(msg);
            }
            status(StatusCode::ACCEPTED)
        }
        Kind::Notification => status(StatusCode::ACCEPTED),
    }
}

/// Runs a request; answers JSON unless it produces messages first, then SSE.
async fn serve_call(
    state: Arc<DemoHttp>,
    msg: Message,
    modern: bool,
    session: Option<Arc<ClientRequests>>,
) -> Response {
    let id = msg.id().cloned().unwrap_or_else(|| Id::number(0));
    let method = msg.method().unwrap_or_default().to_owned();
    let params = msg.params().cloned().unwrap_or_else(|| json!({}));
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let cancel = CancellationToken::new();
    let guard = cancel.clone().drop_guard();
    let notify_tx = tx.clone();
    let ask = session.map(|s| s.asker(tx.clone()));
    drop(tx);
    let peer = Peer { notify: Box::new(move |m| drop(notify_tx.try_send(m))), ask, cancel };
    let mut task = tokio::spawn(async move {
        match state.demo.handle(&method, &params, modern, &peer).await {
            Ok(r) => Message::response(id, if modern { shape_modern(&method, r) } else { r }),
            Err(e) => Message::error_response(Some(id), &e),
        }
    });
    let first = tokio::select! {
        biased;
        Some(m) = rx.recv() => Some(m),
        r = &mut task => {
            guard.disarm();
            let reply = r.unwrap_or_else(|_| Message::error_response(None, &RpcError::internal("failed")));
            return json_response(StatusCode::OK, &reply);
        }
    };
    let stream =
        futures::stream::unfold((first, Some(rx), Some(task), Some(guard)), |(first, rx, task, guard)| async move {
            if let Some(m) = first {
                return Some((Ok::<Bytes, Infallible>(sse::encode_event(&m.to_vec())), (None, rx, task, guard)));
            }
            let (mut rx, mut task) = (rx?, task?);
            tokio::select! {
                biased;
                Some(m) = rx.recv() => Some((Ok(sse::encode_event(&m.to_vec())), (None, Some(rx), Some(task), guard))),
                r = &mut task => {
                    if let Some(g) = guard { g.disarm(); }
                    let reply = r.unwrap_or_else(|_| Message::error_response(None, &RpcError::internal("failed")));
                    Some((Ok(sse::encode_event(&reply.to_vec())), (None, None, None, None)))
                }
            }
        });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

/// A `subscriptions/listen` stream: the acknowledgement, then a notification whenever notes change.
fn listen(state: &Arc<DemoHttp>, msg: &Message) -> Response {
    let (ack, resources) = listen_ack(msg);
    let id = msg.id().map(Id::to_value).unwrap_or(Value::Null);
    let changes = resources.then(|| state.demo.changes());
    let stream = futures::stream::unfold((Some(ack), changes, id), |(ack, mut changes, id)| async move {
        if let Some(a) = ack {
            return Some((Ok::<Bytes, Infallible>(sse::encode_event(&a.to_vec())), (None, changes, id)));
        }
        let changed = match changes.as_mut() {
            Some(rx) => tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv()).await,
            None => {
                tokio::time::sleep(std::time::Duration::from_secs(15)).await;
                return Some((Ok(sse::keep_alive()), (None, changes, id)));
            }
        };
        match changed {
            Ok(Ok(())) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                let params = json!({ "_meta": { meta::SUBSCRIPTION_ID: id } });
                let m = Message::notification("notifications/resources/list_changed", Some(params));
                Some((Ok(sse::encode_event(&m.to_vec())), (None, changes, id)))
            }
            Ok(Err(_)) => None,
            Err(_) => Some((Ok(sse::keep_alive()), (None, changes, id))),
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}
