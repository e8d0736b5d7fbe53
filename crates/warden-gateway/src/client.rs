//! The client side of a request: who is asking, and the way back to them.

use crate::peer::ClientPeer;
use crate::session::Session;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use warden_policy::Principal;
use warden_protocol::{Era, Message, ProtocolVersion, RpcError};

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
    /// The context of a legacy session's request (HTTP or stdio).
    pub fn of_session(session: &Arc<Session>) -> ClientContext {
        ClientContext {
            principal: session.principal.clone(),
            version: session.version,
            capabilities: session.capabilities.clone(),
            client_info: session.client_info.clone(),
            session: Some(session.clone()),
            log_level: None,
            header_params: None,
        }
    }

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
