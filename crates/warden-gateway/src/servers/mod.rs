//! The servers behind the gateway, and the connections kept to them.
//!
//! The [`Registry`] holds each configured [`Server`]. A server has *slots* ([`Slot`]): one shared
//! by every client, or (with `isolation = "session"`) one per legacy session and one per
//! principal for modern clients. A slot has two *lanes* ([`Lane`]), one per protocol era. A
//! client is served on the lane of its own era when the server speaks it, so a dual-era server
//! sees each client exactly as a direct connection would; when the server speaks only the other
//! era, the gateway bridges.
//!
//! This layer moves messages and applies no policy. What a server sends outside any call is
//! handed to the stack's server-message guard ([`ServerMessages`]) before it is delivered, and
//! what a server answers is returned as a [`Failure::Server`] that only the response guards may
//! turn into an error for a client.

pub mod entry;
mod inventory;
mod lane;
mod launch;
pub mod probe;
mod slot;
mod spec;

pub use inventory::{Definition, Inventory, ListReview, Snapshot};
pub use lane::{Lane, ServerMessages};
pub use launch::{Flag, LaunchReview, Severity, base as program_name, flags as command_flags, printable};
pub use slot::Slot;
pub use spec::{SELF_COMMAND, ServerPaths, credential_of, sandbox_problem, server_info};

use crate::client::ClientContext;
use crate::config::{Isolation, ProtocolChoice, SamplingLimits};
use crate::hub::{Audience, Hub};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warden_protocol::{Kind, RpcError, error};
use warden_upstream::{Call, Connection, UpstreamSpec};

/// Gateway-side facts about one configured server.
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
    /// Reviews every list fetched from it before it is kept (the integrity guard). Without one
    /// (tests of connection handling only), lists are kept as the server sent them.
    pub review: Option<Arc<dyn ListReview>>,
    /// The guard that passes what the server sends outside any call. Without one (tests of
    /// connection handling only), such messages are dropped and such requests refused.
    pub messages: Option<Arc<dyn ServerMessages>>,
    /// What its sampling requests may ask of a client's model.
    pub sampling: SamplingLimits,
    /// Its tool and prompt results do not taint the caller's context (`trusted_content`).
    pub trusted_content: bool,
    /// Reading its resources does not taint the caller's context (`trusted_resources`).
    pub trusted_resources: bool,
    /// Obtains its credential per caller (`token_exchange`); `None` when it is fixed or absent.
    pub credentials: Option<Arc<crate::credentials::Credentials>>,
}

impl ServerInfo {
    /// A server by that name with default settings and no guards, never started: for tests of
    /// what uses server facts without a connection.
    pub fn unstarted(name: &str) -> ServerInfo {
        let spec = UpstreamSpec::new(
            name,
            warden_upstream::TransportSpec::Stdio {
                command: "true".into(),
                args: vec![],
                env: Default::default(),
                cwd: None,
                sandbox: None,
            },
        );
        ServerInfo {
            name: name.to_owned(),
            namespace: name.to_owned(),
            isolation: Isolation::Shared,
            protocol: ProtocolChoice::Auto,
            roots: vec![],
            spec,
            client_answer_timeout: Duration::from_secs(1),
            review: None,
            messages: None,
            sampling: SamplingLimits::default(),
            trusted_content: false,
            trusted_resources: false,
            credentials: None,
        }
    }
}

impl std::fmt::Debug for ServerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerInfo").field("name", &self.name).field("isolation", &self.isolation).finish()
    }
}

/// The error for a request to a contained server.
pub fn contained_error(server: &str) -> RpcError {
    RpcError::new(
        error::SERVER_CONTAINED,
        format!("server '{server}' is contained by an operator: it cannot be reached until it is released"),
    )
    .with_data(json!({ "server": server, "contained": true }))
}

/// A server's own JSON-RPC error, as it sent it. It is not an error Warden says: only the
/// response guards turn it into one for a client (translating codes Warden gives meaning to,
/// scrubbing and screening what it says), so it converts into nothing by itself.
#[derive(Debug)]
pub struct ServerError(RpcError);

impl ServerError {
    /// The error as the server sent it, for the response guard that translates it.
    pub fn untranslated(self) -> RpcError {
        self.0
    }

    /// The error as the server sent it, to look at (never to pass on).
    pub fn peek(&self) -> &RpcError {
        &self.0
    }

    /// A server's error, for tests of the guards.
    pub fn from_server(e: RpcError) -> ServerError {
        ServerError(e)
    }
}

/// Why a request to a server did not produce a result.
#[derive(Debug)]
pub enum Failure {
    /// The gateway's own error (the server unreachable, a timeout, a refusal): fit for a client.
    Gateway(RpcError),
    /// The server answered with an error.
    Server(ServerError),
}

impl From<warden_upstream::UpstreamError> for Failure {
    fn from(e: warden_upstream::UpstreamError) -> Self {
        Failure::Gateway(e.to_rpc())
    }
}

/// Sends one request on a connection: the result, or why there is none.
pub async fn request(conn: &Connection, call: Call) -> Result<Value, Failure> {
    let mut reply = conn.call(call).await?;
    if reply.kind() == Kind::Response {
        return Ok(reply.take_result().unwrap_or_else(|| json!({})));
    }
    Err(Failure::Server(ServerError(reply.rpc_error().unwrap_or_else(|| RpcError::internal("error")))))
}

/// One configured server and its slots.
pub struct Server {
    /// Its settings.
    pub info: Arc<ServerInfo>,
    hub: Arc<Hub>,
    slots: Mutex<HashMap<Audience, Arc<Slot>>>,
    /// Contained by an operator: no slot is given out (checked under the `slots` lock).
    contained: AtomicBool,
}

impl Server {
    /// A server with no connections yet.
    pub fn new(info: ServerInfo, hub: Arc<Hub>) -> Arc<Server> {
        Arc::new(Server {
            info: Arc::new(info),
            hub,
            slots: Mutex::new(HashMap::new()),
            contained: AtomicBool::new(false),
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
        // A connection serving one caller carries that caller's credential when it is per caller.
        let caller = (key != Audience::All).then(|| ctx.principal.clone());
        self.slot_checked(key, ended.as_ref(), caller)
    }

    /// Whether `ctx`'s caller can be served now: a credential obtained per caller is obtained
    /// first, so that a refusal, or the link to authorize the server, is the answer rather than a
    /// failed connection.
    pub async fn ready(&self, ctx: &ClientContext) -> Result<(), RpcError> {
        match &self.info.credentials {
            Some(c) => c.ready(&ctx.principal, &self.info.name).await,
            None => Ok(()),
        }
    }

    /// The slot for an audience, created on first use; `None` while the server is contained.
    pub fn slot_for(&self, key: Audience) -> Option<Arc<Slot>> {
        self.slot_checked(key, None, None).ok()
    }

    fn slot_checked(
        &self,
        key: Audience,
        ended: Option<&tokio_util::sync::CancellationToken>,
        caller: Option<Arc<warden_policy::Principal>>,
    ) -> Result<Arc<Slot>, RpcError> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock: a session is marked ended before its slots are removed.
        if ended.is_some_and(|t| t.is_cancelled()) {
            return Err(RpcError::new(error::UPSTREAM_CLOSED, "the session has ended"));
        }
        if self.is_contained() {
            return Err(contained_error(&self.info.name));
        }
        let slot = slots
            .entry(key.clone())
            .or_insert_with(|| Slot::new(self.info.clone(), key, self.hub.clone(), caller))
            .clone();
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

    /// Whether any of its connections is live now.
    pub fn is_up(&self) -> bool {
        self.slots().iter().any(|slot| slot.lanes().iter().any(|lane| lane.current().is_some()))
    }
}

/// The configured servers, in name order.
pub struct Registry {
    servers: Vec<Arc<Server>>,
}

impl Registry {
    /// A registry of these servers (in the order given).
    pub fn new(servers: Vec<Arc<Server>>) -> Registry {
        Registry { servers }
    }

    /// Every server, in name order.
    pub fn all(&self) -> &[Arc<Server>] {
        &self.servers
    }

    /// The server configured as `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Server>> {
        self.servers.iter().find(|s| s.info.name == name)
    }

    /// Stops every server's connections.
    pub async fn shutdown(&self) {
        futures::future::join_all(self.servers.iter().map(|s| s.shutdown())).await;
    }

    /// Releases what a legacy session held: its own connections, and its resource subscriptions
    /// on every connection.
    pub async fn end_session(&self, session_id: &str) {
        let who = crate::hub::Subscriber::Session(session_id.to_owned());
        for server in &self.servers {
            if server.info.isolation == Isolation::Session {
                server.close_slot(&Audience::Session(session_id.to_owned())).await;
            }
            for slot in server.slots() {
                for lane in slot.lanes() {
                    lane.drop_subscriber(&who).await;
                }
            }
        }
    }

    /// Drops every subscription of `who` on every connection.
    pub async fn drop_subscriber(&self, who: &crate::hub::Subscriber) {
        for server in &self.servers {
            for slot in server.slots() {
                for lane in slot.lanes() {
                    lane.drop_subscriber(who).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::session::SessionStore;
    use warden_policy::{Principal, PrincipalClass};

    fn server(hub: Arc<Hub>) -> Arc<Server> {
        Server::new(ServerInfo { isolation: Isolation::Session, ..ServerInfo::unstarted("s") }, hub)
    }

    #[tokio::test]
    async fn an_ended_session_gets_no_connection_and_leftovers_are_reaped() {
        let hub = Arc::new(Hub::new(SessionStore::new(10, Duration::from_secs(60), Arc::new(SystemClock))));
        let server = server(hub.clone());
        let alice = Arc::new(Principal::new("alice", PrincipalClass::User));
        let session =
            hub.sessions.create(alice, warden_protocol::ProtocolVersion::V2025_11_25, json!({}), json!({})).unwrap();
        let ctx = ClientContext::of_session(&session);
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
            ClientContext {
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
