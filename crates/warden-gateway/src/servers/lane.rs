//! A lane: one era's connection to one server for one audience, with what it knows about the
//! server (its lists), the resource subscriptions it holds for clients, and what arrives on it
//! unsolicited.
//!
//! What arrives outside any call is handed to the stack's server-message guard
//! ([`ServerMessages`]) first; the lane only delivers what the guard passes: list changes (which
//! invalidate its inventory and go to the lane's audience), resource updates (to subscribers),
//! log messages (to the session that owns the connection, else to the gateway's log), and server
//! requests (to the one client that owns the connection, or from configured roots).

use super::inventory::Inventory;
use super::{Failure, ServerInfo, request};
use crate::catalogue::ListKind;
use crate::client::ClientContext;
use crate::hub::{Audience, Hub, Subscriber};
use crate::levels;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use warden_protocol::{Era, Message, RpcError, error};
use warden_upstream::{Call, Connection, EraPreference, ServerEvent, ServerRequest, Upstream, UpstreamError};

/// The stack's guard for what a server sends a client: every notification and every request,
/// within a call or outside any, passes it before it is delivered. It is also told of every
/// connection a sandboxed server asks its egress proxy for (`EgressObserver`).
pub trait ServerMessages: warden_upstream::egress::EgressObserver + Send + Sync {
    /// Passes a notification from `server` on its way to `to` (`None`: it belongs to no single
    /// client), as part of the client's request `within` if any. It may edit the message; `false`
    /// means it is not delivered.
    fn notification(
        &self,
        server: &ServerInfo,
        to: Option<&ClientContext>,
        within: Option<&str>,
        message: &mut Message,
    ) -> bool;

    /// Passes a request `server` makes of `to` (`None`: no single client can answer it), as part
    /// of the client's request `within` if any. It may edit the params. `Ok(None)`: relay it to
    /// the client; `Ok(Some(answer))`: the gateway answers it itself (a ping, configured roots);
    /// an error is the refusal the server gets. Every request, passed or refused, is audited.
    fn request(
        &self,
        server: &ServerInfo,
        to: Option<&ClientContext>,
        within: Option<&str>,
        method: &str,
        params: &mut Option<Value>,
    ) -> Result<Option<Value>, RpcError>;

    /// Passes a client's answer to a request of `server`'s on its way back: a sampling answer or
    /// an elicitation's content is text the client chose, and a credential in it is exfiltration.
    fn answer(&self, server: &ServerInfo, method: &str, answer: &mut Result<Value, RpcError>);
}

/// One era's connection to a server, with what it knows about it.
pub struct Lane {
    /// The era this lane speaks.
    pub era: Era,
    /// The server.
    pub info: Arc<ServerInfo>,
    /// Who the lane serves.
    pub audience: Audience,
    /// The server's lists, as last fetched on this lane.
    pub inventory: Inventory,
    upstream: Upstream,
    hub: Arc<Hub>,
    subscribers: Mutex<HashMap<String, HashSet<Subscriber>>>,
    seen_generation: AtomicU64,
    log_level: Mutex<Option<String>>,
    server_log: Mutex<LogBudget>,
    unsolicited_requests: Arc<tokio::sync::Semaphore>,
}

/// Most unsolicited server requests a lane handles at once; past this they are refused.
const MAX_UNSOLICITED_REQUESTS: usize = 16;

/// At most this many unsolicited server log lines per second reach the gateway's log.
const SERVER_LOG_LINES_PER_SECOND: u32 = 20;

#[derive(Debug)]
struct LogBudget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    /// Whether one more line may be logged now; reports what was suppressed when a window closes.
    fn allow(&mut self, server: &str) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::warn!(%server, suppressed = self.suppressed, "suppressed log messages from a noisy server");
            }
            *self = LogBudget { window: Instant::now(), used: 0, suppressed: 0 };
        }
        self.used += 1;
        if self.used > SERVER_LOG_LINES_PER_SECOND {
            self.suppressed += 1;
            return false;
        }
        true
    }
}

impl Lane {
    pub(crate) fn new(
        info: Arc<ServerInfo>,
        audience: Audience,
        era: Era,
        hub: Arc<Hub>,
        provider: Option<warden_upstream::Provided>,
    ) -> Arc<Lane> {
        let mut spec = info.spec.clone();
        if let warden_upstream::TransportSpec::Http { provider: p, .. } = &mut spec.transport {
            *p = provider;
        }
        spec.infer_log_association = audience != Audience::All;
        spec.era = match era {
            Era::Legacy => EraPreference::Legacy,
            Era::Modern => EraPreference::Modern,
        };
        let (tx, rx) = mpsc::channel(256);
        let inventory = Inventory::new(info.review.clone().map(|r| (r, info.name.clone())));
        let lane = Arc::new(Lane {
            era,
            info,
            audience,
            inventory,
            upstream: Upstream::new(Arc::new(spec), tx),
            hub,
            subscribers: Mutex::new(HashMap::new()),
            seen_generation: AtomicU64::new(0),
            log_level: Mutex::new(None),
            server_log: Mutex::new(LogBudget { window: Instant::now(), used: 0, suppressed: 0 }),
            unsolicited_requests: Arc::new(tokio::sync::Semaphore::new(MAX_UNSOLICITED_REQUESTS)),
        });
        tokio::spawn(pump(Arc::downgrade(&lane), rx));
        lane
    }

    /// The live connection, connecting or reconnecting if needed. A new connection starts with a
    /// fresh inventory and gets this lane's subscriptions and log level again.
    pub async fn connection(&self) -> Result<(Arc<Connection>, u64), UpstreamError> {
        let (conn, generation) = self.upstream.connection().await?;
        // Only the first caller to see a newer connection restores it; generations never go back.
        let seen = self.seen_generation.load(Ordering::Acquire);
        if generation > seen
            && self.seen_generation.compare_exchange(seen, generation, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.inventory.invalidate_all();
            self.restore(&conn).await;
        }
        Ok((conn, generation))
    }

    async fn restore(&self, conn: &Connection) {
        match conn.hello().era() {
            Era::Modern => {
                if let Some(filter) = self.listen_filter(conn) {
                    conn.listen(filter).await;
                }
            }
            Era::Legacy => {
                let uris: Vec<String> =
                    self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
                for uri in uris {
                    let _ = conn.call(Call::new("resources/subscribe", Some(json!({ "uri": uri })))).await;
                }
                let level = self.log_level.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let (Some(level), true) = (level, conn.hello().has_capability("logging")) {
                    let _ = conn.call(Call::new("logging/setLevel", Some(json!({ "level": level })))).await;
                }
            }
        }
    }

    /// What to ask a modern server's listen stream for; `None` when there is nothing to hear.
    fn listen_filter(&self, conn: &Connection) -> Option<Value> {
        let caps = &conn.hello().capabilities;
        let flag =
            |cap: &str, key: &str| caps.get(cap).and_then(|c| c.get(key)).and_then(Value::as_bool).unwrap_or(false);
        let uris: Vec<String> = if flag("resources", "subscribe") {
            self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
        } else {
            vec![]
        };
        let filter = json!({
            "toolsListChanged": flag("tools", "listChanged"),
            "promptsListChanged": flag("prompts", "listChanged"),
            "resourcesListChanged": flag("resources", "listChanged"),
            "resourceSubscriptions": uris,
        });
        let any = filter.as_object().is_some_and(|o| {
            o.values().any(|v| v.as_bool() == Some(true) || v.as_array().is_some_and(|a| !a.is_empty()))
        });
        any.then_some(filter)
    }

    /// Subscribes `who` to a resource, subscribing upstream for the first subscriber.
    pub async fn subscribe(&self, uri: &str, who: Subscriber) -> Result<(), Failure> {
        let first = {
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            let set = subs.entry(uri.to_owned()).or_default();
            let first = set.is_empty();
            set.insert(who.clone());
            first
        };
        if !first {
            return Ok(());
        }
        let outcome = self.sync_subscription(uri, true).await;
        if outcome.is_err() {
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(set) = subs.get_mut(uri) {
                set.remove(&who);
                if set.is_empty() {
                    subs.remove(uri);
                }
            }
        }
        outcome
    }

    /// Subscribes `who` to several resources at once, updating the server once; returns the URIs
    /// now subscribed.
    pub async fn subscribe_many(&self, uris: &[String], who: Subscriber) -> Vec<String> {
        let new: Vec<String> = {
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            uris.iter()
                .filter(|uri| {
                    let set = subs.entry((*uri).clone()).or_default();
                    let first = set.is_empty();
                    set.insert(who.clone());
                    first
                })
                .cloned()
                .collect()
        };
        let Ok((conn, _)) = self.connection().await else {
            self.forget_subscriber(uris, &who);
            return vec![];
        };
        let mut refused = Vec::new();
        match conn.hello().era() {
            Era::Legacy => {
                for uri in &new {
                    let ok =
                        request(&conn, Call::new("resources/subscribe", Some(json!({ "uri": uri })))).await.is_ok();
                    if !ok {
                        refused.push(uri.clone());
                    }
                }
            }
            Era::Modern => {
                if let (false, Some(filter)) = (new.is_empty(), self.listen_filter(&conn)) {
                    conn.listen(filter).await;
                }
            }
        }
        self.forget_subscriber(&refused, &who);
        uris.iter().filter(|u| !refused.contains(u)).cloned().collect()
    }

    fn forget_subscriber(&self, uris: &[String], who: &Subscriber) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for uri in uris {
            if let Some(set) = subs.get_mut(uri) {
                set.remove(who);
                if set.is_empty() {
                    subs.remove(uri);
                }
            }
        }
    }

    /// Unsubscribes `who`, unsubscribing upstream after the last subscriber.
    pub async fn unsubscribe(&self, uri: &str, who: &Subscriber) -> Result<(), Failure> {
        let last = {
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            match subs.get_mut(uri) {
                Some(set) => {
                    set.remove(who);
                    let last = set.is_empty();
                    if last {
                        subs.remove(uri);
                    }
                    last
                }
                None => false,
            }
        };
        if last { self.sync_subscription(uri, false).await } else { Ok(()) }
    }

    /// Removes every subscription of `who` (its session or stream ended).
    pub async fn drop_subscriber(&self, who: &Subscriber) {
        let uris: Vec<String> = self
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, set)| set.contains(who))
            .map(|(u, _)| u.clone())
            .collect();
        for uri in uris {
            let _ = self.unsubscribe(&uri, who).await;
        }
    }

    async fn sync_subscription(&self, uri: &str, subscribe: bool) -> Result<(), Failure> {
        let conn = if subscribe {
            self.connection().await?.0
        } else {
            // Nothing to undo on a server that is not connected (a new connection starts clean).
            match self.upstream.current() {
                Some(c) => c,
                None => return Ok(()),
            }
        };
        match conn.hello().era() {
            Era::Legacy => {
                let method = if subscribe { "resources/subscribe" } else { "resources/unsubscribe" };
                request(&conn, Call::new(method, Some(json!({ "uri": uri })))).await.map(drop)
            }
            Era::Modern => {
                if let Some(filter) = self.listen_filter(&conn) {
                    conn.listen(filter).await;
                }
                Ok(())
            }
        }
    }

    /// Raises the server's log level to at least `level` (legacy servers; a shared connection logs
    /// at the most verbose level any client asked for, and each client's copy is filtered).
    pub async fn raise_log_level(&self, level: &str) {
        {
            let mut current = self.log_level.lock().unwrap_or_else(|p| p.into_inner());
            if current.as_deref().is_some_and(|c| levels::rank(c) <= levels::rank(level)) {
                return;
            }
            *current = Some(level.to_owned());
        }
        if let Ok((conn, _)) = self.connection().await
            && conn.hello().era() == Era::Legacy
            && conn.hello().has_capability("logging")
        {
            let _ = conn.call(Call::new("logging/setLevel", Some(json!({ "level": level })))).await;
        }
    }

    /// Forwards a notification to the server if it is connected (for example roots changes).
    pub async fn notify_if_connected(&self, method: &str, params: Option<Value>) {
        if let Some(conn) = self.upstream.current() {
            let _ = conn.notify(method, params).await;
        }
    }

    /// The current connection, if live, without connecting.
    pub fn current(&self) -> Option<Arc<Connection>> {
        self.upstream.current()
    }

    /// Stops the connection.
    pub async fn shutdown(&self) {
        self.upstream.shutdown().await;
    }

    async fn on_event(self: Arc<Self>, event: ServerEvent) {
        match event {
            ServerEvent::Notification(m) => self.on_notification(m),
            ServerEvent::Request(r) => match self.unsolicited_requests.clone().try_acquire_owned() {
                // A client may take minutes to answer; do not hold up the rest of the lane's events.
                Ok(permit) => {
                    tokio::spawn(async move {
                        self.on_request(r).await;
                        drop(permit);
                    });
                }
                Err(_) => r.respond(Err(RpcError::new(
                    error::UPSTREAM_UNAVAILABLE,
                    "too many server requests are outstanding",
                ))),
            },
            ServerEvent::Closed(reason) => {
                tracing::info!(server = %self.info.name, era = %self.era, "connection ended: {reason}");
                self.inventory.invalidate_all();
            }
        }
    }

    /// The session that owns this lane's connection, if one does and it is still live.
    fn owner(&self) -> Option<Arc<crate::session::Session>> {
        match &self.audience {
            Audience::Session(id) => self.hub.session(id).filter(|s| !s.closed.is_cancelled()),
            _ => None,
        }
    }

    fn on_notification(&self, mut m: Message) {
        let Some(guard) = &self.info.messages else {
            tracing::debug!(server = %self.info.name, "dropped a notification: no guard is in place");
            return;
        };
        let owner = self.owner();
        // A log message no client owns goes only to the gateway's log, within its budget: what
        // is over it is not even read.
        if owner.is_none()
            && m.method() == Some("notifications/message")
            && !self.server_log.lock().unwrap_or_else(|p| p.into_inner()).allow(&self.info.name)
        {
            return;
        }
        let ctx = owner.as_ref().map(ClientContext::of_session);
        if !guard.notification(&self.info, ctx.as_ref(), None, &mut m) {
            return;
        }
        let method = m.method().unwrap_or_default();
        let changed = ListKind::changed_by(method);
        if let Some(first) = changed.first() {
            for k in changed {
                self.inventory.invalidate(*k);
            }
            self.hub.list_changed(*first, &self.audience);
            return;
        }
        match method {
            "notifications/resources/updated" => {
                let Some(uri) = m.param_str("uri") else { return };
                let subs =
                    self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).get(uri).cloned().unwrap_or_default();
                self.hub.resource_updated(uri, &subs);
            }
            "notifications/message" => {
                if let Some(s) = owner {
                    if levels::permits(s.log_level().as_deref(), m.params()) && !s.push(m) {
                        tracing::debug!(server = %self.info.name, "a log message for a session with no stream open was dropped");
                    }
                    return;
                }
                // On a shared connection a log message outside any request belongs to no client.
                let level = m.params().and_then(|p| p.get("level")).and_then(Value::as_str).unwrap_or("info");
                let data = m.params().and_then(|p| p.get("data")).map(|d| d.to_string()).unwrap_or_default();
                let data: String = data.chars().take(2000).map(|c| if c.is_control() { ' ' } else { c }).collect();
                tracing::info!(server = %self.info.name, level = %crate::names::shown(level), "server log: {data}");
            }
            other => tracing::debug!(server = %self.info.name, method = %other, "ignored an unsolicited notification"),
        }
    }

    async fn on_request(&self, request: ServerRequest) {
        let method = request.method().to_owned();
        let Some(guard) = &self.info.messages else {
            request.respond(Err(RpcError::new(error::POLICY_DENIED, "no guard is in place")));
            return;
        };
        let owner = self.owner().filter(|s| s.stream().is_some());
        let ctx = owner.as_ref().map(ClientContext::of_session);
        let mut params = request.message().params().cloned();
        match guard.request(&self.info, ctx.as_ref(), None, &method, &mut params) {
            Err(e) => request.respond(Err(e)),
            Ok(Some(answer)) => request.respond(Ok(answer)),
            Ok(None) => match owner.and_then(|s| s.stream().map(|tx| (s, tx))) {
                Some((s, tx)) => {
                    let mut answer = s.peer.request(&tx, &method, params, self.info.client_answer_timeout).await;
                    guard.answer(&self.info, &method, &mut answer);
                    request.respond(answer);
                }
                None => request.respond(Err(RpcError::new(
                    error::METHOD_NOT_FOUND,
                    format!("{method} outside a request cannot be answered on this connection"),
                ))),
            },
        }
    }
}

async fn pump(lane: Weak<Lane>, mut rx: mpsc::Receiver<ServerEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(lane) = lane.upgrade() else { break };
        lane.on_event(event).await;
    }
}
