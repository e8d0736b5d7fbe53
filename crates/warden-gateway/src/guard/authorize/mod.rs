//! The authorizing guard: every request a client makes, and every request a server makes of a
//! client, decided by the Cedar policies in force (default deny).
//!
//! - Tool calls: the token's scopes for the tool, the `Mcp-Param-*` headers against the body,
//!   then the call with its arguments in the state of its context (call depth, taint). A denial
//!   is refused here; a call that needs approval goes on to the approval guard.
//! - Prompts, resource reads, subscriptions and completions: decided as the read they are (a
//!   completion with the value being completed as an argument); anything but an allow is refused
//!   (approvals are given for tool calls only).
//! - Server requests (sampling, elicitation, roots): only to a client that declared the
//!   capability, and only as the policies allow the server to ask this principal; one that no
//!   single client can answer is refused, but for `roots/list` with configured roots.

mod adopted;
mod policies;

pub use policies::{Authorizer, CallState, load_policies, refusal};

use super::forward::parked::Parked;
use super::limit::CallLimits;
use super::taint::Taint;
use super::{Flow, MessageGuard, Request, RequestGuard, ServerMessage};
use crate::catalogue::{CallKind, Route, ServerKind};
use crate::client::ClientContext;
use crate::names::shown;
use crate::resolver::Target;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use warden_policy::{Decision, Item, Verdict};
use warden_protocol::{RpcError, error};

/// The authorizing guard.
pub struct Authorize {
    policies: Arc<Authorizer>,
    taint: Arc<Taint>,
    limits: Arc<CallLimits>,
    parked: Arc<Parked>,
}

impl Authorize {
    /// The guard deciding by `policies`, telling them the taint and depth of each call's context.
    pub fn new(
        policies: Arc<Authorizer>,
        taint: Arc<Taint>,
        limits: Arc<CallLimits>,
        parked: Arc<Parked>,
    ) -> Authorize {
        Authorize { policies, taint, limits, parked }
    }

    /// Refuses a request whose token lacks a scope the tool needs (a 403 over HTTP, so that the
    /// client can ask its user for more).
    fn check_scopes(request: &Request<'_>, needed: Option<&[String]>) -> Result<(), RpcError> {
        let scopes = &request.ctx.principal.scopes;
        let missing: Vec<&String> = needed.unwrap_or_default().iter().filter(|s| !scopes.contains(s)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let scope = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        Err(RpcError::new(error::INSUFFICIENT_SCOPE, format!("Forbidden: this tool needs the scope(s) {scope}"))
            .with_data(json!({ "scope": scope })))
    }

    async fn call(&self, request: &mut Request<'_>, kind: CallKind) -> Result<(), RpcError> {
        let Some(target) = &request.target else { return Ok(()) };
        let ctx = request.ctx;
        let server = target.server.name.clone();
        let state = CallState {
            depth: self.limits.depth(ctx, self.parked.count_for(&ctx.principal)),
            tainted: self.taint.is_tainted_anywhere(ctx).await,
        };
        (request.depth, request.tainted) = (state.depth, state.tainted);
        let what = format!("{} {}", request.method, shown(request.addressed()));
        let args = request.params.get("arguments").and_then(Value::as_object);
        let decision = match kind {
            CallKind::Tool => {
                let Some(tool) = &request.tool else { return Ok(()) };
                Self::check_scopes(request, tool.settings.scopes.as_deref())?;
                if let Some(sent) = &ctx.header_params {
                    crate::headers::check_param_headers(target.listed(), request.arguments(), sent)
                        .map_err(|why| RpcError::new(error::HEADER_MISMATCH, format!("Header mismatch: {why}")))?;
                }
                let item = Item::Tool(&tool.facts);
                self.policies.decide_call(ctx, &server, item, args, &tool.settings, state).await
            }
            CallKind::Prompt => {
                let item = Item::Prompt(&target.upstream_name);
                self.policies.decide_call(ctx, &server, item, args, &Default::default(), state).await
            }
            CallKind::Resource => {
                let item = Item::Resource { uri: &target.upstream_name, template: false };
                self.policies.decide_call(ctx, &server, item, None, &Default::default(), state).await
            }
        };
        let refused = match decision.verdict {
            Verdict::Deny => Some(refusal(&what, &decision)),
            // Approvals are given for tool calls; for anything else a needed approval refuses.
            Verdict::RequireApproval if kind != CallKind::Tool => Some(refusal(&what, &decision)),
            _ => None,
        };
        request.note.decision = Some(decision);
        refused.map_or(Ok(()), Err)
    }

    /// A subscription is decided as the read each update invites; ending one needs no decision.
    async fn subscription(&self, request: &mut Request<'_>) -> Result<(), RpcError> {
        let Some(target) = &request.target else { return Ok(()) };
        let (decision, refused) = self.decide_subscription(request.ctx, target).await;
        request.note.decision = Some(decision);
        refused.map_or(Ok(()), Err)
    }

    async fn decide_subscription(&self, ctx: &ClientContext, target: &Target) -> (Decision, Option<RpcError>) {
        let state = CallState { depth: 1, tainted: self.taint.is_tainted_anywhere(ctx).await };
        let item = Item::Resource { uri: &target.upstream_name, template: false };
        let decision =
            self.policies.decide_call(ctx, &target.server.name, item, None, &Default::default(), state).await;
        let refused = (decision.verdict != Verdict::Allow)
            .then(|| refusal(&format!("resources/subscribe {}", shown(&target.upstream_name)), &decision));
        (decision, refused)
    }

    /// Whether `ctx` may subscribe to the resource `target` (for `subscriptions/listen`).
    pub async fn may_subscribe(&self, ctx: &ClientContext, target: &Target) -> Result<(), RpcError> {
        self.decide_subscription(ctx, target).await.1.map_or(Ok(()), Err)
    }

    /// A completion reveals values of a prompt's or template's arguments: it is decided as
    /// getting the prompt (or reading the template) with the value being completed, beside the
    /// arguments already given, as the arguments.
    async fn completion(&self, request: &mut Request<'_>) -> Result<(), RpcError> {
        let Some(target) = &request.target else { return Ok(()) };
        let state = CallState { depth: 1, tainted: self.taint.is_tainted_anywhere(request.ctx).await };
        let mut args: Map<String, Value> = request
            .params
            .get("context")
            .and_then(|c| c.get("arguments"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let argument = request.params.get("argument");
        if let (Some(name), Some(value)) =
            (argument.and_then(|a| a.get("name")).and_then(Value::as_str), argument.and_then(|a| a.get("value")))
        {
            args.insert(name.to_owned(), value.clone());
        }
        let is_prompt =
            request.params.get("ref").and_then(|r| r.get("type")).and_then(Value::as_str) == Some("ref/prompt");
        let item = if is_prompt {
            Item::Prompt(&target.upstream_name)
        } else {
            Item::Resource { uri: &target.upstream_name, template: true }
        };
        let decision = self
            .policies
            .decide_call(request.ctx, &target.server.name, item, Some(&args), &Default::default(), state)
            .await;
        let refused = (decision.verdict != Verdict::Allow)
            .then(|| refusal(&format!("completion/complete {}", shown(&target.upstream_name)), &decision));
        request.note.decision = Some(decision);
        refused.map_or(Ok(()), Err)
    }
}

#[async_trait::async_trait]
impl RequestGuard for Authorize {
    fn name(&self) -> &'static str {
        "authorize"
    }

    async fn check(&self, request: &mut Request<'_>) -> Result<Flow, RpcError> {
        match request.route {
            Route::Call(kind) => self.call(request, kind).await?,
            Route::Subscribe(true) => self.subscription(request).await?,
            Route::Complete => self.completion(request).await?,
            _ => {}
        }
        Ok(Flow::Next)
    }
}

impl MessageGuard for Authorize {
    fn name(&self) -> &'static str {
        "authorize"
    }

    fn check(&self, message: &mut ServerMessage<'_>) -> Result<(), RpcError> {
        let Some(kind) = message.kind.filter(|k| k.is_request()) else { return Ok(()) };
        if kind == ServerKind::Ping {
            return Ok(());
        }
        let Some(ctx) = message.to else {
            if kind == ServerKind::Roots && !message.server.roots.is_empty() {
                // No client can answer: the gateway answers from the server's configured roots.
                return Ok(());
            }
            return Err(RpcError::new(
                error::METHOD_NOT_FOUND,
                format!("{} outside a request cannot be answered on this connection", message.method),
            ));
        };
        if let Some(cap) = kind.capability()
            && !ctx.has_capability(cap)
        {
            return Err(RpcError::new(
                error::METHOD_NOT_FOUND,
                format!("the client did not declare the {cap} capability"),
            ));
        }
        self.policies.permit_server_request(
            &ctx.principal,
            ctx.era(),
            &message.server.name,
            message.method,
            message.params.as_ref(),
        )
    }
}
