//! What the gateway says about itself: its identity, capabilities and instructions, in the
//! `initialize` result (legacy sessions) and the `server/discover` result (2026-07-28). A server's
//! instructions are passed on only where they match their pin, and cleaned like any text a
//! server chose.

use crate::guard::integrity::Integrity;
use crate::guard::sanitize::OutputGuard;
use crate::hub::Audience;
use crate::servers::Registry;
use serde_json::{Value, json};
use std::sync::Arc;
use warden_protocol::{Era, ProtocolVersion};

/// Capabilities the gateway offers every client: it aggregates servers that may offer any of these.
fn capabilities() -> Value {
    json!({
        "tools": { "listChanged": true },
        "prompts": { "listChanged": true },
        "resources": { "subscribe": true, "listChanged": true },
        "completions": {},
        "logging": {},
    })
}

/// The gateway's answers about itself.
pub struct Announce {
    instructions: Option<String>,
    registry: Arc<Registry>,
    integrity: Arc<Integrity>,
    output: Arc<OutputGuard>,
}

impl Announce {
    /// Answers giving the gateway's own `instructions` first, then each connected server's.
    pub fn new(
        instructions: Option<String>,
        registry: Arc<Registry>,
        integrity: Arc<Integrity>,
        output: Arc<OutputGuard>,
    ) -> Announce {
        Announce { instructions, registry, integrity, output }
    }

    /// What the gateway calls itself.
    pub fn server_info() -> Value {
        json!({ "name": "warden", "title": "Warden MCP gateway", "version": env!("CARGO_PKG_VERSION") })
    }

    /// The versions Warden serves, as listed in results and errors.
    pub fn supported_versions() -> Vec<&'static str> {
        ProtocolVersion::ALL.iter().filter(|v| **v != ProtocolVersion::V2024_11_05).map(|v| v.as_str()).collect()
    }

    /// The gateway's instructions and each connected server's, where they match their pins.
    async fn instructions(&self, era: Era) -> Option<String> {
        let mut parts: Vec<String> = self.instructions.iter().cloned().collect();
        for server in self.registry.all() {
            let Some(slot) = server.slots().into_iter().find(|s| s.audience == Audience::All) else {
                continue;
            };
            let Some(text) = slot.connected_lane(era).and_then(|(_, conn)| conn.hello().instructions.clone()) else {
                continue;
            };
            if self.integrity.review_instructions(&server.info.name, &text).await {
                let mut text = Value::String(text);
                self.output.clean(&mut text);
                parts.push(format!("Server \"{}\":\n{}", server.info.name, text.as_str().unwrap_or_default()));
            }
        }
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// The `initialize` result for a legacy client.
    pub async fn initialize_result(&self, version: ProtocolVersion) -> Value {
        let mut r = json!({
            "protocolVersion": version.as_str(),
            "capabilities": capabilities(),
            "serverInfo": Self::server_info(),
        });
        if let Some(i) = self.instructions(Era::Legacy).await {
            r["instructions"] = Value::String(i);
        }
        r
    }

    /// The `server/discover` result.
    pub async fn discover_result(&self) -> Value {
        let mut r = json!({
            "supportedVersions": Self::supported_versions(),
            "capabilities": capabilities(),
        });
        if let Some(i) = self.instructions(Era::Modern).await {
            r["instructions"] = Value::String(i);
        }
        r
    }
}
