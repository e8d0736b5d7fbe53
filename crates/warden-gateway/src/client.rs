//! The client side of a request: who is asking, and the way back to them.

use crate::session::Session;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use warden_policy::Principal;
use warden_protocol::{Era, Id, IdKey, Kind, Message, ProtocolVersion, RpcError};

/// Who is asking, in which protocol version, declaring which capabilities.
#[derive(Debug, Clone)]
pub struct ClientContext {
    /// The authenticated caller.
    pub principal: Arc<Principal>,
    /// The protocol version of this request (the session's, for legacy clients).
    pub version: ProtocolVersion,
    /// The client's declared capabilities.
    pub capabilities: Arc<Value>,
    /// The client's self-reported identity.
    pub client_info: Arc<Value>,
    /// The legacy session (HTTP or stdio), if any.
    pub session: Option<Arc<Session>>,
    /// The log level a modern client asked for on this request.
    pub log_level: Option<String>,
    /// `Mcp-Param-*` headers of a modern HTTP request, decoded: `(lower-case name, value)`.
    pub header_params: Option<Vec<(String, String)>>,
}

impl ClientContext {
    /// The era of the client.
    pub fn era(&self) -> Era {
        self.version.era()
    }

    /// Whether the client declared a capability by name (`"sampling"`, `"elicitation"`, `"roots"`).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|v| !v.is_null())
    }

    /// The log level in force: the modern request's, or the legacy session's.
    pub fn effective_log_level(&self) -> Option<String> {
        match &self.session {
            Some(s) => s.log_level(),
            None => self.log_level.clone(),
        }
    }
}

/// The capability a server-to-client request needs.
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// A client that can be asked things: it answers requests the gateway sends it (legacy sessions
/// and stdio). Requests are numbered by the gateway; answers are matched back by id, and an
/// answer to an id never sent is dropped.
#[derive(Debug, Default)]
pub struct ClientPeer {
    next_id: AtomicU64,
    pending: Mutex<HashMap<IdKey, oneshot::Sender<Message>>>,
}

impl ClientPeer {
    /// Sends a request to the client over `tx` and waits up to `timeout` for its answer.
    pub async fn request(
        &self,
        tx: &mpsc::Sender<Message>,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = Id::string(&format!("warden-{n}"));
        let (otx, orx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id.key(), otx);
        let guard = PendingGuard { peer: self, key: id.key() };
        if tx.send(Message::request(id, method, params)).await.is_err() {
            return Err(RpcError::internal("the client is no longer connected"));
        }
        let answer = tokio::time::timeout(timeout, orx).await;
        drop(guard);
        match answer {
            Err(_) => Err(RpcError::new(warden_protocol::error::REQUEST_TIMEOUT, "the client did not answer in time")),
            Ok(Err(_)) => Err(RpcError::internal("the client is no longer connected")),
            Ok(Ok(m)) => match m.kind() {
                Kind::Response => Ok(m.result().cloned().unwrap_or(Value::Null)),
                _ => Err(m.rpc_error().unwrap_or_else(|| RpcError::internal("the client answered with an error"))),
            },
        }
    }

    /// Delivers a client's answer. Returns false when no request with that id is pending.
    pub fn answer(&self, msg: Message) -> bool {
        let Some(key) = msg.id().map(Id::key) else { return false };
        let tx = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        match tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }
}

struct PendingGuard<'a> {
    peer: &'a ClientPeer,
    key: IdKey,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.peer.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

/// The way back to a client while one of its requests is served: request-scoped notifications go
/// to `stream`, and a legacy client can be sent requests through `peer`.
#[derive(Clone)]
pub struct Outbound {
    stream: Option<mpsc::Sender<Message>>,
    peer: Option<Arc<ClientPeer>>,
}

impl Outbound {
    /// An outbound channel; `stream` `None` drops notifications, `peer` `None` means the client
    /// cannot be sent requests (the modern era).
    pub fn new(stream: Option<mpsc::Sender<Message>>, peer: Option<Arc<ClientPeer>>) -> Self {
        Outbound { stream, peer }
    }

    /// An outbound channel that drops everything.
    pub fn none() -> Self {
        Outbound { stream: None, peer: None }
    }

    /// Sends a request-scoped notification; dropped if the client is not keeping up.
    pub fn notify(&self, msg: Message) {
        if let Some(tx) = &self.stream {
            let _ = tx.try_send(msg);
        }
    }

    /// Whether requests can be sent to the client.
    pub fn can_request(&self) -> bool {
        self.peer.is_some() && self.stream.is_some()
    }

    /// Sends a request to the client and waits for its answer.
    pub async fn request(&self, method: &str, params: Option<Value>, timeout: Duration) -> Result<Value, RpcError> {
        match (&self.peer, &self.stream) {
            (Some(peer), Some(tx)) => peer.request(tx, method, params, timeout).await,
            _ => Err(RpcError::new(
                warden_protocol::error::METHOD_NOT_FOUND,
                format!("the client cannot be asked {method} on this connection"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn peer_matches_answers_and_drops_strays() {
        let peer = Arc::new(ClientPeer::default());
        let (tx, mut rx) = mpsc::channel(4);
        let p2 = peer.clone();
        let task = tokio::spawn(async move { p2.request(&tx, "roots/list", None, Duration::from_secs(5)).await });
        let sent = rx.recv().await.unwrap();
        assert!(!peer.answer(Message::response(Id::string("warden-999"), json!({}))), "a stray answer is dropped");
        assert!(peer.answer(Message::response(sent.id().unwrap().clone(), json!({"roots": []}))));
        assert_eq!(task.await.unwrap().unwrap(), json!({"roots": []}));
        assert!(peer.pending.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn peer_times_out_and_forgets() {
        let peer = ClientPeer::default();
        let (tx, _rx) = mpsc::channel(4);
        let e = peer.request(&tx, "roots/list", None, Duration::from_millis(10)).await.unwrap_err();
        assert_eq!(e.code, warden_protocol::error::REQUEST_TIMEOUT);
        assert!(peer.pending.lock().unwrap().is_empty());
    }
}
