//! The request path: what happens to each request a client sends, in one place.
//!
//! ```text
//! request (principal already authenticated by the front)
//!   ─▶ method known in the client's era?
//!   ─▶ resolve (one resolver: only what servers listed)
//!   ─▶ visible to this principal? (else: unknown, exactly as if it did not exist)
//!   ─▶ token scopes the tool needs
//!   ─▶ call depth / calls in flight of the context
//!   ─▶ authorize with the arguments (Cedar); write and irreversible tools from a tainted
//!      context, or in emergency mode, need approval whatever the policies allow
//!   ─▶ rate limits and daily budgets
//!   ─▶ approve (in the client, or by an operator; see [`crate::approve`])
//!   ─▶ forward ─▶ response guards ─▶ taint the context if the content is untrusted
//!   ─▶ shape for era
//! ```
//!
//! The fronts (HTTP, stdio) own framing, sessions, headers and authentication. Lists are
//! filtered by the same visibility decision ([`crate::lists`]), and what servers ask of clients
//! is authorized in [`crate::forward`].

use crate::audit::Note;
use crate::authorize::{CallState, refusal};
use crate::client::{ClientContext, Outbound};
use crate::forward::{Forwarding, OriginalCall};
use crate::gateway::Gateway;
use crate::hub::{ListenFilter, Listener, Subscriber};
use crate::inventory::{self, Definition, ListKind};
use crate::levels;
use crate::quarantine;
use crate::routing::{self, Target, shown};
use crate::telemetry;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use warden_inspect::poison::Severity;
use warden_policy::{Item, Verdict};
use warden_protocol::methods::{self, Direction};
use warden_protocol::{Era, Message, RpcError, error};
use warden_upstream::Call;

/// A result on its way to the injection screen: whose, and of what.
struct Screened<'a> {
    ctx: &'a ClientContext,
    method: &'a str,
    server: &'a str,
    exposed: &'a str,
}

/// A released result as the contents of the resource naming it: the withheld result, as JSON.
fn released_as_resource(uri: &str, content: &Value) -> Value {
    json!({ "contents": [{ "uri": uri, "mimeType": "application/json", "text": content.to_string() }] })
}

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
        if telemetry::enabled() {
            let method = request.method().unwrap_or_default();
            let id = request.id().map(|i| i.raw()).unwrap_or_default();
            let span = telemetry::request_span(method, id, request.params());
            return self.serve_request(ctx, request, out, cancel).instrument(span).await;
        }
        self.serve_request(ctx, request, out, cancel).await
    }

    async fn serve_request(
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
        // If the client goes away mid-call this future is dropped; the guard still writes the row.
        let mut pending = self.auditor.pending(ctx, id.raw(), method);
        let answer = self.route(ctx, method, request.params(), out, cancel, pending.note()).await;
        let (note, elapsed) = pending.finish();
        let recorded = self.auditor.request(ctx, Some(id.raw()), method, note, &answer, elapsed).await;
        match (recorded, answer) {
            (Err(e), _) | (Ok(()), Err(e)) => Message::error_response(Some(id), &e),
            (Ok(()), Ok(result)) => Message::response(id, self.shape_result(ctx, method, result)),
        }
    }

    async fn route(
        &self,
        ctx: &ClientContext,
        method: &str,
        params: Option<&Value>,
        out: &Outbound,
        cancel: &CancellationToken,
        note: &mut Note,
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
            "server/discover" => Ok(self.discover_result().await),
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
                let kind = ListKind::from_method(method).unwrap_or(ListKind::Tools);
                self.list(ctx, kind, params).await
            }
            "tools/call" => self.call_tool(ctx, params, out, cancel, note).await,
            "prompts/get" => self.get_prompt(ctx, params, out, cancel, note).await,
            "resources/read" => self.read_resource(ctx, params, out, cancel, note).await,
            "completion/complete" => self.complete(ctx, params, note).await,
            "resources/subscribe" | "resources/unsubscribe" => {
                self.legacy_subscription(ctx, method, params, note).await
            }
            "logging/setLevel" => self.set_level(ctx, params).await,
            "initialize" => Err(RpcError::invalid_request("the session is already initialized")),
            "subscriptions/listen" => {
                Err(RpcError::invalid_request("subscriptions/listen needs a streaming transport"))
            }
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    async fn call_tool(
        &self,
        ctx: &ClientContext,
        params: Option<&Value>,
        out: &Outbound,
        cancel: &CancellationToken,
        note: &mut Note,
    ) -> Result<Value, RpcError> {
        let params = params.cloned().unwrap_or_else(|| json!({}));
        let (name, arguments) = named_call(&params)?;
        note.arguments = arguments.cloned();
        note.unknown_server = !self.names_a_server(name);
        let target = self.resolve_named(ctx, ListKind::Tools, name).await?;
        let server = target.server.info.name.clone();
        let definition = target.definition.as_ref().map(Definition::value).unwrap_or(&Value::Null);
        let (tool, settings) = self.authorizer.tool(&server, definition);
        if !self.authorizer.visible(&ctx.principal, ctx.era(), &server, Item::Tool(&tool)) {
            return Err(routing::unknown(ListKind::Tools, name));
        }
        note.server = Some(server.clone());
        note.item = Some(tool.name.clone());
        note.class = Some(tool.class);
        self.check_scopes(ctx, settings.scopes.as_deref())?;
        if let Some(sent) = &ctx.header_params {
            inventory::check_param_headers(definition, arguments.unwrap_or(&Value::Null), sent)
                .map_err(|why| RpcError::new(error::HEADER_MISMATCH, format!("Header mismatch: {why}")))?;
        }
        let slot = self.limits.enter(ctx, self.parked.count_for(&ctx.principal))?;
        let args = arguments.and_then(Value::as_object);
        let state = self.call_state(ctx, slot.depth);
        let mut decision = self.authorizer.decide_call(ctx, &server, Item::Tool(&tool), args, &settings, state).await;
        let emergency = self.containment.emergency();
        let approval_reasons = crate::approve::reasons(&mut decision, tool.class, state.tainted, emergency);
        if decision.verdict == Verdict::Deny {
            let e = refusal(&format!("tools/call {}", shown(name)), &decision);
            note.decision = Some(decision);
            return Err(e);
        }
        let resumes = self.resumes_parked(ctx, &params, "tools/call", name);
        let mut sent = params.clone();
        let continuing = crate::approve::Continuing { ctx, server: &server, tool: &tool.name, arguments };
        let continued = self.approvals.continuation(&continuing, &mut sent);
        let needs_approval =
            decision.verdict == Verdict::RequireApproval && !resumes && !matches!(continued, Ok(Some(_)));
        note.decision = Some(decision);
        note.approval_id = continued?;
        if !resumes {
            self.limits.take(ctx, &server, Some(&tool.name))?;
        }
        if needs_approval {
            let asking = crate::approve::Asking {
                ctx,
                out,
                slot: &slot,
                server: &server,
                tool: &tool,
                settings: &settings,
                exposed: name,
                arguments,
                request_id: &note.request_id,
                params: &params,
                reasons: approval_reasons,
                emergency,
            };
            match self.approvals.obtain(&asking).await? {
                crate::approve::Obtained::Ask(question) => return Ok(question),
                crate::approve::Obtained::Approved(id) => {
                    note.approval_id = Some(id);
                    if let Some(p) = sent.as_object_mut() {
                        p.remove("requestState");
                        p.remove("inputResponses");
                    }
                }
            }
        }
        note.forwarded = true;
        let definition = target.definition.clone();
        let request_id = note.request_id.clone();
        let f = Forwarding {
            ctx,
            out,
            cancel,
            method: "tools/call",
            exposed: name,
            slot: Some(&slot),
            request_id: &request_id,
        };
        let trusted = settings.trusted_content.unwrap_or(target.server.info.trusted_content);
        let mut result = self.forward(&f, target, sent).await.map_err(|e| self.explain_containment(&server, e))?;
        let screened = Screened { ctx, method: "tools/call", server: &server, exposed: name };
        if is_input_required(&result) {
            // Not the tool's answer yet, but still shown to the client: cleaned all the same.
            // It carries what the client must send back, so it is never withheld.
            note.cleaned(self.output.clean_result(&mut result));
            self.screen_result(&screened, None, &mut result, note).await?;
            if let Some(id) = &note.approval_id {
                self.approvals.seal_continuation(&continuing, id, &mut result)?;
            }
        } else {
            let listed = definition.as_ref().map(Definition::value).unwrap_or(&Value::Null);
            note.cleaned(self.output.tool_result(name, listed, &settings, &mut result)?);
            self.screen_result(&screened, self.quarantine.threshold(Some(&settings)), &mut result, note).await?;
            if !trusted {
                self.taint_by(ctx, crate::taint::Source::UntrustedResult, &server, name);
            }
        }
        Ok(result)
    }

    async fn get_prompt(
        &self,
        ctx: &ClientContext,
        params: Option<&Value>,
        out: &Outbound,
        cancel: &CancellationToken,
        note: &mut Note,
    ) -> Result<Value, RpcError> {
        let params = params.cloned().unwrap_or_else(|| json!({}));
        let (name, arguments) = named_call(&params)?;
        note.arguments = arguments.cloned();
        note.unknown_server = !self.names_a_server(name);
        let target = self.resolve_named(ctx, ListKind::Prompts, name).await?;
        let server = target.server.info.name.clone();
        let item = Item::Prompt(&target.upstream_name);
        if !self.authorizer.visible(&ctx.principal, ctx.era(), &server, item) {
            return Err(routing::unknown(ListKind::Prompts, name));
        }
        note.server = Some(server.clone());
        note.item = Some(target.upstream_name.clone());
        let slot = self.limits.enter(ctx, self.parked.count_for(&ctx.principal))?;
        let args = arguments.and_then(Value::as_object);
        let no_settings = Default::default();
        let decision =
            self.authorizer.decide_call(ctx, &server, item, args, &no_settings, self.call_state(ctx, slot.depth)).await;
        let refused =
            (decision.verdict != Verdict::Allow).then(|| refusal(&format!("prompts/get {}", shown(name)), &decision));
        note.decision = Some(decision);
        if let Some(e) = refused {
            return Err(e);
        }
        if !self.resumes_parked(ctx, &params, "prompts/get", name) {
            self.limits.take(ctx, &server, None)?;
        }
        note.forwarded = true;
        let request_id = note.request_id.clone();
        let f = Forwarding {
            ctx,
            out,
            cancel,
            method: "prompts/get",
            exposed: name,
            slot: Some(&slot),
            request_id: &request_id,
        };
        let trusted = target.server.info.trusted_content;
        let mut result =
            self.forward(&f, target, params.clone()).await.map_err(|e| self.explain_containment(&server, e))?;
        note.cleaned(self.output.clean_result(&mut result));
        let screened = Screened { ctx, method: "prompts/get", server: &server, exposed: name };
        self.screen_result(&screened, self.quarantine.threshold(None), &mut result, note).await?;
        if !trusted && !is_input_required(&result) {
            self.taint_by(ctx, crate::taint::Source::UntrustedResult, &server, name);
        }
        Ok(result)
    }

    async fn read_resource(
        &self,
        ctx: &ClientContext,
        params: Option<&Value>,
        out: &Outbound,
        cancel: &CancellationToken,
        note: &mut Note,
    ) -> Result<Value, RpcError> {
        let params = params.cloned().unwrap_or_else(|| json!({}));
        let uri = params
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.uri must be a string"))?;
        if uri.starts_with(quarantine::URI_PREFIX) {
            return self.read_released(ctx, uri, note).await;
        }
        let target = self.readable(ctx, uri).await?;
        let server = target.server.info.name.clone();
        note.server = Some(server.clone());
        note.item = Some(uri.to_owned());
        let slot = self.limits.enter(ctx, self.parked.count_for(&ctx.principal))?;
        let item = Item::Resource { uri, template: false };
        let no_settings = Default::default();
        let decision =
            self.authorizer.decide_call(ctx, &server, item, None, &no_settings, self.call_state(ctx, slot.depth)).await;
        let refused =
            (decision.verdict != Verdict::Allow).then(|| refusal(&format!("resources/read {}", shown(uri)), &decision));
        note.decision = Some(decision);
        if let Some(e) = refused {
            return Err(e);
        }
        if !self.resumes_parked(ctx, &params, "resources/read", uri) {
            self.limits.take(ctx, &server, None)?;
        }
        note.forwarded = true;
        let request_id = note.request_id.clone();
        let f = Forwarding {
            ctx,
            out,
            cancel,
            method: "resources/read",
            exposed: uri,
            slot: Some(&slot),
            request_id: &request_id,
        };
        let trusted = target.server.info.trusted_resources;
        let mut result =
            self.forward(&f, target, params.clone()).await.map_err(|e| self.explain_containment(&server, e))?;
        note.cleaned(self.output.clean_result(&mut result));
        let screened = Screened { ctx, method: "resources/read", server: &server, exposed: uri };
        self.screen_result(&screened, self.quarantine.threshold(None), &mut result, note).await?;
        if !trusted && !is_input_required(&result) {
            self.taint_by(ctx, crate::taint::Source::Resource, &server, uri);
        }
        Ok(result)
    }

    /// Resolves a resource URI the principal may see; one it may not is "not found".
    async fn readable(&self, ctx: &ClientContext, uri: &str) -> Result<Target, RpcError> {
        let target = self.resolve_uri(ctx, uri).await?;
        let server = &target.server.info.name;
        let visible = |item| self.authorizer.visible(&ctx.principal, ctx.era(), server, item);
        // A URI that expands a template is readable only if every template it expands is: a
        // hidden template is not reachable by naming one of its URIs.
        let templates_visible = target.templates.iter().all(|t| visible(Item::Resource { uri: t, template: true }));
        if !templates_visible || !visible(Item::Resource { uri, template: false }) {
            return Err(self.resource_not_found(ctx, uri));
        }
        Ok(target)
    }

    /// Resolves a resource URI the principal may read now (as `resources/read` would decide):
    /// what a subscription needs, since each update invites a read.
    async fn subscribable(&self, ctx: &ClientContext, uri: &str) -> Result<Target, RpcError> {
        let target = self.readable(ctx, uri).await?;
        let item = Item::Resource { uri, template: false };
        let no_settings = Default::default();
        let decision = self
            .authorizer
            .decide_call(ctx, &target.server.info.name, item, None, &no_settings, self.call_state(ctx, 1))
            .await;
        if decision.verdict != Verdict::Allow {
            return Err(refusal(&format!("resources/subscribe {}", shown(uri)), &decision));
        }
        Ok(target)
    }

    /// The state of a call's context the policies see.
    fn call_state(&self, ctx: &ClientContext, depth: u32) -> CallState {
        CallState { depth, tainted: self.taint.is_tainted(ctx) }
    }

    /// Taints the context when a result carries instructions aimed at the model (the human
    /// confirmation of high-impact calls acts on it); at or above `threshold`, also withholds
    /// the result, which becomes the quarantine notice.
    async fn screen_result(
        &self,
        screened: &Screened<'_>,
        threshold: Option<Severity>,
        result: &mut Value,
        note: &mut Note,
    ) -> Result<(), RpcError> {
        let found = self.output.injections(result);
        let rules = || found.findings.iter().map(|f| f.rule).collect::<Vec<&'static str>>();
        let places = found.findings.iter().map(|f| json!({ "rule": f.rule, "at": f.pointer }));
        note.findings.extend(places.take(crate::sanitize::MAX_FINDINGS));
        if found.at_least(Severity::Medium) {
            note.injections = rules();
            tracing::warn!(what = %shown(screened.exposed), rules = ?note.injections,
                "a result tried to instruct the model: its context is tainted");
            self.taint_by(screened.ctx, crate::taint::Source::Injection, screened.server, screened.exposed);
        }
        if found.incomplete {
            // What was not read may instruct the model: the context is tainted as if it did.
            note.findings.push(json!({ "rule": "scan.incomplete" }));
            self.taint_by(screened.ctx, crate::taint::Source::Unscanned, screened.server, screened.exposed);
        }
        if let Some(at) = threshold
            && found.at_least(at)
        {
            let request_id = note.request_id.clone();
            let who = quarantine::Subject {
                ctx: screened.ctx,
                request_id: &request_id,
                method: screened.method,
                server: screened.server,
                exposed: screened.exposed,
            };
            let (id, notice) = self.quarantine.withhold(&who, &found, result).await?;
            note.injections = rules();
            note.quarantined = Some(id);
            *result = notice;
        }
        Ok(())
    }

    /// Serves a quarantined result a person released, to the caller it was withheld from; to
    /// anyone else, and for anything not released, the resource does not exist. Reading it
    /// taints the context.
    async fn read_released(&self, ctx: &ClientContext, uri: &str, note: &mut Note) -> Result<Value, RpcError> {
        note.item = Some(uri.to_owned());
        self.limits.take(ctx, "", None)?;
        let Some(content) = self.quarantine.released(ctx, uri).await? else {
            return Err(self.resource_not_found(ctx, uri));
        };
        note.forwarded = true;
        self.taint_by(ctx, crate::taint::Source::Released, "", uri);
        Ok(released_as_resource(uri, &content))
    }

    /// A call's error as the client gets it: a call cut off because its server was contained
    /// says so.
    fn explain_containment(&self, server: &str, e: RpcError) -> RpcError {
        match self.servers.iter().find(|s| s.info.name == server) {
            Some(s) if s.is_contained() => crate::upstreams::contained_error(server),
            _ => e,
        }
    }

    /// Whether a request resumes a call Warden parked for this caller (already counted against
    /// the limits). Any other `requestState` is a new request, and counts.
    fn resumes_parked(&self, ctx: &ClientContext, params: &Value, method: &str, name: &str) -> bool {
        params
            .get("requestState")
            .and_then(Value::as_str)
            .is_some_and(|state| self.parked.holds(state, &ctx.principal, method, name))
    }

    /// Refuses a request whose token lacks a scope the tool needs (a 403 over HTTP, so that the
    /// client can ask its user for more).
    fn check_scopes(&self, ctx: &ClientContext, needed: Option<&[String]>) -> Result<(), RpcError> {
        let missing: Vec<&String> =
            needed.unwrap_or_default().iter().filter(|s| !ctx.principal.scopes.contains(s)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let scope = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        Err(RpcError::new(error::INSUFFICIENT_SCOPE, format!("Forbidden: this tool needs the scope(s) {scope}"))
            .with_data(json!({ "scope": scope })))
    }

    async fn complete(&self, ctx: &ClientContext, params: Option<&Value>, note: &mut Note) -> Result<Value, RpcError> {
        let mut params = params.cloned().ok_or_else(|| RpcError::invalid_params("completion/complete needs params"))?;
        let reference = params.get("ref").cloned().ok_or_else(|| RpcError::invalid_params("params.ref is required"))?;
        let target = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("ref.name must be a string"))?;
                let t = self.resolve_named(ctx, ListKind::Prompts, name).await?;
                let item = Item::Prompt(&t.upstream_name);
                if !self.authorizer.visible(&ctx.principal, ctx.era(), &t.server.info.name, item) {
                    return Err(routing::unknown(ListKind::Prompts, name));
                }
                params["ref"]["name"] = Value::String(t.upstream_name.clone());
                t
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("ref.uri must be a string"))?;
                let t = self.resolve_template(ctx, uri).await?;
                let item = Item::Resource { uri, template: true };
                if !self.authorizer.visible(&ctx.principal, ctx.era(), &t.server.info.name, item) {
                    return Err(RpcError::invalid_params(format!("Unknown resource template: {}", shown(uri))));
                }
                t
            }
            _ => return Err(RpcError::invalid_params("ref.type must be ref/prompt or ref/resource")),
        };
        if !target.conn.hello().has_capability("completions") {
            return Ok(json!({ "completion": { "values": [], "hasMore": false } }));
        }
        self.limits.take(ctx, &target.server.info.name, None)?;
        note.server = Some(target.server.info.name.clone());
        note.forwarded = true;
        let call = Call {
            client_capabilities: Some((*ctx.capabilities).clone()),
            ..Call::new("completion/complete", Some(params))
        };
        let reply = target.conn.call(call).await.map_err(|e| e.to_rpc())?;
        match reply.rpc_error() {
            Some(mut e) => {
                let server = &target.server.info.name;
                let call =
                    OriginalCall { server, method: "completion/complete", item: None, request_id: &note.request_id };
                self.keep_original_error(ctx, &call, &e);
                self.output.scrub_error(&mut e);
                Err(e)
            }
            None => {
                let mut result = reply.result().cloned().unwrap_or_else(|| json!({}));
                crate::forward::check_shape(&target.server.info.name, "completion/complete", &result)?;
                note.cleaned(self.output.clean_result(&mut result));
                Ok(result)
            }
        }
    }

    async fn legacy_subscription(
        &self,
        ctx: &ClientContext,
        method: &str,
        params: Option<&Value>,
        note: &mut Note,
    ) -> Result<Value, RpcError> {
        let session = ctx.session.as_ref().ok_or_else(|| RpcError::invalid_request("subscriptions need a session"))?;
        let uri = params
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.uri must be a string"))?;
        let target = match method {
            "resources/subscribe" => self.subscribable(ctx, uri).await?,
            _ => self.readable(ctx, uri).await?,
        };
        let who = Subscriber::Session(session.id.clone());
        note.server = Some(target.server.info.name.clone());
        note.item = Some(uri.to_owned());
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
            note.forwarded = true;
            target.lane.subscribe(uri, who).await?;
            session.subscribe(uri);
        } else {
            note.forwarded = true;
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
            match self.subscribable(ctx, &uri).await {
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

/// The `name` and `arguments` of a `tools/call` or `prompts/get`.
/// Whether a result asks the client for input first (2026-07-28): not yet the tool's answer.
fn is_input_required(result: &Value) -> bool {
    result.get("resultType").and_then(Value::as_str) == Some("input_required")
}

fn named_call(params: &Value) -> Result<(&str, Option<&Value>), RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("params.name must be a string"))?;
    let arguments = params.get("arguments").filter(|a| !a.is_null());
    if arguments.is_some_and(|a| !a.is_object()) {
        return Err(RpcError::invalid_params("params.arguments must be an object"));
    }
    Ok((name, arguments))
}
