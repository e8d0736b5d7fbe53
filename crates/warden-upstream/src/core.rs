//! The transport-independent half of a connection: request ids, in-flight requests, progress
//! tokens, and where each server-initiated message goes.
//!
//! Warden shares one connection among many clients, so it numbers upstream requests itself and
//! rewrites progress tokens: two clients may both use id `1` or token `"p"`, and neither may see
//! the other's traffic. A server-initiated message is *associated* with one in-flight request when
//! the transport says so (it arrived on that request's HTTP response stream) or, on stdio, when
//! exactly one request that can take such messages is in flight. Anything else is *unsolicited*
//! and goes to the connection's event channel, where the gateway decides who may see it.

use crate::error::UpstreamError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use warden_protocol::{Id, IdKey, Kind, Message, RpcError, meta};

/// A message from the server that belongs to one request the gateway sent.
#[derive(Debug)]
pub enum Exchange {
    /// Progress (token restored to the client's), a log message, or a cancellation.
    Notification(Message),
    /// A server-to-client request (sampling, elicitation, roots) made while serving the request.
    Request(ServerRequest),
}

/// A message from the server that belongs to no request in flight.
#[derive(Debug)]
pub enum ServerEvent {
    /// A notification such as `notifications/tools/list_changed`.
    Notification(Message),
    /// A server-to-client request that could not be tied to a request.
    Request(ServerRequest),
    /// The connection ended.
    Closed(String),
}

/// Where answers to server-initiated requests are written.
pub(crate) trait ReplySink: Send + Sync {
    fn send(&self, msg: Message);
}

/// A request from the server to the client, waiting for an answer.
///
/// Dropping it unanswered answers the server with an error, so a server never waits forever.
pub struct ServerRequest {
    message: Message,
    sink: Option<std::sync::Arc<dyn ReplySink>>,
}

impl std::fmt::Debug for ServerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRequest").field("message", &self.message).finish()
    }
}

impl ServerRequest {
    /// The server's request, with the server's own id.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The request's method.
    pub fn method(&self) -> &str {
        self.message.method().unwrap_or_default()
    }

    /// The server's id for this request.
    pub fn id(&self) -> Option<&Id> {
        self.message.id()
    }

    /// Answers the server.
    pub fn respond(mut self, answer: Result<Value, RpcError>) {
        if let (Some(sink), Some(id)) = (self.sink.take(), self.message.id().cloned()) {
            let msg = match answer {
                Ok(result) => Message::response(id, result),
                Err(e) => Message::error_response(Some(id), &e),
            };
            sink.send(msg);
        }
    }
}

impl Drop for ServerRequest {
    fn drop(&mut self) {
        if let (Some(sink), Some(id)) = (self.sink.take(), self.message.id().cloned()) {
            let e = RpcError::new(
                warden_protocol::error::METHOD_NOT_FOUND,
                "no client is available to answer this request",
            );
            sink.send(Message::error_response(Some(id), &e));
        }
    }
}

struct Pending {
    reply: oneshot::Sender<Result<Message, UpstreamError>>,
    exchange: Option<mpsc::Sender<Exchange>>,
    client_progress_token: Option<Value>,
}

/// Capacity of the per-request exchange channel; a server flooding one request loses notifications
/// past this, never memory.
pub const EXCHANGE_CAPACITY: usize = 256;

pub(crate) struct Core {
    pub(crate) server: String,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    events: mpsc::Sender<ServerEvent>,
    dropped: AtomicU64,
    infer_logs: bool,
}

/// Where a message came from, as far as the transport knows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// On the response stream of this upstream request.
    Request(u64),
    /// On a stream that belongs to no request (an HTTP GET or listen stream).
    Unsolicited,
    /// On a shared channel (stdio), so association must be inferred.
    Shared,
}

impl Core {
    pub(crate) fn new(server: String, events: mpsc::Sender<ServerEvent>, infer_logs: bool) -> Self {
        Core {
            server,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            events,
            dropped: AtomicU64::new(0),
            infer_logs,
        }
    }

    /// Registers an outgoing request, rewriting its progress token, and returns its upstream id
    /// and the receiver of its response.
    pub(crate) fn register(
        &self,
        params: &mut Option<Value>,
        exchange: Option<mpsc::Sender<Exchange>>,
    ) -> (u64, oneshot::Receiver<Result<Message, UpstreamError>>) {
        let uid = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut client_progress_token = None;
        if let Some(meta) = params.as_mut().and_then(|p| p.get_mut("_meta")).and_then(Value::as_object_mut)
            && let Some(token) = meta.get_mut(meta::PROGRESS_TOKEN)
        {
            client_progress_token = Some(std::mem::replace(token, json!(uid)));
        }
        let (tx, rx) = oneshot::channel();
        let pending = Pending { reply: tx, exchange, client_progress_token };
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(uid, pending);
        (uid, rx)
    }

    /// Forgets a request (cancelled or timed out); returns whether it was still in flight.
    pub(crate) fn forget(&self, uid: u64) -> bool {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&uid).is_some()
    }

    /// Fails every request in flight, for example when the child exits.
    pub(crate) fn fail_all(&self, reason: &str) {
        let drained: Vec<Pending> =
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, p)| p).collect();
        for p in drained {
            let _ = p.reply.send(Err(UpstreamError::Closed { server: self.server.clone(), reason: reason.to_owned() }));
        }
        let _ = self.events.try_send(ServerEvent::Closed(reason.to_owned()));
    }

    /// Fails one request, for example when its HTTP stream ended without an answer.
    pub(crate) fn fail_one(&self, uid: u64, error: &UpstreamError) {
        if let Some(p) = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&uid) {
            let _ = p.reply.send(Err(error.clone()));
        }
    }

    /// Fails the request a refused frame answered, when its id could still be read, so the caller
    /// hears at once that the answer was unusable instead of waiting for a timeout.
    pub(crate) fn fail_unreadable(&self, id: &Id, reason: &str) {
        if let IdKey::Num(n) = id.key()
            && let Ok(uid) = u64::try_from(n)
        {
            let e = UpstreamError::Protocol {
                server: self.server.clone(),
                reason: format!("its answer was refused: {reason}"),
            };
            self.fail_one(uid, &e);
        }
    }

    /// Number of requests in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Routes one message from the server.
    pub(crate) fn dispatch(&self, msg: Message, origin: Origin, sink: &std::sync::Arc<dyn ReplySink>) {
        match msg.kind() {
            Kind::Response | Kind::Error => self.complete(msg),
            Kind::Request => self.server_request(msg, origin, sink),
            Kind::Notification => self.notification(msg, origin),
        }
    }

    fn complete(&self, msg: Message) {
        let uid = match msg.id().map(Id::key) {
            Some(IdKey::Num(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        let pending = uid.and_then(|uid| self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&uid));
        match pending {
            Some(p) => {
                let _ = p.reply.send(Ok(msg));
            }
            None if msg.id().is_some_and(|id| id.raw().starts_with("\"warden-listen-")) => {
                tracing::debug!(server = %self.server, "a change-notification stream ended: {}", msg.to_json().chars().take(300).collect::<String>());
            }
            None => self.note_dropped("a response to a request id that is not in flight"),
        }
    }

    fn server_request(&self, msg: Message, origin: Origin, sink: &std::sync::Arc<dyn ReplySink>) {
        if msg.method() == Some("ping") {
            if let Some(id) = msg.id().cloned() {
                sink.send(Message::response(id, json!({})));
            }
            return;
        }
        let request = ServerRequest { message: msg, sink: Some(sink.clone()) };
        match self.exchange_for(origin) {
            Some(tx) => {
                if let Err(e) = tx.try_send(Exchange::Request(request)) {
                    // The request is answered with an error when dropped here.
                    drop(e);
                    self.note_dropped("a server request to a client that is not keeping up");
                }
            }
            None => {
                if self.events.try_send(ServerEvent::Request(request)).is_err() {
                    self.note_dropped("a server request while the event queue is full");
                }
            }
        }
    }

    fn notification(&self, mut msg: Message, origin: Origin) {
        let method = msg.method().unwrap_or_default();
        if method == "notifications/progress" {
            let token = msg.params().and_then(|p| p.get(meta::PROGRESS_TOKEN)).and_then(Value::as_u64);
            let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let target = token.and_then(|t| guard.get_mut(&t)).and_then(|p| {
                let original = p.client_progress_token.clone()?;
                Some((original, p.exchange.clone()?))
            });
            drop(guard);
            match target {
                Some((original, tx)) => {
                    if let Some(p) = msg.params_mut().and_then(Value::as_object_mut) {
                        p.insert(meta::PROGRESS_TOKEN.to_owned(), original);
                    }
                    if tx.try_send(Exchange::Notification(msg)).is_err() {
                        self.note_dropped("a progress notification to a client that is not keeping up");
                    }
                }
                None => self.note_dropped("a progress notification for no request in flight"),
            }
            return;
        }
        // A log message on a shared channel is tied to a request only when the transport says so,
        // or when one client owns the connection: guessing could show one client another's logs.
        let request_scoped = match method {
            "notifications/cancelled" => true,
            "notifications/message" => !matches!(origin, Origin::Shared) || self.infer_logs,
            _ => false,
        };
        if request_scoped && let Some(tx) = self.exchange_for(origin) {
            if tx.try_send(Exchange::Notification(msg)).is_err() {
                self.note_dropped("a notification to a client that is not keeping up");
            }
            return;
        }
        if self.events.try_send(ServerEvent::Notification(msg)).is_err() {
            self.note_dropped("a notification while the event queue is full");
        }
    }

    fn exchange_for(&self, origin: Origin) -> Option<mpsc::Sender<Exchange>> {
        let guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match origin {
            Origin::Request(uid) => guard.get(&uid).and_then(|p| p.exchange.clone()),
            Origin::Unsolicited => None,
            Origin::Shared => {
                let mut candidates = guard.values().filter_map(|p| p.exchange.as_ref());
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }

    fn note_dropped(&self, what: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed);
        // Log the first few and then every thousandth, so a flood cannot flood the log too.
        if n < 10 || n.is_multiple_of(1000) {
            tracing::warn!(server = %self.server, dropped = n + 1, "dropped {what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use warden_protocol::Limits;

    struct Collect(Mutex<Vec<Message>>);
    impl ReplySink for Collect {
        fn send(&self, msg: Message) {
            self.0.lock().unwrap().push(msg);
        }
    }

    fn parse(s: &str) -> Message {
        Message::parse(s.as_bytes(), &Limits::default()).unwrap()
    }

    fn setup() -> (Core, mpsc::Receiver<ServerEvent>, Arc<Collect>, Arc<dyn ReplySink>) {
        let (tx, rx) = mpsc::channel(16);
        let collect = Arc::new(Collect(Mutex::new(vec![])));
        let sink: Arc<dyn ReplySink> = collect.clone();
        (Core::new("s".into(), tx, false), rx, collect, sink)
    }

    #[tokio::test]
    async fn progress_tokens_are_rewritten_and_restored() {
        let (core, _rx, _c, sink) = setup();
        let (xtx, mut xrx) = mpsc::channel(4);
        let mut params = Some(json!({"_meta": {"progressToken": "client-token"}}));
        let (uid, _reply) = core.register(&mut params, Some(xtx));
        assert_eq!(params.unwrap()["_meta"]["progressToken"], json!(uid));
        core.dispatch(
            parse(&format!(r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{uid},"progress":1}}}}"#)),
            Origin::Shared,
            &sink,
        );
        match xrx.recv().await.unwrap() {
            Exchange::Notification(m) => assert_eq!(m.params().unwrap()["progressToken"], "client-token"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn responses_to_unknown_ids_are_dropped() {
        let (core, _rx, _c, sink) = setup();
        core.dispatch(parse(r#"{"jsonrpc":"2.0","id":999,"result":{}}"#), Origin::Shared, &sink);
        core.dispatch(parse(r#"{"jsonrpc":"2.0","id":"x","result":{}}"#), Origin::Shared, &sink);
        assert_eq!(core.in_flight(), 0);
    }

    #[tokio::test]
    async fn server_requests_go_to_the_sole_request_or_are_unsolicited() {
        let (core, mut rx, collect, sink) = setup();
        let (a, mut arx) = mpsc::channel(4);
        let (b, _brx) = mpsc::channel(4);
        let (_ua, _) = core.register(&mut None, Some(a));
        let sampling = r#"{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{}}"#;
        core.dispatch(parse(sampling), Origin::Shared, &sink);
        assert!(matches!(arx.recv().await, Some(Exchange::Request(_))));
        let (_ub, _) = core.register(&mut None, Some(b));
        core.dispatch(parse(sampling), Origin::Shared, &sink);
        match rx.recv().await.unwrap() {
            ServerEvent::Request(r) => drop(r),
            other => panic!("{other:?}"),
        }
        // Dropped unanswered: the server got an error, not silence.
        let sent = collect.0.lock().unwrap();
        assert!(sent.iter().any(|m| m.kind() == Kind::Error));
    }

    #[tokio::test]
    async fn ping_is_answered_by_the_connection() {
        let (core, _rx, collect, sink) = setup();
        core.dispatch(parse(r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#), Origin::Shared, &sink);
        assert_eq!(collect.0.lock().unwrap()[0].kind(), Kind::Response);
    }
}
