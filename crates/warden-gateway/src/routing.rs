//! The one resolver: which server, connection and definition a name or URI from a client refers to.
//!
//! Calls resolve through the same inventory that listings show, so what a server did not list
//! cannot be called through the gateway, and a name that could mean two servers is refused.

use crate::client::ClientContext;
use crate::gateway::Gateway;
use crate::inventory::{Definition, ListKind, Snapshot};
use crate::names;
use crate::upstreams::{Lane, Server, Slot};
use serde_json::{Value, json};
use std::sync::Arc;
use warden_protocol::{Era, RpcError, error};
use warden_upstream::Connection;

/// Where a call goes.
pub struct Target {
    /// The server.
    pub server: Arc<Server>,
    /// The slot serving this client.
    pub slot: Arc<Slot>,
    /// The lane (era) chosen.
    pub lane: Arc<Lane>,
    /// The live connection.
    pub conn: Arc<Connection>,
    /// The server-side name (tools, prompts) or the URI (resources).
    pub upstream_name: String,
    /// The definition listed by the server, when there is one.
    pub definition: Option<Definition>,
    /// For a resource URI no listed resource names: every listed template it expands.
    pub templates: Vec<String>,
}

impl Gateway {
    async fn lane_of(
        &self,
        ctx: &ClientContext,
        server: &Arc<Server>,
    ) -> Result<(Arc<Slot>, Arc<Lane>, Arc<Connection>, u64), RpcError> {
        let slot = server.slot(ctx)?;
        let (lane, conn, generation) = slot.lane(ctx.era()).await?;
        Ok((slot, lane, conn, generation))
    }

    async fn snapshot(
        &self,
        lane: &Lane,
        conn: &Connection,
        generation: u64,
        kind: ListKind,
    ) -> Result<Snapshot, RpcError> {
        lane.inventory.get(conn, generation, kind, false).await
    }

    /// Whether an exposed name could belong to a configured server (its prefix is one's namespace).
    pub fn names_a_server(&self, exposed: &str) -> bool {
        !names::candidates(exposed, &self.settings.separator, self.servers.iter().map(|s| s.info.namespace.as_str()))
            .is_empty()
    }

    /// Resolves an exposed tool or prompt name.
    pub async fn resolve_named(&self, ctx: &ClientContext, kind: ListKind, exposed: &str) -> Result<Target, RpcError> {
        let what = if kind == ListKind::Tools { "tool" } else { "prompt" };
        let unknown = || unknown(kind, exposed);
        let candidates = names::candidates(
            exposed,
            &self.settings.separator,
            self.servers.iter().map(|s| s.info.namespace.as_str()),
        );
        let single = candidates.len() == 1;
        let mut found = Vec::new();
        for (index, upstream_name) in candidates {
            let server = &self.servers[index];
            let (slot, lane, conn, generation) = match self.lane_of(ctx, server).await {
                Ok(x) => x,
                Err(e) if single => return Err(e),
                Err(_) => continue,
            };
            let mut snap = self.snapshot(&lane, &conn, generation, kind).await?;
            if snap.find(kind, upstream_name).is_none() && lane.inventory.may_refetch_on_miss() {
                snap = lane.inventory.get(&conn, generation, kind, true).await?;
            }
            if let Some(def) = snap.definition(kind, upstream_name) {
                found.push(Target {
                    server: server.clone(),
                    slot,
                    lane,
                    conn,
                    upstream_name: upstream_name.to_owned(),
                    definition: Some(def),
                    templates: vec![],
                });
            }
        }
        match found.len() {
            0 => Err(unknown()),
            1 => Ok(found.remove(0)),
            _ => {
                let servers: Vec<&str> = found.iter().map(|t| t.server.info.name.as_str()).collect();
                tracing::warn!(name = %shown(exposed), ?servers, "refused an ambiguous name");
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
        for fresh in [false, true] {
            let (mut exact, mut templated) = (Vec::new(), Vec::new());
            let mut refetched = false;
            for server in &self.servers {
                let Ok((slot, lane, conn, generation)) = self.lane_of(ctx, server).await else { continue };
                if !conn.hello().has_capability("resources") {
                    continue;
                }
                // A second look refetches lists (rate-limited): the resource may be new.
                let fetch = fresh && lane.inventory.may_refetch_on_miss();
                refetched |= fetch;
                // A list that cannot be fetched covers nothing: fail closed.
                let Ok(resources) = lane.inventory.get(&conn, generation, ListKind::Resources, fetch).await else {
                    continue;
                };
                let Ok(templates) = lane.inventory.get(&conn, generation, ListKind::Templates, fetch).await else {
                    continue;
                };
                let make = |definition: Option<Definition>, templates: Vec<String>| Target {
                    server: server.clone(),
                    slot: slot.clone(),
                    lane: lane.clone(),
                    conn: conn.clone(),
                    upstream_name: uri.to_owned(),
                    definition,
                    templates,
                };
                if let Some(def) = resources.definition(ListKind::Resources, uri) {
                    exact.push(make(Some(def), vec![]));
                    continue;
                }
                let matched: Vec<String> = (templates.items.iter().zip(templates.templates.iter()))
                    .filter(|(_, tpl)| tpl.as_ref().is_some_and(|t| t.matches(uri)))
                    .filter_map(|(item, _)| item.get("uriTemplate").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                if !matched.is_empty() {
                    templated.push(make(None, matched));
                }
            }
            for mut group in [exact, templated] {
                match group.len() {
                    0 => {}
                    1 => return Ok(group.remove(0)),
                    _ => {
                        let servers: Vec<&str> = group.iter().map(|t| t.server.info.name.as_str()).collect();
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
        Err(self.resource_not_found(ctx, uri))
    }

    /// Resolves the server of a resource template named in a completion reference.
    pub async fn resolve_template(&self, ctx: &ClientContext, template: &str) -> Result<Target, RpcError> {
        let mut found = Vec::new();
        for server in &self.servers {
            let Ok((slot, lane, conn, generation)) = self.lane_of(ctx, server).await else { continue };
            let Ok(snap) = self.snapshot(&lane, &conn, generation, ListKind::Templates).await else { continue };
            if let Some(def) = snap.definition(ListKind::Templates, template) {
                found.push(Target {
                    server: server.clone(),
                    slot,
                    lane,
                    conn,
                    upstream_name: template.to_owned(),
                    definition: Some(def),
                    templates: vec![],
                });
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(RpcError::invalid_params(format!("Unknown resource template: {}", shown(template)))),
            _ => Err(RpcError::invalid_params(format!(
                "resource template {} is offered by several servers; refusing to guess",
                shown(template)
            ))),
        }
    }

    /// The era-appropriate "resource not found" error.
    pub fn resource_not_found(&self, ctx: &ClientContext, uri: &str) -> RpcError {
        let code = if ctx.era() == Era::Modern { error::INVALID_PARAMS } else { error::RESOURCE_NOT_FOUND_LEGACY };
        RpcError::new(code, format!("Resource not found: {}", shown(uri))).with_data(json!({ "uri": uri }))
    }
}

/// The error for a tool or prompt name nothing answers to. A name the principal may not see
/// gets exactly this error too, so that hidden items cannot be told from missing ones.
pub fn unknown(kind: ListKind, exposed: &str) -> RpcError {
    let what = if kind == ListKind::Tools { "tool" } else { "prompt" };
    RpcError::invalid_params(format!("Unknown {what}: {}", shown(exposed)))
}

/// A name or URI as it may appear in an error message: bounded and without control characters.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}
