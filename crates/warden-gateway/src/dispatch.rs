//! The request path: what happens to each request a client sends, in one place.
//!
//! ```text
//! request ─▶ method known in the client's era? ─▶ resolve (one resolver) ─▶ forward ─▶ shape for era
//! ```
//!
//! Authentication, authorization, limits and approvals slot in between resolving and forwarding
//! as those controls land; the fronts (HTTP, stdio) own framing, sessions and headers.

use crate::client::{ClientContext, Outbound};
use crate::forward::Forwarding;
use crate::gateway::Gateway;
use crate::hub::{ListenFilter, Listener, Subscriber};
use crate::inventory::{self, ListKind};
use crate::levels;
use crate::routing::shown;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_protocol::methods::{self, Direction};
use warden_protocol::{Era, Message, RpcError, error};
use warden_upstream::Call;

/// Most resource subscriptions one session or one listen stream may hold.
pub const MAX_SUBSCRIPTIONS: usize = 256;

impl Gateway {
    /// Serves one request and returns the response to send.
    pub async fn handle(
        &self,
        ctx: &ClientContext,
        request: &Message,
        out: &Outbound,
        cancel: &CancellationToken,
    ) -> Message {
        let Some(id) = request.id().cloned() else {
            return Message::error_response(None, &RpcError::invalid_request("a request needs an id"));
        };
        let method = request.method().unwrap_or_default();
        match self.route(ctx, method, request.params(), out, cancel).await {
            Ok(result) => Message::response(id, self.shape_result(ctx, method, result)),
            Err(e) => Message::error_response(Some(id), &e),
        }
    }

    async fn route(
        &self,
        ctx: &ClientContext,
        method: &str,
        params: Option<&Value>,
        out: &Outbound,
        cancel: &CancellationToken,
    ) -> Result<Value, RpcError> {
        let served = methods::lookup(method)
            .is_some_and(|m| m.eras.includes(ctx.era()) && m.direction != Direction::ServerToClient && !m.notification);
        if !served {
            return Err(RpcError::method_not_found(method));
        }
        if let Some(p) = params
            && !p.is_object()
        {
            return Err(RpcError::invalid_params("params must be an object"));
        }
        match method {
            "ping" => Ok(json!({})),
            "server/discover" => Ok(self.discover_result()),
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
                let kind = ListKind::from_method(method).unwrap_or(ListKind::Tools);
                self.list(ctx, kind, params).await
            }
            "tools/call" | "prompts/get" => {
                let kind = if method == "tools/call" { ListKind::Tools } else { ListKind::Prompts };
                let params = params.cloned().unwrap_or_else(|| json!({}));
                let name = params
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("params.name must be a string"))?;
                let arguments = params.get("arguments").unwrap_or(&Value::Null);
                if !(arguments.is_null() || arguments.is_object()) {
                    return Err(RpcError::invalid_params("params.arguments must be an object"));
                }
                let target = self.resolve_named(ctx, kind, name).await?;
                if let (Some(sent), Some(def)) = (&ctx.header_params, &target.definition)
                    && kind == ListKind::Tools
                {
                    inventory::check_param_headers(def.value(), arguments, sent)
                        .map_err(|why| RpcError::new(error::HEADER_MISMATCH, format!("Header mismatch: {why}")))?;
                }
                let f = Forwarding { ctx, out, cancel, method, exposed: name };
                self.forward(&f, target, params.clone()).await
            }
            "resources/read" => {
                let params = params.cloned().unwrap_or_else(|| json!({}));
                let uri = params
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("params.uri must be a string"))?;
                let target = self.resolve_uri(ctx, uri).await?;
                let f = Forwarding { ctx, out, cancel, method, exposed: uri };
                self.forward(&f, target, params.clone()).await
            }
            "completion/complete" => self.complete(ctx, params).await,
            "resources/subscribe" | "resources/unsubscribe" => self.legacy_subscription(ctx, method, params).await,
            "logging/setLevel" => self.set_level(ctx, params).await,
            "initialize" => Err(RpcError::invalid_request("the session is already initialized")),
            "subscriptions/listen" => {
                Err(RpcError::invalid_request("subscriptions/listen needs a streaming transport"))
            }
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    async fn complete(&self, ctx: &ClientContext, params: Option<&Value>) -> Result<Value, RpcError> {
        let mut params = params.cloned().ok_or_else(|| RpcError::invalid_params("completion/complete needs params"))?;
        let reference = params.get("ref").cloned().ok_or_else(|| RpcError::invalid_params("params.ref is required"))?;
        let target = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("ref.name must be a string"))?;
                let t = self.resolve_named(ctx, ListKind::Prompts, name).await?;
                params["ref"]["name"] = Value::String(t.upstream_name.clone());
                t
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("ref.uri must be a string"))?;
                self.resolve_template(ctx, uri).await?
            }
            _ => return Err(RpcError::invalid_params("ref.type must be ref/prompt or ref/resource")),
        };
        if !target.conn.hello().has_capability("completions") {
            return Ok(json!({ "completion": { "values": [], "hasMore": false } }));
        }
        let call = Call {
            client_capabilities: Some((*ctx.capabilities).clone()),
            ..Call::new("completion/complete", Some(params))
        };
        let reply = target.conn.call(call).await.map_err(|e| e.to_rpc())?;
        match reply.rpc_error() {
            Some(e) => Err(e),
            None => Ok(reply.result().cloned().unwrap_or_else(|| json!({}))),
        }
    }

    async fn legacy_subscription(
        &self,
        ctx: &ClientContext,
        method: &str,
        params: Option<&Value>,
    ) -> Result<Value, RpcError> {
        let session = ctx.session.as_ref().ok_or_else(|| RpcError::invalid_request("subscriptions need a session"))?;
        let uri = params
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.uri must be a string"))?;
        let target = self.resolve_uri(ctx, uri).await?;
        let who = Subscriber::Session(session.id.clone());
        if method == "resources/subscribe" {
            let held = session.subscriptions();
            if held.len() >= MAX_SUBSCRIPTIONS && !held.iter().any(|u| u == uri) {
                return Err(RpcError::invalid_params(format!(
                    "at most {MAX_SUBSCRIPTIONS} resource subscriptions per session"
                )));
            }
            if !target
                .conn
                .hello()
                .capabilities
                .get("resources")
                .and_then(|r| r.get("subscribe"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                return Err(RpcError::method_not_found(&format!(
                    "resources/subscribe (server '{}' does not offer subscriptions)",
                    target.server.info.name
                )));
            }
            target.lane.subscribe(uri, who).await?;
            session.subscribe(uri);
        } else {
            target.lane.unsubscribe(uri, &who).await?;
            session.unsubscribe(uri);
        }
        Ok(json!({}))
    }

    async fn set_level(&self, ctx: &ClientContext, params: Option<&Value>) -> Result<Value, RpcError> {
        let level = params
            .and_then(|p| p.get("level"))
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.level must be a string"))?;
        if !levels::is_valid(level) {
            return Err(RpcError::invalid_params(format!("unknown log level {}", shown(level))));
        }
        if let Some(s) = &ctx.session {
            s.set_log_level(level);
        }
        for server in &self.servers {
            let Ok(slot) = server.slot(ctx) else { continue };
            for lane in slot.lanes() {
                if lane.era == Era::Legacy {
                    lane.raise_log_level(level).await;
                }
            }
        }
        Ok(json!({}))
    }

    /// Opens a `subscriptions/listen` stream for a modern client under `listener_id` (from
    /// [`crate::hub::Hub::next_listener_id`]): subscribes its resources upstream (one update per
    /// server), registers it, and returns it with the acknowledgement to send first. If this is
    /// abandoned midway, [`Gateway::drop_listener`] undoes it.
    pub async fn open_listener(
        &self,
        ctx: &ClientContext,
        request: &Message,
        tx: mpsc::Sender<Message>,
        listener_id: u64,
    ) -> Result<(Arc<Listener>, Message), RpcError> {
        let id = request.id().ok_or_else(|| RpcError::invalid_request("a request needs an id"))?;
        let notifications = request
            .params()
            .and_then(|p| p.get("notifications"))
            .ok_or_else(|| RpcError::invalid_params("params.notifications is required"))?;
        let mut filter = ListenFilter::from_value(notifications).map_err(RpcError::invalid_params)?;
        let wanted = std::mem::take(&mut filter.resource_uris);
        if wanted.len() > MAX_SUBSCRIPTIONS {
            return Err(RpcError::invalid_params(format!(
                "at most {MAX_SUBSCRIPTIONS} resource subscriptions per stream"
            )));
        }
        let mut by_lane: Vec<(Arc<crate::upstreams::Lane>, Vec<String>)> = Vec::new();
        for uri in wanted {
            match self.resolve_uri(ctx, &uri).await {
                Ok(t) => match by_lane.iter_mut().find(|(l, _)| Arc::ptr_eq(l, &t.lane)) {
                    Some((_, uris)) => uris.push(uri),
                    None => by_lane.push((t.lane, vec![uri])),
                },
                Err(e) => tracing::debug!(uri = %shown(&uri), "not subscribed: {}", e.message),
            }
        }
        let mut honoured = Vec::new();
        for (lane, uris) in by_lane {
            honoured.extend(lane.subscribe_many(&uris, Subscriber::Listener(listener_id)).await);
        }
        filter.resource_uris = honoured;
        let listener = self.hub.listen(listener_id, ctx.principal.clone(), filter.clone(), id.to_value(), tx);
        let ack = json!({
            "notifications": filter.to_value(),
            "_meta": { warden_protocol::meta::SUBSCRIPTION_ID: id.to_value() },
        });
        Ok((listener, Message::notification("notifications/subscriptions/acknowledged", Some(ack))))
    }

    /// Closes a listen stream by id and drops its subscriptions.
    pub async fn drop_listener(&self, id: u64) {
        self.hub.unlisten(id);
        let who = Subscriber::Listener(id);
        for server in &self.servers {
            for slot in server.slots() {
                for lane in slot.lanes() {
                    lane.drop_subscriber(&who).await;
                }
            }
        }
    }

    /// Closes a listen stream and drops its subscriptions.
    pub async fn close_listener(&self, listener: &Listener) {
        self.drop_listener(listener.id).await;
    }

    /// Handles a notification from a client.
    pub async fn client_notification(&self, ctx: &ClientContext, msg: &Message) {
        match msg.method() {
            Some("notifications/cancelled") => {
                let id = msg.params().and_then(|p| p.get("requestId")).and_then(warden_protocol::Id::from_value);
                if let (Some(session), Some(id)) = (&ctx.session, id) {
                    session.cancel(&id.key());
                }
            }
            Some("notifications/initialized") => {
                if let Some(s) = &ctx.session {
                    s.mark_initialized();
                }
            }
            Some("notifications/roots/list_changed") => {
                // Only a connection owned by this client may hear about its roots.
                for server in &self.servers {
                    let Ok(slot) = server.slot(ctx) else { continue };
                    if matches!(slot.audience, crate::hub::Audience::Session(_)) {
                        for lane in slot.lanes() {
                            lane.notify_if_connected("notifications/roots/list_changed", None).await;
                        }
                    }
                }
            }
            other => tracing::debug!(method = ?other, "ignored a client notification"),
        }
    }
}
