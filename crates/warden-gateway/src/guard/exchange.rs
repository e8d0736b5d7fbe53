//! What the guards pass along: a client's request with what each guard learned of it, the reply
//! that comes back, and a server's message toward a client.

use super::audit::Note;
use super::limit::CallSlot;
use crate::catalogue::{Route, ServerKind};
use crate::client::{ClientContext, Outbound};
use crate::config::ToolSection;
use crate::resolver::Target;
use crate::servers::{ServerError, ServerInfo};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use warden_policy::ToolFacts;
use warden_protocol::RpcError;

/// A client's request on its way through the guards.
pub struct Request<'a> {
    /// Who is asking.
    pub ctx: &'a ClientContext,
    /// The way back to the client while the request is served.
    pub out: &'a Outbound,
    /// Fired when the client gives up.
    pub cancel: &'a CancellationToken,
    /// The method.
    pub method: &'a str,
    /// Its path through the stack.
    pub route: Route,
    /// The params, as the guards leave them: what is forwarded.
    pub params: Value,
    /// Where it goes, once resolved.
    pub target: Option<Target>,
    /// A tool call's facts and settings, once resolved.
    pub tool: Option<Tool>,
    /// The call's place in its context, once admitted.
    pub slot: Option<CallSlot>,
    /// How deeply the call is nested (1 for a direct call), as the policies see it.
    pub depth: u32,
    /// Whether its context had read untrusted content when it was authorized.
    pub tainted: bool,
    /// Why a human must approve the call, as the guards before the approval guard found.
    pub holds: Vec<String>,
    /// It resumes a call Warden parked for this caller (already counted against the limits).
    pub resumes: bool,
    /// The servers whose content is in the reply (set by forwarding).
    pub sources: Vec<Arc<ServerInfo>>,
    /// What the injection scanner found in the reply (set by the taint guard).
    pub screened: Option<warden_inspect::Injection>,
    /// What the audit row will say.
    pub note: &'a mut Note,
}

/// A tool call's facts (for the policies) and settings (from the configuration).
pub struct Tool {
    /// What the policies know of the tool.
    pub facts: ToolFacts,
    /// Its `[tools]` settings.
    pub settings: ToolSection,
}

impl<'a> Request<'a> {
    /// A request as it arrives, before any guard.
    pub fn new(
        ctx: &'a ClientContext,
        out: &'a Outbound,
        cancel: &'a CancellationToken,
        method: &'a str,
        route: Route,
        params: Option<Value>,
        note: &'a mut Note,
    ) -> Request<'a> {
        Request {
            ctx,
            out,
            cancel,
            method,
            route,
            params: params.unwrap_or_else(|| json!({})),
            target: None,
            tool: None,
            slot: None,
            depth: 1,
            tainted: false,
            holds: Vec::new(),
            resumes: false,
            sources: Vec::new(),
            screened: None,
            note,
        }
    }

    /// The name (tools, prompts) or URI (resources) the client addressed, as it stands now.
    pub fn addressed(&self) -> &str {
        let key = if matches!(self.route, Route::Call(crate::catalogue::CallKind::Resource) | Route::Subscribe(_)) {
            "uri"
        } else {
            "name"
        };
        self.params.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    /// What a call parked for a client is bound to besides its caller and method: the name or URI
    /// addressed and the exact arguments, so that a retry resumes only the call it continues.
    pub fn resume_key(&self) -> String {
        let arguments = self.params.get("arguments").filter(|a| !a.is_null());
        let hash = super::approve::arguments_hash(arguments).unwrap_or_default();
        format!("{}#{hash}", self.addressed())
    }

    /// The call's arguments (`null` when absent).
    pub fn arguments(&self) -> &Value {
        self.params.get("arguments").unwrap_or(&Value::Null)
    }

    /// The server the request goes to, once resolved.
    pub fn server(&self) -> Option<&Arc<ServerInfo>> {
        self.target.as_ref().map(|t| &t.server)
    }
}

/// What a request guard decided.
#[derive(Debug)]
pub enum Flow {
    /// On to the next guard.
    Next,
    /// Answered here: this result goes back (through the response guards).
    Answer(Value),
}

/// What answers a request, on its way back through the response guards.
#[derive(Debug)]
pub enum Reply {
    /// A result, from a server or the gateway.
    Result(Value),
    /// A server's own error, until the response guard that translates it has seen it. One that
    /// is still here after the response guards is refused.
    ServerError(ServerError),
    /// An error fit for the client.
    Error(RpcError),
}

impl Reply {
    /// The result, when it is one.
    pub fn result_mut(&mut self) -> Option<&mut Value> {
        match self {
            Reply::Result(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the reply is a 2026-07-28 `input_required` result: not the answer yet.
    pub fn is_input_required(&self) -> bool {
        matches!(self, Reply::Result(v) if is_input_required(v))
    }
}

/// Whether a result asks the client for input first (2026-07-28): not yet the tool's answer.
pub fn is_input_required(result: &Value) -> bool {
    result.get("resultType").and_then(Value::as_str) == Some("input_required")
}

/// A message a server sends toward a client, beside its answers.
pub struct ServerMessage<'a> {
    /// The server that sent it.
    pub server: &'a ServerInfo,
    /// The client it is for; `None` when it belongs to no single client.
    pub to: Option<&'a ClientContext>,
    /// The client's request it is part of (its JSON-RPC id as text), if any.
    pub within: Option<&'a str>,
    /// The method.
    pub method: &'a str,
    /// What it is, once classified.
    pub kind: Option<ServerKind>,
    /// Its params, as the guards leave them: what is delivered.
    pub params: &'a mut Option<Value>,
    /// What the guards found in it, by kind and place (never the value), for the audit row.
    pub findings: Vec<Value>,
}
