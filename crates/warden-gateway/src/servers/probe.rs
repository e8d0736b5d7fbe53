//! Starting a configured server once, outside a gateway, to see what it offers: `warden scan
//! --connect` and `warden tools review` list a server's tools, prompts and resources this way.
//!
//! The server is started exactly as the gateway would start it (same sandbox, same environment,
//! same egress rules, same bounds on pages, items and frames) and stopped when the listing is
//! done or the time is up. Its unsolicited messages and requests are dropped: nothing it asks for
//! (sampling, elicitation, roots) is answered.

use super::inventory::fetch;
use super::{ServerPaths, server_info};
use crate::catalogue::ListKind;
use crate::config::{Config, ServerSection};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use warden_upstream::Connection;

/// What a server listed.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// `serverInfo` from its handshake.
    pub server_info: Value,
    /// Its instructions for the model, if any.
    pub instructions: Option<String>,
    /// Tool definitions, as listed.
    pub tools: Vec<Value>,
    /// Prompt definitions.
    pub prompts: Vec<Value>,
    /// Resources.
    pub resources: Vec<Value>,
    /// Resource templates.
    pub templates: Vec<Value>,
}

impl Listing {
    /// The items of one kind.
    pub fn items(&self, kind: ListKind) -> &[Value] {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Prompts => &self.prompts,
            ListKind::Resources => &self.resources,
            ListKind::Templates => &self.templates,
        }
    }
}

/// Starts server `name` of `config` as the gateway would, lists everything it offers and stops
/// it; fails (naming why, in a line) when it cannot be started or does not answer within
/// `timeout`.
pub async fn probe(config: &Config, name: &str, timeout: Duration) -> Result<Listing, String> {
    let section = config.servers.get(name).ok_or_else(|| format!("no server named {name:?} is configured"))?;
    probe_section(config, name, section, timeout).await
}

/// As [`probe`], for a server section that need not be in `config` (`config` gives the
/// gateway-wide settings: base directory, egress rules, protected paths).
pub async fn probe_section(
    config: &Config,
    name: &str,
    section: &ServerSection,
    timeout: Duration,
) -> Result<Listing, String> {
    let paths = ServerPaths::of(config);
    if let Some(problem) = super::sandbox_problem(section, &paths) {
        return Err(problem);
    }
    let g = &config.gateway;
    let limits =
        warden_protocol::Limits { max_frame_bytes: g.max_frame_bytes as usize, max_depth: g.max_json_depth as usize };
    let info = server_info(name, section, limits, timeout, &paths, None, None)?;
    let mut spec = info.spec.clone();
    spec.connect_timeout = spec.connect_timeout.min(timeout);
    let spec = Arc::new(spec);
    // Nothing the server sends on its own is acted on; the channel is drained so it never blocks.
    let (events, mut drained) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move { while drained.recv().await.is_some() {} });
    let listed = tokio::time::timeout(timeout, async {
        let conn = Connection::open(spec, events).await.map_err(|e| e.to_string())?;
        let listed = list_all(&conn).await;
        conn.shutdown().await;
        listed
    })
    .await;
    listed.unwrap_or_else(|_| Err(format!("server {name} did not list what it offers within {timeout:?}")))
}

async fn list_all(conn: &Connection) -> Result<Listing, String> {
    let hello = conn.hello();
    let mut out = Listing {
        server_info: hello.server_info.clone(),
        instructions: hello.instructions.clone(),
        ..Listing::default()
    };
    for kind in [ListKind::Tools, ListKind::Prompts, ListKind::Resources, ListKind::Templates] {
        let items = fetch(conn, kind).await.map_err(|f| match f {
            super::Failure::Gateway(e) => e.message,
            super::Failure::Server(e) => format!("{} failed: {}", kind.method(), e.peek().message),
        })?;
        match kind {
            ListKind::Tools => out.tools = items,
            ListKind::Prompts => out.prompts = items,
            ListKind::Resources => out.resources = items,
            ListKind::Templates => out.templates = items,
        }
    }
    Ok(out)
}
