//! The stack: every message, in both directions, through every guard, in one order.
//!
//! ```text
//! client request ─▶ classify (the catalogue: a method it does not route is refused)
//!                ─▶ normalize   resource URIs in one spelling, the one forwarded
//!                ─▶ resolve     the one resolver: only what this principal may see
//!                ─▶ validate    arguments against the tool's inputSchema, the prompt's arguments
//!                ─▶ authorize   scopes, headers, Cedar with the arguments (default deny)
//!                ─▶ inspect     credentials in arguments: held for approval, refused or allowed
//!                ─▶ limit       depth, calls in flight, rate limits and budgets
//!                ─▶ approve     a human's approval where one is needed, bound to the bytes sent
//!                ─▶ forward     to the server (or answered by the gateway)
//! reply          ─▶ respond     parsed as its method's result; a server's error translated
//!                ─▶ sanitize    every string of every member: escapes, invisible text, secrets
//!                ─▶ taint       injection screen; untrusted content taints the context
//!                ─▶ quarantine  what instructs the model is withheld
//!                ─▶ seal        an approved call's continuation bound to the approval
//!                ─▶ audit       one row for the request, whatever became of it
//! server message ─▶ classify ─▶ authorize (requests) ─▶ sanitize ─▶ taint ─▶ audit (requests)
//!   (progress, log, list changes, updates, sampling, elicitation, roots; within a call or not)
//! ```
//!
//! Authentication happens at the fronts, which need the transport's headers to do it; what
//! reaches the stack is an authenticated context. Definitions are pinned and scanned where lists
//! are fetched (the integrity guard reviews each list before a server's inventory keeps it).

use crate::catalogue::{ClientNotice, Route, ServerKind, client_notice, route, server_kind};
use crate::client::{ClientContext, Outbound};
use crate::guard::audit::{Auditor, Note};
use crate::guard::authorize::Authorize;
use crate::guard::resolve::{MAX_SUBSCRIPTIONS, Resolve};
use crate::guard::sanitize::{OutputGuard, clean_outgoing_error};
use crate::guard::{Flow, Forwarder, MessageGuard, Reply, Request, RequestGuard, ResponseGuard, ServerMessage};
use crate::hub::{Audience, Hub, ListenFilter, Listener, Subscriber};
use crate::servers::{Lane, Registry, ServerInfo, ServerMessages};
use crate::telemetry;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use warden_protocol::methods::{self, Direction};
use warden_protocol::{Era, Id, Message, RpcError};

/// The guards of a client's request and its reply, in order.
pub struct Stack {
    request: Vec<Arc<dyn RequestGuard>>,
    forward: Arc<dyn Forwarder>,
    response: Vec<Arc<dyn ResponseGuard>>,
    auditor: Arc<Auditor>,
    listen: Option<ListenGuards>,
    list_ttl: Duration,
}

/// What opening a listen stream needs beyond the chains.
pub struct ListenGuards {
    /// Resolves each URI to subscribe.
    pub resolve: Arc<Resolve>,
    /// Decides each subscription.
    pub authorize: Arc<Authorize>,
    /// Where listeners are registered.
    pub hub: Arc<Hub>,
}

/// The guards, one of each, as the stack puts them in order.
pub struct Guards {
    pub normalize: Arc<dyn RequestGuard>,
    pub resolve: Arc<dyn RequestGuard>,
    pub validate_args: Arc<dyn RequestGuard>,
    pub authorize: Arc<dyn RequestGuard>,
    pub inspect_args: Arc<dyn RequestGuard>,
    pub limit: Arc<dyn RequestGuard>,
    pub approve: Arc<dyn RequestGuard>,
    pub forward: Arc<dyn Forwarder>,
    pub respond: Arc<dyn ResponseGuard>,
    pub sanitize: Arc<dyn ResponseGuard>,
    pub taint: Arc<dyn ResponseGuard>,
    pub quarantine: Arc<dyn ResponseGuard>,
    pub seal: Arc<dyn ResponseGuard>,
    pub audit: Arc<Auditor>,
}

impl Stack {
    /// The stack, in the order of the diagram above.
    pub fn assemble(g: Guards, listen: Option<ListenGuards>, list_ttl: Duration) -> Stack {
        Stack {
            request: vec![g.normalize, g.resolve, g.validate_args, g.authorize, g.inspect_args, g.limit, g.approve],
            forward: g.forward,
            response: vec![g.respond, g.sanitize, g.taint, g.quarantine, g.seal],
            auditor: g.audit,
            listen,
            list_ttl,
        }
    }

    /// The same stack with the request guard named `name` replaced by `guard` (for tests of the
    /// stack: a resolver without servers, a guard that fails). Unknown names change nothing.
    pub fn replacing_request_guard(mut self, name: &str, guard: Arc<dyn RequestGuard>) -> Stack {
        for g in self.request.iter_mut().filter(|g| g.name() == name) {
            *g = guard.clone();
        }
        self
    }

    /// The same stack with the response guard named `name` replaced by `guard`.
    pub fn replacing_response_guard(mut self, name: &str, guard: Arc<dyn ResponseGuard>) -> Stack {
        for g in self.response.iter_mut().filter(|g| g.name() == name) {
            *g = guard.clone();
        }
        self
    }

    /// The same stack forwarding with `forward` (for tests of the stack without servers).
    pub fn replacing_forward(mut self, forward: Arc<dyn Forwarder>) -> Stack {
        self.forward = forward;
        self
    }

    /// The names of the guards in order, request then response (for tests and diagnostics).
    pub fn order(&self) -> Vec<&'static str> {
        self.request.iter().map(|g| g.name()).chain(["forward"]).chain(self.response.iter().map(|g| g.name())).collect()
    }

    /// Serves one request of a client and returns the response to send.
    pub async fn serve(
        &self,
        ctx: &ClientContext,
        request: Message,
        out: &Outbound,
        cancel: &CancellationToken,
    ) -> Message {
        if telemetry::enabled() {
            let method = request.method().unwrap_or_default();
            let id = request.id().map(|i| i.raw()).unwrap_or_default();
            let span = telemetry::request_span(method, id, request.params());
            return self.serve_audited(ctx, request, out, cancel).instrument(span).await;
        }
        self.serve_audited(ctx, request, out, cancel).await
    }

    async fn serve_audited(
        &self,
        ctx: &ClientContext,
        mut request: Message,
        out: &Outbound,
        cancel: &CancellationToken,
    ) -> Message {
        let Some(id) = request.id().cloned() else {
            return Message::error_response(None, &RpcError::invalid_request("a request needs an id"));
        };
        let params = request.take_params();
        let method = request.method().unwrap_or_default();
        // If the client goes away mid-call this future is dropped; the pending row is still written.
        let mut pending = self.auditor.pending(ctx, id.raw(), method);
        let answer = self.pass(ctx, method, params, out, cancel, pending.note()).await;
        let (note, elapsed) = pending.finish();
        let recorded = self.auditor.request(ctx, Some(id.raw()), method, note, &answer, elapsed).await;
        match (recorded, answer) {
            (Err(mut e), _) | (Ok(()), Err(mut e)) => {
                clean_outgoing_error(&mut e);
                Message::error_response(Some(id), &e)
            }
            (Ok(()), Ok(result)) => Message::response(id, self.shape(ctx, method, result)),
        }
    }

    async fn pass(
        &self,
        ctx: &ClientContext,
        method: &str,
        params: Option<Value>,
        out: &Outbound,
        cancel: &CancellationToken,
        note: &mut Note,
    ) -> Result<Value, RpcError> {
        let route = classify(ctx, method)?;
        if let Some(p) = &params
            && !p.is_object()
        {
            return Err(RpcError::invalid_params("params must be an object"));
        }
        let mut request = Request::new(ctx, out, cancel, method, route, params, note);
        let mut reply = None;
        for guard in &self.request {
            if let Flow::Answer(answer) = guard.check(&mut request).await? {
                reply = Some(Reply::Result(answer));
                break;
            }
        }
        let mut reply = match reply {
            Some(answer) => answer,
            None => {
                request.note.forwarded = true;
                // A call that failed after its server spoke (a timeout, a cut connection) may
                // have shown the client what it said meanwhile: its error passes the response
                // guards like any reply, and taints as the server's content would.
                self.forward.forward(&mut request).await.unwrap_or_else(Reply::Error)
            }
        };
        for guard in &self.response {
            // A guard's refusal becomes the reply the guards after it see.
            if let Err(e) = guard.check(&mut request, &mut reply).await {
                reply = Reply::Error(e);
            }
        }
        match reply {
            Reply::Result(result) => Ok(result),
            Reply::Error(e) => Err(e),
            Reply::ServerError(_) => {
                tracing::error!(method, "a server's error reached the end of the stack untranslated: refused");
                Err(RpcError::internal("the server's answer could not be checked: refused"))
            }
        }
    }

    /// Shapes a result for the client's era: modern clients get `resultType`, cache hints on
    /// cacheable results, and the gateway's identity in `_meta`.
    fn shape(&self, ctx: &ClientContext, method: &str, result: Value) -> Value {
        if ctx.era() != Era::Modern {
            return result;
        }
        // A resource's content is as fresh as the server makes it; lists are the gateway's own.
        let ttl = if method == "resources/read" { 0 } else { self.list_ttl.as_millis() as u64 };
        let identity = crate::guard::forward::Announce::server_info();
        warden_protocol::results::complete_modern(method, result, ttl, &identity)
    }

    /// Opens a `subscriptions/listen` stream for a modern client under `listener_id` (from
    /// [`Hub::next_listener_id`]): each resource it names is normalized, resolved among what
    /// the principal may see and decided as a read, then subscribed upstream (one update per
    /// server); the stream is registered and returned with the acknowledgement to send first.
    /// The request is one audit row. If this is abandoned midway, the gateway's `drop_listener`
    /// undoes it.
    pub async fn listen(
        &self,
        ctx: &ClientContext,
        request: &Message,
        tx: mpsc::Sender<Message>,
        listener_id: u64,
    ) -> Result<(Arc<Listener>, Message), RpcError> {
        let id = request.id().ok_or_else(|| RpcError::invalid_request("a request needs an id"))?;
        let mut pending = self.auditor.pending(ctx, id.raw(), "subscriptions/listen");
        let opened = self.open_listener(ctx, request, tx, listener_id, pending.note()).await;
        let (note, elapsed) = pending.finish();
        let answer = opened.as_ref().map(|_| json!({})).map_err(Clone::clone);
        self.auditor.request(ctx, Some(id.raw()), "subscriptions/listen", note, &answer, elapsed).await?;
        opened.map_err(|mut e| {
            clean_outgoing_error(&mut e);
            e
        })
    }

    async fn open_listener(
        &self,
        ctx: &ClientContext,
        request: &Message,
        tx: mpsc::Sender<Message>,
        listener_id: u64,
        note: &mut Note,
    ) -> Result<(Arc<Listener>, Message), RpcError> {
        let guards = self.listen.as_ref().ok_or_else(|| RpcError::method_not_found("subscriptions/listen"))?;
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
        let mut by_lane: Vec<(Arc<Lane>, Vec<String>)> = Vec::new();
        for uri in wanted {
            let subscribed = async {
                let uri = crate::uri::normalize_uri(&uri).map_err(RpcError::invalid_params)?;
                let target = guards.resolve.readable(ctx, &uri).await?;
                guards.authorize.may_subscribe(ctx, &target).await?;
                let lane = target.via.map(|v| v.lane).ok_or_else(|| RpcError::internal("no connection"))?;
                Ok::<_, RpcError>((lane, uri))
            };
            match subscribed.await {
                Ok((lane, uri)) => match by_lane.iter_mut().find(|(l, _)| Arc::ptr_eq(l, &lane)) {
                    Some((_, uris)) => uris.push(uri),
                    None => by_lane.push((lane, vec![uri])),
                },
                Err(e) => tracing::debug!(uri = %crate::names::shown(&uri), "not subscribed: {}", e.message),
            }
        }
        let mut honoured = Vec::new();
        for (lane, uris) in by_lane {
            honoured.extend(lane.subscribe_many(&uris, Subscriber::Listener(listener_id)).await);
        }
        note.forwarded = true;
        note.item = Some(format!("{} resource subscriptions", honoured.len()));
        filter.resource_uris = honoured;
        let listener = guards.hub.listen(listener_id, ctx.principal.clone(), filter.clone(), id.to_value(), tx);
        let ack = json!({
            "notifications": filter.to_value(),
            "_meta": { warden_protocol::meta::SUBSCRIPTION_ID: id.to_value() },
        });
        Ok((listener, Message::notification("notifications/subscriptions/acknowledged", Some(ack))))
    }
}

/// The route of a client's request in its era; what the catalogue does not route, or does not
/// serve in this era or from a client, is refused.
fn classify(ctx: &ClientContext, method: &str) -> Result<Route, RpcError> {
    let served = methods::lookup(method)
        .is_some_and(|m| m.eras.includes(ctx.era()) && m.direction != Direction::ServerToClient && !m.notification);
    route(method).filter(|_| served).ok_or_else(|| RpcError::method_not_found(method))
}

/// The guards of a server's messages toward clients (beside its answers), in order: the one
/// chain every notification and every request passes, within a call or outside any.
pub struct MessageChain {
    guards: Vec<Arc<dyn MessageGuard>>,
    auditor: Arc<Auditor>,
    output: Arc<OutputGuard>,
}

impl MessageChain {
    /// The chain, in the order of the diagram above: authorize (requests), sanitize, taint, then
    /// the audit row of every request.
    pub fn assemble(
        authorize: Arc<dyn MessageGuard>,
        sanitize: Arc<dyn MessageGuard>,
        taint: Arc<dyn MessageGuard>,
        auditor: Arc<Auditor>,
        output: Arc<OutputGuard>,
    ) -> MessageChain {
        MessageChain { guards: vec![authorize, sanitize, taint], auditor, output }
    }

    fn run(&self, message: &mut ServerMessage<'_>, request: bool) -> Result<(), RpcError> {
        message.kind = server_kind(message.method).filter(|k| k.is_request() == request);
        if message.kind.is_none() {
            return Err(RpcError::method_not_found(message.method));
        }
        if message.params.as_ref().is_some_and(|p| !p.is_object()) {
            return Err(RpcError::invalid_params(format!("{}: params must be an object", message.method)));
        }
        for guard in &self.guards {
            guard.check(message)?;
        }
        Ok(())
    }
}

impl warden_upstream::egress::EgressObserver for MessageChain {
    fn connection(&self, event: &warden_upstream::egress::EgressEvent<'_>) {
        self.auditor.egress(event);
    }
}

impl ServerMessages for MessageChain {
    fn notification(
        &self,
        server: &ServerInfo,
        to: Option<&ClientContext>,
        within: Option<&str>,
        message: &mut Message,
    ) -> bool {
        let method = message.method().unwrap_or_default().to_owned();
        let mut params = message.take_params();
        let mut m =
            ServerMessage { server, to, within, method: &method, kind: None, params: &mut params, findings: vec![] };
        let outcome = self.run(&mut m, false);
        let kind = m.kind;
        // Rebuilt from what the guards passed: members beside `params` are not the server's to add.
        *message = Message::notification(method.clone(), params);
        match outcome {
            Ok(()) => kind != Some(ServerKind::Dropped),
            Err(e) => {
                tracing::debug!(server = %server.name, method = %crate::names::shown(&method), "dropped a notification: {}", e.message);
                false
            }
        }
    }

    fn request(
        &self,
        server: &ServerInfo,
        to: Option<&ClientContext>,
        within: Option<&str>,
        method: &str,
        params: &mut Option<Value>,
    ) -> Result<Option<Value>, RpcError> {
        let mut m = ServerMessage { server, to, within, method, kind: None, params, findings: vec![] };
        let outcome = self.run(&mut m, true).map(|()| match (m.kind, to) {
            (Some(ServerKind::Ping), _) => Some(json!({})),
            (Some(ServerKind::Roots), None) => {
                let roots: Vec<Value> = server.roots.iter().map(|u| json!({ "uri": u })).collect();
                Some(json!({ "roots": roots }))
            }
            _ => None,
        });
        if let Err(e) = &outcome {
            tracing::info!(server = %server.name, method = %crate::names::shown(method), "refused a server's request: {}", e.message);
        }
        let answered = outcome.as_ref().is_ok_and(Option::is_some);
        self.auditor.server_request(to, within, &server.name, method, &m.findings, answered, outcome.as_ref().err());
        outcome
    }

    fn answer(&self, server: &ServerInfo, method: &str, answer: &mut Result<Value, RpcError>) {
        let Ok(value) = answer else { return };
        let cleaning = self.output.clean(value);
        if cleaning.redactions > 0 {
            tracing::warn!(server = %server.name, %method, redactions = cleaning.redactions,
                "redacted credentials from a client's answer to a server");
        }
    }
}

/// What a client's notification does: cancellation, session readiness, roots changes (passed
/// only to connections the client owns). Anything else is ignored.
pub async fn client_notification(registry: &Registry, ctx: &ClientContext, msg: &Message) {
    match msg.method().and_then(client_notice) {
        Some(ClientNotice::Cancelled) => {
            let id = msg.params().and_then(|p| p.get("requestId")).and_then(Id::from_value);
            if let (Some(session), Some(id)) = (&ctx.session, id) {
                session.cancel(&id.key());
            }
        }
        Some(ClientNotice::Initialized) => {
            if let Some(s) = &ctx.session {
                s.mark_initialized();
            }
        }
        Some(ClientNotice::RootsChanged) => {
            for server in registry.all() {
                let Ok(slot) = server.slot(ctx) else { continue };
                if matches!(slot.audience, Audience::Session(_)) {
                    for lane in slot.lanes() {
                        lane.notify_if_connected("notifications/roots/list_changed", None).await;
                    }
                }
            }
        }
        Some(ClientNotice::Progress) | None => {
            tracing::debug!(method = ?msg.method(), "ignored a client notification");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    struct Pass;

    impl MessageGuard for Pass {
        fn name(&self) -> &'static str {
            "pass"
        }
        fn check(&self, _: &mut ServerMessage<'_>) -> Result<(), RpcError> {
            Ok(())
        }
    }

    fn chain() -> MessageChain {
        let auditor = Arc::new(Auditor::new(Arc::new(Metrics::new()), None, false));
        let guard: Arc<dyn MessageGuard> = Arc::new(Pass);
        MessageChain::assemble(guard.clone(), guard.clone(), guard, auditor, Arc::new(OutputGuard::default()))
    }

    #[test]
    fn a_notification_is_delivered_as_the_guards_left_it_and_nothing_beside() {
        let server = ServerInfo::unstarted("s");
        let frame = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1},"x":"smuggled"}"#;
        let mut message = Message::parse(frame, &Default::default()).unwrap();
        assert!(chain().notification(&server, None, None, &mut message));
        assert!(!message.to_json().contains("smuggled"), "{}", message.to_json());
        let mut odd = Message::notification("notifications/message", Some(json!(["not", "an", "object"])));
        assert!(!chain().notification(&server, None, None, &mut odd), "params that are not an object are dropped");
        let mut unknown = Message::notification("notifications/tools/call", None);
        assert!(!chain().notification(&server, None, None, &mut unknown));
    }

    #[test]
    fn a_ping_is_answered_by_the_gateway_and_an_unknown_request_refused() {
        let server = ServerInfo::unstarted("s");
        let chain = chain();
        assert_eq!(chain.request(&server, None, None, "ping", &mut None).unwrap(), Some(json!({})));
        assert!(chain.request(&server, None, None, "tools/call", &mut None).is_err());
        let mut answer =
            Ok(json!({ "content": { "type": "text", "text": "key ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } }));
        chain.answer(&server, "sampling/createMessage", &mut answer);
        assert!(!answer.unwrap().to_string().contains("ghp_"), "a client's answer loses the credentials it carries");
    }
}
