//! The stdio front: one client speaking newline-delimited JSON-RPC on stdin and stdout.
//!
//! The client may be legacy (it sends `initialize`, and the connection is its session) or modern
//! (every request carries its `_meta` envelope). Requests are served concurrently; answers are
//! written as they complete. Nothing but protocol messages is ever written to the output.

use crate::client::Outbound;
use crate::gateway::Gateway;
use crate::hub::Listener;
use crate::session::Session;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_protocol::{Id, IdKey, Kind, Message, RpcError, meta};
use warden_upstream::{Line, LineReader};

/// Serves one client until its input ends.
pub async fn serve<R, W>(gateway: Arc<Gateway>, input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(m) = rx.recv().await {
            let mut line = m.to_vec();
            line.push(b'\n');
            if output.write_all(&line).await.is_err() {
                break;
            }
            if rx.is_empty() && output.flush().await.is_err() {
                break;
            }
        }
        let _ = output.flush().await;
    });
    let mut conn = StdioClient {
        gateway: gateway.clone(),
        tx: tx.clone(),
        session: None,
        inflight: Arc::new(Mutex::new(HashMap::new())),
        listeners: HashMap::new(),
    };
    let limits = gateway.settings.limits;
    let mut reader = LineReader::new(BufReader::new(input), limits.max_frame_bytes);
    loop {
        let bytes = match reader.next().await? {
            Line::Eof => break,
            Line::Oversized(n) => {
                let e = RpcError::new(
                    warden_protocol::error::TOO_LARGE,
                    format!("frame of {n} bytes exceeds the limit of {} bytes", limits.max_frame_bytes),
                );
                let _ = tx.send(Message::error_response(None, &e)).await;
                continue;
            }
            Line::Frame(b) => b,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Message::parse(&bytes, &limits) {
            Ok(msg) => conn.receive(msg).await,
            Err(e) => {
                let _ = tx.send(Message::error_response(e.id, &e.error)).await;
            }
        }
    }
    conn.close().await;
    drop(conn);
    drop(tx);
    let _ = writer.await;
    Ok(())
}

struct StdioClient {
    gateway: Arc<Gateway>,
    tx: mpsc::Sender<Message>,
    session: Option<Arc<Session>>,
    inflight: Arc<Mutex<HashMap<IdKey, CancellationToken>>>,
    listeners: HashMap<IdKey, Arc<Listener>>,
}

impl StdioClient {
    async fn send(&self, msg: Message) {
        let _ = self.tx.send(msg).await;
    }

    async fn receive(&mut self, msg: Message) {
        match msg.kind() {
            Kind::Response | Kind::Error => {
                if let Some(s) = &self.session {
                    s.peer.answer(msg);
                }
            }
            Kind::Notification => self.notification(msg).await,
            Kind::Request => self.request(msg).await,
        }
    }

    async fn notification(&mut self, msg: Message) {
        if msg.method() == Some("notifications/cancelled") {
            let id = msg.params().and_then(|p| p.get("requestId")).and_then(Id::from_value).map(|i| i.key());
            if let Some(id) = id {
                if let Some(l) = self.listeners.remove(&id) {
                    self.gateway.close_listener(&l).await;
                    return;
                }
                if let Some(t) = self.inflight.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
                    t.cancel();
                    return;
                }
            }
        }
        if let Some(s) = &self.session {
            self.gateway.client_notification(&Gateway::session_context(s), &msg).await;
        }
    }

    async fn request(&mut self, msg: Message) {
        let Some(id) = msg.id().cloned() else { return };
        let method = msg.method().unwrap_or_default().to_owned();
        let gw = self.gateway.clone();
        if method == "initialize" {
            let reply = match (&self.session, Gateway::negotiate(msg.params())) {
                (Some(_), _) => {
                    Message::error_response(Some(id), &RpcError::invalid_request("the session is already initialized"))
                }
                (None, Err(e)) => Message::error_response(Some(id), &e),
                (None, Ok((version, capabilities, client_info))) => {
                    let s = Session::detached(gw.local_principal.clone(), version, capabilities, client_info);
                    match gw.auditor.initialized(&Gateway::session_context(&s), id.raw()).await {
                        Ok(()) => {
                            s.attach_stream(self.tx.clone());
                            gw.hub.add_detached(s.clone());
                            self.session = Some(s);
                            Message::response(id, gw.initialize_result(version).await)
                        }
                        Err(e) => Message::error_response(Some(id), &e),
                    }
                }
            };
            return self.send(reply).await;
        }
        let modern = msg.meta().is_some_and(|m| m.contains_key(meta::PROTOCOL_VERSION));
        let ctx = if modern || self.session.is_none() && method != "ping" {
            match gw.modern_context(gw.local_principal.clone(), &msg) {
                Ok(c) => c,
                Err(e) if !modern => {
                    let _ = e;
                    let e = RpcError::invalid_request(
                        "send initialize first, or a request with the 2026-07-28 _meta envelope",
                    );
                    return self.send(Message::error_response(Some(id), &e)).await;
                }
                Err(e) => return self.send(Message::error_response(Some(id), &e)).await,
            }
        } else if let Some(s) = &self.session {
            Gateway::session_context(s)
        } else {
            // A ping before initialize.
            return self.send(Message::response(id, json!({}))).await;
        };
        if method == "subscriptions/listen" && ctx.session.is_none() {
            let listener_id = gw.hub.next_listener_id();
            match gw.open_listener(&ctx, &msg, self.tx.clone(), listener_id).await {
                Ok((listener, ack)) => {
                    if let Some(old) = self.listeners.insert(id.key(), listener) {
                        self.gateway.close_listener(&old).await;
                    }
                    self.send(ack).await;
                }
                Err(e) => {
                    gw.drop_listener(listener_id).await;
                    self.send(Message::error_response(Some(id), &e)).await;
                }
            }
            return;
        }
        let cancel = match &ctx.session {
            Some(s) => match s.begin(id.key()) {
                Some(t) => t,
                None => {
                    let e = RpcError::invalid_request("a request with this id is already in flight");
                    return self.send(Message::error_response(Some(id), &e)).await;
                }
            },
            None => {
                let token = {
                    let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
                    match inflight.entry(id.key()) {
                        std::collections::hash_map::Entry::Occupied(_) => None,
                        std::collections::hash_map::Entry::Vacant(v) => {
                            Some(v.insert(CancellationToken::new()).clone())
                        }
                    }
                };
                match token {
                    Some(t) => t,
                    None => {
                        let e = RpcError::invalid_request("a request with this id is already in flight");
                        return self.send(Message::error_response(Some(id), &e)).await;
                    }
                }
            }
        };
        let out = Outbound::new(Some(self.tx.clone()), ctx.session.as_ref().map(|s| s.peer.clone()));
        let tx = self.tx.clone();
        let inflight = self.inflight.clone();
        tokio::spawn(async move {
            let reply = gw.handle(&ctx, msg, &out, &cancel).await;
            match &ctx.session {
                Some(s) => s.end(&id.key()),
                None => {
                    inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id.key());
                }
            }
            let _ = tx.send(reply).await;
        });
    }

    async fn close(&mut self) {
        for (_, l) in self.listeners.drain() {
            self.gateway.close_listener(&l).await;
        }
        for t in self.inflight.lock().unwrap_or_else(|p| p.into_inner()).values() {
            t.cancel();
        }
        if let Some(s) = self.session.take() {
            s.close();
            self.gateway.hub.remove_detached(&s.id);
            self.gateway.end_session(&s, true).await;
        }
    }
}
