//! The one resolver: which server, connection and definition a name or URI from a client refers
//! to, and the merged lists clients see.
//!
//! Calls resolve through the same inventory that listings show, and the stack filters both with
//! the same visibility decision, so what a server did not list, or a principal may not see,
//! cannot be called through the gateway; a name that could mean two servers is refused.

mod lists;

pub use lists::Visible;

use crate::catalogue::ListKind;
use crate::client::ClientContext;
use crate::names::{self, shown};
use crate::servers::{Definition, Failure, Lane, Registry, Server, ServerInfo, Slot, Snapshot};
use crate::uri::normalize_uri;
use serde_json::{Value, json};
use std::sync::Arc;
use warden_protocol::{Era, RpcError, error};
use warden_upstream::Connection;

/// Where a request goes.
pub struct Target {
    /// The server.
    pub server: Arc<ServerInfo>,
    /// The server-side name (tools, prompts), the URI (resources) or the template (completions).
    pub upstream_name: String,
    /// The definition the server listed, when there is one.
    pub definition: Option<Definition>,
    /// For a resource URI no listed resource names: every listed template it expands.
    pub templates: Vec<String>,
    /// The connection that serves it (`None` only where guards are tested without servers).
    pub via: Option<Via>,
}

/// The live connection a resolved request goes on.
#[derive(Clone)]
pub struct Via {
    /// The server.
    pub server: Arc<Server>,
    /// The slot serving this client.
    pub slot: Arc<Slot>,
    /// The lane (era) chosen.
    pub lane: Arc<Lane>,
    /// The connection.
    pub conn: Arc<Connection>,
}

impl Target {
    /// The definition as listed, or `null`.
    pub fn listed(&self) -> &Value {
        self.definition.as_ref().map(Definition::value).unwrap_or(&Value::Null)
    }
}

/// Resolves names and URIs against the servers' inventories.
pub struct Resolver {
    registry: Arc<Registry>,
    separator: String,
    page_size: usize,
}

impl Resolver {
    /// A resolver over `registry`, exposing names with `separator`, paging merged lists by
    /// `page_size` items (0: whole).
    pub fn new(registry: Arc<Registry>, separator: &str, page_size: usize) -> Resolver {
        Resolver { registry, separator: separator.to_owned(), page_size }
    }

    /// The servers.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    async fn via(&self, ctx: &ClientContext, server: &Arc<Server>) -> Result<(Via, u64), RpcError> {
        let slot = server.slot(ctx)?;
        server.ready(ctx).await?;
        let (lane, conn, generation) = slot.lane(ctx.era()).await?;
        Ok((Via { server: server.clone(), slot, lane, conn }, generation))
    }

    /// Whether an exposed name could belong to a configured server (its prefix is one's namespace).
    pub fn names_a_server(&self, exposed: &str) -> bool {
        !names::candidates(exposed, &self.separator, self.registry.all().iter().map(|s| s.info.namespace.as_str()))
            .is_empty()
    }

    /// Resolves an exposed tool or prompt name.
    pub async fn resolve_named(&self, ctx: &ClientContext, kind: ListKind, exposed: &str) -> Result<Target, RpcError> {
        let servers = self.registry.all();
        let candidates = names::candidates(exposed, &self.separator, servers.iter().map(|s| s.info.namespace.as_str()));
        let single = candidates.len() == 1;
        let mut found = Vec::new();
        for (index, upstream_name) in candidates {
            let server = &servers[index];
            let (via, generation) = match self.via(ctx, server).await {
                Ok(x) => x,
                Err(e) if single => return Err(e),
                Err(_) => continue,
            };
            let inventory = &via.lane.inventory;
            let mut snap =
                inventory.get(&via.conn, generation, kind, false).await.map_err(|f| list_failed(server, kind, f))?;
            if snap.find(kind, upstream_name).is_none() && inventory.may_refetch_on_miss() {
                snap =
                    inventory.get(&via.conn, generation, kind, true).await.map_err(|f| list_failed(server, kind, f))?;
            }
            if let Some(def) = snap.definition(kind, upstream_name) {
                found.push(Target {
                    server: server.info.clone(),
                    upstream_name: upstream_name.to_owned(),
                    definition: Some(def),
                    templates: vec![],
                    via: Some(via),
                });
            }
        }
        match found.len() {
            0 => Err(unknown(kind, exposed)),
            1 => Ok(found.remove(0)),
            _ => {
                let servers: Vec<&str> = found.iter().map(|t| t.server.name.as_str()).collect();
                tracing::warn!(name = %shown(exposed), ?servers, "refused an ambiguous name");
                let what = if kind == ListKind::Tools { "tool" } else { "prompt" };
                Err(RpcError::invalid_params(format!(
                    "{what} name {} is offered by several servers; refusing to guess",
                    shown(exposed)
                )))
            }
        }
    }

    /// Resolves a resource URI: a resource some server listed, else one of a server's listed
    /// templates. A URI no listing covers is not found, even if a server might serve it, and a URI
    /// two servers claim is refused.
    pub async fn resolve_uri(&self, ctx: &ClientContext, uri: &str) -> Result<Target, RpcError> {
        // Servers that could not be asked are logged, not named to the client: whether a URI
        // exists must not depend on another server's state (nor tell of resources it hides).
        let mut unasked: Option<RpcError> = None;
        for fresh in [false, true] {
            let (mut exact, mut templated) = (Vec::new(), Vec::new());
            let mut refetched = false;
            for server in self.registry.all() {
                let (via, generation) = match self.via(ctx, server).await {
                    Ok(x) => x,
                    Err(e) => {
                        unasked.get_or_insert(e);
                        continue;
                    }
                };
                if !via.conn.hello().has_capability("resources") {
                    continue;
                }
                // A second look refetches lists (rate-limited): the resource may be new.
                let fetch = fresh && via.lane.inventory.may_refetch_on_miss();
                refetched |= fetch;
                // A list that cannot be fetched covers nothing: fail closed.
                let inventory = &via.lane.inventory;
                let conn = &via.conn;
                let list = |kind| async move {
                    inventory.get(conn, generation, kind, fetch).await.map_err(|f| list_failed(server, kind, f))
                };
                let lists =
                    async { Ok::<_, RpcError>((list(ListKind::Resources).await?, list(ListKind::Templates).await?)) };
                let (resources, templates) = match lists.await {
                    Ok(x) => x,
                    Err(e) => {
                        unasked.get_or_insert(e);
                        continue;
                    }
                };
                let make = |definition: Option<Definition>, templates: Vec<String>| Target {
                    server: server.info.clone(),
                    upstream_name: uri.to_owned(),
                    definition,
                    templates,
                    via: Some(via.clone()),
                };
                // A listed URI matches in its normal form too: the client's was normalized.
                let listed = resources.definition(ListKind::Resources, uri).or_else(|| {
                    resources.definition_where(ListKind::Resources, |l| normalize_uri(l).is_ok_and(|n| n == uri))
                });
                if let Some(def) = listed {
                    exact.push(make(Some(def), vec![]));
                    continue;
                }
                let matched = matching_templates(&templates, uri);
                if !matched.is_empty() {
                    templated.push(make(None, matched));
                }
            }
            for mut group in [exact, templated] {
                match group.len() {
                    0 => {}
                    1 => return Ok(group.remove(0)),
                    _ => {
                        let servers: Vec<&str> = group.iter().map(|t| t.server.name.as_str()).collect();
                        tracing::warn!(uri = %shown(uri), ?servers, "refused an ambiguous resource URI");
                        return Err(RpcError::invalid_params(format!(
                            "resource {} is offered by several servers; refusing to guess",
                            shown(uri)
                        )));
                    }
                }
            }
            if fresh && !refetched {
                break;
            }
        }
        if let Some(e) = unasked {
            tracing::warn!(uri = %shown(uri), "a resource URI was not found while a server could not be asked: {}", e.message);
        }
        Err(resource_not_found(ctx, uri))
    }

    /// Resolves the server of a resource template named in a completion reference.
    pub async fn resolve_template(&self, ctx: &ClientContext, template: &str) -> Result<Target, RpcError> {
        let mut found = Vec::new();
        for server in self.registry.all() {
            let Ok((via, generation)) = self.via(ctx, server).await else { continue };
            let Ok(snap) = via.lane.inventory.get(&via.conn, generation, ListKind::Templates, false).await else {
                continue;
            };
            if let Some(def) = snap.definition(ListKind::Templates, template) {
                found.push(Target {
                    server: server.info.clone(),
                    upstream_name: template.to_owned(),
                    definition: Some(def),
                    templates: vec![],
                    via: Some(via),
                });
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(unknown_template(template)),
            _ => Err(RpcError::invalid_params(format!(
                "resource template {} is offered by several servers; refusing to guess",
                shown(template)
            ))),
        }
    }
}

/// The `uriTemplate` of every listed template that expands `uri`.
fn matching_templates(templates: &Snapshot, uri: &str) -> Vec<String> {
    (templates.items.iter().zip(templates.templates.iter()))
        .filter(|(_, tpl)| tpl.as_ref().is_some_and(|t| t.matches(uri)))
        .filter_map(|(item, _)| item.get("uriTemplate").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// A list that could not be fetched, as the client hears of it: a server's own error is never
/// relayed from here (it may carry codes Warden gives meaning to); it is logged, scrubbed.
fn list_failed(server: &Server, kind: ListKind, failure: Failure) -> RpcError {
    match failure {
        Failure::Gateway(e) => e,
        Failure::Server(e) => {
            let said = e.peek();
            tracing::warn!(server = %server.info.name, list = kind.method(), code = said.code,
                message = %names::for_log(&said.message), "a server refused to list its items");
            RpcError::new(
                error::UPSTREAM_INVALID_RESPONSE,
                format!("server '{}' could not give its {} list", server.info.name, kind.field()),
            )
        }
    }
}

/// The error for a tool or prompt name nothing answers to. A name the principal may not see
/// gets exactly this error too, so that hidden items cannot be told from missing ones.
pub fn unknown(kind: ListKind, exposed: &str) -> RpcError {
    let what = if kind == ListKind::Tools { "tool" } else { "prompt" };
    RpcError::invalid_params(format!("Unknown {what}: {}", shown(exposed)))
}

/// The error for a resource template nothing answers to (or the principal may not see).
pub fn unknown_template(template: &str) -> RpcError {
    RpcError::invalid_params(format!("Unknown resource template: {}", shown(template)))
}

/// The era-appropriate "resource not found" error.
pub fn resource_not_found(ctx: &ClientContext, uri: &str) -> RpcError {
    let code = if ctx.era() == Era::Modern { error::INVALID_PARAMS } else { error::RESOURCE_NOT_FOUND_LEGACY };
    RpcError::new(code, format!("Resource not found: {}", shown(uri))).with_data(json!({ "uri": uri }))
}
