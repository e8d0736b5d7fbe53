//! The servers behind the gateway, and the connections kept to them.
//!
//! Each configured server has *slots*: one shared by every client, or (with `isolation =
//! "session"`) one per legacy session and one per principal for modern clients. A slot has two
//! *lanes*, one per protocol era. A client is served on the lane of its own era when the server
//! speaks it, so a dual-era server sees each client exactly as a direct connection would; when the
//! server speaks only the other era, the gateway bridges. What a lane learns about the server's
//! eras is kept, so a refused era is not tried again.
//!
//! A lane also owns what arrives unsolicited on its connection: list changes (which invalidate
//! its inventory and are passed to the slot's audience), resource updates (to subscribers only),
//! and server requests outside any call (answered by the one client that owns the connection,
//! from configured roots, or refused).

use crate::client::{ClientContext, capability_for};
use crate::config::{Isolation, ProtocolChoice};
use crate::hub::{Audience, Hub, Subscriber};
use crate::inventory::{Inventory, ListKind};
use crate::levels;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use warden_protocol::{Era, Message, RpcError};
use warden_upstream::{
    Call, Connection, EraPreference, ServerEvent, ServerRequest, Upstream, UpstreamError, UpstreamSpec,
};

/// Gateway-side facts about one configured server.
#[derive(Debug)]
pub struct ServerInfo {
    /// Configured name.
    pub name: String,
    /// Prefix of its exposed names ("" for none).
    pub namespace: String,
    /// How clients share its connections.
    pub isolation: Isolation,
    /// Which eras to speak.
    pub protocol: ProtocolChoice,
    /// Roots answered on the server's behalf when no client can answer.
    pub roots: Vec<String>,
    /// How to reach it.
    pub spec: UpstreamSpec,
    /// How long a client may take to answer a request relayed from the server.
    pub client_answer_timeout: Duration,
    /// The policies that decide whether the server may ask a client anything. Without them
    /// (tests of connection handling only), nothing is asked.
    pub authorizer: Option<Arc<crate::authorize::Authorizer>>,
    /// The guard that reviews listed definitions against their pins. Without it (tests of
    /// connection handling only), lists are used as the server sent them.
    pub integrity: Option<Arc<crate::integrity::Integrity>>,
    /// What its sampling requests may ask of a client's model.
    pub sampling: crate::sanitize::SamplingLimits,
    /// Its tool and prompt results do not taint the caller's context (`trusted_content`).
    pub trusted_content: bool,
    /// Reading its resources does not taint the caller's context (`trusted_resources`).
    pub trusted_resources: bool,
}

/// The error for a request to a contained server.
pub fn contained_error(server: &str) -> RpcError {
    RpcError::new(
        warden_protocol::error::SERVER_CONTAINED,
        format!("server '{server}' is contained by an operator: it cannot be reached until it is released"),
    )
    .with_data(json!({ "server": server, "contained": true }))
}

/// One configured server and its slots.
pub struct Server {
    /// Its settings.
    pub info: Arc<ServerInfo>,
    hub: Arc<Hub>,
    slots: Mutex<HashMap<Audience, Arc<Slot>>>,
    /// Contained by an operator: no slot is given out (checked under the `slots` lock).
    contained: std::sync::atomic::AtomicBool,
}

impl Server {
    /// A server with no connections yet.
    pub fn new(info: ServerInfo, hub: Arc<Hub>) -> Arc<Server> {
        Arc::new(Server {
            info: Arc::new(info),
            hub,
            slots: Mutex::new(HashMap::new()),
            contained: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether an operator contained the server.
    pub fn is_contained(&self) -> bool {
        self.contained.load(Ordering::Acquire)
    }

    /// Contains the server: from now on no connection is given out, and every connection it has
    /// is stopped (a stdio child is ended), which fails the calls in flight on them. Whether it
    /// was not contained before.
    pub async fn contain(&self) -> bool {
        let (was, all) = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let was = self.contained.swap(true, Ordering::AcqRel);
            (was, slots.drain().map(|(_, s)| s).collect::<Vec<_>>())
        };
        for s in all {
            s.shutdown().await;
        }
        !was
    }

    /// Lifts containment: the next request connects afresh. Whether it was contained.
    pub fn release(&self) -> bool {
        let _slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        self.contained.swap(false, Ordering::AcqRel)
    }

    /// The slot that serves `ctx`, created on first use. A session that has ended gets none: a
    /// request still running when its session ended must not start a connection nobody will stop.
    pub fn slot(&self, ctx: &ClientContext) -> Result<Arc<Slot>, RpcError> {
        let key = match self.info.isolation {
            Isolation::Shared => Audience::All,
            Isolation::Session => match &ctx.session {
                Some(s) => Audience::Session(s.id.clone()),
                None => Audience::Principal(ctx.principal.identity_key()),
            },
        };
        let ended = ctx.session.as_ref().filter(|_| matches!(key, Audience::Session(_))).map(|s| s.closed.clone());
        self.slot_checked(key, ended.as_ref())
    }

    /// The slot for an audience, created on first use; `None` while the server is contained.
    pub fn slot_for(&self, key: Audience) -> Option<Arc<Slot>> {
        self.slot_checked(key, None).ok()
    }

    fn slot_checked(
        &self,
        key: Audience,
        ended: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<Arc<Slot>, RpcError> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock: `end_session` marks the session ended before it removes slots.
        if ended.is_some_and(|t| t.is_cancelled()) {
            return Err(RpcError::new(warden_protocol::error::UPSTREAM_CLOSED, "the session has ended"));
        }
        if self.is_contained() {
            return Err(contained_error(&self.info.name));
        }
        let slot =
            slots.entry(key.clone()).or_insert_with(|| Slot::new(self.info.clone(), key, self.hub.clone())).clone();
        slot.touch();
        Ok(slot)
    }

    /// Every slot in use.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Removes and stops a slot.
    pub async fn close_slot(&self, key: &Audience) {
        let slot = self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        if let Some(s) = slot {
            s.shutdown().await;
        }
    }

    /// Stops per-principal slots unused for `idle`, and any slot of a session that no longer exists.
    pub async fn reap(&self, idle: Duration) {
        let stale: Vec<Audience> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(k, s)| match k {
                Audience::Principal(_) => s.idle() > idle,
                Audience::Session(id) => self.hub.session(id).is_none_or(|s| s.closed.is_cancelled()),
                Audience::All => false,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.close_slot(&k).await;
        }
    }

    /// Stops every connection.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Slot>> =
            self.slots.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, s)| s).collect();
        for s in all {
            s.shutdown().await;
        }
    }
}

/// The connections serving one audience of one server.
pub struct Slot {
    /// The server.
    pub info: Arc<ServerInfo>,
    /// Who the slot serves.
    pub audience: Audience,
    lanes: [Arc<Lane>; 2],
    support: Mutex<[Support; 2]>,
    last_used: Mutex<Instant>,
}

/// What a slot has learned about one era.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    Unknown,
    Yes,
    /// Refused at this time; tried again after [`ERA_REFUSAL_MEMORY`], in case the refusal came
    /// from a server that was still starting.
    No(Instant),
}

/// How long an era the server refused is not tried again.
const ERA_REFUSAL_MEMORY: Duration = Duration::from_secs(300);

fn era_index(era: Era) -> usize {
    match era {
        Era::Legacy => 0,
        Era::Modern => 1,
    }
}

impl Slot {
    fn new(info: Arc<ServerInfo>, audience: Audience, hub: Arc<Hub>) -> Arc<Slot> {
        let lanes = [Era::Legacy, Era::Modern].map(|era| Lane::new(info.clone(), audience.clone(), era, hub.clone()));
        Arc::new(Slot {
            info,
            audience,
            lanes,
            support: Mutex::new([Support::Unknown; 2]),
            last_used: Mutex::new(Instant::now()),
        })
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    /// The lane for a client of `era`, connected: the same era when the server speaks it, the
    /// other one otherwise.
    pub async fn lane(&self, era: Era) -> Result<(Arc<Lane>, Arc<Connection>, u64), RpcError> {
        let other = match era {
            Era::Legacy => Era::Modern,
            Era::Modern => Era::Legacy,
        };
        let order: &[Era] = match self.info.protocol {
            ProtocolChoice::Legacy => &[Era::Legacy],
            ProtocolChoice::Modern => &[Era::Modern],
            ProtocolChoice::Auto => &[era, other],
        };
        let mut refused = Vec::new();
        for &e in order {
            if matches!(self.support.lock().unwrap_or_else(|p| p.into_inner())[era_index(e)], Support::No(t) if t.elapsed() < ERA_REFUSAL_MEMORY)
            {
                refused.push(e);
                continue;
            }
            let lane = &self.lanes[era_index(e)];
            match lane.connection().await {
                Ok((conn, generation)) => {
                    self.support.lock().unwrap_or_else(|p| p.into_inner())[era_index(e)] = Support::Yes;
                    return Ok((lane.clone(), conn, generation));
                }
                Err(UpstreamError::EraUnsupported { .. }) => {
                    self.support.lock().unwrap_or_else(|p| p.into_inner())[era_index(e)] = Support::No(Instant::now());
                    refused.push(e);
                }
                Err(other) => return Err(other.to_rpc()),
            }
        }
        Err(RpcError::new(
            warden_protocol::error::UPSTREAM_UNAVAILABLE,
            format!("server '{}' speaks no protocol era Warden can use (refused: {refused:?})", self.info.name),
        ))
    }

    /// The lane that would serve `era` if it is already connected, without connecting.
    pub fn connected_lane(&self, era: Era) -> Option<(Arc<Lane>, Arc<Connection>)> {
        let support = *self.support.lock().unwrap_or_else(|p| p.into_inner());
        let pick = |e: Era| {
            let lane = &self.lanes[era_index(e)];
            lane.upstream.current().map(|c| (lane.clone(), c))
        };
        match support[era_index(era)] {
            Support::No(_) => None,
            _ => pick(era),
        }
        .or_else(|| pick(if era == Era::Legacy { Era::Modern } else { Era::Legacy }))
    }

    /// Both lanes.
    pub fn lanes(&self) -> &[Arc<Lane>; 2] {
        &self.lanes
    }

    /// Stops both lanes.
    pub async fn shutdown(&self) {
        for l in &self.lanes {
            l.upstream.shutdown().await;
        }
    }
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
    fn new(info: Arc<ServerInfo>, audience: Audience, era: Era, hub: Arc<Hub>) -> Arc<Lane> {
        let mut spec = info.spec.clone();
        spec.infer_log_association = audience != Audience::All;
        spec.era = match era {
            Era::Legacy => EraPreference::Legacy,
            Era::Modern => EraPreference::Modern,
        };
        let (tx, rx) = mpsc::channel(256);
        let inventory = Inventory::new(info.integrity.clone().map(|i| (i, info.name.clone())));
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
    pub async fn subscribe(&self, uri: &str, who: Subscriber) -> Result<(), RpcError> {
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
                    let ok = conn
                        .call(Call::new("resources/subscribe", Some(json!({ "uri": uri }))))
                        .await
                        .is_ok_and(|m| m.rpc_error().is_none());
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
    pub async fn unsubscribe(&self, uri: &str, who: &Subscriber) -> Result<(), RpcError> {
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

    async fn sync_subscription(&self, uri: &str, subscribe: bool) -> Result<(), RpcError> {
        let conn = if subscribe {
            self.connection().await.map_err(|e| e.to_rpc())?.0
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
                let reply = conn.call(Call::new(method, Some(json!({ "uri": uri })))).await.map_err(|e| e.to_rpc())?;
                match reply.rpc_error() {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
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
                    warden_protocol::error::UPSTREAM_UNAVAILABLE,
                    "too many server requests are outstanding",
                ))),
            },
            ServerEvent::Closed(reason) => {
                tracing::info!(server = %self.info.name, era = %self.era, "connection ended: {reason}");
                self.inventory.invalidate_all();
            }
        }
    }

    fn on_notification(&self, m: Message) {
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
                let mut m = m;
                crate::sanitize::clean_notification(&mut m);
                if let Audience::Session(id) = &self.audience
                    && let Some(s) = self.hub.session(id)
                {
                    if levels::permits(s.log_level().as_deref(), m.params()) && !s.push(m) {
                        tracing::debug!(server = %self.info.name, "a log message for a session with no stream open was dropped");
                    }
                    return;
                }
                // On a shared connection a log message outside any request belongs to no client.
                if !self.server_log.lock().unwrap_or_else(|p| p.into_inner()).allow(&self.info.name) {
                    return;
                }
                let level = m.params().and_then(|p| p.get("level")).and_then(Value::as_str).unwrap_or("info");
                let data = m.params().and_then(|p| p.get("data")).map(|d| d.to_string()).unwrap_or_default();
                let data = crate::sanitize::redacted_for_log(&data);
                tracing::info!(server = %self.info.name, level = %crate::routing::shown(level), "server log: {data}");
            }
            other => tracing::debug!(server = %self.info.name, method = %other, "ignored an unsolicited notification"),
        }
    }

    async fn on_request(&self, request: ServerRequest) {
        let method = request.method().to_owned();
        if capability_for(&method).is_none() {
            request.respond(Err(RpcError::method_not_found(&method)));
            return;
        }
        if let Audience::Session(id) = &self.audience
            && let Some(s) = self.hub.session(id)
        {
            let capable = capability_for(&method).is_none_or(|c| s.capabilities.get(c).is_some_and(|v| !v.is_null()));
            if capable && let Some(tx) = s.stream() {
                let permitted = match &self.info.authorizer {
                    Some(a) => a.permit_server_request(
                        &s.principal,
                        s.version.era(),
                        &self.info.name,
                        &method,
                        request.message().params(),
                    ),
                    None => Err(RpcError::new(warden_protocol::error::POLICY_DENIED, "no policy is in force")),
                };
                if let Err(e) = permitted {
                    request.respond(Err(e));
                    return;
                }
                let mut params = request.message().params().cloned();
                crate::sanitize::guard_client_request(&method, params.as_mut(), &self.info.sampling);
                let answer = s.peer.request(&tx, &method, params, self.info.client_answer_timeout).await;
                request.respond(answer);
                return;
            }
        }
        if method == "roots/list" && !self.info.roots.is_empty() {
            let roots: Vec<Value> = self.info.roots.iter().map(|u| json!({ "uri": u })).collect();
            request.respond(Ok(json!({ "roots": roots })));
            return;
        }
        tracing::info!(server = %self.info.name, %method, "refused a server request made outside any call: no single client owns this connection");
        request.respond(Err(RpcError::new(
            warden_protocol::error::METHOD_NOT_FOUND,
            format!("{method} outside a request cannot be answered on this connection"),
        )));
    }
}

async fn pump(lane: Weak<Lane>, mut rx: mpsc::Receiver<ServerEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(lane) = lane.upgrade() else { break };
        lane.on_event(event).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::gateway::Gateway;
    use crate::session::SessionStore;
    use warden_policy::{Principal, PrincipalClass};
    use warden_upstream::TransportSpec;

    fn server(hub: Arc<Hub>) -> Arc<Server> {
        let spec = UpstreamSpec::new(
            "s",
            TransportSpec::Stdio { command: "true".into(), args: vec![], env: Default::default(), cwd: None },
        );
        let info = ServerInfo {
            name: "s".into(),
            namespace: "s".into(),
            isolation: Isolation::Session,
            protocol: ProtocolChoice::Auto,
            roots: vec![],
            spec,
            client_answer_timeout: Duration::from_secs(1),
            authorizer: None,
            integrity: None,
            sampling: Default::default(),
            trusted_content: false,
            trusted_resources: false,
        };
        Server::new(info, hub)
    }

    #[tokio::test]
    async fn an_ended_session_gets_no_connection_and_leftovers_are_reaped() {
        let hub = Arc::new(Hub::new(SessionStore::new(10, Duration::from_secs(60), Arc::new(SystemClock))));
        let server = server(hub.clone());
        let alice = Arc::new(Principal::new("alice", PrincipalClass::User));
        let session =
            hub.sessions.create(alice, warden_protocol::ProtocolVersion::V2025_11_25, json!({}), json!({})).unwrap();
        let ctx = Gateway::session_context(&session);
        assert!(server.slot(&ctx).is_ok());
        hub.sessions.remove(&session.id);
        assert!(server.slot(&ctx).is_err(), "a request outliving its session cannot start a connection");
        assert_eq!(server.slots().len(), 1, "the slot made while the session lived is still there");
        server.reap(Duration::from_secs(3600)).await;
        assert!(server.slots().is_empty(), "the reaper closes slots of sessions that are gone");
    }

    #[tokio::test]
    async fn per_principal_connections_are_keyed_by_the_whole_identity() {
        let hub = Arc::new(Hub::new(SessionStore::new(10, Duration::from_secs(60), Arc::new(SystemClock))));
        let server = server(hub);
        let ctx = |tenant: &str| {
            let mut p = Principal::new("alice", PrincipalClass::User);
            p.tenant = Some(tenant.into());
            crate::client::ClientContext {
                principal: Arc::new(p),
                version: warden_protocol::ProtocolVersion::V2026_07_28,
                capabilities: Arc::new(json!({})),
                client_info: Arc::new(json!({})),
                session: None,
                log_level: None,
                header_params: None,
            }
        };
        let a = server.slot(&ctx("tenant-a")).unwrap();
        let b = server.slot(&ctx("tenant-b")).unwrap();
        assert!(!Arc::ptr_eq(&a, &b), "the same subject in another tenant gets its own connection");
    }
}
