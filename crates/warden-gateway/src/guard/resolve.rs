//! The resolving guard: which server and definition a request addresses, through the one
//! resolver, and only among what this principal may see. A name or URI the principal may not
//! see gets exactly the error of one that does not exist (R4), before any other guard can say
//! something about it.

use super::authorize::Authorizer;
use super::quarantine::URI_PREFIX;
use super::{Flow, Request, RequestGuard, Tool};
use crate::catalogue::{CallKind, ListKind, Route};
use crate::client::ClientContext;
use crate::resolver::{Resolver, Target, resource_not_found, unknown, unknown_template};
use serde_json::Value;
use std::sync::Arc;
use warden_policy::Item;
use warden_protocol::RpcError;

/// Most resource subscriptions one session or one listen stream may hold.
pub const MAX_SUBSCRIPTIONS: usize = 256;

/// The resolving guard.
pub struct Resolve {
    resolver: Arc<Resolver>,
    policies: Arc<Authorizer>,
}

impl Resolve {
    /// The guard over `resolver`, with what `policies` let each principal see.
    pub fn new(resolver: Arc<Resolver>, policies: Arc<Authorizer>) -> Resolve {
        Resolve { resolver, policies }
    }

    fn visible(&self, ctx: &ClientContext, server: &str, item: Item<'_>) -> bool {
        self.policies.visible(&ctx.principal, ctx.era(), server, item)
    }

    /// Resolves a resource URI this principal may see; one it may not is "not found". A URI
    /// that expands a template is readable only if every template it expands is: a hidden
    /// template is not reachable by naming one of its URIs.
    pub async fn readable(&self, ctx: &ClientContext, uri: &str) -> Result<Target, RpcError> {
        let target = self.resolver.resolve_uri(ctx, uri).await?;
        let server = &target.server.name;
        let templates_visible =
            target.templates.iter().all(|t| self.visible(ctx, server, Item::Resource { uri: t, template: true }));
        if !templates_visible || !self.visible(ctx, server, Item::Resource { uri, template: false }) {
            return Err(resource_not_found(ctx, uri));
        }
        Ok(target)
    }

    async fn named(&self, request: &mut Request<'_>, kind: CallKind) -> Result<(), RpcError> {
        let name = request
            .params
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.name must be a string"))?
            .to_owned();
        let arguments = request.params.get("arguments").filter(|a| !a.is_null());
        if arguments.is_some_and(|a| !a.is_object()) {
            return Err(RpcError::invalid_params("params.arguments must be an object"));
        }
        request.note.arguments = arguments.cloned();
        request.note.unknown_server = !self.resolver.names_a_server(&name);
        let list = kind.list();
        let target = self.resolver.resolve_named(request.ctx, list, &name).await?;
        let server = target.server.name.clone();
        if kind == CallKind::Tool {
            let (facts, settings) = self.policies.tool(&server, target.listed());
            if !self.visible(request.ctx, &server, Item::Tool(&facts)) {
                return Err(unknown(list, &name));
            }
            request.note.item = Some(facts.name.clone());
            request.note.class = Some(facts.class);
            request.tool = Some(Tool { facts, settings });
        } else {
            if !self.visible(request.ctx, &server, Item::Prompt(&target.upstream_name)) {
                return Err(unknown(list, &name));
            }
            request.note.item = Some(target.upstream_name.clone());
        }
        request.note.server = Some(server);
        request.target = Some(target);
        Ok(())
    }

    async fn resource(&self, request: &mut Request<'_>) -> Result<(), RpcError> {
        let uri = request
            .params
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.uri must be a string"))?
            .to_owned();
        request.note.item = Some(uri.clone());
        if request.route == Route::Call(CallKind::Resource) && uri.starts_with(URI_PREFIX) {
            // The gateway's own resource: a quarantined result released to this caller alone.
            return Ok(());
        }
        if let Route::Subscribe(_) = request.route
            && request.ctx.session.is_none()
        {
            return Err(RpcError::invalid_request("subscriptions need a session"));
        }
        let target = self.readable(request.ctx, &uri).await?;
        request.note.server = Some(target.server.name.clone());
        request.target = Some(target);
        Ok(())
    }

    async fn completion(&self, request: &mut Request<'_>) -> Result<(), RpcError> {
        let reference =
            request.params.get("ref").cloned().ok_or_else(|| RpcError::invalid_params("params.ref is required"))?;
        let ctx = request.ctx;
        let target = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("ref.name must be a string"))?;
                let t = self.resolver.resolve_named(ctx, ListKind::Prompts, name).await?;
                if !self.visible(ctx, &t.server.name, Item::Prompt(&t.upstream_name)) {
                    return Err(unknown(ListKind::Prompts, name));
                }
                t
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("ref.uri must be a string"))?;
                let t = self.resolver.resolve_template(ctx, uri).await?;
                if !self.visible(ctx, &t.server.name, Item::Resource { uri, template: true }) {
                    return Err(unknown_template(uri));
                }
                t
            }
            _ => return Err(RpcError::invalid_params("ref.type must be ref/prompt or ref/resource")),
        };
        request.note.server = Some(target.server.name.clone());
        request.note.item = Some(target.upstream_name.clone());
        request.target = Some(target);
        Ok(())
    }
}

#[async_trait::async_trait]
impl RequestGuard for Resolve {
    fn name(&self) -> &'static str {
        "resolve"
    }

    async fn check(&self, request: &mut Request<'_>) -> Result<Flow, RpcError> {
        match request.route {
            Route::Call(kind @ (CallKind::Tool | CallKind::Prompt)) => self.named(request, kind).await?,
            Route::Call(CallKind::Resource) | Route::Subscribe(_) => self.resource(request).await?,
            Route::Complete => self.completion(request).await?,
            _ => {}
        }
        Ok(Flow::Next)
    }
}
