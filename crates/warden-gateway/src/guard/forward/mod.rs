//! The forwarding step: a request that passed every request guard goes where its route says, and
//! what comes back is a [`Reply`] for the response guards. A server's error comes back as
//! [`Reply::ServerError`], which only the translating guard turns into an error for the client.
//!
//! | route | where it goes |
//! |---|---|
//! | ping, server/discover | answered by the gateway ([`Announce`]) |
//! | lists | every server's inventory, merged ([`crate::resolver`]) |
//! | tools/call, prompts/get, resources/read | the resolved server, with everything it says meanwhile ([`call`]) |
//! | completion/complete | the server of the prompt or template |
//! | resources/subscribe, unsubscribe | the resolved server's connection, shared by subscribers |
//! | logging/setLevel | the client's own connections |

pub mod call;
mod constraints;
mod local;
pub mod parked;

pub use local::Announce;

use super::authorize::Authorizer;
use super::quarantine::{Quarantine, URI_PREFIX};
use super::resolve::MAX_SUBSCRIPTIONS;
use super::{Forwarder, Reply, Request};
use crate::catalogue::{CallKind, ListKind, Route};
use crate::hub::Subscriber;
use crate::levels;
use crate::resolver::{Resolver, Target, resource_not_found};
use crate::servers::{Failure, ServerMessages, contained_error, request};
use parked::Parked;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use warden_policy::Item;
use warden_protocol::{Era, RpcError};
use warden_upstream::Call;

/// The forwarding step.
pub struct Forward {
    resolver: Arc<Resolver>,
    policies: Arc<Authorizer>,
    parked: Arc<Parked>,
    messages: Arc<dyn ServerMessages>,
    quarantine: Arc<Quarantine>,
    announce: Arc<Announce>,
    input_required_ttl: Duration,
    retries: constraints::Retries,
}

/// What the forwarding step needs.
pub struct ForwardParts {
    /// The one resolver (lists).
    pub resolver: Arc<Resolver>,
    /// What each principal may see of lists.
    pub policies: Arc<Authorizer>,
    /// Calls waiting for modern clients.
    pub parked: Arc<Parked>,
    /// The server-message guards, for what servers say during calls.
    pub messages: Arc<dyn ServerMessages>,
    /// Released quarantine items.
    pub quarantine: Arc<Quarantine>,
    /// The gateway's answers about itself.
    pub announce: Arc<Announce>,
    /// How long a call waits for a client's answer or retry.
    pub input_required_ttl: Duration,
}

impl Forward {
    /// The forwarding step.
    pub fn new(parts: ForwardParts) -> Forward {
        let ForwardParts { resolver, policies, parked, messages, quarantine, announce, input_required_ttl } = parts;
        Forward {
            resolver,
            policies,
            parked,
            messages,
            quarantine,
            announce,
            input_required_ttl,
            retries: Default::default(),
        }
    }

    async fn list(&self, request: &mut Request<'_>, kind: ListKind) -> Result<Reply, RpcError> {
        let (principal, era) = (&request.ctx.principal, request.ctx.era());
        let policies = &self.policies;
        let visible = |kind: ListKind, server: &str, item: &Value| {
            let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
            let item = match kind {
                ListKind::Tools => {
                    return policies.visible(principal, era, server, Item::Tool(&policies.tool(server, item).0));
                }
                ListKind::Prompts => Item::Prompt(text("name")),
                ListKind::Resources => Item::Resource { uri: text("uri"), template: false },
                ListKind::Templates => Item::Resource { uri: text("uriTemplate"), template: true },
            };
            policies.visible(principal, era, server, item)
        };
        let (result, sources) = self.resolver.list(request.ctx, kind, request.params.get("cursor"), &visible).await?;
        request.sources = sources;
        Ok(Reply::Result(result))
    }

    async fn call_item(&self, request: &mut Request<'_>, kind: CallKind) -> Result<Reply, RpcError> {
        let Some(target) = request.target.take() else {
            let uri = request.addressed().to_owned();
            if kind == CallKind::Resource && uri.starts_with(URI_PREFIX) {
                return self.released(request, &uri).await;
            }
            return Err(RpcError::internal("a call reached its server unresolved"));
        };
        request.sources = vec![target.server.clone()];
        let outcome = self.call(request, &target).await;
        let server = target.via.as_ref().map(|v| v.server.clone());
        request.target = Some(target);
        match outcome {
            // A call cut off because its server was contained says so.
            Err(e) if server.is_some_and(|s| s.is_contained()) => {
                let name = request.server().map(|s| s.name.clone()).unwrap_or_default();
                let _ = e;
                Err(contained_error(&name))
            }
            other => other,
        }
    }

    /// Serves a quarantined result a person released, to the caller it was withheld from; to
    /// anyone else, and for anything not released, the resource does not exist.
    async fn released(&self, request: &mut Request<'_>, uri: &str) -> Result<Reply, RpcError> {
        let Some(content) = self.quarantine.released(request.ctx, uri).await? else {
            return Err(resource_not_found(request.ctx, uri));
        };
        let text = content.to_string();
        Ok(Reply::Result(json!({ "contents": [{ "uri": uri, "mimeType": "application/json", "text": text }] })))
    }

    async fn complete(&self, request: &mut Request<'_>, target: &Target) -> Result<Reply, RpcError> {
        let via = target.via.as_ref().ok_or_else(|| RpcError::internal("no connection"))?;
        if !via.conn.hello().has_capability("completions") {
            return Ok(Reply::Result(json!({ "completion": { "values": [], "hasMore": false } })));
        }
        request.sources = vec![target.server.clone()];
        let mut params = request.params.clone();
        if params.get("ref").and_then(|r| r.get("type")).and_then(Value::as_str) == Some("ref/prompt") {
            params["ref"]["name"] = Value::String(target.upstream_name.clone());
        }
        let call = Call {
            client_capabilities: Some((*request.ctx.capabilities).clone()),
            ..Call::new("completion/complete", Some(params))
        };
        reply_of(request_reply(&via.conn, call).await)
    }

    async fn subscribe(&self, request: &mut Request<'_>, on: bool, target: &Target) -> Result<Reply, RpcError> {
        let session =
            request.ctx.session.as_ref().ok_or_else(|| RpcError::invalid_request("subscriptions need a session"))?;
        let via = target.via.as_ref().ok_or_else(|| RpcError::internal("no connection"))?;
        let uri = target.upstream_name.clone();
        let who = Subscriber::Session(session.id.clone());
        request.sources = vec![target.server.clone()];
        if !on {
            return reply_of(via.lane.unsubscribe(&uri, &who).await.map(|()| json!({}))).inspect(|_| {
                session.unsubscribe(&uri);
            });
        }
        let held = session.subscriptions();
        if held.len() >= MAX_SUBSCRIPTIONS && !held.contains(&uri) {
            return Err(RpcError::invalid_params(format!(
                "at most {MAX_SUBSCRIPTIONS} resource subscriptions per session"
            )));
        }
        let offers = via
            .conn
            .hello()
            .capabilities
            .get("resources")
            .and_then(|r| r.get("subscribe"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !offers {
            return Err(RpcError::method_not_found(&format!(
                "resources/subscribe (server '{}' does not offer subscriptions)",
                target.server.name
            )));
        }
        let reply = reply_of(via.lane.subscribe(&uri, who).await.map(|()| json!({})))?;
        if matches!(reply, Reply::Result(_)) {
            session.subscribe(&uri);
        }
        Ok(reply)
    }

    async fn set_level(&self, request: &mut Request<'_>) -> Result<Reply, RpcError> {
        let ctx = request.ctx;
        let level = request
            .params
            .get("level")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.level must be a string"))?;
        if !levels::is_valid(level) {
            return Err(RpcError::invalid_params(format!("unknown log level {}", crate::names::shown(level))));
        }
        if let Some(s) = &ctx.session {
            s.set_log_level(level);
        }
        for server in self.resolver.registry().all() {
            let Ok(slot) = server.slot(ctx) else { continue };
            for lane in slot.lanes() {
                if lane.era == Era::Legacy {
                    lane.raise_log_level(level).await;
                }
            }
        }
        Ok(Reply::Result(json!({})))
    }
}

/// Sends one request and keeps a server's error apart from the gateway's.
async fn request_reply(conn: &warden_upstream::Connection, call: Call) -> Result<Value, Failure> {
    request(conn, call).await
}

/// A server's answer as a reply: a result, or its error for the translating guard; the
/// gateway's own error as the step's error.
fn reply_of(outcome: Result<Value, Failure>) -> Result<Reply, RpcError> {
    match outcome {
        Ok(v) => Ok(Reply::Result(v)),
        Err(Failure::Server(e)) => Ok(Reply::ServerError(e)),
        Err(Failure::Gateway(e)) => Err(e),
    }
}

#[async_trait::async_trait]
impl Forwarder for Forward {
    async fn forward(&self, request: &mut Request<'_>) -> Result<Reply, RpcError> {
        match request.route {
            Route::Ping => Ok(Reply::Result(json!({}))),
            Route::Discover => Ok(Reply::Result(self.announce.discover_result().await)),
            Route::List(kind) => self.list(request, kind).await,
            Route::Call(kind) => self.call_item(request, kind).await,
            Route::Complete | Route::Subscribe(_) => {
                let target = request
                    .target
                    .take()
                    .ok_or_else(|| RpcError::internal("a request reached its server unresolved"))?;
                let reply = match request.route {
                    Route::Subscribe(on) => self.subscribe(request, on, &target).await,
                    _ => self.complete(request, &target).await,
                };
                request.target = Some(target);
                reply
            }
            Route::SetLevel => self.set_level(request).await,
            Route::Listen => Err(RpcError::invalid_request("subscriptions/listen needs a streaming transport")),
            Route::Initialize => Err(RpcError::invalid_request("the session is already initialized")),
        }
    }
}
